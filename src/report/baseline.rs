//! The baseline of acknowledged findings: problems a team has triaged, which should not fail
//! the gate again, while anything new does.
//!
//! An entry is keyed by what identifies a finding: the corpus, the class, the event's sequence
//! numbers and name, and for state divergences the table, key and kind. Never by message text,
//! which may be reworded. Entries whose finding no longer occurs are stale: reported, and
//! failing under `--strict-baseline`, so the baseline shrinks as problems are fixed. The file is
//! JSON, described by `schemas/baseline.schema.json`.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::{BaselineEntry, Finding, Report};

/// Version of the baseline format.
pub const BASELINE_VERSION: u32 = 1;

impl BaselineEntry {
    /// The entry that acknowledges `finding` in `corpus`.
    pub fn of(corpus: &str, f: &Finding) -> BaselineEntry {
        BaselineEntry {
            corpus: normalize(corpus),
            class: f.class.as_str().to_string(),
            seq_num_global: f.seq_num_global,
            seq_num_client: f.seq_num_client,
            seq_num_rebase_generation: f.seq_num_rebase_generation,
            name: f.name.clone(),
            table: f.table.clone(),
            divergence: f
                .divergence
                .and_then(|d| serde_json::to_value(d).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            key: f.key.as_ref().and_then(|k| serde_json::to_string(k).ok()),
            column: f.column.clone(),
        }
    }
}

/// `./corpora/x` and `corpora/x` name the same corpus.
fn normalize(corpus: &str) -> String {
    let mut s = corpus.replace('\\', "/");
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    s.trim_end_matches('/').to_string()
}

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Format version.
    pub version: u32,
    /// Acknowledged findings, sorted.
    pub findings: Vec<BaselineEntry>,
}

impl Baseline {
    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let b: Baseline = serde_json::from_str(&text)
            .map_err(|e| Error::input(path, format!("not a rehearse baseline: {e}")))?;
        if b.version != BASELINE_VERSION {
            return Err(Error::input(
                path,
                format!(
                    "baseline format {} is not supported; this rehearse reads format {BASELINE_VERSION}",
                    b.version
                ),
            ));
        }
        Ok(b)
    }

    /// Every finding of a report (warnings included), sorted.
    pub fn from_report(report: &Report) -> Baseline {
        let mut findings: Vec<BaselineEntry> = report
            .corpora
            .iter()
            .flat_map(|c| c.findings.iter().map(|f| BaselineEntry::of(&c.corpus, f)))
            .collect();
        findings.sort();
        Baseline {
            version: BASELINE_VERSION,
            findings,
        }
    }

    /// The file's bytes: pretty JSON, one entry per finding, stable order.
    pub fn to_json(&self) -> String {
        crate::render::json::to_string(self)
    }

    /// Marks the findings this baseline acknowledges and lists its stale entries per corpus;
    /// entries of corpora this run did not check are left alone. Verdicts are settled again.
    pub fn apply(&self, report: &mut Report, strict: bool) {
        let mut open: HashMap<&BaselineEntry, usize> = HashMap::new();
        for e in &self.findings {
            *open.entry(e).or_default() += 1;
        }
        for corpus in &mut report.corpora {
            for f in &mut corpus.findings {
                let entry = BaselineEntry::of(&corpus.corpus, f);
                if let Some(n) = open.get_mut(&entry)
                    && *n > 0
                {
                    *n -= 1;
                    f.baselined = true;
                }
            }
        }
        for corpus in &mut report.corpora {
            let name = normalize(&corpus.corpus);
            let mut stale: Vec<BaselineEntry> = Vec::new();
            for (e, n) in &open {
                if e.corpus == name {
                    stale.extend(std::iter::repeat_n((*e).clone(), *n));
                }
            }
            stale.sort();
            corpus.stale_baseline = stale;
            corpus.strict_baseline = strict;
            corpus.settle();
        }
        report.summarize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_names_are_normalized() {
        assert_eq!(normalize("./corpora/x/"), "corpora/x");
        assert_eq!(normalize("corpora\\x"), "corpora/x");
    }
}
