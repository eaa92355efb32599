//! JUnit XML, the format every CI system reads (GitHub, GitLab, Jenkins): one `<testsuite>`
//! per corpus, one `<testcase>` per root cause (roots of one kind at events of one name), so
//! that a CI page lists what to fix, not every row that follows from it. A root cause fails
//! its test case when it is an error outside the baseline; its consequences are listed in the
//! failure's text, warnings and baselined causes in `<system-out>`. A corpus without findings
//! has one passing test case; an unreadable corpus is an `<error>`.

use std::fmt::Write;

use super::listing::CauseListing;
use crate::report::{CorpusReport, Level, Report, RootCause, Verdict};

/// Findings written into one test case's text, at most (the JSON report lists all).
const MAX_LISTED: usize = 200;

/// Renders the report as JUnit XML.
pub fn render(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let cases = |c: &CorpusReport| c.root_causes.len().max(1);
    let failing = |c: &CorpusReport| c.root_causes.iter().filter(|r| fails(r)).count();
    let tests: usize = report.corpora.iter().map(cases).sum();
    let failures: usize = report.corpora.iter().map(failing).sum();
    let errors = report
        .corpora
        .iter()
        .filter(|c| c.verdict == Verdict::Error)
        .count();
    let _ = writeln!(
        out,
        "<testsuites name=\"rehearse\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for c in &report.corpora {
        let is_error = c.verdict == Verdict::Error;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\">",
            esc(&c.corpus),
            cases(c),
            failing(c),
            u8::from(is_error)
        );
        if is_error {
            let msg = c.error.as_deref().unwrap_or("the corpus could not be read");
            let _ = writeln!(
                out,
                "    <testcase name=\"replay\" classname=\"{}\">\n      <error message=\"{}\" type=\"unreadable-input\"/>\n    </testcase>",
                esc(&c.corpus),
                esc(msg)
            );
        } else if c.root_causes.is_empty() {
            let _ = writeln!(
                out,
                "    <testcase name=\"every event replays\" classname=\"{}\"/>",
                esc(&c.corpus)
            );
        }
        let listed = match super::listing::listings(c, MAX_LISTED) {
            Ok(listed) => listed,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"findings\" classname=\"{}\">\n      <error message=\"{}\" type=\"unreadable-input\"/>\n    </testcase>",
                    esc(&c.corpus),
                    esc(&e.to_string())
                );
                Vec::new()
            }
        };
        for (cause, listing) in c.root_causes.iter().zip(&listed) {
            let subject = cause
                .name
                .clone()
                .or_else(|| cause.table.clone())
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\">",
                esc(&format!("{} {subject}", cause.class.as_str())),
                esc(&c.corpus)
            );
            let text = listing_text(cause, listing);
            if fails(cause) {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    esc(&cause.summary),
                    cause.class.as_str(),
                    esc(&text)
                );
            } else {
                let _ = writeln!(out, "      <system-out>{}</system-out>", esc(&text));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn fails(cause: &RootCause) -> bool {
    cause.severity == Level::Error && !cause.baselined
}

/// The cause's summary, then each of its roots with the findings that follow from it.
fn listing_text(cause: &RootCause, listing: &CauseListing<'_>) -> String {
    let mut text = format!("{}\n", cause.summary);
    let mut listed = 0;
    let total = listing.total;
    for r in &listing.roots {
        let after = r.first.iter().map(|f| (f, "  -> "));
        for (f, indent) in std::iter::once((&r.root, "")).chain(after) {
            if listed == MAX_LISTED {
                break;
            }
            listed += 1;
            let at = f.seq().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let tag = match (f.baselined, f.severity) {
                (true, _) => " [baselined]",
                (false, Level::Warning) => " [warning]",
                _ => "",
            };
            let _ = writeln!(
                text,
                "{indent}{at} {} {}{tag}: {}",
                f.class.as_str(),
                f.name.as_deref().unwrap_or("-"),
                f.message
            );
        }
    }
    if total > listed {
        let _ = writeln!(
            text,
            "… and {} more (the JSON report lists all)",
            total - listed
        );
    }
    text
}

/// XML text and attribute escaping; characters XML 1.0 cannot hold become U+FFFD.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
