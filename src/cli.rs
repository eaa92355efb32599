//! The command line: clap flags become the library's options before any work starts, so the
//! library never sees clap types.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use rehearse::Error;
use rehearse::check::{self, CheckOptions};
use rehearse::compare::CompareOptions;
use rehearse::definitions::Definitions;
use rehearse::exit;
use rehearse::inspect;
use rehearse::materialize::sql::SqlMaterializer;
use rehearse::render::{self, human::HumanOptions};
use rehearse::replay::{OnError, ReplayOptions};
use rehearse::report::{CorpusReport, Report};

const ABOUT: &str = "Rehearse a log-only restore: replay LiveStore event logs through materializers \
and compare the result with the state LiveStore recorded.";

#[derive(Parser)]
#[command(name = "rehearse", version, about = ABOUT, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// When to colour human output [NO_COLOR and CLICOLOR are honoured under auto].
    #[arg(long, value_enum, default_value = "auto", global = true)]
    color: ColorWhen,
}

#[derive(Subcommand)]
enum Command {
    Check(CheckArgs),
    Replay(ReplayArgs),
    Diff(DiffArgs),
    Inspect(InspectArgs),
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
}

#[derive(Clone, Copy, ValueEnum)]
enum OnErrorArg {
    /// Roll the failing event back, report it, replay the rest.
    Continue,
    /// Stop at the first event whose materializer fails.
    Stop,
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

/// Replay each corpus and compare it with its recorded state: the gate.
///
/// A corpus is a LiveStore store directory (eventlog@6.db beside state<hash>@6.db), a backup
/// package (eventlog.db, state.db, manifest.json) or an event log on its own (then the
/// comparison is skipped). Exit 0 when every corpus passes, 1 on any finding, 2 on a usage
/// error or unreadable input.
#[derive(Args)]
#[command(after_help = "Examples:
  rehearse check corpora/workspace-n200 --materializers corpora/workspace/materializers.toml
  rehearse check store/ --materializers app.toml --format json > report.json
  rehearse check a/ b/ -m app.toml --json report.json --on-error stop")]
struct CheckArgs {
    /// Corpora to check.
    #[arg(required = true, value_name = "CORPUS")]
    corpora: Vec<PathBuf>,

    /// Materializer definitions (TOML).
    #[arg(long, short = 'm', value_name = "FILE")]
    materializers: PathBuf,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,

    /// Also write the JSON report to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write the replayed state database to PATH (one corpus only).
    #[arg(long, value_name = "PATH")]
    keep: Option<PathBuf>,

    /// Compare with this state database instead of the one beside the log (one corpus only).
    #[arg(long, value_name = "DB")]
    state: Option<PathBuf>,

    /// What to do when an event's materializer fails.
    #[arg(long, value_enum, default_value = "continue")]
    on_error: OnErrorArg,

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
}

/// Replay one corpus and write the replayed state database.
///
/// Exit 0 when every event replayed, 1 when some did not (the database is written anyway),
/// 2 on a usage error or unreadable input.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse replay corpora/workspace-n200 -m corpora/workspace/materializers.toml --out replayed.db")]
struct ReplayArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    /// Materializer definitions (TOML).
    #[arg(long, short = 'm', value_name = "FILE")]
    materializers: PathBuf,

    /// Where to write the replayed state (written atomically).
    #[arg(long, value_name = "DB")]
    out: PathBuf,

    /// What to do when an event's materializer fails.
    #[arg(long, value_enum, default_value = "continue")]
    on_error: OnErrorArg,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

/// Compare two SQLite databases table by table, row by row.
///
/// DB_A is taken as the expected side. Rows are paired by primary key and compared with their
/// storage class. Exit 0 when they are equal, 1 when they differ, 2 on unreadable input.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse diff store/state-186191357563@6.db replayed.db --ignore-column '*.updatedAt'")]
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
    format: Format,

    /// Differences shown in human output (0: all).
    #[arg(long, default_value_t = 100, value_name = "N")]
    max_findings: usize,
}

/// Show what a corpus holds: events per name, sequence range, clients and sessions, sync head,
/// and the snapshot files found beside the log.
#[derive(Args)]
#[command(after_help = "Example:
  rehearse inspect ../shared/livestore/samples/n5000")]
struct InspectArgs {
    /// The corpus.
    #[arg(value_name = "CORPUS")]
    corpus: PathBuf,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
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
        Command::Check(args) => run_check(args, color),
        Command::Replay(args) => run_replay(args, color),
        Command::Diff(args) => run_diff(args, color),
        Command::Inspect(args) => run_inspect(args),
    }
}

fn usage(message: &str) -> Result<u8, Error> {
    eprintln!("rehearse: {message}");
    Ok(exit::USAGE_OR_INPUT)
}

fn out(text: &str, color: anstream::ColorChoice) -> Result<(), Error> {
    let mut stdout = anstream::AutoStream::new(std::io::stdout().lock(), color);
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Io {
            path: PathBuf::from("<stdout>"),
            source: e,
        })
}

fn on_error(arg: OnErrorArg) -> OnError {
    match arg {
        OnErrorArg::Continue => OnError::Continue,
        OnErrorArg::Stop => OnError::Stop,
    }
}

fn max(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

fn run_check(args: CheckArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    if args.corpora.len() > 1 && (args.keep.is_some() || args.state.is_some()) {
        return usage("--keep and --state take a single corpus");
    }
    let defs = Definitions::load(&args.materializers)?;
    let options = CheckOptions {
        replay: ReplayOptions {
            on_error: on_error(args.on_error),
        },
        compare: args.compare.options(),
        keep: args.keep.clone(),
        state: args.state.clone(),
        no_compare: false,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| Error::Input {
            path: PathBuf::from("--jobs"),
            message: e.to_string(),
        })?;
    let corpora: Vec<CorpusReport> = pool.install(|| {
        args.corpora
            .par_iter()
            .map(|path| {
                let mut materializer = SqlMaterializer::new(defs.clone());
                match check::check_corpus(path, &mut materializer, &options) {
                    Ok(report) => report,
                    Err(e) => CorpusReport::error(&path.display().to_string(), e.to_string()),
                }
            })
            .collect()
    });
    let report = Report::new(args.materializers.display().to_string(), corpora);
    for c in &report.corpora {
        if let Some(e) = &c.error {
            eprintln!("rehearse: error: {e}");
        }
    }
    if let Some(path) = &args.json {
        render::write_atomic(path, render::json::to_string(&report).as_bytes())?;
    }
    match args.format {
        Format::Json => out(
            &render::json::to_string(&report),
            anstream::ColorChoice::Never,
        )?,
        Format::Human => out(
            &render::human::report(
                &report,
                &HumanOptions {
                    max_findings: max(args.max_findings),
                    verbose: args.verbose,
                    ..HumanOptions::default()
                },
            ),
            color,
        )?,
    }
    Ok(if report.has_errors() {
        exit::USAGE_OR_INPUT
    } else if report.passed() {
        exit::PASS
    } else {
        exit::FAILED
    })
}

fn run_replay(args: ReplayArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let defs = Definitions::load(&args.materializers)?;
    let mut materializer = SqlMaterializer::new(defs);
    let options = CheckOptions {
        replay: ReplayOptions {
            on_error: on_error(args.on_error),
        },
        keep: Some(args.out.clone()),
        no_compare: true,
        ..CheckOptions::default()
    };
    let corpus = check::check_corpus(&args.corpus, &mut materializer, &options)?;
    let report = Report::new(args.materializers.display().to_string(), vec![corpus]);
    match args.format {
        Format::Json => out(
            &render::json::to_string(&report),
            anstream::ColorChoice::Never,
        )?,
        Format::Human => {
            out(
                &render::human::report(&report, &HumanOptions::default()),
                color,
            )?;
        }
    }
    eprintln!("rehearse: wrote {}", args.out.display());
    Ok(if report.passed() {
        exit::PASS
    } else {
        exit::FAILED
    })
}

fn run_diff(args: DiffArgs, color: anstream::ColorChoice) -> Result<u8, Error> {
    let corpus = check::diff_databases(&args.a, &args.b, &args.compare.options())?;
    let report = Report::new(String::new(), vec![corpus]);
    match args.format {
        Format::Json => out(
            &render::json::to_string(&report),
            anstream::ColorChoice::Never,
        )?,
        Format::Human => {
            let text = if report.corpora[0].findings.is_empty() {
                format!("{} and {} are equal\n", args.a.display(), args.b.display())
            } else {
                render::human::report(
                    &report,
                    &HumanOptions {
                        max_findings: max(args.max_findings),
                        verbose: true,
                        sides: ["a", "b"],
                    },
                )
            };
            out(&text, color)?;
        }
    }
    Ok(if report.passed() {
        exit::PASS
    } else {
        exit::FAILED
    })
}

fn run_inspect(args: InspectArgs) -> Result<u8, Error> {
    let ins = inspect::inspect(&args.corpus)?;
    match args.format {
        Format::Json => out(&render::json::to_string(&ins), anstream::ColorChoice::Never)?,
        Format::Human => out(&inspect::render(&ins), anstream::ColorChoice::Never)?,
    }
    Ok(exit::PASS)
}
