//! Every path into the `rehearse` library that a test names, in one place. The tests drive the
//! built binary; where they need the library itself (the corpus harness, the LS_DEV statement
//! oracle, a materializer held open across replays) they reach it only through these names, so
//! a module that moves in `src/` is re-pointed here and nowhere else.
//!
//! Shared by both test binaries (`tests/it/main.rs` and `tests/corpora.rs` include this file by
//! path); each uses a part of it.
#![allow(unused_imports)]

pub use rehearse::Result;
pub use rehearse::check::{CheckOptions, check_corpus, check_corpus_observed};
pub use rehearse::corpus::Corpus;
pub use rehearse::definitions::{Ddl, Definitions};
pub use rehearse::eventlog::{Event, EventLog, LogRow};
pub use rehearse::js::{BindValue, parse_json};
pub use rehearse::materialize::livestore::LiveStoreMaterializer;
pub use rehearse::materialize::sql::SqlMaterializer;
pub use rehearse::materialize::{Binds, Materializer, Outcome, Source, Statement};
pub use rehearse::replay::Step;
pub use rehearse::replay::capture::ChangeOp;
pub use rehearse::report::{CorpusReport, EventRef, Finding, FindingClass, Level, Verdict};
pub use rehearse::session::Changeset;
pub use rehearse::sqlite::{list_tables, open_input, table_columns};
