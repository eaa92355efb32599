//! The replay engine: every event of a log, in order, through a materializer, into a scratch
//! database.
//!
//! The whole replay is one transaction and each event runs inside its own savepoint, so an
//! event whose statements fail is rolled back alone, reported as `materializer-error`, and
//! replay goes on, like a LiveStore rematerialization that survived the bad event. Each event's
//! row changes are captured through SQLite's pre-update hook: they say which event last wrote
//! each row (how a divergent row is blamed), and which later events touched the rows of an
//! event that was not applied (its downstream impact). The log is streamed; what grows is
//! bounded by the state and by the findings, not by the number of events.

pub mod capture;
pub mod changes;
pub(crate) mod execute;
pub(crate) mod integrity;
pub(crate) mod recorded;
pub(crate) mod setup;
pub(crate) mod writers;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::eventlog::{Event, EventLog, LogRow, SeqNum, SyncStatus};
use crate::js::BindValue;
use crate::materialize::{Materializer, Outcome, Pure, Statement, Target};
use crate::replay::capture::{Capture, RowChange};
use crate::replay::execute::Executor;
use crate::replay::integrity::{Disposition, LogChecker};
use crate::replay::writers::{Writer, WriterIndex};
use crate::report::{EventRef, Finding, FindingClass, Findings};
use crate::validate::EventSchemas;
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
    /// JSON Schemas every event's args are validated against before it is materialized.
    pub schemas: Option<Arc<EventSchemas>>,
    /// Also capture the whole rows before and after each change (for comparing an event's
    /// changes with LiveStore's recorded changeset or with another run).
    pub values: bool,
    /// Where the scratch database's temporary file goes (the system's temporary directory when
    /// `None`). It is a file either way, so that memory stays bounded however large the state
    /// grows.
    pub scratch_dir: Option<std::path::PathBuf>,
    /// Do not index which event last wrote each row. That index exists to blame divergent
    /// rows after a comparison and holds an entry per row ever written; runs that only compare
    /// events (bisect, the second run of `--determinism`) save its memory.
    pub no_writers: bool,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Rows read from the log.
    pub events: u64,
    /// Events whose materialization ran to the end (no-op events included).
    pub applied: u64,
    /// Findings, in log order (spilled to disk when there are many).
    pub findings: Findings,
    /// Where `--on-error stop` stopped the replay.
    pub stopped_at: Option<SeqNum>,
    /// Last writer of each row.
    pub writers: WriterIndex,
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
        /// Its row changes, in the order SQLite made them (with values when
        /// [`ReplayOptions::values`] asks for them).
        changes: &'a [RowChange],
    },
    /// An event was not applied (unknown, rejected, rolled back, or out of place in the log).
    NotApplied {
        /// The event.
        event: &'a Event,
        /// The findings that say why.
        findings: &'a [Finding],
        /// The rows it meant to change, where they could be read from its statements.
        intended: &'a [(Arc<str>, Vec<SqlValue>)],
    },
}

/// What one row of the log came to.
#[derive(Debug)]
pub struct EventOutcome {
    /// The event (none for a malformed row).
    pub event: Option<Event>,
    /// Applied or not.
    pub result: EventResult,
    /// The findings this row produced, as indices into the replay's findings.
    pub findings: std::ops::Range<usize>,
    /// `--on-error stop` asks to stop here.
    pub stop: bool,
}

/// Whether an event was applied.
#[derive(Debug)]
pub enum EventResult {
    /// Skipped, unknown, rejected or rolled back; the findings say why.
    NotApplied,
    /// Applied, with its row changes in the order SQLite made them.
    Applied {
        /// Row changes.
        changes: Vec<RowChange>,
    },
}

/// Later events listed under one quarantined event, at most.
const MAX_DOWNSTREAM: usize = 100;
/// Rows of one quarantined statement's target that are followed, at most.
const MAX_TARGET_ROWS: usize = 10_000;

/// Rows touched (or meant to be touched) by events that were not applied, so that later events
/// touching them can be listed under the finding about the event.
#[derive(Default)]
struct Quarantine {
    rows: HashMap<(Arc<str>, Vec<u8>), Vec<usize>>,
    overflow: HashMap<usize, u64>,
    /// Findings whose list of later events is full, with the last event listed: counted
    /// without reading the finding again (it may be on disk).
    full: HashMap<usize, SeqNum>,
}

impl Quarantine {
    fn add(&mut self, finding: usize, rows: Vec<(Arc<str>, Vec<SqlValue>)>) {
        for (table, key) in rows {
            let slot = self
                .rows
                .entry((table, SqlValue::encode_key(&key)))
                .or_default();
            if !slot.contains(&finding) {
                slot.push(finding);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first quarantined finding that owns one of `rows`.
    fn owner<'k>(
        &self,
        rows: impl Iterator<Item = (&'k Arc<str>, &'k [SqlValue])>,
    ) -> Option<usize> {
        rows.filter_map(|(table, key)| {
            self.rows
                .get(&(table.clone(), SqlValue::encode_key(key)))
                .and_then(|owners| owners.first().copied())
        })
        .min()
    }

    /// Lists `ev` under every quarantined event whose rows it changed or named.
    fn touched<'k>(
        &mut self,
        findings: &mut Findings,
        ev: &Event,
        rows: impl Iterator<Item = (&'k Arc<str>, &'k [SqlValue])>,
    ) -> Result<()> {
        for (table, key) in rows {
            let Some(owners) = self.rows.get(&(table.clone(), SqlValue::encode_key(key))) else {
                continue;
            };
            for &i in owners {
                if let Some(&last) = self.full.get(&i) {
                    if last != ev.seq {
                        *self.overflow.entry(i).or_default() += 1;
                    }
                    continue;
                }
                let mut full = None;
                findings.update(i, |f| {
                    if f.downstream.iter().rev().take(1).any(|d| d.seq() == ev.seq)
                        || f.seq() == Some(ev.seq)
                    {
                        return;
                    }
                    if f.downstream.len() >= MAX_DOWNSTREAM {
                        full = f.downstream.last().map(EventRef::seq);
                        return;
                    }
                    f.downstream.push(EventRef::new(ev.seq, ev.name.clone()));
                })?;
                if let Some(last) = full {
                    self.full.insert(i, last);
                    *self.overflow.entry(i).or_default() += 1;
                }
            }
        }
        Ok(())
    }

    fn finish(&self, findings: &mut Findings) -> Result<()> {
        for (&i, n) in &self.overflow {
            findings.update(i, |f| {
                f.message
                    .push_str(&format!(" ({n} more later events touched its rows)"))
            })?;
        }
        Ok(())
    }
}

/// Applied events at most between two savepoints.
const BATCH_EVENTS: usize = 128;
/// Bytes of SQL and bind values kept at most for running a batch again.
const BATCH_BYTES: usize = 1 << 20;

/// The savepoint that lets a failing event be rolled back alone, shared by a batch of events.
///
/// A savepoint per event costs a copy of every page the event touches, a fifth of the replay;
/// one per batch copies a page once for all the batch's events. When an event fails after it
/// changed something (a later statement fails, or SQLite could not back out the failing one),
/// the batch is rolled back and its earlier events' statements are run again, which leaves
/// the state exactly as it was before the failing event: a failing event costs at most a
/// batch's statements run twice, and the batch starts afresh after it.
#[derive(Default)]
struct Batch {
    /// Whether the savepoint is open.
    open: bool,
    /// The statements of the applied events since it was opened, in order.
    applied: Vec<Vec<Statement>>,
    /// Their SQL and bind values' size.
    bytes: usize,
}

impl Batch {
    /// Opens the savepoint, unless it is open.
    fn open(&mut self, conn: &Connection) -> Result<()> {
        if !self.open {
            run_cached(conn, "SAVEPOINT rehearse_batch")?;
            self.open = true;
        }
        Ok(())
    }

    /// Keeps an applied event's statements; ends the batch when it is full.
    fn applied(&mut self, conn: &Connection, statements: Vec<Statement>) -> Result<()> {
        self.bytes += statements.iter().map(statement_bytes).sum::<usize>();
        self.applied.push(statements);
        if self.applied.len() >= BATCH_EVENTS || self.bytes >= BATCH_BYTES {
            self.release(conn)?;
        }
        Ok(())
    }

    /// Ends the batch: its events stay applied.
    fn release(&mut self, conn: &Connection) -> Result<()> {
        if self.open {
            run_cached(conn, "RELEASE rehearse_batch")?;
            self.open = false;
        }
        self.applied.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// The bytes of an event's SQL and bind values, roughly.
fn statement_bytes(st: &Statement) -> usize {
    let bind = |v: &BindValue| match v {
        BindValue::Text(t) => t.len() + 16,
        BindValue::Blob(b) => b.len() + 16,
        _ => 16,
    };
    st.sql.len()
        + match &st.binds {
            crate::materialize::Binds::None => 0,
            crate::materialize::Binds::Positional(v) => v.iter().map(bind).sum(),
            crate::materialize::Binds::Named(v) => v.iter().map(|(n, v)| n.len() + bind(v)).sum(),
        }
}

/// Replays events one at a time into a scratch database: the engine behind [`replay`], and
/// what drives two replays in lockstep (differential replay, determinism checks).
pub struct Replayer<'a> {
    conn: &'a Connection,
    materializer: &'a mut dyn Materializer,
    options: &'a ReplayOptions,
    exec: Executor,
    checker: LogChecker,
    capture: Capture<'a>,
    batch: Batch,
    /// Run without savepoints ([`Replayer::speculate`]).
    speculate: bool,
    /// Speculation failed: an event failed after it changed something.
    start_over: bool,
    names: HashMap<String, Arc<str>>,
    quarantine: Quarantine,
    /// The rows the current event meant to change, when it was not applied.
    intended: Vec<(Arc<str>, Vec<SqlValue>)>,
    out: Replayed,
}

impl<'a> Replayer<'a> {
    /// Starts a replay into `conn`, which must already hold the state DDL.
    pub fn new(
        conn: &'a Connection,
        materializer: &'a mut dyn Materializer,
        options: &'a ReplayOptions,
    ) -> Result<Replayer<'a>> {
        conn.set_prepared_statement_cache_capacity(512);
        let capture = Capture::install(conn, options.values)
            .map_err(|e| Error::scratch("install the change capture", e))?;
        run_cached(conn, "BEGIN")?;
        Ok(Replayer {
            conn,
            materializer,
            options,
            exec: Executor::default(),
            checker: LogChecker::default(),
            capture,
            batch: Batch::default(),
            speculate: false,
            start_over: false,
            names: HashMap::new(),
            quarantine: Quarantine::default(),
            intended: Vec::new(),
            out: Replayed {
                // Beside the scratch database: where the user said there is room.
                writers: WriterIndex::new(options.scratch_dir.clone()),
                findings: Findings::in_dir(options.scratch_dir.clone()),
                ..Replayed::default()
            },
        })
    }

    /// Replays one row of the log.
    pub fn event(&mut self, row: LogRow) -> Result<EventOutcome> {
        self.event_prepared(row, None)
    }

    /// [`Replayer::event`], with the event's args parsed and its statements made ahead.
    fn event_prepared(&mut self, row: LogRow, prepared: Option<Prepared>) -> Result<EventOutcome> {
        self.out.events += 1;
        self.intended.clear();
        // Between events, so that an event's findings stay in memory together.
        self.out.findings.spill_if_full();
        let first = self.out.findings.len();
        let (event, result, stop) = match row {
            LogRow::Event(ev) => {
                let (result, stop) = self.row(&ev, prepared)?;
                (Some(ev), result, stop)
            }
            LogRow::Malformed { seq, name, problem } => {
                self.out.findings.push(Finding::event(
                    FindingClass::LogIntegrity,
                    seq,
                    name.as_deref(),
                    format!("malformed eventlog row, not replayed: {problem}"),
                ));
                (None, EventResult::NotApplied, false)
            }
        };
        Ok(EventOutcome {
            event,
            result,
            findings: first..self.out.findings.len(),
            stop,
        })
    }

    /// The findings so far.
    pub fn findings(&self) -> &Findings {
        &self.out.findings
    }

    /// The scratch database.
    pub fn connection(&self) -> &Connection {
        self.conn
    }

    /// Ends the replay: the end-of-log checks, and the transaction committed.
    pub fn finish(mut self, sync: Option<&SyncStatus>) -> Result<Replayed> {
        self.checker.finish(sync, &mut self.out.findings);
        self.quarantine.finish(&mut self.out.findings)?;
        run_cached(self.conn, "COMMIT")?;
        Ok(self.out)
    }

    /// Runs events without savepoints: an event that fails after it changed something cannot
    /// be rolled back, so the replay stops there and [`Replayer::must_start_over`] says so. For
    /// a materializer that answers from the event alone, a replay that starts over with
    /// savepoints gives exactly the same result; one without failures saves the savepoints'
    /// copies of every page the events touch (a fifth of the replay on a large store).
    pub(crate) fn speculate(&mut self) {
        self.speculate = true;
    }

    /// Whether speculation failed and the replay must start over, with savepoints, in a new
    /// scratch database.
    pub(crate) fn must_start_over(&self) -> bool {
        self.start_over
    }

    /// Records where `--on-error stop` stopped.
    pub fn stopped_at(&mut self, seq: SeqNum) {
        self.out.stopped_at = Some(seq);
    }
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
    begin_log(log, materializer)?;
    let mut r = Replayer::new(conn, materializer, options)?;
    r.drive(log, |r, row, prepared| {
        r.replay_row(row, prepared, &mut observe)
    })?;
    let events = r.out.events;
    let out = r.finish(log.sync_status())?;
    observe(Step::Read(events));
    Ok(out)
}

/// One event as replayed, owned, for a consumer on another thread: what [`Step::Applied`] and
/// [`Step::NotApplied`] lend.
#[derive(Debug)]
pub(crate) enum Done {
    /// An applied event and its row changes.
    Applied {
        /// The event.
        event: Event,
        /// Its row changes, in the order SQLite made them.
        changes: Vec<RowChange>,
    },
    /// An event that was not applied.
    NotApplied {
        /// The event.
        event: Event,
        /// The class of the finding that kept it out, where one did.
        why: Option<FindingClass>,
        /// The rows it meant to change.
        intended: Vec<(Arc<str>, Vec<SqlValue>)>,
    },
}

/// The class of the finding that kept an event out: the last one made for it (a warning about
/// who wrote the event comes first).
pub(crate) fn why_not_applied(findings: &[Finding]) -> Option<FindingClass> {
    findings
        .iter()
        .rev()
        .find(|f| f.class != FindingClass::WriterUnknown)
        .or(findings.last())
        .map(|f| f.class)
}

/// [`replay`], handing every event over by value (`done`, with the findings of an event that
/// was not applied) and the rows read so far to
/// `progress` (every 1024 rows and at the end), so that its changes can be consumed on another
/// thread without a copy; with `speculate`, without savepoints ([`Replayer::speculate`]):
/// `None` when the replay must start over with them.
pub(crate) fn replay_owned(
    log: &EventLog,
    materializer: &mut dyn Materializer,
    conn: &Connection,
    options: &ReplayOptions,
    speculate: bool,
    mut progress: impl FnMut(u64),
    mut done: impl FnMut(Done, &[Finding]),
) -> Result<Option<Replayed>> {
    begin_log(log, materializer)?;
    let mut r = Replayer::new(conn, materializer, options)?;
    if speculate {
        r.speculate();
    }
    r.drive(log, |r, row, prepared| {
        let outcome = r.event_prepared(row, prepared)?;
        if r.must_start_over() {
            return Ok(ControlFlow::Break(()));
        }
        if r.out.events.is_multiple_of(1024) {
            progress(r.out.events);
        }
        let stop = outcome.stop;
        if let (true, Some(ev)) = (stop, &outcome.event) {
            r.stopped_at(ev.seq);
        }
        match (outcome.event, outcome.result) {
            (Some(event), EventResult::Applied { changes }) => {
                done(Done::Applied { event, changes }, &[])
            }
            (Some(event), EventResult::NotApplied) => {
                let findings = r.out.findings.recent(outcome.findings.start);
                done(
                    Done::NotApplied {
                        event,
                        why: why_not_applied(findings),
                        intended: std::mem::take(&mut r.intended),
                    },
                    findings,
                );
            }
            (None, _) => {}
        }
        Ok(if stop {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    if r.must_start_over() {
        return Ok(None);
    }
    let events = r.out.events;
    let out = r.finish(log.sync_status())?;
    progress(events);
    Ok(Some(out))
}

/// Tells the materializer a log's replay begins, and how many events the log holds. The count
/// is only a hint: a log too damaged to count is still streamed, and its damage reported where
/// the rows are read.
pub fn begin_log(log: &EventLog, materializer: &mut dyn Materializer) -> Result<()> {
    materializer.begin_log()?;
    match log.count() {
        Ok(n) => materializer.expect_events(n),
        Err(_) => Ok(()),
    }
}

/// Rows announced to the materializer at a time.
const LOOKAHEAD: usize = 256;

/// What [`read_ahead`] hands on: rows to announce, or the next row to replay.
pub enum Ahead<'a> {
    /// The next chunk of rows, before any of them is replayed.
    Announce(&'a [LogRow]),
    /// The next row to replay, announced before.
    Row(LogRow),
}

/// Reads `log` in chunks, each announced one chunk before its rows are handed on one by one:
/// bounded buffers that let a materializer behind a pipe work on the next chunk while this one
/// is applied, without a round trip per event. Stops when `f` breaks.
pub fn read_ahead(
    log: &EventLog,
    mut f: impl FnMut(Ahead<'_>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut reading: Vec<LogRow> = Vec::with_capacity(LOOKAHEAD);
    let mut announced: Vec<LogRow> = Vec::with_capacity(LOOKAHEAD);
    let mut stopped = false;
    log.for_each(|row| {
        reading.push(row);
        if reading.len() == LOOKAHEAD {
            if f(Ahead::Announce(&reading))?.is_break() {
                stopped = true;
                return Ok(ControlFlow::Break(()));
            }
            for row in announced.drain(..) {
                if f(Ahead::Row(row))?.is_break() {
                    stopped = true;
                    return Ok(ControlFlow::Break(()));
                }
            }
            std::mem::swap(&mut reading, &mut announced);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if stopped {
        return Ok(());
    }
    if !reading.is_empty() && f(Ahead::Announce(&reading))?.is_break() {
        return Ok(());
    }
    for row in announced.drain(..).chain(reading.drain(..)) {
        if f(Ahead::Row(row))?.is_break() {
            break;
        }
    }
    Ok(())
}

/// An event's args parsed and the materializer's answer made ahead, on the reading thread.
pub(crate) struct Prepared {
    /// The args, or why they are not JSON.
    args: std::result::Result<Value, String>,
    /// The answer, where the args parsed.
    outcome: Option<Outcome>,
}

/// Rows read ahead and handed over at a time.
const PREPARED_BATCH: usize = 128;
/// Batches in flight before the reading thread waits.
const PREPARED_IN_FLIGHT: usize = 4;

/// Reads `log` on another thread, which parses each event's args and asks `pure` for its
/// statements there, and hands the rows to `f` in order; stops when `f` breaks. Where the log
/// cannot be read on, `f` has had every row before, as with [`EventLog::for_each`].
fn read_prepared(
    log: &EventLog,
    pure: Box<dyn Pure>,
    mut f: impl FnMut(LogRow, Option<Prepared>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let reader = log.reader();
    std::thread::scope(|s| {
        let (tx, rx) =
            std::sync::mpsc::sync_channel::<Vec<(LogRow, Option<Prepared>)>>(PREPARED_IN_FLIGHT);
        let reading = s.spawn(move || {
            let mut batch = Vec::with_capacity(PREPARED_BATCH);
            let read = reader.for_each(|row| {
                let prepared = match &row {
                    LogRow::Event(ev) => {
                        let args = crate::js::parse_json(&ev.args_json).map_err(|e| e.to_string());
                        let outcome = args
                            .as_ref()
                            .ok()
                            .and_then(|args| pure.materialize(ev, args));
                        Some(Prepared { args, outcome })
                    }
                    LogRow::Malformed { .. } => None,
                };
                batch.push((row, prepared));
                if batch.len() == PREPARED_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(PREPARED_BATCH));
                    if tx.send(full).is_err() {
                        // The replay stopped.
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            });
            // Also when the log could not be read on: the rows before the damage are replayed
            // before the error is told.
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            read.map(|_| ())
        });
        let mut replayed = Ok(ControlFlow::Continue(()));
        'rows: for batch in &rx {
            for (row, prepared) in batch {
                replayed = f(row, prepared);
                if !matches!(replayed, Ok(ControlFlow::Continue(()))) {
                    break 'rows;
                }
            }
        }
        drop(rx);
        let read = match reading.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match replayed? {
            // Rows read beyond where the replay stopped do not count.
            ControlFlow::Break(()) => Ok(()),
            ControlFlow::Continue(()) => read,
        }
    })
}

impl Replayer<'_> {
    /// Reads `log` and hands every row to `each` in order: read and prepared on another
    /// thread where the materializer answers from the event alone ([`Materializer::pure`]),
    /// otherwise read here with chunks announced ahead ([`read_ahead`]).
    fn drive(
        &mut self,
        log: &EventLog,
        mut each: impl FnMut(&mut Self, LogRow, Option<Prepared>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        match self.materializer.pure() {
            Some(pure) => read_prepared(log, pure, |row, prepared| each(self, row, prepared)),
            None => read_ahead(log, |item| match item {
                Ahead::Announce(rows) => self.announce(rows).map(ControlFlow::Continue),
                Ahead::Row(row) => each(self, row, None),
            }),
        }
    }

    /// Tells the materializer about the events of a chunk it will be asked about.
    pub fn announce(&mut self, chunk: &[LogRow]) -> Result<()> {
        let events: Vec<&Event> = chunk
            .iter()
            .filter_map(|row| match row {
                LogRow::Event(ev) => Some(ev),
                LogRow::Malformed { .. } => None,
            })
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        self.materializer.lookahead(&events)
    }

    /// Replays one row, telling `observe`; breaks when the replay must stop.
    fn replay_row(
        &mut self,
        row: LogRow,
        prepared: Option<Prepared>,
        observe: &mut impl FnMut(Step<'_>),
    ) -> Result<ControlFlow<()>> {
        let outcome = self.event_prepared(row, prepared)?;
        if self.out.events.is_multiple_of(1024) {
            observe(Step::Read(self.out.events));
        }
        match (&outcome.event, &outcome.result) {
            (Some(ev), EventResult::Applied { changes }) => {
                observe(Step::Applied { event: ev, changes })
            }
            (Some(ev), EventResult::NotApplied) => observe(Step::NotApplied {
                event: ev,
                findings: self.out.findings.recent(outcome.findings.start),
                intended: &self.intended,
            }),
            (None, _) => {}
        }
        if outcome.stop {
            if let Some(ev) = &outcome.event {
                self.stopped_at(ev.seq);
            }
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    fn row(&mut self, ev: &Event, prepared: Option<Prepared>) -> Result<(EventResult, bool)> {
        let (parsed, mut outcome) = match prepared {
            Some(p) => (Some(p.args), p.outcome),
            None => (None, None),
        };
        if self.checker.check(ev, &mut self.out.findings) == Disposition::Skip {
            return Ok((EventResult::NotApplied, false));
        }
        if ev.schema_hash == -1 {
            self.finding(
                FindingClass::WriterUnknown,
                ev,
                format!(
                    "the app that wrote this event did not know {:?} (schemaHash -1): LiveStore stored it without materializing it, so the live state never had its effect",
                    ev.name
                ),
            );
        }
        let depth = crate::js::json_depth(&ev.args_json);
        if depth > crate::js::MAX_ARGS_DEPTH {
            self.finding(
                FindingClass::InvalidArgs,
                ev,
                format!(
                    "the args nest {depth} levels deep, over the limit of {}; not replayed: {}",
                    crate::js::MAX_ARGS_DEPTH,
                    crate::text::truncate(&ev.args_json)
                ),
            );
            return Ok((EventResult::NotApplied, self.stops()));
        }
        let parsed = parsed
            .unwrap_or_else(|| crate::js::parse_json(&ev.args_json).map_err(|e| e.to_string()));
        let args: Value = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.finding(
                    FindingClass::LogIntegrity,
                    ev,
                    format!(
                        "argsJson is not valid JSON ({e}), so the event cannot be replayed: {}",
                        crate::text::truncate(&ev.args_json)
                    ),
                );
                return Ok((EventResult::NotApplied, false));
            }
        };
        if let Some(schemas) = &self.options.schemas {
            let errors = schemas.validate(&ev.name, &args);
            if let Some(first) = errors.first() {
                let more = match errors.len() {
                    1 => String::new(),
                    n => format!(" (and {} more violations)", n - 1),
                };
                let at = if first.pointer.is_empty() {
                    "the args".to_string()
                } else {
                    format!("args{}", first.pointer)
                };
                let what = match &first.value {
                    Some(value) => format!("{at} = {value} breaks"),
                    None => format!("{at} is missing, which breaks"),
                };
                let i = self.finding(
                    FindingClass::InvalidArgs,
                    ev,
                    format!(
                        "{what} the event's schema ({}): {}{more}; not replayed",
                        first.keyword, first.message
                    ),
                );
                self.out.findings.update(i, |f| {
                    f.pointer = Some(first.pointer.clone());
                    f.keyword = Some(first.keyword.clone());
                    f.value = first.value.clone();
                })?;
                // What it would have done, so later events on the same rows can be listed.
                if let Outcome::Statements(sts) = self.materialize(ev, &args, &mut outcome)? {
                    let rows = self.target_rows(&sts);
                    self.quarantine_rows(i, ev, rows)?;
                }
                return Ok((EventResult::NotApplied, self.stops()));
            }
        }
        let statements = match self.materialize(ev, &args, &mut outcome)? {
            Outcome::Unknown => {
                let note = if self
                    .options
                    .schemas
                    .as_ref()
                    .is_some_and(|s| s.has(&ev.name))
                {
                    " (its args schema is known, but nothing says what it changes)"
                } else {
                    ""
                };
                self.finding(
                    FindingClass::UnknownEvent,
                    ev,
                    format!("no materializer for event {:?}{note}", ev.name),
                );
                return Ok((EventResult::NotApplied, false));
            }
            Outcome::Rejected(r) => {
                let i = self.finding(r.class, ev, r.message);
                if let Some(pointer) = r.pointer {
                    // The failing value, where the pointer leads to one (not to a missing field).
                    let value = args
                        .pointer(&pointer)
                        .map(|v| crate::text::truncate(&crate::js::stringify(v)));
                    self.out.findings.update(i, |f| {
                        f.value = value;
                        f.pointer = Some(pointer);
                    })?;
                }
                return Ok((EventResult::NotApplied, self.stops()));
            }
            Outcome::Statements(s) => s,
        };
        if statements.is_empty() {
            self.out.applied += 1;
            return Ok((
                EventResult::Applied {
                    changes: Vec::new(),
                },
                false,
            ));
        }
        let result = self.apply(ev, &statements)?;
        if let (EventResult::Applied { .. }, _) = result
            && !self.speculate
        {
            self.batch.applied(self.conn, statements)?;
        }
        Ok(result)
    }

    /// The materializer's answer for `ev`: the one made ahead, if any.
    fn materialize(
        &mut self,
        ev: &Event,
        args: &Value,
        ahead: &mut Option<Outcome>,
    ) -> Result<Outcome> {
        match ahead.take() {
            Some(outcome) => Ok(outcome),
            None => {
                if self.materializer.writes_while_materializing() {
                    // What it writes now must stay, as it did with a savepoint per event: the
                    // batch ends first, so that a later event's failure cannot roll it back
                    // (running the batch's statements again would not write it again).
                    self.batch.release(self.conn)?;
                }
                self.materializer.materialize(ev, args, self.conn)
            }
        }
    }

    /// Runs an event's statements; rolls it back and reports it if one fails.
    fn apply(&mut self, ev: &Event, statements: &[Statement]) -> Result<(EventResult, bool)> {
        // Rows this event names outright: an update of a row a quarantined event never wrote
        // changes nothing, yet it is exactly what that event spoiled.
        let named = if self.quarantine.is_empty() {
            Vec::new()
        } else {
            self.named_rows(statements)
        };
        if !self.speculate {
            self.batch.open(self.conn)?;
        }
        let mut failure = None;
        let mut matched_nothing = Vec::new();
        for (i, st) in statements.iter().enumerate() {
            match self.exec.run(self.conn, st) {
                Ok(ran) => {
                    if ran.matched_nothing {
                        matched_nothing.push(i);
                    }
                }
                Err(msg) => {
                    failure = Some((i, msg));
                    break;
                }
            }
        }
        if self.conn.is_autocommit() {
            // COMMIT, ROLLBACK or an `OR ROLLBACK` conflict in the materializer's SQL ended the
            // replay's transaction; later events could not be rolled back on their own.
            return Err(Error::Definitions {
                path: match statements.first().and_then(|s| s.file.as_deref()) {
                    Some(file) => file.to_path_buf(),
                    None => self.materializer.describe().into(),
                },
                line: statements.first().and_then(|s| s.line),
                event: Some(ev.name.clone()),
                message: format!(
                    "at {} the statements ended rehearse's replay transaction (COMMIT, ROLLBACK or ON CONFLICT ROLLBACK); a materializer must not control transactions",
                    ev.seq
                ),
            });
        }
        let Some((i, msg)) = failure else {
            let changes = self.capture.take();
            self.out.applied += 1;
            if !changes.is_empty() && !self.options.no_writers {
                let writer = self.writer(ev);
                for c in &changes {
                    self.out.writers.record(c, &writer)?;
                }
            }
            if !self.quarantine.is_empty() {
                let rows = changes
                    .iter()
                    .map(|c| (&c.table, c.key.as_slice()))
                    .chain(named.iter().map(|(t, k)| (t, k.as_slice())));
                self.quarantine.touched(&mut self.out.findings, ev, rows)?;
            }
            if let Some(&first) = matched_nothing.first() {
                let which: Vec<String> = matched_nothing
                    .iter()
                    .map(|&i| self.statement_label(statements, i))
                    .collect();
                let sql = crate::text::truncate(statements[first].sql.trim());
                let i = self.finding(
                    FindingClass::ZeroRows,
                    ev,
                    format!(
                        "{} matched no row (`{sql}`): the rows it updates or deletes do not exist at this point of the log",
                        which.join(", ")
                    ),
                );
                // Matching nothing where an event that was not applied meant to write is that
                // event's consequence, not a problem of its own.
                let cause = match self
                    .quarantine
                    .owner(named.iter().map(|(t, k)| (t, k.as_slice())))
                {
                    Some(owner) => self.out.findings.get(owner)?.and_then(|f| f.as_cause()),
                    None => None,
                };
                self.out.findings.update(i, |f| {
                    f.statement = Some(first + 1);
                    f.caused_by = cause;
                })?;
            }
            return Ok((EventResult::Applied { changes }, false));
        };
        // Rows the event changed before it failed, then the rows its failing and remaining
        // statements meant to change, read in the state before the event.
        let touched: Vec<(Arc<str>, Vec<SqlValue>)> = self
            .capture
            .take()
            .into_iter()
            .map(|c| (c.table, c.key))
            .collect();
        // SQLite has backed out the failing statement; the event's earlier changes, if any,
        // go with the batch's, and the batch's events before it are run again.
        let undone = i == 0 && self.exec.undone_by_sqlite(self.conn, &statements[0]);
        if !undone {
            if self.speculate {
                self.start_over = true;
                return Ok((EventResult::NotApplied, true));
            }
            self.restore(ev)?;
        }
        self.capture.discard();
        let mut rows = touched;
        rows.extend(self.target_rows(&statements[i..]));
        let label = self.statement_label(statements, i);
        let f = self.finding(
            FindingClass::MaterializerError,
            ev,
            format!("{label} failed and the event was rolled back: {msg}"),
        );
        self.out.findings.update(f, |f| f.statement = Some(i + 1))?;
        self.quarantine_rows(f, ev, rows)?;
        Ok((EventResult::NotApplied, self.stops()))
    }

    /// Undoes the changes a failing event made before it failed: the batch is rolled back
    /// and its earlier events' statements run again, then the batch ends.
    fn restore(&mut self, failed: &Event) -> Result<()> {
        run_cached(self.conn, "ROLLBACK TO rehearse_batch")?;
        for statements in &self.batch.applied {
            for st in statements {
                if let Err(msg) = self.exec.run(self.conn, st) {
                    return Err(Error::Definitions {
                        path: self.materializer.describe().into(),
                        line: st.line,
                        event: Some(failed.name.clone()),
                        message: format!(
                            "after {} failed, the statements of an event before it were run again to roll it back, and failed where they had run: {msg}",
                            failed.seq
                        ),
                    });
                }
            }
        }
        // Their changes were captured the first time.
        self.capture.discard();
        self.batch.release(self.conn)
    }

    fn statement_label(&self, statements: &[Statement], i: usize) -> String {
        let which = if statements.len() > 1 {
            format!("statement {} of {}", i + 1, statements.len())
        } else {
            "the statement".to_string()
        };
        let origin = statements[i]
            .line
            .map(|l| match &statements[i].file {
                Some(file) => format!(" ({}:{l})", file.display()),
                None => format!(" ({}:{l})", self.materializer.describe()),
            })
            .unwrap_or_default();
        format!("{which}{origin}")
    }

    fn writer(&mut self, ev: &Event) -> Writer {
        let name = self
            .names
            .entry(ev.name.clone())
            .or_insert_with(|| Arc::from(ev.name.as_str()))
            .clone();
        Writer { seq: ev.seq, name }
    }

    /// Follows the rows of an event that was not applied: later events on them are listed
    /// under its finding, and a row missing from the replay is blamed on it.
    fn quarantine_rows(
        &mut self,
        finding: usize,
        ev: &Event,
        rows: Vec<(Arc<str>, Vec<SqlValue>)>,
    ) -> Result<()> {
        if !self.options.no_writers {
            let writer = self.writer(ev);
            for (table, key) in &rows {
                self.out.writers.intend(table, key, &writer)?;
            }
        }
        self.intended.extend(rows.iter().cloned());
        self.quarantine.add(finding, rows);
        Ok(())
    }

    /// The rows the statements name outright by their key (an insert's values, an update's or
    /// delete's `key = value` conditions), without reading the database.
    fn named_rows(&self, statements: &[Statement]) -> Vec<(Arc<str>, Vec<SqlValue>)> {
        let targets: Vec<_> = statements.iter().map(Statement::target).collect();
        self.named_rows_of(&targets)
    }

    fn named_rows_of(&self, targets: &[Option<Cow<'_, Target>>]) -> Vec<(Arc<str>, Vec<SqlValue>)> {
        let mut rows = Vec::new();
        for target in targets {
            let (table, values) = match target.as_deref() {
                Some(Target::Row { table, values }) => (table, values),
                Some(Target::Where { table, equals, .. }) => (table, equals),
                None => continue,
            };
            let Some((name, key_cols)) = self.capture.key_of(table) else {
                continue;
            };
            let key: Option<Vec<SqlValue>> = key_cols
                .iter()
                .map(|k| {
                    values
                        .iter()
                        .find(|(c, _)| c == k)
                        .map(|(_, v)| to_value(v))
                })
                .collect();
            if let Some(key) = key.filter(|k| !k.is_empty()) {
                rows.push((name, key));
            }
        }
        rows
    }

    /// The keys of the rows the statements mean to change: the rows they name, and the rows
    /// their `WHERE` clauses select in the current state.
    fn target_rows(&self, statements: &[Statement]) -> Vec<(Arc<str>, Vec<SqlValue>)> {
        // A target read from SQL text is parsed once, for both passes.
        let targets: Vec<_> = statements.iter().map(Statement::target).collect();
        let mut rows = self.named_rows_of(&targets);
        for target in &targets {
            match target.as_deref() {
                None | Some(Target::Row { .. }) => {}
                Some(Target::Where {
                    table,
                    clause,
                    binds,
                    ..
                }) => {
                    let Some((name, key_cols)) = self.capture.key_of(table) else {
                        continue;
                    };
                    let cols = if key_cols.is_empty() {
                        "rowid".to_string()
                    } else {
                        key_cols
                            .iter()
                            .map(|c| crate::sqlite::quote_ident(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let sql =
                        format!("SELECT {cols} FROM '{table}' {clause} LIMIT {MAX_TARGET_ROWS}");
                    let width = key_cols.len().max(1);
                    let found: rusqlite::Result<Vec<Vec<SqlValue>>> = (|| {
                        let mut stmt = self.conn.prepare(&sql)?;
                        crate::materialize::binds::bind(
                            &mut stmt,
                            &crate::materialize::Binds::Positional(binds.clone()),
                        )?;
                        let mut out = Vec::new();
                        let mut q = stmt.raw_query();
                        while let Some(row) = q.next()? {
                            out.push(
                                (0..width)
                                    .map(|i| row.get_ref(i).map(SqlValue::from))
                                    .collect::<rusqlite::Result<_>>()?,
                            );
                        }
                        Ok(out)
                    })();
                    // A target that cannot be read (the statement itself is broken) has no rows.
                    for key in found.unwrap_or_default() {
                        rows.push((name.clone(), key));
                    }
                }
            }
        }
        rows
    }

    fn finding(&mut self, class: FindingClass, ev: &Event, message: String) -> usize {
        self.out
            .findings
            .push(Finding::event(class, Some(ev.seq), Some(&ev.name), message))
    }

    fn stops(&self) -> bool {
        self.options.on_error == OnError::Stop
    }
}

fn to_value(v: &BindValue) -> SqlValue {
    match v {
        BindValue::Null | BindValue::Unbound => SqlValue::Null,
        BindValue::Integer(i) => SqlValue::Integer(*i),
        // A whole double bound to an INTEGER column is stored as an integer.
        BindValue::Real(r) if r.fract() == 0.0 && r.abs() < 9.2e18 => SqlValue::Integer(*r as i64),
        BindValue::Real(r) => SqlValue::Real(*r),
        BindValue::Text(t) => SqlValue::Text(t.as_bytes().to_vec()),
        BindValue::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.raw_execute())
        .map(|_| ())
        .map_err(|e| Error::scratch(sql.to_string(), e))
}

#[cfg(test)]
mod tests;
