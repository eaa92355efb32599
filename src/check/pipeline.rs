//! The check on both cores: the replay on this thread, and on another everything that follows
//! from each event's changes, in log order: the comparison with the changeset LiveStore
//! recorded for it, the root causes it follows ([`Causes`] is order-dependent), and the index
//! of which event last wrote each row.
//!
//! The replay hands each event's captured changes over by value, in batches, through a bounded
//! channel: when the other side falls behind, the replay waits (so memory stays bounded by the
//! channel, not the log), and the order of everything it produces is the log's, whatever the
//! timing. The other thread reads LiveStore's recorded changesets through a connection of its
//! own, opened read-only exactly as the first.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::{Connection, OpenFlags};

use crate::compare::causes::Causes;
use crate::error::{Error, Result};
use crate::eventlog::Event;
use crate::materialize::Materializer;
use crate::replay::changes::ColumnNames;
use crate::replay::recorded::{self, ChangesetCheck};
use crate::replay::setup::Setup;
use crate::replay::writers::{Writer, WriterIndex};
use crate::replay::{self, Done, ReplayOptions, Replayed, Step};
use crate::report::ChangesetStats;
use crate::sqlite::Scratch;

/// Events handed over at a time: enough to make the hand-over's cost vanish, few enough that
/// the events in flight weigh little.
const BATCH: usize = 128;
/// Batches in flight before the replay waits.
const IN_FLIGHT: usize = 4;

/// What the other thread made of the replay's events.
pub(super) struct Followed {
    /// The comparison with LiveStore's recorded changesets, when it ran.
    pub changesets: Option<ChangesetStats>,
    /// The divergence followed through the replay.
    pub causes: Causes,
    /// Which event last wrote each row (empty when the options ask for none).
    pub writers: WriterIndex,
}

/// Replays the log of `setup` into `scratch` and follows every event on another thread: held
/// against LiveStore's recorded changesets when `changesets` (the recorded state has them),
/// through the root causes, into the writer index. With `speculate`, the replay runs without
/// savepoints, and `None` says it must start over with them, in a new scratch database.
pub(super) fn replay_and_follow(
    setup: &Setup,
    scratch: &Scratch,
    materializer: &mut dyn Materializer,
    options: &ReplayOptions,
    changesets: bool,
    speculate: bool,
    observe: impl FnMut(Step<'_>),
) -> Result<Option<(Replayed, Followed)>> {
    // Progress and every event both go to the one observer.
    let observe = std::cell::RefCell::new(observe);
    let recorded = setup
        .recorded
        .as_ref()
        .filter(|_| changesets)
        .map(|r| (r.db.attach_uri.clone(), setup.recorded_path()));
    let names = ColumnNames::read_all(scratch, "main");
    // Beside the scratch database when it is on disk: where the user said there is room.
    let writers = (!options.no_writers).then(|| WriterIndex::new(options.scratch_dir.clone()));
    let mut replay_options = options.clone();
    replay_options.values |= recorded.is_some();
    // The index is built on the other thread, from the same changes.
    replay_options.no_writers = true;
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let dir = options.scratch_dir.clone();
        let follower = s.spawn(move || follow(rx, recorded, names, writers, dir));
        let mut batcher = Batcher {
            tx,
            batch: Vec::with_capacity(BATCH),
            scratch,
            schema_version: schema_version(scratch),
        };
        let replayed = replay::replay_owned(
            &setup.log,
            materializer,
            scratch,
            &replay_options,
            speculate,
            |n| (observe.borrow_mut())(Step::Read(n)),
            |done, findings| {
                (observe.borrow_mut())(match &done {
                    Done::Applied { event, changes } => Step::Applied { event, changes },
                    Done::NotApplied {
                        event, intended, ..
                    } => Step::NotApplied {
                        event,
                        findings,
                        intended,
                    },
                });
                batcher.push(done);
            },
        );
        batcher.finish();
        let followed = match follower.join() {
            Ok(followed) => followed,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match replayed? {
            Some(replayed) => Ok(Some((replayed, followed?))),
            // The other side's work is void: the replay starts over.
            None => Ok(None),
        }
    })
}

/// Events for the other thread, with the replayed tables' column names when an event among
/// them changed the schema (an `ALTER TABLE` in a definition): the other thread has no
/// connection to the scratch database to read them from.
type Sent = (Vec<Done>, Option<ColumnNames>);

/// Hands events to the other thread in batches.
struct Batcher<'a> {
    tx: SyncSender<Sent>,
    batch: Vec<Done>,
    scratch: &'a Scratch,
    /// The scratch schema's version when the names were last read.
    schema_version: Option<i64>,
}

/// The scratch database's schema cookie, which every schema change increments.
fn schema_version(scratch: &Scratch) -> Option<i64> {
    scratch
        .query_row("PRAGMA main.schema_version", [], |r| r.get(0))
        .ok()
}

impl Batcher<'_> {
    fn push(&mut self, done: Done) {
        self.batch.push(done);
        if self.batch.len() == BATCH {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            self.send(batch);
        }
    }

    /// Sends a batch, with the column names read again when the schema changed since the
    /// last: as LiveStore's side names its columns from the final schema, names read after
    /// the batch fit every event in it.
    fn send(&mut self, batch: Vec<Done>) {
        let version = schema_version(self.scratch);
        let names = (version != self.schema_version).then(|| {
            self.schema_version = version;
            ColumnNames::read_all(self.scratch, "main")
        });
        // The other side only hangs up on an error, which its result reports.
        let _ = self.tx.send((batch, names));
    }

    fn finish(mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.send(batch);
        }
    }
}

/// The other thread: every event, in log order.
fn follow(
    rx: Receiver<Sent>,
    recorded: Option<(String, std::path::PathBuf)>,
    names: ColumnNames,
    writers: Option<WriterIndex>,
    dir: Option<std::path::PathBuf>,
) -> Result<Followed> {
    let with_writers = writers.is_some();
    let mut writers = writers.unwrap_or_default();
    let unreadable =
        |path: &std::path::Path, e| Error::sqlite(path, "cannot read the recorded changesets", e);
    let conn = match &recorded {
        Some((uri, path)) => Some(
            Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| unreadable(path, e))?,
        ),
        None => None,
    };
    let mut stmt = match (&conn, &recorded) {
        (Some(c), Some((_, path))) => Some(
            c.prepare(&recorded::in_order(c))
                .map_err(|e| unreadable(path, e))?,
        ),
        _ => None,
    };
    let mut check = match (&conn, stmt.as_mut(), &recorded) {
        (Some(c), Some(stmt), Some((_, path))) => Some(ChangesetCheck::new(
            c,
            names,
            stmt.query([]).map_err(|e| unreadable(path, e))?,
        )),
        _ => None,
    };
    let mut causes = Causes::in_dir(dir);
    let mut interned: std::collections::HashMap<String, Arc<str>> = Default::default();
    let mut writer_of = |ev: &Event| Writer {
        seq: ev.seq,
        name: interned
            .entry(ev.name.clone())
            .or_insert_with(|| Arc::from(ev.name.as_str()))
            .clone(),
    };
    for (batch, names) in rx {
        if let (Some(check), Some(names)) = (&mut check, names) {
            check.rename(names);
        }
        for done in batch {
            match done {
                Done::Applied { event, changes } => {
                    if with_writers && !changes.is_empty() {
                        let writer = writer_of(&event);
                        for c in &changes {
                            writers.record(c, &writer)?;
                        }
                    }
                    if let Some(check) = &mut check {
                        let quiet = causes.quiet();
                        causes.compared(&event, check.event(&event, &changes, quiet));
                    }
                }
                Done::NotApplied {
                    event,
                    why,
                    intended,
                } => {
                    if with_writers && !intended.is_empty() {
                        let writer = writer_of(&event);
                        for (table, key) in &intended {
                            writers.intend(table, key, &writer)?;
                        }
                    }
                    let recorded = check.as_mut().and_then(|c| c.not_applied(&event));
                    causes.not_applied(&event, why, recorded.as_deref(), &intended);
                }
            }
        }
    }
    Ok(Followed {
        changesets: check.map(ChangesetCheck::finish),
        causes,
        writers,
    })
}
