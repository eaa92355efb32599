//! How many helpers a replay gets, when they remember Effect's schemas, and which events each
//! works on. These are measured trade-offs (benches/replay.rs, on two cores) between a
//! helper's cost to start and the events it takes off the others: kept apart from the
//! processes so that the numbers and the reasons for them sit together.

use super::config::Memo;
use crate::eventlog::Event;

/// At most two helpers by default: LiveStore's own code is most of the work, and two were all
/// this could be measured on (benches/replay.rs). Each needs a core; where the helper has
/// Effect remember its schemas (`memoized`; by default on Node.js 22.15 and later), one helper
/// works about as fast as rehearse applies its answers, so rehearse's own thread needs a core
/// too: on two cores a second helper made the 100,000-event store about a quarter slower
/// (9.5-9.7 s against 7.3-8.0 s), where without the memo it was 10-20% faster.
fn max_helpers(memoized: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let for_helpers = if memoized { cores - 1 } else { cores };
    for_helpers.clamp(1, 2)
}

/// Events a further helper must have to work on before it pays for its start: loading
/// LiveStore costs a helper 1.2–2 s of CPU and every helper warms V8 up afresh, which on the
/// 5,000-event sample made two helpers no faster than one and their start 0.2–0.9 s longer,
/// while on 100,000 events two were 10–20% faster (2 cores, Effect as installed).
const EVENTS_PER_HELPER: u64 = 20_000;

/// Events from which a log on an older Node.js (20.6 to 22.14) gets helpers that remember
/// Effect's schemas through the loader thread (as with [`Memo::On`]), started while the
/// first works and taking over from it once loaded: their start costs about a second more, in
/// the background, and the first helper does some 20,000 events meanwhile; then each event
/// costs about half. 100,000 events on Node.js 20: 20.0-20.5 s end to end with the first
/// helper and a second as installed, 11.6-11.9 s with the memo up front.
const EVENTS_FOR_MEMO_ON: u64 = 40_000;

/// How many helpers an automatic replay of `events` events runs, with helpers that have
/// (`memoized`) or have not Effect remember its schemas.
pub(super) fn helpers_for(events: u64, memoized: bool) -> usize {
    let wanted = 1 + events / EVENTS_PER_HELPER;
    max_helpers(memoized).min(usize::try_from(wanted).unwrap_or(usize::MAX))
}

/// Whether a log of `events` events is long enough for helpers that remember Effect's
/// schemas through the loader thread to repay their slower start.
pub(super) fn repays_memo_on(events: u64) -> bool {
    events >= EVENTS_FOR_MEMO_ON
}

/// Whether a replay may later start helpers with the memo on ([`repays_memo_on`]): only with
/// automatic helpers and [`Memo::Auto`], on a Node.js that has `module.register` (20.6) but
/// whose first helper did not remember Effect's schemas.
pub(super) fn may_turn_memo_on(
    automatic: bool,
    memo: Memo,
    node_version: (u32, u32),
    first_memoizes: bool,
) -> bool {
    automatic && memo == Memo::Auto && node_version >= (20, 6) && !first_memoizes
}

/// Deals `events` round-robin into `hands` shares, numbering them from `next_id` on: each
/// helper gets every `hands`th event, so all of them work on every chunk.
pub(super) fn deal<'e>(
    events: &[&'e Event],
    hands: usize,
    next_id: &mut u64,
) -> Vec<Vec<(u64, &'e Event)>> {
    let mut shares: Vec<Vec<(u64, &Event)>> = vec![Vec::new(); hands];
    for (k, ev) in events.iter().enumerate() {
        shares[k % hands].push((*next_id, ev));
        *next_id += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_logs_get_one_helper_and_long_ones_as_many_as_the_cores_allow() {
        for memoized in [false, true] {
            assert_eq!(helpers_for(0, memoized), 1);
            assert_eq!(helpers_for(5_000, memoized), 1);
            assert_eq!(helpers_for(EVENTS_PER_HELPER - 1, memoized), 1);
            assert_eq!(helpers_for(100_000, memoized), max_helpers(memoized));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Each helper gets a core; so does rehearse where a helper keeps pace with it.
        assert_eq!(helpers_for(EVENTS_PER_HELPER, false), cores.min(2));
        assert_eq!(
            helpers_for(EVENTS_PER_HELPER, true),
            (cores - 1).clamp(1, 2)
        );
    }
}
