//! What the runtime provides for port timers (issue #6).

use std::ffi::c_int;

use crate::types::ErlDrvPort;

/// The part of [`Host`](crate::Host) behind port timers: one timer per port, whose expiry runs
/// the driver's `timeout` callback serialised with the port's other callbacks.
pub trait TimerHost {
    /// `driver_set_timer`: arms the port's timer to expire `time_ms` milliseconds from now,
    /// replacing a pending one (0 expires on the next turn, after the current callback).
    /// Returns 0, or -1 for a dead port. A driver without a `timeout` callback gets 0 too, as
    /// from OTP 25 (the old documentation's -1 is no longer what BEAM does): its timer expires
    /// without effect.
    fn set_timer(&self, port: ErlDrvPort, time_ms: u64) -> c_int;
    /// `driver_cancel_timer`: disarms the port's timer; a timeout not yet run never runs.
    /// Returns 0 (also when none is pending), or -1 for a dead port.
    fn cancel_timer(&self, port: ErlDrvPort) -> c_int;
    /// `driver_read_timer`: whole milliseconds left before the timer expires (0 when none is
    /// pending), or `None` for a dead port.
    fn read_timer(&self, port: ErlDrvPort) -> Option<u64>;
}
