//! Which corpora share a thread, and a materializer: the plugin's helpers cost a second or two
//! of CPU to start, so each lane of the pool keeps its own from one corpus to the next, and the
//! lanes are filled so that the work is even and never depends on timing.

use std::path::{Path, PathBuf};

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::materialize::{Materializer, Source};
use crate::report::CorpusReport;

/// Checks every corpus with `check`, in `pool`, and returns the reports in the corpora's order
/// (a corpus whose check fails gets an error report). A materializer that is costly to start
/// (the plugin's helpers) is kept from one corpus to the next unless `fresh`: each of the
/// pool's lanes takes a fixed share of the corpora ([`lane_shares`]), so which
/// corpora share one depends only on the corpora, never on timing; after an error the lane's
/// next corpus gets a new one. Otherwise every corpus gets its own materializer, on whichever
/// thread is free.
pub fn check_each(
    pool: &rayon::ThreadPool,
    corpora: &[PathBuf],
    source: &Source,
    fresh: bool,
    check: impl Fn(&Path, &mut dyn Materializer) -> Result<CorpusReport> + Sync,
) -> Vec<CorpusReport> {
    use rayon::prelude::*;
    let failed =
        |path: &Path, e: Error| CorpusReport::error(&path.display().to_string(), e.to_string());
    let shares = if source.costly_to_start() && !fresh {
        let lanes = pool.current_num_threads().clamp(1, corpora.len().max(1));
        lane_shares(corpora, lanes)
    } else {
        // A share of one: rayon hands each corpus to whichever thread is free.
        (0..corpora.len()).map(|i| vec![i]).collect()
    };
    let mut checked: Vec<(usize, CorpusReport)> = pool.install(|| {
        shares
            .par_iter()
            .flat_map_iter(|share| {
                let mut materializer: Option<Box<dyn Materializer>> = None;
                let mut out = Vec::new();
                for &i in share {
                    let path = &corpora[i];
                    let m = match materializer.take().map_or_else(|| source.instantiate(), Ok) {
                        Ok(m) => materializer.insert(m),
                        Err(e) => {
                            out.push((i, failed(path, e)));
                            continue;
                        }
                    };
                    match check(path, m.as_mut()) {
                        Ok(report) => out.push((i, report)),
                        Err(e) => {
                            // The helper may be what failed: the next corpus gets new ones.
                            materializer = None;
                            out.push((i, failed(path, e)));
                        }
                    }
                }
                out
            })
            .collect()
    });
    checked.sort_by_key(|(i, _)| *i);
    checked.into_iter().map(|(_, r)| r).collect()
}

/// The corpora each of `lanes` lanes checks, by index, in order: the largest logs first, each
/// to the lane with the fewest bytes of log so far (the lowest on a tie), so that one large
/// corpus does not share a lane with others while another lane idles. Depends only on the
/// corpora, never on timing.
pub fn lane_shares(corpora: &[PathBuf], lanes: usize) -> Vec<Vec<usize>> {
    let size = |path: &PathBuf| {
        Corpus::locate(path)
            .ok()
            .and_then(|c| std::fs::metadata(&c.eventlog).ok())
            .map_or(0, |m| m.len())
    };
    let mut by_size: Vec<(u64, usize)> = corpora.iter().map(size).zip(0..).collect();
    by_size.sort_by_key(|&(bytes, i)| (std::cmp::Reverse(bytes), i));
    let mut shares = vec![Vec::new(); lanes];
    let mut load = vec![0u64; lanes];
    for (bytes, i) in by_size {
        let lane = (0..lanes).min_by_key(|&l| (load[l], l)).unwrap_or(0);
        load[lane] += bytes.max(1);
        shares[lane].push(i);
    }
    for share in &mut shares {
        share.sort_unstable();
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_take_the_largest_logs_first_each_to_the_least_loaded_lane() {
        let corpora: Vec<PathBuf> = [
            "workspace-n200",       // 96 KiB of log
            "workspace-n300-lsdev", // 120 KiB
            "workspace-sync250",    // 112 KiB
            "workspace-n200-edited-row",
            "js-values", // 48 KiB
        ]
        .iter()
        .map(|c| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("corpora")
                .join(c)
        })
        .collect();
        assert_eq!(lane_shares(&corpora, 2), [vec![1, 3], vec![0, 2, 4]]);
        assert_eq!(lane_shares(&corpora, 1), [vec![0, 1, 2, 3, 4]]);
        // Corpora that cannot be found weigh alike, and still spread.
        let missing = vec![
            PathBuf::from("/nonexistent/a"),
            PathBuf::from("/nonexistent/b"),
        ];
        assert_eq!(lane_shares(&missing, 2), [vec![0], vec![1]]);
    }
}
