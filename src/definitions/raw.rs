//! The definitions file exactly as TOML spells it, with the spans that let every error name
//! its line. serde checks the shape (unknown keys are errors, so a typo is not silently a
//! no-op); what the values mean is [`parse`](super::parse)'s business.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) format: Option<Spanned<i64>>,
    pub(super) extends: Option<Spanned<String>>,
    pub(super) remove_events: Option<Vec<Spanned<String>>>,
    pub(super) event_schemas: Option<Spanned<String>>,
    pub(super) state: Option<Spanned<RawState>>,
    #[serde(default)]
    pub(super) tables: IndexMap<String, Spanned<RawTable>>,
    #[serde(default)]
    pub(super) client_documents: IndexMap<String, Spanned<RawClientDocument>>,
    #[serde(default)]
    pub(super) events: IndexMap<String, Spanned<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) ddl: Option<Spanned<String>>,
    pub(super) ddl_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    #[serde(default)]
    pub(super) columns: IndexMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientDocument {
    pub(super) default: Spanned<String>,
    pub(super) keys: Option<Vec<String>>,
    pub(super) partial_set: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatement {
    pub(super) run: Option<Vec<Spanned<RawStatement>>>,
    pub(super) insert: Option<Spanned<String>>,
    pub(super) update: Option<Spanned<String>>,
    pub(super) delete: Option<Spanned<String>>,
    pub(super) sql: Option<Spanned<String>>,
    pub(super) values: Option<IndexMap<String, Spanned<toml::Value>>>,
    pub(super) set: Option<IndexMap<String, Spanned<toml::Value>>>,
    #[serde(rename = "where")]
    pub(super) where_: Option<IndexMap<String, Spanned<toml::Value>>>,
    pub(super) on_conflict: Option<Spanned<toml::Value>>,
    pub(super) returning: Option<Vec<String>>,
    pub(super) binds: Option<Spanned<toml::Value>>,
    pub(super) when: Option<Spanned<toml::Value>>,
    pub(super) query: Option<Spanned<String>>,
    #[serde(rename = "as")]
    pub(super) as_: Option<Spanned<String>>,
    pub(super) returns: Option<Spanned<String>>,
}

impl RawStatement {
    pub(super) fn is_empty_statement(&self) -> bool {
        self.insert.is_none()
            && self.update.is_none()
            && self.delete.is_none()
            && self.sql.is_none()
            && self.values.is_none()
            && self.set.is_none()
            && self.where_.is_none()
            && self.on_conflict.is_none()
            && self.returning.is_none()
            && self.binds.is_none()
            && self.when.is_none()
            && self.query.is_none()
            && self.as_.is_none()
            && self.returns.is_none()
    }
}
