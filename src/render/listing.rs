//! Root causes with their findings, as the human and JUnit formats list them: each cause's
//! first root findings, each with the findings that follow from it.
//!
//! Read in two passes over the findings, keeping only what is listed: a report can hold a
//! finding per event of a million-event log, spilled to disk ([`crate::report::Findings`]),
//! and a listing shows a few hundred lines of it.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::Result;
use crate::report::{Cause, CorpusReport, Finding, FindingClass, RootCause};

/// One root cause's listing.
pub(crate) struct CauseListing<'a> {
    /// Its first root findings, in the report's order.
    pub roots: Vec<RootListing<'a>>,
    /// Its root findings and the findings that follow from each, all of them.
    pub total: usize,
}

/// One root finding and what follows from it.
pub(crate) struct RootListing<'a> {
    /// The root.
    pub root: Cow<'a, Finding>,
    /// How many findings follow from it.
    pub following: usize,
    /// The first of them.
    pub first: Vec<Cow<'a, Finding>>,
}

/// The listing of every root cause of `c` (in `c.root_causes`' order), keeping the first `cap`
/// roots of each and the first `cap` findings that follow from each kept root.
pub(crate) fn listings(c: &CorpusReport, cap: usize) -> Result<Vec<CauseListing<'_>>> {
    let group = groups(c);
    let mut out: Vec<CauseListing<'_>> = c
        .root_causes
        .iter()
        .map(|_| CauseListing {
            roots: Vec::new(),
            total: 0,
        })
        .collect();
    // How many findings follow from each cause: one per root when every event is flagged,
    // so kept beside the findings.
    let mut following = c.findings.cause_map();
    // The kept roots, by the cause they are.
    let mut kept: HashMap<Cause, Vec<(usize, usize)>> = HashMap::new();
    for f in &c.findings {
        match &f.caused_by {
            Some(cause) => {
                let n = following.get(cause)?.unwrap_or(0);
                following.insert(cause, n + 1)?;
            }
            None => {
                let Some(&g) = group.get(&RootCause::key(&f)) else {
                    continue;
                };
                let roots = &mut out[g].roots;
                if roots.len() < cap {
                    if let Some(cause) = f.as_cause() {
                        kept.entry(cause).or_default().push((g, roots.len()));
                    }
                    roots.push(RootListing {
                        root: f,
                        following: 0,
                        first: Vec::new(),
                    });
                }
            }
        }
    }
    c.findings.check()?;
    for f in &c.findings {
        match &f.caused_by {
            Some(cause) => {
                for &(g, j) in kept.get(cause).map(Vec::as_slice).unwrap_or_default() {
                    let first = &mut out[g].roots[j].first;
                    if first.len() < cap {
                        first.push(f.clone());
                    }
                }
            }
            None => {
                if let Some(&g) = group.get(&RootCause::key(&f)) {
                    let n = match f.as_cause() {
                        Some(cause) => following.get(&cause)?.unwrap_or(0),
                        None => 0,
                    };
                    out[g].total += 1 + n as usize;
                }
            }
        }
    }
    c.findings.check()?;
    for listing in &mut out {
        for root in &mut listing.roots {
            if let Some(cause) = root.root.as_cause() {
                root.following = following.get(&cause)?.unwrap_or(0) as usize;
            }
        }
    }
    Ok(out)
}

/// Each root cause of `c` by its key, to its position in `c.root_causes`.
fn groups(c: &CorpusReport) -> HashMap<(FindingClass, Option<String>, Option<String>), usize> {
    c.root_causes
        .iter()
        .enumerate()
        .map(|(i, cause)| (cause.key_of(), i))
        .collect()
}

/// The first root finding of each root cause of `c` (in `c.root_causes`' order), in one pass
/// that ends once each cause has its own.
pub(crate) fn first_roots(c: &CorpusReport) -> Vec<Option<Cow<'_, Finding>>> {
    let group = groups(c);
    let mut first: Vec<Option<Cow<'_, Finding>>> = c.root_causes.iter().map(|_| None).collect();
    let mut missing = first.len();
    for f in c.findings.iter().filter(|f| f.is_root()) {
        if missing == 0 {
            break;
        }
        if let Some(&g) = group.get(&RootCause::key(&f))
            && first[g].is_none()
        {
            first[g] = Some(f);
            missing -= 1;
        }
    }
    first
}
