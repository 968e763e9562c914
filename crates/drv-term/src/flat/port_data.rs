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

use bytes::{BufMut, Bytes, BytesMut};

use super::{size, word, DataPiece, FlatTerm, Parts, INLINE_BINARY_LIMIT};
use crate::arena::{self, Buf};
use crate::{Atom, Port};

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

/// Binary-mode data messages of local ports, `{Port, {Tag, Data}}` as
/// [`FlatTerm::port_data`] makes them, one after the other in one buffer: a queue of them
/// (a backlog at an owner that does not receive, issue 16) costs each message its bytes in
/// the compact form and nothing else, and taking one splits it off the buffer without a copy
/// (the message then shares the buffer, as a message in the arena shares its chunk).
///
/// The buffer grows as a `Vec` does; once a message is taken from it, or past
/// [`PortDataLog::MAX_BYTES`], [`PortDataLog::push`] refuses more (start another log).
#[derive(Debug, Default)]
pub struct PortDataLog {
    /// The messages, while the log is written.
    buf: BytesMut,
    /// The messages not yet taken, once one was: frozen, so that taking one is a cheap split.
    taking: Bytes,
    count: usize,
}

impl PortDataLog {
    /// The most bytes of messages one log holds.
    pub const MAX_BYTES: usize = arena::MAX_CHUNK;

    /// An empty log (no allocation until the first message).
    pub fn new() -> PortDataLog {
        PortDataLog::default()
    }

    /// An empty log with room for `bytes` of messages (at most [`PortDataLog::MAX_BYTES`]),
    /// allocated now: for a backlog known to be long, the room a log would grow to (a large
    /// buffer is aligned for huge pages: see `arena::on_new_chunks`).
    pub fn with_capacity(bytes: usize) -> PortDataLog {
        PortDataLog {
            buf: arena::new_buffer(bytes.min(Self::MAX_BYTES)),
            ..PortDataLog::default()
        }
    }

    /// The bytes of messages it has room for without growing.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends the message [`FlatTerm::port_data`] would make of these parts in binary
    /// mode; whether it did. Not when the compact form cannot hold it (a remote port, a piece
    /// above [`INLINE_BINARY_LIMIT`]: make the message), nor when this log is full (see the
    /// type's docs).
    #[inline]
    pub fn push(&mut self, port: Port, tag: Atom, header: &[u8], pieces: &[DataPiece<'_>]) -> bool {
        let (Some(number), Some(len)) = (port.local_id(), compact_len(header, pieces)) else {
            return false;
        };
        if !self.taking.is_empty() {
            return false;
        }
        if self.buf.capacity() - self.buf.len() < len && !self.grow(len) {
            return false;
        }
        append(&mut self.buf, number, tag, header, pieces);
        self.count += 1;
        true
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize) -> bool {
        let needed = self.buf.len() + len;
        if needed > Self::MAX_BYTES {
            return false;
        }
        // Doubled as a `Vec` is, until the next size would be worth huge pages: then the
        // largest buffer at once, aligned for them (see `arena::new_buffer`).
        if (2 * self.buf.capacity()).max(needed) < arena::HOOKED_CHUNK {
            self.buf.reserve(len);
        } else {
            let mut buffer = arena::new_buffer(Self::MAX_BYTES);
            buffer.extend_from_slice(&self.buf);
            self.buf = buffer;
        }
        true
    }

    /// The oldest message, taken off the log.
    #[inline]
    pub fn pop(&mut self) -> Option<FlatTerm> {
        if self.count == 0 {
            return None;
        }
        if self.taking.is_empty() {
            self.taking = std::mem::take(&mut self.buf).freeze();
        }
        let len = len_at_start(&self.taking);
        self.count -= 1;
        Some(FlatTerm {
            parts: Parts::Records(self.taking.split_to(len)),
        })
    }

    /// How many messages it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::PortDataLog;
    use crate::{Atom, DataPiece, FlatTerm, Port, INLINE_BINARY_LIMIT};

    /// Each message through the log is the one made directly, in order; what the compact
    /// form cannot hold is refused; a log being taken from takes no more.
    #[test]
    fn logged_messages_are_those_made_directly() {
        let (port, tag) = (Port::local(7), Atom::new("data"));
        let big = [9u8; INLINE_BINARY_LIMIT + 1];
        let remote = Port {
            node: Atom::new("other@host"),
            ..port
        };
        let cases: &[(Port, &[u8], &[DataPiece<'_>], bool)] = &[
            (port, b"", &[DataPiece::Borrowed(&[1; 64])], true),
            (
                port,
                b"hd",
                &[DataPiece::Borrowed(b"a"), DataPiece::Borrowed(b"")],
                true,
            ),
            (port, b"", &[], true),
            (
                Port::local(8),
                &[5; 300],
                &[DataPiece::Borrowed(b"abc")],
                true,
            ),
            (port, b"", &[DataPiece::Borrowed(&big)], false),
            (remote, b"", &[DataPiece::Borrowed(b"x")], false),
        ];
        let mut log = PortDataLog::new();
        for &(port, header, pieces, fits) in cases {
            assert_eq!(log.push(port, tag, header, pieces), fits, "{header:?}");
        }
        assert_eq!(log.len(), 4);
        let mut taken = vec![log.pop().expect("the first")];
        taken.extend(std::iter::from_fn(|| log.pop()));
        let made: Vec<FlatTerm> = cases
            .iter()
            .filter(|case| case.3)
            .map(|&(port, header, pieces, _)| FlatTerm::port_data(port, tag, header, pieces, true))
            .collect();
        let terms = |v: &[FlatTerm]| v.iter().map(FlatTerm::to_term).collect::<Vec<_>>();
        assert_eq!(terms(&taken), terms(&made));
        assert!(log.is_empty() && log.pop().is_none());
        // Taken from, a log takes no more until it is empty.
        let data = [DataPiece::Borrowed(&[3; 64])];
        assert!(log.push(port, tag, b"", &data) && log.push(port, tag, b"", &data));
        assert!(log.pop().is_some());
        assert!(
            !log.push(port, tag, b"", &data),
            "a log taken from took more"
        );
        assert!(log.pop().is_some() && log.is_empty());
    }
}
