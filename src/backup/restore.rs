//! `rehearse restore`: a verified package into a LiveStore store directory, so that a crash at
//! any moment leaves the old store or the new one, whole.
//!
//! The pre-flight runs first and a `no-go` stops everything. The package's files are copied
//! into a hidden staging directory beside the target, checked against the manifest again and
//! flushed; then the staging directory and the target are exchanged in one atomic rename
//! (Linux `renameat2(RENAME_EXCHANGE)`, macOS `renameatx_np(RENAME_SWAP)`; on Windows three
//! renames under a record that the next run finishes, `files::exchange_dirs_by_renames`; a
//! plain rename when there is no store yet), the restored store is read back (a failure swaps
//! the old store back in), and the old store, now under the staging name, is renamed to a
//! timestamped backup. A small intent file
//! beside the target, written before the exchange, lets the next run finish the bookkeeping of
//! a run that was killed: the target itself is never half old, half new.
//!
//! `--from-log` installs the log without the snapshot. LiveStore finds no state database for
//! its schema and rematerializes it from the log at the next boot (FORMAT.md §9.1), which the
//! pre-flight has just proved the log survives. Writing rehearse's own replay as the state
//! instead would have to forge LiveStore's system tables, and LiveStore uses a state database
//! it finds as it is, never rebuilding it.
//!
//! Tests simulate a kill after each step with `REHEARSE_FAILPOINT=<step>` (the process aborts
//! there, without cleaning up): `staged`, `intent-written`, `swapped`, `swapped-back`,
//! `kept-old`; `REHEARSE_FAILPOINT=verify` makes the read-back fail instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backup::manifest::{self, Manifest, Role};
use crate::backup::preflight::{self, Preflight, PreflightOptions, Verdict};
use crate::corpus::STORAGE_FORMAT;
use crate::error::{Error, Result};
use crate::files;
use crate::materialize::Materializer;
use crate::progress::{Progress, Stage};

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Install the log only; LiveStore rebuilds the state from it at the next boot.
    pub from_log: bool,
    /// The pre-flight's gates and replay settings.
    pub preflight: PreflightOptions,
}

/// The version of `restore --format json` (schemas/restore.schema.json); a change that could
/// break a reader raises it.
pub const RESTORE_VERSION: u32 = 1;

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// [`RESTORE_VERSION`].
    pub version: u32,
    /// The pre-flight that allowed (or refused) it.
    pub preflight: Preflight,
    /// Whether the store was restored.
    pub restored: bool,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The store directory.
    pub target: String,
    /// Where the store that was there before now is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The files installed, as named in the store.
    pub installed: Vec<String>,
    /// What was checked on the restored store.
    pub verified: Vec<String>,
    /// Things the operator should know.
    pub notes: Vec<String>,
}

/// The intent file: what a run that was killed mid-way was doing.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Intent {
    staging: PathBuf,
    backup: PathBuf,
    /// SHA-256 of the new event log: tells which store a leftover directory holds.
    new_eventlog_sha256: String,
}

fn intent_path(target: &Path) -> PathBuf {
    sibling(target, ".", ".rehearse-restore.json")
}

/// `<parent>/<prefix><name><suffix>`.
fn sibling(target: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    files::parent_of(target).join(format!("{prefix}{name}{suffix}"))
}

/// Finishes what a killed run left beside `target`: a staging directory that still holds the
/// new files is removed (the exchange never happened, the target is the old store); one that
/// holds the old store after the exchange becomes the backup it was meant to be.
fn recover(target: &Path, notes: &mut Vec<String>) -> Result<()> {
    // First give every directory its name back, where the exchange was not atomic (Windows).
    notes.extend(files::finish_exchange(target)?);
    let path = intent_path(target);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let intent: Intent = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&path, format!("unreadable restore intent file: {e}")))?;
    if intent.staging.exists() {
        let log = intent.staging.join(format!("eventlog@{STORAGE_FORMAT}.db"));
        let holds_new = log.is_file()
            && manifest::digest(&log)
                .map(|(_, sha)| sha == intent.new_eventlog_sha256)
                .unwrap_or(false);
        if holds_new {
            std::fs::remove_dir_all(&intent.staging).map_err(|e| Error::io(&intent.staging, e))?;
            notes.push(format!(
                "an earlier restore was interrupted before it swapped the store in; its staging directory {} was removed",
                intent.staging.display()
            ));
        } else {
            std::fs::rename(&intent.staging, &intent.backup)
                .map_err(|e| Error::io(&intent.backup, e))?;
            notes.push(format!(
                "an earlier restore was interrupted after it swapped the store in; the store it replaced was moved to {}",
                intent.backup.display()
            ));
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    files::fsync_dir(&files::parent_of(target))
}

/// Removes staging directories of runs killed before they wrote their intent.
fn remove_stale_staging(target: &Path, notes: &mut Vec<String>) -> Result<()> {
    let parent = files::parent_of(target);
    let prefix = sibling(target, ".", ".rehearse-staging-")
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && e.path().is_dir() {
            std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
            notes.push(format!(
                "removed {}, left by an earlier restore that was interrupted while staging",
                e.path().display()
            ));
        }
    }
    Ok(())
}

/// Restores the package at `package` into the store directory `target`.
pub fn restore(
    package: &Path,
    target: &Path,
    materializer: &mut dyn Materializer,
    options: &RestoreOptions,
) -> Result<Restored> {
    restore_observed(package, target, materializer, options, &mut |_| {})
}

/// [`restore`], telling `observe` as the pre-flight runs and the files are staged and read
/// back.
pub fn restore_observed(
    package: &Path,
    target: &Path,
    materializer: &mut dyn Materializer,
    options: &RestoreOptions,
    observe: &mut dyn FnMut(Progress),
) -> Result<Restored> {
    let mut notes = Vec::new();
    recover(target, &mut notes)?;
    remove_stale_staging(target, &mut notes)?;

    let pre = preflight::preflight_observed(package, materializer, &options.preflight, observe)?;
    let mut out = Restored {
        version: RESTORE_VERSION,
        preflight: pre,
        restored: false,
        refused: None,
        target: target.display().to_string(),
        previous: None,
        installed: Vec::new(),
        verified: Vec::new(),
        notes,
    };
    match (out.preflight.verdict, options.from_log) {
        (Verdict::NoGo, _) => {
            out.refused = Some(format!(
                "the pre-flight says no-go: {}",
                out.preflight.reason
            ));
            return Ok(out);
        }
        (Verdict::GoReplay, false) => {
            out.refused = Some(format!(
                "the snapshot is not to be trusted ({}); restore with --from-log to rebuild the state from the log",
                out.preflight.reason
            ));
            return Ok(out);
        }
        _ => {}
    }
    let manifest = out
        .preflight
        .manifest
        .clone()
        .expect("a go verdict has a manifest");

    // What may be replaced: nothing, an empty directory, or a LiveStore store.
    let existing = !files::is_absent_or_empty_dir(target)?;
    if existing && !is_store(target)? {
        return Err(Error::input(
            target,
            "exists and is not a LiveStore store directory (no eventlog@6.db); restore replaces only a store",
        ));
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != manifest.store_id {
        out.notes.push(format!(
            "LiveStore opens <base directory>/{}; this directory is named {name:?}",
            manifest.store_id
        ));
    }

    // Stage. A staging directory that cannot be completed (a full disk) is removed here, not
    // left for the next run.
    let parent = files::parent_of(target);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let stamp = chrono_stamp();
    let staging = unique(sibling(target, ".", &format!(".rehearse-staging-{stamp}")));
    std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let staged =
        stage(package, &manifest, &staging, options.from_log, observe).and_then(|installed| {
            files::fsync_tree(&staging)?;
            files::fsync_dir(&parent)?;
            Ok(installed)
        });
    let installed = match staged {
        Ok(installed) => installed,
        Err(e) => return Err(discard_staging(&staging, e, target)),
    };
    files::failpoint("staged");

    // Swap, then read the restored store back; a store that does not read back as the
    // manifest says is swapped out again, so the target holds the old store or the verified
    // new one.
    if existing {
        let backup = unique(sibling(target, "", &format!(".rehearse-backup-{stamp}")));
        let log = manifest
            .file(Role::Eventlog)
            .expect("the schema requires an event log");
        let intent = Intent {
            staging: std::path::absolute(&staging).unwrap_or(staging.clone()),
            backup: std::path::absolute(&backup).unwrap_or(backup.clone()),
            new_eventlog_sha256: log.sha256.clone(),
        };
        crate::files::write_atomic(
            &intent_path(target),
            &serde_json::to_vec_pretty(&intent).expect("an intent serializes"),
        )?;
        files::fsync_dir(&parent)?;
        files::failpoint("intent-written");
        files::exchange_dirs(&staging, target)?;
        files::failpoint("swapped");
        match verify(target, &manifest, options.from_log, observe) {
            Ok(v) => out.verified = v,
            Err(e) => {
                // The staging directory holds the old store: swap it back. A kill from here on
                // is tidied by the intent file, which finds the new store under the staging
                // name and removes it.
                files::exchange_dirs(&staging, target)?;
                files::failpoint("swapped-back");
                let removed = remove_tree(&staging);
                std::fs::remove_file(intent_path(target)).map_err(|e| Error::io(target, e))?;
                files::fsync_dir(&parent)?;
                return Err(Error::input(
                    target,
                    format!(
                        "the restored store did not read back as the manifest says ({e}); the previous store was put back in place, whole{removed}"
                    ),
                ));
            }
        }
        std::fs::rename(&staging, &backup).map_err(|e| Error::io(&backup, e))?;
        files::fsync_dir(&parent)?;
        files::failpoint("kept-old");
        std::fs::remove_file(intent_path(target)).map_err(|e| Error::io(target, e))?;
        files::fsync_dir(&parent)?;
        out.previous = Some(backup.display().to_string());
    } else {
        let was_empty_dir = target.is_dir();
        files::publish_dir(&staging, target)?;
        files::failpoint("swapped");
        match verify(target, &manifest, options.from_log, observe) {
            Ok(v) => out.verified = v,
            Err(e) => {
                // Nothing was there before: take the new store away again.
                std::fs::rename(target, &staging).map_err(|e| Error::io(target, e))?;
                let removed = remove_tree(&staging);
                if was_empty_dir {
                    std::fs::create_dir(target).map_err(|e| Error::io(target, e))?;
                }
                files::fsync_dir(&parent)?;
                return Err(Error::input(
                    target,
                    format!(
                        "the restored store did not read back as the manifest says ({e}); it was taken away again, leaving the target as it was{removed}"
                    ),
                ));
            }
        }
    }
    out.installed = installed;
    out.restored = true;
    for f in manifest.files.iter().filter(|f| f.role == Role::Auxiliary) {
        out.notes.push(format!(
            "{} (exported from {}) was installed in the store directory; move it if the app keeps it elsewhere",
            Path::new(&f.path).file_name().unwrap_or_default().to_string_lossy(),
            f.source.as_deref().unwrap_or("an unrecorded place")
        ));
    }
    if options.from_log {
        out.notes.push(
            "the state database was not installed: LiveStore rebuilds it from the log when the app next opens the store (this can take a while for a long log)".into(),
        );
    }
    Ok(out)
}

/// Removes a staging directory that will not be installed, and says so: the error that stopped
/// the restore, with where the staging directory was and that it is gone (or that it could not
/// be removed, and must be by hand).
fn discard_staging(staging: &Path, e: Error, target: &Path) -> Error {
    let removed = remove_tree(staging);
    Error::input(
        target,
        format!("nothing was restored: {e}; the store is as it was{removed}"),
    )
}

/// Removes `dir`; the sentence that tells the operator.
fn remove_tree(dir: &Path) -> String {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => format!("; the staging directory {} was removed", dir.display()),
        Err(e) => format!(
            "; the staging directory {} could not be removed ({e}): remove it by hand",
            dir.display()
        ),
    }
}

fn is_store(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("eventlog@") && n.ends_with(".db")
        }))
}

/// The name a package file takes in the store (none for the snapshot under `--from-log`).
fn store_name(m: &Manifest, f: &manifest::FileEntry, from_log: bool) -> Option<String> {
    Some(match f.role {
        Role::Eventlog => format!("eventlog@{STORAGE_FORMAT}.db"),
        Role::State if from_log => return None,
        Role::State => format!(
            "state{}@{STORAGE_FORMAT}.db",
            m.state_schema_hash.as_deref().unwrap_or("")
        ),
        Role::Auxiliary => Path::new(&f.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| f.path.clone()),
    })
}

/// Copies the package's files under their LiveStore names and checks each copy against the
/// manifest, so that a package changed since the pre-flight is caught here.
fn stage(
    package: &Path,
    m: &Manifest,
    staging: &Path,
    from_log: bool,
    observe: &mut dyn FnMut(Progress),
) -> Result<Vec<String>> {
    let mut installed: Vec<String> = Vec::new();
    let staged = |f: &&manifest::FileEntry| store_name(m, f, from_log).is_some();
    observe(Progress::Begin {
        stage: Stage::Stage,
        total: Some(m.files.iter().filter(staged).map(|f| f.bytes).sum()),
    });
    for f in &m.files {
        let Some(name) = store_name(m, f, from_log) else {
            continue;
        };
        // The pre-flight refuses such a package; a second file under one name would replace
        // the first in the store.
        if installed.contains(&name) {
            return Err(Error::input(
                package.join(&f.path),
                format!(
                    "would be installed as {name:?}, the name of another of the package's files"
                ),
            ));
        }
        let from = package.join(&f.path);
        let to = staging.join(&name);
        files::copy_file(&from, &to)?;
        let (bytes, sha) = manifest::digest(&to)?;
        observe(Progress::Advance(bytes));
        if bytes != f.bytes || sha != f.sha256 {
            return Err(Error::input(
                &from,
                "changed after the pre-flight (its copy no longer matches the manifest); nothing was restored",
            ));
        }
        installed.push(name);
    }
    Ok(installed)
}

/// Reads the restored store back: every file's checksum, integrity, and the log's head.
fn verify(
    target: &Path,
    m: &Manifest,
    from_log: bool,
    observe: &mut dyn FnMut(Progress),
) -> Result<Vec<String>> {
    if files::failpoint_fails("verify") {
        return Err(Error::input(target, "failpoint verify: verification fails"));
    }
    observe(Progress::Begin {
        stage: Stage::Verify,
        total: Some(
            m.files
                .iter()
                .filter(|f| store_name(m, f, from_log).is_some())
                .count() as u64,
        ),
    });
    let mut verified = Vec::new();
    for f in &m.files {
        let Some(name) = store_name(m, f, from_log) else {
            continue;
        };
        let path = target.join(&name);
        let (_, sha) = manifest::digest(&path)?;
        if sha != f.sha256 {
            return Err(Error::input(
                &path,
                "the restored file does not match the manifest",
            ));
        }
        if !files::is_sqlite(&path) {
            verified.push(format!("{name}: SHA-256 as in the manifest"));
            observe(Progress::Advance(1));
            continue;
        }
        let db = crate::sqlite::open_input(&path)?;
        let ok: String = db
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| Error::sqlite(&path, "integrity check", e))?;
        if ok != "ok" {
            return Err(Error::input(&path, format!("integrity check: {ok}")));
        }
        verified.push(format!("{name}: SHA-256 as in the manifest, integrity ok"));
        observe(Progress::Advance(1));
    }
    let ins = crate::inspect::inspect(&target.join(format!("eventlog@{STORAGE_FORMAT}.db")))?;
    if ins.events != m.events || ins.last != m.last_event || ins.sync_head != m.sync_head {
        return Err(Error::input(
            target,
            "the restored log's head does not match the manifest",
        ));
    }
    verified.push(format!(
        "log head: {} events up to {}, sync head {}",
        ins.events,
        ins.last.map(|s| s.to_string()).unwrap_or("none".into()),
        ins.sync_head
            .map(|h| h.to_string())
            .unwrap_or("none".into())
    ));
    Ok(verified)
}

/// A path that does not exist yet: `path`, else `path-2`, `path-3`, …
fn unique(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    (2..)
        .map(|i| {
            let mut p = path.clone().into_os_string();
            p.push(format!("-{i}"));
            PathBuf::from(p)
        })
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

/// UTC now as `20261126T160512Z`, for backup names that sort by time.
fn chrono_stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

/// Human rendering.
pub fn render(r: &Restored) -> String {
    use std::fmt::Write;
    let mut out = preflight::render(&r.preflight);
    let _ = writeln!(out);
    if let Some(why) = &r.refused {
        let _ = writeln!(out, "NOT RESTORED: {why}");
    } else {
        let _ = writeln!(out, "restored {} into {}", r.installed.join(", "), r.target);
        if let Some(p) = &r.previous {
            let _ = writeln!(out, "  the store that was there is kept at {p}");
        }
        for v in &r.verified {
            let _ = writeln!(out, "  verified {v}");
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}
