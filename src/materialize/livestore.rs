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

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::definitions::Ddl;
use crate::error::{Error, Result};
use crate::eventlog::{Event, SeqNum};
use crate::materialize::{Materializer, Outcome, Rejection, Statement};
use crate::report::FindingClass;

/// The helper script, embedded so that nothing rehearse-specific is installed at run time.
const HELPER: &str = include_str!("livestore-helper.mjs");

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// What marks a protocol line on the helper's stdout.
const PREFIX: &str = "\u{1e}RH1 ";

/// How long rehearse waits for the helper to load the app's schema.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// How long rehearse waits for the helper by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the app's schema is and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The module that exports the app's LiveStore schema.
    pub module: PathBuf,
    /// The export's name, when it is not `schema`, `default` or the only schema exported.
    pub export: Option<String>,
    /// How long to wait for any one reply.
    pub timeout: Duration,
    /// How many helper processes share the work: exactly this many, started up front, or
    /// `None` for as many as the log's length repays ([`helpers_for`]).
    pub helpers: Option<usize>,
}

impl PluginConfig {
    /// Parses `livestore:<path>[#export]`; `None` for any other materializer spec. What follows
    /// the last `#` is an export only if it is a JavaScript identifier and the whole is not a
    /// file, so a path with a `#` in it still names its module.
    pub fn parse(spec: &str) -> Option<PluginConfig> {
        let rest = spec.strip_prefix("livestore:")?;
        let identifier = |e: &str| {
            let mut chars = e.chars();
            chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        let (module, export) = match rest.rsplit_once('#') {
            Some((m, e)) if identifier(e) && !Path::new(rest).is_file() => (m, Some(e.to_string())),
            _ => (rest, None),
        };
        Some(PluginConfig {
            module: PathBuf::from(module),
            export,
            timeout: DEFAULT_TIMEOUT,
            helpers: None,
        })
    }
}

/// At most two helpers by default: LiveStore's own code is most of the work, and two were all
/// this could be measured on (benches/replay.rs). Each needs a core; where the helper has
/// Effect remember its schemas (`memoized`; by default on Node.js 22.15 and later), one helper
/// works about as fast as rehearse applies its answers, so rehearse's own thread needs a core
/// too: on two cores a second helper made the 100,000-event store about a quarter slower
/// (9.5-9.7 s against 7.3-8.0 s), where without the memo it was 10-20% faster.
pub fn max_helpers(memoized: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let for_helpers = if memoized { cores - 1 } else { cores };
    for_helpers.clamp(1, 2)
}

/// Events a further helper must have to work on before it pays for its start: loading
/// LiveStore costs a helper 1.2–2 s of CPU and every helper warms V8 up afresh, which on the
/// 5,000-event sample made two helpers no faster than one and their start 0.2–0.9 s longer,
/// while on 100,000 events two were 10–20% faster (2 cores, Effect as installed).
const EVENTS_PER_HELPER: u64 = 20_000;

/// Events from which a log on an older Node.js (20.6 to 22.14) gets helpers that remember
/// Effect's schemas through the loader thread (REHEARSE_PLUGIN_MEMO=on), started while the
/// first works and taking over from it once loaded: their start costs about a second more, in
/// the background, and the first helper does some 20,000 events meanwhile; then each event
/// costs about half. 100,000 events on Node.js 20: 20.0-20.5 s end to end with the first
/// helper and a second as installed, 11.6-11.9 s with the memo up front.
const EVENTS_FOR_MEMO_ON: u64 = 40_000;

/// How many helpers an automatic replay of `events` events runs, with helpers that have
/// (`memoized`) or have not Effect remember its schemas.
pub fn helpers_for(events: u64, memoized: bool) -> usize {
    let wanted = 1 + events / EVENTS_PER_HELPER;
    max_helpers(memoized).min(usize::try_from(wanted).unwrap_or(usize::MAX))
}

enum Line {
    /// A message, read on the reader thread so that the replay does not wait for parsing.
    Message(Reply),
    /// A protocol line that cannot be a whole message, with the helper's progress as it was
    /// read (the helper works on, so later would name a later event).
    Garbage(String, Option<u64>),
    Stray(String),
    Closed,
}

/// A JSON array's strings.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn read_progress(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    Some(f64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as u64)
}

/// A message from the helper.
enum Reply {
    /// What the helper made of an event: its id and the outcome (or why the answer makes no
    /// sense).
    Answer(u64, std::result::Result<Outcome, String>),
    /// Any other message.
    Other(Value),
    /// A line that is not JSON: the parser's complaint and the line.
    Invalid(String, String),
}

impl Reply {
    fn parse(text: &str) -> Reply {
        match Reply::parse_json(text) {
            // A string the materializer built may hold a lone surrogate (text cut inside an
            // emoji), which JSON.stringify writes as an escape serde_json refuses; wa-sqlite
            // would bind U+FFFD in its place, and so does rehearse.
            Reply::Invalid(e, line) => match crate::js::replace_lone_surrogates(text) {
                Some(replaced) => match Reply::parse_json(&replaced) {
                    Reply::Invalid(..) => Reply::Invalid(e, line),
                    reply => reply,
                },
                None => Reply::Invalid(e, line),
            },
            reply => reply,
        }
    }

    fn parse_json(text: &str) -> Reply {
        if let Some((i, statements)) = super::wire::parse_result(text) {
            return Reply::Answer(i, Ok(Outcome::Statements(statements)));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(msg) => match (msg["type"].as_str(), msg["i"].as_u64()) {
                (Some("result" | "unknown" | "invalid-args" | "error"), Some(i)) => {
                    Reply::Answer(i, outcome(&msg))
                }
                _ => Reply::Other(msg),
            },
            Err(e) => Reply::Invalid(e.to_string(), text.to_string()),
        }
    }
}

/// The event id an answer the helper wrote names at its start (`{"type":"result","i":12,…`),
/// even when the rest of it does not parse.
fn answered_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let (kind, rest) = rest.split_once('"')?;
    if !matches!(kind, "result" | "unknown" | "invalid-args" | "error") {
        return None;
    }
    let digits = rest.strip_prefix(r#","i":"#)?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// What the helper says once the schema is loaded.
#[derive(Debug, Clone)]
pub struct SchemaInfo {
    /// `liveStoreVersion` of the app's LiveStore.
    pub livestore_version: Option<String>,
    /// The state schema hash (the number in `state<hash>@6.db`).
    pub state_schema_hash: String,
    /// Event names.
    pub events: Vec<String>,
    /// User tables and their columns.
    pub tables: indexmap::IndexMap<String, Vec<String>>,
    /// LiveStore's own `CREATE` statements for the user tables.
    pub ddl: Vec<String>,
    /// The Effect constructors the helpers remember per schema: none with
    /// `REHEARSE_PLUGIN_MEMO=off`, nor by default before Node.js 22.15.
    pub memoized: Vec<String>,
}

/// One helper process and the events sent to it.
struct Helper {
    module: PathBuf,
    timeout: Duration,
    child: Child,
    /// Lines for the helper's stdin, written by a thread of their own: a helper busy on
    /// the events before (or hung) must not block the replay in a write, where no timeout
    /// can reach it.
    outbox: std::sync::mpsc::Sender<Vec<u8>>,
    lines: Receiver<Line>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Sent and not yet answered: id, position and name of each event.
    queue: VecDeque<(u64, SeqNum, String)>,
    /// Whether it remembers Effect's schemas: what it was started with until its `ready` says.
    memoizes: bool,
    /// The Effect constructors its `ready` says it remembers.
    memoized: Vec<String>,
    /// Where the helper writes the id of the event it is materializing.
    progress: PathBuf,
    /// `REHEARSE_PLUGIN_TRACE`: a file that receives every message, one JSON line each (for
    /// debugging a helper, and for the test holding the protocol to its schema).
    trace: Option<Arc<Mutex<std::fs::File>>>,
}

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
    module: PathBuf,
    helpers: Vec<Helper>,
    /// Helpers still loading the schema.
    starting: Vec<Helper>,
    launch: Launch,
    info: SchemaInfo,
    ddl: Ddl,
    next_id: u64,
    /// Helpers started so far (each has a progress file of its own).
    spawned: usize,
    /// A long log may still get helpers started with the memo on through the loader thread
    /// ([`EVENTS_FOR_MEMO_ON`]): automatic helpers, REHEARSE_PLUGIN_MEMO unset, and a Node.js
    /// that has module.register but whose first helper did not remember Effect's schemas.
    may_turn_memo_on: bool,
    /// Helpers are now started with the memo on.
    memo_on: bool,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for LiveStoreMaterializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStoreMaterializer")
            .field("module", &self.module)
            .field("helpers", &self.helpers.len())
            .finish()
    }
}

/// The `node_modules` directory the app's imports resolve from: the nearest one above the
/// module that holds LiveStore.
fn find_node_modules(module: &Path) -> Option<PathBuf> {
    let mut dir = module.parent();
    while let Some(d) = dir {
        let nm = d.join("node_modules");
        if nm.join("@livestore/livestore").is_dir() || nm.join("@livestore/common").is_dir() {
            return Some(nm);
        }
        dir = d.parent();
    }
    None
}

fn node_binary() -> PathBuf {
    std::env::var_os("REHEARSE_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"))
}

/// Node's major and minor version.
fn node_version(node: &Path) -> Result<(u32, u32)> {
    let out = Command::new(node).arg("--version").output().map_err(|e| {
        Error::input(
            node,
            format!(
                "cannot run Node.js ({e}): the LiveStore plugin runs the app's materializers with Node.js 20 or later (set REHEARSE_NODE to use another binary)"
            ),
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Ok((major, minor))
}

/// How to start a helper.
struct Launch {
    trace: Option<Arc<Mutex<std::fs::File>>>,
    dir: PathBuf,
    node: PathBuf,
    args: Vec<String>,
    script: PathBuf,
    cwd: PathBuf,
    hello: Value,
}

impl Helper {
    /// Starts a helper and sends it the schema module; its `ready` is read later.
    /// `memo_on`: remember Effect's schemas even through Node.js 20's loader thread.
    fn spawn(
        launch: &Launch,
        n: usize,
        module: &Path,
        timeout: Duration,
        memo_on: bool,
    ) -> Result<Helper> {
        let progress = launch.dir.join(format!("progress-{n}"));
        std::fs::write(&progress, [0u8; 8]).map_err(|e| Error::io(&progress, e))?;
        let mut hello = launch.hello.clone();
        hello["progressFile"] = json!(progress);
        let mut command = Command::new(&launch.node);
        if memo_on {
            command.env("REHEARSE_PLUGIN_MEMO", "on");
        }
        let mut child = command
            .args(&launch.args)
            .arg(&launch.script)
            .current_dir(&launch.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::input(&launch.node, format!("cannot start Node.js: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let (outbox, unsent) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            // Ends when the helper stops reading (its pipe breaks) or the helper is dropped.
            for line in unsent {
                if stdin.write_all(&line).is_err() {
                    return;
                }
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        let progress_path = progress.clone();
        let trace = launch.trace.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Line::Closed);
                        return;
                    }
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        let text = text.trim_end_matches(['\n', '\r']);
                        let line = match text.strip_prefix(PREFIX) {
                            Some(m) if m.starts_with('{') && m.ends_with('}') => {
                                traced(&trace, m.as_bytes());
                                Line::Message(Reply::parse(m))
                            }
                            Some(m) => Line::Garbage(m.to_string(), read_progress(&progress_path)),
                            None => Line::Stray(text.to_string()),
                        };
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                // The app's own logging is the developer's; pass it on.
                eprintln!("livestore: {line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == 20 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let mut h = Helper {
            module: module.to_path_buf(),
            timeout,
            child,
            outbox,
            lines,
            stderr_tail,
            queue: VecDeque::new(),
            memoizes: memo_on,
            memoized: Vec::new(),
            progress,
            trace: launch.trace.clone(),
        };
        h.send(&hello)?;
        Ok(h)
    }

    /// Whether it gets a share of new events: all helpers do, unless one that remembers
    /// Effect's schemas is there (`memoizing`); then only those that do.
    fn takes_events(&self, memoizing: bool) -> bool {
        self.memoizes || !memoizing
    }

    /// Reads the helper's `ready`. Loading LiveStore and the app takes seconds, more on a busy
    /// machine, so the per-event timeout does not apply to it.
    fn ready(&mut self) -> Result<Value> {
        let per_event = self.timeout;
        self.timeout = per_event.max(STARTUP_TIMEOUT);
        let ready = self.receive_message("loading the schema");
        self.timeout = per_event;
        self.check_ready(ready?)
    }

    /// Whether a helper started while the replay runs has loaded the schema, without waiting
    /// for it.
    fn poll_ready(&mut self) -> Result<bool> {
        loop {
            let line = match self.lines.try_recv() {
                Ok(line) => line,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => Line::Closed,
            };
            if let Some(reply) = self.handle(line, "loading the schema", None)? {
                let ready = self.message(reply, "loading the schema")?;
                self.check_ready(ready)?;
                return Ok(true);
            }
        }
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
        self.memoized = strings(&ready["memoized"]);
        self.memoizes = !self.memoized.is_empty();
        Ok(ready)
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
        traced(&self.trace, &line);
        if self.outbox.send(line).is_err() {
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
    fn fail(&mut self, doing: &str, message: String) -> Error {
        let at = read_progress(&self.progress);
        self.fail_at(doing, message, at)
    }

    /// As [`Helper::fail`], naming the event the helper was on when it went wrong: it works
    /// ahead of the answers rehearse has read, so `doing` may name an earlier one.
    fn fail_at(&mut self, doing: &str, message: String, at: Option<u64>) -> Error {
        let doing = match at.and_then(|id| self.event_named(id)) {
            Some(ev) if doing.starts_with("materializing") => format!("materializing {ev}"),
            _ => doing.to_string(),
        };
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!(" (it exited: {s})"),
            _ => String::new(),
        };
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
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

    /// Ends a helper that can no longer be trusted to answer.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The next protocol message; queries are answered against `scratch` on the way.
    fn receive(&mut self, doing: &str, scratch: Option<&Connection>) -> Result<Reply> {
        loop {
            let line = match self.lines.recv_timeout(self.timeout) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    self.stop();
                    return Err(self.fail(
                        doing,
                        format!(
                            "no answer within {} s; the helper was stopped (--plugin-timeout sets the limit for each event)",
                            self.timeout.as_secs()
                        ),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => Line::Closed,
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
                let _ = self.child.wait();
                Err(self.fail(doing, "the helper exited".into()))
            }
            Line::Stray(text) => {
                if !text.trim().is_empty() {
                    eprintln!("livestore: {text}");
                }
                Ok(None)
            }
            Line::Garbage(text, at) => {
                self.stop();
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
                self.stop();
                let message = format!(
                    "the helper sent garbage ({e}): {}",
                    crate::text::truncate(&text)
                );
                // An answer names its event before anything can go wrong in it; the helper
                // has worked ahead since, so the event in flight is not the one to name.
                Err(match answered_id(&text) {
                    Some(id) => self.fail_at(doing, message, Some(id)),
                    None => self.fail(doing, message),
                })
            }
            Line::Message(answer @ Reply::Answer(..)) => Ok(Some(answer)),
            Line::Message(Reply::Other(msg)) => match msg["type"].as_str() {
                Some("query") => {
                    let reply = match scratch {
                        Some(conn) => run_query(conn, &msg),
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
    fn drain(&mut self, keep: Option<u64>) -> Result<()> {
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

    fn send_events(&mut self, events: &[(u64, &Event)]) -> Result<()> {
        let mut wire = Vec::with_capacity(events.len());
        for &(id, ev) in events {
            self.queue.push_back((id, ev.seq, ev.name.clone()));
            wire.push(super::wire::WireEvent::new(id, ev));
        }
        self.send(&super::wire::EventsMessage {
            kind: "events",
            events: wire,
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
    fn answer(
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

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.send(&json!({"type": "bye"}));
        for _ in 0..20 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
    }
}

impl LiveStoreMaterializer {
    /// Starts the helpers on the app's schema module and waits until they have loaded it.
    pub fn start(config: &PluginConfig) -> Result<LiveStoreMaterializer> {
        let module =
            std::path::absolute(&config.module).map_err(|e| Error::io(&config.module, e))?;
        if !module.is_file() {
            return Err(Error::input(
                &module,
                "the LiveStore schema module does not exist",
            ));
        }
        let Some(node_modules) = find_node_modules(&module) else {
            return Err(Error::input(
                &module,
                "no node_modules with @livestore/livestore above this module: install the app's dependencies first (npm ci)",
            ));
        };
        let node = node_binary();
        let (major, minor) = node_version(&node)?;
        let mut args: Vec<String> = Vec::new();
        let ext = module
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if matches!(ext.as_str(), "ts" | "mts" | "cts" | "tsx") {
            if node_modules.join("tsx").is_dir() {
                args.push("--import".into());
                args.push("tsx".into());
            } else if (major, minor) >= (23, 6) {
                // Type stripping is on by default.
            } else if (major, minor) >= (22, 6) {
                args.push("--experimental-strip-types".into());
            } else {
                return Err(Error::input(
                    &module,
                    format!(
                        "a TypeScript module needs the app's own tsx (npm i -D tsx) or Node.js 22.6 or later for type stripping; this is Node.js {major}.{minor} and {} has no tsx",
                        node_modules.display()
                    ),
                ));
            }
        }

        // The helper sits beside a link to the app's node_modules, so that its imports and the
        // app's resolve to the very same LiveStore modules.
        let dir = tempfile::Builder::new()
            .prefix("rehearse-livestore")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let script = dir.path().join("livestore-helper.mjs");
        std::fs::write(&script, HELPER).map_err(|e| Error::io(&script, e))?;
        std::os::unix::fs::symlink(&node_modules, dir.path().join("node_modules"))
            .map_err(|e| Error::io(dir.path(), e))?;
        let trace = match std::env::var_os("REHEARSE_PLUGIN_TRACE") {
            Some(p) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| Error::io(&p, e))?,
            ))),
            None => None,
        };
        let launch = Launch {
            trace,
            dir: dir.path().to_path_buf(),
            node,
            args,
            script,
            cwd: module.parent().unwrap_or(Path::new(".")).to_path_buf(),
            hello: json!({
                "type": "hello",
                "version": PROTOCOL_VERSION,
                "module": module,
                "exportName": config.export,
                "nodeModules": node_modules,
            }),
        };
        // All start at once (loading LiveStore takes a second), then each says it is ready.
        let mut helpers = Vec::new();
        let spawned = config.helpers.unwrap_or(1).max(1);
        for n in 0..spawned {
            helpers.push(Helper::spawn(&launch, n, &module, config.timeout, false)?);
        }
        let mut ready = Value::Null;
        for h in &mut helpers {
            ready = h.ready()?;
        }
        let info = SchemaInfo {
            livestore_version: ready["livestoreVersion"].as_str().map(str::to_string),
            state_schema_hash: ready["stateSchemaHash"].as_str().unwrap_or("").to_string(),
            events: strings(&ready["events"]),
            tables: ready["tables"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| {
                            Some((t["name"].as_str()?.to_string(), strings(&t["columns"])))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ddl: strings(&ready["ddl"]),
            memoized: strings(&ready["memoized"]),
        };
        let ddl = Ddl::Sql {
            text: info.ddl.iter().map(|s| format!("{s};\n")).collect(),
            source: module.clone(),
        };
        let may_turn_memo_on = config.helpers.is_none()
            && std::env::var_os("REHEARSE_PLUGIN_MEMO").is_none()
            && (major, minor) >= (20, 6)
            && info.memoized.is_empty();
        Ok(LiveStoreMaterializer {
            config: config.clone(),
            module,
            helpers,
            starting: Vec::new(),
            launch,
            info,
            ddl,
            next_id: 0,
            spawned,
            may_turn_memo_on,
            memo_on: false,
            _dir: dir,
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

    /// How many helpers a replay of `events` events runs: as many as asked for, or as many as
    /// the log's length repays with these helpers.
    pub fn helpers_for(&self, events: u64) -> usize {
        self.config
            .helpers
            .unwrap_or_else(|| helpers_for(events, self.memoizing()))
    }

    /// Whether a helper that remembers Effect's schemas works or is starting: those that do
    /// not then stop taking events.
    fn memoizing(&self) -> bool {
        self.helpers
            .iter()
            .chain(&self.starting)
            .any(|h| h.memoizes)
    }

    fn spawn(&mut self) -> Result<()> {
        let h = Helper::spawn(
            &self.launch,
            self.spawned,
            &self.module,
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
    pub fn export_schemas(&mut self) -> Result<Value> {
        let h = &mut self.helpers[0];
        h.drain(None)?;
        h.send(&json!({"type": "export-schemas"}))?;
        let reply = h.receive_message("exporting the schemas")?;
        if reply["type"] != "schemas" {
            return Err(h.fail(
                "exporting the schemas",
                format!("expected `schemas`, got {reply}"),
            ));
        }
        Ok(reply)
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
        if self.may_turn_memo_on && events >= EVENTS_FOR_MEMO_ON {
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
        for _ in sharing..helpers_for(events, memoizing) {
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
            .retain(|h| h.takes_events(memoizing) || !h.queue.is_empty());
        // No draining here: the events announced before are still to be asked about.
        let sharing: Vec<usize> = (0..self.helpers.len())
            .filter(|&h| self.helpers[h].takes_events(memoizing))
            .collect();
        let mut shares: Vec<Vec<(u64, &Event)>> = vec![Vec::new(); sharing.len()];
        for (k, ev) in events.iter().enumerate() {
            shares[k % sharing.len()].push((self.next_id, ev));
            self.next_id += 1;
        }
        for (&h, share) in sharing.iter().zip(&shares) {
            if !share.is_empty() {
                self.helpers[h].send_events(share)?;
            }
        }
        Ok(())
    }

    fn materialize(
        &mut self,
        event: &Event,
        _args: &Value,
        scratch: &Connection,
    ) -> Result<Outcome> {
        let is_event =
            |&&(_, seq, ref name): &&(u64, SeqNum, String)| seq == event.seq && *name == event.name;
        // Asked in the order announced, the event heads its helper's queue, unless events
        // before it were skipped.
        let found =
            self.helpers
                .iter()
                .enumerate()
                .find_map(|(h, helper)| helper.queue.front().filter(is_event).map(|e| (h, e.0)))
                .or_else(|| {
                    self.helpers.iter().enumerate().find_map(|(h, helper)| {
                        helper.queue.iter().find(is_event).map(|e| (h, e.0))
                    })
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

/// What [`export_schema`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct ExportedSchema {
    /// Event schemas written.
    pub events: usize,
    /// Client documents listed.
    pub client_documents: usize,
}

/// Writes the app's event args schemas (`events/<name>.json`), state DDL (`state.sql`) and
/// client documents (`client-documents.json`) into `out`, each file atomically.
pub fn export_schema(config: &PluginConfig, out: &Path) -> Result<ExportedSchema> {
    let mut config = config.clone();
    config.helpers = Some(1);
    let mut m = LiveStoreMaterializer::start(&config)?;
    let schemas = m.export_schemas()?;
    let events_dir = out.join("events");
    std::fs::create_dir_all(&events_dir).map_err(|e| Error::io(&events_dir, e))?;
    let pretty = |v: &Value| {
        let mut text = serde_json::to_string_pretty(v).expect("JSON serializes");
        text.push('\n');
        text
    };
    let mut events = 0;
    if let Some(map) = schemas["events"].as_object() {
        for (name, schema) in map {
            if name.contains('/') || name.starts_with('.') {
                return Err(Error::input(
                    &m.module,
                    format!("the event name {name:?} cannot be a file name"),
                ));
            }
            crate::files::write_atomic(
                &events_dir.join(format!("{name}.json")),
                pretty(schema).as_bytes(),
            )?;
            events += 1;
        }
    }
    let ddl: String = m.info.ddl.iter().map(|s| format!("{s};\n")).collect();
    crate::files::write_atomic(&out.join("state.sql"), ddl.as_bytes())?;
    let docs = schemas["clientDocuments"].clone();
    crate::files::write_atomic(&out.join("client-documents.json"), pretty(&docs).as_bytes())?;
    Ok(ExportedSchema {
        events,
        client_documents: docs.as_array().map_or(0, Vec::len),
    })
}

/// Appends a message to the `REHEARSE_PLUGIN_TRACE` file.
fn traced(trace: &Option<Arc<Mutex<std::fs::File>>>, line: &[u8]) {
    if let Some(t) = trace
        && let Ok(mut f) = t.lock()
    {
        let _ = f.write_all(line);
        if !line.ends_with(b"\n") {
            let _ = f.write_all(b"\n");
        }
    }
}

#[cfg(test)]
pub(crate) fn outcome_for_test(reply: &Value) -> std::result::Result<Outcome, String> {
    outcome(reply)
}

/// An answer as the replay's outcome.
fn outcome(reply: &Value) -> std::result::Result<Outcome, String> {
    match reply["type"].as_str() {
        Some("unknown") => Ok(Outcome::Unknown),
        Some("invalid-args") => {
            let issues = reply["issues"].as_array().cloned().unwrap_or_default();
            let describe = |issue: &Value| {
                let path: String = issue["path"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .map(|seg| match seg {
                                Value::Number(n) => format!("[{n}]"),
                                Value::String(s) => format!(".{s}"),
                                other => format!(".{other}"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "args{path}: {}",
                    issue["message"].as_str().unwrap_or("does not decode")
                )
            };
            let first = issues
                .first()
                .map(describe)
                .unwrap_or_else(|| "the args do not decode".into());
            let more = match issues.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            Ok(Outcome::Rejected(Rejection {
                class: FindingClass::InvalidArgs,
                message: format!(
                    "{first}{more}: the args no longer decode with the event's schema; not replayed"
                ),
            }))
        }
        Some("error") => Ok(Outcome::Rejected(Rejection {
            class: FindingClass::MaterializerError,
            message: format!(
                "the materializer threw: {}",
                reply["message"].as_str().unwrap_or("")
            ),
        })),
        Some("result") => {
            let mut statements = Vec::new();
            for st in reply["statements"].as_array().into_iter().flatten() {
                let sql = st["sql"]
                    .as_str()
                    .ok_or("a statement without SQL")?
                    .to_string();
                statements.push(Statement {
                    sql,
                    binds: super::wire::binds(&st["binds"])?,
                    line: None,
                    target: None,
                });
            }
            Ok(Outcome::Statements(statements))
        }
        _ => Err(format!("unexpected answer {reply}")),
    }
}

/// Runs a materializer's `ctx.query` on the scratch database.
fn run_query(conn: &Connection, msg: &Value) -> Value {
    let result = (|| -> std::result::Result<Vec<Value>, String> {
        let sql = msg["sql"].as_str().ok_or("a query without SQL")?;
        let binds = super::wire::binds(&msg["binds"])?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        crate::materialize::binds::bind(&mut stmt, &binds).map_err(|e| e.to_string())?;
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                use rusqlite::types::ValueRef;
                let v = match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(x) => json!(x),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => {
                        json!({"$blob": base64::engine::general_purpose::STANDARD.encode(b)})
                    }
                };
                obj.insert(name.clone(), v);
            }
            out.push(Value::Object(obj));
        }
        Ok(out)
    })();
    match result {
        Ok(rows) => json!({"type": "rows", "rows": rows}),
        Err(message) => json!({"type": "query-error", "message": message}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::BindValue;
    use crate::materialize::Binds;

    #[test]
    fn a_broken_answer_still_names_its_event() {
        assert_eq!(
            answered_id(r#"{"type":"result","i":12,"statements":[{"sql":"\ud83d"#),
            Some(12)
        );
        assert_eq!(
            answered_id(r#"{"type":"error","i":0,"message":"x"}"#),
            Some(0)
        );
        assert_eq!(answered_id(r#"{"type":"ready","i":3}"#), None);
        assert_eq!(answered_id(r#"{"type": "result", "i": 3}"#), None);
        assert_eq!(answered_id(r#"{"type":"result","i":"#), None);
    }

    #[test]
    fn specs_name_the_module_and_optionally_its_export() {
        let c = PluginConfig::parse("livestore:app/schema.ts").unwrap();
        assert_eq!(c.module, PathBuf::from("app/schema.ts"));
        assert_eq!(c.export, None);
        let c = PluginConfig::parse("livestore:app/schema.mjs#appSchema").unwrap();
        assert_eq!(c.export.as_deref(), Some("appSchema"));
        assert!(PluginConfig::parse("app/materializers.toml").is_none());
        // A `#` in a directory name, or in a file that exists, is part of the path.
        let c = PluginConfig::parse("livestore:apps/#1 ü/schema.ts").unwrap();
        assert_eq!(c.module, PathBuf::from("apps/#1 ü/schema.ts"));
        assert_eq!(c.export, None);
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("schema#v2");
        std::fs::write(&odd, "").unwrap();
        let c = PluginConfig::parse(&format!("livestore:{}", odd.display())).unwrap();
        assert_eq!((c.module, c.export), (odd, None));
    }

    #[test]
    fn short_logs_get_one_helper_and_long_ones_as_many_as_the_cores_allow() {
        for memoized in [false, true] {
            assert_eq!(helpers_for(0, memoized), 1);
            assert_eq!(helpers_for(5_000, memoized), 1);
            assert_eq!(helpers_for(EVENTS_PER_HELPER - 1, memoized), 1);
            assert_eq!(helpers_for(100_000, memoized), max_helpers(memoized));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Each helper gets a core; so does rehearse where a helper keeps pace with it.
        assert_eq!(helpers_for(EVENTS_PER_HELPER, false), cores.min(2));
        assert_eq!(
            helpers_for(EVENTS_PER_HELPER, true),
            (cores - 1).clamp(1, 2)
        );
        assert_eq!(
            PluginConfig::parse("livestore:a.mjs").unwrap().helpers,
            None
        );
    }

    #[test]
    fn bind_values_keep_wa_sqlite_types() {
        let b = crate::materialize::wire::binds(&json!({"positional": [["i", 1], ["f", 1735787045678.0], ["s", "x"], ["n"], ["u"], ["I", "9007199254740993"], ["b", "AQI="]]}))
            .unwrap();
        assert_eq!(
            b,
            Binds::Positional(vec![
                BindValue::Integer(1),
                BindValue::Real(1735787045678.0),
                BindValue::Text("x".into()),
                BindValue::Null,
                BindValue::Unbound,
                BindValue::Integer(9007199254740993),
                BindValue::Blob(vec![1, 2]),
            ])
        );
        let b = crate::materialize::wire::binds(&json!({"named": {"$id": ["s", "a"]}})).unwrap();
        assert_eq!(
            b,
            Binds::Named(vec![("$id".into(), BindValue::Text("a".into()))])
        );
    }
}
