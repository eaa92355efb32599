//! `cargo bench`: replay speed and peak memory on real LiveStore stores.
//!
//! Runs the check (replay, then comparison, event by event with LiveStore's recorded changesets
//! too) and `bisect` between identical definitions on the committed 200- and 300-event corpora, the
//! 5,000-event sample and the real 100,000-event store from `../shared/livestore/large/`
//! (unpacked into `target/bench-data/` on first use; set `REHEARSE_BENCH_STORE` to use another
//! store directory). Each corpus runs in a child process of its own so that its peak memory
//! (`VmHWM`) is its own; flat peaks across log lengths show that replay streams.
//!
//! When the LiveStore fixture app is installed (`target/livestore-app/`, which
//! `cargo test --test plugin` sets up where Node.js is present), the same corpora are also
//! replayed through the LiveStore plugin: the app's own materializers run by LiveStore 0.4.0
//! in Node.js helpers, against LiveStore's own rematerialization speed, and beside the speed of
//! LiveStore's statement code alone (the same events through LiveStore's
//! `getExecStatementsFromMaterializer` in one bare Node.js loop), which the plugin runs for
//! every event, spread over its helpers, with the pipe and rehearse's SQLite on top. Short
//! logs are replayed five times, each through freshly started helpers, and the median reported
//! with the range.
//!
//! Figures are printed, never asserted: a timed test would fail on a busy machine.

mod floor;
mod measure;
mod million;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rehearse::check::{self, CheckOptions};
use rehearse::definitions::Definitions;
use rehearse::materialize::livestore::LiveStoreMaterializer;
use rehearse::materialize::sql::SqlMaterializer;

/// The binary's allocator (src/main.rs), so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `bisect` between two identical definition sets, in this (child) process: the worst case
/// (no difference, so a full pass through two replays).
fn run_bisect(corpus: &Path) {
    let defs = Definitions::load(&root().join("corpora/workspace/materializers.toml")).unwrap();
    let mut old = SqlMaterializer::new(defs.clone());
    let mut new = SqlMaterializer::new(defs);
    let t = Instant::now();
    let report = rehearse::bisect::bisect(corpus, &mut old, &mut new, &Default::default()).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>8} events  bisect (identical definitions) {:>7.3} s {:>9.0} events/s   differences {:>3}   peak RSS {:>6.1} MiB",
        corpus.file_name().unwrap_or_default().to_string_lossy(),
        report.events,
        s,
        report.events as f64 / s,
        report.differences.len(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
}

/// Runs of each case, taken in turn.
const ROUNDS: usize = 5;

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into())
}

/// The definitions of the bundled corpora.
fn workspace_definitions() -> PathBuf {
    root().join("corpora/workspace/materializers.toml")
}

/// Definitions with the workspace's tables and no event: every event is unknown, every row of
/// the recorded state missing from the replay.
fn definitions_knowing_no_event(dir: &Path) -> PathBuf {
    let path = dir.join("no-events.toml");
    std::fs::write(
        &path,
        format!(
            "format = 1\n[state]\nddl_file = {:?}\n",
            root()
                .join("corpora/workspace/state.sql")
                .display()
                .to_string()
        ),
    )
    .unwrap();
    path
}

/// The rehearse binary, its output discarded.
fn rehearse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .env_remove("CI");
    cmd
}

/// The recorded state database of a store directory (or of its `workspace/`), if any.
fn state_database(corpus: &Path) -> Option<PathBuf> {
    [corpus.join("workspace"), corpus.to_path_buf()]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("state") && n.ends_with("@6.db"))
        })
}

/// How many findings a JSON report on file holds (its summary's counts per class).
fn findings_in(report: &Path) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(report) else {
        return 0;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = String::new();
    let _ = f.read_to_string(&mut tail);
    let Some(at) = tail.rfind("\"summary\"") else {
        return 0;
    };
    let Some(open) = tail[at..].find('{') else {
        return 0;
    };
    // The summary is the report's last member: up to the report's closing brace.
    let body = &tail[at + open..];
    let end = body.rfind('}').unwrap_or(body.len());
    let summary: serde_json::Value = serde_json::from_str(body[..end].trim()).unwrap_or_default();
    summary["findings"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
}

/// One case of the suite: a label and how to run it (`None`: not run here).
struct Case {
    label: String,
    command: Option<Command>,
    runs: Vec<measure::Run>,
}

/// The SQL path's cases on one corpus, each run `rounds` times in turn, so that a machine
/// whose speed drifts weighs on all of them alike: the raw-SQLite floor, `replay --out`, the
/// check, the check without the changeset comparison, and the check with definitions that
/// know no event (every event a finding, and every recorded row; JSON to a file).
fn suite(corpus: &Path, rounds: usize) {
    let scratch = tempfile::tempdir().unwrap();
    let defs = workspace_definitions();
    let none = definitions_knowing_no_event(scratch.path());
    let report = scratch.path().join("report.json");
    let out_db = scratch.path().join("replayed.db");
    let name = corpus
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let events = rehearse::eventlog::EventLog::open(
        &rehearse::corpus::Corpus::locate(corpus).unwrap().eventlog,
    )
    .and_then(|l| l.count())
    .unwrap_or(0);
    let exe = std::env::current_exe().unwrap();
    let mut cases: Vec<Case> = Vec::new();
    let mut case = |label: &str, command: Option<Command>| {
        cases.push(Case {
            label: label.to_string(),
            command,
            runs: Vec::new(),
        })
    };
    case(
        "raw-SQLite floor",
        state_database(corpus).map(|state| {
            let mut c = Command::new(&exe);
            c.arg("--floor").arg(state);
            c
        }),
    );
    let mut c = rehearse();
    c.arg("replay")
        .arg(corpus)
        .arg("-m")
        .arg(&defs)
        .arg("--out")
        .arg(&out_db);
    case("rehearse replay --out", Some(c));
    let mut c = rehearse();
    c.arg("check")
        .arg(corpus)
        .arg("-m")
        .arg(&defs)
        .arg("--no-progress");
    case("rehearse check", Some(c));
    let mut c = rehearse();
    c.arg("check")
        .arg(corpus)
        .arg("-m")
        .arg(&defs)
        .args(["--no-progress", "--no-changesets"]);
    case("rehearse check --no-changesets", Some(c));
    let mut c = rehearse();
    c.arg("check")
        .arg(corpus)
        .arg("-m")
        .arg(&none)
        .args(["--no-progress", "--format", "json"])
        .stdout(std::fs::File::create(&report).unwrap());
    case("rehearse check, no event known", Some(c));
    for _ in 0..rounds {
        for case in cases.iter_mut() {
            let Some(cmd) = case.command.as_mut() else {
                continue;
            };
            let _ = std::fs::remove_file(&out_db);
            if case.label.contains("no event known") {
                cmd.stdout(std::fs::File::create(&report).unwrap());
            }
            match measure::run(cmd) {
                Ok(run) if matches!(run.code, Some(0 | 1)) => case.runs.push(run),
                Ok(run) => eprintln!("{name}: {} exited with {:?}", case.label, run.code),
                Err(e) => eprintln!("{name}: {} could not run: {e}", case.label),
            }
        }
    }
    let findings = findings_in(&report);
    println!("{name}: {events} events");
    let floor = cases
        .first()
        .filter(|c| !c.runs.is_empty())
        .map(|c| measure::median(&c.runs.iter().map(|r| r.secs).collect::<Vec<_>>()).0);
    for case in &cases {
        if case.runs.is_empty() {
            continue;
        }
        let secs: Vec<f64> = case.runs.iter().map(|r| r.secs).collect();
        let (median, fastest, slowest) = measure::median(&secs);
        let peak = case.runs.iter().map(|r| r.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let ratio = match floor {
            Some(f) if !case.label.contains("floor") => format!("   {:.2}x the floor", f / median),
            _ => String::new(),
        };
        let extra = if case.label.contains("no event known") {
            format!("   {findings} findings")
        } else {
            String::new()
        };
        println!(
            "  {:<34} {median:>7.3} s [{fastest:.3}-{slowest:.3}] {:>9.0} events/s   peak RSS {peak:>6.1} MiB{ratio}{extra}",
            case.label,
            events as f64 / median,
        );
    }
}

/// The 1,000,000-event log made from the large store (`million::synthesize`, kept in
/// `target/bench-data/n1m/`), checked against rehearse's own recorded snapshot of it, with the
/// workspace definitions and with definitions that know no event: peak memory must not follow
/// the log's length or the number of findings.
fn million(large: &Path) {
    let Ok(corpus) = rehearse::corpus::Corpus::locate(large) else {
        return;
    };
    let dir = root().join("target/bench-data/n1m");
    let events_per_copy = rehearse::eventlog::EventLog::open(&corpus.eventlog)
        .and_then(|l| l.count())
        .unwrap_or(0);
    let copies = (1_000_000 / events_per_copy.max(1)).max(1) as i64;
    let made = match million::synthesize(&corpus.eventlog, &dir, copies) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("the 1,000,000-event log could not be made: {e}");
            return;
        }
    };
    let defs = workspace_definitions();
    let snapshot = made.join("workspace/eventlog@6.db.rehearse-snapshot");
    let has_snapshot = std::fs::read_dir(made.join("workspace"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("snapshot"))
        })
        .unwrap_or(false);
    if !has_snapshot {
        let mut c = rehearse();
        c.arg("record").arg(&made).arg("-m").arg(&defs);
        match measure::run(&mut c) {
            Ok(run) => println!(
                "{:<12} {} events: recorded rehearse's snapshot in {:.1} s",
                "n1m",
                events_per_copy * copies as u64,
                run.secs
            ),
            Err(e) => {
                eprintln!("recording the 1,000,000-event log failed: {e}");
                return;
            }
        }
    }
    let _ = snapshot;
    let scratch = tempfile::tempdir().unwrap();
    let none = definitions_knowing_no_event(scratch.path());
    let report = scratch.path().join("report.json");
    println!(
        "n1m: {} events ({copies} copies of the large store's log, fresh ids)",
        events_per_copy * copies as u64
    );
    for (label, defs, json) in [
        ("rehearse check", &defs, false),
        ("rehearse check, no event known", &none, true),
    ] {
        let mut c = rehearse();
        c.arg("check")
            .arg(&made)
            .arg("-m")
            .arg(defs)
            .arg("--no-progress");
        if json {
            c.args(["--format", "json"])
                .stdout(std::fs::File::create(&report).unwrap());
        }
        match measure::run(&mut c) {
            Ok(run) => println!(
                "  {label:<34} {:>7.3} s {:>9.0} events/s   peak RSS {:>6.1} MiB{}",
                run.secs,
                (events_per_copy * copies as u64) as f64 / run.secs,
                run.peak_kib as f64 / 1024.0,
                if json {
                    format!("   {} findings", findings_in(&report))
                } else {
                    String::new()
                }
            ),
            Err(e) => eprintln!("n1m: {label} could not run: {e}"),
        }
    }
}

fn large_store() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REHEARSE_BENCH_STORE") {
        return Some(PathBuf::from(p));
    }
    let target = root().join("target/bench-data/n100k");
    if target.join("corpus.json").is_file() {
        return Some(target);
    }
    let archive = root().join("../shared/livestore/large/n100k.tar.gz");
    if !archive.is_file() {
        eprintln!(
            "skipping the 100,000-event store: {} not found",
            archive.display()
        );
        return None;
    }
    std::fs::create_dir_all(&target).ok()?;
    eprintln!("unpacking {} into {}", archive.display(), target.display());
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&target)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(target)
}

/// Runs a script of the fixture app (`target/livestore-app/`) with Node.js and reads the JSON
/// line it prints: LiveStore logs to stdout too, so the line is the one that starts with
/// `prefix`.
fn node_json(script: &str, args: &[&std::ffi::OsStr], prefix: &str) -> Option<serde_json::Value> {
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(root().join("target/livestore-app"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    serde_json::from_str(line).ok()
}

/// LiveStore's own rematerialization of a corpus: the generator's `boot.mjs` opens a copy of
/// the store with its state database deleted, so LiveStore rebuilds it from the log. Its
/// boot time and events per second, or None where it could not run.
fn livestore_rematerialize(corpus: &Path) -> Option<(f64, f64)> {
    let args = [
        "--out".as_ref(),
        corpus.as_os_str(),
        "--mode".as_ref(),
        "delete-state".as_ref(),
    ];
    let v = node_json("boot.mjs", &args, r#"{"mode""#)?;
    if v["rowCountsMatchCorpus"] != serde_json::Value::Bool(true) {
        eprintln!(
            "{}: LiveStore's rebuild does not match the corpus",
            corpus.display()
        );
        return None;
    }
    let secs = v["bootMs"].as_f64()? / 1000.0;
    Some((secs, v["eventlogEvents"].as_f64()? / secs))
}

/// The plugin spec of the fixture app (`cargo test --test plugin` installs it).
fn fixture_app() -> String {
    format!(
        "livestore:{}",
        root().join("target/livestore-app/app.mjs").display()
    )
}

/// The rehearse binary with its output discarded: the bench prints its own figures.
fn quiet_rehearse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// LiveStore's own statement code alone on a corpus's events
/// (tests/livestore/statements-alone.mjs: one Node.js process, no pipe, no SQLite), which the
/// plugin runs for every event, spread over its helpers, with more on top: what the plugin
/// adds, and what its helpers gain. The events come from a traced replay through one helper.
/// The events, cold and warm seconds and the cold pass's CPU seconds, or None where it could
/// not run.
fn statements_alone(corpus: &Path) -> Option<(f64, f64, f64, f64)> {
    let app = root().join("target/livestore-app");
    std::fs::copy(
        root().join("tests/livestore/statements-alone.mjs"),
        app.join("statements-alone.mjs"),
    )
    .ok()?;
    let scratch = tempfile::tempdir().ok()?;
    let trace = scratch.path().join("trace.jsonl");
    let replayed = quiet_rehearse()
        .arg("replay")
        .arg(corpus)
        .arg("--materializers")
        .arg(fixture_app())
        .args(["--plugin-jobs", "1", "--out"])
        .arg(scratch.path().join("state.db"))
        .env("REHEARSE_PLUGIN_TRACE", &trace)
        .status()
        .ok()?;
    if !replayed.success() {
        return None;
    }
    let v = node_json("statements-alone.mjs", &[trace.as_os_str()], r#"{"events""#)?;
    Some((
        v["events"].as_f64()?,
        v["cold"]["seconds"].as_f64()?,
        v["warm"]["seconds"].as_f64()?,
        v["cold"]["cpuSeconds"].as_f64()?,
    ))
}

/// CPU time (user + system) of this process, and of its children that have been waited for
/// (the helpers, once a materializer is dropped), in seconds.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime, stime, cutime and cstime are the 12th to 15th of them, in clock ticks.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let ticks = 100.0;
    match fields.get(11..15) {
        Some(f) => ((f[0] + f[1]) / ticks, (f[2] + f[3]) / ticks),
        None => (0.0, 0.0),
    }
}

/// The check through the LiveStore plugin, in this (child) process: replay alone, then the
/// full check. Memory here is rehearse's own; the helpers are Node.js processes of their own.
/// `livestore` is LiveStore's own rate on the same log (measured in this run, or the
/// reference figure), for the ratio.
///
/// Every replay starts fresh helpers, so each pays the cold start as a user's run does: the
/// first helper's module loading outside the timing, JIT warm-up inside it, and for a long log
/// the second helper's whole start inside it too (it loads while the first one works). A short
/// log is replayed five times and the median reported, with the range: on a shared VM one
/// second-long run can be 30% off. `REHEARSE_BENCH_PLUGIN_JOBS=N` starts N helpers up front
/// instead, as `--plugin-jobs N` does.
fn run_plugin(corpus: &Path, livestore: (f64, &str)) {
    let mut source = rehearse::materialize::Source::load(Path::new(&fixture_app())).unwrap();
    // The settings the CLI takes from the environment: the plugin on REHEARSE_NODE where set.
    if let rehearse::materialize::Source::LiveStore(config) = &mut source {
        config.node = std::env::var_os("REHEARSE_NODE").map(Into::into);
        if let Ok(memo) = std::env::var("REHEARSE_PLUGIN_MEMO") {
            config.memo = memo.parse().unwrap();
        }
    }
    if let Some(n) = std::env::var("REHEARSE_BENCH_PLUGIN_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        source.set_helpers(n);
    }
    let rehearse::materialize::Source::LiveStore(config) = &source else {
        unreachable!("the fixture app is a livestore: source")
    };
    // The concrete materializer, which can say how many helpers it ran.
    let start = || LiveStoreMaterializer::start(config).unwrap();
    let options = CheckOptions {
        no_compare: true,
        ..CheckOptions::default()
    };
    // The helpers' start alone, for the CPU they spend outside the replay.
    let before = cpu_seconds();
    let t = Instant::now();
    drop(start());
    let start_s = t.elapsed().as_secs_f64();
    let start_cpu = cpu_seconds().1 - before.1;

    let mut replays = Vec::new();
    let mut own_cpu = Vec::new();
    let mut helpers_cpu = Vec::new();
    let (events, helpers_used) = loop {
        let before = cpu_seconds();
        let mut materializer = start();
        let t = Instant::now();
        let own = cpu_seconds().0;
        let replayed = check::check_corpus(corpus, &mut materializer, &options).unwrap();
        replays.push(t.elapsed().as_secs_f64());
        own_cpu.push(cpu_seconds().0 - own);
        let (running, starting) = materializer.helpers_running().unwrap();
        drop(materializer);
        helpers_cpu.push(cpu_seconds().1 - before.1 - start_cpu);
        if replays.len() == 5 || replays[0] > 5.0 {
            break (replayed.events, running + starting);
        }
    };
    // The median, the fastest and the slowest.
    let median_and_range = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (replay_s, fastest, slowest) = median_and_range(&replays);
    let spread = if replays.len() > 1 {
        format!(
            " (median of {}: {fastest:.3}-{slowest:.3} s)",
            replays.len()
        )
    } else {
        String::new()
    };

    let mut materializer = start();
    let t = Instant::now();
    let report = check::check_corpus(corpus, &mut materializer, &CheckOptions::default()).unwrap();
    let check_s = t.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>8} events  plugin start {:>5.2} s   replay {:>7.3} s{spread} {:>7.0} events/s ({:>4.1}x LiveStore's {:.0} {})   check {:>7.3} s {:>7.0} events/s   findings {:>3}   peak RSS {:>6.1} MiB",
        corpus.file_name().unwrap_or_default().to_string_lossy(),
        events,
        start_s,
        replay_s,
        events as f64 / replay_s,
        events as f64 / replay_s / livestore.0,
        livestore.0,
        livestore.1,
        check_s,
        report.events as f64 / check_s,
        report.findings.len(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
    // The helpers' CPU is what their processes used in all, less the start measured apart
    // (the helpers `instantiate` waits for: the first, or all that --plugin-jobs asks for; a
    // second one started for a long log loads inside the replay and is counted in it): only
    // meaningful where the replay dwarfs the start's own variation.
    let helpers = if replay_s > 5.0 {
        format!(
            ", the helpers {:.2} s ({helpers_used} helper{} on {} cores; the start before the replay takes {start_cpu:.2} s more)",
            median_and_range(&helpers_cpu).0,
            if helpers_used == 1 { "" } else { "s" },
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )
    } else {
        String::new()
    };
    println!(
        "{:<28} {:>8}         CPU in the replay: rehearse {:.2} s{helpers}",
        "",
        "",
        median_and_range(&own_cpu).0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one-plugin") {
        let rate: f64 = args[i + 2].parse().unwrap();
        run_plugin(Path::new(&args[i + 1]), (rate, &args[i + 3]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        floor::floor(Path::new(&args[i + 1])).unwrap();
        return;
    }
    if args.iter().any(|a| a == "--many-plugin") {
        run_plugin_many();
        run_plugin_large_args();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--one-bisect") {
        run_bisect(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let mut corpora = vec![
        root().join("corpora/workspace-n200"),
        root().join("corpora/workspace-n300-lsdev"),
    ];
    let sample = root().join("../shared/livestore/samples/n5000");
    if sample.is_dir() {
        corpora.push(sample);
    }
    let large = large_store();
    corpora.extend(large.clone());
    let exe = std::env::current_exe().unwrap();
    println!(
        "rehearse benchmark, SQL path (the workspace materializers), on {} cores of {}: each case a process of its own, \
         medians of {ROUNDS} runs taken in turn (the range in brackets), peak RSS the largest of the runs; \
         LiveStore 0.4.0 itself rematerializes the 100,000-event store in about 272 s on this kind of machine",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model(),
    );
    for c in &corpora {
        suite(c, ROUNDS);
    }
    if let Some(large) = large
        .as_ref()
        .filter(|_| std::env::var_os("REHEARSE_BENCH_MILLION").is_some())
    {
        million(large);
    }
    for c in &corpora {
        let status = Command::new(&exe)
            .arg("--one-bisect")
            .arg(c)
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("{}: bisect failed", c.display());
        }
    }
    if !root()
        .join("target/livestore-app/node_modules/@livestore/livestore")
        .is_dir()
    {
        println!(
            "LiveStore plugin: not measured (target/livestore-app is not installed; `cargo test --test plugin` installs it where Node.js is present)"
        );
        return;
    }
    // LiveStore's own rebuild of the large store takes minutes (about 272 s here): measured
    // when asked for, otherwise the reference figure stands in.
    let measure_large = std::env::var("REHEARSE_BENCH_LIVESTORE").as_deref() == Ok("all");
    // LiveStore itself runs on the `node` on PATH, the plugin on REHEARSE_NODE where set: the
    // helper is faster from Node.js 22.15 on (docs/plugin.md).
    let version = |node: &std::ffi::OsStr| {
        Command::new(node)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|e| e.to_string())
    };
    let plugin_node = std::env::var_os("REHEARSE_NODE").unwrap_or_else(|| "node".into());
    println!(
        "LiveStore plugin (the workspace app's own materializers through Node.js {}; LiveStore itself on {}); LiveStore's own rematerialization measured in this run{}",
        version(&plugin_node),
        version("node".as_ref()),
        if measure_large {
            ""
        } else {
            " except for the large store (REHEARSE_BENCH_LIVESTORE=all measures it too)"
        }
    );
    for c in &corpora {
        let livestore = if Some(c) == large.as_ref() && !measure_large {
            None
        } else {
            livestore_rematerialize(c)
        };
        let (rate, how) = match livestore {
            Some((secs, rate)) => {
                println!(
                    "{:<28} LiveStore rematerializes in {secs:>7.2} s {rate:>7.0} events/s",
                    c.file_name().unwrap_or_default().to_string_lossy(),
                );
                (rate, "measured")
            }
            None => (370.0, "reference"),
        };
        let status = Command::new(&exe)
            .arg("--one-plugin")
            .arg(c)
            .arg(rate.to_string())
            .arg(how)
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("{}: plugin failed", c.display());
        }
        match statements_alone(c) {
            Some((events, cold, warm, cpu)) => println!(
                "{:<28} LiveStore's statement code alone (one Node.js process, no pipe, no SQLite): cold {cold:>6.3} s ({:.1}x LiveStore's {rate:.0} {how}; {cpu:.2} s CPU), warm {warm:>6.3} s",
                "",
                events / cold / rate,
            ),
            None => eprintln!(
                "{}: LiveStore's statement code alone could not be measured",
                c.display()
            ),
        }
    }
    run_plugin_many();
    run_plugin_large_args();
}

/// Replay through the plugin of a log whose events carry large args: the 200-event corpus with
/// every TodoCreated's text grown to 800 KB (56 events, 45 MB of argsJson, a few chunks of
/// many megabytes each), end to end (`rehearse replay`, the helper's start included). The
/// helper once joined its input on every 64 KB read, and took 20.7 s here.
fn run_plugin_large_args() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("eventlog@6.db");
    std::fs::copy(
        root().join("corpora/workspace-n200/workspace/eventlog@6.db"),
        &log,
    )
    .unwrap();
    let conn = rusqlite::Connection::open(&log).unwrap();
    let grown = conn
        .execute(
            "UPDATE eventlog SET argsJson = json_set(argsJson, '$.text', hex(randomblob(400000))) WHERE name IN ('v1.TodoCreated', 'v2.TodoCreated')",
            [],
        )
        .unwrap();
    let bytes: i64 = conn
        .query_row("SELECT sum(length(argsJson)) FROM eventlog", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(conn);
    let app = fixture_app();
    let mut line = format!(
        "{:<28} {grown} events with 800 KB args, {:.0} MB of argsJson, replay end to end:",
        "large args",
        bytes as f64 / 1e6
    );
    for (label, materializers) in [
        ("plugin", app),
        (
            "SQL path",
            root()
                .join("corpora/workspace/materializers.toml")
                .display()
                .to_string(),
        ),
    ] {
        let t = Instant::now();
        let status = quiet_rehearse()
            .arg("replay")
            .arg(dir.path())
            .args(["-m", &materializers, "--out"])
            .arg(dir.path().join(format!("{label}.db")))
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("large args through the {label}: replay failed ({status})");
            return;
        }
        line += &format!("   {label} {:>6.2} s", t.elapsed().as_secs_f64());
    }
    println!("{line}");
}

/// `rehearse check` of every committed corpus at once through the plugin, end to end (the
/// binary, helpers' start included): helpers kept from one corpus to the next in each lane,
/// as by default, and new ones for every corpus (`--plugin-fresh`).
fn run_plugin_many() {
    let mut corpora: Vec<PathBuf> = std::fs::read_dir(root().join("corpora"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect.toml").is_file())
        .filter(|p| {
            // The plugin replays the workspace app; other corpora are other apps.
            std::fs::read_to_string(p.join("expect.toml"))
                .is_ok_and(|t| t.contains("materializers = \"../workspace/materializers.toml\""))
        })
        .collect();
    corpora.sort();
    let app = fixture_app();
    let mut line = format!(
        "{:<28} check of {} committed corpora, -j {}, end to end:",
        "many corpora",
        corpora.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for fresh in [false, true] {
        let t = Instant::now();
        let status = quiet_rehearse()
            .arg("check")
            .args(&corpora)
            .args(["-m", &app, "--no-progress", "--format", "json"])
            .args(fresh.then_some("--plugin-fresh"))
            .status()
            .unwrap();
        let took = t.elapsed().as_secs_f64();
        // Some committed corpora hold findings on purpose: exit 1 is a finished check.
        if !matches!(status.code(), Some(0 | 1)) {
            eprintln!("many corpora through the plugin: check failed ({status})");
            return;
        }
        line += &if fresh {
            format!("   new helpers for every corpus {took:>6.2} s")
        } else {
            format!("   helpers kept per lane {took:>6.2} s")
        };
    }
    println!("{line}");
}
