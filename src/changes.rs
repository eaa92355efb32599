//! An event's changes as decoded row operations, in a canonical order, for comparing one run
//! with another (the replay with LiveStore's recorded changesets, old materializers with new
//! ones, a run with itself) and for showing them to people.
//!
//! Changesets are compared decoded, never as bytes: SQLite groups a changeset's entries by
//! table in hash order, so equal changes can be written differently. Rows are sorted by table
//! and key; values keep their storage class.

use std::collections::HashMap;

use indexmap::IndexMap;
use rusqlite::Connection;
use serde::Serialize;

use crate::session::{Change, Changeset, Op};
use crate::sqlite;
use crate::value::SqlValue;

/// One row operation, with column names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowOp {
    /// Table.
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub op: &'static str,
    /// Primary-key values, in column order.
    pub key: Vec<SqlValue>,
    /// Values before (delete: every column; update: the changed ones).
    pub old: IndexMap<String, SqlValue>,
    /// Values after (insert: every column; update: the changed ones).
    pub new: IndexMap<String, SqlValue>,
}

/// Column names per table, read once from a database.
#[derive(Default)]
pub struct ColumnNames(HashMap<String, Vec<String>>);

impl ColumnNames {
    fn of(&mut self, conn: &Connection, schema: &str, table: &str) -> &[String] {
        self.0.entry(table.to_string()).or_insert_with(|| {
            sqlite::table_columns(conn, schema, table)
                .map(|cols| cols.into_iter().map(|c| c.name).collect())
                .unwrap_or_default()
        })
    }
}

/// Decodes a changeset into row operations sorted by table and key; column names come from
/// `schema` of `conn` (a column SQLite's schema lacks is named by its position).
pub fn decode(
    changeset: &Changeset,
    conn: &Connection,
    schema: &str,
    names: &mut ColumnNames,
) -> Result<Vec<RowOp>, String> {
    let mut ops: Vec<RowOp> = changeset
        .changes()?
        .into_iter()
        .map(|c| row_op(c, conn, schema, names))
        .collect();
    sort(&mut ops);
    Ok(ops)
}

/// Puts row operations in canonical order: by table, then key.
pub fn sort(ops: &mut [RowOp]) {
    ops.sort_by(|a, b| {
        a.table.cmp(&b.table).then_with(|| {
            a.key
                .iter()
                .zip(&b.key)
                .map(|(x, y)| x.sqlite_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(a.key.len().cmp(&b.key.len()))
        })
    });
}

fn row_op(c: Change, conn: &Connection, schema: &str, names: &mut ColumnNames) -> RowOp {
    let key = c.key();
    let cols = names.of(conn, schema, &c.table).to_vec();
    let name = |i: usize| cols.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    let collect = |side: &[Option<SqlValue>]| -> IndexMap<String, SqlValue> {
        side.iter()
            .enumerate()
            .filter_map(|(i, v)| v.clone().map(|v| (name(i), v)))
            .collect()
    };
    // An update names its key columns in `old` only to identify the row; they are the key.
    let mut old = collect(&c.old);
    let new = collect(&c.new);
    if c.op == Op::Update {
        for (i, is_pk) in c.pk.iter().enumerate() {
            if *is_pk && c.new.get(i).is_none_or(|v| v.is_none()) {
                old.shift_remove(&name(i));
            }
        }
    }
    RowOp {
        table: c.table,
        op: match c.op {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        },
        key,
        old,
        new,
    }
}

/// One line per operation, for people: `update todos['t1']: completed 0 → 1`.
pub fn render(ops: &[RowOp]) -> Vec<String> {
    ops.iter().map(render_op).collect()
}

fn render_op(op: &RowOp) -> String {
    let key: Vec<String> = op.key.iter().map(|v| short(v, 60)).collect();
    let head = format!("{} {}[{}]", op.op, op.table, key.join(", "));
    let body: Vec<String> = match op.op {
        "update" => op
            .new
            .iter()
            .map(|(col, v)| match op.old.get(col) {
                Some(o) => format!("{col} {} → {}", short(o, 60), short(v, 60)),
                None => format!("{col} → {}", short(v, 60)),
            })
            .collect(),
        "insert" => op
            .new
            .iter()
            .map(|(c, v)| format!("{c}={}", short(v, 60)))
            .collect(),
        _ => op
            .old
            .iter()
            .map(|(c, v)| format!("{c}={}", short(v, 60)))
            .collect(),
    };
    if body.is_empty() {
        head
    } else {
        format!("{head}: {}", body.join(", "))
    }
}

fn short(v: &SqlValue, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A unified diff of two renderings, `-` for the first side and `+` for the second.
pub fn diff(a: &[String], b: &[String]) -> Vec<String> {
    let (a, b) = (a.join("\n") + "\n", b.join("\n") + "\n");
    let diff = similar::TextDiff::from_lines(&a, &b);
    diff.iter_all_changes()
        .map(|c| {
            let sign = match c.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            format!("{sign} {}", c.value().trim_end_matches('\n'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    #[test]
    fn decodes_sorts_and_renders() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b TEXT) STRICT;
             INSERT INTO t VALUES ('x', 1, 'keep'), ('y', 2, 'gone');",
        )
        .unwrap();
        let session = Session::new(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO t VALUES ('w', 0, NULL); UPDATE t SET a = 5 WHERE id = 'x'; DELETE FROM t WHERE id = 'y';",
        )
        .unwrap();
        let cs = session.changeset().unwrap();
        let ops = decode(&cs, &conn, "main", &mut ColumnNames::default()).unwrap();
        assert_eq!(
            render(&ops),
            [
                "insert t['w']: id='w', a=0, b=NULL",
                "update t['x']: a 1 → 5",
                "delete t['y']: id='y', a=2, b='gone'",
            ]
        );
        let d = diff(&render(&ops[..1]), &render(&ops[1..2]));
        assert_eq!(
            d,
            [
                "- insert t['w']: id='w', a=0, b=NULL",
                "+ update t['x']: a 1 → 5"
            ]
        );
    }
}
