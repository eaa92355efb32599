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
//! in Node.js helpers, against LiveStore's own rematerialization speed.
//!
//! Figures are printed, never asserted: a timed test would fail on a busy machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rehearse::check::{self, CheckOptions};
use rehearse::definitions::Definitions;
use rehearse::materialize::sql::SqlMaterializer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One corpus, in this (child) process: prints one line of figures.
fn run_one(corpus: &Path) {
    let defs = Definitions::load(&root().join("corpora/workspace/materializers.toml")).unwrap();
    let mut materializer = SqlMaterializer::new(defs.clone());
    // Replay alone (no comparison), then the full check.
    let t = Instant::now();
    let options = CheckOptions {
        no_compare: true,
        ..CheckOptions::default()
    };
    let replay_only = &options;
    let replayed = check::check_corpus(corpus, &mut materializer, replay_only).unwrap();
    let replay_s = t.elapsed().as_secs_f64();
    let mut materializer = SqlMaterializer::new(defs);
    let t = Instant::now();
    let report = check::check_corpus(corpus, &mut materializer, &CheckOptions::default()).unwrap();
    let check_s = t.elapsed().as_secs_f64();
    let rows: u64 = report.tables.iter().map(|t| t.rows_expected).sum();
    println!(
        "{:<28} {:>8} events  replay {:>7.3} s {:>9.0} events/s   check {:>7.3} s {:>9.0} events/s   {:>7} rows compared   findings {:>3}   peak RSS {:>6.1} MiB",
        corpus.file_name().unwrap_or_default().to_string_lossy(),
        replayed.events,
        replay_s,
        replayed.events as f64 / replay_s,
        check_s,
        report.events as f64 / check_s,
        rows,
        report.findings.len(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
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

/// LiveStore's own rematerialization of a corpus: the generator's `boot.mjs` opens a copy of
/// the store with its state database deleted, so LiveStore rebuilds it from the log. Its
/// boot time and events per second, or None where it could not run.
fn livestore_rematerialize(corpus: &Path) -> Option<(f64, f64)> {
    let out = Command::new("node")
        .arg("boot.mjs")
        .arg("--out")
        .arg(corpus)
        .arg("--mode")
        .arg("delete-state")
        .current_dir(root().join("target/livestore-app"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // LiveStore logs to stdout too; boot.mjs's own line is the JSON object.
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(r#"{"mode""#))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
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

/// The check through the LiveStore plugin, in this (child) process: replay alone, then the
/// full check. Memory here is rehearse's own; the helpers are Node.js processes of their own.
/// `livestore` is LiveStore's own rate on the same log (measured in this run, or the
/// reference figure), for the ratio.
fn run_plugin(corpus: &Path, livestore: (f64, &str)) {
    let source = rehearse::materialize::Source::load(Path::new(&format!(
        "livestore:{}",
        root().join("target/livestore-app/app.mjs").display()
    )))
    .unwrap();
    let t = Instant::now();
    let mut materializer = source.instantiate().unwrap();
    let start_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let options = CheckOptions {
        no_compare: true,
        ..CheckOptions::default()
    };
    let replayed = check::check_corpus(corpus, materializer.as_mut(), &options).unwrap();
    let replay_s = t.elapsed().as_secs_f64();
    let mut materializer = source.instantiate().unwrap();
    let t = Instant::now();
    let report =
        check::check_corpus(corpus, materializer.as_mut(), &CheckOptions::default()).unwrap();
    let check_s = t.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>8} events  plugin start {:>5.2} s   replay {:>7.3} s {:>7.0} events/s ({:>4.1}x LiveStore's {:.0} {})   check {:>7.3} s {:>7.0} events/s   findings {:>3}   peak RSS {:>6.1} MiB",
        corpus.file_name().unwrap_or_default().to_string_lossy(),
        replayed.events,
        start_s,
        replay_s,
        replayed.events as f64 / replay_s,
        replayed.events as f64 / replay_s / livestore.0,
        livestore.0,
        livestore.1,
        check_s,
        report.events as f64 / check_s,
        report.findings.len(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one-plugin") {
        let rate: f64 = args[i + 2].parse().unwrap();
        run_plugin(Path::new(&args[i + 1]), (rate, &args[i + 3]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--one") {
        run_one(Path::new(&args[i + 1]));
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
        "rehearse replay benchmark (SQL path, workspace materializers; LiveStore 0.4.0 itself rematerializes 100,000 events in about 272 s on this kind of machine)"
    );
    for c in &corpora {
        let status = Command::new(&exe).arg("--one").arg(c).status().unwrap();
        if !status.success() {
            eprintln!("{}: failed", c.display());
        }
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
    println!(
        "LiveStore plugin (the workspace app's own materializers through Node.js); LiveStore's own rematerialization measured in this run{}",
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
    }
}
