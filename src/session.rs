//! SQLite's session extension: one changeset per replayed event.
//!
//! LiveStore records, for every event it materializes, the changeset the event produced
//! (FORMAT.md §4.4). rehearse captures the same per event during replay, which tells it which
//! event last wrote each row (so a divergent row can be blamed on an event) and lets later
//! stages compare event by event with LiveStore's record.
//!
//! rusqlite's `session` feature would wrap this API but forces bindgen and with it libclang, so
//! build.rs compiles SQLite with `SQLITE_ENABLE_SESSION` and the functions used here are the
//! declarations libsqlite3-sys's bindings already carry (`rusqlite::ffi`).
//!
//! Tables without a PRIMARY KEY are not recorded by sessions (the same limit LiveStore has);
//! rows of such tables therefore have no recorded writer.

use std::ffi::{CStr, c_char, c_int, c_uchar, c_void};
use std::ptr;

use crate::value::SqlValue as Value;
use rusqlite::Connection;
use rusqlite::ffi;

use ffi::{
    sqlite3_changeset_iter as Sqlite3ChangesetIter, sqlite3_session as Sqlite3Session,
    sqlite3changeset_finalize, sqlite3changeset_new, sqlite3changeset_next, sqlite3changeset_old,
    sqlite3changeset_op, sqlite3changeset_pk, sqlite3changeset_start, sqlite3session_attach,
    sqlite3session_changeset, sqlite3session_create, sqlite3session_delete,
};

/// A session recording changes to every table of the `main` database of a connection.
pub struct Session<'conn> {
    raw: *mut Sqlite3Session,
    _conn: std::marker::PhantomData<&'conn Connection>,
}

impl<'conn> Session<'conn> {
    /// Starts recording changes to all tables of `main`.
    pub fn new(conn: &'conn Connection) -> Result<Session<'conn>, String> {
        let mut raw = ptr::null_mut();
        // SAFETY: the handle is valid for the connection's lifetime, which bounds 'conn.
        let rc = unsafe { sqlite3session_create(conn.handle(), c"main".as_ptr(), &mut raw) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3session_create failed ({rc})"));
        }
        let session = Session {
            raw,
            _conn: std::marker::PhantomData,
        };
        // SAFETY: raw is a live session; NULL attaches every table.
        let rc = unsafe { sqlite3session_attach(session.raw, ptr::null()) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3session_attach failed ({rc})"));
        }
        Ok(session)
    }

    /// The changeset recorded so far (empty when nothing changed).
    pub fn changeset(&self) -> Result<Changeset, String> {
        let mut n: c_int = 0;
        let mut p: *mut c_void = ptr::null_mut();
        // SAFETY: raw is live; SQLite allocates the buffer, which we copy and free.
        let rc = unsafe { sqlite3session_changeset(self.raw, &mut n, &mut p) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3session_changeset failed ({rc})"));
        }
        let bytes = if p.is_null() || n <= 0 {
            Vec::new()
        } else {
            // SAFETY: SQLite returned n valid bytes at p.
            unsafe { std::slice::from_raw_parts(p as *const u8, n as usize).to_vec() }
        };
        // SAFETY: p came from sqlite3_malloc (or is NULL, which sqlite3_free accepts).
        unsafe { ffi::sqlite3_free(p) };
        Ok(Changeset(bytes))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is a live session, deleted exactly once.
        unsafe { sqlite3session_delete(self.raw) };
    }
}

/// A changeset blob in SQLite's format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changeset(pub Vec<u8>);

/// The kind of row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// A new row.
    Insert,
    /// A changed row.
    Update,
    /// A removed row.
    Delete,
}

/// One row change, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Table name.
    pub table: String,
    /// What happened.
    pub op: Op,
    /// Which columns form the primary key.
    pub pk: Vec<bool>,
    /// Old values (delete, update: `None` where unchanged).
    pub old: Vec<Option<Value>>,
    /// New values (insert, update: `None` where unchanged).
    pub new: Vec<Option<Value>>,
}

impl Change {
    /// The primary-key values of the changed row.
    pub fn key(&self) -> Vec<Value> {
        let side = match self.op {
            Op::Insert => &self.new,
            Op::Update | Op::Delete => &self.old,
        };
        self.pk
            .iter()
            .zip(side)
            .filter(|(is_pk, _)| **is_pk)
            .map(|(_, v)| v.clone().unwrap_or(Value::Null))
            .collect()
    }
}

impl Changeset {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes every change, in the changeset's own order.
    pub fn changes(&self) -> Result<Vec<Change>, String> {
        let mut out = Vec::new();
        self.walk(|raw| {
            let table = raw.table.to_string_lossy().into_owned();
            let pk: Vec<bool> = raw.pk.iter().map(|&b| b != 0).collect();
            let op = op_of(raw.op)?;
            let read = |f: unsafe extern "C" fn(
                *mut Sqlite3ChangesetIter,
                c_int,
                *mut *mut ffi::sqlite3_value,
            ) -> c_int|
             -> Vec<Option<Value>> {
                (0..raw.n_col)
                    .map(|i| {
                        let mut v = ptr::null_mut();
                        // SAFETY: i < n_col; v is NULL when the column is not present.
                        let rc = unsafe { f(raw.iter, i, &mut v) };
                        if rc != ffi::SQLITE_OK || v.is_null() {
                            None
                        } else {
                            // SAFETY: v is a valid protected value until next().
                            Some(unsafe { Value::from_raw(v) })
                        }
                    })
                    .collect()
            };
            let old = if op == Op::Insert {
                vec![None; raw.n_col as usize]
            } else {
                read(sqlite3changeset_old)
            };
            let new = if op == Op::Delete {
                vec![None; raw.n_col as usize]
            } else {
                read(sqlite3changeset_new)
            };
            out.push(Change {
                table,
                op,
                pk,
                old,
                new,
            });
            Ok(true)
        })?;
        Ok(out)
    }

    /// Steps an iterator through the changeset and hands `f` each change as the iterator
    /// stands on it, until `f` returns `false`; says whether `f` saw them all. The one place
    /// that starts, steps and finalizes a changeset iterator ([`Changeset::changes`] copies
    /// what it is handed, [`Changeset::visit`] reads it in place).
    fn walk(
        &self,
        mut f: impl FnMut(RawChange<'_>) -> Result<bool, String>,
    ) -> Result<bool, String> {
        if self.0.is_empty() {
            return Ok(true);
        }
        let mut iter = ptr::null_mut();
        // SAFETY: the iterator reads self.0, which outlives it (finalized below).
        let rc = unsafe {
            sqlite3changeset_start(
                &mut iter,
                self.0.len() as c_int,
                self.0.as_ptr() as *mut c_void,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(format!(
                "not a valid changeset (sqlite3changeset_start: {rc})"
            ));
        }
        let result = (|| {
            loop {
                // SAFETY: iter is a live iterator.
                let rc = unsafe { sqlite3changeset_next(iter) };
                if rc == ffi::SQLITE_DONE {
                    return Ok(true);
                }
                if rc != ffi::SQLITE_ROW {
                    return Err(format!("corrupt changeset (sqlite3changeset_next: {rc})"));
                }
                let mut tab: *const c_char = ptr::null();
                let (mut n_col, mut op, mut indirect) = (0, 0, 0);
                // SAFETY: iter points at a change; outputs are plain locals.
                let rc = unsafe {
                    sqlite3changeset_op(iter, &mut tab, &mut n_col, &mut op, &mut indirect)
                };
                if rc != ffi::SQLITE_OK {
                    return Err(format!("corrupt changeset (sqlite3changeset_op: {rc})"));
                }
                // SAFETY: a NUL-terminated name, valid until next().
                let table = unsafe { CStr::from_ptr(tab) };
                let mut pk_ptr: *mut c_uchar = ptr::null_mut();
                let mut pk_n = 0;
                // SAFETY: as above; pk_ptr has pk_n entries, valid until next().
                let pk = unsafe {
                    sqlite3changeset_pk(iter, &mut pk_ptr, &mut pk_n);
                    if pk_ptr.is_null() || pk_n <= 0 {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(pk_ptr, pk_n as usize)
                    }
                };
                if !f(RawChange {
                    iter,
                    table,
                    n_col,
                    op,
                    pk,
                })? {
                    return Ok(false);
                }
            }
        })();
        // SAFETY: iter is live and finalized once.
        unsafe { sqlite3changeset_finalize(iter) };
        result
    }
}

/// A change as the iterator stands on it ([`Changeset::walk`]): valid until the next step.
struct RawChange<'i> {
    iter: *mut Sqlite3ChangesetIter,
    table: &'i CStr,
    n_col: c_int,
    /// SQLite's operation code ([`op_of`]).
    op: c_int,
    pk: &'i [c_uchar],
}

/// The operation of SQLite's code.
fn op_of(code: c_int) -> Result<Op, String> {
    match code {
        ffi::SQLITE_INSERT => Ok(Op::Insert),
        ffi::SQLITE_UPDATE => Ok(Op::Update),
        ffi::SQLITE_DELETE => Ok(Op::Delete),
        other => Err(format!("unknown changeset operation {other}")),
    }
}

/// One change of a changeset, read in place: valid while [`Changeset::visit`] is on it.
pub(crate) struct ChangeAt<'i> {
    iter: *mut Sqlite3ChangesetIter,
    table: &'i str,
    op: Op,
    pk: &'i [c_uchar],
}

/// A value of a [`ChangeAt`].
#[derive(Clone, Copy)]
pub(crate) struct ValueAt<'i> {
    raw: *mut ffi::sqlite3_value,
    _change: std::marker::PhantomData<&'i ()>,
}

impl ChangeAt<'_> {
    /// The table.
    pub(crate) fn table(&self) -> &str {
        self.table
    }

    /// What happened to the row.
    pub(crate) fn op(&self) -> Op {
        self.op
    }

    /// The table's number of columns.
    pub(crate) fn columns(&self) -> usize {
        self.pk.len()
    }

    /// Whether column `i` is part of the primary key.
    pub(crate) fn is_pk(&self, i: usize) -> bool {
        self.pk.get(i).is_some_and(|&b| b != 0)
    }

    /// The value before, where the change records one.
    pub(crate) fn before(&self, i: usize) -> Option<ValueAt<'_>> {
        if self.op == Op::Insert {
            return None;
        }
        self.value(sqlite3changeset_old, i)
    }

    /// The value after, where the change records one.
    pub(crate) fn after(&self, i: usize) -> Option<ValueAt<'_>> {
        if self.op == Op::Delete {
            return None;
        }
        self.value(sqlite3changeset_new, i)
    }

    fn value(
        &self,
        f: unsafe extern "C" fn(
            *mut Sqlite3ChangesetIter,
            c_int,
            *mut *mut ffi::sqlite3_value,
        ) -> c_int,
        i: usize,
    ) -> Option<ValueAt<'_>> {
        if i >= self.pk.len() {
            return None;
        }
        let mut v = ptr::null_mut();
        // SAFETY: the iterator is on this change (visit's callback), i < its column count.
        let rc = unsafe { f(self.iter, i as c_int, &mut v) };
        (rc == ffi::SQLITE_OK && !v.is_null()).then_some(ValueAt {
            raw: v,
            _change: std::marker::PhantomData,
        })
    }
}

impl ValueAt<'_> {
    /// Whether this is `value` exactly: the same storage class and the same bits (a stricter
    /// test than `==` on [`Value`], never a looser one).
    pub(crate) fn is(&self, value: &Value) -> bool {
        // SAFETY: raw is a protected value, valid while the change is current.
        unsafe {
            let bytes = |p: *const u8| {
                let n = ffi::sqlite3_value_bytes(self.raw);
                if p.is_null() || n <= 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(p, n as usize)
                }
            };
            match (ffi::sqlite3_value_type(self.raw), value) {
                (ffi::SQLITE_NULL, Value::Null) => true,
                (ffi::SQLITE_INTEGER, Value::Integer(i)) => {
                    ffi::sqlite3_value_int64(self.raw) == *i
                }
                (ffi::SQLITE_FLOAT, Value::Real(r)) => {
                    ffi::sqlite3_value_double(self.raw).to_bits() == r.to_bits() && !r.is_nan()
                }
                (ffi::SQLITE_TEXT, Value::Text(t)) => bytes(ffi::sqlite3_value_text(self.raw)) == t,
                (ffi::SQLITE_BLOB, Value::Blob(b)) => {
                    bytes(ffi::sqlite3_value_blob(self.raw) as *const u8) == b
                }
                _ => false,
            }
        }
    }
}

impl Changeset {
    /// Hands every change, in the changeset's own order, to `f` without copying it, until
    /// `f` returns `false`; says whether `f` saw them all.
    pub(crate) fn visit(&self, mut f: impl FnMut(&ChangeAt<'_>) -> bool) -> Result<bool, String> {
        self.walk(|raw| {
            let Ok(table) = raw.table.to_str() else {
                return Ok(false);
            };
            let op = op_of(raw.op)?;
            if raw.pk.len() != raw.n_col.max(0) as usize {
                return Ok(false);
            }
            Ok(f(&ChangeAt {
                iter: raw.iter,
                table,
                op,
                pk: raw.pk,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_one_change_per_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER) STRICT; CREATE TABLE nopk (x)",
        )
        .unwrap();
        let session = Session::new(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO t VALUES ('a', 1); INSERT INTO t VALUES ('b', 2); UPDATE t SET n = 5 WHERE id = 'a'; DELETE FROM t WHERE id = 'b'; INSERT INTO nopk VALUES (1)",
        )
        .unwrap();
        let changes = session.changeset().unwrap().changes().unwrap();
        // 'b' was inserted and deleted within the session: no net change. Rows of tables
        // without a primary key are not recorded.
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op, Op::Insert);
        assert_eq!(changes[0].key(), vec![Value::Text(b"a".to_vec())]);
        assert_eq!(changes[0].new[1], Some(Value::Integer(5)));
    }

    /// build.rs compiles libsqlite3-sys's own amalgamation: the linked library must be the
    /// release its bindings were generated from, with rehearse's options, and no system SQLite
    /// picked up by the linker instead.
    #[test]
    fn the_linked_sqlite_is_the_one_the_bindings_describe() {
        // SAFETY: sqlite3_sourceid returns a static NUL-terminated string.
        let linked = unsafe { CStr::from_ptr(ffi::sqlite3_sourceid()) };
        assert_eq!(linked, ffi::SQLITE_SOURCE_ID);
        // SAFETY: a plain function of the library.
        assert_eq!(
            unsafe { ffi::sqlite3_libversion_number() },
            ffi::SQLITE_VERSION_NUMBER
        );
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for wanted in [
            "ENABLE_SESSION",
            "ENABLE_PREUPDATE_HOOK",
            "ENABLE_MATH_FUNCTIONS",
            "ENABLE_FTS5",
            "DEFAULT_FOREIGN_KEYS",
            "THREADSAFE=1",
        ] {
            assert!(
                options.iter().any(|o| o == wanted),
                "{wanted} in {options:?}"
            );
        }
        let pi: f64 = conn.query_row("SELECT pi()", [], |r| r.get(0)).unwrap();
        assert_eq!(pi, std::f64::consts::PI);
    }
}
