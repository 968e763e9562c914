//! Where flat terms' buffers come from: a bump arena per thread.
//!
//! Used for port data messages (`driver_output*`, [`crate::FlatTerm::port_data`]); a queue
//! of them may instead be a [`crate::FlatLog`].
//!
//! A driver that outputs to an owner that does not receive yet leaves one buffer per message
//! queued. Allocating each from malloc costs an allocation, a free, a header per message and,
//! as the backlog grows, page faults on fresh memory one 4 KiB page at a time. BEAM links a
//! driver's heap fragment to the mailbox; ddll writes each message's records at the end of
//! the building thread's current *chunk* and hands out a reference-counted slice of it
//! ([`Bytes`]): taking one is a bump of the chunk's end and one reference count increment.
//!
//! A chunk whose messages are all gone is written again from its start (its pages are
//! already there): the current one, or one of the earlier ones the thread keeps (up to
//! [`RETAINED`] bytes); a chunk not kept is freed with its last message. A thread whose chunk is still held by queued messages when it fills
//! up takes a new one twice as large as the last (a backlog), up to [`MAX_CHUNK`]; a chunk large enough
//! for a huge page is handed to the hook set with [`on_new_chunks`] (the runtime asks the
//! kernel to back it with huge pages: one fault per 2 MiB instead of 512).
//!
//! [`crate::FlatLog`]s take their largest buffers here too ([`MAX_CHUNK`] bytes), and give
//! them back once nothing holds them: up to [`SPARE_BUFFERS`] are kept for the next.
//!
//! The cost of sharing: a message kept indefinitely keeps its whole chunk (at most
//! [`MAX_CHUNK`]) alive, as a [`Bytes`] slice keeps its buffer. Buffers larger than
//! [`OWN_ALLOCATION`] get an allocation of their own.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::{Mutex, OnceLock};

use bytes::{Bytes, BytesMut};

/// A thread's first chunk.
pub const FIRST_CHUNK: usize = 16 << 10;

/// The largest chunk a backlog grows to.
pub const MAX_CHUNK: usize = 4 << 20;

/// Buffers above this size are allocated on their own, not in a chunk.
pub const OWN_ALLOCATION: usize = FIRST_CHUNK / 2;

/// What is done with each new chunk of at least this size (see [`on_new_chunks`]).
pub(crate) const HOOKED_CHUNK: usize = 2 << 20;

static NEW_CHUNK_HOOK: OnceLock<fn(&mut [MaybeUninit<u8>])> = OnceLock::new();

/// Sets what is done with the memory of each new chunk of 2 MiB or more before any of it is
/// written (once per process; later calls are ignored). ddll advises the kernel to back it
/// with huge pages.
pub fn on_new_chunks(hook: fn(&mut [MaybeUninit<u8>])) {
    let _ = NEW_CHUNK_HOOK.set(hook);
}

/// Runs the hook set with [`on_new_chunks`] on new memory of at least [`HOOKED_CHUNK`] bytes
/// (an arena chunk, a [`crate::FlatLog`]'s grown buffer).
pub(crate) fn hook_new_memory(memory: &mut [MaybeUninit<u8>]) {
    if let Some(hook) = NEW_CHUNK_HOOK.get() {
        hook(memory);
    }
}

/// Bytes of earlier chunks a thread keeps, to reuse one once all its messages are gone rather
/// than allocate a new chunk.
pub const RETAINED: usize = 8 << 20;

/// A thread's arena: the chunk being written (its length is 0 between builds: every build
/// splits off what it wrote), the size of the next new chunk, and earlier chunks.
struct Arena {
    chunk: BytesMut,
    /// The chunk's size.
    size: usize,
    next_size: usize,
    /// Earlier chunks, with their sizes, kept (up to [`RETAINED`] bytes) to be written again
    /// once their messages are all gone: a backlog that comes and goes reuses memory already
    /// faulted in, as malloc's free lists would, instead of freeing it and faulting new.
    retired: Vec<(BytesMut, usize)>,
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena {
        chunk: BytesMut::new(),
        size: 0,
        next_size: FIRST_CHUNK,
        retired: Vec::new(),
    });
}

impl Arena {
    /// Makes room for `room` bytes at the chunk's end.
    #[inline]
    fn reserve(&mut self, room: usize) {
        if self.chunk.capacity() < room {
            self.refill(room);
        }
    }

    #[cold]
    #[inline(never)]
    fn refill(&mut self, room: usize) {
        // Every message of the chunk gone: start again at its beginning.
        if self.chunk.try_reclaim(room) {
            return;
        }
        // An earlier chunk whose messages are all gone, else a new one.
        let (chunk, size) = match self
            .retired
            .iter_mut()
            .position(|(c, _)| c.try_reclaim(room))
        {
            Some(i) => self.retired.swap_remove(i),
            None => self.new_chunk(room),
        };
        let old = std::mem::replace(&mut self.chunk, chunk);
        let old_size = std::mem::replace(&mut self.size, size);
        let retained: usize = self.retired.iter().map(|(_, size)| size).sum();
        if old_size > 0 && retained + old_size <= RETAINED {
            self.retired.push((old, old_size));
        }
    }

    /// A new chunk: the first, or the last ones are still held by their messages (a
    /// backlog): each new chunk twice the size of the one before.
    fn new_chunk(&mut self, room: usize) -> (BytesMut, usize) {
        let size = self.next_size.max(room);
        self.next_size = (self.next_size * 2).min(MAX_CHUNK);
        (new_buffer(size), size)
    }
}

/// Buffers of [`MAX_CHUNK`] bytes that [`crate::FlatLog`]s let go of, kept for the next
/// (at most [`SPARE_BUFFERS`]): a backlog that comes again writes memory already faulted in,
/// as BEAM's allocators keep their carriers, instead of freeing it and faulting in new.
static SPARE: Mutex<Vec<BytesMut>> = Mutex::new(Vec::new());

/// How many buffers of [`MAX_CHUNK`] bytes a process keeps once their messages are gone (32
/// MiB, resident once written: the memory a backlog of that size held).
pub const SPARE_BUFFERS: usize = 8;

/// Keeps `buffer` (emptied) for [`new_buffer`], if it is one of [`MAX_CHUNK`] bytes and fewer
/// than [`SPARE_BUFFERS`] are kept; else frees it.
pub(crate) fn recycle(mut buffer: BytesMut) {
    if buffer.capacity() != MAX_CHUNK {
        return;
    }
    buffer.clear();
    // A poisoned lock (a panic while it was held, which nothing here can cause): not kept.
    if let Ok(mut spare) = SPARE.lock() {
        if spare.len() < SPARE_BUFFERS {
            spare.push(buffer);
        }
    }
}

/// A kept buffer of [`MAX_CHUNK`] bytes, if there is one.
fn spare_buffer() -> Option<BytesMut> {
    SPARE.lock().ok()?.pop()
}

/// A new buffer of at least `size` bytes for messages. From [`HOOKED_CHUNK`] up it starts on a
/// multiple of [`HOOKED_CHUNK`] and is handed to the hook (see [`on_new_chunks`]), so that
/// advice for 2 MiB pages covers all of it but its last partial page, not only the aligned
/// middle of an allocation that malloc placed anywhere: the bytes allocated before that start
/// are never written, and unwritten memory is not backed.
pub(crate) fn new_buffer(size: usize) -> BytesMut {
    if size < HOOKED_CHUNK {
        return BytesMut::with_capacity(size);
    }
    if size == MAX_CHUNK {
        if let Some(buffer) = spare_buffer() {
            return buffer;
        }
    }
    let mut whole = BytesMut::with_capacity(size + HOOKED_CHUNK);
    let start = whole.as_ptr() as usize;
    let skip = start.next_multiple_of(HOOKED_CHUNK) - start;
    let mut buffer = whole.split_off(skip);
    // Its room is what was asked (the unused end, too, is never written).
    drop(buffer.split_off(size));
    hook_new_memory(buffer.spare_capacity_mut());
    buffer
}

/// Runs `build` on a zeroed buffer of `room` bytes, in the thread's arena or (`in_arena`
/// unset) in an allocation of its own, and keeps as the result's buffer the first `used`
/// bytes of it in the arena, all of it else; `used` is what `build` gives back (at most
/// `room`).
///
/// The chunk is taken out of the thread's arena for the build and put back after, so that
/// `build` runs inlined in the caller's frame (the spec interpreter keeps its writer in
/// registers), not inside the thread-local's accessor.
#[inline(always)]
pub(crate) fn build<T, E>(
    room: usize,
    in_arena: bool,
    build: impl FnOnce(&mut [u8]) -> Result<(usize, T), E>,
) -> Result<(Buf, T), E> {
    // One call of `build` (two would keep it out of line).
    let mut buf = match in_arena.then(|| take_chunk(room)).flatten() {
        Some((chunk, size)) => Buffer::Chunk(chunk, size),
        // Exactly `room` bytes, kept whole (room not written stays): one allocation.
        None => Buffer::Own(vec![0; room]),
    };
    let built = build(match &mut buf {
        Buffer::Chunk(chunk, _) => {
            chunk.resize(room, 0);
            &mut chunk[..]
        }
        Buffer::Own(own) => own,
    });
    match buf {
        Buffer::Chunk(mut chunk, size) => {
            let built = match built {
                Ok((used, value)) => {
                    chunk.truncate(used);
                    Ok((chunk.split().freeze(), value))
                }
                Err(e) => {
                    chunk.clear();
                    Err(e)
                }
            };
            put_chunk(chunk, size);
            built
        }
        Buffer::Own(own) => {
            built.map(|(_used, value)| (Bytes::from(own.into_boxed_slice()), value))
        }
    }
}

/// A buffer of exactly `len` bytes that `fill` appends (all of them, nothing more), in the
/// thread's arena (an allocation of its own above [`OWN_ALLOCATION`]): for a record whose size
/// is known before it is written, with no zeroing and no room to give back. `fill` runs with
/// the arena borrowed (it must not build another buffer): a copy needs no chunk taken out
/// and put back.
#[inline(always)]
pub(crate) fn build_exact(len: usize, fill: impl FnOnce(&mut BytesMut)) -> Buf {
    let mut fill = Some(fill);
    if len <= OWN_ALLOCATION {
        let built = ARENA.try_with(|arena| {
            let mut arena = arena.try_borrow_mut().ok()?;
            arena.reserve(len);
            let fill = fill.take().expect("fill runs once");
            fill(&mut arena.chunk);
            debug_assert_eq!(arena.chunk.len(), len, "fill wrote the length it was given");
            Some(arena.chunk.split().freeze())
        });
        if let Ok(Some(built)) = built {
            return built;
        }
    }
    // Too large for a chunk, or the thread's arena is gone or busy.
    let mut own = BytesMut::with_capacity(len);
    let fill = fill.take().expect("fill has not run");
    fill(&mut own);
    own.freeze()
}

/// A built buffer: a slice of an arena chunk, or an allocation of its own (a boxed slice
/// taken over without a copy). One type for both, so that a flat term is four words and a
/// message five (issue 16: the slot a queued message takes).
pub(crate) type Buf = Bytes;

/// What a build writes in.
enum Buffer {
    /// The thread's chunk (taken out of the arena, with its size).
    Chunk(BytesMut, usize),
    /// An allocation of its own.
    Own(Vec<u8>),
}

/// The thread's chunk, with room for `room` bytes, and its size; `None` for a buffer above
/// [`OWN_ALLOCATION`] or while the thread exits. (Until it is back, a build inside the build would start a chunk of its own.)
#[inline]
fn take_chunk(room: usize) -> Option<(BytesMut, usize)> {
    if room > OWN_ALLOCATION {
        return None;
    }
    ARENA
        .try_with(|arena| {
            // Busy: a build inside a build (not done today); that one allocates alone.
            let mut arena = arena.try_borrow_mut().ok()?;
            arena.reserve(room);
            Some((
                std::mem::take(&mut arena.chunk),
                std::mem::take(&mut arena.size),
            ))
        })
        .ok()
        .flatten()
}

/// Gives the chunk back after a build.
#[inline]
fn put_chunk(chunk: BytesMut, size: usize) {
    let _ = ARENA.try_with(|arena| {
        if let Ok(mut arena) = arena.try_borrow_mut() {
            arena.chunk = chunk;
            arena.size = size;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_start_on_a_huge_page() {
        // (size asked, whether it starts on a multiple of HOOKED_CHUNK)
        let cases = [
            (4 << 10, false),
            (HOOKED_CHUNK, true),
            (MAX_CHUNK, true),
            (MAX_CHUNK + 4096, true),
        ];
        for (size, aligned) in cases {
            let mut buffer = new_buffer(size);
            assert_eq!(buffer.capacity(), size);
            if aligned {
                assert_eq!(buffer.as_ptr() as usize % HOOKED_CHUNK, 0, "{size}");
            }
            // All of it is written and kept.
            buffer.resize(size, 9);
            assert!(buffer.iter().all(|&b| b == 9));
        }
    }

    fn fill(room: usize, used: usize, byte: u8) -> Buf {
        build(room, true, |buf: &mut [u8]| {
            assert!(buf.iter().all(|&b| b == 0), "a zeroed buffer");
            buf[..used].fill(byte);
            Ok::<_, ()>((used, ()))
        })
        .expect("built")
        .0
    }

    #[test]
    fn buffers_hold_what_was_written_and_stay_apart() {
        let cases = [
            (16, 10, 1u8),
            (100, 100, 2),
            (OWN_ALLOCATION + 1, 5, 3),
            (40, 0, 4),
        ];
        let built: Vec<_> = cases
            .iter()
            .map(|&(room, used, byte)| (fill(room, used, byte), room, used, byte))
            .collect();
        for (buf, room, used, byte) in built {
            let len = if room > OWN_ALLOCATION { room } else { used };
            assert_eq!(buf.len(), len);
            assert!(buf[..used].iter().all(|&b| b == byte));
        }
    }

    #[test]
    fn a_failed_build_leaves_nothing_and_the_next_one_is_clean() {
        let failed = build(64, true, |buf: &mut [u8]| {
            buf.fill(9);
            Err::<(usize, ()), _>("full")
        });
        assert_eq!(failed.err(), Some("full"));
        assert_eq!(&fill(64, 64, 1)[..], &[1; 64][..]);
    }

    #[test]
    fn exact_buffers_hold_what_was_appended_in_a_chunk_or_alone() {
        for (len, byte) in [
            (0, 1u8),
            (85, 2),
            (OWN_ALLOCATION, 3),
            (OWN_ALLOCATION + 1, 4),
        ] {
            let kept: Vec<_> = (0..3)
                .map(|_| build_exact(len, |buf| buf.extend_from_slice(&vec![byte; len])))
                .collect();
            for buf in &kept {
                assert_eq!(&buf[..], &vec![byte; len][..], "{len} bytes");
            }
        }
    }

    #[test]
    fn a_backlog_outgrows_chunks_and_loses_nothing() {
        // More than a first chunk's worth kept alive, then all dropped and written again.
        for _ in 0..2 {
            let kept: Vec<_> = (0..2000u32).map(|i| fill(100, 60, i as u8)).collect();
            for (i, buf) in kept.iter().enumerate() {
                assert_eq!(buf.len(), 60);
                assert!(buf.iter().all(|&b| b == i as u8));
            }
        }
    }
}
