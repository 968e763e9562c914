//! The queue's entry slots: an `iov` array and a `binv` array with the same number of slots,
//! stored inline until they spill to one heap allocation.
//!
//! Two `SmallVec`s would each check on every access whether they are inline; here one check
//! gives both arrays (the hot path of every queue call reaches both).

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

use crate::{ErlDrvBinary, SysIOVec};

/// Slots stored inline before the arrays spill to the heap.
pub(crate) const INLINE: usize = 8;

const EMPTY_IOV: SysIOVec = SysIOVec {
    iov_base: ptr::null_mut(),
    iov_len: 0,
};

/// `cap` slots of `iov` and `binv`. Slots hold plain values (no ownership): the queue says which
/// are live.
pub(crate) struct Slots {
    /// Number of slots: `INLINE` while inline, else the heap arrays' length.
    cap: usize,
    /// The heap arrays, `None` while inline: one allocation of `cap` iov elements followed by
    /// `cap` binv elements (the second pointer).
    heap: Option<(NonNull<SysIOVec>, NonNull<*mut ErlDrvBinary>)>,
    inline_iov: [SysIOVec; INLINE],
    inline_binv: [*mut ErlDrvBinary; INLINE],
}

/// The layout of a heap allocation of `cap` slots and the offset of its binv array.
fn heap_layout(cap: usize) -> (Layout, usize) {
    let iov = Layout::array::<SysIOVec>(cap).expect("slot count fits in memory");
    let binv = Layout::array::<*mut ErlDrvBinary>(cap).expect("slot count fits in memory");
    iov.extend(binv).expect("slot count fits in memory")
}

impl Slots {
    /// `INLINE` empty slots, without allocating.
    pub(crate) const fn new() -> Slots {
        Slots {
            cap: INLINE,
            heap: None,
            inline_iov: [EMPTY_IOV; INLINE],
            inline_binv: [ptr::null_mut(); INLINE],
        }
    }

    /// Number of slots.
    #[inline(always)]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Both arrays, `cap` slots each.
    #[inline(always)]
    pub(crate) fn arrays(&self) -> (&[SysIOVec], &[*mut ErlDrvBinary]) {
        match self.heap {
            // SAFETY: the allocation holds `cap` initialised iov elements, then `cap` binv
            // elements at the layout's offset; `&self` keeps it alive and unchanged.
            Some((iov, binv)) => unsafe {
                (
                    std::slice::from_raw_parts(iov.as_ptr(), self.cap),
                    std::slice::from_raw_parts(binv.as_ptr(), self.cap),
                )
            },
            None => (&self.inline_iov, &self.inline_binv),
        }
    }

    /// Both arrays, `cap` slots each, writable.
    #[inline(always)]
    pub(crate) fn arrays_mut(&mut self) -> (&mut [SysIOVec], &mut [*mut ErlDrvBinary]) {
        match self.heap {
            // SAFETY: as in `arrays`; the two arrays do not overlap, and `&mut self` makes
            // these the only views.
            Some((iov, binv)) => unsafe {
                (
                    std::slice::from_raw_parts_mut(iov.as_ptr(), self.cap),
                    std::slice::from_raw_parts_mut(binv.as_ptr(), self.cap),
                )
            },
            // Slices of `self.cap` (INLINE while inline) elements, as above: both lengths are
            // then the one loaded value, so one bounds check covers both arrays.
            // SAFETY: while inline `cap` is INLINE, the arrays' length.
            None => unsafe {
                debug_assert_eq!(self.cap, INLINE);
                (
                    std::slice::from_raw_parts_mut(self.inline_iov.as_mut_ptr(), self.cap),
                    std::slice::from_raw_parts_mut(self.inline_binv.as_mut_ptr(), self.cap),
                )
            },
        }
    }

    /// Grows to `cap` slots (more than now), keeping the contents of the existing ones.
    #[cold]
    pub(crate) fn grow(&mut self, cap: usize) {
        debug_assert!(cap > self.cap);
        let (layout, binv_offset) = heap_layout(cap);
        // SAFETY: `layout` has a non-zero size (`cap` > INLINE > 0).
        let Some(iov) = NonNull::new(unsafe { alloc::alloc(layout) }.cast::<SysIOVec>()) else {
            alloc::handle_alloc_error(layout);
        };
        // SAFETY: the binv array starts `binv_offset` bytes into the allocation.
        let binv = unsafe {
            iov.cast::<u8>()
                .add(binv_offset)
                .cast::<*mut ErlDrvBinary>()
        };
        // SAFETY: the new allocation has room for `cap` elements of each array at these
        // offsets; it is disjoint from the old arrays, which hold `self.cap` elements each.
        unsafe {
            let new_iov = std::slice::from_raw_parts_mut(iov.as_ptr(), cap);
            let new_binv = std::slice::from_raw_parts_mut(binv.as_ptr(), cap);
            let (old_iov, old_binv) = self.arrays();
            let old = old_iov.len();
            new_iov[..old].copy_from_slice(old_iov);
            new_iov[old..].fill(EMPTY_IOV);
            new_binv[..old].copy_from_slice(old_binv);
            new_binv[old..].fill(ptr::null_mut());
        }
        self.free_heap();
        self.heap = Some((iov, binv));
        self.cap = cap;
    }

    /// Frees the heap arrays, if any (the slots become inline again).
    fn free_heap(&mut self) {
        if let Some((iov, _)) = self.heap.take() {
            // SAFETY: allocated in `grow` (starting at the iov array) with the layout for
            // `self.cap` slots.
            unsafe { alloc::dealloc(iov.as_ptr().cast(), heap_layout(self.cap).0) };
            self.cap = INLINE;
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        self.free_heap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_keeps_the_slots() {
        let mut slots = Slots::new();
        assert_eq!(slots.cap(), INLINE);
        let marker = |i: usize| i as *mut ErlDrvBinary;
        for cap in [INLINE * 2, INLINE * 8] {
            let old = slots.cap();
            {
                let (iov, binv) = slots.arrays_mut();
                for i in 0..old {
                    iov[i].iov_len = i;
                    binv[i] = marker(i + 1);
                }
            }
            slots.grow(cap);
            let (iov, binv) = slots.arrays();
            assert_eq!((iov.len(), binv.len()), (cap, cap));
            assert!((0..old).all(|i| iov[i].iov_len == i && binv[i] == marker(i + 1)));
            assert!((old..cap).all(|i| iov[i].iov_len == 0 && binv[i].is_null()));
        }
    }
}
