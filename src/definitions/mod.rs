//! Materializer definitions for the SQL path: a TOML file that says, for each event name, which
//! statements LiveStore's materializer runs and with which values.
//!
//! The format mirrors what a LiveStore 0.4 materializer can return (FORMAT.md §8): query-builder
//! `insert` / `update` / `delete` with LiveStore's exact SQL text, raw SQL with named or
//! positional binds, several statements per event, events that do nothing, and the derived
//! `…Set` events of client documents. Column encodings (booleans as 0/1, dates as ISO text or
//! epoch milliseconds, JSON as `JSON.stringify` text) are declared once per column, as the app's
//! own table definitions declare them. The README documents the format; its JSON Schema is
//! `schemas/materializers.schema.json`.
//!
//! Parsing checks the file on its own; [`Definitions::validate`] checks it against the state
//! schema (every table, column and raw statement must exist and prepare), so a definition that
//! names something the state does not have fails before any event is replayed.

pub mod expr;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::sqlite;
pub use expr::{Expr, Val};

/// The definitions format version this build reads.
pub const FORMAT_VERSION: i64 = 1;

/// Where the state tables' DDL comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    /// Copy every `CREATE` statement from the recorded state database (FORMAT.md §14 step 5).
    Recorded,
    /// Run this SQL.
    Sql {
        /// The statements.
        text: String,
        /// The file they came from (the definitions file for inline DDL).
        source: PathBuf,
    },
}

/// How LiveStore encodes a column's values (its column definition's schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `State.SQLite.boolean`: stored as 1/0.
    Boolean,
    /// `State.SQLite.json`: stored as `JSON.stringify` text.
    Json,
    /// `State.SQLite.datetime`: stored as `toISOString()` text.
    Datetime,
    /// `State.SQLite.datetimeInteger`: stored as epoch milliseconds.
    DatetimeInteger,
    /// `text`, `integer`, `real`, `blob`: stored as given.
    Plain,
}

impl ColumnKind {
    fn parse(s: &str) -> Option<ColumnKind> {
        Some(match s {
            "boolean" => ColumnKind::Boolean,
            "json" => ColumnKind::Json,
            "datetime" => ColumnKind::Datetime,
            "datetimeInteger" => ColumnKind::DatetimeInteger,
            "text" | "integer" | "real" | "blob" => ColumnKind::Plain,
            _ => return None,
        })
    }
}

/// A client document (`State.SQLite.clientDocument`) and its derived `…Set` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocument {
    /// Table name; the derived event is `<table>Set`.
    pub table: String,
    /// The document's default value.
    pub default: serde_json::Map<String, Value>,
    /// The document's keys in schema declaration order.
    pub keys: Vec<String>,
    /// Whether `…Set` merges a partial value (LiveStore's default) or replaces the document.
    pub partial_set: bool,
    /// Line of the definition.
    pub line: usize,
}

/// What one event does.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDefinition {
    /// Event name.
    pub name: String,
    /// Line of the definition.
    pub line: usize,
    /// Statements, in order; empty for an event that changes nothing.
    pub statements: Vec<StatementDef>,
}

/// One statement of an event's materializer.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementDef {
    /// Line of the statement.
    pub line: usize,
    /// Run only when this is truthy (an extension: a materializer's `if`).
    pub when: Option<Expr>,
    /// What the statement is.
    pub kind: StatementKind,
}

/// The kinds of statement a LiveStore materializer can return.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// `table.insert(values)[.onConflict(…)][.returning(…)]`
    Insert {
        /// Table.
        table: String,
        /// Column values, in the order written (LiveStore lists columns in object key order).
        values: Vec<(String, Expr)>,
        /// Conflict handling.
        on_conflict: Option<OnConflict>,
        /// `RETURNING` columns.
        returning: Vec<String>,
    },
    /// `table.update(set).where(conditions)`
    Update {
        /// Table.
        table: String,
        /// Column values.
        set: Vec<(String, Expr)>,
        /// `WHERE` conditions, joined with `AND`.
        conditions: Vec<Condition>,
        /// `RETURNING` columns.
        returning: Vec<String>,
    },
    /// `table.delete().where(conditions)`
    Delete {
        /// Table.
        table: String,
        /// `WHERE` conditions.
        conditions: Vec<Condition>,
        /// `RETURNING` columns.
        returning: Vec<String>,
    },
    /// `{ sql, bindValues }` or a raw SQL string.
    Sql {
        /// The SQL text, possibly several statements.
        sql: String,
        /// Bind values.
        binds: SqlBinds,
    },
    /// The derived `…Set` materializer of a client document.
    ClientDocumentSet {
        /// The client document's table.
        table: String,
    },
}

/// `onConflict(targets, action)`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    /// Conflict target columns.
    pub targets: Vec<String>,
    /// What to do.
    pub action: ConflictAction,
}

/// The query builder's conflict actions.
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictAction {
    /// `ON CONFLICT (…) DO NOTHING`
    Ignore,
    /// `INSERT OR REPLACE`
    Replace,
    /// `ON CONFLICT (…) DO UPDATE SET …`; an absent value means `excluded."col"`.
    Update(Vec<(String, Expr)>),
}

/// One `WHERE` condition of the query builder.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Column.
    pub column: String,
    /// Operator.
    pub op: Op,
    /// Value; absent drops the condition, as LiveStore's `where` drops `undefined`.
    pub value: Expr,
}

/// The query builder's `WHERE` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `NOT LIKE`
    NotLike,
    /// `ILIKE` (LiveStore emits it; SQLite rejects it)
    ILike,
    /// `NOT ILIKE`
    NotILike,
    /// `IN`
    In,
    /// `NOT IN`
    NotIn,
    /// `JSON_CONTAINS`: `EXISTS (SELECT 1 FROM json_each(col) WHERE value = ?)`
    JsonContains,
    /// `JSON_NOT_CONTAINS`
    JsonNotContains,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "LIKE" => Op::Like,
            "NOT LIKE" => Op::NotLike,
            "ILIKE" => Op::ILike,
            "NOT ILIKE" => Op::NotILike,
            "IN" => Op::In,
            "NOT IN" => Op::NotIn,
            "JSON_CONTAINS" => Op::JsonContains,
            "JSON_NOT_CONTAINS" => Op::JsonNotContains,
            _ => return None,
        })
    }

    /// The operator as LiveStore writes it into SQL.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::NotLike => "NOT LIKE",
            Op::ILike => "ILIKE",
            Op::NotILike => "NOT ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::JsonContains => "JSON_CONTAINS",
            Op::JsonNotContains => "JSON_NOT_CONTAINS",
        }
    }
}

/// Bind values of a raw SQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlBinds {
    /// A raw string: LiveStore 0.4 binds nothing (FORMAT.md §8.1).
    None,
    /// An array: `?` parameters, in order.
    Positional(Vec<Expr>),
    /// An object: bound to `$name` parameters.
    Named(Vec<(String, Expr)>),
}

/// A parsed definitions file.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// The file.
    pub path: PathBuf,
    /// Where the DDL comes from.
    pub ddl: Ddl,
    /// JSON Schemas of the events' args (a directory or one file), relative paths resolved
    /// against the definitions file.
    pub event_schemas: Option<PathBuf>,
    /// Declared column encodings, by (table, column).
    pub column_kinds: HashMap<(String, String), ColumnKind>,
    /// Client documents by table name.
    pub client_documents: IndexMap<String, ClientDocument>,
    /// Event definitions by name, derived `…Set` events included.
    pub events: IndexMap<String, EventDefinition>,
    /// Line of each declared table kind, for validation messages.
    table_lines: IndexMap<String, usize>,
}

// ---------------------------------------------------------------- raw TOML shapes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: Option<Spanned<i64>>,
    event_schemas: Option<Spanned<String>>,
    state: Option<Spanned<RawState>>,
    #[serde(default)]
    tables: IndexMap<String, Spanned<RawTable>>,
    #[serde(default)]
    client_documents: IndexMap<String, Spanned<RawClientDocument>>,
    #[serde(default)]
    events: IndexMap<String, Spanned<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    ddl: Option<Spanned<String>>,
    ddl_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    columns: IndexMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientDocument {
    default: Spanned<String>,
    keys: Option<Vec<String>>,
    partial_set: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    run: Option<Vec<Spanned<RawStatement>>>,
    insert: Option<Spanned<String>>,
    update: Option<Spanned<String>>,
    delete: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    values: Option<IndexMap<String, Spanned<toml::Value>>>,
    set: Option<IndexMap<String, Spanned<toml::Value>>>,
    #[serde(rename = "where")]
    where_: Option<IndexMap<String, Spanned<toml::Value>>>,
    on_conflict: Option<Spanned<toml::Value>>,
    returning: Option<Vec<String>>,
    binds: Option<Spanned<toml::Value>>,
    when: Option<Spanned<toml::Value>>,
}

impl RawStatement {
    fn is_empty_statement(&self) -> bool {
        self.insert.is_none()
            && self.update.is_none()
            && self.delete.is_none()
            && self.sql.is_none()
            && self.values.is_none()
            && self.set.is_none()
            && self.where_.is_none()
            && self.on_conflict.is_none()
            && self.returning.is_none()
            && self.binds.is_none()
            && self.when.is_none()
    }
}

/// Maps byte offsets to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct Ctx<'a> {
    path: &'a Path,
    lines: Lines,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, event: Option<&str>, message: impl Into<String>) -> Error {
        Error::Definitions {
            path: self.path.to_path_buf(),
            line: Some(self.lines.line(offset)),
            event: event.map(str::to_string),
            message: message.into(),
        }
    }
}

impl Definitions {
    /// Reads and parses a definitions file.
    pub fn load(path: &Path) -> Result<Definitions> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Definitions::parse(path, &text)
    }

    /// Parses definitions from text; `path` is used for messages and relative `ddl_file`s.
    pub fn parse(path: &Path, text: &str) -> Result<Definitions> {
        let ctx = Ctx {
            path,
            lines: Lines::new(text),
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| Error::Definitions {
            path: path.to_path_buf(),
            line: e.span().map(|s| ctx.lines.line(s.start)),
            event: None,
            message: e.message().trim().to_string(),
        })?;

        match &raw.format {
            None => {
                return Err(Error::Definitions {
                    path: path.to_path_buf(),
                    line: Some(1),
                    event: None,
                    message: format!(
                        "missing `format = {FORMAT_VERSION}` (the definitions format version)"
                    ),
                });
            }
            Some(f) if *f.get_ref() != FORMAT_VERSION => {
                return Err(ctx.err(
                    f.span().start,
                    None,
                    format!(
                        "definitions format {} is not supported; this rehearse reads format {FORMAT_VERSION}",
                        f.get_ref()
                    ),
                ));
            }
            Some(_) => {}
        }

        let ddl = match &raw.state {
            None => Ddl::Recorded,
            Some(state) => {
                let span = state.span().start;
                let state = state.get_ref();
                match (&state.ddl, &state.ddl_file) {
                    (Some(_), Some(_)) => {
                        return Err(ctx.err(
                            span,
                            None,
                            "give either `ddl` or `ddl_file`, not both",
                        ));
                    }
                    (None, None) => Ddl::Recorded,
                    (Some(ddl), None) if ddl.get_ref().trim() == "recorded" => Ddl::Recorded,
                    (Some(ddl), None) => Ddl::Sql {
                        text: ddl.get_ref().clone(),
                        source: path.to_path_buf(),
                    },
                    (None, Some(file)) => {
                        let base = path.parent().unwrap_or(Path::new(""));
                        let source = base.join(file.get_ref());
                        let text = std::fs::read_to_string(&source).map_err(|e| {
                            ctx.err(
                                file.span().start,
                                None,
                                format!("cannot read ddl_file {}: {e}", source.display()),
                            )
                        })?;
                        Ddl::Sql { text, source }
                    }
                }
            }
        };

        let mut column_kinds = HashMap::new();
        let mut table_lines = IndexMap::new();
        for (table, spec) in &raw.tables {
            table_lines.insert(table.clone(), ctx.lines.line(spec.span().start));
            for (column, kind) in &spec.get_ref().columns {
                let k = ColumnKind::parse(kind.get_ref()).ok_or_else(|| {
                    ctx.err(
                        kind.span().start,
                        None,
                        format!(
                            "tables.{table}.columns.{column}: unknown column kind {:?} (known: boolean, json, datetime, datetimeInteger, text, integer, real, blob)",
                            kind.get_ref()
                        ),
                    )
                })?;
                column_kinds.insert((table.clone(), column.clone()), k);
            }
        }

        let mut client_documents = IndexMap::new();
        let mut events = IndexMap::new();
        for (table, spec) in &raw.client_documents {
            let line = ctx.lines.line(spec.span().start);
            let doc = spec.get_ref();
            let default: Value = serde_json::from_str(doc.default.get_ref()).map_err(|e| {
                ctx.err(
                    doc.default.span().start,
                    None,
                    format!("client_documents.{table}.default is not JSON: {e}"),
                )
            })?;
            let Value::Object(default) = default else {
                return Err(ctx.err(
                    doc.default.span().start,
                    None,
                    format!("client_documents.{table}.default must be a JSON object"),
                ));
            };
            let keys = doc
                .keys
                .clone()
                .unwrap_or_else(|| default.keys().cloned().collect());
            let event_name = format!("{table}Set");
            client_documents.insert(
                table.clone(),
                ClientDocument {
                    table: table.clone(),
                    default,
                    keys,
                    partial_set: doc.partial_set.unwrap_or(true),
                    line,
                },
            );
            events.insert(
                event_name.clone(),
                EventDefinition {
                    name: event_name,
                    line,
                    statements: vec![StatementDef {
                        line,
                        when: None,
                        kind: StatementKind::ClientDocumentSet {
                            table: table.clone(),
                        },
                    }],
                },
            );
        }

        for (name, raw_event) in &raw.events {
            let line = ctx.lines.line(raw_event.span().start);
            if events.contains_key(name) {
                return Err(ctx.err(
                    raw_event.span().start,
                    Some(name),
                    "this event is derived from a client document (client_documents); it cannot also be defined here",
                ));
            }
            let ev = raw_event.get_ref();
            let mut statements = Vec::new();
            match &ev.run {
                Some(run) => {
                    if !ev.is_empty_statement() {
                        return Err(ctx.err(
                            raw_event.span().start,
                            Some(name),
                            "put statements either in `run = [...]` or directly in the event table, not both",
                        ));
                    }
                    for st in run {
                        if st.get_ref().run.is_some() {
                            return Err(ctx.err(
                                st.span().start,
                                Some(name),
                                "`run` cannot be nested",
                            ));
                        }
                        statements.push(statement(&ctx, name, st.span().start, st.get_ref())?);
                    }
                }
                None if ev.is_empty_statement() => {}
                None => statements.push(statement(&ctx, name, raw_event.span().start, ev)?),
            }
            events.insert(
                name.clone(),
                EventDefinition {
                    name: name.clone(),
                    line,
                    statements,
                },
            );
        }

        let event_schemas = raw
            .event_schemas
            .as_ref()
            .map(|p| path.parent().unwrap_or(Path::new("")).join(p.get_ref()));
        Ok(Definitions {
            path: path.to_path_buf(),
            ddl,
            event_schemas,
            column_kinds,
            client_documents,
            events,
            table_lines,
        })
    }

    /// The event args schemas the definitions name (`event_schemas`), loaded.
    pub fn load_event_schemas(&self) -> Result<Option<crate::validate::EventSchemas>> {
        self.event_schemas
            .as_deref()
            .map(crate::validate::EventSchemas::load)
            .transpose()
    }

    /// The declared encoding of a column.
    pub fn column_kind(&self, table: &str, column: &str) -> ColumnKind {
        self.column_kinds
            .get(&(table.to_string(), column.to_string()))
            .copied()
            .unwrap_or(ColumnKind::Plain)
    }

    /// Tables the definitions write to or declare, for choosing among recorded snapshots.
    pub fn referenced_columns(&self) -> IndexMap<String, Vec<String>> {
        let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
        let mut add = |t: &str, cols: &mut dyn Iterator<Item = &str>| {
            let entry = out.entry(t.to_string()).or_default();
            for c in cols {
                if !entry.iter().any(|x| x == c) {
                    entry.push(c.to_string());
                }
            }
        };
        for (table, column) in self.column_kinds.keys() {
            add(table, &mut std::iter::once(column.as_str()));
        }
        for doc in self.client_documents.values() {
            add(&doc.table, &mut ["id", "value"].into_iter());
        }
        for ev in self.events.values() {
            for st in &ev.statements {
                match &st.kind {
                    StatementKind::Insert {
                        table,
                        values,
                        on_conflict,
                        returning,
                    } => {
                        add(table, &mut values.iter().map(|(c, _)| c.as_str()));
                        add(table, &mut returning.iter().map(String::as_str));
                        if let Some(oc) = on_conflict {
                            add(table, &mut oc.targets.iter().map(String::as_str));
                            if let ConflictAction::Update(set) = &oc.action {
                                add(table, &mut set.iter().map(|(c, _)| c.as_str()));
                            }
                        }
                    }
                    StatementKind::Update {
                        table,
                        set,
                        conditions,
                        returning,
                    } => {
                        add(table, &mut set.iter().map(|(c, _)| c.as_str()));
                        add(table, &mut conditions.iter().map(|c| c.column.as_str()));
                        add(table, &mut returning.iter().map(String::as_str));
                    }
                    StatementKind::Delete {
                        table,
                        conditions,
                        returning,
                    } => {
                        add(table, &mut conditions.iter().map(|c| c.column.as_str()));
                        add(table, &mut returning.iter().map(String::as_str));
                    }
                    StatementKind::Sql { .. } | StatementKind::ClientDocumentSet { .. } => {}
                }
            }
        }
        out
    }

    /// Checks every definition against the state schema loaded into `conn`: tables and columns
    /// must exist, raw SQL must prepare, and its parameters must match its binds.
    pub fn validate(&self, conn: &Connection) -> Result<()> {
        let mut columns_of: HashMap<String, Vec<String>> = HashMap::new();
        let mut columns = |table: &str| -> Option<Vec<String>> {
            if let Some(c) = columns_of.get(table) {
                return Some(c.clone());
            }
            let cols: Vec<String> = sqlite::table_columns(conn, "main", table)
                .ok()?
                .into_iter()
                .map(|c| c.name)
                .collect();
            if cols.is_empty() {
                return None;
            }
            columns_of.insert(table.to_string(), cols.clone());
            Some(cols)
        };
        let err = |line: usize, event: Option<&str>, message: String| Error::Definitions {
            path: self.path.clone(),
            line: Some(line),
            event: event.map(str::to_string),
            message,
        };

        for (table, line) in &self.table_lines {
            let Some(cols) = columns(table) else {
                return Err(err(
                    *line,
                    None,
                    format!("the state has no table `{table}`"),
                ));
            };
            for ((t, c), _) in self.column_kinds.iter().filter(|((t, _), _)| t == table) {
                if !cols.iter().any(|x| x == c) {
                    return Err(err(
                        *line,
                        None,
                        format!("the state table `{t}` has no column `{c}`"),
                    ));
                }
            }
        }
        for doc in self.client_documents.values() {
            let Some(cols) = columns(&doc.table) else {
                return Err(err(
                    doc.line,
                    Some(&format!("{}Set", doc.table)),
                    format!("the state has no client-document table `{}`", doc.table),
                ));
            };
            for want in ["id", "value"] {
                if !cols.iter().any(|c| c == want) {
                    return Err(err(
                        doc.line,
                        Some(&format!("{}Set", doc.table)),
                        format!(
                            "client-document table `{}` has no column `{want}`",
                            doc.table
                        ),
                    ));
                }
            }
        }

        for ev in self.events.values() {
            for st in &ev.statements {
                let name = Some(ev.name.as_str());
                let (table, cols_used): (Option<&String>, Vec<&str>) = match &st.kind {
                    StatementKind::Insert {
                        table,
                        values,
                        on_conflict,
                        returning,
                    } => {
                        let mut used: Vec<&str> = values.iter().map(|(c, _)| c.as_str()).collect();
                        used.extend(returning.iter().map(String::as_str));
                        if let Some(oc) = on_conflict {
                            used.extend(oc.targets.iter().map(String::as_str));
                            if let ConflictAction::Update(set) = &oc.action {
                                used.extend(set.iter().map(|(c, _)| c.as_str()));
                            }
                        }
                        (Some(table), used)
                    }
                    StatementKind::Update {
                        table,
                        set,
                        conditions,
                        returning,
                    } => {
                        let mut used: Vec<&str> = set.iter().map(|(c, _)| c.as_str()).collect();
                        used.extend(conditions.iter().map(|c| c.column.as_str()));
                        used.extend(returning.iter().map(String::as_str));
                        (Some(table), used)
                    }
                    StatementKind::Delete {
                        table,
                        conditions,
                        returning,
                    } => {
                        let mut used: Vec<&str> =
                            conditions.iter().map(|c| c.column.as_str()).collect();
                        used.extend(returning.iter().map(String::as_str));
                        (Some(table), used)
                    }
                    StatementKind::Sql { sql, binds } => {
                        validate_raw_sql(conn, sql, binds).map_err(|m| err(st.line, name, m))?;
                        (None, Vec::new())
                    }
                    StatementKind::ClientDocumentSet { .. } => (None, Vec::new()),
                };
                if let Some(table) = table {
                    let Some(cols) = columns(table) else {
                        return Err(err(
                            st.line,
                            name,
                            format!("the state has no table `{table}`"),
                        ));
                    };
                    for c in cols_used {
                        if !cols.iter().any(|x| x == c) {
                            return Err(err(
                                st.line,
                                name,
                                format!("the state table `{table}` has no column `{c}`"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn validate_raw_sql(conn: &Connection, sql: &str, binds: &SqlBinds) -> Result<(), String> {
    let parts = sqlite::split_statements(conn, sql)
        .map_err(|e| format!("SQLite cannot prepare this SQL: {e}"))?;
    for part in &parts {
        let named: Vec<&String> = part.params.iter().flatten().collect();
        match binds {
            SqlBinds::None if !part.params.is_empty() => {
                return Err(format!(
                    "the SQL has {} parameter(s) but no `binds` (LiveStore binds nothing to a raw SQL string)",
                    part.params.len()
                ));
            }
            SqlBinds::None => {}
            SqlBinds::Positional(values) => {
                if part.params.len() > values.len() {
                    return Err(format!(
                        "the SQL has {} parameters but `binds` gives {}",
                        part.params.len(),
                        values.len()
                    ));
                }
            }
            SqlBinds::Named(values) => {
                if part.params.len() != named.len() {
                    return Err(
                        "the SQL mixes `?` parameters with named binds; LiveStore binds an object only to `$name` parameters"
                            .to_string(),
                    );
                }
                for p in named {
                    let ok = p
                        .strip_prefix('$')
                        .is_some_and(|k| values.iter().any(|(name, _)| name == k));
                    if !ok {
                        return Err(if p.starts_with('$') {
                            format!("parameter {p} has no value in `binds`")
                        } else {
                            format!(
                                "parameter {p} would stay NULL: LiveStore binds named values as `$name`"
                            )
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

fn statement(
    ctx: &Ctx<'_>,
    event: &str,
    offset: usize,
    raw: &RawStatement,
) -> Result<StatementDef> {
    let ev = Some(event);
    let line = ctx.lines.line(offset);
    let expr_of = |v: &Spanned<toml::Value>| -> Result<Expr> {
        to_expr(v.get_ref()).map_err(|m| ctx.err(v.span().start, ev, m))
    };
    let assignments =
        |map: &IndexMap<String, Spanned<toml::Value>>| -> Result<Vec<(String, Expr)>> {
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expr_of(v)?)))
                .collect()
        };
    let conditions =
        |map: &Option<IndexMap<String, Spanned<toml::Value>>>| -> Result<Vec<Condition>> {
            let Some(map) = map else {
                return Ok(Vec::new());
            };
            map.iter()
            .map(|(column, v)| {
                if let toml::Value::Table(t) = v.get_ref() {
                    let op_text = t.get("op").and_then(toml::Value::as_str).ok_or_else(|| {
                        ctx.err(v.span().start, ev, format!("where.{column}: a table needs `op` and `value`"))
                    })?;
                    let op = Op::parse(op_text).ok_or_else(|| {
                        ctx.err(v.span().start, ev, format!(
                            "where.{column}: unknown operator {op_text:?} (known: = != < <= > >= LIKE, NOT LIKE, ILIKE, NOT ILIKE, IN, NOT IN, JSON_CONTAINS, JSON_NOT_CONTAINS)"
                        ))
                    })?;
                    let value = t.get("value").ok_or_else(|| {
                        ctx.err(v.span().start, ev, format!("where.{column}: missing `value`"))
                    })?;
                    if let Some(extra) = t.keys().find(|k| *k != "op" && *k != "value") {
                        return Err(ctx.err(v.span().start, ev, format!("where.{column}: unknown key `{extra}`")));
                    }
                    let value = to_expr(value).map_err(|m| ctx.err(v.span().start, ev, m))?;
                    Ok(Condition { column: column.clone(), op, value })
                } else {
                    Ok(Condition { column: column.clone(), op: Op::Eq, value: expr_of(v)? })
                }
            })
            .collect()
        };
    let when = raw.when.as_ref().map(expr_of).transpose()?;
    let returning = raw.returning.clone().unwrap_or_default();

    let verbs = [
        raw.insert.is_some(),
        raw.update.is_some(),
        raw.delete.is_some(),
        raw.sql.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if verbs != 1 {
        return Err(ctx.err(
            offset,
            ev,
            if verbs == 0 {
                "a statement needs one of `insert`, `update`, `delete` or `sql`"
            } else {
                "a statement takes only one of `insert`, `update`, `delete` and `sql`; list several in `run = [...]`"
            },
        ));
    }
    let reject = |present: bool, key: &str, verb: &str| -> Result<()> {
        if present {
            Err(ctx.err(offset, ev, format!("`{key}` does not go with `{verb}`")))
        } else {
            Ok(())
        }
    };

    let kind = if let Some(table) = &raw.insert {
        reject(raw.set.is_some(), "set", "insert")?;
        reject(raw.where_.is_some(), "where", "insert")?;
        reject(raw.binds.is_some(), "binds", "insert")?;
        let values = raw
            .values
            .as_ref()
            .map(assignments)
            .transpose()?
            .ok_or_else(|| ctx.err(offset, ev, "`insert` needs `values`"))?;
        let on_conflict = raw
            .on_conflict
            .as_ref()
            .map(|oc| on_conflict(ctx, event, oc))
            .transpose()?;
        StatementKind::Insert {
            table: table.get_ref().clone(),
            values,
            on_conflict,
            returning,
        }
    } else if let Some(table) = &raw.update {
        reject(raw.values.is_some(), "values", "update (use `set`)")?;
        reject(raw.on_conflict.is_some(), "on_conflict", "update")?;
        reject(raw.binds.is_some(), "binds", "update")?;
        let set = raw
            .set
            .as_ref()
            .map(assignments)
            .transpose()?
            .ok_or_else(|| ctx.err(offset, ev, "`update` needs `set`"))?;
        StatementKind::Update {
            table: table.get_ref().clone(),
            set,
            conditions: conditions(&raw.where_)?,
            returning,
        }
    } else if let Some(table) = &raw.delete {
        reject(raw.values.is_some(), "values", "delete")?;
        reject(raw.set.is_some(), "set", "delete")?;
        reject(raw.on_conflict.is_some(), "on_conflict", "delete")?;
        reject(raw.binds.is_some(), "binds", "delete")?;
        StatementKind::Delete {
            table: table.get_ref().clone(),
            conditions: conditions(&raw.where_)?,
            returning,
        }
    } else {
        let sql = raw
            .sql
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        reject(raw.values.is_some(), "values", "sql (use `binds`)")?;
        reject(raw.set.is_some(), "set", "sql")?;
        reject(raw.where_.is_some(), "where", "sql")?;
        reject(raw.on_conflict.is_some(), "on_conflict", "sql")?;
        reject(raw.returning.is_some(), "returning", "sql")?;
        let binds = match &raw.binds {
            None => SqlBinds::None,
            Some(b) => match b.get_ref() {
                toml::Value::Array(items) => SqlBinds::Positional(
                    items
                        .iter()
                        .map(|i| to_expr(i).map_err(|m| ctx.err(b.span().start, ev, m)))
                        .collect::<Result<_>>()?,
                ),
                toml::Value::Table(t) => SqlBinds::Named(
                    t.iter()
                        .map(|(k, v)| {
                            Ok((
                                k.clone(),
                                to_expr(v).map_err(|m| ctx.err(b.span().start, ev, m))?,
                            ))
                        })
                        .collect::<Result<_>>()?,
                ),
                _ => {
                    return Err(ctx.err(
                        b.span().start,
                        ev,
                        "`binds` is an array (for `?` parameters) or a table (for `$name` parameters)",
                    ));
                }
            },
        };
        StatementKind::Sql { sql, binds }
    };
    Ok(StatementDef { line, when, kind })
}

fn on_conflict(ctx: &Ctx<'_>, event: &str, raw: &Spanned<toml::Value>) -> Result<OnConflict> {
    let ev = Some(event);
    let at = raw.span().start;
    let toml::Value::Table(t) = raw.get_ref() else {
        return Err(ctx.err(
            at,
            ev,
            "`on_conflict` is a table: { target = [\"id\"], do = \"ignore\" | \"replace\" | \"update\", set = { … } }",
        ));
    };
    if let Some(extra) = t
        .keys()
        .find(|k| !["target", "do", "set"].contains(&k.as_str()))
    {
        return Err(ctx.err(at, ev, format!("on_conflict: unknown key `{extra}`")));
    }
    let targets: Vec<String> = match t.get("target") {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ctx.err(at, ev, "on_conflict.target lists column names"))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
        Some(_) => return Err(ctx.err(at, ev, "on_conflict.target lists column names")),
    };
    let action = match t.get("do").and_then(toml::Value::as_str) {
        Some("ignore") => ConflictAction::Ignore,
        Some("replace") => ConflictAction::Replace,
        Some("update") => {
            let Some(toml::Value::Table(set)) = t.get("set") else {
                return Err(ctx.err(
                    at,
                    ev,
                    "on_conflict with do = \"update\" needs `set = { … }`",
                ));
            };
            if set.is_empty() {
                return Err(ctx.err(
                    at,
                    ev,
                    "on_conflict.set is empty (LiveStore throws: no update columns provided)",
                ));
            }
            ConflictAction::Update(
                set.iter()
                    .map(|(k, v)| Ok((k.clone(), to_expr(v).map_err(|m| ctx.err(at, ev, m))?)))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            return Err(ctx.err(
                at,
                ev,
                "on_conflict.do is \"ignore\", \"replace\" or \"update\"",
            ));
        }
    };
    if targets.is_empty() && !matches!(action, ConflictAction::Replace) {
        return Err(ctx.err(at, ev, "on_conflict needs `target` (the conflict columns)"));
    }
    if t.contains_key("set") && !matches!(action, ConflictAction::Update(_)) {
        return Err(ctx.err(at, ev, "on_conflict.set goes only with do = \"update\""));
    }
    Ok(OnConflict { targets, action })
}

fn to_expr(v: &toml::Value) -> Result<Expr, String> {
    match v {
        toml::Value::String(s) => expr::parse(s),
        toml::Value::Integer(i) => Ok(Expr::Literal(Value::from(*i))),
        toml::Value::Float(f) => Ok(Expr::Literal(expr::number_value(*f))),
        toml::Value::Boolean(b) => Ok(Expr::Literal(Value::Bool(*b))),
        toml::Value::Array(items) => Ok(Expr::List(
            items.iter().map(to_expr).collect::<Result<_, _>>()?,
        )),
        toml::Value::Table(_) => Err(
            "a value is an expression string (`\"args.id\"`), a number or a boolean, not a table"
                .to_string(),
        ),
        toml::Value::Datetime(_) => Err(
            "TOML dates are not values here; write an ISO string literal like \"'2024-01-01T00:00:00.000Z'\""
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Definitions> {
        Definitions::parse(Path::new("defs.toml"), text)
    }

    #[test]
    fn statements_keep_their_written_order() {
        let defs = parse(
            r#"
format = 1
[events."v1.A"]
insert = "t"
values = { id = "args.id", b = "args.b", a = "args.a" }
on_conflict = { target = "id", do = "ignore" }

[events."v1.B"]
[[events."v1.B".run]]
update = "t"
set = { z = 1, y = "args.y" }
where = { id = "args.id", n = { op = ">", value = 3 } }
[[events."v1.B".run]]
sql = "UPDATE t SET n = n + 1 WHERE id = $id"
binds = { id = "args.id" }

[events."v1.Noop"]
"#,
        )
        .unwrap();
        let a = &defs.events["v1.A"].statements[0];
        let StatementKind::Insert {
            values,
            on_conflict,
            ..
        } = &a.kind
        else {
            panic!()
        };
        let cols: Vec<&str> = values.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(cols, ["id", "b", "a"]);
        assert_eq!(on_conflict.as_ref().unwrap().targets, ["id"]);
        assert_eq!(defs.events["v1.B"].statements.len(), 2);
        assert_eq!(defs.events["v1.B"].statements[1].line, 13);
        assert!(defs.events["v1.Noop"].statements.is_empty());
    }

    #[test]
    fn errors_name_the_line_and_event() {
        let e =
            parse("format = 1\n[events.\"v1.X\"]\ninsert = \"t\"\nvalues = { a = \"args.\" }\n")
                .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("defs.toml:4: event \"v1.X\": in `args.`"),
            "{msg}"
        );
        let e = parse("format = 1\n[events.\"v1.X\"]\nupdate = \"t\"\n").unwrap_err();
        assert!(e.to_string().contains("`update` needs `set`"), "{e}");
        let e = parse("format = 1\n[events.\"v1.X\"]\ninsrt = \"t\"\n").unwrap_err();
        assert!(e.to_string().starts_with("defs.toml:3:"), "{e}");
        let e = parse("[events.\"v1.X\"]\n").unwrap_err();
        assert!(e.to_string().contains("missing `format = 1`"), "{e}");
    }

    #[test]
    fn client_documents_derive_their_set_event() {
        let defs = parse(
            "format = 1\n[client_documents.uiState]\ndefault = '{\"filter\":\"all\",\"zoom\":1}'\n",
        )
        .unwrap();
        assert_eq!(defs.client_documents["uiState"].keys, ["filter", "zoom"]);
        assert!(matches!(
            defs.events["uiStateSet"].statements[0].kind,
            StatementKind::ClientDocumentSet { .. }
        ));
        let e =
            parse("format = 1\n[client_documents.uiState]\ndefault = '{}'\n[events.uiStateSet]\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("derived from a client document"),
            "{e}"
        );
    }
}
