//! rehearse rehearses a log-only restore of a LiveStore app before anyone needs one.
//!
//! It reads a real LiveStore event log (`eventlog@6.db`), replays every event in log order
//! through materializers into a scratch SQLite database, compares the result row by row with
//! the state LiveStore recorded (`state<token>@6.db`), and reports every event that does not
//! replay: unknown names, args that break their schema, materializers that fail, changes that
//! differ from LiveStore's own record, rows that diverge and structural damage in the log. The
//! root causes come first; what follows from them is filed under them.
//!
//! The pipeline is the tree: [`corpus`] and [`eventlog`] load, [`validate`] checks args,
//! [`definitions`] and [`materialize`] turn events into SQL, [`replay`] runs it, [`compare`]
//! compares and follows divergence to its root, [`report`] and [`render`] say what was found.
//! [`check`] runs them all ([`check::check_corpus`] for one corpus, [`check::run`] for a gate
//! over many); [`bisect`], [`blame`], [`inspect`] and [`backup`] are the other jobs.
//!
//! ```
//! use std::path::Path;
//! use rehearse::{check, definitions::Definitions, materialize::sql::SqlMaterializer};
//! use rehearse::report::Verdict;
//!
//! let defs = Definitions::load(Path::new("corpora/workspace/materializers.toml"))?;
//! let mut materializer = SqlMaterializer::new(defs);
//! let report = check::check_corpus(
//!     Path::new("corpora/workspace-n200"),
//!     &mut materializer,
//!     &check::CheckOptions::default(),
//! )?;
//! assert_eq!(report.verdict, Verdict::Pass);
//! for finding in report.findings.iter().filter(|f| f.is_root()) {
//!     println!("{:?} {}", finding.class, finding.message);
//! }
//! # Ok::<(), rehearse::Error>(())
//! ```
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod backup;
pub mod bisect;
pub mod blame;
pub mod check;
pub mod compare;
pub mod corpus;
pub mod definitions;
pub mod error;
mod event;
pub mod eventlog;
pub mod exit;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod inspect;
pub mod js;
pub mod materialize;
pub mod progress;
pub mod render;
pub mod replay;
pub mod report;
#[doc(hidden)]
pub mod session;
pub(crate) mod snapshot;
#[doc(hidden)]
pub mod sqlite;
pub mod text;
pub mod validate;
pub(crate) mod value;

pub use error::{Error, Result};
pub use value::SqlValue;
