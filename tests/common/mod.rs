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
    if app.join("node_modules/@livestore/livestore").is_dir() {
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
        Ok(app)
    } else {
        Err(format!(
            "npm ci in {} failed: {}",
            app.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
