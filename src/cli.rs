//! The command line: clap flags become the library's options before any work starts, so the
//! library never sees clap types.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rehearse::Error;
use rehearse::check::{self, CheckOptions};
use rehearse::compare::CompareOptions;
use rehearse::corpus::{self, Partition};
use rehearse::exit;
use rehearse::inspect;
use rehearse::materialize::Source;
use rehearse::materialize::livestore::PluginConfig;
use rehearse::progress::Progress;
use rehearse::render::{self, human::HumanOptions};
use rehearse::replay::{OnError, ReplayOptions};
use rehearse::report::baseline::Baseline;
use rehearse::report::{CorpusReport, Report, Severities};
use rehearse::validate::EventSchemas;

mod progress;

use progress::{Shown, check_style, events_in, loading_style, progress_bar, replay_steps};

const ABOUT: &str = "Rehearse a log-only restore: replay LiveStore event logs through materializers \
and compare the result with the state LiveStore recorded.";

#[derive(Parser)]
#[command(
    name = "rehearse",
    version,
    about = ABOUT,
    propagate_version = true,
    after_help = "Exit codes (each command's --help says what they mean for it):
  0    pass: nothing to report
  1    findings: the gate failed, a difference, a no-go
  2    usage error, or an input that cannot be read
  3    preflight: go-replay (restore by replaying the log)
  125  check --git-bisect: this commit cannot be tested (git bisect run skips it)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// When to colour human output [NO_COLOR and CLICOLOR are honoured under auto].
    #[arg(long, value_enum, default_value = "auto", global = true)]
    color: ColorWhen,
}

#[derive(Subcommand)]
enum Command {
    Check(Box<CheckArgs>),
    Record(RecordArgs),
    Accept(AcceptArgs),
    Replay(ReplayArgs),
    Bisect(BisectArgs),
    Blame(BlameArgs),
    Diff(DiffArgs),
    Inspect(InspectArgs),
    Export(ExportArgs),
    Preflight(PreflightArgs),
    Restore(RestoreArgs),
    Schema(SchemaArgs),
    Definitions(DefinitionsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Readable report (default).
    Human,
    /// The versioned JSON report (schemas/report.schema.json).
    Json,
    /// JUnit XML: a test suite per corpus, a test case per finding class.
    Junit,
    /// GitHub Actions annotations (::error / ::warning).
    Github,
    /// A Markdown summary for a CI job summary page.
    Markdown,
}

impl Format {
    fn library(self) -> render::Format {
        match self {
            Format::Human => render::Format::Human,
            Format::Json => render::Format::Json,
            Format::Junit => render::Format::Junit,
            Format::Github => render::Format::Github,
            Format::Markdown => render::Format::Markdown,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SimpleFormat {
    /// Readable report (default).
    Human,
    /// JSON.
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnErrorArg {
    /// Roll the failing event back, report it, replay the rest.
    Continue,
    /// Stop at the first event whose materializer fails.
    Stop,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pending {
    /// Write pending snapshots, except in CI (CI set).
    Auto,
    /// Always write them.
    Always,
    /// Never write them.
    Never,
}

#[derive(Args)]
struct CompareArgs {
    /// Leave a table out of the comparison (repeatable).
    #[arg(long, value_name = "TABLE")]
    ignore_table: Vec<String>,

    /// Leave a column out of the comparison, as TABLE.COLUMN or *.COLUMN (repeatable).
    #[arg(long, value_name = "TABLE.COLUMN")]
    ignore_column: Vec<String>,

    /// Also compare LiveStore's own `__livestore_*` tables.
    #[arg(long)]
    include_livestore_tables: bool,
}

impl CompareArgs {
    fn options(&self) -> CompareOptions {
        CompareOptions {
            include_livestore_tables: self.include_livestore_tables,
            ignore_tables: self.ignore_table.clone(),
            ignore_columns: self.ignore_column.clone(),
        }
    }
}

/// Whether to draw progress on stderr (shared by every command that can run for long).
#[derive(Args)]
struct ProgressArgs {
    /// Never show the progress bar (it shows only on a terminal, outside CI).
    #[arg(long)]
    no_progress: bool,
}

/// What defines the replay: the materializers and how they run.
#[derive(Args)]
struct ReplayDefs {
    /// Materializer definitions: a TOML file, or the app's own materializers as
    /// livestore:<module that exports the LiveStore schema>[#export].
    #[arg(long, short = 'm', value_name = "FILE|livestore:MODULE")]
    materializers: PathBuf,

    #[command(flatten)]
    flags: ReplayFlags,
}

impl ReplayDefs {
    fn load(&self) -> Result<(Source, ReplayOptions), Error> {
        let source = self.flags.source(&self.materializers)?;
        let options = self.flags.options(&source)?;
        Ok((source, options))
    }
}

/// How any replay runs, whichever command asks for it.
#[derive(Args)]
struct ReplayFlags {
    /// How long to wait for the LiveStore helper's answer to any one event, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    plugin_timeout: u64,

    /// How many LiveStore helper processes share a replay. Default: one, and a second once
    /// the log holds 20,000 events or more, where there are two cores (three where the helper
    /// remembers Effect's schemas, as by default on Node.js 22.15 or later: one such helper
    /// keeps pace with rehearse).
    #[arg(long, value_name = "N")]
    plugin_jobs: Option<usize>,

    /// JSON Schemas of the events' args: a directory of <event name>.json files, or one file
    /// mapping names to schemas (overrides `event_schemas` in the definitions).
    #[arg(long, value_name = "PATH")]
    event_schemas: Option<PathBuf>,

    /// What to do when an event's materializer fails.
    #[arg(long, value_enum, default_value = "continue")]
    on_error: OnErrorArg,

    /// Put the scratch database's temporary file under DIR (removed afterwards) instead of the
    /// system's temporary directory: the replayed state is in that file, with at most a 32 MiB
    /// page cache in memory however large it grows. Findings and the index of row writers go
    /// there too when they outgrow memory.
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
}

/// A `--materializers` value, with the plugin's settings from the environment.
fn load_source(spec: &Path) -> Result<Source, Error> {
    let mut source = Source::load(spec)?;
    if let Source::LiveStore(config) = &mut source {
        plugin_env(config)?;
    }
    Ok(source)
}

/// The plugin's settings that users give through the environment (docs/plugin.md). Read here, at the edge, and only for the plugin: the library reads no
/// environment, and a run through the SQL path is not refused for a setting it never uses.
fn plugin_env(config: &mut PluginConfig) -> Result<(), Error> {
    config.node = std::env::var_os("REHEARSE_NODE").map(PathBuf::from);
    config.trace = std::env::var_os("REHEARSE_PLUGIN_TRACE").map(PathBuf::from);
    if let Some(memo) = std::env::var_os("REHEARSE_PLUGIN_MEMO") {
        config.memo = memo
            .to_str()
            .ok_or_else(|| format!("{memo:?} is not auto, on or off"))
            .and_then(str::parse)
            .map_err(|message| Error::Input {
                path: "REHEARSE_PLUGIN_MEMO".into(),
                message,
            })?;
    }
    Ok(())
}

impl ReplayFlags {
    /// The materializers at `spec`, set up as the flags say.
    fn source(&self, spec: &Path) -> Result<Source, Error> {
        let mut source = load_source(spec)?;
        source.set_timeout(std::time::Duration::from_secs(self.plugin_timeout));
        if let Some(n) = self.plugin_jobs {
            source.set_helpers(n);
        }
        Ok(source)
    }

    /// The replay settings for `source`: its own args schemas unless --event-schemas names
    /// others.
    fn options(&self, source: &Source) -> Result<ReplayOptions, Error> {
        let schemas = match &self.event_schemas {
            Some(p) => Some(EventSchemas::load(p)?),
            None => source.event_schemas()?,
        };
        if let Some(schemas) = &schemas {
            note_unchecked(schemas);
        }
        let schemas = schemas.map(Arc::new);
        Ok(ReplayOptions {
            on_error: match self.on_error {
                OnErrorArg::Continue => OnError::Continue,
                OnErrorArg::Stop => OnError::Stop,
            },
            schemas,
            values: false,
            scratch_dir: self.scratch_dir.clone(),
            no_writers: false,
        })
    }
}

/// Says where the event schemas check less than LiveStore's decoding (their `x-unchecked`):
/// args that break only those checks replay as if valid.
fn note_unchecked(schemas: &EventSchemas) {
    let unchecked = schemas.unchecked();
    if unchecked.is_empty() {
        return;
    }
    eprintln!(
        "rehearse: note: {} cannot state {} check(s) LiveStore's decoding of the args makes; args that break only these are not found:",
        schemas.source.display(),
        unchecked.len()
    );
    for u in unchecked {
        let at = if u.pointer.is_empty() {
            "the args"
        } else {
            &u.pointer
        };
        eprintln!("rehearse: note:   {} {at}: {}", u.event, u.what);
    }
}

/// Replay each corpus and compare it with its recorded state: the gate.
///
/// A corpus is a LiveStore store directory (eventlog@6.db beside state<hash>@6.db), a backup
/// package (eventlog.db, state.db, manifest.json) or an event log on its own; a directory that
/// is none of these stands for every corpus below it. Without a state database, the replay is
/// compared with the accepted snapshot written by `rehearse record`, if there is one.
#[derive(Args)]
#[command(after_help = "Examples:
  rehearse check corpora/workspace-n200 -m corpora/workspace/materializers.toml
  rehearse check corpora/ -m app.toml --format github --junit junit.xml --json report.json
  rehearse check corpora/ -m app.toml --baseline rehearse-baseline.json --partition 1/4
  rehearse check corpora/ -m livestore:src/livestore/schema.ts --severity zero-rows=error

Exit codes:
  0    every corpus passed
  1    the gate failed: a root cause of error severity outside the baseline (a corpus whose
       state could not be compared included, unless --log-only), or a stale entry under
       --strict-baseline
  2    usage error, or an input that cannot be read
  125  with --git-bisect, instead of 2: this commit cannot be tested")]
struct CheckArgs {
    /// Corpora to check, or directories to find them in.
    #[arg(required = true, value_name = "CORPUS")]
    corpora: Vec<PathBuf>,

    #[command(flatten)]
    defs: ReplayDefs,

    /// Output on stdout; repeat for several (e.g. --format human --format github).
    #[arg(long, value_enum, default_value = "human")]
    format: Vec<Format>,

    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Also write a Markdown summary to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,

    /// Set a finding class's severity: CLASS=error|warning|off (repeatable). By default
    /// writer-unknown and zero-rows are warnings, every other class an error.
    #[arg(long, value_name = "CLASS=LEVEL")]
    severity: Vec<String>,

    /// Findings listed in this baseline do not fail the gate.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// Record the current findings as the baseline in FILE (then check against it).
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    write_baseline: Option<PathBuf>,

    /// Fail when a baseline entry no longer occurs.
    #[arg(long, requires = "baseline")]
    strict_baseline: bool,

    /// Check a stable share of the corpora: k/n, count:k/n or hash:k/n.
    #[arg(long, value_name = "SPEC")]
    partition: Option<String>,

    /// Write a pending snapshot when the replay differs from an accepted one.
    #[arg(long, value_enum, default_value = "auto")]
    pending: Pending,

    /// Do not hold each event against the changeset LiveStore recorded for it (faster; no
    /// first-divergence finding).
    #[arg(long)]
    no_changesets: bool,

    /// Accept corpora whose recorded state cannot be compared (no state file, or none that
    /// rehearse recognises): they pass on their replay alone. Without it, such a corpus fails
    /// with a comparison-skipped finding, as nothing was compared.
    #[arg(long)]
    log_only: bool,

    /// Write the replayed state database to PATH (one corpus only).
    #[arg(long, value_name = "PATH")]
    keep: Option<PathBuf>,

    /// Compare with this state database instead of the one beside the log (one corpus only).
    #[arg(long, value_name = "DB")]
    state: Option<PathBuf>,

    #[command(flatten)]
    compare: CompareArgs,

    /// Findings shown per corpus in human output (0: all).
    #[arg(long, default_value_t = 100, value_name = "N")]
    max_findings: usize,

    /// Show per-table counts for passing corpora too.
    #[arg(long, short)]
    verbose: bool,

    /// Corpora checked in parallel (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,

    #[command(flatten)]
    progress: ProgressArgs,

    /// Also replay every corpus a second time and report events whose changes differ between
    /// the runs (materializers that read the clock or random numbers, or keep state from one
    /// event to the next) as nondeterministic.
    #[arg(long)]
    determinism: bool,

    /// Start new LiveStore helpers for every corpus. By default each of the run's parallel
    /// lanes keeps its helpers from one corpus to the next, as loading the app costs a helper
    /// one to two seconds of CPU.
    #[arg(long)]
    plugin_fresh: bool,

    /// For `git bisect run`: exit 125 (skip this commit) instead of 2 when the corpus or the
    /// materializers cannot be loaded.
    #[arg(long)]
    git_bisect: bool,
}

/// Replay one corpus through old and new materializers side by side and show the events the
/// new ones treat differently: other rows or values written, or an error on one side only.
///
/// Stops at the first difference unless --all.
#[derive(Args)]
#[command(
    override_usage = "rehearse bisect <CORPUS> --old <FILE|livestore:MODULE> --new <FILE|livestore:MODULE>"
)]
#[command(after_help = "Examples:
  rehearse bisect corpora/prod --old main/materializers.toml --new materializers.toml
  rehearse bisect corpora/prod --old a.toml --new b.toml --all --event v1.TodoCompleted \\
    --until e5000
  rehearse bisect store/ --old old.toml --new livestore:src/livestore/schema.ts

Exit codes:
  0  the new materializers treat every event the same
  1  some events are treated differently
  2  usage error, or an input that cannot be read")]
struct BisectArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    /// The old materializers: a TOML file, or livestore:<module>[#export].
    #[arg(long, value_name = "FILE|livestore:MODULE")]
    old: PathBuf,

    /// The new materializers: a TOML file, or livestore:<module>[#export].
    #[arg(long, value_name = "FILE|livestore:MODULE")]
    new: PathBuf,

    /// List every differing event instead of stopping at the first.
    #[arg(long)]
    all: bool,

    /// Replay only up to this event (e.g. e5000 or e12.1).
    #[arg(long, value_name = "SEQ")]
    until: Option<String>,

    /// Show differences only for events of this name (every event is still replayed).
    #[arg(long, value_name = "NAME")]
    event: Option<String>,

    #[command(flatten)]
    flags: ReplayFlags,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// Tell the whole history of one row: every event that touched it, with the values before and
/// after, in the replay and in the changesets LiveStore recorded.
#[derive(Args)]
#[command(
    override_usage = "rehearse blame <CORPUS> -m <FILE|livestore:MODULE> --table <TABLE> --key <VALUE>... [OPTIONS]"
)]
#[command(after_help = "Examples:
  rehearse blame corpora/workspace-n200-edited-row -m corpora/workspace/materializers.toml \\
    --table todos --key todo_ug4qhd18po
  rehearse blame store/ -m app.toml --table pairs --key x --key 2   # a composite key, in order

Exit codes:
  0  the history was told
  2  usage error, an input that cannot be read, or no such table")]
struct BlameArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    #[command(flatten)]
    defs: ReplayDefs,

    /// The table.
    #[arg(long, value_name = "TABLE")]
    table: String,

    /// The row's primary-key value (repeat for each column of a composite key).
    #[arg(long, value_name = "VALUE", required = true)]
    key: Vec<String>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// Replay corpora and write each one's state as its accepted snapshot, beside its event log
/// (`<eventlog>.snapshot`): for corpora without a LiveStore state database.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse record corpora/server-export -m app.toml && git add corpora/server-export

Exit codes:
  0  every event replayed
  1  some did not (the snapshot is written anyway)
  2  usage error, or an input that cannot be read")]
struct RecordArgs {
    /// Corpora to record, or directories to find them in.
    #[arg(required = true, value_name = "CORPUS")]
    corpora: Vec<PathBuf>,

    #[command(flatten)]
    defs: ReplayDefs,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// Promote pending snapshots (`<eventlog>.snapshot.new`, written by `check` when a replay
/// differs from the accepted snapshot) to accepted ones.
#[derive(Args)]
#[command(after_help = "Examples:
  rehearse accept                  # every pending snapshot below the current directory
  rehearse accept corpora/export   # one corpus

Exit codes:
  0  done (also when there was nothing to accept)
  2  usage error, or a corpus that cannot be read")]
struct AcceptArgs {
    /// Corpora, or directories to find them in (default: the current directory).
    #[arg(value_name = "CORPUS")]
    corpora: Vec<PathBuf>,
}

/// Replay one corpus and write the replayed state database.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse replay corpora/workspace-n200 -m corpora/workspace/materializers.toml \\
    --out replayed.db

Exit codes:
  0  every event replayed
  1  some did not (the database is written anyway)
  2  usage error, or an input that cannot be read")]
struct ReplayArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    #[command(flatten)]
    defs: ReplayDefs,

    /// Where to write the replayed state (written atomically).
    #[arg(long, value_name = "DB")]
    out: PathBuf,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// Compare two SQLite databases table by table, row by row.
///
/// DB_A is taken as the expected side. Rows are paired by primary key and compared with their
/// storage class.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse diff store/state-186191357563@6.db replayed.db --ignore-column '*.updatedAt'

Exit codes:
  0  the databases are equal
  1  they differ
  2  usage error, or a database that cannot be read")]
struct DiffArgs {
    /// The expected database.
    #[arg(value_name = "DB_A")]
    a: PathBuf,

    /// The actual database.
    #[arg(value_name = "DB_B")]
    b: PathBuf,

    #[command(flatten)]
    compare: CompareArgs,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    /// Differences shown in human output (0: all).
    #[arg(long, default_value_t = 100, value_name = "N")]
    max_findings: usize,
}

/// Show what a corpus holds: events per name, sequence range, clients and sessions, sync head,
/// and the snapshot files found beside the log.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse inspect corpora/workspace-n200

Exit codes:
  0  inspected
  2  usage error, or a corpus that cannot be read")]
struct InspectArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,
}

/// Write a backup package of a LiveStore store: a consistent copy of its event log and current
/// state database (SQLite's online backup API; safe while the app runs), auxiliary files, and a
/// manifest.json with every file's size and SHA-256, the store id, schema hash, sync head, last
/// event and per-name counts (schemas/manifest.schema.json).
///
/// The package directory is complete or absent: it is written beside its destination and renamed
/// into place at the end.
#[derive(Args)]
#[command(after_help = "Examples:
  rehearse export ~/.local/share/app/workspace --out backups/2026-11-26 --app-version 1.4.2
  rehearse export store/ --out pkg/ --aux store/processed-messages.db   # kept outside the log

Exit codes:
  0  the package was written
  2  the store cannot be read, or the destination exists and is not empty")]
struct ExportArgs {
    /// The store directory (eventlog@6.db beside state<hash>@6.db).
    #[arg(value_name = "STORE_DIR")]
    store: PathBuf,

    /// The package directory to create (must not exist, or be empty).
    #[arg(long, value_name = "PACKAGE_DIR")]
    out: PathBuf,

    /// A file the app keeps outside the event log, copied into aux/ (repeatable).
    #[arg(long, value_name = "FILE")]
    aux: Vec<PathBuf>,

    /// The app's version, recorded in the manifest (checked by `preflight --min-app-version`).
    #[arg(long, value_name = "V")]
    app_version: Option<String>,

    /// The state database to export when the store has several (default: the newest).
    #[arg(long, value_name = "DB")]
    state: Option<PathBuf>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// Prove a backup package restorable before anyone bets a restore on it: the manifest against its
/// schema, every file's size and SHA-256, no unlisted files, PRAGMA integrity_check on every
/// database, the storage format, schema hash and app version gates, the log's head and counts
/// against the manifest, a replay of the whole log through the materializers, and the replayed
/// state against the snapshot.
///
/// Verdict: go (the snapshot can be restored as it is), go-replay (the log is sound, the snapshot
/// is not to be trusted: restore by replaying the log) or no-go.
#[derive(Args)]
#[command(after_help = "Examples:
  rehearse preflight backups/2026-11-26 -m app/materializers.toml
  rehearse preflight pkg/ -m app.toml --expect-schema-hash -186191357563 \\
    --min-app-version 1.4.0 --format json

Exit codes:
  0  go: restore the snapshot as it is
  3  go-replay: restore by replaying the log (restore --from-log)
  1  no-go
  2  the package or the materializers cannot be read")]
struct PreflightArgs {
    /// The backup package directory (rehearse export writes one).
    #[arg(value_name = "PACKAGE_DIR")]
    package: PathBuf,

    #[command(flatten)]
    defs: ReplayDefs,

    #[command(flatten)]
    gates: Gates,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// The pre-flight's gates beyond the package's own consistency.
#[derive(Args)]
struct Gates {
    /// The state schema hash the app expects (the number in state<hash>@6.db).
    #[arg(long, value_name = "H", allow_hyphen_values = true)]
    expect_schema_hash: Option<String>,

    /// The oldest app version whose packages may be restored (semantic versions).
    #[arg(long, value_name = "V")]
    min_app_version: Option<String>,
}

impl Gates {
    fn options(self, replay: ReplayOptions) -> rehearse::backup::preflight::PreflightOptions {
        rehearse::backup::preflight::PreflightOptions {
            expect_schema_hash: self.expect_schema_hash,
            min_app_version: self.min_app_version,
            check: CheckOptions {
                replay,
                ..CheckOptions::default()
            },
        }
    }
}

/// Restore a backup package into a LiveStore store directory, safely: the pre-flight runs first
/// and a no-go (or go-replay without --from-log) refuses; the files are staged beside the target,
/// checked against the manifest and flushed, then swapped in with one atomic rename, so that a
/// crash at any moment leaves the old store or the new one, whole. The old store is kept as
/// <STORE_DIR>.rehearse-backup-<time>; the restored files are verified (checksums, integrity,
/// log head). Stop the app first: LiveStore takes no file locks.
#[derive(Args)]
#[command(
    override_usage = "rehearse restore <PACKAGE_DIR> --to <STORE_DIR> -m <FILE|livestore:MODULE> [OPTIONS]"
)]
#[command(after_help = "Examples:
  rehearse restore backups/2026-11-26 --to ~/.local/share/app/workspace -m app/materializers.toml
  rehearse restore pkg/ --to store/workspace -m app.toml --from-log   # LiveStore rebuilds state

Exit codes:
  0  restored
  1  refused (the pre-flight said no-go, or go-replay without --from-log)
  2  the package, the target or the materializers cannot be read")]
struct RestoreArgs {
    /// The backup package directory.
    #[arg(value_name = "PACKAGE_DIR")]
    package: PathBuf,

    /// The store directory to restore into (LiveStore's <base directory>/<storeId>).
    #[arg(long, value_name = "STORE_DIR")]
    to: PathBuf,

    /// Install the log without the snapshot: LiveStore rebuilds the state from the log at its
    /// next boot (needed when the pre-flight says go-replay).
    #[arg(long)]
    from_log: bool,

    #[command(flatten)]
    defs: ReplayDefs,

    #[command(flatten)]
    gates: Gates,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: SimpleFormat,

    #[command(flatten)]
    progress: ProgressArgs,
}

/// What the app's LiveStore schema says, exported for other tools and for rehearse itself.
#[derive(Args)]
struct SchemaArgs {
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand)]
enum SchemaCommand {
    Export(SchemaExportArgs),
}

/// Export an app's LiveStore schema: the JSON Schema of every event's encoded args
/// (events/<name>.json, with every check of its Effect schema that JSON Schema can state and
/// the others named as x-unchecked; what `--event-schemas` and the definitions'
/// `event_schemas` read), the state DDL exactly as LiveStore creates it (state.sql), and the
/// client documents (client-documents.json).
#[derive(Args)]
#[command(after_help = "Example:
  rehearse schema export --materializers livestore:src/livestore/schema.ts --out schemas/myapp/

Exit codes:
  0  written
  2  the schema cannot be loaded")]
struct SchemaExportArgs {
    /// The app's schema: livestore:<module that exports the LiveStore schema>[#export].
    #[arg(long, short = 'm', value_name = "SPEC")]
    materializers: PathBuf,

    /// The directory to write into (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// SQL definitions (the alternative to the LiveStore plugin): drafted from the app.
#[derive(Args)]
struct DefinitionsArgs {
    #[command(subcommand)]
    command: DefinitionsCommand,
}

#[derive(Subcommand)]
enum DefinitionsCommand {
    Draft(DraftArgs),
}

/// Draft SQL definitions from the app itself: its tables and how each column stores a value,
/// its client documents and event schemas, and, for every event a corpus holds, the statements
/// the app's own materializers produced there, generalised back to `args.…`. An event whose
/// statements vary in ways no generalisation reproduces (a branch, ctx.query, a computed
/// value) is left as a TODO with the variants seen. Writes FILE, FILE's stem + `.events/`
/// (the event schemas) and + `.state.sql` (the DDL) beside it.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse definitions draft -m livestore:src/livestore/schema.ts --corpus corpora/ --out defs.toml
  rehearse bisect corpora/store --old defs.toml --new livestore:src/livestore/schema.ts

Exit codes:
  0  written
  2  the app or a corpus cannot be read")]
struct DraftArgs {
    /// The app's schema: livestore:<module that exports the LiveStore schema>[#export].
    #[arg(long, short = 'm', value_name = "SPEC")]
    materializers: PathBuf,

    /// Corpora whose events show what the materializers do (repeatable; a directory stands for
    /// every corpus below it).
    #[arg(long, value_name = "CORPUS")]
    corpus: Vec<PathBuf>,

    /// The definitions file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// Parses the command line, runs it, and returns the exit code.
pub fn run() -> Result<u8, Error> {
    let cli = Cli::parse();
    let color = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    match cli.command {
        Command::Check(args) => run_check(*args, color),
        Command::Record(args) => run_record(args, color),
        Command::Accept(args) => run_accept(args),
        Command::Replay(args) => run_replay(args, color),
        Command::Bisect(args) => run_bisect(args, color),
        Command::Blame(args) => run_blame(args, color),
        Command::Diff(args) => run_diff(args, color),
        Command::Inspect(args) => run_inspect(args),
        Command::Export(args) => run_export(args, color),
        Command::Preflight(args) => run_preflight(args, color),
        Command::Restore(args) => run_restore(args, color),
        Command::Schema(args) => match args.command {
            SchemaCommand::Export(args) => run_schema_export(args),
        },
        Command::Definitions(args) => match args.command {
            DefinitionsCommand::Draft(args) => run_definitions_draft(args),
        },
    }
}

fn usage(message: &str) -> Result<u8, Error> {
    eprintln!("rehearse: {message}");
    Ok(exit::USAGE_OR_INPUT)
}

/// Writes text for people on stdout: what came from the input cannot drive the terminal
/// (`text::for_terminal`).
fn out(text: &str, color: anstream::ColorChoice) -> Result<(), Error> {
    write_stdout(&rehearse::text::for_terminal(text), color)
}

/// Writes a machine format on stdout as it is.
/// Machine output made as it is written (a streamed JSON report) on stdout.
fn out_data_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    write(&mut stdout)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Io {
            path: PathBuf::from("<stdout>"),
            source: e,
        })
}

fn write_stdout(text: &str, color: anstream::ColorChoice) -> Result<(), Error> {
    let mut stdout = anstream::AutoStream::new(std::io::stdout().lock(), color);
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Io {
            path: PathBuf::from("<stdout>"),
            source: e,
        })
}

/// Writes `value` on stdout as JSON or, for people, as `human` renders it.
fn emit<T: serde::Serialize>(
    format: SimpleFormat,
    value: &T,
    human: impl FnOnce(&T) -> String,
    color: anstream::ColorChoice,
) -> Result<(), Error> {
    match format {
        SimpleFormat::Json => out_data_with(|out| render::json::write(value, out)),
        SimpleFormat::Human => out(&human(value), color),
    }
}

/// Whether the process runs in CI (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention), so that a pipeline or a test can
/// make byte-identical packages.
fn source_date_epoch() -> Option<std::time::SystemTime> {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

fn max(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

fn run_check(args: CheckArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let git_bisect = args.git_bisect;
    let code = match check_gate(args, color) {
        Ok(code) => code,
        Err(e) if git_bisect => {
            eprintln!(
                "rehearse: error: {}",
                rehearse::text::for_terminal(&e.to_string())
            );
            exit::USAGE_OR_INPUT
        }
        Err(e) => return Err(e),
    };
    Ok(if git_bisect && code == exit::USAGE_OR_INPUT {
        exit::CANNOT_TEST
    } else {
        code
    })
}

fn check_gate(args: CheckArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let mut corpora = corpus::discover(&args.corpora)?;
    let partition = match &args.partition {
        Some(spec) => match Partition::parse(spec) {
            Ok(p) => Some(p),
            Err(e) => return usage(&format!("--partition {e}")),
        },
        None => None,
    };
    if let Some(p) = partition {
        corpora = p.select(corpora);
    }
    if corpora.len() > 1 && (args.keep.is_some() || args.state.is_some()) {
        return usage("--keep and --state take a single corpus");
    }
    let mut severities = Severities::default();
    for spec in &args.severity {
        match Severities::parse_override(spec) {
            Ok((class, level)) => severities.set(class, level),
            Err(e) => return usage(&format!("--severity {e}")),
        }
    }
    let baseline = match (&args.baseline, &args.write_baseline) {
        (_, Some(path)) => check::BaselineUse::Write(path.clone()),
        (Some(path), None) => check::BaselineUse::Apply {
            baseline: Baseline::load(path)?,
            strict: args.strict_baseline,
            base: rehearse::report::baseline::base_dir(path),
        },
        (None, None) => check::BaselineUse::None,
    };
    let (source, replay) = args.defs.load()?;
    let bar = progress_bar(&corpora, args.progress.no_progress);
    let plan = check::Plan {
        options: CheckOptions {
            replay,
            compare: args.compare.options(),
            keep: args.keep.clone(),
            state: args.state.clone(),
            no_compare: false,
            severities,
            write_pending: match args.pending {
                Pending::Always => true,
                Pending::Never => false,
                Pending::Auto => !in_ci(),
            },
            skip_changesets: args.no_changesets,
            log_alone: false,
            log_only: args.log_only,
        },
        corpora,
        source,
        materializers: args.defs.materializers.display().to_string(),
        jobs: args.jobs.unwrap_or(0),
        fresh: args.plugin_fresh,
        determinism: args.determinism,
        baseline,
        partition,
    };
    // Set while the app loads: the bar's own style comes back with the first rows read.
    let loading = std::sync::atomic::AtomicBool::new(false);
    let report = check::run(&plan, &|event| {
        use std::sync::atomic::Ordering::Relaxed;
        match event {
        check::Event::Read { rows } => {
            if loading.swap(false, Relaxed) {
                bar.set_style(check_style());
            }
            bar.inc(rows)
        }
        check::Event::LoadingApp => {
            loading.store(true, Relaxed);
            bar.set_style(loading_style());
        }
        check::Event::CorpusDone(_) => {}
        check::Event::BaselineWritten { path, findings } => bar.suspend(|| {
            eprintln!(
                "rehearse: wrote {} to the baseline {} (what follows from them is acknowledged with them)",
                rehearse::text::count(findings, "root finding"),
                path.display()
            )
        }),
    }
    })?;
    bar.finish_and_clear();
    for c in &report.corpora {
        if let Some(e) = &c.error {
            eprintln!(
                "rehearse: error: {}",
                rehearse::text::for_terminal(&e.to_string())
            );
        }
    }
    let human = HumanOptions {
        max_findings: max(args.max_findings),
        verbose: args.verbose,
        ..HumanOptions::default()
    };
    for (path, format) in [
        (&args.json, render::Format::Json),
        (&args.junit, render::Format::Junit),
        (&args.markdown, render::Format::Markdown),
    ] {
        if let Some(path) = path {
            rehearse::files::write_atomic_with(path, |out| {
                render::write(&report, format, &human, out)
            })?;
        }
    }
    for format in &args.format {
        let format = format.library();
        if format.is_human() {
            let text = render::render(&report, format, &human);
            report.check_findings()?;
            out(&text, color)?;
        } else {
            out_data_with(|out| render::write(&report, format, &human, out))?;
        }
    }
    Ok(report.exit_code())
}

fn run_record(args: RecordArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let corpora = corpus::discover(&args.corpora)?;
    let (defs, replay) = args.defs.load()?;
    let options = CheckOptions {
        replay,
        ..CheckOptions::default()
    };
    let shown = Shown::new(args.progress.no_progress);
    let total = if shown.visible() {
        events_in(&corpora)
    } else {
        0
    };
    shown.will_replay(total);
    let mut reports = Vec::new();
    for path in &corpora {
        let recorded = defs
            .instantiate_observed(&mut |p| shown.show(p))
            .and_then(|mut m| {
                shown.resume();
                let base = shown.position();
                check::record_corpus_observed(
                    path,
                    m.as_mut(),
                    &options,
                    replay_steps(&shown, base),
                )
            });
        match recorded {
            Ok((report, written)) => {
                shown.suspend(|| eprintln!("rehearse: wrote {}", written.display()));
                reports.push(report);
            }
            Err(e) => reports.push(CorpusReport::error(
                &path.display().to_string(),
                e.to_string(),
            )),
        }
    }
    shown.done();
    let report = Report::new(args.defs.materializers.display().to_string(), reports);
    for c in &report.corpora {
        if let Some(e) = &c.error {
            eprintln!(
                "rehearse: error: {}",
                rehearse::text::for_terminal(&e.to_string())
            );
        }
    }
    out(
        &render::human::report(&report, &HumanOptions::default()),
        color,
    )?;
    Ok(report.exit_code())
}

fn run_accept(args: AcceptArgs) -> Result<u8, Error> {
    let roots = if args.corpora.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.corpora.clone()
    };
    let corpora = corpus::discover(&roots)?;
    let mut accepted = 0;
    for path in &corpora {
        if let Some(p) = check::accept_corpus(path)? {
            println!("accepted {}", p.display());
            accepted += 1;
        }
    }
    if accepted == 0 {
        eprintln!("rehearse: no pending snapshot to accept");
    }
    Ok(exit::PASS)
}

fn run_replay(args: ReplayArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let (defs, replay) = args.defs.load()?;
    let shown = Shown::new(args.progress.no_progress);
    let mut materializer = defs.instantiate_observed(&mut |p| shown.show(p))?;
    let options = CheckOptions {
        replay,
        keep: Some(args.out.clone()),
        no_compare: true,
        ..CheckOptions::default()
    };
    if shown.visible() {
        shown.replaying(events_in(std::slice::from_ref(&args.corpus)));
    }
    let corpus = check::check_corpus_observed(
        &args.corpus,
        materializer.as_mut(),
        &options,
        replay_steps(&shown, 0),
    );
    shown.done();
    let corpus = corpus?;
    let report = Report::new(args.defs.materializers.display().to_string(), vec![corpus]);
    match args.format {
        SimpleFormat::Json => out_data_with(|out| render::json::write(&report, out))?,
        SimpleFormat::Human => {
            out(
                &render::human::report(&report, &HumanOptions::default()),
                color,
            )?;
        }
    }
    eprintln!("rehearse: wrote {}", args.out.display());
    Ok(report.exit_code())
}

fn run_bisect(args: BisectArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let until = match &args.until {
        Some(s) => match rehearse::bisect::parse_seq(s) {
            Some(seq) => Some(seq),
            None => {
                return usage(&format!(
                    "--until {s:?}: expected a sequence number like e5000 or e12.1"
                ));
            }
        },
        None => None,
    };
    let old_source = args.flags.source(&args.old)?;
    let new_source = args.flags.source(&args.new)?;
    let replay = args.flags.options(&old_source)?;
    let new_schemas = args.flags.options(&new_source)?.schemas;
    let shown = Shown::new(args.progress.no_progress);
    let mut old = old_source.instantiate_observed(&mut |p| shown.show(p))?;
    let mut new = new_source.instantiate_observed(&mut |p| shown.show(p))?;
    if shown.visible() {
        shown.replaying(events_in(std::slice::from_ref(&args.corpus)));
    }
    let report = rehearse::bisect::bisect_observed(
        &args.corpus,
        old.as_mut(),
        new.as_mut(),
        &rehearse::bisect::BisectOptions {
            all: args.all,
            until,
            event: args.event.clone(),
            replay,
            new_schemas,
            ..Default::default()
        },
        replay_steps(&shown, 0),
    );
    shown.done();
    let report = report?;
    emit(args.format, &report, render::human::bisect, color)?;
    Ok(if report.differences.is_empty() {
        exit::PASS
    } else {
        exit::FAILED
    })
}

fn run_blame(args: BlameArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let (defs, replay) = args.defs.load()?;
    let shown = Shown::new(args.progress.no_progress);
    let mut materializer = defs.instantiate_observed(&mut |p| shown.show(p))?;
    if shown.visible() {
        shown.replaying(events_in(std::slice::from_ref(&args.corpus)));
    }
    let report = rehearse::blame::blame_observed(
        &args.corpus,
        materializer.as_mut(),
        &args.table,
        &args.key,
        &replay,
        replay_steps(&shown, 0),
    );
    shown.done();
    let report = report?;
    emit(args.format, &report, render::human::blame, color)?;
    Ok(exit::PASS)
}

fn run_diff(args: DiffArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let corpus =
        rehearse::compare::diff::diff_databases(&args.a, &args.b, &args.compare.options())?;
    let report = Report::new(String::new(), vec![corpus]);
    match args.format {
        SimpleFormat::Json => out_data_with(|out| render::json::write(&report, out))?,
        SimpleFormat::Human => {
            let text = if report.corpora[0].findings.is_empty() {
                format!("{} and {} are equal\n", args.a.display(), args.b.display())
            } else {
                render::human::report(
                    &report,
                    &HumanOptions {
                        max_findings: max(args.max_findings),
                        verbose: true,
                        sides: ["a", "b"],
                        by_cause: false,
                    },
                )
            };
            out(&text, color)?;
        }
    }
    Ok(report.exit_code())
}

fn run_export(args: ExportArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let shown = Shown::new(args.progress.no_progress);
    let exported = rehearse::backup::export::export_observed(
        &args.store,
        &args.out,
        &rehearse::backup::export::ExportOptions {
            aux: args.aux,
            app_version: args.app_version,
            state: args.state,
            created_at: source_date_epoch(),
        },
        &mut |p| shown.show(p),
    );
    shown.done();
    let exported = exported?;
    emit(
        args.format,
        &exported,
        rehearse::backup::export::render,
        color,
    )?;
    Ok(exit::PASS)
}

fn run_preflight(args: PreflightArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let (defs, replay) = args.defs.load()?;
    let shown = Shown::new(args.progress.no_progress);
    let report = defs
        .instantiate_observed(&mut |p| shown.show(p))
        .and_then(|mut materializer| {
            rehearse::backup::preflight::preflight_observed(
                &args.package,
                materializer.as_mut(),
                &args.gates.options(replay),
                &mut |p| shown.show(p),
            )
        });
    shown.done();
    let report = report?;
    emit(
        args.format,
        &report,
        rehearse::backup::preflight::render,
        color,
    )?;
    Ok(match report.verdict {
        rehearse::backup::preflight::Verdict::Go => exit::PASS,
        rehearse::backup::preflight::Verdict::GoReplay => exit::GO_REPLAY,
        rehearse::backup::preflight::Verdict::NoGo => exit::FAILED,
    })
}

fn run_restore(args: RestoreArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let (defs, replay) = args.defs.load()?;
    let shown = Shown::new(args.progress.no_progress);
    let restored =
        defs.instantiate_observed(&mut |p| shown.show(p))
            .and_then(|mut materializer| {
                rehearse::backup::restore::restore_observed(
                    &args.package,
                    &args.to,
                    materializer.as_mut(),
                    &rehearse::backup::restore::RestoreOptions {
                        from_log: args.from_log,
                        preflight: args.gates.options(replay),
                    },
                    &mut |p| shown.show(p),
                )
            });
    shown.done();
    let restored = restored?;
    emit(
        args.format,
        &restored,
        rehearse::backup::restore::render,
        color,
    )?;
    Ok(if restored.restored {
        exit::PASS
    } else {
        exit::FAILED
    })
}

fn run_schema_export(args: SchemaExportArgs) -> Result<u8, Error> {
    let Some(mut config) = PluginConfig::parse(&args.materializers.to_string_lossy()) else {
        return usage(
            "schema export reads an app's LiveStore schema: --materializers livestore:<module>",
        );
    };
    plugin_env(&mut config)?;
    let shown = Shown::new(args.progress.no_progress);
    shown.show(Progress::LoadingApp);
    let written = rehearse::materialize::livestore::export_schema(&config, &args.out);
    shown.done();
    let written = written?;
    eprintln!(
        "rehearse: wrote {}, the state DDL and {} to {}",
        rehearse::text::count(written.events, "event schema"),
        rehearse::text::count(written.client_documents, "client document"),
        args.out.display()
    );
    Ok(exit::PASS)
}

fn run_definitions_draft(args: DraftArgs) -> Result<u8, Error> {
    use rehearse::definitions::draft;
    let source = load_source(&args.materializers)?;
    let Source::LiveStore(config) = &source else {
        return usage(
            "definitions draft reads the app's own LiveStore schema: --materializers livestore:<module>",
        );
    };
    let corpora = if args.corpus.is_empty() {
        Vec::new()
    } else {
        corpus::discover(&args.corpus)?
    };
    let shown = Shown::new(args.progress.no_progress);
    shown.show(Progress::LoadingApp);
    let app = rehearse::materialize::livestore::describe_app(config)?;
    let total = if shown.visible() {
        events_in(&corpora)
    } else {
        0
    };
    shown.will_replay(total);
    let mut seen = Vec::new();
    for c in &corpora {
        let mut observer =
            draft::Observer::new(source.instantiate_observed(&mut |p| shown.show(p))?);
        shown.resume();
        let base = shown.position();
        check::check_corpus_observed(
            c,
            &mut observer,
            &CheckOptions::default(),
            replay_steps(&shown, base),
        )?;
        seen.extend(observer.seen);
    }
    shown.done();
    let drafted = draft::write_draft(&app, &seen, &args.out)?;
    eprintln!(
        "rehearse: wrote {} from {}: {} defined, {} TODO{}",
        args.out.display(),
        rehearse::text::count(corpora.len(), "corpus"),
        rehearse::text::count(drafted.defined.len(), "event"),
        drafted.todo.len(),
        if drafted.todo.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                drafted
                    .todo
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    Ok(exit::PASS)
}

fn run_inspect(args: InspectArgs) -> Result<u8, Error> {
    let ins = inspect::inspect(&args.corpus)?;
    emit(
        args.format,
        &ins,
        inspect::render,
        anstream::ColorChoice::Never,
    )?;
    Ok(exit::PASS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own consistency checks (conflicting names, bad defaults, required args in groups)
    /// run only in debug builds and only for the subcommand parsed; this runs them all.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
