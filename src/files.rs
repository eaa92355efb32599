//! Copying files an app may be writing, and publishing directories so that a crash leaves the
//! old one or the new one, never half of either.
//!
//! LiveStore's Node adapter writes its databases through a VFS that takes no file locks
//! (FORMAT.md §2), so a reader's lock would not hold the app off and a byte-for-byte copy can
//! catch a transaction half written. rehearse therefore copies optimistically: it reads the
//! database with SQLite's online backup API (without taking locks of its own), and keeps the
//! copy only when the source's size, modification time and change counter are the same after
//! the copy as before it, with no journal beside it; otherwise it tries again.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use crate::error::{Error, Result};

/// How many times a copy of files that keep changing is tried before giving up.
const COPY_ATTEMPTS: u32 = 10;

/// What identifies a file's content cheaply: it changes whenever SQLite commits to it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// SQLite's file change counter (header bytes 24..28); zero for other files.
    counter: [u8; 4],
    /// A rollback journal or WAL beside it: a transaction is under way, or was cut short.
    sidecar: bool,
}

fn stamp(path: &Path) -> Result<Stamp> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut header = [0u8; 28];
    let mut counter = [0u8; 4];
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if f.read_exact(&mut header).is_ok() && header.starts_with(b"SQLite format 3\0") {
        counter.copy_from_slice(&header[24..28]);
    }
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        counter,
        sidecar: sidecars(path).next().is_some(),
    })
}

fn sidecars(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    ["-journal", "-wal"].into_iter().filter_map(move |suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        fs::metadata(&p)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
            .then_some(p)
    })
}

/// Aborts the process, as a kill would, when `REHEARSE_FAILPOINT` names this step: how the
/// tests prove that export and restore leave whole directories whenever they stop. Compiled
/// only into test builds (the `failpoints` feature, which the crate's own dev-dependency on
/// itself turns on): a released binary has no environment variable that kills it.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(step: &str) {
    if failpoint_fails(step) {
        eprintln!("rehearse: failpoint {step}: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_step: &str) {}

/// Whether `REHEARSE_FAILPOINT` (a comma-separated list) names this step: a step the tests make
/// fail rather than abort (a restore's read-back), or one [`failpoint`] aborts at. Always false
/// outside test builds.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint_fails(step: &str) -> bool {
    std::env::var("REHEARSE_FAILPOINT").is_ok_and(|v| v.split(',').any(|s| s == step))
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint_fails(_step: &str) -> bool {
    false
}

/// Opens an input for reading, refusing anything but a regular file on a real file system.
///
/// Opening a FIFO blocks until something writes to it, a device or socket is not a file
/// rehearse could have been meant to read, and `/proc` or `/sys` files are unbounded or change
/// while read: each used to hang a run until it was killed. The file is opened without
/// blocking and its type checked on the open file, so a FIFO swapped in after a check cannot
/// block either.
pub(crate) fn open_regular(path: &Path) -> Result<fs::File> {
    open_regular_io(path).map_err(|e| Error::io(path, e))
}

/// [`open_regular`], with the refusal as an I/O error (`InvalidInput`), for callers that
/// word I/O errors themselves.
pub(crate) fn open_regular_io(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc_flags::NONBLOCK | libc_flags::NOCTTY);
    }
    let f = options.open(path)?;
    let meta = f.metadata()?;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    if !meta.is_file() {
        return Err(refuse(format!(
            "is {}, not a regular file; rehearse reads only regular files",
            describe_type(&meta.file_type())
        )));
    }
    if let Some(fs_name) = pseudo_file_system(&f) {
        return Err(refuse(format!(
            "is on the {fs_name} pseudo file system, not a file rehearse reads"
        )));
    }
    Ok(f)
}

/// The flags [`open_regular`] adds, from rustix's constants (no libc dependency needed).
#[cfg(unix)]
mod libc_flags {
    pub(super) const NONBLOCK: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    pub(super) const NOCTTY: i32 = rustix::fs::OFlags::NOCTTY.bits() as i32;
}

/// The error for an input that is not a regular file.
pub(crate) fn not_regular(path: &Path, t: &fs::FileType) -> Error {
    Error::input(
        path,
        format!(
            "is {}, not a regular file; rehearse reads only regular files",
            describe_type(t)
        ),
    )
}

/// The name of the pseudo file system `f` is on (`proc`, `sysfs`, …), if it is on one.
#[cfg(target_os = "linux")]
fn pseudo_file_system(f: &fs::File) -> Option<&'static str> {
    let kind = rustix::fs::fstatfs(f).ok()?.f_type as u64;
    pseudo_file_system_name(kind)
}

#[cfg(not(target_os = "linux"))]
fn pseudo_file_system(_f: &fs::File) -> Option<&'static str> {
    None
}

/// Whether a directory is on a pseudo file system: a walk into `/proc` (`/proc/self/root`
/// leads back to `/`) or `/sys` never ends.
#[cfg(target_os = "linux")]
pub(crate) fn pseudo_dir(dir: &Path) -> Option<&'static str> {
    let kind = rustix::fs::statfs(dir).ok()?.f_type as u64;
    pseudo_file_system_name(kind)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn pseudo_dir(_dir: &Path) -> Option<&'static str> {
    None
}

/// Linux's magic numbers (`statfs(2)`) of the file systems that hold no user files.
#[cfg(target_os = "linux")]
fn pseudo_file_system_name(kind: u64) -> Option<&'static str> {
    Some(match kind {
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x6462_6720 => "debugfs",
        0x7472_6163 => "tracefs",
        0x7363_6673 => "securityfs",
        0x0027_e0eb | 0x6367_7270 => "cgroup",
        0x1cd1 => "devpts",
        0xcafe_4a11 => "bpf",
        0x6265_6570 => "configfs",
        0xde5e_81e4 => "efivarfs",
        0x6165_676c => "pstore",
        _ => return None,
    })
}

/// The largest text input rehearse reads whole (definitions, DDL, schemas, baselines,
/// snapshots, manifests): far beyond any real one, and an error rather than memory exhausted
/// by a file that is not what it should be.
pub(crate) const MAX_TEXT_INPUT: u64 = 512 << 20;

/// `std::fs::read` for inputs: only a regular file ([`open_regular`]), at most
/// [`MAX_TEXT_INPUT`] bytes.
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = open_regular_io(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_TEXT_INPUT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_INPUT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "is larger than {} MiB, more than rehearse reads as one text",
                MAX_TEXT_INPUT >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// `std::fs::read_to_string` for inputs, as [`read`] reads them.
pub(crate) fn read_to_string(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Copies a regular file to a new file, naming the side that failed: a full disk is the
/// destination's fault, not the source's (`std::fs::copy` names neither).
pub(crate) fn copy_file(from: &Path, to: &Path) -> Result<u64> {
    let mut src = open_regular(from)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| Error::io(to, e))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(from, e)),
        };
        dst.write_all(&buf[..n]).map_err(|e| Error::io(to, e))?;
        total += n as u64;
    }
    dst.flush().map_err(|e| Error::io(to, e))?;
    Ok(total)
}

/// A private temporary directory (a copy of an input with its journal, an on-disk scratch
/// database), removed when dropped, and found and removed by a later run when this one was
/// killed: a file `.lock` inside is locked for the directory's life, and the kernel releases
/// the lock of a killed process, so a directory whose lock can be taken is a leftover.
pub(crate) struct PrivateDir {
    dir: tempfile::TempDir,
    _lock: fs::File,
}

impl PrivateDir {
    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Leftovers younger than this are left alone: a run may be between creating its directory
/// and locking it. (Windows has no leftover sweep: nothing there locks them.)
#[cfg(unix)]
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Creates a [`PrivateDir`] named `<prefix>…` in `parent` (the system's temporary directory
/// when `None`), first removing the leftovers of killed runs there.
pub(crate) fn private_dir(prefix: &str, parent: Option<&Path>) -> Result<PrivateDir> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    remove_leftovers(&parent, prefix);
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let lock_path = dir.path().join(".lock");
    let lock = fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    #[cfg(unix)]
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(&lock_path, e.into()))?;
    Ok(PrivateDir { dir, _lock: lock })
}

/// Removes the directories `<prefix>…` in `parent` that no running process holds.
fn remove_leftovers(parent: &Path, prefix: &str) {
    #[cfg(unix)]
    {
        let Ok(entries) = fs::read_dir(parent) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(prefix)
                || !e.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            let dir = e.path();
            let old = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            let Ok(lock) = fs::File::open(dir.join(".lock")) else {
                continue;
            };
            let unheld =
                rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok();
            if old && unheld {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (parent, prefix);
}

/// Whether `path` starts with the SQLite header.
pub(crate) fn is_sqlite(path: &Path) -> bool {
    let mut header = [0u8; 16];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && &header == b"SQLite format 3\0"
}

/// Copies every `(source, destination)` pair as of one moment: SQLite databases with the
/// online backup API, other files byte for byte. The set is copied again, up to
/// [`COPY_ATTEMPTS`] times, until no source changed while it was read. Returns how many
/// attempts it took.
pub(crate) fn copy_consistent(pairs: &[(PathBuf, PathBuf)]) -> Result<u32> {
    copy_consistent_within(pairs, COPY_ATTEMPTS)
}

fn copy_consistent_within(pairs: &[(PathBuf, PathBuf)], attempts: u32) -> Result<u32> {
    let mut last_changed = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            std::thread::sleep(Duration::from_millis(100 * u64::from(attempt - 1)));
        }
        let before: Vec<Stamp> = pairs.iter().map(|(s, _)| stamp(s)).collect::<Result<_>>()?;
        if let Some(i) = before.iter().position(|s| s.sidecar) {
            last_changed = Some(i);
            continue;
        }
        let mut failed = None;
        for (i, (src, dst)) in pairs.iter().enumerate() {
            let _ = fs::remove_file(dst);
            let copied = if is_sqlite(src) {
                backup(src, dst)
            } else {
                fs::copy(src, dst)
                    .map(|_| ())
                    .map_err(|e| Error::io(src, e))
            };
            if let Err(e) = copied {
                failed = Some((i, e));
                break;
            }
        }
        let after: Vec<Stamp> = pairs.iter().map(|(s, _)| stamp(s)).collect::<Result<_>>()?;
        let changed = before.iter().zip(&after).position(|(b, a)| b != a);
        match (changed, failed) {
            (None, None) => return Ok(attempt),
            // A read error on a file that did not change is the file's fault, not a race.
            (None, Some((_, e))) => return Err(e),
            (Some(i), _) => last_changed = Some(i),
        }
    }
    let path = &pairs[last_changed.unwrap_or(0)].0;
    if sidecars(path).any(|p| p.to_string_lossy().ends_with("-wal")) {
        return Err(Error::input(
            path,
            "is in WAL mode (a -wal file beside it); rehearse copies rollback-journal databases, as LiveStore writes them: checkpoint it (PRAGMA wal_checkpoint(TRUNCATE)) or stop the app first",
        ));
    }
    Err(Error::input(
        path,
        format!(
            "kept changing while it was copied ({attempts} attempts): the app is writing to it; stop the app, or retry when it is idle"
        ),
    ))
}

/// Builds a `file:` URI for `path` with the given query, percent-encoding what URIs reserve.
pub fn file_uri(path: &Path, query: &str) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(b as char)
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    uri
}

/// Copies a database with SQLite's online backup API, reading the source without locks or side
/// files (the caller checks that it did not change meanwhile).
fn backup(src: &Path, dst: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        file_uri(src, "mode=ro&immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| Error::sqlite(src, "cannot open", e))?;
    conn.backup(MAIN_DB, dst, None::<fn(rusqlite::backup::Progress)>)
        .map_err(|e| Error::sqlite(src, format!("cannot copy to {}", dst.display()), e))
}

/// Flushes a file's content to the disk.
pub(crate) fn fsync_file(path: &Path) -> Result<()> {
    // Windows flushes only through a handle opened for writing (FlushFileBuffers).
    #[cfg(windows)]
    let file = fs::OpenOptions::new().write(true).open(path);
    #[cfg(not(windows))]
    let file = fs::File::open(path);
    file.and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Flushes a directory's entries (a rename or a new file in it) to the disk.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    // Windows opens no directory as a file, and NTFS journals renames itself.
    if cfg!(windows) {
        return Ok(());
    }
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Flushes every file below `dir`, then the directories themselves.
pub(crate) fn fsync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        if entry.file_type().map_err(|e| Error::io(&p, e))?.is_dir() {
            fsync_tree(&p)?;
        } else {
            fsync_file(&p)?;
        }
    }
    fsync_dir(dir)
}

/// The directory a path sits in (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `path` is absent or an empty directory: the only places a package or store may be
/// created without overwriting anything.
pub(crate) fn is_absent_or_empty_dir(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.is_dir() => Ok(fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .next()
            .is_none()),
        Ok(_) => Ok(false),
    }
}

/// Renames a finished directory to its final name (replacing an empty directory there) and
/// makes the rename durable: the final name then holds the whole directory or nothing.
pub(crate) fn publish_dir(staged: &Path, target: &Path) -> Result<()> {
    // Windows renames no directory over another, even an empty one: the empty one goes first.
    // A crash in between leaves no directory at all, which callers treat as the empty one.
    #[cfg(windows)]
    if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir(target).map_err(|e| Error::io(target, e))?;
    }
    fs::rename(staged, target).map_err(|e| Error::io(target, e))?;
    fsync_dir(&parent_of(target))
}

/// Swaps two directories. On Linux (`renameat2(RENAME_EXCHANGE)`) and macOS
/// (`renameatx_np(RENAME_SWAP)`) in one atomic step: at every moment each name holds one whole
/// directory. Windows, and a file system that cannot exchange (it answers "invalid" or "not
/// supported"), get [`exchange_dirs_by_renames`].
#[cfg(unix)]
pub(crate) fn exchange_dirs(a: &Path, b: &Path) -> Result<()> {
    use rustix::io::Errno;
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {}
        Err(e) if e == Errno::INVAL || e == Errno::NOTSUP || e == Errno::OPNOTSUPP => {
            return exchange_dirs_by_renames(a, b);
        }
        Err(e) => return Err(Error::io(b, std::io::Error::from(e))),
    }
    fsync_dir(&parent_of(b))?;
    if parent_of(a) != parent_of(b) {
        fsync_dir(&parent_of(a))?;
    }
    Ok(())
}

/// Swaps two directories (see the Unix version); on Windows, three renames under a record.
#[cfg(not(unix))]
pub(crate) fn exchange_dirs(a: &Path, b: &Path) -> Result<()> {
    exchange_dirs_by_renames(a, b)
}

/// What an exchange by renames is doing, written beside `b` before its first rename.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ExchangeRecord {
    a: PathBuf,
    b: PathBuf,
    /// Where `b`'s directory waits while `a`'s takes its name.
    parked: PathBuf,
}

/// `<parent of b>/.<name of b><suffix>`.
fn beside(b: &Path, suffix: &str) -> PathBuf {
    let name = b
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".into());
    parent_of(b).join(format!(".{name}{suffix}"))
}

fn exchange_record_path(b: &Path) -> PathBuf {
    beside(b, ".rehearse-exchange.json")
}

/// Swaps two directories where the system has no atomic exchange (Windows): `b` is parked
/// under a third name, `a` takes `b`'s name, and the parked directory takes `a`'s. Neither
/// directory is ever half written, but between the first two renames `b`'s name holds nothing,
/// and a crash there leaves it so. The record written first tells
/// [`finish_exchange`] (which the next restore runs) how to put every directory back under a
/// name: the old one at `b` if `a`'s had not yet moved there, else the exchange completed.
pub(crate) fn exchange_dirs_by_renames(a: &Path, b: &Path) -> Result<()> {
    let record = ExchangeRecord {
        a: std::path::absolute(a).map_err(|e| Error::io(a, e))?,
        b: std::path::absolute(b).map_err(|e| Error::io(b, e))?,
        parked: std::path::absolute(beside(b, ".rehearse-exchange"))
            .map_err(|e| Error::io(b, e))?,
    };
    if record.parked.exists() {
        return Err(Error::input(
            &record.parked,
            "is left from an interrupted exchange; run the restore again to finish it",
        ));
    }
    let record_path = exchange_record_path(b);
    write_atomic(
        &record_path,
        &serde_json::to_vec_pretty(&record).expect("a record of paths serializes"),
    )?;
    fsync_dir(&parent_of(b))?;
    fs::rename(b, &record.parked).map_err(|e| Error::io(b, e))?;
    failpoint("exchange-parked");
    fs::rename(a, b).map_err(|e| Error::io(b, e))?;
    failpoint("exchange-moved");
    fs::rename(&record.parked, a).map_err(|e| Error::io(a, e))?;
    fsync_dir(&parent_of(b))?;
    if parent_of(a) != parent_of(b) {
        fsync_dir(&parent_of(a))?;
    }
    fs::remove_file(&record_path).map_err(|e| Error::io(&record_path, e))?;
    fsync_dir(&parent_of(b))
}

/// Finishes an exchange by renames that a crash interrupted beside `b`, so that every
/// directory has a name again. Returns what it did, for the operator; `None` when there was
/// nothing to finish (always so where the exchange is atomic).
pub(crate) fn finish_exchange(b: &Path) -> Result<Option<String>> {
    let record_path = exchange_record_path(b);
    let bytes = match fs::read(&record_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&record_path, e)),
    };
    let record: ExchangeRecord = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(
            &record_path,
            format!("unreadable directory-exchange record: {e}"),
        )
    })?;
    let note = match (record.parked.exists(), record.b.exists()) {
        // Nothing had moved yet, or everything had.
        (false, _) => None,
        // Parked, and `a` had not taken b's name: the old directory goes back.
        (true, false) => {
            fs::rename(&record.parked, &record.b).map_err(|e| Error::io(&record.b, e))?;
            Some(format!(
                "an interrupted directory exchange was undone: {} holds its old directory again",
                record.b.display()
            ))
        }
        // `a` had taken b's name: the parked directory takes a's.
        (true, true) => {
            fs::rename(&record.parked, &record.a).map_err(|e| Error::io(&record.a, e))?;
            Some(format!(
                "an interrupted directory exchange was completed: {} holds the directory that was at {}",
                record.a.display(),
                record.b.display()
            ))
        }
    };
    fsync_dir(&parent_of(b))?;
    fs::remove_file(&record_path).map_err(|e| Error::io(&record_path, e))?;
    fsync_dir(&parent_of(b))?;
    Ok(note)
}

/// Where a report or database written to `path` really goes: `path` itself when it is absent
/// or a regular file, the file a symbolic link leads to, and an error for anything else. A
/// report is renamed into place, and a rename replaces whatever has the name: run as root in a
/// CI container, `--json /dev/null` would otherwise replace `/dev/null` itself.
pub(crate) fn output_target(path: &Path) -> Result<(PathBuf, Option<fs::Permissions>)> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((path.to_path_buf(), None));
        }
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m,
    };
    let (target, meta) = if meta.file_type().is_symlink() {
        let target = fs::canonicalize(path).map_err(|e| {
            Error::input(
                path,
                format!("is a symbolic link that leads nowhere rehearse can write ({e}); name the file itself"),
            )
        })?;
        let meta = fs::metadata(&target).map_err(|e| Error::io(&target, e))?;
        (target, meta)
    } else {
        (path.to_path_buf(), meta)
    };
    if !meta.is_file() {
        let through = if target.as_path() == path {
            String::new()
        } else {
            format!(" (through the symbolic link, {})", target.display())
        };
        return Err(Error::input(
            path,
            format!(
                "is {}{through}, not a regular file: rehearse writes its output only to a regular file or a new name, which it replaces whole (use stdout, `--format`, to stream it elsewhere)",
                describe_type(&meta.file_type())
            ),
        ));
    }
    Ok((target, Some(meta.permissions())))
}

/// A file type, for an error message (`a FIFO`, `a directory`).
pub(crate) fn describe_type(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// A temporary file beside a report, created with the ordinary mode of a new file (0666 less
/// the umask, as `touch` makes it): tempfile's own 0600 would leave a report unreadable to the
/// CI step that uploads it. A file being replaced passes its own mode on instead.
fn report_tempfile(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".rehearse-tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed, so a
/// reader never sees half a report. Only a regular file (or the one a symbolic link leads to)
/// is replaced; anything else at `path` is an error, untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// [`write_atomic`] for output made as it is written (a streamed report): `write` fills the
/// temporary file, which replaces `path` only when `write` succeeded.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let (target, kept) = output_target(path)?;
    let dir = parent_of(&target);
    let mut tmp = report_tempfile(&dir)?;
    if let Some(p) = kept {
        fs::set_permissions(tmp.path(), p).map_err(|e| Error::io(&target, e))?;
    }
    write(tmp.as_file_mut()).map_err(|e| Error::io(&target, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(&target, e))?;
    tmp.persist(&target)
        .map_err(|e| Error::io(&target, e.error))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_database_is_copied_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.db");
        let conn = Connection::open(&src).unwrap();
        conn.execute_batch(
            "PRAGMA page_size=8192; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2);",
        )
        .unwrap();
        drop(conn);
        let dst = dir.path().join("b.db");
        assert_eq!(copy_consistent(&[(src.clone(), dst.clone())]).unwrap(), 1);
        let copy = Connection::open(&dst).unwrap();
        let n: i64 = copy
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let page: i64 = copy
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page, 8192);
        assert!(sidecars(&src).next().is_none());
    }

    #[test]
    fn a_copy_taken_while_a_writer_commits_is_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("live.db");
        let writer = Connection::open(&src).unwrap();
        writer
            .execute_batch("PRAGMA page_size=8192; CREATE TABLE t(pair INTEGER, x BLOB);")
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_writer = stop.clone();
        // Each transaction writes two rows of a pair, large enough to touch several pages, and
        // drops old pairs: a copy that caught one half-written shows an odd count or fails its
        // integrity check. The writer works in bursts, as an app does, so that some copies
        // start mid-burst and some find a quiet moment.
        let handle = std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop_writer.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..5 {
                    writer
                        .execute_batch(&format!(
                            "BEGIN; INSERT INTO t VALUES ({i}, randomblob(20000)); DELETE FROM t WHERE pair < {i} - 20; INSERT INTO t VALUES ({i}, randomblob(20000)); COMMIT;"
                        ))
                        .unwrap();
                    i += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        let mut kept = 0;
        for k in 0..40 {
            let dst = dir.path().join(format!("copy{k}.db"));
            std::thread::sleep(Duration::from_millis(7 * (k % 20)));
            // Under a busy writer a copy may take several attempts, or give up; either way,
            // what is kept is consistent.
            if copy_consistent(&[(src.clone(), dst.clone())]).is_err() {
                continue;
            }
            kept += 1;
            let copy = Connection::open(&dst).unwrap();
            let ok: String = copy
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            let odd: i64 = copy
                .query_row(
                    "SELECT count(*) FROM (SELECT pair FROM t GROUP BY pair HAVING count(*) != 2)",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(odd, 0, "copy {k} holds half a transaction");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        handle.join().unwrap();
        assert!(kept > 0, "no copy found a quiet moment");
    }

    #[test]
    fn a_journal_beside_the_source_means_a_transaction_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.db");
        Connection::open(&src)
            .unwrap()
            .execute_batch("CREATE TABLE t(x);")
            .unwrap();
        fs::write(dir.path().join("a.db-journal"), b"not empty").unwrap();
        let err = copy_consistent_within(&[(src, dir.path().join("b.db"))], 2).unwrap_err();
        assert!(err.to_string().contains("kept changing"), "{err}");
    }

    #[test]
    fn exchanged_directories_swap_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("f"), "a").unwrap();
        fs::write(b.join("f"), "b").unwrap();
        exchange_dirs(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(a.join("f")).unwrap(), "b");
        assert_eq!(fs::read_to_string(b.join("f")).unwrap(), "a");
    }

    /// The mode a new file gets here: 0666 less this process's umask.
    #[cfg(unix)]
    pub(crate) fn new_file_mode(dir: &Path) -> u32 {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let p = dir.join("probe");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&p)
            .unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        fs::remove_file(p).unwrap();
        mode
    }

    #[cfg(unix)]
    #[test]
    fn reports_replace_only_regular_files() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A new report has the ordinary mode of a new file, not a temporary file's 0600.
        let new = d.join("new.json");
        write_atomic(&new, b"{}").unwrap();
        let mode = fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, new_file_mode(d));
        // A replaced report keeps the mode it had.
        fs::set_permissions(&new, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&new, b"[]").unwrap();
        assert_eq!(
            fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read(&new).unwrap(), b"[]");
        // A FIFO is neither replaced nor opened (opening it would block).
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = write_atomic(&fifo, b"x").unwrap_err().to_string();
        assert!(
            err.contains("a FIFO") && err.contains("not a regular file"),
            "{err}"
        );
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // Nor is a directory, or a FIFO behind a symbolic link.
        let err = write_atomic(d, b"x").unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        let to_fifo = d.join("to-fifo");
        symlink(&fifo, &to_fifo).unwrap();
        let err = write_atomic(&to_fifo, b"x").unwrap_err().to_string();
        assert!(
            err.contains("a FIFO") && err.contains("symbolic link"),
            "{err}"
        );
        assert!(
            fs::symlink_metadata(&to_fifo)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A symbolic link to a regular file: the file it leads to gets the report, the link stays.
        let link = d.join("link.json");
        symlink(&new, &link).unwrap();
        write_atomic(&link, b"through").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&new).unwrap(), b"through");
        // Nothing left behind.
        let left: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".rehearse-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    fn two_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("staging"), dir.path().join("store"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("f"), "new").unwrap();
        fs::write(b.join("f"), "old").unwrap();
        (dir, a, b)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn the_windows_exchange_swaps_and_leaves_nothing_beside() {
        let (dir, a, b) = two_dirs();
        exchange_dirs_by_renames(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(a.join("f")).unwrap(), "old");
        assert_eq!(fs::read_to_string(b.join("f")).unwrap(), "new");
        assert_eq!(names(dir.path()), ["staging", "store"]);
        assert_eq!(finish_exchange(&b).unwrap(), None);
    }

    /// A crash after each rename of the Windows exchange, replayed by doing its renames by hand
    /// under its record: the next run's `finish_exchange` gives both directories a name, the
    /// old one back at the store's name until the new one had taken it.
    #[test]
    fn an_interrupted_windows_exchange_is_finished_by_the_next_run() {
        for renames_done in 0..=3 {
            let (dir, a, b) = two_dirs();
            let parked = beside(&b, ".rehearse-exchange");
            let record = ExchangeRecord {
                a: a.clone(),
                b: b.clone(),
                parked: parked.clone(),
            };
            fs::write(
                exchange_record_path(&b),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
            if renames_done >= 1 {
                fs::rename(&b, &parked).unwrap();
            }
            if renames_done >= 2 {
                fs::rename(&a, &b).unwrap();
            }
            if renames_done >= 3 {
                fs::rename(&parked, &a).unwrap();
            }
            let note = finish_exchange(&b).unwrap();
            assert_eq!(names(dir.path()), ["staging", "store"], "{renames_done}");
            let (at_a, at_b) = if renames_done >= 2 {
                ("old", "new")
            } else {
                ("new", "old")
            };
            assert_eq!(fs::read_to_string(a.join("f")).unwrap(), at_a);
            assert_eq!(fs::read_to_string(b.join("f")).unwrap(), at_b);
            assert_eq!(note.is_some(), renames_done == 1 || renames_done == 2);
        }
    }

    #[test]
    fn a_directory_left_parked_stops_a_new_exchange() {
        let (_dir, a, b) = two_dirs();
        fs::create_dir(beside(&b, ".rehearse-exchange")).unwrap();
        let err = exchange_dirs_by_renames(&a, &b).unwrap_err();
        assert!(err.to_string().contains("interrupted exchange"), "{err}");
        assert_eq!(fs::read_to_string(b.join("f")).unwrap(), "old");
    }
}
