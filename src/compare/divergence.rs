//! A comparison's differences as findings, each blamed on the event that wrote what differs.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use crate::compare::RowDivergence;
use crate::compare::causes::Causes;
use crate::error::Result;
use crate::eventlog::{EventLog, SeqNum};
use crate::replay::recorded;
use crate::replay::writers::WriterIndex;
use crate::report::{Divergence, EventRef, Finding, FindingClass, Findings};
use crate::sqlite;
use crate::value::SqlValue;

/// Completes every state divergence once the comparison is done: the args of the event it is
/// filed under; for each differing column, the event that last wrote it in LiveStore's own run
/// (from the changesets LiveStore recorded, when `recorded` has them) and whether any event
/// wrote the recorded value at all; and the root cause it follows from, if one explains it.
pub(crate) fn attribute(
    log: &EventLog,
    recorded: Option<&Connection>,
    causes: &Causes,
    findings: &mut Findings,
    first: usize,
) -> Result<()> {
    let key_of = |f: &Finding| {
        (
            f.table.clone().unwrap_or_default(),
            SqlValue::encode_key(f.pk.as_deref().unwrap_or_default()),
        )
    };
    let recorded = recorded.filter(|c| recorded::count(c) > 0);
    // Each divergent row, with the columns whose writers are asked for.
    let mut wanted: HashMap<(String, Vec<u8>), HashSet<String>> = HashMap::new();
    let mut divergent = false;
    for f in findings.iter_from(first) {
        if f.class != FindingClass::StateDivergence {
            continue;
        }
        divergent = true;
        if recorded.is_none() || f.pk.is_none() {
            continue;
        }
        let columns = wanted.entry(key_of(&f)).or_default();
        if f.divergence == Some(Divergence::RowDiffers) {
            columns.extend(f.columns.iter().map(|c| c.column.clone()));
        }
    }
    findings.check()?;
    if !divergent {
        return Ok(());
    }
    let histories = recorded.map(|c| recorded::row_histories(c, &wanted));
    let mut names: HashMap<SeqNum, String> = HashMap::new();
    let mut name_of = |seq: SeqNum| -> Result<String> {
        if let Some(n) = names.get(&seq) {
            return Ok(n.clone());
        }
        let n = log
            .event_at(seq.global, seq.client)?
            .map(|e| e.name)
            .unwrap_or_default();
        names.insert(seq, n.clone());
        Ok(n)
    };
    findings.update_from(first, |f| {
        if f.class != FindingClass::StateDivergence {
            return Ok(());
        }
        if let Some(seq) = f.seq() {
            f.args = log.event_at(seq.global, seq.client)?.map(|e| e.args_json);
        }
        let Some(pk) = f.pk.clone() else {
            // A table or column on one side only: a root of its own.
            return Ok(());
        };
        let table = f.table.clone().unwrap_or_default();
        let history = histories.as_ref().and_then(|h| h.get(&key_of(f)));
        match (&histories, history) {
            (Some(_), Some(h)) if f.divergence == Some(Divergence::RowDiffers) => {
                let mut unknown = Vec::new();
                let mut outside = Vec::new();
                for c in &mut f.columns {
                    match h.columns.get(&c.column) {
                        Some((seq, value)) => {
                            c.recorded_writer = Some(EventRef::new(*seq, name_of(*seq)?));
                            c.outside_log = !value.same(&c.expected);
                            if c.outside_log {
                                outside.push(c.column.clone());
                            }
                        }
                        None => unknown.push(c.column.clone()),
                    }
                }
                let writers: Vec<String> = f
                    .columns
                    .iter()
                    .filter(|c| !c.outside_log)
                    .filter_map(|c| c.recorded_writer.as_ref())
                    .map(|w| format!("{} ({})", w.seq(), w.name))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !writers.is_empty() {
                    f.message.push_str(&format!(
                        "; in LiveStore's run by {}",
                        writers.join(", ")
                    ));
                }
                if !outside.is_empty() {
                    f.message.push_str(&format!(
                        "; no event wrote the recorded value of {}: the state changed outside the log",
                        outside.join(", ")
                    ));
                }
                if !unknown.is_empty() {
                    f.message.push_str(&format!(
                        "; LiveStore's changesets never wrote {} of this row",
                        unknown.join(", ")
                    ));
                }
            }
            (Some(_), Some(h)) => {
                if let Some(seq) = h.last {
                    let name = name_of(seq)?;
                    f.message
                        .push_str(&format!("; LiveStore last wrote it at {seq} ({name})"));
                    f.recorded_writer = Some(EventRef::new(seq, name));
                }
            }
            (Some(_), None) => f.message.push_str(
                "; LiveStore kept no changeset that wrote this row (trimmed below the sync head?), so its writer there is unknown",
            ),
            (None, _) => {}
        }
        let columns: Vec<&str> = f.columns.iter().map(|c| c.column.as_str()).collect();
        let outside_only = !f.columns.is_empty() && f.columns.iter().all(|c| c.outside_log);
        if !outside_only {
            f.caused_by = causes.root_of(&table, &pk, &columns);
        }
        Ok(())
    })
}

fn show_key(d: &RowDivergence) -> String {
    let vals: Vec<String> = d.key.iter().map(ToString::to_string).collect();
    if d.key_columns.len() == 1 {
        format!("{}[{}]", d.table, vals.join(", "))
    } else {
        let pairs: Vec<String> = d
            .key_columns
            .iter()
            .zip(&vals)
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        format!("{}[{}]", d.table, pairs.join(", "))
    }
}

/// Positions of columns in the replayed tables, for per-column blame.
#[derive(Default)]
pub(crate) struct ColumnPositions(std::collections::HashMap<String, Vec<String>>);

impl ColumnPositions {
    /// The positions of `d`'s differing columns in `conn`'s `main` table, one per column
    /// (`None` for a column the replayed table lacks).
    pub(crate) fn of(&mut self, conn: &Connection, d: &RowDivergence) -> Vec<Option<usize>> {
        if d.columns.is_empty() {
            return Vec::new();
        }
        let names = self.0.entry(d.table.clone()).or_insert_with(|| {
            sqlite::table_columns(conn, "main", &d.table)
                .map(|cols| cols.into_iter().map(|c| c.name).collect())
                .unwrap_or_default()
        });
        d.columns
            .iter()
            .map(|c| names.iter().position(|n| *n == c.column))
            .collect()
    }
}

/// How the two sides of a comparison are named in messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sides {
    /// The expected side, e.g. "the recorded state".
    pub expected: &'static str,
    /// The actual side, e.g. "the replay".
    pub actual: &'static str,
}

impl Sides {
    /// A replay compared with a recorded snapshot.
    pub(crate) const REPLAY: Sides = Sides {
        expected: "the recorded state",
        actual: "the replay",
    };
    /// `rehearse diff A B`.
    pub(crate) const DIFF: Sides = Sides {
        expected: "A",
        actual: "B",
    };
}

/// Turns a comparison result into a finding, blamed on the event that last wrote the row (for
/// a differing row: the last event that wrote one of the differing columns, whose positions in
/// the replayed table are `columns`; each column names its own last writer). Fails only when
/// the writer index cannot be read from its file.
pub(crate) fn divergence_finding(
    mut d: RowDivergence,
    writers: &WriterIndex,
    columns: &[Option<usize>],
    sides: Sides,
) -> Result<Finding> {
    let found: Vec<usize> = columns.iter().flatten().copied().collect();
    let (row_writer, writer) = if d.pk_in_column_order.is_empty() {
        (None, None)
    } else {
        let row = writers.last_writer(&d.table, &d.pk_in_column_order)?;
        let cols = if found.is_empty() {
            row.clone()
        } else {
            writers.last_writer_of_columns(&d.table, &d.pk_in_column_order, &found)?
        };
        for (c, pos) in d.columns.iter_mut().zip(columns) {
            c.replay_writer = match pos {
                Some(p) => writers
                    .last_writer_of_columns(&d.table, &d.pk_in_column_order, &[*p])?
                    .map(|w| EventRef::new(w.seq, &*w.name)),
                None => None,
            };
        }
        (row, cols)
    };
    let Sides { expected, actual } = sides;
    let only_in = |what: String, first: &str, second: &str| {
        format!("{what} is in {first} but not in {second}")
    };
    let message = match d.kind {
        Divergence::RowDiffers => {
            let cols: Vec<&str> = d.columns.iter().map(|c| c.column.as_str()).collect();
            let mut m = format!("{} differs in {}", show_key(&d), cols.join(", "));
            if let Some(w) = &writer {
                m.push_str(&format!("; written in {actual} by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::RowMissing => {
            let mut m = only_in(show_key(&d), expected, actual);
            if let Some(w) = &row_writer {
                m.push_str(&format!("; removed in {actual} by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::RowExtra => {
            let mut m = only_in(show_key(&d), actual, expected);
            if let Some(w) = &row_writer {
                m.push_str(&format!("; last written by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::TableMissing => only_in(format!("table {}", d.table), expected, actual),
        Divergence::TableExtra => only_in(format!("table {}", d.table), actual, expected),
        Divergence::ColumnMissing => only_in(
            format!("column {}.{}", d.table, d.column.as_deref().unwrap_or("")),
            expected,
            actual,
        ),
        Divergence::ColumnExtra => only_in(
            format!("column {}.{}", d.table, d.column.as_deref().unwrap_or("")),
            actual,
            expected,
        ),
    };
    let writer = match d.kind {
        Divergence::RowDiffers => writer,
        _ => row_writer,
    };
    // An event that was not applied but meant to write the row, after whoever last wrote it,
    // is the likelier cause.
    let intended = if d.pk_in_column_order.is_empty() {
        None
    } else {
        writers
            .intended(&d.table, &d.pk_in_column_order)?
            .filter(|i| writer.as_ref().is_none_or(|w| i.seq > w.seq))
    };
    let mut message = message;
    if let Some(i) = &intended {
        message.push_str(&format!(
            "; {} ({}) meant to write it but was not applied",
            i.seq, i.name
        ));
    }
    let writer = intended.or(writer);
    let row_level = matches!(
        d.kind,
        Divergence::RowDiffers | Divergence::RowMissing | Divergence::RowExtra
    );
    let mut f = Finding::event(
        FindingClass::StateDivergence,
        writer.as_ref().map(|w| w.seq),
        writer.as_ref().map(|w| &*w.name),
        message,
    );
    f.table = Some(d.table);
    f.divergence = Some(d.kind);
    if row_level {
        f.key_columns = Some(d.key_columns);
        f.key = Some(d.key);
        if !d.pk_in_column_order.is_empty() {
            f.pk = Some(d.pk_in_column_order);
        }
    }
    f.columns = d.columns;
    f.column = d.column;
    Ok(f)
}
