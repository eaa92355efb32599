//! The npm packages, as a LiveStore team gets them: assembled from the built binary by
//! `npm/assemble.mjs`, `npm pack`ed, and installed from their tarballs with `npm i -D` into a
//! copy of the LiveStore test app (with its installed `node_modules`); then `npx rehearse` runs
//! the gate there, and `rehearse/capture` takes packages from a real store while it is written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::need;
use crate::util::*;

trials![
    npx_rehearse_passes_every_exit_code_through,
    the_launcher_hands_rehearse_the_node_that_runs_it,
    a_sigterm_to_the_launcher_reaches_rehearse_and_kills_the_launcher_too,
    the_launcher_names_the_platform_when_no_binary_fits,
    capture_takes_packages_that_preflight_go_while_the_app_writes,
    the_capture_log_reader_agrees_with_inspect_on_every_corpus,
    capture_reads_again_until_log_and_state_belong_together,
    capture_runs_in_a_browser_and_its_download_preflights_go,
    the_github_action_runs_the_gate_and_writes_the_job_summary,
];

/// The scratch app with `rehearse` installed from the tarballs, and the assembled packages.
#[derive(Clone)]
struct Installed {
    /// The app: a copy of the LiveStore test app, `rehearse` among its dev dependencies.
    app: PathBuf,
    /// `npm/assemble.mjs`'s output: `rehearse/`, `linux-x64-gnu/`.
    assembled: PathBuf,
}

/// Assembles, packs and installs the packages once per test process.
fn installed() -> need::Result<Installed> {
    static INSTALLED: OnceLock<need::Result<Installed>> = OnceLock::new();
    INSTALLED.get_or_init(install).clone()
}

fn install() -> need::Result<Installed> {
    let livestore_app = need::livestore_app()?;
    let root = root().join("target/npm-test");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let assembled = root.join("assembled");
    command(
        "node",
        &[
            &root_path("npm/assemble.mjs"),
            &"--version",
            &env!("CARGO_PKG_VERSION"),
            &"--out",
            &assembled,
            &"--binary",
            &format!("linux-x64-gnu={}", bin().display()),
        ],
    )
    .success();
    let tarballs = root.join("tarballs");
    std::fs::create_dir_all(&tarballs).unwrap();
    for package in ["linux-x64-gnu", "rehearse"] {
        command(
            "npm",
            &[&"pack", &"--silent", &"--pack-destination", &tarballs],
        )
        .current_dir(assembled.join(package))
        .success();
    }
    let mut tgz: Vec<PathBuf> = std::fs::read_dir(&tarballs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tgz.sort();
    assert_eq!(tgz.len(), 2, "two tarballs: {tgz:?}");

    // The app as a team has it: its files and its installed packages.
    let app = root.join("app");
    let copied = Command::new("cp")
        .arg("-R")
        .arg(&livestore_app)
        .arg(&app)
        .status()
        .unwrap();
    assert!(copied.success(), "copying {}", livestore_app.display());
    let mut npm = command(
        "npm",
        &[
            &"install",
            &"--save-dev",
            &"--no-audit",
            &"--no-fund",
            &"--prefer-offline",
        ],
    );
    for t in &tgz {
        npm.arg(t);
    }
    npm.current_dir(&app).success();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(app.join("package.json")).unwrap()).unwrap();
    assert!(
        manifest["devDependencies"]["rehearse"].is_string(),
        "rehearse is a dev dependency: {manifest}"
    );
    assert!(
        app.join("node_modules/@rehearse/cli-linux-x64/bin/rehearse")
            .is_file()
    );
    Ok(Installed { app, assembled })
}

fn root_path(rel: &str) -> PathBuf {
    root().join(rel)
}

/// `npx --no rehearse <args>` in the app (`--no`: never fetch it from the registry).
fn npx(app: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> TestCommand {
    let mut cmd = command("npx", &[&"--no", &"rehearse"]);
    cmd.args(args).current_dir(app).env("NO_COLOR", "1");
    cmd
}

fn npx_rehearse_passes_every_exit_code_through() -> need::Result {
    let Installed { app, .. } = installed()?;
    let n200 = corpus("workspace-n200");
    npx(&app, &[&"check", &n200, &"-m", &"livestore:app.mjs"])
        .success()
        .stdout_has("PASS");
    npx(&app, &[&"check", &n200, &"-m", &"livestore:app-throws.mjs"])
        .code(1)
        .stdout_has("materializer-error");
    let missing = app.join("no-such-corpus");
    npx(&app, &[&"check", &missing, &"-m", &"livestore:app.mjs"])
        .code(2)
        .stderr_has("no-such-corpus");
    npx(
        &app,
        &[
            &"check",
            &"--git-bisect",
            &missing,
            &"-m",
            &"livestore:app.mjs",
        ],
    )
    .code(125);
    // go-replay: a package whose snapshot changed after export.
    let dir = tempdir();
    let package = dir.path().join("pkg");
    npx(
        &app,
        &[
            &"export",
            &corpus("workspace-n200/workspace"),
            &"--out",
            &package,
        ],
    )
    .success();
    let state = package.join("state.db");
    let mut bytes = std::fs::read(&state).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&state, bytes).unwrap();
    npx(&app, &[&"preflight", &package, &"-m", &"livestore:app.mjs"])
        .code(3)
        .stdout_has("GO-REPLAY");
    Ok(())
}

fn the_launcher_hands_rehearse_the_node_that_runs_it() -> need::Result {
    let Installed { app, .. } = installed()?;
    let node = which("node");
    // No Node.js on PATH: the plugin can only run through the REHEARSE_NODE the launcher sets.
    command(
        &node,
        &[
            &app.join("node_modules/rehearse/bin/rehearse.cjs"),
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &"livestore:app.mjs",
        ],
    )
    .current_dir(&app)
    .env("PATH", "/nonexistent")
    .env_remove("REHEARSE_NODE")
    .success()
    .stdout_has("PASS");
    // A REHEARSE_NODE already set is left alone.
    command(
        &node,
        &[
            &app.join("node_modules/rehearse/bin/rehearse.cjs"),
            &"check",
            &corpus("workspace-n200"),
            &"-m",
            &"livestore:app.mjs",
        ],
    )
    .current_dir(&app)
    .env("REHEARSE_NODE", "/nonexistent/node")
    .code(2)
    .stderr_has("/nonexistent/node");
    Ok(())
}

fn a_sigterm_to_the_launcher_reaches_rehearse_and_kills_the_launcher_too() -> need::Result {
    use std::os::unix::process::ExitStatusExt;
    let Installed { app, .. } = installed()?;
    let dir = tempdir();
    // rehearse blocks asking a "Node.js" that never answers for its version. (Definitions that
    // are a FIFO used to block it; rehearse now refuses a FIFO at once.)
    let node = dir.path().join("node");
    std::fs::write(&node, "#!/bin/sh\nexec sleep 30\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut launcher = Command::new(app.join("node_modules/.bin/rehearse"))
        .args(["check", "--log-only", "-m", "livestore:app.mjs"])
        .arg(corpus("workspace-n200"))
        .env("REHEARSE_NODE", &node)
        .current_dir(&app)
        .spawn()
        .unwrap();
    let pid = launcher.id();
    let children = format!("/proc/{pid}/task/{pid}/children");
    let started = Instant::now();
    let rehearse = loop {
        let listed = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(child) = listed.split_whitespace().next() {
            break child.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the launcher never started rehearse"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Blocked on the silent Node, not exited.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Path::new(&format!("/proc/{rehearse}")).exists(),
        "rehearse exited before the SIGTERM"
    );
    // The silent Node is killed at the end, whatever rehearse does with it.
    let grandchildren =
        std::fs::read_to_string(format!("/proc/{rehearse}/task/{rehearse}/children"))
            .unwrap_or_default();
    let _reap = KillPids(
        grandchildren
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    );
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = launcher.wait().unwrap();
    assert!(
        status.signal() == Some(15) || status.code() == Some(143),
        "the launcher must die of SIGTERM as rehearse did, not exit {status}"
    );
    let gone = Instant::now();
    while gone.elapsed() < Duration::from_secs(10) {
        let stat = std::fs::read_to_string(format!("/proc/{rehearse}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting to be reaped by whoever inherited it.
        if stat.is_empty() || stat.contains(") Z ") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not left behind by a failing test.
    let _ = Command::new("kill").args(["-KILL", &rehearse]).status();
    panic!("rehearse (pid {rehearse}) outlived the SIGTERM sent to its launcher");
}

fn the_launcher_names_the_platform_when_no_binary_fits() -> need::Result {
    let Installed { assembled, .. } = installed()?;
    let node = which("node");
    // The launcher package alone, with no platform package beside it.
    let launcher = assembled.join("rehearse/bin/rehearse.cjs");
    command(&node, &[&launcher, &"--version"])
        .env_remove("REHEARSE_BINARY")
        .code(2)
        .stderr_has("linux-x64-gnu")
        .stderr_has("@rehearse/cli-linux-x64")
        .stderr_has("REHEARSE_BINARY");
    command(&node, &[&launcher, &"check", &"--git-bisect", &"x"])
        .env_remove("REHEARSE_BINARY")
        .code(125);
    // REHEARSE_BINARY names the binary instead.
    command(&node, &[&launcher, &"--version"])
        .env("REHEARSE_BINARY", bin())
        .success()
        .stdout_has(env!("CARGO_PKG_VERSION"));
    command(&node, &[&launcher, &"--version"])
        .env("REHEARSE_BINARY", "/nonexistent/rehearse")
        .code(2)
        .stderr_has("cannot run /nonexistent/rehearse");
    Ok(())
}

fn capture_takes_packages_that_preflight_go_while_the_app_writes() -> need::Result {
    let Installed { app, .. } = installed()?;
    std::fs::copy(
        root_path("tests/livestore/capture-while-writing.mjs"),
        app.join("capture-while-writing.mjs"),
    )
    .unwrap();
    let dir = tempdir();
    let out = dir.path().join("captures");
    command(
        "node",
        &[
            &"capture-while-writing.mjs",
            &"--out",
            &out,
            &"--events",
            &"1200",
        ],
    )
    .current_dir(&app)
    .success();
    let run: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let packages = run["packages"].as_array().unwrap();
    assert_eq!(run["committed"], 1200, "{run}");
    // Taken while the app was committing: each holds part of the log, and every part differs.
    let counts: Vec<u64> = packages
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .collect();
    let (during, last) = counts.split_at(counts.len() - 1);
    assert!(during.iter().all(|&n| n > 0 && n < 1200), "{counts:?}");
    assert!(during.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    assert_eq!(last, [1200]);
    let mut dirs: Vec<PathBuf> = packages
        .iter()
        .map(|p| PathBuf::from(p["dir"].as_str().unwrap()))
        .collect();
    // The browser path's archive, unpacked as its user would.
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(out.join("pkg-tar.tar"))
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    dirs.push(out.join("pkg-tar"));
    for package in &dirs {
        let names: Vec<String> = std::fs::read_dir(package)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["eventlog.db", "manifest.json", "state.db"]);
        let verdict = npx(
            &app,
            &[
                &"preflight",
                package,
                &"-m",
                &"livestore:app.mjs",
                &"--format",
                &"json",
            ],
        )
        .success()
        .json();
        assert_eq!(verdict["verdict"], "go", "{}: {verdict}", package.display());
        assert_eq!(verdict["manifest"]["appVersion"], "1.4.2");
        assert_eq!(verdict["manifest"]["tool"]["name"], "rehearse/capture");
        assert_eq!(
            verdict["manifest"]["tool"]["version"],
            env!("CARGO_PKG_VERSION")
        );
    }
    npx(
        &app,
        &[&"check", &dirs[dirs.len() - 2], &"-m", &"livestore:app.mjs"],
    )
    .success()
    .stdout_has("replayed 1200 events: 1200 applied");
    Ok(())
}

fn the_capture_log_reader_agrees_with_inspect_on_every_corpus() -> need::Result {
    let Installed { app, .. } = installed()?;
    let script = app.join("describe-log.mjs");
    std::fs::write(
        &script,
        "import fs from 'node:fs'\n\
         import { describeLog } from 'rehearse/capture'\n\
         console.log(JSON.stringify(describeLog(fs.readFileSync(process.argv[2]))))\n",
    )
    .unwrap();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(root().join("corpora")).unwrap() {
        let dir = entry.unwrap().path();
        for sub in std::fs::read_dir(&dir).unwrap() {
            let log = sub.unwrap().path().join("eventlog@6.db");
            if log.is_file() {
                logs.push(log);
            }
        }
    }
    logs.sort();
    assert!(logs.len() >= 8, "{logs:?}");
    for log in &logs {
        let ours = command("node", &[&script, log])
            .current_dir(&app)
            .success()
            .json();
        let inspect = rehearse(&[&"inspect", log, &"--format", &"json"])
            .success()
            .json();
        let expected = serde_json::json!({
            "events": inspect["events"],
            "eventCounts": inspect["names"],
            "lastEvent": inspect["last"],
            "syncHead": inspect["syncHead"],
            "backendId": inspect["backendId"],
        });
        assert_eq!(ours, expected, "{}", log.display());
    }
    Ok(())
}

/// The consistency rule of `capture`, on a leader whose answers the test chooses (real
/// databases from the corpora): a log that changed between the two reads around the state is
/// read again, and a state recording events the log lacks is never kept.
fn capture_reads_again_until_log_and_state_belong_together() -> need::Result {
    let Installed { app, .. } = installed()?;
    let script = app.join("capture-retries.mjs");
    std::fs::write(
        &script,
        r#"import fs from 'node:fs'
import { StoreInternalsSymbol } from '@livestore/livestore'
import { Effect } from 'effect'
import { capture } from 'rehearse/capture'
import { schema } from './app.mjs'

const [n200Log, n200State, otherLog] = process.argv.slice(2).map((f) => new Uint8Array(fs.readFileSync(f)))
const storeAnswering = (logs) => {
  let i = 0
  return {
    storeId: 'workspace',
    schema,
    [StoreInternalsSymbol]: {
      clientSession: {
        leaderThread: {
          export: Effect.sync(() => n200State),
          getEventlogData: Effect.sync(() => logs[Math.min(i++, logs.length - 1)]),
        },
      },
    },
  }
}
// The log changes between the first two reads: the second attempt finds it settled.
const changed = await capture(storeAnswering([otherLog, n200Log, n200Log]))
// The state records events up to e200, the log only to e26.2: never kept.
let error = null
await capture(storeAnswering([otherLog])).catch((e) => { error = e.message })
console.log(JSON.stringify({ attempts: changed.attempts, events: changed.manifest.events, error }))
"#,
    )
    .unwrap();
    let n200 = corpus("workspace-n200/workspace");
    let out = command(
        "node",
        &[
            &script,
            &n200.join("eventlog@6.db"),
            &n200.join("state-186191357563@6.db"),
            &corpus("js-values/workspace/eventlog@6.db"),
        ],
    )
    .current_dir(&app)
    .success()
    .json();
    assert_eq!(out["attempts"], 2, "{out}");
    assert_eq!(out["events"], 200, "{out}");
    let error = out["error"].as_str().unwrap_or_default();
    assert!(error.contains("kept changing"), "{out}");
    Ok(())
}

/// The browser path in a real browser: `rehearse/capture` bundled for the browser by esbuild
/// (the test app has it, through tsx), run by headless Chromium on a page whose leader answers
/// with the n200 store's databases; the Blob `download` offers is unpacked with `tar` and
/// pre-flights `go`. (A LiveStore web store in OPFS is not started: the page's leader stands in
/// for its leader thread.)
fn capture_runs_in_a_browser_and_its_download_preflights_go() -> need::Result {
    let Installed { app, .. } = installed()?;
    let chromium = which("chromium");
    if chromium.as_os_str().is_empty() {
        return Err(need::Skip::because("chromium is not installed"));
    }
    let esbuild = app.join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        return Err(need::Skip::because(
            "the test app has no esbuild to bundle the page",
        ));
    }
    let dir = tempdir();
    let entry = app.join("browser-entry.mjs");
    std::fs::write(
        &entry,
        r#"import { StoreInternalsSymbol } from '@livestore/livestore'
import { Effect } from 'effect'
import { capture, download } from 'rehearse/capture'
import { schema } from './app.mjs'

const bytes = (id) => Uint8Array.from(atob(document.getElementById(id).textContent.trim()), (c) => c.charCodeAt(0))
const log = bytes('eventlog')
const state = bytes('state')
const store = {
  storeId: 'workspace',
  schema,
  [StoreInternalsSymbol]: {
    clientSession: { leaderThread: { export: Effect.sync(() => state), getEventlogData: Effect.sync(() => log) } },
  },
}
const result = document.getElementById('result')
try {
  const pkg = await capture(store, { appVersion: '1.4.2' })
  const blob = download(pkg, 'browser-package.tar')
  const tar = new Uint8Array(await blob.arrayBuffer())
  let text = ''
  for (let i = 0; i < tar.length; i += 0x8000) text += String.fromCharCode(...tar.subarray(i, i + 0x8000))
  result.textContent = JSON.stringify({ ok: true, type: blob.type, tar: btoa(text) })
} catch (e) {
  result.textContent = JSON.stringify({ ok: false, error: String((e && e.stack) || e) })
}
"#,
    )
    .unwrap();
    let bundle = dir.path().join("bundle.js");
    command(
        &esbuild,
        &[
            &entry,
            &"--bundle",
            &"--format=esm",
            &"--platform=browser",
            &"--log-level=error",
            &format!("--outfile={}", bundle.display()),
        ],
    )
    .current_dir(&app)
    .success();
    use base64::Engine as _;
    let b64 =
        |p: PathBuf| base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap());
    let n200 = corpus("workspace-n200/workspace");
    let script = std::fs::read_to_string(&bundle)
        .unwrap()
        .replace("</script", "<\\/script");
    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>\
             <pre id=\"eventlog\" hidden>{}</pre><pre id=\"state\" hidden>{}</pre>\
             <pre id=\"result\">pending</pre><script type=\"module\">{script}</script></body></html>",
            b64(n200.join("eventlog@6.db")),
            b64(n200.join("state-186191357563@6.db")),
        ),
    )
    .unwrap();
    let out = command(
        &chromium,
        &[
            &"--headless",
            &"--no-sandbox",
            &"--disable-gpu",
            &"--virtual-time-budget=30000",
            &"--dump-dom",
            &format!("file://{}", page.display()),
        ],
    )
    .success();
    let dom = &out.stdout;
    let start = dom.find("<pre id=\"result\">").expect("the result element") + 17;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let result: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["type"], "application/x-tar");
    let tar = dir.path().join("browser-package.tar");
    std::fs::write(
        &tar,
        base64::engine::general_purpose::STANDARD
            .decode(result["tar"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let verdict = npx(
        &app,
        &[
            &"preflight",
            &dir.path().join("browser-package"),
            &"-m",
            &"livestore:app.mjs",
            &"--format",
            &"json",
        ],
    )
    .success()
    .json();
    assert_eq!(verdict["verdict"], "go", "{verdict}");
    assert_eq!(verdict["manifest"]["events"], 200);
    Ok(())
}

/// `action.yml`'s step, as the runner runs it: in the app, with the inputs as `INPUT_*` and
/// the runner's files; it finds the rehearse the app installed from npm.
fn the_github_action_runs_the_gate_and_writes_the_job_summary() -> need::Result {
    let Installed { app, .. } = installed()?;
    let action = std::fs::read_to_string(root_path("action.yml")).unwrap();
    assert!(action.contains("scripts/github-action.sh"), "{action}");
    let dir = tempdir();
    let run = |materializers: &Path, name: &str| {
        let summary = dir.path().join(format!("{name}-summary.md"));
        let output = dir.path().join(format!("{name}-output"));
        std::fs::write(&summary, "# earlier steps\n").unwrap();
        let out = command("bash", &[&root_path("scripts/github-action.sh")])
            .current_dir(&app)
            .env("INPUT_MATERIALIZERS", materializers)
            .env("INPUT_CORPORA", corpus("workspace-n200"))
            .env("INPUT_JUNIT", dir.path().join(format!("{name}.xml")))
            .env("INPUT_ARGS", "--severity zero-rows=off")
            .env("RUNNER_TEMP", dir.path())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &output)
            .env("NO_COLOR", "1")
            .run();
        let summary = std::fs::read_to_string(&summary).unwrap();
        let output = std::fs::read_to_string(&output).unwrap();
        (out, summary, output)
    };
    let (out, summary, output) = run(&defs(), "pass");
    out.success().stdout_has("PASS");
    assert!(summary.starts_with("# earlier steps\n"), "{summary}");
    assert!(summary.len() > "# earlier steps\n".len(), "{summary}");
    assert_eq!(output, "exit-code=0\n");
    assert!(dir.path().join("pass.xml").is_file());
    let changed = corpus("workspace-n200-changed-definition/materializers.toml");
    let (out, summary, output) = run(&changed, "fail");
    out.code(1)
        .stdout_has("::error file=")
        .stdout_has("first-divergence");
    assert!(summary.contains("first-divergence"), "{summary}");
    assert_eq!(output, "exit-code=1\n");
    // Leaves nothing of its own behind.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "fail-output",
            "fail-summary.md",
            "fail.xml",
            "pass-output",
            "pass-summary.md",
            "pass.xml"
        ]
    );
    Ok(())
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Kills the listed processes when dropped.
struct KillPids(Vec<String>);

impl Drop for KillPids {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}
