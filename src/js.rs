//! JavaScript semantics that LiveStore's materializers bake into the state database.
//!
//! LiveStore runs in JavaScript: argument values are JS numbers, JSON columns hold the output
//! of `JSON.stringify`, dates go through `Date#toISOString`, and wa-sqlite decides how a JS value
//! is bound to a statement. A replay that wants byte-identical rows has to reproduce each of
//! these exactly, so they live here, in one place, with the JS rule they follow next to them.

use serde_json::Value;

/// A value ready to be bound to a SQLite parameter, after wa-sqlite's binding rules.
#[derive(Debug, Clone, PartialEq)]
pub enum BindValue {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// JS `undefined`: wa-sqlite leaves the parameter unbound, so it reads as NULL.
    Unbound,
}

impl BindValue {
    /// Binds a JSON value the way wa-sqlite's `bind` does (`sqlite-api.js`): a number is bound as
    /// an integer only when `v === (v | 0)` (an int32), otherwise as a double, so
    /// `1735787045678` arrives as a REAL; booleans become 1/0; strings text; null NULL.
    /// Objects and arrays have no binding of their own; the caller decides (see [`stringify`]).
    pub fn from_json_scalar(value: &Value) -> Option<BindValue> {
        Some(match value {
            Value::Null => BindValue::Null,
            Value::Bool(b) => BindValue::Integer(i64::from(*b)),
            Value::Number(n) => bind_number(js_number(n)),
            Value::String(s) => BindValue::Text(text(s)),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

// Lone surrogates. A JS string is UTF-16 and may hold a surrogate that is not half of a pair
// (text cut in the middle of an emoji by `slice`). `JSON.stringify` writes one as a `\ud83d`
// escape, which is how `argsJson` keeps it; serde_json refuses such JSON, as a Rust string is
// UTF-8. Where it goes next decides what LiveStore stores: wa-sqlite binds the string as UTF-8,
// with U+FFFD in its place; `JSON.stringify` of it (a JSON column) keeps the escape. So a
// parsed value keeps it as a stand-in character, U+10F800 + (surrogate - U+D800), the last
// 2,048 code points of Supplementary Private Use Area-B, turned into U+FFFD by [`text`] and
// back into its escape by [`stringify`]. A character of that range in real text is read the
// same way: a limit, for code points that are never in practice written.
const STAND_IN_BASE: u32 = 0x10_F800;

/// The lone surrogate `c` stands for, if it is a stand-in.
fn stood_in(c: char) -> Option<u32> {
    let c = c as u32;
    (c >= STAND_IN_BASE).then(|| 0xD800 + (c - STAND_IN_BASE))
}

/// Parses JSON as `JSON.parse` does: lone surrogates are kept, as stand-ins.
pub fn parse_json(json: &str) -> serde_json::Result<Value> {
    serde_json::from_str(json).or_else(|e| {
        match rewrite_lone_surrogates(json, |unit| {
            char::from_u32(STAND_IN_BASE + u32::from(unit) - 0xD800)
                .expect("stand-ins are scalar values")
                .to_string()
        }) {
            Some(rewritten) => serde_json::from_str(&rewritten).map_err(|_| e),
            None => Err(e),
        }
    })
}

/// How deeply an event's args may nest (objects and arrays inside one another). `JSON.parse`
/// takes any depth, but no materializer reads args a hundred levels deep, and every step after
/// parsing (schema validation, `JSON.stringify`, the plugin's messages) recurses over them.
pub const MAX_ARGS_DEPTH: usize = 100;

/// How deeply `json` nests, counted on the text (brackets outside strings), so that absurd
/// nesting is told apart from text that is not JSON before a parser recurses into it.
pub fn json_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// JSON text with every lone surrogate escape replaced by a U+FFFD escape, as wa-sqlite binds
/// a string holding one: for JSON that a JS program wrote (`JSON.stringify`) and rehearse reads
/// as SQL text and bind values. `None` when the text has none.
pub(crate) fn replace_lone_surrogates(json: &str) -> Option<String> {
    rewrite_lone_surrogates(json, |_| "\\ufffd".to_string())
}

/// The text wa-sqlite binds for a JS string: its UTF-8, U+FFFD for each lone surrogate.
pub(crate) fn text(s: &str) -> String {
    // A stand-in's UTF-8 starts with 0xF4 0x8F; most text has no 0xF4 at all.
    if !s.as_bytes().contains(&0xF4) {
        return s.to_string();
    }
    s.chars()
        .map(|c| if stood_in(c).is_some() { '\u{FFFD}' } else { c })
        .collect()
}

/// JS `a + b` of two strings: a lone high surrogate at the end of `a` and a lone low one at the
/// start of `b` make one character, as two UTF-16 halves do.
pub(crate) fn concat(a: &str, b: &str) -> String {
    let mut out = String::with_capacity(a.len() + b.len());
    out.push_str(a);
    let mut rest = b.chars();
    if let (Some(high), Some(low)) = (
        a.chars().next_back().and_then(stood_in),
        b.chars().next().and_then(stood_in),
    ) && (0xD800..0xDC00).contains(&high)
        && (0xDC00..0xE000).contains(&low)
    {
        out.pop();
        out.extend(char::from_u32(
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00),
        ));
        rest.next();
    }
    out.extend(rest);
    out
}

/// `json` with each `\uXXXX` escape of a lone surrogate replaced by `with(surrogate)`, or
/// `None` if there is none. Escaped backslashes (`\\ud83d`) are text, not escapes.
fn rewrite_lone_surrogates(json: &str, with: impl Fn(u16) -> String) -> Option<String> {
    let bytes = json.as_bytes();
    let unit_at = |i: usize| -> Option<u16> {
        let hex = bytes.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' || !hex[2..].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unit_at(i) else {
            // Another escape (`\\`, `\"`, `\n`, …): skip the character it escapes.
            i += 2;
            continue;
        };
        let paired = match unit {
            0xD800..=0xDBFF => unit_at(i + 6).is_some_and(|u| (0xDC00..=0xDFFF).contains(&u)),
            0xDC00..=0xDFFF => false,
            _ => {
                i += 6;
                continue;
            }
        };
        if paired {
            i += 12;
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(json.len()));
        o.push_str(&json[copied..i]);
        o.push_str(&with(unit));
        i += 6;
        copied = i;
    }
    out.map(|mut o| {
        o.push_str(&json[copied..]);
        o
    })
}

/// wa-sqlite's number rule: int32 values bind as integers, everything else as a double.
pub(crate) fn bind_number(v: f64) -> BindValue {
    if v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX) {
        // -0 passes `-0 === (-0 | 0)` and is bound as the integer 0.
        BindValue::Integer(v as i64)
    } else {
        BindValue::Real(v)
    }
}

/// The JS number a JSON number becomes after `JSON.parse`: every number is a double.
pub(crate) fn js_number(n: &serde_json::Number) -> f64 {
    if let Some(i) = n.as_i64() {
        i as f64
    } else if let Some(u) = n.as_u64() {
        u as f64
    } else {
        n.as_f64().unwrap_or(f64::NAN)
    }
}

/// Formats a number exactly as JS `String(n)` / `JSON.stringify(n)` does (`1`, `1.5`, `1e+21`,
/// `-0` → `0`). Non-finite numbers stringify to `null` in JSON.
pub(crate) fn format_number(v: f64, out: &mut String) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.push_str(buf.format_finite(v));
}

/// `JSON.stringify` of a parsed JSON value, byte for byte: no whitespace, JS string escaping,
/// JS number formatting, and JS property order (integer-like keys first, ascending).
pub(crate) fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => format_number(js_number(n), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in js_property_order(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

/// JS `JSON.stringify` string quoting (ECMA-262 `QuoteJSONString`).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if stood_in(c).is_some() => {
                out.push_str(&format!("\\u{:04x}", stood_in(c).unwrap_or(0xFFFD)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The order in which JS enumerates an object's own string keys: array-index keys (canonical
/// integers below 2^32 - 1) in ascending numeric order first, then the rest in insertion order.
pub(crate) fn js_property_order(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut index_keys: Vec<(u32, (&String, &Value))> = Vec::new();
    let mut other: Vec<(&String, &Value)> = Vec::new();
    for (k, v) in map {
        match array_index(k) {
            Some(i) => index_keys.push((i, (k, v))),
            None => other.push((k, v)),
        }
    }
    index_keys.sort_by_key(|(i, _)| *i);
    index_keys
        .into_iter()
        .map(|(_, kv)| kv)
        .chain(other)
        .collect()
}

fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    if n < u64::from(u32::MAX) {
        Some(n as u32)
    } else {
        None
    }
}

/// Milliseconds since the epoch that JS `Date` accepts (ECMA-262 TimeClip).
const MAX_TIME_MS: i64 = 8_640_000_000_000_000;

/// Parses a date string as Effect's `Schema.Date` does (`new Date(s)`, rejecting invalid dates),
/// for the ECMAScript date-time string format (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, optionally
/// `THH:mm`, `:ss`, `.sss`, `Z` or `±HH:mm`, and `±YYYYYY` years). Date-only forms are UTC;
/// a date-time without an offset is local time in JS, which a replay cannot know, so it is
/// read as UTC and reported by the caller only if it matters. Other formats that V8 parses
/// heuristically are rejected rather than guessed.
pub(crate) fn parse_date(s: &str) -> Result<i64, String> {
    parse_iso_date(s).map_err(|e| match e {
        DateError::NotIso => format!("{s:?} is not a date in the ECMAScript date-time format"),
        DateError::Invalid => format!("{s:?} is not a valid date"),
        DateError::OutOfRange => format!("{s:?} is outside the range of a JS Date"),
    })
}

/// Whether `new Date(s)` is a valid date, where that can be known without V8's heuristic
/// parser: `Some(true)` or `Some(false)` for a string in the ECMAScript date-time format (V8
/// judges those by the format alone), `None` for any other string.
pub(crate) fn js_date_is_valid(s: &str) -> Option<bool> {
    match parse_iso_date(s) {
        Ok(_) => Some(true),
        Err(DateError::NotIso) => None,
        Err(DateError::Invalid | DateError::OutOfRange) => Some(false),
    }
}

/// Why a string is no date in the ECMAScript format.
enum DateError {
    /// It is not in the format (V8 may still parse it, heuristically).
    NotIso,
    /// It is, but a field is out of range (V8 then gives an invalid date).
    Invalid,
    /// It is, but the time is beyond ±8.64e15 ms.
    OutOfRange,
}

fn parse_iso_date(s: &str) -> Result<i64, DateError> {
    let shape = || DateError::NotIso;
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, n: usize| -> Option<i64> {
        let end = *i + n;
        if end > b.len() || !b[*i..end].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = s[*i..end].parse().ok()?;
        *i = end;
        Some(v)
    };
    let mut minus_zero_year = false;
    let year = match b.first() {
        Some(b'+') | Some(b'-') => {
            let neg = b[0] == b'-';
            i = 1;
            let y = digits(&mut i, 6).ok_or_else(shape)?;
            minus_zero_year = neg && y == 0;
            if neg { -y } else { y }
        }
        _ => digits(&mut i, 4).ok_or_else(shape)?,
    };
    let (mut month, mut day) = (1, 1);
    if i < b.len() && b[i] == b'-' {
        i += 1;
        month = digits(&mut i, 2).ok_or_else(shape)?;
        if i < b.len() && b[i] == b'-' {
            i += 1;
            day = digits(&mut i, 2).ok_or_else(shape)?;
        }
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    let mut offset_minutes = 0i64;
    let mut offset_in_range = true;
    if i < b.len() && b[i] == b'T' {
        i += 1;
        hour = digits(&mut i, 2).ok_or_else(shape)?;
        if i >= b.len() || b[i] != b':' {
            return Err(shape());
        }
        i += 1;
        minute = digits(&mut i, 2).ok_or_else(shape)?;
        if i < b.len() && b[i] == b':' {
            i += 1;
            second = digits(&mut i, 2).ok_or_else(shape)?;
            if i < b.len() && b[i] == b'.' {
                i += 1;
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    return Err(shape());
                }
                // V8 keeps milliseconds and truncates further digits.
                let frac = &s[start..i];
                let ms3: String = frac.chars().chain("00".chars()).take(3).collect();
                millis = ms3.parse().map_err(|_| shape())?;
            }
        }
        if i < b.len() {
            match b[i] {
                b'Z' => i += 1,
                b'+' | b'-' => {
                    let sign = if b[i] == b'-' { -1 } else { 1 };
                    i += 1;
                    let oh = digits(&mut i, 2).ok_or_else(shape)?;
                    if i >= b.len() || b[i] != b':' {
                        return Err(shape());
                    }
                    i += 1;
                    let om = digits(&mut i, 2).ok_or_else(shape)?;
                    offset_in_range = oh <= 23 && om <= 59;
                    offset_minutes = sign * (oh * 60 + om);
                }
                _ => return Err(shape()),
            }
        }
    } else if i < b.len() && b[i] == b'Z' {
        i += 1;
    }
    if i != b.len() {
        return Err(shape());
    }
    let valid_time = hour < 24 && minute < 60 && second < 60
        || (hour == 24 && minute == 0 && second == 0 && millis == 0);
    // V8 takes any day from 1 to 31 in any month and lets it run into the next
    // (`new Date("2023-02-29")` is March 1st), as MakeDay does.
    if minus_zero_year
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !valid_time
        || !offset_in_range
    {
        return Err(DateError::Invalid);
    }
    let days = days_from_civil(year, month, 1) + day - 1;
    let ms = ((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis;
    if ms.abs() > MAX_TIME_MS {
        return Err(DateError::OutOfRange);
    }
    Ok(ms)
}

/// `new Date(ms).toISOString()`: `YYYY-MM-DDTHH:mm:ss.sssZ`, with `±YYYYYY` outside 0..=9999.
pub(crate) fn format_iso(ms: i64) -> Result<String, String> {
    if ms.abs() > MAX_TIME_MS {
        return Err(format!("{ms} ms is outside the range of a JS Date"));
    }
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, sss) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Ok(format!(
        "{year}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{sss:03}Z"
    ))
}

/// JS TimeClip of a number of milliseconds (`new Date(n).getTime()`).
pub(crate) fn time_clip(v: f64) -> Result<i64, String> {
    if !v.is_finite() || v.abs() > MAX_TIME_MS as f64 {
        return Err(format!("{v} is not a valid JS Date time value"));
    }
    Ok(v.trunc() as i64)
}

// Howard Hinnant's civil-date algorithms, proleptic Gregorian calendar as in JS.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_format_like_js() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789012345680000.0, "123456789012345680000"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            format_number(v, &mut s);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn stringify_matches_js_for_real_args() {
        let raw = r#"{"theme":"system","locale":"de-CH","notifications":{"email":true,"push":true,"digest":"daily"}}"#;
        let v: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(stringify(&v), raw);
        assert_eq!(
            stringify(&json!({"b": 1, "10": 2, "2": 3})),
            r#"{"2":3,"10":2,"b":1}"#
        );
        assert_eq!(stringify(&json!("a\u{1}\"\n")), r#""a\u0001\"\n""#);
        assert_eq!(stringify(&json!([1.0, 2.5, null])), "[1,2.5,null]");
    }

    #[test]
    fn lone_surrogates_bind_as_u_fffd_and_stringify_as_their_escapes() {
        // What LiveStore wrote (corpora/js-values): a cut emoji, a lone low surrogate,
        // a whole pair, and an escaped backslash before `ud83d`, which is text.
        let raw = r#"{"a":"Zo\ud83d","b":["\ude00x","😀","\ud83d\ude00"],"\ud83c":"\\ud83d"}"#;
        assert!(serde_json::from_str::<Value>(raw).is_err());
        let v = parse_json(raw).unwrap();
        assert_eq!(
            stringify(&v),
            r#"{"a":"Zo\ud83d","b":["\ude00x","😀","😀"],"\ud83c":"\\ud83d"}"#
        );
        let text_of = |v: &Value| match BindValue::from_json_scalar(v) {
            Some(BindValue::Text(t)) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(text_of(&v["a"]), "Zo\u{FFFD}");
        assert_eq!(text_of(&v["b"][0]), "\u{FFFD}x");
        assert_eq!(text_of(&v["b"][2]), "😀");
        // Every surrogate has its own stand-in.
        for unit in [0xD800, 0xDBFF, 0xDC00, 0xDFFF] {
            let v = parse_json(&format!(r#""\u{unit:04x}""#)).unwrap();
            assert_eq!(stringify(&v), format!(r#""\u{unit:04x}""#));
        }
        // A helper's answer: U+FFFD, as wa-sqlite binds it; nothing to do without one.
        assert_eq!(
            replace_lone_surrogates(r#"["\ud83dA","\ud83d\ude00","\\ud83d"]"#).unwrap(),
            r#"["\ufffdA","\ud83d\ude00","\\ud83d"]"#
        );
        assert_eq!(
            replace_lone_surrogates(r#"["\ud83d\ude00","\u00e9"]"#),
            None
        );
        // JS `+` joins two halves into the character.
        let halves = parse_json(r#"["\ud83d","\ude00"]"#).unwrap();
        let joined = concat(halves[0].as_str().unwrap(), halves[1].as_str().unwrap());
        assert_eq!(joined, "😀");
        assert_eq!(concat("a", "b"), "ab");
        // Not JSON stays an error, with serde_json's message.
        assert!(parse_json(r#"{"a":"\ud83d"#).is_err());
    }

    #[test]
    fn binds_follow_wa_sqlite() {
        assert_eq!(bind_number(3.0), BindValue::Integer(3));
        assert_eq!(bind_number(-0.0), BindValue::Integer(0));
        assert_eq!(bind_number(2147483648.0), BindValue::Real(2147483648.0));
        assert_eq!(
            bind_number(1735787045678.0),
            BindValue::Real(1735787045678.0)
        );
        assert_eq!(
            BindValue::from_json_scalar(&json!(true)),
            Some(BindValue::Integer(1))
        );
    }

    #[test]
    fn dates_round_trip_like_to_iso_string() {
        let ms = parse_date("2024-01-02T09:04:56.801Z").unwrap();
        assert_eq!(ms, 1704186296801);
        assert_eq!(format_iso(ms).unwrap(), "2024-01-02T09:04:56.801Z");
        assert_eq!(
            format_iso(parse_date("2024-01-02").unwrap()).unwrap(),
            "2024-01-02T00:00:00.000Z"
        );
        assert_eq!(
            format_iso(parse_date("2024-01-02T10:00+01:00").unwrap()).unwrap(),
            "2024-01-02T09:00:00.000Z"
        );
        assert_eq!(
            format_iso(parse_date("2024-02-29T00:00:00.1234Z").unwrap()).unwrap(),
            "2024-02-29T00:00:00.123Z"
        );
        assert_eq!(format_iso(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_iso(parse_date("+012345-01-01T00:00:00Z").unwrap()).unwrap(),
            "+012345-01-01T00:00:00.000Z"
        );
        assert!(parse_date("Jan 2 2024").is_err());
        assert!(parse_date("2024-01-02T25:00Z").is_err());
    }

    /// What Node.js 20's `new Date(s)` gives, string by string: a day past the month's end runs
    /// into the next month, a comma is no decimal point, and a string outside the format is
    /// V8's heuristic parser's to judge (`None`).
    #[test]
    fn dates_are_valid_where_v8_says_so() {
        let iso = |s: &str| format_iso(parse_date(s).unwrap()).unwrap();
        assert_eq!(iso("2023-02-29"), "2023-03-01T00:00:00.000Z");
        assert_eq!(iso("2024-06-31T10:00Z"), "2024-07-01T10:00:00.000Z");
        assert_eq!(iso("2024-01-01T24:00:00.000Z"), "2024-01-02T00:00:00.000Z");
        assert_eq!(
            iso("+275760-09-13T00:00:00.000Z"),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(
            iso("-271821-04-20T00:00:00.000Z"),
            "-271821-04-20T00:00:00.000Z"
        );
        for valid in ["2024-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z", "2024"] {
            assert_eq!(js_date_is_valid(valid), Some(true), "{valid}");
        }
        for invalid in [
            "2024-13-01T00:00:00.000Z",
            "2024-00-10T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-32T00:00:00Z",
            "2024-01-01T24:00:01Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+00:60",
            "+275760-09-13T00:00:00.001Z",
            "-271821-04-19T23:59:59.999Z",
            "-000000-01-01T00:00:00Z",
        ] {
            assert_eq!(js_date_is_valid(invalid), Some(false), "{invalid}");
        }
        for heuristic in [
            "Jan 1 2024",
            "2024-1-1",
            "2024-01-01 00:00:00Z",
            "2024-01-01T10:00:00,5Z",
            "not a date",
            "",
        ] {
            assert_eq!(js_date_is_valid(heuristic), None, "{heuristic}");
        }
    }
}
