//! The integration tests, one binary (every test binary links the bundled SQLite again):
//! `cli` runs the built `rehearse` on the real corpora, `npm` installs the npm packages into
//! a LiveStore app and runs them there, `package` exports, pre-flights and
//! restores backup packages, `plugin` replays through the LiveStore fixture app, `progress` runs commands on a
//! pseudo-terminal, `snapshots`
//! holds every report format and every `--help` to a committed snapshot.
//!
//! The harness is libtest-mimic (`harness = false`), so that a test whose prerequisite is
//! missing shows as ignored with its reason rather than as `ok` (see `need`). Each module lists
//! its tests with `trials![…]`; a test is a plain `fn name()` that panics when it fails, or
//! `fn name() -> need::Result` when it needs something this machine may lack. libtest's
//! arguments work as usual: a filter, `--exact`, `--list`, `--ignored`, `--include-ignored`,
//! `--test-threads`. The harness captures no output: a test's own prints go straight to the
//! terminal (the `rehearse` runs' output is captured and shown when an assertion fails).

/// `trials![a, b, …]` defines the module's `trials()`: the tests `a`, `b`, … as trials named
/// `<module>::<test>`. A test function left out of the list is dead code, which the lints
/// refuse.
macro_rules! trials {
    ($($test:ident),* $(,)?) => {
        pub fn trials() -> Vec<libtest_mimic::Trial> {
            vec![$($crate::need::trial(module_path!(), stringify!($test), $test)),*]
        }
    };
}

#[path = "../common/api.rs"]
mod api;
#[path = "../common/lsdev.rs"]
mod lsdev;
mod need;
mod util;

mod cli;
mod fuzz;
mod hostile;
mod npm;
mod package;
mod plugin;
mod progress;
mod snapshots;

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let trials: Vec<libtest_mimic::Trial> = [
        cli::trials(),
        fuzz::trials(),
        hostile::trials(),
        npm::trials(),
        package::trials(),
        plugin::trials(),
        progress::trials(),
        snapshots::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut names: Vec<&str> = trials.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("two trials are named {}", w[0]);
    }
    libtest_mimic::run(&args, trials).exit();
}
