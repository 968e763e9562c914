//! The per-port driver queue: an ordered list of byte slices of driver binaries.
//!
//! Storage is two parallel arrays, `iov` (what `driver_peekq`/`writev` want) and `binv` (the
//! binary behind each slice, what `driver_peekqv` exposes), kept contiguous with a movable head
//! index so both ends can grow without a ring wrap.
//!
//! Reference counting is the runtime's: every entry owns one reference to its binary, so
//! `driver_binary_get_refc` shows a driver the counts BEAM shows (one per queued slice), and
//! slices of a driver's binaries are never merged (`driver_peekq`'s `vlen` is BEAM's too).
//! `deq` drops the references of consecutive entries of one binary with one atomic operation.
//!
//! Copied data (`enq`) goes into a tail buffer: a binary owned by the queue that later copies
//! append to; a copy that continues the last entry's bytes extends that entry (so consecutive
//! `driver_enq` calls give fewer entries than BEAM's one per call, and take no reference). The
//! queue never writes bytes that a reader has been shown: once the buffer has been handed out
//! (`peekqv`, `peek_bytes`) no more is appended to it; it is rewound for reuse only when the
//! queue's own reference is the last one.

use std::ffi::{c_char, c_int};
use std::ptr;

use crate::binary::{self, BinaryRef};
use crate::slots::Slots;
use crate::{ErlDrvBinary, ErlIOVec, SysIOVec};
/// Smallest tail buffer allocated.
const TAIL_MIN: usize = 1024;
/// Largest tail buffer allocated; copies above `TAIL_MAX / 4` get a binary of their own.
const TAIL_MAX: usize = 64 * 1024;

/// Why a queue operation was refused (the C functions return -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// No memory for a copy of `size` bytes (`driver_enq`, `driver_pushq`, ... return -1).
    #[error("no memory for {size} bytes of queue data")]
    NoMemory {
        /// Bytes that could not be allocated.
        size: usize,
    },
    /// `deq` of more bytes than the queue holds.
    #[error("cannot dequeue {requested} bytes from a queue of {size}")]
    NotEnoughData {
        /// Bytes asked for.
        requested: usize,
        /// Bytes in the queue.
        size: usize,
    },
    /// `offset + len` lies outside the binary.
    #[error("range {offset}+{len} is outside a binary of {size} bytes")]
    OutOfRange {
        /// Start of the range.
        offset: usize,
        /// Length of the range.
        len: usize,
        /// Size of the binary.
        size: usize,
    },
    /// The `ErlIOVec` is malformed (negative `vsize`, null `iov`) or `skip` exceeds its bytes.
    #[error("invalid I/O vector or skip beyond its end")]
    BadIoVec,
}

/// A port's driver queue (`driver_enq`, `driver_deq`, `driver_peekq`, ...).
///
/// The queue does no locking: the caller guarantees exclusive access, which `&mut self`
/// expresses. At the C boundary that guarantee is the driver's contract (it runs in the port's
/// callback context or holds the port data lock), so an ABI layer can keep the queue in an
/// `UnsafeCell` and hand out `&mut` under that contract.
///
/// ```
/// use drv_queue::{BinaryRef, PortQueue};
///
/// let mut q = PortQueue::new();
/// q.enq(b"world");
/// q.push(b"hello ");
/// let bin = BinaryRef::from_slice(b"..!").unwrap();
/// q.enq_bin(&bin, 2, 1).unwrap(); // no copy: the queue references `bin`
/// assert_eq!(q.size(), 12);
/// assert_eq!(q.to_vec(), b"hello world!");
/// assert_eq!(q.deq(6), Ok(6)); // returns the bytes left
/// assert_eq!(q.peekq()[0].iov_len, 5);
/// ```
pub struct PortQueue {
    /// Entry slots, `iov` and `binv`: `binv[i]` is the binary holding `iov[i]`'s bytes. Live
    /// entries are `head..end`; the slots outside are spare room for both ends.
    slots: Slots,
    head: usize,
    end: usize,
    /// Total bytes in the live entries.
    size: usize,
    /// Buffer that copied data is appended to; the queue holds one reference of its own.
    tail: Option<BinaryRef>,
    /// Cached data pointer and capacity of `tail` (null and 0 without one), for the fast path.
    tail_data: *mut u8,
    tail_cap: usize,
    /// Next free byte in `tail`.
    tail_pos: usize,
    /// `tail` has been shown to someone who may read any of its bytes: never append to it again.
    tail_exposed: bool,
}

// SAFETY: the raw pointers point into binaries the queue holds references on (the counts are
// atomic) or into the slots' own heap arrays, which the queue owns: it may move to another
// thread.
unsafe impl Send for PortQueue {}
// SAFETY: `&PortQueue` only reads the arrays and the binaries' bytes, which nothing mutates
// without `&mut PortQueue`.
unsafe impl Sync for PortQueue {}

impl Default for PortQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl PortQueue {
    /// An empty queue. Allocates nothing.
    pub fn new() -> PortQueue {
        PortQueue {
            slots: Slots::new(),
            head: 0,
            end: 0,
            size: 0,
            tail: None,
            tail_data: ptr::null_mut(),
            tail_cap: 0,
            tail_pos: 0,
            tail_exposed: false,
        }
    }

    /// Total bytes queued (`driver_sizeq`).
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the queue holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Number of entries (`vlen` of `driver_peekq`).
    #[inline]
    pub fn vlen(&self) -> usize {
        self.end - self.head
    }

    /// Appends a copy of `data`. Empty data is ignored. Out of memory aborts, as for `Vec`:
    /// [`try_enq`](Self::try_enq) says so instead.
    #[inline]
    pub fn enq(&mut self, data: &[u8]) {
        self.try_enq(data).unwrap_or_else(abort_no_memory);
    }

    /// Appends a copy of `data` (`driver_enq`). Empty data is ignored. Out of memory is
    /// [`QueueError::NoMemory`], the queue unchanged (the runtime's `driver_enq` returns -1).
    #[inline]
    pub fn try_enq(&mut self, data: &[u8]) -> Result<(), QueueError> {
        let len = data.len();
        // Fast path: room in a tail buffer nobody else has seen, behind queued data.
        if len <= self.tail_cap - self.tail_pos && !self.tail_exposed && self.size != 0 && len != 0
        {
            self.copy_to_tail(data);
            Ok(())
        } else {
            self.enq_slow(data)
        }
    }

    #[inline(never)]
    fn enq_slow(&mut self, data: &[u8]) -> Result<(), QueueError> {
        let len = data.len();
        if len == 0 {
            return Ok(());
        }
        if len > TAIL_MAX / 4 {
            let bin = BinaryRef::from_slice(data).ok_or(QueueError::NoMemory { size: len })?;
            let base = bin.data_ptr();
            self.push_back_entry(base, len, bin.into_raw(), true);
            return Ok(());
        }
        self.make_tail_room(len)?;
        self.copy_to_tail(data);
        Ok(())
    }

    /// Copies `data` to the tail buffer at `tail_pos` and queues it, extending the last entry
    /// when that holds the bytes just before.
    #[inline]
    fn copy_to_tail(&mut self, data: &[u8]) {
        let len = data.len();
        debug_assert!(len <= self.tail_cap - self.tail_pos && !self.tail_exposed && len > 0);
        // No reader has seen bytes past `tail_pos` (`tail_exposed` is false), so none can alias.
        // SAFETY: `tail_pos + len <= tail_cap`: in the tail binary's allocation, unaliased.
        let dst = unsafe {
            let dst = self.tail_data.add(self.tail_pos);
            ptr::copy_nonoverlapping(data.as_ptr(), dst, len);
            dst
        };
        self.tail_pos += len;
        let tail = self
            .tail
            .as_ref()
            .map_or(ptr::null_mut(), BinaryRef::as_ptr);
        let (end, (iov, binv)) = (self.end, self.slots.arrays_mut());
        if end > self.head && binv[end - 1] == tail {
            let last = &mut iov[end - 1];
            if last.iov_base.cast::<u8>().wrapping_add(last.iov_len) == dst {
                // The previous copy: its entry already holds a reference on the tail.
                last.iov_len += len;
                self.size += len;
                return;
            }
        }
        self.push_back_entry(dst, len, tail, false);
    }

    /// Prepends a copy of `data`. Empty data is ignored. Out of memory aborts, as for `Vec`:
    /// [`try_push`](Self::try_push) says so instead.
    pub fn push(&mut self, data: &[u8]) {
        self.try_push(data).unwrap_or_else(abort_no_memory);
    }

    /// Prepends a copy of `data` (`driver_pushq`). Empty data is ignored. Out of memory is
    /// [`QueueError::NoMemory`], the queue unchanged (the runtime's `driver_pushq` returns -1).
    pub fn try_push(&mut self, data: &[u8]) -> Result<(), QueueError> {
        if data.is_empty() {
            return Ok(());
        }
        let bin = BinaryRef::from_slice(data).ok_or(QueueError::NoMemory { size: data.len() })?;
        let base = bin.data_ptr();
        self.push_front_entry(base, data.len(), bin.into_raw(), true);
        Ok(())
    }

    /// Appends `len` bytes of `bin` from `offset` without copying (`driver_enq_bin`).
    pub fn enq_bin(
        &mut self,
        bin: &BinaryRef,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: `bin` is a live binary of this crate and we hold a reference on it.
        unsafe { self.enq_bin_raw(bin.as_ptr(), offset, len) }
    }

    /// Prepends `len` bytes of `bin` from `offset` without copying (`driver_pushq_bin`).
    pub fn push_bin(
        &mut self,
        bin: &BinaryRef,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: `bin` is a live binary of this crate and we hold a reference on it.
        unsafe { self.push_bin_raw(bin.as_ptr(), offset, len) }
    }

    /// [`enq_bin`](Self::enq_bin) that hands the reference `bin` over to the queue, so no
    /// reference count changes here (the fastest way to queue a binary the caller is done with).
    /// On error `bin` is dropped.
    #[inline]
    pub fn enq_bin_owned(
        &mut self,
        bin: BinaryRef,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: `bin` is a live binary of this crate and we hold a reference on it.
        let base = unsafe { checked_slice(bin.as_ptr(), offset, len) }?;
        if len != 0 {
            self.push_back_entry(base, len, bin.into_raw(), true);
        }
        Ok(())
    }

    /// [`push_bin`](Self::push_bin) that hands the reference `bin` over to the queue.
    /// On error `bin` is dropped.
    pub fn push_bin_owned(
        &mut self,
        bin: BinaryRef,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: `bin` is a live binary of this crate and we hold a reference on it.
        let base = unsafe { checked_slice(bin.as_ptr(), offset, len) }?;
        if len != 0 {
            self.push_front_entry(base, len, bin.into_raw(), true);
        }
        Ok(())
    }

    /// [`enq_bin`](Self::enq_bin) for a C pointer; the queue takes its own reference.
    ///
    /// # Safety
    /// `bin` must be a live binary allocated by this crate.
    #[inline]
    pub unsafe fn enq_bin_raw(
        &mut self,
        bin: *mut ErlDrvBinary,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: forwarded caller contract.
        let base = unsafe { checked_slice(bin, offset, len) }?;
        if len != 0 {
            self.push_back_entry(base, len, bin, false);
        }
        Ok(())
    }

    /// [`push_bin`](Self::push_bin) for a C pointer; the queue takes its own reference.
    ///
    /// # Safety
    /// `bin` must be a live binary allocated by this crate.
    pub unsafe fn push_bin_raw(
        &mut self,
        bin: *mut ErlDrvBinary,
        offset: usize,
        len: usize,
    ) -> Result<(), QueueError> {
        // SAFETY: forwarded caller contract.
        let base = unsafe { checked_slice(bin, offset, len) }?;
        if len != 0 {
            self.push_front_entry(base, len, bin, false);
        }
        Ok(())
    }

    /// Appends the bytes of `ev` after the first `skip` (`driver_enqv`). Entries whose `binv`
    /// slot holds a binary are referenced, not copied; entries without one (null `binv` array or
    /// slot), or whose bytes lie outside that binary, are copied.
    ///
    /// # Safety
    /// `ev.iov` must point to `ev.vsize` readable elements, each describing readable bytes;
    /// `ev.binv` must be null or point to `ev.vsize` elements, each null or a live binary
    /// allocated by this crate.
    pub unsafe fn enqv(&mut self, ev: &ErlIOVec, skip: usize) -> Result<(), QueueError> {
        // SAFETY: forwarded caller contract.
        let (iov, binv) = unsafe { io_vec_parts(ev) }?;
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        if skip > total {
            return Err(QueueError::BadIoVec);
        }
        let mut skip = skip;
        for (i, v) in iov.iter().enumerate() {
            if skip >= v.iov_len {
                skip -= v.iov_len;
                continue;
            }
            let base = v.iov_base.cast::<u8>().wrapping_add(skip);
            let len = v.iov_len - skip;
            skip = 0;
            match binv.map_or(ptr::null_mut(), |b| b[i]) {
                // SAFETY: caller contract: a live binary of this crate.
                bin if !bin.is_null() && unsafe { slice_in_binary(bin, base, len) } => {
                    self.push_back_entry(base, len, bin, false);
                }
                // SAFETY: caller contract: `iov_len` readable bytes at `iov_base`.
                _ => self.try_enq(unsafe { std::slice::from_raw_parts(base, len) })?,
            }
        }
        Ok(())
    }

    /// Prepends the bytes of `ev` after the first `skip`, keeping their order
    /// (`driver_pushqv`). Binaries are treated as in [`enqv`](Self::enqv).
    ///
    /// # Safety
    /// As for [`enqv`](Self::enqv).
    pub unsafe fn pushqv(&mut self, ev: &ErlIOVec, skip: usize) -> Result<(), QueueError> {
        // SAFETY: forwarded caller contract.
        let (iov, binv) = unsafe { io_vec_parts(ev) }?;
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        if skip > total {
            return Err(QueueError::BadIoVec);
        }
        // Find where the kept bytes start, then push the entries in reverse.
        let mut first = 0;
        let mut first_skip = skip;
        while first < iov.len() && first_skip >= iov[first].iov_len {
            first_skip -= iov[first].iov_len;
            first += 1;
        }
        for i in (first..iov.len()).rev() {
            let cut = if i == first { first_skip } else { 0 };
            let base = iov[i].iov_base.cast::<u8>().wrapping_add(cut);
            let len = iov[i].iov_len - cut;
            if len == 0 {
                continue;
            }
            match binv.map_or(ptr::null_mut(), |b| b[i]) {
                // SAFETY: caller contract: a live binary of this crate.
                bin if !bin.is_null() && unsafe { slice_in_binary(bin, base, len) } => {
                    self.push_front_entry(base, len, bin, false);
                }
                // SAFETY: caller contract: `iov_len` readable bytes at `iov_base`.
                _ => self.try_push(unsafe { std::slice::from_raw_parts(base, len) })?,
            }
        }
        Ok(())
    }

    /// Removes `n` bytes from the head (`driver_deq`); returns the bytes left.
    pub fn deq(&mut self, n: usize) -> Result<usize, QueueError> {
        if n > self.size {
            return Err(QueueError::NotEnoughData {
                requested: n,
                size: self.size,
            });
        }
        if n == self.size {
            self.release_all();
            return Ok(0);
        }
        self.size -= n;
        // Fewer than `size` bytes go, so the loop stops at a live entry that keeps some bytes.
        let (head, mut first_kept, mut n) = (self.head, self.head, n);
        let (iov, binv) = self.slots.arrays_mut();
        while n >= iov[first_kept].iov_len {
            n -= iov[first_kept].iov_len;
            first_kept += 1;
        }
        let kept = &mut iov[first_kept];
        kept.iov_base = kept.iov_base.wrapping_add(n);
        kept.iov_len -= n;
        self.head = first_kept;
        // SAFETY: the entries before `first_kept` are gone; each owned one reference.
        unsafe { release_entries(&binv[head..first_kept]) };
        Ok(self.size)
    }

    /// Empties the queue, releasing the reference of each entry.
    fn release_all(&mut self) {
        let (head, end) = (self.head, self.end);
        self.head = 0;
        self.end = 0;
        self.size = 0;
        // SAFETY: the entries are gone; each owned one reference.
        unsafe { release_entries(&self.slots.arrays().1[head..end]) };
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.release_all();
    }

    /// The queued slices, contiguous, as `writev` wants them (`driver_peekq`). Valid until the
    /// next change; C callers must not write to the array.
    #[inline]
    pub fn peekq(&self) -> &[SysIOVec] {
        &self.slots.arrays().0[self.head..self.end]
    }

    /// The binary of each entry, in order (`binv` of [`peekqv`](Self::peekqv), without handing
    /// the buffers out: reading through the pointers is for as long as the queue is unchanged).
    #[inline]
    pub fn binaries(&self) -> &[*mut ErlDrvBinary] {
        &self.slots.arrays().1[self.head..self.end]
    }

    /// Fills `ev` with the queue's own arrays (`driver_peekqv`) and returns the queued bytes.
    /// `ev.iov`/`ev.binv` stay valid until the next change and must not be written through.
    pub fn peekqv(&mut self, ev: &mut ErlIOVec) -> usize {
        // The reader may keep or reference any binary, including the tail buffer.
        self.tail_exposed |= self.tail.is_some();
        let (head, end) = (self.head, self.end);
        ev.vsize = c_int::try_from(end - head).unwrap_or(c_int::MAX);
        ev.size = self.size;
        let (iov, binv) = self.slots.arrays_mut();
        ev.iov = iov[head..end].as_mut_ptr();
        ev.binv = binv[head..end].as_mut_ptr();
        self.size
    }

    /// The queued bytes as slices, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.peekq().iter().map(|v| {
            // SAFETY: each live entry describes initialised bytes of a binary the queue holds a
            // reference on; they cannot change while `self` is borrowed.
            unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) }
        })
    }

    /// A copy of all queued bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        self.chunks().for_each(|c| out.extend_from_slice(c));
        out
    }

    /// The queued slices as zero-copy [`bytes::Bytes`], each holding a binary reference.
    pub fn peek_bytes(&mut self) -> Vec<bytes::Bytes> {
        self.tail_exposed |= self.tail.is_some();
        self.peekq()
            .iter()
            .zip(self.binaries())
            .map(|(v, &bin)| {
                // SAFETY: live entries reference live binaries of this crate held by the queue.
                let bin = unsafe { BinaryRef::from_raw_borrowed(bin) };
                let start = v.iov_base as usize - bin.data_ptr() as usize;
                bin.to_bytes(start..start + v.iov_len)
            })
            .collect()
    }

    /// Makes the tail buffer ready to take `len` more bytes at `tail_pos`.
    fn make_tail_room(&mut self, len: usize) -> Result<(), QueueError> {
        if let Some(tail) = &self.tail {
            let fits = !self.tail_exposed && self.tail_cap - self.tail_pos >= len;
            if fits && self.size != 0 {
                return Ok(());
            }
            // Only our own reference left: nobody can see any byte, so start over (this also
            // keeps a queue that is drained regularly inside the buffer's first bytes).
            if tail.refc() == 1 && self.tail_cap >= len {
                self.tail_pos = 0;
                self.tail_exposed = false;
                return Ok(());
            }
            if fits {
                return Ok(());
            }
        }
        let grown = if self.tail.is_some() {
            self.tail_cap * 2
        } else {
            TAIL_MIN
        };
        let cap = grown.max(len.next_power_of_two()).clamp(TAIL_MIN, TAIL_MAX);
        let tail = BinaryRef::alloc(cap).ok_or(QueueError::NoMemory { size: cap })?;
        self.tail_data = tail.data_ptr();
        self.tail_cap = cap;
        self.tail = Some(tail);
        self.tail_pos = 0;
        self.tail_exposed = false;
        Ok(())
    }

    /// Appends an entry. `owned`: the caller hands over one reference on `bin`; otherwise the
    /// queue takes one.
    #[inline(always)]
    fn push_back_entry(&mut self, base: *mut u8, len: usize, bin: *mut ErlDrvBinary, owned: bool) {
        debug_assert!(len > 0);
        if !owned {
            // SAFETY: `bin` is live (the caller holds a reference); the entry needs its own.
            unsafe { binary::retain(bin) };
        }
        self.size += len;
        let end = self.end;
        let (iov, binv) = self.slots.arrays_mut();
        match (iov.get_mut(end), binv.get_mut(end)) {
            (Some(v), Some(b)) => {
                *v = SysIOVec {
                    iov_base: base.cast::<c_char>(),
                    iov_len: len,
                };
                *b = bin;
                self.end = end + 1;
            }
            _ => self.push_back_after_making_room(base, len, bin),
        }
    }

    /// [`push_back_entry`](Self::push_back_entry) when no slot is free after `end`.
    #[cold]
    #[inline(never)]
    fn push_back_after_making_room(&mut self, base: *mut u8, len: usize, bin: *mut ErlDrvBinary) {
        self.make_back_room();
        let end = self.end;
        set_slot(self.slots.arrays_mut(), end, base, len, bin);
        self.end = end + 1;
    }

    /// Frees a slot after `end`: moves the entries down when at least half the slots are spare
    /// room at the front, otherwise doubles the slots.
    fn make_back_room(&mut self) {
        let (head, end) = (self.head, self.end);
        let live = end - head;
        if head > 0 && head >= live {
            let (iov, binv) = self.slots.arrays_mut();
            iov.copy_within(head..end, 0);
            binv.copy_within(head..end, 0);
            self.head = 0;
            self.end = live;
        } else {
            self.slots.grow(2 * self.slots.cap());
        }
    }

    /// Prepends an entry; `owned` as for [`push_back_entry`](Self::push_back_entry).
    fn push_front_entry(&mut self, base: *mut u8, len: usize, bin: *mut ErlDrvBinary, owned: bool) {
        debug_assert!(len > 0);
        if !owned {
            // SAFETY: `bin` is live (the caller holds a reference); the entry needs its own.
            unsafe { binary::retain(bin) };
        }
        self.size += len;
        if self.head == 0 {
            // Open spare room at the front, as much as is live, so pushes amortise.
            let room = self.vlen().max(4);
            let needed = self.end + room;
            if needed > self.slots.cap() {
                self.slots.grow(needed.max(2 * self.slots.cap()));
            }
            let (iov, binv) = self.slots.arrays_mut();
            iov.copy_within(0..self.end, room);
            binv.copy_within(0..self.end, room);
            self.head = room;
            self.end += room;
        }
        self.head -= 1;
        set_slot(self.slots.arrays_mut(), self.head, base, len, bin);
    }
}

/// Stores the entry `base`/`len` of `bin` in slot `i` of the arrays.
#[inline(always)]
fn set_slot(
    (iov, binv): (&mut [SysIOVec], &mut [*mut ErlDrvBinary]),
    i: usize,
    base: *mut u8,
    len: usize,
    bin: *mut ErlDrvBinary,
) {
    iov[i] = SysIOVec {
        iov_base: base.cast::<c_char>(),
        iov_len: len,
    };
    binv[i] = bin;
}

/// Drops the reference each of `binv`'s entries owned, one atomic operation per run of
/// consecutive entries of one binary.
///
/// # Safety
/// Each element is a live binary of this crate on which the caller owns one reference per
/// occurrence, which this call consumes.
#[inline]
unsafe fn release_entries(binv: &[*mut ErlDrvBinary]) {
    let mut i = 0;
    while let Some(&bin) = binv.get(i) {
        let mut run = 1;
        while binv.get(i + run) == Some(&bin) {
            run += 1;
        }
        // SAFETY: caller contract: these `run` entries owned one reference each.
        unsafe { binary::release_many(bin, run as isize) };
        i += run;
    }
}

impl Drop for PortQueue {
    fn drop(&mut self) {
        self.release_all();
    }
}

impl std::fmt::Debug for PortQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortQueue")
            .field("size", &self.size)
            .field("vlen", &self.vlen())
            .field("tail_pos", &self.tail_pos)
            .field("tail_exposed", &self.tail_exposed)
            .finish_non_exhaustive()
    }
}

/// The data pointer at `offset` if `offset..offset + len` lies inside `bin`.
///
/// # Safety
/// `bin` must be a live binary allocated by this crate.
#[inline]
unsafe fn checked_slice(
    bin: *mut ErlDrvBinary,
    offset: usize,
    len: usize,
) -> Result<*mut u8, QueueError> {
    // SAFETY: caller contract.
    let size = unsafe { binary::capacity(bin) };
    match offset.checked_add(len) {
        Some(end) if end <= size => {}
        _ => return Err(out_of_range(offset, len, size)),
    }
    // SAFETY: caller contract; `offset <= size`, so the result stays inside the allocation.
    Ok(unsafe { binary::data_ptr(bin).add(offset) })
}

/// Out of memory for the infallible `enq`/`push`: aborts, as `Vec` does (never unwinds into C).
fn abort_no_memory(error: QueueError) {
    let size = match error {
        QueueError::NoMemory { size } => size,
        _ => 1,
    };
    let layout =
        std::alloc::Layout::array::<u8>(size).unwrap_or_else(|_| std::alloc::Layout::new::<u8>());
    std::alloc::handle_alloc_error(layout)
}

#[cold]
fn out_of_range(offset: usize, len: usize, size: usize) -> QueueError {
    QueueError::OutOfRange { offset, len, size }
}

/// Whether `base..base + len` lies inside the data of `bin`.
///
/// # Safety
/// `bin` must be a live binary allocated by this crate.
unsafe fn slice_in_binary(bin: *mut ErlDrvBinary, base: *mut u8, len: usize) -> bool {
    // SAFETY: caller contract.
    let (start, size) = unsafe { (binary::data_ptr(bin) as usize, binary::capacity(bin)) };
    let base = base as usize;
    base >= start && base - start <= size && len <= size - (base - start)
}

/// The two arrays of an `ErlIOVec`: its entries, and their binaries when `binv` is not NULL.
pub type IoVecParts<'a> = (&'a [SysIOVec], Option<&'a [*mut ErlDrvBinary]>);

/// The arrays of `ev` as slices: the one reader of a driver's `ErlIOVec` (the queue's `enqv`
/// and `pushqv`, and the C ABI's `driver_outputv` and `driver_vec_to_buf`). With `vsize` 0,
/// `iov` is not read (it may be NULL), as BEAM reads no entry of a vector with nothing in it;
/// a NULL `iov` with entries, or a negative `vsize`, is malformed (BEAM would crash reading
/// it; here the caller returns its documented failure). A NULL `binv` means no binaries.
///
/// # Safety
/// As for [`PortQueue::enqv`]: a non-NULL `iov` (and `binv`) has `vsize` readable elements,
/// valid for `'a`.
pub unsafe fn io_vec_parts(ev: &ErlIOVec) -> Result<IoVecParts<'_>, QueueError> {
    let n = usize::try_from(ev.vsize).map_err(|_| QueueError::BadIoVec)?;
    if n == 0 {
        return Ok((&[], None));
    }
    if ev.iov.is_null() {
        return Err(QueueError::BadIoVec);
    }
    // SAFETY: caller contract: `iov` has `vsize` elements.
    let iov = unsafe { std::slice::from_raw_parts(ev.iov, n) };
    let binv = if ev.binv.is_null() {
        None
    } else {
        // SAFETY: caller contract: a non-null `binv` has `vsize` elements.
        Some(unsafe { std::slice::from_raw_parts(ev.binv.cast_const(), n) })
    };
    Ok((iov, binv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// One queue operation in a test table; `*Bin` ops use the table's shared binary.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Enq(&'static [u8]),
        Push(&'static [u8]),
        EnqBin(usize, usize),
        PushBin(usize, usize),
        /// Like `EnqBin`/`PushBin`, handing over a clone of the binary.
        EnqOwned(usize, usize),
        PushOwned(usize, usize),
        Deq(usize),
    }

    /// Runs `ops` against a queue referencing the binary `b"0123456789"`, then checks the
    /// contents, the entry count and the binary's count (1 for the test + 1 per entry, as in
    /// the runtime).
    fn check(ops: &[Op], contents: &[u8], vlen: usize, bin_refc: isize) {
        let bin = BinaryRef::from_slice(b"0123456789").expect("alloc");
        let mut q = PortQueue::new();
        for &op in ops {
            match op {
                Op::Enq(d) => q.enq(d),
                Op::Push(d) => q.push(d),
                Op::EnqBin(off, len) => q.enq_bin(&bin, off, len).expect("in range"),
                Op::PushBin(off, len) => q.push_bin(&bin, off, len).expect("in range"),
                Op::EnqOwned(off, len) => q.enq_bin_owned(bin.clone(), off, len).expect("in range"),
                Op::PushOwned(off, len) => {
                    q.push_bin_owned(bin.clone(), off, len).expect("in range")
                }
                Op::Deq(n) => {
                    q.deq(n).expect("enough data");
                }
            }
        }
        assert_eq!(q.to_vec(), contents, "contents after {ops:?}");
        assert_eq!(q.size(), contents.len(), "size after {ops:?}");
        assert_eq!(q.vlen(), vlen, "entries after {ops:?}");
        assert_eq!(bin.refc(), bin_refc, "binary count after {ops:?}");
        assert!(q.peekq().iter().all(|v| v.iov_len > 0), "no empty entries");
        drop(q);
        assert_eq!(
            bin.refc(),
            1,
            "queue drop releases the binary after {ops:?}"
        );
    }

    #[test]
    fn operation_table() {
        use Op::*;
        check(&[], b"", 0, 1);
        check(
            &[Enq(b""), Push(b""), EnqBin(3, 0), PushBin(10, 0)],
            b"",
            0,
            1,
        );
        // Copies merge in the tail buffer; pushes get their own binary.
        check(&[Enq(b"ab"), Enq(b"cd")], b"abcd", 1, 1);
        check(&[Enq(b"cd"), Push(b"ab"), Push(b"_")], b"_abcd", 3, 1);
        // Slices of one binary stay separate entries, adjacent or not, each with a reference.
        check(&[EnqBin(0, 3), EnqBin(3, 2)], b"01234", 2, 3);
        check(&[EnqBin(0, 3), EnqBin(5, 2), EnqBin(0, 1)], b"012560", 3, 4);
        check(&[PushBin(5, 5), PushBin(2, 3)], b"23456789", 2, 3);
        check(&[PushBin(5, 5), PushBin(0, 3)], b"01256789", 2, 3);
        // Handing over a reference or taking one: one per entry, whatever the mix.
        check(
            &[EnqOwned(0, 3), EnqOwned(3, 2), EnqBin(8, 1)],
            b"012348",
            3,
            4,
        );
        check(&[EnqOwned(0, 1), Enq(b"x"), EnqOwned(0, 1)], b"0x0", 3, 3);
        check(
            &[PushOwned(4, 1), PushOwned(3, 1), PushBin(0, 1)],
            b"034",
            3,
            4,
        );
        check(
            &[EnqOwned(0, 0), PushOwned(10, 0), EnqOwned(2, 1), Deq(1)],
            b"",
            0,
            1,
        );
        // Partial dequeues release the entries that went, one reference each.
        check(
            &[EnqBin(0, 2), EnqBin(2, 2), EnqBin(4, 2), Deq(3)],
            b"345",
            2,
            3,
        );
        check(&[EnqBin(0, 2), Enq(b"x"), EnqBin(8, 2)], b"01x89", 3, 3);
        check(&[EnqBin(0, 2), Push(b"x"), PushBin(9, 1)], b"9x01", 3, 3);
        // Partial and whole dequeues.
        check(&[EnqBin(0, 4), Deq(1)], b"123", 1, 2);
        check(&[EnqBin(0, 2), EnqBin(4, 2), Deq(2)], b"45", 1, 2);
        check(
            &[EnqBin(0, 2), Enq(b"x"), EnqBin(4, 2), Deq(3)],
            b"45",
            1,
            2,
        );
        check(&[EnqBin(0, 2), Enq(b"xy"), Deq(3)], b"y", 1, 1);
        check(&[Enq(b"abc"), EnqBin(0, 10), Deq(13)], b"", 0, 1);
        check(
            &[Push(b"c"), Push(b"b"), Push(b"a"), Enq(b"d"), Deq(1)],
            b"bcd",
            3,
            1,
        );
        // Room opened at the front is reused by later pushes and by appends; the appended
        // copies extend the copy already at the end.
        check(
            &[
                Enq(b"e"),
                Push(b"d"),
                Push(b"c"),
                PushBin(1, 1),
                PushBin(0, 1),
                Enq(b"f"),
                Enq(b"g"),
            ],
            b"01cdefg",
            5,
            3,
        );
    }

    #[test]
    fn refusals() {
        let bin = BinaryRef::from_slice(b"abc").expect("alloc");
        let mut q = PortQueue::new();
        q.enq(b"xy");
        assert_eq!(
            q.deq(3),
            Err(QueueError::NotEnoughData {
                requested: 3,
                size: 2
            })
        );
        for (off, len) in [(0, 4), (4, 0), (2, 2), (1, usize::MAX)] {
            let err = QueueError::OutOfRange {
                offset: off,
                len,
                size: 3,
            };
            assert_eq!(q.enq_bin(&bin, off, len), Err(err));
            assert_eq!(q.push_bin(&bin, off, len), Err(err));
            assert_eq!(q.enq_bin_owned(bin.clone(), off, len), Err(err));
            assert_eq!(q.push_bin_owned(bin.clone(), off, len), Err(err));
        }
        assert_eq!(q.to_vec(), b"xy", "refused operations change nothing");
        assert_eq!(bin.refc(), 1);
        assert_eq!(q.deq(2), Ok(0));
        assert_eq!(q.deq(0), Ok(0));
    }

    fn iovec(parts: &mut [SysIOVec], binv: Option<&mut [*mut ErlDrvBinary]>) -> ErlIOVec {
        ErlIOVec {
            vsize: parts.len() as c_int,
            size: parts.iter().map(|v| v.iov_len).sum(),
            iov: parts.as_mut_ptr(),
            binv: binv.map_or(ptr::null_mut(), |b| b.as_mut_ptr()),
        }
    }

    fn slice_iov(data: *mut u8, len: usize) -> SysIOVec {
        SysIOVec {
            iov_base: data.cast(),
            iov_len: len,
        }
    }

    #[test]
    fn enqv_references_binaries_and_copies_the_rest() {
        let bin = BinaryRef::from_slice(b"BINARY").expect("alloc");
        let mut plain = *b"plain";
        let mut parts = [
            slice_iov(plain.as_mut_ptr(), 5),
            slice_iov(bin.data_ptr(), 6),
            slice_iov(plain.as_mut_ptr(), 2),
        ];
        let mut binv = [ptr::null_mut(), bin.as_ptr(), ptr::null_mut()];
        let ev = iovec(&mut parts, Some(&mut binv));
        // (skip, expected contents, binary referenced)
        let cases: [(usize, &[u8], bool); 5] = [
            (0, b"plainBINARYpl", true),
            (3, b"inBINARYpl", true),
            (5, b"BINARYpl", true),
            (9, b"RYpl", true),
            (12, b"l", false),
        ];
        for (skip, expected, referenced) in cases {
            let mut q = PortQueue::new();
            // SAFETY: `ev` describes live local arrays and a live binary.
            unsafe { q.enqv(&ev, skip) }.expect("valid");
            assert_eq!(q.to_vec(), expected, "enqv skip {skip}");
            assert_eq!(bin.refc(), 1 + isize::from(referenced));
            drop(q);
            let mut q = PortQueue::new();
            q.enq(b"<");
            // SAFETY: as above.
            unsafe { q.pushqv(&ev, skip) }.expect("valid");
            let mut pushed = expected.to_vec();
            pushed.push(b'<');
            assert_eq!(q.to_vec(), pushed, "pushqv skip {skip}");
            assert_eq!(bin.refc(), 1 + isize::from(referenced));
        }
        assert_eq!(bin.refc(), 1);
        // Plain data is copied: changing the source afterwards does not show.
        let mut q = PortQueue::new();
        // SAFETY: as above.
        unsafe { q.enqv(&ev, 0) }.expect("valid");
        plain[0] = b'P';
        assert_eq!(
            (&plain, q.to_vec().as_slice()),
            (b"Plain", &b"plainBINARYpl"[..])
        );
    }

    #[test]
    fn enqv_copies_slices_outside_their_binary_and_rejects_bad_vectors() {
        let bin = BinaryRef::from_slice(b"bin").expect("alloc");
        let mut other = *b"other";
        let mut parts = [slice_iov(other.as_mut_ptr(), 5)];
        let mut binv = [bin.as_ptr()];
        let ev = iovec(&mut parts, Some(&mut binv));
        let mut q = PortQueue::new();
        // SAFETY: `ev` describes live local arrays and a live binary.
        unsafe { q.enqv(&ev, 0) }.expect("valid");
        assert_eq!((q.to_vec().as_slice(), bin.refc()), (&b"other"[..], 1));

        let mut bad = iovec(&mut parts, None);
        // SAFETY: as above; the queue rejects before reading beyond `ev`.
        unsafe {
            assert_eq!(q.enqv(&bad, 6), Err(QueueError::BadIoVec));
            assert_eq!(q.pushqv(&bad, 6), Err(QueueError::BadIoVec));
            bad.vsize = -1;
            assert_eq!(q.enqv(&bad, 0), Err(QueueError::BadIoVec));
            bad.vsize = 1;
            bad.iov = ptr::null_mut();
            assert_eq!(q.enqv(&bad, 0), Err(QueueError::BadIoVec));
            bad.vsize = 0;
            assert_eq!(q.enqv(&bad, 0), Ok(()));
        }
        assert_eq!(q.to_vec(), b"other");
    }

    #[test]
    fn peekqv_exposes_the_queue_arrays() {
        let bin = BinaryRef::from_slice(b"0123").expect("alloc");
        let mut q = PortQueue::new();
        q.enq(b"ab");
        q.enq_bin(&bin, 1, 2).expect("in range");
        let mut ev = ErlIOVec {
            vsize: -1,
            size: 0,
            iov: ptr::null_mut(),
            binv: ptr::null_mut(),
        };
        assert_eq!(q.peekqv(&mut ev), 4);
        assert_eq!((ev.vsize, ev.size), (2, 4));
        assert_eq!(ev.iov.cast_const(), q.peekq().as_ptr());
        // SAFETY: `ev` points into the queue, unchanged since `peekqv`.
        let binv = unsafe { std::slice::from_raw_parts(ev.binv, 2) };
        assert_eq!(binv[1], bin.as_ptr());
        // SAFETY: binv[0] is the queue's live tail buffer.
        let first = unsafe { BinaryRef::from_raw_borrowed(binv[0]) };
        assert!(first.as_bytes().starts_with(b"ab"));
        // The exposed tail buffer is never written again.
        let snapshot = first.as_bytes().to_vec();
        q.enq(b"cd");
        assert_eq!(first.as_bytes(), snapshot);
        assert_eq!(q.to_vec(), b"ab12cd");
        q.clear();
        assert_eq!(q.peekqv(&mut ev), 0);
        assert_eq!(ev.vsize, 0);
        drop(q);
        assert_eq!((first.refc(), bin.refc()), (1, 1));
    }

    #[test]
    fn tail_buffer_is_reused_once_drained() {
        let mut q = PortQueue::new();
        q.enq(b"first");
        let base = q.peekq()[0].iov_base;
        q.deq(5).expect("enough");
        q.enq(b"again");
        assert_eq!(q.peekq()[0].iov_base, base, "rewound, not reallocated");
        // Held by a reader: a fresh buffer is used instead.
        let held = q.peek_bytes();
        q.deq(5).expect("enough");
        q.enq(b"third");
        assert_ne!(q.peekq()[0].iov_base, base);
        assert_eq!(&held[0][..], b"again");
        assert_eq!(q.to_vec(), b"third");
    }

    #[test]
    fn large_copies_get_their_own_binary_and_buffers_fill_up() {
        let big = vec![7u8; TAIL_MAX];
        let mut q = PortQueue::new();
        q.enq(b"x");
        q.enq(&big);
        assert_eq!(q.vlen(), 2);
        let mut model = vec![b'x'];
        model.extend_from_slice(&big);
        for i in 0..200u8 {
            let piece = [i; 700];
            q.enq(&piece);
            model.extend_from_slice(&piece);
        }
        assert_eq!(q.to_vec(), model);
        assert_eq!(q.deq(q.size()), Ok(0));
    }

    #[test]
    fn peek_bytes_share_the_queue_memory() {
        let bin = BinaryRef::from_slice(b"abcdef").expect("alloc");
        let mut q = PortQueue::new();
        q.enq_bin(&bin, 2, 3).expect("in range");
        q.enq(b"!");
        let parts = q.peek_bytes();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].as_ptr(),
            bin.data_ptr().wrapping_add(2).cast_const()
        );
        assert_eq!((&parts[0][..], &parts[1][..]), (&b"cde"[..], &b"!"[..]));
        assert_eq!(bin.refc(), 3);
        drop(q);
        assert_eq!(bin.refc(), 2);
        drop(parts);
        assert_eq!(bin.refc(), 1);
    }

    /// A tiny deterministic generator, so the stress test needs no dependency under valgrind.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % bound.max(1)
        }
    }

    /// Random operations, including the raw C-style calls, against a `VecDeque` model. Meant
    /// to be run under valgrind as well as normally.
    #[test]
    fn stress_against_model() {
        let mut rng = Lcg(0x5eed);
        let pool: Vec<BinaryRef> = (0..4)
            .map(|i| BinaryRef::from_slice(&[i as u8 + b'A'; 300]).expect("alloc"))
            .collect();
        let raw = alloc_binary(50);
        let mut q = PortQueue::new();
        let mut model = VecDeque::new();
        for round in 0..20_000usize {
            let bin = &pool[rng.next(pool.len())];
            let data: Vec<u8> = (0..rng.next(100)).map(|i| (round + i) as u8).collect();
            match rng.next(9) {
                0 | 1 => {
                    q.enq(&data);
                    model.extend(&data);
                }
                2 => {
                    q.push(&data);
                    data.iter().rev().for_each(|&b| model.push_front(b));
                }
                3 | 4 => {
                    let (off, len) = (rng.next(300), rng.next(100));
                    let len = len.min(300 - off);
                    q.enq_bin(bin, off, len).expect("in range");
                    model.extend(&bin.as_bytes()[off..off + len]);
                }
                5 => {
                    let (off, len) = (rng.next(300), rng.next(100));
                    let len = len.min(300 - off);
                    q.push_bin(bin, off, len).expect("in range");
                    bin.as_bytes()[off..off + len]
                        .iter()
                        .rev()
                        .for_each(|&b| model.push_front(b));
                }
                6 => {
                    // SAFETY: `raw` is live until the end of the test; 0+50 is in range.
                    unsafe { q.enq_bin_raw(raw, 0, 50) }.expect("in range");
                    model.extend([0u8; 50]);
                }
                _ => {
                    let n = rng.next(model.len() + 1);
                    assert_eq!(q.deq(n), Ok(model.len() - n));
                    model.drain(..n);
                }
            }
            assert_eq!(q.size(), model.len());
            if round % 64 == 0 {
                assert!(q.to_vec().iter().eq(model.iter()));
                let mut ev = ErlIOVec {
                    vsize: 0,
                    size: 0,
                    iov: ptr::null_mut(),
                    binv: ptr::null_mut(),
                };
                q.peekqv(&mut ev);
                assert_eq!(ev.size, model.len());
            }
        }
        drop(q);
        assert!(pool.iter().all(|b| b.refc() == 1));
        // SAFETY: the queue is gone, so this is the only reference.
        unsafe {
            assert_eq!(binary_get_refc_for_test(raw), 1);
            crate::raw::free_binary(raw);
        }
    }

    /// # Safety
    /// `bin` must be live.
    unsafe fn binary_get_refc_for_test(bin: *mut ErlDrvBinary) -> isize {
        // SAFETY: forwarded.
        unsafe { crate::raw::binary_get_refc(bin) }
    }

    use crate::raw::alloc_binary;
}
