//! A 1,000,000-event log made from a real one: the log repeated, each copy with fresh ids and
//! sequence numbers that carry on from the copy before, so that the state grows with the log
//! (every copy adds its own users, projects, todos and comments) and memory that followed the
//! log's length or the number of findings would show.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// Writes `copies` copies of the log at `source` as `out/workspace/eventlog@6.db` (unless it is
/// there) and returns the corpus directory.
pub fn synthesize(
    source: &Path,
    out: &Path,
    copies: i64,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = out.join("workspace");
    let target = dir.join("eventlog@6.db");
    if target.is_file() {
        return Ok(out.to_path_buf());
    }
    std::fs::create_dir_all(&dir)?;
    let partial = dir.join("eventlog@6.db.partial");
    let _ = std::fs::remove_file(&partial);
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let db = Connection::open(&partial)?;
    let ddl: Vec<String> = src
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for sql in &ddl {
        db.execute_batch(sql)?;
    }
    db.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")?;
    db.execute_batch(&format!(
        "ATTACH {} AS src; INSERT INTO __livestore_sync_status SELECT * FROM src.__livestore_sync_status; DETACH src",
        rehearse::sqlite::quote_literal(&format!("file:{}?mode=ro", source.display()))
    ))?;
    // Each copy's sequence numbers start where the one before ended, so its first event's
    // parent (the root, 0) becomes the last event of the copy before.
    let span: i64 = src.query_row("SELECT max(seqNumGlobal) FROM eventlog", [], |r| r.get(0))?;
    db.execute_batch("BEGIN")?;
    let mut read = src.prepare(
        "SELECT seqNumGlobal, seqNumClient, seqNumRebaseGeneration, parentSeqNumGlobal, parentSeqNumClient, parentSeqNumRebaseGeneration, name, argsJson, clientId, sessionId, schemaHash, syncMetadataJson FROM eventlog ORDER BY seqNumGlobal, seqNumClient, seqNumRebaseGeneration",
    )?;
    let mut write = db.prepare(
        "INSERT INTO eventlog VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for copy in 0..copies {
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let args: String = r.get(7)?;
            write.execute(rusqlite::params![
                r.get::<_, i64>(0)? + copy * span,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)? + copy * span,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                fresh_ids(&args, copy),
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, i64>(10)?,
                r.get::<_, String>(11)?,
            ])?;
        }
    }
    drop(write);
    db.execute_batch("COMMIT")?;
    drop(db);
    std::fs::rename(&partial, &target)?;
    Ok(out.to_path_buf())
}

/// `args` with every id (a JSON string like `"todo_m2epo2l6co"`: lower-case letters, `_`,
/// lower-case letters and digits) made unique to `copy`; the first copy keeps its own.
fn fresh_ids(args: &str, copy: i64) -> String {
    if copy == 0 {
        return args.to_string();
    }
    let is_id = |s: &str| {
        s.split_once('_').is_some_and(|(kind, rest)| {
            !kind.is_empty()
                && !rest.is_empty()
                && kind.bytes().all(|b| b.is_ascii_lowercase())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    };
    let mut out = String::with_capacity(args.len() + 16);
    let mut parts = args.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Between quotes: string contents at odd positions (ids hold no escaped quotes).
    for (i, part) in parts.enumerate() {
        out.push('"');
        out.push_str(part);
        if i % 2 == 0 && is_id(part) {
            out.push_str(&format!("x{copy}"));
        }
    }
    out
}
