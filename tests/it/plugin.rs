//! The LiveStore plugin end to end: the real corpora replayed through the app's own
//! materializers by the app's own LiveStore 0.4.0 (the fixture app in `tests/livestore/`),
//! against the SQL path and against what LiveStore recorded.
//!
//! Every test needs Node.js and the fixture's packages: without them each is ignored, with the
//! reason (a failure under `CI`, which has them).

use std::ffi::OsStr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::api::{self, EventLog, LogRow, Materializer, Outcome, Source};
use crate::lsdev::{lsdev_statements, statement_differences};
use crate::need;
use crate::util::*;

trials![
    writes_through_ctx_query_survive_a_later_failure_in_the_same_batch,
    the_plugin_and_the_sql_path_give_the_same_reports,
    each_apps_corpus_passes_alike_through_its_definitions_and_its_app,
    a_draft_of_the_definitions_replays_the_apps_corpora_with_findings_only_at_its_todos,
    the_plugin_returns_the_statements_livestore_ran,
    a_materializer_that_throws_is_a_materializer_error_at_its_event,
    args_that_no_longer_decode_are_invalid_args_with_the_field_and_the_decoders_message,
    both_paths_find_the_same_invalid_args_at_the_same_pointer,
    ctx_query_reads_the_state_as_it_stands_before_the_event,
    a_statement_that_fails_blames_the_same_rows_as_on_the_sql_path,
    helpers_started_for_a_long_log_join_once_they_have_loaded_the_schema,
    bisect_compares_the_sql_definitions_with_the_apps_own_materializers,
    bisect_sends_the_helper_events_a_chunk_at_a_time,
    a_check_of_several_corpora_starts_its_helpers_once_per_lane,
    a_corpus_stopped_early_leaves_nothing_for_the_next,
    determinism_finds_a_materializer_that_keeps_state_between_events,
    after_a_helper_fails_the_next_corpus_gets_a_new_one,
    a_helper_that_dies_hangs_or_writes_garbage_is_an_error_naming_the_event,
    no_node_or_no_packages_is_a_clear_error,
    a_schema_factory_exported_instead_of_the_schema_is_named_once,
    schema_export_writes_the_event_schemas_the_ddl_and_the_client_documents,
    every_message_matches_the_protocol_schema,
    a_typescript_schema_module_runs_through_the_apps_tsx_or_says_what_is_missing,
    the_helper_remembers_effects_schemas_by_default_only_where_node_rewrites_modules_in_thread,
    remembered_schemas_give_the_answers_effect_as_installed_gives,
    a_replay_on_a_terminal_says_it_is_loading_the_app,
];

fn spec(app: &Path, module: &str) -> String {
    format!("livestore:{}", app.join(module).display())
}

/// The plugin for `module`, built through the library with the settings the CLI takes from
/// the environment, so that a run under REHEARSE_NODE tests that Node.js here too.
fn plugin_source(app: &Path, module: &str) -> Source {
    let mut source = Source::load(Path::new(&spec(app, module))).unwrap();
    if let Source::LiveStore(config) = &mut source {
        config.node = std::env::var_os("REHEARSE_NODE").map(PathBuf::from);
        if let Ok(memo) = std::env::var("REHEARSE_PLUGIN_MEMO") {
            config.memo = memo.parse().unwrap();
        }
    }
    source
}

/// `corpora`, and those of the shared real stores `samples` names that are present.
fn with_shared_samples(mut corpora: Vec<PathBuf>, samples: &[&str]) -> Vec<PathBuf> {
    let shared = root().join("../shared/livestore/samples");
    corpora.extend(
        samples
            .iter()
            .map(|s| shared.join(s))
            .filter(|dir| dir.is_dir()),
    );
    corpora
}

/// The JSON report's corpora, without what names the materializers.
fn corpora_of(run: &Out) -> Value {
    let mut report = run.json();
    report["corpora"].take()
}

fn the_plugin_and_the_sql_path_give_the_same_reports() -> need::Result {
    let app = need::livestore_app()?;
    let corpora = with_shared_samples(
        vec![
            corpus("workspace-n200"),
            corpus("workspace-n300-lsdev"),
            corpus("workspace-sync250"),
            corpus("workspace-n200-edited-row"),
            corpus("workspace-n200-tampered-changeset"),
            corpus("workspace-n200-broken-log"),
            corpus("js-values"),
        ],
        &["n200", "n5000"],
    );
    let plugin = spec(&app, "app.mjs");
    for c in &corpora {
        let sql = rehearse(&[&"check", c, &"-m", &defs(), &"--format", &"json"]).run();
        let ours = rehearse(&[&"check", c, &"-m", &plugin, &"--format", &"json"]).run();
        assert_eq!(
            ours.exit_code(),
            sql.exit_code(),
            "{}: the SQL path's exit code{ours}",
            c.display()
        );
        assert_eq!(
            corpora_of(&ours),
            corpora_of(&sql),
            "{}: the plugin's report differs from the SQL path's",
            c.display()
        );
    }
    // The clean ones pass with every table equal to LiveStore's own state.
    rehearse(&[&"check", &corpus("workspace-n300-lsdev"), &"-m", &plugin])
        .success()
        .stdout_has("replayed 300 events: 300 applied");
    Ok(())
}

/// The corpora written by the apps that use one construct each of the definitions format
/// (`query` steps, …), with their definitions and the app module that wrote them: each passes
/// with zero findings and every table equal to LiveStore's, through its definitions and
/// through its app, with the same report.
const APP_CORPORA: &[(&str, &str, &str)] = &[
    ("chat-query", "chat-query/materializers.toml", "chat.mjs"),
    (
        "members-upsert",
        "members-upsert/materializers.toml",
        "members.mjs",
    ),
    (
        "prefs-documents",
        "prefs-documents/materializers.toml",
        "prefs.mjs",
    ),
    (
        "notes-reencoded",
        "notes-reencoded/materializers.toml",
        "notes.mjs",
    ),
    // An app variant, and definitions that extend the workspace ones with its change.
    (
        "workspace-n200",
        "workspace-n200-query/materializers.toml",
        "app-query.mjs",
    ),
    (
        "workspace-n300-lsdev",
        "workspace-n200-query/materializers.toml",
        "app-query.mjs",
    ),
];

fn each_apps_corpus_passes_alike_through_its_definitions_and_its_app() -> need::Result {
    let app = need::livestore_app()?;
    for (name, sql_defs, module) in APP_CORPORA {
        let dir = corpus(name);
        let sql_defs = corpus(sql_defs);
        let sql = rehearse(&[&"check", &dir, &"-m", &sql_defs, &"--format", &"json"]).success();
        let ours = rehearse(&[
            &"check",
            &dir,
            &"-m",
            &spec(&app, module),
            &"--format",
            &"json",
        ])
        .success();
        let report = corpora_of(&sql);
        assert_eq!(
            report[0]["findings"],
            serde_json::json!([]),
            "{name}: {report:#}"
        );
        assert!(
            report[0]["tables"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["differing"] == 0 && t["missing"] == 0 && t["extra"] == 0),
            "{name}: {report:#}"
        );
        assert_eq!(
            corpora_of(&ours),
            report,
            "{name}: the plugin's report differs"
        );
    }
    Ok(())
}

/// `definitions draft` from the app and a corpus, as written.
fn draft(app: &Path, module: &str, corpora: &[&str], out: &Path) -> Out {
    let mut cmd = rehearse(&[
        &"definitions",
        &"draft",
        &"-m",
        &spec(app, module),
        &"--out",
        &out,
    ]);
    for c in corpora {
        cmd.arg("--corpus").arg(corpus(c));
    }
    cmd.success()
}

/// The TODO lines of a draft: the events it left undefined.
fn todos(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TODO "))
        .map(|l| l.split(':').next().unwrap().trim_matches('"').to_string())
        .collect()
}

/// `definitions draft` on the workspace app and the corpora it wrote defines every event, and
/// the draft, unedited, replays those corpora with zero findings and every table equal, the
/// same as the app itself under `bisect`. On the other apps, what it leaves TODO are the events
/// whose statements depend on the state or branch (ctx.query, an audit row chosen by presence),
/// and a replay through the draft finds errors only at those.
fn a_draft_of_the_definitions_replays_the_apps_corpora_with_findings_only_at_its_todos()
-> need::Result {
    let app = need::livestore_app()?;
    let dir = tempdir();
    let workspace = [
        "workspace-n200",
        "workspace-n300-lsdev",
        "workspace-sync250",
        "js-values",
    ];
    let defs = dir.path().join("workspace.toml");
    draft(&app, "app.mjs", &workspace, &defs).stderr_has("16 events defined, 0 TODO");
    assert!(
        dir.path()
            .join("workspace.events/v2.TodoCreated.json")
            .is_file()
    );
    assert!(dir.path().join("workspace.state.sql").is_file());
    // The draft is a definitions file like any other.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/materializers.schema.json")).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&defs).unwrap();
    let doc = serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap();
    assert!(
        jsonschema::validator_for(&schema).unwrap().is_valid(&doc),
        "{text}"
    );
    for c in workspace {
        let report = rehearse(&[&"check", &corpus(c), &"-m", &defs, &"--format", &"json"])
            .success()
            .json();
        assert_eq!(
            report["corpora"][0]["findings"],
            serde_json::json!([]),
            "{c}"
        );
    }
    rehearse(&[
        &"bisect",
        &corpus("workspace-n200"),
        &"--old",
        &defs,
        &"--new",
        &spec(&app, "app.mjs"),
    ])
    .success()
    .stdout_has("no difference");

    for (corpus_name, module, expected) in [
        (
            "chat-query",
            "chat.mjs",
            vec![
                "ConversationArchived",
                "ConversationRecounted",
                "MessageSent",
            ],
        ),
        ("members-upsert", "members.mjs", vec!["MemberUpserted"]),
        ("prefs-documents", "prefs.mjs", vec![]),
        ("notes-reencoded", "notes.mjs", vec![]),
    ] {
        let defs = dir.path().join(format!("{module}.toml"));
        draft(&app, module, &[corpus_name], &defs);
        let text = std::fs::read_to_string(&defs).unwrap();
        assert_eq!(todos(&text), expected, "{corpus_name}: {text}");
        let run = rehearse(&[
            &"check",
            &corpus(corpus_name),
            &"-m",
            &defs,
            &"--format",
            &"json",
        ])
        .run();
        let report = run.json();
        let errors: Vec<&Value> = report["corpora"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error" && f.get("causedBy").is_none())
            .collect();
        assert!(
            errors.iter().all(|f| f["class"] == "unknown-event"
                && expected.contains(&f["name"].as_str().unwrap())),
            "{corpus_name}: {errors:#?}"
        );
        assert_eq!(
            run.exit_code(),
            if expected.is_empty() { 0 } else { 1 },
            "{corpus_name}"
        );
    }
    Ok(())
}

/// Every statement the plugin returns, event by event, against the `debug` column LiveStore
/// wrote under `LS_DEV`.
fn the_plugin_returns_the_statements_livestore_ran() -> need::Result {
    let app = need::livestore_app()?;
    let source = plugin_source(&app, "app.mjs");
    for (name, events) in [("workspace-n300-lsdev", 300), ("js-values", 30)] {
        the_plugin_returns_the_statements_livestore_ran_for(&source, &corpus(name), events);
    }
    Ok(())
}

fn the_plugin_returns_the_statements_livestore_ran_for(source: &Source, dir: &Path, events: usize) {
    let mut materializer = source.instantiate().unwrap();
    let located = api::Corpus::locate(dir).unwrap();
    let recorded = lsdev_statements(dir).unwrap();
    let scratch = rusqlite::Connection::open_in_memory().unwrap();
    let log = EventLog::open(&located.eventlog).unwrap();
    let mut compared = 0;
    let mut problems = Vec::new();
    log.for_each(|row| {
        let LogRow::Event(ev) = row else {
            panic!("malformed row")
        };
        let args = api::parse_json(&ev.args_json).unwrap();
        let Outcome::Statements(ours) = materializer.materialize(&ev, &args, &scratch)? else {
            problems.push(format!("{} {}: no statements", ev.seq, ev.name));
            return Ok(ControlFlow::Continue(()));
        };
        problems.extend(statement_differences(
            &ev,
            &ours,
            recorded.get(&ev.seq.pair()),
        ));
        compared += 1;
        Ok(ControlFlow::Continue(()))
    })
    .unwrap();
    assert!(
        problems.is_empty(),
        "{}: {}",
        dir.display(),
        problems.join("\n")
    );
    assert_eq!(compared, events, "{}", dir.display());
}

/// `check --format json` of the 200-event corpus through `materializers`, which must fail
/// (exit 1): its findings.
fn failing_findings(materializers: impl AsRef<OsStr>) -> Vec<Value> {
    let mut report = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &materializers,
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    match report["corpora"][0]["findings"].take() {
        Value::Array(findings) => findings,
        other => panic!("findings are not a list: {other}"),
    }
}

/// As [`failing_findings`], through one of the fixture's app modules: its findings of `class`.
fn failing_check(app: &Path, module: &str, class: &str) -> Vec<Value> {
    failing_findings(spec(app, module))
        .into_iter()
        .filter(|f| f["class"] == class)
        .collect()
}

fn a_materializer_that_throws_is_a_materializer_error_at_its_event() -> need::Result {
    let app = need::livestore_app()?;
    let errors = failing_check(&app, "app-throws.mjs", "materializer-error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["seqNumGlobal"], 17);
    assert_eq!(errors[0]["name"], "v1.TodoCompleted");
    assert_eq!(
        errors[0]["message"],
        "the materializer threw: cannot complete todo_twq657isfh: the project is archived"
    );
    Ok(())
}

fn args_that_no_longer_decode_are_invalid_args_with_the_field_and_the_decoders_message()
-> need::Result {
    let app = need::livestore_app()?;
    let invalid = failing_check(&app, "app-changed-type.mjs", "invalid-args");
    // Every v1.CommentEdited in the log, found independently with
    //   SELECT count(*) FROM eventlog WHERE name = 'v1.CommentEdited'
    let log = rusqlite::Connection::open_with_flags(
        corpus("workspace-n200/workspace/eventlog@6.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let edited: i64 = log
        .query_row(
            "SELECT count(*) FROM eventlog WHERE name = 'v1.CommentEdited'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(invalid.len() as i64, edited);
    assert!(invalid.iter().all(|f| f["name"] == "v1.CommentEdited"));
    let first = invalid[0]["message"].as_str().unwrap();
    assert!(
        first.starts_with("args.body: Expected number, actual \""),
        "{first}"
    );
    assert!(
        invalid.iter().all(|f| f["pointer"] == "/body"),
        "{invalid:#?}"
    );
    Ok(())
}

/// Each `invalid-args` finding of `check` as (class, event, pointer), in report order.
fn invalid_args(corpus: &Path, materializers: impl AsRef<OsStr>) -> Vec<(String, String, Value)> {
    let run = rehearse(&[
        &"check",
        &corpus,
        &"-m",
        &materializers,
        &"--format",
        &"json",
    ])
    .run();
    run.code_in(&[0, 1]);
    let mut report = run.json();
    let Value::Array(findings) = report["corpora"][0]["findings"].take() else {
        panic!("no findings list")
    };
    findings
        .into_iter()
        .filter(|f| f["class"] == "invalid-args")
        .map(|f| {
            let seq = format!("e{}.{}", f["seqNumGlobal"], f["seqNumClient"]);
            (
                f["class"].as_str().unwrap().to_string(),
                seq,
                f["pointer"].clone(),
            )
        })
        .collect()
}

/// Args LiveStore's decoding rejects are rejected by the SQL path's exported JSON Schemas at the
/// same events and the same places: a fractional `Int`, an invalid `Schema.Date`, a missing
/// field (the seeded corpus), a literal the schema dropped, and none on the clean corpora.
fn both_paths_find_the_same_invalid_args_at_the_same_pointer() -> need::Result {
    let app = need::livestore_app()?;
    let cases = [
        ("workspace-n200-invalid-args", defs(), "app.mjs", 3),
        // n200 through the definitions of an app version that dropped a role.
        (
            "workspace-n200",
            corpus("workspace-n200-changed-schema/materializers.toml"),
            "app-no-guest.mjs",
            3,
        ),
        ("workspace-n200", defs(), "app.mjs", 0),
        ("workspace-n300-lsdev", defs(), "app.mjs", 0),
        ("js-values", defs(), "app.mjs", 0),
    ];
    for (name, sql_defs, module, count) in cases {
        let dir = corpus(name);
        let sql = invalid_args(&dir, &sql_defs);
        let plugin = invalid_args(&dir, spec(&app, module));
        assert_eq!(sql.len(), count, "{name}: {sql:?}");
        assert!(sql.iter().all(|(_, _, p)| p.is_string()), "{name}: {sql:?}");
        assert_eq!(
            plugin, sql,
            "{name}: the plugin's invalid-args differ from the SQL path's"
        );
    }
    Ok(())
}

fn ctx_query_reads_the_state_as_it_stands_before_the_event() -> need::Result {
    let app = need::livestore_app()?;
    // The completion counter is computed from ctx.query instead of in SQL: the state comes out
    // equal to LiveStore's only if every query saw the events before it and none after.
    // 300 and 5,000 events: queries are pending while the next chunks arrive.
    let corpora = with_shared_samples(
        vec![corpus("workspace-n200"), corpus("workspace-n300-lsdev")],
        &["n5000"],
    );
    // One helper (what these short logs get), and two sharing every chunk round-robin.
    for c in &corpora {
        for jobs in ["1", "2"] {
            let query = spec(&app, "app-query.mjs");
            rehearse(&[&"check", c, &"-m", &query, &"--plugin-jobs", &jobs]).success();
        }
    }
    // One helper, one event at a time (no look-ahead), under bisect: the same.
    rehearse(&[
        &"bisect",
        &corpus("workspace-n200"),
        &"--old",
        &defs(),
        &"--new",
        &spec(&app, "app-query.mjs"),
    ])
    .success();
    Ok(())
}

/// A statement the app returns that SQLite rejects is a materializer error, and the rows it
/// meant to change are blamed on it as on the SQL path: the plugin's statements say nothing of
/// their rows, so rehearse reads them from the SQL (before, the divergent row was blamed on
/// nobody: "e68 … meant to write it" was missing).
fn a_statement_that_fails_blames_the_same_rows_as_on_the_sql_path() -> need::Result {
    let app = need::livestore_app()?;
    // The SQL path names the definition's line; the plugin has none.
    let without_lines = |mut findings: Vec<Value>| {
        for x in &mut findings {
            let m = x["message"].as_str().unwrap().to_string();
            if let (true, Some(end)) = (m.starts_with("the statement ("), m.find(") ")) {
                x["message"] = format!("the statement {}", &m[end + 2..]).into();
            }
        }
        findings
    };
    let sql = without_lines(failing_findings(corpus(
        "workspace-n200-materializer-error/materializers.toml",
    )));
    let ours = without_lines(failing_findings(spec(&app, "app-failing-sql.mjs")));
    assert_eq!(ours, sql);
    assert_eq!(ours[0]["class"], "materializer-error");
    assert!(
        ours[1]["message"]
            .as_str()
            .unwrap()
            .contains("e68 (v1.UserDeactivated) meant to write it but was not applied"),
        "{ours:#?}"
    );
    Ok(())
}

/// A long log starts more helpers while the first one works; they take their share of the
/// chunks once they have loaded the schema, and the queries they answer still see the state as
/// it stands before their events. Where the first helper does not remember Effect's schemas
/// (Node.js before 22.15, REHEARSE_PLUGIN_MEMO unset), the new ones do (through the loader
/// thread), and the first one takes no more events once they are there.
fn helpers_started_for_a_long_log_join_once_they_have_loaded_the_schema() -> need::Result {
    let app = need::livestore_app()?;
    let Source::LiveStore(config) = plugin_source(&app, "app-query.mjs") else {
        panic!("not the plugin")
    };
    let mut m = api::LiveStoreMaterializer::start(&config).unwrap();
    let first_memoizes = !m.info().memoized.is_empty();
    m.expect_events(1_000_000).unwrap();
    let (running, started) = m.helpers_running().unwrap();
    assert_eq!(running, 1);
    if started == 0 {
        return Err(need::Skip::because(
            "a long log gets no further helper here: its helper remembers Effect's schemas and \
             there are too few cores for two",
        ));
    }
    let t = std::time::Instant::now();
    while m.helpers_running().unwrap().1 > 0 {
        assert!(t.elapsed().as_secs() < 120, "a helper never loaded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let took_over = !first_memoizes && !m.info().memoized.is_empty();
    if !first_memoizes && std::env::var_os("REHEARSE_PLUGIN_MEMO").is_none() {
        assert!(took_over, "the new helpers remember Effect's schemas");
    }
    // The replay asks for as many helpers as a 300-event log repays (one): those started
    // stay.
    let report = api::check_corpus(
        &corpus("workspace-n300-lsdev"),
        &mut m,
        &api::CheckOptions::default(),
    )
    .unwrap();
    let expected = if took_over { started } else { 1 + started };
    assert_eq!(m.helpers_running().unwrap(), (expected, 0));
    assert_eq!(report.events, 300);
    assert!(
        report.findings.is_empty() && report.verdict == api::Verdict::Pass,
        "{:?}",
        report.findings
    );
    Ok(())
}

fn bisect_compares_the_sql_definitions_with_the_apps_own_materializers() -> need::Result {
    let app = need::livestore_app()?;
    rehearse(&[
        &"bisect",
        &corpus("workspace-n300-lsdev"),
        &"--old",
        &defs(),
        &"--new",
        &spec(&app, "app.mjs"),
    ])
    .success()
    .stdout_has("no difference: the new materializers treat all 300 events the same");
    rehearse(&[
        &"bisect",
        &corpus("workspace-n200"),
        &"--old",
        &spec(&app, "app.mjs"),
        &"--new",
        &spec(&app, "app-throws.mjs"),
    ])
    .code(1)
    .stdout_has("\ne17 v1.TodoCompleted\n");
    Ok(())
}

/// Bisect through the plugin sends the helper a chunk of events at a time, as a check does,
/// instead of one round trip per event (which made it take 4.5 s instead of 3.2 s on the
/// 5,000-event sample).
fn bisect_sends_the_helper_events_a_chunk_at_a_time() -> need::Result {
    let app = need::livestore_app()?;
    let (run, trace) = traced(&mut rehearse(&[
        &"bisect",
        &corpus("workspace-n300-lsdev"),
        &"--old",
        &defs(),
        &"--new",
        &spec(&app, "app.mjs"),
    ]));
    run.success();
    let sizes: Vec<usize> = trace
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "events")
        .map(|m| m["events"].as_array().unwrap().len())
        .collect();
    // 300 events: a chunk of 256, then the remaining 44.
    assert_eq!(sizes, [256, 44]);
    Ok(())
}

/// Runs `cmd` with the plugin's trace on: the run, and every message exchanged.
fn traced(cmd: &mut TestCommand) -> (Out, String) {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let run = cmd.env("REHEARSE_PLUGIN_TRACE", trace.path()).run();
    (run, std::fs::read_to_string(trace.path()).unwrap())
}

/// The helpers a traced run started (each says `hello` first).
fn helper_starts(trace: &str) -> usize {
    trace
        .lines()
        .filter(|l| l.starts_with(r#"{"type":"hello""#))
        .count()
}

/// A check of several corpora keeps each lane's helpers from one corpus to the next (loading
/// the app costs a helper 1-2 s of CPU; seven small corpora took 8.4 s with a helper each and
/// 2.9 s so), and reports exactly what new helpers for every corpus report.
fn a_check_of_several_corpora_starts_its_helpers_once_per_lane() -> need::Result {
    let app = need::livestore_app()?;
    let corpora = [
        corpus("workspace-n200"),
        corpus("workspace-n300-lsdev"),
        corpus("workspace-sync250"),
        corpus("workspace-n200-edited-row"),
    ];
    let mut reports = Vec::new();
    for (jobs, fresh, starts) in [("1", false, 1), ("2", false, 2), ("1", true, 4)] {
        let mut cmd = rehearse(&[
            &"check",
            &"-m",
            &spec(&app, "app.mjs"),
            &"-j",
            &jobs,
            &"--format",
            &"json",
        ]);
        if fresh {
            cmd.arg("--plugin-fresh");
        }
        for c in &corpora {
            cmd.arg(c);
        }
        let (run, trace) = traced(&mut cmd);
        run.code(1);
        assert_eq!(
            helper_starts(&trace),
            starts,
            "-j {jobs}, fresh {fresh}{run}"
        );
        reports.push(run.stdout);
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0], reports[2]);
    Ok(())
}

/// A replay stopped early (`--on-error stop`) leaves the rest of its announced events in the
/// helpers' queues; the same sequence numbers and names come again in the next corpus, which
/// must get its own answers: the report equals the one new helpers give.
fn a_corpus_stopped_early_leaves_nothing_for_the_next() -> need::Result {
    let app = need::livestore_app()?;
    let plugin = spec(&app, "app-throws.mjs");
    let (n200, edited, n300) = (
        corpus("workspace-n200"),
        corpus("workspace-n200-edited-row"),
        corpus("workspace-n300-lsdev"),
    );
    let run = |fresh: &str| {
        rehearse(&[
            &"check",
            &n200,
            &edited,
            &n300,
            &"-m",
            &plugin,
            &"--on-error",
            &"stop",
            &"-j",
            &"1",
            &"--plugin-jobs",
            &"2",
            &"--format",
            &"json",
            &fresh,
        ])
        .run()
    };
    let (kept, fresh) = (run("--no-progress"), run("--plugin-fresh"));
    let report = kept.code(1).json();
    // Both n200 logs stop at the throwing event (the 19th row read); n300 replays whole.
    for c in 0..2 {
        assert_eq!(report["corpora"][c]["events"], 19, "{}", kept.stdout);
        assert_eq!(report["corpora"][c]["applied"], 18, "{}", kept.stdout);
    }
    assert_eq!(report["corpora"][2]["applied"], 300);
    assert_eq!(kept.stdout, fresh.stdout, "{fresh}");
    Ok(())
}

/// `--determinism` runs its second replay through the helper that has just replayed the log,
/// so a materializer that keeps state in a module variable is found, as helpers kept from one
/// corpus to the next would carry it on (with two new helpers both replays agreed).
fn determinism_finds_a_materializer_that_keeps_state_between_events() -> need::Result {
    let app = need::livestore_app()?;
    let check = |module: &str| {
        let run = rehearse(&[
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &spec(&app, module),
            &"--determinism",
            &"--format",
            &"json",
        ])
        .run();
        let report = run.json();
        let flagged: Vec<String> = report["corpora"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["class"] == "nondeterministic")
            .map(|f| {
                format!(
                    "e{} {}",
                    f["seqNumGlobal"],
                    f["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        (run, flagged)
    };
    let (run, flagged) = check("app-stateful.mjs");
    run.code(1);
    // Every v1.TodoCompleted writes another count the second time.
    let completions = flagged
        .iter()
        .filter(|f| f.contains("v1.TodoCompleted"))
        .count();
    assert!(completions >= 10, "{flagged:?}");
    assert!(
        flagged[0].contains("e17") && flagged[0].contains("v1.TodoCompleted"),
        "{flagged:?}"
    );
    // The app itself keeps nothing: no finding.
    let (run, flagged) = check("app.mjs");
    run.success();
    assert!(flagged.is_empty(), "{flagged:?}");
    Ok(())
}

/// A helper that failed is not used again: the lane's next corpus gets a new one.
fn after_a_helper_fails_the_next_corpus_gets_a_new_one() -> need::Result {
    let app = need::livestore_app()?;
    let (run, trace) = traced(
        rehearse(&[
            &"check",
            &corpus("workspace-n200"),
            &corpus("workspace-n300-lsdev"),
            &"-m",
            &spec(&app, "app-misbehaves.mjs"),
            &"-j",
            &"1",
            &"--format",
            &"json",
        ])
        .env("REHEARSE_TEST_MISBEHAVE", "exit"),
    );
    let report = run.code(2).json();
    let error = report["corpora"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("e17 v1.TodoCompleted: the helper exited"),
        "{error}"
    );
    assert_eq!(report["corpora"][1]["verdict"], "pass", "{run}");
    assert_eq!(helper_starts(&trace), 2, "{run}");
    Ok(())
}

fn misbehave(app: &Path, how: &str, helpers: &str) -> Out {
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &spec(app, "app-misbehaves.mjs"),
        &"--plugin-jobs",
        &helpers,
        &"--plugin-timeout",
        &"3",
        &"--format",
        &"json",
    ])
    .env("REHEARSE_TEST_MISBEHAVE", how)
    .run()
}

fn a_helper_that_dies_hangs_or_writes_garbage_is_an_error_naming_the_event() -> need::Result {
    let app = need::livestore_app()?;
    // With one helper, and with two sharing the chunks round-robin.
    for (how, helpers, says) in [
        (
            "exit",
            "1",
            "materializing e17 v1.TodoCompleted: the helper exited",
        ),
        (
            "exit",
            "2",
            "materializing e17 v1.TodoCompleted: the helper exited",
        ),
        (
            "hang",
            "2",
            "materializing e17 v1.TodoCompleted: no answer within 3 s",
        ),
        (
            "garbage",
            "2",
            "garbage on the protocol stream at or shortly before e",
        ),
    ] {
        let started = std::time::Instant::now();
        let run = misbehave(&app, how, helpers);
        assert!(
            started.elapsed().as_secs() < 30,
            "{how}: rehearse hung{run}"
        );
        let report = run.code(2).json();
        let error = report["corpora"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{how}, {helpers} helpers: {error}");
        assert!(
            error.contains("app-misbehaves.mjs: LiveStore helper"),
            "{how}: {error}"
        );
    }

    // Logging to stdout, in every way JavaScript can, does not disturb the protocol.
    let run = misbehave(&app, "log", "2");
    run.success()
        .stderr_has("livestore: completing todo_twq657isfh")
        .stderr_has("livestore: a line straight to fd 1");
    assert_eq!(run.json()["corpora"][0]["verdict"], "pass", "{run}");
    Ok(())
}

fn no_node_or_no_packages_is_a_clear_error() -> need::Result {
    let app = need::livestore_app()?;
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &spec(&app, "app.mjs"),
    ])
    .env("REHEARSE_NODE", "/nonexistent/node")
    .code(2)
    .output_has("cannot run Node.js");

    let lonely = tempdir();
    std::fs::write(
        lonely.path().join("schema.mjs"),
        "export const schema = 1\n",
    )
    .unwrap();
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &format!("livestore:{}", lonely.path().join("schema.mjs").display()),
    ])
    .code(2)
    .output_has("no node_modules with @livestore/livestore");

    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &spec(&app, "schema.mjs"),
    ])
    .code(2)
    .output_has("exports no LiveStore schema");
    Ok(())
}

/// A module that exports the function making its schema (a factory) where the schema is
/// expected is told so, once however many helpers loaded it, whether the export is found or
/// named.
fn a_schema_factory_exported_instead_of_the_schema_is_named_once() -> need::Result {
    let app = need::livestore_app()?;
    for module in ["app-factory.mjs", "app-factory.mjs#schema"] {
        let out = rehearse(&[
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &spec(&app, module),
            &"--plugin-jobs",
            &"2",
        ])
        .code(2);
        let said = "`schema` is a function; export the schema it returns";
        assert_eq!(out.stderr.matches(said).count(), 1, "{module}: {out}");
    }
    Ok(())
}

fn schema_export_writes_the_event_schemas_the_ddl_and_the_client_documents() -> need::Result {
    let app = need::livestore_app()?;
    let out = tempdir();
    rehearse(&[
        &"schema",
        &"export",
        &"--materializers",
        &spec(&app, "app.mjs"),
        &"--out",
        &out.path(),
    ])
    .success()
    .stderr_has("the state DDL and 1 client document to");
    // The committed schemas/workspace/events/ were exported from the same app: byte for byte.
    let committed = root().join("schemas/workspace/events");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&committed).unwrap() {
        let name = entry.unwrap().file_name();
        assert_eq!(
            std::fs::read(out.path().join("events").join(&name)).unwrap(),
            std::fs::read(committed.join(&name)).unwrap(),
            "{name:?}"
        );
        names.push(name);
    }
    assert_eq!(
        names.len(),
        std::fs::read_dir(out.path().join("events"))
            .unwrap()
            .count()
    );
    // The DDL builds the tables LiveStore's own state database has, column for column.
    let ddl = std::fs::read_to_string(out.path().join("state.sql")).unwrap();
    let diff_db = out.path().join("ddl.db");
    rusqlite::Connection::open(&diff_db)
        .unwrap()
        .execute_batch(&ddl)
        .unwrap();
    let report = rehearse(&[
        &"diff",
        &corpus("workspace-n200/workspace/state-186191357563@6.db"),
        &diff_db,
        &"--format",
        &"json",
    ])
    .run()
    .json();
    let tables = report["corpora"][0]["tables"].as_array().unwrap();
    assert!(
        tables.iter().all(|t| t["presence"] == "both"
            && t["columnsMissing"].as_array().unwrap().is_empty()
            && t["columnsExtra"].as_array().unwrap().is_empty()),
        "{tables:#?}"
    );
    let docs: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("client-documents.json")).unwrap())
            .unwrap();
    assert_eq!(docs[0]["name"], "uiState");
    assert_eq!(docs[0]["default"]["id"], "main");
    Ok(())
}

fn every_message_matches_the_protocol_schema() -> need::Result {
    let app = need::livestore_app()?;
    let trace = tempfile::NamedTempFile::new().unwrap();
    // Results, unknown-free but invalid args, errors and queries all occur across these runs.
    for module in ["app-query.mjs", "app-throws.mjs", "app-changed-type.mjs"] {
        rehearse(&[
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &spec(&app, module),
        ])
        .env("REHEARSE_PLUGIN_TRACE", trace.path())
        .run()
        .code_in(&[0, 1]);
    }
    let out = tempdir();
    rehearse(&[
        &"schema",
        &"export",
        &"-m",
        &spec(&app, "app.mjs"),
        &"--out",
        &out.path(),
    ])
    .env("REHEARSE_PLUGIN_TRACE", trace.path())
    .success();
    let schema: Value = serde_json::from_slice(
        &std::fs::read(root().join("schemas/plugin-protocol.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(trace.path()).unwrap().lines() {
        let msg: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&msg).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
        kinds.insert(msg["type"].as_str().unwrap().to_string());
    }
    for kind in [
        "hello",
        "ready",
        "events",
        "result",
        "invalid-args",
        "error",
        "query",
        "rows",
        "export-schemas",
        "schemas",
        "bye",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} message was exchanged: {kinds:?}"
        );
    }
    Ok(())
}

/// A TypeScript schema module runs through the app's own tsx; without tsx, Node's type
/// stripping where this Node has it, or an error that says what is missing.
fn a_typescript_schema_module_runs_through_the_apps_tsx_or_says_what_is_missing() -> need::Result {
    let app = need::livestore_app()?;
    assert!(
        app.join("node_modules/tsx").is_dir(),
        "the fixture installs tsx"
    );
    rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &spec(&app, "app.ts"),
    ])
    .success()
    .stdout_has("replayed 200 events: 200 applied");

    // The same app without tsx: its packages, every one but tsx, linked into a directory of
    // its own.
    let bare = tempdir();
    let modules = bare.path().join("node_modules");
    std::fs::create_dir(&modules).unwrap();
    for entry in std::fs::read_dir(app.join("node_modules")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "tsx" && name != ".bin" {
            std::os::unix::fs::symlink(entry.path(), modules.join(&name)).unwrap();
        }
    }
    for file in ["app.ts", "schema.mjs"] {
        std::fs::copy(app.join(file), bare.path().join(file)).unwrap();
    }
    let run = rehearse(&[
        &"check",
        &corpus("workspace-n200"),
        &"-m",
        &format!("livestore:{}", bare.path().join("app.ts").display()),
    ])
    .run();
    let (major, minor) = node_version();
    if (major, minor) >= (22, 6) {
        run.success();
    } else {
        run.code(2).stderr_has(&format!(
            "a TypeScript module needs the app's own tsx (npm i -D tsx) or Node.js 22.6 or later for type stripping; this is Node.js {major}.{minor}"
        ));
    }
    Ok(())
}

/// The major and minor version of the Node.js rehearse runs: REHEARSE_NODE where set.
fn node_version() -> (u32, u32) {
    let node = std::env::var_os("REHEARSE_NODE").unwrap_or_else(|| "node".into());
    let version = std::process::Command::new(node)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major = parts.next().unwrap().parse().unwrap();
    let minor = parts.next().unwrap().parse().unwrap();
    (major, minor)
}

/// Where Node.js rewrites modules in-thread (22.15, 23.5 and later), the helper has Effect
/// remember the schemas LiveStore builds anew for every update and client-document set; with
/// REHEARSE_PLUGIN_MEMO=on also through an older Node.js's loader thread (which costs a second
/// at start, so not by default), and never with `off`.
fn the_helper_remembers_effects_schemas_by_default_only_where_node_rewrites_modules_in_thread()
-> need::Result {
    let app = need::livestore_app()?;
    let both = serde_json::json!(["Schema.parseJson", "Schema.partial"]);
    let none = serde_json::json!([]);
    let in_thread = matches!(node_version(), (22, 15..) | (23, 5..) | (24.., _));
    let by_default = if in_thread { &both } else { &none };
    for (memo, expected) in [("auto", by_default), ("on", &both), ("off", &none)] {
        let (_, ready) = answers(&app, &corpus("workspace-n200"), memo);
        assert_eq!(
            &ready["memoized"],
            expected,
            "REHEARSE_PLUGIN_MEMO={memo}, Node.js {:?}",
            node_version()
        );
    }
    Ok(())
}

/// The helper's answers in a replay of `dir` with REHEARSE_PLUGIN_MEMO=`memo` (one helper, so
/// in log order), and its `ready`.
fn answers(app: &Path, dir: &Path, memo: &str) -> (Vec<String>, Value) {
    let out = tempdir();
    let (run, trace) = traced(
        rehearse(&[
            &"replay",
            &dir,
            &"-m",
            &spec(app, "app.mjs"),
            &"--plugin-jobs",
            &"1",
            &"--out",
            &out.path().join("state.db"),
        ])
        .env("REHEARSE_PLUGIN_MEMO", memo),
    );
    run.success();
    let mut ready = Value::Null;
    let mut answers = Vec::new();
    // By their start: args with lone surrogates (js-values) are not JSON serde_json reads.
    for line in trace.lines() {
        let kind = line
            .strip_prefix(r#"{"type":""#)
            .and_then(|rest| rest.split_once('"'))
            .map(|(kind, _)| kind);
        match kind {
            Some("ready") => ready = serde_json::from_str(line).unwrap(),
            Some("result" | "unknown" | "invalid-args" | "error") => answers.push(line.to_string()),
            _ => {}
        }
    }
    (answers, ready)
}

/// Remembering Effect's schemas changes nothing LiveStore answers: every answer, byte for byte,
/// with the memo on (in-thread or through the loader thread, whichever this Node.js has) and
/// off, on the logs with the most updates and client-document sets.
fn remembered_schemas_give_the_answers_effect_as_installed_gives() -> need::Result {
    let app = need::livestore_app()?;
    let corpora = with_shared_samples(
        vec![corpus("workspace-n300-lsdev"), corpus("js-values")],
        &["n5000"],
    );
    for c in &corpora {
        let (on, ready) = answers(&app, c, "on");
        assert_ne!(ready["memoized"], serde_json::json!([]));
        let (off, ready) = answers(&app, c, "off");
        assert_eq!(ready["memoized"], serde_json::json!([]));
        assert!(on.len() >= 30, "{}: {} answers", c.display(), on.len());
        assert_eq!(on.len(), off.len(), "{}", c.display());
        for (a, b) in on.iter().zip(&off) {
            assert_eq!(a, b, "{}", c.display());
        }
    }
    Ok(())
}

/// Node.js loading the app takes a second or more before the first event: on a terminal that
/// is a spinner saying so, then the replay's bar; piped, stderr is only what it always was.
fn a_replay_on_a_terminal_says_it_is_loading_the_app() -> need::Result {
    need::script()?;
    let app = need::livestore_app()?;
    let plugin = spec(&app, "app.mjs");
    let args: [&dyn AsRef<OsStr>; 6] = [
        &"replay",
        &corpus("workspace-n200"),
        &"-m",
        &plugin,
        &"--out",
        &"replayed.db",
    ];
    let dir = tempdir();
    let term = crate::progress::on_terminal(dir.path(), &args, &[]);
    assert_eq!(term.code, Some(0), "{}", term.terminal);
    let loading = term.terminal.find("loading the app");
    let replaying = term.terminal.rfind("replaying");
    assert!(
        loading.is_some() && replaying.is_some() && loading < replaying,
        "no \"loading the app\" before the replay's bar:\n{}",
        term.terminal
    );
    let dir = tempdir();
    let piped = rehearse(&args)
        .current_dir(dir.path())
        .env_remove("CI")
        .success();
    assert_eq!(piped.stderr, "rehearse: wrote replayed.db\n", "{piped}");
    assert_eq!(
        piped.stdout, term.stdout,
        "stdout differs on a terminal{piped}"
    );
    Ok(())
}

/// What a materializer writes through `ctx.query` stays, as it does in LiveStore, when a later
/// event fails: the replay shares one savepoint between events and, when one fails, rolls the
/// batch back and runs the earlier events' statements again, which would not write what
/// `ctx.query` wrote (the row of e14, in e17's batch, was lost).
fn writes_through_ctx_query_survive_a_later_failure_in_the_same_batch() -> need::Result {
    let app = need::livestore_app()?;
    let n200 = corpus("workspace-n200");
    let log = rusqlite::Connection::open_with_flags(
        n200.join("workspace/eventlog@6.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let updated: i64 = log
        .query_row(
            "SELECT count(DISTINCT json_extract(argsJson, '$.id')) FROM eventlog WHERE name = 'v1.TodoUpdated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(updated > 5, "the corpus changed");
    let out = rehearse(&[
        &"check",
        &n200,
        &"-m",
        &spec(&app, "app-ctxwrite.mjs"),
        &"--format",
        &"json",
    ])
    .code(1);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let c = &report["corpora"][0];
    let ui = c["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "uiState")
        .unwrap();
    // Every updated todo's probe row, beside the client document.
    assert_eq!(ui["extra"], updated, "{ui}");
    assert!(
        c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["class"] == "materializer-error" && f["seqNumGlobal"] == 17),
        "{out}"
    );
    Ok(())
}
