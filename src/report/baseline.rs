//! The baseline of acknowledged findings: problems a team has triaged, which should not fail
//! the gate again, while anything new does.
//!
//! A baseline acknowledges root causes; the findings that follow from a root are acknowledged
//! with it. An entry is keyed by what identifies a finding: the corpus (its path relative to
//! the baseline file, and its store id, so a baseline applies from any working directory and
//! to any selection of corpora), the class, the event's sequence numbers and name, and for
//! state divergences the table, key and kind. Never by message text, which may be reworded.
//! Entries whose finding no longer occurs are stale: reported, and failing under
//! `--strict-baseline`, so the baseline shrinks as problems are fixed. The file is JSON,
//! described by `schemas/baseline.schema.json`.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::{BaselineEntry, CorpusKind, Finding, Report};

/// Version of the baseline format this rehearse writes; format 1 (corpus as typed, keys as
/// JSON text) still loads.
pub const BASELINE_VERSION: u32 = 2;

impl BaselineEntry {
    /// The entry that acknowledges `finding` in `corpus`, whose identity is `identity`.
    pub fn of(identity: &Identity, f: &Finding) -> BaselineEntry {
        BaselineEntry {
            corpus: identity.path.clone(),
            store_id: identity.store_id.clone(),
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
            legacy: false,
        }
    }

    /// Whether this entry is about the corpus `identity`.
    fn is_for(&self, identity: &Identity) -> bool {
        let path = if self.legacy {
            &identity.typed
        } else {
            &identity.path
        };
        self.corpus == *path
            && match (&self.store_id, &identity.store_id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// A corpus as a baseline names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Where it is, relative to the baseline file's directory, `/`-separated: the store or
    /// package directory (whichever path named it), or a bare event log.
    pub path: String,
    /// Its store id, where it has one.
    pub store_id: Option<String>,
    /// As named on the command line, for format 1 entries.
    typed: String,
}

impl Identity {
    /// The identity of the corpus at `location` (relative to the working directory) for a
    /// baseline in `base` (the baseline file's directory).
    pub fn of(location: &Path, store_id: Option<&str>, base: &Path) -> Identity {
        Identity {
            path: relative(&absolute(location), &absolute(base)),
            store_id: store_id.map(str::to_string),
            typed: normalize(&location.to_string_lossy()),
        }
    }

    /// The identity of a checked corpus: the directory holding its event log (a store or a
    /// package), or the log itself when it stands alone.
    fn of_report(c: &crate::report::CorpusReport, base: &Path) -> Identity {
        let location = match (&c.eventlog, c.kind) {
            (Some(log), Some(CorpusKind::Store | CorpusKind::Package)) => Path::new(log)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(&c.corpus)),
            (Some(log), _) => PathBuf::from(log),
            (None, _) => PathBuf::from(&c.corpus),
        };
        let mut id = Identity::of(&location, c.store_id.as_deref(), base);
        id.typed = normalize(&c.corpus);
        id
    }
}

/// `./corpora/x` and `corpora/x` name the same corpus (format 1 entries are matched so).
fn normalize(corpus: &str) -> String {
    let mut s = corpus.replace('\\', "/");
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    s.trim_end_matches('/').to_string()
}

/// `path` made absolute and free of `.`, `..` and symbolic links where it exists.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let joined = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base`, `/`-separated (both absolute).
fn relative(path: &Path, base: &Path) -> String {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), b.len() - common).collect();
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
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
    /// Reads a baseline file (format 2, or 1: whose corpora, named as typed, are taken as
    /// relative to the working directory).
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = crate::files::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut b: Baseline = serde_json::from_str(&text)
            .map_err(|e| Error::input(path, format!("not a rehearse baseline: {e}")))?;
        match b.version {
            BASELINE_VERSION => {}
            1 => {
                for e in &mut b.findings {
                    e.corpus = normalize(&e.corpus);
                    e.legacy = true;
                }
                b.version = BASELINE_VERSION;
            }
            other => {
                return Err(Error::input(
                    path,
                    format!(
                        "baseline format {other} is not supported; this rehearse reads formats 1 and {BASELINE_VERSION}"
                    ),
                ));
            }
        }
        Ok(b)
    }

    /// Every root cause of a report (warnings included), sorted, for a baseline file in
    /// `base`. The findings that follow from a root are acknowledged with it.
    pub fn from_report(report: &Report, base: &Path) -> crate::error::Result<Baseline> {
        let mut findings: Vec<BaselineEntry> = report
            .corpora
            .iter()
            .flat_map(|c| {
                let id = identity(c, base);
                c.findings
                    .iter()
                    .filter(|f| f.is_root())
                    .map(move |f| BaselineEntry::of(&id, &f))
            })
            .collect();
        for c in &report.corpora {
            c.findings.check()?;
        }
        findings.sort();
        Ok(Baseline {
            version: BASELINE_VERSION,
            findings,
        })
    }

    /// The file's bytes: pretty JSON, one entry per root cause, stable order.
    pub fn to_json(&self) -> String {
        crate::render::json::to_string(self)
    }

    /// Marks the root causes this baseline acknowledges (and with them what follows from
    /// them) and lists its stale entries per corpus; entries of corpora this run did not check
    /// are left alone. `base` is the baseline file's directory. Verdicts are settled again.
    pub fn apply(
        &self,
        report: &mut Report,
        strict: bool,
        base: &Path,
    ) -> crate::error::Result<()> {
        let mut open: HashMap<&BaselineEntry, usize> = HashMap::new();
        // The entries that could match a finding, found by what identifies it, in the file's
        // order: a root is matched by a lookup, not by a scan of every entry (which took
        // minutes for a baseline of 100,000 roots), and always by the first entry that fits.
        let mut by_finding: HashMap<u64, Vec<&BaselineEntry>> = HashMap::new();
        for e in &self.findings {
            let n = open.entry(e).or_default();
            if *n == 0 {
                by_finding.entry(finding_hash(e)).or_default().push(e);
            }
            *n += 1;
        }
        // An entry written with a store id matches only that store; one written without (or
        // a corpus that has none) matches on the path alone.
        for corpus in &mut report.corpora {
            let id = identity(corpus, base);
            corpus.findings.retain_mut(|f| {
                if f.is_root() {
                    let entry = BaselineEntry::of(&id, f);
                    let found = by_finding
                        .get(&finding_hash(&entry))
                        .into_iter()
                        .flatten()
                        .find(|e| open[*e] > 0 && e.is_for(&id) && same_finding(e, &entry));
                    if let Some(e) = found
                        && let Some(n) = open.get_mut(*e)
                    {
                        *n -= 1;
                        f.baselined = true;
                    }
                }
                Ok(true)
            })?;
        }
        for corpus in &mut report.corpora {
            let id = identity(corpus, base);
            let mut stale: Vec<BaselineEntry> = Vec::new();
            for (e, n) in &open {
                if e.is_for(&id) {
                    stale.extend(std::iter::repeat_n((*e).clone(), *n));
                }
            }
            stale.sort();
            corpus.stale_baseline = stale;
            corpus.strict_baseline = strict;
            corpus.settle()?;
        }
        report.summarize();
        Ok(())
    }
}

/// The directory a baseline file's corpora are named relative to.
pub fn base_dir(baseline: &Path) -> PathBuf {
    match baseline.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn identity(c: &crate::report::CorpusReport, base: &Path) -> Identity {
    Identity::of_report(c, base)
}

/// The same finding, whatever corpus fields the two entries carry.
/// A hash of what [`same_finding`] compares.
fn finding_hash(e: &BaselineEntry) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &e.class,
        e.seq_num_global,
        e.seq_num_client,
        e.seq_num_rebase_generation,
        &e.name,
        &e.table,
        &e.divergence,
        &e.key,
        &e.column,
    )
        .hash(&mut h);
    h.finish()
}

fn same_finding(a: &BaselineEntry, b: &BaselineEntry) -> bool {
    (
        &a.class,
        a.seq_num_global,
        a.seq_num_client,
        a.seq_num_rebase_generation,
        &a.name,
        &a.table,
        &a.divergence,
        &a.key,
        &a.column,
    ) == (
        &b.class,
        b.seq_num_global,
        b.seq_num_client,
        b.seq_num_rebase_generation,
        &b.name,
        &b.table,
        &b.divergence,
        &b.key,
        &b.column,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpora_are_named_relative_to_the_baseline() {
        let base = Path::new("/repo/ci");
        assert_eq!(relative(Path::new("/repo/corpora/x"), base), "../corpora/x");
        assert_eq!(relative(Path::new("/repo/ci/x"), base), "x");
        assert_eq!(relative(Path::new("/repo/ci"), base), ".");
        assert_eq!(
            Identity::of(
                Path::new("/nonexistent/./a/../b/"),
                None,
                Path::new("/nonexistent")
            )
            .path,
            "b"
        );
        assert_eq!(normalize("./corpora/x/"), "corpora/x");
    }

    #[test]
    fn format_1_keys_load_and_format_2_keys_are_json() {
        let v1 = r#"{"corpus":"x","class":"state-divergence","seqNumGlobal":1,"seqNumClient":0,"seqNumRebaseGeneration":0,"name":"e","table":"t","key":"[{\"type\":\"text\",\"value\":\"k\"}]"}"#;
        let e: BaselineEntry = serde_json::from_str(v1).unwrap();
        assert_eq!(e.key.as_deref(), Some(r#"[{"type":"text","value":"k"}]"#));
        let written = serde_json::to_value(&e).unwrap();
        assert_eq!(written["key"][0]["value"], "k");
        let again: BaselineEntry = serde_json::from_value(written).unwrap();
        assert_eq!(again, e);
    }

    /// A root that several entries fit (the same finding, under store ids the corpus does not
    /// have) takes the first of them in the file, every time: the others are stale. (Matching
    /// scanned a hash map, so which one was taken changed from run to run.)
    #[test]
    fn of_several_fitting_entries_the_first_in_the_file_is_taken() {
        use crate::eventlog::SeqNum;
        use crate::report::{CorpusReport, FindingClass, Severities};
        let seq = SeqNum {
            global: 3,
            client: 0,
            rebase_generation: 0,
        };
        let mut corpus = CorpusReport::error("corpora/x", String::new());
        corpus.verdict = crate::report::Verdict::Fail;
        corpus.error = None;
        corpus.findings.push(Finding::event(
            FindingClass::UnknownEvent,
            Some(seq),
            Some("e"),
            "no materializer",
        ));
        corpus.finish(&Severities::default()).unwrap();
        let mut report = Report::new("m".into(), vec![corpus]);
        let base = Path::new("/nonexistent");
        let mut written = Baseline::from_report(&report, base).unwrap();
        let template = written.findings.remove(0);
        written.findings = (0..20)
            .map(|i| BaselineEntry {
                store_id: Some(format!("s{i:02}")),
                ..template.clone()
            })
            .collect();
        written.apply(&mut report, false, base).unwrap();
        let c = &report.corpora[0];
        assert!(c.findings.iter().all(|f| f.baselined));
        let stale: Vec<_> = c
            .stale_baseline
            .iter()
            .map(|e| e.store_id.clone().unwrap_or_default())
            .collect();
        let expected: Vec<String> = (1..20).map(|i| format!("s{i:02}")).collect();
        assert_eq!(stale, expected);
    }
}
