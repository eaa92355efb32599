//! What a `livestore:` materializer spec asks for, apart from any process: the spec is parsed
//! where `--materializers` is read, long before (and whether or not) a helper starts, so it
//! must not depend on Node.js being there.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long rehearse waits for the helper by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// `None` for as many as the log's length repays ([`helpers_for`](super::helpers_for)).
    pub helpers: Option<usize>,
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
}
