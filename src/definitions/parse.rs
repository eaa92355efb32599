//! From TOML to [`Definitions`]: every check that needs only the file itself, each failure an
//! error naming the file, the line and the event. Checks against the state schema come later
//! ([`validate`](super::validate)), once a scratch database holds it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;
use toml::Spanned;

use super::expr::{self, Expr};
use super::model::{
    ClientDocument, ColumnKind, Condition, ConflictAction, Ddl, Definitions, EventDefinition,
    NamedPath, OnConflict, Op, QueryShape, SqlBinds, StatementDef, StatementKind,
};
use super::raw::{RawFile, RawStatement};
use crate::error::{Error, Result};
use crate::js;

/// The definitions format version this build reads.
const FORMAT_VERSION: i64 = 1;

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

/// How many definitions files an `extends` chain may pass through: far beyond any real
/// variant of a variant, and a bound on the parser's recursion.
const MAX_EXTENDS: usize = 32;

impl Definitions {
    /// Reads and parses a definitions file.
    pub fn load(path: &Path) -> Result<Definitions> {
        let text = crate::files::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Definitions::parse(path, &text)
    }

    /// Parses definitions from text; `path` is used for messages and relative `ddl_file`s.
    pub fn parse(path: &Path, text: &str) -> Result<Definitions> {
        Definitions::parse_extending(path, text, &mut Vec::new())
    }

    /// Parses definitions from text, on top of the file its `extends` names (read, and its
    /// own `extends` followed, with `chain` the files read so far, to refuse a cycle).
    fn parse_extending(path: &Path, text: &str, chain: &mut Vec<PathBuf>) -> Result<Definitions> {
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

        let file: Arc<Path> = Arc::from(path);
        let mut base = match &raw.extends {
            None => Definitions {
                path: path.to_path_buf(),
                ddl: Ddl::Recorded,
                event_schemas: None,
                column_kinds: HashMap::new(),
                client_documents: IndexMap::new(),
                events: IndexMap::new(),
                table_lines: IndexMap::new(),
            },
            Some(extends) => {
                let named = NamedPath::resolve(
                    path,
                    extends.get_ref(),
                    ctx.lines.line(extends.span().start),
                );
                if chain.len() >= MAX_EXTENDS {
                    return Err(ctx.err(
                        extends.span().start,
                        None,
                        format!("`extends` goes more than {MAX_EXTENDS} files deep"),
                    ));
                }
                let text = crate::files::read_to_string(&named.path)
                    .map_err(|e| named.error("extends", e))?;
                let canonical =
                    std::fs::canonicalize(&named.path).map_err(|e| named.error("extends", e))?;
                if chain.is_empty()
                    && let Ok(me) = std::fs::canonicalize(path)
                {
                    chain.push(me);
                }
                if chain.contains(&canonical) {
                    return Err(ctx.err(
                        extends.span().start,
                        None,
                        format!(
                            "`extends = {:?}` goes round in a circle: {} extends it already",
                            extends.get_ref(),
                            named.path.display()
                        ),
                    ));
                }
                chain.push(canonical);
                let mut base = Definitions::parse_extending(&named.path, &text, chain)?;
                base.path = path.to_path_buf();
                base
            }
        };

        let ddl = match &raw.state {
            None => base.ddl.clone(),
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
                        let named = NamedPath::resolve(
                            path,
                            file.get_ref(),
                            ctx.lines.line(file.span().start),
                        );
                        let text = crate::files::read_to_string(&named.path)
                            .map_err(|e| named.error("ddl_file", e))?;
                        Ddl::Sql {
                            text,
                            source: named.path,
                        }
                    }
                }
            }
        };

        // What this file says replaces what the file it extends says: a column's kind, a client
        // document, an event's whole definition.
        let mut column_kinds = std::mem::take(&mut base.column_kinds);
        let mut table_lines = std::mem::take(&mut base.table_lines);
        for (table, spec) in &raw.tables {
            table_lines.insert(
                table.clone(),
                (file.clone(), ctx.lines.line(spec.span().start)),
            );
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

        let mut client_documents = std::mem::take(&mut base.client_documents);
        let mut events = std::mem::take(&mut base.events);
        for removed in raw.remove_events.iter().flatten() {
            if events.shift_remove(removed.get_ref()).is_none() {
                return Err(ctx.err(
                    removed.span().start,
                    Some(removed.get_ref()),
                    if raw.extends.is_some() {
                        "`remove_events` names an event the file this one extends does not define"
                    } else {
                        "`remove_events` removes events of the file this one `extends`; this one extends none"
                    },
                ));
            }
        }
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
            let keys = match (&doc.keys, &default) {
                (Some(keys), Value::Object(_)) => keys.clone(),
                (Some(keys), _) if keys.is_empty() => Vec::new(),
                (Some(_), other) => {
                    return Err(ctx.err(
                        doc.default.span().start,
                        None,
                        format!(
                            "client_documents.{table}: `keys` lists the fields of a struct value, but the default {} is not an object",
                            js::stringify(other)
                        ),
                    ));
                }
                (None, Value::Object(fields)) => fields.keys().cloned().collect(),
                (None, _) => Vec::new(),
            };
            let event_name = format!("{table}Set");
            client_documents.insert(
                table.clone(),
                ClientDocument {
                    table: table.clone(),
                    default,
                    keys,
                    partial_set: doc.partial_set.unwrap_or(true),
                    file: file.clone(),
                    line,
                },
            );
            events.insert(
                event_name.clone(),
                EventDefinition {
                    name: event_name,
                    file: file.clone(),
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
            let derived = events.get(name).is_some_and(|ev| {
                ev.statements
                    .iter()
                    .any(|st| matches!(st.kind, StatementKind::ClientDocumentSet { .. }))
            });
            if derived {
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
            check_query_names(&ctx, name, &statements)?;
            events.insert(
                name.clone(),
                EventDefinition {
                    name: name.clone(),
                    file: file.clone(),
                    line,
                    statements,
                },
            );
        }

        let event_schemas = match &raw.event_schemas {
            Some(p) => Some(NamedPath::resolve(
                path,
                p.get_ref(),
                ctx.lines.line(p.span().start),
            )),
            None => base.event_schemas,
        };
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
                if let toml::Value::Table(t) = v.get_ref()
                    && t.contains_key("op")
                {
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
                    if let Some(extra) = t.keys().find(|k| !["op", "value", "when"].contains(&k.as_str())) {
                        return Err(ctx.err(v.span().start, ev, format!("where.{column}: unknown key `{extra}`")));
                    }
                    let mut value = to_expr(value).map_err(|m| ctx.err(v.span().start, ev, m))?;
                    if let Some(when) = t.get("when") {
                        let when = to_expr(when).map_err(|m| ctx.err(v.span().start, ev, m))?;
                        value = Expr::When(Box::new(value), Box::new(when));
                    }
                    Ok(Condition { column: column.clone(), op, value })
                } else {
                    Ok(Condition { column: column.clone(), op: Op::Eq, value: expr_of(v)? })
                }
            })
            .collect()
        };
    let when = raw.when.as_ref().map(expr_of).transpose()?;
    let returning = raw.returning.clone().unwrap_or_default();
    let reject = |present: bool, key: &str, verb: &str| -> Result<()> {
        if present {
            Err(ctx.err(offset, ev, format!("`{key}` does not go with `{verb}`")))
        } else {
            Ok(())
        }
    };

    let verbs = [
        raw.insert.is_some(),
        raw.update.is_some(),
        raw.delete.is_some(),
        raw.sql.is_some(),
        raw.query.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if verbs != 1 {
        return Err(ctx.err(
            offset,
            ev,
            if verbs == 0 {
                "a statement needs one of `insert`, `update`, `delete`, `sql` or `query`"
            } else {
                "a statement takes only one of `insert`, `update`, `delete`, `sql` and `query`; list several in `run = [...]`"
            },
        ));
    }
    if raw.query.is_none() {
        reject(
            raw.as_.is_some(),
            "as",
            "a statement (it names a `query` step)",
        )?;
        reject(
            raw.returns.is_some(),
            "returns",
            "a statement (it goes with `query`)",
        )?;
    }
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
    } else if let Some(sql) = &raw.query {
        reject(raw.values.is_some(), "values", "query (use `binds`)")?;
        reject(raw.set.is_some(), "set", "query")?;
        reject(raw.where_.is_some(), "where", "query (write it in the SQL)")?;
        reject(raw.on_conflict.is_some(), "on_conflict", "query")?;
        reject(raw.returning.is_some(), "returning", "query")?;
        let name = raw.as_.as_ref().ok_or_else(|| {
            ctx.err(
                offset,
                ev,
                "a `query` step needs `as = \"<name>\"`: later values read it as `query.<name>`",
            )
        })?;
        if !is_name(name.get_ref()) {
            return Err(ctx.err(
                name.span().start,
                ev,
                format!(
                    "`as = {:?}`: a query step's name is letters, digits and `_`, not starting with a digit",
                    name.get_ref()
                ),
            ));
        }
        let returns = match raw.returns.as_ref().map(|r| (r.get_ref().as_str(), r)) {
            None | Some(("rows", _)) => QueryShape::Rows,
            Some(("row", _)) => QueryShape::Row,
            Some(("scalar", _)) => QueryShape::Scalar,
            Some((other, r)) => {
                return Err(ctx.err(
                    r.span().start,
                    ev,
                    format!(
                        "`returns = {other:?}`: a query returns \"rows\", \"row\" or \"scalar\""
                    ),
                ));
            }
        };
        StatementKind::Query {
            sql: sql.get_ref().clone(),
            binds: sql_binds(ctx, event, &raw.binds)?,
            name: name.get_ref().clone(),
            returns,
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
        StatementKind::Sql {
            sql,
            binds: sql_binds(ctx, event, &raw.binds)?,
        }
    };
    Ok(StatementDef { line, when, kind })
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A raw statement's or a query's `binds`: an array for `?` parameters, a table for `$name`.
fn sql_binds(ctx: &Ctx<'_>, event: &str, binds: &Option<Spanned<toml::Value>>) -> Result<SqlBinds> {
    let ev = Some(event);
    Ok(match binds {
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
    })
}

/// Every `query.<name>` must be bound by a query step before it in the same event.
fn check_query_names(ctx: &Ctx<'_>, event: &str, statements: &[StatementDef]) -> Result<()> {
    let mut bound: Vec<&str> = Vec::new();
    for st in statements {
        let mut used = Vec::new();
        for e in st.exprs() {
            e.queries(&mut used);
        }
        if let Some(name) = used.iter().find(|n| !bound.contains(n)) {
            return Err(Error::Definitions {
                path: ctx.path.to_path_buf(),
                line: Some(st.line),
                event: Some(event.to_string()),
                message: format!(
                    "`query.{name}` is read before any `query` step of this event binds it (`as = \"{name}\"` on a step before this one)"
                ),
            });
        }
        if let StatementKind::Query { name, .. } = &st.kind {
            bound.push(name);
        }
    }
    Ok(())
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
        toml::Value::Table(t) => {
            if let Some(extra) = t.keys().find(|k| *k != "value" && *k != "when") {
                return Err(format!(
                    "a value is an expression string (`\"args.id\"`), a number, a boolean, a list, or `{{ value = …, when = … }}`; `{extra}` is none of these"
                ));
            }
            let (Some(value), Some(when)) = (t.get("value"), t.get("when")) else {
                return Err(
                    "`{ value = …, when = … }` needs both: the value, and when its key is in the object at all"
                        .to_string(),
                );
            };
            Ok(Expr::When(Box::new(to_expr(value)?), Box::new(to_expr(when)?)))
        }
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

    /// A path inside the file that leads nowhere is an error at its line, saying where a
    /// relative path was looked for (the definitions file's directory, not the current one).
    #[test]
    fn paths_that_lead_nowhere_name_the_line_and_what_they_were_resolved_against() {
        let dir = tempfile::tempdir().unwrap();
        let defs = dir.path().join("defs.toml");
        let at = |line: usize| format!("{}:{line}: ", defs.display());
        let against = format!("resolved against {}", dir.path().display());

        let parsed =
            Definitions::parse(&defs, "format = 1\n\nevent_schemas = \"schemas/events\"\n")
                .unwrap();
        let e = parsed.load_event_schemas().unwrap_err().to_string();
        assert!(e.starts_with(&at(3)), "{e}");
        assert!(e.contains("cannot read event_schemas"), "{e}");
        assert!(e.contains(&against), "{e}");

        let e = Definitions::parse(&defs, "format = 1\n[state]\nddl_file = \"state.sql\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&at(3)), "{e}");
        assert!(e.contains("cannot read ddl_file"), "{e}");
        assert!(e.contains(&against), "{e}");

        // An absolute path was resolved against nothing.
        let missing = dir.path().join("nowhere.json");
        let parsed = Definitions::parse(
            &defs,
            &format!(
                "format = 1\nevent_schemas = {:?}\n",
                missing.display().to_string()
            ),
        )
        .unwrap();
        let e = parsed.load_event_schemas().unwrap_err().to_string();
        assert!(e.starts_with(&at(2)), "{e}");
        assert!(!e.contains("resolved against"), "{e}");

        // A file beside the definitions is found from anywhere.
        std::fs::write(dir.path().join("schemas.json"), "{}").unwrap();
        let parsed =
            Definitions::parse(&defs, "format = 1\nevent_schemas = \"schemas.json\"\n").unwrap();
        assert!(parsed.load_event_schemas().unwrap().is_some());
    }

    /// A `query` step binds its result by name for the statements after it; reading a name no
    /// earlier step binds is an error at the reading statement's line.
    #[test]
    fn query_steps_bind_names_for_later_statements() {
        let defs = parse(
            r#"
format = 1
[events.A]
[[events.A.run]]
query = "SELECT n FROM t WHERE id = ?"
binds = ["args.id"]
as = "row"
returns = "row"
[[events.A.run]]
when = "query.row"
update = "t"
set = { n = "query.row.n + 1" }
where = { id = "args.id" }
"#,
        )
        .unwrap();
        let StatementKind::Query { name, returns, .. } = &defs.events["A"].statements[0].kind
        else {
            panic!()
        };
        assert_eq!((name.as_str(), *returns), ("row", QueryShape::Row));

        let e = parse(
            "format = 1\n[events.A]\n[[events.A.run]]\nupdate = \"t\"\nset = { n = \"query.row.n\" }\n[[events.A.run]]\nquery = \"SELECT 1\"\nas = \"row\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("defs.toml:3: event \"A\": `query.row` is read before"),
            "{e}"
        );
        let e = parse("format = 1\n[events.A]\nquery = \"SELECT 1\"\n").unwrap_err();
        assert!(e.to_string().contains("needs `as = \"<name>\"`"), "{e}");
        let e =
            parse("format = 1\n[events.A]\nquery = \"SELECT 1\"\nas = \"x\"\nreturns = \"one\"\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("\"rows\", \"row\" or \"scalar\""),
            "{e}"
        );
        let e = parse("format = 1\n[events.A]\nsql = \"SELECT 1\"\nas = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("`as` does not go with"), "{e}");
    }

    /// A file that extends another replaces what it says, key by key: a column's kind, an
    /// event's whole definition; `remove_events` drops one. Each definition keeps the file and
    /// line it comes from, and a cycle is refused.
    #[test]
    fn extends_overrides_the_base_event_by_event() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        std::fs::write(
            &base,
            "format = 1\n[tables.t.columns]\na = \"json\"\nb = \"boolean\"\n[events.A]\ndelete = \"t\"\n[events.B]\ndelete = \"t\"\n[events.C]\n",
        )
        .unwrap();
        let child = dir.path().join("sub").join("child.toml");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let defs = Definitions::parse(
            &child,
            "format = 1\nextends = \"../base.toml\"\nremove_events = [\"C\"]\n[tables.t.columns]\nb = \"integer\"\n[events.B]\nupdate = \"t\"\nset = { a = 1 }\n",
        )
        .unwrap();
        assert_eq!(defs.column_kind("t", "a"), ColumnKind::Json);
        assert_eq!(defs.column_kind("t", "b"), ColumnKind::Plain);
        assert_eq!(defs.events.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(&*defs.events["A"].file, base.as_path());
        assert_eq!(
            (&*defs.events["B"].file, defs.events["B"].line),
            (child.as_path(), 6)
        );
        assert!(matches!(
            defs.events["B"].statements[0].kind,
            StatementKind::Update { .. }
        ));

        let e = Definitions::parse(
            &child,
            "format = 1\nextends = \"../base.toml\"\nremove_events = [\"Z\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("names an event the file this one extends does not define"),
            "{e}"
        );
        let e = Definitions::parse(&child, "format = 1\nextends = \"nowhere.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}:2: cannot read extends", child.display())),
            "{e}"
        );

        let a = dir.path().join("a.toml");
        std::fs::write(&a, "format = 1\nextends = \"b.toml\"\n").unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            "format = 1\nextends = \"a.toml\"\n",
        )
        .unwrap();
        let e = Definitions::load(&a).unwrap_err().to_string();
        assert!(e.contains("goes round in a circle"), "{e}");
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
        // A value that is not an object has no fields; a record declares it has none.
        let defs = parse(
            "format = 1\n[client_documents.theme]\ndefault = '\"system\"'\n[client_documents.tags]\ndefault = '{\"a\":true}'\nkeys = []\n",
        )
        .unwrap();
        assert_eq!(
            defs.client_documents["theme"].default,
            Value::from("system")
        );
        assert!(defs.client_documents["theme"].keys.is_empty());
        assert!(defs.client_documents["tags"].keys.is_empty());
        let e =
            parse("format = 1\n[client_documents.n]\ndefault = '1'\nkeys = [\"a\"]\n").unwrap_err();
        assert!(e.to_string().contains("is not an object"), "{e}");
        let e =
            parse("format = 1\n[client_documents.uiState]\ndefault = '{}'\n[events.uiStateSet]\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("derived from a client document"),
            "{e}"
        );
    }
}
