//! Backup packages end to end: `export`, `preflight` and `restore` on real LiveStore stores,
//! with each failure mode made by damaging a real package.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::need;
use crate::util::*;

trials![
    export_writes_a_package_that_preflights_go_and_leaves_the_store_untouched,
    export_refuses_a_non_empty_destination_and_what_is_not_a_store,
    a_flipped_byte_in_each_file_is_caught_by_its_checksum,
    a_manifest_with_a_wrong_checksum_or_schema_hash_is_no_go,
    a_truncated_or_edited_snapshot_means_restore_by_replaying_the_log,
    a_log_the_materializers_cannot_replay_is_no_go,
    a_missing_auxiliary_file_or_an_unlisted_one_is_no_go,
    restore_round_trips_and_keeps_the_store_it_replaces,
    a_state_named_by_a_storage_fingerprint_exports_preflights_and_restores,
    restore_refuses_no_go_and_needs_from_log_for_go_replay,
    a_restore_killed_at_any_step_leaves_the_old_store_or_the_new_one,
    a_restore_that_does_not_read_back_puts_the_old_store_back,
    an_auxiliary_file_named_like_the_stores_own_files_is_no_go,
    livestore_itself_opens_a_restored_store_and_reads_the_same_rows,
    an_export_killed_before_it_finished_leaves_no_package,
    exports_taken_while_livestore_writes_are_consistent,
];

/// A real store with an auxiliary ledger beside it, in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempdir();
        copy_dir(
            &corpus("workspace-n200/workspace"),
            &dir.path().join("workspace"),
        );
        let ledger =
            rusqlite::Connection::open(dir.path().join("workspace/processed-messages.db")).unwrap();
        ledger
            .execute_batch(
                "CREATE TABLE processed (messageId TEXT PRIMARY KEY, at INTEGER NOT NULL);
                 INSERT INTO processed VALUES ('m1', 1), ('m2', 2), ('m3', 3);",
            )
            .unwrap();
        Fixture { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn ledger(&self) -> PathBuf {
        self.store().join("processed-messages.db")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Exports the store into `name` with the ledger as an auxiliary file.
    fn export(&self, name: &str) -> PathBuf {
        let out = self.path(name);
        rehearse(&[
            &"export",
            &self.store(),
            &"--out",
            &out,
            &"--aux",
            &self.ledger(),
            &"--app-version",
            &"1.4.2",
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .success();
        out
    }
}

/// `rehearse preflight <package> -m <defs> --format json <extra>`.
fn preflight(package: &Path, extra: &[&dyn AsRef<OsStr>]) -> TestCommand {
    let mut cmd = rehearse(&[&"preflight", &package, &"-m", &defs(), &"--format", &"json"]);
    cmd.args(extra);
    cmd
}

/// The checks of a pre-flight that failed, as `(check, file, consequence)`.
fn failures(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["file"].as_str().unwrap_or("").to_string(),
                c["consequence"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

fn export_writes_a_package_that_preflights_go_and_leaves_the_store_untouched() {
    let fx = Fixture::new();
    let before = snapshot_tree(&fx.store());
    let package = fx.export("pkg");
    assert_eq!(snapshot_tree(&fx.store()), before, "the store was modified");
    let leftovers: Vec<_> = std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(package.join("manifest.json")).unwrap()).unwrap();
    assert_valid(&validator("manifest.schema.json"), &manifest);
    assert_eq!(manifest["storeId"], "workspace");
    assert_eq!(manifest["storageFormatVersion"], 6);
    assert_eq!(manifest["stateSchemaHash"], "-186191357563");
    assert_eq!(manifest["syncHead"], 0);
    assert_eq!(manifest["events"], 200);
    assert_eq!(manifest["appVersion"], "1.4.2");
    assert_eq!(manifest["createdAt"], "2023-11-14T22:13:20Z");
    // The generator's own count of the same log.
    let generated: Value =
        serde_json::from_slice(&std::fs::read(corpus("workspace-n200/corpus.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["eventCounts"], generated["eventCounts"]);
    let files: Vec<(&str, &str)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        files,
        [
            ("eventlog.db", "eventlog"),
            ("state.db", "state"),
            ("aux/processed-messages.db", "auxiliary")
        ]
    );
    // The copies read as the originals: same rows in every user table.
    rehearse(&[
        &"diff",
        &fx.store().join("state-186191357563@6.db"),
        &package.join("state.db"),
    ])
    .success();

    // Same store, same SOURCE_DATE_EPOCH: the same manifest, byte for byte.
    let again = fx.export("pkg2");
    assert_eq!(
        std::fs::read(package.join("manifest.json")).unwrap(),
        std::fs::read(again.join("manifest.json")).unwrap()
    );

    let report = preflight(&package, &[]).success().json();
    assert_valid(&validator("preflight.schema.json"), &report);
    assert_eq!(report["verdict"], "go", "{report:#}");
    assert!(failures(&report).is_empty());
    let snapshot = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "snapshot")
        .unwrap();
    assert!(
        snapshot["message"]
            .as_str()
            .unwrap()
            .starts_with("snapshot trusted"),
        "{snapshot}"
    );
    let losses = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "log-only-restore")
        .unwrap();
    assert!(
        losses["message"]
            .as_str()
            .unwrap()
            .contains("not aux/processed-messages.db"),
        "{losses}"
    );

    // The human report ends in the verdict.
    rehearse(&[&"preflight", &package, &"-m", &defs()])
        .success()
        .stdout_has("\nGO: restore the snapshot as it is\n");
}

fn export_refuses_a_non_empty_destination_and_what_is_not_a_store() {
    let fx = Fixture::new();
    let out = fx.path("taken");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    rehearse(&[&"export", &fx.store(), &"--out", &out])
        .code(2)
        .stderr_has("not empty");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );

    // A log file on its own is not a store; the log of a store directory means that store.
    let bare = fx.path("bare.db");
    std::fs::copy(fx.store().join("eventlog@6.db"), &bare).unwrap();
    rehearse(&[&"export", &bare, &"--out", &fx.path("x")])
        .code(2)
        .stderr_has("not a LiveStore store directory");
    assert!(!fx.path("x").exists());
    let log = fx.store().join("eventlog@6.db");
    rehearse(&[&"export", &log, &"--out", &fx.path("y")])
        .success()
        .stdout_has("state.db");
}

fn a_flipped_byte_in_each_file_is_caught_by_its_checksum() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    // (file, verdict): the log and the ledger cannot be rebuilt; the snapshot can.
    for (file, verdict) in [
        ("eventlog.db", "no-go"),
        ("state.db", "go-replay"),
        ("aux/processed-messages.db", "no-go"),
    ] {
        let copy = fx.path(&format!("flip-{}", file.replace('/', "-")));
        copy_dir(&package, &copy);
        // Past the header, in the middle of the file's last page.
        let len = std::fs::metadata(copy.join(file)).unwrap().len() as usize;
        flip_byte(&copy.join(file), len - 100);
        let report = preflight(&copy, &[])
            .code(if verdict == "no-go" { 1 } else { 3 })
            .json();
        assert_eq!(report["verdict"], verdict, "{file}: {report:#}");
        assert!(
            failures(&report).contains(&("file".into(), file.into(), verdict.into())),
            "{file}: {:?}",
            failures(&report)
        );
        assert!(
            report["reason"].as_str().unwrap().contains("SHA-256"),
            "{}",
            report["reason"]
        );
    }

    let copy = fx.path("flip-manifest");
    copy_dir(&package, &copy);
    let text = std::fs::read_to_string(copy.join("manifest.json")).unwrap();
    std::fs::write(
        copy.join("manifest.json"),
        text.replacen("\"events\": 200", "\"events\": 201", 1),
    )
    .unwrap();
    let report = preflight(&copy, &[]).code(1).json();
    assert_eq!(report["verdict"], "no-go");
    assert_eq!(
        failures(&report),
        [("log-head".into(), "eventlog.db".into(), "no-go".into())]
    );
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("200 events, the manifest says 201"),
        "{}",
        report["reason"]
    );
}

fn a_manifest_with_a_wrong_checksum_or_schema_hash_is_no_go() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let copy = fx.path("wrong-hash");
    copy_dir(&package, &copy);
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(copy.join("manifest.json")).unwrap()).unwrap();
    manifest["files"][0]["sha256"] = Value::String("0".repeat(64));
    std::fs::write(copy.join("manifest.json"), manifest.to_string()).unwrap();
    let report = preflight(&copy, &[]).code(1).json();
    assert_eq!(
        failures(&report),
        [("file".into(), "eventlog.db".into(), "no-go".into())]
    );

    let report = preflight(
        &package,
        &[
            &"--expect-schema-hash",
            &"-999",
            &"--min-app-version",
            &"1.4.0",
        ],
    )
    .code(1)
    .json();
    assert_eq!(
        failures(&report),
        [("schema-hash".into(), "".into(), "no-go".into())]
    );
    let report = preflight(&package, &[&"--min-app-version", &"2.0.0"])
        .code(1)
        .json();
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("app version 1.4.2 is older than 2.0.0"),
        "{}",
        report["reason"]
    );
    preflight(
        &package,
        &[
            &"--expect-schema-hash",
            &"-186191357563",
            &"--min-app-version",
            &"v1.4.2",
        ],
    )
    .success();

    let copy = fx.path("not-a-manifest");
    copy_dir(&package, &copy);
    std::fs::write(copy.join("manifest.json"), "{\"manifestVersion\": 1}").unwrap();
    let report = preflight(&copy, &[]).code(1).json();
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("does not match the manifest schema"),
        "{}",
        report["reason"]
    );
}

fn a_truncated_or_edited_snapshot_means_restore_by_replaying_the_log() {
    let fx = Fixture::new();
    let package = fx.export("pkg");

    let truncated = fx.path("truncated");
    copy_dir(&package, &truncated);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(truncated.join("state.db"))
        .unwrap();
    f.set_len(100_000).unwrap();
    drop(f);
    // go-replay has its own exit code, 3: not the 0 a script restores on.
    let report = preflight(&truncated, &[]).code(3).json();
    assert_eq!(report["verdict"], "go-replay");
    let failed = failures(&report);
    assert!(failed.contains(&("integrity".into(), "state.db".into(), "go-replay".into())));
    assert!(failed.contains(&("snapshot".into(), "state.db".into(), "go-replay".into())));
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("100000 bytes, the manifest says 262144"),
        "{}",
        report["reason"]
    );

    // Edited after export: the checksum fails, and the comparison says where.
    let edited = fx.path("edited");
    copy_dir(&package, &edited);
    rusqlite::Connection::open(edited.join("state.db"))
        .unwrap()
        .execute(
            "UPDATE todos SET priority = 9 WHERE id = 'todo_ug4qhd18po'",
            [],
        )
        .unwrap();
    let report = preflight(&edited, &[]).code(3).json();
    assert_eq!(report["verdict"], "go-replay");
    let snapshot = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "snapshot")
        .unwrap();
    let message = snapshot["message"].as_str().unwrap();
    assert!(
        message.starts_with("snapshot diverges: restore by replaying the log")
            && message.contains("todos['todo_ug4qhd18po'] differs in priority"),
        "{message}"
    );
}

fn a_log_the_materializers_cannot_replay_is_no_go() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    // The next app version dropped the "guest" role: three registrations no longer decode.
    let report = rehearse(&[
        &"preflight",
        &package,
        &"-m",
        &corpus("workspace-n200-changed-schema/materializers.toml"),
        &"--format",
        &"json",
    ])
    .code(1)
    .json();
    assert_eq!(report["verdict"], "no-go");
    assert_eq!(
        failures(&report),
        [("replay".into(), "eventlog.db".into(), "no-go".into())]
    );
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("the log does not replay") && reason.contains("e2 v1.UserRegistered"),
        "{reason}"
    );
}

fn a_missing_auxiliary_file_or_an_unlisted_one_is_no_go() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let missing = fx.path("missing");
    copy_dir(&package, &missing);
    std::fs::remove_file(missing.join("aux/processed-messages.db")).unwrap();
    let report = preflight(&missing, &[]).code(1).json();
    assert_eq!(
        failures(&report),
        [(
            "file".into(),
            "aux/processed-messages.db".into(),
            "no-go".into()
        )]
    );
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("an auxiliary file is missing"),
        "{}",
        report["reason"]
    );

    let extra = fx.path("extra");
    copy_dir(&package, &extra);
    std::fs::write(extra.join("notes.txt"), "hi").unwrap();
    let report = preflight(&extra, &[]).code(1).json();
    assert_eq!(
        failures(&report),
        [("unlisted-files".into(), "".into(), "no-go".into())]
    );
}

/// `rehearse restore <package> --to <to> -m <defs> <extra>`.
fn restore(package: &Path, to: &Path, extra: &[&dyn AsRef<OsStr>]) -> TestCommand {
    let mut cmd = rehearse(&[&"restore", &package, &"--to", &to, &"-m", &defs()]);
    cmd.args(extra);
    cmd
}

/// The package's files under the names LiveStore gives them in a store.
fn as_store_files(package: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    [
        ("eventlog.db", "eventlog@6.db"),
        ("state.db", "state-186191357563@6.db"),
        ("aux/processed-messages.db", "processed-messages.db"),
    ]
    .into_iter()
    .map(|(from, to)| (to.to_string(), std::fs::read(package.join(from)).unwrap()))
    .collect()
}

fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A store whose state file a later LiveStore named by its storage fingerprint (no such release
/// is published yet: a 0.4 store renamed stands in) exports, pre-flights and restores under
/// that name.
fn a_state_named_by_a_storage_fingerprint_exports_preflights_and_restores() -> need::Result {
    let fx = Fixture::new();
    let fingerprint = "1_2x-8RoI45JYrfY63I7lNiHj4ptli9Ong1XNS1gA10";
    let name = format!("state{fingerprint}@6.db");
    std::fs::rename(
        fx.store().join("state-186191357563@6.db"),
        fx.store().join(&name),
    )
    .unwrap();
    let package = fx.export("pkg");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(package.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["stateSchemaHash"], fingerprint);
    assert_valid(&validator("manifest.schema.json"), &manifest);
    let report = preflight(&package, &[&"--expect-schema-hash", &fingerprint])
        .success()
        .json();
    assert_eq!(report["verdict"], "go", "{report:#}");
    let target = fx.path("restored/workspace");
    restore(&package, &target, &[]).success();
    assert!(target.join(&name).is_file(), "{:?}", files_of(&target));
    Ok(())
}

fn restore_round_trips_and_keeps_the_store_it_replaces() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let base = fx.path("restored");
    let target = base.join("workspace");

    restore(&package, &target, &[])
        .success()
        .stdout_has("verified log head: 200 events up to e185");
    assert_eq!(files_of(&target), as_store_files(&package));
    // LiveStore's view of the restored store: the same rows as the store that was exported.
    rehearse(&[
        &"diff",
        &fx.store().join("state-186191357563@6.db"),
        &target.join("state-186191357563@6.db"),
    ])
    .success();

    // Over an existing store: the old one is kept whole, under a timestamped name.
    std::fs::write(target.join("old-marker"), "old").unwrap();
    let old = files_of(&target);
    let report = restore(&package, &target, &[&"--format", &"json"])
        .success()
        .json();
    let restore_schema = validator("restore.schema.json");
    assert_valid(&restore_schema, &report);
    // The pre-flight inside is held to its own schema.
    let mut wrong = report.clone();
    wrong["preflight"]["verdict"] = "maybe".into();
    assert!(!restore_schema.is_valid(&wrong));
    assert_eq!(report["restored"], true);
    assert_eq!(report["preflight"]["verdict"], "go");
    let previous = PathBuf::from(report["previous"].as_str().unwrap());
    assert!(
        previous
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("workspace.rehearse-backup-"),
        "{previous:?}"
    );
    assert_eq!(files_of(&previous), old);
    assert_eq!(files_of(&target), as_store_files(&package));
    let names: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "only the store and its backup: {names:?}");

    // Not a store: refused, untouched.
    let other = fx.path("documents");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("letter.txt"), "dear").unwrap();
    restore(&package, &other, &[])
        .code(2)
        .stderr_has("not a LiveStore store directory");
    assert_eq!(
        std::fs::read_to_string(other.join("letter.txt")).unwrap(),
        "dear"
    );
}

fn restore_refuses_no_go_and_needs_from_log_for_go_replay() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let target = fx.path("restored/workspace");

    let broken = fx.path("broken");
    copy_dir(&package, &broken);
    flip_byte(&broken.join("eventlog.db"), 50_000);
    restore(&broken, &target, &[])
        .code(1)
        .stdout_has("NOT RESTORED: the pre-flight says no-go");
    assert!(!target.exists());

    let edited = fx.path("edited");
    copy_dir(&package, &edited);
    rusqlite::Connection::open(edited.join("state.db"))
        .unwrap()
        .execute("DELETE FROM comments", [])
        .unwrap();
    restore(&edited, &target, &[])
        .code(1)
        .stdout_has("restore with --from-log");
    assert!(!target.exists());
    // As data: refused, and why.
    let report = restore(&edited, &target, &[&"--format", &"json"])
        .code(1)
        .json();
    assert_valid(&validator("restore.schema.json"), &report);
    assert_eq!(report["restored"], false);
    assert_eq!(report["preflight"]["verdict"], "go-replay");
    assert!(
        report["refused"]
            .as_str()
            .unwrap()
            .contains("restore with --from-log"),
        "{report}"
    );
    assert!(!target.exists());

    restore(&edited, &target, &[&"--from-log"])
        .success()
        .stdout_has("LiveStore rebuilds it from the log");
    let installed: Vec<String> = files_of(&target).into_keys().collect();
    assert_eq!(installed, ["eventlog@6.db", "processed-messages.db"]);
}

fn a_restore_killed_at_any_step_leaves_the_old_store_or_the_new_one() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let new = as_store_files(&package);
    for step in ["staged", "intent-written", "swapped", "kept-old"] {
        let base = fx.path(&format!("kill-{step}"));
        let target = base.join("workspace");
        copy_dir(&corpus("workspace-n300-lsdev/workspace"), &target);
        let old = files_of(&target);
        // The failpoint fires.
        restore(&package, &target, &[])
            .env("REHEARSE_FAILPOINT", step)
            .run()
            .failure()
            .stderr_has(&format!("failpoint {step}"));
        let now = files_of(&target);
        let expect_new = matches!(step, "swapped" | "kept-old");
        assert!(
            if expect_new { now == new } else { now == old },
            "{step}: the target is neither whole store it should be: {:?}",
            now.keys().collect::<Vec<_>>()
        );

        // The next run finishes the bookkeeping and restores; the old store survives somewhere
        // under a backup name, whole.
        restore(&package, &target, &[]).success();
        assert_eq!(files_of(&target), new, "{step}");
        let mut found_old = false;
        for e in std::fs::read_dir(&base).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                name == "workspace" || name.starts_with("workspace.rehearse-backup-"),
                "{step}: left behind: {name}"
            );
            found_old |= files_of(&e.path()) == old;
        }
        assert!(found_old, "{step}: the old store was lost");
    }
}

fn a_restore_that_does_not_read_back_puts_the_old_store_back() {
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let new = as_store_files(&package);
    // Over a store: the old one is swapped back, whole, and nothing is left beside it.
    let base = fx.path("over");
    let target = base.join("workspace");
    copy_dir(&corpus("workspace-n300-lsdev/workspace"), &target);
    let old = files_of(&target);
    restore(&package, &target, &[])
        .env("REHEARSE_FAILPOINT", "verify")
        .code(2)
        .stderr_has("did not read back")
        .stderr_has("the previous store was put back in place")
        .stderr_has("staging directory");
    assert_eq!(files_of(&target), old);
    let left: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["workspace"], "left behind");

    // Killed right after swapping back: the old store is in place, and the next run removes
    // the new one from the staging name and restores.
    restore(&package, &target, &[])
        .env("REHEARSE_FAILPOINT", "verify,swapped-back")
        .run()
        .failure()
        .stderr_has("failpoint swapped-back");
    assert_eq!(files_of(&target), old);
    restore(&package, &target, &[])
        .success()
        .stdout_has("before it swapped the store in");
    assert_eq!(files_of(&target), new);

    // Into an empty directory: it is left empty again.
    let empty = fx.path("empty/workspace");
    std::fs::create_dir_all(&empty).unwrap();
    restore(&package, &empty, &[])
        .env("REHEARSE_FAILPOINT", "verify")
        .code(2)
        .stderr_has("leaving the target as it was");
    assert!(files_of(&empty).is_empty());
    assert_eq!(std::fs::read_dir(fx.path("empty")).unwrap().count(), 1);
    // Into nothing: there is still nothing.
    let absent = fx.path("absent/workspace");
    restore(&package, &absent, &[])
        .env("REHEARSE_FAILPOINT", "verify")
        .code(2);
    assert!(
        !fx.path("absent").exists() || std::fs::read_dir(fx.path("absent")).unwrap().count() == 0
    );
}

fn an_auxiliary_file_named_like_the_stores_own_files_is_no_go() {
    let fx = Fixture::new();
    // export refuses to take one.
    let other_log = corpus("workspace-n300-lsdev/workspace/eventlog@6.db");
    rehearse(&[
        &"export",
        &fx.store(),
        &"--out",
        &fx.path("refused"),
        &"--aux",
        &other_log,
    ])
    .code(2)
    .stderr_has("\"eventlog@6.db\"");
    assert!(!fx.path("refused").exists());

    // A package made by hand with one: another store's log as aux/eventlog@6.db.
    let package = fx.export("pkg");
    std::fs::copy(&other_log, package.join("aux/eventlog@6.db")).unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(package.join("manifest.json")).unwrap()).unwrap();
    let (bytes, sha256) =
        rehearse::backup::manifest::digest(&package.join("aux/eventlog@6.db")).unwrap();
    manifest["files"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "path": "aux/eventlog@6.db", "role": "auxiliary", "bytes": bytes, "sha256": sha256
        }));
    std::fs::write(
        package.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let report = preflight(&package, &[]).code(1).json();
    assert_eq!(report["verdict"], "no-go");
    assert!(
        failures(&report).contains(&(
            "file".to_string(),
            "aux/eventlog@6.db".to_string(),
            "no-go".to_string()
        )),
        "{report}"
    );
    assert!(
        report["reason"].as_str().unwrap().contains("store's own"),
        "{report}"
    );

    // restore refuses it, and the store it would have replaced is untouched.
    let target = fx.path("restored/workspace");
    copy_dir(&corpus("workspace-n300-lsdev/workspace"), &target);
    let old = files_of(&target);
    restore(&package, &target, &[])
        .code(1)
        .stdout_has("NOT RESTORED: the pre-flight says no-go");
    assert_eq!(files_of(&target), old);
}

/// Opens `<base>/workspace` with the real LiveStore library and returns every row of every
/// user table as JSON.
fn livestore_rows(app: &Path, base: &Path) -> Value {
    let work = tempdir();
    let out = work.path().join("rows.json");
    let status = std::process::Command::new("node")
        .arg(app.join("read-store.mjs"))
        .arg(base)
        .arg("workspace")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "LiveStore could not open {}",
        base.display()
    );
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

/// The same rows, read with SQLite from a state database, numbers compared as numbers.
fn sqlite_rows(db: &Path) -> Value {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = serde_json::Map::new();
    for t in [
        "users",
        "projects",
        "todos",
        "comments",
        "project_stats",
        "uiState",
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{t}\" ORDER BY 1"))
            .unwrap();
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let rows: Vec<Value> = stmt
            .query_map([], |r| {
                let mut row = serde_json::Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(x) => Value::from(x as f64),
                        rusqlite::types::ValueRef::Real(x) => Value::from(x),
                        rusqlite::types::ValueRef::Text(s) => {
                            Value::String(String::from_utf8_lossy(s).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(_) => Value::String("<blob>".into()),
                    };
                    row.insert(n.clone(), v);
                }
                Ok(Value::Object(row))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(t.to_string(), Value::Array(rows));
    }
    Value::Object(out)
}

fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::from(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect())
        }
        v => v,
    }
}

fn livestore_itself_opens_a_restored_store_and_reads_the_same_rows() -> need::Result {
    let app = need::livestore_app()?;
    let fx = Fixture::new();
    let package = fx.export("pkg");
    let expected = numbers_as_f64(sqlite_rows(&package.join("state.db")));
    assert!(expected["todos"].as_array().unwrap().len() > 10);

    let snapshot = fx.path("snapshot");
    restore(&package, &snapshot.join("workspace"), &[]).success();
    assert_eq!(numbers_as_f64(livestore_rows(&app, &snapshot)), expected);

    // From the log: LiveStore rebuilds the state itself, and gets the same rows.
    let from_log = fx.path("from-log");
    restore(&package, &from_log.join("workspace"), &[&"--from-log"]).success();
    assert_eq!(numbers_as_f64(livestore_rows(&app, &from_log)), expected);
    Ok(())
}

fn an_export_killed_before_it_finished_leaves_no_package() {
    let fx = Fixture::new();
    let out = fx.path("pkg");
    rehearse(&[&"export", &fx.store(), &"--out", &out])
        .env("REHEARSE_FAILPOINT", "export-staged")
        .run()
        .failure()
        .stderr_has("failpoint export-staged");
    assert!(!out.exists(), "a half-made package is visible");

    // The next export tidies the killed one's staging directory and completes.
    rehearse(&[&"export", &fx.store(), &"--out", &out])
        .success()
        .stdout_has("earlier export that was interrupted");
    let hidden: Vec<_> = std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let report = preflight(&out, &[]).success().json();
    assert_eq!(report["verdict"], "go");
}

/// A child process that a failing test does not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exports_taken_while_livestore_writes_are_consistent() -> need::Result {
    let app = need::livestore_app()?;
    let work = tempdir();
    let live = work.path().join("live");
    // The real LiveStore library committing 1,500 events, one per commit, while we export.
    let mut app = KillOnDrop(
        std::process::Command::new("node")
            .arg(app.join("gen.mjs"))
            .args(["--events", "1500", "--seed", "7", "--quiet", "--out"])
            .arg(&live)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let store = live.join("workspace");
    // Until LiveStore has booted and committed its first event, there is nothing to export
    // yet: it creates the event log's tables before it migrates the state database, so a log
    // that opens may still sit beside a state database without its tables (an export then
    // rightly says go-replay).
    let has_events = || {
        let run = rehearse(&[&"inspect", &store, &"--format", &"json"]).run();
        run.exit_code() == 0
            && serde_json::from_str::<Value>(&run.stdout)
                .is_ok_and(|v| v["events"].as_u64().is_some_and(|n| n > 0))
    };
    while !has_events() {
        assert!(
            app.0.try_wait().unwrap().is_none(),
            "the generator ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut verdicts = Vec::new();
    let mut k = 0;
    loop {
        let finished = app.0.try_wait().unwrap().is_some();
        if store.join("eventlog@6.db").is_file() {
            k += 1;
            let out = work.path().join(format!("pkg{k}"));
            let run = rehearse(&[&"export", &store, &"--out", &out]).run();
            if run.exit_code() == 0 {
                let report = preflight(&out, &[]).run().json();
                verdicts.push((k, report["verdict"].clone(), report["reason"].clone()));
            } else {
                // Only "kept changing" is an acceptable refusal under a busy writer.
                run.stderr_has("kept changing");
            }
        }
        if finished {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(app.0.wait().unwrap().success(), "the generator failed");
    assert!(
        verdicts.len() >= 3,
        "too few exports during the run: {verdicts:?}"
    );
    for (k, verdict, reason) in &verdicts {
        assert_eq!(verdict, "go", "export {k}: {reason}");
    }
    Ok(())
}
