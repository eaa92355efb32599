//! GitHub Actions workflow commands: one `::error` or `::warning` annotation per root cause, so
//! that what to fix shows on the run's summary (and, where the corpus lives in the repository,
//! on the event log's file) with how many findings follow from it, instead of hundreds of
//! annotations for one change. Baselined causes are `::notice`s; an unreadable corpus is an
//! `::error`.

use std::fmt::Write;

use crate::report::{Level, Report, Verdict};

/// Renders the report as workflow commands, one per line.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.corpora {
        let file = c.eventlog.as_deref().unwrap_or(&c.corpus);
        if c.verdict == Verdict::Error {
            let _ = writeln!(
                out,
                "::error file={},title={}::{}",
                prop(file),
                prop(&format!("rehearse: {} unreadable", c.corpus)),
                data(c.error.as_deref().unwrap_or("the corpus could not be read"))
            );
            continue;
        }
        let firsts = super::listing::first_roots(c);
        for (cause, first) in c.root_causes.iter().zip(&firsts) {
            let command = if cause.baselined {
                "notice"
            } else if cause.severity == Level::Error {
                "error"
            } else {
                "warning"
            };
            let at = cause
                .first
                .as_ref()
                .map(|e| format!(" at {}", e.seq()))
                .unwrap_or_default();
            let title = format!(
                "rehearse {}{at}{}",
                cause.class.as_str(),
                cause
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
            let detail = first
                .as_ref()
                .map(|f| format!(" First: {}", f.message))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "::{command} file={},title={}::{}: {}.{}",
                prop(file),
                prop(&title),
                data(&c.corpus),
                data(&cause.summary),
                data(&detail)
            );
        }
        for e in &c.stale_baseline {
            let command = if c.strict_baseline {
                "error"
            } else {
                "warning"
            };
            let _ = writeln!(
                out,
                "::{command} file={},title={}::{}",
                prop(file),
                prop("rehearse: stale baseline entry"),
                data(&format!(
                    "{}: the baselined {} at e{}{} ({}) no longer occurs; remove it from the baseline",
                    c.corpus,
                    e.class,
                    e.seq_num_global
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.seq_num_client
                        .filter(|c| *c > 0)
                        .map(|c| format!(".{c}"))
                        .unwrap_or_default(),
                    e.name.as_deref().unwrap_or("-")
                ))
            );
        }
    }
    out
}

/// Escaping for a command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a command's property values.
fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_workflow_commands_reserve() {
        assert_eq!(data("50%\nnext"), "50%25%0Anext");
        assert_eq!(prop("a:b,c"), "a%3Ab%2Cc");
    }
}
