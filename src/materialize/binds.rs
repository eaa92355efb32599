//! Binding a statement's values the way LiveStore's wa-sqlite does, shared by the replay (which
//! runs statements) and the plugin (which reads their targets).

use rusqlite::ToSql;

use crate::js::BindValue;
use crate::materialize::Binds;

/// wa-sqlite's `bind_collection`: positional values go to parameters 1…n of each statement,
/// named values to parameters of the same name; anything else stays NULL.
pub(crate) fn bind(stmt: &mut rusqlite::Statement<'_>, binds: &Binds) -> rusqlite::Result<()> {
    let n = stmt.parameter_count();
    match binds {
        Binds::None => {}
        Binds::Positional(values) => {
            for (i, v) in values.iter().enumerate().take(n) {
                bind_one(stmt, i + 1, v)?;
            }
        }
        Binds::Named(values) => {
            let names: Vec<Option<String>> = (1..=n)
                .map(|i| stmt.parameter_name(i).map(str::to_string))
                .collect();
            for (i, name) in names.iter().enumerate() {
                if let Some(name) = name
                    && let Some((_, v)) = values.iter().find(|(k, _)| k == name)
                {
                    bind_one(stmt, i + 1, v)?;
                }
            }
        }
    }
    Ok(())
}

fn bind_one(stmt: &mut rusqlite::Statement<'_>, i: usize, v: &BindValue) -> rusqlite::Result<()> {
    let value: &dyn ToSql = match v {
        BindValue::Unbound => return Ok(()),
        BindValue::Null => &rusqlite::types::Null,
        BindValue::Integer(x) => x,
        BindValue::Real(x) => x,
        // wa-sqlite binds a JS string as a NUL-terminated C string (length -1), so LiveStore
        // stores text only up to its first NUL (corpora/js-strings); JSON text escapes NUL.
        BindValue::Text(x) => {
            let end = x.find('\0').unwrap_or(x.len());
            return stmt.raw_bind_parameter(i, &x[..end]);
        }
        BindValue::Blob(x) => x,
    };
    stmt.raw_bind_parameter(i, value)
}
