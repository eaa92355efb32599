//! Prerequisites: a test that cannot run here does not pass. A test that needs something this
//! machine may lack (Node.js and the LiveStore packages, git, `setpriv`, a second core) asks for
//! it here, `let app = need::livestore_app()?;`, and returns [`Result`]. What is missing makes
//! the test *ignored* with the reason in `cargo test`'s own summary (`... ignored (node is not
//! installed)`), never `ok`. What CI is meant to have (Node.js, the npm packages, git) fails the
//! test instead when `CI` is set, so a CI machine that lost it does not go green.
//!
//! [`trial`] turns a test function, plain (`fn name()`, failing by panicking) or with
//! prerequisites (`fn name() -> need::Result`), into a libtest-mimic trial.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use libtest_mimic::{Completion, Failed, Trial};

use crate::util::root;

/// Why a test cannot run here.
#[derive(Debug, Clone)]
pub struct Skip {
    /// One line, shown beside `ignored`.
    reason: String,
    /// More (a tool's own error output), shown when the skip is a failure.
    detail: String,
    /// CI is meant to have it: under `CI` the skip fails the test.
    ci_has_it: bool,
}

impl Skip {
    /// A prerequisite any machine may lack (a second core, `setpriv`): ignored, in CI too.
    pub fn because(reason: impl Into<String>) -> Skip {
        Skip {
            reason: reason.into(),
            detail: String::new(),
            ci_has_it: false,
        }
    }

    /// A prerequisite CI is meant to have (Node.js, the npm packages, git): ignored here, a
    /// failure under `CI`.
    fn ci_has_it(reason: impl Into<String>, detail: impl Into<String>) -> Skip {
        Skip {
            reason: reason.into(),
            detail: detail.into(),
            ci_has_it: true,
        }
    }

    fn completion(self) -> std::result::Result<Completion, Failed> {
        if self.ci_has_it && in_ci() {
            let mut message = format!(
                "{}: CI is meant to have this, so under CI={} the test fails instead of being \
                 ignored",
                self.reason,
                std::env::var("CI").unwrap_or_default()
            );
            if !self.detail.is_empty() {
                message.push_str("\n\n");
                message.push_str(&self.detail);
            }
            Err(message.into())
        } else {
            Ok(Completion::ignored_with(self.reason))
        }
    }
}

/// What a test with prerequisites returns: `Err` when one is missing.
pub type Result<T = ()> = std::result::Result<T, Skip>;

/// Whether this is CI: `CI` set to anything but empty, `0` or `false`, as rehearse and insta
/// read it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// What a test function returns: nothing (it panics when it fails), or [`Result`].
pub trait TestResult {
    fn completion(self) -> std::result::Result<Completion, Failed>;
}

impl TestResult for () {
    fn completion(self) -> std::result::Result<Completion, Failed> {
        Ok(Completion::Completed)
    }
}

impl TestResult for Result {
    fn completion(self) -> std::result::Result<Completion, Failed> {
        match self {
            Ok(()) => Ok(Completion::Completed),
            Err(skip) => skip.completion(),
        }
    }
}

/// The trial `module::name` running `test` (`module` is `module_path!()`: `it::cli` gives
/// `cli`). A panic fails it (libtest-mimic catches it); a missing prerequisite ignores it.
pub fn trial<R: TestResult + 'static>(module: &str, name: &str, test: fn() -> R) -> Trial {
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    Trial::ignorable_test(format!("{module}::{name}"), move || test().completion())
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `git`, which CI has.
pub fn git() -> Result {
    if runs("git", "--version") {
        Ok(())
    } else {
        Err(Skip::ci_has_it("git is not installed", ""))
    }
}

/// `setpriv` (util-linux), to run a command as another user.
pub fn setpriv() -> Result<PathBuf> {
    if runs("setpriv", "--version") {
        Ok(PathBuf::from("setpriv"))
    } else {
        Err(Skip::because(
            "running as root, which reads files without read permission, and setpriv, to run as \
             an unprivileged user instead, is not installed",
        ))
    }
}

/// `script` (util-linux), which runs a command on a pseudo-terminal.
pub fn script() -> Result {
    if runs("script", "--version") {
        Ok(())
    } else {
        Err(Skip::because(
            "script (util-linux), for a pseudo-terminal, is not installed",
        ))
    }
}

/// The LiveStore test fixture app (`tests/livestore/`) with its packages installed: copied to
/// `target/livestore-app/`, where `npm ci` installs the pinned LiveStore 0.4.0 packages (about
/// 12 s and 190 MB) unless the lock file is the one installed last; the fixture's own files are
/// copied again in every test process so that edits to them count. Once per process: the tests
/// that need LiveStore share it (and wait for it).
pub fn livestore_app() -> Result<PathBuf> {
    static APP: OnceLock<Result<PathBuf>> = OnceLock::new();
    APP.get_or_init(install_livestore_app).clone()
}

fn install_livestore_app() -> Result<PathBuf> {
    let io =
        |e: std::io::Error| Skip::ci_has_it(format!("preparing target/livestore-app: {e}"), "");
    if !runs("node", "--version") {
        return Err(Skip::ci_has_it("node is not installed", ""));
    }
    let fixture = root().join("tests/livestore");
    let app = root().join("target/livestore-app");
    std::fs::create_dir_all(&app).map_err(io)?;
    for entry in std::fs::read_dir(&fixture).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), app.join(entry.file_name())).map_err(io)?;
        }
    }
    // Installed from this very lock file, or installed again.
    let lock = std::fs::read(app.join("package-lock.json")).map_err(io)?;
    let stamp = app.join("node_modules/.rehearse-installed-lock.json");
    if app.join("node_modules/@livestore/livestore").is_dir()
        && std::fs::read(&stamp).is_ok_and(|s| s == lock)
    {
        return Ok(app);
    }
    if !runs("npm", "--version") {
        return Err(Skip::ci_has_it("npm is not installed", ""));
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&app)
        .output()
        .map_err(io)?;
    if out.status.success() && app.join("node_modules/@livestore/livestore").is_dir() {
        std::fs::write(&stamp, &lock).map_err(io)?;
        return Ok(app);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // npm ends with the lines that say what went wrong (and where its log is).
    let last: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = last[last.len().saturating_sub(3)..].join(" | ");
    Err(Skip::ci_has_it(
        format!(
            "npm ci in target/livestore-app failed ({}): {last}",
            out.status
        ),
        stderr,
    ))
}

/// A small tmpfs, mounted for the test and unmounted when dropped: a full disk on demand.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A tmpfs of `size` (`1m`): needs root and a sandbox that lets it mount.
pub fn tmpfs(size: &str) -> Result<Tmpfs> {
    let dir = tempfile::tempdir().map_err(|e| Skip::because(format!("a directory: {e}")))?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(Tmpfs { dir }),
        Ok(o) => Err(Skip::because(format!(
            "mounting a tmpfs (for a full disk) is not permitted here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(Skip::because(format!("mount cannot run: {e}"))),
    }
}
