//! A hierarchical timing wheel with 1 ms ticks.
//!
//! Layout: [`LEVELS`] levels of 64 slots; a slot at level `L` covers `64^L`
//! milliseconds. An entry lives at the level of the highest 6-bit digit in
//! which its deadline differs from the wheel's current time, so every entry at
//! level `L` is earlier than every entry at level `L + 1`, and the first
//! occupied slot of the lowest occupied level holds the next expiry. Each level
//! keeps a 64-bit occupancy bitmap, so finding that slot is a handful of
//! `trailing_zeros`, never a scan of empty slots. When time reaches the start of
//! a slot above level 0, its entries cascade to lower levels; 11 levels cover
//! the whole `u64` range, so no deadline ever wraps to an early expiry.
//!
//! Entries live in a slab (a `Vec` plus a free list) and are threaded on
//! intrusive doubly linked lists, which makes insert and cancel O(1) without
//! allocating once the slab has grown to the working-set size.

use std::fmt;

/// Bits of the deadline consumed per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Number of levels: 11 * 6 = 66 bits, enough for any `u64` deadline.
const LEVELS: usize = 11;
/// List index of the "already due" list (deadline at or before the wheel's time).
const DUE_LIST: usize = LEVELS * SLOTS;
/// Number of intrusive lists: every slot plus the due list.
const LIST_COUNT: usize = DUE_LIST + 1;
/// Null link.
const NIL: u32 = u32::MAX;

/// Handle to a timer inserted in a [`TimerWheel`].
///
/// Keys are generation-checked: once the timer fired or was cancelled, its key
/// is stale and every operation on it is a harmless no-op, even if the slab
/// slot was reused by a newer timer (up to 2^32 reuses of the same slot).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

impl TimerKey {
    /// Packs the key in a `u64`, e.g. to store it in a C-visible field.
    pub const fn to_bits(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Rebuilds a key packed by [`TimerKey::to_bits`].
    pub const fn from_bits(bits: u64) -> Self {
        TimerKey {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// One slab slot; `value` is `None` while the slot is on the free list.
struct Entry<T> {
    value: Option<T>,
    deadline: u64,
    prev: u32,
    /// Next entry in the same list, or next free slot while free.
    next: u32,
    generation: u32,
    /// Index of the list holding this entry (a slot or [`DUE_LIST`]).
    list: u16,
}

#[derive(Clone, Copy)]
struct ListEnds {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: ListEnds = ListEnds {
    head: NIL,
    tail: NIL,
};

/// A hierarchical timing wheel holding values of type `T`, with 1 ms ticks.
///
/// Time is an arbitrary `u64` millisecond counter chosen by the caller; the
/// wheel only moves forward through [`TimerWheel::advance`].
///
/// ```
/// use drv_timer::TimerWheel;
///
/// let mut wheel = TimerWheel::new(1_000);
/// let late = wheel.insert(1_250, "late");
/// wheel.insert(1_010, "soon");
/// assert_eq!(wheel.next_deadline(), Some(1_010));
/// assert_eq!(wheel.time_left(late, 1_000), Some(250));
///
/// let mut fired = Vec::new();
/// wheel.advance(1_100, |_key, value| fired.push(value));
/// assert_eq!(fired, ["soon"]);
/// assert_eq!(wheel.cancel(late), Some("late"));
/// assert!(wheel.is_empty());
/// ```
pub struct TimerWheel<T> {
    /// Current time: every entry in a slot has a deadline after it.
    elapsed: u64,
    entries: Vec<Entry<T>>,
    free_head: u32,
    len: usize,
    lists: Box<[ListEnds; LIST_COUNT]>,
    occupied: [u64; LEVELS],
    /// Reused buffer for ordering the due list (no allocation per advance).
    due_scratch: Vec<u32>,
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.elapsed)
            .field("len", &self.len)
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

/// Level holding a deadline that is after `elapsed`.
#[inline]
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let masked = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

impl<T> TimerWheel<T> {
    /// Creates an empty wheel whose current time is `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self::with_capacity(now_ms, 0)
    }

    /// Creates an empty wheel with room for `capacity` timers before the slab grows.
    pub fn with_capacity(now_ms: u64, capacity: usize) -> Self {
        TimerWheel {
            elapsed: now_ms,
            entries: Vec::with_capacity(capacity),
            free_head: NIL,
            len: 0,
            lists: Box::new([EMPTY_LIST; LIST_COUNT]),
            occupied: [0; LEVELS],
            due_scratch: Vec::new(),
        }
    }

    /// The wheel's current time: the latest `now_ms` given to [`TimerWheel::advance`].
    pub fn now(&self) -> u64 {
        self.elapsed
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a timer firing once time reaches `deadline_ms`.
    ///
    /// A deadline at or before [`TimerWheel::now`] fires on the next call to
    /// [`TimerWheel::advance`], whatever time it is given.
    pub fn insert(&mut self, deadline_ms: u64, value: T) -> TimerKey {
        let index = self.alloc(deadline_ms, value);
        self.link(index, self.list_for(deadline_ms));
        self.len += 1;
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Removes a pending timer and returns its value; `None` if the key is stale
    /// (the timer already fired or was cancelled).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let index = self.live_index(key)?;
        self.unlink(index);
        Some(self.free(index))
    }

    /// Moves a pending timer to a new deadline, keeping its key. It then orders
    /// after timers already inserted for the same deadline, as if re-inserted.
    /// Returns `false` (and does nothing) for a stale key.
    pub fn reschedule(&mut self, key: TimerKey, deadline_ms: u64) -> bool {
        let Some(index) = self.live_index(key) else {
            return false;
        };
        self.unlink(index);
        self.entries[index as usize].deadline = deadline_ms;
        self.link(index, self.list_for(deadline_ms));
        true
    }

    /// Deadline of a pending timer; `None` for a stale key.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.live_index(key)
            .map(|index| self.entries[index as usize].deadline)
    }

    /// Milliseconds from `now_ms` until a pending timer's deadline (0 if the
    /// deadline has passed); `None` for a stale key.
    pub fn time_left(&self, key: TimerKey, now_ms: u64) -> Option<u64> {
        self.deadline(key)
            .map(|deadline| deadline.saturating_sub(now_ms))
    }

    /// Whether `key` names a pending timer.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.live_index(key).is_some()
    }

    /// The earliest deadline among pending timers (exact; costs a walk of one
    /// slot's list when that slot is above level 0).
    pub fn next_deadline(&self) -> Option<u64> {
        let due_head = self.lists[DUE_LIST].head;
        if due_head != NIL {
            return self.min_deadline_in(due_head);
        }
        let (level, slot, start) = self.next_expiration()?;
        if level == 0 {
            // A level-0 slot spans one millisecond: its start is the deadline.
            return Some(start);
        }
        self.min_deadline_in(self.lists[level * SLOTS + slot].head)
    }

    /// A cheap lower bound for waking up: the earliest `now_ms` at which
    /// [`TimerWheel::advance`] will fire or cascade something (the wheel's
    /// current time if some timer is already due). Sleeping until then never
    /// misses a deadline; `None` when the wheel is empty.
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.lists[DUE_LIST].head != NIL {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, start)| start)
    }

    /// Moves time forward to `now_ms` (never backward) and hands every expired
    /// timer to `fire`, in deadline order, ties in insertion order. Returns how
    /// many fired. Expired timers are removed before `fire` sees them, so their
    /// keys are already stale.
    pub fn advance(&mut self, now_ms: u64, mut fire: impl FnMut(TimerKey, T)) -> usize {
        let mut fired = self.fire_due(&mut fire);
        while let Some((level, slot, start)) = self.next_expiration() {
            if start > now_ms {
                break;
            }
            debug_assert!(start >= self.elapsed, "slot start behind the wheel");
            self.elapsed = start;
            let list = level * SLOTS + slot;
            // Pop one entry at a time so the wheel stays consistent even if `fire` panics.
            loop {
                let index = self.lists[list].head;
                if index == NIL {
                    break;
                }
                self.unlink(index);
                let deadline = self.entries[index as usize].deadline;
                if deadline <= self.elapsed {
                    fired += 1;
                    self.fire_entry(index, &mut fire);
                } else {
                    // Cascade: deadline is within this slot's span, so a lower level.
                    self.link(index, self.list_for(deadline));
                }
            }
        }
        if now_ms > self.elapsed {
            self.elapsed = now_ms;
        }
        fired
    }

    /// Removes every pending timer without firing it, keeping the slab's capacity.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.free_head = NIL;
        self.len = 0;
        self.lists.fill(EMPTY_LIST);
        self.occupied = [0; LEVELS];
    }

    /// Fires the due list in (deadline, insertion) order.
    fn fire_due(&mut self, fire: &mut impl FnMut(TimerKey, T)) -> usize {
        if self.lists[DUE_LIST].head == NIL {
            return 0;
        }
        let mut order = std::mem::take(&mut self.due_scratch);
        order.clear();
        let mut cursor = self.lists[DUE_LIST].head;
        while cursor != NIL {
            order.push(cursor);
            cursor = self.entries[cursor as usize].next;
        }
        // Stable sort: equal deadlines keep list (= insertion) order.
        order.sort_by_key(|&index| self.entries[index as usize].deadline);
        for &index in &order {
            self.unlink(index);
            self.fire_entry(index, fire);
        }
        let fired = order.len();
        self.due_scratch = order;
        fired
    }

    fn fire_entry(&mut self, index: u32, fire: &mut impl FnMut(TimerKey, T)) {
        let key = TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        };
        let value = self.free(index);
        fire(key, value);
    }

    /// The first occupied slot of the lowest occupied level, with its start time.
    #[inline]
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        let slot = self.occupied[level].trailing_zeros() as usize;
        let shift = SLOT_BITS * level as u32;
        let block_bits = shift + SLOT_BITS;
        // Start of the current block of this level, i.e. time with the level's digit and below cleared.
        let block_start = if block_bits >= 64 {
            0
        } else {
            self.elapsed & !((1u64 << block_bits) - 1)
        };
        Some((level, slot, block_start + ((slot as u64) << shift)))
    }

    fn min_deadline_in(&self, mut cursor: u32) -> Option<u64> {
        let mut min = None;
        while cursor != NIL {
            let entry = &self.entries[cursor as usize];
            min = Some(min.map_or(entry.deadline, |m: u64| m.min(entry.deadline)));
            cursor = entry.next;
        }
        min
    }

    #[inline]
    fn list_for(&self, deadline: u64) -> usize {
        if deadline <= self.elapsed {
            return DUE_LIST;
        }
        let level = level_for(self.elapsed, deadline);
        let slot = (deadline >> (SLOT_BITS * level as u32)) as usize & (SLOTS - 1);
        level * SLOTS + slot
    }

    #[inline]
    fn live_index(&self, key: TimerKey) -> Option<u32> {
        let entry = self.entries.get(key.index as usize)?;
        (entry.generation == key.generation && entry.value.is_some()).then_some(key.index)
    }

    #[inline]
    fn alloc(&mut self, deadline: u64, value: T) -> u32 {
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            self.free_head = entry.next;
            entry.value = Some(value);
            entry.deadline = deadline;
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&index| index != NIL)
                .expect("more than 2^32 - 1 timers pending at once");
            self.entries.push(Entry {
                value: Some(value),
                deadline,
                prev: NIL,
                next: NIL,
                generation: 0,
                list: 0,
            });
            index
        }
    }

    /// Returns an unlinked entry's value and puts its slot on the free list.
    #[inline]
    fn free(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        let value = entry.value.take().expect("freeing a live entry");
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
        value
    }

    #[inline]
    fn link(&mut self, index: u32, list: usize) {
        let tail = self.lists[list].tail;
        {
            let entry = &mut self.entries[index as usize];
            entry.prev = tail;
            entry.next = NIL;
            entry.list = list as u16;
        }
        if tail == NIL {
            self.lists[list].head = index;
            if list != DUE_LIST {
                self.occupied[list / SLOTS] |= 1 << (list % SLOTS);
            }
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[list].tail = index;
    }

    #[inline]
    fn unlink(&mut self, index: u32) {
        let (prev, next, list) = {
            let entry = &self.entries[index as usize];
            (entry.prev, entry.next, entry.list as usize)
        };
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL && list != DUE_LIST {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_for_picks_highest_differing_digit() {
        fn check(elapsed: u64, deadline: u64, expected: usize) {
            assert_eq!(
                level_for(elapsed, deadline),
                expected,
                "elapsed {elapsed} deadline {deadline}"
            );
        }
        check(0, 1, 0);
        check(0, 63, 0);
        check(0, 64, 1);
        check(63, 64, 1);
        check(64, 127, 0);
        check(0, 4095, 1);
        check(0, 4096, 2);
        check(0, 1 << 59, 9);
        check(0, 1 << 60, 10);
        check(0, u64::MAX, 10);
        check(u64::MAX - 1, u64::MAX, 0);
    }

    #[test]
    fn key_bits_round_trip() {
        let key = TimerKey {
            index: 7,
            generation: 0xdead_beef,
        };
        assert_eq!(TimerKey::from_bits(key.to_bits()), key);
    }

    #[test]
    fn stale_key_after_slot_reuse() {
        let mut wheel = TimerWheel::new(0);
        let old = wheel.insert(10, 1);
        assert_eq!(wheel.cancel(old), Some(1));
        let new = wheel.insert(20, 2);
        assert_eq!(new.index, old.index, "slot reused");
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(wheel.deadline(old), None);
        assert!(!wheel.reschedule(old, 5));
        assert_eq!(wheel.deadline(new), Some(20));
    }

    #[test]
    fn top_level_deadline_fires_only_at_its_time() {
        let mut wheel = TimerWheel::new(5);
        let key = wheel.insert(u64::MAX, ());
        let mut fired = 0;
        wheel.advance(u64::MAX - 1, |_, ()| fired += 1);
        assert_eq!(fired, 0);
        assert_eq!(wheel.next_deadline(), Some(u64::MAX));
        assert_eq!(wheel.time_left(key, wheel.now()), Some(1));
        wheel.advance(u64::MAX, |_, ()| fired += 1);
        assert_eq!(fired, 1);
        assert!(wheel.is_empty());
    }
}
