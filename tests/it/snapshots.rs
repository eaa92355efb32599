//! What people and CI read, held to committed snapshots (insta, `tests/it/snapshots/`): every
//! report format of `check` (human, JSON, JUnit, GitHub annotations, Markdown) on passing and
//! failing corpora, the human output of `bisect`, `blame`, `inspect`, `diff`, `export` and
//! `preflight`, and the `--help` of every command.
//!
//! When an output changes on purpose, re-accept the snapshots and review the diff in git:
//!
//! ```sh
//! INSTA_UPDATE=always cargo test --test it snapshots::
//! git diff tests/it/snapshots/
//! ```
//!
//! (or `cargo insta test --test it` then `cargo insta review`, where cargo-insta is installed).
//! Without that, a changed output fails the test and insta writes the new one beside the old as
//! `<name>.snap.new`; under `CI` it writes nothing and only fails, with the diff.
//!
//! Each command runs from the repository root on relative paths, with `NO_COLOR`, `CI` unset and
//! a help width of 100 columns, so that the outputs are the same on every machine; what still
//! names this machine (a temporary directory, the repository's path) or this release (the
//! version) is redacted. The outputs are byte for byte the same on every run: a snapshot that
//! differs between two runs is a bug in rehearse, not in the snapshot.

use std::path::Path;

use crate::util::*;

trials![
    check_workspace_n200,
    check_workspace_n200_materializer_error,
    check_workspace_n200_changed_definition,
    check_workspace_n200_changed_schema,
    check_workspace_n200_edited_row,
    check_workspace_n200_broken_log,
    check_workspace_n200_writer_unknown,
    check_workspace_n200_changed_uncompleted,
    check_workspace_n200_unique_constraint,
    check_a_log_alone,
    check_several_corpora,
    bisect_human,
    blame_human,
    inspect_human,
    diff_human,
    export_and_preflight_human,
    help_of_every_command,
];

const DEFS: &str = "corpora/workspace/materializers.toml";

/// `rehearse <args>` as the snapshots run it: from the repository root, `CI` unset.
fn run(args: &[&str], tmp: Option<&Path>) -> (Out, String) {
    let mut cmd = rehearse(&[]);
    for a in args {
        cmd.arg(a);
    }
    let out = cmd
        .current_dir(root())
        .env_remove("CI")
        .env("COLUMNS", "100")
        .run();
    let mut shown = format!("rehearse {}", args.join(" "));
    if let Some(tmp) = tmp {
        shown = shown.replace(&*tmp.to_string_lossy(), "[TMP]");
    }
    (out, shown)
}

/// `text` without what names this machine or this release.
fn redact(text: &str, tmp: Option<&Path>) -> String {
    let mut text = text.to_string();
    if let Some(tmp) = tmp {
        text = text.replace(&*tmp.to_string_lossy(), "[TMP]");
    }
    text.replace(&*root().to_string_lossy(), "[ROOT]").replace(
        concat!("rehearse ", env!("CARGO_PKG_VERSION")),
        "rehearse [VERSION]",
    )
}

/// Holds `text` to the snapshot `name`, which says the command that wrote it.
#[track_caller]
fn snapshot(name: &str, command: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(command);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Runs `args` (`-m` and the rest) expecting exit `code`, and holds its stdout to `name`.
#[track_caller]
fn stdout_snapshot(name: &str, args: &[&str], code: i32, tmp: Option<&Path>) {
    let (out, shown) = run(args, tmp);
    out.code(code);
    snapshot(name, &shown, &redact(&out.stdout, tmp));
}

/// `check <args>` in every format, each to the snapshot `check__<name>__<format>`.
fn check_formats(name: &str, args: &[&str], code: i32) {
    for format in ["human", "json", "junit", "github", "markdown"] {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        all.extend(["--format", format]);
        stdout_snapshot(&format!("check__{name}__{format}"), &all, code, None);
    }
}

fn check_workspace_n200() {
    check_formats("workspace-n200", &["corpora/workspace-n200", "-m", DEFS], 0);
}

/// A changed materializer: the root cause at its events, the divergence it leaves under it with
/// each side's writer of the column.
fn check_workspace_n200_changed_uncompleted() {
    check_formats(
        "workspace-n200-changed-uncompleted",
        &[
            "corpora/workspace-n200",
            "-m",
            "corpora/workspace-n200-changed-uncompleted/materializers.toml",
        ],
        1,
    );
}

/// Events that fail: exactly they are the root causes, the rest follows from them.
fn check_workspace_n200_unique_constraint() {
    check_formats(
        "workspace-n200-unique-constraint",
        &[
            "corpora/workspace-n200",
            "-m",
            "corpora/workspace-n200-unique-constraint/materializers.toml",
        ],
        1,
    );
}

/// A log with nothing to compare it with: not a pass.
fn check_a_log_alone() {
    let tmp = tempdir();
    let log = tmp.path().join("log.db");
    std::fs::copy(
        root().join("corpora/workspace-n200/workspace/eventlog@6.db"),
        &log,
    )
    .unwrap();
    let log = log.to_string_lossy().into_owned();
    for format in ["human", "json"] {
        stdout_snapshot(
            &format!("check__a-log-alone__{format}"),
            &["check", &log, "-m", DEFS, "--format", format],
            1,
            Some(tmp.path()),
        );
    }
}

fn check_workspace_n200_materializer_error() {
    check_formats(
        "workspace-n200-materializer-error",
        &[
            "corpora/workspace-n200",
            "-m",
            "corpora/workspace-n200-materializer-error/materializers.toml",
        ],
        1,
    );
}

fn check_workspace_n200_changed_definition() {
    check_formats(
        "workspace-n200-changed-definition",
        &[
            "corpora/workspace-n200",
            "-m",
            "corpora/workspace-n200-changed-definition/materializers.toml",
        ],
        1,
    );
}

fn check_workspace_n200_changed_schema() {
    check_formats(
        "workspace-n200-changed-schema",
        &[
            "corpora/workspace-n200",
            "-m",
            "corpora/workspace-n200-changed-schema/materializers.toml",
        ],
        1,
    );
}

fn check_workspace_n200_edited_row() {
    check_formats(
        "workspace-n200-edited-row",
        &["corpora/workspace-n200-edited-row", "-m", DEFS],
        1,
    );
}

fn check_workspace_n200_broken_log() {
    check_formats(
        "workspace-n200-broken-log",
        &["corpora/workspace-n200-broken-log", "-m", DEFS],
        1,
    );
}

/// Warnings only: the gate passes.
fn check_workspace_n200_writer_unknown() {
    check_formats(
        "workspace-n200-writer-unknown",
        &[
            "corpora/workspace-n200-writer-unknown",
            "-m",
            DEFS,
            "--state",
            "corpora/workspace-n200/workspace/state-186191357563@6.db",
        ],
        0,
    );
}

/// Several corpora in one report: the summaries, a JUnit suite per corpus.
fn check_several_corpora() {
    check_formats(
        "several",
        &[
            "corpora/workspace-n200",
            "corpora/workspace-n200-broken-log",
            "corpora/workspace-n200-edited-row",
            "corpora/workspace-n200-tampered-changeset",
            "corpora/workspace-n200-writer-unknown",
            "-m",
            DEFS,
        ],
        1,
    );
}

fn bisect_human() {
    stdout_snapshot(
        "bisect",
        &[
            "bisect",
            "corpora/workspace-n200",
            "--old",
            DEFS,
            "--new",
            "corpora/workspace-n200-changed-definition/materializers.toml",
        ],
        1,
        None,
    );
}

fn blame_human() {
    stdout_snapshot(
        "blame",
        &[
            "blame",
            "corpora/workspace-n200-edited-row",
            "-m",
            DEFS,
            "--table",
            "todos",
            "--key",
            "todo_ug4qhd18po",
        ],
        0,
        None,
    );
}

fn inspect_human() {
    stdout_snapshot("inspect", &["inspect", "corpora/workspace-n200"], 0, None);
}

fn diff_human() {
    stdout_snapshot(
        "diff",
        &[
            "diff",
            "corpora/workspace-n200-edited-row/workspace/state-186191357563@6.db",
            "corpora/workspace-n200/workspace/state-186191357563@6.db",
        ],
        1,
        None,
    );
}

/// A package exported at a fixed time (`SOURCE_DATE_EPOCH`), and its pre-flight.
fn export_and_preflight_human() {
    let dir = tempdir();
    let tmp = dir.path();
    copy_dir(&corpus("workspace-n200/workspace"), &tmp.join("workspace"));
    let (store, package) = (tmp.join("workspace"), tmp.join("pkg"));
    let (store, package) = (store.to_string_lossy(), package.to_string_lossy());
    let args = [
        "export",
        &store,
        "--out",
        &package,
        "--app-version",
        "1.4.2",
    ];
    let mut cmd = rehearse(&[]);
    for a in args {
        cmd.arg(a);
    }
    let out = cmd
        .current_dir(root())
        .env_remove("CI")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .success();
    snapshot(
        "export",
        &redact(
            &format!("SOURCE_DATE_EPOCH=1700000000 rehearse {}", args.join(" ")),
            Some(tmp),
        ),
        &redact(&out.stdout, Some(tmp)),
    );
    stdout_snapshot(
        "preflight",
        &["preflight", &package, "-m", DEFS],
        0,
        Some(tmp),
    );
}

/// Every command and subcommand, as `rehearse --help`, `rehearse schema --help` and
/// `rehearse definitions --help` list them.
pub const COMMANDS: &[&str] = &[
    "check",
    "record",
    "accept",
    "replay",
    "bisect",
    "blame",
    "diff",
    "inspect",
    "export",
    "preflight",
    "restore",
    "schema",
    "definitions",
    "schema export",
    "definitions draft",
];

/// The names a `--help` lists under `Commands:`, less `help`.
fn commands_listed(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

fn help_of_every_command() {
    let (out, shown) = run(&["--help"], None);
    out.success();
    snapshot("help", &shown, &redact(&out.stdout, None));
    let mut listed = commands_listed(&out.stdout);
    for command in listed.clone() {
        let (out, _) = run(&[&command, "--help"], None);
        out.success();
        listed.extend(
            commands_listed(&out.stdout)
                .into_iter()
                .map(|sub| format!("{command} {sub}")),
        );
    }
    assert_eq!(
        listed, COMMANDS,
        "the commands --help lists, each of which needs a snapshot of its own --help"
    );
    for command in COMMANDS {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let (out, shown) = run(&args, None);
        out.success();
        snapshot(
            &format!("help__{}", command.replace(' ', "_")),
            &shown,
            &redact(&out.stdout, None),
        );
    }
}
