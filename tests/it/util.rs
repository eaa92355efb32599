//! Running the built `rehearse` and asserting on what it did, in the style of ripgrep's
//! `tests/util.rs`: [`rehearse`] builds a [`TestCommand`], `.run()` (or `.code(n)`,
//! `.success()`) gives an [`Out`], and every assertion on it that fails prints the whole run:
//! the command line, the exit code, stdout and stderr. Plus the paths of the real corpora and a
//! few file helpers.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `corpora/<name>`.
pub fn corpus(name: &str) -> PathBuf {
    root().join("corpora").join(name)
}

/// The workspace app's definitions, `corpora/workspace/materializers.toml`.
pub fn defs() -> PathBuf {
    corpus("workspace/materializers.toml")
}

/// The text of the workspace definitions with their paths (`event_schemas`, `ddl_file`) made
/// absolute, so that an edited copy can be written anywhere.
pub fn defs_text() -> String {
    std::fs::read_to_string(defs())
        .unwrap()
        .replace(
            "event_schemas = \"../../schemas/workspace/events\"",
            &format!(
                "event_schemas = {:?}",
                root()
                    .join("schemas/workspace/events")
                    .display()
                    .to_string()
            ),
        )
        .replace(
            "ddl_file = \"state.sql\"",
            &format!(
                "ddl_file = {:?}",
                corpus("workspace/state.sql").display().to_string()
            ),
        )
}

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rehearse"))
}

/// `rehearse <args>`, with `NO_COLOR=1`. Arguments of mixed types: `&[&"check", &path]`.
pub fn rehearse(args: &[&dyn AsRef<OsStr>]) -> TestCommand {
    let mut cmd = command(bin(), args);
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Any program, as a [`TestCommand`].
pub fn command(program: impl AsRef<OsStr>, args: &[&dyn AsRef<OsStr>]) -> TestCommand {
    let mut cmd = TestCommand {
        cmd: Command::new(program.as_ref()),
        shown: vec![program.as_ref().to_owned()],
        env: Vec::new(),
    };
    cmd.args(args);
    cmd
}

/// A command to run, and what it looks like in a failure message.
pub struct TestCommand {
    cmd: Command,
    shown: Vec<OsString>,
    env: Vec<String>,
}

impl TestCommand {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg.as_ref());
        self.shown.push(arg.as_ref().to_owned());
        self
    }

    pub fn args(&mut self, args: &[&dyn AsRef<OsStr>]) -> &mut Self {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value.as_ref());
        self.env
            .push(format!("{key}={}", value.as_ref().to_string_lossy()));
        self
    }

    pub fn env_remove(&mut self, key: &str) -> &mut Self {
        self.cmd.env_remove(key);
        self.env.push(format!("-u {key}"));
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir.as_ref());
        self.env.push(format!("(in {})", dir.as_ref().display()));
        self
    }

    /// Runs it to the end, whatever its exit code.
    pub fn run(&mut self) -> Out {
        let out = self
            .cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown()));
        Out {
            command: self.shown(),
            code: out.status.code(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs it, killing it and failing the test if it has not ended after `limit`: a hang
    /// detector for hostile input, generously bounded (never a speed test).
    #[track_caller]
    pub fn within(&mut self, limit: std::time::Duration) -> Out {
        use std::io::Read;
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown()));
        let pipe = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = r.read_to_end(&mut b);
                String::from_utf8_lossy(&b).into_owned()
            })
        };
        let stdout = pipe(Box::new(child.stdout.take().unwrap()));
        let stderr = pipe(Box::new(child.stderr.take().unwrap()));
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not end within {limit:?} (killed)\n--- stderr\n{}",
                    self.shown(),
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Out {
            command: self.shown(),
            code: status.code(),
            status: status.to_string(),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// Runs it and asserts its exit code.
    #[track_caller]
    pub fn code(&mut self, code: i32) -> Out {
        let out = self.run();
        out.code(code);
        out
    }

    /// Runs it and asserts it exited 0.
    #[track_caller]
    pub fn success(&mut self) -> Out {
        self.code(0)
    }

    fn shown(&self) -> String {
        let mut s: Vec<String> = self.env.clone();
        s.extend(self.shown.iter().map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains([' ', '"', '\'', '\n']) {
                format!("{a:?}")
            } else {
                a.into_owned()
            }
        }));
        s.join(" ")
    }
}

/// What a run did. Each assertion panics with the whole run when it does not hold, and returns
/// the run for the next: `out.code(1).stdout_has("FAIL").stderr_has("…")`.
pub struct Out {
    command: String,
    /// `None` when a signal ended it.
    code: Option<i32>,
    status: String,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n--- command\n{}\n--- {}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Out {
    /// The exit code (-1 when a signal ended the run).
    pub fn exit_code(&self) -> i32 {
        self.code.unwrap_or(-1)
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert!(self.code == Some(code), "expected exit code {code}{self}");
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    /// One of `codes`.
    #[track_caller]
    pub fn code_in(&self, codes: &[i32]) -> &Self {
        assert!(
            self.code.is_some_and(|c| codes.contains(&c)),
            "expected one of the exit codes {codes:?}{self}"
        );
        self
    }

    /// Any exit but 0, a signal too.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert!(self.code != Some(0), "expected a failure{self}");
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}{self}");
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, text: &str) -> &Self {
        assert!(!self.stdout.contains(text), "stdout has {text:?}{self}");
        self
    }

    #[track_caller]
    pub fn stdout_starts_with(&self, text: &str) -> &Self {
        assert!(
            self.stdout.starts_with(text),
            "stdout does not start with {text:?}{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}{self}");
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, text: &str) -> &Self {
        assert!(!self.stderr.contains(text), "stderr has {text:?}{self}");
        self
    }

    #[track_caller]
    pub fn stderr_empty(&self) -> &Self {
        assert!(self.stderr.is_empty(), "stderr is not empty{self}");
        self
    }

    /// In stdout or in stderr.
    #[track_caller]
    pub fn output_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "neither stdout nor stderr has {text:?}{self}"
        );
        self
    }

    /// stdout, parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}){self}"))
    }
}

/// A temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir` with its bytes.
pub fn snapshot_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A validator for `schemas/<schema>`.
pub fn validator(schema: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas").join(schema)).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .with_retriever(OurSchemas)
        .build(&schema)
        .unwrap()
}

/// Our schemas refer to each other by their `$id`s, which name the files in `schemas/`.
struct OurSchemas;

impl jsonschema::Retrieve for OurSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .strip_prefix("https://github.com/rehearse/rehearse/schemas/")
            .ok_or_else(|| format!("not one of rehearse's schemas: {}", uri.as_str()))?;
        Ok(serde_json::from_str(&std::fs::read_to_string(
            root().join("schemas").join(name),
        )?)?)
    }
}

/// Every error of `value` against `validator`, or none.
pub fn assert_valid(validator: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
