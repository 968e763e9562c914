//! What the runtime provides for the driver queue and port data locks (issue #4).

/// The part of [`Host`](crate::Host) behind the driver queue and port data locks (issue #4).
pub trait QueueHost {}
