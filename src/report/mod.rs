//! The report: what rehearse found, in a fixed vocabulary that people and CI both read.
//!
//! This is the output contract every later stage builds on. The JSON form (`--format json`) is
//! versioned ([`REPORT_VERSION`]) and described by `schemas/report.schema.json`; field names are
//! camelCase like LiveStore's own (`seqNumGlobal`). Everything in it is derived from the inputs
//! alone (no clock, no absolute paths, stable order), so the same inputs give the same bytes.

pub mod baseline;
mod codec;
pub mod findings;

pub use findings::Findings;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::SeqNum;
use crate::value::SqlValue;

/// Version of the JSON report format.
pub const REPORT_VERSION: u32 = 1;

/// The kinds of problem rehearse reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    /// A structural problem in the log: duplicate or out-of-order sequence numbers, broken
    /// parent links, `argsJson` that is not JSON, a row with wrong column types.
    LogIntegrity,
    /// No materializer definition for the event's name.
    UnknownEvent,
    /// The event's args cannot be decoded or encoded as the definition needs.
    InvalidArgs,
    /// The materializer's statements failed; the event was rolled back.
    MaterializerError,
    /// The replayed state differs from the recorded snapshot.
    StateDivergence,
    /// The app that wrote the event did not know it (`schemaHash = -1`, FORMAT.md §3): it was
    /// stored but never materialized live. A warning by default.
    WriterUnknown,
    /// An update or delete matched no row: invisible to LiveStore, often a sign of a bad event
    /// (an update after a hard delete). A warning by default.
    ZeroRows,
    /// The first event whose changes differ from the changeset LiveStore recorded for it.
    FirstDivergence,
    /// Two replays of the same event changed different rows or values.
    Nondeterministic,
    /// The recorded state could not be held against the replay (no state file, or none that
    /// rehearse recognised): nothing was compared, so nothing passed.
    ComparisonSkipped,
    /// The state file was left by a rebuild that did not finish (LiveStore 0.5's
    /// `__livestore_rebuild` without a completion record): it is not to be trusted.
    UnfinishedRebuild,
}

impl FindingClass {
    /// The class's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingClass::LogIntegrity => "log-integrity",
            FindingClass::UnknownEvent => "unknown-event",
            FindingClass::InvalidArgs => "invalid-args",
            FindingClass::MaterializerError => "materializer-error",
            FindingClass::StateDivergence => "state-divergence",
            FindingClass::WriterUnknown => "writer-unknown",
            FindingClass::ZeroRows => "zero-rows",
            FindingClass::FirstDivergence => "first-divergence",
            FindingClass::Nondeterministic => "nondeterministic",
            FindingClass::ComparisonSkipped => "comparison-skipped",
            FindingClass::UnfinishedRebuild => "unfinished-rebuild",
        }
    }

    /// The class named `name` in reports.
    pub fn parse(name: &str) -> Option<FindingClass> {
        FindingClass::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Every class, in report order.
    pub const ALL: [FindingClass; 11] = [
        FindingClass::LogIntegrity,
        FindingClass::UnknownEvent,
        FindingClass::InvalidArgs,
        FindingClass::MaterializerError,
        FindingClass::StateDivergence,
        FindingClass::WriterUnknown,
        FindingClass::ZeroRows,
        FindingClass::FirstDivergence,
        FindingClass::Nondeterministic,
        FindingClass::ComparisonSkipped,
        FindingClass::UnfinishedRebuild,
    ];

    /// How much the class matters unless configured otherwise.
    pub fn default_severity(self) -> Level {
        match self {
            FindingClass::WriterUnknown | FindingClass::ZeroRows => Level::Warning,
            _ => Level::Error,
        }
    }
}

/// How much a class of finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Fails the gate.
    Error,
    /// Reported, does not fail the gate.
    Warning,
    /// Not reported.
    Off,
}

impl Level {
    /// The level named `name` (`error`, `warning`, `off`).
    pub fn parse(name: &str) -> Option<Level> {
        match name {
            "error" => Some(Level::Error),
            "warning" | "warn" => Some(Level::Warning),
            "off" | "allow" => Some(Level::Off),
            _ => None,
        }
    }
}

/// The severity of each class: the defaults, with overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Severities(std::collections::HashMap<FindingClass, Level>);

impl Severities {
    /// Sets the level of a class.
    pub fn set(&mut self, class: FindingClass, level: Level) {
        self.0.insert(class, level);
    }

    /// The level of a class.
    pub fn level(&self, class: FindingClass) -> Level {
        self.0
            .get(&class)
            .copied()
            .unwrap_or(class.default_severity())
    }

    /// Parses `class=level` (e.g. `zero-rows=error`).
    pub fn parse_override(spec: &str) -> Result<(FindingClass, Level), String> {
        let (class, level) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: expected CLASS=LEVEL, e.g. zero-rows=error"))?;
        let class = FindingClass::parse(class.trim()).ok_or_else(|| {
            let known: Vec<&str> = FindingClass::ALL.iter().map(|c| c.as_str()).collect();
            format!(
                "{spec:?}: unknown class {class:?} (known: {})",
                known.join(", ")
            )
        })?;
        let level = Level::parse(level.trim())
            .ok_or_else(|| format!("{spec:?}: unknown level {level:?} (error, warning or off)"))?;
        Ok((class, level))
    }
}

/// A reference to an event, for lists of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef {
    /// Global sequence number.
    pub seq_num_global: i64,
    /// Client sequence number.
    pub seq_num_client: i64,
    /// Rebase generation.
    pub seq_num_rebase_generation: i64,
    /// Event name.
    pub name: String,
}

impl EventRef {
    /// The event at `seq` named `name`: the one place an `EventRef` is made.
    pub fn new(seq: SeqNum, name: impl Into<String>) -> EventRef {
        EventRef {
            seq_num_global: seq.global,
            seq_num_client: seq.client,
            seq_num_rebase_generation: seq.rebase_generation,
            name: name.into(),
        }
    }

    /// The event's sequence number.
    pub fn seq(&self) -> SeqNum {
        SeqNum {
            global: self.seq_num_global,
            client: self.seq_num_client,
            rebase_generation: self.seq_num_rebase_generation,
        }
    }
}

/// The root cause a finding follows from: the event (and the kind of finding at it) whose
/// failure or differing changes explain it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// The root finding's class.
    pub class: FindingClass,
    /// Its event's global sequence number.
    pub seq_num_global: i64,
    /// Its event's client sequence number.
    pub seq_num_client: i64,
    /// Its event's rebase generation.
    pub seq_num_rebase_generation: i64,
    /// Its event's name.
    pub name: String,
}

impl Cause {
    /// The root at `seq` (named `name`), of `class`.
    pub fn new(class: FindingClass, seq: SeqNum, name: impl Into<String>) -> Cause {
        Cause {
            class,
            seq_num_global: seq.global,
            seq_num_client: seq.client,
            seq_num_rebase_generation: seq.rebase_generation,
            name: name.into(),
        }
    }

    /// The root's event.
    pub fn seq(&self) -> SeqNum {
        SeqNum {
            global: self.seq_num_global,
            client: self.seq_num_client,
            rebase_generation: self.seq_num_rebase_generation,
        }
    }

    /// Whether `f` is the root finding this names.
    pub fn is(&self, f: &Finding) -> bool {
        f.class == self.class && f.seq() == Some(self.seq()) && f.caused_by.is_none()
    }
}

/// How a state divergence shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Divergence {
    /// A row exists on both sides with different values.
    RowDiffers,
    /// A recorded row is absent from the replay.
    RowMissing,
    /// The replay has a row the recording lacks.
    RowExtra,
    /// A recorded table is absent from the replay.
    TableMissing,
    /// The replay has a table the recording lacks.
    TableExtra,
    /// A recorded column is absent from the replay's table.
    ColumnMissing,
    /// The replay's table has a column the recording lacks.
    ColumnExtra,
}

/// One column of a differing row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDiff {
    /// Column name.
    pub column: String,
    /// The recorded value.
    pub expected: SqlValue,
    /// The replayed value.
    pub actual: SqlValue,
    /// The event that last wrote this column of the row in the replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_writer: Option<EventRef>,
    /// The event that last wrote this column of the row in LiveStore's own run, from the
    /// changesets it recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_writer: Option<EventRef>,
    /// No event wrote the recorded value: LiveStore's last recorded write of this column set
    /// another value, so the state changed outside the log.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside_log: bool,
}

/// One problem, tied to an event where there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The kind of problem.
    pub class: FindingClass,
    /// `error` (fails the gate) or `warning`.
    pub severity: Level,
    /// Listed in the baseline of acknowledged findings: reported, but does not fail the gate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baselined: bool,
    /// The event's global sequence number (for a divergent row: the event that last wrote it
    /// in the replay), or null.
    pub seq_num_global: Option<i64>,
    /// The event's client sequence number, or null.
    pub seq_num_client: Option<i64>,
    /// The event's rebase generation, or null.
    pub seq_num_rebase_generation: Option<i64>,
    /// The event's name, where there is one.
    pub name: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
    /// For `materializer-error`: the 1-based statement of the event that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    /// For `state-divergence`: the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// For `state-divergence`: how it diverges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
    /// For a divergent row: the columns that pair it (its primary key, or all columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_columns: Option<Vec<String>>,
    /// For a divergent row: its key values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<SqlValue>>,
    /// For a divergent row of a table with a primary key: the key in column order, as the
    /// replay's and LiveStore's changes name rows (not reported).
    #[serde(skip)]
    pub pk: Option<Vec<SqlValue>>,
    /// For a differing row: the columns that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnDiff>,
    /// For a missing or extra column: its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// For `invalid-args`: JSON pointer of the failing value in the args.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// For `invalid-args`: the JSON Schema keyword that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// For `invalid-args`: the failing value as JSON, truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For an event that was not applied: later events that changed rows it touched or meant to
    /// touch, which its absence may have spoiled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<EventRef>,
    /// The event's args (`argsJson`), for findings that blame or show an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// For a divergent row: the event that last wrote it in LiveStore's own run, from the
    /// changesets LiveStore recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_writer: Option<EventRef>,
    /// For `first-divergence` and `nondeterministic`: both sides' changes. Boxed: few findings
    /// have them, and a report can hold a finding for each of a million events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Box<ChangeSides>>,
    /// For a consequence: the root cause it follows from. Absent on root causes, which are
    /// what to fix (and what fails the gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<Cause>,
}

/// Two runs' changes for one event, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSides {
    /// The reference side (LiveStore's recorded changeset, the first run).
    pub expected: ChangeSide,
    /// The side under test (the replay, the second run).
    pub actual: ChangeSide,
}

/// One run's changes for an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSide {
    /// What this side is, e.g. "LiveStore recorded".
    pub label: String,
    /// Its row operations, by table and key.
    pub rows: Vec<crate::replay::changes::RowOp>,
}

/// How the replay's changes compared, event by event, with the changesets LiveStore recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesetStats {
    /// Events with a recorded changeset in the state database.
    pub recorded: u64,
    /// Applied events compared with their recorded changeset.
    pub compared: u64,
    /// Of those, events whose changes differ.
    pub differing: u64,
    /// Applied events LiveStore kept no changeset for (trimmed below the sync head).
    pub not_recorded: u64,
}

impl Finding {
    /// A finding about an event.
    pub fn event(
        class: FindingClass,
        seq: Option<SeqNum>,
        name: Option<&str>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            class,
            severity: class.default_severity(),
            baselined: false,
            seq_num_global: seq.map(|s| s.global),
            seq_num_client: seq.map(|s| s.client),
            seq_num_rebase_generation: seq.map(|s| s.rebase_generation),
            name: name.map(str::to_string),
            message: message.into(),
            statement: None,
            table: None,
            divergence: None,
            key_columns: None,
            key: None,
            pk: None,
            columns: Vec::new(),
            column: None,
            pointer: None,
            keyword: None,
            value: None,
            downstream: Vec::new(),
            args: None,
            recorded_writer: None,
            changes: None,
            caused_by: None,
        }
    }

    /// Whether the finding fails the gate: an error-severity root cause outside the baseline.
    /// A consequence never fails on its own; its root does.
    pub fn fails(&self) -> bool {
        self.severity == Level::Error && !self.baselined && self.caused_by.is_none()
    }

    /// Whether this is a root cause (not explained by an earlier finding).
    pub fn is_root(&self) -> bool {
        self.caused_by.is_none()
    }

    /// This finding as the cause of others, when it has an event.
    pub fn as_cause(&self) -> Option<Cause> {
        Some(Cause::new(
            self.class,
            self.seq()?,
            self.name.clone().unwrap_or_default(),
        ))
    }

    /// The event's sequence number, when the finding has one.
    pub fn seq(&self) -> Option<SeqNum> {
        Some(SeqNum {
            global: self.seq_num_global?,
            client: self.seq_num_client?,
            rebase_generation: self.seq_num_rebase_generation.unwrap_or(0),
        })
    }
}

/// The outcome for one corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No finding.
    Pass,
    /// At least one finding.
    Fail,
    /// The corpus could not be read.
    Error,
}

/// What kind of corpus was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorpusKind {
    /// A LiveStore store directory (`eventlog@6.db`, `state<hash>@6.db`).
    Store,
    /// A backup package (`eventlog.db`, `state.db`, `manifest.json`).
    Package,
    /// An event log on its own.
    Eventlog,
}

/// The recorded snapshot a corpus was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The state database.
    pub path: String,
    /// Why this one, when there was a choice.
    pub reason: String,
}

/// Per-table comparison counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// `both`, `expected-only` (missing from the replay) or `actual-only` (extra in the replay).
    pub presence: Presence,
    /// The columns that pair rows: the primary key, or every compared column.
    pub key_columns: Vec<String>,
    /// Rows in the recorded snapshot.
    pub rows_expected: u64,
    /// Rows in the replay.
    pub rows_actual: u64,
    /// Rows equal on both sides.
    pub matching: u64,
    /// Rows paired by key whose values differ.
    pub differing: u64,
    /// Recorded rows absent from the replay.
    pub missing: u64,
    /// Replayed rows absent from the recording.
    pub extra: u64,
    /// Columns only the recorded table has.
    pub columns_missing: Vec<String>,
    /// Columns only the replayed table has.
    pub columns_extra: Vec<String>,
}

/// Which side a table exists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// Both.
    Both,
    /// Only the recorded snapshot.
    ExpectedOnly,
    /// Only the replay.
    ActualOnly,
}

/// Whether the comparison ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparisonStatus {
    /// `compared` or `skipped`.
    pub status: ComparisonState,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// See [`ComparisonStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparisonState {
    /// Every table was compared.
    Compared,
    /// There was nothing to compare with.
    Skipped,
}

/// Everything about one corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorpusReport {
    /// The corpus as named on the command line.
    pub corpus: String,
    /// The store's id: a store directory's name (LiveStore's `<base>/<storeId>/`), a package's
    /// manifest `storeId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// What kind of corpus it is.
    pub kind: Option<CorpusKind>,
    /// The event log that was replayed.
    pub eventlog: Option<String>,
    /// The snapshot the replay was compared with.
    pub snapshot: Option<Snapshot>,
    /// `__livestore_sync_status.head`.
    pub sync_head: Option<i64>,
    /// Rows in the log.
    pub events: u64,
    /// Events whose materialization ran to the end (no-op events included).
    pub applied: u64,
    /// `pass` (no error-severity finding outside the baseline), `fail` or `error`.
    pub verdict: Verdict,
    /// Whether the state was compared.
    pub comparison: ComparisonStatus,
    /// The event-by-event comparison with LiveStore's recorded changesets, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changesets: Option<ChangesetStats>,
    /// Findings: each root cause in log order, followed by its consequences in log order;
    /// findings without an event last.
    pub findings: Findings,
    /// The root causes for the reader: roots of the same kind at events of the same name (or,
    /// without an event, in the same table) are one cause, with where it occurs and how many
    /// findings follow from it.
    pub root_causes: Vec<RootCause>,
    /// Per-table counts, by table name.
    pub tables: Vec<TableReport>,
    /// Things worth knowing that are not findings (e.g. which snapshot was chosen and why).
    pub notes: Vec<String>,
    /// Why the corpus could not be checked (verdict `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Baseline entries for this corpus that no longer occur.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_baseline: Vec<BaselineEntry>,
    /// Whether stale baseline entries fail the corpus (`--strict-baseline`).
    #[serde(skip)]
    pub strict_baseline: bool,
}

impl CorpusReport {
    /// An unreadable corpus.
    pub fn error(corpus: &str, message: String) -> CorpusReport {
        CorpusReport {
            corpus: corpus.to_string(),
            store_id: None,
            kind: None,
            eventlog: None,
            snapshot: None,
            sync_head: None,
            events: 0,
            applied: 0,
            verdict: Verdict::Error,
            comparison: ComparisonStatus {
                status: ComparisonState::Skipped,
                reason: Some("the corpus could not be read".into()),
            },
            changesets: None,
            findings: Findings::new(),
            root_causes: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
            error: Some(message),
            stale_baseline: Vec::new(),
            strict_baseline: false,
        }
    }

    /// Applies the configured severities (dropping classes turned off), makes a consequence
    /// whose root was dropped a root of its own, puts findings in the report's order, groups
    /// the root causes and sets the verdict: fail when any root cause is an error. Fails only
    /// when findings spilled to disk cannot be read back.
    pub fn finish(&mut self, severities: &Severities) -> crate::error::Result<()> {
        let mut roots = self.findings.cause_map();
        for f in self.findings.iter() {
            if f.is_root()
                && severities.level(f.class) != Level::Off
                && let Some(c) = f.as_cause()
            {
                roots.insert(&c, 0)?;
            }
        }
        self.findings.check()?;
        self.findings.retain_sorted(|f| {
            f.severity = severities.level(f.class);
            if f.severity == Level::Off {
                return Ok(false);
            }
            if let Some(c) = &f.caused_by
                && !roots.contains(c)?
            {
                f.caused_by = None;
            }
            Ok(true)
        })?;
        drop(roots);
        self.settle()
    }

    /// Sets the verdict and the root causes from the findings (after baselining, for
    /// instance): consequences share their root's baseline mark.
    pub fn settle(&mut self) -> crate::error::Result<()> {
        let mut baselined = self.findings.cause_map();
        let mut marked = false;
        for f in self.findings.iter() {
            if f.is_root()
                && f.baselined
                && let Some(c) = f.as_cause()
            {
                baselined.insert(&c, 0)?;
            }
            marked |= f.baselined;
        }
        self.findings.check()?;
        // Nothing to mark and nothing marked: the findings are left as they are (a rewrite
        // of findings spilled to disk costs a pass through them).
        if marked {
            self.findings.retain_mut(|f| {
                if let Some(c) = &f.caused_by {
                    f.baselined = baselined.contains(c)?;
                }
                Ok(true)
            })?;
        }
        drop(baselined);
        self.root_causes = RootCause::group(&self.findings)?;
        if self.verdict != Verdict::Error {
            let stale = self.strict_baseline && !self.stale_baseline.is_empty();
            self.verdict = if stale || self.findings.iter().any(|f| f.fails()) {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            self.findings.check()?;
        }
        Ok(())
    }
}

/// A root cause for the reader: every root finding of one kind at events of one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootCause {
    /// The kind of finding.
    pub class: FindingClass,
    /// `error` (fails the gate, unless baselined) or `warning`.
    pub severity: Level,
    /// The events' name, where the roots have events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The table, for roots without an event (a state changed outside the log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Every root finding of this cause is in the baseline.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baselined: bool,
    /// How many root findings (events, for roots with one) make it up.
    pub occurrences: usize,
    /// The first of them, where they have events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<EventRef>,
    /// How many findings follow from it.
    pub consequences: usize,
    /// The cause in one sentence, e.g. "v1.TodoUncompleted: its changes differ from
    /// LiveStore's record at 57 events, first e8".
    pub summary: String,
}

impl RootCause {
    /// What makes a root finding part of this cause.
    pub fn key_of(&self) -> (FindingClass, Option<String>, Option<String>) {
        (self.class, self.name.clone(), self.table.clone())
    }

    /// The key that makes roots one cause: the kind and the events' name; for a state that
    /// differs where no event explains it, the table (rows) or the schema as a whole (tables
    /// and columns on one side only), whichever event last wrote the row.
    pub fn key(f: &Finding) -> (FindingClass, Option<String>, Option<String>) {
        match (&f.name, f.class, f.key.is_some()) {
            (_, FindingClass::StateDivergence, true) => (f.class, None, f.table.clone()),
            (_, FindingClass::StateDivergence, false) => (f.class, None, None),
            (Some(name), _, _) if f.seq().is_some() => (f.class, Some(name.clone()), None),
            _ => (f.class, None, f.table.clone()),
        }
    }

    /// Groups the root findings of `findings` (in the report's order) and counts what follows
    /// from each group.
    pub fn group(findings: &Findings) -> crate::error::Result<Vec<RootCause>> {
        let mut index: std::collections::HashMap<
            (FindingClass, Option<String>, Option<String>),
            usize,
        > = std::collections::HashMap::new();
        let mut causes: Vec<RootCause> = Vec::new();
        let mut of_root = findings.cause_map();
        // Per cause: every one of its rows differs only in values no event wrote.
        let mut outside: Vec<bool> = Vec::new();
        for f in findings.iter().filter(|f| f.is_root()) {
            let key = RootCause::key(&f);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                causes.push(RootCause {
                    class: f.class,
                    severity: f.severity,
                    name: key.1.clone(),
                    table: key.2.clone(),
                    baselined: true,
                    occurrences: 0,
                    first: f
                        .seq()
                        .filter(|_| key.1.is_some())
                        .map(|seq| EventRef::new(seq, f.name.clone().unwrap_or_default())),
                    consequences: 0,
                    summary: String::new(),
                });
                outside.push(true);
                causes.len() - 1
            });
            let c = &mut causes[i];
            c.occurrences += 1;
            if f.columns.is_empty() || !f.columns.iter().all(|col| col.outside_log) {
                outside[i] = false;
            }
            c.baselined &= f.baselined;
            if f.severity == Level::Error {
                c.severity = Level::Error;
            }
            if let Some(cause) = f.as_cause() {
                of_root.insert(&cause, i as u32)?;
            }
        }
        for f in findings {
            if let Some(c) = &f.caused_by
                && let Some(i) = of_root.get(c)?
            {
                causes[i as usize].consequences += 1;
            }
        }
        findings.check()?;
        for (c, outside) in causes.iter_mut().zip(outside) {
            c.summary = c.describe(outside);
        }
        Ok(causes)
    }

    fn describe(&self, outside_log: bool) -> String {
        use crate::text::count;
        if self.class == FindingClass::StateDivergence {
            let mut s = match (&self.table, outside_log) {
                (Some(t), true) => format!(
                    "table {t}: the recorded state changed outside the log in {}",
                    count(self.occurrences, "row")
                ),
                (Some(t), false) => format!(
                    "table {t}: {} {} from the replay and no event explains it",
                    count(self.occurrences, "row"),
                    if self.occurrences == 1 {
                        "differs"
                    } else {
                        "differ"
                    }
                ),
                (None, _) => format!(
                    "the recorded state's tables and columns differ from the replay's ({})",
                    count(self.occurrences, "difference")
                ),
            };
            if self.consequences > 0 {
                s.push_str(&format!("; {}", count(self.consequences, "consequence")));
            }
            return s;
        }
        let what = match self.class {
            FindingClass::LogIntegrity => "the log is damaged",
            FindingClass::UnknownEvent => "no materializer knows it",
            FindingClass::InvalidArgs => "its args break its schema or its definition",
            FindingClass::MaterializerError => "its materializer fails",
            FindingClass::StateDivergence => "the recorded state differs and no event explains it",
            FindingClass::WriterUnknown => "the app that wrote it did not know it",
            FindingClass::ZeroRows => "an update or delete matches no row",
            FindingClass::FirstDivergence => "its changes differ from LiveStore's record",
            FindingClass::Nondeterministic => "two replays of it differ",
            FindingClass::ComparisonSkipped => "nothing was compared",
            FindingClass::UnfinishedRebuild => "the state file is from an unfinished rebuild",
        };
        let subject = self
            .name
            .clone()
            .or_else(|| self.table.as_ref().map(|t| format!("table {t}")))
            .unwrap_or_else(|| "the corpus".to_string());
        let mut s = match &self.first {
            Some(first) => format!(
                "{subject}: {what} at {}, first {}",
                count(self.occurrences, "event"),
                first.seq()
            ),
            None if self.occurrences > 1 => {
                format!("{subject}: {what} ({} findings)", self.occurrences)
            }
            None => format!("{subject}: {what}"),
        };
        if self.consequences > 0 {
            s.push_str(&format!("; {}", count(self.consequences, "consequence")));
        }
        s
    }
}

/// Orders findings: each root in log order (by event: global, client, generation; then class,
/// table and key), followed by its consequences in the same order; findings without an event
/// after those with one. Stable, so equal keys keep the order they were found in. (The order
/// a [`Findings`] store sorts in, spilled or not.)
pub fn sort_findings(findings: &mut [Finding]) {
    findings::sort_in_memory(findings);
}

/// The order [`sort_findings`] puts findings in, as a comparison: the specification the
/// byte keys that sort are tested against.
#[cfg(test)]
fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    type Key = (bool, Option<i64>, Option<i64>, Option<i64>, FindingClass);
    let root_key = |f: &Finding| -> Key {
        match &f.caused_by {
            None => (
                f.seq_num_global.is_none(),
                f.seq_num_global,
                f.seq_num_client,
                f.seq_num_rebase_generation,
                f.class,
            ),
            Some(c) => (
                false,
                Some(c.seq_num_global),
                Some(c.seq_num_client),
                Some(c.seq_num_rebase_generation),
                c.class,
            ),
        }
    };
    let own = |f: &Finding| {
        (
            f.seq_num_global.is_none(),
            f.seq_num_global,
            f.seq_num_client,
            f.seq_num_rebase_generation,
        )
    };
    root_key(a)
        .cmp(&root_key(b))
        .then(a.caused_by.is_some().cmp(&b.caused_by.is_some()))
        .then(own(a).cmp(&own(b)))
        .then(a.class.cmp(&b.class))
        .then(a.table.cmp(&b.table))
        .then_with(|| match (&a.key, &b.key) {
            (Some(x), Some(y)) => x
                .iter()
                .zip(y)
                .map(|(p, q)| p.sqlite_cmp(q))
                .find(|o| o.is_ne())
                .unwrap_or(x.len().cmp(&y.len())),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
}

/// One acknowledged root cause: what identifies it across runs (never its message, which may
/// be reworded). Baselines are lists of these ([`baseline`]); the report lists the stale ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaselineEntry {
    /// The corpus: its path relative to the baseline file's directory, `/`-separated (format 1
    /// wrote it as named on the command line).
    pub corpus: String,
    /// The store's id, where the corpus has one (a store directory's name, a package's
    /// manifest `storeId`): a corpus moved to another path with the same id still matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// The finding's class.
    pub class: String,
    /// The event's global sequence number.
    pub seq_num_global: Option<i64>,
    /// The event's client sequence number.
    pub seq_num_client: Option<i64>,
    /// The event's rebase generation.
    pub seq_num_rebase_generation: Option<i64>,
    /// The event's name.
    pub name: Option<String>,
    /// State divergences: the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// State divergences: how it diverges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<String>,
    /// Row divergences: the key, as in the report (`[{"type": "text", "value": "…"}]`). Held
    /// as its compact JSON text so that entries compare and sort; written as JSON (format 1
    /// wrote the text as a string, which still loads).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "key_json")]
    pub key: Option<String>,
    /// Column divergences: the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Read from a format 1 file: `corpus` is as it was typed, and is matched so.
    #[serde(skip)]
    pub legacy: bool,
}

/// A baseline key written as JSON, read as JSON or as the JSON text format 1 wrote.
mod key_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub(super) fn serialize<S: Serializer>(key: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        key.as_deref()
            .map(|text| serde_json::from_str::<Value>(text).unwrap_or(Value::String(text.into())))
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.map(|v| match v {
            // Format 1: the key's JSON text, as a string.
            Value::String(text) => serde_json::from_str::<Value>(&text)
                .map(|v| v.to_string())
                .unwrap_or(text),
            other => other.to_string(),
        }))
    }
}

/// Totals across corpora.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Corpora checked.
    pub corpora: usize,
    /// Corpora that passed.
    pub passed: usize,
    /// Corpora with findings.
    pub failed: usize,
    /// Corpora that could not be read.
    pub errors: usize,
    /// Findings per class (every class listed, zero included).
    pub findings: BTreeMap<&'static str, usize>,
    /// Root causes (roots grouped by kind and event name).
    pub root_causes: usize,
    /// Root findings: what to fix.
    pub roots: usize,
    /// Findings that follow from a root.
    pub consequences: usize,
    /// Root findings that fail the gate.
    pub errors_found: usize,
    /// Findings reported as warnings.
    pub warnings: usize,
    /// Findings acknowledged in the baseline.
    pub baselined: usize,
    /// Baseline entries that no longer occur.
    pub stale_baseline: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Report format version.
    pub version: u32,
    /// The tool that wrote it.
    pub tool: String,
    /// The materializer definitions used.
    pub materializers: String,
    /// The share of the corpora this run checked (`--partition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// One entry per corpus, in command-line order.
    pub corpora: Vec<CorpusReport>,
    /// Totals.
    pub summary: Summary,
}

impl Report {
    /// Assembles a report and its summary.
    pub fn new(materializers: String, corpora: Vec<CorpusReport>) -> Report {
        let mut r = Report {
            version: REPORT_VERSION,
            tool: format!("rehearse {}", env!("CARGO_PKG_VERSION")),
            materializers,
            partition: None,
            corpora,
            summary: Summary {
                corpora: 0,
                passed: 0,
                failed: 0,
                errors: 0,
                findings: BTreeMap::new(),
                root_causes: 0,
                roots: 0,
                consequences: 0,
                errors_found: 0,
                warnings: 0,
                baselined: 0,
                stale_baseline: 0,
            },
        };
        r.summarize();
        r
    }

    /// Recomputes the summary from the corpora.
    pub fn summarize(&mut self) {
        let corpora = &self.corpora;
        let mut findings: BTreeMap<&'static str, usize> =
            FindingClass::ALL.iter().map(|c| (c.as_str(), 0)).collect();
        let count = |v: Verdict| corpora.iter().filter(|c| c.verdict == v).count();
        let mut s = Summary {
            corpora: corpora.len(),
            passed: count(Verdict::Pass),
            failed: count(Verdict::Fail),
            errors: count(Verdict::Error),
            findings: BTreeMap::new(),
            root_causes: corpora.iter().map(|c| c.root_causes.len()).sum(),
            roots: 0,
            consequences: 0,
            errors_found: 0,
            warnings: 0,
            baselined: 0,
            stale_baseline: corpora.iter().map(|c| c.stale_baseline.len()).sum(),
        };
        // One pass: the findings may be on disk.
        for f in corpora.iter().flat_map(|c| &c.findings) {
            *findings.entry(f.class.as_str()).or_default() += 1;
            let root = f.is_root();
            s.roots += usize::from(root);
            s.consequences += usize::from(!root);
            s.errors_found += usize::from(f.fails());
            s.warnings += usize::from(f.severity == Level::Warning);
            s.baselined += usize::from(f.baselined);
        }
        s.findings = findings;
        self.summary = s;
    }

    /// An error if findings spilled to disk could not be read back while they were streamed:
    /// whatever was rendered from them is incomplete.
    pub fn check_findings(&self) -> crate::error::Result<()> {
        self.corpora.iter().try_for_each(|c| c.findings.check())
    }

    /// Whether every corpus passed.
    pub fn passed(&self) -> bool {
        self.corpora.iter().all(|c| c.verdict == Verdict::Pass)
    }

    /// Whether any corpus could not be read.
    pub fn has_errors(&self) -> bool {
        self.corpora.iter().any(|c| c.verdict == Verdict::Error)
    }

    /// The exit code this report gives the gate ([`crate::exit`]): a corpus that could not be
    /// read outweighs a failing one.
    pub fn exit_code(&self) -> u8 {
        if self.has_errors() {
            crate::exit::USAGE_OR_INPUT
        } else if self.passed() {
            crate::exit::PASS
        } else {
            crate::exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    /// The findings end in the order a stable sort of them gives, ties in the order found:
    /// roots by event, each followed by its consequences, findings without an event last; rows
    /// in SQLite's order of their keys.
    #[test]
    fn findings_sort_as_a_stable_sort_would() {
        use super::*;
        let mut findings = findings::tests::mixed(2000, 7);
        let mut expected = findings.clone();
        expected.sort_by(finding_order);
        sort_findings(&mut findings);
        let messages = |v: &[Finding]| v.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
        assert_eq!(messages(&findings), messages(&expected));
    }

    /// A report holds one finding per bad event, so a field added inline to every finding costs
    /// memory in proportion to the log (docs/benchmarks.md, the all-bad case): rare parts of
    /// a finding are boxed.
    #[test]
    fn a_finding_stays_small() {
        let size = std::mem::size_of::<super::Finding>();
        assert!(size <= 512, "Finding is {size} bytes");
    }
}
