//! Where flat terms' buffers come from: a bump arena per thread.
//!
//! A driver that outputs to an owner that does not receive yet leaves one buffer per message
//! queued. Allocating each from malloc costs an allocation, a free, a header per message and,
//! as the backlog grows, page faults on fresh memory one 4 KiB page at a time. BEAM links a
//! driver's heap fragment to the mailbox; ddll writes each message's records at the end of
//! the building thread's current *chunk* and hands out a reference-counted slice of it
//! ([`Bytes`]): taking one is a bump of the chunk's end and one reference count increment.
//!
//! A chunk is freed once every message in it has been dropped; while its thread still
//! writes into it, a chunk whose messages are all gone is reused from its start (its pages
//! are already there). A thread whose chunk is still held by queued messages when it fills
//! up takes a new one twice as large as the last (a backlog), up to [`MAX_CHUNK`]; a chunk large enough
//! for a huge page is handed to the hook set with [`on_new_chunks`] (the runtime asks the
//! kernel to back it with huge pages: one fault per 2 MiB instead of 512).
//!
//! The cost of sharing: a message kept indefinitely keeps its whole chunk (at most
//! [`MAX_CHUNK`]) alive, as a [`Bytes`] slice keeps its buffer. Buffers larger than
//! [`OWN_ALLOCATION`] get an allocation of their own.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

/// A thread's first chunk.
pub const FIRST_CHUNK: usize = 16 << 10;

/// The largest chunk a backlog grows to.
pub const MAX_CHUNK: usize = 4 << 20;

/// Buffers above this size are allocated on their own, not in a chunk.
pub const OWN_ALLOCATION: usize = FIRST_CHUNK / 2;

/// What is done with each new chunk of at least this size (see [`on_new_chunks`]).
const HOOKED_CHUNK: usize = 2 << 20;

static NEW_CHUNK_HOOK: OnceLock<fn(&mut [MaybeUninit<u8>])> = OnceLock::new();

/// Sets what is done with the memory of each new chunk of 2 MiB or more before any of it is
/// written (once per process; later calls are ignored). ddll advises the kernel to back it
/// with huge pages.
pub fn on_new_chunks(hook: fn(&mut [MaybeUninit<u8>])) {
    let _ = NEW_CHUNK_HOOK.set(hook);
}

/// A thread's arena: the chunk being written (its length is 0 between builds: every build
/// splits off what it wrote) and the size of the next new chunk.
struct Arena {
    chunk: BytesMut,
    next_size: usize,
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena {
        chunk: BytesMut::new(),
        next_size: FIRST_CHUNK,
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
        // The first chunk, or the last one is still held by its messages (a backlog): each
        // new chunk twice the size of the one before.
        let size = self.next_size.max(room);
        self.next_size = (self.next_size * 2).min(MAX_CHUNK);
        let mut chunk = BytesMut::with_capacity(size);
        if size >= HOOKED_CHUNK {
            if let Some(hook) = NEW_CHUNK_HOOK.get() {
                hook(chunk.spare_capacity_mut());
            }
        }
        self.chunk = chunk;
    }
}

/// Runs `build` on a zeroed buffer of `room` bytes and keeps as the result's buffer the
/// first `used` bytes of it, `used` being what `build` gives back (at most `room`).
#[inline(always)]
pub(crate) fn build<T, E>(
    room: usize,
    build: impl FnOnce(&mut [u8]) -> Result<(usize, T), E>,
) -> Result<(Bytes, T), E> {
    let mut build = Some(build);
    if room <= OWN_ALLOCATION {
        let in_arena = ARENA
            .try_with(|arena| {
                // Busy: a build inside a build (not done today); that one allocates alone.
                let mut arena = arena.try_borrow_mut().ok()?;
                let build = build.take()?;
                arena.reserve(room);
                let chunk = &mut arena.chunk;
                chunk.resize(room, 0);
                Some(match build(&mut chunk[..]) {
                    Ok((used, value)) => {
                        chunk.truncate(used);
                        Ok((chunk.split().freeze(), value))
                    }
                    Err(e) => {
                        chunk.clear();
                        Err(e)
                    }
                })
            })
            .ok()
            .flatten();
        if let Some(done) = in_arena {
            return done;
        }
    }
    let build = build.take().expect("not run yet");
    // Exactly `room` bytes, kept whole (room not written stays): one allocation.
    let mut buf = vec![0; room];
    let (_used, value) = build(&mut buf)?;
    Ok((Bytes::from(buf), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(room: usize, used: usize, byte: u8) -> Bytes {
        build(room, |buf: &mut [u8]| {
            assert!(buf.iter().all(|&b| b == 0), "a zeroed buffer");
            buf[..used].fill(byte);
            Ok::<_, ()>((used, ()))
        })
        .expect("built")
        .0
    }

    #[test]
    fn buffers_hold_what_was_written_and_stay_apart() {
        let cases = [(16, 10, 1u8), (100, 100, 2), (OWN_ALLOCATION + 1, 5, 3), (40, 0, 4)];
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
        let failed = build(64, |buf: &mut [u8]| {
            buf.fill(9);
            Err::<(usize, ()), _>("full")
        });
        assert_eq!(failed.err(), Some("full"));
        assert_eq!(&fill(64, 64, 1)[..], &[1; 64][..]);
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
