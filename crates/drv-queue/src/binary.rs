//! Reference-counted driver binaries (`ErlDrvBinary`).
//!
//! Memory layout of one allocation (8-byte aligned, from the global allocator):
//!
//! ```text
//! offset 0   BinHeader { refc: AtomicIsize, capacity: usize }
//! offset 16  ErlDrvBinary { orig_size: isize, orig_bytes: [c_char; capacity] }
//! ```
//!
//! The C struct has no reference count field, so the count lives in the header just before
//! the pointer handed to C. `capacity` is the allocated data length; it is kept separately from
//! `orig_size` so freeing never trusts a field that C code can write.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::{self, NonNull};

use crate::sync::{fence, AtomicIsize, Ordering};
use crate::ErlDrvBinary;

/// The out-of-line part of a binary allocation, placed just before the `ErlDrvBinary`.
#[repr(C)]
struct BinHeader {
    refc: AtomicIsize,
    capacity: usize,
}

const HEADER_SIZE: usize = std::mem::size_of::<BinHeader>();
const ALIGN: usize = 8;
/// Offset of `orig_bytes` from the start of the allocation.
const DATA_OFFSET: usize = HEADER_SIZE + std::mem::offset_of!(ErlDrvBinary, orig_bytes);

// The data must stay 8-byte aligned, as in the runtime.
const _: () = assert!(DATA_OFFSET & 7 == 0);
const _: () = assert!(HEADER_SIZE & (ALIGN - 1) == 0);

/// The allocation layout for a binary of `capacity` data bytes, or `None` on overflow.
fn layout_for(capacity: usize) -> Option<Layout> {
    // Keep at least the one byte the C struct declares, so `sizeof(ErlDrvBinary)` is covered.
    let data = capacity.max(1);
    let total = DATA_OFFSET.checked_add(data)?;
    if total > isize::MAX as usize {
        return None;
    }
    Layout::from_size_align(total, ALIGN).ok()
}

/// The header of the binary at `bin`.
///
/// # Safety
/// `bin` must point to a live binary allocated by this module.
unsafe fn header<'a>(bin: *mut ErlDrvBinary) -> &'a BinHeader {
    // SAFETY: the caller guarantees `bin` comes from `allocate`, which places the header exactly
    // HEADER_SIZE bytes before it within the same allocation, and the allocation is live.
    unsafe { &*bin.cast::<u8>().sub(HEADER_SIZE).cast::<BinHeader>() }
}

/// Start of the data bytes of `bin`, with provenance over the whole allocation.
///
/// # Safety
/// `bin` must point to a live binary allocated by this module.
#[inline]
pub(crate) unsafe fn data_ptr(bin: *mut ErlDrvBinary) -> *mut u8 {
    // SAFETY: `orig_bytes` is a field of the live struct `bin` points at; `addr_of_mut!` makes no
    // reference, so the pointer keeps `bin`'s provenance over the whole allocation.
    unsafe { ptr::addr_of_mut!((*bin).orig_bytes).cast::<u8>() }
}

/// The allocated data length of `bin` (not `orig_size`, which C may have changed).
///
/// # Safety
/// `bin` must point to a live binary allocated by this module.
#[inline]
pub(crate) unsafe fn capacity(bin: *mut ErlDrvBinary) -> usize {
    // SAFETY: forwarded caller contract.
    unsafe { header(bin).capacity }
}

/// Allocates a binary with `capacity` uninitialised data bytes and a reference count of 1.
fn allocate(capacity: usize) -> Option<NonNull<ErlDrvBinary>> {
    let layout = layout_for(capacity)?;
    // SAFETY: `layout` has a non-zero size (DATA_OFFSET > 0).
    let base = unsafe { crate::sync::alloc(layout) };
    let base = NonNull::new(base)?;
    // SAFETY: the allocation is `layout.size()` bytes, 8-aligned, so the header fits at offset 0
    // and the binary struct (whose fields end at or before the allocation end) at HEADER_SIZE.
    unsafe {
        base.as_ptr().cast::<BinHeader>().write(BinHeader {
            refc: AtomicIsize::new(1),
            capacity,
        });
        let bin = base.as_ptr().add(HEADER_SIZE).cast::<ErlDrvBinary>();
        ptr::addr_of_mut!((*bin).orig_size).write(capacity as isize);
        Some(NonNull::new_unchecked(bin))
    }
}

/// Frees the allocation of `bin`. Kept out of line so reference drops stay small.
///
/// # Safety
/// `bin` must point to a live binary allocated by this module that nobody references any more.
#[cold]
#[inline(never)]
unsafe fn deallocate(bin: *mut ErlDrvBinary) {
    // SAFETY: caller contract; the header is live until the dealloc below.
    let cap = unsafe { capacity(bin) };
    let layout = layout_for(cap).expect("layout was valid at allocation");
    // SAFETY: the allocation started HEADER_SIZE bytes before `bin` and used this same layout.
    unsafe { crate::sync::dealloc(bin.cast::<u8>().sub(HEADER_SIZE), layout) };
}

/// Increments the count of `bin` and returns the new count.
///
/// # Safety
/// `bin` must point to a live binary allocated by this module.
#[inline]
pub(crate) unsafe fn retain(bin: *mut ErlDrvBinary) -> isize {
    // SAFETY: forwarded caller contract. Relaxed suffices: the caller already holds a reference.
    unsafe { header(bin).refc.fetch_add(1, Ordering::Relaxed) + 1 }
}

/// Drops one reference to `bin`, freeing it when that was the last one.
///
/// # Safety
/// `bin` must point to a live binary allocated by this module and the caller must own one of
/// its references, which this call consumes.
#[inline]
pub(crate) unsafe fn release(bin: *mut ErlDrvBinary) {
    // SAFETY: forwarded caller contract.
    unsafe { release_many(bin, 1) }
}

/// Drops `count` (at least 1) references to `bin` with one atomic operation, freeing it when
/// they were the last ones (the queue releases a run of entries of one binary at once).
///
/// # Safety
/// `bin` must point to a live binary allocated by this module and the caller must own `count`
/// of its references, which this call consumes.
#[inline]
pub(crate) unsafe fn release_many(bin: *mut ErlDrvBinary, count: isize) {
    debug_assert!(count >= 1);
    // SAFETY: caller contract: `bin` is live.
    let refc = unsafe { &header(bin).refc };
    // When the caller owns every reference it can free without an atomic read-modify-write:
    // nobody else can take a reference without already holding one.
    if refc.load(Ordering::Acquire) == count || refc.fetch_sub(count, Ordering::Release) == count {
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero, so these were the last references.
        unsafe { deallocate(bin) };
    }
}

/// One owned reference to a driver binary (`ErlDrvBinary`).
///
/// Cloning increments the reference count; dropping decrements it and frees the binary at zero.
/// The handle is a single pointer, and `Option<BinaryRef>` has the layout of a nullable
/// `ErlDrvBinary*`.
#[repr(transparent)]
pub struct BinaryRef(NonNull<ErlDrvBinary>);

// SAFETY: the reference count is atomic and the handle only hands out shared views of the data
// (`get_mut` requires the sole reference), so the handle may move to and be shared by threads.
unsafe impl Send for BinaryRef {}
// SAFETY: see `Send`; `&BinaryRef` offers only reads and atomic count updates.
unsafe impl Sync for BinaryRef {}

impl BinaryRef {
    /// Allocates a binary of `size` bytes (contents uninitialised in C terms; zeroed here so safe
    /// Rust can read them), like `driver_alloc_binary`. `None` when out of memory or too large.
    pub fn alloc(size: usize) -> Option<BinaryRef> {
        let bin = Self(allocate(size)?);
        // SAFETY: the fresh allocation has `size` writable data bytes.
        unsafe { ptr::write_bytes(data_ptr(bin.as_ptr()), 0, size) };
        Some(bin)
    }

    /// Allocates a binary holding a copy of `data`. `None` when out of memory.
    pub fn from_slice(data: &[u8]) -> Option<BinaryRef> {
        let bin = Self(allocate(data.len())?);
        // SAFETY: the fresh allocation has `data.len()` writable data bytes, disjoint from `data`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), data_ptr(bin.as_ptr()), data.len()) };
        Some(bin)
    }

    /// Resizes the binary keeping its data (up to the smaller size), like
    /// `driver_realloc_binary`. The binary may move. On failure (out of memory) the original
    /// reference is handed back in `Err`.
    ///
    /// The runtime reallocates in place even when others hold references, leaving them
    /// dangling. Here, when the count is above one, a resized copy is made instead and this
    /// reference moves to the copy; the other holders keep the original, unchanged.
    pub fn realloc(self, size: usize) -> Result<BinaryRef, BinaryRef> {
        let old_cap = self.capacity();
        if self.refc() != 1 {
            let Some(new) = Self::alloc(size) else {
                return Err(self);
            };
            let keep = old_cap.min(size);
            // SAFETY: both binaries are live and distinct; `keep` is within both capacities.
            unsafe { ptr::copy_nonoverlapping(self.data_ptr(), new.data_ptr(), keep) };
            return Ok(new);
        }
        let (Some(old_layout), Some(new_layout)) = (layout_for(old_cap), layout_for(size)) else {
            return Err(self);
        };
        let base = self.0.as_ptr().cast::<u8>().wrapping_sub(HEADER_SIZE);
        // SAFETY: `base` is the start of the allocation made with `old_layout`; the new size is
        // non-zero and was checked not to overflow isize.
        let new_base = unsafe { alloc::realloc(base, old_layout, new_layout.size()) };
        let Some(new_base) = NonNull::new(new_base) else {
            return Err(self);
        };
        // The old allocation is gone (or reused): forget the old handle without dropping it.
        std::mem::forget(self);
        // SAFETY: `new_base` is the live, resized allocation holding the moved header and struct.
        unsafe {
            let hdr = new_base.as_ptr().cast::<BinHeader>();
            ptr::addr_of_mut!((*hdr).capacity).write(size);
            let bin = new_base.as_ptr().add(HEADER_SIZE).cast::<ErlDrvBinary>();
            ptr::addr_of_mut!((*bin).orig_size).write(size as isize);
            if size > old_cap {
                // Keep the safe-Rust invariant that all data bytes are initialised.
                ptr::write_bytes(data_ptr(bin).add(old_cap), 0, size - old_cap);
            }
            Ok(Self(NonNull::new_unchecked(bin)))
        }
    }

    /// The current reference count.
    pub fn refc(&self) -> isize {
        // SAFETY: the handle keeps the binary alive.
        unsafe { header(self.as_ptr()) }
            .refc
            .load(Ordering::Acquire)
    }

    /// The C pointer, still owned by this handle.
    #[inline]
    pub fn as_ptr(&self) -> *mut ErlDrvBinary {
        self.0.as_ptr()
    }

    /// Pointer to the first data byte (`orig_bytes`).
    #[inline]
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the handle keeps the binary alive.
        unsafe { data_ptr(self.as_ptr()) }
    }

    /// Number of data bytes allocated (the `orig_size` set at allocation).
    #[inline]
    pub fn capacity(&self) -> usize {
        // SAFETY: the handle keeps the binary alive.
        unsafe { capacity(self.as_ptr()) }
    }

    /// Number of data bytes (`capacity`).
    #[inline]
    pub fn len(&self) -> usize {
        self.capacity()
    }

    /// Whether the binary has no data bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data bytes. Binaries are immutable once shared; C code must not write to one that
    /// others can see (the runtime's rule, too).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // Rust writes need `get_mut` (sole reference); the queue only appends unseen bytes.
        // SAFETY: `capacity` bytes from the data pointer are allocated and initialised.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.capacity()) }
    }

    /// Mutable access to the data when this is the only reference.
    pub fn get_mut(&mut self) -> Option<&mut [u8]> {
        if self.refc() != 1 {
            return None;
        }
        // SAFETY: the count is 1 and we hold it, so no other handle or queue can read the data;
        // `&mut self` excludes other borrows through this handle.
        Some(unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.capacity()) })
    }

    /// Adopts one reference to a binary from C.
    ///
    /// # Safety
    /// `bin` must be a live binary allocated by this crate (e.g. through [`BinaryRef::alloc`] or
    /// [`alloc_binary`]), and the caller hands over one reference it owns.
    #[inline]
    pub unsafe fn from_raw(bin: *mut ErlDrvBinary) -> BinaryRef {
        // SAFETY: the caller guarantees a live binary, which is never null.
        Self(unsafe { NonNull::new_unchecked(bin) })
    }

    /// Takes a new reference to a binary from C, leaving the caller's reference in place.
    ///
    /// # Safety
    /// `bin` must be a live binary allocated by this crate on which the caller holds a reference.
    #[inline]
    pub unsafe fn from_raw_borrowed(bin: *mut ErlDrvBinary) -> BinaryRef {
        // SAFETY: caller contract.
        unsafe {
            retain(bin);
            Self::from_raw(bin)
        }
    }

    /// Gives this reference to C without dropping it.
    #[inline]
    pub fn into_raw(self) -> *mut ErlDrvBinary {
        let bin = self.as_ptr();
        std::mem::forget(self);
        bin
    }

    /// A zero-copy [`bytes::Bytes`] view of `range` of the data, holding one reference.
    ///
    /// # Panics
    /// When `range` is out of bounds.
    pub fn to_bytes(&self, range: impl std::ops::RangeBounds<usize>) -> bytes::Bytes {
        bytes::Bytes::from_owner(self.clone()).slice(range)
    }
}

impl Clone for BinaryRef {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: the handle keeps the binary alive and owns a reference.
        unsafe { retain(self.as_ptr()) };
        Self(self.0)
    }
}

impl Drop for BinaryRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the handle owns one reference to a live binary; it is consumed here.
        unsafe { release(self.as_ptr()) }
    }
}

impl AsRef<[u8]> for BinaryRef {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<BinaryRef> for bytes::Bytes {
    /// Zero-copy: the `Bytes` holds the reference and points at the binary's data.
    fn from(bin: BinaryRef) -> Self {
        bytes::Bytes::from_owner(bin)
    }
}

impl fmt::Debug for BinaryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryRef")
            .field("ptr", &self.0)
            .field("len", &self.len())
            .field("refc", &self.refc())
            .finish()
    }
}

/// `driver_alloc_binary`: a new binary of `size` bytes with count 1, or null when out of memory.
pub fn alloc_binary(size: usize) -> *mut ErlDrvBinary {
    BinaryRef::alloc(size).map_or(ptr::null_mut(), BinaryRef::into_raw)
}

/// `driver_realloc_binary`: resizes `bin` keeping its data; returns the (possibly moved) binary,
/// or null when out of memory or `bin` is null (then the caller's reference stays on `bin`).
/// See [`BinaryRef::realloc`] for the shared-binary case.
///
/// # Safety
/// `bin` must be null or a live binary allocated by this crate on which the caller owns a
/// reference; on success that reference moves to the returned binary.
pub unsafe fn realloc_binary(bin: *mut ErlDrvBinary, size: usize) -> *mut ErlDrvBinary {
    if bin.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: caller contract: a live binary and an owned reference, adopted here.
    let bin = unsafe { BinaryRef::from_raw(bin) };
    match bin.realloc(size) {
        Ok(new) => new.into_raw(),
        Err(old) => {
            // Failure leaves the caller's reference where it was.
            let _ = old.into_raw();
            ptr::null_mut()
        }
    }
}

/// `driver_free_binary`: drops one reference, freeing the binary at zero. Null is ignored.
///
/// # Safety
/// `bin` must be null or a live binary allocated by this crate on which the caller owns a
/// reference, which this call consumes.
pub unsafe fn free_binary(bin: *mut ErlDrvBinary) {
    if !bin.is_null() {
        // SAFETY: caller contract.
        unsafe { release(bin) }
    }
}

/// `driver_binary_get_refc`: the current count.
///
/// # Safety
/// `bin` must be a live binary allocated by this crate.
pub unsafe fn binary_get_refc(bin: *mut ErlDrvBinary) -> isize {
    // SAFETY: caller contract.
    unsafe { header(bin) }.refc.load(Ordering::Acquire)
}

/// `driver_binary_inc_refc`: increments the count and returns the new count.
///
/// # Safety
/// `bin` must be a live binary allocated by this crate.
pub unsafe fn binary_inc_refc(bin: *mut ErlDrvBinary) -> isize {
    // SAFETY: caller contract.
    unsafe { retain(bin) }
}

/// `driver_binary_dec_refc`: decrements the count and returns the new count. Like the runtime,
/// it never frees, even at zero (use [`free_binary`] for that).
///
/// # Safety
/// `bin` must be a live binary allocated by this crate.
pub unsafe fn binary_dec_refc(bin: *mut ErlDrvBinary) -> isize {
    // SAFETY: caller contract.
    unsafe { header(bin) }.refc.fetch_sub(1, Ordering::Release) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_sets_size_count_and_alignment() {
        for size in [0usize, 1, 7, 8, 64, 4096] {
            let bin = BinaryRef::alloc(size).expect("alloc");
            assert_eq!(bin.refc(), 1);
            assert_eq!(bin.len(), size);
            // SAFETY: the handle keeps the binary alive.
            assert_eq!(unsafe { (*bin.as_ptr()).orig_size }, size as isize);
            assert_eq!(bin.data_ptr() as usize % 8, 0, "orig_bytes 8-aligned");
            assert!(bin.as_bytes().iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn clone_and_drop_track_the_count() {
        let bin = BinaryRef::from_slice(b"abc").expect("alloc");
        let second = bin.clone();
        assert_eq!(bin.refc(), 2);
        assert_eq!(second.as_ptr(), bin.as_ptr());
        drop(second);
        assert_eq!(bin.refc(), 1);
    }

    #[test]
    fn raw_functions_follow_the_c_semantics() {
        let raw = alloc_binary(16);
        assert!(!raw.is_null());
        // SAFETY: `raw` is live throughout; the counts are balanced before the final free.
        unsafe {
            assert_eq!(binary_get_refc(raw), 1);
            assert_eq!(binary_inc_refc(raw), 2);
            assert_eq!(binary_inc_refc(raw), 3);
            assert_eq!(binary_dec_refc(raw), 2);
            free_binary(raw);
            assert_eq!(binary_get_refc(raw), 1);
            let bin = BinaryRef::from_raw(raw);
            assert_eq!(bin.refc(), 1);
            assert_eq!(bin.into_raw(), raw);
            free_binary(raw);
            free_binary(ptr::null_mut());
        }
    }

    #[test]
    fn realloc_keeps_data_when_sole_owner() {
        let mut bin = BinaryRef::from_slice(b"hello").expect("alloc");
        bin = bin.realloc(4096).expect("grow");
        assert_eq!(bin.len(), 4096);
        assert_eq!(&bin.as_bytes()[..5], b"hello");
        assert!(bin.as_bytes()[5..].iter().all(|&b| b == 0));
        bin = bin.realloc(2).expect("shrink");
        assert_eq!(bin.as_bytes(), b"he");
        assert_eq!(bin.refc(), 1);
    }

    #[test]
    fn realloc_of_shared_binary_copies_and_leaves_others_intact() {
        let bin = BinaryRef::from_slice(b"shared").expect("alloc");
        let other = bin.clone();
        let grown = bin.realloc(8).expect("grow");
        assert_ne!(grown.as_ptr(), other.as_ptr());
        assert_eq!(&grown.as_bytes()[..6], b"shared");
        assert_eq!(other.as_bytes(), b"shared");
        assert_eq!((grown.refc(), other.refc()), (1, 1));
    }

    #[test]
    fn raw_realloc_moves_the_reference() {
        let raw = alloc_binary(3);
        // SAFETY: `raw` is live and we own its only reference, which moves to `new`.
        unsafe {
            let new = realloc_binary(raw, 100);
            assert!(!new.is_null());
            assert_eq!((*new).orig_size, 100);
            assert_eq!(binary_get_refc(new), 1);
            free_binary(new);
            assert!(realloc_binary(ptr::null_mut(), 1).is_null());
        }
    }

    #[test]
    fn oversized_alloc_fails_cleanly() {
        assert!(BinaryRef::alloc(usize::MAX).is_none());
        assert!(BinaryRef::alloc(isize::MAX as usize).is_none());
        assert!(alloc_binary(usize::MAX - 3).is_null());
    }

    #[test]
    fn bytes_share_the_binary_memory() {
        let bin = BinaryRef::from_slice(b"zero-copy").expect("alloc");
        let whole: bytes::Bytes = bin.clone().into();
        let part = bin.to_bytes(5..);
        assert_eq!(bin.refc(), 3);
        assert_eq!(whole.as_ptr(), bin.data_ptr().cast_const());
        assert_eq!(part.as_ptr(), bin.data_ptr().wrapping_add(5).cast_const());
        assert_eq!(&part[..], b"copy");
        drop(whole);
        drop(part);
        assert_eq!(bin.refc(), 1);
    }

    #[test]
    fn get_mut_only_for_sole_owner() {
        let mut bin = BinaryRef::alloc(4).expect("alloc");
        bin.get_mut().expect("sole").copy_from_slice(b"abcd");
        let other = bin.clone();
        assert!(bin.get_mut().is_none());
        drop(other);
        assert_eq!(bin.get_mut().expect("sole again"), b"abcd");
    }
}
