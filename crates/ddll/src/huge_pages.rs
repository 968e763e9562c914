//! Huge pages for the message arena's large chunks (see `drv_term::arena`) and a mailbox's
//! large blocks: a backlog of driver output at an owner that does not receive fills chunks of
//! up to 4 MiB and blocks of message slots, which 4 KiB pages would fault in 512 times per
//! 2 MiB (the larger part of an output's cost measured under a 200,000-message backlog); the
//! kernel's transparent huge pages, where enabled in `madvise` mode or always, take one fault
//! per 2 MiB.

use std::mem::MaybeUninit;

/// The huge page size this asks for (x86-64's and aarch64's with 4 KiB pages).
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Installs the advice for new arena chunks (once per process).
pub(crate) fn install() {
    drv_term::arena::on_new_chunks(advise::<u8>);
}

/// Asks the kernel to back the 2 MiB-aligned part of `chunk` (memory not written yet) with
/// huge pages (Linux's transparent huge pages; elsewhere nothing).
#[cfg(target_os = "linux")]
pub(crate) fn advise<T>(chunk: &mut [MaybeUninit<T>]) {
    let start = chunk.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let end = (start + std::mem::size_of_val(chunk)) / HUGE_PAGE * HUGE_PAGE;
    if end <= aligned {
        return;
    }
    // The advice is only that: a failure (huge pages disabled, an old kernel) changes nothing.
    // SAFETY: `[aligned, end)` lies inside `chunk`, memory this process owns (exclusively
    // borrowed); MADV_HUGEPAGE changes how the range is backed, never what it holds.
    let _ = unsafe {
        libc::madvise(
            aligned as *mut libc::c_void,
            end - aligned,
            libc::MADV_HUGEPAGE,
        )
    };
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise<T>(_chunk: &mut [MaybeUninit<T>]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn advised_memory_keeps_what_is_written() {
        let mut chunk = Vec::<u8>::with_capacity(6 << 20);
        super::advise(chunk.spare_capacity_mut());
        chunk.resize(6 << 20, 7);
        assert!(chunk.iter().all(|&b| b == 7));
    }
}
