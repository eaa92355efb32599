//! Output formats: every format reads the same [`crate::report::Report`].

pub mod github;
pub mod human;
pub mod json;
pub mod junit;
mod listing;
pub mod markdown;

use crate::report::Report;

/// The formats a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people, in a terminal or a CI log.
    Human,
    /// The versioned JSON report (`schemas/report.schema.json`).
    Json,
    /// JUnit XML: a test suite per corpus.
    Junit,
    /// GitHub Actions annotations.
    Github,
    /// A Markdown summary for a CI job summary page.
    Markdown,
}

impl Format {
    /// Whether the format is for people, and so may be coloured.
    pub fn is_human(self) -> bool {
        self == Format::Human
    }
}

/// `report` in `format` (`human` shapes the human format only).
pub fn render(report: &Report, format: Format, human: &human::HumanOptions) -> String {
    match format {
        Format::Human => human::report(report, human),
        Format::Json => json::to_string(report),
        Format::Junit => junit::render(report),
        Format::Github => github::render(report),
        Format::Markdown => markdown::render(report),
    }
}

/// Writes `report` in `format` to `out`; the JSON report is streamed (see [`json::write`]),
/// the other formats are written whole.
pub fn write(
    report: &Report,
    format: Format,
    human: &human::HumanOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => json::write(report, out),
        _ => {
            let text = render(report, format, human);
            // Findings spilled to disk that could not be read back leave the text short:
            // nothing is written then.
            report.check_findings().map_err(std::io::Error::other)?;
            out.write_all(text.as_bytes())
        }
    }
}
