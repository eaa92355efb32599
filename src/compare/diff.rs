//! `rehearse diff`: two databases compared as a replay is compared with its recorded state.

use std::path::Path;

use crate::compare::divergence::{Sides, divergence_finding};
use crate::compare::{self, CompareOptions};
use crate::error::{Error, Result};
use crate::replay::writers::WriterIndex;
use crate::report::{
    ComparisonState, ComparisonStatus, CorpusReport, Severities, Snapshot, Verdict,
};
use crate::sqlite;

/// Compares two databases (`a` expected, `b` actual) as `rehearse diff` does.
pub fn diff_databases(a: &Path, b: &Path, options: &CompareOptions) -> Result<CorpusReport> {
    let da = sqlite::open_input(a)?;
    let db = sqlite::open_input(b)?;
    let conn = sqlite::open_scratch()?;
    sqlite::trusted(&conn, || conn.execute("ATTACH ?1 AS a", [&da.attach_uri]))
        .map_err(|e| Error::sqlite(a, "cannot attach", e))?;
    sqlite::trusted(&conn, || conn.execute("ATTACH ?1 AS b", [&db.attach_uri]))
        .map_err(|e| Error::sqlite(b, "cannot attach", e))?;
    // No replay wrote these rows: an empty index, which never reaches its file.
    let writers = WriterIndex::default();
    let mut findings = Vec::new();
    let mut unreadable = None;
    let tables = compare::compare(&conn, "a", "b", options, |d| {
        match divergence_finding(d, &writers, &[], Sides::DIFF) {
            Ok(f) => findings.push(f),
            Err(e) => unreadable = unreadable.take().or(Some(e)),
        }
    })
    .map_err(|e| Error::sqlite(b, "comparison failed", e))?;
    if let Some(e) = unreadable {
        return Err(e);
    }
    let mut report = CorpusReport {
        corpus: format!("{} vs {}", a.display(), b.display()),
        store_id: None,
        kind: None,
        eventlog: None,
        snapshot: Some(Snapshot {
            path: a.display().to_string(),
            reason: "the expected side".into(),
        }),
        sync_head: None,
        events: 0,
        applied: 0,
        verdict: Verdict::Pass,
        comparison: ComparisonStatus {
            status: ComparisonState::Compared,
            reason: None,
        },
        changesets: None,
        findings: findings.into(),
        root_causes: Vec::new(),
        tables,
        notes: da.notes.iter().chain(&db.notes).cloned().collect(),
        error: None,
        stale_baseline: Vec::new(),
        strict_baseline: false,
    };
    report.finish(&Severities::default())?;
    Ok(report)
}
