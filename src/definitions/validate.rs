//! Definitions checked against the state schema, before any event is replayed: every table,
//! column and raw statement must exist and prepare, so a definition that names something the
//! state does not have is one error naming its line, not a finding on every event.

use std::collections::HashMap;

use rusqlite::Connection;

use super::model::{ConflictAction, Definitions, SqlBinds, StatementKind};
use crate::error::{Error, Result};
use crate::sqlite;

impl Definitions {
    /// Checks every definition against the state schema loaded into `conn`: tables and columns
    /// must exist, raw SQL must prepare, and its parameters must match its binds.
    pub(crate) fn validate(&self, conn: &Connection) -> Result<()> {
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
        let err = |file: &std::path::Path, line: usize, event: Option<&str>, message: String| {
            Error::Definitions {
                path: file.to_path_buf(),
                line: Some(line),
                event: event.map(str::to_string),
                message,
            }
        };

        for (table, (file, line)) in &self.table_lines {
            let Some(cols) = columns(table) else {
                return Err(err(
                    file,
                    *line,
                    None,
                    format!("the state has no table `{table}`"),
                ));
            };
            for ((t, c), _) in self.column_kinds.iter().filter(|((t, _), _)| t == table) {
                if !cols.iter().any(|x| x == c) {
                    return Err(err(
                        file,
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
                    &doc.file,
                    doc.line,
                    Some(&format!("{}Set", doc.table)),
                    format!("the state has no client-document table `{}`", doc.table),
                ));
            };
            for want in ["id", "value"] {
                if !cols.iter().any(|c| c == want) {
                    return Err(err(
                        &doc.file,
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
                        validate_raw_sql(conn, sql, binds)
                            .map_err(|m| err(&ev.file, st.line, name, m))?;
                        (None, Vec::new())
                    }
                    StatementKind::ClientDocumentSet { .. } => (None, Vec::new()),
                    StatementKind::Query { sql, binds, .. } => {
                        validate_query(conn, sql, binds)
                            .map_err(|m| err(&ev.file, st.line, name, m))?;
                        (None, Vec::new())
                    }
                };
                if let Some(table) = table {
                    let Some(cols) = columns(table) else {
                        return Err(err(
                            &ev.file,
                            st.line,
                            name,
                            format!("the state has no table `{table}`"),
                        ));
                    };
                    for c in cols_used {
                        if !cols.iter().any(|x| x == c) {
                            return Err(err(
                                &ev.file,
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

/// A `query` step is what `ctx.query` runs: one statement that reads (LiveStore's `select`
/// would run anything, but a materializer's writes belong in the statements it returns).
fn validate_query(conn: &Connection, sql: &str, binds: &SqlBinds) -> Result<(), String> {
    validate_raw_sql(conn, sql, binds)?;
    let parts = sqlite::split_statements(conn, sql)
        .map_err(|e| format!("SQLite cannot prepare this query: {e}"))?;
    if parts.len() != 1 {
        return Err(format!(
            "a query is one statement, this SQL has {} (ctx.query runs the first alone)",
            parts.len()
        ));
    }
    let stmt = conn
        .prepare(sql)
        .map_err(|e| format!("SQLite cannot prepare this query: {e}"))?;
    if !stmt.readonly() {
        return Err(
            "a query only reads (ctx.query); return a write as a statement (`sql`, `insert`, …)"
                .to_string(),
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(events: &str) -> Result<()> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)")
            .unwrap();
        Definitions::parse(Path::new("defs.toml"), &format!("format = 1\n{events}"))?
            .validate(&conn)
    }

    /// A `query` step is one statement that only reads, as `ctx.query` runs it.
    #[test]
    fn query_steps_read_one_statement() {
        check("[events.A]\nquery = \"SELECT n FROM t WHERE id = ?\"\nbinds = [\"args.id\"]\nas = \"q\"\n")
            .unwrap();
        let e = check("[events.A]\nquery = \"DELETE FROM t\"\nas = \"q\"\n").unwrap_err();
        assert!(e.to_string().contains("a query only reads"), "{e}");
        let e = check("[events.A]\nquery = \"SELECT 1; SELECT 2\"\nas = \"q\"\n").unwrap_err();
        assert!(e.to_string().contains("a query is one statement"), "{e}");
        let e = check("[events.A]\nquery = \"SELECT nope FROM t\"\nas = \"q\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("defs.toml:2: event \"A\": SQLite cannot prepare"),
            "{e}"
        );
    }
}
