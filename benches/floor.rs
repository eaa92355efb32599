//! The raw-SQLite floor: what the SQL work of a replay costs with nothing of rehearse around it.
//!
//! LiveStore's own recorded changesets (`__livestore_session_changeset`), decoded in log order
//! and executed as cached prepared statements into an in-memory database with the recorded
//! schema, in one transaction: the same rows written as a replay writes them, without the
//! log, the materializers, the per-event savepoints, the change capture or any comparison. The
//! check's speed is reported as a ratio to this, measured in the same run, so that the figure
//! survives a machine whose speed drifts.

use std::path::Path;
use std::time::Instant;

use rehearse::SqlValue;
use rehearse::session::{Changeset, Op};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

/// Replays the recorded changesets of the state database `state`: the changesets applied and
/// the seconds it took.
pub fn floor(state: &Path) -> Result<(u64, f64), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let src = Connection::open_with_flags(state, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let db = Connection::open_in_memory()?;
    // rehearse's scratch settings (LiveStore's page size).
    db.execute_batch("PRAGMA page_size=8192; PRAGMA foreign_keys=ON;")?;
    let ddl: Vec<String> = src
        .prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name NOT LIKE '\\_\\_livestore\\_%' ESCAPE '\\' ORDER BY rowid",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for sql in &ddl {
        db.execute_batch(sql)?;
    }
    db.set_prepared_statement_cache_capacity(512);
    let mut names: std::collections::HashMap<String, Vec<String>> = Default::default();
    db.execute_batch("BEGIN")?;
    let mut read = src.prepare(
        "SELECT changeset FROM __livestore_session_changeset WHERE changeset IS NOT NULL ORDER BY seqNumGlobal, seqNumClient, rowid",
    )?;
    let mut rows = read.query([])?;
    let mut applied = 0u64;
    while let Some(row) = rows.next()? {
        let changes = Changeset(row.get(0)?).changes()?;
        for c in changes {
            let cols = names.entry(c.table.clone()).or_insert_with(|| {
                rehearse::sqlite::table_columns(&db, "main", &c.table)
                    .map(|cols| cols.into_iter().map(|c| c.name).collect())
                    .unwrap_or_default()
            });
            let q = |i: usize| rehearse::sqlite::quote_ident(&cols[i]);
            let pk: Vec<usize> = (0..c.pk.len()).filter(|&i| c.pk[i]).collect();
            let key_where = pk
                .iter()
                .map(|&i| format!("{} = ?", q(i)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let (sql, values): (String, Vec<&SqlValue>) = match c.op {
                Op::Insert => (
                    format!(
                        "INSERT INTO {} VALUES ({})",
                        rehearse::sqlite::quote_ident(&c.table),
                        vec!["?"; c.new.len()].join(", ")
                    ),
                    c.new.iter().map(|v| v.as_ref().unwrap_or(&NULL)).collect(),
                ),
                Op::Delete => (
                    format!(
                        "DELETE FROM {} WHERE {key_where}",
                        rehearse::sqlite::quote_ident(&c.table)
                    ),
                    pk.iter()
                        .map(|&i| c.old[i].as_ref().unwrap_or(&NULL))
                        .collect(),
                ),
                Op::Update => {
                    let set: Vec<usize> = (0..c.new.len())
                        .filter(|&i| !c.pk[i] && c.new[i].is_some())
                        .collect();
                    let assignments: Vec<String> =
                        set.iter().map(|&i| format!("{} = ?", q(i))).collect();
                    let mut values: Vec<&SqlValue> =
                        set.iter().filter_map(|&i| c.new[i].as_ref()).collect();
                    values.extend(pk.iter().map(|&i| c.old[i].as_ref().unwrap_or(&NULL)));
                    (
                        format!(
                            "UPDATE {} SET {} WHERE {key_where}",
                            rehearse::sqlite::quote_ident(&c.table),
                            assignments.join(", ")
                        ),
                        values,
                    )
                }
            };
            let mut stmt = db.prepare_cached(&sql)?;
            let params: Vec<ToSqlOutput<'_>> = values.into_iter().map(bound).collect();
            let params: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
            stmt.execute(params.as_slice())?;
        }
        applied += 1;
    }
    db.execute_batch("COMMIT")?;
    Ok((applied, t.elapsed().as_secs_f64()))
}

static NULL: SqlValue = SqlValue::Null;

fn bound(v: &SqlValue) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match v {
        SqlValue::Null => ValueRef::Null,
        SqlValue::Integer(i) => ValueRef::Integer(*i),
        SqlValue::Real(r) => ValueRef::Real(*r),
        SqlValue::Text(t) => ValueRef::Text(t),
        SqlValue::Blob(b) => ValueRef::Blob(b),
    })
}
