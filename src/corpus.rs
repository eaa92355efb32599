//! Finding the event log and the recorded snapshots of a corpus.
//!
//! A corpus is named by a path and its kind is detected from what is there:
//! - a LiveStore store directory as the Node adapter writes it: `eventlog@6.db` and one or more
//!   `state<token>@6.db`, where the token is 0.4's schema hash (`-186191357563`, `fixed`) or a
//!   later version's storage fingerprint (43 base64url characters); the expo adapter's
//!   `livestore-eventlog@6.db` / `livestore-<token>@6.db` names are accepted too. A path to the
//!   event log inside a store directory (or a package) means that store;
//! - a backup package: `eventlog.db`, optional `state.db` and `manifest.json`;
//! - an event log file on its own, or a directory holding only an event log.
//!
//! A directory that holds exactly one of these one level down (the generator's `out/<storeId>/`
//! layout) is taken as that corpus. Old state files stay beside the current one after a schema
//! change (FORMAT.md §9.1); which one to compare with is decided later, against the
//! materializer definitions (`choose_snapshot`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::report::CorpusKind;
use crate::sqlite;

/// The storage format version rehearse reads (LiveStore 0.4's `liveStoreStorageFormatVersion`).
pub const STORAGE_FORMAT: u32 = 6;

/// A located corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The corpus as the user named it.
    pub name: String,
    /// Store, package or bare event log.
    pub kind: CorpusKind,
    /// The event log.
    pub eventlog: PathBuf,
    /// Recorded state databases found beside it, newest first.
    pub snapshots: Vec<PathBuf>,
    /// `manifest.json`, when a package has one.
    pub manifest: Option<Value>,
    /// Files beside the log that look like state databases but are not named as LiveStore
    /// names them (nor as another storage format's): not compared.
    pub unrecognized: Vec<String>,
    /// Things worth telling the user.
    pub notes: Vec<String>,
}

/// A file name split into LiveStore's parts.
#[derive(Debug, PartialEq, Eq)]
enum StoreFile {
    EventLog { format: String },
    State { format: String },
}

fn classify(name: &str) -> Option<StoreFile> {
    let stem = name.strip_suffix(".db")?;
    let (base, format) = stem.rsplit_once('@')?;
    if format.is_empty() || !format.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let format = format.to_string();
    if base == "eventlog" || base == "livestore-eventlog" {
        return Some(StoreFile::EventLog { format });
    }
    let token = base
        .strip_prefix("state")
        .or_else(|| base.strip_prefix("livestore-"))?;
    state_token(token).then_some(StoreFile::State { format })
}

/// Whether `token` names a state database: LiveStore 0.4's schema hash (a signed integer, or
/// `fixed` under manual migrations), or a later version's storage fingerprint (SHA-256 as 43
/// base64url characters). Any run of base64url characters is taken, so that a store written by
/// a LiveStore this rehearse predates is still recognised rather than checked log-only.
fn state_token(token: &str) -> bool {
    let digits = token.strip_prefix('-').unwrap_or(token);
    let hash = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let base64url = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    token != "-" && (hash || base64url)
}

/// Whether a file name in a store directory is one of LiveStore's own: an event log or a state
/// database of any storage format, or the journal or WAL of one. A file restored beside them
/// under such a name would replace or corrupt the store's own.
pub(crate) fn is_store_file_name(name: &str) -> bool {
    let base = ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    classify(base).is_some()
}

/// Whether rehearse would read a file of this name as a corpus's log or state: LiveStore's own
/// names, and a package's.
fn is_corpus_file_name(name: &str) -> bool {
    classify(name).is_some() || name == "eventlog.db" || name == "state.db"
}

/// Files beside a log that look like state databases (`state…`/`livestore-…` and `.db`) but
/// are not named as LiveStore names them: worth saying when nothing else was compared.
fn looks_like_state(name: &str) -> bool {
    (name.starts_with("state") || name.starts_with("livestore-"))
        && name.contains(".db")
        && !name.ends_with("-journal")
        && !name.ends_with("-wal")
        && !name.ends_with("-shm")
        && classify(name).is_none()
}

/// The state schema hash in a state file's name (`state-186191357563@6.db` gives
/// `-186191357563`; `statefixed@6.db`, under manual migrations, `fixed`).
pub fn state_schema_hash(file_name: &str) -> Option<String> {
    match classify(file_name)? {
        StoreFile::State { .. } => {
            let stem = file_name.strip_suffix(".db")?;
            let (base, _) = stem.rsplit_once('@')?;
            base.strip_prefix("state")
                .or_else(|| base.strip_prefix("livestore-"))
                .map(str::to_string)
        }
        StoreFile::EventLog { .. } => None,
    }
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Newest first; ties broken by name so the order never depends on the directory listing.
fn sort_newest_first(files: &mut [PathBuf]) {
    files.sort_by(|a, b| mtime(b).cmp(&mtime(a)).then_with(|| a.cmp(b)));
}

impl Corpus {
    /// The store's id: a store directory's name (LiveStore keeps a store in
    /// `<base directory>/<storeId>/`), or a package's manifest `storeId`.
    pub fn store_id(&self) -> Option<String> {
        match self.kind {
            CorpusKind::Store => self
                .eventlog
                .parent()
                .and_then(|d| d.canonicalize().ok())
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())),
            CorpusKind::Package => self
                .manifest
                .as_ref()
                .and_then(|m| m.get("storeId"))
                .and_then(|v| v.as_str())
                .map(str::to_string),
            CorpusKind::Eventlog => None,
        }
    }

    /// Locates the corpus at `path`.
    pub fn locate(path: &Path) -> Result<Corpus> {
        let name = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_file() {
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Some(StoreFile::EventLog { format }) = classify(&file_name)
                && format != STORAGE_FORMAT.to_string()
            {
                return Err(Error::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found: format,
                });
            }
            // The log of a store directory or a package: that store, state files and all.
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if let Some(c) = Corpus::in_dir(dir, name.clone())?
                && c.eventlog.file_name() == path.file_name()
            {
                return Ok(Corpus {
                    eventlog: path.to_path_buf(),
                    ..c
                });
            }
            return Ok(Corpus {
                name,
                kind: CorpusKind::Eventlog,
                eventlog: path.to_path_buf(),
                snapshots: Vec::new(),
                manifest: None,
                unrecognized: Vec::new(),
                notes: Vec::new(),
            });
        }
        refuse_pseudo(path)?;
        match Corpus::in_dir(path, name.clone())? {
            Some(c) => Ok(c),
            None => {
                // The generator's layout: `<out>/<storeId>/eventlog@6.db`.
                let mut found = Vec::new();
                let mut entries: Vec<PathBuf> = fs::read_dir(path)
                    .map_err(|e| Error::io(path, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect();
                entries.sort();
                for sub in entries {
                    if let Some(c) = Corpus::in_dir(&sub, name.clone())? {
                        found.push((sub, c));
                    }
                }
                match found.len() {
                    0 => Err(Error::input(
                        path,
                        "no LiveStore event log here (looked for eventlog@6.db, eventlog.db, and one directory down)",
                    )),
                    1 => Ok(found.remove(0).1),
                    _ => Err(Error::input(
                        path,
                        format!(
                            "holds several corpora ({}); name one",
                            found
                                .iter()
                                .map(|(p, _)| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
        }
    }

    fn in_dir(dir: &Path, name: String) -> Result<Option<Corpus>> {
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => names.push(name),
                // A log or state database that cannot be read as a file (a FIFO, a directory, a
                // symbolic link loop) is an error: skipping it would turn a check into a
                // different kind of run (log-only, comparison skipped) that still passes.
                Ok(m) if is_corpus_file_name(&name) => {
                    return Err(crate::files::not_regular(&path, &m.file_type()));
                }
                Err(e) if is_corpus_file_name(&name) => return Err(Error::io(&path, e)),
                _ => {}
            }
        }
        names.sort();
        let mut notes = Vec::new();

        // A backup package.
        if names.iter().any(|n| n == "eventlog.db") {
            let manifest_path = dir.join("manifest.json");
            let manifest = if manifest_path.is_file() {
                let text = crate::files::read_to_string(&manifest_path)
                    .map_err(|e| Error::io(&manifest_path, e))?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => {
                        check_manifest_format(&manifest_path, &v)?;
                        Some(v)
                    }
                    Err(e) => {
                        notes.push(format!(
                            "{} is not valid JSON ({e}); it was ignored",
                            manifest_path.display()
                        ));
                        None
                    }
                }
            } else {
                None
            };
            let mut snapshots = Vec::new();
            if names.iter().any(|n| n == "state.db") {
                snapshots.push(dir.join("state.db"));
            } else {
                // The web adapter's export: `eventlog.db` beside `state<hash>.db`.
                let mut other: Vec<PathBuf> = names
                    .iter()
                    .filter(|n| n.starts_with("state") && n.ends_with(".db"))
                    .map(|n| dir.join(n))
                    .collect();
                sort_newest_first(&mut other);
                snapshots = other;
            }
            return Ok(Some(Corpus {
                name,
                kind: CorpusKind::Package,
                eventlog: dir.join("eventlog.db"),
                snapshots,
                manifest,
                unrecognized: Vec::new(),
                notes,
            }));
        }

        // A store directory.
        let mut logs: Vec<(String, String)> = Vec::new();
        let mut states: Vec<PathBuf> = Vec::new();
        let mut other_states: Vec<String> = Vec::new();
        for n in &names {
            match classify(n) {
                Some(StoreFile::EventLog { format }) => logs.push((n.clone(), format)),
                Some(StoreFile::State { format }) if format == STORAGE_FORMAT.to_string() => {
                    states.push(dir.join(n))
                }
                Some(StoreFile::State { .. }) => other_states.push(n.clone()),
                None => {}
            }
        }
        if logs.is_empty() {
            return Ok(None);
        }
        let current = logs
            .iter()
            .find(|(_, f)| *f == STORAGE_FORMAT.to_string())
            .cloned();
        let Some((log_name, _)) = current else {
            let (n, f) = &logs[0];
            return Err(Error::UnsupportedFormat {
                path: dir.join(n),
                found: f.clone(),
            });
        };
        let older: Vec<&str> = logs
            .iter()
            .filter(|(n, _)| *n != log_name)
            .map(|(n, _)| n.as_str())
            .chain(other_states.iter().map(String::as_str))
            .collect();
        if !older.is_empty() {
            notes.push(format!(
                "ignored files of other LiveStore storage formats: {}",
                older.join(", ")
            ));
        }
        sort_newest_first(&mut states);
        Ok(Some(Corpus {
            name,
            kind: CorpusKind::Store,
            eventlog: dir.join(log_name),
            snapshots: states,
            manifest: None,
            unrecognized: names
                .iter()
                .filter(|n| looks_like_state(n))
                .cloned()
                .collect(),
            notes,
        }))
    }
}

/// Expands command-line paths into corpora: a path that is a corpus itself (an event log file,
/// a store or package directory, or a directory holding one of those one level down) stays as
/// written; any other directory stands for every corpus found below it, in path order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            refuse_pseudo(path)?;
        }
        if meta.is_file() || is_corpus_dir(path)? || single_child_corpus(path)? {
            out.push(path.clone());
            continue;
        }
        let before = out.len();
        let mut visited = Visited::default();
        visited.first_visit(path, &meta);
        walk(path, &mut out, &mut visited, 0)?;
        if out.len() == before {
            return Err(Error::input(
                path,
                "no corpus found here or below (looked for eventlog@6.db and eventlog.db)",
            ));
        }
    }
    Ok(out)
}

/// A directory on `/proc`, `/sys` and the like holds no corpus, and walking it never ends
/// (`/proc/self/root` leads back to `/`).
fn refuse_pseudo(dir: &Path) -> Result<()> {
    match crate::files::pseudo_dir(dir) {
        Some(fs_name) => Err(Error::input(
            dir,
            format!(
                "is on the {fs_name} pseudo file system; a corpus is a store, a package or an event log on a real file system"
            ),
        )),
        None => Ok(()),
    }
}

/// The directories a walk has entered, by device and inode: a symbolic link back to a
/// directory already walked (a loop, or a second name for the same corpora) is not entered
/// again, so every walk ends.
#[derive(Default)]
struct Visited(std::collections::HashSet<(u64, u64)>);

impl Visited {
    /// Whether `dir` (with metadata `meta`, links followed) is entered for the first time.
    fn first_visit(&mut self, _dir: &Path, meta: &fs::Metadata) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            self.0.insert((meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            self.0.insert((self.0.len() as u64, 0))
        }
    }
}

/// How deep a corpus search goes below a named directory: far beyond any real layout, and a
/// bound on the recursion whatever the file system does.
const MAX_WALK_DEPTH: usize = 64;

fn is_corpus_dir(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "eventlog.db" || matches!(classify(&name), Some(StoreFile::EventLog { .. })) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with('.') && n != "node_modules" && n != "target"
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn single_child_corpus(dir: &Path) -> Result<bool> {
    let children = subdirs(dir)?;
    let mut corpora = 0;
    for c in &children {
        if is_corpus_dir(c)? {
            corpora += 1;
        } else if !subdirs(c)?.is_empty() {
            // Deeper corpora: this is a tree of corpora, not the generator's layout.
            return Ok(false);
        }
    }
    Ok(corpora == 1)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, visited: &mut Visited, depth: usize) -> Result<()> {
    if depth >= MAX_WALK_DEPTH {
        return Err(Error::input(
            dir,
            format!(
                "more than {MAX_WALK_DEPTH} directories deep below the path named; name a directory nearer the corpora"
            ),
        ));
    }
    for sub in subdirs(dir)? {
        let meta = fs::metadata(&sub).map_err(|e| Error::io(&sub, e))?;
        if !visited.first_visit(&sub, &meta) {
            continue;
        }
        refuse_pseudo(&sub)?;
        if is_corpus_dir(&sub)? {
            out.push(sub);
        } else {
            walk(&sub, out, visited, depth + 1)?;
        }
    }
    Ok(())
}

/// A stable share of the corpora, so that a CI matrix splits the work the way nextest does:
/// `count:k/n` (or `k/n`) takes every n-th corpus of the sorted list starting at the k-th;
/// `hash:k/n` takes the corpora whose path hashes to k, which keeps a corpus on its runner when
/// others are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based share.
    pub k: u64,
    /// Number of shares.
    pub n: u64,
    /// Hash-based instead of count-based.
    pub by_hash: bool,
}

impl Partition {
    /// Parses `k/n`, `count:k/n` or `hash:k/n`.
    pub fn parse(spec: &str) -> std::result::Result<Partition, String> {
        let (by_hash, rest) = match spec.split_once(':') {
            Some(("count", r)) => (false, r),
            Some(("hash", r)) => (true, r),
            Some((other, _)) => {
                return Err(format!("unknown partition kind {other:?} (count or hash)"));
            }
            None => (false, spec),
        };
        let bad = || format!("{spec:?}: expected k/n with 1 <= k <= n, e.g. 2/4");
        let (k, n) = rest.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n, by_hash })
    }

    /// The corpora of this share, in their order.
    pub fn select(&self, corpora: Vec<PathBuf>) -> Vec<PathBuf> {
        let mut sorted = corpora;
        sorted.sort();
        sorted.dedup();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, p)| {
                let slot = if self.by_hash {
                    fnv1a(p.to_string_lossy().as_bytes())
                } else {
                    *i as u64
                };
                slot % self.n == self.k - 1
            })
            .map(|(_, p)| p)
            .collect()
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.by_hash { "hash" } else { "count" };
        write!(f, "{kind}:{}/{}", self.k, self.n)
    }
}

/// FNV-1a: a stable hash (unlike std's, which is seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn check_manifest_format(path: &Path, manifest: &Value) -> Result<()> {
    let format = manifest
        .get("storageFormatVersion")
        .or_else(|| manifest.get("livestoreStorageFormat"));
    match format {
        Some(Value::Number(n)) if n.as_u64() != Some(u64::from(STORAGE_FORMAT)) => {
            Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                found: n.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Chooses the snapshot to compare with: among several state files, the one whose tables and
/// columns match what the materializers write; when none or several match, the most recently
/// modified of those. Returns the choice and the reason, for the report.
pub(crate) fn choose_snapshot(
    snapshots: &[PathBuf],
    wanted: &indexmap::IndexMap<String, Vec<String>>,
) -> Result<Option<(PathBuf, String)>> {
    match snapshots {
        [] => Ok(None),
        [only] => Ok(Some((
            only.clone(),
            "the only recorded state database".into(),
        ))),
        many => {
            let mut matching = Vec::new();
            for path in many {
                let db = sqlite::open_input(path)?;
                let mut ok = true;
                for (table, cols) in wanted {
                    let have = sqlite::table_columns(&db.conn, "main", table)
                        .map_err(|e| Error::sqlite(path, "cannot read the schema", e))?;
                    if have.is_empty() || !cols.iter().all(|c| have.iter().any(|h| h.name == *c)) {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    matching.push(path.clone());
                }
            }
            let names = |v: &[PathBuf]| {
                v.iter()
                    .map(|p| {
                        p.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Ok(Some(match matching.len() {
                1 => (
                    matching[0].clone(),
                    format!(
                        "the only one of {} whose tables match the materializers",
                        names(many)
                    ),
                ),
                0 => (
                    many[0].clone(),
                    format!(
                        "none of {} has every table and column the materializers write; chose the most recently modified",
                        names(many)
                    ),
                ),
                _ => (
                    matching[0].clone(),
                    format!(
                        "{} match the materializers; chose the most recently modified",
                        names(&matching)
                    ),
                ),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_every_corpus_once() {
        let corpora: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("c{i}"))).collect();
        for by_hash in [false, true] {
            let mut seen: Vec<PathBuf> = Vec::new();
            for k in 1..=3 {
                let p = Partition { k, n: 3, by_hash };
                seen.extend(p.select(corpora.clone()));
            }
            seen.sort();
            assert_eq!(seen, corpora);
        }
        assert_eq!(
            Partition::parse("2/4"),
            Ok(Partition {
                k: 2,
                n: 4,
                by_hash: false
            })
        );
        assert_eq!(Partition::parse("hash:1/2").map(|p| p.by_hash), Ok(true));
        assert!(Partition::parse("0/2").is_err());
        assert!(Partition::parse("3/2").is_err());
        let p = Partition {
            k: 1,
            n: 2,
            by_hash: false,
        };
        assert_eq!(p.select(corpora.clone()).len(), 5);
    }

    #[test]
    fn file_names() {
        assert_eq!(
            classify("eventlog@6.db"),
            Some(StoreFile::EventLog { format: "6".into() })
        );
        assert_eq!(
            classify("state-186191357563@6.db"),
            Some(StoreFile::State { format: "6".into() })
        );
        assert_eq!(
            classify("statefixed@6.db"),
            Some(StoreFile::State { format: "6".into() })
        );
        assert_eq!(
            classify("livestore-eventlog@5.db"),
            Some(StoreFile::EventLog { format: "5".into() })
        );
        assert_eq!(classify("state@6.db"), None);
        assert_eq!(classify("eventlog.db"), None);
        assert_eq!(classify("notes@6.db"), None);
    }
}
