//! Which event last wrote each row, and each column of it.
//!
//! A divergent row is only useful with its cause: the replay records, from every applied
//! event's row changes, the event that inserted each row and the events that last changed each
//! of its columns, so that a differing value can be traced to the event that produced it. The
//! index holds one entry per row written, bounded by the state, not by the log.

use std::collections::HashMap;
use std::sync::Arc;

use crate::eventlog::SeqNum;
use crate::replay::capture::{ChangeOp, RowChange};
use crate::value::SqlValue;

/// The event that last wrote a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    /// Its sequence number.
    pub seq: SeqNum,
    /// Its name.
    pub name: Arc<str>,
}

/// Which event last wrote each row, and each column of it, from per-event changesets.
#[derive(Debug, Default)]
pub struct WriterIndex {
    tables: HashMap<String, u32>,
    rows: HashMap<(u32, Vec<u8>), RowWriters>,
    /// Rows that an event which was not applied meant to write.
    intended: HashMap<(u32, Vec<u8>), Writer>,
}

/// The writers of one row: the insert, later updates per column, and the last change.
#[derive(Debug, Clone)]
struct RowWriters {
    last: Writer,
    inserted: Option<Writer>,
    columns: Vec<(usize, Writer)>,
}

impl WriterIndex {
    /// Records one row change made by `writer`.
    pub fn record(&mut self, change: &RowChange, writer: &Writer) {
        let next = self.tables.len() as u32;
        let id = *self.tables.entry(change.table.to_string()).or_insert(next);
        if let Some(old) = &change.old_key {
            // The row moved to a new key: the old one was, in effect, deleted by this event.
            let row = self
                .rows
                .entry((id, SqlValue::encode_key(old)))
                .or_insert_with(|| RowWriters {
                    last: writer.clone(),
                    inserted: None,
                    columns: Vec::new(),
                });
            row.last = writer.clone();
        }
        let key = (id, SqlValue::encode_key(&change.key));
        match change.op {
            ChangeOp::Insert => {
                self.rows.insert(
                    key,
                    RowWriters {
                        last: writer.clone(),
                        inserted: Some(writer.clone()),
                        columns: Vec::new(),
                    },
                );
            }
            ChangeOp::Update | ChangeOp::Delete => {
                let row = self.rows.entry(key).or_insert_with(|| RowWriters {
                    last: writer.clone(),
                    inserted: None,
                    columns: Vec::new(),
                });
                row.last = writer.clone();
                if change.op == ChangeOp::Update {
                    for &i in &change.columns {
                        match row.columns.iter_mut().find(|(c, _)| *c == i) {
                            Some(slot) => slot.1 = writer.clone(),
                            None => row.columns.push((i, writer.clone())),
                        }
                    }
                }
            }
        }
    }

    /// Records that `writer`, which was not applied, meant to write a row.
    pub fn intend(&mut self, table: &str, key: &[SqlValue], writer: &Writer) {
        let next = self.tables.len() as u32;
        let id = *self.tables.entry(table.to_string()).or_insert(next);
        self.intended
            .entry((id, SqlValue::encode_key(key)))
            .or_insert_with(|| writer.clone());
    }

    /// The first event that meant to write a row but was not applied.
    pub fn intended(&self, table: &str, key: &[SqlValue]) -> Option<&Writer> {
        let id = self.tables.get(table)?;
        self.intended.get(&(*id, SqlValue::encode_key(key)))
    }

    /// The last writer of the row of `table` whose primary key, in column order, is `key`.
    pub fn last_writer(&self, table: &str, key: &[SqlValue]) -> Option<&Writer> {
        self.row(table, key).map(|r| &r.last)
    }

    /// The last event that wrote any of `columns` (positions in the replayed table) of a row:
    /// the latest update of one of them, else the insert.
    pub fn last_writer_of_columns(
        &self,
        table: &str,
        key: &[SqlValue],
        columns: &[usize],
    ) -> Option<&Writer> {
        let row = self.row(table, key)?;
        columns
            .iter()
            .filter_map(|c| {
                row.columns
                    .iter()
                    .find(|(i, _)| i == c)
                    .map(|(_, w)| w)
                    .or(row.inserted.as_ref())
            })
            .max_by_key(|w| w.seq)
            .or(Some(&row.last))
    }

    fn row(&self, table: &str, key: &[SqlValue]) -> Option<&RowWriters> {
        let id = self.tables.get(table)?;
        self.rows.get(&(*id, SqlValue::encode_key(key)))
    }

    /// Rows with a known writer.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row has a known writer.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
