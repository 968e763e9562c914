//! A copy the queue cannot allocate is an error, the queue unchanged (BEAM's `driver_enq` and
//! `driver_pushq` return -1), not an abort. The copies are made to fail for real: the source is
//! a large mapping that costs nothing until read, and the address-space limit is lowered below
//! what a copy of it needs. (Alone in this test binary: the limit is process-wide.)

use drv_queue::{PortQueue, QueueError};

/// Bytes of the source buffer: more than the lowered limit leaves room for.
const SOURCE: usize = 1 << 30;

/// The address space this process maps now, in bytes.
fn mapped_now() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("statm's first field is the size in pages");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

#[test]
fn copies_that_cannot_be_allocated_are_refused() {
    // SAFETY: an anonymous private mapping; never written, only read by the failing copies
    // (which fail before reading).
    let source = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SOURCE,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(source, libc::MAP_FAILED, "a mapping of {SOURCE} bytes");
    // SAFETY: the mapping is SOURCE readable bytes and lives until the munmap below.
    let data = unsafe { std::slice::from_raw_parts(source.cast::<u8>(), SOURCE) };

    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
    let low = libc::rlimit {
        rlim_cur: mapped_now() + (256 << 20),
        rlim_max: old.rlim_max,
    };
    // SAFETY: setrlimit reads the struct given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &low) }, 0);

    let mut q = PortQueue::new();
    q.enq(b"kept");
    let enq = q.try_enq(data);
    let push = q.try_push(data);
    let small = q.try_enq(b"!");

    // SAFETY: as above; restores the limit read before.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) }, 0);
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(source, SOURCE) };

    assert!(matches!(enq, Err(QueueError::NoMemory { .. })), "{enq:?}");
    assert!(matches!(push, Err(QueueError::NoMemory { .. })), "{push:?}");
    assert_eq!(small, Ok(()));
    assert_eq!(q.size(), 5, "the refused copies left the queue as it was");
    assert_eq!(q.vlen(), 1);
}
