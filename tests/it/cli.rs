//! The `rehearse` binary end to end, on the real corpora under `corpora/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::need;
use crate::util::*;

trials![
    the_bundled_corpus_passes,
    reports_are_the_same_whether_findings_stay_in_memory_or_spill_to_disk,
    a_column_that_a_definition_adds_is_named_as_livestore_names_it,
    the_readme_is_short_and_links_only_what_users_have,
    findings_exit_1_and_name_the_event,
    json_report_matches_its_schema_and_is_deterministic,
    inputs_are_byte_identical_after_check_and_no_journal_is_left,
    a_hot_journal_beside_an_input_is_read_from_a_private_copy,
    unreadable_input_exits_2_and_names_the_file,
    a_corrupt_page_mid_log_is_an_error_naming_the_file_and_position,
    missing_tables_and_columns_are_named,
    other_storage_formats_are_refused_by_number,
    unreadable_permissions_are_an_input_error,
    usage_errors_exit_2,
    definitions_naming_what_the_state_lacks_are_errors_with_file_event_and_line,
    keep_and_replay_write_the_replayed_state_and_diff_compares_it,
    nothing_compared_is_not_a_pass,
    an_app_on_a_livestore_the_plugin_does_not_run_is_refused_by_version,
    later_livestore_state_names_are_recognised_and_an_unfinished_rebuild_is_not_trusted,
    a_log_that_cannot_be_counted_still_replays,
    on_error_stop_stops_at_the_first_failing_event,
    an_event_failing_at_its_second_statement_leaves_nothing_of_its_first,
    of_several_state_files_the_one_matching_the_definitions_is_chosen,
    inspect_summarises_a_corpus,
    every_command_explains_itself_with_an_example,
    every_bundled_definitions_file_matches_the_definitions_schema,
    a_backup_package_is_detected_and_its_manifest_format_checked,
    diff_names_its_sides_a_and_b,
    a_materializer_that_ends_the_transaction_is_refused_by_name,
    junit_github_and_markdown_outputs_are_readable,
    severities_can_be_raised_lowered_or_turned_off,
    the_baseline_flow_write_pass_new_finding_fails_stale_entry_detected,
    a_baseline_applies_to_any_selection_of_its_corpora_from_any_directory,
    record_check_pending_and_accept_follow_the_insta_workflow,
    a_directory_of_corpora_is_searched_and_partitions_split_it,
    parallel_jobs_give_the_same_report,
    bisect_finds_the_first_event_a_changed_materializer_treats_differently,
    blame_tells_a_rows_history_and_spots_a_state_changed_outside_the_log,
    determinism_catches_a_materializer_that_reads_random_numbers,
    git_bisect_runs_skip_commits_that_cannot_be_tested,
    a_first_divergence_shows_both_sides_and_the_events_args,
    a_scratch_dir_gives_the_same_reports_and_is_left_empty,
    git_bisect_run_finds_the_commit_that_broke_a_materializer,
    bisect_blame_and_inspect_json_are_versioned_and_match_their_schemas,
    event_schemas_that_check_less_than_livestore_say_where,
    an_upsert_that_resets_an_absent_column_differs_from_livestore,
    old_args_in_a_json_column_need_the_schema_to_re_encode_them,
];

fn the_bundled_corpus_passes() {
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"--materializers",
        &defs(),
    ])
    .success()
    .stdout_starts_with("PASS ")
    .stdout_has("replayed 200 events: 200 applied")
    .stdout_has("compared 6 tables");
}

/// A log with many flagged events spills its findings to a temporary file; the report must not
/// change for it. `REHEARSE_SPILL_AT=1` spills every finding, so every corpus with findings
/// goes through the disk path (sort, marks, grouping, listings, baseline) and is held against
/// the same run in memory, in every format.
fn reports_are_the_same_whether_findings_stay_in_memory_or_spill_to_disk() {
    let dir = tempdir();
    let mut compared = 0;
    for name in [
        "workspace-n200-materializer-error",
        "workspace-n200-changed-uncompleted",
        "workspace-n200-broken-log",
        "workspace-n200-invalid-args",
        "workspace-n200-edited-row",
        "workspace-n200-deleted-definition",
        "workspace-n200-tampered-changeset",
        "workspace-n200-unique-constraint",
        "workspace-n200-writer-unknown",
        "features",
    ] {
        let c = corpus(name);
        let own = c.join("materializers.toml");
        let m = if own.is_file() { own } else { defs() };
        for format in ["json", "human", "junit", "markdown", "github"] {
            for extra in [
                &[][..],
                &["--max-findings", "0"][..],
                &["--max-findings", "2"][..],
            ] {
                if format != "human" && !extra.is_empty() {
                    continue;
                }
                let run = |spill: &str| {
                    let mut cmd = rehearse(&[&"check", &c, &"-m", &m, &"--format", &format]);
                    for a in extra {
                        cmd.arg(a);
                    }
                    cmd.env("REHEARSE_SPILL_AT", spill).run()
                };
                let (mem, disk) = (run("1000000"), run("1"));
                assert_eq!(
                    mem.exit_code(),
                    disk.exit_code(),
                    "{name} --format {format} {extra:?}"
                );
                let first = mem
                    .stdout
                    .lines()
                    .zip(disk.stdout.lines())
                    .position(|(a, b)| a != b);
                assert!(
                    mem.stdout == disk.stdout,
                    "{name} --format {format} {extra:?}: the report differs once its findings are spilled, from line {first:?}: {:?} against {:?}",
                    first.and_then(|i| mem.stdout.lines().nth(i)),
                    first.and_then(|i| disk.stdout.lines().nth(i)),
                );
                compared += 1;
            }
        }
        // A baseline written and applied with spilled findings marks the same roots.
        let base = |spill: &str| {
            let file = dir.path().join(format!("{name}-{spill}.json"));
            let out = rehearse(&[
                &"check",
                &c,
                &"-m",
                &m,
                &"--write-baseline",
                &file,
                &"--format",
                &"json",
            ])
            .env("REHEARSE_SPILL_AT", spill)
            .run();
            (
                out.exit_code(),
                out.stdout,
                std::fs::read(&file).unwrap_or_default(),
            )
        };
        assert_eq!(base("1000000"), base("1"), "{name}: baselines differ");
    }
    assert_eq!(compared, 70);
}

fn findings_exit_1_and_name_the_event() {
    rehearse(&[
        &"check",
        &corpus("workspace-n200-edited-row"),
        &"-m",
        &defs(),
    ])
    .code(1)
    .stdout_has("state-divergence   e160     v1.TodoUpdated")
    .stdout_has("todos['todo_ug4qhd18po'] differs in priority")
    .stdout_has("- expected 9 (integer)")
    .stdout_has("+ replayed 1 (integer)");
}

fn json_report_matches_its_schema_and_is_deterministic() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/report.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let corpora: Vec<PathBuf> = [
        "workspace-n200",
        "workspace-n300-lsdev",
        "workspace-n200-edited-row",
        "workspace-n200-broken-log",
    ]
    .iter()
    .map(|c| corpus(c))
    .collect();
    let check = || {
        let mut cmd = rehearse(&[&"check", &"-m", &defs()]);
        for c in &corpora {
            cmd.arg(c);
        }
        cmd
    };
    let first = check().args(&[&"--format", &"json"]).code(1);
    let second = check().args(&[&"--format", &"json"]).code(1);
    assert_eq!(first.stdout, second.stdout, "same inputs, same bytes");
    // Machine output leaves stderr quiet.
    first.stderr_empty();
    let report = first.json();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report["version"], 1);
    let verdicts: Vec<&str> = report["corpora"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "pass", "fail", "fail"]);
    let edited = &report["corpora"][2]["findings"][0];
    assert_eq!(edited["class"], "state-divergence");
    assert_eq!(edited["seqNumGlobal"], 160);
    assert_eq!(
        edited["key"][0],
        serde_json::json!({"type": "text", "value": "todo_ug4qhd18po"})
    );
    assert_eq!(
        edited["columns"][0]["expected"],
        serde_json::json!({"type": "integer", "value": 9})
    );
    assert_eq!(report["summary"]["findings"]["log-integrity"], 6);

    // --json FILE writes the same document beside human output.
    let dir = tempdir();
    let file = dir.path().join("report.json");
    check().args(&[&"--json", &file]).code(1).stdout_has("FAIL");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first.stdout);
}

fn inputs_are_byte_identical_after_check_and_no_journal_is_left() {
    let dirs = [
        corpus("workspace-n200"),
        corpus("workspace-n200-broken-log"),
    ];
    let before: Vec<_> = dirs.iter().map(|d| snapshot_tree(d)).collect();
    rehearse(&[
        &"check",
        &dirs[0],
        &dirs[1],
        &"-m",
        &defs(),
        &"--format",
        &"json",
    ])
    .code(1);
    let after: Vec<_> = dirs.iter().map(|d| snapshot_tree(d)).collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            b.keys().collect::<Vec<_>>(),
            a.keys().collect::<Vec<_>>(),
            "no file added or removed"
        );
        assert!(b == a, "every input file is byte-identical");
    }
}

fn a_hot_journal_beside_an_input_is_read_from_a_private_copy() {
    let dir = tempdir();
    copy_dir(&corpus("workspace-n200"), dir.path());
    let store = dir.path().join("workspace");
    // A stale rollback journal of the right shape: SQLite would roll it back on a read-write
    // open, which rehearse must never do to the user's file.
    let journal = store.join("eventlog@6.db-journal");
    std::fs::write(&journal, vec![0u8; 512]).unwrap();
    let before = snapshot_tree(dir.path());
    rehearse(&[&"check", &dir.path(), &"-m", &defs()])
        .success()
        .stdout_has("read a private copy");
    assert!(snapshot_tree(dir.path()) == before);
}

fn unreadable_input_exits_2_and_names_the_file() {
    let dir = tempdir();
    let missing = dir.path().join("nope");
    rehearse(&[&"check", &missing, &"-m", &defs()])
        .code(2)
        .stderr_has(&missing.to_string_lossy());

    let text = dir.path().join("eventlog.db");
    std::fs::write(&text, "this is not a database\n").unwrap();
    rehearse(&[&"check", &text, &"-m", &defs()])
        .code(2)
        .stderr_has("eventlog.db: not a SQLite database");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    rehearse(&[&"check", &empty, &"-m", &defs()])
        .code(2)
        .stderr_has("empty file");

    let log = std::fs::read(corpus("workspace-n200/workspace/eventlog@6.db")).unwrap();
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &log[..log.len() / 2]).unwrap();
    rehearse(&[&"check", &truncated, &"-m", &defs()])
        .code(2)
        .stderr_has("truncated.db: truncated SQLite database");
}

fn a_corrupt_page_mid_log_is_an_error_naming_the_file_and_position() {
    let dir = tempdir();
    let mut log = std::fs::read(corpus("workspace-n200/workspace/eventlog@6.db")).unwrap();
    // Page 8 holds eventlog rows after e63: the schema and the first rows read, then SQLite
    // finds the damage.
    let page = 8192;
    for b in log[page * 8..page * 9].iter_mut() {
        *b = 0xA5;
    }
    let path = dir.path().join("eventlog@6.db");
    std::fs::write(&path, &log).unwrap();
    rehearse(&[&"check", &path, &"-m", &defs()])
        .code(2)
        .stderr_has(
            "eventlog@6.db: reading the event after e63 failed: database disk image is malformed",
        )
        .stderr_lacks("panicked");
    // Every event before the damage is replayed before the error: the rows read ahead on
    // another thread, in batches, once went unreplayed when the read failed mid-batch.
    let defs = rehearse::definitions::Definitions::load(&defs()).unwrap();
    let mut materializer = rehearse::materialize::sql::SqlMaterializer::new(defs);
    let mut applied: u64 = 0;
    let err = rehearse::check::check_corpus_observed(
        &path,
        &mut materializer,
        &rehearse::check::CheckOptions::default(),
        |step| {
            if let rehearse::replay::Step::Applied { .. } = step {
                applied += 1;
            }
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("after e63"), "{err}");
    let before: i64 = rusqlite::Connection::open_with_flags(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
    .query_row(
        "SELECT count(*) FROM eventlog WHERE seqNumGlobal <= 63",
        [],
        |r| r.get(0),
    )
    .unwrap();
    assert_eq!(applied, before as u64);
}

fn sqlite_file(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn missing_tables_and_columns_are_named() {
    let dir = tempdir();
    let no_table = dir.path().join("a.db");
    sqlite_file(&no_table, "CREATE TABLE other (x)");
    rehearse(&[&"check", &no_table, &"-m", &defs()])
        .code(2)
        .stderr_has("a.db: no `eventlog` table");

    let no_column = dir.path().join("b.db");
    sqlite_file(
        &no_column,
        "CREATE TABLE eventlog (seqNumGlobal, seqNumClient, seqNumRebaseGeneration, parentSeqNumGlobal, parentSeqNumClient, parentSeqNumRebaseGeneration, name, clientId, sessionId, schemaHash, syncMetadataJson)",
    );
    rehearse(&[&"check", &no_column, &"-m", &defs()])
        .code(2)
        .stderr_has("b.db: the eventlog table lacks column argsJson");
}

fn other_storage_formats_are_refused_by_number() {
    let dir = tempdir();
    std::fs::copy(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        dir.path().join("eventlog@5.db"),
    )
    .unwrap();
    rehearse(&[&"check", &dir.path(), &"-m", &defs()])
        .code(2)
        .stderr_has("eventlog@5.db: LiveStore storage format 5 is not supported");
}

/// A log this user may not read is an input error (exit 2) naming the file. Root reads it all
/// the same, so as root the check runs as an unprivileged user (`setpriv`, uid and gid 65534)
/// on copies that user can reach: the binary and the definitions in a world-readable directory.
/// A readable copy of the same log beside the locked one must pass for that user, so that the
/// test proves the file's mode is what stops it, not an unreachable path.
fn unreadable_permissions_are_an_input_error() -> need::Result {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempdir();
    mode(dir.path(), 0o755);
    let log = corpus("workspace-n200/workspace/eventlog@6.db");
    let (locked, readable) = (dir.path().join("locked"), dir.path().join("readable"));
    for d in [&locked, &readable] {
        std::fs::create_dir(d).unwrap();
        std::fs::copy(&log, d.join("eventlog@6.db")).unwrap();
    }
    let (locked, readable) = (locked.join("eventlog@6.db"), readable.join("eventlog@6.db"));
    mode(&locked, 0o000);

    // As root: setpriv, a copy of the binary, and the definitions without their event schemas
    // (not needed to read a log) with their DDL beside them.
    let as_nobody = if std::fs::read(&locked).is_ok() {
        let setpriv = need::setpriv()?;
        let bin = dir.path().join("rehearse");
        std::fs::copy(crate::util::bin(), &bin).unwrap();
        mode(&bin, 0o755);
        let text = std::fs::read_to_string(defs()).unwrap();
        let text: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("event_schemas"))
            .collect();
        std::fs::write(dir.path().join("materializers.toml"), text.join("\n")).unwrap();
        std::fs::copy(corpus("workspace/state.sql"), dir.path().join("state.sql")).unwrap();
        Some((setpriv, bin))
    } else {
        None
    };
    let check = |log: &Path| match &as_nobody {
        None => rehearse(&[&"check", &log, &"-m", &defs(), &"--log-only"]),
        Some((setpriv, bin)) => {
            let mut cmd = command(
                setpriv,
                &[
                    &"--reuid=65534",
                    &"--regid=65534",
                    &"--clear-groups",
                    &"--",
                    bin,
                    &"check",
                    &log,
                    &"-m",
                    &dir.path().join("materializers.toml"),
                    &"--log-only",
                ],
            );
            cmd.env("NO_COLOR", "1").current_dir(dir.path());
            cmd
        }
    };
    // This user reaches the binary, the definitions and the directory: a readable log passes.
    check(&readable)
        .success()
        .stdout_has("replayed 200 events: 200 applied");
    check(&locked)
        .code(2)
        .stderr_has("eventlog@6.db: Permission denied");
    Ok(())
}

fn usage_errors_exit_2() {
    rehearse(&[&"check", &corpus("workspace-n200")])
        .code(2)
        .stderr_has("--materializers");
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &corpus("workspace-n300-lsdev"),
        &"-m",
        &defs(),
        &"--keep",
        &"x.db",
    ])
    .code(2)
    .stderr_has("single corpus");
}

fn defs_with(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("defs.toml");
    let ddl = corpus("workspace/state.sql");
    std::fs::write(
        &path,
        format!(
            "format = 1\n[state]\nddl_file = {:?}\n{body}",
            ddl.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn definitions_naming_what_the_state_lacks_are_errors_with_file_event_and_line() {
    let dir = tempdir();
    let cases = [
        (
            "\n[events.\"v1.X\"]\ninsert = \"nope\"\nvalues = { id = \"args.id\" }\n",
            "defs.toml:5: event \"v1.X\": the state has no table `nope`",
        ),
        (
            "\n[events.\"v1.X\"]\nupdate = \"todos\"\nset = { colour = \"args.c\" }\nwhere = { id = \"args.id\" }\n",
            "defs.toml:5: event \"v1.X\": the state table `todos` has no column `colour`",
        ),
        (
            "\n[events.\"v1.X\"]\nsql = \"UPDATE todos SET nope = 1 WHERE id = $id\"\nbinds = { id = \"args.id\" }\n",
            "defs.toml:5: event \"v1.X\": SQLite cannot prepare this SQL: no such column: nope",
        ),
        (
            "\n[events.\"v1.X\"]\nsql = \"UPDATE todos SET text = :t WHERE id = $id\"\nbinds = { id = \"args.id\", t = \"args.t\" }\n",
            "parameter :t would stay NULL",
        ),
        (
            "\n[events.\"v1.X\"]\ninsert = \"todos\"\nvalues = { id = \"args.id | upper\" }\n",
            "defs.toml:7: event \"v1.X\": in `args.id | upper`: unknown pipe `upper`",
        ),
        ("\n[events.\"v1.X\"\n", "defs.toml:5:"),
    ];
    for (body, want) in cases {
        let path = defs_with(dir.path(), body);
        rehearse(&[&"check", &corpus("workspace-n200"), &"-m", &path])
            .code(2)
            .stderr_has(want);
    }
}

fn keep_and_replay_write_the_replayed_state_and_diff_compares_it() {
    let dir = tempdir();
    let kept = dir.path().join("kept.db");
    let state = corpus("workspace-n200/workspace/state-186191357563@6.db");
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--keep",
        &kept,
    ])
    .success();
    rehearse(&[&"diff", &state, &kept])
        .success()
        .stdout_has("are equal");
    let page_size: i64 = rusqlite::Connection::open(&kept)
        .unwrap()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 8192, "LiveStore's page size");

    let out = dir.path().join("replayed.db");
    rehearse(&[
        &"replay",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--out",
        &out,
    ])
    .success();
    let edited = corpus("workspace-n200-edited-row/workspace/state-186191357563@6.db");
    let report = rehearse(&[&"diff", &edited, &out, &"--format", &"json"])
        .code(1)
        .json();
    let f = &report["corpora"][0]["findings"][0];
    assert_eq!(f["divergence"], "row-differs");
    assert_eq!(f["columns"][0]["column"], "priority");
    rehearse(&[
        &"diff",
        &edited,
        &out,
        &"--ignore-column",
        &"todos.priority",
    ])
    .success();
}

/// Nothing compared is never a pass: a log on its own, or a store whose state file rehearse does
/// not recognise, fails with comparison-skipped (naming the files it passed over) unless
/// --log-only says a replay alone is what is wanted; a path to a store's log means the store.
fn nothing_compared_is_not_a_pass() {
    // The log of a store directory means that store: compared, and it passes.
    let report = rehearse(&[
        &"check",
        &corpus("workspace-n200/workspace/eventlog@6.db"),
        &"-m",
        &defs(),
        &"--format",
        &"json",
    ])
    .success()
    .json();
    let c = &report["corpora"][0];
    assert_eq!(c["kind"], "store");
    assert_eq!(c["comparison"]["status"], "compared");

    // A log on its own.
    let dir = tempdir();
    let bare = dir.path().join("log.db");
    std::fs::copy(corpus("workspace-n200/workspace/eventlog@6.db"), &bare).unwrap();
    let report = rehearse(&[&"check", &bare, &"-m", &defs(), &"--format", &"json"])
        .code(1)
        .json();
    let c = &report["corpora"][0];
    assert_eq!(c["kind"], "eventlog");
    assert_eq!(c["comparison"]["status"], "skipped");
    assert_eq!(c["applied"], 200);
    let classes: Vec<&str> = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["comparison-skipped"], "{c}");
    assert_eq!(c["findings"][0]["severity"], "error");
    rehearse(&[&"check", &bare, &"-m", &defs(), &"--log-only"])
        .success()
        .stdout_has("comparison skipped: no recorded state database");

    // A store whose state file is named as no LiveStore names it.
    let store = dir.path().join("store");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    std::fs::rename(
        store.join("state-186191357563@6.db"),
        store.join("state-backup.db"),
    )
    .unwrap();
    rehearse(&[&"check", &store, &"-m", &defs()])
        .code(1)
        .stdout_has("comparison-skipped")
        .stdout_has("not named as LiveStore names them: state-backup.db");
}

/// LiveStore after 0.4 names state files by a storage fingerprint (43 base64url characters)
/// and marks a finished rebuild in `__livestore_rebuild`; no 0.5 package is published yet, so
/// a store written by LiveStore 0.4 stands in, renamed and given the table.
fn later_livestore_state_names_are_recognised_and_an_unfinished_rebuild_is_not_trusted() {
    let dir = tempdir();
    let store = dir.path().join("store");
    copy_dir(&corpus("workspace-n200/workspace"), &store);
    let fingerprint = "1_2x-8RoI45JYrfY63I7lNiHj4ptli9Ong1XNS1gA10";
    assert_eq!(fingerprint.len(), 43);
    let state = store.join(format!("state{fingerprint}@6.db"));
    std::fs::rename(store.join("state-186191357563@6.db"), &state).unwrap();
    rehearse(&[&"check", &store, &"-m", &defs()])
        .success()
        .stdout_has(&format!("compared 6 tables with {}", state.display()));

    // A rebuild cut off before its completion row: not to be trusted.
    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.execute_batch("CREATE TABLE __livestore_rebuild (id integer primary key) strict")
        .unwrap();
    drop(conn);
    rehearse(&[&"check", &store, &"-m", &defs()])
        .code(1)
        .stdout_has("unfinished-rebuild")
        .stdout_has("was left by a rebuild that did not finish");
    // The completion row makes it a finished rebuild; the system table is not compared.
    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.execute("INSERT INTO __livestore_rebuild (id) VALUES (1)", [])
        .unwrap();
    drop(conn);
    rehearse(&[&"check", &store, &"-m", &defs()]).success();
}

/// The log's length is only a hint to the materializer (how many helpers to start): a log whose
/// counting index is damaged while its rows read fine still replays, as it did before rehearse
/// counted events (it was unreadable, exit 2, for a while).
fn a_log_that_cannot_be_counted_still_replays() {
    let dir = tempdir();
    copy_dir(&corpus("workspace-n200"), dir.path());
    let log = dir.path().join("workspace/eventlog@6.db");
    let (root, page_size): (i64, i64) = {
        let c = rusqlite::Connection::open(&log).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'idx_eventlog_seqNumGlobal'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page_size = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        // The count uses this index, the replay's ordered read does not.
        let plan: String = c
            .query_row(
                "EXPLAIN QUERY PLAN SELECT count(*) FROM eventlog",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("idx_eventlog_seqNumGlobal"), "{plan}");
        (root, page_size)
    };
    let mut bytes = std::fs::read(&log).unwrap();
    let at = ((root - 1) * page_size) as usize;
    bytes[at..at + page_size as usize].fill(0xff);
    std::fs::write(&log, bytes).unwrap();
    let counted = rusqlite::Connection::open(&log).unwrap().query_row(
        "SELECT count(*) FROM eventlog",
        [],
        |r| r.get::<_, i64>(0),
    );
    assert!(counted.is_err(), "the index still counts: {counted:?}");

    rehearse(&[&"check", &dir.path(), &"-m", &defs()])
        .success()
        .stdout_has("replayed 200 events: 200 applied");
}

fn on_error_stop_stops_at_the_first_failing_event() {
    let defs = corpus("workspace-n200-materializer-error/materializers.toml");
    let report = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &defs,
        &"--on-error",
        &"stop",
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let c = &report["corpora"][0];
    // e68 is the 75th row of the log (client-only events sit between the synced ones).
    assert_eq!(c["events"], 75, "replay read no further than e68");
    assert_eq!(c["applied"], 74);
    assert!(
        c["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "replay stopped at e68 (--on-error stop)"),
        "{c}"
    );
}

/// The replay runs without savepoints while no event fails after changing something; the
/// first that does (here e17, whose second statement fails) makes it start over with them, and
/// the report is the one a savepoint per event gives: e17's first statement (completing the
/// todo) is undone, so the todo differs from LiveStore's, and every event before it stays.
fn an_event_failing_at_its_second_statement_leaves_nothing_of_its_first() {
    let dir = tempdir();
    let text = defs_text();
    let second = "sql = \"UPDATE project_stats SET completedCount = completedCount + 1, lastActivityAt = $at WHERE projectId = $projectId\"\nbinds = { projectId = \"args.projectId\", at = \"args.completedAt | iso\" }";
    assert!(text.contains(second), "the workspace definitions changed");
    let failing = text.replace(
        second,
        "sql = \"UPDATE project_stats SET completedCount = completedCount + 1, lastActivityAt = $at WHERE projectId = $projectId AND (CASE WHEN $id = 'todo_twq657isfh' THEN json('{') END) IS NULL\"\nbinds = { projectId = \"args.projectId\", at = \"args.completedAt | iso\", id = \"args.id\" }",
    );
    let path = dir.path().join("materializers.toml");
    std::fs::write(&path, failing).unwrap();
    let report = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &path,
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let c = &report["corpora"][0];
    assert_eq!(
        (c["events"].as_u64(), c["applied"].as_u64()),
        (Some(200), Some(199))
    );
    let findings = c["findings"].as_array().unwrap();
    let at = |f: &Value| {
        (
            f["class"].as_str().unwrap_or("").to_string(),
            f["seqNumGlobal"].as_i64(),
        )
    };
    assert_eq!(
        at(&findings[0]),
        ("materializer-error".to_string(), Some(17))
    );
    assert_eq!(findings[0]["statement"], 2);
    let todo = findings
        .iter()
        .find(|f| f["table"] == "todos")
        .expect("the todo e17 completed first");
    assert_eq!(todo["key"][0]["value"], "todo_twq657isfh");
    let completed = &todo["columns"][0];
    assert_eq!(completed["column"], "completed");
    assert_eq!(
        (
            &completed["expected"]["value"],
            &completed["actual"]["value"]
        ),
        (&Value::from(1), &Value::from(0))
    );
    assert!(
        findings
            .iter()
            .any(|f| f["table"] == "project_stats" && f["columns"][0]["column"] == "completedCount"),
        "e17's count is missing from its project"
    );
    // Everything else replayed: the other 52 todos agree.
    let todos = c["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "todos")
        .unwrap();
    assert_eq!(
        (todos["matching"].as_u64(), todos["differing"].as_u64()),
        (Some(52), Some(1))
    );
}

fn of_several_state_files_the_one_matching_the_definitions_is_chosen() {
    let dir = tempdir();
    copy_dir(&corpus("workspace-n200"), dir.path());
    let store = dir.path().join("workspace");
    // An older state file (another schema hash) that lacks a table the definitions write,
    // modified after the current one: the most recent, but not a match.
    let old = store.join("state-999@6.db");
    std::fs::copy(store.join("state-186191357563@6.db"), &old).unwrap();
    sqlite_file(&old, "DROP TABLE project_stats");
    let report = rehearse(&[&"check", &dir.path(), &"-m", &defs(), &"--format", &"json"])
        .success()
        .json();
    let snap = &report["corpora"][0]["snapshot"];
    assert!(
        snap["path"]
            .as_str()
            .unwrap()
            .ends_with("state-186191357563@6.db"),
        "{snap}"
    );
    assert!(
        snap["reason"].as_str().unwrap().contains("the only one of"),
        "{snap}"
    );
}

fn inspect_summarises_a_corpus() {
    rehearse(&[&"inspect", &corpus("workspace-n200")])
        .success()
        .stdout_has("events      200 (15 client-only")
        .stdout_has("sync head   e0")
        .stdout_has("gen-client/static (200)")
        .stdout_has("v2.TodoCreated");
    let v = rehearse(&[&"inspect", &corpus("workspace-n200"), &"--format", &"json"])
        .success()
        .json();
    assert_eq!(v["names"]["v2.TodoCreated"], 45);
    assert_eq!(v["snapshots"][0]["tables"]["todos"], 53);
    assert_eq!(v["snapshots"][0]["changesets"], 200);
}

fn every_command_explains_itself_with_an_example() {
    // `schema` and `definitions` only group their subcommands, which have their examples.
    for cmd in crate::snapshots::COMMANDS
        .iter()
        .filter(|c| **c != "schema" && **c != "definitions")
    {
        let mut run = rehearse(&[]);
        for word in cmd.split(' ') {
            run.arg(word);
        }
        run.arg("--help").success().stdout_has("Example");
    }
}

fn every_bundled_definitions_file_matches_the_definitions_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/materializers.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("corpora")).unwrap() {
        let path = entry.unwrap().path().join("materializers.toml");
        if !path.is_file() {
            continue;
        }
        let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let doc = serde_json::to_value(doc).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e} at {}", path.display(), e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        checked += 1;
    }
    assert!(checked >= 4, "checked {checked} files");
    // And the schema rejects what rehearse rejects.
    let bad = serde_json::json!({"format": 1, "events": {"v1.X": {"update": "t"}}});
    assert!(!validator.is_valid(&bad), "update without set");
}

fn a_backup_package_is_detected_and_its_manifest_format_checked() {
    let dir = tempdir();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::copy(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        pkg.join("eventlog.db"),
    )
    .unwrap();
    std::fs::copy(
        corpus("workspace-n200/workspace/state-186191357563@6.db"),
        pkg.join("state.db"),
    )
    .unwrap();
    std::fs::write(
        pkg.join("manifest.json"),
        r#"{"storeId":"workspace","storageFormatVersion":6}"#,
    )
    .unwrap();
    let report = rehearse(&[&"check", &pkg, &"-m", &defs(), &"--format", &"json"])
        .success()
        .json();
    let c = &report["corpora"][0];
    assert_eq!(c["kind"], "package");
    assert_eq!(c["comparison"]["status"], "compared");
    assert!(
        c["snapshot"]["path"]
            .as_str()
            .unwrap()
            .ends_with("state.db"),
        "{c}"
    );

    std::fs::write(
        pkg.join("manifest.json"),
        r#"{"storeId":"workspace","storageFormatVersion":5}"#,
    )
    .unwrap();
    rehearse(&[&"check", &pkg, &"-m", &defs()])
        .code(2)
        .stderr_has("manifest.json: LiveStore storage format 5 is not supported");

    // An unreadable manifest is noted, the log still checked.
    std::fs::write(pkg.join("manifest.json"), "{ not json").unwrap();
    rehearse(&[&"check", &pkg, &"-m", &defs()])
        .success()
        .stdout_has("manifest.json is not valid JSON");
}

fn diff_names_its_sides_a_and_b() {
    let a = corpus("workspace-n200-edited-row/workspace/state-186191357563@6.db");
    let b = corpus("workspace-n200/workspace/state-186191357563@6.db");
    rehearse(&[&"diff", &a, &b])
        .code(1)
        .stdout_has("todos['todo_ug4qhd18po'] differs in priority")
        .stdout_has("- a 9 (integer)")
        .stdout_has("+ b 1 (integer)")
        .stdout_lacks("replay");
}

fn a_materializer_that_ends_the_transaction_is_refused_by_name() {
    let dir = tempdir();
    // Every registration inserts the same id: the second conflicts, and OR ROLLBACK would
    // roll the whole replay back.
    let path = defs_with(
        dir.path(),
        "\n[events.\"v1.UserRegistered\"]\nsql = \"INSERT OR ROLLBACK INTO users (id, createdAt) VALUES ('same', 'x')\"\n",
    );
    rehearse(&[&"check", &corpus("workspace-n200"), &"-m", &path])
        .code(2)
        .stderr_has(
            "event \"v1.UserRegistered\": at e2 the statements ended rehearse's replay transaction",
        );
}

/// Copies corpora (store directories) into a fresh tree, for tests that write beside them.
fn corpus_tree(names: &[&str]) -> tempfile::TempDir {
    let dir = tempdir();
    for name in names {
        copy_dir(&corpus(name), &dir.path().join(name));
    }
    dir
}

fn junit_github_and_markdown_outputs_are_readable() {
    let dir = tempdir();
    let junit = dir.path().join("junit.xml");
    let markdown = dir.path().join("summary.md");
    let run = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &corpus("workspace-n200-broken-log"),
        &corpus("workspace-n200-writer-unknown"),
        &"-m",
        &defs(),
        &"--format",
        &"github",
        &"--junit",
        &junit,
        &"--markdown",
        &markdown,
    ])
    .code(1);

    // GitHub: one annotation per root cause, errors and warnings apart: the broken log's six
    // findings are three causes (v1.SearchPerformed at 3 events, v1.TodoUpdated at 2, the
    // sync head), the two writer-unknown warnings two.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let errors = lines.iter().filter(|l| l.starts_with("::error ")).count();
    let warnings = lines.iter().filter(|l| l.starts_with("::warning ")).count();
    assert_eq!((errors, warnings), (3, 2), "{run}");
    run.stdout_has("title=rehearse log-integrity at e22.1 (v1.SearchPerformed)::")
        .stdout_has("v1.SearchPerformed: the log is damaged at 3 events, first e22.1.")
        .stdout_has("file=");

    // JUnit: parsed; a suite per corpus, a case per root cause (one passing case where there
    // is none), failures where errors are.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let suites: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 3, "{xml}");
    let cases: Vec<usize> = suites
        .iter()
        .map(|s| s.children().filter(|n| n.has_tag_name("testcase")).count())
        .collect();
    assert_eq!(cases, [1, 3, 2], "{xml}");
    let failed: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .map(|f| {
            let case = f.parent().unwrap();
            (
                case.attribute("classname").unwrap().to_string(),
                case.attribute("name").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(suite, case)| suite.ends_with("workspace-n200-broken-log")
                && case.starts_with("log-integrity")),
        "{failed:?}"
    );
    let root = doc.root_element();
    assert_eq!(root.attribute("failures"), Some("3"), "{xml}");
    let warned = doc
        .descendants()
        .filter(|n| n.has_tag_name("system-out"))
        .any(|n| n.text().unwrap_or("").contains("[warning]"));
    assert!(warned, "warnings are listed in system-out: {xml}");

    // Markdown: a table row per corpus and the failing corpus's findings.
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.starts_with("## rehearse: ❌ some events do not replay"),
        "{md}"
    );
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| `")).count(),
        3,
        "{md}"
    );
    assert!(
        md.contains("| v1.TodoUpdated | log-integrity | 2 | e150 | 0 |"),
        "{md}"
    );
}

fn severities_can_be_raised_lowered_or_turned_off() {
    let wu = corpus("workspace-n200-writer-unknown");
    // Warnings do not fail the gate.
    let report = rehearse(&[&"check", &wu, &"-m", &defs(), &"--format", &"json"])
        .success()
        .json();
    let c = &report["corpora"][0];
    assert_eq!(c["verdict"], "pass");
    assert_eq!(c["findings"][0]["severity"], "warning");

    rehearse(&[
        &"check",
        &wu,
        &"-m",
        &defs(),
        &"--severity",
        &"writer-unknown=error",
    ])
    .code(1);

    let report = rehearse(&[
        &"check",
        &wu,
        &"-m",
        &defs(),
        &"--severity",
        &"writer-unknown=off",
        &"--format",
        &"json",
    ])
    .success()
    .json();
    assert_eq!(
        report["corpora"][0]["findings"].as_array().unwrap().len(),
        0,
        "{report}"
    );

    rehearse(&[
        &"check",
        &wu,
        &"-m",
        &defs(),
        &"--severity",
        &"nonsense=error",
    ])
    .code(2)
    .stderr_has("unknown class \"nonsense\"");
}

fn the_baseline_flow_write_pass_new_finding_fails_stale_entry_detected() {
    let dir = tempdir();
    let baseline = dir.path().join("baseline.json");
    let n200 = corpus("workspace-n200");
    let deleted = corpus("workspace-n200-deleted-definition/materializers.toml");

    // Write: the current findings become the baseline, and the gate passes against it.
    rehearse(&[
        &"check",
        &n200,
        &"-m",
        &deleted,
        &"--write-baseline",
        &baseline,
    ])
    .success()
    .stderr_has("wrote 13 root findings to the baseline");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/baseline.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(
        validator.is_valid(&written),
        "the baseline matches its schema"
    );
    // The 13 unknown events are the roots; the 8 findings that follow from them are
    // acknowledged with them. Corpora are named relative to the baseline, keys as JSON.
    let entries = written["findings"].as_array().unwrap();
    assert_eq!(entries.len(), 13);
    assert!(
        entries.iter().all(|e| e["class"] == "unknown-event"),
        "{written}"
    );
    assert_eq!(written["version"], 2);

    // Pass: the same findings, acknowledged.
    let report = rehearse(&[
        &"check",
        &n200,
        &"-m",
        &deleted,
        &"--baseline",
        &baseline,
        &"--format",
        &"json",
    ])
    .success()
    .json();
    assert_eq!(report["summary"]["baselined"], 21);
    assert!(
        report["corpora"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["baselined"] == true),
        "{report}"
    );

    // A new finding fails: break one more definition.
    let worse = dir.path().join("worse.toml");
    let text = format!(
        "format = 1\nextends = {:?}\n\n[events.\"v1.UserDeactivated\"]\nupdate = \"users\"\nset = {{ isActive = false, email = \"null\" }}\nwhere = {{ id = \"args.id\" }}\n",
        deleted.display().to_string()
    );
    std::fs::write(&worse, text).unwrap();
    rehearse(&[&"check", &n200, &"-m", &worse, &"--baseline", &baseline])
        .code(1)
        .stdout_has("materializer-error e68      v1.UserDeactivated\n")
        .stdout_has("(baselined)");

    // Stale: with the definitions fixed, every entry is stale; reported, failing only under
    // --strict-baseline.
    rehearse(&[&"check", &n200, &"-m", &defs(), &"--baseline", &baseline])
        .success()
        .stdout_has("stale baseline entries");
    let report = rehearse(&[
        &"check",
        &n200,
        &"-m",
        &defs(),
        &"--baseline",
        &baseline,
        &"--strict-baseline",
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let c = &report["corpora"][0];
    assert_eq!(c["staleBaseline"].as_array().unwrap().len(), 13, "{c}");
    assert_eq!(c["verdict"], "fail");
}

fn record_check_pending_and_accept_follow_the_insta_workflow() {
    // A corpus without a state database: only the event log.
    let dir = tempdir();
    let store = dir.path().join("export");
    std::fs::create_dir(&store).unwrap();
    std::fs::copy(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        store.join("eventlog@6.db"),
    )
    .unwrap();
    let accepted = store.join("eventlog@6.db.snapshot");
    let pending = store.join("eventlog@6.db.snapshot.new");
    let ci = |args: &[&dyn AsRef<OsStr>], ci: &str| {
        let mut cmd = rehearse(args);
        cmd.env("CI", ci);
        cmd
    };
    // Nothing to compare with yet: not a pass, unless asked for on purpose.
    ci(&[&"check", &store, &"-m", &defs()], "")
        .code(1)
        .stdout_has("comparison skipped: no recorded state database and no accepted snapshot")
        .stdout_has("comparison-skipped");
    ci(&[&"check", &store, &"-m", &defs(), &"--log-only"], "")
        .success()
        .stdout_lacks("comparison-skipped");

    ci(&[&"record", &store, &"-m", &defs()], "").success();
    let text = std::fs::read_to_string(&accepted).unwrap();
    assert!(text.starts_with("# rehearse snapshot 1"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with('[')).count(),
        96,
        "one line per row of the 96"
    );
    assert!(text.contains("table \"todos\" key [\"id\"]"), "{text}");

    let report = ci(
        &[&"check", &store, &"-m", &defs(), &"--format", &"json"],
        "",
    )
    .success()
    .json();
    let c = &report["corpora"][0];
    assert_eq!(c["comparison"]["status"], "compared");
    assert!(
        c["snapshot"]["path"]
            .as_str()
            .unwrap()
            .ends_with("eventlog@6.db.snapshot"),
        "{c}"
    );
    assert_eq!(c["tables"].as_array().unwrap().len(), 6);

    // A changed materializer: the replay differs; in CI nothing is written...
    let changed = corpus("workspace-n200-changed-definition/materializers.toml");
    ci(&[&"check", &store, &"-m", &changed], "true")
        .code(1)
        .stdout_has("no pending snapshot written");
    assert!(!pending.exists(), "nothing written in CI");
    // ...outside CI the new state is written as pending, and the accepted one kept.
    let run = ci(&[&"check", &store, &"-m", &changed], "").code(1);
    run.stdout_has("project_stats['prj_5h5sbkkkwx'] differs in completedCount");
    assert!(pending.is_file(), "{run}");
    assert_eq!(std::fs::read_to_string(&accepted).unwrap(), text);

    // accept promotes it; the changed materializer then passes.
    ci(&[&"accept", &dir.path()], "")
        .success()
        .stdout_has("accepted ");
    assert!(!pending.exists());
    ci(&[&"check", &store, &"-m", &changed], "").success();
}

fn a_directory_of_corpora_is_searched_and_partitions_split_it() {
    let tree = corpus_tree(&[
        "workspace-n200",
        "workspace-n200-edited-row",
        "workspace-n300-lsdev",
        "workspace-n200-writer-unknown",
    ]);
    // The writer-unknown copy has no state database of its own: its comparison is skipped.
    // The edited row fails.
    let report = rehearse(&[
        &"check",
        &tree.path(),
        &"-m",
        &defs(),
        &"--format",
        &"json",
        &"--severity",
        &"writer-unknown=off",
    ])
    .code(1)
    .json();
    let names: Vec<String> = report["corpora"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["corpus"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .take(2)
                .collect::<Vec<_>>()
                .join("<")
        })
        .collect();
    assert_eq!(
        names,
        [
            "workspace<workspace-n200",
            "workspace<workspace-n200-edited-row",
            "workspace<workspace-n200-writer-unknown",
            "workspace<workspace-n300-lsdev"
        ],
        "every corpus found, in path order"
    );

    let mut seen = Vec::new();
    for k in 1..=3 {
        let share = format!("{k}/3");
        let report = rehearse(&[
            &"check",
            &tree.path(),
            &"-m",
            &defs(),
            &"--format",
            &"json",
            &"--partition",
            &share,
        ])
        .run()
        .json();
        assert_eq!(report["partition"], format!("count:{share}"));
        for c in report["corpora"].as_array().unwrap() {
            seen.push(c["corpus"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 4, "every corpus in exactly one share: {seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");

    rehearse(&[
        &"check",
        &tree.path(),
        &"-m",
        &defs(),
        &"--partition",
        &"4/3",
    ])
    .code(2);
}

fn parallel_jobs_give_the_same_report() {
    let tree = corpus_tree(&[
        "workspace-n200",
        "workspace-n200-edited-row",
        "workspace-n300-lsdev",
    ]);
    let jobs = |j: &str| {
        rehearse(&[
            &"check",
            &tree.path(),
            &"-m",
            &defs(),
            &"--format",
            &"json",
            &"-j",
            &j,
        ])
        .run()
    };
    let (one, two) = (jobs("1"), jobs("2"));
    one.code(1);
    assert_eq!(one.stdout, two.stdout, "{two}");
}

fn bisect_finds_the_first_event_a_changed_materializer_treats_differently() {
    let n200 = corpus("workspace-n200");
    let changed = corpus("workspace-n200-changed-definition/materializers.toml");
    rehearse(&[&"bisect", &n200, &"--old", &defs(), &"--new", &defs()])
        .success()
        .stdout_has("no difference: the new materializers treat all 200 events the same");

    rehearse(&[&"bisect", &n200, &"--old", &defs(), &"--new", &changed])
        .code(1)
        .stdout_has("\ne17 v1.TodoCompleted\n")
        .stdout_has("- update project_stats['prj_5h5sbkkkwx']: completedCount 0 → 1")
        .stdout_has("+ update project_stats['prj_5h5sbkkkwx']: completedCount 0 → 2")
        .stdout_has("stopped at the first difference");

    // --all lists every v1.TodoCompleted (27 in the log), and nothing else.
    let report = rehearse(&[
        &"bisect",
        &n200,
        &"--old",
        &defs(),
        &"--new",
        &changed,
        &"--all",
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 27);
    assert!(
        diffs
            .iter()
            .all(|d| d["event"]["name"] == "v1.TodoCompleted"),
        "{report}"
    );
    assert_eq!(report["complete"], true);
    assert_eq!(diffs[0]["old"]["outcome"], "applied");

    // --until replays a prefix; --event focuses on one event type.
    let diffs = rehearse(&[
        &"bisect",
        &n200,
        &"--old",
        &defs(),
        &"--new",
        &changed,
        &"--all",
        &"--until",
        &"e60",
        &"--format",
        &"json",
    ])
    .run()
    .json()["differences"]
        .as_array()
        .unwrap()
        .len();
    assert!(diffs > 0 && diffs < 27, "{diffs}");
    // No v1.TodoUpdated changes.
    rehearse(&[
        &"bisect",
        &n200,
        &"--old",
        &defs(),
        &"--new",
        &changed,
        &"--all",
        &"--event",
        &"v1.TodoUpdated",
    ])
    .success();

    // An error on one side only is a difference too.
    let failing = corpus("workspace-n200-materializer-error/materializers.toml");
    rehearse(&[&"bisect", &n200, &"--old", &defs(), &"--new", &failing])
        .code(1)
        .stdout_has("\ne68 v1.UserDeactivated\n")
        .stdout_has("+ not applied: materializer-error:");
}

fn blame_tells_a_rows_history_and_spots_a_state_changed_outside_the_log() {
    let blame = |extra: &[&dyn AsRef<OsStr>]| {
        let mut cmd = rehearse(&[
            &"blame",
            &corpus("workspace-n200-edited-row"),
            &"-m",
            &defs(),
            &"--table",
            &"todos",
            &"--key",
            &"todo_ug4qhd18po",
        ]);
        cmd.args(extra);
        cmd
    };
    let run = blame(&[]).success();
    for want in [
        "history of todos['todo_ug4qhd18po']",
        "\n  e113 v2.TodoCreated\n",
        "\n  e119 v1.TodoCompleted\n",
        "\n  e160 v1.TodoUpdated\n",
        "priority 2 → 1",
        "LiveStore recorded the same",
        "priority: recorded state 9, replay 1",
        "no event wrote 9 — the state was changed outside the log",
    ] {
        run.stdout_has(want);
    }
    let r = blame(&[&"--format", &"json"]).run().json();
    let seqs: Vec<i64> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["seqNumGlobal"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [113, 119, 160]);
    assert_eq!(
        r["recordedRow"]["priority"],
        serde_json::json!({"type": "integer", "value": 9})
    );

    rehearse(&[
        &"blame",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--table",
        &"todos",
        &"--key",
        &"a",
        &"--key",
        &"b",
    ])
    .code(2)
    .stderr_has("give one --key per column");
}

fn determinism_catches_a_materializer_that_reads_random_numbers() {
    let dir = tempdir();
    let random = defs_with(
        dir.path(),
        &std::fs::read_to_string(defs())
            .unwrap()
            .split_once("[tables.users.columns]")
            .map(|(_, rest)| format!("[tables.users.columns]{rest}"))
            .unwrap()
            .replace(
                "update = \"todos\"\nset = { updatedAt = \"args.updatedAt\", text = \"args.text\", priority = \"args.priority\", assigneeId = \"args.assigneeId\" }\nwhere = { id = \"args.id\" }",
                "sql = \"UPDATE todos SET priority = abs(random()) % 1000000 WHERE id = $id\"\nbinds = { id = \"args.id\" }",
            ),
    );
    let report = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &random,
        &"--determinism",
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let nondet: Vec<&Value> = report["corpora"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class"] == "nondeterministic")
        .collect();
    // Every one of the log's 33 v1.TodoUpdated events, and nothing else.
    assert_eq!(nondet.len(), 33, "{report}");
    assert!(nondet.iter().all(|f| f["name"] == "v1.TodoUpdated"));
    assert_eq!(nondet[0]["changes"]["expected"]["label"], "first replay");

    // Deterministic definitions pass.
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--determinism",
    ])
    .success();
}

fn git_bisect_runs_skip_commits_that_cannot_be_tested() {
    let dir = tempdir();
    rehearse(&[
        &"check",
        &dir.path().join("missing"),
        &"-m",
        &defs(),
        &"--git-bisect",
    ])
    .code(125);
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "format = 1\n[events.\"x\"\n").unwrap();
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &broken,
        &"--git-bisect",
    ])
    .code(125);
    rehearse(&[
        &"check",
        &corpus("workspace-n200-edited-row"),
        &"-m",
        &defs(),
        &"--git-bisect",
    ])
    .code(1);
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--git-bisect",
    ])
    .success();
}

fn a_first_divergence_shows_both_sides_and_the_events_args() {
    rehearse(&[
        &"check",
        &corpus("workspace-n200-tampered-changeset"),
        &"-m",
        &defs(),
    ])
    .code(1)
    .stdout_has("first-divergence   e100     v2.TodoCreated")
    .stdout_has("- LiveStore recorded + replayed")
    .stdout_has("args: {\"id\":")
    .stdout_has("- insert comments[")
    .stdout_has("+ insert todos[");
    // Without the event-by-event comparison the states agree.
    rehearse(&[
        &"check",
        &corpus("workspace-n200-tampered-changeset"),
        &"-m",
        &defs(),
        &"--no-changesets",
    ])
    .success();
}

fn a_scratch_dir_gives_the_same_reports_and_is_left_empty() {
    let scratch = tempdir();
    let d = defs();
    let edited = corpus("workspace-n200-edited-row");
    let check = |extra: &[&dyn AsRef<OsStr>]| {
        let mut cmd = rehearse(&[&"check", &edited, &"-m", &d, &"--format", &"json"]);
        cmd.args(extra);
        cmd
    };
    let default = check(&[]).code(1);
    let disk = check(&[&"--scratch-dir", &scratch.path()]).code(1);
    assert_eq!(default.stdout, disk.stdout, "{disk}");

    // An accepted snapshot is loaded into a file under the same directory.
    let store = tempdir();
    std::fs::copy(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        store.path().join("eventlog@6.db"),
    )
    .unwrap();
    rehearse(&[
        &"record",
        &store.path(),
        &"-m",
        &d,
        &"--scratch-dir",
        &scratch.path(),
    ])
    .success();
    let against_snapshot = |extra: &[&dyn AsRef<OsStr>]| {
        let mut cmd = rehearse(&[&"check", &store.path(), &"-m", &d, &"--format", &"json"]);
        cmd.args(extra);
        cmd.success()
    };
    let default = against_snapshot(&[]);
    let disk = against_snapshot(&[&"--scratch-dir", &scratch.path()]);
    assert_eq!(default.stdout, disk.stdout, "{disk}");
    assert_eq!(
        disk.json()["corpora"][0]["comparison"]["status"],
        "compared"
    );

    let changed = corpus("workspace-n200-changed-definition/materializers.toml");
    let n200 = corpus("workspace-n200");
    let bisect = |extra: &[&dyn AsRef<OsStr>]| {
        let mut cmd = rehearse(&[
            &"bisect",
            &n200,
            &"--old",
            &d,
            &"--new",
            &changed,
            &"--all",
            &"--format",
            &"json",
        ]);
        cmd.args(extra);
        cmd
    };
    let default = bisect(&[]).code(1);
    let disk = bisect(&[&"--scratch-dir", &scratch.path()]).run();
    assert_eq!(default.stdout, disk.stdout, "{disk}");

    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().collect();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");

    let missing = scratch.path().join("does-not-exist");
    check(&[&"--scratch-dir", &missing])
        .code(2)
        .stderr_has("does-not-exist");
}

fn git_bisect_run_finds_the_commit_that_broke_a_materializer() -> need::Result {
    need::git()?;
    let repo = tempdir();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", repo.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "git {args:?}: {text}");
        text
    };
    let good = std::fs::read_to_string(defs())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("event_schemas"))
        .collect::<Vec<_>>()
        .join("\n");
    let bad = good.replace(
        "completedCount = completedCount + 1",
        "completedCount = completedCount + 2",
    );
    assert_ne!(bad, good);
    // good, good, unloadable (skipped), good again, bad (the culprit), still bad.
    let history = [
        ("start", good.clone()),
        ("reword", format!("# the app's materializers\n{good}")),
        (
            "half-done refactor",
            "format = 1\n[events.\"x\"\n".to_string(),
        ),
        (
            "finish refactor",
            format!("# the app's materializers\n{good}"),
        ),
        ("count completions twice", bad.clone()),
        ("later work", format!("{bad}\n# more\n")),
    ];
    git(&["init", "-q"]);
    std::fs::copy(corpus("workspace/state.sql"), repo.path().join("state.sql")).unwrap();
    git(&["add", "state.sql"]);
    let mut commits = Vec::new();
    for (message, defs) in &history {
        std::fs::write(repo.path().join("materializers.toml"), defs).unwrap();
        git(&["add", "materializers.toml"]);
        git(&["commit", "-q", "-m", message]);
        commits.push(git(&["rev-parse", "HEAD"]).trim().to_string());
    }
    git(&["bisect", "start", &commits[5], &commits[0]]);
    let out = git(&[
        "bisect",
        "run",
        env!("CARGO_BIN_EXE_rehearse"),
        "check",
        corpus("workspace-n200").to_str().unwrap(),
        "--materializers",
        "materializers.toml",
        "--git-bisect",
        "--no-progress",
    ]);
    assert!(
        out.contains(&format!("{} is the first bad commit", commits[4])),
        "{out}"
    );
    Ok(())
}

/// Every command's JSON is a contract: versioned, with a schema in `schemas/`.
fn bisect_blame_and_inspect_json_are_versioned_and_match_their_schemas() {
    let changed = corpus("workspace-n200-materializer-error/materializers.toml");
    let bisect = rehearse(&[
        &"bisect",
        &corpus("workspace-n200"),
        &"--old",
        &defs(),
        &"--new",
        &changed,
        &"--all",
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let blame = rehearse(&[
        &"blame",
        &corpus("workspace-n200-edited-row"),
        &"-m",
        &defs(),
        &"--table",
        &"todos",
        &"--key",
        &"todo_ug4qhd18po",
        &"--format",
        &"json",
    ])
    .success()
    .json();
    let inspect = rehearse(&[&"inspect", &corpus("workspace-n200"), &"--format", &"json"])
        .success()
        .json();
    for (schema, value) in [
        ("bisect.schema.json", &bisect),
        ("blame.schema.json", &blame),
        ("inspect.schema.json", &inspect),
    ] {
        assert_eq!(value["version"], 1, "{schema}");
        assert_valid(&validator(schema), value);
    }
    // Both sides' answers are in the schema's shapes: rows on one side, findings on the other.
    let first = &bisect["differences"][0];
    assert_eq!(first["old"]["outcome"], "applied");
    assert_eq!(first["new"]["outcome"], "notApplied");
}

/// A baseline names corpora relative to itself, so one written for a directory of corpora
/// applies to any one of them, from any working directory; format 1 files still load.
fn a_baseline_applies_to_any_selection_of_its_corpora_from_any_directory() {
    let tree = tempdir();
    for name in ["workspace-n200-edited-row", "workspace-n200-broken-log"] {
        copy_dir(&corpus(name), &tree.path().join("corpora").join(name));
    }
    let ci = tree.path().join("ci");
    std::fs::create_dir(&ci).unwrap();
    let baseline = ci.join("baseline.json");
    rehearse(&[
        &"check",
        &"corpora/",
        &"-m",
        &defs(),
        &"--write-baseline",
        &"ci/baseline.json",
    ])
    .current_dir(tree.path())
    .success();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let corpora: std::collections::BTreeSet<&str> = written["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["corpus"].as_str().unwrap())
        .collect();
    assert_eq!(
        corpora.into_iter().collect::<Vec<_>>(),
        [
            "../corpora/workspace-n200-broken-log/workspace",
            "../corpora/workspace-n200-edited-row/workspace"
        ],
        "{written}"
    );
    let key = written["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e.get("key"))
        .expect("the edited row's entry has a key");
    assert_eq!(
        key[0]["value"], "todo_ug4qhd18po",
        "keys are JSON: {written}"
    );
    // One corpus of the two, named from inside the ci directory.
    rehearse(&[
        &"check",
        &"../corpora/workspace-n200-edited-row",
        &"-m",
        &defs(),
        &"--baseline",
        &"baseline.json",
        &"--strict-baseline",
    ])
    .current_dir(&ci)
    .success()
    .stdout_has("baselined");
    // A format 1 baseline, written with corpora as typed, still loads and applies.
    let mut v1 = written.clone();
    v1["version"] = 1.into();
    for e in v1["findings"].as_array_mut().unwrap() {
        let path = e["corpus"]
            .as_str()
            .unwrap()
            .trim_start_matches("../")
            .to_string();
        e["corpus"] = path.into();
        if let Some(k) = e.get("key").cloned() {
            e["key"] = k.to_string().into();
        }
    }
    std::fs::write(&baseline, serde_json::to_string_pretty(&v1).unwrap()).unwrap();
    rehearse(&[
        &"check",
        &"corpora/",
        &"-m",
        &defs(),
        &"--baseline",
        &"ci/baseline.json",
    ])
    .current_dir(tree.path())
    .success();
}

/// The plugin reads the app's LiveStore and Effect versions before it loads anything: an app on
/// a LiveStore it does not run (here a package tree that says 0.5 on Effect 4) is refused with
/// exit 2 and both versions named, without Node.js and without a stack trace.
fn an_app_on_a_livestore_the_plugin_does_not_run_is_refused_by_version() {
    let app = tempdir();
    for (package, version) in [("@livestore/livestore", "0.5.0"), ("effect", "4.1.5")] {
        let p = app.path().join("node_modules").join(package);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("package.json"),
            format!(r#"{{"name":"{package}","version":"{version}"}}"#),
        )
        .unwrap();
    }
    std::fs::write(app.path().join("app.mjs"), "export const schema = {}\n").unwrap();
    let spec = format!("livestore:{}", app.path().join("app.mjs").display());
    let out = rehearse(&[&"check", &corpus("workspace-n200"), &"-m", &spec])
        .env("PATH", "/nonexistent")
        .code(2);
    out.stderr_has("the app uses @livestore/livestore 0.5.0 with effect 4.1.5")
        .stderr_has("the plugin runs @livestore 0.4.x with effect 3.x");
    assert!(!out.stderr.contains("    at "), "no stack trace: {out}");
}

/// A check LiveStore's decoding makes that the exported JSON Schema cannot state
/// (`x-unchecked`, as `schema export` writes for a custom filter) is named on every run, so a
/// pass is not read as more than it is.
fn event_schemas_that_check_less_than_livestore_say_where() {
    let dir = tempdir();
    let events = dir.path().join("events");
    copy_dir(&root().join("schemas/workspace/events"), &events);
    let file = events.join("v1.CommentEdited.json");
    let mut schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    schema["properties"]["body"]["x-unchecked"] = serde_json::json!(["a filter"]);
    std::fs::write(&file, serde_json::to_vec(&schema).unwrap()).unwrap();
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &defs(),
        &"--event-schemas",
        &events,
    ])
    .success()
    .stderr_has("cannot state 1 check(s) LiveStore's decoding of the args makes")
    .stderr_has("v1.CommentEdited /body: a filter");
    // The schemas as exported state every check the workspace app makes: no note.
    rehearse(&[&"check", &corpus("workspace-n200"), &"-m", &defs()])
        .success()
        .stderr_lacks("note:");
}

/// corpora/members-upsert through the one-statement upsert that sets an absent isAdmin from
/// `excluded` (what `{ isAdmin }` means to LiveStore) instead of leaving it out (what the app's
/// `...(isAdmin === undefined ? {} : { isAdmin })` means): admins upserted without isAdmin
/// lose it, and the replay differs from LiveStore's record at those events.
fn an_upsert_that_resets_an_absent_column_differs_from_livestore() {
    let dir = tempdir();
    let defs = root().join("corpora/members-upsert/materializers.toml");
    let text = std::fs::read_to_string(&defs).unwrap();
    let present = r#"email = { value = "args.email", when = "args.email !== undefined" }, isAdmin = { value = "args.isAdmin", when = "args.isAdmin !== undefined" }"#;
    assert!(text.contains(present));
    let obvious = dir.path().join("materializers.toml");
    std::fs::write(
        &obvious,
        text.replace(present, r#"email = "args.email", isAdmin = "args.isAdmin""#),
    )
    .unwrap();
    let report = rehearse(&[
        &"check",
        &corpus("members-upsert"),
        &"-m",
        &obvious,
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    let findings = report["corpora"][0]["findings"].as_array().unwrap();
    let first = findings
        .iter()
        .filter(|f| f["class"] == "first-divergence")
        .count();
    assert_eq!(first, 19, "{findings:#?}");
    assert!(
        findings.iter().all(|f| f["name"] == "MemberUpserted"),
        "{findings:#?}"
    );
}

/// corpora/notes-reencoded stores old args as the new schema re-encodes them: with the bare arg
/// (`JSON.stringify` of the args as written) every note differs; `| schema` needs the event
/// schemas the definitions name.
fn old_args_in_a_json_column_need_the_schema_to_re_encode_them() {
    let dir = tempdir();
    let defs = root().join("corpora/notes-reencoded/materializers.toml");
    let text = std::fs::read_to_string(&defs).unwrap();
    copy_dir(
        &root().join("corpora/notes-reencoded/events"),
        &dir.path().join("events"),
    );
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, text.replace(" | schema", "")).unwrap();
    rehearse(&[&"check", &corpus("notes-reencoded"), &"-m", &bare])
        .code(1)
        .stdout_has("notes                    0 matching, 24 differing");
    let unnamed = dir.path().join("unnamed.toml");
    std::fs::write(&unnamed, text.replace("event_schemas = \"events\"", "")).unwrap();
    rehearse(&[&"check", &corpus("notes-reencoded"), &"-m", &unnamed])
        .code(2)
        .stderr_has("unnamed.toml:15: event \"NoteSaved\": `| schema` re-encodes an arg with the event's args schema, but the definitions name no `event_schemas`");
}

/// The README is for users: at most 12 KiB, and every file it links is one they get with the
/// repository (never the development machine's `../shared/`).
fn the_readme_is_short_and_links_only_what_users_have() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes, over 12 KiB: move detail into docs/",
        readme.len()
    );
    assert!(
        !readme.contains("../shared"),
        "README.md points at ../shared"
    );
    let mut links = 0;
    for (i, _) in readme.match_indices("](") {
        let target = &readme[i + 2..];
        let target = &target[..target.find(')').unwrap()];
        if target.contains("://") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap();
        assert!(
            root().join(file).exists(),
            "README.md links {target}, which does not exist"
        );
        links += 1;
    }
    assert!(
        links >= 10,
        "only {links} local links found: the parser is broken"
    );
}

/// A definition that adds a column during the replay (`ALTER TABLE … ADD COLUMN`, here in the
/// first user's event, before any todo is written): the replay's changes name the new column
/// as LiveStore's record does. The comparison with the record runs on a thread of its own,
/// which once named the columns from the schema as it was before the first event, so that
/// every todo event differed (`#13` against `deletedAt`).
fn a_column_that_a_definition_adds_is_named_as_livestore_names_it() {
    let dir = tempdir();
    let ws = root().join("corpora/workspace");
    let ddl = std::fs::read_to_string(ws.join("state.sql"))
        .unwrap()
        .replace(", \"deletedAt\" text    ) strict;", ") strict;");
    assert!(!ddl.contains("deletedAt"), "the fixture's DDL changed");
    std::fs::write(
        dir.path().join("state.sql"),
        format!("{ddl}\nCREATE TEMP TABLE del (id TEXT, at TEXT);\n"),
    )
    .unwrap();
    let mut defs = defs_text();
    for (from, to) in [
        (
            format!(
                "ddl_file = {:?}",
                ws.join("state.sql").display().to_string()
            ),
            "ddl_file = \"state.sql\"".to_string(),
        ),
        ("deletedAt = \"datetime\"\n".into(), String::new()),
        (
            "[events.\"v1.UserRegistered\"]\ninsert".into(),
            "[events.\"v1.UserRegistered\"]\n[[events.\"v1.UserRegistered\".run]]\ninsert".into(),
        ),
        (
            "on_conflict = { target = \"id\", do = \"ignore\" }\n".into(),
            "on_conflict = { target = \"id\", do = \"ignore\" }\n[[events.\"v1.UserRegistered\".run]]\nwhen = \"args.id === 'usr_dykz89dkdu'\"\nsql = 'ALTER TABLE todos ADD COLUMN \"deletedAt\" text; CREATE TEMP TRIGGER del_apply AFTER INSERT ON del BEGIN UPDATE main.todos SET deletedAt = NEW.at WHERE id = NEW.id; END'\n".into(),
        ),
        (
            "update = \"todos\"\nset = { deletedAt = \"args.deletedAt\" }\nwhere = { id = \"args.id\" }".into(),
            "sql = \"INSERT INTO del VALUES ($id, $at)\"\nbinds = { id = \"args.id\", at = \"args.deletedAt | iso\" }".into(),
        ),
    ] {
        assert_eq!(defs.matches(&from).count(), 1, "the fixture changed: {from}");
        defs = defs.replacen(&from, &to, 1);
    }
    let m = dir.path().join("m.toml");
    std::fs::write(&m, defs).unwrap();
    let out = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &m,
        &"--format",
        &"json",
        &"--no-progress",
    ])
    .run();
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}{out}"));
    let c = &report["corpora"][0];
    assert_eq!(c["changesets"]["differing"], 0, "{out}");
    assert_eq!(c["verdict"], "pass", "{out}");
    assert_eq!(out.exit_code(), 0, "{out}");
}
