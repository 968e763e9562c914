//! The compact form of a binary-mode port's data message, `{Port, {Tag, Data}}` with `Data`
//! the header's bytes as a list ending in the pieces as binaries (see
//! [`FlatTerm::port_data`](super::FlatTerm::port_data)): the port, the tag and the bytes, not
//! the records of two tuples, a list and each binary. A backlog of `driver_output*` messages
//! at an owner that does not receive costs mostly the fresh memory it fills (issue 16): 89
//! bytes for a 64-byte `driver_output`, where the records take 113.
//!
//! | bytes | what |
//! |---|---|
//! | 4 | 0: where a records buffer has its root's offset, which is never 0 |
//! | 8 | the port's number (a local port) |
//! | 4 | the tag's atom index |
//! | 4 | the header's length `h` |
//! | 4 | the pieces' count `n` |
//! | `n` | each piece's length (at most [`INLINE_BINARY_LIMIT`]) |
//! | `h` | the header's bytes |
//! | the rest | the pieces' bytes, one after the other |
//!
//! Read through the same [`FlatRef`](super::FlatRef) as records (its `At::PortData` and
//! `At::Bytes` places): one view of a message whatever its form.

use bytes::{BufMut, BytesMut};

use super::{size, word, DataPiece, INLINE_BINARY_LIMIT};
use crate::arena::{self, Buf};
use crate::Atom;

const PORT_AT: usize = 4;
const TAG_AT: usize = 12;
const HEADER_LEN_AT: usize = 16;
const PIECES_AT: usize = 20;
/// Where the pieces' lengths start.
const LENGTHS_AT: usize = 24;

/// Whether `buf` holds the compact form (a records buffer starts with its root's offset, at
/// least 4).
#[inline]
pub(super) fn is_port_data(buf: &[u8]) -> bool {
    size(buf, 0) == 0
}

/// The message in the compact form, written in the thread's arena in one pass; `None` when
/// the form cannot hold it (see [`compact_len`]).
#[inline]
pub(super) fn write(port: u64, tag: Atom, header: &[u8], pieces: &[DataPiece<'_>]) -> Option<Buf> {
    let len = compact_len(header, pieces)?;
    Some(arena::build_exact(len, |buf| {
        append(buf, port, tag, header, pieces)
    }))
}

/// Bytes of the message in the compact form; `None` when the form cannot hold it (a piece
/// above [`INLINE_BINARY_LIMIT`], which the records keep by reference; counts past `u32`).
#[inline]
pub(super) fn compact_len(header: &[u8], pieces: &[DataPiece<'_>]) -> Option<usize> {
    let mut data = 0;
    for piece in pieces {
        let len = piece.bytes().len();
        if len > INLINE_BINARY_LIMIT {
            return None;
        }
        data += len;
    }
    u32::try_from(header.len()).ok()?;
    u32::try_from(pieces.len()).ok()?;
    let len = LENGTHS_AT + pieces.len() + header.len() + data;
    // Offsets into the buffer are `u32`s (`At::Bytes`).
    u32::try_from(len).ok()?;
    Some(len)
}

/// Appends the message in the compact form to `buf`, for which [`compact_len`] gave its
/// length.
#[inline]
pub(super) fn append(
    buf: &mut BytesMut,
    port: u64,
    tag: Atom,
    header: &[u8],
    pieces: &[DataPiece<'_>],
) {
    let mut head = [0; LENGTHS_AT];
    head[PORT_AT..TAG_AT].copy_from_slice(&port.to_le_bytes());
    head[TAG_AT..HEADER_LEN_AT].copy_from_slice(&tag.index().to_le_bytes());
    // Both fit a `u32` (`compact_len`).
    head[HEADER_LEN_AT..PIECES_AT].copy_from_slice(&(header.len() as u32).to_le_bytes());
    head[PIECES_AT..].copy_from_slice(&(pieces.len() as u32).to_le_bytes());
    buf.extend_from_slice(&head);
    for piece in pieces {
        // At most INLINE_BINARY_LIMIT (`compact_len`).
        buf.put_u8(piece.bytes().len() as u8);
    }
    buf.extend_from_slice(header);
    for piece in pieces {
        buf.extend_from_slice(piece.bytes());
    }
}

/// The length of the compact message at the start of `buf` (written by [`append`]).
#[inline]
pub(super) fn len_at_start(buf: &[u8]) -> usize {
    let layout = Layout::of(buf);
    // One slice of the lengths (one bounds check), not a look per piece.
    let data: usize = buf[LENGTHS_AT..layout.header_at()]
        .iter()
        .map(|&len| usize::from(len))
        .sum();
    layout.pieces_at() + data
}

/// The bytes of a compact message's `Data` when it is a binary (one piece, no header).
#[inline]
pub(super) fn data_binary(buf: &[u8]) -> Option<&[u8]> {
    let layout = Layout::of(buf);
    if layout.header_len != 0 || layout.pieces != 1 {
        return None;
    }
    // The last piece ends the buffer.
    buf.get(buf.len().checked_sub(Layout::piece_len(buf, 0))?..)
}

/// The parts of a compact message, read from its buffer.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) header_len: usize,
    pub(super) pieces: usize,
}

impl Layout {
    #[inline]
    pub(super) fn of(buf: &[u8]) -> Layout {
        Layout {
            header_len: size(buf, HEADER_LEN_AT),
            pieces: size(buf, PIECES_AT),
        }
    }

    #[inline]
    pub(super) fn port(buf: &[u8]) -> u64 {
        word(buf, PORT_AT)
    }

    #[inline]
    pub(super) fn tag(buf: &[u8]) -> Atom {
        Atom::from_index(size(buf, TAG_AT) as u32)
    }

    /// Piece `i`'s length.
    #[inline]
    pub(super) fn piece_len(buf: &[u8], i: usize) -> usize {
        usize::from(buf[LENGTHS_AT + i])
    }

    /// Where the header's bytes start.
    #[inline]
    pub(super) fn header_at(self) -> usize {
        LENGTHS_AT + self.pieces
    }

    /// Where the first piece's bytes start.
    #[inline]
    pub(super) fn pieces_at(self) -> usize {
        self.header_at() + self.header_len
    }
}
