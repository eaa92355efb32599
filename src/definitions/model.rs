//! The definitions as the SQL path uses them: what each event does, how each column is
//! encoded, where the state's DDL comes from. Parsed once from TOML ([`parse`](super::parse))
//! and read for every event, so these types say what LiveStore would do, not how the file
//! spelled it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::expr::Expr;
use crate::error::{Error, Result};

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
pub(crate) enum ColumnKind {
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

/// A client document (`State.SQLite.clientDocument`) and its derived `…Set` event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClientDocument {
    /// Table name; the derived event is `<table>Set`.
    pub table: String,
    /// The document's default value: any JSON value its schema allows.
    pub default: Value,
    /// The fields of the value schema in declaration order; none for a value schema without
    /// fields (a string, a number, an array, a record), which `…Set` always replaces whole.
    pub keys: Vec<String>,
    /// Whether `…Set` merges a partial value (LiveStore's default) or replaces the document.
    pub partial_set: bool,
    /// The file that defines it (the definitions file, or one it extends).
    pub file: Arc<Path>,
    /// Line of the definition.
    pub line: usize,
}

/// What one event does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventDefinition {
    /// Event name.
    pub name: String,
    /// The file that defines it (the definitions file, or one it extends).
    pub file: Arc<Path>,
    /// Line of the definition.
    pub line: usize,
    /// Statements, in order; empty for an event that changes nothing.
    pub statements: Vec<StatementDef>,
}

/// One statement of an event's materializer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatementDef {
    /// Line of the statement.
    pub line: usize,
    /// Run only when this is truthy (an extension: a materializer's `if`).
    pub when: Option<Expr>,
    /// What the statement is.
    pub kind: StatementKind,
}

/// The kinds of statement a LiveStore materializer can return.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StatementKind {
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
    /// `ctx.query({ query, bindValues })`: reads the state as it stands before the event's
    /// statements and binds the result to `name` for the statements after it. Runs nothing.
    Query {
        /// The query (one `SELECT`).
        sql: String,
        /// Its bind values, as a raw statement's.
        binds: SqlBinds,
        /// What later expressions call it (`query.<name>`).
        name: String,
        /// Which part of the rows is bound.
        returns: QueryShape,
    },
}

/// What a `query` step binds of the rows `ctx.query` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryShape {
    /// Every row, as an array of objects keyed by column name.
    Rows,
    /// The first row (absent when there is none: `rows[0]`).
    Row,
    /// The first column of the first row (absent when there is no row).
    Scalar,
}

impl StatementDef {
    /// Every expression of the statement, its `when` first.
    pub(crate) fn exprs(&self) -> Vec<&Expr> {
        fn binds(b: &SqlBinds) -> Vec<&Expr> {
            match b {
                SqlBinds::None => Vec::new(),
                SqlBinds::Positional(v) => v.iter().collect(),
                SqlBinds::Named(v) => v.iter().map(|(_, e)| e).collect(),
            }
        }
        let mut out: Vec<&Expr> = self.when.iter().collect();
        match &self.kind {
            StatementKind::Insert {
                values,
                on_conflict,
                ..
            } => {
                out.extend(values.iter().map(|(_, e)| e));
                if let Some(OnConflict {
                    action: ConflictAction::Update(set),
                    ..
                }) = on_conflict
                {
                    out.extend(set.iter().map(|(_, e)| e));
                }
            }
            StatementKind::Update {
                set, conditions, ..
            } => {
                out.extend(set.iter().map(|(_, e)| e));
                out.extend(conditions.iter().map(|c| &c.value));
            }
            StatementKind::Delete { conditions, .. } => {
                out.extend(conditions.iter().map(|c| &c.value));
            }
            StatementKind::Sql { binds: b, .. } | StatementKind::Query { binds: b, .. } => {
                out.extend(binds(b));
            }
            StatementKind::ClientDocumentSet { .. } => {}
        }
        out
    }
}

/// `onConflict(targets, action)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OnConflict {
    /// Conflict target columns.
    pub targets: Vec<String>,
    /// What to do.
    pub action: ConflictAction,
}

/// The query builder's conflict actions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConflictAction {
    /// `ON CONFLICT (…) DO NOTHING`
    Ignore,
    /// `INSERT OR REPLACE`
    Replace,
    /// `ON CONFLICT (…) DO UPDATE SET …`; an absent value means `excluded."col"`.
    Update(Vec<(String, Expr)>),
}

/// One `WHERE` condition of the query builder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// Column.
    pub column: String,
    /// Operator.
    pub op: Op,
    /// Value; absent drops the condition, as LiveStore's `where` drops `undefined`.
    pub value: Expr,
}

/// The query builder's `WHERE` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
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
    /// The operator as LiveStore writes it into SQL.
    pub(crate) fn sql(self) -> &'static str {
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
pub(crate) enum SqlBinds {
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
    pub(crate) path: PathBuf,
    /// Where the DDL comes from.
    pub(crate) ddl: Ddl,
    /// JSON Schemas of the events' args (a directory or one file). Read only when a replay
    /// asks for them, as `--event-schemas` overrides them.
    pub(crate) event_schemas: Option<NamedPath>,
    /// Declared column encodings, by (table, column).
    pub(crate) column_kinds: HashMap<(String, String), ColumnKind>,
    /// Client documents by table name.
    pub(crate) client_documents: IndexMap<String, ClientDocument>,
    /// Event definitions by name, derived `…Set` events included.
    pub(crate) events: IndexMap<String, EventDefinition>,
    /// Where each table's column kinds are declared (file and line), for validation messages.
    pub(super) table_lines: IndexMap<String, (Arc<Path>, usize)>,
}

/// A path the definitions file names, kept with where it names it: a path that does not
/// resolve is the definitions' error, and the person fixing it needs the line and the
/// directory a relative path was taken from, which is not the one they run rehearse in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NamedPath {
    /// The path; a relative one resolved against the definitions file's directory.
    pub(crate) path: PathBuf,
    /// As written.
    written: String,
    /// Line where the file names it.
    line: usize,
    /// The definitions file that names it.
    file: PathBuf,
}

impl NamedPath {
    /// `written`, on `line` of the definitions file `defs`, as rehearse reads it.
    pub(super) fn resolve(defs: &Path, written: &str, line: usize) -> NamedPath {
        let joined = base_dir(defs).join(written);
        let normal = lexically_normal(&joined);
        // Where a symbolic link makes `a/..` lead elsewhere, the path stays as written.
        let same = std::fs::canonicalize(&joined).ok() == std::fs::canonicalize(&normal).ok();
        NamedPath {
            path: if same { normal } else { joined },
            written: written.to_string(),
            line,
            file: defs.to_path_buf(),
        }
    }

    /// An error reading the path (`key` is what the file calls it), naming the definitions
    /// file and line, and what a relative path was resolved against.
    pub(super) fn error(&self, key: &str, e: impl std::fmt::Display) -> Error {
        let defs = &self.file;
        let resolved = if Path::new(&self.written).is_relative() {
            let dir = base_dir(defs);
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            format!(
                " ({:?} resolved against {}, the definitions file's directory)",
                self.written,
                dir.display()
            )
        } else {
            String::new()
        };
        Error::Definitions {
            path: defs.to_path_buf(),
            line: Some(self.line),
            event: None,
            message: format!("cannot read {key} {}: {e}{resolved}", self.path.display()),
        }
    }
}

/// `path` without the `a/..` pairs a relative path leaves (`corpora/x/../workspace/…` is
/// `corpora/workspace/…`), so that messages name files as a reader would. Leading `..` stay.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir if !out.is_empty() => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// The directory relative paths in the definitions file `defs` are resolved against (empty
/// for the current directory).
fn base_dir(defs: &Path) -> &Path {
    defs.parent().unwrap_or(Path::new(""))
}

impl Definitions {
    /// The event args schemas the definitions name (`event_schemas`), loaded.
    pub fn load_event_schemas(&self) -> Result<Option<crate::validate::EventSchemas>> {
        let Some(named) = &self.event_schemas else {
            return Ok(None);
        };
        // Errors inside the schemas name their own files; a path that leads nowhere is the
        // definitions' own.
        std::fs::metadata(&named.path).map_err(|e| named.error("event_schemas", e))?;
        crate::validate::EventSchemas::load(&named.path).map(Some)
    }

    /// The events whose definitions re-encode an arg with the event's schema (`| schema`),
    /// with the file and line of the first statement that does.
    pub(crate) fn schema_uses(&self) -> Vec<(String, Arc<Path>, usize)> {
        self.events
            .values()
            .filter_map(|ev| {
                ev.statements
                    .iter()
                    .find(|st| st.exprs().iter().any(|e| e.uses_schema()))
                    .map(|st| (ev.name.clone(), ev.file.clone(), st.line))
            })
            .collect()
    }

    /// The declared encoding of a column.
    pub(crate) fn column_kind(&self, table: &str, column: &str) -> ColumnKind {
        self.column_kinds
            .get(&(table.to_string(), column.to_string()))
            .copied()
            .unwrap_or(ColumnKind::Plain)
    }

    /// Tables the definitions write to or declare, for choosing among recorded snapshots.
    pub(crate) fn referenced_columns(&self) -> IndexMap<String, Vec<String>> {
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
                    StatementKind::Sql { .. }
                    | StatementKind::ClientDocumentSet { .. }
                    | StatementKind::Query { .. } => {}
                }
            }
        }
        out
    }
}
