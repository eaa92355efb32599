//! A comparison's differences as findings, each blamed on the event that wrote what differs.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use crate::compare::RowDivergence;
use crate::error::Result;
use crate::eventlog::EventLog;
use crate::replay::recorded;
use crate::replay::writers::WriterIndex;
use crate::report::{Divergence, EventRef, Finding, FindingClass};
use crate::sqlite;
use crate::value::SqlValue;

/// Adds to every divergent row the args of the event blamed for it and, where LiveStore
/// recorded changesets, the event that last wrote the row in LiveStore's own run.
pub fn attribute(log: &EventLog, recorded: &Connection, findings: &mut [Finding]) -> Result<()> {
    let divergent: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.class == FindingClass::StateDivergence && f.key.is_some())
        .map(|(i, _)| i)
        .collect();
    if divergent.is_empty() {
        return Ok(());
    }
    let key_of = |f: &Finding| {
        (
            f.table.clone().unwrap_or_default(),
            SqlValue::encode_key(f.key.as_deref().unwrap_or_default()),
        )
    };
    let wanted: HashSet<(String, Vec<u8>)> =
        divergent.iter().map(|&i| key_of(&findings[i])).collect();
    let writers = if recorded::count(recorded) > 0 {
        recorded::last_writers(recorded, &wanted)
    } else {
        HashMap::new()
    };
    for i in divergent {
        let f = &mut findings[i];
        if let Some(seq) = f.seq() {
            f.args = log.event_at(seq.global, seq.client)?.map(|e| e.args_json);
        }
        if let Some(seq) = writers.get(&key_of(f)) {
            let name = log
                .event_at(seq.global, seq.client)?
                .map(|e| e.name)
                .unwrap_or_default();
            f.message
                .push_str(&format!("; LiveStore last wrote it at {seq} ({name})"));
            f.recorded_writer = Some(EventRef::new(*seq, name));
        }
    }
    Ok(())
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
pub struct ColumnPositions(std::collections::HashMap<String, Vec<String>>);

impl ColumnPositions {
    /// The positions of `d`'s differing columns in `conn`'s `main` table.
    pub fn of(&mut self, conn: &Connection, d: &RowDivergence) -> Vec<usize> {
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
            .filter_map(|c| names.iter().position(|n| *n == c.column))
            .collect()
    }
}

/// How the two sides of a comparison are named in messages.
#[derive(Debug, Clone, Copy)]
pub struct Sides {
    /// The expected side, e.g. "the recorded state".
    pub expected: &'static str,
    /// The actual side, e.g. "the replay".
    pub actual: &'static str,
}

impl Sides {
    /// A replay compared with a recorded snapshot.
    pub const REPLAY: Sides = Sides {
        expected: "the recorded state",
        actual: "the replay",
    };
    /// `rehearse diff A B`.
    pub const DIFF: Sides = Sides {
        expected: "A",
        actual: "B",
    };
}

/// Turns a comparison result into a finding, blamed on the event that last wrote the row (for
/// a differing row: the last event that wrote one of the differing columns, whose positions in
/// the replayed table are `columns`).
pub fn divergence_finding(
    d: RowDivergence,
    writers: &WriterIndex,
    columns: &[usize],
    sides: Sides,
) -> Finding {
    let (row_writer, writer) = if d.pk_in_column_order.is_empty() {
        (None, None)
    } else {
        let row = writers.last_writer(&d.table, &d.pk_in_column_order);
        let cols = if columns.is_empty() {
            row
        } else {
            writers.last_writer_of_columns(&d.table, &d.pk_in_column_order, columns)
        };
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
            if let Some(w) = writer {
                m.push_str(&format!("; written in {actual} by {} ({})", w.seq, w.name));
                if let Some(r) = row_writer.filter(|r| r.seq != w.seq) {
                    m.push_str(&format!(", row last changed by {} ({})", r.seq, r.name));
                }
            }
            m
        }
        Divergence::RowMissing => {
            let mut m = only_in(show_key(&d), expected, actual);
            if let Some(w) = row_writer {
                m.push_str(&format!("; removed in {actual} by {} ({})", w.seq, w.name));
            }
            m
        }
        Divergence::RowExtra => {
            let mut m = only_in(show_key(&d), actual, expected);
            if let Some(w) = row_writer {
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
            .intended(&d.table, &d.pk_in_column_order)
            .filter(|i| writer.is_none_or(|w| i.seq > w.seq))
    };
    let mut message = message;
    if let Some(i) = intended {
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
        writer.map(|w| w.seq),
        writer.map(|w| &*w.name),
        message,
    );
    f.table = Some(d.table);
    f.divergence = Some(d.kind);
    if row_level {
        f.key_columns = Some(d.key_columns);
        f.key = Some(d.key);
    }
    f.columns = d.columns;
    f.column = d.column;
    f
}
