//! What a long library call tells whoever shows its progress. The library only reports (the
//! nextest shape: the runner emits, a reporter at the edge draws), so that it stays free of
//! terminals, and a Rust caller can show progress its own way or not at all. Plain data,
//! importing nothing, so that every layer that reports can use it.

/// One thing a long call reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The app's own materializers are starting: Node.js loads LiveStore and the app's schema,
    /// a second or more with nothing to count, so a display that showed a count would look
    /// stuck at zero.
    LoadingApp,
    /// A stage begins, with `total` units of work to do when it is known beforehand.
    Begin {
        /// The stage.
        stage: Stage,
        /// Its units of work ([`Stage`] says what one is).
        total: Option<u64>,
    },
    /// `n` more units of the stage under way are done.
    Advance(u64),
}

/// The stages of the long calls, each with its unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Replaying a log: rows of the log read.
    Replay,
    /// Copying a store's databases (export): nothing counted, as SQLite's online backup may
    /// start over while the app writes.
    Copy,
    /// Reading files for their SHA-256: bytes.
    Checksum,
    /// `PRAGMA integrity_check` on a package's databases: databases.
    Integrity,
    /// Copying a package's files into a staging directory (restore): bytes.
    Stage,
    /// Reading a restored store back: files.
    Verify,
}
