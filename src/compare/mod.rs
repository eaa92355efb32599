//! Row-by-row comparison of two databases attached to one connection.
//!
//! Rows are paired by primary key (by every column where a table has none, as a multiset) and
//! values are compared with their storage class, so `1`, `1.0` and `'1'` all differ. Both sides
//! are read in the same SQLite order and merged, so memory does not grow with table size.
//! LiveStore's bookkeeping tables (`__livestore_*`) are left out unless asked for: their
//! contents legitimately differ between a live state database and a replay (FORMAT.md §4.4).

pub(crate) mod causes;
pub mod diff;
pub(crate) mod divergence;

use std::cmp::Ordering;

use rusqlite::Connection;

use crate::report::{ColumnDiff, Divergence, Presence, TableReport};
use crate::sqlite::{self, quote_ident};
use crate::value::SqlValue;

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Include LiveStore's `__livestore_*` tables.
    pub include_livestore_tables: bool,
    /// Tables to leave out.
    pub ignore_tables: Vec<String>,
    /// Columns to leave out, as `table.column` or `*.column`.
    pub ignore_columns: Vec<String>,
}

impl CompareOptions {
    fn table_ignored(&self, table: &str) -> bool {
        (!self.include_livestore_tables && table.starts_with("__livestore_"))
            || self.ignore_tables.iter().any(|t| t == table)
    }

    fn column_ignored(&self, table: &str, column: &str) -> bool {
        self.ignore_columns
            .iter()
            .any(|spec| match spec.split_once('.') {
                Some((t, c)) => (t == table || t == "*") && c == column,
                None => spec == column,
            })
    }
}

/// One divergence, as the comparison finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDivergence {
    /// Table.
    pub table: String,
    /// How it diverges.
    pub kind: Divergence,
    /// The columns that pair rows.
    pub key_columns: Vec<String>,
    /// The row's key values (empty for table- and column-level divergences).
    pub key: Vec<SqlValue>,
    /// The primary-key values in column order, for looking up the last writer; empty when the
    /// table has no primary key.
    pub pk_in_column_order: Vec<SqlValue>,
    /// Differing columns (for `row-differs`).
    pub columns: Vec<ColumnDiff>,
    /// The column, for column-level divergences.
    pub column: Option<String>,
}

/// Compares every table of schema `expected` with schema `actual` on `conn`, calling `found`
/// for each divergence, and returns per-table counts in table-name order.
pub fn compare(
    conn: &Connection,
    expected: &str,
    actual: &str,
    options: &CompareOptions,
    mut found: impl FnMut(RowDivergence),
) -> rusqlite::Result<Vec<TableReport>> {
    let exp_tables = sqlite::list_tables(conn, expected)?;
    let act_tables = sqlite::list_tables(conn, actual)?;
    let mut names: Vec<&String> = exp_tables.iter().chain(act_tables.iter()).collect();
    names.sort();
    names.dedup();

    let mut reports = Vec::new();
    for table in names {
        if options.table_ignored(table) {
            continue;
        }
        let in_exp = exp_tables.contains(table);
        let in_act = act_tables.contains(table);
        if !(in_exp && in_act) {
            let (schema, presence, kind) = if in_exp {
                (expected, Presence::ExpectedOnly, Divergence::TableMissing)
            } else {
                (actual, Presence::ActualOnly, Divergence::TableExtra)
            };
            let rows = count_rows(conn, schema, table)?;
            found(RowDivergence {
                table: table.clone(),
                kind,
                key_columns: Vec::new(),
                key: Vec::new(),
                pk_in_column_order: Vec::new(),
                columns: Vec::new(),
                column: None,
            });
            reports.push(TableReport {
                table: table.clone(),
                presence,
                key_columns: Vec::new(),
                rows_expected: if in_exp { rows } else { 0 },
                rows_actual: if in_act { rows } else { 0 },
                matching: 0,
                differing: 0,
                missing: if in_exp { rows } else { 0 },
                extra: if in_act { rows } else { 0 },
                columns_missing: Vec::new(),
                columns_extra: Vec::new(),
            });
            continue;
        }
        reports.push(compare_table(
            conn, expected, actual, table, options, &mut found,
        )?);
    }
    Ok(reports)
}

fn count_rows(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        &format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(schema),
            quote_ident(table)
        ),
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

fn is_strict(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT strict FROM pragma_table_list WHERE schema = ?1 AND name = ?2",
        [schema, table],
        |r| r.get::<_, i64>(0),
    )
    .map(|s| s != 0)
    .or(Ok(false))
}

fn compare_table(
    conn: &Connection,
    expected: &str,
    actual: &str,
    table: &str,
    options: &CompareOptions,
    found: &mut impl FnMut(RowDivergence),
) -> rusqlite::Result<TableReport> {
    let exp_cols: Vec<sqlite::Column> = sqlite::table_columns(conn, expected, table)?
        .into_iter()
        .filter(|c| !c.hidden)
        .collect();
    let act_cols: Vec<sqlite::Column> = sqlite::table_columns(conn, actual, table)?
        .into_iter()
        .filter(|c| !c.hidden)
        .collect();
    let ignored = |c: &str| options.column_ignored(table, c);
    let columns_missing: Vec<String> = exp_cols
        .iter()
        .filter(|c| !ignored(&c.name) && !act_cols.iter().any(|a| a.name == c.name))
        .map(|c| c.name.clone())
        .collect();
    let columns_extra: Vec<String> = act_cols
        .iter()
        .filter(|c| !ignored(&c.name) && !exp_cols.iter().any(|e| e.name == c.name))
        .map(|c| c.name.clone())
        .collect();
    for (cols, kind) in [
        (&columns_missing, Divergence::ColumnMissing),
        (&columns_extra, Divergence::ColumnExtra),
    ] {
        for c in cols {
            found(RowDivergence {
                table: table.to_string(),
                kind,
                key_columns: Vec::new(),
                key: Vec::new(),
                pk_in_column_order: Vec::new(),
                columns: Vec::new(),
                column: Some(c.clone()),
            });
        }
    }
    // Compared columns, in the recorded table's order.
    let common: Vec<&sqlite::Column> = exp_cols
        .iter()
        .filter(|c| !ignored(&c.name) && act_cols.iter().any(|a| a.name == c.name))
        .collect();
    let pk_cols: Vec<&sqlite::Column> = common.iter().copied().filter(|c| c.pk > 0).collect();
    let exp_pk_count = exp_cols.iter().filter(|c| c.pk > 0).count();
    let has_pk = exp_pk_count > 0 && pk_cols.len() == exp_pk_count;
    let key: Vec<&sqlite::Column> = if has_pk { pk_cols } else { common.clone() };
    let rest: Vec<&sqlite::Column> = common
        .iter()
        .copied()
        .filter(|c| !key.iter().any(|k| k.name == c.name))
        .collect();
    let key_columns: Vec<String> = key.iter().map(|c| c.name.clone()).collect();

    // Typeless (non-STRICT) tables can hold 1 and 1.0 in one column; ordering by storage class
    // as well keeps both sides in one well-defined order the merge below can follow.
    let typed = is_strict(conn, expected, table)? && is_strict(conn, actual, table)?;
    let order: Vec<String> = key
        .iter()
        .map(|c| {
            let q = quote_ident(&c.name);
            if typed {
                format!("{q} COLLATE BINARY")
            } else {
                format!("{q} COLLATE BINARY, typeof({q})")
            }
        })
        .collect();
    let select: Vec<String> = key
        .iter()
        .chain(rest.iter())
        .map(|c| quote_ident(&c.name))
        .collect();
    let query = |schema: &str| {
        format!(
            "SELECT {} FROM {}.{}{}",
            if select.is_empty() {
                "NULL".to_string()
            } else {
                select.join(", ")
            },
            quote_ident(schema),
            quote_ident(table),
            if order.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {}", order.join(", "))
            }
        )
    };
    let mut exp_stmt = conn.prepare(&query(expected))?;
    let mut act_stmt = conn.prepare(&query(actual))?;
    let width = select.len().max(1);
    let mut exp_rows = exp_stmt.query([])?;
    let mut act_rows = act_stmt.query([])?;
    let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Vec<SqlValue>> {
        (0..width)
            .map(|i| row.get_ref(i).map(SqlValue::from))
            .collect()
    };
    let mut next_exp = exp_rows.next()?.map(read).transpose()?;
    let mut next_act = act_rows.next()?.map(read).transpose()?;

    // Positions of primary-key columns in table order, for the writer lookup.
    let mut pk_order: Vec<(usize, usize)> = Vec::new();
    if has_pk {
        for (i, k) in key.iter().enumerate() {
            let pos = exp_cols.iter().position(|c| c.name == k.name).unwrap_or(i);
            pk_order.push((pos, i));
        }
        pk_order.sort();
    }
    let nk = key.len();
    let mut report = TableReport {
        table: table.to_string(),
        presence: Presence::Both,
        key_columns: key_columns.clone(),
        rows_expected: 0,
        rows_actual: 0,
        matching: 0,
        differing: 0,
        missing: 0,
        extra: 0,
        columns_missing,
        columns_extra,
    };
    let divergence = |kind, row: &[SqlValue], columns: Vec<ColumnDiff>| RowDivergence {
        table: table.to_string(),
        kind,
        key_columns: key_columns.clone(),
        key: row[..nk].to_vec(),
        pk_in_column_order: pk_order.iter().map(|(_, i)| row[*i].clone()).collect(),
        columns,
        column: None,
    };
    loop {
        let ord = match (&next_exp, &next_act) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(e), Some(a)) => cmp_key(&e[..nk], &a[..nk]),
        };
        match ord {
            Ordering::Equal => {
                let (e, a) = (
                    next_exp.take().unwrap_or_default(),
                    next_act.take().unwrap_or_default(),
                );
                report.rows_expected += 1;
                report.rows_actual += 1;
                let diffs: Vec<ColumnDiff> = (nk..select.len())
                    .filter(|&i| !e[i].same(&a[i]))
                    .map(|i| ColumnDiff {
                        column: rest[i - nk].name.clone(),
                        expected: e[i].clone(),
                        actual: a[i].clone(),
                        replay_writer: None,
                        recorded_writer: None,
                        outside_log: false,
                    })
                    .collect();
                if diffs.is_empty() {
                    report.matching += 1;
                } else {
                    report.differing += 1;
                    found(divergence(Divergence::RowDiffers, &a, diffs));
                }
                next_exp = exp_rows.next()?.map(read).transpose()?;
                next_act = act_rows.next()?.map(read).transpose()?;
            }
            Ordering::Less => {
                let e = next_exp.take().unwrap_or_default();
                report.rows_expected += 1;
                report.missing += 1;
                found(divergence(Divergence::RowMissing, &e, Vec::new()));
                next_exp = exp_rows.next()?.map(read).transpose()?;
            }
            Ordering::Greater => {
                let a = next_act.take().unwrap_or_default();
                report.rows_actual += 1;
                report.extra += 1;
                found(divergence(Divergence::RowExtra, &a, Vec::new()));
                next_act = act_rows.next()?.map(read).transpose()?;
            }
        }
    }
    Ok(report)
}

fn cmp_key(a: &[SqlValue], b: &[SqlValue]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.sqlite_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("ATTACH ':memory:' AS a; ATTACH ':memory:' AS b;")
            .unwrap();
        conn
    }

    fn run(conn: &Connection) -> (Vec<TableReport>, Vec<RowDivergence>) {
        let mut found = Vec::new();
        let r = compare(conn, "a", "b", &CompareOptions::default(), |d| {
            found.push(d)
        })
        .unwrap();
        (r, found)
    }

    #[test]
    fn pairs_by_primary_key_and_compares_storage_classes() {
        let conn = db();
        conn.execute_batch(
            "CREATE TABLE a.t (id TEXT PRIMARY KEY, v ANY) STRICT;
             CREATE TABLE b.t (id TEXT PRIMARY KEY, v ANY) STRICT;
             INSERT INTO a.t VALUES ('k1', 1), ('k2', 1), ('k3', NULL), ('k4', 'x'), ('k5', 2);
             INSERT INTO b.t VALUES ('k1', 1), ('k2', '1'), ('k3', ''), ('k4', 'x'), ('k6', 2);",
        )
        .unwrap();
        let (r, found) = run(&conn);
        assert_eq!(
            (r[0].matching, r[0].differing, r[0].missing, r[0].extra),
            (2, 2, 1, 1)
        );
        let kinds: Vec<(Divergence, String)> = found
            .iter()
            .map(|d| (d.kind, d.key[0].to_string()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Divergence::RowDiffers, "'k2'".to_string()),
                (Divergence::RowDiffers, "'k3'".to_string()),
                (Divergence::RowMissing, "'k5'".to_string()),
                (Divergence::RowExtra, "'k6'".to_string()),
            ]
        );
        assert_eq!(found[0].columns[0].expected, SqlValue::Integer(1));
        assert_eq!(found[0].columns[0].actual, SqlValue::Text(b"1".to_vec()));
    }

    #[test]
    fn tables_without_a_key_compare_as_multisets() {
        let conn = db();
        conn.execute_batch(
            "CREATE TABLE a.log (x, y); CREATE TABLE b.log (x, y);
             INSERT INTO a.log VALUES (1, 'a'), (1, 'a'), (2, 'b'), (1, 1.0);
             INSERT INTO b.log VALUES (1, 'a'), (2, 'b'), (1, 1), (1, 1.0);",
        )
        .unwrap();
        let (r, found) = run(&conn);
        assert_eq!((r[0].matching, r[0].missing, r[0].extra), (3, 1, 1));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn tables_and_columns_on_one_side() {
        let conn = db();
        conn.execute_batch(
            "CREATE TABLE a.t (id INTEGER PRIMARY KEY, old TEXT); CREATE TABLE b.t (id INTEGER PRIMARY KEY, new TEXT);
             CREATE TABLE a.gone (x); CREATE TABLE b.__livestore_schema (x); INSERT INTO a.gone VALUES (1);",
        )
        .unwrap();
        let (r, found) = run(&conn);
        assert_eq!(r.len(), 2, "__livestore_ tables are left out");
        assert_eq!(r[0].presence, Presence::ExpectedOnly);
        assert_eq!(r[1].columns_missing, ["old"]);
        assert_eq!(r[1].columns_extra, ["new"]);
        assert_eq!(found.len(), 3);
    }
}
