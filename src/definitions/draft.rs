//! `rehearse definitions draft`: a first draft of SQL definitions, from the app itself.
//!
//! Writing definitions by hand means reading every materializer and LiveStore's query builder.
//! The app's own LiveStore already knows most of it: the tables and how each column stores a
//! value, the client documents, the events' schemas, and, on a corpus, the exact statements
//! each event produced. The draft states each event's statements generalised back to the args
//! (`args.…` wherever an arg gives the value the statement bound), and keeps a definition only
//! if it reproduces, statement for statement and value for value, what LiveStore produced for
//! every event of that name it saw. Events whose statements vary in ways no generalisation
//! reproduces (a branch, `ctx.query`, a computed value) are left undefined and marked `TODO`
//! with the variants seen, so a replay finds them as unknown events until someone writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde_json::Value;

use super::Definitions;
use super::model::ColumnKind;
use crate::error::Result;
use crate::event::Event;
use crate::js::{self, BindValue};
use crate::materialize::livestore::AppSchema;
use crate::materialize::sql::SqlMaterializer;
use crate::materialize::{Binds, Materializer, Outcome, Statement};

/// What one event produced through the app's own materializers.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The event.
    pub event: Event,
    /// Its parsed args.
    pub args: Value,
    /// The statements LiveStore produced for it.
    pub statements: Vec<Statement>,
}

/// A materializer that remembers what another one answered, event by event.
pub struct Observer {
    inner: Box<dyn Materializer>,
    /// What it answered with statements.
    pub seen: Vec<Observation>,
}

impl Observer {
    /// Watches `inner`.
    pub fn new(inner: Box<dyn Materializer>) -> Observer {
        Observer {
            inner,
            seen: Vec::new(),
        }
    }
}

impl Materializer for Observer {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn ddl(&self) -> &super::Ddl {
        self.inner.ddl()
    }
    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>> {
        self.inner.referenced_columns()
    }
    fn prepare(&mut self, scratch: &Connection) -> Result<()> {
        self.inner.prepare(scratch)
    }
    fn materialize(
        &mut self,
        event: &Event,
        args: &Value,
        scratch: &Connection,
    ) -> Result<Outcome> {
        let outcome = self.inner.materialize(event, args, scratch)?;
        if let Outcome::Statements(statements) = &outcome {
            self.seen.push(Observation {
                event: event.clone(),
                args: args.clone(),
                statements: statements.clone(),
            });
        }
        Ok(outcome)
    }
    fn writes_while_materializing(&self) -> bool {
        self.inner.writes_while_materializing()
    }

    fn begin_log(&mut self) -> Result<()> {
        self.inner.begin_log()
    }
    fn expect_events(&mut self, events: u64) -> Result<()> {
        self.inner.expect_events(events)
    }
    fn lookahead(&mut self, events: &[&Event]) -> Result<()> {
        self.inner.lookahead(events)
    }
}

/// Where the draft's companion files go, as the definitions name them (relative to the
/// definitions file).
#[derive(Debug, Clone)]
pub struct DraftFiles {
    /// The directory of event schemas (`event_schemas`).
    pub event_schemas: String,
    /// The state DDL (`state.ddl_file`).
    pub ddl_file: String,
}

/// A draft.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The definitions file's text.
    pub text: String,
    /// Events defined.
    pub defined: Vec<String>,
    /// Events left `TODO`, with why.
    pub todo: Vec<(String, String)>,
}

/// Drafts definitions for `app` from what its materializers produced (`seen`, from any number
/// of corpora, in log order).
pub fn draft(app: &AppSchema, seen: &[Observation], files: &DraftFiles) -> Result<Draft> {
    let kinds: BTreeMap<(String, String), ColumnKind> = app
        .tables
        .iter()
        .flat_map(|(t, cols)| {
            cols.iter()
                .map(move |(c, k)| ((t.clone(), c.clone()), column_kind(k)))
        })
        .collect();
    let mut head = String::new();
    writeln!(
        head,
        "# A first draft of SQL definitions, written by `rehearse definitions draft` from the app's"
    )
    .ok();
    writeln!(
        head,
        "# own schema and the statements its materializers produced. Events marked TODO are not"
    )
    .ok();
    writeln!(
        head,
        "# defined: write them (the variants seen are listed), then hold the result against the app"
    )
    .ok();
    writeln!(
        head,
        "# with `rehearse bisect <corpus> --old <this file> --new livestore:<app>`."
    )
    .ok();
    writeln!(head, "# Format: docs/definitions.md.").ok();
    writeln!(head, "format = 1\n").ok();
    writeln!(head, "event_schemas = {}", toml_str(&files.event_schemas)).ok();
    writeln!(head, "\n[state]\nddl_file = {}", toml_str(&files.ddl_file)).ok();
    // What a drafted event is verified with: the column kinds and client documents, without
    // the files the draft has not written yet.
    let mut common = String::from("format = 1\n");

    let mut tables_text = String::new();
    for (table, cols) in &app.tables {
        let declared: Vec<String> = cols
            .iter()
            .filter(|(_, k)| k != "plain")
            .map(|(c, k)| {
                if k == "other" {
                    format!(
                        "# {} = ?  TODO: its schema stores values in a way no column kind states",
                        toml_key(c)
                    )
                } else {
                    format!("{} = {}", toml_key(c), toml_str(k))
                }
            })
            .collect();
        if !declared.is_empty() {
            writeln!(
                tables_text,
                "\n[tables.{}.columns]\n{}",
                toml_key(table),
                declared.join("\n")
            )
            .ok();
        }
    }

    let mut docs_text = String::new();
    for doc in &app.client_documents {
        writeln!(docs_text, "\n[client_documents.{}]", toml_key(&doc.name)).ok();
        writeln!(
            docs_text,
            "default = {}",
            toml_str(&js::stringify(&doc.default))
        )
        .ok();
        let default_keys: Vec<String> = doc
            .default
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if doc.keys != default_keys {
            let keys: Vec<String> = doc.keys.iter().map(|k| toml_str(k)).collect();
            writeln!(docs_text, "keys = [{}]", keys.join(", ")).ok();
        }
        if !doc.partial_set {
            writeln!(docs_text, "partial_set = false").ok();
        }
    }

    let derived: Vec<String> = app
        .client_documents
        .iter()
        .map(|d| format!("{}Set", d.name))
        .collect();
    let schemas = std::sync::Arc::new(crate::validate::EventSchemas::from_documents(
        std::path::Path::new(&files.event_schemas),
        app.events.iter().map(|(k, v)| (k.clone(), v.clone())),
    )?);
    let mut events_text = String::new();
    let mut defined = Vec::new();
    let mut todo = Vec::new();
    let header = format!("{head}{tables_text}{docs_text}");
    common.push_str(&tables_text);
    common.push_str(&docs_text);
    for name in app.events.keys() {
        if derived.contains(name) {
            continue;
        }
        let observed: Vec<&Observation> = seen.iter().filter(|o| &o.event.name == name).collect();
        if observed.is_empty() {
            let why = "not in the corpora: no statements seen".to_string();
            writeln!(events_text, "\n# TODO {}: {why}", toml_key_str(name)).ok();
            todo.push((name.clone(), why));
            continue;
        }
        let schema = app.events.get(name);
        let attempt = generalize(name, &observed, &kinds, schema).and_then(|text| {
            verify(&common, &text, &observed, &schemas)?;
            Ok(text)
        });
        match attempt {
            Ok(text) => {
                let unseen = unseen(schema, &observed);
                if !unseen.is_empty() {
                    writeln!(
                        events_text,
                        "\n# Never seen in the corpora: {}. Statements for args that carry them are not",
                        unseen.join(", ")
                    )
                    .ok();
                    write!(
                        events_text,
                        "# drafted from what LiveStore did: check them."
                    )
                    .ok();
                }
                write!(events_text, "\n{text}").ok();
                defined.push(name.clone());
            }
            Err(why) => {
                writeln!(events_text, "\n# TODO {}: {why}", toml_key_str(name)).ok();
                events_text.push_str(&variants(&observed));
                todo.push((name.clone(), why));
            }
        }
    }
    Ok(Draft {
        text: format!("{header}{events_text}"),
        defined,
        todo,
    })
}

fn column_kind(kind: &str) -> ColumnKind {
    match kind {
        "boolean" => ColumnKind::Boolean,
        "json" => ColumnKind::Json,
        "datetime" => ColumnKind::Datetime,
        "datetimeInteger" => ColumnKind::DatetimeInteger,
        _ => ColumnKind::Plain,
    }
}

/// A statement as LiveStore's query builder wrote it (`astToSql`), read back from its SQL, or
/// raw SQL.
#[derive(Debug, Clone)]
enum Form {
    Insert {
        replace: bool,
        table: String,
        values: Vec<(String, BindValue)>,
        conflict: Option<Conflict>,
        returning: Vec<String>,
    },
    Update {
        table: String,
        set: Vec<(String, BindValue)>,
        conditions: Vec<Cond>,
        returning: Vec<String>,
    },
    Delete {
        table: String,
        conditions: Vec<Cond>,
        returning: Vec<String>,
    },
    Raw {
        sql: String,
        binds: Binds,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Conflict {
    Ignore(Vec<String>),
    /// Per column, the bound value, or none for `excluded."col"`.
    Update(Vec<String>, Vec<(String, Option<BindValue>)>),
}

/// One `WHERE` condition: column, operator, value (none for `IS NULL` / `IS NOT NULL`).
#[derive(Debug, Clone)]
struct Cond {
    column: String,
    op: String,
    value: Option<BindValue>,
}

/// Reads the query builder's SQL back (the exact text `astToSql` writes), or keeps it raw.
fn form(st: &Statement) -> Form {
    let raw = || Form::Raw {
        sql: st.sql.clone(),
        binds: st.binds.clone(),
    };
    let Binds::Positional(binds) = &st.binds else {
        return raw();
    };
    let mut binds = binds.iter().cloned();
    let parsed = (|| -> Option<Form> {
        let mut s = Scanner(&st.sql);
        if s.eat("INSERT INTO '") || s.eat("INSERT OR REPLACE INTO '") {
            let replace = st.sql.starts_with("INSERT OR REPLACE");
            let table = s.until("'")?;
            s.expect(" (")?;
            let cols = s.idents_until(")")?;
            s.expect(" VALUES (")?;
            let placeholders = s.until(")")?;
            if placeholders != vec!["?"; cols.len()].join(", ") {
                return None;
            }
            let values = cols
                .into_iter()
                .map(|c| Some((c, binds.next()?)))
                .collect::<Option<Vec<_>>>()?;
            let conflict = if s.eat(" ON CONFLICT (") {
                let targets = s.idents_until(")")?;
                if s.eat(" DO NOTHING") {
                    Some(Conflict::Ignore(targets))
                } else {
                    s.expect(" DO UPDATE SET ")?;
                    let mut set = Vec::new();
                    loop {
                        let col = s.ident()?;
                        if s.eat(" = ?") {
                            set.push((col, Some(binds.next()?)));
                        } else {
                            s.expect(&format!(" = excluded.{}", quote(&col)))?;
                            set.push((col, None));
                        }
                        if !s.eat(", ") {
                            break;
                        }
                    }
                    Some(Conflict::Update(targets, set))
                }
            } else {
                None
            };
            let returning = s.returning()?;
            s.end()?;
            return Some(Form::Insert {
                replace,
                table,
                values,
                conflict,
                returning,
            });
        }
        if s.eat("UPDATE '") {
            let table = s.until("'")?;
            s.expect(" SET ")?;
            let mut set = Vec::new();
            loop {
                let col = s.ident()?;
                s.expect(" = ?")?;
                set.push((col, binds.next()?));
                if !s.eat(", ") {
                    break;
                }
            }
            s.expect(" ")?;
            let conditions = s.conditions(&mut binds)?;
            let returning = s.returning()?;
            s.end()?;
            return Some(Form::Update {
                table,
                set,
                conditions,
                returning,
            });
        }
        if s.eat("DELETE FROM '") {
            let table = s.until("'")?;
            s.expect(" ")?;
            let conditions = s.conditions(&mut binds)?;
            let returning = s.returning()?;
            s.end()?;
            return Some(Form::Delete {
                table,
                conditions,
                returning,
            });
        }
        None
    })();
    match parsed {
        Some(f) if binds.next().is_none() => f,
        _ => raw(),
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A cursor over SQL text that the query builder wrote.
struct Scanner<'a>(&'a str);

impl Scanner<'_> {
    fn eat(&mut self, s: &str) -> bool {
        match self.0.strip_prefix(s) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }
    fn expect(&mut self, s: &str) -> Option<()> {
        self.eat(s).then_some(())
    }
    fn until(&mut self, end: &str) -> Option<String> {
        let i = self.0.find(end)?;
        let out = self.0[..i].to_string();
        self.0 = &self.0[i + end.len()..];
        Some(out)
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
    /// A double-quoted identifier.
    fn ident(&mut self) -> Option<String> {
        let rest = self.0.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    self.0 = &rest[i + 1..];
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    }
    fn idents_until(&mut self, end: &str) -> Option<Vec<String>> {
        let mut out = vec![self.ident()?];
        while self.eat(", ") {
            out.push(self.ident()?);
        }
        self.expect(end)?;
        Some(out)
    }
    fn returning(&mut self) -> Option<Vec<String>> {
        if self.eat(" RETURNING ") {
            let mut out = vec![self.ident()?];
            while self.eat(", ") {
                out.push(self.ident()?);
            }
            Some(out)
        } else {
            Some(Vec::new())
        }
    }
    /// `formatWhereClause`: `WHERE c = ? AND …`, or nothing. Only the operators whose value is
    /// one bind (or none, for NULL) are read back.
    fn conditions(&mut self, binds: &mut impl Iterator<Item = BindValue>) -> Option<Vec<Cond>> {
        let mut out = Vec::new();
        if !self.eat("WHERE ") {
            return Some(out);
        }
        loop {
            let column = self.ident()?;
            let cond = if self.eat(" IS NULL") {
                Cond {
                    column,
                    op: "=".into(),
                    value: None,
                }
            } else if self.eat(" IS NOT NULL") {
                Cond {
                    column,
                    op: "!=".into(),
                    value: None,
                }
            } else {
                let op = ["NOT LIKE", "LIKE", "!=", "<=", ">=", "=", "<", ">"]
                    .into_iter()
                    .find(|op| self.eat(&format!(" {op} ?")))?;
                Cond {
                    column,
                    op: op.to_string(),
                    value: Some(binds.next()?),
                }
            };
            out.push(cond);
            if !self.eat(" AND ") {
                return Some(out);
            }
        }
    }
}

/// Every path into the args (objects and arrays too), shortest first, as expressions.
fn paths(args: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut level: Vec<(String, &Value)> = vec![("args".to_string(), args)];
    for _ in 0..6 {
        let mut next = Vec::new();
        for (expr, v) in level {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        let step = if is_ident(k) {
                            format!("{expr}.{k}")
                        } else {
                            format!("{expr}['{}']", k.replace('\'', "''"))
                        };
                        out.push((step.clone(), x.clone()));
                        next.push((step, x));
                    }
                }
                Value::Array(items) => {
                    for (i, x) in items.iter().enumerate() {
                        let step = format!("{expr}[{i}]");
                        out.push((step.clone(), x.clone()));
                        next.push((step, x));
                    }
                }
                _ => {}
            }
        }
        level = next;
    }
    out
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && ![
            "args",
            "event",
            "query",
            "null",
            "true",
            "false",
            "undefined",
            "excluded",
        ]
        .contains(&s)
}

/// The value of `expr` (an `args.…` path, perhaps `| schema`) in `args`, with `schema` the
/// event's args schema: none when absent.
fn lookup(args: &Value, expr: &str, schema: Option<&Value>) -> Option<Value> {
    let parsed = super::expr::parse(expr).ok()?;
    let event = Event {
        seq: crate::event::SeqNum::ROOT,
        parent: crate::event::SeqNum::ROOT,
        name: String::new(),
        args_json: String::new(),
        client_id: String::new(),
        session_id: String::new(),
        schema_hash: 0,
        sync_metadata_json: String::new(),
    };
    match parsed.eval_in(super::Scope {
        args,
        event: &event,
        bound: &[],
        schema,
    }) {
        Ok(super::Val::Present(v)) => Some(v),
        _ => None,
    }
}

/// How a bound value is matched against an arg: through a column's kind (query builder) or as
/// a raw bind, with the pipes a raw statement may need.
#[derive(Clone, Copy)]
enum Binding {
    Column(ColumnKind),
    Raw,
}

/// The expression that gives each observation's value (`None` where the statement left the
/// column out), tried on every path of the first observation's args; a literal where every
/// value is the same; `Err` when nothing does.
fn expression(
    values: &[(&Value, Option<&BindValue>)],
    binding: Binding,
    schema: Option<&Value>,
) -> Result<String, String> {
    // Paths of every observation's args, those of the first ones first.
    let mut candidates: indexmap::IndexSet<String> = indexmap::IndexSet::new();
    for (args, _) in values {
        for (expr, _) in paths(args) {
            candidates.insert(expr);
        }
    }
    // A column's value as the args hold it, or as the event's schema re-encodes it (an old
    // arg in a JSON column).
    let schema_pipes: &[&str] = match (binding, schema) {
        (Binding::Column(_), Some(_)) => &["", " | schema"],
        _ => &[""],
    };
    let candidates: Vec<(String, Vec<Option<Value>>)> = candidates
        .into_iter()
        .flat_map(|e| schema_pipes.iter().map(move |p| format!("{e}{p}")))
        .map(|e| {
            let looked: Vec<Option<Value>> =
                values.iter().map(|(a, _)| lookup(a, &e, schema)).collect();
            (e, looked)
        })
        .collect();
    let pipes: &[&str] = match binding {
        Binding::Column(_) => &[""],
        Binding::Raw => &["", " | json", " | ms", " | iso"],
    };
    let bound = |arg: Option<Value>, pipe: &str| -> Option<BindValue> {
        match binding {
            Binding::Column(kind) => {
                arg.and_then(|v| crate::materialize::sql::encode(kind, v).ok())
            }
            Binding::Raw => {
                let v = match arg {
                    None => super::Val::Absent,
                    Some(v) => super::Val::Present(v),
                };
                let v = match pipe {
                    "" => v,
                    " | json" => super::expr::Pipe::Json.apply(v).ok()?,
                    " | ms" => super::expr::Pipe::Ms.apply(v).ok()?,
                    _ => super::expr::Pipe::Iso.apply(v).ok()?,
                };
                crate::materialize::sql::raw_bind("", v).ok()
            }
        }
    };
    for coalesce in [false, true] {
        for pipe in pipes {
            for (expr, looked) in &candidates {
                let fits = values.iter().zip(looked).all(|((_, want), arg)| {
                    let arg = arg.clone();
                    match want {
                        // Left out: the expression must be absent too.
                        None => arg.is_none(),
                        Some(want) => match (bound(arg.clone(), pipe), coalesce) {
                            (Some(got), _) if &got == *want => true,
                            (None, true) if arg.is_none() => **want == BindValue::Null,
                            (Some(BindValue::Unbound), true) => **want == BindValue::Null,
                            _ => false,
                        },
                    }
                });
                if fits {
                    let e = format!("{expr}{pipe}");
                    return Ok(if coalesce { format!("{e} ?? null") } else { e });
                }
            }
        }
    }
    // The same value every time, and never left out: a literal.
    let first = values.first().and_then(|(_, b)| *b);
    if let Some(first) = first
        && values.iter().all(|(_, b)| *b == Some(first))
        && let Some(literal) = literal(first)
    {
        return Ok(literal);
    }
    Err("a value that no arg gives and that is not the same every time".to_string())
}

/// A bound value as a definition's literal.
fn literal(v: &BindValue) -> Option<String> {
    Some(match v {
        BindValue::Null => "null".to_string(),
        BindValue::Integer(i) => i.to_string(),
        BindValue::Real(f) => {
            let mut s = String::new();
            js::format_number(*f, &mut s);
            s
        }
        BindValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
        BindValue::Unbound => "undefined".to_string(),
        BindValue::Blob(_) => return None,
    })
}

/// The definition of `name` that gives the statements of every observation, or why there is
/// none.
fn generalize(
    name: &str,
    observed: &[&Observation],
    kinds: &BTreeMap<(String, String), ColumnKind>,
    schema: Option<&Value>,
) -> Result<String, String> {
    let count = observed[0].statements.len();
    if observed.iter().any(|o| o.statements.len() != count) {
        return Err(
            "the number of statements varies with the args or the state (a branch, ctx.query)"
                .to_string(),
        );
    }
    let mut out = format!("[events.{}]\n", toml_key_str(name));
    for i in 0..count {
        let forms: Vec<Form> = observed.iter().map(|o| form(&o.statements[i])).collect();
        let args: Vec<&Value> = observed.iter().map(|o| &o.args).collect();
        let body = statement(&forms, &args, kinds, schema).map_err(|e| {
            if count > 1 {
                format!("statement {}: {e}", i + 1)
            } else {
                e
            }
        })?;
        if count > 1 {
            writeln!(out, "[[events.{}.run]]", toml_key_str(name)).ok();
        }
        out.push_str(&body);
    }
    Ok(out)
}

/// The columns of every observation in one order that keeps each observation's own (the
/// object's key order in the materializer): each column after the ones it follows anywhere,
/// ties in the order the columns first appear.
fn union_of(lists: &[Vec<&String>]) -> Vec<String> {
    let mut first: Vec<String> = Vec::new();
    for list in lists {
        for c in list {
            if !first.contains(c) {
                first.push((*c).clone());
            }
        }
    }
    let index = |c: &str| first.iter().position(|x| x == c).unwrap_or(usize::MAX);
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); first.len()];
    for list in lists {
        for pair in list.windows(2) {
            before[index(pair[1])].push(index(pair[0]));
        }
    }
    let mut out = Vec::new();
    let mut placed = vec![false; first.len()];
    while out.len() < first.len() {
        // The earliest column all of whose predecessors are placed (or, in a cycle, the
        // earliest not placed).
        let next = (0..first.len())
            .find(|&i| !placed[i] && before[i].iter().all(|&b| placed[b]))
            .or_else(|| (0..first.len()).find(|&i| !placed[i]))
            .unwrap_or(0);
        placed[next] = true;
        out.push(first[next].clone());
    }
    out
}

/// The assignments of an insert's values, an update's set or an upsert's set (`excluded`:
/// there a bound value of none is `excluded."col"`, and a column some rows leave out is set
/// only when its arg is present), from each observation's row.
fn assignments(
    table: &str,
    rows: &[Vec<(String, Option<BindValue>)>],
    args: &[&Value],
    kinds: &BTreeMap<(String, String), ColumnKind>,
    excluded: bool,
    schema: Option<&Value>,
) -> Result<String, String> {
    let columns = union_of(
        &rows
            .iter()
            .map(|r| r.iter().map(|(c, _)| c).collect())
            .collect::<Vec<_>>(),
    );
    let mut parts = Vec::new();
    for col in &columns {
        let kind = kinds
            .get(&(table.to_string(), col.clone()))
            .copied()
            .unwrap_or(ColumnKind::Plain);
        let present: Vec<Option<&Option<BindValue>>> = rows
            .iter()
            .map(|r| r.iter().find(|(c, _)| c == col).map(|(_, v)| v))
            .collect();
        // `excluded."col"` every time it is there.
        if excluded && present.iter().all(|p| matches!(p, None | Some(None))) {
            parts.push(format!("{} = \"excluded\"", toml_key(col)));
            continue;
        }
        let values: Vec<(&Value, Option<&BindValue>)> = args
            .iter()
            .zip(&present)
            .map(|(a, p)| (*a, p.and_then(|v| v.as_ref())))
            .collect();
        let expr = expression(&values, Binding::Column(kind), schema)
            .map_err(|e| format!("{col}: {e}"))?;
        if excluded && present.iter().any(Option::is_none) {
            parts.push(format!(
                "{} = {{ value = {}, when = {} }}",
                toml_key(col),
                toml_str(&expr),
                toml_str(&format!("{expr} !== undefined"))
            ));
        } else {
            parts.push(format!("{} = {}", toml_key(col), toml_str(&expr)));
        }
    }
    Ok(format!("{{ {} }}", parts.join(", ")))
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| toml_str(i)).collect();
    format!("[{}]", items.join(", "))
}

/// One statement's definition from its forms across observations.
fn statement(
    forms: &[Form],
    args: &[&Value],
    kinds: &BTreeMap<(String, String), ColumnKind>,
    schema: Option<&Value>,
) -> Result<String, String> {
    let mut out = String::new();
    match &forms[0] {
        Form::Insert {
            replace,
            table,
            conflict,
            returning,
            ..
        } => {
            let mut rows = Vec::new();
            let mut updates = Vec::new();
            for f in forms {
                let Form::Insert {
                    replace: r,
                    table: t,
                    values,
                    conflict: c,
                    returning: ret,
                } = f
                else {
                    return Err("an insert here, another statement elsewhere".to_string());
                };
                let same_conflict = match (conflict, c) {
                    (None, None) => true,
                    (Some(Conflict::Ignore(a)), Some(Conflict::Ignore(b))) => a == b,
                    (Some(Conflict::Update(a, _)), Some(Conflict::Update(b, set))) => {
                        updates.push(set.clone());
                        a == b
                    }
                    _ => false,
                };
                if r != replace || t != table || ret != returning || !same_conflict {
                    return Err("inserts that differ in table or conflict handling".to_string());
                }
                rows.push(
                    values
                        .iter()
                        .map(|(c, v)| (c.clone(), Some(v.clone())))
                        .collect(),
                );
            }
            writeln!(out, "insert = {}", toml_str(table)).ok();
            writeln!(
                out,
                "values = {}",
                assignments(table, &rows, args, kinds, false, schema)?
            )
            .ok();
            match conflict {
                _ if *replace => writeln!(out, "on_conflict = {{ do = \"replace\" }}").ok(),
                Some(Conflict::Ignore(targets)) => writeln!(
                    out,
                    "on_conflict = {{ target = {}, do = \"ignore\" }}",
                    list(targets)
                )
                .ok(),
                Some(Conflict::Update(targets, _)) => writeln!(
                    out,
                    "on_conflict = {{ target = {}, do = \"update\", set = {} }}",
                    list(targets),
                    assignments(table, &updates, args, kinds, true, schema)?
                )
                .ok(),
                None => None,
            };
            if !returning.is_empty() {
                writeln!(out, "returning = {}", list(returning)).ok();
            }
        }
        Form::Update {
            table, returning, ..
        }
        | Form::Delete {
            table, returning, ..
        } => {
            let is_update = matches!(forms[0], Form::Update { .. });
            let mut sets = Vec::new();
            let mut wheres: Vec<&Vec<Cond>> = Vec::new();
            for f in forms {
                match (f, is_update) {
                    (
                        Form::Update {
                            table: t,
                            set,
                            conditions,
                            returning: r,
                        },
                        true,
                    ) if t == table && r == returning => {
                        sets.push(
                            set.iter()
                                .map(|(c, v)| (c.clone(), Some(v.clone())))
                                .collect(),
                        );
                        wheres.push(conditions);
                    }
                    (
                        Form::Delete {
                            table: t,
                            conditions,
                            returning: r,
                        },
                        false,
                    ) if t == table && r == returning => wheres.push(conditions),
                    _ => return Err("statements that differ in kind or table".to_string()),
                }
            }
            if is_update {
                writeln!(out, "update = {}", toml_str(table)).ok();
                writeln!(
                    out,
                    "set = {}",
                    assignments(table, &sets, args, kinds, false, schema)?
                )
                .ok();
            } else {
                writeln!(out, "delete = {}", toml_str(table)).ok();
            }
            let shape: Vec<(&String, &String)> =
                wheres[0].iter().map(|c| (&c.column, &c.op)).collect();
            if wheres
                .iter()
                .any(|w| w.iter().map(|c| (&c.column, &c.op)).collect::<Vec<_>>() != shape)
            {
                return Err("where clauses that vary with the args".to_string());
            }
            if !shape.is_empty() {
                let mut parts = Vec::new();
                for (i, (column, op)) in shape.iter().enumerate() {
                    let kind = kinds
                        .get(&(table.clone(), (*column).clone()))
                        .copied()
                        .unwrap_or(ColumnKind::Plain);
                    let values: Vec<(&Value, Option<&BindValue>)> = args
                        .iter()
                        .zip(&wheres)
                        .map(|(a, w)| (*a, Some(w[i].value.as_ref().unwrap_or(&BindValue::Null))))
                        .collect();
                    let expr = expression(&values, Binding::Column(kind), schema)
                        .map_err(|e| format!("where.{column}: {e}"))?;
                    parts.push(if op.as_str() == "=" {
                        format!("{} = {}", toml_key(column), toml_str(&expr))
                    } else {
                        format!(
                            "{} = {{ op = {}, value = {} }}",
                            toml_key(column),
                            toml_str(op),
                            toml_str(&expr)
                        )
                    });
                }
                writeln!(out, "where = {{ {} }}", parts.join(", ")).ok();
            }
            if !returning.is_empty() {
                writeln!(out, "returning = {}", list(returning)).ok();
            }
        }
        Form::Raw { sql, binds } => {
            for f in forms {
                let Form::Raw { sql: s, binds: b } = f else {
                    return Err("raw SQL here, the query builder elsewhere".to_string());
                };
                let same_shape = match (binds, b) {
                    (Binds::None, Binds::None) => true,
                    (Binds::Positional(x), Binds::Positional(y)) => x.len() == y.len(),
                    (Binds::Named(x), Binds::Named(y)) => {
                        x.iter().map(|(k, _)| k).eq(y.iter().map(|(k, _)| k))
                    }
                    _ => false,
                };
                if s != sql || !same_shape {
                    return Err("raw SQL that varies with the args".to_string());
                }
            }
            writeln!(out, "sql = {}", toml_multiline(sql)).ok();
            let value = |f: &Form, i: usize| -> Option<BindValue> {
                match f {
                    Form::Raw {
                        binds: Binds::Positional(v),
                        ..
                    } => v.get(i).cloned(),
                    Form::Raw {
                        binds: Binds::Named(v),
                        ..
                    } => v.get(i).map(|(_, x)| x.clone()),
                    _ => None,
                }
            };
            let n = match binds {
                Binds::None => 0,
                Binds::Positional(v) => v.len(),
                Binds::Named(v) => v.len(),
            };
            let mut exprs = Vec::new();
            for i in 0..n {
                let observed: Vec<Option<BindValue>> = forms.iter().map(|f| value(f, i)).collect();
                let values: Vec<(&Value, Option<&BindValue>)> = args
                    .iter()
                    .zip(&observed)
                    .map(|(a, v)| (*a, v.as_ref()))
                    .collect();
                exprs.push(
                    expression(&values, Binding::Raw, None)
                        .map_err(|e| format!("bind {}: {e}", i + 1))?,
                );
            }
            match binds {
                Binds::None => {}
                Binds::Positional(_) => {
                    writeln!(out, "binds = {}", list(&exprs)).ok();
                }
                Binds::Named(named) => {
                    let parts: Vec<String> = named
                        .iter()
                        .zip(&exprs)
                        .map(|((k, _), e)| {
                            format!("{} = {}", toml_key(k.trim_start_matches('$')), toml_str(e))
                        })
                        .collect();
                    writeln!(out, "binds = {{ {} }}", parts.join(", ")).ok();
                }
            }
        }
    }
    Ok(out)
}

/// Holds a drafted event against what LiveStore produced: the same statements, SQL and values,
/// for every observation.
fn verify(
    header: &str,
    event: &str,
    observed: &[&Observation],
    schemas: &std::sync::Arc<crate::validate::EventSchemas>,
) -> Result<(), String> {
    let text = format!("{header}\n{event}");
    let defs = Definitions::parse(std::path::Path::new("draft.toml"), &text)
        .map_err(|e| format!("the draft does not parse ({e})"))?;
    let sql = SqlMaterializer::new(defs).with_event_schemas(schemas.clone());
    let state = Connection::open_in_memory().map_err(|e| e.to_string())?;
    for o in observed {
        let ours = match sql.statements(&o.event, &o.args, &state) {
            Some(Ok(s)) => s,
            _ => return Err(format!("the draft rejects the args of {}", o.event.seq)),
        };
        let same = ours.len() == o.statements.len()
            && ours
                .iter()
                .zip(&o.statements)
                .all(|(a, b)| a.sql == b.sql && a.binds == b.binds);
        if !same {
            return Err(format!(
                "the statements vary in ways no generalisation reproduces (first at {})",
                o.event.seq
            ));
        }
    }
    Ok(())
}

/// The optional fields of the event's schema (as `args.…`, three levels deep) that no observed
/// event carried.
fn unseen(schema: Option<&Value>, observed: &[&Observation]) -> Vec<String> {
    fn fields(schema: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (k, v) in props {
            let path = if is_ident(k) {
                format!("{at}.{k}")
            } else {
                format!("{at}['{}']", k.replace('\'', "''"))
            };
            out.push(path.clone());
            if depth < 3 {
                fields(v, &path, depth + 1, out);
            }
        }
    }
    let Some(schema) = schema else {
        return Vec::new();
    };
    let mut all = Vec::new();
    fields(schema, "args", 1, &mut all);
    all.into_iter()
        .filter(|path| {
            observed
                .iter()
                .all(|o| lookup(&o.args, path, None).is_none())
        })
        .collect()
}

/// The distinct statement lists seen, as comments: up to three, with the first event of each.
fn variants(observed: &[&Observation]) -> String {
    let mut seen: Vec<(String, &Observation, usize)> = Vec::new();
    for o in observed {
        let shape: String = o
            .statements
            .iter()
            .map(|s| s.sql.clone())
            .collect::<Vec<_>>()
            .join("\n");
        match seen.iter_mut().find(|(s, _, _)| *s == shape) {
            Some(v) => v.2 += 1,
            None => seen.push((shape, o, 1)),
        }
    }
    let mut out = String::new();
    for (i, (_, o, n)) in seen.iter().enumerate().take(3) {
        writeln!(
            out,
            "#   variant {} ({n} event(s), first {}, args {}):",
            i + 1,
            o.event.seq,
            crate::text::truncate(&o.event.args_json)
        )
        .ok();
        if o.statements.is_empty() {
            writeln!(out, "#     (no statements)").ok();
        }
        for st in &o.statements {
            let sql: String = st.sql.split_whitespace().collect::<Vec<_>>().join(" ");
            writeln!(out, "#     {}", crate::text::truncate(&sql)).ok();
            writeln!(
                out,
                "#       binds {}",
                crate::text::truncate(&binds_text(&st.binds))
            )
            .ok();
        }
    }
    if seen.len() > 3 {
        writeln!(out, "#   and {} more variant(s)", seen.len() - 3).ok();
    }
    out
}

fn binds_text(binds: &Binds) -> String {
    let one = |v: &BindValue| match v {
        BindValue::Null => "null".to_string(),
        BindValue::Integer(i) => i.to_string(),
        BindValue::Real(f) => {
            let mut s = String::new();
            js::format_number(*f, &mut s);
            s
        }
        BindValue::Text(t) => js::stringify(&Value::String(t.clone())),
        BindValue::Blob(b) => format!("<{} bytes>", b.len()),
        BindValue::Unbound => "undefined".to_string(),
    };
    match binds {
        Binds::None => "none".to_string(),
        Binds::Positional(v) => format!("[{}]", v.iter().map(one).collect::<Vec<_>>().join(", ")),
        Binds::Named(v) => format!(
            "{{{}}}",
            v.iter()
                .map(|(k, x)| format!("{k}: {}", one(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// SQL as a TOML string; one with line breaks as a multi-line literal where it can be.
fn toml_multiline(s: &str) -> String {
    if s.contains('\n') && !s.contains("'''") && !s.ends_with('\'') && !s.starts_with('\n') {
        format!("'''{s}'''")
    } else {
        toml_str(s)
    }
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_str(k)
    }
}

/// An event name as a TOML key (quoted where it holds a dot).
fn toml_key_str(k: &str) -> String {
    toml_key(k)
}

/// Drafts definitions for `app` and writes them to `out`, with the app's event schemas in
/// `<stem>.events/` and its state DDL in `<stem>.state.sql` beside it, each file atomically.
pub fn write_draft(app: &AppSchema, seen: &[Observation], out: &std::path::Path) -> Result<Draft> {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "definitions".to_string());
    let dir = out.parent().unwrap_or(std::path::Path::new(""));
    let files = DraftFiles {
        event_schemas: format!("{stem}.events"),
        ddl_file: format!("{stem}.state.sql"),
    };
    let events = dir.join(&files.event_schemas);
    std::fs::create_dir_all(&events).map_err(|e| crate::error::Error::io(&events, e))?;
    for (name, schema) in &app.events {
        if name.contains('/') || name.starts_with('.') {
            continue;
        }
        let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
        text.push('\n');
        crate::files::write_atomic(&events.join(format!("{name}.json")), text.as_bytes())?;
    }
    crate::files::write_atomic(&dir.join(&files.ddl_file), app.ddl.as_bytes())?;
    let drafted = draft(app, seen, &files)?;
    crate::files::write_atomic(out, drafted.text.as_bytes())?;
    Ok(drafted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SeqNum;
    use serde_json::json;

    fn observe(
        seq: i64,
        name: &str,
        args: Value,
        statements: &[(&str, Vec<BindValue>)],
    ) -> Observation {
        Observation {
            event: Event {
                seq: SeqNum {
                    global: seq,
                    client: 0,
                    rebase_generation: 0,
                },
                parent: SeqNum::ROOT,
                name: name.into(),
                args_json: args.to_string(),
                client_id: "c".into(),
                session_id: "s".into(),
                schema_hash: 0,
                sync_metadata_json: String::new(),
            },
            args,
            statements: statements
                .iter()
                .map(|(sql, binds)| Statement {
                    sql: sql.to_string(),
                    binds: Binds::Positional(binds.clone()),
                    line: None,
                    file: None,
                    target: None,
                })
                .collect(),
        }
    }

    /// The query builder's SQL is read back and generalised over every event of a name: a
    /// column some upserts leave out of their update becomes `{ value, when }`, a boolean is
    /// bound through its column kind, and an event whose statement count varies is a TODO with
    /// its variants.
    #[test]
    fn statements_are_generalised_back_to_the_args_and_verified() {
        let text = |s: &str| BindValue::Text(s.into());
        let app = AppSchema {
            events: [
                ("A".to_string(), json!({"type": "object", "properties": {"id": {}, "name": {}, "flag": {}, "note": {}}})),
                ("B".to_string(), json!({"type": "object"})),
            ]
            .into_iter()
            .collect(),
            tables: vec![(
                "t".into(),
                vec![("id".into(), "plain".into()), ("name".into(), "plain".into()), ("flag".into(), "boolean".into())],
            )],
            client_documents: Vec::new(),
            ddl: String::new(),
        };
        let seen = vec![
            observe(
                1,
                "A",
                json!({"id": "x", "name": "n", "flag": true}),
                &[(
                    r#"INSERT INTO 't' ("id", "name", "flag") VALUES (?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "name" = ?, "flag" = ?"#,
                    vec![
                        text("x"),
                        text("n"),
                        BindValue::Integer(1),
                        text("n"),
                        BindValue::Integer(1),
                    ],
                )],
            ),
            observe(
                2,
                "A",
                json!({"id": "y", "name": "m"}),
                &[(
                    r#"INSERT INTO 't' ("id", "name") VALUES (?, ?) ON CONFLICT ("id") DO UPDATE SET "name" = ?"#,
                    vec![text("y"), text("m"), text("m")],
                )],
            ),
            observe(3, "B", json!({}), &[]),
            observe(4, "B", json!({}), &[("DELETE FROM 't' ", vec![])]),
        ];
        let files = DraftFiles {
            event_schemas: "x.events".into(),
            ddl_file: "x.state.sql".into(),
        };
        let drafted = draft(&app, &seen, &files).unwrap();
        assert_eq!(drafted.defined, ["A"]);
        assert_eq!(drafted.todo.len(), 1, "{}", drafted.text);
        assert!(drafted.todo[0].1.contains("number of statements varies"));
        assert!(drafted.text.contains(
            r#"on_conflict = { target = ["id"], do = "update", set = { name = "args.name", flag = { value = "args.flag", when = "args.flag !== undefined" } } }"#
        ), "{}", drafted.text);
        assert!(
            drafted
                .text
                .contains("# Never seen in the corpora: args.note."),
            "{}",
            drafted.text
        );
        assert!(
            drafted.text.contains("#   variant 2 (1 event(s), first e4"),
            "{}",
            drafted.text
        );
        assert!(
            drafted.text.contains("flag = \"boolean\""),
            "{}",
            drafted.text
        );
    }
}
