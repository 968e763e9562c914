//! `drv-timer`: port timers and the driver API's time functions.
//!
//! Three independent pieces, usable alone:
//!
//! - [`TimerWheel`]: a hierarchical timing wheel with 1 ms ticks. O(1)
//!   insert / cancel / read, generation-checked [`TimerKey`]s, expiry in
//!   deadline order without scanning empty slots, and any `u64` deadline
//!   (nothing wraps around to fire early). You drive its clock.
//! - [`clock`]: the clock port timers run on (`driver_set_timer`,
//!   `driver_read_timer`): monotonic nanoseconds, exact for the timer thread
//!   and cheaper for the driver's calls.
//! - [`time`]: `erl_drv_monotonic_time`, `erl_drv_time_offset`,
//!   `erl_drv_convert_time_unit` and `driver_get_now` with BEAM's values and
//!   rounding.
//!
//! ```
//! use drv_timer::time::{convert_time_unit, TimeUnit};
//! use drv_timer::TimerWheel;
//!
//! // A wheel driven by hand: port 7 armed for 100 ms, port 9 for 30 ms.
//! let mut wheel = TimerWheel::new(0);
//! let port7 = wheel.insert(100, 7);
//! wheel.insert(30, 9);
//! let mut expired = Vec::new();
//! wheel.advance(50, |_key, port| expired.push(port));
//! assert_eq!(expired, [9]);
//! assert_eq!(wheel.time_left(port7, 50), Some(50));
//!
//! // Time units convert with floor rounding, as in BEAM.
//! assert_eq!(convert_time_unit(-1, TimeUnit::Nanosecond, TimeUnit::Second), -1);
//! ```

pub mod clock;
pub mod time;
mod wheel;

pub use wheel::{TimerKey, TimerWheel};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
