//! The whole history of one row: every event that touched it, with its values before and
//! after, in the replay and in LiveStore's own record of its run.
//!
//! The replay side comes from the replay's captured changes, the LiveStore side from the
//! changesets LiveStore recorded (where a sync backend has not trimmed them), and the end of
//! the story from both states, so a value no event wrote (a state edited outside the log)
//! stands out as the one thing the history cannot explain.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use rusqlite::Connection;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::eventlog::SeqNum;
use crate::materialize::Materializer;
use crate::replay::changes::{self, ColumnNames, RowOp};
use crate::replay::recorded;
use crate::replay::setup::{Setup, State};
use crate::replay::{self, ReplayOptions, Step};
use crate::report::EventRef;
use crate::session::Changeset;
use crate::sqlite::{self, quote_ident};
use crate::value::SqlValue;

/// The version of `blame --format json` (`schemas/blame.schema.json`).
pub const BLAME_VERSION: u32 = 1;

/// One event in a row's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlameEntry {
    /// The event.
    pub event: EventRef,
    /// Its args.
    pub args: String,
    /// What it did to the row in the replay.
    pub replayed: Option<RowOp>,
    /// What LiveStore's recorded changeset says it did.
    pub recorded: Option<RowOp>,
}

/// A row's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlameReport {
    /// [`BLAME_VERSION`].
    pub version: u32,
    /// The corpus as named.
    pub corpus: String,
    /// The table.
    pub table: String,
    /// Its primary-key columns.
    pub key_columns: Vec<String>,
    /// The row's key.
    pub key: Vec<SqlValue>,
    /// Whether LiveStore's recorded changesets were read.
    pub recorded_changesets: bool,
    /// Every event that touched the row, in log order.
    pub history: Vec<BlameEntry>,
    /// The row at the end of the replay (absent when it does not exist).
    pub replayed_row: Option<IndexMap<String, SqlValue>>,
    /// The row in the recorded state database (absent when it does not exist or there is none).
    pub recorded_row: Option<IndexMap<String, SqlValue>>,
}

/// Replays `corpus` and tells the history of the row of `table` whose primary key is `key`
/// (values given as text, converted by the key columns' types).
pub fn blame(
    corpus_path: &Path,
    materializer: &mut dyn Materializer,
    table: &str,
    key: &[String],
    options: &ReplayOptions,
) -> Result<BlameReport> {
    blame_observed(corpus_path, materializer, table, key, options, |_| {})
}

/// [`blame`], telling `observe` about its replay as it goes (for progress).
pub fn blame_observed(
    corpus_path: &Path,
    materializer: &mut dyn Materializer,
    table: &str,
    key: &[String],
    options: &ReplayOptions,
    mut observe: impl FnMut(Step<'_>),
) -> Result<BlameReport> {
    let setup = Setup::open(corpus_path, State::Beside, &*materializer)?;
    let log = &setup.log;
    let recorded_db = setup.recorded.as_ref().map(|r| &r.db);
    let scratch = setup.scratch(materializer, options.scratch_dir.as_deref())?;
    let cols = sqlite::table_columns(&scratch, "main", table)
        .map_err(|e| Error::scratch("read the table's columns", e))?;
    if cols.is_empty() {
        return Err(Error::input(
            corpus_path,
            format!("the state has no table `{table}`"),
        ));
    }
    let key_cols: Vec<&sqlite::Column> = cols.iter().filter(|c| c.pk > 0).collect();
    if key_cols.is_empty() {
        return Err(Error::input(
            corpus_path,
            format!("table `{table}` has no primary key: its rows have no identity to follow"),
        ));
    }
    if key_cols.len() != key.len() {
        return Err(Error::input(
            corpus_path,
            format!(
                "table `{table}` is keyed by {} ({}); give one --key per column",
                key_cols.len(),
                key_cols
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let key: Vec<SqlValue> = key_cols
        .iter()
        .zip(key)
        .map(|(c, v)| typed(&c.decl_type, v))
        .collect();
    let wanted = SqlValue::encode_key(&key);

    let mut history: BTreeMap<(i64, i64, i64), BlameEntry> = BTreeMap::new();
    let mut names = ColumnNames::default();
    let mut replay_options = options.clone();
    replay_options.values = true;
    let replayed = replay::replay(log, materializer, &scratch, &replay_options, |step| {
        if let Step::Read(n) = step {
            observe(Step::Read(n));
        }
        if let Step::Applied { event, changes } = step {
            let touches = changes
                .iter()
                .any(|c| *c.table == *table && SqlValue::encode_key(&c.key) == wanted);
            if !touches {
                return;
            }
            let op = changes::net(changes, &scratch, "main", &mut names, false)
                .into_iter()
                .find(|op| op.table == table && SqlValue::encode_key(&op.key) == wanted);
            let seq = event.seq;
            history
                .entry((seq.global, seq.client, seq.rebase_generation))
                .or_insert_with(|| entry(event.seq, &event.name, &event.args_json))
                .replayed = op;
        }
    })?;
    drop(replayed);

    let mut recorded_changesets = false;
    if let Some(db) = recorded_db
        && recorded::count(&db.conn) > 0
    {
        recorded_changesets = true;
        let mut recorded_names = ColumnNames::default();
        let mut stmt = db
            .conn
            .prepare(&recorded::in_order(&db.conn))
            .map_err(|e| Error::sqlite(&db.path, "cannot read the recorded changesets", e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| Error::sqlite(&db.path, "cannot read the recorded changesets", e))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| Error::sqlite(&db.path, "cannot read the recorded changesets", e))?
        {
            let (g, c): (i64, i64) = (row.get(0).unwrap_or(0), row.get(1).unwrap_or(0));
            let Some(blob) = row.get::<_, Option<Vec<u8>>>(2).ok().flatten() else {
                continue;
            };
            let ops = changes::decode(&Changeset(blob), &db.conn, "main", &mut recorded_names)
                .map_err(|e| {
                    Error::input(
                        &db.path,
                        format!("a recorded changeset of e{g}.{c} cannot be read: {e}"),
                    )
                })?;
            let Some(op) = ops
                .into_iter()
                .find(|op| op.table == table && SqlValue::encode_key(&op.key) == wanted)
            else {
                continue;
            };
            let ev = log.event_at(g, c)?;
            let r = ev.as_ref().map(|e| e.seq.rebase_generation).unwrap_or(0);
            let slot = history.entry((g, c, r)).or_insert_with(|| match &ev {
                Some(e) => entry(e.seq, &e.name, &e.args_json),
                None => entry(
                    SeqNum {
                        global: g,
                        client: c,
                        rebase_generation: 0,
                    },
                    "",
                    "",
                ),
            });
            slot.recorded = Some(op);
        }
    }

    Ok(BlameReport {
        version: BLAME_VERSION,
        corpus: setup.corpus.name.clone(),
        table: table.to_string(),
        key_columns: key_cols.iter().map(|c| c.name.clone()).collect(),
        key: key.clone(),
        recorded_changesets,
        history: history.into_values().collect(),
        replayed_row: row_of(&scratch, table, &key_cols, &key),
        recorded_row: recorded_db.and_then(|db| row_of(&db.conn, table, &key_cols, &key)),
    })
}

fn entry(seq: SeqNum, name: &str, args: &str) -> BlameEntry {
    BlameEntry {
        event: EventRef::new(seq, name),
        args: args.to_string(),
        replayed: None,
        recorded: None,
    }
}

/// A key value as the column stores it: an integer for INTEGER columns, a real for REAL ones,
/// text otherwise.
fn typed(decl_type: &str, v: &str) -> SqlValue {
    let t = decl_type.to_ascii_uppercase();
    if t.contains("INT") {
        if let Ok(i) = v.parse() {
            return SqlValue::Integer(i);
        }
    } else if (t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB"))
        && let Ok(f) = v.parse()
    {
        return SqlValue::Real(f);
    }
    SqlValue::Text(v.as_bytes().to_vec())
}

fn row_of(
    conn: &Connection,
    table: &str,
    key_cols: &[&sqlite::Column],
    key: &[SqlValue],
) -> Option<IndexMap<String, SqlValue>> {
    let cols = sqlite::table_columns(conn, "main", table).ok()?;
    if cols.is_empty() {
        return None;
    }
    let where_: Vec<String> = key_cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ?{}", quote_ident(&c.name), i + 1))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        cols.iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", "),
        quote_ident(table),
        where_.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql).ok()?;
    for (i, v) in key.iter().enumerate() {
        let r = match v {
            SqlValue::Integer(x) => stmt.raw_bind_parameter(i + 1, x),
            SqlValue::Real(x) => stmt.raw_bind_parameter(i + 1, x),
            SqlValue::Text(x) => {
                stmt.raw_bind_parameter(i + 1, String::from_utf8_lossy(x).as_ref())
            }
            SqlValue::Blob(x) => stmt.raw_bind_parameter(i + 1, x),
            SqlValue::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null),
        };
        r.ok()?;
    }
    let mut rows = stmt.raw_query();
    let row = rows.next().ok()??;
    Some(
        cols.iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.name.clone(),
                    row.get_ref(i).map(SqlValue::from).unwrap_or(SqlValue::Null),
                )
            })
            .collect(),
    )
}
