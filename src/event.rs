//! What an event is: its place in the log and its row, as LiveStore 0.4 writes them. Apart from
//! the reading of the log (`eventlog`), so that what evaluates an event's definition (the
//! expressions, the report) need not depend on SQLite.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An event's position in the log (LiveStore's `EventSequenceNumber.Client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeqNum {
    /// Global sequence number; shared by client-only events with the synced event before them.
    pub global: i64,
    /// 0 for synced events, 1, 2, … for client-only events after a global one.
    pub client: i64,
    /// Rebase bookkeeping; not used for ordering.
    pub rebase_generation: i64,
}

impl SeqNum {
    /// LiveStore's ROOT `(0, 0, 0)`: the parent of the first event, never a row itself.
    pub const ROOT: SeqNum = SeqNum {
        global: 0,
        client: 0,
        rebase_generation: 0,
    };

    /// The `(global, client)` pair that orders the log.
    pub fn pair(&self) -> (i64, i64) {
        (self.global, self.client)
    }
}

impl fmt::Display for SeqNum {
    /// LiveStore's notation: `e<global>[.<client>][r<generation>]`, e.g. `e5.1r1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.global)?;
        if self.client != 0 {
            write!(f, ".{}", self.client)?;
        }
        if self.rebase_generation != 0 {
            write!(f, "r{}", self.rebase_generation)?;
        }
        Ok(())
    }
}

/// One row of the `eventlog` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the log.
    pub seq: SeqNum,
    /// The parent event (ROOT for the first).
    pub parent: SeqNum,
    /// Event definition name, e.g. `v1.TodoCreated` or `uiStateSet`.
    pub name: String,
    /// `JSON.stringify` of the Effect-encoded args.
    pub args_json: String,
    /// Originating client.
    pub client_id: String,
    /// Originating session.
    pub session_id: String,
    /// Hash of the writer's event schema; -1 when the writer did not know the event.
    pub schema_hash: i64,
    /// Effect `Option` of backend-specific sync metadata, as JSON.
    pub sync_metadata_json: String,
}

impl Event {
    /// Whether this is a client-only event (never synced).
    pub fn is_client_only(&self) -> bool {
        self.seq.client > 0
    }
}

/// A row as read from the log.
#[derive(Debug, Clone)]
pub enum LogRow {
    /// A well-formed event.
    Event(Event),
    /// A row whose columns do not have the types LiveStore writes.
    Malformed {
        /// The sequence number, where it could be read.
        seq: Option<SeqNum>,
        /// The event name, where it could be read.
        name: Option<String>,
        /// What is wrong with the row.
        problem: String,
    },
}
