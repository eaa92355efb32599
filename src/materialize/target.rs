//! The rows a statement means to change, read from its SQL text, for statements that do not
//! say (the plugin's, and raw SQL in definitions).
//!
//! Only the simple shapes LiveStore's query builder writes, and raw SQL written like them, are
//! read: `INSERT [OR …] INTO t (cols) VALUES (params)`, `UPDATE [OR …] t SET … WHERE …` and
//! `DELETE FROM t WHERE …` whose `WHERE` is `col = param` joined by `AND`. Anything else gives
//! no target, as before: a target is only used to name the rows of an event that failed (its
//! downstream impact, and blame for rows it left unwritten), so a guess would mislead where
//! nothing at all is merely less helpful.

use crate::js::BindValue;
use crate::materialize::{Binds, Target};
use crate::sqlite::quote_ident;

/// The target of `sql` run with `binds`, where its shape is one of those above.
pub(crate) fn derive(sql: &str, binds: &Binds) -> Option<Target> {
    let mut t = Tokens::new(sql)?;
    let mut params = Params { binds, next: 0 };
    match t.word()?.as_str() {
        "INSERT" => insert(&mut t, &mut params),
        "REPLACE" => {
            t.keyword("INTO")?;
            row(&mut t, &mut params)
        }
        "UPDATE" => update(&mut t, &mut params),
        "DELETE" => {
            t.keyword("FROM")?;
            let table = t.ident()?;
            filtered(table, &mut t, &mut params)
        }
        _ => None,
    }
}

fn insert(t: &mut Tokens, params: &mut Params) -> Option<Target> {
    t.skip_or_conflict()?;
    t.keyword("INTO")?;
    row(t, params)
}

/// `table (cols) VALUES (values)`: the columns whose values are parameters. Literals are
/// left out (the key columns of a row named this way are parameters in practice).
fn row(t: &mut Tokens, params: &mut Params) -> Option<Target> {
    let table = t.ident()?;
    t.punct('(')?;
    let mut cols = vec![t.ident()?];
    while t.try_punct(',') {
        cols.push(t.ident()?);
    }
    t.punct(')')?;
    t.keyword("VALUES")?;
    t.punct('(')?;
    let mut values = Vec::new();
    for (i, col) in cols.iter().enumerate() {
        if i > 0 {
            t.punct(',')?;
        }
        match t.next()? {
            Token::Param(p) => values.push((col.clone(), params.value(&p)?)),
            Token::Literal | Token::Str(_) => {}
            _ => return None,
        }
    }
    t.punct(')')?;
    // ON CONFLICT, RETURNING: the row named is the one inserted or updated either way.
    Some(Target::Row { table, values })
}

fn update(t: &mut Tokens, params: &mut Params) -> Option<Target> {
    t.skip_or_conflict()?;
    let table = t.ident()?;
    t.keyword("SET")?;
    // The assignments only matter for the parameters they take before the WHERE.
    loop {
        match t.next()? {
            Token::Word(w) if w.eq_ignore_ascii_case("WHERE") => break,
            Token::Param(p) => {
                params.value(&p)?;
            }
            _ => {}
        }
    }
    t.back();
    filtered(table, t, params)
}

/// `WHERE col = param AND …` to the end of the statement (or its `RETURNING`).
fn filtered(table: String, t: &mut Tokens, params: &mut Params) -> Option<Target> {
    t.keyword("WHERE")?;
    let mut equals = Vec::new();
    loop {
        let col = t.ident()?;
        t.punct('=')?;
        let Token::Param(p) = t.next()? else {
            return None;
        };
        equals.push((col, params.value(&p)?));
        match t.next() {
            None => break,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("AND") => {}
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("RETURNING") => break,
            Some(_) => return None,
        }
    }
    let clause = format!(
        "WHERE {}",
        equals
            .iter()
            .map(|(c, _)| format!("{} = ?", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    Some(Target::Where {
        table,
        clause,
        binds: equals.iter().map(|(_, v)| v.clone()).collect(),
        equals,
    })
}

/// The statement's parameters, read in order as SQLite numbers them.
struct Params<'a> {
    binds: &'a Binds,
    next: usize,
}

impl Params<'_> {
    /// The value bound to `param` (`?`, `?N`, `$name`, `:name`, `@name`).
    fn value(&mut self, param: &str) -> Option<BindValue> {
        let positional = |i: usize| match self.binds {
            Binds::Positional(v) => v.get(i).cloned(),
            _ => None,
        };
        if param == "?" {
            self.next += 1;
            return positional(self.next - 1);
        }
        if let Some(n) = param.strip_prefix('?') {
            let n: usize = n.parse().ok()?;
            self.next = self.next.max(n);
            return positional(n.checked_sub(1)?);
        }
        match self.binds {
            Binds::Named(named) => named
                .iter()
                .find(|(k, _)| k == param)
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A keyword or bare identifier, as written (`word` upper-cases).
    Word(String),
    /// A quoted identifier, unquoted.
    Quoted(String),
    /// A string literal, unquoted: a name where one is due (SQLite reads it so, and the
    /// query builder writes table names so), else a value.
    Str(String),
    Param(String),
    /// A number, a string literal or NULL.
    Literal,
    Punct(char),
}

struct Tokens {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokens {
    /// `None` for text this reader does not follow (comments, blobs, a second statement).
    fn new(sql: &str) -> Option<Tokens> {
        let mut tokens = Vec::new();
        let mut chars = sql.char_indices().peekable();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == '\'' || c == '"' || c == '`' {
                chars.next();
                let mut text = String::new();
                loop {
                    let (_, d) = chars.next()?;
                    if d == c {
                        if chars.peek().map(|&(_, e)| e) == Some(c) {
                            chars.next();
                            text.push(c);
                            continue;
                        }
                        break;
                    }
                    text.push(d);
                }
                tokens.push(if c == '\'' {
                    Token::Str(text)
                } else {
                    Token::Quoted(text)
                });
            } else if c == '[' {
                chars.next();
                let mut text = String::new();
                loop {
                    let (_, d) = chars.next()?;
                    if d == ']' {
                        break;
                    }
                    text.push(d);
                }
                tokens.push(Token::Quoted(text));
            } else if c == '?' || c == '$' || c == ':' || c == '@' {
                chars.next();
                let mut p = c.to_string();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        p.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if p.len() == 1 && c != '?' {
                    return None;
                }
                tokens.push(Token::Param(p));
            } else if c.is_ascii_digit() || (c == '-' && Self::digit_after(sql, i)) {
                chars.next();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '.' {
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Literal);
            } else if c.is_alphabetic() || c == '_' {
                let mut w = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        w.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(if w.eq_ignore_ascii_case("NULL") {
                    Token::Literal
                } else {
                    Token::Word(w)
                });
            } else if c == ';' {
                chars.next();
                // One statement only: anything after the semicolon is another.
                if chars.any(|(_, d)| !d.is_whitespace()) {
                    return None;
                }
            } else if c == '-' || c == '/' {
                // A comment, or arithmetic: neither is followed here.
                let next = sql[i + 1..].chars().next();
                if next == Some('-') || next == Some('*') {
                    return None;
                }
                chars.next();
                tokens.push(Token::Punct(c));
            } else {
                chars.next();
                tokens.push(Token::Punct(c));
            }
        }
        Some(Tokens { tokens, at: 0 })
    }

    fn digit_after(sql: &str, i: usize) -> bool {
        sql[i + 1..]
            .chars()
            .next()
            .is_some_and(|d| d.is_ascii_digit())
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        if t.is_some() {
            self.at += 1;
        }
        t
    }

    fn back(&mut self) {
        self.at -= 1;
    }

    /// The next token as an upper-case keyword.
    fn word(&mut self) -> Option<String> {
        match self.next()? {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.at)? {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// `OR ROLLBACK`, `OR IGNORE`, … after INSERT or UPDATE: the rows named are the same.
    fn skip_or_conflict(&mut self) -> Option<()> {
        if self.peek_word().as_deref() == Some("OR") {
            self.word();
            self.word()?;
        }
        Some(())
    }

    fn keyword(&mut self, k: &str) -> Option<()> {
        (self.word()? == k).then_some(())
    }

    /// A table or column name, quoted or not (`main.t` is not followed).
    fn ident(&mut self) -> Option<String> {
        let name = match self.next()? {
            Token::Word(w) => w,
            Token::Quoted(q) | Token::Str(q) => q,
            _ => return None,
        };
        if self.tokens.get(self.at) == Some(&Token::Punct('.')) {
            return None;
        }
        Some(name)
    }

    fn punct(&mut self, c: char) -> Option<()> {
        (self.next()? == Token::Punct(c)).then_some(())
    }

    fn try_punct(&mut self, c: char) -> bool {
        if self.tokens.get(self.at) == Some(&Token::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> BindValue {
        BindValue::Text(s.into())
    }

    fn positional(v: &[&str]) -> Binds {
        Binds::Positional(v.iter().map(|s| text(s)).collect())
    }

    #[test]
    fn query_builder_inserts_name_their_row() {
        // As LiveStore 0.4's query builder writes them (the LS_DEV sample's debug column).
        let t = derive(
            r#"INSERT INTO 'comments' ("id", "todoId", "body") VALUES (?, ?, ?)"#,
            &positional(&["c1", "t1", "hi"]),
        );
        assert_eq!(
            t,
            Some(Target::Row {
                table: "comments".into(),
                values: vec![
                    ("id".into(), text("c1")),
                    ("todoId".into(), text("t1")),
                    ("body".into(), text("hi")),
                ],
            })
        );
        let t = derive(
            r#"INSERT INTO 'users' ("id", "name") VALUES (?, ?) ON CONFLICT ("id") DO NOTHING"#,
            &positional(&["u1", "Ada"]),
        );
        assert!(matches!(t, Some(Target::Row { ref table, .. }) if table == "users"));
        let t = derive(
            r#"INSERT OR REPLACE INTO 'project_stats' ("projectId", "todoCount") VALUES (?, ?)"#,
            &positional(&["p1", "0"]),
        );
        assert!(matches!(t, Some(Target::Row { ref table, .. }) if table == "project_stats"));
    }

    #[test]
    fn raw_sql_with_named_binds_and_literals() {
        let named = Binds::Named(vec![
            ("$projectId".into(), text("p1")),
            ("$at".into(), text("2026-01-01")),
        ]);
        let t = derive(
            "INSERT INTO project_stats (projectId, todoCount, lastActivityAt) VALUES ($projectId, 1, $at)\n              ON CONFLICT(projectId) DO UPDATE SET todoCount = todoCount + 1",
            &named,
        );
        assert_eq!(
            t,
            Some(Target::Row {
                table: "project_stats".into(),
                values: vec![
                    ("projectId".into(), text("p1")),
                    ("lastActivityAt".into(), text("2026-01-01")),
                ],
            })
        );
        let t = derive(
            "UPDATE project_stats SET commentCount = commentCount + 1, lastActivityAt = $at WHERE projectId = $projectId",
            &named,
        );
        assert_eq!(
            t,
            Some(Target::Where {
                table: "project_stats".into(),
                clause: r#"WHERE "projectId" = ?"#.into(),
                binds: vec![text("p1")],
                equals: vec![("projectId".into(), text("p1"))],
            })
        );
    }

    #[test]
    fn updates_and_deletes_name_the_rows_their_where_picks() {
        let t = derive(
            r#"UPDATE 'todos' SET "updatedAt" = ?, "text" = ? WHERE "id" = ?"#,
            &positional(&["now", "x", "t1"]),
        );
        assert_eq!(
            t,
            Some(Target::Where {
                table: "todos".into(),
                clause: r#"WHERE "id" = ?"#.into(),
                binds: vec![text("t1")],
                equals: vec![("id".into(), text("t1"))],
            })
        );
        let t = derive(
            r#"DELETE FROM 'comments' WHERE "todoId" = ? AND "authorId" = ?"#,
            &positional(&["t1", "u1"]),
        );
        assert_eq!(
            t,
            Some(Target::Where {
                table: "comments".into(),
                clause: r#"WHERE "todoId" = ? AND "authorId" = ?"#.into(),
                binds: vec![text("t1"), text("u1")],
                equals: vec![
                    ("todoId".into(), text("t1")),
                    ("authorId".into(), text("u1"))
                ],
            })
        );
        // The client-document set, as LiveStore writes it.
        let t = derive(
            "\n      INSERT INTO 'uiState' (id, value)\n      VALUES (?, ?)\n      ON CONFLICT (id) DO UPDATE SET value = json_set(value, ?, json(?))\n    ",
            &positional(&["s1", "{}", "$.a", "1"]),
        );
        assert!(
            matches!(t, Some(Target::Row { ref values, .. }) if values[0] == ("id".into(), text("s1")))
        );
    }

    #[test]
    fn anything_else_names_nothing() {
        for sql in [
            "SELECT 1",
            "UPDATE todos SET done = 1",
            "UPDATE todos SET done = 1 WHERE id = ? OR id = ?",
            "DELETE FROM todos WHERE id IN (?, ?)",
            "DELETE FROM todos WHERE createdAt < ?",
            "UPDATE todos SET n = (SELECT count(*) FROM c WHERE c.t = ?) WHERE id = ?",
            "DELETE FROM todos WHERE id = ?; DELETE FROM comments WHERE todoId = ?",
            "DELETE FROM todos WHERE id = 'literal'",
            "DELETE FROM main.todos WHERE id = ?",
            "DELETE FROM todos WHERE id = ? -- a comment",
            "INSERT INTO todos SELECT * FROM old",
        ] {
            assert_eq!(derive(sql, &positional(&["a", "b"])), None, "{sql}");
        }
        // Parameters the binds do not have.
        assert_eq!(derive("DELETE FROM todos WHERE id = ?", &Binds::None), None);
        assert_eq!(
            derive("DELETE FROM todos WHERE id = $id", &positional(&["a"])),
            None
        );
    }
}
