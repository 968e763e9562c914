//! Model-checked reference counts of driver binaries and port data locks.
//!
//! Built only with `--cfg loom` (`cargo xtask loom`): the crate's atomics and allocator calls
//! are then loom's (`src/sync.rs`), so these models explore every interleaving, and every
//! weakly ordered value an atomic load may return, of the production `retain`/`release` code.
//! Loom's allocator reports a binary freed twice ("pointer not tracked") or never (a leak at the
//! end of an execution): the property "the count reaches zero exactly once".
#![cfg(loom)]

use drv_queue::{pdl_dec_refc, pdl_inc_refc, BinaryRef, PdlRef, PortQueue};
use loom::thread;

/// Property: a binary whose references are dropped on three threads at once is freed exactly
/// once, by the last drop, and each holder reads the data it was given while it holds it.
#[test]
fn a_binary_dropped_on_three_threads_is_freed_exactly_once() {
    loom::model(|| {
        let bin = BinaryRef::from_slice(b"shared").expect("allocates");
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let mine = bin.clone();
                thread::spawn(move || {
                    assert_eq!(mine.as_bytes(), b"shared");
                    drop(mine);
                })
            })
            .collect();
        drop(bin);
        for holder in holders {
            holder.join().expect("holder thread");
        }
    });
}

/// Property: the queue's release of a run of entries of one binary (one atomic operation for
/// the run, and none at all when its load sees that the queue holds every reference) frees the
/// binary exactly once while another thread drops the last other reference: the load-only fast
/// path must never free a binary that someone else still references.
#[test]
fn a_queue_releasing_a_run_races_a_holder_and_the_binary_is_freed_once() {
    loom::model(|| {
        let bin = BinaryRef::from_slice(b"abcd").expect("allocates");
        let mut queue = PortQueue::new();
        queue.enq_bin(&bin, 0, 2).expect("in bounds");
        queue.enq_bin(&bin, 2, 2).expect("in bounds");
        let holder = thread::spawn(move || {
            assert_eq!(bin.as_bytes(), b"abcd");
            drop(bin);
        });
        assert_eq!(queue.deq(4).expect("4 bytes queued"), 0);
        holder.join().expect("holder thread");
    });
}

/// Property: counting up and down a port data lock's references from two threads loses no
/// update (each thread sees its own increment), and the last drop, on either thread, is the
/// one that destroys the lock.
#[test]
fn port_data_lock_counts_from_two_threads_lose_no_update() {
    loom::model(|| {
        let pdl = PdlRef::new();
        let raw = pdl.as_raw();
        let other = pdl.clone();
        let counter = thread::spawn(move || {
            let raw = other.as_raw();
            // SAFETY: `other` keeps the lock alive for these calls.
            let up = unsafe { pdl_inc_refc(raw) };
            assert!(up >= 2, "this thread's two references are counted: {up}");
            // SAFETY: as above; this drops the reference taken just before.
            unsafe { pdl_dec_refc(raw) };
            drop(other);
        });
        // SAFETY: `pdl` keeps the lock alive.
        let up = unsafe { pdl_inc_refc(raw) };
        assert!(up >= 2, "this thread's two references are counted: {up}");
        // SAFETY: as above.
        unsafe { pdl_dec_refc(raw) };
        counter.join().expect("counter thread");
        assert_eq!(pdl.refc(), 1, "every increment was matched by a decrement");
    });
}
