//! Huge pages for the message arena's large chunks and the mailboxes' data logs (see
//! `drv_term::arena`, which starts them on a 2 MiB boundary): a backlog of driver output at
//! an owner that does not receive fills buffers of up to 4 MiB, which 4 KiB pages would fault
//! in 512 times per 2 MiB (the larger part of an output's cost measured under a
//! 200,000-message backlog); the kernel's transparent huge pages, where enabled in `madvise`
//! mode or always, take one fault per 2 MiB.
//!
//! A huge page fault is sometimes slow: on a virtual machine whose free memory is handed back
//! to its host (free page reporting), some faults take 4-6 ms where 512 small ones take about
//! 1 ms and a huge one usually 0.2-0.35 ms (see docs/status.md, issue 16). So each advised
//! buffer's first huge page is faulted in at once, timed; when that took longer than
//! [`SLOW_FAULT`], the rest of the buffer and the next [`SKIPPED_AFTER_SLOW`] buffers go
//! without the advice. `DDLL_HUGE_PAGES=0` turns the advice off altogether.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

/// The huge page size this asks for (x86-64's and aarch64's with 4 KiB pages).
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// A huge page fault slower than this costs more than the small faults it replaces (512 of
/// them took about 1 ms on the virtual machine this was measured on).
#[cfg(target_os = "linux")]
const SLOW_FAULT: Duration = Duration::from_millis(1);

/// New buffers that go without the advice after a slow huge page fault; then it is tried
/// again.
#[cfg(target_os = "linux")]
const SKIPPED_AFTER_SLOW: u32 = 8;

/// New buffers still to go without the advice.
#[cfg(target_os = "linux")]
static SKIPPING: AtomicU32 = AtomicU32::new(0);

/// Installs the advice for new arena chunks (once per process).
pub(crate) fn install() {
    if wanted(std::env::var_os("DDLL_HUGE_PAGES").as_deref()) {
        drv_term::arena::on_new_chunks(advise);
    }
}

/// Whether huge pages are asked for, given `DDLL_HUGE_PAGES`: unless it is `0`.
fn wanted(setting: Option<&std::ffi::OsStr>) -> bool {
    setting.is_none_or(|v| v != "0")
}

/// Whether a new buffer gets the advice: not while buffers are left to go without it (one
/// fewer is then left).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn takes_advice(skipping: &AtomicU32) -> bool {
    skipping
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_err()
}

/// Asks the kernel to back the 2 MiB-aligned part of `chunk` with huge pages (Linux's
/// transparent huge pages; elsewhere nothing), unless a recent huge page fault was slow; and
/// takes the advice back for the rest of `chunk` if its first huge page is slow to fault in.
#[cfg(target_os = "linux")]
fn advise(chunk: &mut [MaybeUninit<u8>]) {
    let start = chunk.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let end = (start + chunk.len()) / HUGE_PAGE * HUGE_PAGE;
    if end <= aligned || !takes_advice(&SKIPPING) {
        return;
    }
    madvise(aligned, end, libc::MADV_HUGEPAGE);
    // The first huge page, faulted in now (the buffer is written from its start, so this is
    // a fault it takes at once anyway), timed. The fences keep the write between the reads
    // of the clock.
    let first = &mut chunk[aligned - start];
    let began = Instant::now();
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    first.write(0);
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    if began.elapsed() > SLOW_FAULT {
        madvise(aligned + HUGE_PAGE, end, libc::MADV_NOHUGEPAGE);
        SKIPPING.store(SKIPPED_AFTER_SLOW, Ordering::Relaxed);
    }
}

/// `madvise` of `[from, to)` (nothing when empty), a range of a buffer handed to [`advise`].
/// Advice is only that: a failure (huge pages disabled, an old kernel) changes nothing.
#[cfg(target_os = "linux")]
fn madvise(from: usize, to: usize, advice: libc::c_int) {
    if to <= from {
        return;
    }
    // SAFETY: `[from, to)` lies inside a buffer this process owns (`advise`'s chunk, borrowed
    // exclusively); this advice changes how the range is backed, never what it holds.
    let _ = unsafe { libc::madvise(from as *mut libc::c_void, to - from, advice) };
}

#[cfg(not(target_os = "linux"))]
fn advise(_chunk: &mut [MaybeUninit<u8>]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn only_zero_turns_huge_pages_off() {
        for (setting, wanted) in [
            (None, true),
            (Some("0"), false),
            (Some("1"), true),
            (Some(""), true),
        ] {
            assert_eq!(
                super::wanted(setting.map(std::ffi::OsStr::new)),
                wanted,
                "{setting:?}"
            );
        }
    }

    #[test]
    fn after_a_slow_fault_buffers_go_without_advice_for_a_while() {
        let skipping = std::sync::atomic::AtomicU32::new(0);
        assert!(super::takes_advice(&skipping), "none skipped at first");
        skipping.store(2, std::sync::atomic::Ordering::Relaxed);
        let turns: Vec<bool> = (0..4).map(|_| super::takes_advice(&skipping)).collect();
        assert_eq!(turns, [false, false, true, true]);
    }

    #[test]
    fn advised_memory_keeps_what_is_written() {
        let mut chunk = Vec::<u8>::with_capacity(6 << 20);
        super::advise(chunk.spare_capacity_mut());
        chunk.resize(6 << 20, 7);
        assert!(chunk.iter().all(|&b| b == 7));
    }
}
