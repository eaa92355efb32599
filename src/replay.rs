//! The replay engine: every event of a log, in order, through a materializer, into a scratch
//! database.
//!
//! The whole replay is one transaction and each event runs inside its own savepoint, so an
//! event whose statements fail is rolled back alone, reported as `materializer-error`, and
//! replay goes on, like a LiveStore rematerialization that survived the bad event. Each event's
//! changes are captured through SQLite's pre-update hook to remember which event last wrote each
//! row, which is how a divergent row is later blamed on an event. The log is streamed; what
//! grows is bounded by the state (one entry per row written), not by the number of events.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use rusqlite::{Connection, ToSql};
use serde_json::Value;

use crate::capture::{Capture, ChangeOp, RowChange};
use crate::error::{Error, Result};
use crate::eventlog::{Event, EventLog, LogRow, SeqNum};
use crate::js::BindValue;
use crate::materialize::{Binds, Materializer, Outcome, Statement};
use crate::report::{Finding, FindingClass};
use crate::sqlite;
use crate::value::SqlValue;

/// What to do when an event's materializer fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Roll the event back, report it, go on (the default).
    #[default]
    Continue,
    /// Stop replaying at the first failing event.
    Stop,
}

/// Replay settings.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Behaviour on a failing event.
    pub on_error: OnError,
}

/// The event that last wrote a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    /// Its sequence number.
    pub seq: SeqNum,
    /// Its name.
    pub name: Arc<str>,
}

/// Which event last wrote each row, and each column of it, from per-event changesets.
#[derive(Debug, Default)]
pub struct WriterIndex {
    tables: HashMap<String, u32>,
    rows: HashMap<(u32, Vec<u8>), RowWriters>,
}

/// The writers of one row: the insert, later updates per column, and the last change.
#[derive(Debug, Clone)]
struct RowWriters {
    last: Writer,
    inserted: Option<Writer>,
    columns: Vec<(usize, Writer)>,
}

impl WriterIndex {
    fn record(&mut self, change: &RowChange, writer: &Writer) {
        let next = self.tables.len() as u32;
        let id = *self.tables.entry(change.table.to_string()).or_insert(next);
        if let Some(old) = &change.old_key {
            // The row moved to a new key: the old one was, in effect, deleted by this event.
            let row = self
                .rows
                .entry((id, SqlValue::encode_key(old)))
                .or_insert_with(|| RowWriters {
                    last: writer.clone(),
                    inserted: None,
                    columns: Vec::new(),
                });
            row.last = writer.clone();
        }
        let key = (id, SqlValue::encode_key(&change.key));
        match change.op {
            ChangeOp::Insert => {
                self.rows.insert(
                    key,
                    RowWriters {
                        last: writer.clone(),
                        inserted: Some(writer.clone()),
                        columns: Vec::new(),
                    },
                );
            }
            ChangeOp::Update | ChangeOp::Delete => {
                let row = self.rows.entry(key).or_insert_with(|| RowWriters {
                    last: writer.clone(),
                    inserted: None,
                    columns: Vec::new(),
                });
                row.last = writer.clone();
                if change.op == ChangeOp::Update {
                    for &i in &change.columns {
                        match row.columns.iter_mut().find(|(c, _)| *c == i) {
                            Some(slot) => slot.1 = writer.clone(),
                            None => row.columns.push((i, writer.clone())),
                        }
                    }
                }
            }
        }
    }

    /// The last writer of the row of `table` whose primary key, in column order, is `key`.
    pub fn last_writer(&self, table: &str, key: &[SqlValue]) -> Option<&Writer> {
        self.row(table, key).map(|r| &r.last)
    }

    /// The last event that wrote any of `columns` (positions in the replayed table) of a row:
    /// the latest update of one of them, else the insert.
    pub fn last_writer_of_columns(
        &self,
        table: &str,
        key: &[SqlValue],
        columns: &[usize],
    ) -> Option<&Writer> {
        let row = self.row(table, key)?;
        columns
            .iter()
            .filter_map(|c| {
                row.columns
                    .iter()
                    .find(|(i, _)| i == c)
                    .map(|(_, w)| w)
                    .or(row.inserted.as_ref())
            })
            .max_by_key(|w| w.seq)
            .or(Some(&row.last))
    }

    fn row(&self, table: &str, key: &[SqlValue]) -> Option<&RowWriters> {
        let id = self.tables.get(table)?;
        self.rows.get(&(*id, SqlValue::encode_key(key)))
    }

    /// Rows with a known writer.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row has a known writer.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Rows read from the log.
    pub events: u64,
    /// Events whose materialization ran to the end (no-op events included).
    pub applied: u64,
    /// Findings, in log order.
    pub findings: Vec<Finding>,
    /// Where `--on-error stop` stopped the replay.
    pub stopped_at: Option<SeqNum>,
    /// Last writer of each row.
    pub writers: WriterIndex,
}

/// Runs SQL statements the way wa-sqlite does, with cached prepared statements.
struct Executor {
    /// SQL text → the statements it contains (a materializer may return several in one string).
    split: HashMap<String, Vec<String>>,
}

/// Bound on remembered SQL splits, so materializers that inline values into SQL text do not
/// make memory grow with the log.
const SPLIT_CACHE_MAX: usize = 4096;

impl Executor {
    fn run(&mut self, conn: &Connection, st: &Statement) -> std::result::Result<(), String> {
        if !self.split.contains_key(&st.sql) {
            if self.split.len() >= SPLIT_CACHE_MAX {
                self.split.clear();
            }
            let parts = sqlite::split_statements(conn, &st.sql)?
                .into_iter()
                .map(|p| p.sql)
                .collect();
            self.split.insert(st.sql.clone(), parts);
        }
        for part in &self.split[&st.sql] {
            let mut stmt = conn.prepare_cached(part).map_err(sqlite_message)?;
            bind(&mut stmt, &st.binds).map_err(sqlite_message)?;
            let mut rows = stmt.raw_query();
            while rows.next().map_err(sqlite_message)?.is_some() {}
        }
        Ok(())
    }
}

/// SQLite's own message, without rusqlite's wrapping.
pub fn sqlite_message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg,
        other => other.to_string(),
    }
}

/// wa-sqlite's `bind_collection`: positional values go to parameters 1…n of each statement,
/// named values to parameters of the same name; anything else stays NULL.
fn bind(stmt: &mut rusqlite::Statement<'_>, binds: &Binds) -> rusqlite::Result<()> {
    let n = stmt.parameter_count();
    match binds {
        Binds::None => {}
        Binds::Positional(values) => {
            for (i, v) in values.iter().enumerate().take(n) {
                bind_one(stmt, i + 1, v)?;
            }
        }
        Binds::Named(values) => {
            let names: Vec<Option<String>> = (1..=n)
                .map(|i| stmt.parameter_name(i).map(str::to_string))
                .collect();
            for (i, name) in names.iter().enumerate() {
                if let Some(name) = name
                    && let Some((_, v)) = values.iter().find(|(k, _)| k == name)
                {
                    bind_one(stmt, i + 1, v)?;
                }
            }
        }
    }
    Ok(())
}

fn bind_one(stmt: &mut rusqlite::Statement<'_>, i: usize, v: &BindValue) -> rusqlite::Result<()> {
    let value: &dyn ToSql = match v {
        BindValue::Unbound => return Ok(()),
        BindValue::Null => &rusqlite::types::Null,
        BindValue::Integer(x) => x,
        BindValue::Real(x) => x,
        BindValue::Text(x) => x,
        BindValue::Blob(x) => x,
    };
    stmt.raw_bind_parameter(i, value)
}

/// Checks the log's structure as it streams by (FORMAT.md §3.4, §14).
#[derive(Default)]
struct Chain {
    prev: Option<SeqNum>,
    last_synced_global: i64,
}

impl Chain {
    /// Problems with this event's position; `skip` when LiveStore's replay would never read it.
    fn check(&mut self, ev: &Event, out: &mut Vec<Finding>) -> bool {
        let mut flag = |msg: String| {
            out.push(Finding::event(
                FindingClass::LogIntegrity,
                Some(ev.seq),
                Some(&ev.name),
                msg,
            ))
        };
        let seq = ev.seq;
        if seq.global < 0 || seq.client < 0 || (seq.global == 0 && seq.client == 0) {
            flag(format!(
                "sequence number {seq} is not after ROOT e0; LiveStore's replay never reads it, so it is not replayed"
            ));
            return true;
        }
        if let Some(prev) = self.prev
            && prev.pair() == seq.pair()
        {
            flag(format!(
                "duplicate sequence number {} (also at rebase generation {}); LiveStore's replay reads a sequence number once, so it is not replayed",
                SeqNum {
                    rebase_generation: 0,
                    ..seq
                },
                prev.rebase_generation
            ));
            return true;
        }
        if seq.client == 0 {
            let want = (self.last_synced_global, 0);
            if ev.parent.pair() != want {
                flag(format!(
                    "broken parent link: the parent is {} but the previous synced event is e{}",
                    ev.parent, self.last_synced_global
                ));
            } else if seq.global != ev.parent.global + 1 {
                flag(format!(
                    "gap in seqNumGlobal: e{} follows e{}",
                    seq.global, ev.parent.global
                ));
            }
            self.last_synced_global = seq.global;
        } else {
            let prev = self.prev.unwrap_or(SeqNum::ROOT);
            if seq.global != prev.global {
                flag(format!(
                    "client-only event out of order: it follows {prev} but carries global number e{}",
                    seq.global
                ));
            } else if ev.parent.pair() != prev.pair() {
                flag(format!(
                    "broken parent link: the parent is {} but the previous event is {prev}",
                    ev.parent
                ));
            }
        }
        self.prev = Some(seq);
        false
    }
}

/// What the replay reports to its observer as it goes.
#[derive(Debug)]
pub enum Step<'a> {
    /// `n` rows of the log have been read (sent every 1024 rows and at the end).
    Read(u64),
    /// An event was applied, changing these rows (none for a no-op).
    Applied {
        /// The event.
        event: &'a Event,
        /// Its row changes, in the order SQLite made them.
        changes: &'a [RowChange],
    },
}

/// Replays `log` through `materializer` into `conn`, which must already hold the state DDL,
/// telling `observe` about progress and every applied event's changes.
pub fn replay(
    log: &EventLog,
    materializer: &mut dyn Materializer,
    conn: &Connection,
    options: &ReplayOptions,
    mut observe: impl FnMut(Step<'_>),
) -> Result<Replayed> {
    conn.set_prepared_statement_cache_capacity(512);
    conn.execute_batch("BEGIN")
        .map_err(|e| Error::scratch("begin the replay transaction", e))?;
    let mut out = Replayed::default();
    let mut exec = Executor {
        split: HashMap::new(),
    };
    let mut chain = Chain::default();
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let capture =
        Capture::install(conn).map_err(|e| Error::scratch("install the change capture", e))?;

    log.for_each(|row| {
        out.events += 1;
        if out.events.is_multiple_of(1024) {
            observe(Step::Read(out.events));
        }
        let ev = match row {
            LogRow::Event(ev) => ev,
            LogRow::Malformed { seq, name, problem } => {
                out.findings.push(Finding::event(
                    FindingClass::LogIntegrity,
                    seq,
                    name.as_deref(),
                    format!("malformed eventlog row, not replayed: {problem}"),
                ));
                return Ok(ControlFlow::Continue(()));
            }
        };
        if chain.check(&ev, &mut out.findings) {
            return Ok(ControlFlow::Continue(()));
        }
        let args: Value = match serde_json::from_str(&ev.args_json) {
            Ok(v) => v,
            Err(e) => {
                out.findings.push(Finding::event(
                    FindingClass::LogIntegrity,
                    Some(ev.seq),
                    Some(&ev.name),
                    format!(
                        "argsJson is not valid JSON ({e}), so the event cannot be replayed: {}",
                        crate::materialize::sql::truncate(&ev.args_json)
                    ),
                ));
                return Ok(ControlFlow::Continue(()));
            }
        };
        let statements = match materializer.materialize(&ev, &args, conn) {
            Outcome::Unknown => {
                let writer_note = if ev.schema_hash == -1 {
                    " (the app that wrote it did not know it either: schemaHash -1)"
                } else {
                    ""
                };
                out.findings.push(Finding::event(
                    FindingClass::UnknownEvent,
                    Some(ev.seq),
                    Some(&ev.name),
                    format!("no materializer for event {:?}{writer_note}", ev.name),
                ));
                return Ok(ControlFlow::Continue(()));
            }
            Outcome::Rejected(r) => {
                out.findings.push(Finding::event(
                    r.class,
                    Some(ev.seq),
                    Some(&ev.name),
                    r.message,
                ));
                return Ok(stop_or_continue(options, &mut out, ev.seq));
            }
            Outcome::Statements(s) => s,
        };
        if statements.is_empty() {
            out.applied += 1;
            observe(Step::Applied {
                event: &ev,
                changes: &[],
            });
            return Ok(ControlFlow::Continue(()));
        }
        run_cached(conn, "SAVEPOINT rehearse_event")?;
        let mut failure = None;
        for (i, st) in statements.iter().enumerate() {
            if let Err(msg) = exec.run(conn, st) {
                failure = Some((i, st, msg));
                break;
            }
        }
        if conn.is_autocommit() {
            // COMMIT, ROLLBACK or an `OR ROLLBACK` conflict in the materializer's SQL ended the
            // replay's transaction; later events could not be rolled back on their own.
            return Err(Error::Definitions {
                path: materializer.describe().into(),
                line: statements.first().and_then(|s| s.line),
                event: Some(ev.name.clone()),
                message: format!(
                    "at {} the statements ended rehearse's replay transaction (COMMIT, ROLLBACK or ON CONFLICT ROLLBACK); a materializer must not control transactions",
                    ev.seq
                ),
            });
        }
        match failure {
            None => {
                run_cached(conn, "RELEASE rehearse_event")?;
                out.applied += 1;
                let changes = capture.take();
                if !changes.is_empty() {
                    let name = names
                        .entry(ev.name.clone())
                        .or_insert_with(|| Arc::from(ev.name.as_str()))
                        .clone();
                    let writer = Writer { seq: ev.seq, name };
                    for c in &changes {
                        out.writers.record(c, &writer);
                    }
                }
                observe(Step::Applied {
                    event: &ev,
                    changes: &changes,
                });
                Ok(ControlFlow::Continue(()))
            }
            Some((i, st, msg)) => {
                run_cached(conn, "ROLLBACK TO rehearse_event")?;
                run_cached(conn, "RELEASE rehearse_event")?;
                capture.discard();
                let which = if statements.len() > 1 {
                    format!("statement {} of {}", i + 1, statements.len())
                } else {
                    "the statement".to_string()
                };
                let origin = st
                    .line
                    .map(|l| format!(" ({}:{l})", materializer.describe()))
                    .unwrap_or_default();
                let mut f = Finding::event(
                    FindingClass::MaterializerError,
                    Some(ev.seq),
                    Some(&ev.name),
                    format!("{which}{origin} failed and the event was rolled back: {msg}"),
                );
                f.statement = Some(i + 1);
                out.findings.push(f);
                Ok(stop_or_continue(options, &mut out, ev.seq))
            }
        }
    })?;
    conn.execute_batch("COMMIT")
        .map_err(|e| Error::scratch("commit the replay", e))?;
    observe(Step::Read(out.events));
    Ok(out)
}

fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.raw_execute())
        .map(|_| ())
        .map_err(|e| Error::scratch(sql.to_string(), e))
}

fn stop_or_continue(options: &ReplayOptions, out: &mut Replayed, seq: SeqNum) -> ControlFlow<()> {
    if options.on_error == OnError::Stop {
        out.stopped_at = Some(seq);
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}
