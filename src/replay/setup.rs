//! Everything a replay needs before its first event, done the same way for every command that
//! replays (`check`, `record`, `bisect`, `blame`, `preflight`): the corpus located, its log
//! opened, the recorded state it is held against chosen and opened read-only, and a scratch
//! database holding the state's tables.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::corpus::{self, Corpus};
use crate::definitions::Ddl;
use crate::error::{Error, Result};
use crate::eventlog::EventLog;
use crate::materialize::Materializer;
use crate::replay::execute::sqlite_message;
use crate::sqlite;
use crate::text::truncate;

/// Which recorded state a replay is held against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum State<'a> {
    /// The one beside the log that matches the materializers, if any.
    Beside,
    /// This one (`--state`).
    Named(&'a Path),
    /// None: the log alone (a pre-flight whose snapshot is damaged).
    None,
}

impl<'a> State<'a> {
    /// `Named` when a path is given, else `Beside`.
    pub(crate) fn named_or_beside(path: Option<&'a Path>) -> State<'a> {
        path.map_or(State::Beside, State::Named)
    }
}

/// The recorded state database a replay is held against, and why that one.
pub(crate) struct Recorded {
    /// The database, open read-only.
    pub db: sqlite::InputDb,
    /// Why this one (named on the command line, the only one, the one whose tables match).
    pub reason: String,
}

impl Recorded {
    /// Whether the state file was left by a rebuild that did not finish: LiveStore (after 0.4)
    /// creates `__livestore_rebuild` with its system tables and inserts the row `id = 1` only
    /// once the replay and the migration hooks are done, so the table without that row is a
    /// state cut off mid-rebuild.
    pub(crate) fn unfinished_rebuild(&self) -> bool {
        let has_table = self
            .db
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__livestore_rebuild'",
                [],
                |_| Ok(()),
            )
            .is_ok();
        has_table
            && self
                .db
                .conn
                .query_row("SELECT 1 FROM __livestore_rebuild WHERE id = 1", [], |_| {
                    Ok(())
                })
                .is_err()
    }
}

/// A corpus ready to replay.
pub(crate) struct Setup {
    /// The corpus as located.
    pub corpus: Corpus,
    /// Its event log.
    pub log: EventLog,
    /// The recorded state beside the log (or the one named), if any.
    pub recorded: Option<Recorded>,
    /// What the user should know about how the inputs were read.
    pub notes: Vec<String>,
}

impl Setup {
    /// Locates the corpus at `path`, opens its log, and chooses the recorded state: `state`
    /// when named, otherwise among the state files beside the log the one whose tables match
    /// what `materializer` writes.
    pub(crate) fn open(
        path: &Path,
        state: State<'_>,
        materializer: &dyn Materializer,
    ) -> Result<Setup> {
        let mut corpus = Corpus::locate(path)?;
        let log = EventLog::open(&corpus.eventlog)?;
        let mut notes = corpus.notes.clone();
        notes.extend(log.notes().iter().cloned());
        let chosen = match state {
            State::Named(p) => Some((p.to_path_buf(), "named with --state".to_string())),
            State::Beside => {
                corpus::choose_snapshot(&corpus.snapshots, &materializer.referenced_columns())?
            }
            State::None => {
                corpus.snapshots.clear();
                None
            }
        };
        let recorded = match chosen {
            Some((p, reason)) => {
                let db = sqlite::open_input(&p)?;
                notes.extend(db.notes.iter().cloned());
                Some(Recorded { db, reason })
            }
            None => None,
        };
        Ok(Setup {
            corpus,
            log,
            recorded,
            notes,
        })
    }

    /// The recorded state's path, or an empty one.
    pub(crate) fn recorded_path(&self) -> PathBuf {
        self.recorded
            .as_ref()
            .map(|r| r.db.path.clone())
            .unwrap_or_default()
    }

    /// A new scratch database for `materializer` (a temporary file under `dir`, the system's
    /// temporary directory when `None`), holding the state DDL.
    pub(crate) fn scratch(
        &self,
        materializer: &mut dyn Materializer,
        dir: Option<&Path>,
    ) -> Result<sqlite::Scratch> {
        scratch_for(
            Path::new(&self.corpus.name),
            materializer,
            self.recorded.as_ref().map(|r| &r.db),
            dir,
        )
    }
}

/// A scratch database holding the state DDL the materializer names (its own, or the recorded
/// state database's), checked against the materializer.
fn scratch_for(
    corpus: &Path,
    materializer: &mut dyn Materializer,
    recorded: Option<&sqlite::InputDb>,
    dir: Option<&Path>,
) -> Result<sqlite::Scratch> {
    let scratch = sqlite::Scratch::open(dir)?;
    match materializer.ddl() {
        Ddl::Sql { text, source } => {
            scratch
                .execute_batch(text)
                .map_err(|e| Error::Definitions {
                    path: source.clone(),
                    line: None,
                    event: None,
                    message: format!("the state DDL does not run: {}", ddl_error(text, e)),
                })?;
        }
        Ddl::Recorded => {
            let Some(db) = recorded else {
                return Err(Error::input(
                    corpus,
                    format!(
                        "the materializers ({}) take their DDL from the recorded state database, but this corpus has none; give `ddl_file` in their [state] table",
                        materializer.describe()
                    ),
                ));
            };
            copy_ddl(&db.conn, &db.path, &scratch)?;
        }
    }
    materializer.prepare(&scratch)?;
    Ok(scratch)
}

/// SQLite's message for DDL that does not run, with the line it failed on and that line alone:
/// rusqlite's own message quotes the whole text, which for a `ddl_file` that is not SQL (any
/// file a definitions file names) would print the file.
fn ddl_error(text: &str, e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            let at = usize::try_from(offset).unwrap_or(0).min(text.len());
            let at = (0..=at)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let line = text[..at].matches('\n').count() + 1;
            let quoted = text.lines().nth(line - 1).unwrap_or("").trim();
            format!(
                "{} (line {line} of the DDL: `{}`)",
                sqlite::explain_refusal(msg),
                truncate(quoted)
            )
        }
        other => sqlite::explain_refusal(sqlite_message(other)),
    }
}

/// Copies the schema of a recorded state database (FORMAT.md §14 step 5): every `CREATE`
/// statement in `sqlite_master` order, tables before the indexes on them.
pub(crate) fn copy_ddl(source: &Connection, source_path: &Path, target: &Connection) -> Result<()> {
    let mut stmt = source
        .prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
        )
        .map_err(|e| Error::sqlite(source_path, "cannot read the schema", e))?;
    let sqls: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sqlite(source_path, "cannot read the schema", e))?;
    for sql in sqls {
        target.execute_batch(&sql).map_err(|e| {
            Error::input(
                source_path,
                format!(
                    "its schema does not recreate: {} (in `{}`)",
                    sqlite::explain_refusal(sqlite_message(e)),
                    truncate(&sql)
                ),
            )
        })?;
    }
    Ok(())
}
