//! Event args validation against JSON Schemas (the validate stage).
//!
//! A materializer change is only half of what breaks replay; the other half is an event schema
//! change that old args no longer satisfy (LiveStore then fails to decode them at boot). The
//! schemas are JSON Schemas of each event's *encoded* args, written by hand or exported from
//! the app (`rehearse schema export`). They come as a directory holding one `<event name>.json`
//! per event, or as one JSON file mapping event names to schemas.
//!
//! Two extensions say what LiveStore's decoding checks beyond plain JSON Schema: the `js-date`
//! format (a string `new Date` turns into a valid date: `Schema.Date`), checked here as far as
//! it can be known without V8's heuristic date parser, and `x-unchecked`, the checks no JSON
//! Schema can state (a custom filter, a decoding that may fail), listed by
//! [`EventSchemas::unchecked`] so that a run can say where it checks less than LiveStore.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::js;

/// One way an event's args break its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    /// JSON pointer to the failing value inside the args (`""` for the args themselves); for a
    /// missing field, where the field belongs, as LiveStore's decoder names it.
    pub pointer: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `enum`, …).
    pub keyword: String,
    /// The failing value, as JSON, truncated; none for a missing field.
    pub value: Option<String>,
    /// The validator's own message.
    pub message: String,
}

/// A check LiveStore makes that an event's JSON Schema cannot state (`x-unchecked`), so the
/// SQL path does not make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// The event.
    pub event: String,
    /// Where in the args, as a JSON pointer; `*` stands for every element or value.
    pub pointer: String,
    /// What is not checked, in Effect's words ("a string to be decoded into a number").
    pub what: String,
}

/// The `format` LiveStore's `Schema.Date` has in exported schemas.
pub const JS_DATE_FORMAT: &str = "js-date";

/// Compiled event schemas.
pub struct EventSchemas {
    /// Where they came from.
    pub source: PathBuf,
    validators: HashMap<String, jsonschema::Validator>,
    /// The schemas themselves, by event, for `| schema` in SQL definitions.
    documents: HashMap<String, Value>,
    unchecked: Vec<Unchecked>,
}

impl std::fmt::Debug for EventSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.validators.keys().collect();
        names.sort();
        f.debug_struct("EventSchemas")
            .field("source", &self.source)
            .field("events", &names)
            .finish()
    }
}

impl EventSchemas {
    /// Compiles schemas given by event name; `source` names them in messages.
    pub(crate) fn from_documents(
        source: &Path,
        docs: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<EventSchemas> {
        EventSchemas::compile(
            source,
            docs.into_iter()
                .map(|(name, schema)| (name, source.to_path_buf(), schema))
                .collect(),
        )
    }

    /// Loads the schemas at `path`: a directory of `<event name>.json` files, or one file
    /// mapping event names to schemas.
    pub fn load(path: &Path) -> Result<EventSchemas> {
        let mut docs: Vec<(String, PathBuf, Value)> = Vec::new();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for file in files {
                let name = file
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let doc = read_json(&file)?;
                docs.push((name, file, doc));
            }
        } else {
            let doc = read_json(path)?;
            let Value::Object(map) = doc else {
                return Err(Error::input(
                    path,
                    "an event schema file maps event names to JSON Schemas: expected a JSON object",
                ));
            };
            for (name, schema) in map {
                docs.push((name, path.to_path_buf(), schema));
            }
        }
        EventSchemas::compile(path, docs)
    }

    fn compile(path: &Path, mut docs: Vec<(String, PathBuf, Value)>) -> Result<EventSchemas> {
        let mut validators = HashMap::new();
        let mut unchecked = Vec::new();
        let mut documents = HashMap::new();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file, schema) in docs {
            let v = jsonschema::options()
                .should_validate_formats(true)
                .with_format(JS_DATE_FORMAT, |s: &str| {
                    // Only what V8 is known to reject: the rest is its heuristic parser's call.
                    js::js_date_is_valid(s) != Some(false)
                })
                .build(&schema)
                .map_err(|e| {
                    Error::input(
                        &file,
                        format!("the schema of event {name:?} is not a valid JSON Schema: {e}"),
                    )
                })?;
            collect_unchecked(&name, &schema, "", &mut unchecked);
            validators.insert(name.clone(), v);
            documents.insert(name, schema);
        }
        Ok(EventSchemas {
            source: path.to_path_buf(),
            validators,
            documents,
            unchecked,
        })
    }

    /// The JSON Schema of `event`'s args, as loaded.
    pub(crate) fn schema(&self, event: &str) -> Option<&Value> {
        self.documents.get(event)
    }

    /// The checks LiveStore makes that these schemas cannot state, by event and place.
    pub fn unchecked(&self) -> &[Unchecked] {
        &self.unchecked
    }

    /// Whether there is a schema for `event`.
    pub fn has(&self, event: &str) -> bool {
        self.validators.contains_key(event)
    }

    /// How many events have a schema.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether no event has a schema.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The ways `args` break the schema of `event`, in the validator's order; empty when the
    /// args are valid or the event has no schema.
    pub fn validate(&self, event: &str, args: &Value) -> Vec<ArgsError> {
        let Some(v) = self.validators.get(event) else {
            return Vec::new();
        };
        if v.is_valid(args) {
            return Vec::new();
        }
        v.iter_errors(args)
            .map(|e| {
                let at = e.instance_path().to_string();
                match e.kind() {
                    // The object is where it fails; the field is what the decoder names.
                    jsonschema::error::ValidationErrorKind::Required { property } => ArgsError {
                        pointer: format!(
                            "{at}/{}",
                            escape_pointer(property.as_str().unwrap_or_default())
                        ),
                        keyword: "required".to_string(),
                        value: None,
                        message: e.to_string(),
                    },
                    kind => ArgsError {
                        pointer: at,
                        keyword: kind.keyword().to_string(),
                        value: Some(crate::text::truncate(&js::stringify(e.instance()))),
                        message: e.to_string(),
                    },
                }
            })
            .collect()
    }
}

/// One JSON pointer segment (RFC 6901: `~` as `~0`, `/` as `~1`).
pub(crate) fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Every `x-unchecked` in `schema`, found at `pointer` in the args.
fn collect_unchecked(event: &str, schema: &Value, pointer: &str, out: &mut Vec<Unchecked>) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(notes) = map.get("x-unchecked") {
        let notes = match notes {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => Vec::new(),
        };
        for what in notes {
            out.push(Unchecked {
                event: event.to_string(),
                pointer: pointer.to_string(),
                what: what.to_string(),
            });
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, v) in props {
            collect_unchecked(event, v, &format!("{pointer}/{}", escape_pointer(k)), out);
        }
    }
    let every = format!("{pointer}/*");
    for key in ["additionalProperties", "additionalItems"] {
        if let Some(v) = map.get(key) {
            collect_unchecked(event, v, &every, out);
        }
    }
    if let Some(Value::Object(patterns)) = map.get("patternProperties") {
        for v in patterns.values() {
            collect_unchecked(event, v, &every, out);
        }
    }
    match map.get("items") {
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                collect_unchecked(event, v, &format!("{pointer}/{i}"), out);
            }
        }
        Some(v) => collect_unchecked(event, v, &every, out),
        None => {}
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(items)) = map.get(key) {
            for v in items {
                collect_unchecked(event, v, pointer, out);
            }
        }
    }
    // A recursive schema's own part: where it recurs is not followed.
    if pointer.is_empty()
        && let Some(Value::Object(defs)) = map.get("$defs")
    {
        for (name, v) in defs {
            collect_unchecked(event, v, &format!("/(recursive {name})"), out);
        }
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = crate::files::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_carry_pointer_keyword_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schemas.json");
        std::fs::write(
            &file,
            r#"{"v1.X": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "patch": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}"#,
        )
        .unwrap();
        let s = EventSchemas::load(&file).unwrap();
        assert!(s.has("v1.X"));
        assert!(s.validate("v1.X", &json!({"id": "a"})).is_empty());
        assert!(s.validate("v1.Unknown", &json!(3)).is_empty());
        let errs = s.validate("v1.X", &json!({"id": "a", "patch": {"n": "seven"}}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].pointer, "/patch/n");
        assert_eq!(errs[0].keyword, "type");
        assert_eq!(errs[0].value.as_deref(), Some("\"seven\""));
        // A missing field is named where it belongs, as LiveStore's decoder names it.
        let errs = s.validate("v1.X", &json!({}));
        assert_eq!(errs[0].keyword, "required");
        assert_eq!(errs[0].pointer, "/id");
        assert_eq!(errs[0].value, None);
    }

    /// What `schema export` writes for `Schema.Int`, `Schema.Date` and a decoding no JSON
    /// Schema states: a fractional integer and an invalid date fail as LiveStore's decoding
    /// fails them, extra keys pass as LiveStore ignores them, and the unstated check is listed.
    #[test]
    fn exported_checks_hold_as_livestore_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schemas.json");
        std::fs::write(
            &file,
            r#"{"v1.X": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "required": ["n", "at"],
                "properties": {"n": {"type": "integer"}, "at": {"type": "string", "format": "js-date"},
                  "count": {"type": "string", "x-unchecked": ["a string to be decoded into a number"]},
                  "list": {"type": "array", "items": {"type": "string", "x-unchecked": ["a filter"]}}}}}"#,
        )
        .unwrap();
        let s = EventSchemas::load(&file).unwrap();
        let ok = json!({"n": 2, "at": "+275760-09-13T00:00:00.000Z", "extra": true});
        assert!(s.validate("v1.X", &ok).is_empty());
        let errs = s.validate("v1.X", &json!({"n": 1.5, "at": "2024-01-01T00:00:00.000Z"}));
        assert_eq!(
            (errs[0].pointer.as_str(), errs[0].keyword.as_str()),
            ("/n", "type")
        );
        let errs = s.validate("v1.X", &json!({"n": 1, "at": "2024-13-01T00:00:00.000Z"}));
        assert_eq!(
            (errs[0].pointer.as_str(), errs[0].keyword.as_str()),
            ("/at", "format")
        );
        // V8's heuristic parser decides these; they are not rejected.
        assert!(
            s.validate("v1.X", &json!({"n": 1, "at": "Jan 1 2024"}))
                .is_empty()
        );
        let listed: Vec<(&str, &str)> = s
            .unchecked()
            .iter()
            .map(|u| (u.pointer.as_str(), u.what.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("/count", "a string to be decoded into a number"),
                ("/list/*", "a filter")
            ]
        );
    }
}
