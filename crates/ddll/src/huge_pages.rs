//! Huge pages for the message arena's large chunks and the mailboxes' data logs (see
//! `drv_term::arena`, which starts them on a 2 MiB boundary): a backlog of driver output at
//! an owner that does not receive fills buffers of up to 4 MiB, which 4 KiB pages would fault
//! in 512 times per 2 MiB (the larger part of an output's cost measured under a
//! 200,000-message backlog); the kernel's transparent huge pages, where enabled in `madvise`
//! mode or always, take one fault per 2 MiB.
//!
//! `DDLL_HUGE_PAGES=0` turns the advice off, for a machine where a huge page fault is slow:
//! on a virtual machine whose free memory is handed back to its host (free page reporting),
//! some runs fault each huge page in again on the host (see docs/status.md, issue 16).

use std::mem::MaybeUninit;

/// The huge page size this asks for (x86-64's and aarch64's with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

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

/// Asks the kernel to back the 2 MiB-aligned part of `chunk` with huge pages (Linux's
/// transparent huge pages; elsewhere nothing).
#[cfg(target_os = "linux")]
fn advise(chunk: &mut [MaybeUninit<u8>]) {
    let start = chunk.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let end = (start + chunk.len()) / HUGE_PAGE * HUGE_PAGE;
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
    fn advised_memory_keeps_what_is_written() {
        let mut chunk = Vec::<u8>::with_capacity(6 << 20);
        super::advise(chunk.spare_capacity_mut());
        chunk.resize(6 << 20, 7);
        assert!(chunk.iter().all(|&b| b == 7));
    }
}
