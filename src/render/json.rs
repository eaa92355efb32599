//! The JSON report: the versioned contract described by `schemas/report.schema.json`.

use std::io::Write;

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

/// The same bytes as [`to_string`], written to `out` as they are made: a report with a hundred
/// thousand findings is tens of megabytes of JSON, which need not be held in memory beside the
/// report itself.
pub fn write<T: Serialize>(value: &T, out: &mut dyn Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}
