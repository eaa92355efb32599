//! `rehearse export`: a backup package from a LiveStore store directory.
//!
//! The package is built in a hidden directory beside its destination and renamed into place
//! only when every file and the manifest are written and flushed, so the destination holds a
//! whole package or nothing. The manifest describes the copies, not the originals: counts, head
//! and checksums are read back from the package's own files.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backup::manifest::{
    self, AUX_DIR, EVENTLOG_FILE, FileEntry, MANIFEST_FILE, MANIFEST_VERSION, Manifest, Role,
    STATE_FILE, Tool,
};
use crate::corpus::{self, Corpus};
use crate::error::{Error, Result};
use crate::files;
use crate::inspect;
use crate::progress::{Progress, Stage};
use crate::report::CorpusKind;

/// What to put in a package besides the log and the state.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Files the app keeps outside the event log.
    pub aux: Vec<PathBuf>,
    /// The app's version, recorded in the manifest.
    pub app_version: Option<String>,
    /// The state database to take, when the store has several (default: the most recently
    /// modified, which is the one LiveStore writes).
    pub state: Option<PathBuf>,
    /// The manifest's creation time (default: now).
    pub created_at: Option<std::time::SystemTime>,
}

/// A written package.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exported {
    /// The package directory.
    pub package: String,
    /// Its manifest, as written.
    pub manifest: Manifest,
    /// Things the operator should know.
    pub notes: Vec<String>,
}

/// Exports the store at `store` into a new package directory `out`.
pub fn export(store: &Path, out: &Path, options: &ExportOptions) -> Result<Exported> {
    export_observed(store, out, options, &mut |_| {})
}

/// [`export`], telling `observe` as it copies the store and checksums the copies.
pub fn export_observed(
    store: &Path,
    out: &Path,
    options: &ExportOptions,
    observe: &mut dyn FnMut(Progress),
) -> Result<Exported> {
    let corpus = Corpus::locate(store)?;
    if corpus.kind != CorpusKind::Store {
        return Err(Error::input(
            store,
            "not a LiveStore store directory (eventlog@6.db beside state<hash>@6.db); export reads a store",
        ));
    }
    let store_dir = files::parent_of(&corpus.eventlog);
    let store_id = std::path::absolute(&store_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if store_id.is_empty()
        || !store_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::input(
            &store_dir,
            format!("the directory name {store_id:?} is not a LiveStore store id ([a-zA-Z0-9_-]+)"),
        ));
    }
    if !files::is_absent_or_empty_dir(out)? {
        return Err(Error::input(
            out,
            "already exists and is not empty; a package is written only to a new or empty directory",
        ));
    }
    let mut notes = corpus.notes.clone();
    let state = match &options.state {
        Some(p) => Some(p.clone()),
        None => {
            if corpus.snapshots.len() > 1 {
                notes.push(format!(
                    "{} state databases in the store; exported the most recently modified, {} (--state picks another)",
                    corpus.snapshots.len(),
                    corpus.snapshots[0].display()
                ));
            }
            corpus.snapshots.first().cloned()
        }
    };
    let state_hash = match &state {
        Some(p) => Some(
            p.file_name()
                .and_then(|n| corpus::state_schema_hash(&n.to_string_lossy()))
                .ok_or_else(|| {
                    Error::input(p, "not a LiveStore state database name (state<hash>@6.db)")
                })?,
        ),
        None => {
            notes.push("the store has no state database: the package holds the log only".into());
            None
        }
    };

    let parent = files::parent_of(out);
    // Staging directories of exports that were killed are named after their destination.
    let prefix = format!(
        ".{}.rehearse-export-",
        out.file_name().unwrap_or_default().to_string_lossy()
    );
    remove_stale(&parent, &prefix, &mut notes);
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let root = staging.path();

    // State first, then the log: whatever the app commits meanwhile, the log is never behind
    // the state it ships with.
    let mut pairs = Vec::new();
    if let Some(s) = &state {
        pairs.push((s.clone(), root.join(STATE_FILE)));
    }
    pairs.push((corpus.eventlog.clone(), root.join(EVENTLOG_FILE)));
    let mut aux_entries = Vec::new();
    if !options.aux.is_empty() {
        std::fs::create_dir(root.join(AUX_DIR)).map_err(|e| Error::io(root, e))?;
    }
    for a in &options.aux {
        let name = a
            .file_name()
            .ok_or_else(|| Error::input(a, "not a file name"))?
            .to_string_lossy()
            .into_owned();
        if corpus::is_store_file_name(&name) || name.starts_with('.') {
            return Err(Error::input(
                a,
                format!(
                    "an auxiliary file named {name:?} would be restored beside the store's own files under a name LiveStore or rehearse uses; copy it under another name first"
                ),
            ));
        }
        let rel = format!("{AUX_DIR}/{name}");
        if aux_entries
            .iter()
            .any(|(r, _): &(String, String)| *r == rel)
        {
            return Err(Error::input(
                a,
                format!("two auxiliary files are named {name:?}"),
            ));
        }
        if !a.is_file() {
            return Err(Error::input(a, "auxiliary file not found"));
        }
        pairs.push((a.clone(), root.join(&rel)));
        aux_entries.push((rel, a.display().to_string()));
    }
    // What is not a database yet (a store LiveStore is still creating) is named as the
    // store's file, not as its copy.
    for (src, _) in pairs.iter().take(if state.is_some() { 2 } else { 1 }) {
        crate::sqlite::check_sqlite_file(src)?;
    }
    observe(Progress::Begin {
        stage: Stage::Copy,
        total: None,
    });
    let attempts = files::copy_consistent(&pairs)?;
    if attempts > 1 {
        notes.push(format!(
            "the store changed while it was copied; the copy was taken again ({attempts} attempts) until it was consistent"
        ));
    }

    let log = inspect::inspect(&root.join(EVENTLOG_FILE))?;
    let copied: u64 = pairs
        .iter()
        .filter_map(|(_, to)| std::fs::metadata(to).ok())
        .map(|m| m.len())
        .sum();
    observe(Progress::Begin {
        stage: Stage::Checksum,
        total: Some(copied),
    });
    let mut entries = Vec::new();
    let mut entry = |rel: &str, role: Role, source: Option<String>| -> Result<()> {
        let (bytes, sha256) = manifest::digest(&root.join(rel))?;
        observe(Progress::Advance(bytes));
        entries.push(FileEntry {
            path: rel.to_string(),
            role,
            bytes,
            sha256,
            source,
        });
        Ok(())
    };
    entry(EVENTLOG_FILE, Role::Eventlog, None)?;
    if state.is_some() {
        entry(STATE_FILE, Role::State, None)?;
    }
    for (rel, source) in &aux_entries {
        entry(rel, Role::Auxiliary, Some(source.clone()))?;
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        store_id,
        storage_format_version: corpus::STORAGE_FORMAT,
        state_schema_hash: state_hash,
        sync_head: log.sync_head,
        backend_id: log.backend_id.clone(),
        last_event: log.last,
        events: log.events,
        event_counts: log.names.clone(),
        app_version: options.app_version.clone(),
        created_at: manifest::rfc3339(
            options
                .created_at
                .unwrap_or_else(std::time::SystemTime::now),
        ),
        tool: Tool::this(),
        files: entries,
    };
    let mut json = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
    json.push('\n');
    std::fs::write(root.join(MANIFEST_FILE), json).map_err(|e| Error::io(root, e))?;
    files::fsync_tree(root)?;
    files::failpoint("export-staged");

    let staged = staging.keep();
    if let Err(e) = files::publish_dir(&staged, out) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    Ok(Exported {
        package: out.display().to_string(),
        manifest,
        notes,
    })
}

fn remove_stale(parent: &Path, prefix: &str, notes: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix)
            && e.path().is_dir()
            && std::fs::remove_dir_all(e.path()).is_ok()
        {
            notes.push(format!(
                "removed {}, left by an earlier export that was interrupted",
                e.path().display()
            ));
        }
    }
}

/// Human summary of an export.
pub fn render(e: &Exported) -> String {
    use std::fmt::Write;
    let m = &e.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "exported store {} to {}: {} events{}, sync head {}",
        m.store_id,
        e.package,
        m.events,
        m.last_event
            .map(|s| format!(" up to {s}"))
            .unwrap_or_default(),
        m.sync_head.map(|h| h.to_string()).unwrap_or("none".into())
    );
    for f in &m.files {
        let _ = writeln!(
            out,
            "  {:<10} {:<28} {:>12} bytes  sha256 {}",
            match f.role {
                Role::Eventlog => "eventlog",
                Role::State => "state",
                Role::Auxiliary => "auxiliary",
            },
            f.path,
            f.bytes,
            f.sha256
        );
    }
    for n in &e.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}
