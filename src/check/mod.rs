//! One corpus through the whole pipeline: locate → replay → compare → report.

use std::path::{Path, PathBuf};

mod pipeline;
mod run;
mod schedule;

pub use run::{BaselineUse, Event, Plan, run};
pub use schedule::{check_each, lane_shares};

use crate::compare::causes::Causes;
use crate::compare::divergence::{self, ColumnPositions, Sides, divergence_finding};
use crate::compare::{self, CompareOptions};
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::materialize::Materializer;
use crate::replay::recorded;
use crate::replay::setup::{Setup, State};
use crate::replay::{self, ReplayOptions};
use crate::report::{
    ChangesetStats, ComparisonState, ComparisonStatus, CorpusReport, Finding, FindingClass,
    Findings, Severities, Snapshot, Verdict,
};
use crate::snapshot;
use crate::sqlite;

/// Settings for checking a corpus.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Replay settings.
    pub replay: ReplayOptions,
    /// Comparison settings.
    pub compare: CompareOptions,
    /// Write the replayed state here.
    pub keep: Option<PathBuf>,
    /// Compare with this state database instead of the one found beside the log.
    pub state: Option<PathBuf>,
    /// Do not compare at all.
    pub no_compare: bool,
    /// How much each class of finding matters.
    pub severities: Severities,
    /// When the replay differs from an accepted rehearse snapshot, write the new state beside
    /// it as a pending snapshot (the CLI turns this off in CI unless asked).
    pub write_pending: bool,
    /// Do not hold each event against the changeset LiveStore recorded for it.
    pub skip_changesets: bool,
    /// Replay the log alone: leave the state files beside it unread (a pre-flight whose
    /// snapshot is damaged).
    pub log_alone: bool,
    /// A corpus whose recorded state cannot be compared passes on its replay alone
    /// (`--log-only`); without it, that is a `comparison-skipped` finding.
    pub log_only: bool,
}

/// A corpus replayed into its scratch database, before comparison.
struct Replay {
    setup: Setup,
    scratch: sqlite::Scratch,
    replayed: replay::Replayed,
    notes: Vec<String>,
    changesets: Option<ChangesetStats>,
    causes: Causes,
}

fn replay_corpus(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
    observe: impl FnMut(replay::Step<'_>),
) -> Result<Replay> {
    let state = if options.log_alone {
        State::None
    } else {
        State::named_or_beside(options.state.as_deref())
    };
    let setup = Setup::open(path, state, &*materializer)?;
    let mut notes = setup.notes.clone();

    // Hold every event against LiveStore's recorded changeset, where the state has them.
    let changesets = setup.recorded.as_ref().is_some_and(|r| {
        !options.no_compare && !options.skip_changesets && recorded::count(&r.db.conn) > 0
    });
    // Without savepoints first where starting over gives the same result (a materializer that
    // answers from the event alone): they cost a fifth of the replay, and only an event that
    // fails after changing something needs them.
    let mut speculate = materializer.pure().is_some();
    let mut observe = Retold::new(observe);
    let (scratch, mut replayed, followed) = loop {
        let scratch = setup.scratch(materializer, options.replay.scratch_dir.as_deref())?;
        match pipeline::replay_and_follow(
            &setup,
            &scratch,
            materializer,
            &options.replay,
            changesets,
            speculate,
            |step| observe.step(step),
        )? {
            Some((replayed, followed)) => break (scratch, replayed, followed),
            None => {
                speculate = false;
                observe.start_over();
            }
        }
    };
    replayed.writers = followed.writers;
    let (changesets, causes) = (followed.changesets, followed.causes);
    if let Some(stats) = &changesets
        && stats.not_recorded > 0
    {
        notes.push(format!(
            "LiveStore kept changesets for {} event(s) (a sync backend trims those below its head): {} of the {} applied events were compared with theirs, {} could not be",
            stats.recorded,
            stats.compared,
            stats.compared + stats.not_recorded,
            stats.not_recorded
        ));
    }
    if let Some(seq) = replayed.stopped_at {
        notes.push(format!("replay stopped at {seq} (--on-error stop)"));
    }
    if let Some(keep) = &options.keep {
        crate::sqlite::write_database(&scratch, keep)?;
    }
    Ok(Replay {
        setup,
        scratch,
        replayed,
        notes,
        changesets,
        causes,
    })
}

/// An observer of a replay that may start over: each row read and each event is told once.
struct Retold<F> {
    observe: F,
    /// Rows read and events told so far, over every pass.
    read: u64,
    told: u64,
    /// Events of this pass.
    events: u64,
}

impl<F: FnMut(replay::Step<'_>)> Retold<F> {
    fn new(observe: F) -> Retold<F> {
        Retold {
            observe,
            read: 0,
            told: 0,
            events: 0,
        }
    }

    fn step(&mut self, step: replay::Step<'_>) {
        match step {
            replay::Step::Read(n) if n <= self.read => {}
            replay::Step::Read(n) => {
                self.read = n;
                (self.observe)(step);
            }
            _ => {
                self.events += 1;
                if self.events > self.told {
                    self.told = self.events;
                    (self.observe)(step);
                }
            }
        }
    }

    fn start_over(&mut self) {
        self.events = 0;
    }
}

impl Replay {
    fn report(
        self,
        comparison: ComparisonStatus,
        findings: Findings,
        tables: Vec<crate::report::TableReport>,
        mut notes: Vec<String>,
        snapshot: Option<Snapshot>,
        options: &CheckOptions,
    ) -> Result<CorpusReport> {
        if let Some(why) = findings.spill_failure() {
            notes.push(format!(
                "the {} findings were held in memory: spilling them to a temporary file failed ({why})",
                findings.len()
            ));
        }
        let mut report = CorpusReport {
            corpus: self.setup.corpus.name.clone(),
            store_id: self.setup.corpus.store_id(),
            kind: Some(self.setup.corpus.kind),
            eventlog: Some(self.setup.corpus.eventlog.display().to_string()),
            snapshot,
            sync_head: self.setup.log.sync_status().map(|s| s.head),
            events: self.replayed.events,
            applied: self.replayed.applied,
            verdict: Verdict::Pass,
            comparison,
            changesets: self.changesets.clone(),
            findings,
            root_causes: Vec::new(),
            tables,
            notes,
            error: None,
            stale_baseline: Vec::new(),
            strict_baseline: false,
        };
        report.finish(&options.severities)?;
        Ok(report)
    }
}

/// Replays a corpus and compares it with its recorded snapshot.
///
/// Unreadable input is an `Err`; every problem with the events or the state is a finding in
/// the returned report.
pub fn check_corpus(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
) -> Result<CorpusReport> {
    check_corpus_observed(path, materializer, options, |_| {})
}

/// [`check_corpus`], telling `observe` about the replay as it goes (progress, and every
/// applied event with its row changes).
pub fn check_corpus_observed(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
    observe: impl FnMut(replay::Step<'_>),
) -> Result<CorpusReport> {
    let mut run = replay_corpus(path, materializer, options, observe)?;
    let mut notes = run.notes.clone();
    // Moved, not copied: where every event is flagged, the findings are most of the memory.
    let mut findings = std::mem::take(&mut run.replayed.findings);
    findings.append(run.causes.take_findings())?;
    let accepted = snapshot::path_for(&run.setup.corpus.eventlog);
    let (comparison, tables, snapshot) = if options.no_compare {
        (skipped("comparison turned off"), Vec::new(), None)
    } else if let Some(recorded) = &run.setup.recorded {
        let db = &recorded.db;
        if recorded.unfinished_rebuild() {
            findings.push_spilling(Finding::event(
                FindingClass::UnfinishedRebuild,
                None,
                None,
                format!(
                    "{} was left by a rebuild that did not finish (__livestore_rebuild has no completion row): LiveStore rebuilds it from the log at its next boot, and it is not to be trusted as a snapshot",
                    db.path.display()
                ),
            ));
        }
        sqlite::trusted(&run.scratch, || {
            run.scratch
                .execute("ATTACH ?1 AS expected", [&db.attach_uri])
        })
        .map_err(|e| Error::sqlite(&db.path, "cannot attach the recorded state", e))?;
        let first = findings.len();
        let tables = compare_into(&run, options, &db.path, &mut findings)?;
        let with_changesets = (!options.skip_changesets).then_some(&db.conn);
        divergence::attribute(
            &run.setup.log,
            with_changesets,
            &run.causes,
            &mut findings,
            first,
        )?;
        let snapshot = Snapshot {
            path: db.path.display().to_string(),
            reason: recorded.reason.clone(),
        };
        (compared(), tables, Some(snapshot))
    } else if std::fs::symlink_metadata(&accepted).is_ok() {
        // Present: read it or say why not (a FIFO, a directory or a link loop where the
        // snapshot should be is an error, never a check that quietly skips the comparison).
        // A file beside the scratch database, not memory: the snapshot of a large state is as
        // large as the state itself.
        run.scratch.attach_new("expected")?;
        snapshot::load(&run.scratch, "expected", &accepted)?;
        let before = findings.len();
        let tables = compare_into(&run, options, &accepted, &mut findings)?;
        divergence::attribute(&run.setup.log, None, &run.causes, &mut findings, before)?;
        let pending = snapshot::pending_for(&run.setup.corpus.eventlog);
        if findings.len() > before {
            if options.write_pending {
                let name = eventlog_name(&run.setup.corpus);
                crate::files::write_atomic_with(&pending, |out| {
                    snapshot::dump_to(&run.scratch, "main", &name, out)
                })?;
                notes.push(format!(
                    "the replay differs from the accepted snapshot: wrote {}; review it and run `rehearse accept`",
                    pending.display()
                ));
            } else {
                notes.push(
                    "the replay differs from the accepted snapshot; no pending snapshot written (CI is set; --pending always writes one)"
                        .into(),
                );
            }
        } else if pending.is_file() && std::fs::remove_file(&pending).is_ok() {
            notes.push(format!(
                "removed {}: the replay matches the accepted snapshot again",
                pending.display()
            ));
        }
        let snapshot = Snapshot {
            path: accepted.display().to_string(),
            reason: "the accepted rehearse snapshot (the corpus has no state database)".into(),
        };
        (compared(), tables, Some(snapshot))
    } else {
        let mut why =
            "no recorded state database and no accepted snapshot (`rehearse record` writes one)"
                .to_string();
        let unrecognized = &run.setup.corpus.unrecognized;
        if !unrecognized.is_empty() {
            why.push_str(&format!(
                "; these files look like state databases but are not named as LiveStore names them: {}",
                unrecognized.join(", ")
            ));
        }
        if !options.log_only {
            findings.push_spilling(Finding::event(
                FindingClass::ComparisonSkipped,
                None,
                None,
                format!(
                    "nothing was compared, so nothing passed: {why}; --log-only accepts a corpus checked on its replay alone"
                ),
            ));
        }
        (skipped(&why), Vec::new(), None)
    };
    run.report(comparison, findings, tables, notes, snapshot, options)
}

/// Replays a corpus and writes its state as the accepted snapshot beside it, returning the
/// report of the replay (no comparison) and the snapshot's path.
pub fn record_corpus(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
) -> Result<(CorpusReport, PathBuf)> {
    record_corpus_observed(path, materializer, options, |_| {})
}

/// [`record_corpus`], telling `observe` about the replay as it goes (for progress).
pub fn record_corpus_observed(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
    observe: impl FnMut(replay::Step<'_>),
) -> Result<(CorpusReport, PathBuf)> {
    let mut run = replay_corpus(path, materializer, options, observe)?;
    let target = snapshot::path_for(&run.setup.corpus.eventlog);
    let name = eventlog_name(&run.setup.corpus);
    // Streamed: a large state's snapshot need not be held in memory whole.
    crate::files::write_atomic_with(&target, |out| {
        snapshot::dump_to(&run.scratch, "main", &name, out)
    })?;
    let pending = snapshot::pending_for(&run.setup.corpus.eventlog);
    if pending.is_file() {
        let _ = std::fs::remove_file(&pending);
    }
    let notes = run.notes.clone();
    let findings = std::mem::take(&mut run.replayed.findings);
    let report = run.report(
        skipped("recording a snapshot"),
        findings,
        Vec::new(),
        notes,
        Some(Snapshot {
            path: target.display().to_string(),
            reason: "written by `rehearse record`".into(),
        }),
        options,
    )?;
    Ok((report, target))
}

/// Promotes the pending snapshot of the corpus at `path`, if there is one.
pub fn accept_corpus(path: &Path) -> Result<Option<PathBuf>> {
    let corpus = Corpus::locate(path)?;
    let pending = snapshot::pending_for(&corpus.eventlog);
    if !pending.is_file() {
        return Ok(None);
    }
    let accepted = snapshot::path_for(&corpus.eventlog);
    std::fs::rename(&pending, &accepted).map_err(|e| Error::io(&accepted, e))?;
    Ok(Some(accepted))
}

fn eventlog_name(corpus: &Corpus) -> String {
    corpus
        .eventlog
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn compared() -> ComparisonStatus {
    ComparisonStatus {
        status: ComparisonState::Compared,
        reason: None,
    }
}

fn skipped(reason: &str) -> ComparisonStatus {
    ComparisonStatus {
        status: ComparisonState::Skipped,
        reason: Some(reason.into()),
    }
}

/// Compares schema `expected` with the replay in `main`, appending divergence findings.
/// `expected` is the file the recorded state was read from, named when the comparison fails.
fn compare_into(
    run: &Replay,
    options: &CheckOptions,
    expected: &Path,
    findings: &mut Findings,
) -> Result<Vec<crate::report::TableReport>> {
    let mut positions = ColumnPositions::default();
    // The comparison cannot be stopped from here: the first failure to read the writer index
    // is kept and reported once it is over.
    let mut unreadable = None;
    let tables = compare::compare(&run.scratch, "expected", "main", &options.compare, |d| {
        if unreadable.is_some() {
            return;
        }
        let cols = positions.of(&run.scratch, &d);
        match divergence_finding(d, &run.replayed.writers, &cols, Sides::REPLAY) {
            Ok(f) => {
                findings.push_spilling(f);
            }
            Err(e) => unreadable = Some(e),
        }
    })
    .map_err(|e| Error::sqlite(expected, "comparison failed", e))?;
    match unreadable {
        Some(e) => Err(e),
        None => Ok(tables),
    }
}
