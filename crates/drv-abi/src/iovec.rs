//! Reading driver-supplied I/O vectors (`ErlIOVec`).

use bytes::Bytes;
use drv_queue::BinaryRef;
use drv_term::{DataPiece, INLINE_BINARY_LIMIT};

use crate::types::{ErlDrvBinary, ErlIOVec, SysIOVec};

/// The byte pieces of `ev`, in order, zero-length pieces included.
///
/// # Safety
/// `ev.iov` points to `ev.vsize` valid `SysIOVec`s whose buffers stay valid and unchanged for
/// the lifetime `'a` (the duration of the C call that passed `ev`).
pub(crate) unsafe fn pieces<'a>(ev: &'a ErlIOVec) -> impl Iterator<Item = &'a [u8]> + 'a {
    let iovs: &'a [SysIOVec] = if ev.iov.is_null() || ev.vsize <= 0 {
        &[]
    } else {
        // SAFETY: by this function's contract `iov` has `vsize` valid entries.
        unsafe { std::slice::from_raw_parts(ev.iov, ev.vsize as usize) }
    };
    iovs.iter().map(|iov| {
        if iov.iov_base.is_null() || iov.iov_len == 0 {
            &[][..]
        } else {
            // SAFETY: by this function's contract each entry's buffer is valid for its length.
            unsafe {
                std::slice::from_raw_parts(iov.iov_base.cast::<u8>().cast_const(), iov.iov_len)
            }
        }
    })
}

/// What `driver_outputv(port, hbuf, hlen, ev, skip)` sends after the header, as the runtime
/// cuts it: nothing at all when no byte is left after `skip`; else the entries from the first
/// one that `skip` does not swallow — the leading entries no longer than what is left of `skip`
/// go, at least the first when it is empty — with that entry's start skipped. Later empty
/// entries stay (each becomes an empty binary in a binary-mode port's message). Pieces of up
/// to [`INLINE_BINARY_LIMIT`] bytes are lent (the message copies them, as BEAM copies small
/// binaries to the heap); larger ones are shared as in [`shared_pieces`].
///
/// # Safety
/// As for [`shared_pieces`].
pub(crate) unsafe fn output_pieces(ev: &ErlIOVec, mut skip: usize) -> Vec<DataPiece<'_>> {
    // SAFETY: forwarded contract.
    let total: usize = unsafe { pieces(ev) }.map(<[u8]>::len).sum();
    if total <= skip {
        return Vec::new();
    }
    // SAFETY: forwarded contract.
    let binv = unsafe { binaries(ev) };
    let mut out = Vec::new();
    let mut stripping = true;
    // SAFETY: forwarded contract.
    for (i, mut piece) in unsafe { pieces(ev) }.enumerate() {
        if stripping {
            if piece.len() <= skip {
                skip -= piece.len();
                stripping = skip > 0;
                continue;
            }
            piece = &piece[skip..];
            stripping = false;
        }
        if piece.len() <= INLINE_BINARY_LIMIT {
            out.push(DataPiece::Borrowed(piece));
            continue;
        }
        let bin = binv.get(i).copied().unwrap_or(std::ptr::null_mut());
        // SAFETY: `bin` is NULL or a live binary (contract); `shared_slice` checks that the
        // piece lies inside its data before sharing.
        let shared = unsafe { shared_slice(bin, piece) };
        out.push(shared.map_or(DataPiece::Borrowed(piece), DataPiece::Shared));
    }
    out
}

/// The `binv` entries of `ev` (empty when it has none).
///
/// # Safety
/// `ev.binv` is NULL or has `vsize` entries.
unsafe fn binaries(ev: &ErlIOVec) -> &[*mut ErlDrvBinary] {
    if ev.binv.is_null() || ev.vsize <= 0 {
        &[]
    } else {
        // SAFETY: by this function's contract `binv` has `vsize` entries.
        unsafe { std::slice::from_raw_parts(ev.binv, ev.vsize as usize) }
    }
}

/// The contents of `ev` after skipping `skip` bytes, as shared pieces: a piece that lies
/// inside its entry's binary (`binv[i]`) takes a reference to it; any other piece is copied.
/// Empty pieces are dropped (what the runtime's `driver_enqv` queues).
///
/// # Safety
/// As for [`pieces`]; in addition `ev.binv` is NULL or has `vsize` entries, each NULL or a live
/// driver binary.
#[allow(dead_code)] // for driver_enqv/driver_pushqv (issue #4); driver_outputv keeps empties
pub(crate) unsafe fn shared_pieces(ev: &ErlIOVec, mut skip: usize) -> Vec<Bytes> {
    let binv: &[*mut ErlDrvBinary] = if ev.binv.is_null() || ev.vsize <= 0 {
        &[]
    } else {
        // SAFETY: by this function's contract `binv` has `vsize` entries.
        unsafe { std::slice::from_raw_parts(ev.binv, ev.vsize as usize) }
    };
    let mut out = Vec::new();
    // SAFETY: forwarded contract.
    for (i, piece) in unsafe { pieces(ev) }.enumerate() {
        if skip >= piece.len() {
            skip -= piece.len();
            continue;
        }
        let piece = &piece[skip..];
        skip = 0;
        let bin = binv.get(i).copied().unwrap_or(std::ptr::null_mut());
        // SAFETY: `bin` is NULL or a live binary (contract); `shared_slice` checks that the
        // piece lies inside its data before sharing.
        match unsafe { shared_slice(bin, piece) } {
            Some(shared) => out.push(shared),
            None => out.push(Bytes::copy_from_slice(piece)),
        }
    }
    out
}

/// `piece` as a shared slice of `bin`, when it lies inside `bin`'s data.
///
/// # Safety
/// `bin` is NULL or a live driver binary.
unsafe fn shared_slice(bin: *mut ErlDrvBinary, piece: &[u8]) -> Option<Bytes> {
    if bin.is_null() {
        return None;
    }
    // SAFETY: `bin` is live (contract); cloning takes a new reference that the Bytes owns.
    let binary = unsafe { BinaryRef::from_raw_borrowed(bin) };
    let data = binary.as_bytes();
    let start = (piece.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    if start + piece.len() > data.len() {
        return None;
    }
    Some(binary.to_bytes(start..start + piece.len()))
}
