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
    _copy: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for InputDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputDb").field("path", &self.path).finish()
    }
}

/// Builds a `file:` URI for `path` with the given query, percent-encoding what URIs reserve.
pub fn file_uri(path: &Path, query: &str) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(b as char)
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    uri
}

/// Checks that `path` is a readable regular file that starts like a SQLite database, so that
/// the user gets "not a SQLite database" rather than SQLite's terse `SQLITE_NOTADB` later.
pub fn check_sqlite_file(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::input(path, "not a file"));
    }
    let mut header = [0u8; 100];
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
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
        let dir = tempfile::Builder::new()
            .prefix("rehearse-copy")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let name = path.file_name().unwrap_or_default();
        let copy = dir.path().join(name);
        fs::copy(path, &copy).map_err(|e| Error::io(path, e))?;
        for side in &sidecars {
            let side_name = side.file_name().unwrap_or_default();
            fs::copy(side, dir.path().join(side_name)).map_err(|e| Error::io(side, e))?;
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

/// Opens a fresh in-memory scratch database with LiveStore's connection settings.
pub fn open_scratch() -> Result<Connection> {
    Ok(Scratch::open(None)?.into_memory_connection())
}

/// Page cache of an on-disk scratch database: what its memory is bounded by.
const DISK_SCRATCH_CACHE_KIB: i64 = 4 * 1024;

/// A scratch database: in memory, or in a temporary file (removed afterwards) whose page cache
/// bounds the memory a replay needs, however large the state grows.
pub struct Scratch {
    /// The connection.
    pub conn: Connection,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Scratch {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Scratch {
    /// Opens a scratch database with LiveStore's connection settings (page size 8192, foreign
    /// keys on): in memory, or in a temporary file under `dir`.
    pub fn open(dir: Option<&Path>) -> Result<Scratch> {
        let (conn, tmp) = match dir {
            None => (
                Connection::open_in_memory().map_err(|e| Error::scratch("open", e))?,
                None,
            ),
            Some(dir) => {
                let tmp = tempfile::Builder::new()
                    .prefix("rehearse-scratch")
                    .tempdir_in(dir)
                    .map_err(|e| Error::io(dir, e))?;
                let conn = Connection::open(tmp.path().join("scratch.db"))
                    .map_err(|e| Error::scratch("open", e))?;
                // The replay is one transaction on a new file: every page is appended, so the
                // rollback journal stays small enough for memory; spilled pages go to the file.
                conn.execute_batch(&format!(
                    "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA cache_size=-{DISK_SCRATCH_CACHE_KIB};"
                ))
                .map_err(|e| Error::scratch("configure", e))?;
                (conn, Some(tmp))
            }
        };
        conn.execute_batch(&format!(
            "PRAGMA page_size={LIVESTORE_PAGE_SIZE}; PRAGMA foreign_keys=ON;"
        ))
        .map_err(|e| Error::scratch("configure", e))?;
        Ok(Scratch { conn, _dir: tmp })
    }

    fn into_memory_connection(self) -> Connection {
        self.conn
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
                return Err(msg);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_reserved_characters() {
        let uri = file_uri(Path::new("/tmp/a b/c?d#e%f.db"), "mode=ro");
        assert_eq!(uri, "file:/tmp/a%20b/c%3Fd%23e%25f.db?mode=ro");
    }
}
