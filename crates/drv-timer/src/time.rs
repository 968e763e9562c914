//! The driver API's time functions (`erl_drv_monotonic_time`,
//! `erl_drv_time_offset`, `erl_drv_convert_time_unit`, `driver_get_now`),
//! with the values and rounding of OTP 25's `erl_driver.h`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// `ERL_DRV_TIME_ERROR`: returned for an invalid time unit.
pub const ERL_DRV_TIME_ERROR: i64 = i64::MIN;
/// `ERL_DRV_SEC`.
pub const ERL_DRV_SEC: i32 = 0;
/// `ERL_DRV_MSEC`.
pub const ERL_DRV_MSEC: i32 = 1;
/// `ERL_DRV_USEC`.
pub const ERL_DRV_USEC: i32 = 2;
/// `ERL_DRV_NSEC`.
pub const ERL_DRV_NSEC: i32 = 3;

/// `ErlDrvTimeUnit`, with the C enum's values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(i32)]
pub enum TimeUnit {
    /// `ERL_DRV_SEC`
    Second = ERL_DRV_SEC,
    /// `ERL_DRV_MSEC`
    Millisecond = ERL_DRV_MSEC,
    /// `ERL_DRV_USEC`
    Microsecond = ERL_DRV_USEC,
    /// `ERL_DRV_NSEC`
    Nanosecond = ERL_DRV_NSEC,
}

impl TimeUnit {
    /// The unit for a raw `ErlDrvTimeUnit` value; `None` if it is not one.
    pub const fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            ERL_DRV_SEC => Some(TimeUnit::Second),
            ERL_DRV_MSEC => Some(TimeUnit::Millisecond),
            ERL_DRV_USEC => Some(TimeUnit::Microsecond),
            ERL_DRV_NSEC => Some(TimeUnit::Nanosecond),
            _ => None,
        }
    }

    /// The raw `ErlDrvTimeUnit` value.
    pub const fn raw(self) -> i32 {
        self as i32
    }

    /// How many of this unit make one second.
    pub const fn per_second(self) -> i64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }
    }
}

/// `erl_drv_convert_time_unit` on typed units: converts `value` from `from`
/// to `to`, rounding toward negative infinity (floor), like BEAM, so that
/// `-1` ns is `-1` s.
///
/// A result outside `i64` is undefined behaviour in BEAM's C code; here it wraps.
pub const fn convert_time_unit(value: i64, from: TimeUnit, to: TimeUnit) -> i64 {
    let (from_freq, to_freq) = (from.per_second(), to.per_second());
    if to_freq >= from_freq {
        value.wrapping_mul(to_freq / from_freq)
    } else {
        // Divisor is positive, so Euclidean division is floor division.
        value.div_euclid(from_freq / to_freq)
    }
}

/// `erl_drv_convert_time_unit` on raw unit values: [`ERL_DRV_TIME_ERROR`] if
/// either unit is invalid.
pub const fn convert_time_unit_raw(value: i64, from: i32, to: i32) -> i64 {
    match (TimeUnit::from_raw(from), TimeUnit::from_raw(to)) {
        (Some(from), Some(to)) => convert_time_unit(value, from, to),
        _ => ERL_DRV_TIME_ERROR,
    }
}

/// Process-wide time base: the monotonic origin and the fixed offset to OS
/// system time, taken together once (BEAM's default "no time warp" mode also
/// fixes the offset).
struct Clock {
    origin: Instant,
    offset_ns: i64,
}

#[inline]
fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let origin = Instant::now();
        // Monotonic time is 0 at `origin`, so the offset is system time then.
        Clock {
            origin,
            offset_ns: system_time_ns(),
        }
    })
}

fn system_time_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |ns| -ns),
    }
}

/// The process-wide origin of monotonic time (and of [`crate::clock`]).
#[inline]
pub(crate) fn origin() -> Instant {
    clock().origin
}

/// Monotonic time in nanoseconds since the process-wide origin.
fn monotonic_ns() -> i64 {
    i64::try_from(clock().origin.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// `erl_drv_monotonic_time`: monotonic time in `unit` (floor), counted from a
/// process-wide origin fixed at first use of this module's clock.
pub fn monotonic_time(unit: TimeUnit) -> i64 {
    convert_time_unit(monotonic_ns(), TimeUnit::Nanosecond, unit)
}

/// [`monotonic_time`] on a raw unit: [`ERL_DRV_TIME_ERROR`] if it is invalid.
pub fn monotonic_time_raw(unit: i32) -> i64 {
    TimeUnit::from_raw(unit).map_or(ERL_DRV_TIME_ERROR, monotonic_time)
}

/// `erl_drv_time_offset`: the offset between [`monotonic_time`] and OS system
/// time (since the Unix epoch) in `unit`, so that `monotonic_time(u) +
/// time_offset(u)` is the system time, up to the floor of each term.
pub fn time_offset(unit: TimeUnit) -> i64 {
    convert_time_unit(clock().offset_ns, TimeUnit::Nanosecond, unit)
}

/// [`time_offset`] on a raw unit: [`ERL_DRV_TIME_ERROR`] if it is invalid.
pub fn time_offset_raw(unit: i32) -> i64 {
    TimeUnit::from_raw(unit).map_or(ERL_DRV_TIME_ERROR, time_offset)
}

/// Microseconds since the Unix epoch, strictly increasing across all threads
/// (the `erlang:now/0` guarantee): if the clock has not moved (or moved back),
/// the previous value plus one.
pub fn now_micros() -> u64 {
    static LAST_NOW_US: AtomicU64 = AtomicU64::new(0);
    let system_us = u64::try_from(system_time_ns().max(0) / 1_000).unwrap_or(0);
    let next = |last: u64| system_us.max(last + 1);
    // A single atomic has one modification order, so Relaxed already makes
    // every returned value distinct and increasing in that order.
    let previous = LAST_NOW_US
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(next(last))
        })
        .unwrap_or_else(|last| last);
    next(previous)
}

/// `driver_get_now`: `(megasecs, secs, microsecs)` since the Unix epoch, the
/// `ErlDrvNowData` fields; strictly increasing across all threads.
pub fn now() -> (u64, u64, u64) {
    split_now(now_micros())
}

/// Splits microseconds since the epoch in `ErlDrvNowData` fields.
pub const fn split_now(micros: u64) -> (u64, u64, u64) {
    let secs = micros / 1_000_000;
    (secs / 1_000_000, secs % 1_000_000, micros % 1_000_000)
}
