//! The app's own materializers, run by the app's own LiveStore in a Node.js helper.
//!
//! A gate on materializer changes is worthless if it does not run the changed code, so this
//! materializer asks LiveStore itself: a helper script shipped inside rehearse
//! (`livestore-helper.mjs`) loads the app's schema module with the app's installed
//! `@livestore/*` packages and answers each event with exactly the statements LiveStore's
//! leader would run (`getExecStatementsFromMaterializer`); rehearse executes them as it does
//! the SQL path's. The helper's `ctx.query` reads rehearse's scratch database through the
//! pipe, as it stands before the event.
//!
//! Events are sent a chunk at a time ([`Materializer::lookahead`]) and answered as a stream, so
//! the common case costs no round trip per event; a query is answered in the middle of that
//! stream, after the events before it were applied, because replies are read only when the
//! replay asks for the event they belong to.
//!
//! The helper never hangs rehearse: every reply is awaited with a timeout, and a helper that
//! dies, hangs or writes garbage is an error naming the event in flight.
//!
//! This module holds the materializer, which owns the helpers and decides which of them
//! answers what; below it, one module per concern, none importing its parent: `config` (the
//! spec), `node` and `launch` (what a helper needs to start), `process` (the OS process),
//! `helper` (the conversation with one), `protocol` and `wire` (the messages), `schedule`
//! (how many helpers, which events each) and `schema` (what the app's schema says).

mod config;
mod helper;
mod launch;
mod node;
mod process;
mod protocol;
mod schedule;
mod schema;
mod wire;

use std::path::Path;

use rusqlite::Connection;
use serde_json::Value;

use crate::definitions::Ddl;
use crate::error::Result;
use crate::eventlog::Event;
use crate::materialize::{Materializer, Outcome};

pub use config::{Memo, PluginConfig};
use helper::Helper;
use launch::Launch;
pub use schema::{AppClientDocument, AppSchema, ExportedSchema, SchemaInfo};

/// The app's materializers, through one or more helpers. Several helpers share a chunk of
/// events round-robin; each still answers `ctx.query` against the state as it stands before
/// its event, because rehearse reads a helper's answers only when the replay reaches them.
///
/// Unless told how many, one helper starts and the replay begins with it; more start once
/// the log is known to be long enough to repay them, and join when they have loaded the
/// schema, so no one waits for their start. Helpers that remember Effect's schemas take over
/// from those that do not: the latter take no more events once the former have joined.
pub struct LiveStoreMaterializer {
    config: PluginConfig,
    helpers: Vec<Helper>,
    /// Helpers still loading the schema.
    starting: Vec<Helper>,
    /// After the helpers: its directory goes once they are gone.
    launch: Launch,
    info: SchemaInfo,
    ddl: Ddl,
    next_id: u64,
    /// Helpers started so far (each has a progress file of its own).
    spawned: usize,
    /// A long log may still get helpers started with the memo on through the loader thread
    /// ([`schedule::may_turn_memo_on`]).
    may_turn_memo_on: bool,
    /// Helpers are now started with the memo on.
    memo_on: bool,
}

impl std::fmt::Debug for LiveStoreMaterializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStoreMaterializer")
            .field("module", &self.launch.module)
            .field("helpers", &self.helpers.len())
            .finish()
    }
}

impl LiveStoreMaterializer {
    /// Starts the helpers on the app's schema module and waits until they have loaded it.
    pub fn start(config: &PluginConfig) -> Result<LiveStoreMaterializer> {
        let launch = Launch::prepare(config)?;
        // All start at once (loading LiveStore takes a second), then each says it is ready.
        let mut helpers = Vec::new();
        let spawned = config.helpers.unwrap_or(1).max(1);
        for n in 0..spawned {
            helpers.push(Helper::start(&launch, n, config.timeout, false)?);
        }
        let mut ready = Value::Null;
        for h in &mut helpers {
            ready = h.ready()?;
        }
        let info = SchemaInfo::from_ready(&ready);
        let ddl = Ddl::Sql {
            text: info.ddl_text(),
            source: launch.module.clone(),
        };
        let may_turn_memo_on = schedule::may_turn_memo_on(
            config.helpers.is_none(),
            config.memo,
            launch.node_version,
            !info.memoized.is_empty(),
        );
        Ok(LiveStoreMaterializer {
            config: config.clone(),
            helpers,
            starting: Vec::new(),
            launch,
            info,
            ddl,
            next_id: 0,
            spawned,
            may_turn_memo_on,
            memo_on: false,
        })
    }

    /// Helpers that have loaded the schema since they were started, and are not yet sharing
    /// the work, start sharing it.
    fn join_started(&mut self) -> Result<()> {
        let mut k = 0;
        while k < self.starting.len() {
            if self.starting[k].poll_ready()? {
                let h = self.starting.remove(k);
                if h.memoizes {
                    self.info.memoized = h.memoized.clone();
                }
                self.helpers.push(h);
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    /// How many helpers share the work now (after taking in those that have loaded the
    /// schema), and how many are still starting.
    pub fn helpers_running(&mut self) -> Result<(usize, usize)> {
        self.join_started()?;
        Ok((self.helpers.len(), self.starting.len()))
    }

    /// Whether a helper that remembers Effect's schemas works or is starting: those that do
    /// not then stop taking events.
    fn memoizing(&self) -> bool {
        self.helpers
            .iter()
            .chain(&self.starting)
            .any(|h| h.memoizes)
    }

    /// Starts one more helper, which joins once it has loaded the schema.
    fn spawn(&mut self) -> Result<()> {
        let h = Helper::start(
            &self.launch,
            self.spawned,
            self.config.timeout,
            self.memo_on,
        )?;
        self.spawned += 1;
        self.starting.push(h);
        Ok(())
    }

    /// What the helper reported about the schema.
    pub fn info(&self) -> &SchemaInfo {
        &self.info
    }

    /// The JSON Schema of every event's encoded args, and the client documents.
    fn export_schemas(&mut self) -> Result<Value> {
        self.helpers[0].export_schemas()
    }
}

impl Materializer for LiveStoreMaterializer {
    fn describe(&self) -> String {
        format!("livestore:{}", self.config.module.display())
    }

    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>> {
        self.info.tables.clone()
    }

    fn prepare(&mut self, _scratch: &Connection) -> Result<()> {
        Ok(())
    }

    fn begin_log(&mut self) -> Result<()> {
        // Events announced for a log whose replay stopped early (an error, `--until`) share
        // sequence numbers and names with this one's: their answers are read and dropped.
        for helper in &mut self.helpers {
            helper.drain(None)?;
        }
        Ok(())
    }

    fn expect_events(&mut self, events: u64) -> Result<()> {
        if self.config.helpers.is_some() {
            return Ok(());
        }
        if self.may_turn_memo_on && schedule::repays_memo_on(events) {
            self.may_turn_memo_on = false;
            self.memo_on = true;
        }
        // Those that will share the work: helpers as installed retire once one that remembers
        // Effect's schemas is there.
        let memoizing = self.memoizing() || self.memo_on;
        let sharing = self
            .helpers
            .iter()
            .chain(&self.starting)
            .filter(|h| h.takes_events(memoizing))
            .count();
        for _ in sharing..schedule::helpers_for(events, memoizing) {
            self.spawn()?;
        }
        Ok(())
    }

    fn lookahead(&mut self, events: &[&Event]) -> Result<()> {
        // Helpers that have loaded the schema take their share from this chunk on.
        self.join_started()?;
        // Once one that remembers Effect's schemas is there, those that do not take no more
        // events, and end when they have answered theirs.
        let memoizing = self.helpers.iter().any(|h| h.memoizes);
        self.helpers
            .retain(|h| h.takes_events(memoizing) || !h.is_idle());
        // No draining here: the events announced before are still to be asked about.
        let sharing: Vec<usize> = (0..self.helpers.len())
            .filter(|&h| self.helpers[h].takes_events(memoizing))
            .collect();
        let shares = schedule::deal(events, sharing.len(), &mut self.next_id);
        for (&h, share) in sharing.iter().zip(&shares) {
            if !share.is_empty() {
                self.helpers[h].send_events(share)?;
            }
        }
        Ok(())
    }

    fn writes_while_materializing(&self) -> bool {
        true
    }

    fn materialize(
        &mut self,
        event: &Event,
        _args: &Value,
        scratch: &Connection,
    ) -> Result<Outcome> {
        // Asked in the order announced, the event heads its helper's queue, unless events
        // before it were skipped.
        let found = self
            .helpers
            .iter()
            .enumerate()
            .find_map(|(h, helper)| helper.next_is(event).map(|id| (h, id)))
            .or_else(|| {
                self.helpers
                    .iter()
                    .enumerate()
                    .find_map(|(h, helper)| helper.holds(event).map(|id| (h, id)))
            });
        let (h, id) = match found {
            Some(found) => found,
            None => {
                for helper in &mut self.helpers {
                    helper.drain(None)?;
                }
                let id = self.next_id;
                self.next_id += 1;
                self.helpers[0].send_events(&[(id, event)])?;
                (0, id)
            }
        };
        let doing = format!("materializing {} {}", event.seq, event.name);
        let helper = &mut self.helpers[h];
        helper
            .answer(id, &doing, scratch)?
            .map_err(|m| helper.fail(&doing, m))
    }
}

/// What the app's schema says about its events, tables and client documents.
pub fn describe_app(config: &PluginConfig) -> Result<AppSchema> {
    let mut config = config.clone();
    config.helpers = Some(1);
    let mut m = LiveStoreMaterializer::start(&config)?;
    let schemas = m.export_schemas()?;
    Ok(AppSchema::from_answer(&schemas, &m.info))
}

/// Writes the app's event args schemas (`events/<name>.json`), state DDL (`state.sql`) and
/// client documents (`client-documents.json`) into `out`, each file atomically.
pub fn export_schema(config: &PluginConfig, out: &Path) -> Result<ExportedSchema> {
    let mut config = config.clone();
    config.helpers = Some(1);
    let mut m = LiveStoreMaterializer::start(&config)?;
    let schemas = m.export_schemas()?;
    schema::write_export(&schemas, &m.info, &m.launch.module, out)
}
