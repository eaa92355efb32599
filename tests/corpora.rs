//! Every corpus under `corpora/` is a test: `expect.toml` beside it says what `rehearse check`
//! must report (verdict, counts, and every finding at its exact sequence number), and this
//! harness (libtest-mimic, `harness = false`) checks it. Corpora whose state database was
//! written under `LS_DEV` (`oracle = "lsdev"`) get a second test holding rehearse's statements
//! against the SQL LiveStore recorded for every event.
//!
//! The real stores in `../shared/livestore/samples/` are tests too when that directory is
//! present; where it is not, they show as ignored, with the path that is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde::Deserialize;

#[path = "common/api.rs"]
mod api;
#[path = "common/lsdev.rs"]
mod lsdev;

use api::{CheckOptions, CorpusReport, Definitions, Finding, Materializer, SqlMaterializer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[allow(dead_code)]
    description: String,
    materializers: PathBuf,
    corpus: Option<PathBuf>,
    state: Option<PathBuf>,
    verdict: String,
    events: u64,
    applied: u64,
    oracle: Option<String>,
    #[serde(default)]
    recorded_changesets: bool,
    changesets: Option<ExpectChangesets>,
    #[serde(default)]
    matching: BTreeMap<String, u64>,
    #[serde(default, rename = "finding")]
    findings: Vec<ExpectFinding>,
}

#[derive(Deserialize, Debug, PartialEq, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectChangesets {
    recorded: u64,
    compared: u64,
    differing: u64,
    not_recorded: u64,
}

#[derive(Deserialize, Debug, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
struct ExpectFinding {
    class: String,
    at: String,
    name: Option<String>,
    table: Option<String>,
    key: Option<Vec<toml::Value>>,
    divergence: Option<String>,
    columns: Option<Vec<String>>,
    downstream: Option<Vec<String>>,
    /// For a consequence: its root, as `<class> <seq>` (e.g. `"first-divergence e17"`).
    caused_by: Option<String>,
    /// For `invalid-args`: the JSON pointer of the failing value (or of a missing field).
    pointer: Option<String>,
    /// For a row that differs, checked when given: each column's writers, as
    /// `<column> <replay writer> <LiveStore's writer>`, a writer being a sequence number, `-`
    /// (unknown) or `outside` (no event wrote LiveStore's value).
    writers: Option<Vec<String>>,
}

/// A finding reduced to what an expectation pins down (not the message text).
fn shape(f: &Finding) -> String {
    let mut s = format!(
        "{} at {} {}",
        f.class.as_str(),
        f.seq().map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        f.name.as_deref().unwrap_or("-")
    );
    if let Some(p) = &f.pointer {
        s.push_str(&format!(" pointer={p}"));
    }
    if let Some(t) = &f.table {
        s.push_str(&format!(" table={t}"));
    }
    if let Some(k) = &f.key {
        let k: Vec<String> = k.iter().map(ToString::to_string).collect();
        s.push_str(&format!(" key=[{}]", k.join(", ")));
    }
    if let Some(d) = f.divergence {
        s.push_str(&format!(
            " {}",
            serde_json::to_value(d).unwrap().as_str().unwrap()
        ));
    }
    if !f.columns.is_empty() {
        let c: Vec<&str> = f.columns.iter().map(|c| c.column.as_str()).collect();
        s.push_str(&format!(" columns=[{}]", c.join(", ")));
    }
    if !f.downstream.is_empty() {
        let d: Vec<String> = f.downstream.iter().map(|d| d.seq().to_string()).collect();
        s.push_str(&format!(" downstream=[{}]", d.join(", ")));
    }
    if let Some(c) = &f.caused_by {
        s.push_str(&format!(" caused-by={} {}", c.class.as_str(), c.seq()));
    }
    s
}

/// Each differing column's writers, as an expectation states them.
fn writers(f: &Finding) -> Vec<String> {
    let seq = |w: &Option<api::EventRef>| {
        w.as_ref()
            .map(|w| w.seq().to_string())
            .unwrap_or_else(|| "-".into())
    };
    f.columns
        .iter()
        .map(|c| {
            let recorded = if c.outside_log {
                "outside".to_string()
            } else {
                seq(&c.recorded_writer)
            };
            format!("{} {} {recorded}", c.column, seq(&c.replay_writer))
        })
        .collect()
}

fn expected_shape(f: &ExpectFinding) -> String {
    let mut s = format!(
        "{} at {} {}",
        f.class,
        f.at,
        f.name.as_deref().unwrap_or("-")
    );
    if let Some(p) = &f.pointer {
        s.push_str(&format!(" pointer={p}"));
    }
    if let Some(t) = &f.table {
        s.push_str(&format!(" table={t}"));
    }
    if let Some(k) = &f.key {
        let k: Vec<String> = k
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
                other => other.to_string(),
            })
            .collect();
        s.push_str(&format!(" key=[{}]", k.join(", ")));
    }
    if let Some(d) = &f.divergence {
        s.push_str(&format!(" {d}"));
    }
    if let Some(c) = &f.columns {
        s.push_str(&format!(" columns=[{}]", c.join(", ")));
    }
    if let Some(d) = &f.downstream {
        s.push_str(&format!(" downstream=[{}]", d.join(", ")));
    }
    if let Some(c) = &f.caused_by {
        s.push_str(&format!(" caused-by={c}"));
    }
    s
}

fn load_expect(dir: &Path) -> Result<Expect, Failed> {
    let text = std::fs::read_to_string(dir.join("expect.toml"))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", dir.join("expect.toml").display()).into())
}

fn run_check(dir: &Path, expect: &Expect) -> Result<CorpusReport, Failed> {
    let defs = Definitions::load(&dir.join(&expect.materializers)).map_err(|e| e.to_string())?;
    let mut materializer = SqlMaterializer::new(defs);
    let corpus = expect
        .corpus
        .as_ref()
        .map(|c| dir.join(c))
        .unwrap_or_else(|| dir.to_path_buf());
    let mut options = CheckOptions {
        state: expect.state.as_ref().map(|s| dir.join(s)),
        ..CheckOptions::default()
    };
    options.replay.schemas = materializer
        .definitions()
        .load_event_schemas()
        .map_err(|e| e.to_string())?
        .map(std::sync::Arc::new);
    api::check_corpus(&corpus, &mut materializer, &options).map_err(|e| e.to_string().into())
}

fn check_expectations(dir: &Path) -> Result<(), Failed> {
    let expect = load_expect(dir)?;
    let report = run_check(dir, &expect)?;
    let mut problems = Vec::new();
    let verdict = serde_json::to_value(report.verdict).unwrap();
    if verdict.as_str() != Some(expect.verdict.as_str()) {
        problems.push(format!(
            "verdict: expected {}, got {verdict}",
            expect.verdict
        ));
    }
    if report.events != expect.events {
        problems.push(format!(
            "events: expected {}, got {}",
            expect.events, report.events
        ));
    }
    if report.applied != expect.applied {
        problems.push(format!(
            "applied: expected {}, got {}",
            expect.applied, report.applied
        ));
    }
    if let Some(want) = &expect.changesets {
        let got = report.changesets.as_ref().map(|c| ExpectChangesets {
            recorded: c.recorded,
            compared: c.compared,
            differing: c.differing,
            not_recorded: c.not_recorded,
        });
        if got.as_ref() != Some(want) {
            problems.push(format!("changesets: expected {want:?}, got {got:?}"));
        }
    }
    if !expect.matching.is_empty() {
        let tables: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
        let wanted: Vec<&str> = expect.matching.keys().map(String::as_str).collect();
        let mut sorted = tables.clone();
        sorted.sort();
        if sorted != wanted {
            problems.push(format!(
                "compared tables: expected {wanted:?}, got {tables:?}"
            ));
        }
        for (table, n) in &expect.matching {
            match report.tables.iter().find(|t| &t.table == table) {
                Some(t) if t.matching == *n => {}
                Some(t) => problems.push(format!(
                    "{table}: expected {n} matching rows, got {} ({} differing, {} missing, {} extra)",
                    t.matching, t.differing, t.missing, t.extra
                )),
                None => problems.push(format!("{table}: not compared")),
            }
        }
    }
    let found = report.findings.to_vec().expect("the findings read back");
    let got: Vec<String> = found.iter().map(shape).collect();
    let want: Vec<String> = expect.findings.iter().map(expected_shape).collect();
    for (f, e) in found.iter().zip(&expect.findings) {
        if let Some(want) = &e.writers
            && writers(f) != *want
        {
            problems.push(format!(
                "{}: column writers: expected {want:?}, got {:?}",
                shape(f),
                writers(f)
            ));
        }
    }
    if got != want {
        let (want, got) = (want.join("\n"), got.join("\n"));
        let diff = similar::TextDiff::from_lines(&want, &got)
            .unified_diff()
            .header("expected findings", "reported findings")
            .to_string();
        problems.push(format!("findings differ:\n{diff}"));
        for f in &report.findings {
            problems.push(format!("  reported: {}", f.message));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The SQL materializer, remembering the statements it gave each event: the oracle holds them
/// against LiveStore's record after a real replay, so that `query` steps read the state as it
/// stood before each event.
struct Recording {
    inner: SqlMaterializer,
    statements: Vec<(api::Event, Vec<api::Statement>)>,
    problems: Vec<String>,
}

impl Materializer for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn ddl(&self) -> &api::Ddl {
        self.inner.ddl()
    }
    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>> {
        self.inner.referenced_columns()
    }
    fn prepare(&mut self, scratch: &rusqlite::Connection) -> api::Result<()> {
        self.inner.prepare(scratch)
    }
    fn materialize(
        &mut self,
        event: &api::Event,
        args: &serde_json::Value,
        scratch: &rusqlite::Connection,
    ) -> api::Result<api::Outcome> {
        let outcome = self.inner.materialize(event, args, scratch)?;
        match &outcome {
            api::Outcome::Statements(s) => self.statements.push((event.clone(), s.clone())),
            other => self.problems.push(format!(
                "{} {}: no statements: {other:?}",
                event.seq, event.name
            )),
        }
        Ok(outcome)
    }
}

/// Holds the SQL path's statements against what LiveStore recorded under `LS_DEV` (the `debug`
/// column of `__livestore_session_changeset`), event by event.
fn lsdev_oracle(dir: &Path) -> Result<(), Failed> {
    let expect = load_expect(dir)?;
    let defs = Definitions::load(&dir.join(&expect.materializers)).map_err(|e| e.to_string())?;
    let mut recording = Recording {
        inner: SqlMaterializer::new(defs),
        statements: Vec::new(),
        problems: Vec::new(),
    };
    let recorded = lsdev::lsdev_statements(dir)?;
    api::check_corpus(dir, &mut recording, &CheckOptions::default()).map_err(|e| e.to_string())?;
    let mut problems = recording.problems;
    for (ev, ours) in &recording.statements {
        problems.extend(lsdev::statement_differences(
            ev,
            ours,
            recorded.get(&ev.seq.pair()),
        ));
    }
    if recording.statements.len() != expect.events as usize {
        problems.push(format!(
            "compared {} events of {}",
            recording.statements.len(),
            expect.events
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// Holds the rows each replayed event changed against the changeset LiveStore recorded for it
/// (`__livestore_session_changeset`, decoded with the session extension): same tables, same
/// keys, event by event.
fn recorded_changesets(dir: &Path) -> Result<(), Failed> {
    use api::{ChangeOp, Changeset};
    use std::collections::BTreeSet;

    let expect = load_expect(dir)?;
    let defs = Definitions::load(&dir.join(&expect.materializers)).map_err(|e| e.to_string())?;
    let mut materializer = SqlMaterializer::new(defs);
    let mut ours: BTreeMap<(i64, i64), BTreeSet<(String, String)>> = BTreeMap::new();
    api::check_corpus_observed(dir, &mut materializer, &CheckOptions::default(), |step| {
        if let api::Step::Applied { event, changes, .. } = step {
            let rows = changes
                .iter()
                // The session extension records no update that changed nothing.
                .filter(|c| !(c.op == ChangeOp::Update && c.columns.is_empty()))
                .map(|c| {
                    let key: Vec<String> = c.key.iter().map(ToString::to_string).collect();
                    (c.table.to_string(), key.join(","))
                })
                .collect();
            ours.insert(event.seq.pair(), rows);
        }
    })
    .map_err(|e| e.to_string())?;

    let corpus = api::Corpus::locate(dir).map_err(|e| e.to_string())?;
    let state = api::open_input(&corpus.snapshots[0]).map_err(|e| e.to_string())?;
    // Tables without a primary key are not in LiveStore's changesets.
    let keyed: BTreeSet<String> = api::list_tables(&state.conn, "main")?
        .into_iter()
        .filter(|t| {
            api::table_columns(&state.conn, "main", t)
                .map(|cols| cols.iter().any(|c| c.pk > 0))
                .unwrap_or(false)
        })
        .collect();
    let mut stmt = state.conn.prepare(
        "SELECT seqNumGlobal, seqNumClient, changeset FROM __livestore_session_changeset ORDER BY seqNumGlobal, seqNumClient",
    )?;
    let mut rows = stmt.query([])?;
    let mut problems = Vec::new();
    let mut compared = 0;
    while let Some(row) = rows.next()? {
        let seq: (i64, i64) = (row.get(0)?, row.get(1)?);
        let blob: Option<Vec<u8>> = row.get(2)?;
        let theirs: BTreeSet<(String, String)> = Changeset(blob.unwrap_or_default())
            .changes()?
            .iter()
            .map(|c| {
                let key: Vec<String> = c.key().iter().map(ToString::to_string).collect();
                (c.table.clone(), key.join(","))
            })
            .collect();
        let mine: BTreeSet<(String, String)> = ours
            .remove(&seq)
            .unwrap_or_default()
            .into_iter()
            .filter(|(t, _)| keyed.contains(t))
            .collect();
        if mine != theirs {
            problems.push(format!(
                "e{}.{}: replay changed {mine:?}, LiveStore recorded {theirs:?}",
                seq.0, seq.1
            ));
        }
        compared += 1;
    }
    if compared != expect.applied as usize {
        problems.push(format!(
            "LiveStore recorded {compared} changesets for {} applied events",
            expect.applied
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The root-cause acceptance on the real 5,000-event sample, through the definition changes the
/// committed n200 corpora make (`workspace-n200-changed-uncompleted`,
/// `workspace-n200-unique-constraint`) and one edited state row, each checked against what the
/// log itself says (SQL on the event log), not against rehearse's own output.
fn root_causes_on_the_5000_event_sample(sample: &Path, scenario: &str) -> Result<(), Failed> {
    let corpora = manifest_dir().join("corpora");
    let check = |corpus: &Path, defs: &str| -> Result<CorpusReport, Failed> {
        let defs = Definitions::load(&corpora.join(defs)).map_err(|e| e.to_string())?;
        let mut materializer = SqlMaterializer::new(defs);
        let mut options = CheckOptions::default();
        options.replay.schemas = materializer
            .definitions()
            .load_event_schemas()
            .map_err(|e| e.to_string())?
            .map(std::sync::Arc::new);
        api::check_corpus(corpus, &mut materializer, &options).map_err(|e| e.to_string().into())
    };
    let log = api::Corpus::locate(sample)
        .map_err(|e| e.to_string())?
        .eventlog;
    let events =
        rusqlite::Connection::open_with_flags(&log, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let last_of = |id: &str, names: &[&str]| -> Result<Option<String>, Failed> {
        let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        let seq: Option<i64> = events.query_row(
            &format!(
                "SELECT max(seqNumGlobal) FROM eventlog WHERE json_extract(argsJson, '$.id') = ?1 AND name IN ({})",
                list.join(", ")
            ),
            [id],
            |r| r.get(0),
        )?;
        Ok(seq.map(|s| format!("e{s}")))
    };
    let errors = |r: &CorpusReport| -> Vec<Finding> {
        r.findings
            .to_vec()
            .expect("the findings read back")
            .into_iter()
            .filter(|f| f.severity == api::Level::Error)
            .collect()
    };
    let mut problems = Vec::new();
    match scenario {
        "changed-uncompleted" => {
            let r = check(
                sample,
                "workspace-n200-changed-uncompleted/materializers.toml",
            )?;
            let all = r.findings.to_vec().expect("the findings read back");
            let roots: Vec<&Finding> = all.iter().filter(|f| f.is_root()).collect();
            if roots.is_empty() {
                problems.push("no root cause".to_string());
            }
            for f in &roots {
                if f.class != api::FindingClass::FirstDivergence
                    || f.name.as_deref() != Some("v1.TodoUncompleted")
                {
                    problems.push(format!(
                        "a root that is not the changed event: {}",
                        shape(f)
                    ));
                }
            }
            for f in errors(&r).iter().filter(|f| !f.is_root()) {
                let cause = f.caused_by.as_ref().unwrap();
                if !roots.iter().any(|r| cause.is(r)) {
                    problems.push(format!("a consequence of no root: {}", shape(f)));
                }
            }
            // Each differing column's writers, as the log says: the replay's is the todo's last
            // completion (or creation); LiveStore's the first reopening after it (reopening an
            // open todo changes nothing, so LiveStore records no write).
            let mut divergences = 0;
            for f in r
                .findings
                .iter()
                .filter(|f| f.table.as_deref() == Some("todos"))
            {
                divergences += 1;
                let id = f
                    .key
                    .as_ref()
                    .and_then(|k| k.first())
                    .map(ToString::to_string);
                let id = id.unwrap_or_default().trim_matches('\'').to_string();
                let writes = ["v1.TodoCreated", "v2.TodoCreated", "v1.TodoCompleted"];
                let want_replay = last_of(&id, &writes)?;
                let after: i64 = want_replay
                    .as_deref()
                    .and_then(|s| s.trim_start_matches('e').parse().ok())
                    .unwrap_or(0);
                let want_livestore: Option<i64> = events.query_row(
                    "SELECT min(seqNumGlobal) FROM eventlog WHERE name = 'v1.TodoUncompleted'
                     AND json_extract(argsJson, '$.id') = ?1 AND seqNumGlobal > ?2",
                    rusqlite::params![id, after],
                    |row| row.get(0),
                )?;
                let want_livestore = want_livestore.map(|s| format!("e{s}"));
                for c in &f.columns {
                    let got = (
                        c.replay_writer.as_ref().map(|w| w.seq().to_string()),
                        c.recorded_writer.as_ref().map(|w| w.seq().to_string()),
                    );
                    if c.column != "completedAt"
                        || got != (want_replay.clone(), want_livestore.clone())
                    {
                        problems.push(format!(
                            "{id} {}: writers {got:?}, the log says {:?}",
                            c.column,
                            (&want_replay, &want_livestore)
                        ));
                    }
                }
            }
            if divergences == 0 {
                problems.push("no todos row diverges".into());
            }
        }
        "unique-constraint" => {
            let r = check(
                sample,
                "workspace-n200-unique-constraint/materializers.toml",
            )?;
            let failing: i64 = events.query_row(
                "SELECT count(*) FROM eventlog e WHERE name = 'v1.ProjectCreated' AND EXISTS (
                   SELECT 1 FROM eventlog f WHERE f.name = 'v1.ProjectCreated'
                   AND f.seqNumGlobal < e.seqNumGlobal
                   AND json_extract(f.argsJson, '$.ownerId') = json_extract(e.argsJson, '$.ownerId'))",
                [],
                |row| row.get(0),
            )?;
            let all = r.findings.to_vec().expect("the findings read back");
            let roots: Vec<&Finding> = all.iter().filter(|f| f.is_root()).collect();
            let wrong: Vec<String> = roots
                .iter()
                .filter(|f| f.class != api::FindingClass::MaterializerError)
                .map(|f| shape(f))
                .collect();
            if roots.len() as i64 != failing || !wrong.is_empty() {
                problems.push(format!(
                    "{} roots for {failing} failing events; not materializer errors: {wrong:?}",
                    roots.len()
                ));
            }
        }
        "edited-row" => {
            let dir = tempfile::tempdir()?;
            let copy = dir.path().join("workspace");
            std::fs::create_dir(&copy)?;
            for entry in std::fs::read_dir(log.parent().unwrap())? {
                let entry = entry?;
                std::fs::copy(entry.path(), copy.join(entry.file_name()))?;
            }
            let state = api::Corpus::locate(&copy)
                .map_err(|e| e.to_string())?
                .snapshots[0]
                .clone();
            let id: String = rusqlite::Connection::open(&state)?.query_row(
                "UPDATE todos SET priority = 99 WHERE rowid = (SELECT min(rowid) FROM todos) RETURNING id",
                [],
                |row| row.get(0),
            )?;
            let r = check(&copy, "workspace/materializers.toml")?;
            let all = r.findings.to_vec().expect("the findings read back");
            let shapes: Vec<String> = all.iter().map(shape).collect();
            let only = all.first().filter(|_| all.len() == 1);
            match only {
                Some(f)
                    if f.is_root()
                        && f.key
                            .as_ref()
                            .is_some_and(|k| k[0].to_string() == format!("'{id}'"))
                        && f.columns.len() == 1
                        && f.columns[0].outside_log => {}
                _ => problems.push(format!("edited {id}: {shapes:?}")),
            }
        }
        other => problems.push(format!("no scenario {other}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A real sample store from ../shared: zero findings, every table equal to LiveStore's counts.
fn shared_sample(dir: &Path) -> Result<(), Failed> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("corpus.json"))?)?;
    let defs = Definitions::load(&manifest_dir().join("corpora/workspace/materializers.toml"))
        .map_err(|e| e.to_string())?;
    let mut materializer = SqlMaterializer::new(defs);
    let report = api::check_corpus(dir, &mut materializer, &CheckOptions::default())
        .map_err(|e| e.to_string())?;
    let mut problems: Vec<String> = report.findings.iter().map(|f| f.message.clone()).collect();
    if report.events != summary["events"].as_u64().unwrap_or(0) || report.applied != report.events {
        problems.push(format!(
            "{} events, {} applied",
            report.events, report.applied
        ));
    }
    for (table, n) in summary["stateRowCounts"].as_object().into_iter().flatten() {
        let t = report.tables.iter().find(|t| &t.table == table);
        if t.map(|t| t.matching) != n.as_u64() || t.map(|t| t.rows_actual) != n.as_u64() {
            problems.push(format!("{table}: expected {n} equal rows, got {t:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let root = manifest_dir().join("corpora");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("corpora/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let oracle = load_expect(&dir).ok().and_then(|e| e.oracle);
        let d = dir.clone();
        trials.push(Trial::test(format!("corpus::{name}"), move || {
            check_expectations(&d)
        }));
        if load_expect(&dir).is_ok_and(|e| e.recorded_changesets) {
            let d = dir.clone();
            trials.push(Trial::test(
                format!("corpus::{name}::recorded_changesets"),
                move || recorded_changesets(&d),
            ));
        }
        if oracle.as_deref() == Some("lsdev") {
            trials.push(Trial::test(
                format!("corpus::{name}::lsdev_statements"),
                move || lsdev_oracle(&dir),
            ));
        }
    }
    let shared = std::env::var_os("REHEARSE_SHARED_LIVESTORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../shared/livestore"));
    for scenario in ["changed-uncompleted", "unique-constraint", "edited-row"] {
        let dir = shared.join("samples/n5000");
        trials.push(Trial::ignorable_test(
            format!("shared_sample::n5000::root_causes::{scenario}"),
            move || {
                if dir.join("corpus.json").is_file() {
                    root_causes_on_the_5000_event_sample(&dir, scenario)
                        .map(|()| Completion::Completed)
                } else {
                    Ok(Completion::ignored_with(format!(
                        "{} is not present",
                        dir.display()
                    )))
                }
            },
        ));
    }
    for sample in ["n200", "n300-lsdev", "n5000"] {
        let dir = shared.join("samples").join(sample);
        trials.push(Trial::ignorable_test(
            format!("shared_sample::{sample}"),
            move || {
                if dir.join("corpus.json").is_file() {
                    shared_sample(&dir).map(|()| Completion::Completed)
                } else {
                    Ok(Completion::ignored_with(format!(
                        "{} is not present",
                        dir.display()
                    )))
                }
            },
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
