//! Findings as bytes: the exact form a finding takes in a spilled store ([`super::findings`]),
//! and the byte strings that put findings in the report's order.
//!
//! The spill format is private to one run (a temporary file that never outlives the process),
//! so it carries no version; what it must be is exact: every field, `f64`s by their bits, so
//! that a report from spilled findings is byte-identical to one held in memory. `encode`
//! destructures [`Finding`] without `..`, so a field added to it does not compile until it is
//! written here too.

use indexmap::IndexMap;

use crate::replay::changes::RowOp;
use crate::report::{
    Cause, ChangeSide, ChangeSides, ColumnDiff, Divergence, EventRef, Finding, FindingClass, Level,
};
use crate::value::SqlValue;

/// Bytes that did not decode: a spill file that changed under the run.
#[derive(Debug)]
pub(crate) struct Corrupt;

type Decoded<T> = Result<T, Corrupt>;

/// Appends the encoding of `f` to `out`.
pub(crate) fn encode(f: &Finding, out: &mut Vec<u8>) {
    let Finding {
        class,
        severity,
        baselined,
        seq_num_global,
        seq_num_client,
        seq_num_rebase_generation,
        name,
        message,
        statement,
        table,
        divergence,
        key_columns,
        key,
        pk,
        columns,
        column,
        pointer,
        keyword,
        value,
        downstream,
        args,
        recorded_writer,
        changes,
        caused_by,
    } = f;
    let mut w = Enc(out);
    w.u8(class_code(*class));
    w.u8(match severity {
        Level::Error => 0,
        Level::Warning => 1,
        Level::Off => 2,
    });
    w.u8(*baselined as u8);
    for s in [seq_num_global, seq_num_client, seq_num_rebase_generation] {
        w.opt(s.as_ref(), |w, v| w.i64(*v));
    }
    w.opt_str(name);
    w.str(message);
    w.opt(statement.as_ref(), |w, v| w.u64(*v as u64));
    w.opt_str(table);
    w.opt(divergence.as_ref(), |w, d| w.u8(divergence_code(*d)));
    w.opt(key_columns.as_ref(), |w, v| w.vec(v, |w, s| w.str(s)));
    w.opt(key.as_ref(), |w, v| w.values(v));
    w.opt(pk.as_ref(), |w, v| w.values(v));
    w.vec(columns, |w, c| {
        let ColumnDiff {
            column,
            expected,
            actual,
            replay_writer,
            recorded_writer,
            outside_log,
        } = c;
        w.str(column);
        w.value(expected);
        w.value(actual);
        w.opt(replay_writer.as_ref(), Enc::event_ref);
        w.opt(recorded_writer.as_ref(), Enc::event_ref);
        w.u8(*outside_log as u8);
    });
    w.opt_str(column);
    w.opt_str(pointer);
    w.opt_str(keyword);
    w.opt_str(value);
    w.vec(downstream, Enc::event_ref);
    w.opt_str(args);
    w.opt(recorded_writer.as_ref(), Enc::event_ref);
    w.opt(changes.as_deref(), |w, c| {
        for side in [&c.expected, &c.actual] {
            w.str(&side.label);
            w.vec(&side.rows, |w, op| {
                w.str(&op.table);
                w.u8(match op.op {
                    "insert" => 0,
                    "update" => 1,
                    _ => 2,
                });
                w.values(&op.key);
                for map in [&op.old, &op.new] {
                    w.u64(map.len() as u64);
                    for (k, v) in map {
                        w.str(k);
                        w.value(v);
                    }
                }
            });
        }
    });
    w.opt(caused_by.as_ref(), |w, c| {
        w.u8(class_code(c.class));
        w.i64(c.seq_num_global);
        w.i64(c.seq_num_client);
        w.i64(c.seq_num_rebase_generation);
        w.str(&c.name);
    });
}

/// The finding `bytes` encode.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<Finding> {
    let mut r = Dec(bytes);
    let class = class_of(r.u8()?)?;
    let severity = match r.u8()? {
        0 => Level::Error,
        1 => Level::Warning,
        2 => Level::Off,
        _ => return Err(Corrupt),
    };
    let baselined = r.bool()?;
    let seq_num_global = r.opt(Dec::i64)?;
    let seq_num_client = r.opt(Dec::i64)?;
    let seq_num_rebase_generation = r.opt(Dec::i64)?;
    let name = r.opt(Dec::string)?;
    let message = r.string()?;
    let statement = r.opt(|r| Ok(r.u64()? as usize))?;
    let table = r.opt(Dec::string)?;
    let divergence = r.opt(|r| divergence_of(r.u8()?))?;
    let key_columns = r.opt(|r| r.vec(Dec::string))?;
    let key = r.opt(Dec::values)?;
    let pk = r.opt(Dec::values)?;
    let columns = r.vec(|r| {
        Ok(ColumnDiff {
            column: r.string()?,
            expected: r.value()?,
            actual: r.value()?,
            replay_writer: r.opt(Dec::event_ref)?,
            recorded_writer: r.opt(Dec::event_ref)?,
            outside_log: r.bool()?,
        })
    })?;
    let column = r.opt(Dec::string)?;
    let pointer = r.opt(Dec::string)?;
    let keyword = r.opt(Dec::string)?;
    let value = r.opt(Dec::string)?;
    let downstream = r.vec(Dec::event_ref)?;
    let args = r.opt(Dec::string)?;
    let recorded_writer = r.opt(Dec::event_ref)?;
    let changes = r.opt(|r| {
        let mut side = || -> Decoded<ChangeSide> {
            Ok(ChangeSide {
                label: r.string()?,
                rows: r.vec(|r| {
                    let table = r.string()?;
                    let op = match r.u8()? {
                        0 => "insert",
                        1 => "update",
                        2 => "delete",
                        _ => return Err(Corrupt),
                    };
                    let key = r.values()?;
                    let mut maps = [IndexMap::new(), IndexMap::new()];
                    for map in &mut maps {
                        for _ in 0..r.len()? {
                            let k = r.string()?;
                            map.insert(k, r.value()?);
                        }
                    }
                    let [old, new] = maps;
                    Ok(RowOp {
                        table,
                        op,
                        key,
                        old,
                        new,
                    })
                })?,
            })
        };
        let expected = side()?;
        let actual = side()?;
        Ok(Box::new(ChangeSides { expected, actual }))
    })?;
    let caused_by = r.opt(|r| {
        Ok(Cause {
            class: class_of(r.u8()?)?,
            seq_num_global: r.i64()?,
            seq_num_client: r.i64()?,
            seq_num_rebase_generation: r.i64()?,
            name: r.string()?,
        })
    })?;
    if !r.0.is_empty() {
        return Err(Corrupt);
    }
    Ok(Finding {
        class,
        severity,
        baselined,
        seq_num_global,
        seq_num_client,
        seq_num_rebase_generation,
        name,
        message,
        statement,
        table,
        divergence,
        key_columns,
        key,
        pk,
        columns,
        column,
        pointer,
        keyword,
        value,
        downstream,
        args,
        recorded_writer,
        changes,
        caused_by,
    })
}

pub(crate) fn class_code(c: FindingClass) -> u8 {
    FindingClass::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or_default() as u8
}

pub(crate) fn class_of(code: u8) -> Decoded<FindingClass> {
    FindingClass::ALL.get(code as usize).copied().ok_or(Corrupt)
}

const DIVERGENCES: [Divergence; 7] = [
    Divergence::RowDiffers,
    Divergence::RowMissing,
    Divergence::RowExtra,
    Divergence::TableMissing,
    Divergence::TableExtra,
    Divergence::ColumnMissing,
    Divergence::ColumnExtra,
];

fn divergence_code(d: Divergence) -> u8 {
    DIVERGENCES.iter().position(|x| *x == d).unwrap_or_default() as u8
}

fn divergence_of(code: u8) -> Decoded<Divergence> {
    DIVERGENCES.get(code as usize).copied().ok_or(Corrupt)
}

struct Enc<'a>(&'a mut Vec<u8>);

impl Enc<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_str(&mut self, s: &Option<String>) {
        self.opt(s.as_ref(), |w, s| w.str(s));
    }

    fn opt<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
        }
    }

    fn vec<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.u64(v.len() as u64);
        for x in v {
            f(self, x);
        }
    }

    fn value(&mut self, v: &SqlValue) {
        match v {
            SqlValue::Null => self.u8(0),
            SqlValue::Integer(i) => {
                self.u8(1);
                self.i64(*i);
            }
            SqlValue::Real(r) => {
                self.u8(2);
                self.0.extend_from_slice(&r.to_bits().to_le_bytes());
            }
            SqlValue::Text(t) => {
                self.u8(3);
                self.bytes(t);
            }
            SqlValue::Blob(b) => {
                self.u8(4);
                self.bytes(b);
            }
        }
    }

    fn values(&mut self, v: &[SqlValue]) {
        self.vec(v, |w, v| w.value(v));
    }

    fn event_ref(&mut self, e: &EventRef) {
        self.i64(e.seq_num_global);
        self.i64(e.seq_num_client);
        self.i64(e.seq_num_rebase_generation);
        self.str(&e.name);
    }
}

struct Dec<'a>(&'a [u8]);

impl Dec<'_> {
    fn u8(&mut self) -> Decoded<u8> {
        let (&b, rest) = self.0.split_first().ok_or(Corrupt)?;
        self.0 = rest;
        Ok(b)
    }

    fn bool(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Corrupt),
        }
    }

    fn u64(&mut self) -> Decoded<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    fn i64(&mut self) -> Decoded<i64> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A length, no longer than the bytes left (each item takes one at least).
    fn len(&mut self) -> Decoded<usize> {
        let n = self.u64()?;
        if n > self.0.len() as u64 {
            return Err(Corrupt);
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Decoded<Vec<u8>> {
        let n = self.len()?;
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b.to_vec())
    }

    fn string(&mut self) -> Decoded<String> {
        String::from_utf8(self.bytes()?).map_err(|_| Corrupt)
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Decoded<T>) -> Decoded<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(Corrupt),
        }
    }

    fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> Decoded<T>) -> Decoded<Vec<T>> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }

    fn value(&mut self) -> Decoded<SqlValue> {
        Ok(match self.u8()? {
            0 => SqlValue::Null,
            1 => SqlValue::Integer(self.i64()?),
            2 => {
                let (b, rest) = self.0.split_first_chunk::<8>().ok_or(Corrupt)?;
                self.0 = rest;
                SqlValue::Real(f64::from_bits(u64::from_le_bytes(*b)))
            }
            3 => SqlValue::Text(self.bytes()?),
            4 => SqlValue::Blob(self.bytes()?),
            _ => return Err(Corrupt),
        })
    }

    fn values(&mut self) -> Decoded<Vec<SqlValue>> {
        self.vec(Dec::value)
    }

    fn event_ref(&mut self) -> Decoded<EventRef> {
        Ok(EventRef {
            seq_num_global: self.i64()?,
            seq_num_client: self.i64()?,
            seq_num_rebase_generation: self.i64()?,
            name: self.string()?,
        })
    }
}

/// The bytes that order `f` in the report, compared as bytes: each root in log order (by
/// event: global, client, generation; then class), followed by its consequences in the same
/// order; findings without an event after those with one; then class, table and key (SQLite's
/// order of values). The same order sorts findings in memory and, through a table keyed by
/// these bytes, findings spilled to disk, where nothing else could sort them in bounded memory.
pub(crate) fn order_key(f: &Finding, out: &mut Vec<u8>) {
    let mut k = OrderKey(out);
    match &f.caused_by {
        None => {
            k.bool(f.seq_num_global.is_none());
            k.opt_i64(f.seq_num_global);
            k.opt_i64(f.seq_num_client);
            k.opt_i64(f.seq_num_rebase_generation);
            k.0.push(class_code(f.class));
        }
        Some(c) => {
            k.bool(false);
            k.opt_i64(Some(c.seq_num_global));
            k.opt_i64(Some(c.seq_num_client));
            k.opt_i64(Some(c.seq_num_rebase_generation));
            k.0.push(class_code(c.class));
        }
    }
    k.bool(f.caused_by.is_some());
    k.bool(f.seq_num_global.is_none());
    k.opt_i64(f.seq_num_global);
    k.opt_i64(f.seq_num_client);
    k.opt_i64(f.seq_num_rebase_generation);
    k.0.push(class_code(f.class));
    match &f.table {
        None => k.0.push(0),
        Some(t) => {
            k.0.push(1);
            k.text(t.as_bytes());
        }
    }
    match &f.key {
        None => k.0.push(0),
        Some(values) => {
            k.0.push(1);
            for v in values {
                k.value(v);
            }
            k.0.push(0);
        }
    }
}

struct OrderKey<'a>(&'a mut Vec<u8>);

impl OrderKey<'_> {
    fn bool(&mut self, b: bool) {
        self.0.push(b as u8);
    }

    fn i64(&mut self, v: i64) {
        self.0
            .extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
    }

    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.i64(v);
            }
        }
    }

    /// Bytes in memcmp order, ended so that a prefix sorts first: 0 is escaped as 0 0xff and
    /// the end is 0 1.
    fn text(&mut self, b: &[u8]) {
        for &c in b {
            self.0.push(c);
            if c == 0 {
                self.0.push(0xff);
            }
        }
        self.0.extend_from_slice(&[0, 1]);
    }

    /// A finite `f64` in its numeric order: the sign bit flipped for positives, every bit
    /// for negatives.
    fn f64(&mut self, r: f64) {
        let bits = r.to_bits();
        let ordered = if bits >> 63 == 0 {
            bits ^ (1 << 63)
        } else {
            !bits
        };
        self.0.extend_from_slice(&ordered.to_be_bytes());
    }

    /// A value in SQLite's order ([`SqlValue::sqlite_cmp`]): NULL, numbers by value (an
    /// integer before a real equal to it), text, blobs. Every element starts with a byte
    /// above 0, the end of a key.
    fn value(&mut self, v: &SqlValue) {
        const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
        match v {
            SqlValue::Null => self.0.push(1),
            SqlValue::Integer(i) => {
                self.0.extend_from_slice(&[2, 1]);
                self.i64(*i);
                self.f64(0.0);
                self.0.push(0);
            }
            SqlValue::Real(r) if *r < -LIMIT => {
                self.0.extend_from_slice(&[2, 0]);
                self.f64(*r);
            }
            SqlValue::Real(r) if *r >= LIMIT => {
                self.0.extend_from_slice(&[2, 2]);
                self.f64(*r);
            }
            SqlValue::Real(r) if r.is_nan() => self.0.extend_from_slice(&[2, 1]),
            SqlValue::Real(r) => {
                let floor = r.floor();
                self.0.extend_from_slice(&[2, 1]);
                self.i64(floor as i64);
                // Exact: r and its floor are less than one apart.
                self.f64(r - floor);
                self.0.push(1);
            }
            SqlValue::Text(t) => {
                self.0.push(3);
                self.text(t);
            }
            SqlValue::Blob(b) => {
                self.0.push(4);
                self.text(b);
            }
        }
    }
}
