//! The plugin protocol's messages as rehearse reads and answers them, kept apart from the
//! processes that carry them so that what a line *means* can be tested without Node.js.
//! `schemas/plugin-protocol.schema.json` specifies every message; the two that come once per
//! event have a fast path of their own in [`wire`].

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rusqlite::Connection;
use serde_json::{Value, json};

use super::wire;
use crate::error::{Error, Result};
use crate::materialize::{Outcome, Rejection, Statement};
use crate::report::FindingClass;

/// The protocol version this build speaks.
pub(super) const PROTOCOL_VERSION: u64 = 1;

/// What marks a protocol line on the helper's stdout.
pub(super) const PREFIX: &str = "\u{1e}RH1 ";

/// The message that ends a session.
pub(super) const BYE: &[u8] = b"{\"type\":\"bye\"}\n";

/// A message from the helper.
pub(super) enum Reply {
    /// What the helper made of an event: its id and the outcome (or why the answer makes no
    /// sense).
    Answer(u64, std::result::Result<Outcome, String>),
    /// Any other message.
    Other(Value),
    /// A line that is not JSON: the parser's complaint and the line.
    Invalid(String, String),
}

impl Reply {
    pub(super) fn parse(text: &str) -> Reply {
        match Reply::parse_json(text) {
            // A string the materializer built may hold a lone surrogate (text cut inside an
            // emoji), which JSON.stringify writes as an escape serde_json refuses; wa-sqlite
            // would bind U+FFFD in its place, and so does rehearse.
            Reply::Invalid(e, line) => match crate::js::replace_lone_surrogates(text) {
                Some(replaced) => match Reply::parse_json(&replaced) {
                    Reply::Invalid(..) => Reply::Invalid(e, line),
                    reply => reply,
                },
                None => Reply::Invalid(e, line),
            },
            reply => reply,
        }
    }

    fn parse_json(text: &str) -> Reply {
        if let Some((i, statements)) = wire::parse_result(text) {
            return Reply::Answer(i, Ok(Outcome::Statements(statements)));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(msg) => match (msg["type"].as_str(), msg["i"].as_u64()) {
                (Some("result" | "unknown" | "invalid-args" | "error"), Some(i)) => {
                    Reply::Answer(i, outcome(&msg))
                }
                _ => Reply::Other(msg),
            },
            Err(e) => Reply::Invalid(e.to_string(), text.to_string()),
        }
    }
}

/// The event id an answer the helper wrote names at its start (`{"type":"result","i":12,…`),
/// even when the rest of it does not parse.
pub(super) fn answered_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let (kind, rest) = rest.split_once('"')?;
    if !matches!(kind, "result" | "unknown" | "invalid-args" | "error") {
        return None;
    }
    let digits = rest.strip_prefix(r#","i":"#)?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A JSON array's strings.
pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The file that receives every message, one JSON line each, both ways
/// ([`PluginConfig::trace`](super::PluginConfig::trace)); shared by every helper's threads,
/// so that a trace holds whole lines in the order they passed.
#[derive(Clone, Default)]
pub(super) struct Trace(Option<Arc<Mutex<std::fs::File>>>);

impl Trace {
    /// Appends to the file at `path`, or traces nothing.
    pub(super) fn open(path: Option<&Path>) -> Result<Trace> {
        Ok(Trace(match path {
            Some(p) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Error::io(p, e))?,
            ))),
            None => None,
        }))
    }

    /// Appends a message.
    pub(super) fn record(&self, line: &[u8]) {
        if let Some(t) = &self.0
            && let Ok(mut f) = t.lock()
        {
            let _ = f.write_all(line);
            if !line.ends_with(b"\n") {
                let _ = f.write_all(b"\n");
            }
        }
    }
}

/// An answer as the replay's outcome.
pub(super) fn outcome(reply: &Value) -> std::result::Result<Outcome, String> {
    match reply["type"].as_str() {
        Some("unknown") => Ok(Outcome::Unknown),
        Some("invalid-args") => {
            let issues = reply["issues"].as_array().cloned().unwrap_or_default();
            let describe = |issue: &Value| {
                let path: String = issue["path"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .map(|seg| match seg {
                                Value::Number(n) => format!("[{n}]"),
                                Value::String(s) => format!(".{s}"),
                                other => format!(".{other}"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "args{path}: {}",
                    issue["message"].as_str().unwrap_or("does not decode")
                )
            };
            let first = issues
                .first()
                .map(describe)
                .unwrap_or_else(|| "the args do not decode".into());
            let more = match issues.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            Ok(Outcome::Rejected(Rejection {
                class: FindingClass::InvalidArgs,
                message: format!(
                    "{first}{more}: the args no longer decode with the event's schema; not replayed"
                ),
                pointer: issues.first().map(|issue| pointer(&issue["path"])),
            }))
        }
        Some("error") => Ok(Outcome::Rejected(Rejection {
            class: FindingClass::MaterializerError,
            message: format!(
                "the materializer threw: {}",
                reply["message"].as_str().unwrap_or("")
            ),
            pointer: None,
        })),
        Some("result") => {
            let mut statements = Vec::new();
            for st in reply["statements"].as_array().into_iter().flatten() {
                let sql = st["sql"]
                    .as_str()
                    .ok_or("a statement without SQL")?
                    .to_string();
                statements.push(Statement {
                    sql,
                    binds: wire::binds(&st["binds"])?,
                    line: None,
                    file: None,
                    target: None,
                });
            }
            Ok(Outcome::Statements(statements))
        }
        _ => Err(format!("unexpected answer {reply}")),
    }
}

/// The JSON pointer of an Effect issue's path (`["checklist", 0, "done"]` is
/// `/checklist/0/done`), as the SQL path's JSON Schema validation names the same place.
fn pointer(path: &Value) -> String {
    path.as_array()
        .into_iter()
        .flatten()
        .map(|seg| match seg {
            Value::String(s) => format!("/{}", crate::validate::escape_pointer(s)),
            other => format!("/{other}"),
        })
        .collect()
}

/// Runs a materializer's `ctx.query` on the scratch database: the `rows` (or `query-error`)
/// message that answers it.
pub(super) fn run_query(conn: &Connection, msg: &Value) -> Value {
    // The app's SQL, confined as an event's own statements are (`sqlite::confine`).
    let result = crate::sqlite::event_sql(|| -> std::result::Result<Vec<Value>, String> {
        let sql = msg["sql"].as_str().ok_or("a query without SQL")?;
        let binds = wire::binds(&msg["binds"])?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        crate::materialize::binds::bind(&mut stmt, &binds).map_err(|e| e.to_string())?;
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                use rusqlite::types::ValueRef;
                let v = match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(x) => json!(x),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => {
                        json!({"$blob": base64::engine::general_purpose::STANDARD.encode(b)})
                    }
                };
                obj.insert(name.clone(), v);
            }
            out.push(Value::Object(obj));
        }
        Ok(out)
    })
    .map_err(crate::sqlite::explain_refusal);
    match result {
        Ok(rows) => json!({"type": "rows", "rows": rows}),
        Err(message) => json!({"type": "query-error", "message": message}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::BindValue;
    use crate::materialize::Binds;

    #[test]
    fn a_broken_answer_still_names_its_event() {
        assert_eq!(
            answered_id(r#"{"type":"result","i":12,"statements":[{"sql":"\ud83d"#),
            Some(12)
        );
        assert_eq!(
            answered_id(r#"{"type":"error","i":0,"message":"x"}"#),
            Some(0)
        );
        assert_eq!(answered_id(r#"{"type":"ready","i":3}"#), None);
        assert_eq!(answered_id(r#"{"type": "result", "i": 3}"#), None);
        assert_eq!(answered_id(r#"{"type":"result","i":"#), None);
    }

    #[test]
    fn the_closing_message_is_what_serde_writes() {
        let mut bye = serde_json::to_vec(&json!({"type": "bye"})).unwrap();
        bye.push(b'\n');
        assert_eq!(bye, BYE);
    }

    /// The typed reading ([`wire::parse_result`]) gives what the generic one gives.
    #[test]
    fn results_read_typed_equal_the_generic_reading() {
        let msg = json!({
            "type": "result",
            "i": 7,
            "statements": [
                {"sql": "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "binds": {"positional": [
                    ["i", 1], ["I", "9007199254740993"], ["f", 1.5], ["f", "NaN"], ["s", "a\"b"],
                    ["b", "AAE="], ["n"], ["u"]
                ]}, "writeTables": ["t"]},
                {"sql": "UPDATE t SET a = $a", "binds": {"named": {"$a": ["s", "x"], "$b": ["i", -2]}}, "writeTables": null},
                {"sql": "DELETE FROM t", "binds": {"positional": []}, "writeTables": null}
            ]
        });
        let text = serde_json::to_string(&msg).unwrap();
        let (i, typed) = wire::parse_result(&text).expect("a result");
        assert_eq!(i, 7);
        let generic = match outcome(&msg) {
            Ok(Outcome::Statements(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(format!("{typed:?}"), format!("{generic:?}"));
        assert!(matches!(
            &typed[0].binds,
            Binds::Positional(v) if v[1] == BindValue::Integer(9_007_199_254_740_993)
                && v[5] == BindValue::Blob(vec![0, 1]) && v[7] == BindValue::Unbound
        ));
    }
}
