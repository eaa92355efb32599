//! Recorded snapshots: the replayed state of a corpus as a canonical text dump that reviews
//! well in a pull request, for corpora that come without a LiveStore state database (a log
//! exported from a sync server, a log a test wrote).
//!
//! The insta workflow: `rehearse record` writes `<eventlog>.snapshot` beside the corpus; a later
//! `check` compares the replay with it, and when they differ writes the new state as
//! `<eventlog>.snapshot.new` (not in CI unless asked) and fails; `rehearse accept` promotes the
//! pending file.
//!
//! Format (version 1), one line per row, tables by name, rows by key:
//! ```text
//! # rehearse snapshot 1: the replayed state of eventlog@6.db, one line per row.
//! table "todos" key ["id"]
//! columns ["id","text","completed","estimate"]
//! ["todo_1","Ship it",1,2.5]
//! ```
//! Values keep their SQLite storage class: text is a JSON string, an integer a JSON integer, a
//! real a JSON number always written with a fraction or exponent (`2.0`), NULL `null`, a blob
//! `{"blob":"<base64>"}`, text that is not UTF-8 `{"text":"<base64>"}`, an infinite real
//! `{"real":"Infinity"}`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use rusqlite::Connection;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::sqlite::{self, quote_ident};
use crate::value::SqlValue;

const HEADER: &str = "# rehearse snapshot 1";

/// The accepted snapshot of the corpus whose event log is `eventlog`.
pub(crate) fn path_for(eventlog: &Path) -> PathBuf {
    let mut p = eventlog.as_os_str().to_owned();
    p.push(".snapshot");
    PathBuf::from(p)
}

/// The pending snapshot written when a replay differs from the accepted one.
pub(crate) fn pending_for(eventlog: &Path) -> PathBuf {
    let mut p = eventlog.as_os_str().to_owned();
    p.push(".snapshot.new");
    PathBuf::from(p)
}

/// Dumps every user table of `schema` (LiveStore's `__livestore_*` tables left out).
#[cfg(test)]
pub(crate) fn dump(
    conn: &Connection,
    schema: &str,
    eventlog_name: &str,
) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    dump_to(conn, schema, eventlog_name, &mut bytes)?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// Text of the dump held at most before it is written out: a state of a million rows is a
/// hundred megabytes of snapshot, which need not be in memory at once.
const DUMP_BUFFER: usize = 64 * 1024;

/// [`dump`], written to `out` as it is made.
pub(crate) fn dump_to(
    conn: &Connection,
    schema: &str,
    eventlog_name: &str,
    sink: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let sql =
        |e: rusqlite::Error| std::io::Error::other(format!("cannot read the replayed state: {e}"));
    let mut out = format!(
        "{HEADER}: the replayed state of {eventlog_name}, one line per row.\n# Review it like code; accept a pending one with `rehearse accept`.\n"
    );
    for table in sqlite::list_tables(conn, schema).map_err(sql)? {
        if table.starts_with("__livestore_") {
            continue;
        }
        let cols: Vec<sqlite::Column> = sqlite::table_columns(conn, schema, &table)
            .map_err(sql)?
            .into_iter()
            .filter(|c| !c.hidden)
            .collect();
        let key: Vec<&str> = cols
            .iter()
            .filter(|c| c.pk > 0)
            .map(|c| c.name.as_str())
            .collect();
        let order_cols: Vec<&str> = if key.is_empty() {
            cols.iter().map(|c| c.name.as_str()).collect()
        } else {
            key.clone()
        };
        let _ = writeln!(
            out,
            "\ntable {} key {}",
            json_str(&table),
            serde_json::to_string(&key).unwrap_or_default()
        );
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            out,
            "columns {}",
            serde_json::to_string(&names).unwrap_or_default()
        );
        let order: Vec<String> = order_cols
            .iter()
            .map(|c| format!("{q} COLLATE BINARY, typeof({q})", q = quote_ident(c)))
            .collect();
        let query = format!(
            "SELECT {} FROM {}.{} ORDER BY {}",
            names
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            quote_ident(schema),
            quote_ident(&table),
            order.join(", ")
        );
        let mut stmt = conn.prepare(&query).map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            out.push('[');
            for i in 0..names.len() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&encode(&SqlValue::from(row.get_ref(i).map_err(sql)?)));
            }
            out.push_str("]\n");
            if out.len() >= DUMP_BUFFER {
                sink.write_all(out.as_bytes())?;
                out.clear();
            }
        }
    }
    sink.write_all(out.as_bytes())?;
    sink.flush()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn encode(v: &SqlValue) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    match v {
        SqlValue::Null => "null".into(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(r) if r.is_finite() => {
            // serde_json writes whole doubles as `2.0`, so a real never reads back as an integer.
            serde_json::to_string(r).unwrap_or_else(|_| "null".into())
        }
        SqlValue::Real(r) => format!(
            "{{\"real\":\"{}\"}}",
            if *r > 0.0 { "Infinity" } else { "-Infinity" }
        ),
        SqlValue::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => json_str(s),
            Err(_) => format!("{{\"text\":\"{}\"}}", b64.encode(t)),
        },
        SqlValue::Blob(b) => format!("{{\"blob\":\"{}\"}}", b64.encode(b)),
    }
}

fn decode(v: &Value) -> Option<SqlValue> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Some(match v {
        Value::Null => SqlValue::Null,
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => SqlValue::Integer(i),
            _ => SqlValue::Real(n.as_f64()?),
        },
        Value::String(s) => SqlValue::Text(s.as_bytes().to_vec()),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let s = v.as_str()?;
            match k.as_str() {
                "blob" => SqlValue::Blob(b64.decode(s).ok()?),
                "text" => SqlValue::Text(b64.decode(s).ok()?),
                "real" if s == "Infinity" => SqlValue::Real(f64::INFINITY),
                "real" if s == "-Infinity" => SqlValue::Real(f64::NEG_INFINITY),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Loads a snapshot into the (empty, attached) schema `into` of `conn`, as untyped tables so
/// that every value keeps its storage class.
///
/// Read a line at a time: a snapshot of a large state is hundreds of megabytes of text, which
/// need not be in memory beside the tables made from it.
pub(crate) fn load(conn: &Connection, into: &str, path: &Path) -> Result<()> {
    // One transaction: into a database file, a transaction per row would write the file (and
    // its journal) once per row. A snapshot that fails to load rolls back as the guard drops.
    let tx = conn
        .unchecked_transaction()
        .map_err(|e| Error::scratch("begin loading the snapshot", e))?;
    load_rows(conn, into, path)?;
    tx.commit()
        .map_err(|e| Error::scratch("finish loading the snapshot", e))
}

fn load_rows(conn: &Connection, into: &str, path: &Path) -> Result<()> {
    use std::io::{BufRead, Read};
    let file = crate::files::open_regular(path)?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let bad = |line: usize, what: &str| Error::input(path, format!("line {line}: {what}"));
    let mut table: Option<(String, usize, String)> = None;
    let mut pending_key: Option<(String, Vec<String>)> = None;
    let mut buf = String::new();
    for n in 1.. {
        buf.clear();
        // One line at most as long as a whole text input may be.
        let read = (&mut reader)
            .take(crate::files::MAX_TEXT_INPUT + 1)
            .read_line(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            if n == 1 {
                return Err(bad(1, "not a rehearse snapshot (format 1)"));
            }
            break;
        }
        if read as u64 > crate::files::MAX_TEXT_INPUT {
            return Err(bad(n, "a line longer than rehearse reads as one text"));
        }
        let line = buf.strip_suffix('\n').unwrap_or(&buf);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if n == 1 && !line.starts_with(HEADER) {
            return Err(bad(1, "not a rehearse snapshot (format 1)"));
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("table ") {
            let (name, key) = rest
                .split_once(" key ")
                .ok_or_else(|| bad(n, "expected `table \"name\" key [...]`"))?;
            let name: String = serde_json::from_str(name)
                .map_err(|_| bad(n, "the table name is not a JSON string"))?;
            let key: Vec<String> = serde_json::from_str(key)
                .map_err(|_| bad(n, "the key is not a JSON list of names"))?;
            pending_key = Some((name, key));
            table = None;
        } else if let Some(rest) = line.strip_prefix("columns ") {
            let (name, key) = pending_key
                .take()
                .ok_or_else(|| bad(n, "`columns` without `table` before it"))?;
            let cols: Vec<String> = serde_json::from_str(rest)
                .map_err(|_| bad(n, "the columns are not a JSON list of names"))?;
            let mut ddl = format!(
                "CREATE TABLE {}.{} ({}",
                quote_ident(into),
                quote_ident(&name),
                cols.iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !key.is_empty() {
                let _ = write!(
                    ddl,
                    ", PRIMARY KEY ({})",
                    key.iter()
                        .map(|c| quote_ident(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            ddl.push(')');
            conn.execute_batch(&ddl)
                .map_err(|e| bad(n, &format!("cannot create table {name}: {e}")))?;
            let insert = format!(
                "INSERT INTO {}.{} VALUES ({})",
                quote_ident(into),
                quote_ident(&name),
                vec!["?"; cols.len()].join(", ")
            );
            table = Some((name, cols.len(), insert));
        } else {
            let (name, width, insert) = table
                .as_ref()
                .ok_or_else(|| bad(n, "a row before any `table` and `columns`"))?;
            let values: Vec<Value> =
                serde_json::from_str(line).map_err(|e| bad(n, &format!("not a JSON row: {e}")))?;
            if values.len() != *width {
                return Err(bad(
                    n,
                    &format!("{} values for the {width} columns of {name}", values.len()),
                ));
            }
            let row: Vec<SqlValue> = values
                .iter()
                .map(|v| decode(v).ok_or_else(|| bad(n, &format!("cannot read the value {v}"))))
                .collect::<Result<_>>()?;
            let mut stmt = conn
                .prepare_cached(insert)
                .map_err(|e| bad(n, &e.to_string()))?;
            for (i, v) in row.iter().enumerate() {
                let r = match v {
                    SqlValue::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null),
                    SqlValue::Integer(x) => stmt.raw_bind_parameter(i + 1, x),
                    SqlValue::Real(x) => stmt.raw_bind_parameter(i + 1, x),
                    SqlValue::Text(x) => stmt.raw_bind_parameter(
                        i + 1,
                        rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(
                            x.as_slice(),
                        )),
                    ),
                    SqlValue::Blob(x) => stmt.raw_bind_parameter(i + 1, x),
                };
                r.map_err(|e| bad(n, &e.to_string()))?;
            }
            stmt.raw_execute()
                .map_err(|e| bad(n, &format!("cannot load the row: {e}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large state is written a piece at a time, never held whole.
    #[test]
    fn a_dump_is_written_as_it_is_made() {
        struct Sink {
            writes: usize,
            largest: usize,
            bytes: Vec<u8>,
        }
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.writes += 1;
                self.largest = self.largest.max(b.len());
                self.bytes.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO t SELECT i, printf('row %d of the state', i) FROM n;",
        )
        .unwrap();
        let mut sink = Sink {
            writes: 0,
            largest: 0,
            bytes: Vec::new(),
        };
        dump_to(&conn, "main", "eventlog@6.db", &mut sink).unwrap();
        assert!(sink.bytes.len() > 4 * DUMP_BUFFER);
        assert!(sink.writes > 4, "{} writes", sink.writes);
        assert!(
            sink.largest < DUMP_BUFFER + 1024,
            "a write of {} bytes",
            sink.largest
        );
        assert_eq!(
            String::from_utf8(sink.bytes).unwrap(),
            dump(&conn, "main", "eventlog@6.db").unwrap()
        );
    }

    #[test]
    fn dump_and_load_round_trip_every_storage_class() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, v ANY) STRICT;
             INSERT INTO t VALUES ('b', 1), ('a', 1.0), ('c', NULL), ('d', x'00ff'), ('e', CAST(x'ff' AS TEXT)), ('f', 'x\"y'), ('g', 9e999);
             CREATE TABLE nokey (x, y); INSERT INTO nokey VALUES (2, 'b'), (1, 'a'), (1, 'a');
             CREATE TABLE __livestore_schema (x);
             ATTACH ':memory:' AS snap;",
        )
        .unwrap();
        let text = dump(&conn, "main", "eventlog@6.db").unwrap();
        assert!(
            text.contains(
                "table \"t\" key [\"id\"]\ncolumns [\"id\",\"v\"]\n[\"a\",1.0]\n[\"b\",1]\n"
            ),
            "{text}"
        );
        assert!(text.contains("[\"d\",{\"blob\":\"AP8=\"}]"), "{text}");
        assert!(text.contains("[\"e\",{\"text\":\"/w==\"}]"), "{text}");
        assert!(text.contains("[\"g\",{\"real\":\"Infinity\"}]"), "{text}");
        assert!(
            text.contains(
                "table \"nokey\" key []\ncolumns [\"x\",\"y\"]\n[1,\"a\"]\n[1,\"a\"]\n[2,\"b\"]\n"
            ),
            "{text}"
        );
        assert!(!text.contains("__livestore_schema"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.snapshot");
        std::fs::write(&path, &text).unwrap();
        load(&conn, "snap", &path).unwrap();
        assert_eq!(dump(&conn, "snap", "eventlog@6.db").unwrap(), text);
    }

    /// The snapshot is read a line at a time: a snapshot edited on Windows (CRLF) still loads,
    /// and what is wrong is named by its line, also where a file ends early or is empty.
    #[test]
    fn load_reads_line_by_line_and_names_the_bad_line() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("ATTACH ':memory:' AS snap").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let crlf = write(
            "crlf.snapshot",
            "# rehearse snapshot 1\r\ntable \"t\" key [\"id\"]\r\ncolumns [\"id\",\"v\"]\r\n[\"a\",1]\r\n[\"b\",2]",
        );
        load(&conn, "snap", &crlf).unwrap();
        let n: i64 = conn
            .query_row("SELECT sum(v) FROM snap.t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3, "the last line, without a newline, is read too");
        let empty = write("empty.snapshot", "");
        let err = load(&conn, "snap", &empty).unwrap_err().to_string();
        assert!(err.contains("line 1: not a rehearse snapshot"), "{err}");
        let other = write("other.snapshot", "SQLite format 3\n");
        let err = load(&conn, "snap", &other).unwrap_err().to_string();
        assert!(err.contains("line 1: not a rehearse snapshot"), "{err}");
        let narrow = write(
            "narrow.snapshot",
            "# rehearse snapshot 1\ntable \"u\" key []\ncolumns [\"x\",\"y\"]\n[1,2]\n[3]\n",
        );
        let err = load(&conn, "snap", &narrow).unwrap_err().to_string();
        assert!(
            err.contains("line 5: 1 values for the 2 columns of u"),
            "{err}"
        );
    }
}
