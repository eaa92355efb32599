//! Exit codes: part of rehearse's contract with CI and `git bisect run`.

/// Every corpus passed (or `diff` found no difference).
pub const PASS: u8 = 0;

/// The gate failed: at least one finding (or `diff` found a difference).
pub const FAILED: u8 = 1;

/// A usage error or an input rehearse cannot read (a missing file, a database that is not
/// SQLite, definitions that do not parse).
pub const USAGE_OR_INPUT: u8 = 2;

/// `preflight`: the log is sound but the snapshot is not to be trusted; restore by replaying
/// the log (`restore --from-log`). Not 0, so that a script that restores on success does not
/// restore a snapshot the pre-flight said to leave; not 1, which is no-go.
pub const GO_REPLAY: u8 = 3;

/// With `--git-bisect`: this commit cannot be tested (the corpus or the materializers do not
/// load), so `git bisect run` skips it instead of calling it bad.
pub const CANNOT_TEST: u8 = 125;
