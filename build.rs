//! Compiles SQLite with the session extension and the pre-update hook, so that every build of
//! rehearse has them: `cargo build` in the repository, `cargo install` from the registry or a
//! packaged crate anywhere, and a library user's build.
//!
//! rusqlite's `bundled` feature compiles SQLite with flags taken only from the environment
//! (`LIBSQLITE3_FLAGS`), and Cargo applies a repository's `.cargo/config.toml` `[env]` only to
//! builds started inside that repository: an install from the registry got a SQLite without the
//! session functions and failed to link. rusqlite's own `session` feature needs bindgen, and so
//! libclang, which a fresh machine does not have. So rehearse asks libsqlite3-sys for its
//! bindings only (the `in_gecko` feature: "SQLite is linked by the embedding build, emit no link
//! instructions") and this script compiles the very amalgamation libsqlite3-sys ships
//! (`sqlite3/sqlite3.c` of the pinned version), with the flags its `bundled` feature uses plus
//! ours. The bindings and the library therefore come from one `sqlite3.h`; the tests hold the
//! linked library's source id against the bindings' (`src/session.rs`).
//!
//! The amalgamation is found where Cargo unpacked libsqlite3-sys: beside this package (an
//! install from the registry, a vendored tree), or in `$CARGO_HOME/registry/src/*/`.
//! `REHEARSE_SQLITE3_SRC` names a directory holding `sqlite3.c` for a layout neither covers.

use std::env;
use std::path::{Path, PathBuf};

/// The libsqlite3-sys release whose amalgamation is compiled; Cargo.toml pins the same version
/// (`=`), so that its bindings describe exactly this source.
const LIBSQLITE3_SYS_VERSION: &str = "0.40.0";

/// What libsqlite3-sys's `bundled` feature defines (its build.rs), so that SQLite behaves as it
/// did when rehearse used that feature.
const BUNDLED_FLAGS: &[&str] = &[
    "SQLITE_CORE",
    "SQLITE_DEFAULT_FOREIGN_KEYS=1",
    "SQLITE_ENABLE_API_ARMOR",
    "SQLITE_ENABLE_COLUMN_METADATA",
    "SQLITE_ENABLE_DBSTAT_VTAB",
    "SQLITE_ENABLE_FTS3",
    "SQLITE_ENABLE_FTS3_PARENTHESIS",
    "SQLITE_ENABLE_FTS5",
    "SQLITE_ENABLE_JSON1",
    "SQLITE_ENABLE_LOAD_EXTENSION=1",
    "SQLITE_ENABLE_RTREE",
    "SQLITE_ENABLE_STAT4",
    "SQLITE_SOUNDEX",
    "SQLITE_THREADSAFE=1",
    "SQLITE_USE_URI",
    "HAVE_USLEEP=1",
    "HAVE_ISNAN",
    "_POSIX_THREAD_SAFE_FUNCTIONS",
];

/// rehearse's own: per-event changesets (the session extension needs the pre-update hook), the
/// math functions a raw-SQL materializer may call, as LiveStore's wa-sqlite has them, and no
/// memory statistics (rehearse reads none, and keeping them takes a global mutex on every one
/// of SQLite's allocations: 4% of a `check`'s profile).
const REHEARSE_FLAGS: &[&str] = &[
    "SQLITE_ENABLE_SESSION",
    "SQLITE_ENABLE_PREUPDATE_HOOK",
    "SQLITE_ENABLE_MATH_FUNCTIONS",
    "SQLITE_DEFAULT_MEMSTATUS=0",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=REHEARSE_SQLITE3_SRC");
    let dir = match sources() {
        Ok(dir) => dir,
        Err(looked) => {
            eprintln!(
                "error: rehearse compiles SQLite from libsqlite3-sys {LIBSQLITE3_SYS_VERSION}'s \
                 sqlite3/sqlite3.c and could not find it; looked in:"
            );
            for p in looked {
                eprintln!("  {}", p.display());
            }
            eprintln!(
                "Set REHEARSE_SQLITE3_SRC to the directory holding that sqlite3.c (the sqlite3/ \
                 directory of the libsqlite3-sys {LIBSQLITE3_SYS_VERSION} crate)."
            );
            std::process::exit(1);
        }
    };
    let source = dir.join("sqlite3.c");
    println!("cargo::rerun-if-changed={}", source.display());

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let windows = env::var_os("CARGO_CFG_WINDOWS").is_some();
    let msvc = env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "msvc");
    let crt_static =
        env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));

    let mut build = cc::Build::new();
    build.file(&source).include(&dir).warnings(false);
    for flag in BUNDLED_FLAGS.iter().chain(REHEARSE_FLAGS) {
        build.flag(format!("-D{flag}"));
    }
    if !windows {
        build.flag("-DHAVE_LOCALTIME_R");
    }
    if target_os == "android" {
        build.flag("-DSQLITE_TEMP_STORE=3");
    }
    if msvc && crt_static {
        build.static_crt(true);
    }
    // Not bundled into rehearse's rlib but linked at the end, after every crate that calls
    // SQLite (rusqlite among them), as libsqlite3-sys's own `-l sqlite3` would be: a linker
    // reads an archive once, in command-line order.
    build.cargo_metadata(false).compile("rehearse_sqlite3");
    let out = env::var("OUT_DIR").expect("Cargo sets OUT_DIR for build scripts");
    println!("cargo::rustc-link-search=native={out}");
    println!("cargo::rustc-link-lib=static:-bundle=rehearse_sqlite3");
}

/// The directory holding the amalgamation, or every place looked in.
fn sources() -> Result<PathBuf, Vec<PathBuf>> {
    if let Some(dir) = env::var_os("REHEARSE_SQLITE3_SRC") {
        let dir = PathBuf::from(dir);
        return if dir.join("sqlite3.c").is_file() {
            Ok(dir)
        } else {
            Err(vec![dir])
        };
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let versioned = format!("libsqlite3-sys-{LIBSQLITE3_SYS_VERSION}");
    let mut candidates = Vec::new();
    if let Some(parent) = manifest.parent() {
        // Installed from a registry: Cargo unpacks every crate side by side. Vendored:
        // `cargo vendor` does the same, with or without the version in the name.
        candidates.push(parent.join(&versioned));
        candidates.push(parent.join("libsqlite3-sys"));
    }
    candidates.push(manifest.join("vendor").join(&versioned));
    candidates.push(manifest.join("vendor").join("libsqlite3-sys"));
    if let Some(home) = cargo_home() {
        let src = home.join("registry").join("src");
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(&src)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        // Deterministic choice when several registries hold it (their copies are identical:
        // a crate version's content is fixed by its checksum).
        indexes.sort();
        if indexes.is_empty() {
            candidates.push(src.join("*").join(&versioned));
        }
        candidates.extend(indexes.into_iter().map(|i| i.join(&versioned)));
    }
    candidates
        .iter()
        .find(|c| is_libsqlite3_sys(c))
        .map(|c| c.join("sqlite3"))
        .ok_or(candidates)
}

/// Whether `dir` is the pinned libsqlite3-sys release with its amalgamation.
fn is_libsqlite3_sys(dir: &Path) -> bool {
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    let names_it = manifest
        .lines()
        .any(|l| l.trim() == "name = \"libsqlite3-sys\"");
    let versioned = manifest
        .lines()
        .any(|l| l.trim() == format!("version = \"{LIBSQLITE3_SYS_VERSION}\""));
    names_it && versioned && dir.join("sqlite3").join("sqlite3.c").is_file()
}

/// Where Cargo keeps its registry: `CARGO_HOME` (rustup's proxies always set it), else Cargo's
/// default, `.cargo` in the home directory.
fn cargo_home() -> Option<PathBuf> {
    if let Some(h) = env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(h));
    }
    env::var_os("HOME")
        .or_else(|| env::var_os("USERPROFILE"))
        .map(|h| PathBuf::from(h).join(".cargo"))
}
