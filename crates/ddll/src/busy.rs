//! Back-pressure: busy ports (`set_busy_port`) and busy message queues
//! (`erl_drv_busy_msgq_limits`), and the senders they hold up.
//!
//! As in BEAM, a sender checks whether the port is busy *before* its command reaches the port
//! (before the data is even looked at): a busy port makes `port_command` (and `Port ! {Pid,
//! {command, D}}`) wait until the driver clears busy, makes `port_command(P, D, [nosuspend])`
//! return `false`, and lets `[force]` through (for drivers with `ERL_DRV_FLAG_SOFT_BUSY` only;
//! other drivers raise `notsup`). A port that becomes busy during a command does not hold up
//! that command's sender. A waiting sender holds no lock: the driver may clear busy from any
//! callback source or thread. A port that closes wakes its waiters, whose commands then fail as
//! commands to a closed port (`badarg`), as in BEAM.
//!
//! The message queue: BEAM queues a command for a port when it cannot run it at once (the port
//! is running on another scheduler or has tasks scheduled) and counts the queued commands'
//! bytes; above the high limit the queue is busy and senders wait as for a busy port, until it
//! drains below the low limit. ddll runs a command in its sender's thread, so the only commands
//! waiting for a port are those of threads waiting for its callback lock: those are what ddll
//! counts (see ARCHITECTURE.md).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use drv_abi::types::{
    ERL_DRV_BUSY_MSGQ_DISABLED, ERL_DRV_BUSY_MSGQ_READ_ONLY, ERL_DRV_FLAG_NO_BUSY_MSGQ,
};
use once_cell::race::OnceBox;
use parking_lot::{Condvar, Mutex};

/// BEAM's default limits of a port's busy message queue (bytes).
pub(crate) const DEFAULT_MSGQ_LOW: usize = 4096;
pub(crate) const DEFAULT_MSGQ_HIGH: usize = 8192;

/// A port's busy state and the senders waiting for it to clear: allocated on first use (a
/// port that is never busy nor contended has one word here), so that a command reads one
/// pointer and finds no busy state.
#[derive(Debug, Default)]
pub(crate) struct Busy {
    state: OnceBox<BusyState>,
}

/// A port's busy state, once it has one.
#[derive(Debug)]
struct BusyState {
    /// [`PORT_BUSY`] (`set_busy_port`) and [`MSGQ_BUSY`] (the message queue went above its
    /// high limit and has not yet drained below the low one): read by every command (one load).
    flags: AtomicU8,
    /// Bytes of commands waiting to reach the port (see the module's comment).
    queued: AtomicUsize,
    /// The busy message queue's limits.
    limits: Mutex<Limits>,
    /// Taken to change a flag to "not busy" and to wait for that: no wake-up is lost.
    waiting: Mutex<()>,
    cleared: Condvar,
}

/// The limits of a port's busy message queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limits {
    /// As the port started: BEAM's defaults, or none for a driver with
    /// `ERL_DRV_FLAG_NO_BUSY_MSGQ` (the callers that read the limits pass the driver's flags).
    Initial,
    Set(MsgqLimits),
    /// Disabled for good.
    Disabled,
}

impl Limits {
    /// The limits in force, `None` when disabled, for a port of a driver with `driver_flags`.
    fn resolve(self, driver_flags: i32) -> Option<MsgqLimits> {
        match self {
            Limits::Initial if driver_flags & ERL_DRV_FLAG_NO_BUSY_MSGQ == 0 => Some(MsgqLimits {
                low: DEFAULT_MSGQ_LOW,
                high: DEFAULT_MSGQ_HIGH,
            }),
            Limits::Set(limits) => Some(limits),
            Limits::Initial | Limits::Disabled => None,
        }
    }
}

/// [`BusyState::flags`]: the driver set the port busy.
const PORT_BUSY: u8 = 1;
/// [`BusyState::flags`]: the port's message queue is busy.
const MSGQ_BUSY: u8 = 2;

/// The limits of a busy message queue (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsgqLimits {
    pub(crate) low: usize,
    pub(crate) high: usize,
}

/// Whether a sender may go on to the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Not busy (or forced): the command goes to the port.
    Go,
    /// Busy: the sender waits (or, with `nosuspend`, gives up).
    Busy,
}

impl Busy {
    /// The busy state, allocated by the first use.
    fn state(&self) -> &BusyState {
        self.state.get_or_init(|| {
            Box::new(BusyState {
                flags: AtomicU8::new(0),
                queued: AtomicUsize::new(0),
                limits: Mutex::new(Limits::Initial),
                waiting: Mutex::new(()),
                cleared: Condvar::new(),
            })
        })
    }

    /// The busy flags ([`BusyState::flags`]); none before the state exists.
    #[inline]
    fn flags(&self) -> u8 {
        self.state
            .get()
            .map_or(0, |state| state.flags.load(Ordering::Acquire))
    }

    /// Whether a sender must wait: the port or its message queue is busy.
    #[inline]
    pub(crate) fn admission(&self, force: bool) -> Admission {
        if force || self.flags() == 0 {
            Admission::Go
        } else {
            Admission::Busy
        }
    }

    /// `set_busy_port(port, on)`.
    pub(crate) fn set_port(&self, on: bool) {
        if on {
            self.state().flags.fetch_or(PORT_BUSY, Ordering::AcqRel);
        } else {
            self.clear(PORT_BUSY);
        }
    }

    /// Whether the driver set the port busy (`set_busy_port`): an isolated driver's host tells
    /// its parent, whose port then holds up senders.
    pub(crate) fn is_port_busy(&self) -> bool {
        self.flags() & PORT_BUSY != 0
    }

    /// Clears `flag` and wakes the waiting senders if nothing is busy any more.
    fn clear(&self, flag: u8) {
        if self.flags() & flag == 0 {
            return;
        }
        let state = self.state();
        let _waiting = state.waiting.lock();
        if state.flags.fetch_and(!flag, Ordering::AcqRel) == flag {
            state.cleared.notify_all();
        }
    }

    /// Waits, holding no lock of the port's, until neither the port nor its message queue is
    /// busy or `closed()` says the port has closed.
    pub(crate) fn wait_until_clear(&self, closed: impl Fn() -> bool) {
        let state = self.state();
        let mut waiting = state.waiting.lock();
        while self.admission(false) == Admission::Busy && !closed() {
            state.cleared.wait(&mut waiting);
        }
    }

    /// Wakes every waiting sender: the port has closed. (Allocates the state if no sender
    /// made it yet: without taking its lock, a sender about to wait could miss that the port
    /// closed.)
    pub(crate) fn port_closed(&self) {
        let state = self.state();
        let _waiting = state.waiting.lock();
        state.cleared.notify_all();
    }

    /// A command of `bytes` starts waiting for the port (its callback lock is held by another
    /// thread): the queue of a port of a driver with `driver_flags` may become busy.
    pub(crate) fn enqueue(&self, bytes: usize, driver_flags: i32) {
        let state = self.state();
        let queued = state.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if let Some(limits) = state.limits.lock().resolve(driver_flags) {
            if queued > limits.high {
                state.flags.fetch_or(MSGQ_BUSY, Ordering::AcqRel);
            }
        }
    }

    /// A command of `bytes` that waited has reached the port: the queue may cease to be busy.
    pub(crate) fn dequeue(&self, bytes: usize, driver_flags: i32) {
        let queued = self.state().queued.fetch_sub(bytes, Ordering::AcqRel) - bytes;
        self.check_not_busy(queued, driver_flags);
    }

    /// Clears the queue's busy state if it is below the low limit (or disabled).
    fn check_not_busy(&self, queued: usize, driver_flags: i32) {
        let below = match self.state().limits.lock().resolve(driver_flags) {
            Some(limits) => queued < limits.low,
            None => true,
        };
        if below {
            self.clear(MSGQ_BUSY);
        }
    }

    /// `erl_drv_busy_msgq_limits`: `low` and `high` as the driver passed them
    /// (`ERL_DRV_BUSY_MSGQ_READ_ONLY` for a NULL pointer) become the values written back.
    /// As BEAM: either limit `ERL_DRV_BUSY_MSGQ_DISABLED` disables the feature for good (the
    /// other value is written back unchanged); a disabled queue reads as disabled for both; a
    /// new low above the high limit raises the high limit, a new high below the low limit
    /// lowers the low limit; a changed limit makes the queue busy or not at once.
    pub(crate) fn msgq_limits(&self, low: usize, high: usize, driver_flags: i32) -> (usize, usize) {
        let state = self.state();
        let mut limits_guard = state.limits.lock();
        let Some(mut limits) = limits_guard.resolve(driver_flags) else {
            return (ERL_DRV_BUSY_MSGQ_DISABLED, ERL_DRV_BUSY_MSGQ_DISABLED);
        };
        if low == ERL_DRV_BUSY_MSGQ_DISABLED || high == ERL_DRV_BUSY_MSGQ_DISABLED {
            *limits_guard = Limits::Disabled;
            drop(limits_guard);
            self.clear(MSGQ_BUSY);
            return (low, high);
        }
        let mut written = false;
        let low = if low == ERL_DRV_BUSY_MSGQ_READ_ONLY {
            limits.low
        } else {
            limits.high = limits.high.max(low);
            limits.low = low;
            written = true;
            low
        };
        let (low, high) = if high == ERL_DRV_BUSY_MSGQ_READ_ONLY {
            (low, limits.high)
        } else {
            let low = low.min(high);
            limits.low = low;
            limits.high = high;
            written = true;
            (low, high)
        };
        let now = limits;
        if written {
            *limits_guard = Limits::Set(now);
        }
        drop(limits_guard);
        if written {
            let queued = state.queued.load(Ordering::Acquire);
            if queued > now.high {
                state.flags.fetch_or(MSGQ_BUSY, Ordering::AcqRel);
            } else {
                self.check_not_busy(queued, driver_flags);
            }
        }
        (low, high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drv_abi::types::{ERL_DRV_BUSY_MSGQ_LIM_MAX, ERL_DRV_BUSY_MSGQ_LIM_MIN};

    const R: usize = ERL_DRV_BUSY_MSGQ_READ_ONLY;
    const D: usize = ERL_DRV_BUSY_MSGQ_DISABLED;

    /// Each call on one port in turn, with the values BEAM 25 writes back (measured with
    /// examples/drivers/busy_drv.c under erl).
    #[test]
    fn msgq_limits_as_beam() {
        let busy = Busy::default();
        let steps = [
            ((R, R), (4096, 8192)),
            ((100, R), (100, 8192)),
            ((R, R), (100, 8192)),
            ((R, 50), (50, 50)),
            ((R, R), (50, 50)),
            (
                (ERL_DRV_BUSY_MSGQ_LIM_MAX, ERL_DRV_BUSY_MSGQ_LIM_MAX),
                (ERL_DRV_BUSY_MSGQ_LIM_MAX, ERL_DRV_BUSY_MSGQ_LIM_MAX),
            ),
            (
                (ERL_DRV_BUSY_MSGQ_LIM_MIN, ERL_DRV_BUSY_MSGQ_LIM_MIN),
                (1, 1),
            ),
            ((10, 5), (5, 5)),
            ((5, 10), (5, 10)),
            ((R, D), (0, D)),
            ((R, R), (D, D)),
            ((100, 100), (D, D)),
        ];
        for ((low, high), expected) in steps {
            assert_eq!(
                busy.msgq_limits(low, high, 0),
                expected,
                "limits({low}, {high})"
            );
        }
    }

    #[test]
    fn no_busy_msgq_driver_reads_disabled() {
        let busy = Busy::default();
        let flags = ERL_DRV_FLAG_NO_BUSY_MSGQ;
        assert_eq!(busy.msgq_limits(R, R, flags), (D, D));
        assert_eq!(busy.msgq_limits(100, 200, flags), (D, D));
    }

    #[test]
    fn queue_busy_above_high_until_below_low() {
        let busy = Busy::default();
        busy.msgq_limits(10, 20, 0);
        busy.enqueue(15, 0);
        assert_eq!(busy.admission(false), Admission::Go);
        busy.enqueue(10, 0);
        assert_eq!(busy.admission(false), Admission::Busy);
        assert_eq!(busy.admission(true), Admission::Go);
        busy.dequeue(10, 0);
        // 15 queued: between the limits, still busy.
        assert_eq!(busy.admission(false), Admission::Busy);
        busy.dequeue(10, 0);
        assert_eq!(busy.admission(false), Admission::Go);
    }
}
