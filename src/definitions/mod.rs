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
//! Parsing checks the file on its own; the SQL materializer's `prepare` then checks it against
//! the state schema (every table, column and raw statement must exist and prepare), so a
//! definition that names something the state does not have fails before any event is
//! replayed.
//!
//! Only [`Definitions`] (to load) and [`Ddl`] (which every materializer reports) are public:
//! the model behind them is the SQL path's own, free to change with LiveStore.

pub mod draft;
pub(crate) mod expr;
mod model;
mod parse;
mod path;
mod raw;
mod reencode;
mod validate;

pub(crate) use expr::{Expr, Scope, Val};
pub(crate) use model::{
    ClientDocument, ColumnKind, Condition, ConflictAction, Op, QueryShape, SqlBinds, StatementDef,
    StatementKind,
};
pub use model::{Ddl, Definitions};
