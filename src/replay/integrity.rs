//! The log's structure, checked as it streams by (FORMAT.md §3.4, §14).
//!
//! LiveStore's own replay reads the log by keyset from ROOT `(0, 0)` in `(seqNumGlobal,
//! seqNumClient)` order: a row at or before ROOT, or a second row with the same pair, is never
//! read, so rehearse skips it too and says so. Broken parent links, gaps, rebase generations
//! that disagree with the parent, and client-only events hanging off a global event the log
//! does not have are reported; those events still replay. After the last row, a sync head past
//! the last synced event means events the backend confirmed are missing.

use crate::eventlog::{Event, SeqNum, SyncStatus};
use crate::report::{Finding, FindingClass, Findings};

/// Whether an event is replayed after the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Replay it.
    Replay,
    /// LiveStore's replay would never read it: skip it.
    Skip,
}

/// Follows the chain of sequence numbers and parent links through the log.
#[derive(Debug, Default)]
pub(crate) struct LogChecker {
    prev: Option<SeqNum>,
    last_synced: Option<SeqNum>,
}

impl LogChecker {
    /// Checks one event, appending findings to `out`.
    pub(crate) fn check(&mut self, ev: &Event, out: &mut Findings) -> Disposition {
        let mut flag = |msg: String| {
            out.push(Finding::event(
                FindingClass::LogIntegrity,
                Some(ev.seq),
                Some(&ev.name),
                msg,
            ))
        };
        let seq = ev.seq;
        if seq.global < 0 || seq.client < 0 || (seq.global == 0 && seq.client == 0) {
            flag(format!(
                "sequence number {seq} is not after ROOT e0; LiveStore's replay never reads it, so it is not replayed"
            ));
            return Disposition::Skip;
        }
        if let Some(prev) = self.prev
            && prev.pair() == seq.pair()
        {
            flag(format!(
                "duplicate sequence number {} (also at rebase generation {}); LiveStore's replay reads a sequence number once, so it is not replayed",
                SeqNum {
                    rebase_generation: 0,
                    ..seq
                },
                prev.rebase_generation
            ));
            return Disposition::Skip;
        }
        // The event the parent link must name: the previous synced event for a synced event,
        // the previous event of any kind for a client-only one.
        let expected_parent = if seq.client == 0 {
            self.last_synced.unwrap_or(SeqNum::ROOT)
        } else {
            self.prev.unwrap_or(SeqNum::ROOT)
        };
        if seq.client > 0 && seq.global != expected_parent.global {
            let last = self.last_synced.map(|s| s.global).unwrap_or(0);
            flag(if seq.global > last {
                format!(
                    "client-only event after the head of the log: it hangs off e{}, which is not in the log (the last synced event is e{last})",
                    seq.global
                )
            } else {
                format!(
                    "client-only event out of order: it follows {expected_parent} but carries global number e{}",
                    seq.global
                )
            });
        } else if ev.parent.pair() != expected_parent.pair() {
            let what = if seq.client == 0 {
                "the previous synced event"
            } else {
                "the previous event"
            };
            flag(format!(
                "broken parent link: the parent is {} but {what} is {expected_parent}",
                ev.parent
            ));
        } else if seq.client == 0 && seq.global != ev.parent.global + 1 {
            flag(format!(
                "gap in seqNumGlobal: e{} follows e{}",
                seq.global, ev.parent.global
            ));
        } else if self.prev.is_some()
            && ev.parent.rebase_generation != expected_parent.rebase_generation
        {
            flag(format!(
                "rebase generation out of order: the parent link says generation {} but {} is at generation {}",
                ev.parent.rebase_generation,
                SeqNum {
                    rebase_generation: 0,
                    ..expected_parent
                },
                expected_parent.rebase_generation
            ));
        }
        if seq.client == 0 {
            self.last_synced = Some(seq);
        }
        self.prev = Some(seq);
        Disposition::Replay
    }

    /// Checks what can only be checked at the end: the sync head against the log.
    pub(crate) fn finish(&self, sync: Option<&SyncStatus>, out: &mut Findings) {
        let last = self.last_synced.map(|s| s.global).unwrap_or(0);
        if let Some(status) = sync
            && status.head > last
        {
            out.push(Finding::event(
                FindingClass::LogIntegrity,
                None,
                None,
                format!(
                    "the sync head (__livestore_sync_status.head) is e{} but the last synced event in the log is e{last}: events the backend confirmed are missing",
                    status.head
                ),
            ));
        }
    }
}
