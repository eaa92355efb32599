//! The Node.js side of the machine, found before any helper starts: which binary, which
//! version (it decides how a TypeScript module loads and whether Effect's schemas can be
//! remembered), and which `node_modules` (the app's own LiveStore, the one under test). Each
//! missing piece is an error that says what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The `node_modules` directory the app's imports resolve from: the nearest one above the
/// module that holds LiveStore.
pub(super) fn find_node_modules(module: &Path) -> Option<PathBuf> {
    let mut dir = module.parent();
    while let Some(d) = dir {
        let nm = d.join("node_modules");
        if nm.join("@livestore/livestore").is_dir() || nm.join("@livestore/common").is_dir() {
            return Some(nm);
        }
        dir = d.parent();
    }
    None
}

/// The binary configured, or the `node` on `PATH`.
pub(super) fn node_binary(configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(|| PathBuf::from("node"), Path::to_path_buf)
}

/// Node's major and minor version.
pub(super) fn node_version(node: &Path) -> Result<(u32, u32)> {
    let out = Command::new(node).arg("--version").output().map_err(|e| {
        Error::input(
            node,
            format!(
                "cannot run Node.js ({e}): the LiveStore plugin runs the app's materializers with Node.js 20 or later (set REHEARSE_NODE to use another binary)"
            ),
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok((major, minor))
}

/// The flags Node.js needs to load `module`: a TypeScript module runs through the app's own
/// tsx where it has one (the app's own choice of transform), else through Node's type
/// stripping where this Node.js has it.
pub(super) fn loader_args(
    module: &Path,
    node_modules: &Path,
    (major, minor): (u32, u32),
) -> Result<Vec<String>> {
    let mut args: Vec<String> = Vec::new();
    let ext = module
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if matches!(ext.as_str(), "ts" | "mts" | "cts" | "tsx") {
        if node_modules.join("tsx").is_dir() {
            args.push("--import".into());
            args.push("tsx".into());
        } else if (major, minor) >= (23, 6) {
            // Type stripping is on by default.
        } else if (major, minor) >= (22, 6) {
            args.push("--experimental-strip-types".into());
        } else {
            return Err(Error::input(
                module,
                format!(
                    "a TypeScript module needs the app's own tsx (npm i -D tsx) or Node.js 22.6 or later for type stripping; this is Node.js {major}.{minor} and {} has no tsx",
                    node_modules.display()
                ),
            ));
        }
    }
    Ok(args)
}
