//! The JSON report: the versioned contract described by `schemas/report.schema.json`.

use serde::Serialize;

/// Pretty-printed JSON with a final newline; deterministic for the same value.
pub fn to_string<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        // Serializing our own report types cannot fail (no maps with non-string keys).
        format!("{{\"error\": \"cannot serialize the report: {e}\"}}")
    });
    s.push('\n');
    s
}
