//! The SQL path: materializer definitions (TOML) turned into the exact statements LiveStore
//! 0.4's query builder and client documents produce.
//!
//! The SQL text is reproduced character for character from LiveStore's `astToSql` and the
//! client-document `…Set` materializer (FORMAT.md §8.3, §8.4), including its quirks: a
//! single-quoted table name, an `UPDATE` with nothing to set becoming `SELECT 1`, a trailing
//! space when every `WHERE` condition was dropped. That lets a test hold rehearse's statements
//! against the SQL LiveStore recorded under `LS_DEV` for every event of a real log.

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::definitions::{
    ClientDocument, ColumnKind, Condition, ConflictAction, Ddl, Definitions, Expr, Op, QueryShape,
    Scope, SqlBinds, StatementDef, StatementKind, Val,
};
use crate::error::{Error, Result};
use crate::eventlog::Event;
use crate::js::{self, BindValue};
use crate::materialize::{Binds, Materializer, Outcome, Pure, Rejection, Statement, Target};
use crate::report::FindingClass;
use crate::sqlite::quote_ident;
use crate::text::truncate;
use crate::validate::EventSchemas;

/// Materializes events from TOML definitions.
#[derive(Debug, Clone)]
pub struct SqlMaterializer {
    defs: Definitions,
    /// The events' args schemas, where a definition re-encodes an arg with them (`| schema`):
    /// loaded by [`Materializer::prepare`].
    schemas: Option<std::sync::Arc<EventSchemas>>,
}

impl SqlMaterializer {
    /// Wraps parsed definitions.
    pub fn new(defs: Definitions) -> SqlMaterializer {
        SqlMaterializer {
            defs,
            schemas: None,
        }
    }

    /// With these event schemas for `| schema`, instead of those the definitions name.
    pub(crate) fn with_event_schemas(mut self, schemas: std::sync::Arc<EventSchemas>) -> Self {
        self.schemas = Some(schemas);
        self
    }

    /// The definitions.
    pub fn definitions(&self) -> &Definitions {
        &self.defs
    }

    /// The statements for one event; `Err` carries the rejection. `state` is the scratch
    /// database as it stands before the event, which its `query` steps read.
    pub fn statements(
        &self,
        event: &Event,
        args: &Value,
        state: &Connection,
    ) -> Option<Result<Vec<Statement>, Rejection>> {
        self.statements_with(event, args, Some(state))
    }

    /// [`SqlMaterializer::statements`]; without the state, for an event whose definition has
    /// no `query` step (made ahead, on another thread: [`Pure`]).
    fn statements_with(
        &self,
        event: &Event,
        args: &Value,
        state: Option<&Connection>,
    ) -> Option<Result<Vec<Statement>, Rejection>> {
        let def = self.defs.events.get(&event.name)?;
        let mut out = Vec::with_capacity(def.statements.len());
        let mut bound: Vec<(String, Val)> = Vec::new();
        for (i, st) in def.statements.iter().enumerate() {
            let where_ = || {
                let at = if *def.file == *self.defs.path {
                    format!("line {}", st.line)
                } else {
                    format!("{}:{}", def.file.display(), st.line)
                };
                if def.statements.len() > 1 {
                    format!("statement {} ({at})", i + 1)
                } else {
                    at
                }
            };
            let scope = Scope {
                args,
                event,
                bound: &bound,
                schema: self.schemas.as_ref().and_then(|s| s.schema(&event.name)),
            };
            let result = match &st.kind {
                StatementKind::Query {
                    sql,
                    binds,
                    name,
                    returns,
                } => match state {
                    Some(state) => query(st, scope, sql, binds, *returns, state),
                    None => Err(materializer_error(
                        "a query step needs the state, which is not at hand here".into(),
                    )),
                }
                .map(|v| {
                    if let Some(v) = v {
                        bound.push((name.clone(), v));
                    }
                    None
                }),
                _ => self.statement(st, scope, &def.file),
            };
            match result {
                Ok(Some(s)) => out.push(s),
                Ok(None) => {}
                Err(e) => {
                    return Some(Err(Rejection {
                        message: format!("{}: {}", where_(), e.message),
                        ..e
                    }));
                }
            }
        }
        Some(Ok(out))
    }

    /// One statement of an event defined in `file`.
    fn statement(
        &self,
        st: &StatementDef,
        scope: Scope<'_>,
        file: &std::sync::Arc<std::path::Path>,
    ) -> Result<Option<Statement>, Rejection> {
        let args = scope.args;
        let eval = |e: &Expr| e.eval_in(scope).map_err(invalid_args);
        if let Some(when) = &st.when
            && !eval(when)?.is_truthy()
        {
            return Ok(None);
        }
        let (sql, binds, target) = match &st.kind {
            StatementKind::Insert {
                table,
                values,
                on_conflict,
                returning,
            } => {
                let mut cols = Vec::new();
                let mut binds = Vec::new();
                for (col, e) in values {
                    if let Val::Present(v) = eval(e)? {
                        binds.push(self.encode(table, col, v)?);
                        cols.push(quote_ident(col));
                    }
                }
                let placeholders = vec!["?"; cols.len()].join(", ");
                let mut verb = "INSERT";
                let mut conflict = String::new();
                if let Some(oc) = on_conflict {
                    let targets: Vec<String> = oc.targets.iter().map(|t| quote_ident(t)).collect();
                    match &oc.action {
                        ConflictAction::Replace => verb = "INSERT OR REPLACE",
                        ConflictAction::Ignore => {
                            conflict = format!(" ON CONFLICT ({}) DO NOTHING", targets.join(", "))
                        }
                        ConflictAction::Update(set) => {
                            let mut parts = Vec::new();
                            let mut update_binds = Vec::new();
                            for (col, e) in set {
                                match eval(e)? {
                                    // A key not in the update object: the column keeps its value.
                                    Val::Omitted => {}
                                    Val::Absent => parts.push(format!(
                                        "{} = excluded.{}",
                                        quote_ident(col),
                                        quote_ident(col)
                                    )),
                                    Val::Present(v) => {
                                        parts.push(format!("{} = ?", quote_ident(col)));
                                        update_binds.push(self.encode(table, col, v)?);
                                    }
                                }
                            }
                            if parts.is_empty() {
                                return Err(materializer_error(
                                    "on_conflict.set leaves every column out (LiveStore throws: No update columns provided for ON CONFLICT DO UPDATE)"
                                        .to_string(),
                                ));
                            }
                            binds.extend(update_binds);
                            conflict = format!(
                                " ON CONFLICT ({}) DO UPDATE SET {}",
                                targets.join(", "),
                                parts.join(", ")
                            );
                        }
                    }
                }
                let sql = format!(
                    "{verb} INTO '{table}' ({}) VALUES ({placeholders}){conflict}{}",
                    cols.join(", "),
                    returning_clause(returning)
                );
                let target = Target::Row {
                    table: table.clone(),
                    values: values
                        .iter()
                        .map(|(c, _)| c.clone())
                        .filter(|c| cols.contains(&quote_ident(c)))
                        .zip(binds.iter().cloned())
                        .collect(),
                };
                (sql, Binds::Positional(binds), Some(target))
            }
            StatementKind::Update {
                table,
                set,
                conditions,
                returning,
            } => {
                let mut parts = Vec::new();
                let mut binds = Vec::new();
                for (col, e) in set {
                    if let Val::Present(v) = eval(e)? {
                        parts.push(format!("{} = ?", quote_ident(col)));
                        binds.push(self.encode(table, col, v)?);
                    }
                }
                if parts.is_empty() {
                    // LiveStore's astToSql: nothing to set runs a no-op query instead.
                    ("SELECT 1".to_string(), Binds::Positional(Vec::new()), None)
                } else {
                    let set_binds = binds.len();
                    let (where_, equals) =
                        self.where_clause(table, conditions, scope, &mut binds)?;
                    let sql = format!(
                        "UPDATE '{table}' SET {} {where_}{}",
                        parts.join(", "),
                        returning_clause(returning)
                    );
                    let target = Target::Where {
                        table: table.clone(),
                        clause: where_,
                        binds: binds[set_binds..].to_vec(),
                        equals,
                    };
                    (sql, Binds::Positional(binds), Some(target))
                }
            }
            StatementKind::Delete {
                table,
                conditions,
                returning,
            } => {
                let mut binds = Vec::new();
                let (where_, equals) = self.where_clause(table, conditions, scope, &mut binds)?;
                let sql = format!(
                    "DELETE FROM '{table}' {where_}{}",
                    returning_clause(returning)
                );
                let target = Target::Where {
                    table: table.clone(),
                    clause: where_,
                    binds: binds.clone(),
                    equals,
                };
                (sql, Binds::Positional(binds), Some(target))
            }
            StatementKind::Sql { sql, binds } => (sql.clone(), raw_binds(sql, binds, scope)?, None),
            // Run by `statements`, which binds its result.
            StatementKind::Query { .. } => return Ok(None),
            StatementKind::ClientDocumentSet { table } => {
                let doc = &self.defs.client_documents[table];
                let (sql, binds) = client_document_set(doc, args)?;
                let target = match &binds {
                    Binds::Positional(b) => b.first().map(|id| Target::Row {
                        table: table.clone(),
                        values: vec![("id".to_string(), id.clone())],
                    }),
                    _ => None,
                };
                (sql, binds, target)
            }
        };
        Ok(Some(Statement {
            sql,
            binds,
            line: Some(st.line),
            file: (**file != *self.defs.path).then(|| file.clone()),
            target,
        }))
    }

    /// LiveStore's `formatWhereClause`, with its leading `WHERE ` (or nothing at all).
    fn where_clause(
        &self,
        table: &str,
        conditions: &[Condition],
        scope: Scope<'_>,
        binds: &mut Vec<BindValue>,
    ) -> Result<(String, Vec<(String, BindValue)>), Rejection> {
        let mut parts = Vec::new();
        let mut equals = Vec::new();
        for cond in conditions {
            let col = quote_ident(&cond.column);
            let value = match cond.value.eval_in(scope).map_err(invalid_args)? {
                // `where({ col: undefined })` drops the condition.
                Val::Absent | Val::Omitted => continue,
                Val::Present(v) => v,
            };
            if value.is_null() {
                let op = match cond.op {
                    Op::Eq => "IS",
                    Op::Ne => "IS NOT",
                    other => {
                        return Err(materializer_error(format!(
                            "where.{}: operator {} cannot take NULL (LiveStore throws: Unsupported operator for NULL value)",
                            cond.column,
                            other.sql()
                        )));
                    }
                };
                parts.push(format!("{col} {op} NULL"));
                continue;
            }
            match cond.op {
                Op::JsonContains | Op::JsonNotContains => {
                    let element = match value {
                        Value::Object(_) | Value::Array(_) => Value::String(js::stringify(&value)),
                        other => other,
                    };
                    binds.push(to_bind(&element));
                    let exists = if cond.op == Op::JsonContains {
                        "EXISTS"
                    } else {
                        "NOT EXISTS"
                    };
                    parts.push(format!(
                        "{exists} (SELECT 1 FROM json_each({col}) WHERE value = ?)"
                    ));
                }
                Op::In | Op::NotIn => {
                    let Value::Array(items) = value else {
                        return Err(invalid_args(format!(
                            "where.{}: {} needs a list, found {}",
                            cond.column,
                            cond.op.sql(),
                            js::stringify(&value)
                        )));
                    };
                    if items.is_empty() {
                        parts.push(if cond.op == Op::In { "0=1" } else { "1=1" }.to_string());
                        continue;
                    }
                    for item in items.iter() {
                        binds.push(self.encode(table, &cond.column, item.clone())?);
                    }
                    let placeholders = vec!["?"; items.len()].join(", ");
                    parts.push(format!("{col} {} ({placeholders})", cond.op.sql()));
                }
                op => {
                    let v = self.encode(table, &cond.column, value)?;
                    if op == Op::Eq {
                        equals.push((cond.column.clone(), v.clone()));
                    }
                    binds.push(v);
                    parts.push(format!("{col} {} ?", op.sql()));
                }
            }
        }
        let clause = if parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", parts.join(" AND "))
        };
        Ok((clause, equals))
    }

    /// Encodes a value with its column's schema, as the query builder does, then binds it.
    fn encode(&self, table: &str, column: &str, v: Value) -> Result<BindValue, Rejection> {
        encode(self.defs.column_kind(table, column), v)
            .map_err(|what| invalid_args(format!("column {table}.{column} is {what}")))
    }
}

/// A value as a column of `kind` stores it (its column definition's schema), then bound; the
/// error says what the column is and what the value is not.
pub(crate) fn encode(kind: ColumnKind, v: Value) -> Result<BindValue, String> {
    let bad =
        |what: &str, v: &Value| format!("{what} but the value is {}", truncate(&js::stringify(v)));
    let encoded = match (kind, v) {
        (_, Value::Null) => Value::Null,
        (ColumnKind::Boolean, Value::Bool(b)) => Value::from(i64::from(b)),
        (ColumnKind::Boolean, v @ Value::Number(_)) => v,
        (ColumnKind::Boolean, v) => return Err(bad("boolean", &v)),
        (ColumnKind::Json, v) => Value::String(js::stringify(&v)),
        (ColumnKind::Datetime, v) => {
            match crate::definitions::expr::Pipe::Iso.apply(Val::Present(v.clone())) {
                Ok(Val::Present(x)) => x,
                _ => return Err(bad("a datetime", &v)),
            }
        }
        (ColumnKind::DatetimeInteger, v) => {
            match crate::definitions::expr::Pipe::Ms.apply(Val::Present(v.clone())) {
                Ok(Val::Present(x)) => x,
                _ => return Err(bad("a datetimeInteger", &v)),
            }
        }
        // A plain column given an object or array can only be a JSON column whose kind
        // was not declared; LiveStore would store its JSON text.
        (ColumnKind::Plain, v @ (Value::Object(_) | Value::Array(_))) => {
            Value::String(js::stringify(&v))
        }
        (ColumnKind::Plain, v) => v,
    };
    Ok(to_bind(&encoded))
}

/// A raw statement's bind values as LiveStore's `prepareBindValues` passes them on: an array to
/// `?` in order, an object only with the keys the SQL text contains, each as `$key`.
fn raw_binds(sql: &str, binds: &SqlBinds, scope: Scope<'_>) -> Result<Binds, Rejection> {
    let eval = |e: &Expr| e.eval_in(scope).map_err(invalid_args);
    Ok(match binds {
        SqlBinds::None => Binds::None,
        SqlBinds::Positional(values) => Binds::Positional(
            values
                .iter()
                .enumerate()
                .map(|(i, e)| raw_bind(&format!("binds[{i}]"), eval(e)?))
                .collect::<Result<_, _>>()?,
        ),
        SqlBinds::Named(values) => {
            let mut out = Vec::new();
            for (key, e) in values {
                if sql.contains(key.as_str()) {
                    out.push((
                        format!("${key}"),
                        raw_bind(&format!("binds.{key}"), eval(e)?)?,
                    ));
                }
            }
            Binds::Named(out)
        }
    })
}

/// A `query` step: `ctx.query({ query, bindValues })` on the state as it stands before the
/// event's statements (they run after the materializer returns), the rows as wa-sqlite gives
/// them to JavaScript (integers and reals as numbers, text as strings). `None` when the step's
/// `when` is false; `Some(Absent)` for a row or scalar of no rows (`rows[0]` is undefined).
fn query(
    st: &StatementDef,
    scope: Scope<'_>,
    sql: &str,
    binds: &SqlBinds,
    returns: QueryShape,
    state: &Connection,
) -> Result<Option<Val>, Rejection> {
    if let Some(when) = &st.when
        && !when.eval_in(scope).map_err(invalid_args)?.is_truthy()
    {
        return Ok(None);
    }
    let binds = raw_binds(sql, binds, scope)?;
    // The definitions' SQL, confined as an event's own statements are (`sqlite::confine`).
    crate::sqlite::event_sql(|| run_query(state, sql, &binds, returns))
}

fn run_query(
    state: &Connection,
    sql: &str,
    binds: &crate::materialize::Binds,
    returns: QueryShape,
) -> Result<Option<Val>, Rejection> {
    let failed = |e: rusqlite::Error| {
        materializer_error(format!(
            "the query failed: {}",
            crate::sqlite::explain_refusal(e.to_string())
        ))
    };
    let mut stmt = state.prepare_cached(sql).map_err(failed)?;
    crate::materialize::binds::bind(&mut stmt, binds).map_err(failed)?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let v = match row.get_ref(i).map_err(failed)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(x) => Value::from(x),
                ValueRef::Real(x) => crate::definitions::expr::number_value(x),
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => {
                    return Err(materializer_error(format!(
                        "the query's column {name} is a blob, which a definition cannot use (a Uint8Array in JavaScript)"
                    )));
                }
            };
            obj.insert(name.clone(), v);
        }
        out.push(Value::Object(obj));
        if returns != QueryShape::Rows {
            break;
        }
    }
    Ok(Some(match returns {
        QueryShape::Rows => Val::Present(Value::Array(out)),
        QueryShape::Row => out.into_iter().next().map_or(Val::Absent, Val::Present),
        QueryShape::Scalar => match out.into_iter().next() {
            Some(Value::Object(row)) => row
                .into_iter()
                .next()
                .map_or(Val::Absent, |(_, v)| Val::Present(v)),
            _ => Val::Absent,
        },
    }))
}

fn to_bind(v: &Value) -> BindValue {
    BindValue::from_json_scalar(v).unwrap_or_else(|| BindValue::Text(js::stringify(v)))
}

/// A raw-SQL bind: absent stays unbound (NULL), as wa-sqlite leaves `undefined` unbound.
pub(crate) fn raw_bind(what: &str, v: Val) -> Result<BindValue, Rejection> {
    match v {
        Val::Absent | Val::Omitted => Ok(BindValue::Unbound),
        Val::Present(v) => BindValue::from_json_scalar(&v).ok_or_else(|| {
            materializer_error(format!(
                "{what} is {} ({}); wa-sqlite cannot bind it; add `| json` to bind its JSON text",
                if v.is_array() {
                    "an array"
                } else {
                    "an object"
                },
                truncate(&js::stringify(&v))
            ))
        }),
    }
}

fn returning_clause(cols: &[String]) -> String {
    if cols.is_empty() {
        String::new()
    } else {
        format!(
            " RETURNING {}",
            cols.iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// LiveStore's derived `…Set` materializer (`deriveEventAndMaterializer`, FORMAT.md §8.4).
fn client_document_set(doc: &ClientDocument, args: &Value) -> Result<(String, Binds), Rejection> {
    let name = &doc.table;
    let id = match args.get("id") {
        Some(Value::String(s)) => js::text(s),
        Some(other) => {
            return Err(invalid_args(format!(
                "{name}Set: args.id must be a string, found {}",
                truncate(&js::stringify(other))
            )));
        }
        None => return Err(invalid_args(format!("{name}Set: args.id is missing"))),
    };
    let value = args.get("value");
    if doc.keys.is_empty() || !doc.partial_set {
        // A value schema without fields (a string, a number, an array, a record), or
        // `partialSet: false`: the document is replaced whole, the default inserted where the
        // value is null (`value ?? defaultValue`), each encoded with the value schema (a
        // struct's fields in schema order, others dropped).
        let Some(value) = value else {
            return Err(invalid_args(format!("{name}Set: args.value is missing")));
        };
        let encode = |v: &Value| match v {
            Value::Object(o) if !doc.keys.is_empty() => {
                let mut fields = Map::new();
                for k in &doc.keys {
                    if let Some(x) = o.get(k) {
                        fields.insert(k.clone(), x.clone());
                    }
                }
                js::stringify(&Value::Object(fields))
            }
            other => js::stringify(other),
        };
        let insert = if value.is_null() { &doc.default } else { value };
        let sql = format!(
            "INSERT INTO '{name}' (id, value) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET value = ?"
        );
        return Ok((
            sql,
            Binds::Positional(vec![
                BindValue::Text(id),
                BindValue::Text(encode(insert)),
                BindValue::Text(encode(value)),
            ]),
        ));
    }
    // Keys unknown to the document's schema are dropped when the args are decoded; a value
    // that is not an object decodes (optimistically) to an empty partial.
    let mut known: Map<String, Value> = Map::new();
    if let Some(Value::Object(v)) = value {
        for k in &doc.keys {
            if let Some(x) = v.get(k) {
                known.insert(k.clone(), x.clone());
            }
        }
    }
    let default = doc.default.as_object().cloned().unwrap_or_default();
    // mergeDefaultValues: per key, the explicit value unless it is null/undefined.
    let mut merged = Map::new();
    for k in &doc.keys {
        let v = match known.get(k) {
            Some(v) if !v.is_null() => Some(v),
            _ => default.get(k),
        };
        if let Some(v) = v {
            merged.insert(k.clone(), v.clone());
        }
    }
    let mut json_set = "value".to_string();
    let mut binds = vec![
        BindValue::Text(id),
        BindValue::Text(js::stringify(&Value::Object(merged))),
    ];
    for k in &doc.keys {
        if let Some(v) = known.get(k) {
            json_set = format!("json_set({json_set}, ?, json(?))");
            binds.push(BindValue::Text(format!("$.{k}")));
            binds.push(BindValue::Text(js::stringify(v)));
        }
    }
    let on_conflict = if binds.len() > 2 {
        format!("ON CONFLICT (id) DO UPDATE SET value = {json_set}")
    } else {
        "ON CONFLICT (id) DO NOTHING".to_string()
    };
    let sql = format!(
        "\n      INSERT INTO '{name}' (id, value)\n      VALUES (?, ?)\n      {on_conflict}\n    "
    );
    Ok((sql, Binds::Positional(binds)))
}

fn invalid_args(message: String) -> Rejection {
    Rejection {
        class: FindingClass::InvalidArgs,
        message,
        pointer: None,
    }
}

fn materializer_error(message: String) -> Rejection {
    Rejection {
        class: FindingClass::MaterializerError,
        message,
        pointer: None,
    }
}

impl Materializer for SqlMaterializer {
    fn describe(&self) -> String {
        self.defs.path.display().to_string()
    }

    fn ddl(&self) -> &Ddl {
        &self.defs.ddl
    }

    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>> {
        self.defs.referenced_columns()
    }

    fn prepare(&mut self, scratch: &Connection) -> Result<()> {
        self.defs.validate(scratch)?;
        if self.schemas.is_none() {
            let uses = self.defs.schema_uses();
            if let Some((event, file, line)) = uses.first() {
                let schemas = self.defs.load_event_schemas()?.ok_or_else(|| Error::Definitions {
                    path: file.to_path_buf(),
                    line: Some(*line),
                    event: Some(event.clone()),
                    message: "`| schema` re-encodes an arg with the event's args schema, but the definitions name no `event_schemas`".to_string(),
                })?;
                if let Some((event, file, line)) =
                    uses.iter().find(|(e, _, _)| schemas.schema(e).is_none())
                {
                    return Err(Error::Definitions {
                        path: file.to_path_buf(),
                        line: Some(*line),
                        event: Some(event.clone()),
                        message: format!(
                            "`| schema` needs this event's args schema, and {} has none for it",
                            schemas.source.display()
                        ),
                    });
                }
                self.schemas = Some(std::sync::Arc::new(schemas));
            }
        }
        Ok(())
    }

    fn materialize(
        &mut self,
        event: &Event,
        args: &Value,
        scratch: &Connection,
    ) -> Result<Outcome> {
        Ok(match self.statements(event, args, scratch) {
            None => Outcome::Unknown,
            Some(Ok(statements)) => Outcome::Statements(statements),
            Some(Err(rejection)) => Outcome::Rejected(rejection),
        })
    }

    fn pure(&self) -> Option<Box<dyn Pure>> {
        // A definition maps its event to statements by the args alone, unless it has a
        // `query` step, which reads the state: those are answered in order, by `materialize`.
        Some(Box::new(self.clone()))
    }
}

impl Pure for SqlMaterializer {
    fn materialize(&self, event: &Event, args: &Value) -> Option<Outcome> {
        let reads_state = self.defs.events.get(&event.name).is_some_and(|def| {
            def.statements
                .iter()
                .any(|st| matches!(st.kind, StatementKind::Query { .. }))
        });
        if reads_state {
            return None;
        }
        Some(match self.statements_with(event, args, None) {
            None => Outcome::Unknown,
            Some(Ok(statements)) => Outcome::Statements(statements),
            Some(Err(rejection)) => Outcome::Rejected(rejection),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::SeqNum;
    use serde_json::json;

    fn statements(toml: &str, args: Value) -> Result<Vec<Statement>, Rejection> {
        let defs = Definitions::parse(std::path::Path::new("defs.toml"), toml).unwrap();
        let event = Event {
            seq: SeqNum {
                global: 1,
                client: 0,
                rebase_generation: 0,
            },
            parent: SeqNum::ROOT,
            name: "A".into(),
            args_json: String::new(),
            client_id: "c".into(),
            session_id: "s".into(),
            schema_hash: 0,
            sync_metadata_json: String::new(),
        };
        let state = Connection::open_in_memory().unwrap();
        SqlMaterializer::new(defs)
            .statements(&event, &args, &state)
            .unwrap()
    }

    /// In an upsert's `ON CONFLICT DO UPDATE`, an absent value is `excluded."col"` (a key whose
    /// value is undefined) and a `{ value, when }` whose `when` fails is no key at all: the
    /// column keeps its value. LiveStore throws when no column is left.
    #[test]
    fn an_upsert_sets_a_column_only_when_its_when_holds() {
        let toml = r#"format = 1
[events.A]
insert = "t"
values = { id = "args.id", a = "args.a", b = "args.b" }
on_conflict = { target = "id", do = "update", set = { a = "args.a", b = { value = "args.b", when = "args.b !== undefined" } } }
"#;
        let sql = |args| statements(toml, args).unwrap()[0].sql.clone();
        assert_eq!(
            sql(json!({"id": "x", "a": 1, "b": false})),
            r#"INSERT INTO 't' ("id", "a", "b") VALUES (?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "a" = ?, "b" = ?"#
        );
        assert_eq!(
            sql(json!({"id": "x"})),
            r#"INSERT INTO 't' ("id") VALUES (?) ON CONFLICT ("id") DO UPDATE SET "a" = excluded."a""#
        );
        let only_when = toml.replace(r#"a = "args.a", b = {"#, "b = {");
        let e = statements(&only_when, json!({"id": "x"})).unwrap_err();
        assert!(
            e.message.contains("No update columns provided"),
            "{}",
            e.message
        );
    }
}
