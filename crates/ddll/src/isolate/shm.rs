//! The request channel's transport: a region of shared memory (a `memfd` the parent maps and
//! hands to its host as descriptor [`SHM_FD`]) holding one single-producer, single-consumer
//! byte ring per direction (requests to the host, replies to the parent). Each side of the
//! channel is a [`Channel`], a byte pipe that `frame.rs` reads and writes frames on.
//!
//! In the steady state nothing enters the kernel: a side waiting for bytes (or for room)
//! spins on the ring for the spin budget ([`super::Isolation::spin`]) and only then sleeps
//! on a futex word in the region, after setting it so the other side knows to wake it (a
//! writer that sees the word clear makes no system call). Every sleep is bounded
//! ([`SLEEP_SLICE`]): a waking side looks whether the channel was closed (either side, or the
//! parent when it learns its host died) and whether the peer's end of the socket pair that
//! came with the channel has hung up, so that no side waits forever on a dead one.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The host's descriptor of the shared region.
pub(crate) const SHM_FD: RawFd = 4;

/// Bytes each ring holds: a larger frame passes in pieces, the reader emptying the ring
/// while the writer fills it.
const CAPACITY: usize = 1 << 16;

/// The longest a waiting side sleeps before it looks again whether its peer is gone.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// How long a spin runs before it also yields its core between looks: a peer that shares
/// the core (the scheduler likes to put two threads that wake each other on one) then runs.
const YIELD_AFTER: Duration = Duration::from_micros(2);

/// Clock reads are a few tens of nanoseconds: the spin looks at the clock this seldom.
const SPINS_PER_CLOCK_READ: u32 = 64;

/// A word on a cache line of its own, so that the two sides' words do not share one.
#[repr(C, align(128))]
struct Line<T>(T);

/// One direction: bytes `tail..head` (counted from the start, modulo [`CAPACITY`] in `data`)
/// are written and not yet read.
#[repr(C)]
struct Ring {
    /// Bytes written so far; only the writer stores it.
    head: Line<AtomicU64>,
    /// Bytes read so far; only the reader stores it.
    tail: Line<AtomicU64>,
    /// 1 while the reader sleeps (or is about to) waiting for bytes.
    reader_sleeps: Line<AtomicU32>,
    /// 1 while the writer sleeps (or is about to) waiting for room.
    writer_sleeps: Line<AtomicU32>,
    data: std::cell::UnsafeCell<[u8; CAPACITY]>,
}

/// The shared region. All zeroes is its initial state.
#[repr(C)]
struct Region {
    /// Non-zero once either side closed the channel.
    closed: Line<AtomicU32>,
    /// The parent's requests.
    requests: Ring,
    /// The host's replies.
    replies: Ring,
}

/// The region mapped in this process.
struct Mapping(NonNull<Region>);

// SAFETY: the region is only accessed through atomics and through ring bytes whose ownership
// the head and tail counters hand over (one writer, one reader per ring).
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the region of `fd`, which holds at least a [`Region`].
    fn map(fd: &OwnedFd) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of a descriptor we hold; the kernel picks the address.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Region>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let region = NonNull::new(address.cast::<Region>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Mapping(region))
    }

    fn region(&self) -> &Region {
        // SAFETY: mapped for the mapping's life, page-aligned, and every field of a `Region`
        // (atomics and bytes) is valid for any bit pattern, all zeroes included.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference outlives `self`.
        unsafe { libc::munmap(self.0.as_ptr().cast(), std::mem::size_of::<Region>()) };
    }
}

/// Makes a new region: its descriptor, to hand to the host (close-on-exec: the host gets a
/// copy as [`SHM_FD`]).
pub(crate) fn create() -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe { libc::memfd_create(c"ddll-isolate".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let size = libc::off_t::try_from(std::mem::size_of::<Region>())
        .map_err(|_| io::Error::other("region too large"))?;
    // SAFETY: a descriptor we own; a new memfd reads as zeroes up to its size.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Which side of the channel: the parent writes requests and reads replies, the host the
/// other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Parent,
    Host,
}

/// One side of the channel: a byte pipe (`Read` from the peer's ring, `Write` to its own).
pub(crate) struct Channel {
    map: Arc<Mapping>,
    side: Side,
    /// This side's end of the socket pair that came with the channel: its hang-up is the
    /// peer's end (checked when a sleep ends).
    peer: UnixStream,
    /// The spin budget: the longest a wait spins.
    spin: Duration,
    /// How long the next wait spins: the budget while waits end within it, halved (down to
    /// a sixteenth) after each that did not, so that a loaded machine, where the peer is often
    /// off its core, or a peer with slow callbacks, does not pay for spins that fail.
    spin_now: std::cell::Cell<Duration>,
    /// How long one `read` waits for bytes (`None`: as long as the peer lives).
    read_timeout: Option<Duration>,
    /// The outgoing ring's `tail` as last read: room known without reading the peer's cache
    /// line (which the peer writes after each read) until this room is used up.
    known_tail: std::cell::Cell<u64>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("side", &self.side)
            .field("spin", &self.spin)
            .finish_non_exhaustive()
    }
}

/// A way to close a channel from another thread (the one side's handle stays valid however
/// the channel is held).
#[derive(Clone)]
pub(crate) struct Closer(Arc<Mapping>);

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closer")
    }
}

impl Closer {
    /// Closes the channel: both sides' waits end (a read returns the end of the stream once
    /// the ring is empty, a write fails).
    pub(crate) fn close(&self) {
        let region = self.0.region();
        region.closed.0.store(1, Ordering::SeqCst);
        for ring in [&region.requests, &region.replies] {
            for word in [&ring.reader_sleeps.0, &ring.writer_sleeps.0] {
                word.store(0, Ordering::SeqCst);
                futex_wake(word);
            }
        }
    }
}

impl Channel {
    /// `side`'s channel on the region of `fd`; `peer` is this side's end of the socket pair
    /// whose other end the peer holds.
    pub(crate) fn open(
        fd: &OwnedFd,
        side: Side,
        peer: UnixStream,
        spin: Duration,
    ) -> io::Result<Channel> {
        Ok(Channel {
            map: Arc::new(Mapping::map(fd)?),
            side,
            peer,
            spin,
            spin_now: std::cell::Cell::new(spin),
            read_timeout: None,
            known_tail: std::cell::Cell::new(0),
        })
    }

    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    pub(crate) fn closer(&self) -> Closer {
        Closer(self.map.clone())
    }

    /// The socket that came with the channel.
    pub(crate) fn peer(&self) -> &UnixStream {
        &self.peer
    }

    fn incoming(&self) -> &Ring {
        let region = self.map.region();
        match self.side {
            Side::Parent => &region.replies,
            Side::Host => &region.requests,
        }
    }

    fn outgoing(&self) -> &Ring {
        let region = self.map.region();
        match self.side {
            Side::Parent => &region.requests,
            Side::Host => &region.replies,
        }
    }

    fn closed(&self) -> bool {
        self.map.region().closed.0.load(Ordering::SeqCst) != 0
    }

    /// Whether the peer's end of the socket pair has hung up (the peer exited).
    fn peer_hung_up(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.peer.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call; a zero timeout never sleeps.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR) != 0
    }

    /// Waits until `ready` (which reads the ring with sequentially consistent loads) holds:
    /// spins (see `spin_now`), then sleeps on `word` in slices. `Err` when the channel closed
    /// (`BrokenPipe`), the peer hung up (`BrokenPipe`) or `deadline` passed (`TimedOut`).
    fn wait(
        &self,
        word: &AtomicU32,
        ready: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        if ready() {
            return Ok(());
        }
        let start = Instant::now();
        let mut spin = self.spin_now.get();
        if let Some(deadline) = deadline {
            spin = spin.min(deadline.saturating_duration_since(start));
        }
        if !spin.is_zero() {
            loop {
                for _ in 0..SPINS_PER_CLOCK_READ {
                    if ready() {
                        self.spin_now.set(self.spin);
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
                let spun = start.elapsed();
                if spun >= spin {
                    break;
                }
                // Past the usual reply's time: the peer may be waiting for this core.
                if spun >= YIELD_AFTER {
                    std::thread::yield_now();
                }
            }
        }
        self.sleep(word, ready, deadline)?;
        // A wait that a whole budget's spin would have ended is worth spinning for again.
        if start.elapsed() <= self.spin {
            self.spin_now.set(self.spin);
        } else {
            self.spin_now
                .set((self.spin_now.get() / 2).max(self.spin / 16));
        }
        Ok(())
    }

    /// [`Channel::wait`]'s sleeps.
    fn sleep(
        &self,
        word: &AtomicU32,
        ready: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        // The hang-up is looked at after a sleep, not before the first: a system call that a
        // round trip would pay whenever it sleeps, for a death the parent's close announces
        // at once anyway (the slice bounds the rest).
        let mut slept = false;
        loop {
            // Said before looking again: a peer that makes `ready` true after this look sees
            // the word set and wakes us (both sides' store-then-load are sequentially
            // consistent, so at least one sees the other's store).
            word.store(1, Ordering::SeqCst);
            if ready() {
                word.store(0, Ordering::Relaxed);
                return Ok(());
            }
            if self.closed() || slept && self.peer_hung_up() {
                word.store(0, Ordering::Relaxed);
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let mut slice = SLEEP_SLICE;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    word.store(0, Ordering::Relaxed);
                    return Err(io::ErrorKind::TimedOut.into());
                }
                slice = slice.min(left);
            }
            futex_wait(word, 1, slice);
            slept = true;
        }
    }

    /// After this side stored a counter the peer waits on: wakes the peer if it sleeps.
    fn wake(word: &AtomicU32) {
        // Orders the counter's store before the look at the word (see `wait`).
        fence(Ordering::SeqCst);
        if word.load(Ordering::Relaxed) != 0 && word.swap(0, Ordering::SeqCst) != 0 {
            futex_wake(word);
        }
    }
}

impl Channel {
    /// Copies `bytes` into the outgoing ring at byte `at` (counted from the start), wrapping
    /// at its end; publishes nothing.
    ///
    /// # Safety
    /// The ring has room for `bytes` at `at`: the reader's tail (read with a sequentially
    /// consistent load, now or before: it only grows) is at most `CAPACITY - bytes.len()`
    /// behind `at`, and only this side writes.
    unsafe fn copy_out(&self, at: u64, bytes: &[u8]) {
        let data = self.outgoing().data.get().cast::<u8>();
        let start = (at % CAPACITY as u64) as usize;
        let first = bytes.len().min(CAPACITY - start);
        // SAFETY: both pieces lie within `data` (`first` up to its end, the rest from its
        // start, at most `CAPACITY` in all) and are free (contract).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(start), first);
            // Past the ring's end (seldom): a second copy from its start.
            if first < bytes.len() {
                let rest = bytes.len() - first;
                std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), data, rest);
            }
        }
    }

    /// Room in the outgoing ring at its head `head`: known without a look at the reader's
    /// tail while it suffices for `wanted` bytes; else looked at (waiting for some room).
    fn room(&self, head: u64, wanted: usize) -> io::Result<u64> {
        // The tail only grows: room known from an older one is there (or more). Looked at
        // again only when it is short.
        let room = CAPACITY as u64 - (head - self.known_tail.get());
        if room >= wanted as u64 {
            return Ok(room);
        }
        let ring = self.outgoing();
        let room_now = || CAPACITY as u64 - (head - ring.tail.0.load(Ordering::SeqCst));
        self.wait(&ring.writer_sleeps.0, || room_now() > 0, None)?;
        self.known_tail.set(ring.tail.0.load(Ordering::SeqCst));
        Ok(CAPACITY as u64 - (head - self.known_tail.get()))
    }
}

/// The incoming ring read in place: `fill_buf` shows the bytes written and not yet read (as
/// far as the ring's end), `consume` hands them back to the writer. A frame written in one
/// piece is read in one piece: one look at the head, one store of the tail, one wake-up check.
impl BufRead for Channel {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let ring = self.incoming();
        let tail = ring.tail.0.load(Ordering::Relaxed);
        let mut head = ring.head.0.load(Ordering::Acquire);
        if head == tail {
            let deadline = self.read_timeout.map(|t| Instant::now() + t);
            let waited = self.wait(
                &ring.reader_sleeps.0,
                || ring.head.0.load(Ordering::SeqCst) != tail,
                deadline,
            );
            match waited {
                Ok(()) => {}
                // Closed: the end of the stream (what was written before is read first).
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(&[]),
                Err(e) => return Err(e),
            }
            head = ring.head.0.load(Ordering::Acquire);
        }
        let available = usize::try_from(head - tail).expect("at most CAPACITY");
        let start = (tail % CAPACITY as u64) as usize;
        let n = available.min(CAPACITY - start);
        // The writer published bytes `start..start + n` (in `data`) by its release store of
        // `head`, acquired above, and leaves them alone until `tail` passes them, which only
        // `consume` moves (taking `self` mutably, so after this borrow ends).
        // SAFETY: so they are initialized and not written while the slice lives.
        Ok(unsafe { std::slice::from_raw_parts(ring.data.get().cast::<u8>().add(start), n) })
    }

    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let ring = self.incoming();
        let tail = ring.tail.0.load(Ordering::Relaxed);
        ring.tail.0.store(tail + n as u64, Ordering::Release);
        Channel::wake(&ring.writer_sleeps.0);
    }
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    /// All of `bufs` published at once when the ring has room for them (a frame's head and
    /// its body: one store of the head, one wake-up check); else as much as there is room for.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        if self.closed() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let ring = self.outgoing();
        let head = ring.head.0.load(Ordering::Relaxed);
        let room = usize::try_from(self.room(head, total)?).expect("at most CAPACITY");
        let mut at = head;
        let mut left = room;
        for buf in bufs {
            let n = buf.len().min(left);
            // SAFETY: `n` bytes at `at` are within the room just known (`left` is what is
            // left of it), and only this side writes.
            unsafe { self.copy_out(at, &buf[..n]) };
            at += n as u64;
            left -= n;
            if left == 0 {
                break;
            }
        }
        ring.head.0.store(at, Ordering::Release);
        Channel::wake(&ring.reader_sleeps.0);
        Ok(usize::try_from(at - head).expect("at most CAPACITY"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sleeps on `word` while it holds `expected`, for at most `timeout` (or until woken).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: `word` is a valid, aligned 32-bit word in a shared mapping (no private flag:
    // the other process wakes it); the timeout is a valid relative timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &timeout as *const libc::timespec,
        );
    }
}

/// Wakes the side sleeping on `word`, if any.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned 32-bit word in a shared mapping.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sides of one region, in this process (each with its own mapping, as in two).
    fn pair(spin: Duration) -> (Channel, Channel) {
        let region = create().expect("a region");
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        let parent = Channel::open(&region, Side::Parent, ours, spin).expect("mapped");
        let host = Channel::open(&region, Side::Host, theirs, spin).expect("mapped");
        (parent, host)
    }

    #[test]
    fn frames_larger_than_the_ring_cross_in_order_both_ways() {
        use super::super::frame::{self, Frame, Request};
        /// A frame as an owned value, to compare (a frame borrows its buffer).
        fn owned(frame: Frame<'_>) -> String {
            match frame {
                Frame::Term(term) => format!("{term:?}"),
                Frame::Command { port, caller, data } => format!("{port} {caller} {data:?}"),
                Frame::Outputs { .. } => "outputs".to_owned(),
            }
        }
        for spin in [Duration::ZERO, Duration::from_micros(20)] {
            let (mut parent, mut host) = pair(spin);
            let sizes = [0, 1, 100, CAPACITY - 1, CAPACITY, 3 * CAPACITY + 7];
            // Each size as a term and as a compact command: read in one piece when the ring
            // shows the frame whole, in several when it wraps or is larger than the ring.
            let echo = std::thread::spawn(move || {
                let mut buf = Vec::new();
                for _ in 0..2 * sizes.len() {
                    match frame::read_frame(&mut host, &mut buf).expect("a request") {
                        Frame::Term(term) => frame::write(&mut host, &term),
                        Frame::Command { port, caller, data } => {
                            let request = Request::Command { port, caller, data };
                            frame::write_request(&mut host, &request)
                        }
                        Frame::Outputs { .. } => panic!("no outputs sent"),
                    }
                    .expect("the reply");
                }
            });
            let mut buf = Vec::new();
            for (i, size) in sizes.into_iter().enumerate() {
                let bytes: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
                let term = drv_term::Term::Binary(bytes::Bytes::from(bytes.clone()));
                frame::write(&mut parent, &term).expect("sent");
                let echoed = frame::read_frame(&mut parent, &mut buf).expect("echoed");
                assert_eq!(
                    owned(echoed),
                    format!("{term:?}"),
                    "size {size}, spin {spin:?}"
                );
                let command = Request::Command {
                    port: i as u64,
                    caller: 7,
                    data: &bytes,
                };
                frame::write_request(&mut parent, &command).expect("sent");
                let echoed = frame::read_frame(&mut parent, &mut buf).expect("echoed");
                let expected = format!("{i} 7 {:?}", &bytes[..]);
                assert_eq!(owned(echoed), expected, "size {size}, spin {spin:?}");
            }
            echo.join().expect("the echo thread");
        }
    }

    #[test]
    fn the_spin_shrinks_after_waits_past_the_budget_and_recovers() {
        let budget = Duration::from_millis(20);
        let (mut parent, host) = pair(budget);
        let host = std::sync::Arc::new(std::sync::Mutex::new(host));
        // Reads one byte that the host writes `after` from now; the next wait's spin then.
        let mut read_after = |after: Duration| {
            let host = host.clone();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(after);
                host.lock()
                    .expect("the host")
                    .write_all(&[1])
                    .expect("written");
            });
            parent.read_exact(&mut [0]).expect("read");
            writer.join().expect("the writer");
            parent.spin_now.get()
        };
        let late = budget * 2;
        assert_eq!(read_after(late), budget / 2);
        assert_eq!(read_after(late), budget / 4);
        assert_eq!(read_after(Duration::from_millis(2)), budget);
        for _ in 0..5 {
            read_after(late);
        }
        assert_eq!(read_after(late), budget / 16);
    }

    #[test]
    fn a_wait_ends_on_close_on_hang_up_and_at_the_timeout() {
        // Closed while a reader sleeps: the end of the stream, at once.
        let (mut parent, _host) = pair(Duration::ZERO);
        let closer = parent.closer();
        let start = Instant::now();
        let reader = std::thread::spawn(move || parent.read(&mut [0; 8]).expect("the end"));
        std::thread::sleep(Duration::from_millis(20));
        closer.close();
        assert_eq!(reader.join().expect("the reader"), 0);
        assert!(start.elapsed() < SLEEP_SLICE * 4, "{:?}", start.elapsed());

        // The peer's socket hangs up (it exited): the end of the stream, within a slice.
        let (mut parent, host) = pair(Duration::ZERO);
        drop(host);
        let start = Instant::now();
        assert_eq!(parent.read(&mut [0; 8]).expect("the end"), 0);
        assert!(start.elapsed() < SLEEP_SLICE * 4, "{:?}", start.elapsed());
        let err = parent.write(&[1]).map(|_| ());
        // Room in the ring: the write itself succeeds; a closed channel refuses it.
        assert!(err.is_ok());
        parent.closer().close();
        let err = parent.write(&[1]).expect_err("closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        // A live, silent peer: the read timeout, even within the spin budget.
        let (mut parent, _host) = pair(Duration::from_secs(10));
        parent.set_read_timeout(Some(Duration::from_millis(30)));
        let start = Instant::now();
        let err = parent.read(&mut [0; 8]).expect_err("timed out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
