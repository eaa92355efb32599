//! One corpus through the whole pipeline: locate → replay → compare → report.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::compare::{self, CompareOptions, RowDivergence};
use crate::corpus::{self, Corpus};
use crate::definitions::Ddl;
use crate::error::{Error, Result};
use crate::eventlog::EventLog;
use crate::materialize::{Materializer, Source};
use crate::replay::recorded::{self, ChangesetCheck};
use crate::replay::{self, ReplayOptions};
use crate::report::{
    ChangesetStats, ComparisonState, ComparisonStatus, CorpusReport, Divergence, EventRef, Finding,
    FindingClass, Severities, Snapshot, Verdict,
};
use crate::snapshot;
use crate::sqlite;
use crate::value::SqlValue;
use crate::replay::writers::WriterIndex;
use std::collections::{HashMap, HashSet};

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
}

/// A corpus replayed into its scratch database, before comparison.
struct Replay {
    corpus: Corpus,
    log: EventLog,
    snapshot: Option<(PathBuf, String)>,
    snapshot_db: Option<sqlite::InputDb>,
    scratch: sqlite::Scratch,
    replayed: replay::Replayed,
    notes: Vec<String>,
    changesets: Option<ChangesetStats>,
    first_divergence: Option<Finding>,
}

/// Checks every corpus with `check`, in `pool`, and returns the reports in the corpora's order
/// (a corpus whose check fails gets an error report). A materializer that is costly to start
/// (the plugin's helpers) is kept from one corpus to the next unless `fresh`: each of the
/// pool's lanes takes a fixed share of the corpora ([`corpus::lane_shares`]), so which
/// corpora share one depends only on the corpora, never on timing; after an error the lane's
/// next corpus gets a new one. Otherwise every corpus gets its own materializer, on whichever
/// thread is free.
pub fn check_each(
    pool: &rayon::ThreadPool,
    corpora: &[PathBuf],
    source: &Source,
    fresh: bool,
    check: impl Fn(&Path, &mut dyn Materializer) -> Result<CorpusReport> + Sync,
) -> Vec<CorpusReport> {
    use rayon::prelude::*;
    let failed =
        |path: &Path, e: Error| CorpusReport::error(&path.display().to_string(), e.to_string());
    let shares = if source.costly_to_start() && !fresh {
        let lanes = pool.current_num_threads().clamp(1, corpora.len().max(1));
        corpus::lane_shares(corpora, lanes)
    } else {
        // A share of one: rayon hands each corpus to whichever thread is free.
        (0..corpora.len()).map(|i| vec![i]).collect()
    };
    let mut checked: Vec<(usize, CorpusReport)> = pool.install(|| {
        shares
            .par_iter()
            .flat_map_iter(|share| {
                let mut materializer: Option<Box<dyn Materializer>> = None;
                let mut out = Vec::new();
                for &i in share {
                    let path = &corpora[i];
                    let m = match materializer.take().map_or_else(|| source.instantiate(), Ok) {
                        Ok(m) => materializer.insert(m),
                        Err(e) => {
                            out.push((i, failed(path, e)));
                            continue;
                        }
                    };
                    match check(path, m.as_mut()) {
                        Ok(report) => out.push((i, report)),
                        Err(e) => {
                            // The helper may be what failed: the next corpus gets new ones.
                            materializer = None;
                            out.push((i, failed(path, e)));
                        }
                    }
                }
                out
            })
            .collect()
    });
    checked.sort_by_key(|(i, _)| *i);
    checked.into_iter().map(|(_, r)| r).collect()
}

fn replay_corpus(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
    observe: impl FnMut(replay::Step<'_>),
) -> Result<Replay> {
    let corpus = Corpus::locate(path)?;
    let log = EventLog::open(&corpus.eventlog)?;
    let mut notes = corpus.notes.clone();
    notes.extend(log.notes().iter().cloned());

    let snapshot = match &options.state {
        Some(p) => Some((p.clone(), "named with --state".to_string())),
        None => corpus::choose_snapshot(&corpus.snapshots, &materializer.referenced_columns())?,
    };
    let snapshot_db = match &snapshot {
        Some((p, _)) => Some(sqlite::open_input(p)?),
        None => None,
    };
    if let Some(db) = &snapshot_db {
        notes.extend(db.notes.iter().cloned());
    }

    let scratch = scratch_for(
        path,
        materializer,
        snapshot_db.as_ref(),
        options.replay.scratch_dir.as_deref(),
    )?;

    // Hold every event against LiveStore's recorded changeset, where the state has them.
    let recorded_conn = snapshot_db
        .as_ref()
        .map(|db| &db.conn)
        .filter(|c| !options.no_compare && !options.skip_changesets && recorded::count(c) > 0);
    let mut replay_options = options.replay.clone();
    replay_options.values |= recorded_conn.is_some();
    let mut recorded_stmt = match recorded_conn {
        Some(c) => Some(c.prepare(recorded::RECORDED_IN_ORDER).map_err(|e| {
            Error::sqlite(
                snapshot_path(&snapshot),
                "cannot read the recorded changesets",
                e,
            )
        })?),
        None => None,
    };
    let mut check = match (recorded_conn, recorded_stmt.as_mut()) {
        (Some(c), Some(stmt)) => Some(ChangesetCheck::new(
            c,
            &scratch,
            stmt.query([]).map_err(|e| {
                Error::sqlite(
                    snapshot_path(&snapshot),
                    "cannot read the recorded changesets",
                    e,
                )
            })?,
        )),
        _ => None,
    };
    let mut observe = observe;
    let replayed = replay::replay(&log, materializer, &scratch, &replay_options, |step| {
        if let (Some(check), replay::Step::Applied { event, changes }) = (&mut check, &step) {
            check.event(event, changes);
        }
        observe(step)
    })?;
    let (changesets, first_divergence) = match check.map(ChangesetCheck::finish) {
        Some((stats, first)) => (Some(stats), first),
        None => (None, None),
    };
    drop(recorded_stmt);
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
        crate::files::write_database(&scratch, keep)?;
    }
    Ok(Replay {
        corpus,
        log,
        snapshot,
        snapshot_db,
        scratch,
        replayed,
        notes,
        changesets,
        first_divergence,
    })
}

impl Replay {
    fn report(
        self,
        comparison: ComparisonStatus,
        findings: Vec<Finding>,
        tables: Vec<crate::report::TableReport>,
        notes: Vec<String>,
        snapshot: Option<Snapshot>,
        options: &CheckOptions,
    ) -> CorpusReport {
        let mut report = CorpusReport {
            corpus: self.corpus.name.clone(),
            kind: Some(self.corpus.kind),
            eventlog: Some(self.corpus.eventlog.display().to_string()),
            snapshot,
            sync_head: self.log.sync_status().map(|s| s.head),
            events: self.replayed.events,
            applied: self.replayed.applied,
            verdict: Verdict::Pass,
            comparison,
            changesets: self.changesets.clone(),
            findings,
            tables,
            notes,
            error: None,
            stale_baseline: Vec::new(),
            strict_baseline: false,
        };
        report.finish(&options.severities);
        report
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
    let run = replay_corpus(path, materializer, options, observe)?;
    let mut notes = run.notes.clone();
    let mut findings = run.replayed.findings.clone();
    findings.extend(run.first_divergence.clone());
    let accepted = snapshot::path_for(&run.corpus.eventlog);
    let (comparison, tables, snapshot) = if options.no_compare {
        (skipped("comparison turned off"), Vec::new(), None)
    } else if let Some(db) = &run.snapshot_db {
        run.scratch
            .execute("ATTACH ?1 AS expected", [&db.attach_uri])
            .map_err(|e| Error::sqlite(&db.path, "cannot attach the recorded state", e))?;
        let tables = compare_into(&run, options, &mut findings)
            .map_err(|e| Error::sqlite(&db.path, "comparison failed", e))?;
        blame(&run, &db.conn, &mut findings)?;
        let snapshot = run.snapshot.as_ref().map(|(p, reason)| Snapshot {
            path: p.display().to_string(),
            reason: reason.clone(),
        });
        (compared(), tables, snapshot)
    } else if accepted.is_file() {
        run.scratch
            .execute_batch("ATTACH ':memory:' AS expected")
            .map_err(|e| Error::scratch("attach the snapshot", e))?;
        snapshot::load(&run.scratch, "expected", &accepted)?;
        let before = findings.len();
        let tables = compare_into(&run, options, &mut findings)
            .map_err(|e| Error::sqlite(&accepted, "comparison failed", e))?;
        let pending = snapshot::pending_for(&run.corpus.eventlog);
        if findings.len() > before {
            if options.write_pending {
                let text = snapshot::dump(&run.scratch, "main", &eventlog_name(&run.corpus))
                    .map_err(|e| Error::scratch("dump the replayed state", e))?;
                crate::files::write_atomic(&pending, text.as_bytes())?;
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
        (
            skipped(
                "no recorded state database and no accepted snapshot (`rehearse record` writes one)",
            ),
            Vec::new(),
            None,
        )
    };
    Ok(run.report(comparison, findings, tables, notes, snapshot, options))
}

/// Adds to every divergent row the args of the event blamed for it and, where LiveStore
/// recorded changesets, the event that last wrote the row in LiveStore's own run.
fn blame(run: &Replay, recorded: &Connection, findings: &mut [Finding]) -> Result<()> {
    let divergent: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.class == FindingClass::StateDivergence && f.key.is_some())
        .map(|(i, _)| i)
        .collect();
    if divergent.is_empty() {
        return Ok(());
    }
    let key_of = |f: &Finding| {
        (
            f.table.clone().unwrap_or_default(),
            SqlValue::encode_key(f.key.as_deref().unwrap_or_default()),
        )
    };
    let wanted: HashSet<(String, Vec<u8>)> =
        divergent.iter().map(|&i| key_of(&findings[i])).collect();
    let writers = if recorded::count(recorded) > 0 {
        recorded::last_writers(recorded, &wanted)
    } else {
        HashMap::new()
    };
    for i in divergent {
        let f = &mut findings[i];
        if let Some(seq) = f.seq() {
            f.args = run
                .log
                .event_at(seq.global, seq.client)?
                .map(|e| e.args_json);
        }
        if let Some(seq) = writers.get(&key_of(f)) {
            let name = run
                .log
                .event_at(seq.global, seq.client)?
                .map(|e| e.name)
                .unwrap_or_default();
            f.message
                .push_str(&format!("; LiveStore last wrote it at {seq} ({name})"));
            f.recorded_writer = Some(EventRef {
                seq_num_global: seq.global,
                seq_num_client: seq.client,
                seq_num_rebase_generation: seq.rebase_generation,
                name,
            });
        }
    }
    Ok(())
}

/// Replays a corpus and writes its state as the accepted snapshot beside it, returning the
/// report of the replay (no comparison) and the snapshot's path.
pub fn record_corpus(
    path: &Path,
    materializer: &mut dyn Materializer,
    options: &CheckOptions,
) -> Result<(CorpusReport, PathBuf)> {
    let run = replay_corpus(path, materializer, options, |_| {})?;
    let target = snapshot::path_for(&run.corpus.eventlog);
    let text = snapshot::dump(&run.scratch, "main", &eventlog_name(&run.corpus))
        .map_err(|e| Error::scratch("dump the replayed state", e))?;
    crate::files::write_atomic(&target, text.as_bytes())?;
    let pending = snapshot::pending_for(&run.corpus.eventlog);
    if pending.is_file() {
        let _ = std::fs::remove_file(&pending);
    }
    let notes = run.notes.clone();
    let findings = run.replayed.findings.clone();
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
    );
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

fn snapshot_path(snapshot: &Option<(PathBuf, String)>) -> PathBuf {
    snapshot
        .as_ref()
        .map(|(p, _)| p.clone())
        .unwrap_or_default()
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
fn compare_into(
    run: &Replay,
    options: &CheckOptions,
    findings: &mut Vec<Finding>,
) -> rusqlite::Result<Vec<crate::report::TableReport>> {
    let mut positions = ColumnPositions::default();
    compare::compare(&run.scratch, "expected", "main", &options.compare, |d| {
        let cols = positions.of(&run.scratch, &d);
        findings.push(divergence_finding(
            d,
            &run.replayed.writers,
            &cols,
            Sides::REPLAY,
        ))
    })
}

/// Compares two databases (`a` expected, `b` actual) as `rehearse diff` does.
pub fn diff_databases(a: &Path, b: &Path, options: &CompareOptions) -> Result<CorpusReport> {
    let da = sqlite::open_input(a)?;
    let db = sqlite::open_input(b)?;
    let conn = sqlite::open_scratch()?;
    conn.execute("ATTACH ?1 AS a", [&da.attach_uri])
        .map_err(|e| Error::sqlite(a, "cannot attach", e))?;
    conn.execute("ATTACH ?1 AS b", [&db.attach_uri])
        .map_err(|e| Error::sqlite(b, "cannot attach", e))?;
    let writers = WriterIndex::default();
    let mut findings = Vec::new();
    let tables = compare::compare(&conn, "a", "b", options, |d| {
        findings.push(divergence_finding(d, &writers, &[], Sides::DIFF))
    })
    .map_err(|e| Error::sqlite(b, "comparison failed", e))?;
    let mut report = CorpusReport {
        corpus: format!("{} vs {}", a.display(), b.display()),
        kind: None,
        eventlog: None,
        snapshot: Some(Snapshot {
            path: a.display().to_string(),
            reason: "the expected side".into(),
        }),
        sync_head: None,
        events: 0,
        applied: 0,
        verdict: Verdict::Pass,
        comparison: ComparisonStatus {
            status: ComparisonState::Compared,
            reason: None,
        },
        changesets: None,
        findings,
        tables,
        notes: da.notes.iter().chain(&db.notes).cloned().collect(),
        error: None,
        stale_baseline: Vec::new(),
        strict_baseline: false,
    };
    report.finish(&Severities::default());
    Ok(report)
}

/// A scratch database holding the state DDL the materializer names (its own, or the recorded
/// state database's), checked against the materializer.
pub fn scratch_for(
    corpus: &Path,
    materializer: &mut dyn Materializer,
    recorded: Option<&sqlite::InputDb>,
    dir: Option<&Path>,
) -> Result<sqlite::Scratch> {
    let scratch = sqlite::Scratch::open(dir)?;
    match materializer.ddl() {
        Ddl::Sql { text, source } => {
            scratch
                .execute_batch(text)
                .map_err(|e| Error::Definitions {
                    path: source.clone(),
                    line: None,
                    event: None,
                    message: format!("the state DDL does not run: {}", replay::sqlite_message(e)),
                })?;
        }
        Ddl::Recorded => {
            let Some(db) = recorded else {
                return Err(Error::input(
                    corpus,
                    format!(
                        "the materializers ({}) take their DDL from the recorded state database, but this corpus has none; give `ddl_file` in their [state] table",
                        materializer.describe()
                    ),
                ));
            };
            copy_ddl(&db.conn, &db.path, &scratch)?;
        }
    }
    materializer.prepare(&scratch)?;
    Ok(scratch)
}

/// The recorded state database a corpus would be compared with (the one named, or the one
/// chosen among those beside its log), opened; and why that one.
pub fn recorded_state(
    corpus: &Corpus,
    named: Option<&Path>,
    materializer: &dyn Materializer,
) -> Result<Option<(sqlite::InputDb, String)>> {
    let chosen = match named {
        Some(p) => Some((p.to_path_buf(), "named with --state".to_string())),
        None => corpus::choose_snapshot(&corpus.snapshots, &materializer.referenced_columns())?,
    };
    chosen
        .map(|(p, reason)| Ok((sqlite::open_input(&p)?, reason)))
        .transpose()
}

/// Copies the schema of a recorded state database (FORMAT.md §14 step 5): every `CREATE`
/// statement in `sqlite_master` order, tables before the indexes on them.
pub fn copy_ddl(source: &Connection, source_path: &Path, target: &Connection) -> Result<()> {
    let mut stmt = source
        .prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
        )
        .map_err(|e| Error::sqlite(source_path, "cannot read the schema", e))?;
    let sqls: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sqlite(source_path, "cannot read the schema", e))?;
    for sql in sqls {
        target.execute_batch(&sql).map_err(|e| {
            Error::input(
                source_path,
                format!(
                    "its schema does not recreate: {} (in `{}`)",
                    replay::sqlite_message(e),
                    crate::text::truncate(&sql)
                ),
            )
        })?;
    }
    Ok(())
}

fn show_key(d: &RowDivergence) -> String {
    let vals: Vec<String> = d.key.iter().map(ToString::to_string).collect();
    if d.key_columns.len() == 1 {
        format!("{}[{}]", d.table, vals.join(", "))
    } else {
        let pairs: Vec<String> = d
            .key_columns
            .iter()
            .zip(&vals)
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        format!("{}[{}]", d.table, pairs.join(", "))
    }
}

/// Positions of columns in the replayed tables, for per-column blame.
#[derive(Default)]
struct ColumnPositions(std::collections::HashMap<String, Vec<String>>);

impl ColumnPositions {
    fn of(&mut self, conn: &Connection, d: &RowDivergence) -> Vec<usize> {
        if d.columns.is_empty() {
            return Vec::new();
        }
        let names = self.0.entry(d.table.clone()).or_insert_with(|| {
            sqlite::table_columns(conn, "main", &d.table)
                .map(|cols| cols.into_iter().map(|c| c.name).collect())
                .unwrap_or_default()
        });
        d.columns
            .iter()
            .filter_map(|c| names.iter().position(|n| *n == c.column))
            .collect()
    }
}

/// How the two sides of a comparison are named in messages.
#[derive(Debug, Clone, Copy)]
pub struct Sides {
    /// The expected side, e.g. "the recorded state".
    pub expected: &'static str,
    /// The actual side, e.g. "the replay".
    pub actual: &'static str,
}

impl Sides {
    /// A replay compared with a recorded snapshot.
    pub const REPLAY: Sides = Sides {
        expected: "the recorded state",
        actual: "the replay",
    };
    /// `rehearse diff A B`.
    pub const DIFF: Sides = Sides {
        expected: "A",
        actual: "B",
    };
}

/// Turns a comparison result into a finding, blamed on the event that last wrote the row (for
/// a differing row: the last event that wrote one of the differing columns, whose positions in
/// the replayed table are `columns`).
pub fn divergence_finding(
    d: RowDivergence,
    writers: &WriterIndex,
    columns: &[usize],
    sides: Sides,
) -> Finding {
    let (row_writer, writer) = if d.pk_in_column_order.is_empty() {
        (None, None)
    } else {
        let row = writers.last_writer(&d.table, &d.pk_in_column_order);
        let cols = if columns.is_empty() {
            row
        } else {
            writers.last_writer_of_columns(&d.table, &d.pk_in_column_order, columns)
        };
        (row, cols)
    };
    let Sides { expected, actual } = sides;
    let only_in = |what: String, first: &str, second: &str| {
        format!("{what} is in {first} but not in {second}")
    };
    let message = match d.kind {
        Divergence::RowDiffers => {
            let cols: Vec<&str> = d.columns.iter().map(|c| c.column.as_str()).collect();
            let mut m = format!("{} differs in {}", show_key(&d), cols.join(", "));
            if let Some(w) = writer {
                m.push_str(&format!("; written in {actual} by {} ({})", w.seq, w.name));
                if let Some(r) = row_writer.filter(|r| r.seq != w.seq) {
                    m.push_str(&format!(", row last changed by {} ({})", r.seq, r.name));
                }
            }
            m
        }
        Divergence::RowMissing => {
            let mut m = only_in(show_key(&d), expected, actual);
            if let Some(w) = row_writer {
                m.push_str(&format!("; removed in {actual} by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::RowExtra => {
            let mut m = only_in(show_key(&d), actual, expected);
            if let Some(w) = row_writer {
                m.push_str(&format!("; last written by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::TableMissing => only_in(format!("table {}", d.table), expected, actual),
        Divergence::TableExtra => only_in(format!("table {}", d.table), actual, expected),
        Divergence::ColumnMissing => only_in(
            format!("column {}.{}", d.table, d.column.as_deref().unwrap_or("")),
            expected,
            actual,
        ),
        Divergence::ColumnExtra => only_in(
            format!("column {}.{}", d.table, d.column.as_deref().unwrap_or("")),
            actual,
            expected,
        ),
    };
    let writer = match d.kind {
        Divergence::RowDiffers => writer,
        _ => row_writer,
    };
    // An event that was not applied but meant to write the row, after whoever last wrote it,
    // is the likelier cause.
    let intended = if d.pk_in_column_order.is_empty() {
        None
    } else {
        writers
            .intended(&d.table, &d.pk_in_column_order)
            .filter(|i| writer.is_none_or(|w| i.seq > w.seq))
    };
    let mut message = message;
    if let Some(i) = intended {
        message.push_str(&format!(
            "; {} ({}) meant to write it but was not applied",
            i.seq, i.name
        ));
    }
    let writer = intended.or(writer);
    let row_level = matches!(
        d.kind,
        Divergence::RowDiffers | Divergence::RowMissing | Divergence::RowExtra
    );
    let mut f = Finding::event(
        FindingClass::StateDivergence,
        writer.map(|w| w.seq),
        writer.map(|w| &*w.name),
        message,
    );
    f.table = Some(d.table);
    f.divergence = Some(d.kind);
    if row_level {
        f.key_columns = Some(d.key_columns);
        f.key = Some(d.key);
    }
    f.columns = d.columns;
    f.column = d.column;
    f
}
