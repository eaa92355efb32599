//! Materializers: what turns an event into SQL statements.
//!
//! A [`Materializer`] answers, for one event, with the statements LiveStore would run and their
//! bind values, or with why it cannot. The replay engine executes the statements; everything
//! downstream (savepoints, changesets, comparison, findings) is the same whichever materializer
//! produced them. [`sql::SqlMaterializer`] reads TOML definitions; other sources (the app's own
//! TypeScript materializers through a helper process) plug in behind the same trait.

pub(crate) mod binds;
pub mod livestore;
pub mod sql;
pub(crate) mod target;

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
    /// The definitions file that line is in, where it is not the one the materializer is
    /// named by (a file the definitions extend).
    pub file: Option<std::sync::Arc<std::path::Path>>,
    /// The rows it means to change, where the materializer knows them: when the event is
    /// rolled back, later events that change these rows are listed as its downstream impact.
    pub target: Option<Target>,
}

impl Statement {
    /// The rows it means to change: as the materializer said, or else as its SQL reads
    /// (`target::derive`; only when needed, as that reads the SQL text).
    pub fn target(&self) -> Option<std::borrow::Cow<'_, Target>> {
        match &self.target {
            Some(t) => Some(std::borrow::Cow::Borrowed(t)),
            None => target::derive(&self.sql, &self.binds).map(std::borrow::Cow::Owned),
        }
    }
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
    /// For `invalid-args`: the JSON pointer of the failing value in the args, where the
    /// materializer knows it.
    pub pointer: Option<String>,
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

    /// Whether [`Materializer::materialize`] may write to `scratch` itself (the plugin's
    /// `ctx.query` runs whatever SQL the app sends, writes included). The replay then keeps
    /// such writes out of the savepoint it shares between events: rolling back and running the
    /// batch's statements again would lose them.
    fn writes_while_materializing(&self) -> bool {
        false
    }

    /// A replay of a log begins. One materializer may replay several logs in turn (a helper
    /// process is costly to start): nothing announced for an earlier one may answer for this.
    fn begin_log(&mut self) -> Result<()> {
        Ok(())
    }

    /// How many events the log holds, before the replay starts: a materializer may size its
    /// resources to it.
    fn expect_events(&mut self, _events: u64) -> Result<()> {
        Ok(())
    }

    /// The events the replay will ask about next, in order, so that a materializer behind a
    /// pipe can send them in one go. Some may never be asked about (a row the log checks
    /// skip); one asked about without a look ahead is answered on its own.
    fn lookahead(&mut self, _events: &[&Event]) -> Result<()> {
        Ok(())
    }

    /// A copy that answers on another thread, for a materializer whose answers depend on the
    /// event alone (not on the scratch database, earlier events or anything else), at least
    /// for some events: the replay then asks it ahead, on another core, while it applies
    /// earlier events. Its answers must be deterministic: a replay may start over and ask
    /// again. `None` (the default) keeps every question on the replay's thread, in order.
    fn pure(&self) -> Option<Box<dyn Pure>> {
        None
    }
}

/// A materializer's answers that depend on the event alone ([`Materializer::pure`]).
pub trait Pure: Send {
    /// The statements for `event`, whose `argsJson` parsed to `args`: what
    /// [`Materializer::materialize`] answers, for any state and at any time; `None` for an
    /// event whose answer depends on more (the state), which the replay then asks in order.
    fn materialize(&self, event: &Event, args: &Value) -> Option<Outcome>;
}

/// Where an event's statements come from: TOML definitions, or the app's own LiveStore schema
/// (`livestore:<module>[#export]`). Each corpus gets its own [`Materializer`] from it.
#[derive(Debug, Clone)]
pub enum Source {
    /// SQL materializer definitions.
    Sql(Box<crate::definitions::Definitions>),
    /// The app's TypeScript or JavaScript materializers, run by the app's LiveStore.
    LiveStore(livestore::PluginConfig),
}

impl Source {
    /// Reads a `--materializers` value: `livestore:<module>[#export]`, or a definitions file.
    pub fn load(spec: &std::path::Path) -> Result<Source> {
        match livestore::PluginConfig::parse(&spec.to_string_lossy()) {
            Some(config) => Ok(Source::LiveStore(config)),
            None => Ok(Source::Sql(Box::new(
                crate::definitions::Definitions::load(spec)?,
            ))),
        }
    }

    /// A fresh materializer (for the plugin, a helper process of its own).
    pub fn instantiate(&self) -> Result<Box<dyn Materializer>> {
        self.instantiate_observed(&mut |_| {})
    }

    /// [`Source::instantiate`], telling `observe` when the app is being loaded (the plugin's
    /// helpers take a second or more to start), so that a display can say so instead of
    /// showing a replay stuck at its first event.
    pub fn instantiate_observed(
        &self,
        observe: &mut dyn FnMut(crate::progress::Progress),
    ) -> Result<Box<dyn Materializer>> {
        if self.costly_to_start() {
            observe(crate::progress::Progress::LoadingApp);
        }
        Ok(match self {
            Source::Sql(defs) => Box::new(sql::SqlMaterializer::new((**defs).clone())),
            Source::LiveStore(config) => Box::new(livestore::LiveStoreMaterializer::start(config)?),
        })
    }

    /// The JSON Schemas of the events' args the definitions name, if any. The plugin needs
    /// none: the app's Effect schemas decode the args.
    pub fn event_schemas(&self) -> Result<Option<crate::validate::EventSchemas>> {
        match self {
            Source::Sql(defs) => defs.load_event_schemas(),
            Source::LiveStore(_) => Ok(None),
        }
    }

    /// Whether a materializer is worth keeping for the next corpus: the plugin's helpers take
    /// one to two seconds of CPU each to load the app, a definitions file nothing.
    pub fn costly_to_start(&self) -> bool {
        matches!(self, Source::LiveStore(_))
    }

    /// Sets how long to wait for the helper (the plugin only).
    pub fn set_timeout(&mut self, timeout: std::time::Duration) {
        if let Source::LiveStore(c) = self {
            c.timeout = timeout;
        }
    }

    /// Sets how many helper processes share the work (the plugin only), instead of as many as
    /// the log's length repays.
    pub fn set_helpers(&mut self, helpers: usize) {
        if let Source::LiveStore(c) = self {
            c.helpers = Some(helpers.max(1));
        }
    }
}
