//! The LS_DEV oracle: what LiveStore recorded for each event under `LS_DEV` (the statements it
//! ran), and how the statements rehearse has for an event differ from them. Shared by both test
//! binaries (`tests/it/main.rs` and `tests/corpora.rs` include this file by path).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::api;

/// What LiveStore recorded under `LS_DEV` for each event (the `debug` column of
/// `__livestore_session_changeset`: the statements it ran), by (global, client) seqNum.
pub fn lsdev_statements(corpus: &Path) -> Result<BTreeMap<(i64, i64), Value>, String> {
    let located = api::Corpus::locate(corpus).map_err(|e| e.to_string())?;
    let state = api::open_input(&located.snapshots[0]).map_err(|e| e.to_string())?;
    let mut recorded = BTreeMap::new();
    let mut stmt = state
        .conn
        .prepare("SELECT seqNumGlobal, seqNumClient, debug FROM __livestore_session_changeset")
        .map_err(|e| e.to_string())?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let debug: Option<String> = row.get(2).map_err(|e| e.to_string())?;
        let debug = debug.ok_or("a changeset row has no debug column: not an LS_DEV state")?;
        let key = (
            row.get(0).map_err(|e| e.to_string())?,
            row.get(1).map_err(|e| e.to_string())?,
        );
        recorded.insert(
            key,
            // JSON.stringify's: a bind value may hold a lone surrogate.
            api::parse_json(&debug).map_err(|e| e.to_string())?,
        );
    }
    Ok(recorded)
}

/// How the statements rehearse has for an event differ from those LiveStore recorded for it
/// (`theirs`, from [`lsdev_statements`]); empty when they are the same.
pub fn statement_differences(
    ev: &api::Event,
    ours: &[api::Statement],
    theirs: Option<&Value>,
) -> Vec<String> {
    use api::{BindValue, Binds};
    let Some(theirs) = theirs else {
        return vec![format!(
            "{} {}: LiveStore recorded nothing",
            ev.seq, ev.name
        )];
    };
    let theirs = theirs.as_array().cloned().unwrap_or_default();
    if theirs.len() != ours.len() {
        return vec![format!(
            "{} {}: {} statements, LiveStore ran {}",
            ev.seq,
            ev.name,
            ours.len(),
            theirs.len()
        )];
    }
    let mut problems = Vec::new();
    for (o, t) in ours.iter().zip(&theirs) {
        let sql = t["statementSql"].as_str().unwrap_or_default();
        if o.sql != sql {
            problems.push(format!(
                "{} {}: SQL differs:\n  ours:   {:?}\n  theirs: {sql:?}",
                ev.seq, ev.name, o.sql
            ));
        }
        let scalar = |v: &Value| BindValue::from_json_scalar(v).expect("a scalar bind value");
        let binds = match &t["bindValues"] {
            Value::Array(a) => Binds::Positional(a.iter().map(scalar).collect()),
            Value::Object(m) if m.is_empty() => Binds::None,
            Value::Object(m) => {
                Binds::Named(m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
            }
            other => panic!("unexpected bindValues {other}"),
        };
        // No binds, an empty list and an empty object all bind nothing.
        let same = match (&o.binds, &binds) {
            (Binds::None, Binds::Named(m)) | (Binds::Named(m), Binds::None) => m.is_empty(),
            (Binds::None, Binds::Positional(v)) | (Binds::Positional(v), Binds::None) => {
                v.is_empty()
            }
            (a, b) => a == b,
        };
        if !same {
            problems.push(format!(
                "{} {}: binds differ:\n  ours:   {:?}\n  theirs: {binds:?}",
                ev.seq, ev.name, o.binds
            ));
        }
    }
    problems
}
