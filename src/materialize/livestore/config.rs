//! What a `livestore:` materializer spec asks for, apart from any process: the spec is parsed
//! where `--materializers` is read, long before (and whether or not) a helper starts, so it
//! must not depend on Node.js being there.
//!
//! Settings a user gives through the environment (`REHEARSE_NODE`, `REHEARSE_PLUGIN_TRACE`,
//! `REHEARSE_PLUGIN_MEMO`) are fields here too, filled in by the CLI: the library reads no
//! environment, so a Rust caller gets the defaults unless it says otherwise, and two
//! materializers in one process can differ.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long rehearse waits for the helper by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the app's schema is and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The module that exports the app's LiveStore schema.
    pub module: PathBuf,
    /// The export's name, when it is not `schema`, `default` or the only schema exported.
    pub export: Option<String>,
    /// How long to wait for any one reply.
    pub timeout: Duration,
    /// How many helper processes share the work: exactly this many, started up front, or
    /// `None` for as many as the log's length repays.
    pub helpers: Option<usize>,
    /// The Node.js binary, where not the `node` on `PATH` (`REHEARSE_NODE`): the helper is
    /// about twice as fast from Node.js 22.15 on, which a system may not install as `node`.
    pub node: Option<PathBuf>,
    /// A file that receives every message, both ways, one JSON line each
    /// (`REHEARSE_PLUGIN_TRACE`): for debugging a helper, and for the test holding the
    /// protocol to its schema.
    pub trace: Option<PathBuf>,
    /// Whether the helpers have Effect remember its schemas (`REHEARSE_PLUGIN_MEMO`).
    pub memo: Memo,
}

/// Whether the helpers have Effect remember the schemas LiveStore builds anew for every
/// update and client-document set (README, "The LiveStore plugin"). Remembering changes none
/// of LiveStore's answers, only how fast they come; it is a setting because it rewrites the
/// app's installed Effect as it loads, which someone chasing a bug may want to rule out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Memo {
    /// From the start where Node.js rewrites modules in the loading thread (22.15, 23.5 and
    /// later); on an older Node.js, whose loader thread costs about a second per helper, only
    /// for a long log, by helpers that start while the first works and then take over.
    #[default]
    Auto,
    /// From the start on any Node.js.
    On,
    /// Effect exactly as installed.
    Off,
}

impl Memo {
    /// The setting as the helper reads it (`REHEARSE_PLUGIN_MEMO` in its environment).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Memo::Auto => "auto",
            Memo::On => "on",
            Memo::Off => "off",
        }
    }
}

impl std::str::FromStr for Memo {
    type Err = String;

    /// `auto`, `on` or `off`, as the README names them.
    fn from_str(s: &str) -> Result<Memo, String> {
        match s {
            "auto" => Ok(Memo::Auto),
            "on" => Ok(Memo::On),
            "off" => Ok(Memo::Off),
            _ => Err(format!("{s:?} is not auto, on or off")),
        }
    }
}

impl PluginConfig {
    /// Parses `livestore:<path>[#export]`; `None` for any other materializer spec. What follows
    /// the last `#` is an export only if it is a JavaScript identifier and the whole is not a
    /// file, so a path with a `#` in it still names its module.
    pub fn parse(spec: &str) -> Option<PluginConfig> {
        let rest = spec.strip_prefix("livestore:")?;
        let identifier = |e: &str| {
            let mut chars = e.chars();
            chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        let (module, export) = match rest.rsplit_once('#') {
            Some((m, e)) if identifier(e) && !Path::new(rest).is_file() => (m, Some(e.to_string())),
            _ => (rest, None),
        };
        Some(PluginConfig {
            module: PathBuf::from(module),
            export,
            timeout: DEFAULT_TIMEOUT,
            helpers: None,
            node: None,
            trace: None,
            memo: Memo::Auto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_the_module_and_optionally_its_export() {
        let c = PluginConfig::parse("livestore:app/schema.ts").unwrap();
        assert_eq!(c.module, PathBuf::from("app/schema.ts"));
        assert_eq!(c.export, None);
        assert_eq!(c.helpers, None);
        let c = PluginConfig::parse("livestore:app/schema.mjs#appSchema").unwrap();
        assert_eq!(c.export.as_deref(), Some("appSchema"));
        assert!(PluginConfig::parse("app/materializers.toml").is_none());
        // A `#` in a directory name, or in a file that exists, is part of the path.
        let c = PluginConfig::parse("livestore:apps/#1 ü/schema.ts").unwrap();
        assert_eq!(c.module, PathBuf::from("apps/#1 ü/schema.ts"));
        assert_eq!(c.export, None);
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("schema#v2");
        std::fs::write(&odd, "").unwrap();
        let c = PluginConfig::parse(&format!("livestore:{}", odd.display())).unwrap();
        assert_eq!((c.module, c.export), (odd, None));
    }

    #[test]
    fn memo_settings_read_as_the_readme_names_them() {
        for memo in [Memo::Auto, Memo::On, Memo::Off] {
            assert_eq!(memo.as_str().parse(), Ok(memo));
        }
        assert_eq!(
            "yes".parse::<Memo>(),
            Err(r#""yes" is not auto, on or off"#.to_string())
        );
    }
}
