//! Reading LiveStore's event log (`eventlog@6.db`, table `eventlog`) exactly as LiveStore 0.4
//! writes it, one row at a time.
//!
//! Replay order is `seqNumGlobal, seqNumClient` (LiveStore's own `rematerializeFromEventlog`),
//! walked through the primary-key index so that memory stays flat however long the log is.
//! A row that cannot be turned into an event (a wrong storage class in a hand-made or damaged
//! log) is handed on as [`LogRow::Malformed`] so that it becomes a finding, never a silent skip.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use serde::Serialize;

use crate::error::{Error, Result};
pub use crate::event::{Event, LogRow, SeqNum};
use crate::sqlite::{self, InputDb};
use crate::value::SqlValue;

/// The columns of LiveStore 0.4's `eventlog` table, in the order rehearse selects them.
pub(crate) const EVENTLOG_COLUMNS: [&str; 12] = [
    "seqNumGlobal",
    "seqNumClient",
    "seqNumRebaseGeneration",
    "parentSeqNumGlobal",
    "parentSeqNumClient",
    "parentSeqNumRebaseGeneration",
    "name",
    "argsJson",
    "clientId",
    "sessionId",
    "schemaHash",
    "syncMetadataJson",
];

/// `__livestore_sync_status`: how far the sync backend has confirmed the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Global sequence number of the last event the backend confirmed (0 without a backend).
    pub head: i64,
    /// The backend's identity, where one set it.
    pub backend_id: Option<String>,
}

/// An opened event log.
#[derive(Debug)]
pub struct EventLog {
    db: InputDb,
    sync: Option<SyncStatus>,
}

impl EventLog {
    /// Opens an event log read-only and checks that it has LiveStore 0.4's `eventlog` table.
    pub fn open(path: &Path) -> Result<EventLog> {
        let db = sqlite::open_input(path)?;
        let columns = sqlite::table_columns(&db.conn, "main", "eventlog")
            .map_err(|e| Error::sqlite(path, "cannot read the eventlog table", e))?;
        if columns.is_empty() {
            return Err(Error::input(
                path,
                "no `eventlog` table: this is not a LiveStore event log",
            ));
        }
        let missing: Vec<&str> = EVENTLOG_COLUMNS
            .iter()
            .copied()
            .filter(|want| !columns.iter().any(|c| c.name == *want))
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                path,
                format!(
                    "the eventlog table lacks {} {} (LiveStore 0.4 writes all of {})",
                    crate::text::plural(missing.len(), "column"),
                    missing.join(", "),
                    EVENTLOG_COLUMNS.join(", ")
                ),
            ));
        }
        let sync = read_sync_status(&db)?;
        Ok(EventLog { db, sync })
    }

    /// The file this log was read from.
    pub fn path(&self) -> &Path {
        &self.db.path
    }

    /// A URI another connection can attach to read this log.
    pub fn attach_uri(&self) -> &str {
        &self.db.attach_uri
    }

    /// Notes on how the file was read (e.g. a private copy because of a hot journal).
    pub fn notes(&self) -> &[String] {
        &self.db.notes
    }

    /// The sync status row, if the table exists and has one.
    pub fn sync_status(&self) -> Option<&SyncStatus> {
        self.sync.as_ref()
    }

    /// The number of rows in the log.
    pub fn count(&self) -> Result<u64> {
        self.db
            .conn
            .query_row("SELECT count(*) FROM eventlog", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| Error::sqlite(self.path(), "cannot count events", e))
    }

    /// The event at `(global, client)`, if the log has one (the lowest rebase generation).
    ///
    /// The lowest generation is chosen here, not by `ORDER BY … LIMIT 1`: SQLite plans that
    /// query from its bound values, and a cached statement whose bindings are cleared (as the
    /// statement cache does) is then prepared again at every call, a third of the cost of
    /// blaming a divergent row.
    pub fn event_at(&self, global: i64, client: i64) -> Result<Option<Event>> {
        let failed = |e| Error::sqlite(self.path(), "cannot read an event", e);
        let mut stmt = self
            .db
            .conn
            .prepare_cached(event_at_sql())
            .map_err(failed)?;
        let mut rows = stmt.query([global, client]).map_err(failed)?;
        let mut lowest: Option<(SqlValue, LogRow)> = None;
        while let Some(row) = rows.next().map_err(failed)? {
            let generation = SqlValue::from(row.get_ref(EVENTLOG_COLUMNS.len()).map_err(failed)?);
            if lowest
                .as_ref()
                .is_none_or(|(g, _)| generation.sqlite_cmp(g).is_lt())
            {
                lowest = Some((generation, decode_row(row)));
            }
        }
        Ok(match lowest {
            Some((_, LogRow::Event(ev))) => Some(ev),
            _ => None,
        })
    }

    /// Streams every row in replay order to `f`, which may stop early.
    pub fn for_each(&self, f: impl FnMut(LogRow) -> Result<ControlFlow<()>>) -> Result<()> {
        stream(&self.db.conn, self.path(), f)
    }

    /// The same log read through a connection of its own (read-only, as this one), which can
    /// stream it on another thread.
    pub(crate) fn reader(&self) -> LogReader {
        LogReader {
            uri: self.db.attach_uri.clone(),
            path: self.db.path.clone(),
        }
    }
}

/// An event log to stream on another thread ([`EventLog::reader`]).
pub(crate) struct LogReader {
    uri: String,
    path: PathBuf,
}

impl LogReader {
    /// [`EventLog::for_each`], through a connection of its own.
    pub(crate) fn for_each(&self, f: impl FnMut(LogRow) -> Result<ControlFlow<()>>) -> Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::sqlite(&self.path, "cannot open", e))?;
        stream(&conn, &self.path, f)
    }
}

/// Streams every row of the log on `conn` in replay order to `f`, which may stop early.
fn stream(
    conn: &rusqlite::Connection,
    path: &Path,
    mut f: impl FnMut(LogRow) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let sql = format!(
        "SELECT {} FROM eventlog ORDER BY seqNumGlobal, seqNumClient, seqNumRebaseGeneration",
        selected_columns()
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| Error::sqlite(path, "cannot read events", e))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| Error::sqlite(path, "cannot read events", e))?;
    let mut last: Option<SeqNum> = None;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                let context = match last {
                    Some(seq) => format!("reading the event after {seq} failed"),
                    None => "reading the first event failed".to_string(),
                };
                return Err(Error::sqlite(path, context, e));
            }
        };
        let log_row = decode_row(row);
        if let LogRow::Event(ev) = &log_row {
            last = Some(ev.seq);
        }
        if f(log_row)?.is_break() {
            break;
        }
    }
    Ok(())
}

fn read_sync_status(db: &InputDb) -> Result<Option<SyncStatus>> {
    let exists: bool = db
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '__livestore_sync_status'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| Error::sqlite(&db.path, "cannot read the schema", e))?
        > 0;
    if !exists {
        return Ok(None);
    }
    let mut stmt = db
        .conn
        .prepare("SELECT head, backendId FROM __livestore_sync_status ORDER BY head DESC LIMIT 1")
        .map_err(|e| Error::sqlite(&db.path, "cannot read __livestore_sync_status", e))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| Error::sqlite(&db.path, "cannot read __livestore_sync_status", e))?;
    match rows
        .next()
        .map_err(|e| Error::sqlite(&db.path, "cannot read __livestore_sync_status", e))?
    {
        Some(row) => {
            let head = match row.get_ref(0) {
                Ok(ValueRef::Integer(i)) => i,
                _ => {
                    return Err(Error::input(
                        &db.path,
                        "__livestore_sync_status.head is not an integer",
                    ));
                }
            };
            let backend_id = match row.get_ref(1) {
                Ok(ValueRef::Text(t)) => Some(String::from_utf8_lossy(t).into_owned()),
                _ => None,
            };
            Ok(Some(SyncStatus { head, backend_id }))
        }
        None => Ok(None),
    }
}

/// [`EVENTLOG_COLUMNS`] as a query selects them, in order (what [`decode_row`] reads).
fn selected_columns() -> String {
    EVENTLOG_COLUMNS
        .iter()
        .map(|c| sqlite::quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query behind [`EventLog::event_at`]: every column, then the rebase generation again.
/// Made once: blame asks it for every divergent row.
fn event_at_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {}, \"seqNumRebaseGeneration\" FROM eventlog WHERE seqNumGlobal = ?1 AND seqNumClient = ?2",
            selected_columns()
        )
    })
}

fn decode_row(row: &rusqlite::Row<'_>) -> LogRow {
    let mut problems: Vec<String> = Vec::new();
    let mut int = |i: usize| -> i64 {
        match row.get_ref(i) {
            Ok(ValueRef::Integer(v)) => v,
            Ok(other) => {
                problems.push(format!(
                    "{} is {} instead of an integer",
                    EVENTLOG_COLUMNS[i],
                    storage_class(other)
                ));
                0
            }
            Err(e) => {
                problems.push(format!("{}: {e}", EVENTLOG_COLUMNS[i]));
                0
            }
        }
    };
    let seq = SeqNum {
        global: int(0),
        client: int(1),
        rebase_generation: int(2),
    };
    let parent = SeqNum {
        global: int(3),
        client: int(4),
        rebase_generation: int(5),
    };
    let schema_hash = int(10);
    let seq_ok = problems.is_empty();
    let mut text = |i: usize| -> String {
        match row.get_ref(i) {
            Ok(ValueRef::Text(t)) => match std::str::from_utf8(t) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    problems.push(format!("{} is not valid UTF-8", EVENTLOG_COLUMNS[i]));
                    String::from_utf8_lossy(t).into_owned()
                }
            },
            Ok(other) => {
                problems.push(format!(
                    "{} is {} instead of text",
                    EVENTLOG_COLUMNS[i],
                    storage_class(other)
                ));
                String::new()
            }
            Err(e) => {
                problems.push(format!("{}: {e}", EVENTLOG_COLUMNS[i]));
                String::new()
            }
        }
    };
    let name = text(6);
    let args_json = text(7);
    let client_id = text(8);
    let session_id = text(9);
    let sync_metadata_json = text(11);
    if problems.is_empty() {
        LogRow::Event(Event {
            seq,
            parent,
            name,
            args_json,
            client_id,
            session_id,
            schema_hash,
            sync_metadata_json,
        })
    } else {
        LogRow::Malformed {
            seq: seq_ok.then_some(seq),
            name: (!name.is_empty()).then_some(name),
            problem: problems.join("; "),
        }
    }
}

/// SQLite's name for a value's storage class, as `typeof()` returns it.
pub(crate) fn storage_class(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blame reads an event per divergent row: the statement must be prepared once, not at
    /// every call (it was, 199 times in 200, while it ordered by the generation in SQL).
    #[test]
    fn looking_events_up_prepares_the_query_once() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpora/workspace-n200/workspace/eventlog@6.db");
        let log = EventLog::open(&path).unwrap();
        let mut all = Vec::new();
        log.for_each(|row| {
            if let LogRow::Event(ev) = row {
                all.push(ev);
            }
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(all.len(), 200);
        for ev in &all {
            let found = log.event_at(ev.seq.global, ev.seq.client).unwrap();
            assert_eq!(
                found.map(|e| (e.seq, e.name)),
                Some((ev.seq, ev.name.clone()))
            );
        }
        assert!(log.event_at(10_000, 0).unwrap().is_none());
        let stmt = log.db.conn.prepare_cached(event_at_sql()).unwrap();
        let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
        assert!(again <= 2, "prepared again {again} times");
    }
}
