//! What the runtime provides for port timers (issue #6).

/// The part of [`Host`](crate::Host) behind port timers (issue #6).
pub trait TimerHost {}
