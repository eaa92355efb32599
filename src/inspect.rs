//! What a corpus holds, without replaying it: events per name, sequence range, clients and
//! sessions, sync head and the snapshot files beside the log.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::ControlFlow;
use std::path::Path;

use serde::Serialize;

use crate::corpus::{Corpus, STORAGE_FORMAT};
use crate::error::{Error, Result};
use crate::eventlog::{EventLog, LogRow, SeqNum};
use crate::report::CorpusKind;
use crate::sqlite;

/// The version of `inspect --format json` (`schemas/inspect.schema.json`).
pub const INSPECT_VERSION: u32 = 1;

/// A summary of one corpus.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// [`INSPECT_VERSION`].
    pub version: u32,
    /// The corpus as named.
    pub corpus: String,
    /// Store, package or bare log.
    pub kind: CorpusKind,
    /// The event log.
    pub eventlog: String,
    /// LiveStore storage format.
    pub storage_format: u32,
    /// `__livestore_sync_status.head`, when present.
    pub sync_head: Option<i64>,
    /// The sync backend's id, when set.
    pub backend_id: Option<String>,
    /// Rows in the log.
    pub events: u64,
    /// Client-only events (`seqNumClient > 0`).
    pub client_only: u64,
    /// Events the writing app did not know (`schemaHash = -1`).
    pub unknown_to_writer: u64,
    /// Rows that are not well-formed events.
    pub malformed: u64,
    /// First event.
    pub first: Option<SeqNum>,
    /// Last event.
    pub last: Option<SeqNum>,
    /// Events per name.
    pub names: BTreeMap<String, u64>,
    /// Events per client id.
    pub clients: BTreeMap<String, u64>,
    /// Events per `clientId/sessionId`.
    pub sessions: BTreeMap<String, u64>,
    /// State databases found beside the log, newest first.
    pub snapshots: Vec<SnapshotFile>,
    /// `manifest.json` of a backup package.
    pub manifest: Option<serde_json::Value>,
    /// Notes.
    pub notes: Vec<String>,
}

/// One recorded state database.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFile {
    /// Its path.
    pub path: String,
    /// Rows per user table.
    pub tables: BTreeMap<String, u64>,
    /// Rows of `__livestore_session_changeset` (recorded per-event changesets), if present.
    pub changesets: Option<u64>,
}

/// Inspects the corpus at `path`.
pub fn inspect(path: &Path) -> Result<Inspection> {
    inspect_located(Corpus::locate(path)?)
}

/// Inspects the event log at `path` alone, leaving any state files beside it unread (a
/// pre-flight holds the log against its manifest whatever the snapshot's state).
pub(crate) fn inspect_log(path: &Path) -> Result<Inspection> {
    let mut corpus = Corpus::locate(path)?;
    corpus.snapshots.clear();
    inspect_located(corpus)
}

fn inspect_located(corpus: Corpus) -> Result<Inspection> {
    let log = EventLog::open(&corpus.eventlog)?;
    let mut ins = Inspection {
        version: INSPECT_VERSION,
        corpus: corpus.name.clone(),
        kind: corpus.kind,
        eventlog: corpus.eventlog.display().to_string(),
        storage_format: STORAGE_FORMAT,
        sync_head: log.sync_status().map(|s| s.head),
        backend_id: log.sync_status().and_then(|s| s.backend_id.clone()),
        events: 0,
        client_only: 0,
        unknown_to_writer: 0,
        malformed: 0,
        first: None,
        last: None,
        names: BTreeMap::new(),
        clients: BTreeMap::new(),
        sessions: BTreeMap::new(),
        snapshots: Vec::new(),
        manifest: corpus.manifest.clone(),
        notes: corpus.notes.clone(),
    };
    ins.notes.extend(log.notes().iter().cloned());
    log.for_each(|row| {
        ins.events += 1;
        match row {
            LogRow::Malformed { .. } => ins.malformed += 1,
            LogRow::Event(ev) => {
                ins.first.get_or_insert(ev.seq);
                ins.last = Some(ev.seq);
                if ev.is_client_only() {
                    ins.client_only += 1;
                }
                if ev.schema_hash == -1 {
                    ins.unknown_to_writer += 1;
                }
                *ins.names.entry(ev.name).or_default() += 1;
                *ins.sessions
                    .entry(format!("{}/{}", ev.client_id, ev.session_id))
                    .or_default() += 1;
                *ins.clients.entry(ev.client_id).or_default() += 1;
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for p in &corpus.snapshots {
        let db = sqlite::open_input(p)?;
        let mut tables = BTreeMap::new();
        let mut changesets = None;
        let names = sqlite::list_tables(&db.conn, "main")
            .map_err(|e| Error::sqlite(p, "cannot list tables", e))?;
        for t in names {
            let n: i64 = db
                .conn
                .query_row(
                    &format!("SELECT count(*) FROM {}", sqlite::quote_ident(&t)),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| Error::sqlite(p, format!("cannot count rows of {t}"), e))?;
            if crate::replay::recorded::TABLES.contains(&t.as_str()) {
                changesets = Some(n as u64);
            } else if !t.starts_with("__livestore_") {
                tables.insert(t, n as u64);
            }
        }
        ins.snapshots.push(SnapshotFile {
            path: p.display().to_string(),
            tables,
            changesets,
        });
    }
    Ok(ins)
}

/// The human form of an inspection.
pub fn render(ins: &Inspection) -> String {
    let mut out = String::new();
    let kind = match ins.kind {
        CorpusKind::Store => "LiveStore store directory",
        CorpusKind::Package => "backup package",
        CorpusKind::Eventlog => "event log",
    };
    let _ = writeln!(
        out,
        "{} ({kind}, storage format {})",
        ins.corpus, ins.storage_format
    );
    let _ = writeln!(out, "  event log   {}", ins.eventlog);
    let range = match (ins.first, ins.last) {
        (Some(a), Some(b)) => format!("{a} … {b}"),
        _ => "empty".into(),
    };
    let _ = writeln!(
        out,
        "  events      {} ({} client-only, {} unknown to their writer{}), {range}",
        ins.events,
        ins.client_only,
        ins.unknown_to_writer,
        if ins.malformed > 0 {
            format!(", {} malformed", ins.malformed)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  sync head   {}{}",
        ins.sync_head
            .map(|h| format!("e{h}"))
            .unwrap_or_else(|| "none".into()),
        ins.backend_id
            .as_ref()
            .map(|b| format!(" (backend {b})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  clients     {}", join_counts(&ins.clients));
    let _ = writeln!(out, "  sessions    {}", join_counts(&ins.sessions));
    let _ = writeln!(out, "  events by name:");
    // Names are shortened (on a character boundary) and padded by characters: a name as long
    // as the log allows would otherwise be a width the formatter cannot take.
    let names: Vec<(String, u64)> = ins
        .names
        .iter()
        .map(|(name, n)| (crate::text::truncate(name), *n))
        .collect();
    let width = names
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (name, n) in &names {
        let pad = width - name.chars().count();
        let _ = writeln!(out, "    {name}{:pad$}  {n:>8}", "");
    }
    if ins.snapshots.is_empty() {
        let _ = writeln!(out, "  snapshots   none");
    }
    for (i, s) in ins.snapshots.iter().enumerate() {
        let newest = if i == 0 && ins.snapshots.len() > 1 {
            " (newest)"
        } else {
            ""
        };
        let _ = writeln!(out, "  snapshot    {}{newest}", s.path);
        let _ = writeln!(out, "    rows      {}", join_counts(&s.tables));
        if let Some(n) = s.changesets {
            let _ = writeln!(out, "    recorded changesets {n}");
        }
    }
    for note in &ins.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

fn join_counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} ({v})"))
        .collect::<Vec<_>>()
        .join(", ")
}
