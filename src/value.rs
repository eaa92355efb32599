//! SQLite values as rehearse compares, orders and reports them.
//!
//! Comparison is by storage class first (`1` ≠ `'1'` ≠ `1.0`, NULL ≠ `''`), ordering follows
//! SQLite's BINARY collation so that rehearse can merge two `ORDER BY` streams, and the JSON
//! form keeps the storage class and survives text that is not UTF-8 (ripgrep's rule: text when
//! it is text, base64 bytes when it is not).

use std::cmp::Ordering;
use std::fmt;

use base64::Engine;
use rusqlite::types::ValueRef;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// An owned SQLite value with its storage class.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL
    Null,
    /// INTEGER
    Integer(i64),
    /// REAL
    Real(f64),
    /// TEXT, as bytes (SQLite does not promise UTF-8).
    Text(Vec<u8>),
    /// BLOB
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for SqlValue {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => SqlValue::Null,
            ValueRef::Integer(i) => SqlValue::Integer(i),
            ValueRef::Real(r) => SqlValue::Real(r),
            ValueRef::Text(t) => SqlValue::Text(t.to_vec()),
            ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
        }
    }
}

impl SqlValue {
    /// Copies an `sqlite3_value` into an owned value, keeping its storage class.
    ///
    /// # Safety
    /// `v` must be a valid `sqlite3_value` pointer.
    pub(crate) unsafe fn from_raw(v: *mut rusqlite::ffi::sqlite3_value) -> SqlValue {
        use rusqlite::ffi;
        // SAFETY: the caller guarantees v is valid; text and blob pointers cover `bytes`.
        unsafe {
            let bytes = |p: *const u8| {
                let n = ffi::sqlite3_value_bytes(v);
                if p.is_null() || n <= 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(p, n as usize).to_vec()
                }
            };
            match ffi::sqlite3_value_type(v) {
                ffi::SQLITE_INTEGER => SqlValue::Integer(ffi::sqlite3_value_int64(v)),
                ffi::SQLITE_FLOAT => SqlValue::Real(ffi::sqlite3_value_double(v)),
                ffi::SQLITE_TEXT => SqlValue::Text(bytes(ffi::sqlite3_value_text(v))),
                ffi::SQLITE_BLOB => SqlValue::Blob(bytes(ffi::sqlite3_value_blob(v) as *const u8)),
                _ => SqlValue::Null,
            }
        }
    }

    /// SQLite's `typeof()` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SqlValue::Null => "null",
            SqlValue::Integer(_) => "integer",
            SqlValue::Real(_) => "real",
            SqlValue::Text(_) => "text",
            SqlValue::Blob(_) => "blob",
        }
    }

    /// Exact equality: same storage class and same value.
    pub fn same(&self, other: &SqlValue) -> bool {
        match (self, other) {
            (SqlValue::Null, SqlValue::Null) => true,
            (SqlValue::Integer(a), SqlValue::Integer(b)) => a == b,
            (SqlValue::Real(a), SqlValue::Real(b)) => a == b || (a.is_nan() && b.is_nan()),
            (SqlValue::Text(a), SqlValue::Text(b)) => a == b,
            (SqlValue::Blob(a), SqlValue::Blob(b)) => a == b,
            _ => false,
        }
    }

    /// The text as UTF-8, when it is text and valid.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(t) => std::str::from_utf8(t).ok(),
            _ => None,
        }
    }

    /// SQLite's BINARY-collation order, with integers before reals on numeric ties (the order
    /// of `ORDER BY x COLLATE BINARY, typeof(x)`).
    pub fn sqlite_cmp(&self, other: &SqlValue) -> Ordering {
        fn rank(v: &SqlValue) -> u8 {
            match v {
                SqlValue::Null => 0,
                SqlValue::Integer(_) | SqlValue::Real(_) => 1,
                SqlValue::Text(_) => 2,
                SqlValue::Blob(_) => 3,
            }
        }
        match (self, other) {
            (SqlValue::Integer(a), SqlValue::Integer(b)) => a.cmp(b),
            (SqlValue::Real(a), SqlValue::Real(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (SqlValue::Integer(i), SqlValue::Real(r)) => int_float_cmp(*i, *r).then(Ordering::Less),
            (SqlValue::Real(r), SqlValue::Integer(i)) => {
                int_float_cmp(*i, *r).reverse().then(Ordering::Greater)
            }
            (SqlValue::Text(a), SqlValue::Text(b)) | (SqlValue::Blob(a), SqlValue::Blob(b)) => {
                a.cmp(b)
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// A canonical byte encoding, used to look rows up by key.
    pub fn encode_key(values: &[SqlValue]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            match v {
                SqlValue::Null => out.push(0),
                SqlValue::Integer(i) => {
                    out.push(1);
                    out.extend_from_slice(&i.to_be_bytes());
                }
                SqlValue::Real(r) => {
                    out.push(2);
                    out.extend_from_slice(&r.to_bits().to_be_bytes());
                }
                SqlValue::Text(t) | SqlValue::Blob(t) => {
                    out.push(if matches!(v, SqlValue::Text(_)) { 3 } else { 4 });
                    out.extend_from_slice(&(t.len() as u64).to_be_bytes());
                    out.extend_from_slice(t);
                }
            }
        }
        out
    }
}

/// SQLite's `sqlite3IntFloatCompare`: exact comparison of an integer with a double.
fn int_float_cmp(i: i64, r: f64) -> Ordering {
    if r.is_nan() {
        return Ordering::Greater;
    }
    if r < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    if r >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    let y = r as i64;
    match i.cmp(&y) {
        Ordering::Equal => (i as f64).partial_cmp(&r).unwrap_or(Ordering::Equal),
        o => o,
    }
}

impl fmt::Display for SqlValue {
    /// An SQL-literal rendering for people: `NULL`, `42`, `1.5`, `'text'`, `X'0102'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlValue::Null => f.write_str("NULL"),
            SqlValue::Integer(i) => write!(f, "{i}"),
            SqlValue::Real(r) => write!(f, "{r:?}"),
            SqlValue::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => write!(f, "'{}'", s.replace('\'', "''")),
                Err(_) => write!(f, "CAST(X'{}' AS TEXT)", hex(t)),
            },
            SqlValue::Blob(b) => write!(f, "X'{}'", hex(b)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl Serialize for SqlValue {
    /// `{"type": "integer", "value": 1}`; text that is not UTF-8 and blobs carry `base64`;
    /// non-finite reals are the strings `"Infinity"` / `"-Infinity"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", self.type_name())?;
        match self {
            SqlValue::Null => {}
            SqlValue::Integer(i) => m.serialize_entry("value", i)?,
            SqlValue::Real(r) if r.is_finite() => m.serialize_entry("value", r)?,
            SqlValue::Real(r) => {
                m.serialize_entry("value", if *r > 0.0 { "Infinity" } else { "-Infinity" })?
            }
            SqlValue::Text(t) => match std::str::from_utf8(t) {
                Ok(text) => m.serialize_entry("value", text)?,
                Err(_) => m.serialize_entry("base64", &b64.encode(t))?,
            },
            SqlValue::Blob(b) => m.serialize_entry("base64", &b64.encode(b))?,
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_class_matters() {
        assert!(!SqlValue::Integer(1).same(&SqlValue::Text(b"1".to_vec())));
        assert!(!SqlValue::Integer(1).same(&SqlValue::Real(1.0)));
        assert!(!SqlValue::Null.same(&SqlValue::Text(Vec::new())));
        assert!(SqlValue::Real(1.5).same(&SqlValue::Real(1.5)));
    }

    #[test]
    fn ordering_matches_sqlite() {
        let mut v = [
            SqlValue::Blob(vec![0]),
            SqlValue::Text(b"b".to_vec()),
            SqlValue::Real(1.0),
            SqlValue::Integer(1),
            SqlValue::Null,
            SqlValue::Text(b"a".to_vec()),
            SqlValue::Integer(-5),
            SqlValue::Real(2.5),
        ];
        v.sort_by(|a, b| a.sqlite_cmp(b));
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["NULL", "-5", "1", "1.0", "2.5", "'a'", "'b'", "X'00'"]
        );
        assert_eq!(int_float_cmp(i64::MAX, 9.2e18), Ordering::Greater);
    }

    #[test]
    fn json_keeps_the_storage_class() {
        let j = serde_json::to_string(&[
            SqlValue::Integer(1),
            SqlValue::Real(1.0),
            SqlValue::Text(b"x".to_vec()),
            SqlValue::Text(vec![0xff]),
            SqlValue::Null,
        ])
        .unwrap();
        assert_eq!(
            j,
            r#"[{"type":"integer","value":1},{"type":"real","value":1.0},{"type":"text","value":"x"},{"type":"text","base64":"/w=="},{"type":"null"}]"#
        );
    }
}
