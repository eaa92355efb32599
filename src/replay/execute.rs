//! Running a materializer's statements the way LiveStore's wa-sqlite does.
//!
//! A statement's SQL text may hold several statements (wa-sqlite runs each), positional values
//! bind to parameters 1…n of each of them, named values to parameters of the same name, and a
//! parameter left unbound reads as NULL. Prepared statements are cached across events.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::materialize::Statement;
use crate::materialize::binds::bind;
use crate::sqlite;

/// Runs SQL statements the way wa-sqlite does, with cached prepared statements.
#[derive(Default)]
pub(crate) struct Executor {
    /// SQL text → the statements it contains, each marked when it updates or deletes one row
    /// picked by its key.
    split: HashMap<String, Split>,
    /// Whether the schema holds a `FAIL` conflict clause or `RAISE(FAIL)` (read when first
    /// needed, and again after a statement that changed the schema).
    schema_fails: Option<bool>,
}

/// The statements one SQL text holds.
struct Split {
    /// Each statement, marked when it updates or deletes one row picked by its key.
    parts: Vec<(String, bool)>,
    /// Whether SQLite undoes a failure of the whole text by itself: a single data-changing
    /// statement without a `FAIL` conflict clause.
    atomic: bool,
}

/// What running one statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ran {
    /// An UPDATE or DELETE of one row, picked by its primary key or a unique key, matched no
    /// row: the row it means does not exist (an update after a hard delete, say). Statements
    /// that pick rows by anything else (a cascade `DELETE … WHERE todoId = ?`) legitimately
    /// match nothing and are not reported.
    pub matched_nothing: bool,
}

/// Bound on remembered SQL splits, so materializers that inline values into SQL text do not
/// make memory grow with the log.
const SPLIT_CACHE_MAX: usize = 4096;

impl Executor {
    /// Runs `st`; `Err` carries SQLite's message.
    pub(crate) fn run(
        &mut self,
        conn: &Connection,
        st: &Statement,
    ) -> std::result::Result<Ran, String> {
        // Prepared (and re-prepared after a schema change) only inside the confinement of an
        // event's SQL: see `sqlite::confine`.
        sqlite::event_sql(|| self.run_confined(conn, st)).map_err(sqlite::explain_refusal)
    }

    fn run_confined(
        &mut self,
        conn: &Connection,
        st: &Statement,
    ) -> std::result::Result<Ran, String> {
        let split = self.split_of(conn, &st.sql)?;
        let mut ran = Ran {
            matched_nothing: false,
        };
        for (part, update_or_delete) in &split.parts {
            let mut stmt = conn.prepare_cached(part).map_err(sqlite_message)?;
            bind(&mut stmt, &st.binds).map_err(sqlite_message)?;
            let mut rows = stmt.raw_query();
            while rows.next().map_err(sqlite_message)?.is_some() {}
            if *update_or_delete && conn.changes() == 0 {
                ran.matched_nothing = true;
            }
        }
        if !split.atomic {
            // It may have changed the schema.
            self.schema_fails = None;
        }
        Ok(ran)
    }

    /// Whether a failure of `st` is wholly undone by SQLite itself: its SQL is a single
    /// data-changing statement (no DDL, no transaction control), without a `FAIL` conflict
    /// resolution in it or in the schema (FAIL keeps a failing statement's earlier changes).
    /// SQLite backs out a statement that fails with any other resolution.
    pub(crate) fn undone_by_sqlite(&mut self, conn: &Connection, st: &Statement) -> bool {
        let atomic = self.split_of(conn, &st.sql).is_ok_and(|s| s.atomic);
        atomic
            && !*self.schema_fails.get_or_insert_with(|| {
                conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE sql LIKE '%FAIL%') OR EXISTS (SELECT 1 FROM sqlite_temp_master WHERE sql LIKE '%FAIL%')",
                    [],
                    |r| r.get::<_, bool>(0),
                )
                .unwrap_or(true)
            })
    }

    /// The statements of `sql`, split and analysed once.
    fn split_of(&mut self, conn: &Connection, sql: &str) -> std::result::Result<&Split, String> {
        if !self.split.contains_key(sql) {
            if self.split.len() >= SPLIT_CACHE_MAX {
                self.split.clear();
            }
            let parts: Vec<(String, bool)> = sqlite::split_statements(conn, sql)?
                .into_iter()
                .map(|p| {
                    let writes = matches!(leading_keyword(&p.sql).as_str(), "UPDATE" | "DELETE");
                    let keyed = writes && picks_one_row(conn, &p.sql);
                    (p.sql, keyed)
                })
                .collect();
            let atomic = match parts.as_slice() {
                [(part, _)] => {
                    matches!(
                        leading_keyword(part).as_str(),
                        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "SELECT" | "WITH" | "VALUES"
                    ) && !part.to_ascii_uppercase().contains("FAIL")
                }
                _ => false,
            };
            self.split.insert(sql.to_string(), Split { parts, atomic });
        }
        Ok(&self.split[sql])
    }
}

/// Whether SQLite's plan for an UPDATE or DELETE looks its rows up by every column of the
/// primary key or of a unique index, with `=`: then it means one particular row.
fn picks_one_row(conn: &Connection, sql: &str) -> bool {
    let plan: rusqlite::Result<Vec<String>> = (|| {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        // Parameters stay unbound: the plan does not depend on their values.
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next()? {
            details.push(row.get::<_, String>(3)?);
        }
        Ok(details)
    })();
    let Some(first) = plan.ok().and_then(|p| p.into_iter().next()) else {
        return false;
    };
    // `SEARCH t USING INDEX idx (a=? AND b=?)`, `… USING PRIMARY KEY (…)`,
    // `… USING INTEGER PRIMARY KEY (rowid=?)`.
    let Some(rest) = first.strip_prefix("SEARCH ") else {
        return false;
    };
    let Some((table, using)) = rest.split_once(" USING ") else {
        return false;
    };
    let Some((how, constraints)) = using.split_once(" (") else {
        return false;
    };
    let constraints = constraints.trim_end_matches(')');
    let terms: Vec<&str> = constraints.split(" AND ").collect();
    if terms.iter().any(|t| !t.ends_with("=?")) {
        return false;
    }
    // The plan shows only the conditions the key answers; a WHERE with more (`AND note IS NOT
    // NULL`) may legitimately match nothing.
    if where_terms(sql) != Some(terms.len()) {
        return false;
    }
    let index_columns = |index: &str| -> Option<(bool, usize)> {
        let unique: i64 = conn
            .query_row(
                "SELECT \"unique\" FROM pragma_index_list(?1) WHERE name = ?2",
                [table, index],
                |r| r.get(0),
            )
            .ok()?;
        let n: i64 = conn
            .query_row("SELECT count(*) FROM pragma_index_info(?1)", [index], |r| {
                r.get(0)
            })
            .ok()?;
        Some((unique != 0, n as usize))
    };
    if how == "INTEGER PRIMARY KEY" {
        return terms.len() == 1;
    }
    if how == "PRIMARY KEY" {
        let pk = crate::sqlite::table_columns(conn, "main", table)
            .map(|cols| cols.iter().filter(|c| c.pk > 0).count())
            .unwrap_or(0);
        return pk > 0 && terms.len() == pk;
    }
    let index = how
        .strip_prefix("COVERING INDEX ")
        .or_else(|| how.strip_prefix("INDEX "));
    match index.and_then(index_columns) {
        Some((true, n)) => n == terms.len(),
        _ => false,
    }
}

/// The number of `AND`-joined conditions of a statement's last WHERE clause; `None` when there
/// is none, or it has an `OR` or nested parentheses (too complex to count this way).
fn where_terms(sql: &str) -> Option<usize> {
    let upper = sql.to_ascii_uppercase();
    let at = upper.rfind("WHERE")?;
    let mut clause = &upper[at + 5..];
    if let Some(end) = clause.find(" RETURNING ") {
        clause = &clause[..end];
    }
    if clause.contains(" OR ") || clause.contains('(') {
        return None;
    }
    // A key spelled out in the SQL (`WHERE key = 'ticks'`) is not the event's row: an
    // update-then-insert upsert matches nothing the first time, by design.
    if !clause.contains(['?', '$', ':', '@']) {
        return None;
    }
    Some(clause.split(" AND ").count())
}

/// The first keyword of a statement, upper-cased, after white space and comments.
fn leading_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// SQLite's own message, without rusqlite's wrapping.
pub(crate) fn sqlite_message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::BindValue;
    use crate::materialize::Binds;

    #[test]
    fn keywords_skip_comments() {
        assert_eq!(
            leading_keyword("  -- note\n /* x */ update t set a = 1"),
            "UPDATE"
        );
        assert_eq!(leading_keyword("\n      INSERT INTO 'uiState'"), "INSERT");
        assert_eq!(leading_keyword("SELECT 1"), "SELECT");
    }

    #[test]
    fn an_update_that_matches_nothing_is_noticed() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INT, parent TEXT); INSERT INTO t VALUES ('a', 1, NULL);
             CREATE INDEX t_parent ON t (parent);
             CREATE TABLE c (a, b, v, PRIMARY KEY (a, b)) WITHOUT ROWID;
             CREATE TABLE r (id INTEGER PRIMARY KEY, x);",
        )
        .unwrap();
        let mut exec = Executor::default();
        let st = |sql: &str, id: &str| Statement {
            sql: sql.to_string(),
            binds: Binds::Positional(vec![BindValue::Text(id.to_string())]),
            line: None,
            file: None,
            target: None,
        };
        let upd = "UPDATE t SET n = n + 1 WHERE id = ?";
        assert!(!exec.run(&conn, &st(upd, "a")).unwrap().matched_nothing);
        assert!(exec.run(&conn, &st(upd, "gone")).unwrap().matched_nothing);
        assert!(
            exec.run(&conn, &st("DELETE FROM t WHERE id = ?", "gone"))
                .unwrap()
                .matched_nothing
        );
        let ins = "INSERT INTO t VALUES (?, 1, NULL) ON CONFLICT DO NOTHING";
        assert!(
            !exec.run(&conn, &st(ins, "a")).unwrap().matched_nothing,
            "inserts are not checked"
        );
        let cascade = "DELETE FROM t WHERE parent = ?";
        assert!(
            !exec.run(&conn, &st(cascade, "x")).unwrap().matched_nothing,
            "not one row by key"
        );
        assert!(picks_one_row(&conn, "DELETE FROM c WHERE a = ? AND b = ?"));
        assert!(!picks_one_row(&conn, "DELETE FROM c WHERE a = ?"));
        assert!(picks_one_row(&conn, "UPDATE r SET x = 1 WHERE id = ?"));
        assert!(!picks_one_row(&conn, "UPDATE t SET n = 1 WHERE n > ?"));
        assert!(!picks_one_row(
            &conn,
            "UPDATE t SET n = 1 WHERE id = ? AND n IS NOT NULL"
        ));
        assert!(!picks_one_row(
            &conn,
            "UPDATE t SET n = n + 1 WHERE id = 'ticks'"
        ));
    }
}
