//! Materializers: what turns an event into SQL statements.
//!
//! A [`Materializer`] answers, for one event, with the statements LiveStore would run and their
//! bind values, or with why it cannot. The replay engine executes the statements; everything
//! downstream (savepoints, changesets, comparison, findings) is the same whichever materializer
//! produced them. [`sql::SqlMaterializer`] reads TOML definitions; other sources (the app's own
//! TypeScript materializers through a helper process) plug in behind the same trait.

pub mod sql;

use rusqlite::Connection;
use serde_json::Value;

use crate::definitions::Ddl;
use crate::error::Result;
use crate::eventlog::Event;
use crate::js::BindValue;
use crate::report::FindingClass;

/// One SQL statement (or several, separated by `;`) with its bind values.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text, exactly as LiveStore would run it.
    pub sql: String,
    /// The bind values.
    pub binds: Binds,
    /// 1-based line of the definition that produced it, for messages.
    pub line: Option<usize>,
    /// The rows it means to change, where the materializer knows them: when the event is
    /// rolled back, later events that change these rows are listed as its downstream impact.
    pub target: Option<Target>,
}

/// The rows a statement means to change.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The rows of `table` a `WHERE` clause selects (an update or delete).
    Where {
        /// Table.
        table: String,
        /// The clause, `WHERE …` or empty for every row.
        clause: String,
        /// Its bind values, positional.
        binds: Vec<BindValue>,
        /// Its `column = value` conditions, which name the row outright when they cover the
        /// key (so a row that does not exist can still be named).
        equals: Vec<(String, BindValue)>,
    },
    /// The row of `table` with these column values (an insert).
    Row {
        /// Table.
        table: String,
        /// Column values.
        values: Vec<(String, BindValue)>,
    },
}

/// Bind values in LiveStore's two shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Binds {
    /// Nothing bound.
    None,
    /// Bound to parameters 1, 2, … of each statement, in order.
    Positional(Vec<BindValue>),
    /// Bound by parameter name, the name including its prefix (`$id`).
    Named(Vec<(String, BindValue)>),
}

/// Why an event produced no statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// `invalid-args` or `materializer-error`.
    pub class: FindingClass,
    /// What went wrong.
    pub message: String,
}

/// A materializer's answer for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Run these statements (none: the event changes nothing).
    Statements(Vec<Statement>),
    /// The materializer has no definition for this event name.
    Unknown,
    /// The materializer could not produce statements.
    Rejected(Rejection),
}

/// A source of materializer behaviour.
pub trait Materializer {
    /// How the report names this materializer (e.g. the definitions file).
    fn describe(&self) -> String;

    /// Where the DDL of the state tables comes from.
    fn ddl(&self) -> &Ddl;

    /// Tables and columns the materializer writes, used to pick among recorded snapshots.
    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>>;

    /// Checks the materializer against the state schema loaded into `scratch`, before replay.
    fn prepare(&mut self, scratch: &Connection) -> Result<()>;

    /// The statements for `event` (whose `argsJson` parsed to `args`). `scratch` holds the
    /// state as it stands before this event, for materializers that query it. `Err` only when
    /// the materializer itself broke down (a helper process that died), never for a bad event.
    fn materialize(&mut self, event: &Event, args: &Value, scratch: &Connection)
    -> Result<Outcome>;

    /// The events the replay will ask about next, in order, so that a materializer behind a
    /// pipe can send them in one go. Some may never be asked about (a row the log checks
    /// skip); one asked about without a look ahead is answered on its own.
    fn lookahead(&mut self, _events: &[&Event]) -> Result<()> {
        Ok(())
    }
}
