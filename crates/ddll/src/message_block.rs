//! [`MessageBlock`]: a fixed number of message slots, filled at the back and taken at the
//! front once each, for a mailbox's backlog (see `process::MessageQueue`).
//!
//! Its own allocation rather than a `VecDeque`'s so that a large block starts on a huge page
//! boundary: all of it is then backed by huge pages where the kernel has them (one page fault
//! per 2 MiB of slots instead of 512; an allocation of the usual alignment starts a page past
//! such a boundary, and the 4 KiB pages up to the next one were measured as the larger part
//! of the page faults left in an output backlog, issue 16).

use std::alloc::{self, Layout};
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::huge_pages::HUGE_PAGE;
use crate::process::Message;

/// Bytes of emptied blocks kept in [`POOL`].
const POOLED_BYTES: usize = 16 << 20;

/// Blocks that mailboxes no longer use, emptied, up to [`POOLED_BYTES`]: a backlog that comes
/// and goes, in one process or from one to the next, takes slots already faulted in instead
/// of faulting new ones (as BEAM's allocators keep freed carriers).
static POOL: parking_lot::Mutex<Vec<MessageBlock>> = parking_lot::Mutex::new(Vec::new());

/// Slots for messages: `[front, back)` hold messages, those before were taken, those after are
/// free. Taking the last one starts the block again from its first slot.
pub(crate) struct MessageBlock {
    slots: NonNull<MaybeUninit<Message>>,
    capacity: usize,
    front: usize,
    back: usize,
}

// SAFETY: a block owns its messages as a `Vec<Message>` would; `Message` is `Send`.
unsafe impl Send for MessageBlock {}
// SAFETY: `&MessageBlock` only hands out `&Message` (`Message` is `Sync`).
unsafe impl Sync for MessageBlock {}

impl std::fmt::Debug for MessageBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBlock")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl MessageBlock {
    /// An empty block of `capacity` (at least 1) slots; on a huge page boundary, with the
    /// kernel advised to back it with huge pages, when it spans at least one.
    fn new(capacity: usize) -> MessageBlock {
        let capacity = capacity.max(1);
        let layout = Self::layout(capacity);
        // SAFETY: the layout's size is not zero (`Message` is not zero-sized, capacity ≥ 1).
        let memory = unsafe { alloc::alloc(layout) };
        let Some(slots) = NonNull::new(memory.cast::<MaybeUninit<Message>>()) else {
            alloc::handle_alloc_error(layout)
        };
        let mut block = MessageBlock {
            slots,
            capacity,
            front: 0,
            back: 0,
        };
        if Self::is_large(capacity) {
            crate::huge_pages::advise(block.memory());
        }
        block
    }

    /// An empty block of at least `capacity` slots: the smallest such pooled one when there
    /// is one, else a new one.
    pub(crate) fn take(capacity: usize) -> MessageBlock {
        let mut pool = POOL.lock();
        let fitting = pool
            .iter()
            .enumerate()
            .filter(|(_, block)| block.capacity >= capacity)
            .min_by_key(|(_, block)| block.capacity)
            .map(|(at, _)| at);
        match fitting {
            Some(at) => pool.swap_remove(at),
            None => {
                drop(pool);
                MessageBlock::new(capacity)
            }
        }
    }

    /// Drops the block's messages and keeps it in the pool when there is room; else frees it.
    pub(crate) fn give_back(mut self) {
        while self.pop_front().is_some() {}
        let mut pool = POOL.lock();
        let pooled: usize = pool.iter().map(|block| block.size()).sum();
        if pooled + self.size() <= POOLED_BYTES {
            pool.push(self);
        }
    }

    /// Whether a block of `capacity` slots is whole huge pages.
    fn is_large(capacity: usize) -> bool {
        Self::layout(capacity).align() == HUGE_PAGE
    }

    /// Bytes of the block's allocation.
    fn size(&self) -> usize {
        Self::layout(self.capacity).size()
    }

    /// The allocation of a block of `capacity` slots: whole huge pages from a huge page
    /// boundary once it spans one.
    fn layout(capacity: usize) -> Layout {
        let slots = Layout::array::<Message>(capacity).expect("a block fits the address space");
        if slots.size() < HUGE_PAGE {
            return slots;
        }
        Layout::from_size_align(slots.size().next_multiple_of(HUGE_PAGE), HUGE_PAGE)
            .expect("a block fits the address space")
    }

    /// The block's whole allocation, as bytes not written yet (for the huge page advice).
    fn memory(&mut self) -> &mut [MaybeUninit<u8>] {
        let size = self.size();
        // SAFETY: `slots` starts an allocation of `size` bytes that this block owns, borrowed
        // mutably here; `MaybeUninit` claims nothing about their contents.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_ptr().cast(), size) }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.back - self.front
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.back == self.capacity
    }

    /// Appends `message`; the block is not full.
    #[inline]
    pub(crate) fn push_back(&mut self, message: Message) {
        assert!(!self.is_full(), "a full block takes no message");
        // SAFETY: `back < capacity`: the slot lies in the allocation and holds no message
        // (slots from `back` on are free).
        unsafe {
            self.slots
                .as_ptr()
                .add(self.back)
                .write(MaybeUninit::new(message))
        };
        self.back += 1;
    }

    /// The oldest message.
    #[inline]
    pub(crate) fn front(&self) -> Option<&Message> {
        if self.front == self.back {
            return None;
        }
        // SAFETY: `front < back`: the slot holds a message, borrowed with `self`.
        Some(unsafe { (*self.slots.as_ptr().add(self.front)).assume_init_ref() })
    }

    /// Takes the oldest message.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        if self.front == self.back {
            return None;
        }
        // SAFETY: `front < back`: the slot holds a message; moving `front` past it makes the
        // slot free, so the message is read out once.
        let message = unsafe { self.slots.as_ptr().add(self.front).read().assume_init() };
        self.front += 1;
        if self.front == self.back {
            (self.front, self.back) = (0, 0);
        }
        Some(message)
    }
}

impl MessageBlock {
    /// Moves up to `max` of the oldest messages to the back of `to`, in order (one bulk copy).
    pub(crate) fn move_front_to(&mut self, to: &mut VecDeque<Message>, max: usize) {
        let n = self.len().min(max);
        // Reserved first: nothing below can fail once messages are being read out.
        to.reserve(n);
        // SAFETY: slots `[front, front + n)` hold messages (`n <= len`); each is read once
        // here and `front` moves past them right after, so none is read or dropped again.
        let held = unsafe {
            std::slice::from_raw_parts(self.slots.as_ptr().add(self.front).cast::<Message>(), n)
        };
        // SAFETY: as above: each message is moved out once.
        to.extend(
            held.iter()
                .map(|message| unsafe { std::ptr::read(message) }),
        );
        self.front += n;
        if self.front == self.back {
            (self.front, self.back) = (0, 0);
        }
    }
}

impl Drop for MessageBlock {
    fn drop(&mut self) {
        while self.pop_front().is_some() {}
        // SAFETY: allocated in `new` with this layout; every message was dropped above.
        unsafe { alloc::dealloc(self.slots.as_ptr().cast(), Self::layout(self.capacity)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drv_term::Term;

    #[test]
    fn messages_come_out_in_order_and_the_block_starts_again_when_emptied() {
        let huge = HUGE_PAGE / std::mem::size_of::<Message>() + 1;
        for capacity in [1, 3, huge] {
            let mut block = MessageBlock::new(capacity);
            for round in 0..2 {
                for i in 0..capacity {
                    assert!(!block.is_full());
                    block.push_back(Message::from(Term::Int(i as i64)));
                }
                assert!(block.is_full());
                assert_eq!(block.len(), capacity);
                for i in 0..capacity {
                    assert_eq!(block.front().and_then(|m| m.view().int()), Some(i as i64));
                    let message = block.pop_front().map(Message::into_term);
                    assert_eq!(message, Some(Term::Int(i as i64)), "round {round}");
                }
                assert!(block.front().is_none() && block.pop_front().is_none());
                assert!(!block.is_full(), "emptied, the block starts again");
            }
            // Dropped with messages in it: they are dropped too (memcheck sees no leak).
            block.push_back(Message::from(Term::List(vec![Term::Int(1)])));
        }
    }

    #[test]
    fn moving_the_front_keeps_the_order_and_the_rest() {
        let mut block = MessageBlock::new(10);
        for i in 0..7 {
            block.push_back(Message::from(Term::Int(i)));
        }
        let mut to = VecDeque::from([Message::from(Term::Int(-1))]);
        // (at most, messages left in the block after the move)
        for (max, left) in [(3, 4), (0, 4), (10, 0), (5, 0)] {
            block.move_front_to(&mut to, max);
            assert_eq!(block.len(), left, "after moving up to {max}");
        }
        let taken: Vec<i64> = to.iter().map(|m| m.view().int().expect("an int")).collect();
        assert_eq!(taken, (-1..7).collect::<Vec<_>>());
        assert!(!block.is_full(), "emptied, the block starts again");
    }

    #[test]
    fn large_blocks_come_back_empty_from_the_pool() {
        let large = 2 * HUGE_PAGE / std::mem::size_of::<Message>();
        let mut block = MessageBlock::take(large);
        let at = block.slots;
        block.push_back(Message::from(Term::Int(1)));
        block.give_back();
        // Another test may take it first: then this one is new, and empty all the same.
        let again = MessageBlock::take(large);
        assert!(again.capacity >= large && again.len() == 0);
        if again.slots == at {
            assert!(again.front().is_none(), "its message was dropped");
        }
        // The smallest fitting block is taken.
        MessageBlock::take(3).give_back();
        let small = MessageBlock::take(2);
        assert!(small.capacity < large, "not a large block for two slots");
    }
}
