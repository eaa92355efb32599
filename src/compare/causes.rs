//! Root causes and their consequences: which findings to fix, and which only follow from them.
//!
//! One event that does not replay as LiveStore ran it usually leaves a trail: later events read
//! rows it should have written and write something else in turn, and the final state differs
//! in rows it never touched itself. Reporting each link of that trail as a problem of its own
//! buries the one change to make. So the check follows divergence through the log as it
//! replays:
//!
//! - an event that was not applied (unknown, invalid args, a failing materializer, a broken
//!   log) is a root cause; the rows LiveStore's record says it changed, and the rows its
//!   statements meant to change, are *diverged* by it;
//! - an applied event whose changes differ from LiveStore's recorded changeset is a root cause
//!   when the rows it touched had not diverged before it ran; otherwise it is a consequence of
//!   the root that diverged them. Either way the rows and columns it wrote differently are
//!   diverged, attributed to that root;
//! - a row or column that both runs write alike again is back in agreement.
//!
//! A final state divergence of a diverged row or column is then a consequence of the root that
//! diverged it; one that no root explains is a root of its own (a state changed outside the
//! log, or a difference the record could not show). The map holds an entry per diverged row:
//! bounded by the state, not by the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::eventlog::Event;
use crate::replay::changes::RowOp;
use crate::replay::recorded::Compared;
use crate::report::{Cause, ChangeSide, ChangeSides, Finding, FindingClass, Findings};
use crate::text::count;
use crate::value::SqlValue;

/// An index into [`Causes::roots`]: roots are numbered in log order, so the smallest is the
/// earliest.
type RootId = usize;

/// What diverged in one row, and which root diverged it.
#[derive(Debug, Default)]
struct Diverged {
    /// The row as a whole (it exists on one side only, or its operation differs).
    row: Option<RootId>,
    /// Single columns.
    columns: HashMap<String, RootId>,
}

impl Diverged {
    fn earliest(&self) -> Option<RootId> {
        self.row
            .into_iter()
            .chain(self.columns.values().copied())
            .min()
    }

    fn is_empty(&self) -> bool {
        self.row.is_none() && self.columns.is_empty()
    }
}

/// The divergence followed through one replay.
#[derive(Debug, Default)]
pub(crate) struct Causes {
    diverged: HashMap<(String, Vec<u8>), Diverged>,
    roots: Vec<Cause>,
    findings: Findings,
}

impl Causes {
    /// No causes yet; findings spill (when they are many) under `dir`.
    pub(crate) fn in_dir(dir: Option<std::path::PathBuf>) -> Causes {
        Causes {
            findings: Findings::in_dir(dir),
            ..Causes::default()
        }
    }

    fn root(&mut self, cause: Cause) -> RootId {
        self.roots.push(cause);
        self.roots.len() - 1
    }

    /// An event the replay did not apply: a root cause (the finding that says why it was not
    /// applied), diverging the rows LiveStore's record says it changed (`recorded`) and the
    /// rows its statements meant to change (`intended`).
    pub(crate) fn not_applied(
        &mut self,
        ev: &Event,
        why: Option<FindingClass>,
        recorded: Option<&[RowOp]>,
        intended: &[(Arc<str>, Vec<SqlValue>)],
    ) {
        // The finding that kept it out ([`crate::replay::why_not_applied`]).
        let Some(why) = why else {
            return;
        };
        if recorded.is_none_or(<[RowOp]>::is_empty) && intended.is_empty() {
            // It diverged nothing that could name it as a root: no root to remember (one per
            // event, where every event is flagged).
            return;
        }
        let id = self.root(Cause::new(why, ev.seq, ev.name.clone()));
        for op in recorded.unwrap_or_default() {
            let d = self.entry(&op.table, &op.key);
            match op.op {
                "update" => {
                    for col in op.new.keys() {
                        d.columns.entry(col.clone()).or_insert(id);
                    }
                }
                _ => {
                    d.row.get_or_insert(id);
                }
            }
        }
        for (table, key) in intended {
            self.entry(table, key).row.get_or_insert(id);
        }
    }

    /// Whether nothing has diverged so far: an event whose changes agree with LiveStore's
    /// record then changes nothing here, and need not be decoded.
    pub(crate) fn quiet(&self) -> bool {
        self.diverged.is_empty()
    }

    /// An applied event, as it compared with LiveStore's record of it.
    pub(crate) fn compared(&mut self, ev: &Event, compared: Compared) {
        match compared {
            Compared::NotRecorded => {}
            Compared::Same(ops) => self.follow(&ops, &ops, None),
            Compared::Unreadable { error } => {
                // A root that cannot say what it changed: nothing is followed from it.
                let mut f = Finding::event(
                    FindingClass::FirstDivergence,
                    Some(ev.seq),
                    Some(&ev.name),
                    format!(
                        "LiveStore's recorded changeset for this event cannot be read ({error})"
                    ),
                );
                f.args = Some(ev.args_json.clone());
                self.findings.push_spilling(f);
            }
            Compared::Differ { theirs, ours } => self.differ(ev, theirs, ours),
        }
    }

    fn differ(&mut self, ev: &Event, theirs: Vec<RowOp>, ours: Vec<RowOp>) {
        // Was any row it touched diverged before it ran, and by which root?
        let inherited = theirs
            .iter()
            .chain(&ours)
            .filter_map(|op| {
                self.diverged
                    .get(&(op.table.clone(), SqlValue::encode_key(&op.key)))
                    .and_then(Diverged::earliest)
            })
            .min();
        let summary = format!(
            "this event's changes differ from the changeset LiveStore recorded for it ({} recorded, {} replayed)",
            count(theirs.len(), "row"),
            ours.len()
        );
        let mut f = Finding::event(
            FindingClass::FirstDivergence,
            Some(ev.seq),
            Some(&ev.name),
            summary,
        );
        let id = match inherited {
            Some(root) => {
                let cause = self.roots[root].clone();
                f.message.push_str(&format!(
                    ": the rows it touched had already diverged, after {} ({})",
                    cause.seq(),
                    cause.name
                ));
                f.caused_by = Some(cause);
                root
            }
            None => {
                if inputs_differ(&theirs, &ours) {
                    f.message.push_str(
                        "; the rows it touched already differed before it ran, and no earlier event explains it",
                    );
                }
                f.args = Some(ev.args_json.clone());
                self.root(Cause::new(
                    FindingClass::FirstDivergence,
                    ev.seq,
                    ev.name.clone(),
                ))
            }
        };
        self.follow(&theirs, &ours, Some(id));
        if f.caused_by.is_none() {
            f.changes = Some(Box::new(ChangeSides {
                expected: ChangeSide {
                    label: "LiveStore recorded".into(),
                    rows: theirs,
                },
                actual: ChangeSide {
                    label: "replayed".into(),
                    rows: ours,
                },
            }));
        }
        self.findings.push_spilling(f);
    }

    /// Updates what is diverged after an event: what both runs wrote alike is back in
    /// agreement, what they wrote differently is diverged by `root`.
    fn follow(&mut self, theirs: &[RowOp], ours: &[RowOp], root: Option<RootId>) {
        // Without a root an event only brings diverged rows back into agreement.
        if root.is_none() && self.diverged.is_empty() {
            return;
        }
        type Sides<'o> = (Option<&'o RowOp>, Option<&'o RowOp>);
        let mut rows: BTreeMap<(String, Vec<u8>), Sides> = BTreeMap::new();
        for op in theirs {
            rows.entry((op.table.clone(), SqlValue::encode_key(&op.key)))
                .or_default()
                .0 = Some(op);
        }
        for op in ours {
            rows.entry((op.table.clone(), SqlValue::encode_key(&op.key)))
                .or_default()
                .1 = Some(op);
        }
        for (key, pair) in rows {
            if root.is_none() && !self.diverged.contains_key(&key) {
                continue;
            }
            let d = self.diverged.entry(key.clone()).or_default();
            match pair {
                (Some(t), Some(o)) if t.op == o.op => match t.op {
                    "delete" => *d = Diverged::default(),
                    op => {
                        if op == "insert" {
                            d.row = None;
                        }
                        let columns = t.new.keys().chain(o.new.keys());
                        for col in columns {
                            let same = match (t.new.get(col), o.new.get(col)) {
                                (Some(a), Some(b)) => a.same(b),
                                _ => false,
                            };
                            match (same, root) {
                                (true, _) => {
                                    d.columns.remove(col);
                                }
                                (false, Some(r)) => {
                                    d.columns.insert(col.clone(), r);
                                }
                                (false, None) => {}
                            }
                        }
                    }
                },
                _ => {
                    if let Some(r) = root {
                        d.row = Some(r);
                    }
                }
            }
            if d.is_empty() {
                self.diverged.remove(&key);
            }
        }
    }

    fn entry(&mut self, table: &str, key: &[SqlValue]) -> &mut Diverged {
        self.diverged
            .entry((table.to_string(), SqlValue::encode_key(key)))
            .or_default()
    }

    /// The root that diverged a row of `table` with primary key `key` (in column order): for
    /// a row that differs, in one of `columns`; for a row on one side only, in any way.
    pub(crate) fn root_of(&self, table: &str, key: &[SqlValue], columns: &[&str]) -> Option<Cause> {
        let d = self
            .diverged
            .get(&(table.to_string(), SqlValue::encode_key(key)))?;
        let id = if columns.is_empty() {
            d.earliest()
        } else {
            columns
                .iter()
                .filter_map(|c| d.columns.get(*c).copied())
                .chain(d.row)
                .min()
        }?;
        self.roots.get(id).cloned()
    }

    /// Takes the `first-divergence` findings out, roots and consequences, in log order (the
    /// roots stay known for [`Causes::root_of`]), so that they are not held twice.
    pub(crate) fn take_findings(&mut self) -> Findings {
        std::mem::take(&mut self.findings)
    }
}

/// Whether the two sides' values before the event differ on a column both recorded: the rows
/// it read were not the same.
fn inputs_differ(theirs: &[RowOp], ours: &[RowOp]) -> bool {
    theirs.iter().any(|t| {
        ours.iter()
            .filter(|o| o.table == t.table && o.key == t.key)
            .any(|o| {
                t.old
                    .iter()
                    .any(|(col, v)| o.old.get(col).is_some_and(|w| !v.same(w)))
            })
    })
}
