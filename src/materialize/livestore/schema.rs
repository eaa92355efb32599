//! What the app's schema says about itself, as its own LiveStore reads it: the `ready` a
//! helper sends once it has loaded the module, and `rehearse schema export`'s files. These are
//! the plugin's view of the app for the rest of rehearse (which tables to compare, which DDL
//! builds the scratch state) and for the SQL path (event schemas exported once, read back).

use std::path::Path;

use serde_json::Value;

use super::protocol::strings;
use crate::error::{Error, Result};

/// What the helper says once the schema is loaded.
#[derive(Debug, Clone)]
pub struct SchemaInfo {
    /// `liveStoreVersion` of the app's LiveStore.
    pub livestore_version: Option<String>,
    /// The state schema hash (the number in `state<hash>@6.db`).
    pub state_schema_hash: String,
    /// Event names.
    pub events: Vec<String>,
    /// User tables and their columns.
    pub tables: indexmap::IndexMap<String, Vec<String>>,
    /// LiveStore's own `CREATE` statements for the user tables.
    pub ddl: Vec<String>,
    /// The Effect constructors the helpers remember per schema: none with
    /// [`Memo::Off`](super::Memo::Off), nor by default before Node.js 22.15.
    pub memoized: Vec<String>,
}

impl SchemaInfo {
    /// Reads a `ready` message.
    pub(super) fn from_ready(ready: &Value) -> SchemaInfo {
        SchemaInfo {
            livestore_version: ready["livestoreVersion"].as_str().map(str::to_string),
            state_schema_hash: ready["stateSchemaHash"].as_str().unwrap_or("").to_string(),
            events: strings(&ready["events"]),
            tables: ready["tables"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| {
                            Some((t["name"].as_str()?.to_string(), strings(&t["columns"])))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ddl: strings(&ready["ddl"]),
            memoized: strings(&ready["memoized"]),
        }
    }

    /// The DDL as one SQL text, a statement to a line.
    pub(super) fn ddl_text(&self) -> String {
        self.ddl.iter().map(|s| format!("{s};\n")).collect()
    }
}

/// What the app's schema says about its events, tables and client documents: what a draft of
/// SQL definitions starts from ([`describe_app`](super::describe_app)).
#[derive(Debug, Clone)]
pub struct AppSchema {
    /// The JSON Schema of each event's encoded args, by event name (sorted).
    pub events: indexmap::IndexMap<String, Value>,
    /// The user tables (client documents excepted) and their columns, with how each column's
    /// schema stores a value (`plain`, `boolean`, `json`, `datetime`, `datetimeInteger`, or
    /// `other` for an encoding no column kind states).
    pub tables: Vec<(String, Vec<(String, String)>)>,
    /// The client documents.
    pub client_documents: Vec<AppClientDocument>,
    /// LiveStore's own `CREATE` statements for the user tables, one a line.
    pub ddl: String,
}

/// A client document as the app declares it.
#[derive(Debug, Clone)]
pub struct AppClientDocument {
    /// Table name.
    pub name: String,
    /// The default value (`default.value`).
    pub default: Value,
    /// The value schema's fields, in order; none for a value the derived `…Set` sets whole.
    pub keys: Vec<String>,
    /// `partialSet`.
    pub partial_set: bool,
}

impl AppSchema {
    /// Reads the helper's `schemas` answer, with the `ready` it sent before.
    pub(super) fn from_answer(schemas: &Value, info: &SchemaInfo) -> AppSchema {
        let events = schemas["events"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let tables = schemas["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let columns = t["columns"]
                    .as_array()?
                    .iter()
                    .filter_map(|c| {
                        Some((
                            c["name"].as_str()?.to_string(),
                            c["kind"].as_str()?.to_string(),
                        ))
                    })
                    .collect();
                Some((t["name"].as_str()?.to_string(), columns))
            })
            .collect();
        let client_documents = schemas["clientDocuments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some(AppClientDocument {
                    name: d["name"].as_str()?.to_string(),
                    default: d["default"]["value"].clone(),
                    keys: strings(&d["keys"]),
                    partial_set: d["partialSet"].as_bool().unwrap_or(true),
                })
            })
            .collect();
        AppSchema {
            events,
            tables,
            client_documents,
            ddl: info.ddl_text(),
        }
    }
}

/// What [`export_schema`](super::export_schema) wrote.
#[derive(Debug, Clone, Copy)]
pub struct ExportedSchema {
    /// Event schemas written.
    pub events: usize,
    /// Client documents listed.
    pub client_documents: usize,
}

/// Writes the helper's `schemas` answer and `info`'s DDL into `out`: `events/<name>.json`,
/// `state.sql` and `client-documents.json`, each file atomically. `module` names the app in
/// errors.
pub(super) fn write_export(
    schemas: &Value,
    info: &SchemaInfo,
    module: &Path,
    out: &Path,
) -> Result<ExportedSchema> {
    let events_dir = out.join("events");
    std::fs::create_dir_all(&events_dir).map_err(|e| Error::io(&events_dir, e))?;
    let pretty = |v: &Value| {
        let mut text = serde_json::to_string_pretty(v).expect("JSON serializes");
        text.push('\n');
        text
    };
    let mut events = 0;
    if let Some(map) = schemas["events"].as_object() {
        for (name, schema) in map {
            if name.contains('/') || name.starts_with('.') {
                return Err(Error::input(
                    module,
                    format!("the event name {name:?} cannot be a file name"),
                ));
            }
            crate::files::write_atomic(
                &events_dir.join(format!("{name}.json")),
                pretty(schema).as_bytes(),
            )?;
            events += 1;
        }
    }
    crate::files::write_atomic(&out.join("state.sql"), info.ddl_text().as_bytes())?;
    let docs = schemas["clientDocuments"].clone();
    crate::files::write_atomic(&out.join("client-documents.json"), pretty(&docs).as_bytes())?;
    Ok(ExportedSchema {
        events,
        client_documents: docs.as_array().map_or(0, Vec::len),
    })
}
