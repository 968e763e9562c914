//! What the runtime provides for term output (issue #5).

/// The part of [`Host`](crate::Host) behind term output (issue #5).
pub trait TermHost {}
