//! Event args validation against JSON Schemas (the validate stage).
//!
//! A materializer change is only half of what breaks replay; the other half is an event schema
//! change that old args no longer satisfy (LiveStore then fails to decode them at boot). The
//! schemas are JSON Schemas of each event's *encoded* args, written by hand or exported from
//! the app (Effect's `JSONSchema.make`). They come as a directory holding one
//! `<event name>.json` per event, or as one JSON file mapping event names to schemas.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::js;

/// One way an event's args break its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    /// JSON pointer to the failing value inside the args (`""` for the args themselves).
    pub pointer: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `enum`, …).
    pub keyword: String,
    /// The failing value, as JSON, truncated.
    pub value: String,
    /// The validator's own message.
    pub message: String,
}

/// Compiled event schemas.
pub struct EventSchemas {
    /// Where they came from.
    pub source: PathBuf,
    validators: HashMap<String, jsonschema::Validator>,
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
        let mut validators = HashMap::new();
        for (name, file, schema) in docs {
            let v = jsonschema::validator_for(&schema).map_err(|e| {
                Error::input(
                    &file,
                    format!("the schema of event {name:?} is not a valid JSON Schema: {e}"),
                )
            })?;
            validators.insert(name, v);
        }
        Ok(EventSchemas {
            source: path.to_path_buf(),
            validators,
        })
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
            .map(|e| ArgsError {
                pointer: e.instance_path().to_string(),
                keyword: e.kind().keyword().to_string(),
                value: crate::text::truncate(&js::stringify(e.instance())),
                message: e.to_string(),
            })
            .collect()
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
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
        assert_eq!(errs[0].value, "\"seven\"");
        let errs = s.validate("v1.X", &json!({}));
        assert_eq!(errs[0].keyword, "required");
        assert_eq!(errs[0].pointer, "");
    }
}
