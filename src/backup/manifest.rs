//! `manifest.json` of a backup package: what the package must hold, so that a pre-flight can
//! prove it restorable without trusting the directory listing.
//!
//! The manifest names every file with its size and SHA-256, says which store and schema the
//! files belong to, and records the log's head and per-name counts at export time, so that a
//! swapped, truncated or edited file is caught before anyone restores from it. Its JSON Schema
//! is `schemas/manifest.schema.json`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::eventlog::SeqNum;

/// The manifest format this version writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The manifest's file name inside a package.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The event log's name inside a package.
pub const EVENTLOG_FILE: &str = "eventlog.db";

/// The state snapshot's name inside a package.
pub const STATE_FILE: &str = "state.db";

/// Where auxiliary files go inside a package.
pub const AUX_DIR: &str = "aux";

/// The JSON Schema of the manifest, compiled into the binary so a package is checked against
/// the schema of the version that reads it.
pub const MANIFEST_SCHEMA: &str = include_str!("../../schemas/manifest.schema.json");

/// A backup package's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The LiveStore store id (the store directory's name).
    pub store_id: String,
    /// LiveStore's storage format (6 for LiveStore 0.4).
    pub storage_format_version: u32,
    /// The state schema hash from the state file's name (`state<hash>@6.db`): a signed
    /// integer, or `fixed` under manual migrations. Absent when the package has no state.
    pub state_schema_hash: Option<String>,
    /// `__livestore_sync_status.head` (0 without a sync backend).
    pub sync_head: Option<i64>,
    /// The sync backend's id, when one set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_id: Option<String>,
    /// The last event in log order.
    pub last_event: Option<SeqNum>,
    /// Rows in the log.
    pub events: u64,
    /// Events per name.
    pub event_counts: BTreeMap<String, u64>,
    /// The app's version, as the operator gave it.
    pub app_version: Option<String>,
    /// When the package was made (RFC 3339, UTC).
    pub created_at: String,
    /// What made it.
    pub tool: Tool,
    /// Every file of the package but the manifest itself.
    pub files: Vec<FileEntry>,
}

/// The program that wrote a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// `rehearse`.
    pub name: String,
    /// Its version.
    pub version: String,
}

impl Tool {
    /// This build of rehearse.
    pub fn this() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The event log.
    Eventlog,
    /// The state snapshot.
    State,
    /// A file the app keeps outside the event log (a ledger, a key store): a log-only restore
    /// does not rebuild it.
    Auxiliary,
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Path inside the package, `/`-separated.
    pub path: String,
    /// What it is.
    pub role: Role,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Where an auxiliary file was exported from, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Manifest {
    /// The entry of a role that occurs once (event log, state).
    pub fn file(&self, role: Role) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == role)
    }
}

/// Reads and validates `manifest.json` against its schema; each schema error is reported with
/// its JSON pointer.
pub fn load(path: &Path) -> Result<Manifest> {
    let bytes = crate::files::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes)
}

/// Parses and validates a manifest's bytes; `path` names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::input(path, format!("not valid JSON: {e}")))?;
    let validator = VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(MANIFEST_SCHEMA).expect("the bundled manifest schema is JSON");
        jsonschema::validator_for(&schema).expect("the bundled schema compiles")
    });
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::input(
            path,
            format!(
                "does not match the manifest schema (schemas/manifest.schema.json): {}",
                errors.join("; ")
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| Error::input(path, format!("{e}")))
}

/// Size and SHA-256 of a file, read in blocks so that memory does not follow its size.
pub fn digest(path: &Path) -> Result<(u64, String)> {
    let mut f = crate::files::open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((total, hex))
}

/// `t` as RFC 3339 UTC, to the second.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            digest(&p).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            )
        );
    }

    #[test]
    fn creation_times_are_rfc3339_to_the_second() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
