//! A path into an event's args (`args.x[0].y`), shared by the expressions that read args and
//! by the re-encoding that follows the same path through the event's schema (`reencode`).

/// One step of an args path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathStep {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}
