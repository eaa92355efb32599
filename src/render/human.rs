//! The human report: what failed, at which event, and why, readable in a terminal or a CI log.
//!
//! Output is plain text with ANSI styles; the caller writes it through `anstream`, which drops
//! the styles when the stream is not a terminal or `NO_COLOR` is set.

use crate::text::count;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use crate::report::{
    ColumnDiff, ComparisonState, CorpusReport, Divergence, Finding, FindingClass, Level, Presence,
    Report, TableReport, Verdict,
};
use crate::value::SqlValue;

/// Settings for the human report.
#[derive(Debug, Clone)]
pub struct HumanOptions {
    /// Findings shown per corpus; `None` shows all.
    pub max_findings: Option<usize>,
    /// Show per-table counts for passing corpora too.
    pub verbose: bool,
    /// How the two sides of a differing value are labelled.
    pub sides: [&'static str; 2],
    /// List findings under their root causes (a replay); `false` lists them as they are (two
    /// databases compared, where no event explains anything).
    pub by_cause: bool,
}

impl Default for HumanOptions {
    fn default() -> Self {
        HumanOptions {
            max_findings: Some(100),
            verbose: false,
            sides: ["expected", "replayed"],
            by_cause: true,
        }
    }
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const PASS: Style = AnsiColor::Green.on_default().bold();
const FAIL: Style = AnsiColor::Red.on_default().bold();
const CLASS: Style = AnsiColor::Yellow.on_default();
const MINUS: Style = AnsiColor::Red.on_default();
const PLUS: Style = AnsiColor::Green.on_default();

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Renders a check report.
pub fn report(report: &Report, options: &HumanOptions) -> String {
    let mut out = String::new();
    for corpus in &report.corpora {
        corpus_report(&mut out, corpus, options);
    }
    if report.corpora.len() > 1
        || report
            .corpora
            .iter()
            .any(|c| c.verdict != Verdict::Pass || !c.findings.is_empty())
    {
        summary(&mut out, report, options.by_cause);
    }
    out
}

fn corpus_report(out: &mut String, c: &CorpusReport, options: &HumanOptions) {
    let label = match c.verdict {
        Verdict::Pass => paint(PASS, "PASS"),
        Verdict::Fail => paint(FAIL, "FAIL"),
        Verdict::Error => paint(FAIL, "ERROR"),
    };
    let _ = writeln!(out, "{label} {}", paint(BOLD, &c.corpus));
    if let Some(err) = &c.error {
        let _ = writeln!(out, "  {err}");
        return;
    }
    if c.eventlog.is_some() {
        let mut line = format!("  replayed {} events: {} applied", c.events, c.applied);
        let not_applied = c.events - c.applied;
        if not_applied > 0 {
            let _ = write!(line, ", {not_applied} not applied");
        }
        let _ = writeln!(out, "{line}");
    }
    match (&c.comparison.status, &c.snapshot) {
        (ComparisonState::Compared, Some(s)) => {
            let _ = writeln!(
                out,
                "  compared {} tables with {} {}",
                c.tables.len(),
                s.path,
                paint(DIM, &format!("({})", s.reason))
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  comparison skipped: {}",
                c.comparison.reason.as_deref().unwrap_or("")
            );
        }
    }
    for note in &c.notes {
        let _ = writeln!(out, "  {}", paint(DIM, &format!("note: {note}")));
    }
    if !c.findings.is_empty() {
        findings(out, c, options);
    }
    if !c.stale_baseline.is_empty() {
        let label = if c.strict_baseline {
            "stale baseline entries (fail under --strict-baseline)"
        } else {
            "stale baseline entries (they no longer occur; remove them)"
        };
        let _ = writeln!(out, "  {label}:");
        for e in &c.stale_baseline {
            let seq = match (e.seq_num_global, e.seq_num_client) {
                (Some(g), Some(c)) if c > 0 => format!("e{g}.{c}"),
                (Some(g), _) => format!("e{g}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "    {:<18} {seq:<8} {}{}",
                e.class,
                e.name.as_deref().unwrap_or(""),
                e.table
                    .as_ref()
                    .map(|t| format!(" {t}{}", e.key.as_deref().unwrap_or("")))
                    .unwrap_or_default()
            );
        }
    }
    if c.verdict == Verdict::Fail || options.verbose {
        tables(out, &c.tables, options.verbose);
    }
    out.push('\n');
}

/// The findings of a corpus by root cause: each cause's summary, then each of its root
/// findings in full with the findings that follow from it listed under it, one line each.
fn findings(out: &mut String, c: &CorpusReport, options: &HumanOptions) {
    if !options.by_cause {
        let shown = options
            .max_findings
            .unwrap_or(usize::MAX)
            .min(c.findings.len());
        let _ = writeln!(out, "  {}:", count(c.findings.len(), "difference"));
        for f in c.findings.iter().take(shown) {
            finding(out, &f, options.sides);
        }
        if shown < c.findings.len() {
            let _ = writeln!(
                out,
                "    … and {} more (--max-findings 0 shows all; --format json lists all)",
                c.findings.len() - shown
            );
        }
        return;
    }
    let roots = c.findings.iter().filter(|f| f.is_root()).count();
    let consequences = c.findings.len() - roots;
    let mut head = count(c.root_causes.len(), "root cause");
    if roots != c.root_causes.len() {
        let _ = write!(head, " ({})", count(roots, "finding"));
    }
    if consequences > 0 {
        let _ = write!(head, ", {}", count(consequences, "consequence"));
    }
    let _ = writeln!(out, "  {head}:");
    let max = options.max_findings.unwrap_or(usize::MAX);
    // One more than shown, so that the listing knows there is more.
    let listed = match super::listing::listings(c, max.saturating_add(1)) {
        Ok(listed) => listed,
        Err(e) => {
            let _ = writeln!(out, "  the findings cannot be listed: {e}");
            return;
        }
    };
    let mut shown = 0;
    'causes: for (cause, listing) in c.root_causes.iter().zip(&listed) {
        let tag = if cause.baselined {
            paint(DIM, "baselined")
        } else if cause.severity == Level::Warning {
            paint(DIM, "warning")
        } else {
            paint(FAIL, "error")
        };
        let _ = writeln!(out, "\n  {tag} {}", paint(BOLD, &cause.summary));
        // The first occurrence in full; the others, which say the same of other events, in
        // a line each.
        for (i, r) in listing.roots.iter().enumerate() {
            if shown >= max {
                break 'causes;
            }
            shown += 1;
            if i == 0 {
                finding(out, &r.root, options.sides);
            } else {
                consequence(out, &r.root, "    ");
            }
            if r.following == 0 {
                continue;
            }
            let (n, verb) = match r.following {
                1 => ("1 finding".to_string(), "follows"),
                n => (format!("{n} findings"), "follow"),
            };
            let _ = writeln!(
                out,
                "        {}",
                paint(
                    DIM,
                    &format!(
                        "{n} {verb} from {}:",
                        r.root
                            .seq()
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "it".into())
                    )
                )
            );
            for f in &r.first {
                if shown >= max {
                    break 'causes;
                }
                shown += 1;
                consequence(out, f, "          ");
            }
        }
    }
    if shown < c.findings.len() {
        let _ = writeln!(
            out,
            "    … and {} more findings (--max-findings 0 shows all; --format json lists all)",
            c.findings.len() - shown
        );
    }
}

/// A finding in one line, indented by `indent`.
fn consequence(out: &mut String, f: &Finding, indent: &str) {
    let at = f.seq().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{indent}{} {} {} {}",
        paint(CLASS, &format!("{:<18}", f.class.as_str())),
        paint(BOLD, &format!("{at:<8}")),
        f.name.as_deref().unwrap_or(""),
        paint(DIM, &f.message)
    );
}

fn finding(out: &mut String, f: &Finding, sides: [&str; 2]) {
    let at = match f.seq() {
        Some(seq) => seq.to_string(),
        None => "-".to_string(),
    };
    let name = f.name.as_deref().unwrap_or("");
    let tag = if f.baselined {
        paint(DIM, " (baselined)")
    } else if f.severity == Level::Warning {
        paint(DIM, " (warning)")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "    {} {} {name}{tag}",
        paint(CLASS, &format!("{:<18}", f.class.as_str())),
        paint(BOLD, &format!("{at:<8}")),
    );
    let _ = writeln!(out, "        {}", f.message);
    if f.class == FindingClass::StateDivergence && f.divergence == Some(Divergence::RowDiffers) {
        for c in &f.columns {
            column_diff(out, c, sides);
        }
    }
    if let Some(args) = &f.args {
        let _ = writeln!(
            out,
            "        {} {}",
            paint(DIM, "args:"),
            crate::text::truncate(args)
        );
    }
    if let Some(sides) = &f.changes {
        let render = |rows: &[crate::replay::changes::RowOp]| {
            if rows.is_empty() {
                vec!["(changes nothing)".to_string()]
            } else {
                crate::replay::changes::render(rows)
            }
        };
        let expected = render(&sides.expected.rows);
        let actual = render(&sides.actual.rows);
        let _ = writeln!(
            out,
            "        {} {}",
            paint(MINUS, &format!("- {}", sides.expected.label)),
            paint(PLUS, &format!("+ {}", sides.actual.label))
        );
        for line in crate::replay::changes::diff(&expected, &actual) {
            let styled = match line.chars().next() {
                Some('-') => paint(MINUS, &line),
                Some('+') => paint(PLUS, &line),
                _ => line,
            };
            let _ = writeln!(out, "          {styled}");
        }
    }
    if !f.downstream.is_empty() {
        const SHOWN: usize = 8;
        let list: Vec<String> = f
            .downstream
            .iter()
            .take(SHOWN)
            .map(|d| format!("{} {}", d.seq(), d.name))
            .collect();
        let more = if f.downstream.len() > SHOWN {
            format!(", and {} more", f.downstream.len() - SHOWN)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "        {} {}{more}",
            paint(DIM, "later events on its rows:"),
            list.join(", ")
        );
    }
}

fn column_diff(out: &mut String, c: &ColumnDiff, [minus, plus]: [&str; 2]) {
    // Who wrote each side's value: the replay's last writer of this column, and LiveStore's
    // (or no event at all, where the state changed outside the log).
    let recorded = if c.outside_log {
        Some(paint(DIM, "  by no event: changed outside the log"))
    } else {
        c.recorded_writer
            .as_ref()
            .map(|w| paint(DIM, &format!("  by {} ({})", w.seq(), w.name)))
    };
    let replayed = c
        .replay_writer
        .as_ref()
        .map(|w| paint(DIM, &format!("  by {} ({})", w.seq(), w.name)));
    let _ = writeln!(out, "        {}:", paint(BOLD, &c.column));
    if let (Some(e), Some(a)) = (c.expected.as_str(), c.actual.as_str())
        && (e.len() > 60 || a.len() > 60)
        && let Some(lines) = text_diff(e, a)
    {
        for line in lines {
            let _ = writeln!(out, "          {line}");
        }
        for (side, by) in [(minus, recorded), (plus, replayed)] {
            if let Some(by) = by {
                let _ = writeln!(out, "          {}{by}", paint(DIM, side));
            }
        }
        return;
    }
    let _ = writeln!(
        out,
        "          {} {}{}",
        paint(MINUS, &format!("- {minus}")),
        shown(&c.expected),
        recorded.unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "          {} {}{}",
        paint(PLUS, &format!("+ {plus}")),
        shown(&c.actual),
        replayed.unwrap_or_default()
    );
}

fn shown(v: &SqlValue) -> String {
    let type_note = match v {
        SqlValue::Null => String::new(),
        other => format!(" ({})", other.type_name()),
    };
    format!("{v}{type_note}")
}

/// A readable diff of two long texts that share enough to be worth diffing: line by line for
/// JSON documents (pretty-printed first), word by word otherwise.
fn text_diff(expected: &str, actual: &str) -> Option<Vec<String>> {
    use similar::{ChangeTag, TextDiff};
    let pretty = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .filter(|v| v.is_object() || v.is_array())
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
    };
    // Equal documents written differently (key order, spacing) need the raw text to show why.
    if let (Some(e), Some(a)) = (pretty(expected), pretty(actual))
        && e != a
    {
        let diff = TextDiff::from_lines(&e, &a);
        return Some(
            diff.iter_all_changes()
                .map(|ch| {
                    let text = ch.value().trim_end_matches('\n');
                    match ch.tag() {
                        ChangeTag::Delete => paint(MINUS, &format!("- {text}")),
                        ChangeTag::Insert => paint(PLUS, &format!("+ {text}")),
                        ChangeTag::Equal => format!("  {text}"),
                    }
                })
                .collect(),
        );
    }
    let diff = TextDiff::from_words(expected, actual);
    // Mostly different texts read better as two plain lines than as a diff.
    let (mut same, mut all) = (0usize, 0usize);
    for ch in diff
        .iter_all_changes()
        .filter(|c| !c.value().trim().is_empty())
    {
        all += 1;
        if ch.tag() == ChangeTag::Equal {
            same += 2;
            all += 1;
        }
    }
    if all == 0 || same * 2 < all {
        return None;
    }
    // Runs of removed and added words, each shown once: `[-old words-]{+new words+}`.
    let mut line = String::new();
    let mut run: Option<(ChangeTag, String)> = None;
    let flush = |line: &mut String, run: &mut Option<(ChangeTag, String)>| {
        if let Some((tag, text)) = run.take() {
            match tag {
                ChangeTag::Delete => line.push_str(&paint(MINUS, &format!("[-{text}-]"))),
                ChangeTag::Insert => line.push_str(&paint(PLUS, &format!("{{+{text}+}}"))),
                ChangeTag::Equal => line.push_str(&text),
            }
        }
    };
    for ch in diff.iter_all_changes() {
        match &mut run {
            Some((tag, text)) if *tag == ch.tag() => text.push_str(ch.value()),
            _ => {
                flush(&mut line, &mut run);
                run = Some((ch.tag(), ch.value().to_string()));
            }
        }
    }
    flush(&mut line, &mut run);
    Some(vec![line])
}

fn tables(out: &mut String, tables: &[TableReport], all: bool) {
    let interesting: Vec<&TableReport> = tables
        .iter()
        .filter(|t| {
            all || t.presence != Presence::Both
                || t.differing + t.missing + t.extra > 0
                || !t.columns_missing.is_empty()
                || !t.columns_extra.is_empty()
        })
        .collect();
    if interesting.is_empty() {
        return;
    }
    let _ = writeln!(out, "  tables:");
    for t in interesting {
        let presence = match t.presence {
            Presence::Both => String::new(),
            Presence::ExpectedOnly => " (only in the recorded state)".to_string(),
            Presence::ActualOnly => " (only in the replay)".to_string(),
        };
        let _ = writeln!(
            out,
            "    {:<24} {} matching, {} differing, {} missing, {} extra{presence}",
            t.table, t.matching, t.differing, t.missing, t.extra
        );
    }
}

fn summary(out: &mut String, r: &Report, by_cause: bool) {
    let s = &r.summary;
    let by_class: Vec<String> = s
        .findings
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    let findings = if by_class.is_empty() {
        "no findings".to_string()
    } else if !by_cause {
        by_class.join(", ")
    } else {
        let mut head = count(s.root_causes, "root cause");
        if s.consequences > 0 {
            let _ = write!(head, ", {}", count(s.consequences, "consequence"));
        }
        format!("{head} ({})", by_class.join(", "))
    };
    let verdict = if r.has_errors() {
        paint(FAIL, "error")
    } else if r.passed() {
        paint(PASS, "passed")
    } else {
        paint(FAIL, "failed")
    };
    let mut extra = String::new();
    if s.warnings > 0 {
        let _ = write!(extra, "; {}", count(s.warnings, "warning"));
    }
    if s.baselined > 0 {
        let _ = write!(extra, "; {} baselined", s.baselined);
    }
    if s.stale_baseline > 0 {
        let _ = write!(
            extra,
            "; {}",
            count(s.stale_baseline, "stale baseline entry")
        );
    }
    let _ = writeln!(
        out,
        "{verdict}: {}, {} passed, {} failed, {} unreadable; {findings}{extra}",
        count(s.corpora, "corpus"),
        s.passed,
        s.failed,
        s.errors,
    );
}

/// Renders a differential replay: each differing event with its args and both sides.
pub fn bisect(r: &crate::bisect::BisectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", paint(BOLD, "bisect"), r.corpus);
    let _ = writeln!(out, "  {} {}", paint(MINUS, "- old"), r.old);
    let _ = writeln!(out, "  {} {}", paint(PLUS, "+ new"), r.new);
    if r.differences.is_empty() {
        let _ = writeln!(
            out,
            "\n{}: the new materializers treat all {} events the same as the old",
            paint(PASS, "no difference"),
            r.events
        );
        return out;
    }
    for d in &r.differences {
        event_heading(&mut out, "", &d.seq().to_string(), &d.event.name, &d.args);
        for line in crate::replay::changes::diff(&d.old.render(), &d.new.render()) {
            let styled = match line.chars().next() {
                Some('-') => paint(MINUS, &line),
                Some('+') => paint(PLUS, &line),
                _ => line,
            };
            let _ = writeln!(out, "    {styled}");
        }
    }
    let n = r.differences.len();
    let tail = if r.complete {
        format!("read {} events", r.events)
    } else {
        format!(
            "stopped at the first difference after {} events (--all lists every one)",
            r.events
        )
    };
    let consequence = if n > 1 {
        "; once the sides differ their states do too, so later differences may follow from earlier ones"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "\n{}: {} treated differently; {tail}{consequence}",
        paint(FAIL, "different"),
        count(n, "event")
    );
    out
}

/// Renders a row's history, replay and LiveStore's record side by side.
pub fn blame(r: &crate::blame::BlameReport) -> String {
    let mut out = String::new();
    let key: Vec<String> = r.key.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "{} {}[{}] in {}",
        paint(BOLD, "history of"),
        r.table,
        key.join(", "),
        r.corpus
    );
    if !r.recorded_changesets {
        let _ = writeln!(
            out,
            "  {}",
            paint(
                DIM,
                "(no changesets recorded by LiveStore: the replay's side only)"
            )
        );
    }
    if r.history.is_empty() {
        let _ = writeln!(out, "\n  no event touched this row");
    }
    for e in &r.history {
        event_heading(
            &mut out,
            "  ",
            &e.event.seq().to_string(),
            &e.event.name,
            &e.args,
        );
        let replayed = e
            .replayed
            .as_ref()
            .map(|op| crate::replay::changes::render(std::slice::from_ref(op)));
        let recorded = e
            .recorded
            .as_ref()
            .map(|op| crate::replay::changes::render(std::slice::from_ref(op)));
        match (replayed, recorded) {
            (Some(a), Some(b)) if a == b => {
                let _ = writeln!(out, "    {}", a.join(" "));
                let _ = writeln!(out, "    {}", paint(DIM, "LiveStore recorded the same"));
            }
            (a, b) => {
                if r.recorded_changesets {
                    let b = b.unwrap_or_else(|| vec!["(nothing)".into()]);
                    let _ = writeln!(
                        out,
                        "    {} {}",
                        paint(MINUS, "- LiveStore recorded:"),
                        b.join(" ")
                    );
                }
                let a = a.unwrap_or_else(|| vec!["(nothing)".into()]);
                let _ = writeln!(out, "    {} {}", paint(PLUS, "+ replayed:"), a.join(" "));
            }
        }
    }
    let _ = writeln!(out, "\n  {}", paint(BOLD, "now"));
    match (&r.recorded_row, &r.replayed_row) {
        (Some(a), Some(b)) => {
            let differing: Vec<&String> = a
                .iter()
                .filter(|(c, v)| b.get(*c).is_none_or(|w| !v.same(w)))
                .map(|(c, _)| c)
                .collect();
            if differing.is_empty() {
                let _ = writeln!(out, "    the recorded state and the replay agree");
            }
            for c in differing {
                let replayed = b
                    .get(c)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "(no column)".into());
                let _ = writeln!(
                    out,
                    "    {c}: {} {}, {} {replayed}",
                    paint(MINUS, "recorded state"),
                    a[c],
                    paint(PLUS, "replay")
                );
                let wrote = r.history.iter().rev().find_map(|e| {
                    e.recorded
                        .as_ref()
                        .and_then(|op| op.new.get(c))
                        .map(|v| (e, v))
                });
                if let Some((e, v)) = wrote
                    && !v.same(&a[c])
                {
                    let _ = writeln!(
                        out,
                        "      LiveStore's own record last set {c} to {v} at {} ({}): no event wrote {} — the state was changed outside the log",
                        e.event.seq(),
                        e.event.name,
                        a[c]
                    );
                }
            }
        }
        (Some(_), None) => {
            let _ = writeln!(
                out,
                "    the row is in the recorded state but not in the replay"
            );
        }
        (None, Some(_)) => {
            let _ = writeln!(
                out,
                "    the row is in the replay but not in the recorded state"
            );
        }
        (None, None) => {
            let _ = writeln!(out, "    the row exists on neither side");
        }
    }
    out
}

/// An event's sequence number and name after a blank line, its args (truncated) below.
fn event_heading(out: &mut String, indent: &str, seq: &str, name: &str, args: &str) {
    let _ = writeln!(out, "\n{indent}{} {}", paint(BOLD, seq), paint(BOLD, name));
    let _ = writeln!(
        out,
        "{indent}  {} {}",
        paint(DIM, "args:"),
        crate::text::truncate(args)
    );
}
