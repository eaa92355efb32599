//! Backups and restores: a package written from a live store ([`export`]), proved restorable
//! before anyone bets on it ([`preflight`]), and put back so that a crash leaves the old store
//! or the new one, whole ([`restore`]). [`manifest`] is what ties a package together.

pub mod export;
pub mod manifest;
pub mod preflight;
pub mod restore;
