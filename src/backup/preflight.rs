//! `rehearse preflight`: is this backup package restorable, and how?
//!
//! Checksums alone prove that the files are the ones exported, not that they restore: the log
//! must replay. The pre-flight runs every check, reports each with its outcome, and ends in one
//! verdict: `go` (the snapshot can be restored as it is), `go-replay` (the log is sound but the
//! snapshot is not to be trusted: restore by replaying the log) or `no-go`. A check that fails
//! says which of the two it costs: anything wrong with the log, the manifest or a file that
//! lives outside the log is `no-go`; anything wrong only with the state snapshot is `go-replay`,
//! because the log can rebuild it.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::backup::manifest::{self, MANIFEST_FILE, Manifest, Role};
use crate::check::{self, CheckOptions};
use crate::corpus;
use crate::error::{Error, Result};
use crate::files;
use crate::inspect;
use crate::materialize::Materializer;
use crate::progress::{Progress, Stage};
use crate::replay::Step;
use crate::report::{ComparisonState, CorpusReport, FindingClass, Level};
use crate::sqlite;

/// The pre-flight report format version.
pub const PREFLIGHT_VERSION: u32 = 1;

/// What the operator should do with the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Restore the snapshot as it is.
    Go,
    /// Restore by replaying the log; the snapshot is not to be trusted.
    GoReplay,
    /// Do not restore from this package.
    NoGo,
}

impl Verdict {
    /// The verdict's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Go => "go",
            Verdict::GoReplay => "go-replay",
            Verdict::NoGo => "no-go",
        }
    }
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It does not; `consequence` says what that costs.
    Fail,
    /// Not run: not asked for, or an earlier failure makes it meaningless.
    Skip,
    /// Something the operator must know that is not a failure.
    Info,
}

/// One check of the pre-flight.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What was checked: `manifest`, `file`, `unlisted-files`, `integrity`, `storage-format`,
    /// `schema-hash`, `app-version`, `log-head`, `replay`, `snapshot`, `log-only-restore`.
    pub check: &'static str,
    /// The package file it is about, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// How it came out.
    pub outcome: Outcome,
    /// The verdict a failure leads to (`go-replay` or `no-go`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consequence: Option<Verdict>,
    /// What was found, for a person.
    pub message: String,
}

/// The whole pre-flight.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preflight {
    /// [`PREFLIGHT_VERSION`].
    pub version: u32,
    /// The package directory.
    pub package: String,
    /// The materializer definitions the log was replayed through.
    pub materializers: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// The manifest, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// The replay's own report (findings, per-table counts), when the log was replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<CorpusReport>,
}

/// Gates beyond the package's own consistency.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    /// The state schema hash the app expects (`state<hash>@6.db`); a package of another schema
    /// is `no-go`.
    pub expect_schema_hash: Option<String>,
    /// The oldest app version whose packages may be restored.
    pub min_app_version: Option<String>,
    /// How to replay and compare.
    pub check: CheckOptions,
}

struct Checks {
    list: Vec<Check>,
}

impl Checks {
    fn push(
        &mut self,
        check: &'static str,
        file: Option<&str>,
        outcome: Outcome,
        consequence: Option<Verdict>,
        message: impl Into<String>,
    ) {
        self.list.push(Check {
            check,
            file: file.map(str::to_string),
            outcome,
            consequence: if outcome == Outcome::Fail {
                consequence
            } else {
                None
            },
            message: message.into(),
        });
    }

    fn pass(&mut self, check: &'static str, file: Option<&str>, message: impl Into<String>) {
        self.push(check, file, Outcome::Pass, None, message);
    }

    fn fail(
        &mut self,
        check: &'static str,
        file: Option<&str>,
        consequence: Verdict,
        message: impl Into<String>,
    ) {
        self.push(check, file, Outcome::Fail, Some(consequence), message);
    }

    fn skip(&mut self, check: &'static str, file: Option<&str>, message: impl Into<String>) {
        self.push(check, file, Outcome::Skip, None, message);
    }

    /// The verdict and the reason: the first failure of the gravest consequence.
    fn verdict(&self) -> (Verdict, String) {
        let worst = self
            .list
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .filter_map(|c| c.consequence.map(|v| (v, c)))
            .max_by_key(|(v, _)| *v);
        // `max_by_key` keeps the last of equals; the reason should be the first.
        let first = worst.and_then(|(v, _)| {
            self.list
                .iter()
                .find(|c| c.outcome == Outcome::Fail && c.consequence == Some(v))
                .map(|c| (v, c))
        });
        match first {
            None => (
                Verdict::Go,
                "every check passed: the snapshot can be restored as it is".into(),
            ),
            Some((v, c)) => (
                v,
                match c.file.as_deref() {
                    Some(f) => format!("{f}: {}", c.message),
                    None => c.message.clone(),
                },
            ),
        }
    }
}

/// Why a file's failure costs what it costs.
fn consequence_of(role: Role) -> Verdict {
    match role {
        Role::State => Verdict::GoReplay,
        Role::Eventlog | Role::Auxiliary => Verdict::NoGo,
    }
}

/// A manifest path that stays inside the package.
fn safe_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Runs the pre-flight of the package at `package`: each phase adds its checks, and the
/// gravest failure decides the verdict.
pub fn preflight(
    package: &Path,
    materializer: &mut dyn Materializer,
    options: &PreflightOptions,
) -> Result<Preflight> {
    preflight_observed(package, materializer, options, &mut |_| {})
}

/// [`preflight`], telling `observe` as it checksums the files, checks their integrity and
/// replays the log.
pub fn preflight_observed(
    package: &Path,
    materializer: &mut dyn Materializer,
    options: &PreflightOptions,
    observe: &mut dyn FnMut(Progress),
) -> Result<Preflight> {
    let meta = std::fs::metadata(package).map_err(|e| Error::io(package, e))?;
    if !meta.is_dir() {
        return Err(Error::input(
            package,
            "not a directory; a backup package is a directory",
        ));
    }
    // Every member's type first, before anything in the package is opened.
    let mut present = Vec::new();
    walk(package, package, &mut |rel| present.push(rel.to_string()))?;
    let mut run = Run {
        package,
        checks: Checks { list: Vec::new() },
        unreadable: BTreeSet::new(),
        present,
    };
    let materializers = materializer.describe();
    let Some(manifest) = run.manifest() else {
        for c in ["file", "integrity", "log-head", "replay", "snapshot"] {
            run.checks.skip(c, None, "no usable manifest");
        }
        return Ok(run.finish(materializers, None, None));
    };
    run.files(&manifest, observe)?;
    run.integrity(&manifest, observe);
    run.gates(&manifest, options);
    let Some(eventlog) = run.eventlog(&manifest) else {
        for c in ["log-head", "replay", "snapshot"] {
            run.checks
                .skip(c, None, "the event log is missing or unreadable");
        }
        log_only_losses(&mut run.checks, &manifest);
        return Ok(run.finish(materializers, Some(manifest), None));
    };
    run.log_head(&manifest, &eventlog);
    let report = run.replay(&manifest, &eventlog, materializer, options, observe)?;
    log_only_losses(&mut run.checks, &manifest);
    Ok(run.finish(materializers, Some(manifest), Some(report)))
}

/// One pre-flight in progress: the checks so far, and which files turned out unreadable (left
/// out of the later phases).
struct Run<'a> {
    package: &'a Path,
    checks: Checks,
    unreadable: BTreeSet<Role>,
    /// Every regular file in the package, `/`-separated, relative to it.
    present: Vec<String>,
}

impl Run<'_> {
    fn finish(
        self,
        materializers: String,
        manifest: Option<Manifest>,
        replay: Option<CorpusReport>,
    ) -> Preflight {
        let (verdict, reason) = self.checks.verdict();
        Preflight {
            version: PREFLIGHT_VERSION,
            package: self.package.display().to_string(),
            materializers,
            verdict,
            reason,
            checks: self.checks.list,
            manifest,
            replay,
        }
    }

    /// The manifest: without it nothing says what the files should be.
    fn manifest(&mut self) -> Option<Manifest> {
        let manifest_path = self.package.join(MANIFEST_FILE);
        if std::fs::symlink_metadata(&manifest_path).is_err() {
            self.checks.fail(
                "manifest",
                Some(MANIFEST_FILE),
                Verdict::NoGo,
                "missing: nothing proves these files are the ones that were exported",
            );
            return None;
        }
        match manifest::load(&manifest_path) {
            Ok(m) => {
                self.checks.pass(
                    "manifest",
                    Some(MANIFEST_FILE),
                    format!(
                        "valid (manifest version {}, store {}, exported {} by {} {})",
                        m.manifest_version, m.store_id, m.created_at, m.tool.name, m.tool.version
                    ),
                );
                Some(m)
            }
            Err(e) => {
                self.checks.fail(
                    "manifest",
                    Some(MANIFEST_FILE),
                    Verdict::NoGo,
                    error_text(&e, &manifest_path),
                );
                None
            }
        }
    }

    /// Every listed file, by size and checksum; a failure costs what the file is for. A file
    /// that is missing or does not read as a database is also left out of the replay; one that
    /// only changed is still replayed or compared, to say how it changed. Then: no file the
    /// manifest does not list.
    fn files(&mut self, manifest: &Manifest, observe: &mut dyn FnMut(Progress)) -> Result<()> {
        let present = std::mem::take(&mut self.present);
        observe(Progress::Begin {
            stage: Stage::Checksum,
            total: Some(manifest.files.iter().map(|f| f.bytes).sum()),
        });
        let mut listed = BTreeSet::new();
        for f in &manifest.files {
            listed.insert(f.path.clone());
            let name = Some(f.path.as_str());
            if !safe_relative(&f.path) {
                self.checks.fail(
                    "file",
                    name,
                    Verdict::NoGo,
                    "the path leaves the package directory",
                );
                self.unreadable.insert(f.role);
                continue;
            }
            let path = self.package.join(&f.path);
            if !present.contains(&f.path) {
                self.checks.fail(
                    "file",
                    name,
                    consequence_of(f.role),
                    format!("{} is missing", role_name(f.role)),
                );
                self.unreadable.insert(f.role);
                continue;
            }
            let (bytes, sha256) = manifest::digest(&path)?;
            observe(Progress::Advance(bytes));
            if bytes != f.bytes {
                self.checks.fail(
                    "file",
                    name,
                    consequence_of(f.role),
                    format!(
                        "{bytes} bytes, the manifest says {} (truncated or replaced)",
                        f.bytes
                    ),
                );
            } else if sha256 != f.sha256 {
                self.checks.fail(
                    "file",
                    name,
                    consequence_of(f.role),
                    format!(
                        "SHA-256 {sha256} differs from the manifest's {} (changed since export)",
                        f.sha256
                    ),
                );
            } else {
                self.checks
                    .pass("file", name, format!("{bytes} bytes, SHA-256 matches"));
            }
        }
        if manifest
            .files
            .iter()
            .filter(|f| f.role == Role::State)
            .count()
            > 1
        {
            self.checks.fail(
                "file",
                None,
                Verdict::NoGo,
                "the manifest lists more than one state database",
            );
        }
        self.store_names(manifest);
        let unlisted: Vec<String> = present
            .into_iter()
            .filter(|rel| rel != MANIFEST_FILE && !listed.contains(rel))
            .collect();
        if unlisted.is_empty() {
            self.checks
                .pass("unlisted-files", None, "no file outside the manifest");
        } else {
            self.checks.fail(
                "unlisted-files",
                None,
                Verdict::NoGo,
                format!(
                    "not in the manifest: {} (the package is not what was exported)",
                    unlisted.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// Every auxiliary file has a name of its own in the store directory: a restore installs it
    /// beside the log and the state under its file name, so one named like the store's own
    /// files (another store's `eventlog@6.db`) would replace them.
    fn store_names(&mut self, manifest: &Manifest) {
        let mut seen = BTreeSet::new();
        for f in manifest.files.iter().filter(|f| f.role == Role::Auxiliary) {
            let name = Path::new(&f.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let why = if corpus::is_store_file_name(&name) {
                Some(format!(
                    "an auxiliary file named {name:?} would be installed under the name of one of the store's own LiveStore files, replacing it"
                ))
            } else if name.starts_with('.') {
                Some(format!(
                    "an auxiliary file named {name:?} would be installed as a hidden file, where rehearse keeps its own"
                ))
            } else if !seen.insert(name.clone()) {
                Some(format!(
                    "two auxiliary files would be installed as {name:?}"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                self.checks.fail(
                    "file",
                    Some(f.path.as_str()),
                    Verdict::NoGo,
                    format!("{why}: restore it separately"),
                );
                self.unreadable.insert(f.role);
            }
        }
    }

    /// Each SQLite file reads as a sound database.
    fn integrity(&mut self, manifest: &Manifest, observe: &mut dyn FnMut(Progress)) {
        let databases: Vec<_> = manifest
            .files
            .iter()
            .filter(|f| {
                let path = self.package.join(&f.path);
                safe_relative(&f.path)
                    && path.is_file()
                    && (f.role != Role::Auxiliary || files::is_sqlite(&path))
            })
            .collect();
        observe(Progress::Begin {
            stage: Stage::Integrity,
            total: Some(databases.len() as u64),
        });
        for f in databases {
            let path = self.package.join(&f.path);
            let name = Some(f.path.as_str());
            match integrity(&path) {
                Ok(()) => self
                    .checks
                    .pass("integrity", name, "PRAGMA integrity_check: ok"),
                Err(msg) => {
                    self.checks
                        .fail("integrity", name, consequence_of(f.role), msg);
                    self.unreadable.insert(f.role);
                }
            }
            observe(Progress::Advance(1));
        }
    }

    /// The storage format, and the operator's schema-hash and app-version gates.
    fn gates(&mut self, manifest: &Manifest, options: &PreflightOptions) {
        let checks = &mut self.checks;
        if manifest.storage_format_version == corpus::STORAGE_FORMAT {
            checks.pass(
                "storage-format",
                None,
                format!(
                    "LiveStore storage format {}",
                    manifest.storage_format_version
                ),
            );
        } else {
            checks.fail(
                "storage-format",
                None,
                Verdict::NoGo,
                format!(
                    "LiveStore storage format {} is not supported; rehearse reads format {}",
                    manifest.storage_format_version,
                    corpus::STORAGE_FORMAT
                ),
            );
        }
        match (&options.expect_schema_hash, &manifest.state_schema_hash) {
            (None, _) => checks.skip("schema-hash", None, "no --expect-schema-hash given"),
            (Some(want), Some(have)) if want == have => checks.pass(
                "schema-hash",
                None,
                format!("state schema hash {have}, as expected"),
            ),
            (Some(want), have) => checks.fail(
                "schema-hash",
                None,
                Verdict::NoGo,
                format!(
                    "the package's state schema hash is {}, the app expects {want}: it was taken from another version of the app's tables",
                    have.as_deref().unwrap_or("absent")
                ),
            ),
        }
        match &options.min_app_version {
            None => checks.skip("app-version", None, "no --min-app-version given"),
            Some(min) => match app_version_gate(min, manifest.app_version.as_deref()) {
                Ok(msg) => checks.pass("app-version", None, msg),
                Err(msg) => checks.fail("app-version", None, Verdict::NoGo, msg),
            },
        }
    }

    /// The event log, when it is listed and readable.
    fn eventlog(&self, manifest: &Manifest) -> Option<PathBuf> {
        manifest
            .file(Role::Eventlog)
            .map(|f| self.package.join(&f.path))
            .filter(|_| !self.unreadable.contains(&Role::Eventlog))
    }

    /// The log as the manifest describes it: events, last event, sync head, counts per name.
    fn log_head(&mut self, manifest: &Manifest, eventlog: &Path) {
        let log_name = manifest.file(Role::Eventlog).map(|f| f.path.as_str());
        let ins = match inspect::inspect_log(eventlog) {
            Ok(ins) => ins,
            Err(e) => {
                self.checks.fail(
                    "log-head",
                    log_name,
                    Verdict::NoGo,
                    error_text(&e, eventlog),
                );
                return;
            }
        };
        let mut diffs = Vec::new();
        if ins.events != manifest.events {
            diffs.push(format!(
                "{} events, the manifest says {}",
                ins.events, manifest.events
            ));
        }
        if ins.last != manifest.last_event {
            diffs.push(format!(
                "last event {}, the manifest says {}",
                seq_text(ins.last),
                seq_text(manifest.last_event)
            ));
        }
        if ins.sync_head != manifest.sync_head {
            diffs.push(format!(
                "sync head {:?}, the manifest says {:?}",
                ins.sync_head, manifest.sync_head
            ));
        }
        if ins.names != manifest.event_counts {
            let names: BTreeSet<&String> = ins
                .names
                .keys()
                .chain(manifest.event_counts.keys())
                .collect();
            let differing: Vec<String> = names
                .into_iter()
                .filter(|n| ins.names.get(*n) != manifest.event_counts.get(*n))
                .map(|n| {
                    format!(
                        "{n} {} (manifest {})",
                        ins.names.get(n).copied().unwrap_or(0),
                        manifest.event_counts.get(n).copied().unwrap_or(0)
                    )
                })
                .collect();
            diffs.push(format!("events per name differ: {}", differing.join(", ")));
        }
        if diffs.is_empty() {
            self.checks.pass(
                "log-head",
                log_name,
                format!(
                    "{} events up to {}, sync head {}, counts per name as in the manifest",
                    ins.events,
                    seq_text(ins.last),
                    ins.sync_head
                        .map(|h| h.to_string())
                        .unwrap_or("none".into())
                ),
            );
        } else {
            self.checks
                .fail("log-head", log_name, Verdict::NoGo, diffs.join("; "));
        }
    }

    /// The replay of the whole log, and the snapshot held against it.
    fn replay(
        &mut self,
        manifest: &Manifest,
        eventlog: &Path,
        materializer: &mut dyn Materializer,
        options: &PreflightOptions,
        observe: &mut dyn FnMut(Progress),
    ) -> Result<CorpusReport> {
        let log_name = manifest.file(Role::Eventlog).map(|f| f.path.as_str());
        let state_entry = manifest.file(Role::State);
        let state_ok = state_entry.is_some() && !self.unreadable.contains(&Role::State);
        let mut check_options = options.check.clone();
        check_options.no_compare = !state_ok;
        check_options.state = state_entry
            .filter(|_| state_ok)
            .map(|f| self.package.join(&f.path));
        check_options.keep = None;
        check_options.write_pending = false;
        // A damaged snapshot is left out altogether: the log is replayed on its own.
        check_options.log_alone = !state_ok;
        check_options.log_only = !state_ok;
        let corpus = if state_ok { self.package } else { eventlog };
        observe(Progress::Begin {
            stage: Stage::Replay,
            total: crate::eventlog::EventLog::open(eventlog)
                .and_then(|log| log.count())
                .ok(),
        });
        let report =
            check::check_corpus_observed(corpus, materializer, &check_options, rows_read(observe))?;
        let blocking: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Level::Error && !about_snapshot(f.class))
            .collect();
        if let Some(first) = blocking.first() {
            let mut classes: Vec<&str> = blocking.iter().map(|f| f.class.as_str()).collect();
            classes.dedup();
            self.checks.fail(
                "replay",
                log_name,
                Verdict::NoGo,
                format!(
                    "the log does not replay: {} ({}); the first at {} {}: {}",
                    crate::text::count(blocking.len(), "error-class finding"),
                    classes.join(", "),
                    first
                        .seq()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "the log".into()),
                    first.name.as_deref().unwrap_or(""),
                    first.message
                ),
            );
        } else {
            self.checks.pass(
                "replay",
                log_name,
                format!(
                    "{} events replayed through {}: {} applied, no error-class finding",
                    report.events,
                    materializer.describe(),
                    report.applied
                ),
            );
        }
        let state_name = state_entry.map(|f| f.path.as_str());
        if !blocking.is_empty() {
            self.checks.skip(
                "snapshot",
                state_name,
                "the log does not replay, so the snapshot cannot be held against it",
            );
        } else if state_entry.is_none() {
            self.checks.fail(
                "snapshot",
                None,
                Verdict::GoReplay,
                "the package holds no state snapshot: restore by replaying the log",
            );
        } else if !state_ok {
            self.checks.fail(
                "snapshot",
                state_name,
                Verdict::GoReplay,
                "the snapshot is missing or unreadable (above): restore by replaying the log",
            );
        } else if report.comparison.status != ComparisonState::Compared {
            self.checks.fail(
                "snapshot",
                state_name,
                Verdict::GoReplay,
                "the snapshot could not be compared: restore by replaying the log",
            );
        } else {
            self.snapshot(state_name, &report);
        }
        Ok(report)
    }

    /// The snapshot against the replay: trusted when the replayed state equals it.
    fn snapshot(&mut self, state_name: Option<&str>, report: &CorpusReport) {
        let diverging: Vec<_> = report
            .findings
            .iter()
            .filter(|f| about_snapshot(f.class))
            .collect();
        let rows: u64 = report.tables.iter().map(|t| t.rows_expected).sum();
        let Some(first) = diverging.first() else {
            self.checks.pass(
                "snapshot",
                state_name,
                format!(
                    "snapshot trusted: the replayed state equals it ({} tables, {rows} rows)",
                    report.tables.len()
                ),
            );
            return;
        };
        let tables: BTreeSet<&str> = diverging
            .iter()
            .filter_map(|f| f.table.as_deref())
            .collect();
        self.checks.fail(
            "snapshot",
            state_name,
            Verdict::GoReplay,
            format!(
                "snapshot diverges: restore by replaying the log ({} from the replay{}; the first: {})",
                crate::text::count(diverging.len(), "difference"),
                if tables.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", tables.into_iter().collect::<Vec<_>>().join(", "))
                },
                first.message
            ),
        );
    }
}

/// Findings that say the snapshot, not the log, is wrong.
fn about_snapshot(class: FindingClass) -> bool {
    matches!(
        class,
        FindingClass::StateDivergence
            | FindingClass::FirstDivergence
            | FindingClass::UnfinishedRebuild
    )
}

/// What a restore from the log alone would not bring back.
fn log_only_losses(checks: &mut Checks, manifest: &Manifest) {
    let aux: Vec<String> = manifest
        .files
        .iter()
        .filter(|f| f.role == Role::Auxiliary)
        .map(|f| {
            format!(
                "{} ({} bytes{})",
                f.path,
                f.bytes,
                f.source
                    .as_deref()
                    .map(|s| format!(", from {s}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let message = if aux.is_empty() {
        "nothing listed in the package lives outside the log: a log-only restore rebuilds the whole state".to_string()
    } else {
        format!(
            "a log-only restore rebuilds the state from the log but not {}: these live outside the log and must be restored from the package beside it (restore does)",
            aux.join(", ")
        )
    };
    checks.push("log-only-restore", None, Outcome::Info, None, message);
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Eventlog => "the event log",
        Role::State => "the state snapshot",
        Role::Auxiliary => "an auxiliary file",
    }
}

fn seq_text(s: Option<crate::eventlog::SeqNum>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
}

/// An error's message without the path the check line already names.
fn error_text(e: &Error, path: &Path) -> String {
    let text = e.to_string();
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix)
        .map(str::to_string)
        .unwrap_or(text)
}

/// Turns a replay's [`Step`]s into [`Progress::Advance`]s of rows read: a step says how many
/// rows have been read so far, an advance how many more.
fn rows_read(observe: &mut dyn FnMut(Progress)) -> impl FnMut(Step<'_>) + '_ {
    let mut seen = 0;
    move |step| {
        if let Step::Read(n) = step
            && n > seen
        {
            observe(Progress::Advance(n - seen));
            seen = n;
        }
    }
}

/// `PRAGMA integrity_check` on a file opened without touching it.
fn integrity(path: &Path) -> std::result::Result<(), String> {
    let db = sqlite::open_input(path).map_err(|e| error_text(&e, path))?;
    let mut stmt = db
        .conn
        .prepare("PRAGMA integrity_check")
        .map_err(|e| e.to_string())?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    if lines == ["ok"] {
        Ok(())
    } else {
        let shown: Vec<&str> = lines.iter().take(3).map(String::as_str).collect();
        Err(format!(
            "PRAGMA integrity_check: {}{}",
            shown.join("; "),
            if lines.len() > 3 {
                format!(" (and {} more)", lines.len() - 3)
            } else {
                String::new()
            }
        ))
    }
}

/// `--min-app-version`: both sides are semantic versions (a leading `v` allowed).
fn app_version_gate(min: &str, have: Option<&str>) -> std::result::Result<String, String> {
    let parse = |s: &str| semver::Version::parse(s.trim().trim_start_matches('v'));
    let want =
        parse(min).map_err(|e| format!("--min-app-version {min:?} is not a version: {e}"))?;
    let Some(have) = have else {
        return Err(format!(
            "the manifest records no app version, so it cannot be held against {min}"
        ));
    };
    let v = parse(have)
        .map_err(|e| format!("the manifest's app version {have:?} is not a version: {e}"))?;
    if v >= want {
        Ok(format!("app version {have} (at least {min})"))
    } else {
        Err(format!(
            "app version {have} is older than {min}: this package predates what the app can restore"
        ))
    }
}

/// Calls `f` with the `/`-separated path of every file below `dir`, relative to `root`.
///
/// `rehearse export` writes regular files and directories only, so anything else is refused
/// outright: a symbolic link could lead out of the package (or into `/proc`, or back to its own
/// directory, where the walk would never end), and a FIFO would block the first read.
fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str)) -> Result<()> {
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let t = e.file_type().map_err(|err| Error::io(e.path(), err))?;
        entries.push((e.path(), t));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, t) in entries {
        if t.is_dir() {
            walk(root, &p, f)?;
        } else if t.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            f(&rel.join("/"));
        } else {
            return Err(not_package_member(&p, &t));
        }
    }
    Ok(())
}

/// The error for a package member that is not a regular file or a directory.
fn not_package_member(path: &Path, t: &std::fs::FileType) -> Error {
    let target = if t.is_symlink() {
        std::fs::read_link(path)
            .map(|l| format!(" to {}", l.display()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Error::input(
        path,
        format!(
            "is {}{target}; a backup package holds only regular files and directories, as rehearse export writes it",
            files::describe_type(t)
        ),
    )
}

/// Human rendering of a pre-flight.
pub fn render(p: &Preflight) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = write!(out, "preflight {}", p.package);
    if let Some(m) = &p.manifest {
        let _ = write!(
            out,
            " (store {}, {} events up to {}, exported {} by {} {}{})",
            m.store_id,
            m.events,
            seq_text(m.last_event),
            m.created_at,
            m.tool.name,
            m.tool.version,
            m.app_version
                .as_deref()
                .map(|v| format!(", app {v}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out);
    for c in &p.checks {
        let outcome = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
            Outcome::Info => "info",
        };
        let _ = writeln!(
            out,
            "  {outcome:<4}  {:<16} {}{}{}",
            c.check,
            c.file
                .as_deref()
                .map(|f| format!("{f}: "))
                .unwrap_or_default(),
            c.message,
            c.consequence
                .map(|v| format!("  [{}]", v.as_str()))
                .unwrap_or_default()
        );
    }
    let headline = match p.verdict {
        Verdict::Go => "GO: restore the snapshot as it is",
        Verdict::GoReplay => {
            "GO-REPLAY: restore by replaying the log (rehearse restore --from-log)"
        }
        Verdict::NoGo => "NO-GO: do not restore from this package",
    };
    let _ = writeln!(out, "\n{headline}\n  {}", p.reason);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_package() {
        assert!(safe_relative("eventlog.db"));
        assert!(safe_relative("aux/ledger.db"));
        assert!(!safe_relative("../eventlog.db"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative("aux/../../x"));
        assert!(!safe_relative("./x"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn app_versions_compare_as_semantic_versions() {
        assert!(app_version_gate("1.4.0", Some("1.10.0")).is_ok());
        assert!(app_version_gate("v1.4.0", Some("1.4.0")).is_ok());
        let old = app_version_gate("1.4.0", Some("1.3.9")).unwrap_err();
        assert!(old.contains("older than 1.4.0"), "{old}");
        assert!(app_version_gate("1.4.0", None).is_err());
        assert!(app_version_gate("1.4.0", Some("nightly")).is_err());
    }
}
