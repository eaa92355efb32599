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
use crate::sqlite;

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
    if std::env::var("REHEARSE_FAILPOINT").is_ok_and(|v| v == step) {
        eprintln!("rehearse: failpoint {step}: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_step: &str) {}

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

/// Copies a database with SQLite's online backup API, reading the source without locks or side
/// files (the caller checks that it did not change meanwhile).
fn backup(src: &Path, dst: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        sqlite::file_uri(src, "mode=ro&immutable=1"),
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

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed, so a
/// reader never sees half a report.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rehearse-tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes a database atomically: `VACUUM INTO` a temporary file beside `path`, then rename.
pub fn write_database(conn: &Connection, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".rehearse-tmp")
        .suffix(".db")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    // VACUUM INTO wants a file that does not exist yet; keep the name, drop the file.
    drop(tmp);
    let _ = std::fs::remove_file(&tmp_path);
    let result = conn
        .execute("VACUUM INTO ?1", [tmp_path.to_string_lossy()])
        .map_err(|e| Error::sqlite(path, "cannot write the database", e))
        .and_then(|_| std::fs::rename(&tmp_path, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

#[cfg(test)]
mod tests {
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
