//! Hostile input: what an attacker (or a broken machine) hands rehearse. Every case ends within
//! a time bound (a hang detector, not a speed test) with a clear error or a correct result;
//! none hangs, crashes, or writes where it should not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::need;
use crate::util::*;

trials![
    fifos_given_as_inputs_are_refused_at_once,
    corpus_trees_with_symlink_loops_are_walked_once,
    proc_is_not_a_corpus,
    packages_holding_links_or_fifos_are_refused,
    deep_or_long_expressions_are_a_definitions_error,
    a_very_long_event_name_is_shown_shortened,
    escape_sequences_in_the_input_do_not_reach_the_terminal,
    deeply_nested_args_are_an_invalid_args_finding,
    a_state_file_that_cannot_be_read_is_an_error,
    reports_never_replace_what_is_not_a_regular_file,
    definitions_cannot_write_files,
    a_ddl_file_that_is_not_sql_is_not_printed_whole,
    a_journal_far_larger_than_its_database_is_not_copied,
    private_copies_left_by_killed_runs_are_removed,
    a_restore_into_a_full_disk_names_the_target_and_leaves_nothing,
];

/// Something done to a file or directory to break it.
type Damage = Box<dyn Fn(&Path)>;

/// The hang detector's bound: generous, for a loaded CI machine.
const BOUND: Duration = Duration::from_secs(10);

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[cfg(unix)]
fn symlink(to: impl AsRef<Path>, at: impl AsRef<Path>) {
    std::os::unix::fs::symlink(to, at).unwrap();
}

/// The workspace definitions, copied with paths made absolute, so that they can be edited.
fn defs_copy(dir: &Path) -> String {
    defs_text()
        .replace("\nevent_schemas", "\n#event_schemas")
        .replace(
            "\n[state]",
            &format!("\n# copied into {}\n[state]", dir.display()),
        )
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn n200() -> PathBuf {
    corpus("workspace-n200")
}

fn fifos_given_as_inputs_are_refused_at_once() {
    let dir = tempdir();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let base = defs_copy(dir.path());
    // The definitions, a baseline, the event schemas on the command line.
    for extra in [
        vec!["-m".to_string(), fifo.display().to_string()],
        vec![
            "-m".into(),
            defs().display().to_string(),
            "--baseline".into(),
            fifo.display().to_string(),
        ],
        vec![
            "-m".into(),
            defs().display().to_string(),
            "--event-schemas".into(),
            fifo.display().to_string(),
        ],
    ] {
        let mut cmd = rehearse(&[&"check", &n200()]);
        for a in &extra {
            cmd.arg(a);
        }
        cmd.within(BOUND).code(2).stderr_has("FIFO");
    }
    // A ddl_file and event_schemas inside the definitions, and a file they extend.
    let ddl = write(
        &dir.path().join("ddl.toml"),
        &base.replace(
            &format!(
                "ddl_file = {:?}",
                corpus("workspace/state.sql").display().to_string()
            ),
            &format!("ddl_file = {:?}", fifo.display().to_string()),
        ),
    );
    let schemas = write(
        &dir.path().join("schemas.toml"),
        &base.replace(
            "format = 1\n",
            &format!(
                "format = 1\nevent_schemas = {:?}\n",
                fifo.display().to_string()
            ),
        ),
    );
    // And a definitions file that extends a FIFO.
    let extends = write(
        &dir.path().join("extends.toml"),
        &format!("format = 1\nextends = {:?}\n", fifo.display().to_string()),
    );
    for defs in [ddl, schemas, extends] {
        rehearse(&[&"check", &n200(), &"-m", &defs])
            .within(BOUND)
            .code(2)
            .stderr_has("FIFO");
    }
}

fn corpus_trees_with_symlink_loops_are_walked_once() {
    let dir = tempdir();
    let tree = dir.path().join("tree");
    copy_dir(
        &corpus("workspace-n200/workspace"),
        &tree.join("one/workspace"),
    );
    // A loop one level down, and one three levels down, back to the top.
    symlink(".", tree.join("loop"));
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    symlink("../../..", tree.join("a/b/c/up"));
    let report = rehearse(&[&"check", &tree, &"-m", &defs(), &"--format", &"json"])
        .within(BOUND)
        .success()
        .json();
    let corpora: Vec<&str> = report["corpora"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["corpus"].as_str().unwrap())
        .collect();
    assert_eq!(corpora.len(), 1, "{corpora:?}");
    assert!(corpora[0].ends_with("one/workspace"), "{corpora:?}");
}

fn proc_is_not_a_corpus() {
    for path in ["/proc/self", "/proc"] {
        rehearse(&[&"check", &path, &"-m", &defs()])
            .within(BOUND)
            .code(2)
            .stderr_has("proc pseudo file system");
    }
    rehearse(&[&"inspect", &"/proc/self/environ"])
        .within(BOUND)
        .code(2)
        .stderr_has("proc pseudo file system");
}

fn export(dir: &Path) -> PathBuf {
    let out = dir.join("pkg");
    rehearse(&[
        &"export",
        &corpus("workspace-n200/workspace"),
        &"--out",
        &out,
    ])
    .success();
    out
}

fn packages_holding_links_or_fifos_are_refused() {
    let dir = tempdir();
    let target = dir.path().join("store/workspace");
    copy_dir(&corpus("workspace-n300-lsdev/workspace"), &target);
    let old = snapshot_tree(&target);
    let cases: Vec<(&str, Damage)> = vec![
        (
            "a directory link loop",
            Box::new(|p: &Path| symlink(".", p.join("loop"))),
        ),
        (
            "a link into /proc",
            Box::new(|p: &Path| symlink("/proc/self", p.join("proc"))),
        ),
        (
            "a state database linked from outside",
            Box::new(|p: &Path| {
                let outside = p.parent().unwrap().join("outside.db");
                std::fs::rename(p.join("state.db"), &outside).unwrap();
                symlink(&outside, p.join("state.db"));
            }),
        ),
        ("a FIFO", Box::new(|p: &Path| mkfifo(&p.join("extra")))),
    ];
    for (what, damage) in cases {
        let work = tempdir();
        let package = export(work.path());
        damage(&package);
        let expected = if what == "a FIFO" {
            "FIFO"
        } else {
            "symbolic link"
        };
        rehearse(&[&"preflight", &package, &"-m", &defs()])
            .within(BOUND)
            .code(2)
            .stderr_has(expected);
        rehearse(&[&"restore", &package, &"--to", &target, &"-m", &defs()])
            .within(BOUND)
            .code(2)
            .stderr_has(expected);
        assert_eq!(snapshot_tree(&target), old, "{what}: the store changed");
    }
}

fn deep_or_long_expressions_are_a_definitions_error() {
    let dir = tempdir();
    let base = defs_copy(dir.path());
    let at = "values = { id = \"args.id\"";
    assert!(base.contains(at));
    for (what, n) in [("nested", 100_000), ("nested", 200)] {
        let _ = what;
        for expr in [
            format!("{}args.id{}", "[".repeat(n), "]".repeat(n)),
            format!("{}args.id{}", "(".repeat(n), ")".repeat(n)),
            format!("args.id{}", " + args.id".repeat(n)),
            format!("args.id{}", " ?? args.id".repeat(n)),
            format!("args.id{}", " | json".repeat(n)),
        ] {
            let defs = write(
                &dir.path().join("deep.toml"),
                &base.replacen(at, &format!("values = {{ id = \"{expr}\""), 1),
            );
            rehearse(&[&"check", &n200(), &"-m", &defs])
                .within(BOUND)
                .code(2)
                .stderr_has("deep.toml:")
                .stderr_has("the limit of")
                .stderr_has("v1.UserRegistered");
        }
    }
    // Deeply nested TOML itself.
    let defs = write(
        &dir.path().join("toml.toml"),
        &format!(
            "format = 1\nx = {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    rehearse(&[&"check", &n200(), &"-m", &defs])
        .within(BOUND)
        .code(2)
        .stderr_has("toml.toml:2");
}

/// A copy of n200 whose event e5 is renamed `name`.
fn renamed(dir: &Path, name: &str) -> PathBuf {
    let store = dir.join("workspace");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    rusqlite::Connection::open(store.join("eventlog@6.db"))
        .unwrap()
        .execute(
            "UPDATE eventlog SET name = ?1 WHERE seqNumGlobal = 5",
            [name],
        )
        .unwrap();
    store
}

fn a_very_long_event_name_is_shown_shortened() {
    let dir = tempdir();
    let name = format!("v1.{}", "é".repeat(70_000));
    let store = renamed(dir.path(), &name);
    let out = rehearse(&[&"inspect", &store]).within(BOUND);
    out.success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("v1.éé"))
        .unwrap_or_else(|| panic!("no line for the long name{out}"));
    assert!(line.chars().count() < 200, "{line}");
    assert!(line.contains("(70003 chars)"), "{line}");
    // The JSON keeps it whole.
    let json = rehearse(&[&"inspect", &store, &"--format", &"json"])
        .success()
        .json();
    assert!(json["names"].get(&name).is_some(), "{json}");
}

fn escape_sequences_in_the_input_do_not_reach_the_terminal() {
    let dir = tempdir();
    let store = renamed(dir.path(), "v1.\u{1b}]0;owned\u{7}\u{1b}[2JEvil\u{202e}");
    for args in [
        vec!["inspect".to_string(), store.display().to_string()],
        vec![
            "check".into(),
            store.display().to_string(),
            "-m".into(),
            defs().display().to_string(),
        ],
    ] {
        let mut cmd = rehearse(&[]);
        for a in &args {
            cmd.arg(a);
        }
        let out = cmd.env("CLICOLOR_FORCE", "1").within(BOUND);
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains(['\u{7}', '\u{202e}'])
                    && !text.contains("\u{1b}]")
                    && !text.contains("\u{1b}[2J"),
                "{stream} holds the input's control characters{out}"
            );
        }
        out.output_has("v1.\\u{1b}]0;owned\\u{7}\\u{1b}[2JEvil\\u{202e}");
    }
}

fn deeply_nested_args_are_an_invalid_args_finding() {
    let dir = tempdir();
    let store = dir.path().join("workspace");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    let args = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    rusqlite::Connection::open(store.join("eventlog@6.db"))
        .unwrap()
        .execute(
            "UPDATE eventlog SET argsJson = ?1 WHERE seqNumGlobal = 17",
            [&args],
        )
        .unwrap();
    let report = rehearse(&[&"check", &store, &"-m", &defs(), &"--format", &"json"])
        .within(BOUND)
        .code(1)
        .json();
    let findings = report["corpora"][0]["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["seqNumGlobal"] == 17 && f["class"] == "invalid-args")
        .unwrap_or_else(|| panic!("no invalid-args at e17: {report}"));
    assert!(
        f["message"].as_str().unwrap().contains("nest 50000 levels"),
        "{f}"
    );
}

fn a_state_file_that_cannot_be_read_is_an_error() {
    let state = "state-186191357563@6.db";
    let cases: Vec<(&str, Damage, &str)> = vec![
        ("a FIFO", Box::new(|p: &Path| mkfifo(p)), "FIFO"),
        (
            "a directory",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
            "a directory",
        ),
        (
            "a symbolic link loop",
            Box::new(|p: &Path| symlink(p.file_name().unwrap(), p)),
            "symbolic links",
        ),
    ];
    for (what, make, says) in cases {
        let dir = tempdir();
        let store = dir.path().join("workspace");
        copy_dir(&corpus("workspace-n200/workspace"), &store);
        std::fs::remove_file(store.join(state)).unwrap();
        make(&store.join(state));
        rehearse(&[&"check", &store, &"-m", &defs()])
            .within(BOUND)
            .code(2)
            .stderr_has(state)
            .stderr_has(says);
        let out = dir.path().join("pkg");
        rehearse(&[&"export", &store, &"--out", &out])
            .within(BOUND)
            .code(2)
            .stderr_has(says);
        assert!(!out.exists(), "{what}: a package was written");
    }
    // An accepted snapshot that is a FIFO, beside a bare log.
    let dir = tempdir();
    let log = dir.path().join("eventlog@6.db");
    std::fs::copy(corpus("workspace-n200/workspace/eventlog@6.db"), &log).unwrap();
    mkfifo(&dir.path().join("eventlog@6.db.snapshot"));
    let ddl = write(&dir.path().join("defs.toml"), &defs_copy(dir.path()));
    rehearse(&[&"check", &log, &"-m", &ddl])
        .within(BOUND)
        .code(2)
        .stderr_has("FIFO");
}

fn reports_never_replace_what_is_not_a_regular_file() {
    let dir = tempdir();
    let d = dir.path();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    // A device node of our own (as root), standing in for /dev/null.
    let null = d.join("null");
    let have_device = std::process::Command::new("mknod")
        .args([null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()])
        .status()
        .is_ok_and(|s| s.success());
    let link = d.join("link");
    symlink(&fifo, &link);
    let mut targets = vec![fifo.clone(), link.clone(), d.to_path_buf()];
    if have_device {
        targets.push(null.clone());
    }
    for target in &targets {
        for flag in ["--json", "--junit", "--markdown"] {
            rehearse(&[&"check", &n200(), &"-m", &defs(), &flag, target])
                .within(BOUND)
                .code(2)
                .stderr_has("not a regular file");
        }
        rehearse(&[&"replay", &n200(), &"-m", &defs(), &"--out", target])
            .within(BOUND)
            .code(2)
            .stderr_has("not a regular file");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    if have_device {
        assert!(
            std::fs::symlink_metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // Through a link to a regular file: the file gets the report, the link stays.
    let file = d.join("report.json");
    std::fs::write(&file, "old").unwrap();
    let to_file = d.join("to-report.json");
    symlink(&file, &to_file);
    rehearse(&[&"check", &n200(), &"-m", &defs(), &"--json", &to_file]).success();
    assert!(
        std::fs::symlink_metadata(&to_file)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(report["summary"]["passed"], 1);
}

fn definitions_cannot_write_files() {
    let dir = tempdir();
    let base = defs_copy(dir.path());
    let out = |n: &str| dir.path().join(n);
    let ddl_line = format!(
        "ddl_file = {:?}",
        corpus("workspace/state.sql").display().to_string()
    );
    let state_sql = std::fs::read_to_string(corpus("workspace/state.sql")).unwrap();
    let completed = "sql = \"UPDATE todos SET completed = 1, completedAt = $completedAt, updatedAt = $completedAt WHERE id = $id\"";
    assert!(base.contains(completed) && base.contains(&ddl_line));
    let ddl = |extra: &str| base.replace(&ddl_line, &format!("ddl = '''{state_sql};\n{extra}'''"));
    // DDL: a definitions error, and no file.
    for (name, extra) in [
        (
            "vacuum",
            format!("VACUUM INTO '{}'", out("vacuum.db").display()),
        ),
        (
            "attach",
            format!(
                "ATTACH '{}' AS p; CREATE TABLE p.t(a)",
                out("attach.db").display()
            ),
        ),
    ] {
        let defs = write(&out(&format!("{name}.toml")), &ddl(&extra));
        rehearse(&[&"check", &n200(), &"-m", &defs])
            .within(BOUND)
            .code(2)
            .stderr_has("the state DDL does not run: refused");
    }
    // An event's SQL stepping out of the transaction: a finding at the event.
    let defs = write(
        &out("event.toml"),
        &base.replace(
            completed,
            &format!(
                "sql = \"COMMIT; VACUUM INTO '{}'; BEGIN\"",
                out("event.db").display()
            ),
        ),
    );
    let report = rehearse(&[&"check", &n200(), &"-m", &defs, &"--format", &"json"])
        .within(BOUND)
        .code(1)
        .json();
    let first = &report["corpora"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == "materializer-error")
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert_eq!(first["seqNumGlobal"], 17, "{first}");
    assert_eq!(first["name"], "v1.TodoCompleted", "{first}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("transaction control"),
        "{first}"
    );
    // An event's SQL attaching a file: a definitions error naming the event.
    let defs = write(
        &out("event-attach.toml"),
        &base.replace(
            completed,
            &format!(
                "sql = \"ATTACH '{}' AS p; CREATE TABLE p.t(a)\"",
                out("event-attach.db").display()
            ),
        ),
    );
    rehearse(&[&"check", &n200(), &"-m", &defs])
        .within(BOUND)
        .code(2)
        .stderr_has("event \"v1.TodoCompleted\"")
        .stderr_has("ATTACH");
    for n in ["vacuum.db", "attach.db", "event.db", "event-attach.db"] {
        assert!(!out(n).exists(), "{n} was written");
    }
}

fn a_ddl_file_that_is_not_sql_is_not_printed_whole() {
    let dir = tempdir();
    let text: String = (0..2000).map(|i| format!("secret line {i}\n")).collect();
    let file = write(&dir.path().join("not.sql"), &text);
    let defs = write(
        &dir.path().join("defs.toml"),
        &defs_copy(dir.path()).replace(
            &format!(
                "ddl_file = {:?}",
                corpus("workspace/state.sql").display().to_string()
            ),
            &format!("ddl_file = {:?}", file.display().to_string()),
        ),
    );
    let out = rehearse(&[&"check", &n200(), &"-m", &defs]).within(BOUND);
    out.code(2).stderr_has("line 1 of the DDL");
    assert!(!out.stderr.contains("secret line 2"), "{out}");
}

fn a_journal_far_larger_than_its_database_is_not_copied() {
    let dir = tempdir();
    let store = dir.path().join("workspace");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    // Sparse: 4 GiB on paper, nothing on the disk.
    let journal = store.join("eventlog@6.db-journal");
    std::fs::File::create(&journal)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    rehearse(&[&"check", &store, &"-m", &defs()])
        .env("TMPDIR", &tmp)
        .within(BOUND)
        .code(2)
        .stderr_has("eventlog@6.db-journal")
        .stderr_has("does not copy it");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

fn private_copies_left_by_killed_runs_are_removed() {
    let dir = tempdir();
    let tmp = dir.path().join("tmp");
    // What a killed run leaves: a private copy whose lock nobody holds, an hour old.
    let stale = tmp.join("rehearse-copy-killed");
    let fresh = tmp.join("rehearse-copy-starting");
    for d in [&stale, &fresh] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(".lock"), "").unwrap();
        std::fs::write(d.join("eventlog@6.db"), vec![0u8; 1 << 20]).unwrap();
    }
    let ok = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&stale)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // A check that needs a private copy (a journal beside the log) tidies them.
    let store = dir.path().join("workspace");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    std::fs::write(store.join("eventlog@6.db-journal"), vec![0u8; 512]).unwrap();
    rehearse(&[&"check", &store, &"-m", &defs()])
        .env("TMPDIR", &tmp)
        .within(BOUND)
        .success()
        .stdout_has("read a private copy");
    assert!(!stale.exists(), "the killed run's copy is still there");
    assert!(
        fresh.exists(),
        "a copy that may belong to a starting run was removed"
    );
    // Its own copy is gone too.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["rehearse-copy-starting"]);
}

fn a_restore_into_a_full_disk_names_the_target_and_leaves_nothing() -> need::Result {
    let disk = need::tmpfs("128k")?;
    let work = tempdir();
    let package = export(work.path());
    let target = disk.path().join("workspace");
    let out = rehearse(&[&"restore", &package, &"--to", &target, &"-m", &defs()]).within(BOUND);
    out.code(2)
        .stderr_has("No space left on device")
        .stderr_has(&disk.path().display().to_string())
        .stderr_has("was removed");
    assert!(
        !out.stderr
            .contains(&format!("{}/eventlog.db: No space", package.display())),
        "{out}"
    );
    let left: Vec<String> = std::fs::read_dir(disk.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left on the full disk: {left:?}");
    Ok(())
}
