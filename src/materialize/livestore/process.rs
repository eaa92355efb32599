//! One helper as an operating-system process, supervised so that it can never block the
//! replay: its stdin is written by a thread of its own, its stdout is read and parsed by
//! another into a channel the replay waits on with a timeout, and its stderr is passed on and
//! its last lines kept for the error that ends it. The conversation itself is
//! [`helper`](super::helper)'s.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::protocol::{BYE, PREFIX, Reply, Trace};
use crate::error::{Error, Result};

/// A line from the helper's stdout, as the reader thread made it out.
pub(super) enum Line {
    /// A message, read on the reader thread so that the replay does not wait for parsing.
    Message(Reply),
    /// A protocol line that cannot be a whole message, with the helper's progress as it was
    /// read (the helper works on, so later would name a later event).
    Garbage(String, Option<u64>),
    /// Anything else on stdout: output that got past the helper's redirection.
    Stray(String),
    /// The helper's stdout closed: it exited.
    Closed,
}

/// A running helper process.
pub(super) struct Process {
    child: Child,
    /// Lines for the helper's stdin, written by a thread of their own: a helper busy on
    /// the events before (or hung) must not block the replay in a write, where no timeout
    /// can reach it.
    outbox: Sender<Vec<u8>>,
    lines: Receiver<Line>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Where the helper writes the id of the event it is materializing.
    progress: PathBuf,
    trace: Trace,
}

impl Process {
    /// Starts `command` with its three pipes and the threads that serve them. `progress` is
    /// the helper's progress file, read when a line turns out to be garbage.
    pub(super) fn spawn(mut command: Command, progress: PathBuf, trace: Trace) -> Result<Process> {
        let node = PathBuf::from(command.get_program());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::input(&node, format!("cannot start Node.js: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let (outbox, unsent) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            use std::io::Write;
            // Ends when the helper stops reading (its pipe breaks) or the helper is dropped.
            for line in unsent {
                if stdin.write_all(&line).is_err() {
                    return;
                }
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        let progress_path = progress.clone();
        let reader_trace = trace.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Line::Closed);
                        return;
                    }
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        let text = text.trim_end_matches(['\n', '\r']);
                        let line = match text.strip_prefix(PREFIX) {
                            Some(m) if m.starts_with('{') && m.ends_with('}') => {
                                reader_trace.record(m.as_bytes());
                                Line::Message(Reply::parse(m))
                            }
                            Some(m) => Line::Garbage(m.to_string(), read_progress(&progress_path)),
                            None => Line::Stray(text.to_string()),
                        };
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                // The app's own logging is the developer's; pass it on.
                eprintln!("livestore: {line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == 20 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        Ok(Process {
            child,
            outbox,
            lines,
            stderr_tail,
            progress,
            trace,
        })
    }

    /// Queues a line for the helper's stdin; `false` once nothing reads it any more.
    pub(super) fn send(&self, line: Vec<u8>) -> bool {
        self.trace.record(&line);
        self.outbox.send(line).is_ok()
    }

    /// The next line, waiting at most `timeout`; `None` when none came.
    pub(super) fn next_line(&self, timeout: Duration) -> Option<Line> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Line::Closed),
        }
    }

    /// The next line if one is there.
    pub(super) fn try_line(&self) -> Option<Line> {
        match self.lines.try_recv() {
            Ok(line) => Some(line),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Line::Closed),
        }
    }

    /// The id of the event the helper is materializing, or last materialized.
    pub(super) fn progress(&self) -> Option<u64> {
        read_progress(&self.progress)
    }

    /// How the helper ended, if it has.
    pub(super) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for a helper whose stdout has closed to be gone.
    pub(super) fn reap(&mut self) {
        let _ = self.child.wait();
    }

    /// What the helper last wrote on stderr (at most 20 lines).
    pub(super) fn last_words(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Ends a helper that can no longer be trusted to answer.
    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    /// Says `bye` and gives the helper a moment to leave on its own before it is killed.
    fn drop(&mut self) {
        let _ = self.send(BYE.to_vec());
        for _ in 0..20 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
    }
}

/// The id in a progress file: a little-endian double, as JavaScript writes numbers.
fn read_progress(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    Some(f64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as u64)
}
