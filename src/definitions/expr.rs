//! The small value language of materializer definitions.
//!
//! A definition says which value each column or parameter gets: `args.patch.name`,
//! `event.seqNumGlobal`, `args.avatarUrl ?? null`, `args.createdAt | iso`,
//! `args.a + '/' + args.b` (JS `+`: concatenation when either side is a string). The language
//! keeps JavaScript's notion of *absent* (`undefined`): an absent value drops the column from
//! a query-builder insert or update, exactly as LiveStore's query builder drops `undefined`
//! keys, and `??` falls back on absent or null as JS's nullish coalescing does.
//!
//! Grammar:
//! ```text
//! expr    := cmp ('??' cmp)*
//! cmp     := sum (('===' | '!==') sum)?
//! sum     := term ('+' term)*
//! term    := primary ('|' pipe)*
//! primary := 'args' access* | 'query' '.' name access* | 'event' '.' field | 'null' | 'true'
//!          | 'false' | 'undefined' | 'excluded' | number | 'single-quoted string'
//!          | '[' list ']' | '(' expr ')'
//! access  := '.' name | '[' 'quoted key' ']' | '[' index ']'
//! pipe    := 'iso' | 'ms' | 'json' | 'schema'
//! ```
//!
//! `query.<name>` is what an earlier `query` step of the event bound (its `ctx.query`).
//! `args.x !== undefined` is the presence test (JS strict equality on primitives). A value
//! written as a TOML table `{ value = "…", when = "…" }` is left out of its object altogether
//! unless `when` is truthy: JS's `...(cond ? { col: v } : {})`, which for an upsert's
//! `ON CONFLICT DO UPDATE` means "keep what is there", not `excluded."col"`.

use std::fmt;

use serde_json::Value;

use super::path::PathStep;
use crate::event::Event;
use crate::js;

/// A parsed value expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A constant.
    Literal(Value),
    /// A path into the event's decoded args; empty for the whole args object.
    Arg(Vec<PathStep>),
    /// A path into what the event's `query` step of this name bound.
    Query(String, Vec<PathStep>),
    /// A field of the event's metadata.
    Meta(MetaField),
    /// `excluded` or `undefined`: always absent. In an `ON CONFLICT DO UPDATE` set it means
    /// `excluded."col"`; in an update it drops the column, as an `undefined` value does.
    Excluded,
    /// A list of values (for `IN`).
    List(Vec<Expr>),
    /// `a ?? b`.
    Coalesce(Box<Expr>, Box<Expr>),
    /// `a + b`, with JS semantics for primitives.
    Add(Box<Expr>, Box<Expr>),
    /// `a | pipe`.
    Pipe(Box<Expr>, Pipe),
    /// `a === b` (`false`) or `a !== b` (`true`), JS strict equality.
    StrictEq(Box<Expr>, Box<Expr>, bool),
    /// `{ value = a, when = cond }`: `a` when `cond` is truthy, else no key at all.
    When(Box<Expr>, Box<Expr>),
}

/// Event metadata a definition can bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaField {
    /// `event.seqNumGlobal`
    SeqNumGlobal,
    /// `event.seqNumClient`
    SeqNumClient,
    /// `event.seqNumRebaseGeneration`
    SeqNumRebaseGeneration,
    /// `event.clientId`
    ClientId,
    /// `event.sessionId`
    SessionId,
    /// `event.name`
    Name,
}

/// A value transformation, mirroring an Effect schema encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    /// `Schema.Date` → `toISOString()`: a date string or epoch milliseconds to ISO text.
    Iso,
    /// `DateFromNumber` / `datetimeInteger`: a date string or number to epoch milliseconds.
    Ms,
    /// `Schema.parseJson`: `JSON.stringify` of the value.
    Json,
    /// The arg decoded and encoded again with the event's schema (`args.x | schema` only):
    /// struct fields in schema order, unknown ones dropped, dates as `toISOString` writes them.
    Schema,
}

impl Pipe {
    fn from_name(name: &str) -> Option<Pipe> {
        match name {
            "iso" => Some(Pipe::Iso),
            "ms" => Some(Pipe::Ms),
            "json" => Some(Pipe::Json),
            "schema" => Some(Pipe::Schema),
            _ => None,
        }
    }

    /// Applies the pipe; absent and null pass through, as a nullable column's encoding does.
    pub(crate) fn apply(self, v: Val) -> Result<Val, String> {
        let value = match v {
            Val::Absent | Val::Omitted => return Ok(v),
            Val::Present(Value::Null) => return Ok(Val::Present(Value::Null)),
            Val::Present(value) => value,
        };
        Ok(Val::Present(match self {
            Pipe::Iso => Value::String(js::format_iso(to_ms(&value)?)?),
            Pipe::Ms => Value::from(to_ms(&value)?),
            Pipe::Json => Value::String(js::stringify(&value)),
            // Needs the event's schema: evaluated by `Expr::eval_in`.
            Pipe::Schema => return Err("`| schema` follows an args path only".to_string()),
        }))
    }
}

fn to_ms(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(s) => js::parse_date(s),
        Value::Number(n) => js::time_clip(js::js_number(n)),
        other => Err(format!(
            "expected a date string or epoch milliseconds, found {}",
            js::stringify(other)
        )),
    }
}

/// The result of evaluating an expression: JS `undefined` or a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// JS `undefined`.
    Absent,
    /// No key at all (a `{ value, when }` whose `when` is false): like `undefined` everywhere
    /// but in an upsert's `ON CONFLICT DO UPDATE SET`, which leaves the column out.
    Omitted,
    /// A value.
    Present(Value),
}

impl Val {
    /// Whether the value is absent or null (what `??` falls back on).
    pub(crate) fn is_nullish(&self) -> bool {
        matches!(self, Val::Absent | Val::Omitted | Val::Present(Value::Null))
    }

    /// JS truthiness, used by `when`.
    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            Val::Absent | Val::Omitted => false,
            Val::Present(v) => match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => {
                    let f = js::js_number(n);
                    f != 0.0 && !f.is_nan()
                }
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            },
        }
    }
}

/// What an expression is evaluated against: the event, its args, and what the event's `query`
/// steps have bound so far.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The event's parsed args.
    pub(crate) args: &'a Value,
    /// The event.
    pub(crate) event: &'a Event,
    /// Query results by name (absent where a query found no row).
    pub(crate) bound: &'a [(String, Val)],
    /// The JSON Schema of the event's args, for `| schema`.
    pub(crate) schema: Option<&'a Value>,
}

/// `path` into `root`: absent where a step finds nothing, as JS property access gives
/// `undefined`.
fn walk(root: &Value, path: &[PathStep]) -> Val {
    let mut cur = root;
    for step in path {
        let next = match (step, cur) {
            (PathStep::Key(k), Value::Object(m)) => m.get(k),
            (PathStep::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return Val::Absent,
        }
    }
    Val::Present(cur.clone())
}

impl Expr {
    /// Evaluates the expression against an event and its parsed args.
    #[cfg(test)]
    pub(crate) fn eval(&self, args: &Value, event: &Event) -> Result<Val, String> {
        self.eval_in(Scope {
            args,
            event,
            bound: &[],
            schema: None,
        })
    }

    /// Evaluates the expression in `scope`.
    pub(crate) fn eval_in(&self, scope: Scope<'_>) -> Result<Val, String> {
        let Scope { args, event, .. } = scope;
        match self {
            Expr::Literal(v) => Ok(Val::Present(v.clone())),
            Expr::Excluded => Ok(Val::Absent),
            Expr::Arg(path) => Ok(walk(args, path)),
            Expr::Query(name, path) => match scope.bound.iter().rev().find(|(n, _)| n == name) {
                Some((_, Val::Present(v))) => Ok(walk(v, path)),
                Some((_, absent)) => Ok(absent.clone()),
                // The definitions are checked for this before any event is replayed.
                None => Err(format!(
                    "`query.{name}` is not bound by an earlier query step"
                )),
            },
            Expr::Meta(field) => Ok(Val::Present(match field {
                MetaField::SeqNumGlobal => Value::from(event.seq.global),
                MetaField::SeqNumClient => Value::from(event.seq.client),
                MetaField::SeqNumRebaseGeneration => Value::from(event.seq.rebase_generation),
                MetaField::ClientId => Value::from(event.client_id.clone()),
                MetaField::SessionId => Value::from(event.session_id.clone()),
                MetaField::Name => Value::from(event.name.clone()),
            })),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item.eval_in(scope)? {
                        Val::Present(v) => out.push(v),
                        Val::Absent | Val::Omitted => out.push(Value::Null),
                    }
                }
                Ok(Val::Present(Value::Array(out)))
            }
            Expr::Coalesce(a, b) => {
                let left = a.eval_in(scope)?;
                if left.is_nullish() {
                    b.eval_in(scope)
                } else {
                    Ok(left)
                }
            }
            Expr::Add(a, b) => {
                js_add(a.eval_in(scope)?, b.eval_in(scope)?).map_err(|e| format!("`{self}`: {e}"))
            }
            Expr::StrictEq(a, b, negate) => {
                let equal = strict_equals(&a.eval_in(scope)?, &b.eval_in(scope)?)
                    .map_err(|e| format!("`{self}`: {e}"))?;
                Ok(Val::Present(Value::Bool(equal != *negate)))
            }
            Expr::When(value, cond) => {
                if cond.eval_in(scope)?.is_truthy() {
                    value.eval_in(scope)
                } else {
                    Ok(Val::Omitted)
                }
            }
            Expr::Pipe(inner, Pipe::Schema) => {
                let Expr::Arg(path) = &**inner else {
                    return Err("`| schema` follows an args path only".to_string());
                };
                let root = scope.schema.ok_or_else(|| {
                    format!("`{self}`: the event has no args schema (event_schemas)")
                })?;
                match inner.eval_in(scope)? {
                    Val::Present(v) => {
                        let at = super::reencode::schema_at(root, path)
                            .and_then(|s| super::reencode::reencode(&v, s, root))
                            .map_err(|e| format!("`{self}`: {e}"))?;
                        Ok(Val::Present(at))
                    }
                    absent => Ok(absent),
                }
            }
            Expr::Pipe(inner, pipe) => {
                let v = inner.eval_in(scope)?;
                pipe.apply(v)
                    .map_err(|e| format!("`{pipe}` of {}: {e}", inner))
            }
        }
    }
}

impl Expr {
    /// Whether the expression re-encodes an arg with the event's schema (`| schema`).
    pub(crate) fn uses_schema(&self) -> bool {
        match self {
            Expr::Pipe(inner, pipe) => *pipe == Pipe::Schema || inner.uses_schema(),
            Expr::List(items) => items.iter().any(Expr::uses_schema),
            Expr::Coalesce(a, b) | Expr::Add(a, b) | Expr::StrictEq(a, b, _) | Expr::When(a, b) => {
                a.uses_schema() || b.uses_schema()
            }
            Expr::Literal(_) | Expr::Arg(_) | Expr::Query(..) | Expr::Meta(_) | Expr::Excluded => {
                false
            }
        }
    }

    /// The names of the query steps the expression reads (`query.<name>`).
    pub(crate) fn queries<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Query(name, _) => out.push(name),
            Expr::List(items) => items.iter().for_each(|e| e.queries(out)),
            Expr::Coalesce(a, b) | Expr::Add(a, b) => {
                a.queries(out);
                b.queries(out);
            }
            Expr::Pipe(inner, _) => inner.queries(out),
            Expr::StrictEq(a, b, _) | Expr::When(a, b) => {
                a.queries(out);
                b.queries(out);
            }
            Expr::Literal(_) | Expr::Arg(_) | Expr::Meta(_) | Expr::Excluded => {}
        }
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pipe::Iso => "iso",
            Pipe::Ms => "ms",
            Pipe::Json => "json",
            Pipe::Schema => "schema",
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(Value::String(s)) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Literal(v) => write!(f, "{}", js::stringify(v)),
            Expr::Excluded => f.write_str("excluded"),
            Expr::Arg(path) => {
                f.write_str("args")?;
                write_path(f, path)
            }
            Expr::Query(name, path) => {
                write!(f, "query.{name}")?;
                write_path(f, path)
            }
            Expr::Meta(m) => write!(
                f,
                "event.{}",
                match m {
                    MetaField::SeqNumGlobal => "seqNumGlobal",
                    MetaField::SeqNumClient => "seqNumClient",
                    MetaField::SeqNumRebaseGeneration => "seqNumRebaseGeneration",
                    MetaField::ClientId => "clientId",
                    MetaField::SessionId => "sessionId",
                    MetaField::Name => "name",
                }
            ),
            Expr::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            // `??` binds loosest: an operand of `+`, `|` or `===`, or the right side of another
            // `??`, needs its parentheses back to read as the same expression.
            Expr::Coalesce(a, b) => write!(f, "{a} ?? {}", Grouped(b)),
            Expr::Add(a, b) => write!(f, "({} + {})", Grouped(a), Grouped(b)),
            Expr::Pipe(a, p) => write!(f, "{} | {p}", Grouped(a)),
            Expr::StrictEq(a, b, negate) => write!(
                f,
                "({} {} {})",
                Grouped(a),
                if *negate { "!==" } else { "===" },
                Grouped(b)
            ),
            Expr::When(a, cond) => write!(f, "{a} (when {cond})"),
        }
    }
}

/// An operand printed in parentheses when it is a `??`.
struct Grouped<'a>(&'a Expr);

impl fmt::Display for Grouped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Coalesce(..) => write!(f, "({})", self.0),
            e => write!(f, "{e}"),
        }
    }
}

fn write_path(f: &mut fmt::Formatter<'_>, path: &[PathStep]) -> fmt::Result {
    for step in path {
        match step {
            PathStep::Key(k) if is_ident(k) => write!(f, ".{k}")?,
            PathStep::Key(k) => write!(f, "['{}']", k.replace('\'', "''"))?,
            PathStep::Index(i) => write!(f, "[{i}]")?,
        }
    }
    Ok(())
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The longest expression text: far beyond any real definition. Each limit keeps a hostile
/// definitions file (from a pull request the gate runs on) from exhausting the stack: the
/// parser, the evaluator, `Display` and `Drop` all recurse over the expression's tree.
pub(crate) const MAX_EXPR_LEN: usize = 64 * 1024;

/// The deepest an expression may nest: parentheses and lists inside one another, and chains
/// of `+`, `??` or `|` (each link is one level of the tree they build).
pub(crate) const MAX_EXPR_DEPTH: usize = 64;

/// Parses an expression; the error says where in the text it went wrong.
pub(crate) fn parse(src: &str) -> Result<Expr, String> {
    if src.len() > MAX_EXPR_LEN {
        return Err(format!(
            "in `{}`: the expression is {} bytes long, over the limit of {MAX_EXPR_LEN}",
            crate::text::truncate(src),
            src.len()
        ));
    }
    let mut p = Parser {
        src,
        pos: 0,
        nesting: 0,
    };
    let e = p.expr()?;
    p.skip_ws();
    if p.pos != src.len() {
        return Err(p.error("unexpected text"));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Parentheses and lists open at `pos`.
    nesting: usize,
}

/// How deep an expression's tree is; bounded by [`MAX_EXPR_DEPTH`] for every tree the parser
/// builds, so the recursion here is too.
fn depth(e: &Expr) -> usize {
    match e {
        Expr::Literal(_) | Expr::Arg(_) | Expr::Query(..) | Expr::Meta(_) | Expr::Excluded => 1,
        Expr::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Expr::Coalesce(a, b) | Expr::Add(a, b) | Expr::StrictEq(a, b, _) | Expr::When(a, b) => {
            1 + depth(a).max(depth(b))
        }
        Expr::Pipe(a, _) => 1 + depth(a),
    }
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let rest = &self.src[self.pos..];
        let src = crate::text::truncate(self.src);
        if rest.is_empty() {
            format!("in `{src}`: {what} at the end")
        } else {
            format!("in `{src}`: {what} at `{}`", crate::text::truncate(rest))
        }
    }

    /// `e`, unless it nests deeper than [`MAX_EXPR_DEPTH`].
    fn bounded(&self, e: Expr) -> Result<Expr, String> {
        if self.nesting + depth(&e) > MAX_EXPR_DEPTH {
            return Err(self.error(&format!(
                "the expression nests deeper than the limit of {MAX_EXPR_DEPTH} (parentheses, lists, or a chain of `+`, `??` or `|`)"
            )));
        }
        Ok(e)
    }

    /// Enters a parenthesis or list.
    fn open(&mut self) -> Result<(), String> {
        self.nesting += 1;
        if self.nesting > MAX_EXPR_DEPTH {
            return Err(self.error(&format!(
                "the expression nests deeper than the limit of {MAX_EXPR_DEPTH} (parentheses, lists, or a chain of `+`, `??` or `|`)"
            )));
        }
        Ok(())
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.cmp()?;
        while self.eat("??") {
            let right = self.cmp()?;
            left = self.bounded(Expr::Coalesce(Box::new(left), Box::new(right)))?;
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let left = self.sum()?;
        let negate = if self.eat("===") {
            false
        } else if self.eat("!==") {
            true
        } else {
            self.skip_ws();
            let rest = &self.src[self.pos..];
            if rest.starts_with("==") || rest.starts_with("!=") {
                return Err(self.error(
                    "only strict equality is known (`===`, `!==`): loose `==` converts types as JS does, which a definition should not rely on",
                ));
            }
            return Ok(left);
        };
        let right = self.sum()?;
        self.bounded(Expr::StrictEq(Box::new(left), Box::new(right), negate))
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while self.eat("+") {
            let right = self.term()?;
            left = self.bounded(Expr::Add(Box::new(left), Box::new(right)))?;
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            self.skip_ws();
            // `|` but not `||` (SQL concatenation has no place in a value expression).
            if self.src[self.pos..].starts_with('|') && !self.src[self.pos..].starts_with("||") {
                self.pos += 1;
                self.skip_ws();
                let name = self.ident();
                match Pipe::from_name(&name) {
                    Some(Pipe::Schema) if !matches!(e, Expr::Arg(_)) => {
                        return Err(format!(
                            "in `{}`: `| schema` re-encodes an arg with the event's schema; write it right after `args.<path>`",
                            crate::text::truncate(self.src)
                        ));
                    }
                    Some(p) => e = self.bounded(Expr::Pipe(Box::new(e), p))?,
                    None if name.is_empty() => return Err(self.error("expected a pipe name")),
                    None => {
                        return Err(format!(
                            "in `{}`: unknown pipe `{name}` (known: iso, ms, json, schema)",
                            crate::text::truncate(self.src)
                        ));
                    }
                }
            } else {
                return Ok(e);
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.src[start..self.pos].to_string()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("expected a value")),
            Some('(') => {
                self.pos += 1;
                self.open()?;
                let e = self.expr()?;
                if !self.eat(")") {
                    return Err(self.error("expected `)`"));
                }
                self.nesting -= 1;
                Ok(e)
            }
            Some('\'') => Ok(Expr::Literal(Value::String(self.quoted()?))),
            Some('[') => {
                self.pos += 1;
                self.open()?;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("]") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.error("expected `,` or `]`"));
                        }
                    }
                }
                self.nesting -= 1;
                self.bounded(Expr::List(items))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(_) => {
                let word = self.ident();
                match word.as_str() {
                    "null" => Ok(Expr::Literal(Value::Null)),
                    "true" => Ok(Expr::Literal(Value::Bool(true))),
                    "false" => Ok(Expr::Literal(Value::Bool(false))),
                    "excluded" | "undefined" => Ok(Expr::Excluded),
                    "args" => Ok(Expr::Arg(self.path()?)),
                    "query" => {
                        if !self.src[self.pos..].starts_with('.') {
                            return Err(
                                self.error("expected `.` and a query step's name after `query`")
                            );
                        }
                        self.pos += 1;
                        let name = self.ident();
                        if name.is_empty() {
                            return Err(self.error("expected a query step's name"));
                        }
                        Ok(Expr::Query(name, self.path()?))
                    }
                    "event" => {
                        if !self.src[self.pos..].starts_with('.') {
                            return Err(self.error("expected `.` after `event`"));
                        }
                        self.pos += 1;
                        let field = self.ident();
                        let m = match field.as_str() {
                            "seqNumGlobal" => MetaField::SeqNumGlobal,
                            "seqNumClient" => MetaField::SeqNumClient,
                            "seqNumRebaseGeneration" => MetaField::SeqNumRebaseGeneration,
                            "clientId" => MetaField::ClientId,
                            "sessionId" => MetaField::SessionId,
                            "name" => MetaField::Name,
                            _ => {
                                return Err(format!(
                                    "in `{}`: unknown event field `{field}` (known: seqNumGlobal, seqNumClient, seqNumRebaseGeneration, clientId, sessionId, name)",
                                    crate::text::truncate(self.src)
                                ));
                            }
                        };
                        Ok(Expr::Meta(m))
                    }
                    "" => Err(self.error("expected a value")),
                    other => Err(format!(
                        "in `{}`: unknown name `{other}`; values start with `args`, `query.`, `event.`, a number, `null`, `true`, `false` or a 'quoted string'",
                        crate::text::truncate(self.src)
                    )),
                }
            }
        }
    }

    fn path(&mut self) -> Result<Vec<PathStep>, String> {
        let mut steps = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            if rest.starts_with('.') {
                self.pos += 1;
                let name = self.ident();
                if name.is_empty() {
                    return Err(self.error("expected a key after `.`"));
                }
                steps.push(PathStep::Key(name));
            } else if rest.starts_with('[') {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some('\'') || self.peek() == Some('"') {
                    let key = self.quoted()?;
                    steps.push(PathStep::Key(key));
                } else {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let idx: usize = self.src[start..self.pos]
                        .parse()
                        .map_err(|_| self.error("expected a quoted key or an index"))?;
                    steps.push(PathStep::Index(idx));
                }
                if !self.eat("]") {
                    return Err(self.error("expected `]`"));
                }
            } else {
                return Ok(steps);
            }
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    // SQL style: a doubled quote stands for one.
                    if self.peek() == Some(quote) {
                        self.pos += 1;
                        out.push(quote);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    fn number(&mut self) -> Result<Expr, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let mut prev = ' ';
        while let Some(c) = self.peek() {
            let sign_of_exponent = matches!(c, '+' | '-') && matches!(prev, 'e' | 'E');
            if !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E') || sign_of_exponent) {
                break;
            }
            prev = c;
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        let n: f64 = text.parse().map_err(|_| {
            format!(
                "in `{}`: `{text}` is not a number",
                crate::text::truncate(self.src)
            )
        })?;
        Ok(Expr::Literal(number_value(n)))
    }
}

/// JS `a === b` on what args hold: `undefined` equals only `undefined`, numbers by value,
/// strings, booleans and null as themselves. Objects and arrays are equal in JS only when they
/// are the same object, which a definition cannot tell: comparing them is an error.
fn strict_equals(a: &Val, b: &Val) -> Result<bool, String> {
    let undefined = |v: &Val| matches!(v, Val::Absent | Val::Omitted);
    Ok(match (a, b) {
        (x, y) if undefined(x) || undefined(y) => undefined(x) && undefined(y),
        (Val::Present(x), Val::Present(y)) => match (x, y) {
            (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
                return Err(
                    "`===` between objects or arrays compares their identity in JS, which is unknown here"
                        .to_string(),
                );
            }
            (Value::Number(m), Value::Number(n)) => js::js_number(m) == js::js_number(n),
            (x, y) => x == y,
        },
        _ => unreachable!("both sides are undefined or present"),
    })
}

/// JS `a + b` on primitives: string concatenation when either side is a string (the other
/// side as `String(v)` gives it), numeric addition otherwise.
fn js_add(a: Val, b: Val) -> Result<Val, String> {
    fn text(v: &Val) -> Result<String, String> {
        Ok(match v {
            Val::Absent | Val::Omitted => "undefined".into(),
            Val::Present(Value::Null) => "null".into(),
            Val::Present(Value::Bool(b)) => b.to_string(),
            Val::Present(Value::Number(n)) => {
                let mut s = String::new();
                js::format_number(js::js_number(n), &mut s);
                if s == "null" { "NaN".into() } else { s }
            }
            Val::Present(Value::String(s)) => s.clone(),
            Val::Present(other) => {
                return Err(format!(
                    "cannot add {} (objects and arrays have no string form here; use `| json`)",
                    js::stringify(other)
                ));
            }
        })
    }
    fn number(v: &Val) -> f64 {
        match v {
            Val::Absent | Val::Omitted => f64::NAN,
            Val::Present(Value::Null) => 0.0,
            Val::Present(Value::Bool(b)) => f64::from(u8::from(*b)),
            Val::Present(Value::Number(n)) => js::js_number(n),
            Val::Present(_) => f64::NAN,
        }
    }
    let is_str = |v: &Val| matches!(v, Val::Present(Value::String(_)));
    if is_str(&a) || is_str(&b) {
        return Ok(Val::Present(Value::String(js::concat(
            &text(&a)?,
            &text(&b)?,
        ))));
    }
    for v in [&a, &b] {
        if matches!(v, Val::Present(Value::Array(_) | Value::Object(_))) {
            text(v)?;
        }
    }
    let sum = number(&a) + number(&b);
    Ok(Val::Present(if sum.is_finite() {
        number_value(sum)
    } else {
        Value::Null
    }))
}

/// A JSON number for a JS number, integral values as integers so they print as JS prints them.
pub(crate) fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SeqNum;
    use serde_json::json;

    fn event() -> Event {
        Event {
            seq: SeqNum {
                global: 7,
                client: 2,
                rebase_generation: 0,
            },
            parent: SeqNum::ROOT,
            name: "x".into(),
            args_json: String::new(),
            client_id: "c".into(),
            session_id: "s".into(),
            schema_hash: 0,
            sync_metadata_json: String::new(),
        }
    }

    fn eval(src: &str, args: Value) -> Val {
        parse(src).unwrap().eval(&args, &event()).unwrap()
    }

    #[test]
    fn paths_and_absence() {
        let args = json!({"id": "a", "patch": {"name": null, "list": [1, 2]}, "weird key": 3});
        assert_eq!(eval("args.id", args.clone()), Val::Present(json!("a")));
        assert_eq!(
            eval("args.patch.name", args.clone()),
            Val::Present(Value::Null)
        );
        assert_eq!(eval("args.patch.avatar", args.clone()), Val::Absent);
        assert_eq!(
            eval("args.patch.list[1]", args.clone()),
            Val::Present(json!(2))
        );
        assert_eq!(
            eval("args['weird key']", args.clone()),
            Val::Present(json!(3))
        );
        assert_eq!(
            eval("args.patch.avatar ?? null", args.clone()),
            Val::Present(Value::Null)
        );
        assert_eq!(
            eval("args.patch.name ?? 'x'", args.clone()),
            Val::Present(json!("x"))
        );
        assert_eq!(eval("event.seqNumClient", args), Val::Present(json!(2)));
    }

    #[test]
    fn plus_follows_js() {
        let args = json!({"a": "x", "b": 2, "c": 1.5, "n": null});
        assert_eq!(
            eval("args.a + '/' + args.b", args.clone()),
            Val::Present(json!("x/2"))
        );
        assert_eq!(
            eval("args.b + args.c", args.clone()),
            Val::Present(json!(3.5))
        );
        assert_eq!(
            eval("args.n + 'x'", args.clone()),
            Val::Present(json!("nullx"))
        );
        assert_eq!(
            eval("args.missing + 'x'", args.clone()),
            Val::Present(json!("undefinedx"))
        );
        assert_eq!(
            eval("args.missing ?? 'd' + 'x'", args.clone()),
            Val::Present(json!("dx"))
        );
        assert_eq!(eval("undefined", args.clone()), Val::Absent);
        assert_eq!(eval("1+2e+1", args), Val::Present(json!(21)));
    }

    /// `!== undefined` is the presence test: `false` and `null` are present, a missing key
    /// is not; numbers compare by value; objects cannot be compared.
    #[test]
    fn strict_equality_tests_presence() {
        let args = json!({"f": false, "n": null, "one": 1, "half": 0.5, "o": {}});
        let yes = Val::Present(json!(true));
        let no = Val::Present(json!(false));
        assert_eq!(eval("args.f !== undefined", args.clone()), yes);
        assert_eq!(eval("args.n !== undefined", args.clone()), yes);
        assert_eq!(eval("args.gone !== undefined", args.clone()), no);
        assert_eq!(eval("args.gone === undefined", args.clone()), yes);
        assert_eq!(eval("args.n === null", args.clone()), yes);
        assert_eq!(eval("args.one === 1.0", args.clone()), yes);
        assert_eq!(eval("args.half + args.half === 1", args.clone()), yes);
        assert_eq!(eval("args.one === '1'", args.clone()), no);
        // As in JS, `===` binds tighter than `??`.
        assert_eq!(eval("args.gone ?? 2 === 2", args.clone()), yes);
        let e = parse("args.o === args.o")
            .unwrap()
            .eval(&args, &event())
            .unwrap_err();
        assert!(e.contains("identity"), "{e}");
        assert!(
            parse("args.one == 1")
                .unwrap_err()
                .contains("only strict equality")
        );
    }

    /// `{ value, when }` leaves the key out altogether when `when` is falsy.
    #[test]
    fn a_value_with_when_is_omitted_unless_it_holds() {
        let args = json!({"a": false});
        let when = |cond: &str| {
            Expr::When(
                Box::new(parse("args.a").unwrap()),
                Box::new(parse(cond).unwrap()),
            )
            .eval(&args, &event())
            .unwrap()
        };
        assert_eq!(when("args.a !== undefined"), Val::Present(json!(false)));
        assert_eq!(when("args.b !== undefined"), Val::Omitted);
    }

    #[test]
    fn pipes() {
        let args =
            json!({"d": "2024-01-02T09:04:56.801Z", "n": 1704186296801i64, "o": {"a": [true]}});
        assert_eq!(
            eval("args.d | ms", args.clone()),
            Val::Present(json!(1704186296801i64))
        );
        assert_eq!(
            eval("args.n | iso", args.clone()),
            Val::Present(json!("2024-01-02T09:04:56.801Z"))
        );
        assert_eq!(
            eval("args.o | json", args.clone()),
            Val::Present(json!("{\"a\":[true]}"))
        );
        assert_eq!(eval("args.missing | iso", args), Val::Absent);
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert!(parse("args.").unwrap_err().contains("expected a key"));
        assert!(
            parse("args.x | upper")
                .unwrap_err()
                .contains("unknown pipe `upper`")
        );
        assert!(parse("argz.x").unwrap_err().contains("unknown name `argz`"));
        assert!(
            parse("(args.a ?? args.b) | schema")
                .unwrap_err()
                .contains("write it right after `args.<path>`")
        );
        assert!(
            parse("args.x extra")
                .unwrap_err()
                .contains("unexpected text")
        );
        assert!(
            parse("event.when")
                .unwrap_err()
                .contains("unknown event field")
        );
    }

    #[test]
    fn display_round_trips() {
        for src in [
            "args.a.b ?? null",
            "args['x y'] | iso",
            "event.seqNumGlobal",
            "[1, 'a']",
            // Found by the `expression` fuzz target: printed without its parentheses, a
            // coalesce under a pipe read back as a pipe under a coalesce.
            "(args.x ?? args['odd key']) | json",
            "args.a ?? (args.b ?? args.c)",
            "(args.a ?? 1) + args.b",
        ] {
            let e = parse(src).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e);
        }
    }
}
