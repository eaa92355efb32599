//! Which event last wrote each row, and each column of it.
//!
//! A divergent row is only useful with its cause: the replay records, from every applied
//! event's row changes, the event that inserted each row and the events that last changed each
//! of its columns, so that a differing value can be traced to the event that produced it.
//!
//! The index holds one entry per row ever written, which grows with the log (the bench's
//! million events write 473,000 rows, ~144 MiB in memory), yet it is only read once the replay
//! is over, for the few rows that diverge. So it keeps at most [`MEMORY_ROWS`] entries in
//! memory and, past that, moves them to a table of a temporary SQLite file ([`Spill`]), in
//! batches, one transaction each: memory stays bounded by the batch, the disk takes the rest,
//! and a lookup merges what memory holds with what the disk does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::eventlog::SeqNum;
use crate::replay::capture::{ChangeOp, RowChange};
use crate::value::SqlValue;

/// Entries (rows and intended rows) kept in memory before they move to disk: 7/8 of 2^16,
/// what a hash table of 65,536 slots holds before it doubles. An entry costs ~300 bytes in
/// all (its 145-byte slot, its key, its columns' writers, as measured: 144 MiB for 473,000
/// rows), so this caps the index's memory near 20 MiB. It is above the 47,296 rows the
/// 100,000-event bench store writes, so that a store of that size never pays for the disk;
/// 2^17 entries cost 45 MiB more peak memory on the million-event log.
pub(crate) const MEMORY_ROWS: usize = 57_344;

/// Page cache of the spill database: the memory its disk side costs, whatever its size.
const SPILL_CACHE_KIB: i64 = 4 * 1024;

/// The event that last wrote a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    /// Its sequence number.
    pub seq: SeqNum,
    /// Its name.
    pub name: Arc<str>,
}

/// Which event last wrote each row, and each column of it, from per-event changesets.
#[derive(Debug)]
pub struct WriterIndex {
    tables: HashMap<String, u32>,
    /// The entries written since the last move to disk.
    rows: HashMap<(u32, Vec<u8>), RowWriters>,
    /// Rows that an event which was not applied meant to write (the first such event).
    intended: HashMap<(u32, Vec<u8>), Writer>,
    /// Entries held in memory before they move to disk.
    bound: usize,
    /// Where the spill file goes (the system's temporary directory when `None`).
    dir: Option<PathBuf>,
    /// The entries moved to disk, once the bound was first reached.
    spill: Option<Spill>,
}

/// The writers of one row: the insert, later updates per column, and the last change.
#[derive(Debug, Clone, PartialEq)]
struct RowWriters {
    last: Writer,
    inserted: Option<Writer>,
    columns: Vec<(usize, Writer)>,
    /// This entry is all there is to know about the row: an insert replaced whatever came
    /// before it, or nothing was on disk when the entry began. Otherwise it only holds what
    /// changed since the row's entry on disk (if any), which it is merged into.
    whole: bool,
}

impl RowWriters {
    fn new(last: &Writer, whole: bool) -> RowWriters {
        RowWriters {
            last: last.clone(),
            inserted: None,
            columns: Vec::new(),
            whole,
        }
    }

    /// Sets the writer of column `i`.
    fn set_column(&mut self, i: usize, writer: Writer) {
        match self.columns.iter_mut().find(|(c, _)| *c == i) {
            Some(slot) => slot.1 = writer,
            None => self.columns.push((i, writer)),
        }
    }

    /// The entry `older` (from disk) with the later changes of `self` (not whole) applied, as
    /// if they had been recorded onto it: the last writer and the columns `self` changed are
    /// its, the insert and the other columns stay `older`'s.
    fn onto(self, mut older: RowWriters) -> RowWriters {
        debug_assert!(!self.whole && self.inserted.is_none());
        older.last = self.last;
        for (i, w) in self.columns {
            older.set_column(i, w);
        }
        older
    }
}

impl Default for WriterIndex {
    /// An index that moves to the system's temporary directory past [`MEMORY_ROWS`].
    fn default() -> Self {
        WriterIndex::new(None)
    }
}

impl WriterIndex {
    /// An index whose entries past [`MEMORY_ROWS`] move to a temporary file under `dir` (the
    /// system's temporary directory when `None`): the directory a scratch database would use.
    pub fn new(dir: Option<PathBuf>) -> WriterIndex {
        WriterIndex::with_bound(dir, MEMORY_ROWS)
    }

    /// [`WriterIndex::new`] holding at most `bound` entries in memory (at least one); tests
    /// make it tiny to drive every lookup through the disk.
    pub(crate) fn with_bound(dir: Option<PathBuf>, bound: usize) -> WriterIndex {
        WriterIndex {
            tables: HashMap::new(),
            rows: HashMap::new(),
            intended: HashMap::new(),
            bound: bound.max(1),
            dir,
            spill: None,
        }
    }

    fn table_id(&mut self, table: &str) -> u32 {
        if let Some(&id) = self.tables.get(table) {
            return id;
        }
        let id = self.tables.len() as u32;
        self.tables.insert(table.to_string(), id);
        id
    }

    /// Records one row change made by `writer`.
    pub fn record(&mut self, change: &RowChange, writer: &Writer) -> Result<()> {
        let id = self.table_id(&change.table);
        // With nothing on disk, a new entry is the row's whole story.
        let whole = self.spill.is_none();
        if let Some(old) = &change.old_key {
            // The row moved to a new key: the old one was, in effect, deleted by this event.
            self.rows
                .entry((id, SqlValue::encode_key(old)))
                .and_modify(|row| row.last = writer.clone())
                .or_insert_with(|| RowWriters::new(writer, whole));
        }
        let key = (id, SqlValue::encode_key(&change.key));
        match change.op {
            ChangeOp::Insert => {
                let mut row = RowWriters::new(writer, true);
                row.inserted = Some(writer.clone());
                self.rows.insert(key, row);
            }
            ChangeOp::Update | ChangeOp::Delete => {
                let row = self
                    .rows
                    .entry(key)
                    .and_modify(|row| row.last = writer.clone())
                    .or_insert_with(|| RowWriters::new(writer, whole));
                if change.op == ChangeOp::Update {
                    for &i in &change.columns {
                        row.set_column(i, writer.clone());
                    }
                }
            }
        }
        self.bounded()
    }

    /// Records that `writer`, which was not applied, meant to write a row.
    pub fn intend(&mut self, table: &str, key: &[SqlValue], writer: &Writer) -> Result<()> {
        let id = self.table_id(table);
        // The first such event is kept; one already on disk is older than any here, and the
        // move to disk keeps it (`INSERT OR IGNORE`).
        self.intended
            .entry((id, SqlValue::encode_key(key)))
            .or_insert_with(|| writer.clone());
        self.bounded()
    }

    /// Moves the entries in memory to disk once they reach the bound.
    fn bounded(&mut self) -> Result<()> {
        if self.rows.len() + self.intended.len() < self.bound {
            return Ok(());
        }
        self.flush()
    }

    /// Moves every entry in memory to disk, in one transaction, merging each with the row's
    /// entry already there; the maps keep their capacity for the next batch.
    fn flush(&mut self) -> Result<()> {
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill::open(self.dir.as_deref())?),
        };
        // In key order, so that consecutive writes land on the same pages of the B-tree and
        // the small page cache is not thrashed by a random walk over the file.
        let mut rows: Vec<(&(u32, Vec<u8>), &RowWriters)> = self.rows.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut intended: Vec<(&(u32, Vec<u8>), &Writer)> = self.intended.iter().collect();
        intended.sort_unstable_by(|a, b| a.0.cmp(b.0));
        spill.write(&rows, &intended)?;
        self.rows.clear();
        self.intended.clear();
        Ok(())
    }

    /// The first event that meant to write a row but was not applied.
    pub fn intended(&self, table: &str, key: &[SqlValue]) -> Result<Option<Writer>> {
        let Some(&id) = self.tables.get(table) else {
            return Ok(None);
        };
        let key = (id, SqlValue::encode_key(key));
        // What is on disk was recorded first.
        if let Some(spill) = &self.spill
            && let Some(w) = spill.intended(&key)?
        {
            return Ok(Some(w));
        }
        Ok(self.intended.get(&key).cloned())
    }

    /// The last writer of the row of `table` whose primary key, in column order, is `key`.
    pub fn last_writer(&self, table: &str, key: &[SqlValue]) -> Result<Option<Writer>> {
        Ok(self.row(table, key)?.map(|r| r.last.clone()))
    }

    /// The last event that wrote any of `columns` (positions in the replayed table) of a row:
    /// the latest update of one of them, else the insert.
    pub fn last_writer_of_columns(
        &self,
        table: &str,
        key: &[SqlValue],
        columns: &[usize],
    ) -> Result<Option<Writer>> {
        let Some(row) = self.row(table, key)? else {
            return Ok(None);
        };
        let writer = columns
            .iter()
            .filter_map(|c| {
                row.columns
                    .iter()
                    .find(|(i, _)| i == c)
                    .map(|(_, w)| w)
                    .or(row.inserted.as_ref())
            })
            .max_by_key(|w| w.seq)
            .unwrap_or(&row.last);
        Ok(Some(writer.clone()))
    }

    /// A row's entry: the one in memory when it is whole, else the one on disk with the
    /// changes in memory applied.
    fn row(&self, table: &str, key: &[SqlValue]) -> Result<Option<Cow<'_, RowWriters>>> {
        let Some(&id) = self.tables.get(table) else {
            return Ok(None);
        };
        let key = (id, SqlValue::encode_key(key));
        let recent = self.rows.get(&key);
        if let Some(row) = recent
            && row.whole
        {
            return Ok(Some(Cow::Borrowed(row)));
        }
        let older = match &self.spill {
            Some(spill) => spill.row(&key)?,
            None => None,
        };
        Ok(match (older, recent) {
            (Some(older), Some(recent)) => Some(Cow::Owned(recent.clone().onto(older))),
            (Some(older), None) => Some(Cow::Owned(older)),
            (None, recent) => recent.map(Cow::Borrowed),
        })
    }

    /// Rows with a known writer.
    pub fn len(&self) -> Result<usize> {
        let Some(spill) = &self.spill else {
            return Ok(self.rows.len());
        };
        // A row in memory may have an entry on disk too: count those once.
        let mut only_here = 0;
        for key in self.rows.keys() {
            if spill.row(key)?.is_none() {
                only_here += 1;
            }
        }
        Ok(spill.rows()? + only_here)
    }

    /// Whether no row has a known writer.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.spill.as_ref().is_none_or(|s| !s.has_rows)
    }
}

/// The entries of a [`WriterIndex`] that outgrew its memory, in a SQLite file of a private
/// temporary directory (removed with it).
///
/// A [`crate::sqlite::private_file`] with a page cache of [`SPILL_CACHE_KIB`]. Rows are
/// `WITHOUT ROWID`, keyed by the table's id and the encoded key, so an entry is one B-tree
/// cell; its writers are packed into a blob whose names are ids into [`Spill::names`], which
/// holds each event name once, in memory (there are as many as event types, not events).
struct Spill {
    conn: Connection,
    names: Vec<Arc<str>>,
    name_ids: HashMap<Arc<str>, u32>,
    /// Whether the `rows` table has any (all moves to disk may have been of intended rows).
    has_rows: bool,
    /// Dropped after the connection (fields drop in order), which still has the file open.
    dir: crate::files::PrivateDir,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("dir", &self.dir.path())
            .field("names", &self.names.len())
            .finish()
    }
}

const GET_ROW: &str = "SELECT w FROM rows WHERE t = ?1 AND k = ?2";
const PUT_ROW: &str = "INSERT OR REPLACE INTO rows (t, k, w) VALUES (?1, ?2, ?3)";
const GET_INTENDED: &str = "SELECT w FROM intended WHERE t = ?1 AND k = ?2";
const PUT_INTENDED: &str = "INSERT OR IGNORE INTO intended (t, k, w) VALUES (?1, ?2, ?3)";

impl Spill {
    fn open(dir: Option<&Path>) -> Result<Spill> {
        let (conn, tmp) = crate::sqlite::private_file(
            "rehearse-writers-",
            "writers.db",
            dir,
            SPILL_CACHE_KIB,
            "CREATE TABLE rows (t INTEGER NOT NULL, k BLOB NOT NULL, w BLOB NOT NULL,
                                PRIMARY KEY (t, k)) WITHOUT ROWID;
             CREATE TABLE intended (t INTEGER NOT NULL, k BLOB NOT NULL, w BLOB NOT NULL,
                                    PRIMARY KEY (t, k)) WITHOUT ROWID;",
        )?;
        Ok(Spill {
            conn,
            names: Vec::new(),
            name_ids: HashMap::new(),
            has_rows: false,
            dir: tmp,
        })
    }

    /// Writes a batch in one transaction: a row's entry replaces the one on disk when it is
    /// whole, else is merged into it; an intended row is written unless one is there already.
    fn write(
        &mut self,
        rows: &[(&(u32, Vec<u8>), &RowWriters)],
        intended: &[(&(u32, Vec<u8>), &Writer)],
    ) -> Result<()> {
        let failed = |e| Error::scratch("move the writer index to disk", e);
        self.has_rows |= !rows.is_empty();
        let tx = self.conn.transaction().map_err(failed)?;
        {
            let mut get = tx.prepare_cached(GET_ROW).map_err(failed)?;
            let mut put = tx.prepare_cached(PUT_ROW).map_err(failed)?;
            let mut buf = Vec::new();
            for &((t, k), row) in rows {
                // Only an entry that is not whole needs the one on disk.
                let older = if row.whole {
                    None
                } else {
                    get.query_row((t, k), |r| r.get::<_, Packed>(0))
                        .optional()
                        .map_err(failed)?
                };
                buf.clear();
                match older {
                    Some(older) => {
                        let older = unpack_row(&older.0, &self.names).map_err(failed)?;
                        let merged = row.clone().onto(older);
                        pack_row(&merged, &mut self.name_ids, &mut self.names, &mut buf);
                    }
                    None => pack_row(row, &mut self.name_ids, &mut self.names, &mut buf),
                }
                put.execute((t, k, &buf)).map_err(failed)?;
            }
            let mut put = tx.prepare_cached(PUT_INTENDED).map_err(failed)?;
            for &((t, k), w) in intended {
                buf.clear();
                pack_writer(w, &mut self.name_ids, &mut self.names, &mut buf);
                put.execute((t, k, &buf)).map_err(failed)?;
            }
        }
        tx.commit().map_err(failed)?;
        Ok(())
    }

    /// Entries in the `rows` table.
    fn rows(&self) -> Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM rows", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| Error::scratch("read the writer index", e))
    }

    fn row(&self, (t, k): &(u32, Vec<u8>)) -> Result<Option<RowWriters>> {
        let failed = |e| Error::scratch("read the writer index", e);
        let packed = self
            .conn
            .prepare_cached(GET_ROW)
            .and_then(|mut s| s.query_row((t, k), |r| r.get::<_, Packed>(0)).optional())
            .map_err(failed)?;
        packed
            .map(|p| unpack_row(&p.0, &self.names))
            .transpose()
            .map_err(failed)
    }

    fn intended(&self, (t, k): &(u32, Vec<u8>)) -> Result<Option<Writer>> {
        let failed = |e| Error::scratch("read the writer index", e);
        let packed = self
            .conn
            .prepare_cached(GET_INTENDED)
            .and_then(|mut s| s.query_row((t, k), |r| r.get::<_, Packed>(0)).optional())
            .map_err(failed)?;
        packed
            .map(|p| {
                let mut bytes = p.0.as_slice();
                let w = unpack_writer(&mut bytes, &self.names)?;
                done(bytes)?;
                Ok(w)
            })
            .transpose()
            .map_err(failed)
    }
}

/// A packed entry as read from the spill.
struct Packed(Vec<u8>);

impl FromSql for Packed {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_blob().map(|b| Packed(b.to_vec()))
    }
}

// An entry is packed as LEB128 varints: the last writer; 0, or 1 and the inserting writer; the
// number of columns, then each column's position and writer. A writer is its sequence number's
// three parts (zigzag, as they are signed) and its name's id. Most are one or two bytes each,
// so an entry takes ~20 bytes where the memory's takes ~150.

fn intern(name: &Arc<str>, ids: &mut HashMap<Arc<str>, u32>, names: &mut Vec<Arc<str>>) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = names.len() as u32;
    names.push(name.clone());
    ids.insert(name.clone(), id);
    id
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(v: i64, out: &mut Vec<u8>) {
    put_varint(((v << 1) ^ (v >> 63)) as u64, out);
}

fn pack_writer(
    w: &Writer,
    ids: &mut HashMap<Arc<str>, u32>,
    names: &mut Vec<Arc<str>>,
    out: &mut Vec<u8>,
) {
    put_signed(w.seq.global, out);
    put_signed(w.seq.client, out);
    put_signed(w.seq.rebase_generation, out);
    put_varint(u64::from(intern(&w.name, ids, names)), out);
}

fn pack_row(
    row: &RowWriters,
    ids: &mut HashMap<Arc<str>, u32>,
    names: &mut Vec<Arc<str>>,
    out: &mut Vec<u8>,
) {
    pack_writer(&row.last, ids, names, out);
    match &row.inserted {
        Some(w) => {
            out.push(1);
            pack_writer(w, ids, names, out);
        }
        None => out.push(0),
    }
    put_varint(row.columns.len() as u64, out);
    for (i, w) in &row.columns {
        put_varint(*i as u64, out);
        pack_writer(w, ids, names, out);
    }
}

/// The spill's file holds what this run wrote and nothing else, yet a damaged file says so
/// as an error of the scratch work rather than a panic.
fn malformed() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        "malformed entry in the writer index file".into(),
    )
}

fn get_varint(bytes: &mut &[u8]) -> rusqlite::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or_else(malformed)?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(malformed())
}

fn get_signed(bytes: &mut &[u8]) -> rusqlite::Result<i64> {
    let v = get_varint(bytes)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn unpack_writer(bytes: &mut &[u8], names: &[Arc<str>]) -> rusqlite::Result<Writer> {
    let seq = SeqNum {
        global: get_signed(bytes)?,
        client: get_signed(bytes)?,
        rebase_generation: get_signed(bytes)?,
    };
    let name = usize::try_from(get_varint(bytes)?)
        .ok()
        .and_then(|id| names.get(id))
        .ok_or_else(malformed)?
        .clone();
    Ok(Writer { seq, name })
}

fn unpack_row(mut bytes: &[u8], names: &[Arc<str>]) -> rusqlite::Result<RowWriters> {
    let bytes = &mut bytes;
    let last = unpack_writer(bytes, names)?;
    let (&flag, rest) = bytes.split_first().ok_or_else(malformed)?;
    *bytes = rest;
    let inserted = match flag {
        0 => None,
        1 => Some(unpack_writer(bytes, names)?),
        _ => return Err(malformed()),
    };
    let n = get_varint(bytes)?;
    let mut columns = Vec::new();
    for _ in 0..n {
        let i = usize::try_from(get_varint(bytes)?).map_err(|_| malformed())?;
        columns.push((i, unpack_writer(bytes, names)?));
    }
    done(bytes)?;
    // On disk an entry is all that is known of its row.
    Ok(RowWriters {
        last,
        inserted,
        columns,
        whole: true,
    })
}

/// Trailing bytes mean the entry was not what was packed.
fn done(bytes: &[u8]) -> rusqlite::Result<()> {
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(malformed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A deterministic generator, so that a failing stream can be replayed.
    use crate::fuzz::Rng;

    const TABLES: [&str; 3] = ["todos", "users", "ui_state"];
    const NAMES: [&str; 4] = ["v1.TodoCreated", "v1.TodoCompleted", "v1.UserRenamed", "x"];
    const KEYS: usize = 12;
    const COLUMNS: usize = 4;

    fn key(rng: &mut Rng, table: &str) -> Vec<SqlValue> {
        key_of(table, rng.below(KEYS))
    }

    /// Keys of every shape the encoding knows: text, composite, null and integer.
    fn key_of(table: &str, k: usize) -> Vec<SqlValue> {
        match table {
            "todos" => vec![SqlValue::Text(format!("todo-{k}").into_bytes())],
            "users" => vec![
                SqlValue::Integer(k as i64 - 3),
                SqlValue::Text(b"a".to_vec()),
            ],
            _ if k == 0 => vec![SqlValue::Null],
            _ => vec![SqlValue::Integer(k as i64)],
        }
    }

    /// Every lookup of every row the stream can name gives the same answer in both indexes.
    fn assert_agree(a: &WriterIndex, b: &WriterIndex, rng: &mut Rng, at: usize) {
        for table in TABLES.iter().chain(&["never_written"]) {
            for k in 0..KEYS {
                let key = key_of(table, k);
                let what = format!("step {at}, {table} {key:?}");
                assert_eq!(
                    a.last_writer(table, &key).unwrap(),
                    b.last_writer(table, &key).unwrap(),
                    "last_writer at {what}"
                );
                assert_eq!(
                    a.intended(table, &key).unwrap(),
                    b.intended(table, &key).unwrap(),
                    "intended at {what}"
                );
                assert_eq!(
                    a.row(table, &key).unwrap().map(|r| normal(&r)),
                    b.row(table, &key).unwrap().map(|r| normal(&r)),
                    "entry at {what}"
                );
                let mut columns: Vec<usize> = (0..rng.below(COLUMNS + 2))
                    .map(|_| rng.below(COLUMNS + 1))
                    .collect();
                columns.dedup();
                assert_eq!(
                    a.last_writer_of_columns(table, &key, &columns).unwrap(),
                    b.last_writer_of_columns(table, &key, &columns).unwrap(),
                    "last_writer_of_columns({columns:?}) at {what}"
                );
            }
        }
        assert_eq!(a.len().unwrap(), b.len().unwrap(), "len at step {at}");
        assert_eq!(a.is_empty(), b.is_empty(), "is_empty at step {at}");
    }

    /// An entry as a lookup sees it: columns in order, without the bookkeeping of where it
    /// came from.
    fn normal(r: &RowWriters) -> (Writer, Option<Writer>, Vec<(usize, Writer)>) {
        let mut columns = r.columns.clone();
        columns.sort_by_key(|(i, _)| *i);
        (r.last.clone(), r.inserted.clone(), columns)
    }

    /// Feeds one random stream of inserts, updates (some moving the row to another key),
    /// deletes and intended rows into `indexes`, checking after every step that they agree.
    fn feed(seed: u64, steps: usize, indexes: &mut [WriterIndex]) {
        let mut rng = Rng(seed);
        let mut check = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        for step in 0..steps {
            let table = TABLES[rng.below(TABLES.len())];
            let writer = Writer {
                seq: SeqNum {
                    global: step as i64 / 3,
                    client: step as i64 % 3,
                    rebase_generation: rng.below(2) as i64,
                },
                name: Arc::from(NAMES[rng.below(NAMES.len())]),
            };
            let k = key(&mut rng, table);
            let kind = rng.below(10);
            if kind == 9 {
                for index in indexes.iter_mut() {
                    index.intend(table, &k, &writer).unwrap();
                }
                assert_agree(&indexes[0], &indexes[1], &mut check, step);
                continue;
            }
            let op = match kind {
                0..=2 => ChangeOp::Insert,
                3..=4 => ChangeOp::Delete,
                _ => ChangeOp::Update,
            };
            let old_key = (op == ChangeOp::Update && kind == 8).then(|| key(&mut rng, table));
            let columns: Vec<usize> = match op {
                ChangeOp::Update => (0..1 + rng.below(2)).map(|_| rng.below(COLUMNS)).collect(),
                _ => (0..COLUMNS).collect(),
            };
            let change = RowChange {
                table: Arc::from(table),
                op,
                key: k,
                old_key,
                columns,
                keyed: true,
                old: None,
                new: None,
            };
            for index in indexes.iter_mut() {
                index.record(&change, &writer).unwrap();
            }
            assert_agree(&indexes[0], &indexes[1], &mut check, step);
        }
    }

    #[test]
    fn a_spilled_index_answers_as_one_held_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for (seed, bound) in [(1, 1), (2, 2), (3, 3), (4, 7), (5, 40)] {
            let mut indexes = [
                WriterIndex::with_bound(None, usize::MAX),
                WriterIndex::with_bound(Some(dir.path().to_path_buf()), bound),
            ];
            feed(seed, 600, &mut indexes);
            assert!(indexes[0].spill.is_none());
            assert!(
                indexes[1].spill.is_some(),
                "bound {bound}: the stream never reached the disk"
            );
        }
    }

    #[test]
    fn an_update_of_a_row_on_disk_keeps_its_insert_and_other_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = WriterIndex::with_bound(Some(dir.path().to_path_buf()), 1);
        let w = |global, name: &str| Writer {
            seq: SeqNum {
                global,
                client: 0,
                rebase_generation: 0,
            },
            name: Arc::from(name),
        };
        let key = vec![SqlValue::Integer(7)];
        let change = |op, columns: Vec<usize>| RowChange {
            table: Arc::from("t"),
            op,
            key: key.clone(),
            old_key: None,
            columns,
            keyed: true,
            old: None,
            new: None,
        };
        index
            .record(&change(ChangeOp::Insert, vec![0, 1, 2]), &w(1, "created"))
            .unwrap();
        index
            .record(&change(ChangeOp::Update, vec![1]), &w(2, "renamed"))
            .unwrap();
        // A bound of one moves every entry to disk as soon as it is made.
        assert!(index.rows.is_empty());
        assert_eq!(index.last_writer("t", &key).unwrap(), Some(w(2, "renamed")));
        assert_eq!(
            index.last_writer_of_columns("t", &key, &[0]).unwrap(),
            Some(w(1, "created"))
        );
        assert_eq!(
            index.last_writer_of_columns("t", &key, &[0, 1]).unwrap(),
            Some(w(2, "renamed"))
        );
        // Held in memory until the next move, an update is merged with the disk's entry.
        let mut index = WriterIndex { bound: 2, ..index };
        index
            .record(&change(ChangeOp::Update, vec![2]), &w(3, "done"))
            .unwrap();
        assert!(!index.rows.is_empty());
        assert_eq!(
            index.last_writer_of_columns("t", &key, &[0]).unwrap(),
            Some(w(1, "created"))
        );
        assert_eq!(
            index.last_writer_of_columns("t", &key, &[1]).unwrap(),
            Some(w(2, "renamed"))
        );
        assert_eq!(
            index.last_writer_of_columns("t", &key, &[2]).unwrap(),
            Some(w(3, "done"))
        );
        assert_eq!(index.len().unwrap(), 1);
    }

    #[test]
    fn the_spill_file_lives_in_the_given_directory_and_goes_with_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let entries = || std::fs::read_dir(dir.path()).unwrap().count();
        let mut index = WriterIndex::with_bound(Some(dir.path().to_path_buf()), 2);
        let writer = Writer {
            seq: SeqNum::ROOT,
            name: Arc::from("e"),
        };
        index.intend("t", &[SqlValue::Integer(1)], &writer).unwrap();
        assert_eq!(entries(), 0, "one entry stays in memory");
        index.intend("t", &[SqlValue::Integer(2)], &writer).unwrap();
        assert_eq!(entries(), 1);
        drop(index);
        assert_eq!(entries(), 0);
    }

    #[test]
    fn a_spill_directory_that_cannot_be_made_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let mut index = WriterIndex::with_bound(Some(missing.clone()), 1);
        let writer = Writer {
            seq: SeqNum::ROOT,
            name: Arc::from("e"),
        };
        match index.intend("t", &[SqlValue::Integer(1)], &writer) {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn a_malformed_entry_is_an_error_not_a_panic() {
        let names: [Arc<str>; 1] = [Arc::from("e")];
        let mut ids = HashMap::new();
        let mut all = names.to_vec();
        let row = RowWriters {
            last: Writer {
                seq: SeqNum {
                    global: 300,
                    client: -1,
                    rebase_generation: i64::MAX,
                },
                name: names[0].clone(),
            },
            inserted: None,
            columns: vec![(
                5,
                Writer {
                    seq: SeqNum {
                        global: i64::MIN,
                        client: 0,
                        rebase_generation: 0,
                    },
                    name: names[0].clone(),
                },
            )],
            whole: true,
        };
        let mut packed = Vec::new();
        pack_row(&row, &mut ids, &mut all, &mut packed);
        assert_eq!(unpack_row(&packed, &all).unwrap(), row);
        for cut in 0..packed.len() {
            assert!(unpack_row(&packed[..cut], &all).is_err(), "cut at {cut}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack_row(&longer, &all).is_err());
        // A name id past the names known.
        assert!(unpack_row(&packed, &[]).is_err());
        assert!(unpack_row(&[0xff; 12], &all).is_err());
    }
}
