//! Per-event row changes through SQLite's pre-update hook.
//!
//! Replay needs to know, for every row an event touches, which table and key it was and which
//! columns changed, so that a divergent row can be blamed on the event that wrote it, and, to
//! compare an event with LiveStore's recorded changeset or with another run, the values before
//! and after. The session extension ([`crate::session`]) can say the same, but a session and a
//! changeset per event re-read each table's schema and prepare statements every time: it made
//! the 100,000-event check four times slower. The pre-update hook the session extension is
//! built on reports each row change directly; [`crate::replay::changes::net`] folds an event's changes
//! per row the way a changeset does, and a test holds the result against LiveStore's own
//! changesets, event by event. Tables without a primary key, which changesets leave out, are
//! captured too, keyed by rowid.
//!
//! The hook needs `SQLITE_ENABLE_PREUPDATE_HOOK` in the bundled SQLite (`.cargo/config.toml`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::ffi;

use crate::value::SqlValue;

type PreUpdateCallback = unsafe extern "C" fn(
    ctx: *mut c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    z_db: *const c_char,
    z_name: *const c_char,
    key1: i64,
    key2: i64,
);

unsafe extern "C" {
    fn sqlite3_preupdate_hook(
        db: *mut ffi::sqlite3,
        callback: Option<PreUpdateCallback>,
        ctx: *mut c_void,
    ) -> *mut c_void;
    fn sqlite3_preupdate_old(
        db: *mut ffi::sqlite3,
        i: c_int,
        pp: *mut *mut ffi::sqlite3_value,
    ) -> c_int;
    fn sqlite3_preupdate_new(
        db: *mut ffi::sqlite3,
        i: c_int,
        pp: *mut *mut ffi::sqlite3_value,
    ) -> c_int;
    fn sqlite3_preupdate_count(db: *mut ffi::sqlite3) -> c_int;
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// A new row.
    Insert,
    /// A changed row.
    Update,
    /// A removed row.
    Delete,
}

/// One row change.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Table name.
    pub table: Arc<str>,
    /// What happened.
    pub op: ChangeOp,
    /// The row's primary key in column order (its rowid where the table has none).
    pub key: Vec<SqlValue>,
    /// For an update whose key changed: the old key.
    pub old_key: Option<Vec<SqlValue>>,
    /// Positions of the columns whose value changed (every column for an insert or delete).
    pub columns: Vec<usize>,
    /// Whether the table has a declared primary key (changesets leave other tables out).
    pub keyed: bool,
    /// The whole row before (update, delete), when values are captured.
    pub old: Option<Vec<SqlValue>>,
    /// The whole row after (insert, update), when values are captured.
    pub new: Option<Vec<SqlValue>>,
}

struct Ctx {
    /// Primary-key column positions per table of `main`; empty for rowid-keyed tables.
    keys: HashMap<String, (Arc<str>, Vec<usize>)>,
    /// Primary-key column names per table, in the same order.
    key_names: HashMap<String, Vec<String>>,
    /// Capture whole rows before and after.
    values: bool,
    changes: RefCell<Vec<RowChange>>,
}

/// Records row changes of the `main` database of a connection while it is alive.
pub struct Capture<'conn> {
    conn: &'conn Connection,
    ctx: Box<Ctx>,
}

impl<'conn> Capture<'conn> {
    /// Starts recording changes to the tables of `main` as they exist now; with `values`, the
    /// whole rows before and after too.
    pub fn install(conn: &'conn Connection, values: bool) -> rusqlite::Result<Capture<'conn>> {
        let mut ctx = Box::new(Ctx::read(conn)?);
        ctx.values = values;
        // SAFETY: ctx is boxed, so its address is stable, and the hook is removed in Drop
        // before the box is freed; the connection outlives 'conn.
        unsafe {
            sqlite3_preupdate_hook(
                conn.handle(),
                Some(on_preupdate),
                &*ctx as *const Ctx as *mut c_void,
            );
        }
        Ok(Capture { conn, ctx })
    }
}

impl Ctx {
    fn read(conn: &Connection) -> rusqlite::Result<Ctx> {
        let mut keys = HashMap::new();
        let mut key_names = HashMap::new();
        for table in crate::sqlite::list_tables(conn, "main")? {
            let cols = crate::sqlite::table_columns(conn, "main", &table)?;
            let mut pk: Vec<(i64, usize)> = cols
                .iter()
                .enumerate()
                .filter(|(_, c)| c.pk > 0)
                .map(|(i, c)| (c.pk, i))
                .collect();
            pk.sort();
            // Column order, to match how the comparison keys a row.
            let mut pk: Vec<usize> = pk.into_iter().map(|(_, i)| i).collect();
            pk.sort();
            key_names.insert(
                table.clone(),
                pk.iter().map(|&i| cols[i].name.clone()).collect(),
            );
            keys.insert(table.clone(), (Arc::from(table.as_str()), pk));
        }
        Ok(Ctx {
            keys,
            key_names,
            values: false,
            changes: RefCell::new(Vec::new()),
        })
    }
}

impl Capture<'_> {
    /// The changes recorded since the last call.
    pub fn take(&self) -> Vec<RowChange> {
        std::mem::take(&mut *self.ctx.changes.borrow_mut())
    }

    /// Forgets the changes recorded since the last call (they were rolled back).
    pub fn discard(&self) {
        self.ctx.changes.borrow_mut().clear();
    }

    /// How rows of `table` are keyed: its shared name and its primary-key columns in column
    /// order (empty when rows are keyed by rowid); `None` for a table not in `main`.
    pub fn key_of(&self, table: &str) -> Option<(Arc<str>, &[String])> {
        let (name, _) = self.ctx.keys.get(table)?;
        Some((name.clone(), self.ctx.key_names.get(table)?.as_slice()))
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        // SAFETY: removes the hook installed in `install`.
        unsafe {
            sqlite3_preupdate_hook(self.conn.handle(), None, ptr::null_mut());
        }
    }
}

unsafe extern "C" fn on_preupdate(
    ctx: *mut c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    z_db: *const c_char,
    z_name: *const c_char,
    key1: i64,
    key2: i64,
) {
    // SAFETY: ctx is the Ctx installed with this hook; SQLite passes valid C strings and
    // calls the preupdate accessors only from inside this callback.
    unsafe {
        let ctx = &*(ctx as *const Ctx);
        if CStr::from_ptr(z_db).to_bytes() != b"main" {
            return;
        }
        let Ok(name) = CStr::from_ptr(z_name).to_str() else {
            return;
        };
        let Some((table, pk)) = ctx.keys.get(name) else {
            return;
        };
        let n = sqlite3_preupdate_count(db);
        let read = |f: unsafe extern "C" fn(
            *mut ffi::sqlite3,
            c_int,
            *mut *mut ffi::sqlite3_value,
        ) -> c_int,
                    i: usize| {
            let mut v = ptr::null_mut();
            if f(db, i as c_int, &mut v) == ffi::SQLITE_OK && !v.is_null() {
                Some(v)
            } else {
                None
            }
        };
        let key_of = |f, rowid: i64| -> Vec<SqlValue> {
            if pk.is_empty() {
                vec![SqlValue::Integer(rowid)]
            } else {
                pk.iter()
                    .map(|&i| {
                        read(f, i)
                            .map(|v| SqlValue::from_raw(v))
                            .unwrap_or(SqlValue::Null)
                    })
                    .collect()
            }
        };
        let all: Vec<usize> = (0..n.max(0) as usize).collect();
        let keyed = !pk.is_empty();
        let row = |f| -> Option<Vec<SqlValue>> {
            ctx.values.then(|| {
                all.iter()
                    .map(|&i| {
                        read(f, i)
                            .map(|v| SqlValue::from_raw(v))
                            .unwrap_or(SqlValue::Null)
                    })
                    .collect()
            })
        };
        let change = match op {
            ffi::SQLITE_INSERT => RowChange {
                table: table.clone(),
                op: ChangeOp::Insert,
                key: key_of(sqlite3_preupdate_new, key2),
                old_key: None,
                columns: all.clone(),
                keyed,
                old: None,
                new: row(sqlite3_preupdate_new),
            },
            ffi::SQLITE_DELETE => RowChange {
                table: table.clone(),
                op: ChangeOp::Delete,
                key: key_of(sqlite3_preupdate_old, key1),
                old_key: None,
                columns: all.clone(),
                keyed,
                old: row(sqlite3_preupdate_old),
                new: None,
            },
            ffi::SQLITE_UPDATE => {
                let columns = all
                    .iter()
                    .copied()
                    .filter(|&i| {
                        match (
                            read(sqlite3_preupdate_old, i),
                            read(sqlite3_preupdate_new, i),
                        ) {
                            (Some(a), Some(b)) => !same_value(a, b),
                            _ => true,
                        }
                    })
                    .collect();
                let key = key_of(sqlite3_preupdate_new, key2);
                let old = key_of(sqlite3_preupdate_old, key1);
                RowChange {
                    table: table.clone(),
                    op: ChangeOp::Update,
                    old_key: (!old.iter().zip(&key).all(|(a, b)| a.same(b))).then_some(old),
                    key,
                    columns,
                    keyed,
                    old: row(sqlite3_preupdate_old),
                    new: row(sqlite3_preupdate_new),
                }
            }
            _ => return,
        };
        ctx.changes.borrow_mut().push(change);
    }
}

/// Whether two values have the same storage class and content, without copying them.
///
/// # Safety
/// Both must be valid `sqlite3_value` pointers.
unsafe fn same_value(a: *mut ffi::sqlite3_value, b: *mut ffi::sqlite3_value) -> bool {
    // SAFETY: the caller guarantees validity.
    unsafe {
        let t = ffi::sqlite3_value_type(a);
        if t != ffi::sqlite3_value_type(b) {
            return false;
        }
        match t {
            ffi::SQLITE_NULL => true,
            ffi::SQLITE_INTEGER => ffi::sqlite3_value_int64(a) == ffi::sqlite3_value_int64(b),
            ffi::SQLITE_FLOAT => ffi::sqlite3_value_double(a) == ffi::sqlite3_value_double(b),
            ffi::SQLITE_TEXT => {
                let (pa, pb) = (ffi::sqlite3_value_text(a), ffi::sqlite3_value_text(b));
                let (na, nb) = (ffi::sqlite3_value_bytes(a), ffi::sqlite3_value_bytes(b));
                na == nb
                    && (na == 0
                        || std::slice::from_raw_parts(pa, na as usize)
                            == std::slice::from_raw_parts(pb, nb as usize))
            }
            _ => {
                let (pa, pb) = (
                    ffi::sqlite3_value_blob(a) as *const u8,
                    ffi::sqlite3_value_blob(b) as *const u8,
                );
                let (na, nb) = (ffi::sqlite3_value_bytes(a), ffi::sqlite3_value_bytes(b));
                na == nb
                    && (na == 0
                        || std::slice::from_raw_parts(pa, na as usize)
                            == std::slice::from_raw_parts(pb, nb as usize))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_row_change_with_key_and_changed_columns() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b TEXT) STRICT;
             CREATE TABLE n (id INTEGER PRIMARY KEY, x);
             CREATE TABLE nopk (x);
             CREATE TEMP TABLE scratch (x);",
        )
        .unwrap();
        let cap = Capture::install(&conn, false).unwrap();
        conn.execute_batch(
            "INSERT INTO t VALUES ('k', 1, 'x');
             UPDATE t SET a = 2, b = 'x' WHERE id = 'k';
             INSERT INTO n (x) VALUES ('y');
             INSERT INTO nopk VALUES (1);
             INSERT INTO scratch VALUES (1);
             DELETE FROM t;",
        )
        .unwrap();
        let changes = cap.take();
        let summary: Vec<(String, ChangeOp, String, Vec<usize>)> = changes
            .iter()
            .map(|c| {
                let key: Vec<String> = c.key.iter().map(ToString::to_string).collect();
                (c.table.to_string(), c.op, key.join(","), c.columns.clone())
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("t".into(), ChangeOp::Insert, "'k'".into(), vec![0, 1, 2]),
                ("t".into(), ChangeOp::Update, "'k'".into(), vec![1]),
                ("n".into(), ChangeOp::Insert, "1".into(), vec![0, 1]),
                ("nopk".into(), ChangeOp::Insert, "1".into(), vec![0]),
                ("t".into(), ChangeOp::Delete, "'k'".into(), vec![0, 1, 2]),
            ]
        );
        assert!(cap.take().is_empty());
    }
}
