//! JUnit XML, the format every CI system reads (GitHub, GitLab, Jenkins): one `<testsuite>`
//! per corpus, one `<testcase>` per finding class. A class fails its test case when the corpus
//! has an error-severity finding of that class outside the baseline; warnings and baselined
//! findings are listed in `<system-out>`. An unreadable corpus is an `<error>`.

use std::fmt::Write;

use crate::report::{Finding, FindingClass, Level, Report, Verdict};

/// Findings written into one failure's text, at most (the JSON report lists all).
const MAX_LISTED: usize = 200;

/// Renders the report as JUnit XML.
pub fn render(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests = report.corpora.len() * FindingClass::ALL.len();
    let failures: usize = report
        .corpora
        .iter()
        .map(|c| {
            FindingClass::ALL
                .iter()
                .filter(|class| c.findings.iter().any(|f| f.class == **class && f.fails()))
                .count()
        })
        .sum();
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
        let class_failures = FindingClass::ALL
            .iter()
            .filter(|class| c.findings.iter().any(|f| f.class == **class && f.fails()))
            .count();
        let is_error = c.verdict == Verdict::Error;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{class_failures}\" errors=\"{}\" skipped=\"0\">",
            esc(&c.corpus),
            FindingClass::ALL.len(),
            u8::from(is_error)
        );
        for class in FindingClass::ALL {
            let of_class: Vec<&Finding> = c.findings.iter().filter(|f| f.class == class).collect();
            let failing: Vec<&Finding> = of_class.iter().copied().filter(|f| f.fails()).collect();
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"",
                class.as_str(),
                esc(&c.corpus)
            );
            if !is_error && of_class.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if is_error {
                let msg = c.error.as_deref().unwrap_or("the corpus could not be read");
                let _ = writeln!(
                    out,
                    "      <error message=\"{}\" type=\"unreadable-input\"/>",
                    esc(msg)
                );
            } else if !failing.is_empty() {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    esc(&format!(
                        "{} {} {} in {}",
                        failing.len(),
                        class.as_str(),
                        crate::text::plural(failing.len(), "finding"),
                        c.corpus
                    )),
                    class.as_str(),
                    esc(&listing(&failing))
                );
            }
            let quiet: Vec<&Finding> = of_class.iter().copied().filter(|f| !f.fails()).collect();
            if !quiet.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    esc(&listing(&quiet))
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn listing(findings: &[&Finding]) -> String {
    let mut text = String::new();
    for f in findings.iter().take(MAX_LISTED) {
        let at = f.seq().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let tag = match (f.baselined, f.severity) {
            (true, _) => " [baselined]",
            (false, Level::Warning) => " [warning]",
            _ => "",
        };
        let _ = writeln!(
            text,
            "{at} {}{tag}: {}",
            f.name.as_deref().unwrap_or("-"),
            f.message
        );
    }
    if findings.len() > MAX_LISTED {
        let _ = writeln!(
            text,
            "… and {} more (the JSON report lists all)",
            findings.len() - MAX_LISTED
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
