//! Helpers shared by the end-to-end tests: the real corpora and the built binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus(name: &str) -> PathBuf {
    root().join("corpora").join(name)
}

pub fn defs() -> PathBuf {
    corpus("workspace/materializers.toml")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn rehearse(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    rehearse_env(args, &[])
}

/// Runs the binary with extra environment variables (`CI`, say).
pub fn rehearse_env(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(args.iter().map(|a| a.as_ref()))
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run rehearse");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir` with its bytes.
pub fn snapshot_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The LiveStore test fixture app (`tests/livestore/`) with its packages installed, when this
/// machine has Node.js: copied to `target/livestore-app/`, where `npm ci` installs the pinned
/// LiveStore 0.4.0 packages once (about 12 s and 190 MB); the fixture's own files are copied
/// again on every run so that edits to them count. `Err` says why LiveStore cannot run here.
pub fn livestore_app() -> Result<PathBuf, String> {
    // Once per test process: the tests that need LiveStore share one installation.
    static APP: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    APP.get_or_init(install_livestore_app).clone()
}

fn install_livestore_app() -> Result<PathBuf, String> {
    let has = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("node") {
        return Err("node is not installed".into());
    }
    let fixture = root().join("tests/livestore");
    let app = root().join("target/livestore-app");
    std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(&fixture).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), app.join(entry.file_name())).map_err(|e| e.to_string())?;
        }
    }
    // Installed from this very lock file, or installed again.
    let lock = std::fs::read(app.join("package-lock.json")).map_err(|e| e.to_string())?;
    let stamp = app.join("node_modules/.rehearse-installed-lock.json");
    if app.join("node_modules/@livestore/livestore").is_dir()
        && std::fs::read(&stamp).is_ok_and(|s| s == lock)
    {
        return Ok(app);
    }
    if !has("npm") {
        return Err("npm is not installed".into());
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&app)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && app.join("node_modules/@livestore/livestore").is_dir() {
        std::fs::write(&stamp, &lock).map_err(|e| e.to_string())?;
        Ok(app)
    } else {
        Err(format!(
            "npm ci in {} failed: {}",
            app.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What LiveStore recorded under `LS_DEV` for each event (the `debug` column of
/// `__livestore_session_changeset`: the statements it ran), by (global, client) seqNum.
pub fn lsdev_statements(corpus: &Path) -> Result<BTreeMap<(i64, i64), Value>, String> {
    let located = rehearse::corpus::Corpus::locate(corpus).map_err(|e| e.to_string())?;
    let state = rehearse::sqlite::open_input(&located.snapshots[0]).map_err(|e| e.to_string())?;
    let mut recorded = BTreeMap::new();
    let mut stmt = state
        .conn
        .prepare("SELECT seqNumGlobal, seqNumClient, debug FROM __livestore_session_changeset")
        .map_err(|e| e.to_string())?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let debug: Option<String> = row.get(2).map_err(|e| e.to_string())?;
        let debug = debug.ok_or("a changeset row has no debug column: not an LS_DEV state")?;
        let key = (
            row.get(0).map_err(|e| e.to_string())?,
            row.get(1).map_err(|e| e.to_string())?,
        );
        recorded.insert(
            key,
            // JSON.stringify's: a bind value may hold a lone surrogate.
            rehearse::js::parse_json(&debug).map_err(|e| e.to_string())?,
        );
    }
    Ok(recorded)
}

/// How the statements rehearse has for an event differ from those LiveStore recorded for it
/// (`theirs`, from [`lsdev_statements`]); empty when they are the same.
pub fn statement_differences(
    ev: &rehearse::eventlog::Event,
    ours: &[rehearse::materialize::Statement],
    theirs: Option<&Value>,
) -> Vec<String> {
    use rehearse::js::BindValue;
    use rehearse::materialize::Binds;
    let Some(theirs) = theirs else {
        return vec![format!(
            "{} {}: LiveStore recorded nothing",
            ev.seq, ev.name
        )];
    };
    let theirs = theirs.as_array().cloned().unwrap_or_default();
    if theirs.len() != ours.len() {
        return vec![format!(
            "{} {}: {} statements, LiveStore ran {}",
            ev.seq,
            ev.name,
            ours.len(),
            theirs.len()
        )];
    }
    let mut problems = Vec::new();
    for (o, t) in ours.iter().zip(&theirs) {
        let sql = t["statementSql"].as_str().unwrap_or_default();
        if o.sql != sql {
            problems.push(format!(
                "{} {}: SQL differs:\n  ours:   {:?}\n  theirs: {sql:?}",
                ev.seq, ev.name, o.sql
            ));
        }
        let scalar = |v: &Value| BindValue::from_json_scalar(v).expect("a scalar bind value");
        let binds = match &t["bindValues"] {
            Value::Array(a) => Binds::Positional(a.iter().map(scalar).collect()),
            Value::Object(m) if m.is_empty() => Binds::None,
            Value::Object(m) => {
                Binds::Named(m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
            }
            other => panic!("unexpected bindValues {other}"),
        };
        // No binds, an empty list and an empty object all bind nothing.
        let same = match (&o.binds, &binds) {
            (Binds::None, Binds::Named(m)) | (Binds::Named(m), Binds::None) => m.is_empty(),
            (Binds::None, Binds::Positional(v)) | (Binds::Positional(v), Binds::None) => {
                v.is_empty()
            }
            (a, b) => a == b,
        };
        if !same {
            problems.push(format!(
                "{} {}: binds differ:\n  ours:   {:?}\n  theirs: {binds:?}",
                ev.seq, ev.name, o.binds
            ));
        }
    }
    problems
}
