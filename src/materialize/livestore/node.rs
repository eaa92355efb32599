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

/// The LiveStore and Effect versions the helper is written against: LiveStore 0.4 on Effect 3.
/// A later LiveStore moves to Effect 4, where `Schema.partial`, `Schema.parseJson` and the
/// `JSONSchema` module the helper calls are gone: it would fail deep inside, with a stack
/// trace, so the versions are read first and a clear refusal names them.
const SUPPORTED: &str = "@livestore 0.4.x with effect 3.x";

/// Reads the versions of the app's LiveStore and Effect (from their `package.json`, as
/// installed beside the app) and refuses versions the helper does not run. A package it
/// cannot read is left for the helper's import to report.
pub(super) fn check_versions(module: &Path, node_modules: &Path) -> Result<()> {
    let version = |package: &Path| -> Option<String> {
        let text = std::fs::read_to_string(package.join("package.json")).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json.get("version")?.as_str().map(str::to_string)
    };
    let livestore = ["@livestore/livestore", "@livestore/common"]
        .iter()
        .find_map(|p| version(&node_modules.join(p)).map(|v| (*p, v)));
    // Effect as LiveStore's utilities import it: hoisted beside them, or nested under them.
    let effect = [
        node_modules.join("effect"),
        node_modules.join("@livestore/utils/node_modules/effect"),
    ]
    .iter()
    .find_map(|p| version(p));
    let livestore_ok = livestore
        .as_ref()
        .is_none_or(|(_, v)| v.split(['.', '-']).take(2).eq(["0", "4"].iter().copied()));
    let effect_ok = effect
        .as_deref()
        .is_none_or(|v| v.split('.').next() == Some("3"));
    if livestore_ok && effect_ok {
        return Ok(());
    }
    let found = [
        livestore.map(|(p, v)| format!("{p} {v}")),
        effect.map(|v| format!("effect {v}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" with ");
    Err(Error::Plugin {
        module: module.to_path_buf(),
        message: format!(
            "the app uses {found} (in {}); the plugin runs {SUPPORTED}. Write SQL definitions for this app instead, or use a rehearse that supports its LiveStore",
            node_modules.display()
        ),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(livestore: &str, effect: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (package, version) in [("@livestore/livestore", livestore), ("effect", effect)] {
            let p = dir.path().join("node_modules").join(package);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(
                p.join("package.json"),
                format!(r#"{{"version":"{version}"}}"#),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn livestore_0_4_on_effect_3_is_run_and_later_versions_are_named_and_refused() {
        for (livestore, effect, ok) in [
            ("0.4.0", "3.21.2", true),
            ("0.4.0-dev.22", "3.19.0", true),
            ("0.5.0", "4.1.5", false),
            ("0.4.0", "4.0.0-beta.99", false),
            ("1.0.0", "3.21.2", false),
        ] {
            let dir = tree(livestore, effect);
            let got = check_versions(
                &dir.path().join("app.mjs"),
                &dir.path().join("node_modules"),
            );
            assert_eq!(got.is_ok(), ok, "{livestore} {effect}: {got:?}");
            if let Err(e) = got {
                let message = e.to_string();
                assert!(
                    message.contains(&format!(
                        "@livestore/livestore {livestore} with effect {effect}"
                    )) && message.contains("0.4.x with effect 3.x"),
                    "{message}"
                );
            }
        }
    }
}
