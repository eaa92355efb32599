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

use std::sync::Arc;

use crate::replay::capture::{ChangeOp, RowChange};
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
#[derive(Default, Clone)]
pub struct ColumnNames(HashMap<String, Arc<[String]>>);

impl ColumnNames {
    /// The names of every table of `schema`, read now: for netting changes where the
    /// connection is not at hand (on another thread).
    pub(crate) fn read_all(conn: &Connection, schema: &str) -> ColumnNames {
        let mut names = ColumnNames::default();
        for table in sqlite::list_tables(conn, schema).unwrap_or_default() {
            names.of(Some(conn), schema, &table);
        }
        names
    }

    /// The names of `table`'s columns, read from `conn` the first time (none for a table
    /// unknown without a connection).
    fn of(&mut self, conn: Option<&Connection>, schema: &str, table: &str) -> Arc<[String]> {
        if let Some(names) = self.0.get(table) {
            return names.clone();
        }
        let names: Arc<[String]> = conn
            .and_then(|conn| sqlite::table_columns(conn, schema, table).ok())
            .map(|cols| cols.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        self.0.insert(table.to_string(), names.clone());
        names
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

/// Folds one event's row changes (captured with values) into row operations the way a
/// session-extension changeset does: one operation per row, an insert followed by updates is
/// an insert of the final values, an update that ends where it began is nothing, a key that
/// changes is a delete and an insert. With `keyed_only`, tables without a primary key are left
/// out, as changesets leave them out.
pub fn net(
    changes: &[RowChange],
    conn: &Connection,
    schema: &str,
    names: &mut ColumnNames,
    keyed_only: bool,
) -> Vec<RowOp> {
    net_with(changes, Some(conn), schema, names, keyed_only)
}

/// [`net`] with the column names known beforehand ([`ColumnNames::read_all`]), without a
/// connection.
pub(crate) fn net_known(
    changes: &[RowChange],
    names: &mut ColumnNames,
    keyed_only: bool,
) -> Vec<RowOp> {
    net_with(changes, None, "main", names, keyed_only)
}

fn net_with(
    changes: &[RowChange],
    conn: Option<&Connection>,
    schema: &str,
    names: &mut ColumnNames,
    keyed_only: bool,
) -> Vec<RowOp> {
    struct Row {
        table: Arc<str>,
        key: Vec<SqlValue>,
        before: Option<Vec<SqlValue>>,
        after: Option<Vec<SqlValue>>,
        existed: bool,
    }
    let mut rows: IndexMap<(Arc<str>, Vec<u8>), Row> = IndexMap::new();
    let mut touch = |table: &Arc<str>,
                     key: &[SqlValue],
                     before: Option<&Vec<SqlValue>>,
                     after: Option<Vec<SqlValue>>| {
        let entry = rows
            .entry((table.clone(), SqlValue::encode_key(key)))
            .or_insert_with(|| Row {
                table: table.clone(),
                key: key.to_vec(),
                before: before.cloned(),
                existed: before.is_some(),
                after: None,
            });
        entry.after = after;
    };
    for c in changes.iter().filter(|c| c.keyed || !keyed_only) {
        match (c.op, &c.old_key) {
            (ChangeOp::Insert, _) => touch(&c.table, &c.key, None, c.new.clone()),
            (ChangeOp::Delete, _) => touch(&c.table, &c.key, c.old.as_ref(), None),
            (ChangeOp::Update, None) => touch(&c.table, &c.key, c.old.as_ref(), c.new.clone()),
            (ChangeOp::Update, Some(old_key)) => {
                touch(&c.table, old_key, c.old.as_ref(), None);
                touch(&c.table, &c.key, None, c.new.clone());
            }
        }
    }
    let mut ops = Vec::new();
    for row in rows.into_values() {
        let cols = names.of(conn, schema, &row.table);
        let name = |i: usize| cols.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        let all = |vals: &[SqlValue]| -> IndexMap<String, SqlValue> {
            vals.iter()
                .enumerate()
                .map(|(i, v)| (name(i), v.clone()))
                .collect()
        };
        let op = match (row.existed, row.before, row.after) {
            (false, _, None) | (true, None, _) => continue,
            (false, _, Some(after)) => RowOp {
                table: row.table.to_string(),
                op: "insert",
                key: row.key,
                old: IndexMap::new(),
                new: all(&after),
            },
            (true, Some(before), None) => RowOp {
                table: row.table.to_string(),
                op: "delete",
                key: row.key,
                old: all(&before),
                new: IndexMap::new(),
            },
            (true, Some(before), Some(after)) => {
                let changed: Vec<usize> = (0..before.len().max(after.len()))
                    .filter(|&i| match (before.get(i), after.get(i)) {
                        (Some(a), Some(b)) => !a.same(b),
                        _ => true,
                    })
                    .collect();
                if changed.is_empty() {
                    continue;
                }
                let pick = |vals: &[SqlValue]| -> IndexMap<String, SqlValue> {
                    changed
                        .iter()
                        .filter_map(|&i| vals.get(i).map(|v| (name(i), v.clone())))
                        .collect()
                };
                RowOp {
                    table: row.table.to_string(),
                    op: "update",
                    key: row.key,
                    old: pick(&before),
                    new: pick(&after),
                }
            }
        };
        ops.push(op);
    }
    sort(&mut ops);
    ops
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
    let cols = names.of(Some(conn), schema, &c.table);
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
    fn netting_matches_the_session_extension() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER, b TEXT) STRICT;
             CREATE TABLE nokey (x);
             INSERT INTO t VALUES ('x', 1, 'keep'), ('y', 2, 'gone'), ('z', 3, 'same');",
        )
        .unwrap();
        let script = "INSERT INTO t VALUES ('w', 0, NULL); UPDATE t SET a = 9 WHERE id = 'w';
             UPDATE t SET a = 5 WHERE id = 'x'; UPDATE t SET a = 6 WHERE id = 'x';
             DELETE FROM t WHERE id = 'y';
             UPDATE t SET a = 4 WHERE id = 'z'; UPDATE t SET a = 3 WHERE id = 'z';
             INSERT INTO t VALUES ('v', 1, 'v'); DELETE FROM t WHERE id = 'v';
             INSERT OR REPLACE INTO t VALUES ('x', 6, 'new');
             UPDATE t SET id = 'k' WHERE id = 'w';
             INSERT INTO nokey VALUES (1);";
        conn.execute_batch("BEGIN").unwrap();
        let session = Session::new(&conn).unwrap();
        conn.execute_batch(script).unwrap();
        let theirs = decode(
            &session.changeset().unwrap(),
            &conn,
            "main",
            &mut ColumnNames::default(),
        )
        .unwrap();
        drop(session);
        conn.execute_batch("ROLLBACK").unwrap();

        let cap = crate::replay::capture::Capture::install(&conn, true).unwrap();
        conn.execute_batch(script).unwrap();
        let ours = net(
            &cap.take(),
            &conn,
            "main",
            &mut ColumnNames::default(),
            true,
        );
        assert_eq!(render(&ours), render(&theirs));
        assert_eq!(ours, theirs);
    }

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
