//! The two messages of the plugin protocol that come once per event (`events` out, `result`
//! back), read and written without building `serde_json::Value` trees: on the 100,000-event
//! store they are most of the bytes on the pipe, and generic values cost rehearse about as
//! much CPU as the replay's own SQL. Everything else in the protocol stays a `Value`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::eventlog::{Event, SeqNum};
use crate::js::BindValue;
use crate::materialize::{Binds, Statement};

/// `{"type": "events", "events": [...]}`, borrowing from the log's rows.
#[derive(Serialize)]
pub(super) struct EventsMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub events: Vec<WireEvent<'a>>,
}

/// One event as the helper receives it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireEvent<'a> {
    pub i: u64,
    pub name: &'a str,
    pub args: &'a str,
    pub seq: [i64; 3],
    pub parent: [i64; 3],
    pub client_id: &'a str,
    pub session_id: &'a str,
}

impl<'a> WireEvent<'a> {
    pub(super) fn new(i: u64, ev: &'a Event) -> WireEvent<'a> {
        let seq = |s: &SeqNum| [s.global, s.client, s.rebase_generation];
        WireEvent {
            i,
            name: &ev.name,
            args: &ev.args_json,
            seq: seq(&ev.seq),
            parent: seq(&ev.parent),
            client_id: &ev.client_id,
            session_id: &ev.session_id,
        }
    }
}

/// `{"type": "result", "i": …, "statements": [...]}` (the type is checked before);
/// `writeTables` is not needed here.
#[derive(Deserialize)]
struct ResultMessage<'a> {
    i: u64,
    #[serde(borrow)]
    statements: Vec<WireStatement<'a>>,
}

#[derive(Deserialize)]
struct WireStatement<'a> {
    #[serde(borrow)]
    sql: Cow<'a, str>,
    binds: WireBinds,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireBinds {
    Positional(Vec<WireBind>),
    Named(indexmap::IndexMap<String, WireBind>),
}

impl WireBinds {
    fn into_binds(self) -> Binds {
        match self {
            WireBinds::Positional(v) if v.is_empty() => Binds::None,
            WireBinds::Positional(v) => Binds::Positional(v.into_iter().map(|b| b.0).collect()),
            WireBinds::Named(m) => Binds::Named(m.into_iter().map(|(k, b)| (k, b.0)).collect()),
        }
    }
}

/// Bind values (`$defs/binds`) in a message already read as a `Value`: a query's, or a
/// statement's in a `result` the fast path left alone.
pub(super) fn binds(v: &serde_json::Value) -> Result<Binds, String> {
    WireBinds::deserialize(v)
        .map(WireBinds::into_binds)
        .map_err(|e| format!("bind values {}: {e}", crate::text::truncate(&v.to_string())))
}

/// A tagged bind value: `["i", 1]`, `["s", "text"]`, `["n"]`, … (`$defs/bindValue`).
struct WireBind(BindValue);

impl<'de> Deserialize<'de> for WireBind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireBind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tagged bind value such as [\"i\", 1]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireBind, A::Error> {
                let tag: Cow<'de, str> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("an empty bind value"))?;
                let missing = || de::Error::custom(format!("bind value {tag:?} without a value"));
                let value = match tag.as_ref() {
                    "u" => BindValue::Unbound,
                    "n" => BindValue::Null,
                    "i" => BindValue::Integer(seq.next_element()?.ok_or_else(missing)?),
                    "I" => {
                        let text: Cow<'de, str> = seq.next_element()?.ok_or_else(missing)?;
                        BindValue::Integer(text.parse().map_err(|_| {
                            de::Error::custom(format!("not a 64-bit integer: {text:?}"))
                        })?)
                    }
                    "f" => {
                        #[derive(Deserialize)]
                        #[serde(untagged)]
                        enum Double<'a> {
                            Number(f64),
                            Text(Cow<'a, str>),
                        }
                        match seq.next_element::<Double>()?.ok_or_else(missing)? {
                            Double::Number(x) => BindValue::Real(x),
                            Double::Text(t) => BindValue::Real(t.parse().unwrap_or(f64::NAN)),
                        }
                    }
                    "s" => BindValue::Text(seq.next_element()?.ok_or_else(missing)?),
                    "b" => {
                        use base64::Engine;
                        let text: Cow<'de, str> = seq.next_element()?.ok_or_else(missing)?;
                        BindValue::Blob(
                            base64::engine::general_purpose::STANDARD
                                .decode(text.as_bytes())
                                .map_err(|e| de::Error::custom(format!("not base64: {e}")))?,
                        )
                    }
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown bind value tag {other:?}"
                        )));
                    }
                };
                // Anything after the value is not ours to ignore silently.
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "bind value {tag:?} with more than one value"
                    )));
                }
                Ok(WireBind(value))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A `result` message as the event's id and statements; `None` when the text is not a
/// well-formed `result` (the caller then reads it as a generic message, which also gives
/// the clearer error).
pub(super) fn parse_result(text: &str) -> Option<(u64, Vec<Statement>)> {
    if !text.starts_with(r#"{"type":"result""#) {
        return None;
    }
    let msg: ResultMessage = serde_json::from_str(text).ok()?;
    let statements = msg
        .statements
        .into_iter()
        .map(|st| Statement {
            sql: st.sql.into_owned(),
            binds: st.binds.into_binds(),
            line: None,
            file: None,
            target: None,
        })
        .collect();
    Some((msg.i, statements))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn malformed_results_are_left_to_the_generic_reading() {
        for bad in [
            json!({"type": "result", "i": 1, "statements": [{"sql": "x", "binds": {"positional": [["z", 1]]}}]}),
            json!({"type": "result", "i": 1, "statements": [{"sql": "x", "binds": {"positional": [["i"]]}}]}),
            json!({"type": "result", "i": 1, "statements": [{"sql": "x", "binds": {"positional": [["i", 1, 2]]}}]}),
            json!({"type": "result", "statements": []}),
            json!({"type": "error", "i": 1, "message": "boom"}),
        ] {
            let text = serde_json::to_string(&bad).unwrap();
            assert!(parse_result(&text).is_none(), "{text}");
        }
    }

    #[test]
    fn events_are_written_as_the_protocol_says() {
        let ev = Event {
            seq: SeqNum {
                global: 3,
                client: 1,
                rebase_generation: 0,
            },
            parent: SeqNum {
                global: 3,
                client: 0,
                rebase_generation: 0,
            },
            name: "v1.X".into(),
            args_json: r#"{"a":"é\n"}"#.into(),
            client_id: "c".into(),
            session_id: "s".into(),
            schema_hash: 0,
            sync_metadata_json: String::new(),
        };
        let text = serde_json::to_string(&EventsMessage {
            kind: "events",
            events: vec![WireEvent::new(4, &ev)],
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type": "events", "events": [{"i": 4, "name": "v1.X", "args": "{\"a\":\"é\\n\"}",
                "seq": [3, 1, 0], "parent": [3, 0, 0], "clientId": "c", "sessionId": "s"}]})
        );
    }

    #[test]
    fn bind_values_keep_wa_sqlite_types() {
        let b = binds(&json!({"positional": [["i", 1], ["f", 1735787045678.0], ["s", "x"], ["n"], ["u"], ["I", "9007199254740993"], ["b", "AQI="]]}))
            .unwrap();
        assert_eq!(
            b,
            Binds::Positional(vec![
                BindValue::Integer(1),
                BindValue::Real(1735787045678.0),
                BindValue::Text("x".into()),
                BindValue::Null,
                BindValue::Unbound,
                BindValue::Integer(9007199254740993),
                BindValue::Blob(vec![1, 2]),
            ])
        );
        let b = binds(&json!({"named": {"$id": ["s", "a"]}})).unwrap();
        assert_eq!(
            b,
            Binds::Named(vec![("$id".into(), BindValue::Text("a".into()))])
        );
    }
}
