//! `rehearse check` as a library call: a [`Plan`] in, a [`Report`] out, and [`Event`]s on the
//! way for whoever shows progress or errors (the nextest shape: the runner emits, reporters
//! consume). Everything the gate decides (the determinism replay, the baseline) happens here,
//! so a Rust caller gets exactly the verdict the command line gives.

use std::path::{Path, PathBuf};

use crate::bisect::{self, BisectOptions};
use crate::check::{CheckOptions, check_corpus_observed, check_each};
use crate::corpus::Partition;
use crate::error::{Error, Result};
use crate::files;
use crate::materialize::{Materializer, Source};
use crate::replay::Step;
use crate::report::baseline::{self, Baseline};
use crate::report::{CorpusReport, Report};

/// What to do with a baseline of acknowledged findings.
#[derive(Debug, Default)]
pub enum BaselineUse {
    /// No baseline: every finding counts.
    #[default]
    None,
    /// Findings it lists do not fail the gate; with `strict`, entries that no longer occur do.
    Apply {
        /// The baseline.
        baseline: Baseline,
        /// Fail on stale entries.
        strict: bool,
        /// The directory its corpora are named relative to (the file's).
        base: PathBuf,
    },
    /// Write this run's findings as the baseline to this file, then check against it.
    Write(PathBuf),
}

/// A `check` run.
pub struct Plan {
    /// The corpora, as found by [`crate::corpus::discover`].
    pub corpora: Vec<PathBuf>,
    /// What replays them.
    pub source: Source,
    /// How the materializers are named in the report.
    pub materializers: String,
    /// Per-corpus settings.
    pub options: CheckOptions,
    /// Corpora checked in parallel (0: one per core).
    pub jobs: usize,
    /// New plugin helpers for every corpus instead of one set per lane.
    pub fresh: bool,
    /// Replay every corpus a second time and report events whose changes differ.
    pub determinism: bool,
    /// The baseline.
    pub baseline: BaselineUse,
    /// The share of the corpora this run checks, for the report.
    pub partition: Option<Partition>,
}

/// What a run tells its observer as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// `rows` more rows of some corpus's log have been read.
    Read {
        /// Rows since the last `Read` of the same corpus.
        rows: u64,
    },
    /// The run's lanes are loading the app (the plugin's helpers starting): no rows are read
    /// until they have, a second or more.
    LoadingApp,
    /// One corpus is done (its report before the baseline is applied).
    CorpusDone(&'a CorpusReport),
    /// The baseline was written.
    BaselineWritten {
        /// The file.
        path: &'a Path,
        /// Entries written.
        findings: usize,
    },
}

/// Checks every corpus of `plan` and returns the report, baseline applied. A corpus that
/// cannot be read gets an error report; only a failure of the run itself (the thread pool, the
/// baseline file) is an `Err`.
pub fn run(plan: &Plan, observe: &(dyn Fn(Event<'_>) + Sync)) -> Result<Report> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs)
        .build()
        .map_err(|e| Error::input("--jobs", e.to_string()))?;
    let check_one = |path: &Path, materializer: &mut dyn Materializer| {
        let mut seen = 0;
        let progress = |step: Step<'_>| {
            if let Step::Read(n) = step {
                observe(Event::Read { rows: n - seen });
                seen = n;
            }
        };
        let mut report = check_corpus_observed(path, materializer, &plan.options, progress)?;
        if plan.determinism {
            // The second replay runs through the materializer that has just replayed this log,
            // so one that keeps state from one event to the next (a plugin module's variables)
            // differs from a new one, as one that reads the clock does.
            let mut first = plan.source.instantiate()?;
            let found = bisect::determinism(
                path,
                first.as_mut(),
                materializer,
                &BisectOptions {
                    state: plan.options.state.clone(),
                    replay: plan.options.replay.clone(),
                    ..Default::default()
                },
            )?;
            report.findings.extend(found);
            report.finish(&plan.options.severities)?;
        }
        observe(Event::CorpusDone(&report));
        Ok::<_, Error>(report)
    };
    if plan.source.costly_to_start() && !plan.corpora.is_empty() {
        observe(Event::LoadingApp);
    }
    let reports = check_each(&pool, &plan.corpora, &plan.source, plan.fresh, check_one);
    let mut report = Report::new(plan.materializers.clone(), reports);
    report.partition = plan.partition.map(|p| p.to_string());
    match &plan.baseline {
        BaselineUse::None => {}
        BaselineUse::Apply {
            baseline,
            strict,
            base,
        } => baseline.apply(&mut report, *strict, base)?,
        BaselineUse::Write(path) => {
            let base = baseline::base_dir(path);
            let written = Baseline::from_report(&report, &base)?;
            files::write_atomic(path, written.to_json().as_bytes())?;
            observe(Event::BaselineWritten {
                path,
                findings: written.findings.len(),
            });
            written.apply(&mut report, false, &base)?;
        }
    }
    Ok(report)
}
