//! A Markdown summary for a CI job summary page (`$GITHUB_STEP_SUMMARY`, a merge-request
//! comment): one table row per corpus, then the root causes of the failing ones, each with the
//! first finding that shows it and how many findings follow from it.

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
        "{}: {} passed, {} failed, {} unreadable; {}, {}, {}, {} baselined.\n",
        count(s.corpora, "corpus"),
        s.passed,
        s.failed,
        s.errors,
        count(s.root_causes, "root cause"),
        count(s.consequences, "consequence"),
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
        let mut counts = [0usize; FindingClass::ALL.len()];
        for f in &c.findings {
            if let Some(i) = FindingClass::ALL.iter().position(|k| *k == f.class) {
                counts[i] += 1;
            }
        }
        let by_class: Vec<String> = FindingClass::ALL
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(class, n)| format!("{n} {}", class.as_str()))
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
        out.push_str(
            "| root cause | class | events | first | follow from it | first finding |\n|---|---|---:|---|---:|---|\n",
        );
        let listed: Vec<_> = c
            .root_causes
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.baselined)
            .collect();
        let firsts = super::listing::first_roots(c);
        for &(i, cause) in listed.iter().take(MAX_LISTED) {
            let class = if cause.severity == Level::Warning {
                format!("{} (warning)", cause.class.as_str())
            } else {
                cause.class.as_str().to_string()
            };
            let first = &firsts[i];
            let _ = writeln!(
                out,
                "| {} | {class} | {} | {} | {} | {} |",
                cell(&match (&cause.name, &cause.table) {
                    (Some(name), _) => name.clone(),
                    (None, Some(table)) => format!("table {table}"),
                    (None, None) => "-".into(),
                }),
                cause.occurrences,
                cause
                    .first
                    .as_ref()
                    .map(|e| e.seq().to_string())
                    .unwrap_or_else(|| "-".into()),
                cause.consequences,
                cell(first.as_ref().map(|f| f.message.as_str()).unwrap_or("")),
            );
        }
        if listed.len() > MAX_LISTED {
            let _ = writeln!(
                out,
                "\n… and {} more root causes (the JSON report lists all).",
                listed.len() - MAX_LISTED
            );
        }
        let baselined = c.root_causes.len() - listed.len();
        if baselined > 0 {
            let _ = writeln!(out, "\n{} in the baseline.", count(baselined, "root cause"));
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
