//! The ground every helper of one materializer starts from, laid once: the module found, Node.js
//! and its flags chosen, the helper script written beside a link to the app's `node_modules`,
//! the `hello` composed. Helpers start later too (a long log gets more once the replay runs),
//! and each must start exactly as the first did.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::config::{Memo, PluginConfig};
use super::node;
use super::protocol::{PROTOCOL_VERSION, Trace};
use crate::error::{Error, Result};

/// The helper script, embedded so that nothing rehearse-specific is installed at run time.
const HELPER: &str = include_str!("livestore-helper.mjs");

/// How to start a helper.
pub(super) struct Launch {
    /// The app's schema module, absolute.
    pub(super) module: PathBuf,
    /// The Node.js version, which decides what the helpers can be asked to do.
    pub(super) node_version: (u32, u32),
    pub(super) trace: Trace,
    node: PathBuf,
    args: Vec<String>,
    script: PathBuf,
    cwd: PathBuf,
    hello: Value,
    memo: Memo,
    /// Holds the script and the helpers' progress files; removed when the materializer is.
    dir: tempfile::TempDir,
}

impl Launch {
    /// Finds what the helpers need, or says what is missing.
    pub(super) fn prepare(config: &PluginConfig) -> Result<Launch> {
        let module =
            std::path::absolute(&config.module).map_err(|e| Error::io(&config.module, e))?;
        if !module.is_file() {
            return Err(Error::input(
                &module,
                "the LiveStore schema module does not exist",
            ));
        }
        let Some(node_modules) = node::find_node_modules(&module) else {
            return Err(Error::input(
                &module,
                "no node_modules with @livestore/livestore above this module: install the app's dependencies first (npm ci)",
            ));
        };
        node::check_versions(&module, &node_modules)?;
        let node = node::node_binary(config.node.as_deref());
        let node_version = node::node_version(&node)?;
        let args = node::loader_args(&module, &node_modules, node_version)?;

        // The helper sits beside a link to the app's node_modules, so that its imports and the
        // app's resolve to the very same LiveStore modules.
        let dir = tempfile::Builder::new()
            .prefix("rehearse-livestore")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let script = dir.path().join("livestore-helper.mjs");
        std::fs::write(&script, HELPER).map_err(|e| Error::io(&script, e))?;
        link_dir(&node_modules, &dir.path().join("node_modules"))
            .map_err(|e| Error::io(dir.path(), e))?;
        let trace = Trace::open(config.trace.as_deref())?;
        Ok(Launch {
            cwd: module.parent().unwrap_or(Path::new(".")).to_path_buf(),
            hello: json!({
                "type": "hello",
                "version": PROTOCOL_VERSION,
                "module": module,
                "exportName": config.export,
                "nodeModules": node_modules,
            }),
            module,
            node_version,
            trace,
            node,
            args,
            script,
            memo: config.memo,
            dir,
        })
    }

    /// The progress file of the `n`th helper started.
    pub(super) fn progress_file(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("progress-{n}"))
    }

    /// The command that starts a helper. `memo_on`: remember Effect's schemas even through
    /// Node.js 20's loader thread, whatever the configuration says.
    pub(super) fn command(&self, memo_on: bool) -> Command {
        let memo = if memo_on { Memo::On } else { self.memo };
        let mut command = Command::new(&self.node);
        // Always set, so that the helper follows the configuration, not whatever rehearse's
        // own environment holds.
        command.env("REHEARSE_PLUGIN_MEMO", memo.as_str());
        command
            .args(&self.args)
            .arg(&self.script)
            .current_dir(&self.cwd);
        command
    }

    /// The `hello` for the helper that writes its progress to `progress`.
    pub(super) fn hello(&self, progress: &Path) -> Value {
        let mut hello = self.hello.clone();
        hello["progressFile"] = json!(progress);
        hello
    }
}

/// A link at `link` to the directory `target`.
#[cfg(unix)]
fn link_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// A link at `link` to the directory `target`: a symbolic link where Windows allows one
/// (Developer Mode, or an administrator), else a junction, which needs no privilege.
#[cfg(windows)]
fn link_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    if std::os::windows::fs::symlink_dir(target, link).is_ok() {
        return Ok(());
    }
    let status = std::process::Command::new("cmd")
        .arg("/C")
        .arg("mklink")
        .arg("/J")
        .arg(link)
        .arg(target)
        .stdout(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "neither a symbolic link nor a junction to {} could be made",
            target.display()
        )))
    }
}
