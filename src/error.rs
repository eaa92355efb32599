//! Errors that stop rehearse from doing its job at all.
//!
//! A bad *event* is never an error: it is a finding in the report and replay goes on. What is
//! left here is input rehearse cannot read (a file that is not SQLite, a missing table, a
//! definitions file that does not parse) and failures of rehearse's own scratch work. Each
//! variant names the file it is about; the binary renders them once, at the edge.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something rehearse cannot work around.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file or directory is unreadable, malformed or not what it must be.
    #[error("{}: {message}", path.display())]
    Input {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// SQLite refused to read an input database.
    #[error("{}: {context}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What rehearse was doing.
        context: String,
        /// SQLite's own error.
        #[source]
        source: rusqlite::Error,
    },

    /// An input uses a LiveStore storage format rehearse does not read.
    #[error(
        "{}: LiveStore storage format {found} is not supported; rehearse reads format 6 (LiveStore 0.4)",
        path.display()
    )]
    UnsupportedFormat {
        /// The file whose name carries the format number.
        path: PathBuf,
        /// The format number found.
        found: String,
    },

    /// The materializer definitions are invalid.
    #[error("{}{}: {}{message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), event.as_ref().map(|e| format!("event {e:?}: ")).unwrap_or_default())]
    Definitions {
        /// The definitions file.
        path: PathBuf,
        /// 1-based line of the offending definition, where known.
        line: Option<usize>,
        /// The event whose definition is at fault, if any.
        event: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// SQLite's session extension failed while recording a changeset.
    #[error("session extension: {0}")]
    Session(String),

    /// The LiveStore helper process broke down (it exited, hung or wrote garbage).
    #[error("{}: LiveStore helper: {message}", module.display())]
    Plugin {
        /// The app's schema module.
        module: PathBuf,
        /// What happened, naming the event in flight.
        message: String,
    },

    /// rehearse's own scratch database failed; not the user's input.
    #[error("scratch database: {context}: {source}")]
    Scratch {
        /// What rehearse was doing.
        context: String,
        /// SQLite's own error.
        #[source]
        source: rusqlite::Error,
    },
}

impl Error {
    pub(crate) fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn sqlite(
        path: impl Into<PathBuf>,
        context: impl Into<String>,
        source: rusqlite::Error,
    ) -> Self {
        Error::Sqlite {
            path: path.into(),
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn scratch(context: impl Into<String>, source: rusqlite::Error) -> Self {
        Error::Scratch {
            context: context.into(),
            source,
        }
    }
}
