//! `args.x | schema`: an arg as LiveStore writes it after decoding the args with the event's
//! schema and encoding the value again (a JSON column's `JSON.stringify(encode(value))`).
//!
//! Decoding and encoding are not the identity on args another writer wrote: a struct's fields
//! come out in the schema's order and fields the schema does not know are dropped (Effect
//! ignores them), and a `Schema.Date` string comes out as `toISOString` writes it. The event's
//! exported JSON Schema (`rehearse schema export`) holds exactly that: `properties` in schema
//! order, `additionalProperties` for a record, the `js-date` format. A decoding it cannot state
//! (`x-unchecked`) passes the value through as the args hold it.

use serde_json::{Map, Value};

use super::path::PathStep;
use crate::js;

/// The part of `root` (an event's args schema) that describes `path` into the args.
pub(crate) fn schema_at<'a>(root: &'a Value, path: &[PathStep]) -> Result<&'a Value, String> {
    let mut cur = resolve(root, root)?;
    for step in path {
        let next = match step {
            PathStep::Key(k) => branches(root, cur)?.into_iter().find_map(|b| {
                b.get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| b.get("additionalProperties").filter(|a| a.is_object()))
            }),
            PathStep::Index(i) => {
                branches(root, cur)?
                    .into_iter()
                    .find_map(|b| match b.get("items") {
                        Some(Value::Array(items)) => items
                            .get(*i)
                            .or_else(|| b.get("additionalItems").filter(|a| a.is_object())),
                        Some(items @ Value::Object(_)) => Some(items),
                        _ => None,
                    })
            }
        };
        let Some(next) = next else {
            return Err(format!(
                "the event's schema has no place for `{}`",
                describe_step(step)
            ));
        };
        cur = resolve(root, next)?;
    }
    Ok(cur)
}

fn describe_step(step: &PathStep) -> String {
    match step {
        PathStep::Key(k) => k.clone(),
        PathStep::Index(i) => format!("[{i}]"),
    }
}

/// `schema`, its `$ref` followed (to `root`'s `$defs`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> Result<&'a Value, String> {
    let mut cur = schema;
    for _ in 0..64 {
        let Some(reference) = cur.get("$ref").and_then(Value::as_str) else {
            return Ok(cur);
        };
        let name = reference
            .strip_prefix("#/$defs/")
            .ok_or_else(|| format!("the schema's $ref {reference:?} is not to its own $defs"))?;
        cur = root
            .get("$defs")
            .and_then(|d| d.get(name))
            .ok_or_else(|| format!("the schema's $ref {reference:?} leads nowhere"))?;
    }
    Err("the schema's $refs go round in a circle".to_string())
}

/// The alternatives `schema` allows: its `anyOf` members, or itself.
fn branches<'a>(root: &'a Value, schema: &'a Value) -> Result<Vec<&'a Value>, String> {
    match schema.get("anyOf").and_then(Value::as_array) {
        Some(members) => members.iter().map(|m| resolve(root, m)).collect(),
        None => Ok(vec![schema]),
    }
}

/// `value` decoded and encoded again with `schema` (part of `root`).
pub(crate) fn reencode(value: &Value, schema: &Value, root: &Value) -> Result<Value, String> {
    let schema = resolve(root, schema)?;
    if let Some(members) = schema.get("anyOf").and_then(Value::as_array) {
        // Effect's union decodes with its first member that accepts the value.
        for member in members {
            let member = resolve(root, member)?;
            if accepts(member, root, value)? {
                return reencode(value, member, root);
            }
        }
        return Err(format!(
            "{} matches none of the schema's alternatives",
            crate::text::truncate(&js::stringify(value))
        ));
    }
    Ok(match value {
        Value::String(s) if schema.get("format").and_then(Value::as_str) == Some("js-date") => {
            let ms = js::parse_date(s)?;
            Value::String(js::format_iso(ms)?)
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let patterns = schema.get("patternProperties").and_then(Value::as_object);
            if properties.is_none() && additional.is_none() && patterns.is_none() {
                return Ok(value.clone());
            }
            let mut out = Map::new();
            // The struct's fields in the schema's order, then what its index signatures
            // take, in the args' order; the rest is dropped.
            for (key, field) in properties.into_iter().flatten() {
                if let Some(v) = fields.get(key) {
                    out.insert(key.clone(), reencode(v, field, root)?);
                }
            }
            for (key, v) in fields {
                if properties.is_some_and(|p| p.contains_key(key)) {
                    continue;
                }
                let index = match patterns.and_then(|p| matching_pattern(p, key)) {
                    Some(s) => Some(s),
                    None => additional,
                };
                if let Some(field) = index {
                    out.insert(key.clone(), reencode(v, field, root)?);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                let item = match schema.get("items") {
                    Some(Value::Array(tuple)) => tuple
                        .get(i)
                        .or_else(|| schema.get("additionalItems").filter(|a| a.is_object())),
                    Some(s @ Value::Object(_)) => Some(s),
                    _ => None,
                };
                out.push(match item {
                    Some(s) => reencode(v, s, root)?,
                    None => v.clone(),
                });
            }
            Value::Array(out)
        }
        other => other.clone(),
    })
}

/// The schema of the first of `patterns` whose regex matches `key`.
fn matching_pattern<'a>(patterns: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    patterns.iter().find_map(|(pattern, schema)| {
        let validator = jsonschema::validator_for(&serde_json::json!({"pattern": pattern})).ok()?;
        validator
            .is_valid(&Value::String(key.to_string()))
            .then_some(schema)
    })
}

/// Whether `schema` (part of `root`) accepts `value`, as the union member Effect would decode
/// it with.
fn accepts(schema: &Value, root: &Value, value: &Value) -> Result<bool, String> {
    let mut standalone = schema.clone();
    if let (Value::Object(map), Some(defs)) = (&mut standalone, root.get("$defs")) {
        map.insert("$defs".to_string(), defs.clone());
    }
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .with_format(crate::validate::JS_DATE_FORMAT, |s: &str| {
            js::js_date_is_valid(s) != Some(false)
        })
        .build(&standalone)
        .map_err(|e| format!("the event's schema is not a valid JSON Schema: {e}"))?;
    Ok(validator.is_valid(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "meta": {
                    "type": "object",
                    "required": ["tags", "title"],
                    "properties": {
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "title": {"type": "string"},
                        "due": {"type": "string", "format": "js-date"},
                        "flags": {"type": "object", "additionalProperties": {"type": "boolean"}},
                        "when": {"anyOf": [{"type": "null"}, {"type": "string", "format": "js-date"}]}
                    }
                }
            }
        })
    }

    /// Fields come out in the schema's order, unknown ones dropped, a record's keys kept, a date
    /// as toISOString writes it.
    #[test]
    fn args_come_out_as_the_schema_encodes_them() {
        let root = schema();
        let at = schema_at(&root, &[PathStep::Key("meta".into())]).unwrap();
        let written = json!({"title": "t", "legacy": 1, "due": "2024-06-01", "tags": ["a"],
            "flags": {"b": true, "2": false}, "when": "2024-06-01T10:00+01:00"});
        let out = reencode(&written, at, &root).unwrap();
        assert_eq!(
            js::stringify(&out),
            r#"{"tags":["a"],"title":"t","due":"2024-06-01T00:00:00.000Z","flags":{"2":false,"b":true},"when":"2024-06-01T09:00:00.000Z"}"#
        );
        let e = schema_at(&root, &[PathStep::Key("nope".into())]).unwrap_err();
        assert!(e.contains("no place for `nope`"), "{e}");
    }
}
