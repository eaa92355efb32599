//! LiveStore's own record of its run: the changeset it stored for every event it materialized
//! (`__livestore_session_changeset`, FORMAT.md §4.4).
//!
//! Where those rows exist, each replayed event's changes are held against the recorded ones,
//! decoded and in canonical order; the first event that differs is reported as
//! `first-divergence`, which pins a divergence to its event even when the final states happen
//! to agree. The same record says which event last wrote a row in LiveStore's run, for blame.
//! With a sync backend LiveStore trims the rows below the sync head, so the report says how
//! many events could be compared.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use crate::eventlog::{Event, SeqNum};
use crate::replay::capture::RowChange;
use crate::replay::changes::{self, ColumnNames, RowOp};
use crate::report::ChangesetStats;
use crate::session::Changeset;
use crate::value::SqlValue;

/// The names LiveStore gives its table of per-event changesets: 0.4's, and the name later
/// versions give the same rows (without the `debug` column).
pub(crate) const TABLES: [&str; 2] = [
    "__livestore_session_changeset",
    "__livestore_materialization_journal",
];

/// The table of per-event changesets a state database holds, if any.
pub(crate) fn table(conn: &Connection) -> Option<&'static str> {
    TABLES.into_iter().find(|t| {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [t],
            |_| Ok(()),
        )
        .is_ok()
    })
}

/// Whether a state database holds recorded changesets, and how many.
pub(crate) fn count(conn: &Connection) -> u64 {
    let Some(table) = table(conn) else {
        return 0;
    };
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .unwrap_or(0)
}

/// A recorded row: the event's `(global, client)` pair and its changeset (NULL for no change).
type Recorded = ((i64, i64), Option<Vec<u8>>);

/// The query that reads the recorded changesets of `conn` in replay order, for
/// [`ChangesetCheck::new`].
pub(crate) fn in_order(conn: &Connection) -> String {
    let table = table(conn).unwrap_or(TABLES[0]);
    format!(
        "SELECT seqNumGlobal, seqNumClient, changeset FROM {table} ORDER BY seqNumGlobal, seqNumClient, rowid"
    )
}

/// How one replayed event compared with LiveStore's record of it.
#[derive(Debug)]
pub(crate) enum Compared {
    /// LiveStore kept no changeset for it (trimmed below the sync head).
    NotRecorded,
    /// The same row operations on both sides.
    Same(Vec<RowOp>),
    /// Different row operations.
    Differ {
        /// LiveStore's.
        theirs: Vec<RowOp>,
        /// The replay's.
        ours: Vec<RowOp>,
    },
    /// LiveStore's changeset for it cannot be decoded.
    Unreadable {
        /// Why.
        error: String,
    },
}

/// Walks the recorded changesets alongside the log (both are in sequence order) and decodes
/// the one of each event the replay reaches.
pub(crate) struct ChangesetCheck<'a> {
    recorded: &'a Connection,
    cursor: rusqlite::Rows<'a>,
    peeked: Option<Recorded>,
    replay_names: ColumnNames,
    recorded_names: ColumnNames,
    /// Counts so far.
    pub stats: ChangesetStats,
}

impl<'a> ChangesetCheck<'a> {
    /// Compares with the changesets in `recorded`, read through `cursor` (the rows of
    /// [`in_order`] on that connection); `replay_names` names the columns of the replayed
    /// tables ([`ColumnNames::read_all`] of the scratch database, whose connection stays with
    /// the replay).
    pub(crate) fn new(
        recorded: &'a Connection,
        replay_names: ColumnNames,
        cursor: rusqlite::Rows<'a>,
    ) -> ChangesetCheck<'a> {
        ChangesetCheck {
            recorded,
            cursor,
            peeked: None,
            replay_names,
            recorded_names: ColumnNames::default(),
            stats: ChangesetStats {
                recorded: count(recorded),
                ..ChangesetStats::default()
            },
        }
    }

    /// The replayed tables' column names from now on (the schema changed during the replay).
    pub(crate) fn rename(&mut self, replay_names: ColumnNames) {
        self.replay_names = replay_names;
    }

    /// The recorded changeset of the event at `seq`, skipping recorded rows before it.
    fn recorded_at(&mut self, seq: SeqNum) -> Option<Changeset> {
        let want = seq.pair();
        loop {
            if self.peeked.is_none() {
                let row = self.cursor.next().ok()??;
                let pair = (row.get::<_, i64>(0).ok()?, row.get::<_, i64>(1).ok()?);
                let blob = row.get::<_, Option<Vec<u8>>>(2).ok()?;
                self.peeked = Some((pair, blob));
            }
            let (pair, _) = self.peeked.as_ref()?;
            match pair.cmp(&want) {
                std::cmp::Ordering::Less => self.peeked = None,
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Equal => {
                    let (_, blob) = self.peeked.take()?;
                    return Some(Changeset(blob.unwrap_or_default()));
                }
            }
        }
    }

    /// Holds one applied event's changes (captured with values) against the recorded ones.
    /// With `quiet` (nothing has diverged so far, so an event that agrees changes nothing
    /// downstream), an event that agrees is [`Compared::Same`] without its row operations:
    /// the usual case is then checked in place, without decoding or naming anything.
    pub(crate) fn event(&mut self, ev: &Event, replayed: &[RowChange], quiet: bool) -> Compared {
        let Some(recorded) = self.recorded_at(ev.seq) else {
            self.stats.not_recorded += 1;
            return Compared::NotRecorded;
        };
        self.stats.compared += 1;
        if quiet {
            let (ours, theirs, conn) = (
                &mut self.replay_names,
                &mut self.recorded_names,
                self.recorded,
            );
            let same = changes::same_as_recorded(replayed, &recorded, |table| {
                ours.of(None, "main", table) == theirs.of(Some(conn), "main", table)
            });
            if same {
                // Every test run holds the quick check to the full comparison.
                #[cfg(debug_assertions)]
                {
                    let ours = changes::net_known(replayed, &mut self.replay_names, true);
                    let theirs =
                        changes::decode(&recorded, self.recorded, "main", &mut self.recorded_names);
                    assert_eq!(theirs, Ok(ours), "the quick check disagrees at {}", ev.seq);
                }
                return Compared::Same(Vec::new());
            }
        }
        let ours = changes::net_known(replayed, &mut self.replay_names, true);
        match changes::decode(&recorded, self.recorded, "main", &mut self.recorded_names) {
            Ok(theirs) if theirs == ours => Compared::Same(ours),
            Ok(theirs) => {
                self.stats.differing += 1;
                Compared::Differ { theirs, ours }
            }
            Err(error) => {
                self.stats.differing += 1;
                Compared::Unreadable { error }
            }
        }
    }

    /// What LiveStore's record says an event the replay did not apply changed, if it kept a
    /// readable changeset for it.
    pub(crate) fn not_applied(&mut self, ev: &Event) -> Option<Vec<RowOp>> {
        let recorded = self.recorded_at(ev.seq)?;
        changes::decode(&recorded, self.recorded, "main", &mut self.recorded_names).ok()
    }

    /// The counts.
    pub(crate) fn finish(self) -> ChangesetStats {
        self.stats
    }
}

/// What LiveStore's record says about one row: the last event that changed it, and for each
/// column the last event that wrote it and the value it wrote.
#[derive(Debug, Default, Clone)]
pub(crate) struct RowHistory {
    /// The last event that changed the row at all (a delete included).
    pub last: Option<SeqNum>,
    /// Per column: the last event that wrote it (an insert writes every column) and the value.
    pub columns: HashMap<String, (SeqNum, SqlValue)>,
}

/// For each wanted row (table, encoded primary key in column order), its history in
/// LiveStore's own run, read from every recorded changeset in order (one streaming pass).
/// Only the columns wanted for a row are kept (none: only its last writer), so that a state
/// where every row diverges is not copied whole into memory.
pub(crate) fn row_histories(
    recorded: &Connection,
    wanted: &HashMap<(String, Vec<u8>), HashSet<String>>,
) -> HashMap<(String, Vec<u8>), RowHistory> {
    let mut out: HashMap<(String, Vec<u8>), RowHistory> = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let table = table(recorded).unwrap_or(TABLES[0]);
    let Ok(mut stmt) = recorded.prepare(&format!(
        "SELECT seqNumGlobal, seqNumClient, seqNumRebaseGeneration, changeset FROM {table} WHERE changeset IS NOT NULL ORDER BY seqNumGlobal, seqNumClient, rowid"
    )) else {
        return out;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return out;
    };
    let mut names = ColumnNames::default();
    while let Ok(Some(row)) = rows.next() {
        let (Ok(g), Ok(c), Ok(r), Ok(blob)) = (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, Vec<u8>>(3),
        ) else {
            continue;
        };
        let seq = SeqNum {
            global: g,
            client: c,
            rebase_generation: r,
        };
        let changeset = Changeset(blob);
        // Decoding with column names costs more than finding the rows: only events that
        // touch a wanted row are decoded.
        let Ok(raw) = changeset.changes() else {
            continue;
        };
        if !raw
            .iter()
            .any(|ch| wanted.contains_key(&(ch.table.clone(), SqlValue::encode_key(&ch.key()))))
        {
            continue;
        }
        let Ok(ops) = changes::decode(&changeset, recorded, "main", &mut names) else {
            continue;
        };
        for op in ops {
            let key = (op.table.clone(), SqlValue::encode_key(&op.key));
            let Some(columns) = wanted.get(&key) else {
                continue;
            };
            let h = out.entry(key).or_default();
            h.last = Some(seq);
            match op.op {
                "delete" => h.columns.clear(),
                _ => {
                    for (col, v) in op.new {
                        if columns.contains(&col) {
                            h.columns.insert(col, (seq, v));
                        }
                    }
                }
            }
        }
    }
    out
}
