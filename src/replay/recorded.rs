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
use crate::replay::changes::{self, ColumnNames};
use crate::report::{ChangeSide, ChangeSides, ChangesetStats, Finding, FindingClass};
use crate::session::Changeset;
use crate::value::SqlValue;

/// Whether a state database holds recorded changesets, and how many.
pub fn count(conn: &Connection) -> u64 {
    conn.query_row(
        "SELECT count(*) FROM __livestore_session_changeset",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .unwrap_or(0)
}

/// A recorded row: the event's `(global, client)` pair and its changeset (NULL for no change).
type Recorded = ((i64, i64), Option<Vec<u8>>);

/// The query that reads the recorded changesets in replay order, for [`ChangesetCheck::new`].
pub const RECORDED_IN_ORDER: &str = "SELECT seqNumGlobal, seqNumClient, changeset FROM __livestore_session_changeset ORDER BY seqNumGlobal, seqNumClient, rowid";

/// Compares replayed events with their recorded changesets as the replay goes, walking the
/// recorded rows alongside the log (both are in sequence order).
pub struct ChangesetCheck<'a> {
    recorded: &'a Connection,
    replay: &'a Connection,
    cursor: rusqlite::Rows<'a>,
    peeked: Option<Recorded>,
    replay_names: ColumnNames,
    recorded_names: ColumnNames,
    /// Counts so far.
    pub stats: ChangesetStats,
    first: Option<Finding>,
}

impl<'a> ChangesetCheck<'a> {
    /// Compares with the changesets in `recorded`, read through `cursor` (the rows of
    /// [`RECORDED_IN_ORDER`] on that connection); column names of replayed rows come from
    /// `replay`.
    pub fn new(
        recorded: &'a Connection,
        replay: &'a Connection,
        cursor: rusqlite::Rows<'a>,
    ) -> ChangesetCheck<'a> {
        ChangesetCheck {
            recorded,
            replay,
            cursor,
            peeked: None,
            replay_names: ColumnNames::default(),
            recorded_names: ColumnNames::default(),
            stats: ChangesetStats {
                recorded: count(recorded),
                ..ChangesetStats::default()
            },
            first: None,
        }
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
    pub fn event(&mut self, ev: &Event, replayed: &[RowChange]) {
        let Some(recorded) = self.recorded_at(ev.seq) else {
            self.stats.not_recorded += 1;
            return;
        };
        self.stats.compared += 1;
        let ours = changes::net(replayed, self.replay, "main", &mut self.replay_names, true);
        let theirs =
            match changes::decode(&recorded, self.recorded, "main", &mut self.recorded_names) {
                Ok(t) => t,
                Err(e) => {
                    self.differs(
                        ev,
                        Vec::new(),
                        ours,
                        format!(
                            "LiveStore's recorded changeset for this event cannot be read ({e})"
                        ),
                    );
                    return;
                }
            };
        if theirs != ours {
            let summary = format!(
                "this event's changes differ from the changeset LiveStore recorded for it ({} recorded, {} replayed)",
                crate::text::count(theirs.len(), "row"),
                ours.len()
            );
            self.differs(ev, theirs, ours, summary);
        }
    }

    fn differs(
        &mut self,
        ev: &Event,
        theirs: Vec<changes::RowOp>,
        ours: Vec<changes::RowOp>,
        message: String,
    ) {
        self.stats.differing += 1;
        if self.first.is_some() {
            return;
        }
        let mut f = Finding::event(
            FindingClass::FirstDivergence,
            Some(ev.seq),
            Some(&ev.name),
            message,
        );
        f.args = Some(ev.args_json.clone());
        f.changes = Some(ChangeSides {
            expected: ChangeSide {
                label: "LiveStore recorded".into(),
                rows: theirs,
            },
            actual: ChangeSide {
                label: "replayed".into(),
                rows: ours,
            },
        });
        self.first = Some(f);
    }

    /// The `first-divergence` finding, if any event differed, with the count in its message.
    pub fn finish(self) -> (ChangesetStats, Option<Finding>) {
        let stats = self.stats;
        let first = self.first.map(|mut f| {
            if stats.differing > 1 {
                f.message.push_str(&format!(
                    "; {} of the {} compared events differ, this is the first",
                    stats.differing, stats.compared
                ));
            }
            f
        });
        (stats, first)
    }
}

/// For each wanted row, the last event that wrote it in LiveStore's run, read from every
/// recorded changeset in order (one streaming pass).
pub fn last_writers(
    recorded: &Connection,
    wanted: &HashSet<(String, Vec<u8>)>,
) -> HashMap<(String, Vec<u8>), SeqNum> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let Ok(mut stmt) = recorded.prepare(
        "SELECT seqNumGlobal, seqNumClient, seqNumRebaseGeneration, changeset FROM __livestore_session_changeset WHERE changeset IS NOT NULL ORDER BY seqNumGlobal, seqNumClient, rowid",
    ) else {
        return out;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return out;
    };
    while let Ok(Some(row)) = rows.next() {
        let (Ok(g), Ok(c), Ok(r), Ok(blob)) = (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, Vec<u8>>(3),
        ) else {
            continue;
        };
        let Ok(changes) = Changeset(blob).changes() else {
            continue;
        };
        for ch in changes {
            let key = (ch.table.clone(), SqlValue::encode_key(&ch.key()));
            if wanted.contains(&key) {
                out.insert(
                    key,
                    SeqNum {
                        global: g,
                        client: c,
                        rebase_generation: r,
                    },
                );
            }
        }
    }
    out
}
