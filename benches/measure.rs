//! One process, timed and weighed: its wall time, and its peak resident memory as the kernel
//! counted it (`wait4`'s `ru_maxrss`), so that every case's figure is that process's own.

use std::process::{Command, Stdio};
use std::time::Instant;

/// What one run of a process took.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Wall-clock seconds.
    pub secs: f64,
    /// Peak resident set size, in KiB.
    pub peak_kib: u64,
    /// The exit code (None when killed by a signal).
    pub code: Option<i32>,
}

/// Runs `cmd` (its stdout and stderr as set, or discarded) to the end.
pub fn run(cmd: &mut Command) -> std::io::Result<Run> {
    let t = Instant::now();
    let child = cmd.stdin(Stdio::null()).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; status and usage are valid pointers.
    // The Child is not waited for again (dropping it neither waits nor kills).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    if waited != pid {
        return Err(std::io::Error::last_os_error());
    }
    drop(child);
    Ok(Run {
        secs,
        peak_kib: usage.ru_maxrss as u64,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    })
}

/// The median of `v` (the upper one of an even count), and the fastest and slowest.
pub fn median(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
