//! The bytes of driver-supplied I/O vectors (`ErlIOVec`), read through drv-queue's one reader
//! ([`drv_queue::raw::io_vec_parts`]) and its one rule for a NULL `iov`.

use bytes::Bytes;
use drv_queue::BinaryRef;
use drv_term::{DataPiece, INLINE_BINARY_LIMIT};
use smallvec::SmallVec;

use crate::types::{ErlDrvBinary, ErlIOVec};

/// The byte pieces of `ev`, in order, zero-length pieces included; `None` when `ev` is
/// malformed (see [`drv_queue::raw::io_vec_parts`]).
///
/// # Safety
/// `ev.iov` is NULL or points to `ev.vsize` valid `SysIOVec`s whose buffers stay valid and
/// unchanged for the lifetime `'a` (the duration of the C call that passed `ev`); `ev.binv` is
/// NULL or has `vsize` entries.
pub(crate) unsafe fn pieces<'a>(ev: &'a ErlIOVec) -> Option<impl Iterator<Item = &'a [u8]> + 'a> {
    // SAFETY: forwarded contract.
    let (iovs, _) = unsafe { drv_queue::raw::io_vec_parts(ev) }.ok()?;
    Some(iovs.iter().map(|iov| {
        if iov.iov_base.is_null() || iov.iov_len == 0 {
            &[][..]
        } else {
            // SAFETY: by this function's contract each entry's buffer is valid for its length.
            unsafe {
                std::slice::from_raw_parts(iov.iov_base.cast::<u8>().cast_const(), iov.iov_len)
            }
        }
    }))
}

/// What [`output_pieces`] cuts, in order: on the stack up to 8 pieces (no allocation per
/// `driver_outputv`, a driver's vector rarely has more; issue 16), in a vector beyond. Filled
/// in place by the caller's frame: not moved, and only the pieces there are dropped.
pub(crate) type OutputPieces<'a> = SmallVec<[DataPiece<'a>; 8]>;

/// What `driver_outputv(port, hbuf, hlen, ev, skip)` sends after the header, as the runtime
/// cuts it: nothing at all when no byte is left after `skip`; else the entries from the first
/// one that `skip` does not swallow — the leading entries no longer than what is left of `skip`
/// go, at least the first when it is empty — with that entry's start skipped. Later empty
/// entries stay (each becomes an empty binary in a binary-mode port's message). Pieces of up
/// to [`INLINE_BINARY_LIMIT`] bytes are lent (the message copies them, as BEAM copies small
/// binaries to the heap); a larger piece that lies inside its entry's binary (`binv[i]`) takes a
/// reference to it, any other is lent too. `None` when `ev` is malformed. One pass over the
/// vector: what is left after `skip` has no byte exactly when every byte was skipped.
///
/// # Safety
/// As for [`pieces`]; in addition each `binv` entry is NULL or a live driver binary.
pub(crate) unsafe fn output_pieces<'a>(
    ev: &'a ErlIOVec,
    mut skip: usize,
    out: &mut OutputPieces<'a>,
) -> Option<()> {
    // SAFETY: forwarded contract.
    let binv = unsafe { drv_queue::raw::io_vec_parts(ev) }
        .ok()?
        .1
        .unwrap_or(&[]);
    let mut left = 0;
    let mut stripping = true;
    // SAFETY: forwarded contract.
    for (i, mut piece) in unsafe { pieces(ev) }?.enumerate() {
        if stripping {
            if piece.len() <= skip {
                skip -= piece.len();
                stripping = skip > 0;
                continue;
            }
            piece = &piece[skip..];
            stripping = false;
        }
        left += piece.len();
        if piece.len() <= INLINE_BINARY_LIMIT {
            out.push(DataPiece::Borrowed(piece));
            continue;
        }
        let bin = binv.get(i).copied().unwrap_or(std::ptr::null_mut());
        // SAFETY: `bin` is NULL or a live binary (contract); `shared_slice` checks that
        // the piece lies inside its data before sharing.
        let shared = unsafe { shared_slice(bin, piece) };
        out.push(shared.map_or(DataPiece::Borrowed(piece), DataPiece::Shared));
    }
    if left == 0 {
        out.clear();
    }
    Some(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SysIOVec;

    /// One rule for a NULL `iov` (drv-queue's reader): no entries to read is an empty vector,
    /// entries behind NULL are malformed; the output cut follows.
    #[test]
    fn null_iov_is_empty_only_without_entries() {
        let mut bytes = *b"hello";
        let mut entries = [SysIOVec {
            iov_base: bytes.as_mut_ptr().cast(),
            iov_len: bytes.len(),
        }];
        let vector = |vsize: i32, iov: *mut SysIOVec| ErlIOVec {
            vsize,
            size: 5,
            iov,
            binv: std::ptr::null_mut(),
        };
        /// (vector, its pieces, what driver_outputv sends after skipping 2 bytes)
        type Case<'a> = (ErlIOVec, Option<Vec<&'a [u8]>>, Option<Vec<&'a [u8]>>);
        let cases: [Case<'_>; 4] = [
            (vector(0, std::ptr::null_mut()), Some(vec![]), Some(vec![])),
            (vector(1, std::ptr::null_mut()), None, None),
            (vector(-1, entries.as_mut_ptr()), None, None),
            (
                vector(1, entries.as_mut_ptr()),
                Some(vec![b"hello"]),
                Some(vec![b"llo"]),
            ),
        ];
        for (ev, expected_pieces, expected_output) in cases {
            // SAFETY: `iov` is NULL or points to `entries`, alive for the test; `binv` is NULL.
            let got = unsafe { pieces(&ev) }.map(Iterator::collect::<Vec<_>>);
            assert_eq!(got, expected_pieces, "vsize {}", ev.vsize);
            let mut pieces = super::OutputPieces::new();
            // SAFETY: as above.
            let output = unsafe { output_pieces(&ev, 2, &mut pieces) }.map(|()| {
                pieces
                    .iter()
                    .map(|p| p.bytes().to_vec())
                    .collect::<Vec<_>>()
            });
            let expected_output =
                expected_output.map(|pieces| pieces.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
            assert_eq!(output, expected_output, "vsize {}", ev.vsize);
        }
    }
}
