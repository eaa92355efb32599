//! A corpus's findings: in memory while they are few, in a temporary SQLite file past a bound.
//!
//! A log where every event is flagged has a finding per event, about 500 bytes each in memory:
//! a million-event log would hold half a gigabyte of them. Past 4,096 findings the
//! store moves them to a file (a private temporary directory, removed when the store is
//! dropped) and keeps only the newest in memory; everything a report does with its findings
//! (filter, mark, sort, count, render) streams through them in bounded memory. The order is
//! the one `codec::order_key` gives, in memory and on disk alike, so a report is the same
//! byte for byte however its findings were kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::files::PrivateDir;
use crate::report::codec;
use crate::report::{Cause, Finding, FindingClass};

/// Findings held in memory at most before they go to disk: a few megabytes.
pub(crate) const SPILL_AT: usize = 4096;
/// Findings read from disk at a time when streaming.
const CHUNK: usize = 256;
/// The spill file's page cache.
const CACHE_KIB: i64 = 2048;

/// A corpus's findings, in the report's order once it is finished.
pub struct Findings {
    /// Findings `on_disk()..`.
    mem: Vec<Finding>,
    spill: Option<Spill>,
    /// Spill at this many findings in memory (a parameter for tests).
    spill_at: usize,
    /// Where the spill file goes (the system's temporary directory when `None`).
    dir: Option<PathBuf>,
    /// Why spilling failed, when it did: the findings then stay in memory.
    spill_failed: Option<String>,
    /// The first failure to read the spill file back while streaming, which a caller that
    /// cannot return an error in the middle of an iteration learns from [`Findings::check`].
    read_failure: Mutex<Option<String>>,
}

struct Spill {
    conn: Mutex<Connection>,
    /// Findings on disk: ids `1..=len`, in order.
    len: usize,
    _dir: PrivateDir,
}

impl Default for Findings {
    fn default() -> Findings {
        Findings::with_spill_at(spill_at())
    }
}

/// [`SPILL_AT`], or `REHEARSE_SPILL_AT` where it is set: a knob for tests, which hold a
/// report made with every finding spilled against one made in memory, byte for byte.
fn spill_at() -> usize {
    static AT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        std::env::var("REHEARSE_SPILL_AT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SPILL_AT)
    })
}

impl Findings {
    /// No findings.
    pub fn new() -> Findings {
        Findings::default()
    }

    /// No findings, spilled (when they are many) to a temporary file under `dir`: the
    /// directory given for the scratch database, where the user said there is room.
    pub fn in_dir(dir: Option<PathBuf>) -> Findings {
        Findings {
            dir,
            ..Findings::default()
        }
    }

    /// A store that spills past `spill_at` findings in memory.
    pub(crate) fn with_spill_at(spill_at: usize) -> Findings {
        Findings {
            mem: Vec::new(),
            spill: None,
            spill_at: spill_at.max(1),
            dir: None,
            spill_failed: None,
            read_failure: Mutex::new(None),
        }
    }

    fn on_disk(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.len)
    }

    /// How many findings.
    pub fn len(&self) -> usize {
        self.on_disk() + self.mem.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some findings are on disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Why the findings stayed in memory although there were many: the spill file could not
    /// be written.
    pub fn spill_failure(&self) -> Option<&str> {
        self.spill_failed.as_deref()
    }

    /// Adds a finding, in memory; returns its index. The findings added since the last
    /// [`Findings::spill_if_full`] stay in memory together (an event's findings, which the
    /// replay hands on as a slice).
    pub fn push(&mut self, f: Finding) -> usize {
        self.mem.push(f);
        self.len() - 1
    }

    /// [`Findings::push`] after [`Findings::spill_if_full`]: for findings added one by one
    /// in numbers.
    pub fn push_spilling(&mut self, f: Finding) -> usize {
        self.spill_if_full();
        self.push(f)
    }

    /// Moves the findings in memory to disk when there are too many. A failure to write them
    /// keeps them in memory (and is reported by [`Findings::spill_failure`]): the run goes on,
    /// only with more memory.
    pub fn spill_if_full(&mut self) {
        if self.mem.len() >= self.spill_at
            && self.spill_failed.is_none()
            && let Err(e) = self.flush()
        {
            self.spill_failed = Some(e.to_string());
        }
    }

    /// Moves every finding in memory to disk, creating the spill file the first time.
    fn flush(&mut self) -> Result<()> {
        if self.mem.is_empty() {
            return Ok(());
        }
        if self.spill.is_none() {
            self.spill = Some(Spill::create(self.dir.as_deref())?);
        }
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        let conn = spill.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut insert = conn
            .prepare_cached("INSERT INTO finding(id, body) VALUES (?1, ?2)")
            .map_err(|e| spill_error("write", e))?;
        let mut body = Vec::new();
        for (i, f) in self.mem.iter().enumerate() {
            body.clear();
            codec::encode(f, &mut body);
            insert
                .execute(params![(spill.len + i + 1) as i64, body])
                .map_err(|e| spill_error("write", e))?;
        }
        spill.len += self.mem.len();
        self.mem.clear();
        self.mem.shrink_to(self.spill_at);
        Ok(())
    }

    /// The findings from index `first` on, which must all be in memory (those added since
    /// the last spill); an empty slice otherwise.
    pub fn recent(&self, first: usize) -> &[Finding] {
        first
            .checked_sub(self.on_disk())
            .and_then(|i| self.mem.get(i..))
            .unwrap_or_default()
    }

    /// The finding at `i`.
    pub fn get(&self, i: usize) -> Result<Option<Cow<'_, Finding>>> {
        let disk = self.on_disk();
        if i >= disk {
            return Ok(self.mem.get(i - disk).map(Cow::Borrowed));
        }
        let Some(spill) = &self.spill else {
            return Ok(None);
        };
        let conn = spill.conn.lock().unwrap_or_else(|e| e.into_inner());
        read_one(&conn, i).map(|f| f.map(Cow::Owned))
    }

    /// Changes the finding at `i` (nothing when there is none).
    pub fn update(&mut self, i: usize, change: impl FnOnce(&mut Finding)) -> Result<()> {
        let disk = self.on_disk();
        if i >= disk {
            if let Some(f) = self.mem.get_mut(i - disk) {
                change(f);
            }
            return Ok(());
        }
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        let conn = spill.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(mut f) = read_one(conn, i)? else {
            return Ok(());
        };
        change(&mut f);
        write_one(conn, i, &f)
    }

    /// Changes every finding from index `first` on, in order, stopping at the first error.
    pub fn update_from(
        &mut self,
        first: usize,
        mut change: impl FnMut(&mut Finding) -> Result<()>,
    ) -> Result<()> {
        let disk = self.on_disk();
        if let Some(spill) = self.spill.as_mut().filter(|_| first < disk) {
            let conn = spill.conn.get_mut().unwrap_or_else(|e| e.into_inner());
            let mut at = first;
            while at < disk {
                let chunk = read_chunk(conn, at, CHUNK.min(disk - at))?;
                for mut f in chunk {
                    change(&mut f)?;
                    write_one(conn, at, &f)?;
                    at += 1;
                }
            }
        }
        for f in self.mem.iter_mut().skip(first.saturating_sub(disk)) {
            change(f)?;
        }
        Ok(())
    }

    /// Every finding, in order. A finding on disk that cannot be read back ends the iteration
    /// early and is reported by [`Findings::check`].
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The findings from index `first` on.
    pub fn iter_from(&self, first: usize) -> Iter<'_> {
        Iter {
            store: self,
            next: first,
            buf: Vec::new(),
        }
    }

    /// Every finding, copied into memory: for callers that know the findings are few (tests,
    /// a report about one corpus of a handful of events).
    pub fn to_vec(&self) -> Result<Vec<Finding>> {
        let all = self.iter().map(Cow::into_owned).collect();
        self.check()?;
        Ok(all)
    }

    /// An error if streaming the findings from disk failed: a report rendered from them is
    /// incomplete.
    pub fn check(&self) -> Result<()> {
        match self
            .read_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            None => Ok(()),
            Some(message) => Err(Error::Input {
                path: std::env::temp_dir(),
                message: format!(
                    "the findings spilled to a temporary file cannot be read back: {message}"
                ),
            }),
        }
    }

    /// Keeps the findings for which `keep` says so, each possibly changed, in order.
    pub fn retain_mut(&mut self, mut keep: impl FnMut(&mut Finding) -> Result<bool>) -> Result<()> {
        if self.spill.is_none() {
            let mut failed = Ok(());
            self.mem.retain_mut(|f| match keep(f) {
                Ok(k) => k,
                Err(e) => {
                    if failed.is_ok() {
                        failed = Err(e);
                    }
                    true
                }
            });
            return failed;
        }
        self.flush()?;
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        let conn = spill.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        conn.execute_batch("CREATE TABLE next(id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .map_err(|e| spill_error("rewrite", e))?;
        let mut kept = 0;
        let mut at = 0;
        let mut body = Vec::new();
        while at < spill.len {
            let chunk = read_chunk(conn, at, CHUNK.min(spill.len - at))?;
            at += chunk.len();
            let mut insert = conn
                .prepare_cached("INSERT INTO next(id, body) VALUES (?1, ?2)")
                .map_err(|e| spill_error("rewrite", e))?;
            for mut f in chunk {
                if keep(&mut f)? {
                    kept += 1;
                    body.clear();
                    codec::encode(&f, &mut body);
                    insert
                        .execute(params![kept as i64, body])
                        .map_err(|e| spill_error("rewrite", e))?;
                }
            }
        }
        conn.execute_batch("DROP TABLE finding; ALTER TABLE next RENAME TO finding")
            .map_err(|e| spill_error("rewrite", e))?;
        spill.len = kept;
        Ok(())
    }

    /// Puts the findings in the report's order (`codec::order_key`); equal keys keep the
    /// order they were added in.
    pub fn sort(&mut self) -> Result<()> {
        self.retain_sorted(|_| Ok(true))
    }

    /// [`Findings::retain_mut`], then [`Findings::sort`]: on disk, in one pass.
    pub fn retain_sorted(
        &mut self,
        mut keep: impl FnMut(&mut Finding) -> Result<bool>,
    ) -> Result<()> {
        if self.spill.is_none() {
            self.retain_mut(keep)?;
            sort_in_memory(&mut self.mem);
            return Ok(());
        }
        self.flush()?;
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        let conn = spill.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        // A table keyed by the order puts the findings in order as they are inserted, in
        // the page cache's memory; a query's ORDER BY would sort in memory (temporary files
        // are in memory in this build).
        conn.execute_batch(
            "CREATE TABLE ord(k BLOB NOT NULL, id INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (k, id)) WITHOUT ROWID;
             CREATE TABLE next(id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .map_err(|e| spill_error("sort", e))?;
        let (mut at, mut kept) = (0, 0);
        let (mut key, mut body) = (Vec::new(), Vec::new());
        while at < spill.len {
            let chunk = read_chunk(conn, at, CHUNK.min(spill.len - at))?;
            let mut insert = conn
                .prepare_cached("INSERT INTO ord(k, id, body) VALUES (?1, ?2, ?3)")
                .map_err(|e| spill_error("sort", e))?;
            for mut f in chunk {
                at += 1;
                if !keep(&mut f)? {
                    continue;
                }
                kept += 1;
                key.clear();
                codec::order_key(&f, &mut key);
                body.clear();
                codec::encode(&f, &mut body);
                insert
                    .execute(params![key, at as i64, body])
                    .map_err(|e| spill_error("sort", e))?;
            }
        }
        conn.execute_batch(
            "INSERT INTO next(body) SELECT body FROM ord ORDER BY k, id;
             DROP TABLE ord; DROP TABLE finding; ALTER TABLE next RENAME TO finding;",
        )
        .map_err(|e| spill_error("sort", e))?;
        spill.len = kept;
        Ok(())
    }

    /// Adds `other`'s findings after these, spilling as they come.
    pub fn append(&mut self, other: Findings) -> Result<()> {
        other.check()?;
        if other.spill.is_none() {
            self.extend(other.mem);
            return Ok(());
        }
        for f in other.iter() {
            self.push_spilling(f.into_owned());
        }
        other.check()
    }

    /// Adds findings, spilling as they come.
    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        let findings = findings.into_iter();
        if self.spill.is_none() && self.mem.len() + findings.size_hint().0 < self.spill_at {
            self.mem.extend(findings);
            return;
        }
        for f in findings {
            self.push_spilling(f);
        }
    }

    /// A map of causes for these findings.
    pub(crate) fn cause_map(&self) -> CauseMap {
        CauseMap::in_dir(self.dir.clone())
    }
}

/// Sorts by [`codec::order_key`], stably: the positions are sorted by their keys, then the
/// findings moved along the permutation's cycles, so that no second buffer of findings is
/// needed.
pub(crate) fn sort_in_memory(findings: &mut [Finding]) {
    let mut keys: Vec<(Vec<u8>, usize)> = findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut k = Vec::new();
            codec::order_key(f, &mut k);
            (k, i)
        })
        .collect();
    keys.sort_unstable();
    let mut order: Vec<usize> = keys.into_iter().map(|(_, i)| i).collect();
    // Position `i` takes the finding at `order[i]`: follow each cycle of the permutation,
    // marking a position done by pointing it at itself.
    for i in 0..order.len() {
        let mut j = i;
        loop {
            let k = order[j];
            order[j] = j;
            if k == i {
                break;
            }
            findings.swap(j, k);
            j = k;
        }
    }
}

impl Spill {
    fn create(dir: Option<&Path>) -> Result<Spill> {
        // One transaction for the file's life, never committed: nothing need survive a crash,
        // and pages that leave the cache go to the file.
        let (conn, dir) = crate::sqlite::private_file(
            "rehearse-findings-",
            "findings.db",
            dir,
            CACHE_KIB,
            "BEGIN; CREATE TABLE finding(id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )?;
        Ok(Spill {
            conn: Mutex::new(conn),
            len: 0,
            _dir: dir,
        })
    }
}

fn spill_error(what: &str, e: rusqlite::Error) -> Error {
    Error::Input {
        path: std::env::temp_dir(),
        message: format!("cannot {what} the findings spilled to a temporary file: {e}"),
    }
}

fn corrupt() -> Error {
    Error::Input {
        path: std::env::temp_dir(),
        message: "a finding spilled to a temporary file does not read back as written".into(),
    }
}

fn read_one(conn: &Connection, i: usize) -> Result<Option<Finding>> {
    let body: Option<Vec<u8>> = conn
        .prepare_cached("SELECT body FROM finding WHERE id = ?1")
        .and_then(|mut s| s.query_row([(i + 1) as i64], |r| r.get(0)).optional())
        .map_err(|e| spill_error("read", e))?;
    body.map(|b| codec::decode(&b).map_err(|_| corrupt()))
        .transpose()
}

fn write_one(conn: &Connection, i: usize, f: &Finding) -> Result<()> {
    let mut body = Vec::new();
    codec::encode(f, &mut body);
    conn.prepare_cached("UPDATE finding SET body = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![(i + 1) as i64, body]))
        .map_err(|e| spill_error("write", e))?;
    Ok(())
}

/// Up to `n` findings from index `first` on.
fn read_chunk(conn: &Connection, first: usize, n: usize) -> Result<Vec<Finding>> {
    let mut stmt = conn
        .prepare_cached("SELECT body FROM finding WHERE id >= ?1 ORDER BY id LIMIT ?2")
        .map_err(|e| spill_error("read", e))?;
    let rows = stmt
        .query_map(params![(first + 1) as i64, n as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(|e| spill_error("read", e))?;
    let mut out = Vec::with_capacity(n);
    for body in rows {
        let body = body.map_err(|e| spill_error("read", e))?;
        out.push(codec::decode(&body).map_err(|_| corrupt())?);
    }
    Ok(out)
}

/// Findings in order, borrowed from memory or read from disk a chunk at a time.
pub struct Iter<'a> {
    store: &'a Findings,
    next: usize,
    /// Read from disk, reversed (popped from the end).
    buf: Vec<Finding>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, Finding>;

    fn next(&mut self) -> Option<Cow<'a, Finding>> {
        let disk = self.store.on_disk();
        if self.next >= disk {
            let f = self.store.mem.get(self.next - disk)?;
            self.next += 1;
            return Some(Cow::Borrowed(f));
        }
        if self.buf.is_empty() {
            let spill = self.store.spill.as_ref()?;
            let conn = spill.conn.lock().unwrap_or_else(|e| e.into_inner());
            match read_chunk(&conn, self.next, CHUNK.min(disk - self.next)) {
                Ok(chunk) if !chunk.is_empty() => {
                    self.buf = chunk;
                    self.buf.reverse();
                }
                Ok(_) => {
                    drop(conn);
                    self.fail("findings are missing from the spill file".into());
                    return None;
                }
                Err(e) => {
                    drop(conn);
                    self.fail(e.to_string());
                    return None;
                }
            }
        }
        self.next += 1;
        self.buf.pop().map(Cow::Owned)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.store.len().saturating_sub(self.next);
        (0, Some(left))
    }
}

impl Iter<'_> {
    fn fail(&mut self, message: String) {
        self.next = self.store.len();
        let mut failure = self
            .store
            .read_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
    }
}

impl<'a> IntoIterator for &'a Findings {
    type Item = Cow<'a, Finding>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<Finding>> for Findings {
    fn from(mem: Vec<Finding>) -> Findings {
        let mut f = Findings::default();
        f.extend(mem);
        f
    }
}

impl FromIterator<Finding> for Findings {
    fn from_iter<I: IntoIterator<Item = Finding>>(iter: I) -> Findings {
        let mut f = Findings::default();
        f.extend(iter);
        f
    }
}

impl Clone for Findings {
    fn clone(&self) -> Findings {
        let mut f = Findings::with_spill_at(self.spill_at);
        f.dir = self.dir.clone();
        f.extend(self.iter().map(Cow::into_owned));
        f
    }
}

impl PartialEq for Findings {
    fn eq(&self, other: &Findings) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl std::fmt::Debug for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Findings {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for f in self.iter() {
            seq.serialize_element(&*f)?;
        }
        self.check().map_err(serde::ser::Error::custom)?;
        seq.end()
    }
}

/// Causes held in memory at most by a [`CauseMap`]: about 80 bytes each, with the table's
/// slack.
const MEMORY_CAUSES: usize = 1 << 17;

/// A cause in memory: its class, event and the number of its name (names are few).
type CauseKey = (u8, i64, i64, i64, u32);

/// Causes mapped to a number: in memory up to [`MEMORY_CAUSES`], then in a file of its own,
/// so that a map with a cause per event (every event flagged) stays out of memory too.
pub(crate) struct CauseMap {
    memory: HashMap<CauseKey, u32>,
    names: HashMap<String, u32>,
    disk: Option<(Connection, PrivateDir)>,
    bound: usize,
    dir: Option<PathBuf>,
}

impl CauseMap {
    /// An empty map, which moves to a temporary file under `dir` when it grows.
    pub(crate) fn in_dir(dir: Option<PathBuf>) -> CauseMap {
        CauseMap {
            dir,
            ..CauseMap::with_bound(MEMORY_CAUSES)
        }
    }

    fn with_bound(bound: usize) -> CauseMap {
        CauseMap {
            memory: HashMap::new(),
            names: HashMap::new(),
            disk: None,
            bound,
            dir: None,
        }
    }

    /// `cause` as held in memory, its name numbered when `add` says so.
    fn key(&mut self, cause: &Cause, add: bool) -> Option<CauseKey> {
        let name = match self.names.get(&cause.name) {
            Some(&n) => n,
            None if add => {
                let n = self.names.len() as u32;
                self.names.insert(cause.name.clone(), n);
                n
            }
            None => return None,
        };
        Some((
            codec::class_code(cause.class),
            cause.seq_num_global,
            cause.seq_num_client,
            cause.seq_num_rebase_generation,
            name,
        ))
    }

    fn create_disk(dir: Option<&Path>) -> Result<(Connection, PrivateDir)> {
        crate::sqlite::private_file(
            "rehearse-causes-",
            "causes.db",
            dir,
            CACHE_KIB,
            "BEGIN; CREATE TABLE cause(class INTEGER NOT NULL, g INTEGER NOT NULL, c INTEGER NOT NULL, r INTEGER NOT NULL, name TEXT NOT NULL, v INTEGER NOT NULL, PRIMARY KEY (class, g, c, r, name)) WITHOUT ROWID;",
        )
    }

    fn insert_on_disk(conn: &Connection, cause: &Cause, v: u32) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO cause(class, g, c, r, name, v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                cause.class as i64,
                cause.seq_num_global,
                cause.seq_num_client,
                cause.seq_num_rebase_generation,
                cause.name,
                v
            ])
        })
        .map_err(|e| spill_error("index causes", e))?;
        Ok(())
    }

    /// Maps `cause` to `v`, replacing what it was mapped to.
    pub(crate) fn insert(&mut self, cause: &Cause, v: u32) -> Result<()> {
        if let Some((conn, _)) = &self.disk {
            return CauseMap::insert_on_disk(conn, cause, v);
        }
        if let Some(key) = self.key(cause, true)
            && (self.memory.len() < self.bound || self.memory.contains_key(&key))
        {
            self.memory.insert(key, v);
            return Ok(());
        }
        let (conn, dir) = CauseMap::create_disk(self.dir.as_deref())?;
        let mut names = vec![String::new(); self.names.len()];
        for (name, n) in self.names.drain() {
            names[n as usize] = name;
        }
        for ((class, g, c, r, name), v) in self.memory.drain() {
            let cause = Cause {
                class: codec::class_of(class).unwrap_or(FindingClass::LogIntegrity),
                seq_num_global: g,
                seq_num_client: c,
                seq_num_rebase_generation: r,
                name: std::mem::take(&mut names[name as usize]),
            };
            CauseMap::insert_on_disk(&conn, &cause, v)?;
            names[name as usize] = cause.name;
        }
        self.memory = HashMap::new();
        CauseMap::insert_on_disk(&conn, cause, v)?;
        self.disk = Some((conn, dir));
        Ok(())
    }

    /// What `cause` is mapped to.
    pub(crate) fn get(&mut self, cause: &Cause) -> Result<Option<u32>> {
        match &self.disk {
            None => Ok(self
                .key(cause, false)
                .and_then(|k| self.memory.get(&k).copied())),
            Some((conn, _)) => conn
                .prepare_cached(
                    "SELECT v FROM cause WHERE class = ?1 AND g = ?2 AND c = ?3 AND r = ?4 AND name = ?5",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            cause.class as i64,
                            cause.seq_num_global,
                            cause.seq_num_client,
                            cause.seq_num_rebase_generation,
                            cause.name
                        ],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(|e| spill_error("read causes", e)),
        }
    }

    /// Whether `cause` is in the map.
    pub(crate) fn contains(&mut self, cause: &Cause) -> Result<bool> {
        Ok(self.get(cause)?.is_some())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eventlog::SeqNum;
    use crate::replay::changes::RowOp;
    use crate::report::{
        ChangeSide, ChangeSides, ColumnDiff, Divergence, EventRef, FindingClass, Level,
    };
    use crate::value::SqlValue;

    use crate::fuzz::Rng;

    fn value(rng: &mut Rng) -> SqlValue {
        match rng.below(12) {
            0 => SqlValue::Null,
            1 | 2 => SqlValue::Integer(rng.below(7) as i64 - 3),
            3 => SqlValue::Integer([i64::MIN, i64::MAX, 0][rng.below(3)]),
            4 => SqlValue::Real(rng.below(7) as f64 - 3.0),
            5 => SqlValue::Real((rng.below(70) as f64 - 35.0) / 8.0),
            6 => SqlValue::Real(
                [
                    9.3e18,
                    -9.3e18,
                    9_223_372_036_854_775_808.0,
                    -9_223_372_036_854_775_808.0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    1e-300,
                ][rng.below(8)],
            ),
            7..=9 => {
                SqlValue::Text(["", "a", "a\0", "a\0b", "ab", "b", "\u{e9}"][rng.below(7)].into())
            }
            _ => SqlValue::Blob([&b""[..], b"\0", b"\0\x01", b"\xff", b"a"][rng.below(5)].to_vec()),
        }
    }

    /// A pseudo-random mix of roots, consequences of them and findings without an event, many
    /// with equal keys, rows keyed by values of every kind SQLite orders.
    pub(crate) fn mixed(n: usize, seed: u64) -> Vec<Finding> {
        let mut rng = Rng(seed);
        let seq = |g: i64| {
            Some(SeqNum {
                global: g,
                client: 0,
                rebase_generation: 0,
            })
        };
        (0..n)
            .map(|i| {
                let g = rng.below(40) as i64;
                let mut f = match rng.below(5) {
                    0 => Finding::event(FindingClass::StateDivergence, None, None, format!("{i}")),
                    1 | 2 => Finding::event(
                        FindingClass::UnknownEvent,
                        seq(g),
                        Some("e"),
                        format!("{i}"),
                    ),
                    _ => Finding::event(
                        FindingClass::StateDivergence,
                        seq(g),
                        Some("e"),
                        format!("{i}"),
                    ),
                };
                if f.class == FindingClass::StateDivergence {
                    f.table = Some(["t", "u", "t\0"][rng.below(3)].into());
                    if rng.below(4) > 0 {
                        let len = rng.below(3);
                        f.key = Some((0..len).map(|_| value(&mut rng)).collect());
                    }
                }
                if rng.below(3) == 0 && f.seq_num_global.is_some() {
                    f.caused_by =
                        Finding::event(FindingClass::UnknownEvent, seq(g / 2), Some("e"), "")
                            .as_cause();
                }
                f
            })
            .collect()
    }

    /// A finding with every field set.
    fn full() -> Finding {
        let at = SeqNum {
            global: -5,
            client: 3,
            rebase_generation: 2,
        };
        let op = RowOp {
            table: "todos".into(),
            op: "update",
            key: vec![SqlValue::Text(b"t1".to_vec())],
            old: [("done".to_string(), SqlValue::Integer(0))]
                .into_iter()
                .collect(),
            new: [(
                "done".to_string(),
                SqlValue::Real(f64::from_bits(0x7ff0_0000_0000_0001)),
            )]
            .into_iter()
            .collect(),
        };
        let mut f = Finding::event(FindingClass::FirstDivergence, Some(at), Some("v1.X"), "m");
        f.severity = Level::Warning;
        f.baselined = true;
        f.statement = Some(7);
        f.table = Some("todos".into());
        f.divergence = Some(Divergence::ColumnExtra);
        f.key_columns = Some(vec!["id".into(), "n".into()]);
        f.key = Some(vec![SqlValue::Null, SqlValue::Blob(vec![0, 255])]);
        f.pk = Some(vec![SqlValue::Integer(i64::MIN), SqlValue::Real(-0.0)]);
        f.columns = vec![ColumnDiff {
            column: "done".into(),
            expected: SqlValue::Integer(1),
            actual: SqlValue::Text("ü".as_bytes().to_vec()),
            replay_writer: Some(EventRef::new(at, "v1.Y")),
            recorded_writer: Some(EventRef::new(at, "v1.Z")),
            outside_log: true,
        }];
        f.column = Some("c".into());
        f.pointer = Some("/a/0".into());
        f.keyword = Some("type".into());
        f.value = Some("\"x\"".into());
        f.downstream = vec![EventRef::new(at, "later")];
        f.args = Some("{\"a\":1}".into());
        f.recorded_writer = Some(EventRef::new(at, "w"));
        f.changes = Some(Box::new(ChangeSides {
            expected: ChangeSide {
                label: "LiveStore recorded".into(),
                rows: vec![op.clone()],
            },
            actual: ChangeSide {
                label: "replayed".into(),
                rows: vec![
                    RowOp {
                        op: "delete",
                        ..op.clone()
                    },
                    RowOp { op: "insert", ..op },
                ],
            },
        }));
        f.caused_by =
            Finding::event(FindingClass::MaterializerError, Some(at), Some("c"), "").as_cause();
        f
    }

    /// Spilled findings come back as they went, to the bit (-0.0 and NaN included),
    /// and bytes that are not a finding are an error, never a panic.
    #[test]
    fn a_finding_reads_back_exactly_as_written() {
        let f = full();
        let mut bytes = Vec::new();
        codec::encode(&f, &mut bytes);
        let back = codec::decode(&bytes).expect("decodes");
        assert_eq!(format!("{back:?}"), format!("{f:?}"));
        for cut in 0..bytes.len() {
            assert!(
                codec::decode(&bytes[..cut]).is_err(),
                "a prefix of {cut} bytes decoded"
            );
        }
        let mut rng = Rng(3);
        for _ in 0..2000 {
            let mut b = bytes.clone();
            let i = rng.below(b.len());
            b[i] = rng.below(256) as u8;
            let _ = codec::decode(&b);
        }
    }

    /// The byte keys order every pair of values as SQLite does.
    #[test]
    fn order_keys_order_values_as_sqlite_does() {
        let mut rng = Rng(11);
        let values: Vec<SqlValue> = (0..300).map(|_| value(&mut rng)).collect();
        let key = |v: &SqlValue| {
            let mut f = Finding::event(FindingClass::StateDivergence, None, None, "");
            f.key = Some(vec![v.clone()]);
            let mut k = Vec::new();
            codec::order_key(&f, &mut k);
            k
        };
        for a in &values {
            for b in &values {
                assert_eq!(key(a).cmp(&key(b)), a.sqlite_cmp(b), "{a:?} against {b:?}");
            }
        }
    }

    fn messages(f: &Findings) -> Vec<String> {
        f.iter().map(|f| f.message.clone()).collect()
    }

    /// Every operation gives the same findings, in the same order, whether they stayed in
    /// memory or went to disk.
    #[test]
    fn spilled_findings_behave_as_findings_in_memory() {
        let all = mixed(3000, 5);
        let mut mem = Findings::with_spill_at(usize::MAX);
        let mut disk = Findings::with_spill_at(100);
        for f in &all {
            mem.push_spilling(f.clone());
            disk.push_spilling(f.clone());
        }
        assert!(disk.spilled() && !mem.spilled());
        assert_eq!(disk.len(), 3000);
        assert_eq!(messages(&disk), messages(&mem));
        for i in [0, 99, 100, 2999] {
            assert_eq!(disk.get(i).unwrap().unwrap().message, format!("{i}"));
        }
        assert!(disk.get(3000).unwrap().is_none());
        for store in [&mut mem, &mut disk] {
            store.update(5, |f| f.message.push_str(" changed")).unwrap();
            store
                .update_from(2990, |f| {
                    f.baselined = true;
                    Ok(())
                })
                .unwrap();
            store.retain_mut(|f| Ok(!f.message.ends_with('7'))).unwrap();
            store.sort().unwrap();
        }
        assert_eq!(disk.len(), mem.len());
        assert_eq!(messages(&disk), messages(&mem));
        assert!(disk == mem);
        assert!(disk.iter().any(|f| f.message == "5 changed"));
        assert_eq!(disk.iter().filter(|f| f.baselined).count(), 9);
        let mut both = Findings::with_spill_at(50);
        both.append(disk.clone()).unwrap();
        both.append(mem.clone()).unwrap();
        assert_eq!(both.len(), 2 * mem.len());
        disk.check().unwrap();
    }

    /// The sort of spilled findings walks the table keyed by the order: SQLite is not asked to
    /// sort (its sorter would hold everything in memory in this build).
    #[test]
    fn sorting_spilled_findings_does_not_sort_in_memory() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE finding(id INTEGER PRIMARY KEY, body BLOB NOT NULL);
             CREATE TABLE ord(k BLOB NOT NULL, id INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (k, id)) WITHOUT ROWID;",
        )
        .unwrap();
        let plan: Vec<String> = conn
            .prepare("EXPLAIN QUERY PLAN SELECT body FROM ord ORDER BY k, id")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(plan.iter().all(|p| !p.contains("TEMP B-TREE")), "{plan:?}");
    }

    /// Findings spill where the scratch database is told to go, and leave nothing behind.
    #[test]
    fn findings_spill_under_the_scratch_directory_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spills = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("rehearse-findings-")
                })
                .count()
        };
        let mut f = Findings::in_dir(Some(dir.path().to_path_buf()));
        f.spill_at = 10;
        f.extend(mixed(50, 1));
        assert!(f.spilled());
        assert_eq!(spills(), 1);
        drop(f);
        assert_eq!(spills(), 0);
    }

    #[test]
    fn cause_maps_on_disk_answer_as_in_memory() {
        let mut mem = CauseMap::in_dir(None);
        let mut disk = CauseMap::with_bound(10);
        let causes: Vec<Cause> = mixed(500, 9).iter().filter_map(Finding::as_cause).collect();
        for (i, c) in causes.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            mem.insert(c, i as u32).unwrap();
            disk.insert(c, i as u32).unwrap();
        }
        assert!(disk.disk.is_some() && mem.disk.is_none());
        for c in &causes {
            assert_eq!(mem.get(c).unwrap(), disk.get(c).unwrap());
        }
    }
}
