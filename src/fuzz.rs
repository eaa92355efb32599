//! Fuzz targets: one function per parser of input rehearse does not control, each taking
//! arbitrary bytes and checking what must hold for every input: no panic, no stack overflow, no
//! hang, and the round trips noted on each. `fuzz/` runs them under libFuzzer (`cargo fuzz`,
//! the long runs); [`run`] runs them on stable Rust with a small seeded mutator, which is how
//! `cargo test` exercises each for a few seconds on every build.
//!
//! Every crash a run finds becomes a regression test: its input goes into [`REGRESSIONS`].

use std::path::Path;

use serde_json::Value;

use crate::definitions::expr;
use crate::eventlog::{Event, SeqNum};
use crate::js;

/// A fuzz target: bytes in, a panic when a property does not hold.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("definitions", definitions),
    ("expression", expression),
    ("event_args", event_args),
    ("changeset", changeset),
    ("manifest", manifest),
    ("js_values", js_values),
];

/// Inputs that once crashed a target, each kept so that it never does again: `(target,
/// input)`.
pub const REGRESSIONS: &[(&str, &[u8])] = &[
    // A coalesce under a pipe printed without its parentheses (`Display` of an expression),
    // so a message quoted a different expression than the one defined.
    ("expression", b"(args.x ?? args['odd key']) | json\n{}"),
    ("expression", b"args.a ?? (args.b ?? args.c)"),
];

/// A definitions file: parsing never panics or overflows the stack, whatever the TOML holds.
pub fn definitions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Relative paths (`ddl_file`, `event_schemas`) resolve beside this name: a directory that
    // does not exist, so the target reads no file.
    let _ = crate::definitions::Definitions::parse(
        Path::new("/nonexistent-rehearse-fuzz/defs.toml"),
        text,
    );
}

/// A value expression, then (after the first newline) the args it is evaluated against.
/// Parsing and evaluation never panic; an expression that parses prints as text that parses
/// back to the same expression.
pub fn expression(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (src, args) = text.split_once('\n').unwrap_or((&text, "{}"));
    let Ok(e) = expr::parse(src) else {
        return;
    };
    let shown = e.to_string();
    let again = expr::parse(&shown)
        .unwrap_or_else(|err| panic!("`{src}` prints as `{shown}`, which does not parse: {err}"));
    assert_eq!(
        again, e,
        "`{src}` prints as `{shown}`, which parses differently"
    );
    let args = if js::json_depth(args) <= js::MAX_ARGS_DEPTH {
        js::parse_json(args).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    // With a query result bound (`query.q`) and a schema for `| schema`, so that every form
    // evaluates.
    let bound = [("q".to_string(), expr::Val::Present(args.clone()))];
    let schema = serde_json::json!({"type": "object"});
    let _ = e.eval_in(expr::Scope {
        args: &args,
        event: &fuzz_event(),
        bound: &bound,
        schema: Some(&schema),
    });
}

fn fuzz_event() -> Event {
    Event {
        seq: SeqNum {
            global: 7,
            client: 2,
            rebase_generation: 1,
        },
        parent: SeqNum::ROOT,
        name: "v1.Fuzzed".into(),
        args_json: String::new(),
        client_id: "client".into(),
        session_id: "session".into(),
        schema_hash: 0,
        sync_metadata_json: String::new(),
    }
}

/// An event's `argsJson` as the replay decodes it: args within the nesting limit parse as
/// `JSON.parse` does (or are refused); what parses stringifies back to JSON that parses to the
/// same value, and every scalar binds.
pub fn event_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if js::json_depth(&text) > js::MAX_ARGS_DEPTH {
        return;
    }
    let Ok(v) = js::parse_json(&text) else {
        return;
    };
    let s = js::stringify(&v);
    let back = js::parse_json(&s)
        .unwrap_or_else(|e| panic!("{text:?} stringifies as {s:?}, which does not parse: {e}"));
    assert!(
        same_json(&back, &v),
        "{text:?} stringifies as {s:?}, which parses to {back:?}"
    );
    bind_scalars(&v);
}

/// Equality of JSON values with numbers compared as JS compares them (`1.0` is `1`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => js::js_number(x) == js::js_number(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

fn bind_scalars(v: &Value) {
    match v {
        Value::Array(items) => items.iter().for_each(bind_scalars),
        Value::Object(map) => map.values().for_each(bind_scalars),
        scalar => {
            assert!(js::BindValue::from_json_scalar(scalar).is_some());
        }
    }
}

/// A recorded changeset blob (LiveStore's `__livestore_session_changeset`): SQLite's decoder
/// never crashes on it, and every decoded change has a key of the primary key's width.
pub fn changeset(data: &[u8]) {
    let Ok(changes) = crate::session::Changeset(data.to_vec()).changes() else {
        return;
    };
    for c in changes {
        let key = c.key();
        assert_eq!(key.len(), c.pk.iter().filter(|p| **p).count());
    }
}

/// A backup package's `manifest.json`: read and validated without a panic.
pub fn manifest(data: &[u8]) {
    let _ = crate::backup::manifest::parse(Path::new("manifest.json"), data);
}

/// JavaScript's value semantics as rehearse reproduces them: a date `Date.parse` accepts
/// prints with `toISOString` as text that parses back to the same instant; a number prints as
/// JavaScript prints it, which parses back to the same number.
pub fn js_values(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(ms) = js::parse_date(&text)
        && let Ok(iso) = js::format_iso(ms)
    {
        assert_eq!(
            js::parse_date(&iso),
            Ok(ms),
            "{text:?} is {ms} ms, printed {iso:?}"
        );
    }
    if data.len() >= 8 {
        let v = f64::from_le_bytes(data[..8].try_into().expect("eight bytes"));
        let mut s = String::new();
        js::format_number(v, &mut s);
        if v.is_finite() {
            let back: f64 = s
                .parse()
                .unwrap_or_else(|e| panic!("{v:?} prints as {s:?}: {e}"));
            assert!(
                back == v,
                "{v:?} prints as {s:?}, which reads back as {back:?}"
            );
        }
        let _ = js::bind_number(v);
        let _ = js::time_clip(v);
    }
    let _ = js::text(&text);
    let _ = js::concat(&text, &text);
}

/// Runs `target` on `seeds` and on `iterations` inputs mutated from them, deterministically
/// for a given `seed`; returns how many inputs it ran. A panic in the target propagates, with
/// the input that caused it printed first.
pub fn run(target: Target, seeds: &[Vec<u8>], iterations: u64, seed: u64) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut runs = 0;
    let mut pool: Vec<Vec<u8>> = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds.to_vec()
    };
    for s in seeds {
        guarded(target, s);
        runs += 1;
    }
    for _ in 0..iterations {
        let base = pool[rng.below(pool.len())].clone();
        let other = pool[rng.below(pool.len())].clone();
        let input = mutate(base, &other, &mut rng);
        guarded(target, &input);
        runs += 1;
        // Keep some mutants as new starting points, so that mutations accumulate.
        if pool.len() < 256 && rng.below(8) == 0 {
            pool.push(input);
        } else if rng.below(64) == 0 {
            let i = rng.below(pool.len());
            pool[i] = input;
        }
    }
    runs
}

fn guarded(target: Target, input: &[u8]) {
    let result = std::panic::catch_unwind(|| target(input));
    if let Err(panic) = result {
        eprintln!(
            "fuzz input that failed ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        );
        std::panic::resume_unwind(panic);
    }
}

/// Tokens the mutator splices in: the syntax of every format the targets read, so that
/// random inputs reach past the first token.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"(",
    b")",
    b"\"",
    b"'",
    b",",
    b":",
    b"=",
    b"\n",
    b" + ",
    b" ?? ",
    b" | iso",
    b" | ms",
    b" | json",
    b"args.",
    b"args['",
    b"event.seqNumGlobal",
    b"null",
    b"true",
    b"false",
    b"undefined",
    b"excluded",
    b"-0",
    b"1e308",
    b"2147483648",
    b"0.1",
    b"\\ud83d",
    b"\\u0000",
    b"[events.\"e\"]\n",
    b"insert = \"t\"\n",
    b"values = { a = \"",
    b"sql = \"",
    b"binds = [",
    b"when = \"",
    b"[state]\nddl = \"",
    b"format = 1\n",
    b"\"files\": [",
    b"\"role\": \"auxiliary\"",
    b"\"path\": \"../x\"",
    b"+275760-09-13T00:00:00.000Z",
    b"1970-01-01",
    b"T23:59:60Z",
    b"-271821-04-20",
    b"Z",
    b"+01:00",
];

fn mutate(mut input: Vec<u8>, other: &[u8], rng: &mut Rng) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(16) + 1);
                input.drain(i..i + n);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let i = rng.below(len + 1);
                input.splice(i..i, t.iter().copied());
            }
            4 if len > 0 => {
                // Repeat a stretch: deep nesting and long chains come from here.
                let i = rng.below(len);
                let n = rng.below((len - i).min(32)) + 1;
                let piece = input[i..i + n].to_vec();
                let times = 1 + rng.below(64);
                for _ in 0..times {
                    input.splice(i..i, piece.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                let n = rng.below(other.len() - j) + 1;
                input.splice(i..i, other[j..j + n].iter().copied());
            }
            _ => {
                let i = rng.below(len + 1);
                input.truncate(i);
            }
        }
    }
    input.truncate(64 * 1024);
    input
}

/// xorshift64*: small, fast, and the same sequence for the same seed on every machine (the
/// tests' generator too). A seed of 0 stays 0.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
