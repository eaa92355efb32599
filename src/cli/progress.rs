//! Progress on stderr, drawn from the library's [`Progress`] reports: only where someone
//! watches (a terminal, outside CI, not `--no-progress`), never on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;

use rehearse::corpus;
use rehearse::eventlog::EventLog;
use rehearse::progress::{Progress, Stage};

use super::in_ci;

/// Whether progress is for someone to watch: stderr is a terminal, outside CI, and not turned
/// off. Machine output on stdout is never touched either way.
pub(super) fn progress_shown(no_progress: bool) -> bool {
    !no_progress && std::io::stderr().is_terminal() && !in_ci()
}

/// The rows of every corpus's log, for a bar's length (a corpus that cannot be read counts
/// none: the run says why).
pub(super) fn events_in(corpora: &[PathBuf]) -> u64 {
    corpora
        .iter()
        .filter_map(|p| corpus::Corpus::locate(p).ok())
        .filter_map(|c| EventLog::open(&c.eventlog).ok()?.count().ok())
        .sum()
}

pub(super) fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

/// The spinner of a phase with nothing to count: the app loading, which takes a second or
/// more before the first event.
pub(super) fn loading_style() -> indicatif::ProgressStyle {
    style("{spinner} loading the app [{elapsed}]")
}

/// A progress bar over the events of every corpus, on a terminal outside CI only.
pub(super) fn progress_bar(corpora: &[PathBuf], hidden: bool) -> indicatif::ProgressBar {
    if !progress_shown(hidden) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(events_in(corpora));
    bar.set_style(check_style());
    bar.set_message(rehearse::text::count(corpora.len(), "corpus"));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

pub(super) fn check_style() -> indicatif::ProgressStyle {
    style("{spinner} replaying {pos}/{len} events of {msg} [{elapsed}] {wide_bar}")
}

/// The progress of one command on stderr, drawn from the library's [`Progress`] reports: a
/// spinner while the app loads, then a bar per stage. Hidden where [`progress_shown`] says
/// no one watches, so that the commands' stderr there is what it always was.
pub(super) struct Shown {
    /// Whether anything is drawn.
    visible: bool,
    /// The bar of the phase under way. Each phase gets a new one: a bar restyled in place can
    /// be drawn by its ticker halfway, with the old phase's words and the new one's count.
    bar: std::cell::RefCell<indicatif::ProgressBar>,
    /// The stage under way and its total, to return to after the app has loaded.
    stage: std::cell::Cell<Option<(Stage, Option<u64>)>>,
}

impl Shown {
    pub(super) fn new(no_progress: bool) -> Shown {
        Shown {
            visible: progress_shown(no_progress),
            bar: std::cell::RefCell::new(indicatif::ProgressBar::hidden()),
            stage: std::cell::Cell::new(None),
        }
    }

    /// Whether anything is drawn (what is costly to learn for a bar's length, like the rows of
    /// a log, is learnt only then).
    pub(super) fn visible(&self) -> bool {
        self.visible
    }

    pub(super) fn show(&self, progress: Progress) {
        match progress {
            // Where the replay was, for `record`'s next corpus to go on from.
            Progress::LoadingApp => self.replace(None, loading_style(), self.position()),
            Progress::Begin { stage, total } => {
                self.stage.set(Some((stage, total)));
                self.resume_at(0);
            }
            Progress::Advance(n) => self.bar.borrow().inc(n),
            _ => {}
        }
    }

    /// A replay of `total` rows over however many corpora, from the rows already counted.
    pub(super) fn replaying(&self, total: u64) {
        self.will_replay(total);
        self.resume();
    }

    /// [`Shown::replaying`], drawn only at the next [`Shown::resume`]: after the app has
    /// loaded, where there is one to load.
    pub(super) fn will_replay(&self, total: u64) {
        self.stage.set(Some((Stage::Replay, Some(total))));
    }

    /// Back to the stage under way (after the app has loaded), where it was.
    pub(super) fn resume(&self) {
        let at = self.position();
        self.resume_at(at);
    }

    pub(super) fn resume_at(&self, at: u64) {
        let Some((stage, total)) = self.stage.get() else {
            return;
        };
        let (what, counted) = match stage {
            Stage::Replay => ("replaying", "{pos}/{len} events"),
            Stage::Copy => ("copying the store", ""),
            Stage::Checksum => ("checksumming", "{bytes}/{total_bytes}"),
            Stage::Integrity => ("checking integrity", "{pos}/{len} databases"),
            Stage::Stage => ("staging the files", "{bytes}/{total_bytes}"),
            Stage::Verify => ("reading the restored store back", "{pos}/{len} files"),
            _ => ("working", ""),
        };
        match total {
            Some(total) if !counted.is_empty() => self.replace(
                Some(total),
                style(&format!(
                    "{{spinner}} {what} {counted} [{{elapsed}}] {{wide_bar}}"
                )),
                at,
            ),
            _ => self.replace(
                None,
                style(&format!("{{spinner}} {what} [{{elapsed}}]")),
                at,
            ),
        }
    }

    /// Puts a new bar in place of the last, drawn at once (so that a phase shorter than a
    /// tick is seen too), its spinner turning.
    pub(super) fn replace(&self, len: Option<u64>, style: indicatif::ProgressStyle, at: u64) {
        if !self.visible {
            return;
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr())
                .with_style(style)
                .with_position(at);
        bar.tick();
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        self.bar.replace(bar).finish_and_clear();
    }

    pub(super) fn position(&self) -> u64 {
        self.bar.borrow().position()
    }

    pub(super) fn set_position(&self, at: u64) {
        self.bar.borrow().set_position(at);
    }

    /// Runs `f` with the bar out of the way, for a line on stderr.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.borrow().suspend(f)
    }

    /// Takes the bar away before the command's output.
    pub(super) fn done(&self) {
        self.bar.borrow().finish_and_clear();
    }
}

/// A command that stops at an error leaves no spinner behind for the error to follow.
impl Drop for Shown {
    fn drop(&mut self) {
        self.done();
    }
}

/// Turns a replay's [`rehearse::replay::Step`]s into the bar's position: `base` rows before
/// this corpus, plus those read of it.
pub(super) fn replay_steps(
    shown: &Shown,
    base: u64,
) -> impl FnMut(rehearse::replay::Step<'_>) + '_ {
    move |step| {
        if let rehearse::replay::Step::Read(n) = step {
            shown.set_position(base + n);
        }
    }
}
