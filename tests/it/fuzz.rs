//! The fuzz targets (`rehearse::fuzz`), run briefly on every `cargo test`: each on its seed
//! inputs (`fuzz/seeds/<target>/`) and a few thousand inputs mutated from them, with a fixed
//! seed so that a failure reproduces. The long runs are `cargo fuzz` in `fuzz/`, or
//! `cargo run --release --example fuzz` on stable (`fuzz/README.md`).

use rehearse::fuzz;

use crate::util::root;

trials![
    every_target_survives_a_short_seeded_run,
    inputs_that_once_crashed_stay_fixed,
];

/// Mutated inputs per target: a few seconds for all of them in a debug build.
const ITERATIONS: u64 = 3_000;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn every_target_survives_a_short_seeded_run() {
    for (name, target) in fuzz::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        let runs = fuzz::run(*target, &seeds, ITERATIONS, 0x5eed);
        assert_eq!(runs, seeds.len() as u64 + ITERATIONS, "{name}");
    }
}

fn inputs_that_once_crashed_stay_fixed() {
    for (name, input) in fuzz::REGRESSIONS {
        let (_, target) = fuzz::TARGETS
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no target {name}"));
        target(input);
    }
}
