//! Progress on a terminal: every command that can run for long draws it on stderr when stderr
//! is a terminal, and nowhere else (a pipe, CI, `--no-progress`), its stdout the same either
//! way. The terminal is a pseudo-terminal from util-linux's `script`, stderr alone on it (stdout
//! goes to a file), so what it shows is exactly what rehearse drew there.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::need;
use crate::util::*;

trials![
    replay_shows_its_progress_on_a_terminal_only,
    record_shows_its_progress_on_a_terminal_only,
    bisect_shows_its_progress_on_a_terminal_only,
    blame_shows_its_progress_on_a_terminal_only,
    export_shows_its_progress_on_a_terminal_only,
    preflight_shows_its_progress_on_a_terminal_only,
    restore_shows_its_progress_on_a_terminal_only,
    check_says_it_is_loading_the_app_while_the_plugin_starts,
    schema_export_says_it_is_loading_the_app,
    definitions_draft_says_it_is_loading_the_app_then_replays,
];

/// A word for the shell, quoted.
fn quoted(word: &OsStr) -> String {
    format!("'{}'", word.to_string_lossy().replace('\'', r"'\''"))
}

/// What a run on a terminal did.
pub struct OnTerminal {
    /// What the terminal showed: stderr, with the bar's redraws.
    pub terminal: String,
    pub stdout: String,
    pub code: Option<i32>,
}

/// `rehearse <args>` in `dir`, stderr on a pseudo-terminal, stdout to a file, outside CI
/// unless `env` says otherwise.
pub fn on_terminal(dir: &Path, args: &[&dyn AsRef<OsStr>], env: &[(&str, &str)]) -> OnTerminal {
    let mut line = format!(
        "cd {} && exec {}",
        quoted(dir.as_os_str()),
        quoted(bin().as_os_str())
    );
    for a in args {
        line.push(' ');
        line.push_str(&quoted(a.as_ref()));
    }
    line.push_str(" >.stdout");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("CI")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script runs");
    let stdout = std::fs::read_to_string(dir.join(".stdout")).unwrap_or_default();
    let _ = std::fs::remove_file(dir.join(".stdout"));
    OnTerminal {
        terminal: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout,
        code: out.status.code(),
    }
}

/// Runs `args` in a new directory prepared by `prepare`, four ways: on a terminal (the
/// progress shows, with every word of `shown`), piped (stderr is exactly `piped_stderr`), on
/// a terminal under CI and with `--no-progress` (none of `shown` appears). Stdout and the
/// exit code are the same all four ways.
fn progress_only_on_a_terminal(
    prepare: impl Fn(&Path),
    args: &[&dyn AsRef<OsStr>],
    shown: &[&str],
    piped_stderr: &str,
) -> need::Result {
    need::script()?;
    let fresh = || {
        let dir = tempdir();
        prepare(dir.path());
        dir
    };
    let dir = fresh();
    let term = on_terminal(dir.path(), args, &[]);
    for word in shown {
        assert!(
            term.terminal.contains(word),
            "{word:?} not shown on the terminal by rehearse {}:\n{}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            term.terminal
        );
    }

    let dir = fresh();
    let mut cmd = rehearse(args);
    let piped = cmd
        .current_dir(dir.path())
        .env_remove("CI")
        .env("SOURCE_DATE_EPOCH", "1")
        .run();
    assert_eq!(piped.stderr, piped_stderr, "{piped}");
    assert_eq!(
        piped.stdout, term.stdout,
        "stdout differs on a terminal{piped}"
    );
    assert_eq!(piped.exit_code(), term.code.unwrap_or(-1), "{piped}");

    let quiet = |term: &OnTerminal, how: &str| {
        for word in shown {
            assert!(
                !term.terminal.contains(word),
                "{word:?} shown {how}:\n{}",
                term.terminal
            );
        }
        assert_eq!(term.stdout, piped.stdout, "stdout differs {how}");
        assert_eq!(
            term.code.unwrap_or(-1),
            piped.exit_code(),
            "the exit code differs {how}"
        );
    };
    let dir = fresh();
    quiet(
        &on_terminal(dir.path(), args, &[("CI", "true")]),
        "under CI",
    );
    let dir = fresh();
    let mut no_progress: Vec<&dyn AsRef<OsStr>> = args.to_vec();
    no_progress.push(&"--no-progress");
    quiet(
        &on_terminal(dir.path(), &no_progress, &[]),
        "with --no-progress",
    );
    Ok(())
}

fn nothing(_: &Path) {}

/// A package exported from the n200 store into `dir/pkg`.
fn package(dir: &Path) {
    rehearse(&[
        &"export",
        &corpus("workspace-n200/workspace"),
        &"--out",
        &dir.join("pkg"),
    ])
    .env("SOURCE_DATE_EPOCH", "1")
    .success();
}

fn replay_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        nothing,
        &[
            &"replay",
            &corpus("workspace-n200"),
            &"-m",
            &defs(),
            &"--out",
            &"replayed.db",
        ],
        &["replaying", "/200 events"],
        "rehearse: wrote replayed.db\n",
    )
}

fn record_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        |dir| {
            std::fs::create_dir(dir.join("c")).unwrap();
            std::fs::copy(
                corpus("workspace-n200/workspace/eventlog@6.db"),
                dir.join("c/eventlog@6.db"),
            )
            .unwrap();
        },
        &[&"record", &"c", &"-m", &defs()],
        &["replaying", "/200 events"],
        "rehearse: wrote c/eventlog@6.db.snapshot\n",
    )
}

fn bisect_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        nothing,
        &[
            &"bisect",
            &corpus("workspace-n200"),
            &"--old",
            &defs(),
            &"--new",
            &defs(),
        ],
        &["replaying", "/200 events"],
        "",
    )
}

fn blame_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        nothing,
        &[
            &"blame",
            &corpus("workspace-n200-edited-row"),
            &"-m",
            &defs(),
            &"--table",
            &"todos",
            &"--key",
            &"todo_ug4qhd18po",
        ],
        &["replaying", "/200 events"],
        "",
    )
}

fn export_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        nothing,
        &[
            &"export",
            &corpus("workspace-n200/workspace"),
            &"--out",
            &"pkg",
            &"--app-version",
            &"1.4.2",
        ],
        &["copying the store", "checksumming"],
        "",
    )
}

fn preflight_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        package,
        &[&"preflight", &"pkg", &"-m", &defs()],
        &[
            "checksumming",
            "checking integrity",
            "replaying",
            "/200 events",
        ],
        "",
    )
}

fn restore_shows_its_progress_on_a_terminal_only() -> need::Result {
    progress_only_on_a_terminal(
        package,
        &[
            &"restore",
            &"pkg",
            &"--to",
            &"store/workspace",
            &"-m",
            &defs(),
        ],
        &[
            "checksumming",
            "replaying",
            "staging the files",
            "reading the restored store back",
        ],
        "",
    )
}

/// With the app's own materializers, the wait for Node.js to load the app is a spinner that
/// says so, in check as in the other commands (plugin.rs has the replay).
fn check_says_it_is_loading_the_app_while_the_plugin_starts() -> need::Result {
    let app = need::livestore_app()?;
    progress_only_on_a_terminal(
        nothing,
        &[
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &format!("livestore:{}", app.join("app.mjs").display()),
        ],
        &["loading the app", "replaying"],
        "",
    )
}

fn schema_export_says_it_is_loading_the_app() -> need::Result {
    let app = need::livestore_app()?;
    progress_only_on_a_terminal(
        nothing,
        &[
            &"schema",
            &"export",
            &"-m",
            &format!("livestore:{}", app.join("app.mjs").display()),
            &"--out",
            &"schema",
        ],
        &["loading the app"],
        "rehearse: wrote 17 event schemas, the state DDL and 1 client document to schema\n",
    )
}

fn definitions_draft_says_it_is_loading_the_app_then_replays() -> need::Result {
    let app = need::livestore_app()?;
    progress_only_on_a_terminal(
        nothing,
        &[
            &"definitions",
            &"draft",
            &"-m",
            &format!("livestore:{}", app.join("app.mjs").display()),
            &"--corpus",
            &corpus("workspace-n200"),
            &"--out",
            &"defs.toml",
        ],
        &["loading the app", "replaying"],
        "rehearse: wrote defs.toml from 1 corpus: 15 events defined, 1 TODO (v1.ProjectArchived)\n",
    )
}
