//! The clock of port timers: nanoseconds of monotonic time, from the same process-wide
//! origin as [`monotonic_time`](crate::time::monotonic_time).
//!
//! [`now_ns`] is exact: what a timer thread expires timers by. [`caller_now_ns`] is for the
//! driver's own calls (`driver_set_timer`, `driver_read_timer`): cheaper, never behind
//! [`now_ns`] and at most about 20 µs ahead of it. Both uses are safe with a clock slightly
//! ahead: a timer set by it expires a little later, never early, and a read never reports
//! more than is left.

use std::sync::OnceLock;
use std::time::Instant;

/// Time 0 of [`now_ns`]: the origin of monotonic time.
#[inline]
pub fn origin() -> Instant {
    crate::time::origin()
}

/// Nanoseconds since [`origin`], exact.
#[inline]
pub fn now_ns() -> u64 {
    u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

/// Nanoseconds since [`origin`] for a caller that may read a little ahead: never behind
/// [`now_ns`] and at most about 20 µs ahead of it.
///
/// Reading the system clock costs about 25 ns; a driver setting, reading and cancelling its
/// timer reads it twice. On x86-64 with an invariant time-stamp counter (about 10 ns to
/// read), each thread keeps its last clock reading with the counter value at that time and,
/// for the next 10 000 counter cycles, extrapolates from it at 2 ns per cycle: an
/// overestimate for any counter of 500 MHz or more (real ones run at 1 GHz and above).
#[inline]
pub fn caller_now_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::cell::Cell;
        /// Cycles after a clock reading during which it is extrapolated.
        const WINDOW_CYCLES: u64 = 10_000;
        thread_local! {
            /// The last clock reading (`ns`) and the counter at that time (`tsc`); `tsc` 0: none.
            static RECENT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        static INVARIANT_TSC: OnceLock<bool> = OnceLock::new();
        // CPUID 0x8000_0007, EDX bit 8: the counter ticks at a constant rate in every state.
        let invariant = *INVARIANT_TSC.get_or_init(|| {
            std::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
                && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
        });
        if invariant {
            // SAFETY: RDTSC has no preconditions on x86-64 (it is never disabled in user mode
            // on Linux, and it only reads the counter).
            let tsc = unsafe { std::arch::x86_64::_rdtsc() };
            let (tsc_then, ns_then) = RECENT.with(Cell::get);
            // A counter that went back (another core's) fails this test and reads the clock.
            let cycles = tsc.wrapping_sub(tsc_then);
            if tsc_then != 0 && cycles < WINDOW_CYCLES {
                return ns_then + 2 * cycles;
            }
            let ns = now_ns();
            RECENT.with(|recent| recent.set((tsc, ns)));
            return ns;
        }
    }
    now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller's clock is never behind the exact one, and not far ahead.
    #[test]
    fn caller_clock_is_never_behind_and_at_most_20_us_ahead() {
        for _ in 0..100_000 {
            let before = now_ns();
            let caller = caller_now_ns();
            let after = now_ns();
            assert!(caller >= before, "{caller} behind {before}");
            assert!(
                caller <= after + 20_000,
                "{caller} more than 20 µs past {after}"
            );
        }
    }
}
