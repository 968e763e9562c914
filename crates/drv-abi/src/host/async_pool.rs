//! What the runtime provides for the async thread pool (issue #6).

/// The part of [`Host`](crate::Host) behind the async thread pool (issue #6).
pub trait AsyncHost {}
