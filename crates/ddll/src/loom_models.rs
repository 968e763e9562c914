//! Model-checked synchronisation of the spin lock and the mailbox (`cargo xtask loom`).
//!
//! Built only with `--cfg loom`: `sync.rs` then gives the production code loom's atomics, mutex
//! and thread parking, and loom runs each model under every interleaving (up to
//! `LOOM_MAX_PREEMPTIONS` preemptions) and every value a weakly ordered load may return. Loom
//! reports a deadlock when every modelled thread is parked: a lost wake-up fails a model. The
//! spin lock's data sits in a loom cell under the model, so an access the lock does not order is
//! reported as a data race.
//!
//! Not modelled here, and why:
//! - The port callback lock, its remembered-lock fast path and the closing flag
//!   (`port.rs`): they are `parking_lot` locks and thread-locals entangled with the whole
//!   runtime (driver callbacks through the C API, the port table); a model would need the
//!   runtime under loom. `tests/port_lifetime.rs`, `tests/unload_safety.rs`, `tests/stress.rs`
//!   and the soak check them under load instead.
//! - The timer's atomic due time (`timers.rs`): its other side is the timer thread's wheel,
//!   behind a `parking_lot` mutex and condition variable that only run with the runtime;
//!   `tests/timers_async.rs` and the soak check that every timer fires once or is cancelled.

use drv_term::{Pid, Term};
use loom::sync::Arc;
use loom::thread;

use crate::process::Process;
use crate::spin::SpinMutex;

fn process() -> Arc<Process> {
    Arc::new(Process::new(Pid::local(1), None))
}

/// Property: the spin lock excludes: two threads each adding under it lose no update, and
/// each sees the other's write (the data is in a loom cell: an unordered access fails).
#[test]
fn spin_lock_two_adders_lose_no_update() {
    loom::model(|| {
        let counter = Arc::new(SpinMutex::new(0u32));
        let other = Arc::clone(&counter);
        let adder = thread::spawn(move || *other.lock() += 1);
        *counter.lock() += 1;
        adder.join().expect("adder thread");
        assert_eq!(*counter.lock(), 2);
    });
}

/// Property: `try_lock` never succeeds while another thread holds the lock, and a failed
/// `try_lock` leaves the holder's section intact.
#[test]
fn spin_try_lock_never_enters_a_held_section() {
    loom::model(|| {
        let counter = Arc::new(SpinMutex::new(0u32));
        let other = Arc::clone(&counter);
        let holder = thread::spawn(move || {
            let mut held = other.lock();
            *held += 1;
            *held += 1;
        });
        if let Some(mut section) = counter.try_lock() {
            // Either before or after the holder's whole section, never in the middle.
            assert!(*section == 0 || *section == 2, "saw {}", *section);
            *section += 10;
        }
        holder.join().expect("holder thread");
        let total = *counter.lock();
        assert!(total == 2 || total == 12, "total {total}");
    });
}

/// Property: no lost wake-up: a receiver waiting with no deadline always gets a message a
/// sender appends, whether the append comes before its check, between its check and its park,
/// or after it parked (a receiver parked forever is a loom deadlock).
#[test]
fn mailbox_a_waiting_receiver_is_always_woken() {
    loom::model(|| {
        let process = process();
        let sender = {
            let process = Arc::clone(&process);
            thread::spawn(move || process.deliver(Term::Int(7)))
        };
        assert_eq!(process.receive(None).map(Term::from), Some(Term::Int(7)));
        sender.join().expect("sender thread");
        assert_eq!(process.message_count(), 0);
    });
}

/// Property: no message lost, duplicated or reordered per sender: two senders' messages (two
/// from one, one from the other: more makes the state space too big to explore) all arrive once, each sender's in the order sent, through the inbox's fast path and the move to
/// the private queue alike.
#[test]
fn mailbox_two_senders_lose_and_reorder_nothing() {
    // Three threads' receives, appends and spin-lock waits make executions longer than loom's
    // default bound of 1,000 branches, and at two preemptions this model ran for more than 15
    // minutes: it is bounded to one (the wake-up races, at two, are the models above).
    let mut model = loom::model::Builder::new();
    model.max_branches = 20_000;
    model.preemption_bound = Some(1);
    model.check(|| {
        let process = process();
        let senders: Vec<_> = [&[1, 2][..], &[11]]
            .into_iter()
            .map(|messages| {
                let process = Arc::clone(&process);
                thread::spawn(move || {
                    for &m in messages {
                        process.deliver(Term::Int(m));
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(Term::from(process.receive(None).expect("no deadline")));
        }
        for sender in senders {
            sender.join().expect("sender thread");
        }
        let of = |low: i64, high: i64| -> Vec<Term> {
            got.iter()
                .filter(|t| matches!(t, Term::Int(i) if (low..=high).contains(i)))
                .cloned()
                .collect()
        };
        assert_eq!(of(1, 2), [Term::Int(1), Term::Int(2)], "all: {got:?}");
        assert_eq!(of(11, 11), [Term::Int(11)], "all: {got:?}");
    });
}

/// Property: a selective receive waiting for a later message is woken by it even though an
/// earlier, unmatched message moved the mailbox to its private queue, and the skipped message
/// stays queued, first.
#[test]
fn mailbox_selective_receive_is_woken_past_an_unmatched_message() {
    loom::model(|| {
        let process = process();
        let sender = {
            let process = Arc::clone(&process);
            thread::spawn(move || {
                process.deliver(Term::Int(1));
                process.deliver(Term::Int(2));
            })
        };
        let two = process.receive_matching(None, |m| m.int() == Some(2));
        assert_eq!(two.map(Term::from), Some(Term::Int(2)));
        sender.join().expect("sender thread");
        assert_eq!(process.receive(None).map(Term::from), Some(Term::Int(1)));
        assert_eq!(process.message_count(), 0);
    });
}

/// Property: a process that dies while a sender appends keeps nothing: a message either
/// arrives before the death (and is cleared with the mailbox) or is dropped.
#[test]
fn mailbox_a_message_racing_death_is_not_left_behind() {
    loom::model(|| {
        let process = process();
        let sender = {
            let process = Arc::clone(&process);
            thread::spawn(move || process.deliver(Term::Int(1)))
        };
        process.mark_dead();
        sender.join().expect("sender thread");
        assert_eq!(process.message_count(), 0);
    });
}
