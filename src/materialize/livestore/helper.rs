//! The conversation with one helper: the events sent to it and not yet answered, its
//! answers read in order, its `ctx.query`s answered on the way, and every way it can go wrong
//! turned into an error naming the event in flight. Every wait is bounded, so a helper that
//! dies, hangs or writes garbage never hangs rehearse.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};

use super::launch::Launch;
use super::process::{Line, Process};
use super::protocol::{self, PROTOCOL_VERSION, Reply};
use super::wire;
use crate::error::{Error, Result};
use crate::eventlog::{Event, SeqNum};
use crate::materialize::Outcome;

/// How long rehearse waits for the helper to load the app's schema.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// One helper process and the events sent to it.
pub(super) struct Helper {
    module: PathBuf,
    timeout: Duration,
    process: Process,
    /// Sent and not yet answered: id, position and name of each event.
    queue: VecDeque<(u64, SeqNum, String)>,
    /// Whether it remembers Effect's schemas: what it was started with until its `ready` says.
    pub(super) memoizes: bool,
    /// The Effect constructors its `ready` says it remembers.
    pub(super) memoized: Vec<String>,
}

impl Helper {
    /// Starts the `n`th helper and sends it the schema module; its `ready` is read later.
    /// `memo_on`: remember Effect's schemas even through Node.js 20's loader thread.
    pub(super) fn start(
        launch: &Launch,
        n: usize,
        timeout: Duration,
        memo_on: bool,
    ) -> Result<Helper> {
        let progress = launch.progress_file(n);
        std::fs::write(&progress, [0u8; 8]).map_err(|e| Error::io(&progress, e))?;
        let hello = launch.hello(&progress);
        let process = Process::spawn(launch.command(memo_on), progress, launch.trace.clone())?;
        let mut h = Helper {
            module: launch.module.clone(),
            timeout,
            process,
            queue: VecDeque::new(),
            memoizes: memo_on,
            memoized: Vec::new(),
        };
        h.send(&hello)?;
        Ok(h)
    }

    /// Whether it gets a share of new events: all helpers do, unless one that remembers
    /// Effect's schemas is there (`memoizing`); then only those that do.
    pub(super) fn takes_events(&self, memoizing: bool) -> bool {
        self.memoizes || !memoizing
    }

    /// Whether every event sent to it has been answered.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// The id `event` was sent under, if it is the next this helper answers.
    pub(super) fn next_is(&self, event: &Event) -> Option<u64> {
        self.queue
            .front()
            .filter(|e| is_event(e, event))
            .map(|e| e.0)
    }

    /// The id `event` was sent under, if it is anywhere in this helper's queue (events
    /// before it were skipped).
    pub(super) fn holds(&self, event: &Event) -> Option<u64> {
        self.queue.iter().find(|e| is_event(e, event)).map(|e| e.0)
    }

    /// Reads the helper's `ready`. Loading LiveStore and the app takes seconds, more on a busy
    /// machine, so the per-event timeout does not apply to it.
    pub(super) fn ready(&mut self) -> Result<Value> {
        let per_event = self.timeout;
        self.timeout = per_event.max(STARTUP_TIMEOUT);
        let ready = self.receive_message("loading the schema");
        self.timeout = per_event;
        self.check_ready(ready?)
    }

    /// Whether a helper started while the replay runs has loaded the schema, without waiting
    /// for it.
    pub(super) fn poll_ready(&mut self) -> Result<bool> {
        while let Some(line) = self.process.try_line() {
            if let Some(reply) = self.handle(line, "loading the schema", None)? {
                let ready = self.message(reply, "loading the schema")?;
                self.check_ready(ready)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn check_ready(&mut self, ready: Value) -> Result<Value> {
        if ready["type"] != "ready" {
            return Err(self.fail(
                "loading the schema",
                format!("expected `ready`, got {ready}"),
            ));
        }
        if ready["version"].as_u64() != Some(PROTOCOL_VERSION) {
            return Err(self.fail(
                "loading the schema",
                format!("the helper speaks protocol {}", ready["version"]),
            ));
        }
        self.memoized = protocol::strings(&ready["memoized"]);
        self.memoizes = !self.memoized.is_empty();
        Ok(ready)
    }

    /// The JSON Schema of every event's encoded args, and the client documents.
    pub(super) fn export_schemas(&mut self) -> Result<Value> {
        self.drain(None)?;
        self.send(&json!({"type": "export-schemas"}))?;
        let reply = self.receive_message("exporting the schemas")?;
        if reply["type"] != "schemas" {
            return Err(self.fail(
                "exporting the schemas",
                format!("expected `schemas`, got {reply}"),
            ));
        }
        Ok(reply)
    }

    /// The next message, which must not be an answer about an event.
    fn receive_message(&mut self, doing: &str) -> Result<Value> {
        let reply = self.receive(doing, None)?;
        self.message(reply, doing)
    }

    fn message(&mut self, reply: Reply, doing: &str) -> Result<Value> {
        match reply {
            Reply::Other(msg) => Ok(msg),
            Reply::Answer(i, _) => Err(self.fail(
                doing,
                format!("an answer about event {i} where none was asked for"),
            )),
            Reply::Invalid(..) => unreachable!("receive turns invalid lines into errors"),
        }
    }

    fn send(&mut self, msg: &impl serde::Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(msg).expect("a message serializes");
        line.push(b'\n');
        if !self.process.send(line) {
            return Err(self.fail("sending to the helper", "its stdin is closed".into()));
        }
        Ok(())
    }

    /// The event with this id, as a person reads it.
    fn event_named(&self, id: u64) -> Option<String> {
        self.queue
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, seq, name)| format!("{seq} {name}"))
    }

    /// An error about the helper, with what it last wrote on stderr.
    pub(super) fn fail(&mut self, doing: &str, message: String) -> Error {
        let at = self.process.progress();
        self.fail_at(doing, message, at)
    }

    /// As [`Helper::fail`], naming the event the helper was on when it went wrong: it works
    /// ahead of the answers rehearse has read, so `doing` may name an earlier one.
    fn fail_at(&mut self, doing: &str, message: String, at: Option<u64>) -> Error {
        let doing = match at.and_then(|id| self.event_named(id)) {
            Some(ev) if doing.starts_with("materializing") => format!("materializing {ev}"),
            _ => doing.to_string(),
        };
        let status = match self.process.exit_status() {
            Some(s) => format!(" (it exited: {s})"),
            None => String::new(),
        };
        let tail = self.process.last_words();
        Error::Plugin {
            module: self.module.clone(),
            message: format!(
                "{doing}: {message}{status}{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("; its last words on stderr:\n  {}", tail.join("\n  "))
                }
            ),
        }
    }

    /// The next protocol message; queries are answered against `scratch` on the way.
    fn receive(&mut self, doing: &str, scratch: Option<&Connection>) -> Result<Reply> {
        loop {
            let Some(line) = self.process.next_line(self.timeout) else {
                self.process.stop();
                return Err(self.fail(
                    doing,
                    format!(
                        "no answer within {} s; the helper was stopped (--plugin-timeout sets the limit for each event)",
                        self.timeout.as_secs()
                    ),
                ));
            };
            if let Some(reply) = self.handle(line, doing, scratch)? {
                return Ok(reply);
            }
        }
    }

    /// What a line from the helper means: a reply, nothing more to say (the app's own output,
    /// passed on; a query, answered against `scratch`), or an error.
    fn handle(
        &mut self,
        line: Line,
        doing: &str,
        scratch: Option<&Connection>,
    ) -> Result<Option<Reply>> {
        match line {
            Line::Closed => {
                self.process.reap();
                Err(self.fail(doing, "the helper exited".into()))
            }
            Line::Stray(text) => {
                if !text.trim().is_empty() {
                    eprintln!("livestore: {text}");
                }
                Ok(None)
            }
            Line::Garbage(text, at) => {
                self.process.stop();
                // Something below JavaScript wrote to the helper's stdout (the helper keeps
                // JavaScript's own writes off it); the helper was on `at` when it was read, so
                // the culprit is that event or one shortly before.
                let near = at
                    .and_then(|id| self.event_named(id))
                    .map(|ev| format!(" at or shortly before {ev}"))
                    .unwrap_or_default();
                Err(self.fail_at(
                    "reading the helper's answers",
                    format!(
                        "garbage on the protocol stream{near}: {}",
                        crate::text::truncate(&text)
                    ),
                    None,
                ))
            }
            Line::Message(Reply::Invalid(e, text)) => {
                self.process.stop();
                let message = format!(
                    "the helper sent garbage ({e}): {}",
                    crate::text::truncate(&text)
                );
                // An answer names its event before anything can go wrong in it; the helper
                // has worked ahead since, so the event in flight is not the one to name.
                Err(match protocol::answered_id(&text) {
                    Some(id) => self.fail_at(doing, message, Some(id)),
                    None => self.fail(doing, message),
                })
            }
            Line::Message(answer @ Reply::Answer(..)) => Ok(Some(answer)),
            Line::Message(Reply::Other(msg)) => match msg["type"].as_str() {
                Some("query") => {
                    let reply = match scratch {
                        Some(conn) => protocol::run_query(conn, &msg),
                        None => {
                            json!({"type": "query-error", "message": "no database to query here"})
                        }
                    };
                    self.send(&reply)?;
                    Ok(None)
                }
                Some("fatal") => {
                    let m = msg["message"].as_str().unwrap_or("").to_string();
                    Err(self.fail(doing, m))
                }
                _ => Ok(Some(Reply::Other(msg))),
            },
        }
    }

    /// Reads and discards the answers to events sent but never asked about, up to (not
    /// including) `keep`, or all of them.
    pub(super) fn drain(&mut self, keep: Option<u64>) -> Result<()> {
        while let Some(&(id, seq, ref name)) = self.queue.front() {
            if Some(id) == keep {
                return Ok(());
            }
            let doing = format!("materializing {seq} {name}");
            // Nobody asks about this event any more (a bisect or an `--until` stopped early).
            let _unused = self.answer_to(id, &doing, None)?;
            self.queue.pop_front();
        }
        Ok(())
    }

    /// Sends events under their ids; their answers are read when the replay asks for them.
    pub(super) fn send_events(&mut self, events: &[(u64, &Event)]) -> Result<()> {
        let mut out = Vec::with_capacity(events.len());
        for &(id, ev) in events {
            self.queue.push_back((id, ev.seq, ev.name.clone()));
            out.push(wire::WireEvent::new(id, ev));
        }
        self.send(&wire::EventsMessage {
            kind: "events",
            events: out,
        })
    }

    /// The next message, which must be the answer about event `id`.
    fn answer_to(
        &mut self,
        id: u64,
        doing: &str,
        scratch: Option<&Connection>,
    ) -> Result<std::result::Result<Outcome, String>> {
        match self.receive(doing, scratch)? {
            Reply::Answer(i, outcome) if i == id => Ok(outcome),
            Reply::Answer(i, _) => Err(self.fail(
                doing,
                format!("answer out of order: about event {i}, expected {id}"),
            )),
            Reply::Other(msg) => Err(self.fail(
                doing,
                format!(
                    "expected the answer about event {id}, got {}",
                    crate::text::truncate(&msg.to_string())
                ),
            )),
            Reply::Invalid(..) => unreachable!("receive turns invalid lines into errors"),
        }
    }

    /// The answer for event `id`, which must be in this helper's queue.
    pub(super) fn answer(
        &mut self,
        id: u64,
        doing: &str,
        scratch: &Connection,
    ) -> Result<std::result::Result<Outcome, String>> {
        self.drain(Some(id))?;
        let outcome = self.answer_to(id, doing, Some(scratch))?;
        self.queue.pop_front();
        Ok(outcome)
    }
}

/// Whether a queued event is `event`: the same position and name (ids are rehearse's own).
fn is_event(&(_, seq, ref name): &(u64, SeqNum, String), event: &Event) -> bool {
    seq == event.seq && *name == event.name
}
