//! A failing event is rolled back alone, whichever of its statements fails and however SQLite
//! resolves the conflict, and every event before it keeps its changes.

use super::*;
use crate::definitions::Ddl;

/// Answers every event with the statements scripted for its name.
struct Scripted {
    ddl: Ddl,
    script: HashMap<&'static str, Vec<&'static str>>,
}

impl Materializer for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }
    fn referenced_columns(&self) -> indexmap::IndexMap<String, Vec<String>> {
        Default::default()
    }
    fn prepare(&mut self, _: &Connection) -> Result<()> {
        Ok(())
    }
    fn materialize(&mut self, event: &Event, _: &Value, _: &Connection) -> Result<Outcome> {
        Ok(match self.script.get(event.name.as_str()) {
            None => Outcome::Unknown,
            Some(sqls) => Outcome::Statements(
                sqls.iter()
                    .map(|sql| Statement {
                        sql: sql.to_string(),
                        binds: crate::materialize::Binds::None,
                        line: None,
                        file: None,
                        target: None,
                    })
                    .collect(),
            ),
        })
    }
}

fn event(global: i64, name: &str) -> LogRow {
    let seq = |global| SeqNum {
        global,
        client: 0,
        rebase_generation: 0,
    };
    LogRow::Event(Event {
        seq: seq(global),
        parent: seq(global - 1),
        name: name.into(),
        args_json: "{}".into(),
        client_id: "c".into(),
        session_id: "s".into(),
        schema_hash: 1,
        sync_metadata_json: "{}".into(),
    })
}

/// Replays `names` (event n is `e{n}`) and returns the rows of `t` and `u` after, and which
/// events failed.
fn replay_script(
    script: &[(&'static str, Vec<&'static str>)],
    names: &[&str],
) -> (Vec<String>, Vec<i64>) {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL) STRICT;
         CREATE TABLE u (id INTEGER PRIMARY KEY, k INTEGER UNIQUE);
         INSERT INTO u VALUES (1, 1), (2, 2), (3, 20);",
    )
    .unwrap();
    let mut m = Scripted {
        ddl: Ddl::Recorded,
        script: script.iter().cloned().collect(),
    };
    let options = ReplayOptions::default();
    let mut r = Replayer::new(&conn, &mut m, &options).unwrap();
    for (i, name) in names.iter().enumerate() {
        r.event(event(i as i64 + 1, name)).unwrap();
    }
    let failed = r
        .findings()
        .iter()
        .filter(|f| f.class == FindingClass::MaterializerError)
        .filter_map(|f| f.seq_num_global)
        .collect();
    r.finish(None).unwrap();
    let rows = conn
        .prepare("SELECT 't:' || id || '=' || n FROM t UNION ALL SELECT 'u:' || id || '=' || k FROM u ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (rows, failed)
}

#[test]
fn a_failing_event_is_rolled_back_alone_and_the_events_before_it_stay() {
    let script = [
        ("a", vec!["INSERT INTO t VALUES ('a', 1)"]),
        ("b", vec!["INSERT INTO t VALUES ('b', 1)"]),
        // Its second statement fails: its first must be undone.
        (
            "c-then-dup",
            vec![
                "INSERT INTO t VALUES ('c', 1)",
                "INSERT INTO t VALUES ('a', 2)",
            ],
        ),
        ("bump", vec!["UPDATE t SET n = n + 1"]),
        // Fails at its first statement, which SQLite backs out itself.
        ("null", vec!["UPDATE t SET n = NULL WHERE id = 'b'"]),
        // One SQL text holding two statements, the second failing.
        (
            "two-in-one",
            vec!["UPDATE t SET n = 10 WHERE id = 'a'; UPDATE t SET n = NULL"],
        ),
        // FAIL keeps what the failing statement changed before the conflict (u.1 becomes
        // 10, then u.2's 20 collides with u.3): the event must still leave nothing behind.
        ("or-fail", vec!["UPDATE OR FAIL u SET k = k * 10"]),
        ("d", vec!["INSERT INTO t VALUES ('d', 1)"]),
    ];
    let names = [
        "a",
        "b",
        "c-then-dup",
        "bump",
        "null",
        "two-in-one",
        "d",
        "or-fail",
        "bump",
    ];
    let (rows, failed) = replay_script(&script, &names);
    assert_eq!(failed, [3, 5, 6, 8]);
    assert_eq!(
        rows,
        ["t:a=3", "t:b=3", "t:d=2", "u:1=1", "u:2=2", "u:3=20"]
    );
}

#[test]
fn failures_in_a_long_log_roll_back_only_their_own_event() {
    // More events than a batch holds, with failures at the start, the middle and the end of
    // batches: the result is as if each event had run in a savepoint of its own.
    let script = [
        (
            "inc",
            vec!["INSERT INTO t VALUES ('x', 0) ON CONFLICT (id) DO UPDATE SET n = n + 1"],
        ),
        (
            "inc-then-fail",
            vec![
                "INSERT INTO t VALUES ('x', 0) ON CONFLICT (id) DO UPDATE SET n = n + 1",
                "INSERT INTO t VALUES ('y', NULL)",
            ],
        ),
    ];
    let mut names = Vec::new();
    let mut expected_failures = Vec::new();
    for i in 1..=1000 {
        if i % 97 == 0 || i % 128 == 1 || i % 128 == 0 {
            names.push("inc-then-fail");
            expected_failures.push(i);
        } else {
            names.push("inc");
        }
    }
    let (rows, failed) = replay_script(&script, &names);
    assert_eq!(failed, expected_failures);
    // 'x' is inserted by the first applied event and incremented by every later one.
    let applied = names.len() - expected_failures.len();
    assert_eq!(rows[0], format!("t:x={}", applied - 1));
}
