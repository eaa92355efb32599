//! The long fuzz run on stable Rust: `cargo run --release --example fuzz -- <target|all>
//! <iterations> [seed]`, each target on its seeds (`fuzz/seeds/<target>/`) and `iterations`
//! inputs mutated from them. Prints the executions each target ran clean. `cargo fuzz` in
//! `fuzz/` runs the same targets under libFuzzer, with coverage guidance.

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (which, iterations, seed) = match args.as_slice() {
        [w, n] => (w.clone(), n.parse().expect("iterations"), 1),
        [w, n, s] => (
            w.clone(),
            n.parse().expect("iterations"),
            s.parse().expect("seed"),
        ),
        _ => {
            eprintln!("usage: fuzz <target|all> <iterations> [seed]");
            std::process::exit(2);
        }
    };
    let seeds_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, target) in rehearse::fuzz::TARGETS {
        if which != "all" && which != *name {
            continue;
        }
        let dir = seeds_root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.expect("a seed").path()).collect())
            .unwrap_or_default();
        files.sort();
        let seeds: Vec<Vec<u8>> = files
            .iter()
            .map(|p| std::fs::read(p).expect("a seed"))
            .collect();
        let start = std::time::Instant::now();
        let runs = rehearse::fuzz::run(*target, &seeds, iterations, seed);
        println!("{name}: {runs} executions clean in {:.1?}", start.elapsed());
    }
}
