//! Output formats: every format reads the same [`crate::report::Report`].

pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
