//! rehearse rehearses a log-only restore of a LiveStore app before anyone needs one.
//!
//! It reads a real LiveStore event log (`eventlog@6.db`), replays every event in log order
//! through materializer definitions into a scratch SQLite database, compares the result row by
//! row with the state LiveStore recorded (`state<hash>@6.db`), and reports every event that
//! does not replay: unknown names, args that do not decode, materializers that fail, rows that
//! diverge (blamed on the event that last wrote them) and structural damage in the log.
//!
//! The pipeline has one module per stage: [`corpus`] and [`eventlog`] load, [`definitions`]
//! and [`materialize`] turn events into SQL, [`replay`] runs it, [`compare`] compares, and
//! [`report`] and [`render`] say what was found. [`check`] runs them all for one corpus.
//!
//! ```no_run
//! use std::path::Path;
//! use rehearse::{check, definitions::Definitions, materialize::sql::SqlMaterializer};
//!
//! let defs = Definitions::load(Path::new("corpora/workspace/materializers.toml"))?;
//! let mut materializer = SqlMaterializer::new(defs);
//! let report = check::check_corpus(
//!     Path::new("corpora/workspace-n200"),
//!     &mut materializer,
//!     &check::CheckOptions::default(),
//! )?;
//! for finding in &report.findings {
//!     println!("{:?} {}", finding.class, finding.message);
//! }
//! # Ok::<(), rehearse::Error>(())
//! ```
#![warn(missing_docs)]

pub mod backup;
pub mod bisect;
pub mod blame;
pub mod check;
pub mod compare;
pub mod corpus;
pub mod definitions;
pub mod error;
pub mod eventlog;
pub mod exit;
pub mod files;
pub mod inspect;
pub mod js;
pub mod materialize;
pub mod render;
pub mod replay;
pub mod report;
pub mod session;
pub mod snapshot;
pub mod sqlite;
pub mod text;
pub mod validate;
pub mod value;

pub use error::{Error, Result};
