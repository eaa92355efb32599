//! A Markdown summary for a CI job summary page (`$GITHUB_STEP_SUMMARY`, a merge-request
//! comment): one table row per corpus, then the findings of the failing ones.

use crate::text::count;
use std::fmt::Write;

use crate::report::{FindingClass, Level, Report, Verdict};

/// Findings listed per corpus, at most (the JSON report lists all).
const MAX_LISTED: usize = 50;

/// Renders the report as Markdown.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let verdict = if report.has_errors() {
        "❌ rehearse could not read every corpus"
    } else if report.passed() {
        "✅ every event replays"
    } else {
        "❌ some events do not replay"
    };
    let _ = writeln!(out, "## rehearse: {verdict}\n");
    let _ = writeln!(
        out,
        "{}: {} passed, {} failed, {} unreadable; {}, {}, {} baselined.\n",
        count(s.corpora, "corpus"),
        s.passed,
        s.failed,
        s.errors,
        count(s.errors_found, "error"),
        count(s.warnings, "warning"),
        s.baselined
    );
    out.push_str("| corpus | verdict | events | applied | findings |\n|---|---|---:|---:|---|\n");
    for c in &report.corpora {
        let verdict = match c.verdict {
            Verdict::Pass => "✅ pass",
            Verdict::Fail => "❌ fail",
            Verdict::Error => "⚠️ error",
        };
        let by_class: Vec<String> = FindingClass::ALL
            .iter()
            .filter_map(|class| {
                let n = c.findings.iter().filter(|f| f.class == *class).count();
                (n > 0).then(|| format!("{n} {}", class.as_str()))
            })
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {verdict} | {} | {} | {} |",
            cell(&c.corpus),
            c.events,
            c.applied,
            if by_class.is_empty() {
                "none".to_string()
            } else {
                by_class.join(", ")
            }
        );
    }
    for c in report.corpora.iter().filter(|c| c.verdict != Verdict::Pass) {
        let _ = writeln!(out, "\n### `{}`\n", cell(&c.corpus));
        if let Some(e) = &c.error {
            let _ = writeln!(out, "{}", cell(e));
            continue;
        }
        out.push_str("| at | event | class | finding |\n|---|---|---|---|\n");
        for f in c.findings.iter().filter(|f| !f.baselined).take(MAX_LISTED) {
            let at = f.seq().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let class = if f.severity == Level::Warning {
                format!("{} (warning)", f.class.as_str())
            } else {
                f.class.as_str().to_string()
            };
            let _ = writeln!(
                out,
                "| {at} | {} | {class} | {} |",
                cell(f.name.as_deref().unwrap_or("-")),
                cell(&f.message)
            );
        }
        let shown = c.findings.iter().filter(|f| !f.baselined).count();
        if shown > MAX_LISTED {
            let _ = writeln!(
                out,
                "\n… and {} more findings (the JSON report lists all).",
                shown - MAX_LISTED
            );
        }
        if !c.stale_baseline.is_empty() {
            let _ = writeln!(
                out,
                "\n{} no longer {}: remove {} from the baseline.",
                count(c.stale_baseline.len(), "baseline entry"),
                if c.stale_baseline.len() == 1 {
                    "occurs"
                } else {
                    "occur"
                },
                if c.stale_baseline.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            );
        }
    }
    out
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ").replace('`', "'")
}
