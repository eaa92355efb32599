//! Opening SQLite files without touching them, and the scratch database replay writes into.
//!
//! Inputs are sacred: a corpus or a backup must be byte-identical after rehearse has read it,
//! with no journal, WAL index or lock left beside it. A database is therefore opened as an
//! immutable read-only URI, which makes SQLite skip locking and never create side files. An
//! immutable open would silently ignore a hot journal or a WAL file, though, so when one sits
//! beside the database rehearse copies the set to a private temporary directory and reads the
//! copy, where SQLite may recover as it likes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// LiveStore's page size (`configureConnection` in `@livestore/common`).
pub const LIVESTORE_PAGE_SIZE: u32 = 8192;

/// An input database opened read-only.
pub struct InputDb {
    /// The connection.
    pub conn: Connection,
    /// The file as the user named it.
    pub path: PathBuf,
    /// A URI another connection can `ATTACH` to read the same bytes.
    pub attach_uri: String,
    /// Things the user should know about how the file was read.
    pub notes: Vec<String>,
    // Keeps the private copy alive while the connection uses it.
    _copy: Option<crate::files::PrivateDir>,
}

impl std::fmt::Debug for InputDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputDb").field("path", &self.path).finish()
    }
}

pub use crate::files::file_uri;

/// Checks that `path` is a readable regular file that starts like a SQLite database, so that
/// the user gets "not a SQLite database" rather than SQLite's terse `SQLITE_NOTADB` later.
pub fn check_sqlite_file(path: &Path) -> Result<()> {
    let mut f = crate::files::open_regular(path)?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    let mut header = [0u8; 100];
    let n = read_up_to(&mut f, &mut header).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(Error::input(path, "empty file, not a SQLite database"));
    }
    if n < 100 || &header[..16] != b"SQLite format 3\0" {
        return Err(Error::input(
            path,
            "not a SQLite database (the file does not start with the SQLite header)",
        ));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        p => u64::from(p),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    // The in-header page count is valid when the change counters agree (SQLite >= 3.7.0).
    let valid_count = header[24..28] == header[92..96] && pages > 0;
    if valid_count && meta.len() < pages * page_size {
        return Err(Error::input(
            path,
            format!(
                "truncated SQLite database: the header promises {} bytes ({pages} pages of {page_size}) but the file has {}",
                pages * page_size,
                meta.len()
            ),
        ));
    }
    Ok(())
}

fn read_up_to(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// How much a journal or WAL beside a database may exceed twice the database's size before it
/// is taken for something else: a rollback journal holds at most the pages a transaction
/// changed, plus headers; a WAL may hold several versions of them.
const SIDECAR_SLACK: u64 = 64 << 20;

/// Opens an input database read-only without creating, locking or modifying anything beside it.
pub fn open_input(path: &Path) -> Result<InputDb> {
    check_sqlite_file(path)?;
    let sidecars: Vec<PathBuf> = ["-journal", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        })
        .filter(|p| fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .collect();

    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let (conn, attach_uri, notes, copy) = if sidecars.is_empty() {
        let uri = file_uri(path, "mode=ro&immutable=1");
        let conn = Connection::open_with_flags(&uri, flags)
            .map_err(|e| Error::sqlite(path, "cannot open", e))?;
        (conn, uri, Vec::new(), None)
    } else {
        let db_len = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        for side in &sidecars {
            let len = fs::metadata(side).map_err(|e| Error::io(side, e))?.len();
            if len > db_len.saturating_mul(2).saturating_add(SIDECAR_SLACK) {
                return Err(Error::input(
                    side,
                    format!(
                        "is {len} bytes beside a database of {db_len}: larger than any journal SQLite writes for it, so rehearse does not copy it; move it away (with the app stopped) if it is not the database's"
                    ),
                ));
            }
        }
        let dir = crate::files::private_dir("rehearse-copy-", None)?;
        let name = path.file_name().unwrap_or_default();
        let copy = dir.path().join(name);
        crate::files::copy_file(path, &copy)?;
        for side in &sidecars {
            let side_name = side.file_name().unwrap_or_default();
            crate::files::copy_file(side, &dir.path().join(side_name))?;
        }
        // Read-write on the private copy so SQLite can roll back or check-point it there.
        let conn = Connection::open_with_flags(
            &copy,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::sqlite(path, "cannot open a private copy", e))?;
        let names: Vec<String> = sidecars
            .iter()
            .map(|s| {
                s.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let note = format!(
            "{} has {} beside it (the store may be open, or crashed mid-write); rehearse read a private copy so that the original stays untouched",
            path.display(),
            names.join(" and ")
        );
        let uri = file_uri(&copy, "mode=ro");
        (conn, uri, vec![note], Some(dir))
    };
    // Surfaces "file is not a database" and corruption of the schema now, with the file named.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| Error::sqlite(path, "cannot read the database schema", e))?;
    Ok(InputDb {
        conn,
        path: path.to_path_buf(),
        attach_uri,
        notes,
        _copy: copy,
    })
}

/// Opens an empty in-memory connection with LiveStore's connection settings, confined as every
/// scratch database is ([`confine`]): a host for attached inputs (`diff`), which holds no state
/// of its own and so needs no file.
pub fn open_scratch() -> Result<Connection> {
    let mut conn = Connection::open_in_memory().map_err(|e| Error::scratch("open", e))?;
    livestore_settings(&mut conn)?;
    Ok(conn)
}

/// Page cache of each scratch database file, in KiB: what bounds the memory a replay's state
/// takes however large it grows. Large enough that the state of a store of 100,000 events
/// (11 MB) stays in the cache, so that a file costs such a replay nothing measurable over
/// memory: its pages are written once, at COMMIT, into the OS page cache.
pub const SCRATCH_CACHE_KIB: i64 = 32 * 1024;

/// Page cache of a database file rehearse attaches and fills itself ([`Scratch::attach_new`]),
/// in KiB. An accepted snapshot is written in key order and read in key order by the
/// comparison, so a small cache serves it as well as a large one; at 1,000,000 events a second
/// cache of 32 MiB would be a third of the memory `check` may take.
pub const ATTACHED_CACHE_KIB: i64 = 8 * 1024;

/// A SQLite file of rehearse's own, `name` in a new private directory `<prefix>…` under `dir`
/// (the system's temporary directory when `None`), holding `schema`: where data that outgrew
/// memory goes (the writer index, findings, cause maps). It never outlives the run, so it has
/// no journal, no syncing and an exclusive lock; `cache_kib` of page cache is all the memory
/// it takes. A real file: this build keeps even unnamed temporary databases in memory
/// (`SQLITE_TEMP_STORE=3`). The connection must be dropped before the directory.
pub(crate) fn private_file(
    prefix: &str,
    name: &str,
    dir: Option<&Path>,
    cache_kib: i64,
    schema: &str,
) -> Result<(Connection, crate::files::PrivateDir)> {
    let dir = crate::files::private_dir(prefix, dir)?;
    let path = dir.path().join(name);
    let conn = Connection::open(&path).map_err(|e| Error::sqlite(&path, "create", e))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;
         PRAGMA cache_size=-{cache_kib}; {schema}"
    ))
    .map_err(|e| Error::sqlite(&path, "create its tables", e))?;
    Ok((conn, dir))
}

/// A scratch database in a temporary file of its own private directory (removed afterwards,
/// or by a later run when this one was killed), whose page cache bounds the memory a replay
/// needs. It is never in memory: SQLite is built with `SQLITE_TEMP_STORE=3`, under which even
/// an unnamed temporary database lives in memory.
pub struct Scratch {
    /// The connection.
    pub conn: Connection,
    // Declared after the connection, so dropped after it: the files are closed before their
    // directory is removed.
    dir: crate::files::PrivateDir,
}

impl std::ops::Deref for Scratch {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Scratch {
    /// Opens a scratch database with LiveStore's connection settings (page size 8192, foreign
    /// keys on) in a new private directory under `dir` (the system's temporary directory when
    /// `None`).
    pub fn open(dir: Option<&Path>) -> Result<Scratch> {
        let tmp = crate::files::private_dir("rehearse-scratch-", dir)?;
        let mut conn = Connection::open(tmp.path().join("scratch.db"))
            .map_err(|e| Error::scratch("open", e))?;
        // The page size first: SQLite turns a cache size in KiB into pages at the page size of
        // the moment and keeps that count when the page size changes, so a cache sized before
        // the switch from 4096 to 8192 would hold twice the memory it was given.
        conn.execute_batch(&format!("PRAGMA page_size={LIVESTORE_PAGE_SIZE};"))
            .map_err(|e| Error::scratch("configure", e))?;
        private_file_settings(&conn, "main", SCRATCH_CACHE_KIB)?;
        livestore_settings(&mut conn)?;
        Ok(Scratch { conn, dir: tmp })
    }

    /// The private directory holding the database file (and whatever [`Scratch::attach_new`]
    /// adds).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Attaches a new, empty database file as `schema`, beside the scratch database and with
    /// its settings but a smaller cache: for a state rehearse loads itself (an accepted
    /// snapshot), which in memory would take as much as the replayed state. `schema` is
    /// rehearse's own name for it, not the user's.
    pub fn attach_new(&self, schema: &str) -> Result<()> {
        let path = self.dir.path().join(format!("{schema}.db"));
        trusted(&self.conn, || {
            self.conn.execute(
                &format!("ATTACH ?1 AS {}", quote_ident(schema)),
                [path.to_string_lossy()],
            )
        })
        .map_err(|e| Error::scratch(format!("attach {schema}"), e))?;
        private_file_settings(&self.conn, schema, ATTACHED_CACHE_KIB)
    }
}

/// The settings of a database file no one else opens and nobody needs after a crash.
fn private_file_settings(conn: &Connection, schema: &str, cache_kib: i64) -> Result<()> {
    let s = quote_ident(schema);
    // No other connection opens the file: an exclusive lock, taken once, spares the lock calls
    // and change-counter reads that would otherwise start every statement of the comparison.
    // Nothing survives a crash, so no fsync; a replay is one transaction on a new file, whose
    // pages are appended and need no journal but for the few that held the DDL: the journal
    // stays small enough for memory. Pages past the cache go to the file.
    conn.execute_batch(&format!(
        "PRAGMA {s}.locking_mode=EXCLUSIVE; PRAGMA {s}.journal_mode=MEMORY; \
         PRAGMA {s}.synchronous=OFF; PRAGMA {s}.cache_size=-{cache_kib};"
    ))
    .map_err(|e| Error::scratch("configure", e))
}

/// LiveStore's connection settings, and the confinement.
fn livestore_settings(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA page_size={LIVESTORE_PAGE_SIZE}; PRAGMA foreign_keys=ON;"
    ))
    .map_err(|e| Error::scratch("configure", e))?;
    confine(conn)
}

/// How far the SQL prepared on this thread is trusted; see [`confine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// rehearse's own statements (attaching the recorded state, writing `--out`).
    Rehearse,
    /// The default: DDL and anything else that is not an event's SQL.
    Definitions,
    /// An event's statements: no transaction control either.
    EventSql,
}

thread_local! {
    /// SQLite calls the authorizer on the thread that prepares the statement, and a connection
    /// is used by one thread at a time: the level set here is the one of the statement at hand.
    static TRUST: std::cell::Cell<Trust> = const { std::cell::Cell::new(Trust::Definitions) };
    /// Why the authorizer last refused a statement, for the message the user sees.
    static DENIED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Attached databases a confined connection may have besides `main` and `temp`: none, so that
/// neither `ATTACH` nor `VACUUM INTO` (which attaches its output) can open another file.
const CONFINED_ATTACHED: i32 = 0;

/// rehearse attaches at most the recorded state (`expected`) or two inputs (`diff`).
const TRUSTED_ATTACHED: i32 = 10;

/// Confines a scratch connection: whatever SQL the definitions, an event or a recorded schema
/// hold runs on it, and a gate that runs a pull request's definitions must not let them touch
/// the file system. The connection gets SQLite's defensive mode (no writes to the schema
/// table or shadow tables), no extension loading, no attached databases, and an authorizer
/// that refuses `ATTACH`, `DETACH` (and with them `VACUUM INTO`), the pragmas that name
/// directories, and `load_extension()`; an event's own SQL may not control transactions
/// either (`event_sql`). rehearse's own attaches go through [`trusted`].
pub fn confine(conn: &mut Connection) -> Result<()> {
    use rusqlite::config::DbConfig;
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    use rusqlite::limits::Limit;

    let configure = |e| Error::scratch("confine the connection", e);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(configure)?;
    // SAFETY: the handle is valid while `conn` is borrowed; ENABLE_LOAD_EXTENSION takes an int
    // and an int pointer (NULL: the new value is not reported).
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
            0 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::scratch(
            "confine the connection",
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None),
        ));
    }
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, CONFINED_ATTACHED)
        .map_err(configure)?;
    conn.authorizer(Some(|ctx: AuthContext<'_>| {
        let trust = TRUST.with(|t| t.get());
        if trust == Trust::Rehearse {
            return Authorization::Allow;
        }
        let refused = match ctx.action {
            AuthAction::Attach { filename } => Some(format!(
                "ATTACH ({filename:?}) is not allowed: SQL from definitions or events may not open other files"
            )),
            AuthAction::Detach { .. } => Some("DETACH is not allowed".to_string()),
            AuthAction::Pragma { pragma_name, .. }
                if ["temp_store_directory", "data_store_directory"]
                    .contains(&pragma_name.to_ascii_lowercase().as_str()) =>
            {
                Some(format!("PRAGMA {pragma_name} is not allowed: it names a directory to write in"))
            }
            AuthAction::Function { function_name }
                if function_name.eq_ignore_ascii_case("load_extension") =>
            {
                Some("load_extension() is not allowed".to_string())
            }
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. }
                if trust == Trust::EventSql =>
            {
                Some("transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not allowed in an event's SQL: rehearse runs each event in its own savepoint".to_string())
            }
            _ => None,
        };
        match refused {
            Some(why) => {
                DENIED.with(|d| *d.borrow_mut() = Some(why));
                Authorization::Deny
            }
            None => Authorization::Allow,
        }
    }))
    .map_err(configure)
}

/// Runs `f` at the trust level `level`, restoring the previous one afterwards (also when `f`
/// unwinds).
fn at_level<T>(level: Trust, f: impl FnOnce() -> T) -> T {
    struct Restore(Trust);
    impl Drop for Restore {
        fn drop(&mut self) {
            TRUST.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TRUST.with(|t| t.replace(level)));
    DENIED.with(|d| d.borrow_mut().take());
    f()
}

/// Runs rehearse's own statements on a confined connection: attaching an input, writing the
/// replayed state with `VACUUM INTO`. `f` must not run SQL that came from the user.
pub fn trusted<T>(conn: &Connection, f: impl FnOnce() -> T) -> T {
    use rusqlite::limits::Limit;
    let before = conn
        .limit(Limit::SQLITE_LIMIT_ATTACHED)
        .unwrap_or(CONFINED_ATTACHED);
    let _ = conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, TRUSTED_ATTACHED);
    let out = at_level(Trust::Rehearse, f);
    let _ = conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, before);
    out
}

/// Runs an event's statements: on top of the confinement, no `BEGIN`, `COMMIT`, `ROLLBACK` or
/// savepoints of their own (`COMMIT; VACUUM INTO '…'; BEGIN` would step out of the replay's
/// transaction to write a file).
pub(crate) fn event_sql<T>(f: impl FnOnce() -> T) -> T {
    at_level(Trust::EventSql, f)
}

/// SQLite's message for a statement, with the reason when the confinement refused it (SQLite
/// itself says only "not authorized").
pub(crate) fn explain_refusal(message: String) -> String {
    let denied = DENIED.with(|d| d.borrow_mut().take());
    match denied {
        Some(why)
            if message.contains("not authorized") || message.contains("authorization denied") =>
        {
            format!("refused: {why} (rehearse confines the scratch database)")
        }
        _ if message.contains("too many attached databases") => format!(
            "refused: {message} (rehearse confines the scratch database: SQL from definitions or events may not attach or write other files)"
        ),
        _ => message,
    }
}

/// One column of a table, as `PRAGMA table_xinfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type.
    pub decl_type: String,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk: i64,
    /// Whether the column is declared NOT NULL.
    pub not_null: bool,
    /// Generated or hidden columns are not compared (their value follows from the others).
    pub hidden: bool,
}

/// The tables of `schema` (`main`, or an attached name), in name order, leaving out SQLite's own.
pub fn list_tables(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {} WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        master_table(schema)
    ))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

fn master_table(schema: &str) -> String {
    format!("{}.sqlite_master", quote_ident(schema))
}

/// The columns of `table` in `schema`, in declaration order.
pub fn table_columns(
    conn: &Connection,
    schema: &str,
    table: &str,
) -> rusqlite::Result<Vec<Column>> {
    let mut stmt =
        conn.prepare("SELECT name, type, pk, \"notnull\", hidden FROM pragma_table_xinfo(?1, ?2)")?;
    let rows = stmt.query_map([table, schema], |r| {
        Ok(Column {
            name: r.get(0)?,
            decl_type: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            pk: r.get(2)?,
            not_null: r.get::<_, i64>(3)? != 0,
            hidden: r.get::<_, i64>(4)? != 0,
        })
    })?;
    rows.collect()
}

/// One statement of a multi-statement SQL text, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlPart {
    /// The statement's text.
    pub sql: String,
    /// Its parameters in order: `Some(name)` for named ones (`$x`, `:x`, `@x`), `None` for `?`.
    pub params: Vec<Option<String>>,
}

/// Splits SQL text into its statements the way SQLite itself does (wa-sqlite's `statements()`
/// runs every statement of a materializer's SQL string), preparing each against `conn` so that
/// syntax errors and unknown tables or columns surface with SQLite's own message.
pub fn split_statements(conn: &Connection, sql: &str) -> std::result::Result<Vec<SqlPart>, String> {
    use rusqlite::ffi;
    use std::ffi::{CStr, c_char, c_int};

    let bytes = sql.as_bytes();
    let mut parts = Vec::new();
    let mut offset = 0usize;
    // SAFETY: the handle is valid while `conn` is borrowed; every statement prepared here is
    // finalized before the next iteration; `tail` points into `bytes`.
    unsafe {
        let db = conn.handle();
        while offset < bytes.len() {
            let start = bytes.as_ptr().add(offset) as *const c_char;
            let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
            let mut tail: *const c_char = std::ptr::null();
            let rc = ffi::sqlite3_prepare_v2(
                db,
                start,
                (bytes.len() - offset) as c_int,
                &mut stmt,
                &mut tail,
            );
            if rc != ffi::SQLITE_OK {
                let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db))
                    .to_string_lossy()
                    .into_owned();
                return Err(explain_refusal(msg));
            }
            let consumed = if tail.is_null() {
                bytes.len() - offset
            } else {
                tail as usize - start as usize
            };
            if !stmt.is_null() {
                let n = ffi::sqlite3_bind_parameter_count(stmt);
                let params = (1..=n)
                    .map(|i| {
                        let p = ffi::sqlite3_bind_parameter_name(stmt, i);
                        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
                    })
                    .collect();
                ffi::sqlite3_finalize(stmt);
                parts.push(SqlPart {
                    sql: sql[offset..offset + consumed].to_string(),
                    params,
                });
            }
            if consumed == 0 {
                break;
            }
            offset += consumed;
        }
    }
    Ok(parts)
}

/// Quotes an SQL identifier with double quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Writes a database atomically: `VACUUM INTO` a temporary file beside `path`, then rename.
/// The same rules as [`crate::files::write_atomic`] decide what may be replaced.
pub fn write_database(conn: &Connection, path: &Path) -> Result<()> {
    let (target, kept) = crate::files::output_target(path)?;
    let dir = crate::files::parent_of(&target);
    let tmp = tempfile::Builder::new()
        .prefix(".rehearse-tmp")
        .suffix(".db")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    // VACUUM INTO wants a file that does not exist yet; keep the name, drop the file.
    drop(tmp);
    let _ = std::fs::remove_file(&tmp_path);
    let result = trusted(conn, || {
        conn.execute("VACUUM INTO ?1", [tmp_path.to_string_lossy()])
    })
    .map_err(|e| Error::sqlite(&target, "cannot write the database", e))
    .and_then(|_| match kept {
        Some(p) => std::fs::set_permissions(&tmp_path, p).map_err(|e| Error::io(&target, e)),
        None => Ok(()),
    })
    .and_then(|_| std::fs::rename(&tmp_path, &target).map_err(|e| Error::io(&target, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_reserved_characters() {
        let uri = file_uri(Path::new("/tmp/a b/c?d#e%f.db"), "mode=ro");
        assert_eq!(uri, "file:/tmp/a%20b/c%3Fd%23e%25f.db?mode=ro");
    }

    fn refused(conn: &Connection, sql: &str) -> String {
        let e = conn.execute_batch(sql).expect_err(sql);
        explain_refusal(e.to_string())
    }

    #[test]
    fn confined_sql_cannot_write_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::open(None).unwrap();
        let out = |n: &str| dir.path().join(n);
        let q = |p: &Path| quote_literal(&p.to_string_lossy());
        // As DDL runs (outside any transaction).
        let why = refused(
            &scratch,
            &format!("CREATE TABLE t(a); VACUUM INTO {}", q(&out("v.db"))),
        );
        assert!(why.contains("refused"), "{why}");
        let why = refused(
            &scratch,
            &format!("ATTACH {} AS p; CREATE TABLE p.t(a)", q(&out("a.db"))),
        );
        assert!(why.contains("ATTACH"), "{why}");
        let why = refused(&scratch, "SELECT load_extension('/tmp/x.so')");
        assert!(why.contains("load_extension"), "{why}");
        let why = refused(
            &scratch,
            &format!("PRAGMA temp_store_directory = {}", q(dir.path())),
        );
        assert!(why.contains("temp_store_directory"), "{why}");
        // Defensive mode: the schema table cannot be written.
        assert!(
            scratch
                .execute_batch("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = 'x'")
                .is_err()
        );
        // As an event's SQL runs: inside rehearse's transaction, and without transaction control.
        scratch.execute_batch("BEGIN").unwrap();
        let why = event_sql(|| {
            refused(
                &scratch,
                &format!("COMMIT; VACUUM INTO {}; BEGIN", q(&out("e.db"))),
            )
        });
        assert!(why.contains("transaction control"), "{why}");
        let why = event_sql(|| refused(&scratch, "SAVEPOINT mine"));
        assert!(why.contains("transaction control"), "{why}");
        assert!(
            !scratch.is_autocommit(),
            "the replay's transaction is still open"
        );
        scratch.execute_batch("COMMIT").unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file was written"
        );
        // Even with the authorizer's verdict set aside, the attach limit holds.
        let e = at_level(Trust::Rehearse, || {
            scratch.execute_batch(&format!("ATTACH {} AS p", q(&out("l.db"))))
        })
        .unwrap_err();
        assert!(e.to_string().contains("too many attached"), "{e}");
    }

    #[test]
    fn rehearse_still_attaches_and_writes_on_a_confined_connection() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::open(None).unwrap();
        scratch
            .execute_batch("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
            .unwrap();
        trusted(&scratch, || {
            scratch.execute_batch("ATTACH ':memory:' AS expected")
        })
        .unwrap();
        write_database(&scratch, &dir.path().join("out.db")).unwrap();
        let copy = Connection::open(dir.path().join("out.db")).unwrap();
        let n: i64 = copy.query_row("SELECT a FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        // And the confinement is back afterwards.
        assert!(scratch.execute_batch("ATTACH ':memory:' AS again").is_err());
    }

    /// The file SQLite holds schema `schema` in: empty for an in-memory database.
    fn file_of(conn: &Connection, schema: &str) -> String {
        conn.query_row(
            "SELECT file FROM pragma_database_list WHERE name = ?1",
            [schema],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// The page cache `conn` holds, in bytes.
    fn cache_used(conn: &Connection) -> i64 {
        let (mut cur, mut high) = (0, 0);
        // SAFETY: the handle is valid while `conn` is borrowed; both pointers are to locals.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut cur,
                &mut high,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        i64::from(cur)
    }

    /// A state larger than the page cache, written in one transaction as a replay writes it,
    /// goes to the scratch file: the memory it takes stays at the cache's size. In memory it
    /// would take all of it.
    #[test]
    fn a_large_state_spills_to_the_scratch_file_and_memory_stays_at_the_cache() {
        let scratch = Scratch::open(None).unwrap();
        let file = PathBuf::from(file_of(&scratch, "main"));
        assert!(file.starts_with(scratch.dir()), "{}", file.display());
        let state: i64 = 3 * SCRATCH_CACHE_KIB / 2 * 1024;
        scratch
            .execute_batch(&format!(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
                 BEGIN;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                 INSERT INTO t SELECT i, randomblob(1000) FROM n;",
                rows = state / 1000
            ))
            .unwrap();
        let cache = cache_used(&scratch);
        assert!(
            cache <= SCRATCH_CACHE_KIB * 1024 * 11 / 10,
            "{cache} bytes of page cache for a {state}-byte state"
        );
        let on_disk = std::fs::metadata(&file).unwrap().len() as i64;
        assert!(
            on_disk >= state - SCRATCH_CACHE_KIB * 1024,
            "{on_disk} bytes in the file mid-transaction"
        );
        scratch.execute_batch("COMMIT").unwrap();
        let page_size: u32 = scratch
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, LIVESTORE_PAGE_SIZE);
        let dir = scratch.dir().to_path_buf();
        drop(scratch);
        assert!(!dir.exists(), "the scratch directory is removed");
    }

    /// What rehearse loads itself (an accepted snapshot) is a file in the scratch database's
    /// private directory too, attached on a confined connection that stays confined.
    #[test]
    fn a_new_attached_database_is_a_file_beside_the_scratch_database() {
        let scratch = Scratch::open(None).unwrap();
        scratch.attach_new("expected").unwrap();
        let file = PathBuf::from(file_of(&scratch, "expected"));
        assert!(file.starts_with(scratch.dir()), "{}", file.display());
        scratch
            .execute_batch("CREATE TABLE expected.t (a); INSERT INTO expected.t VALUES (1)")
            .unwrap();
        assert!(file.is_file());
        assert!(scratch.execute_batch("ATTACH ':memory:' AS again").is_err());
    }

    /// A database is written as a report is (`files::write_atomic`): never over a FIFO, with
    /// the ordinary mode of a new file.
    #[cfg(unix)]
    #[test]
    fn a_database_replaces_only_a_regular_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let scratch = Scratch::open(None).unwrap();
        let err = write_database(&scratch, &fifo).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
        let new_mode = crate::files::tests::new_file_mode(d);
        let db = d.join("out.db");
        write_database(&scratch, &db).unwrap();
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, new_mode & 0o644);
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".rehearse-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
