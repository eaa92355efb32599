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
    pub(crate) fn of(
        &mut self,
        conn: Option<&Connection>,
        schema: &str,
        table: &str,
    ) -> Arc<[String]> {
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
    let mut ops = Vec::new();
    for row in netted(changes, keyed_only) {
        let cols = names.of(conn, schema, row.table);
        let name = |i: usize| cols.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        let pick = |vals: &[SqlValue], which: &mut dyn Iterator<Item = usize>| {
            which
                .filter_map(|i| vals.get(i).map(|v| (name(i), v.clone())))
                .collect::<IndexMap<String, SqlValue>>()
        };
        let (op, old, new) = match &row.op {
            NetOp::Insert(after) => (
                "insert",
                IndexMap::new(),
                pick(after, &mut (0..after.len())),
            ),
            NetOp::Delete(before) => (
                "delete",
                pick(before, &mut (0..before.len())),
                IndexMap::new(),
            ),
            NetOp::Update {
                before,
                after,
                changed,
            } => (
                "update",
                pick(before, &mut changed.iter().copied()),
                pick(after, &mut changed.iter().copied()),
            ),
        };
        ops.push(RowOp {
            table: row.table.to_string(),
            op,
            key: row.key.to_vec(),
            old,
            new,
        });
    }
    sort(&mut ops);
    ops
}

/// What one row came to over an event's changes.
enum NetOp<'c> {
    /// A row that did not exist before, with its values after.
    Insert(&'c [SqlValue]),
    /// A row that existed and is gone, with its values before.
    Delete(&'c [SqlValue]),
    /// A row whose values changed, at these positions.
    Update {
        before: &'c [SqlValue],
        after: &'c [SqlValue],
        changed: Vec<usize>,
    },
}

/// One row's net change, borrowed from the captured changes.
struct Netted<'c> {
    table: &'c Arc<str>,
    key: &'c [SqlValue],
    op: NetOp<'c>,
}

/// An event's changes folded per row, in the order rows were first touched, leaving out rows
/// that end as they began (see [`net`]).
fn netted(changes: &[RowChange], keyed_only: bool) -> Vec<Netted<'_>> {
    struct Row<'c> {
        table: &'c Arc<str>,
        key: &'c [SqlValue],
        before: Option<&'c [SqlValue]>,
        after: Option<&'c [SqlValue]>,
        existed: bool,
    }
    /// Rows in the order they were first touched; found by a scan while they are few, by
    /// their key's canonical encoding once there are many.
    struct Fold<'c> {
        rows: Vec<Row<'c>>,
        index: HashMap<(&'c str, Vec<u8>), usize>,
    }
    const SCANNED: usize = 16;
    impl<'c> Fold<'c> {
        fn touch(
            &mut self,
            table: &'c Arc<str>,
            key: &'c [SqlValue],
            before: Option<&'c [SqlValue]>,
            after: Option<&'c [SqlValue]>,
        ) {
            if self.rows.len() == SCANNED && self.index.is_empty() {
                for (i, r) in self.rows.iter().enumerate() {
                    self.index
                        .insert((&**r.table, SqlValue::encode_key(r.key)), i);
                }
            }
            let found = if self.rows.len() < SCANNED {
                self.rows
                    .iter()
                    .position(|r| **r.table == **table && same_key(r.key, key))
            } else {
                self.index
                    .get(&(&**table, SqlValue::encode_key(key)))
                    .copied()
            };
            let i = match found {
                Some(i) => i,
                None => {
                    if self.rows.len() >= SCANNED {
                        self.index
                            .insert((&**table, SqlValue::encode_key(key)), self.rows.len());
                    }
                    self.rows.push(Row {
                        table,
                        key,
                        before,
                        existed: before.is_some(),
                        after: None,
                    });
                    self.rows.len() - 1
                }
            };
            self.rows[i].after = after;
        }
    }
    let mut fold = Fold {
        rows: Vec::new(),
        index: HashMap::new(),
    };
    for c in changes.iter().filter(|c| c.keyed || !keyed_only) {
        let (old, new) = (c.old.as_deref(), c.new.as_deref());
        match (c.op, &c.old_key) {
            (ChangeOp::Insert, _) => fold.touch(&c.table, &c.key, None, new),
            (ChangeOp::Delete, _) => fold.touch(&c.table, &c.key, old, None),
            (ChangeOp::Update, None) => fold.touch(&c.table, &c.key, old, new),
            (ChangeOp::Update, Some(old_key)) => {
                fold.touch(&c.table, old_key, old, None);
                fold.touch(&c.table, &c.key, None, new);
            }
        }
    }
    let rows = fold.rows;
    rows.into_iter()
        .filter_map(|row| {
            let op = match (row.existed, row.before, row.after) {
                (false, _, None) | (true, None, _) => return None,
                (false, _, Some(after)) => NetOp::Insert(after),
                (true, Some(before), None) => NetOp::Delete(before),
                (true, Some(before), Some(after)) => {
                    let changed: Vec<usize> = (0..before.len().max(after.len()))
                        .filter(|&i| match (before.get(i), after.get(i)) {
                            (Some(a), Some(b)) => !a.same(b),
                            _ => true,
                        })
                        .collect();
                    if changed.is_empty() {
                        return None;
                    }
                    NetOp::Update {
                        before,
                        after,
                        changed,
                    }
                }
            };
            Some(Netted {
                table: row.table,
                key: row.key,
                op,
            })
        })
        .collect()
}

/// Whether two keys have the same canonical encoding ([`SqlValue::encode_key`]), without
/// encoding them.
fn same_key(a: &[SqlValue], b: &[SqlValue]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (SqlValue::Real(p), SqlValue::Real(q)) => p.to_bits() == q.to_bits(),
            _ => x == y,
        })
}

/// Whether `changeset` records exactly the row operations `changes` net to (with `keyed_only`,
/// as [`net`] makes them), read in place: the quick check of the usual case, where nothing is
/// decoded or named. `true` only where decoding both sides and comparing them would find them
/// equal; `false` also where it cannot tell cheaply (a table whose columns are not named alike
/// on both sides, per `same_columns`, or many rows), so the caller compares in full.
pub(crate) fn same_as_recorded(
    changes: &[RowChange],
    changeset: &Changeset,
    mut same_columns: impl FnMut(&str) -> bool,
) -> bool {
    let rows = netted(changes, true);
    if rows.len() > 64 {
        return false;
    }
    let mut matched = vec![false; rows.len()];
    let mut count = 0;
    let read = changeset.visit(|c| {
        if !same_columns(c.table()) {
            return false;
        }
        let n = c.columns();
        // The row: same table, same key (the primary-key columns of the values that name it).
        let key_side = |i| match c.op() {
            Op::Insert => c.after(i),
            Op::Update | Op::Delete => c.before(i),
        };
        let found = rows.iter().enumerate().position(|(i, r)| {
            !matched[i] && **r.table == *c.table() && {
                let mut key = r.key.iter();
                (0..n)
                    .filter(|&i| c.is_pk(i))
                    .all(|i| match (key.next(), key_side(i)) {
                        (Some(k), Some(v)) => v.is(k),
                        (Some(SqlValue::Null), None) => true,
                        _ => false,
                    })
                    && key.next().is_none()
            }
        });
        let Some(at) = found else {
            return false;
        };
        matched[at] = true;
        count += 1;
        // Every value of one side, as the change records it.
        let all_of = |side: &[SqlValue], after: bool| {
            side.len() == n
                && (0..n).all(|i| {
                    let v = if after { c.after(i) } else { c.before(i) };
                    v.is_some_and(|v| v.is(&side[i]))
                })
        };
        match (&rows[at].op, c.op()) {
            (NetOp::Insert(after), Op::Insert) => all_of(after, true),
            (NetOp::Delete(before), Op::Delete) => all_of(before, false),
            (
                NetOp::Update {
                    before,
                    after,
                    changed,
                },
                Op::Update,
            ) => {
                before.len() == n
                    && after.len() == n
                    && (0..n).all(|i| {
                        let (old, new) = (c.before(i), c.after(i));
                        if changed.contains(&i) {
                            old.is_some_and(|v| v.is(&before[i]))
                                && new.is_some_and(|v| v.is(&after[i]))
                        } else {
                            // A key column names the row in `old`; nothing else may appear.
                            new.is_none() && (old.is_none() || c.is_pk(i))
                        }
                    })
            }
            _ => false,
        }
    });
    read.unwrap_or(false) && count == rows.len()
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
