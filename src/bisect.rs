//! Differential replay: one log through two materializers side by side, in one pass, event by
//! event, to say exactly which historical events a materializer change changes and how.
//!
//! Each side replays into its own scratch database; after every event their changes are folded
//! into row operations and compared. The same machinery replays one materializer twice to
//! catch non-determinism (the clock, random numbers, an unstable query order). Only the
//! differences are kept, so memory stays flat however long the log is. Once the sides differ,
//! their states do too, and later differences may be consequences of the first.

use std::ops::ControlFlow;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::eventlog::{Event, SeqNum};
use crate::materialize::Materializer;
use crate::replay::changes::{self, ColumnNames, RowOp};
use crate::replay::setup::{Setup, State};
use crate::replay::{self, Ahead, EventOutcome, EventResult, ReplayOptions, Replayer, read_ahead};
use crate::report::{ChangeSide, ChangeSides, EventRef, Finding, FindingClass, Findings};

/// The version of `bisect --format json` (`schemas/bisect.schema.json`).
pub const BISECT_VERSION: u32 = 1;

/// How often [`bisect_observed`] tells its observer how far it is, in rows: often enough for a
/// display to move on a slow plugin side, rarely enough to cost nothing.
pub const READ_EVERY: u64 = 256;

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct BisectOptions {
    /// List every differing event instead of stopping at the first.
    pub all: bool,
    /// Replay only up to and including this event (`(global, client)`).
    pub until: Option<(i64, i64)>,
    /// Report differences only for events of this name (every event is still replayed).
    pub event: Option<String>,
    /// Compare with this state database's DDL instead of the one found beside the log.
    pub state: Option<std::path::PathBuf>,
    /// Replay settings: both sides', and the old side's args schemas.
    pub replay: ReplayOptions,
    /// The new side's args schemas (its definitions may change them).
    pub new_schemas: Option<std::sync::Arc<crate::validate::EventSchemas>>,
}

/// One side's answer for an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Side {
    /// Applied, with these row operations.
    Applied {
        /// Row operations, by table and key.
        rows: Vec<RowOp>,
    },
    /// Not applied.
    NotApplied {
        /// Why: the findings' classes and messages.
        findings: Vec<(String, String)>,
    },
}

impl Side {
    fn of(outcome: &EventOutcome, findings: &Findings, rows: impl FnOnce() -> Vec<RowOp>) -> Side {
        match &outcome.result {
            EventResult::Applied { .. } => Side::Applied { rows: rows() },
            EventResult::NotApplied => Side::NotApplied {
                findings: findings
                    .recent(outcome.findings.start)
                    .iter()
                    .map(|f| (f.class.as_str().to_string(), f.message.clone()))
                    .collect(),
            },
        }
    }

    fn same_as(&self, other: &Side) -> bool {
        match (self, other) {
            (Side::Applied { rows: a }, Side::Applied { rows: b }) => a == b,
            // Both not applied, for the same reasons (messages may name the two definitions).
            (Side::NotApplied { findings: a }, Side::NotApplied { findings: b }) => {
                a.iter().map(|(c, _)| c).eq(b.iter().map(|(c, _)| c))
            }
            _ => false,
        }
    }

    /// One line per row operation, or why the event was not applied.
    pub fn render(&self) -> Vec<String> {
        match self {
            Side::Applied { rows } if rows.is_empty() => vec!["(changes nothing)".into()],
            Side::Applied { rows } => changes::render(rows),
            Side::NotApplied { findings } => findings
                .iter()
                .map(|(class, message)| format!("not applied: {class}: {message}"))
                .collect(),
        }
    }
}

/// An event the two sides treat differently.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The event.
    pub event: EventRef,
    /// Its args.
    pub args: String,
    /// The old (or first) side.
    pub old: Side,
    /// The new (or second) side.
    pub new: Side,
}

/// What a differential replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BisectReport {
    /// [`BISECT_VERSION`].
    pub version: u32,
    /// The corpus as named.
    pub corpus: String,
    /// The old materializers.
    pub old: String,
    /// The new materializers.
    pub new: String,
    /// Rows of the log read.
    pub events: u64,
    /// Whether the replay went to the end of the log (or `--until`), or stopped at the first
    /// difference.
    pub complete: bool,
    /// The events the sides treat differently, in log order.
    pub differences: Vec<Difference>,
}

/// Replays `corpus` through `old` and `new` side by side and lists the events they treat
/// differently.
pub fn bisect(
    corpus_path: &Path,
    old: &mut dyn Materializer,
    new: &mut dyn Materializer,
    options: &BisectOptions,
) -> Result<BisectReport> {
    bisect_observed(corpus_path, old, new, options, |_| {})
}

/// [`bisect`], telling `observe` how many rows of the log both sides have replayed (as
/// [`replay::Step::Read`], every [`READ_EVERY`] rows and at the end), for progress.
pub fn bisect_observed(
    corpus_path: &Path,
    old: &mut dyn Materializer,
    new: &mut dyn Materializer,
    options: &BisectOptions,
    mut observe: impl FnMut(replay::Step<'_>),
) -> Result<BisectReport> {
    let setup = Setup::open(
        corpus_path,
        State::named_or_beside(options.state.as_deref()),
        &*old,
    )?;
    let log = &setup.log;
    let (old_name, new_name) = (old.describe(), new.describe());
    let dir = options.replay.scratch_dir.as_deref();
    let scratch_old = setup.scratch(old, dir)?;
    let scratch_new = setup.scratch(new, dir)?;
    let mut replay = options.replay.clone();
    replay.values = true;
    replay.no_writers = true;
    replay::begin_log(log, old)?;
    replay::begin_log(log, new)?;
    let replay_new = ReplayOptions {
        schemas: options.new_schemas.clone(),
        ..replay.clone()
    };
    let mut a = Replayer::new(&scratch_old, old, &replay)?;
    let mut b = Replayer::new(&scratch_new, new, &replay_new)?;
    let (mut names_a, mut names_b) = (ColumnNames::default(), ColumnNames::default());
    let mut differences = Vec::new();
    let mut complete = true;
    let mut events = 0;
    // Both sides see each chunk before its events: a plugin side then answers a chunk at a
    // time instead of one round trip per event.
    read_ahead(log, |item| {
        let row = match item {
            Ahead::Announce(rows) => {
                a.announce(rows)?;
                b.announce(rows)?;
                return Ok(ControlFlow::Continue(()));
            }
            Ahead::Row(row) => row,
        };
        events += 1;
        if events % READ_EVERY == 0 {
            observe(replay::Step::Read(events));
        }
        let oa = a.event(row.clone())?;
        let ob = b.event(row)?;
        let Some(ev) = oa.event.clone() else {
            return Ok(ControlFlow::Continue(()));
        };
        let side_a = Side::of(&oa, a.findings(), || {
            rows(&oa, a.connection(), &mut names_a)
        });
        let side_b = Side::of(&ob, b.findings(), || {
            rows(&ob, b.connection(), &mut names_b)
        });
        let focused = options.event.as_ref().is_none_or(|n| *n == ev.name);
        if focused && !side_a.same_as(&side_b) {
            differences.push(difference(&ev, side_a, side_b));
            if !options.all {
                complete = false;
                return Ok(ControlFlow::Break(()));
            }
        }
        if options.until.is_some_and(|u| ev.seq.pair() >= u) {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    a.finish(None)?;
    b.finish(None)?;
    observe(replay::Step::Read(events));
    Ok(BisectReport {
        version: BISECT_VERSION,
        corpus: setup.corpus.name.clone(),
        old: old_name,
        new: new_name,
        events,
        complete,
        differences,
    })
}

fn rows(
    outcome: &EventOutcome,
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
) -> Vec<RowOp> {
    match &outcome.result {
        EventResult::Applied { changes } => changes::net(changes, conn, "main", names, false),
        EventResult::NotApplied => Vec::new(),
    }
}

fn difference(ev: &Event, old: Side, new: Side) -> Difference {
    Difference {
        event: EventRef::new(ev.seq, ev.name.clone()),
        args: ev.args_json.clone(),
        old,
        new,
    }
}

/// Replays `corpus` twice through the same definitions (`first` and `second` are two
/// instances of them; `second` may have replayed the log before, which shows up state a
/// materializer keeps between events) and reports every event whose changes differ between
/// the runs as `nondeterministic`.
pub fn determinism(
    corpus_path: &Path,
    first: &mut dyn Materializer,
    second: &mut dyn Materializer,
    options: &BisectOptions,
) -> Result<Vec<Finding>> {
    let report = bisect(
        corpus_path,
        first,
        second,
        &BisectOptions {
            all: true,
            new_schemas: options.replay.schemas.clone(),
            ..options.clone()
        },
    )?;
    Ok(report
        .differences
        .into_iter()
        .map(|d| {
            let seq = d.event.seq();
            let mut f = Finding::event(
                FindingClass::Nondeterministic,
                Some(seq),
                Some(&d.event.name),
                "two replays of this event changed different rows or values: its materializer reads the clock, random numbers or an unstable order, or keeps state from the events before",
            );
            f.args = Some(d.args);
            let side = |label: &str, s: Side| ChangeSide {
                label: label.into(),
                rows: match s {
                    Side::Applied { rows } => rows,
                    Side::NotApplied { .. } => Vec::new(),
                },
            };
            f.changes = Some(Box::new(ChangeSides {
                expected: side("first replay", d.old),
                actual: side("second replay", d.new),
            }));
            f
        })
        .collect())
}

/// Parses `e17`, `17`, `e7.2` or `7.2` into `(global, client)`.
pub fn parse_seq(s: &str) -> Option<(i64, i64)> {
    let s = s.strip_prefix('e').unwrap_or(s);
    let s = s.split('r').next()?;
    match s.split_once('.') {
        Some((g, c)) => Some((g.parse().ok()?, c.parse().ok()?)),
        None => Some((s.parse().ok()?, 0)),
    }
}

impl Difference {
    /// The event's sequence number.
    pub fn seq(&self) -> SeqNum {
        self.event.seq()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_parse_in_livestore_notation() {
        assert_eq!(parse_seq("e17"), Some((17, 0)));
        assert_eq!(parse_seq("17"), Some((17, 0)));
        assert_eq!(parse_seq("e7.2"), Some((7, 2)));
        assert_eq!(parse_seq("e5.1r1"), Some((5, 1)));
        assert_eq!(parse_seq("x"), None);
    }
}
