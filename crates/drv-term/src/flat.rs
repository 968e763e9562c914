//! [`FlatTerm`]: a whole term in one buffer, the form a driver's term travels in.

use std::fmt;

use bytes::Bytes;

use crate::arena::Buf;
use crate::view::{Node, TermRef};
use crate::{Atom, DefaultNamer, IdentNamer, Pid, Port, Ref, Term};

mod log;
mod port_data;
pub use log::{FlatLog, LoggedSpec};
use port_data::Layout;

/// Driver binaries up to this size are copied into a flat term, larger ones shared (BEAM's
/// `ERL_ONHEAP_BIN_LIMIT`: a copy is cheaper than a reference for small data).
pub const INLINE_BINARY_LIMIT: usize = 64;

/// Record tags.
mod tag {
    pub const NIL: u8 = 0;
    pub const ATOM: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const PID: u8 = 4;
    pub const PORT: u8 = 5;
    pub const BINARY: u8 = 6;
    pub const STRING: u8 = 7;
    pub const LIST: u8 = 8;
    pub const TUPLE: u8 = 9;
    pub const TERM: u8 = 10;
}

/// Bytes of a record before its contents: the tag and a count or length.
const HEAD: usize = 5;

/// Where a record starts in the buffer (a buffer holds at most 4 GiB of records).
pub(crate) type Offset = u32;

/// A whole term in one buffer, the form a driver's term travels in.
///
/// BEAM builds a driver's term into one heap fragment and links that to the receiver's
/// mailbox; this is the same idea. A [`Term`] built from a spec costs an allocation per tuple,
/// list and small binary, and as many frees when it is dropped; a `FlatTerm` costs one of each
/// (three when it keeps [`Term`]s, see below). The spec interpreter sizes the buffer from the
/// spec's length, so the usual message (`{tcp, Port, [100 | Bin50]}`: 108 bytes of records in
/// a 116-byte buffer) takes one allocation from malloc's fast bins. A port's data message
/// ([`FlatTerm::port_data`], `driver_output*`) is written in the building thread's arena
/// instead ([`crate::arena`]): no allocation of its own, a reference-counted slice of a chunk
/// that a backlog fills with huge pages. (The spec-built terms stay in malloc's: measured with
/// `cargo xtask term-bench`, which drains as it goes, the arena's reference counting cost more
/// than malloc's recycled blocks.) A flat term is four words.
///
/// # Layout
///
/// The buffer holds *records*, one per term, each starting with a tag byte. Counts, lengths,
/// offsets and indexes are little-endian `u32` (a buffer holds at most 4 GiB; a spec that
/// needs more is rejected with [`SpecError::TooLarge`](crate::SpecError::TooLarge)), values
/// little-endian `u64`. A term refers to another by the offset of its record, so a spec's terms
/// are written in the order the spec makes them (children before their parents, as BEAM
/// writes a heap fragment) and nothing is moved afterwards:
///
/// | record | bytes |
/// |---|---|
/// | `[]` | `NIL` |
/// | atom | `ATOM`, table index |
/// | integer (`i64`), float, local pid, local port | tag, value or number (8 bytes) |
/// | binary | `BINARY`, length, the bytes (driver binaries of up to [`INLINE_BINARY_LIMIT`] bytes, copied as BEAM copies them into the heap, and copied buffers) |
/// | list | `LIST`, n (≥ 1), n element offsets, tail offset |
/// | string | `STRING`, n (≥ 1), n bytes (the elements, small integers), tail offset |
/// | tuple | `TUPLE`, n, n element offsets |
/// | any other term | `TERM`, index into a side vector of [`Term`]s |
///
/// A list or string segment's tail may be another segment (`STRING_CONS` onto a list, a
/// `LIST` whose last item is a list) or a kept `Term` list: readers see one list, as
/// [`Term::cons`] would have made it. The side vector is allocated only when used: for larger
/// driver binaries (held by reference: the driver binary's reference count keeps the bytes,
/// zero-copy), maps (built by [`Term::map`], which orders and checks the keys), the terms of
/// `ERL_DRV_EXT2TERM`, big integers, and identifiers of other nodes.
///
/// Reading goes through [`FlatRef`], a [`TermRef`]: printing and ETF encoding are the same
/// code as for [`Term`], and [`FlatTerm::to_term`] converts. A runtime that copies messages
/// into a heap of its own can walk a flat term the same way. The crate has no `unsafe`, so
/// records are read with bounds checks.
///
/// Built by the spec interpreter ([`FlatTerm::from_spec`]) or from a [`Term`]
/// ([`FlatTerm::from_term`]); read through [`FlatTerm::root`], printed as [`Term`] prints
/// (`Display`), encoded as [`Term`] encodes ([`FlatTerm::encode`]), and converted with
/// [`FlatTerm::to_term`]. Equality with a [`Term`] is Erlang's exact equality.
#[derive(Clone)]
pub struct FlatTerm {
    parts: Parts,
}

/// The records and the terms kept beside them, in four words: the usual message has no kept
/// terms and travels as one buffer. The buffer starts with the offset of the root
/// record, and may end in room that was not needed.
#[derive(Clone)]
enum Parts {
    /// Only records (the usual message), or a port data message in the compact form
    /// (`port_data.rs`: its first four bytes, where records have the root's offset, are 0).
    Records(Buf),
    /// Records and the terms they keep (in a box of their own, so that the usual message
    /// stays four words).
    WithTerms(Box<WithTerms>),
}

#[derive(Clone)]
struct WithTerms {
    buf: Buf,
    terms: Vec<Term>,
}

/// The terms a flat term keeps beside its records while it is built: allocated with the first
/// one.
type KeptTerms = Option<Vec<Term>>;

/// Bytes before the first record: the root's offset.
const ROOT: usize = 4;

impl Parts {
    #[inline]
    fn new(buf: Buf, terms: KeptTerms) -> Parts {
        match terms {
            None => Parts::Records(buf),
            Some(terms) => Parts::WithTerms(Box::new(WithTerms { buf, terms })),
        }
    }

    #[inline]
    fn buf(&self) -> &[u8] {
        match self {
            Parts::Records(buf) => buf,
            Parts::WithTerms(parts) => &parts.buf,
        }
    }

    /// What readers walk.
    #[inline]
    fn records(&self) -> Records<'_> {
        match self {
            Parts::Records(buf) => Records { buf, terms: &[] },
            Parts::WithTerms(parts) => Records {
                buf: &parts.buf,
                terms: &parts.terms,
            },
        }
    }
}

/// The records and kept terms of a flat term, or of one being written.
#[derive(Clone, Copy)]
pub(crate) struct Records<'a> {
    buf: &'a [u8],
    terms: &'a [Term],
}

impl<'a> Records<'a> {
    /// The term whose record is at `at`.
    pub(crate) fn view(self, at: Offset) -> FlatRef<'a> {
        FlatRef {
            records: self,
            at: At::Record(at as usize),
        }
    }

    /// The term kept at `index`.
    #[inline]
    fn term(self, index: usize) -> &'a Term {
        &self.terms[index]
    }
}

/// Reads the `u64` value at `at`.
#[inline]
fn word(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(
        buf[at..at + 8]
            .try_into()
            .expect("a record holds 8 bytes there"),
    )
}

/// Reads the count, length, offset or index at `at`.
#[inline]
fn size(buf: &[u8], at: usize) -> usize {
    u32::from_le_bytes(
        buf[at..at + 4]
            .try_into()
            .expect("a record holds 4 bytes there"),
    ) as usize
}

/// Where the tail offset of the list or string segment at `seg` is.
#[inline]
fn tail_slot(buf: &[u8], seg: usize) -> usize {
    let n = size(buf, seg + 1);
    seg + HEAD + if buf[seg] == tag::STRING { n } else { 4 * n }
}

/// A write that did not fit the writer's buffer: the whole buffer needs at least this many
/// bytes (the build runs again in a larger one, see [`build_flat`]).
#[derive(Debug)]
pub(crate) struct Full {
    at_least: usize,
}

/// Why a build stopped: its buffer was full, or the builder failed with `E`.
pub(crate) enum Stop<E> {
    Full(Full),
    Failed(E),
}

impl<E> From<Full> for Stop<E> {
    #[inline]
    fn from(full: Full) -> Stop<E> {
        Stop::Full(full)
    }
}

/// Builds a flat term with `build`, which writes the records and gives the root's offset.
///
/// Always inlined: the interpreter's caller gets the flat term in registers, not through a
/// returned value on the stack (copying that right away waits for the stores that wrote it).
///
/// The buffer is taken once, zeroed, at the `estimate`d size, from the thread's arena when
/// `in_arena` (which keeps the room not written for the next term; see [`crate::arena`]),
/// else from malloc (room not written is kept: cutting it would reallocate), so that the writer
/// needs no vector bookkeeping per record. A build that outgrows its buffer runs again in one
/// at least twice as large: building has no effects but the records and kept terms, which a
/// new run writes afresh. `Err(None)`: the term needs more than the 4 GiB a buffer can
/// address.
#[inline(always)]
pub(crate) fn build_flat<E>(
    estimate: usize,
    in_arena: bool,
    mut build: impl FnMut(&mut FlatWriter<'_>) -> Result<Offset, Stop<E>>,
) -> Result<FlatTerm, Option<E>> {
    let mut room = ROOT.saturating_add(estimate);
    loop {
        if room > u32::MAX as usize {
            return Err(None);
        }
        if !in_arena {
            // Exactly `room` bytes (`vec!` allocates no more), so boxing does not reallocate.
            let mut buf = vec![0; room].into_boxed_slice();
            let mut terms = None;
            let mut out = FlatWriter::new(&mut buf, &mut terms);
            match build(&mut out) {
                Ok(root) => {
                    let terms = out.into_terms();
                    buf[..ROOT].copy_from_slice(&root.to_le_bytes());
                    return Ok(FlatTerm {
                        parts: Parts::new(Buf::from(buf), terms),
                    });
                }
                Err(Stop::Failed(e)) => return Err(Some(e)),
                Err(Stop::Full(full)) => {
                    room = full.at_least.max(room.saturating_mul(2));
                    continue;
                }
            }
        }
        let built = crate::arena::build(room, true, |buf| {
            let mut terms = None;
            let mut out = FlatWriter::new(buf, &mut terms);
            let root = build(&mut out)?;
            let used = out.end();
            let terms = out.into_terms();
            buf[..ROOT].copy_from_slice(&root.to_le_bytes());
            Ok((used, terms))
        });
        match built {
            Ok((buf, terms)) => {
                return Ok(FlatTerm {
                    parts: Parts::new(buf, terms),
                })
            }
            Err(Stop::Failed(e)) => return Err(Some(e)),
            Err(Stop::Full(full)) => room = full.at_least.max(room.saturating_mul(2)),
        }
    }
}

/// Writes records into a zeroed buffer of fixed size, through a cursor: a record costs one
/// room check and no length update of a vector, and the writer's state stays in registers.
/// A write past the buffer's end fails with [`Full`] and writes nothing.
pub(crate) struct FlatWriter<'b> {
    buf: &'b mut [u8],
    /// Where the next record starts: bytes from here on are room.
    end: usize,
    /// The terms kept beside the records (not part of the writer, so that calls that grow the
    /// vector leave the writer's state in registers).
    terms: &'b mut KeptTerms,
    /// Whether terms may be kept: not in a [`FlatLog`], which holds records only. A term to
    /// keep then fails the build as too large for the buffer (`Full` of `usize::MAX`).
    keeps: bool,
}

impl<'b> FlatWriter<'b> {
    /// A writer over `buf` (zeroed, at most 4 GiB), leaving room for the root's offset.
    #[inline]
    fn new(buf: &'b mut [u8], terms: &'b mut KeptTerms) -> FlatWriter<'b> {
        debug_assert!(buf.len() <= u32::MAX as usize, "offsets are u32");
        FlatWriter {
            buf,
            end: ROOT,
            terms,
            keeps: true,
        }
    }

    /// A writer over `buf` (at most 4 GiB) that keeps no terms beside the records: a term
    /// that would need one fails the build as [`Full`] of `usize::MAX`.
    #[inline]
    pub(crate) fn records_only(buf: &'b mut [u8], terms: &'b mut KeptTerms) -> FlatWriter<'b> {
        FlatWriter {
            keeps: false,
            ..FlatWriter::new(buf, terms)
        }
    }

    /// The same writer, as a value of its own: a builder's loop keeps it in registers and
    /// gives [`FlatWriter::end`] back with [`FlatWriter::resume`] once done.
    #[inline]
    pub(crate) fn local(&mut self) -> FlatWriter<'_> {
        FlatWriter {
            buf: self.buf,
            end: self.end,
            terms: self.terms,
            keeps: self.keeps,
        }
    }

    /// Where the writing stopped (of a [`FlatWriter::local`] copy).
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.end
    }

    /// Starts again from an empty buffer, for another run of a builder.
    #[inline]
    pub(crate) fn restart(&mut self) {
        self.end = ROOT;
        *self.terms = None;
    }

    /// Takes up after a [`FlatWriter::local`] copy that stopped at `end`.
    #[inline]
    pub(crate) fn resume(&mut self, end: usize) {
        self.end = end;
    }

    /// The next `n` bytes of the buffer, which the caller fills, and where they start.
    #[inline]
    fn claim(&mut self, n: usize) -> Result<(Offset, &mut [u8]), Full> {
        let at = self.end;
        match self.buf.get_mut(at..).and_then(|room| room.get_mut(..n)) {
            Some(room) => {
                self.end = at + n;
                // The buffer holds at most 4 GiB (see `new`), so the offset fits.
                Ok((at as Offset, room))
            }
            None => Err(Full {
                at_least: at.saturating_add(n),
            }),
        }
    }

    /// Writes a record of a tag and a 4-byte number (a count, length or index) followed by
    /// `more` bytes that the caller fills: the record's offset, and those bytes.
    #[inline]
    fn head(&mut self, tag: u8, n: usize, more: usize) -> Result<(Offset, &mut [u8]), Full> {
        let count = u32::try_from(n).map_err(|_| Full {
            at_least: usize::MAX,
        })?;
        let (at, room) = self.claim(HEAD + more)?;
        let (head, rest) = room.split_at_mut(HEAD);
        head[0] = tag;
        head[1..].copy_from_slice(&count.to_le_bytes());
        Ok((at, rest))
    }

    /// Writes a record of a tag and an 8-byte value: its offset.
    #[inline]
    fn value(&mut self, tag: u8, v: u64) -> Result<Offset, Full> {
        let (at, room) = self.claim(9)?;
        room[0] = tag;
        room[1..].copy_from_slice(&v.to_le_bytes());
        Ok(at)
    }

    /// Writes `offsets` (of a list's or tuple's elements, and a list's tail) into `room`.
    #[inline]
    fn put_offsets(room: &mut [u8], offsets: impl Iterator<Item = Offset>) {
        for (slot, item) in room.chunks_exact_mut(4).zip(offsets) {
            slot.copy_from_slice(&item.to_le_bytes());
        }
    }

    #[inline]
    pub(crate) fn nil(&mut self) -> Result<Offset, Full> {
        let (at, room) = self.claim(1)?;
        room[0] = tag::NIL;
        Ok(at)
    }

    #[inline]
    pub(crate) fn atom(&mut self, atom: Atom) -> Result<Offset, Full> {
        Ok(self.head(tag::ATOM, atom.index() as usize, 0)?.0)
    }

    #[inline]
    pub(crate) fn int(&mut self, v: i64) -> Result<Offset, Full> {
        self.value(tag::INT, v as u64)
    }

    /// An unsigned integer: an `INT` record when it fits `i64`.
    #[inline]
    pub(crate) fn uint(&mut self, v: u64) -> Result<Offset, Full> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => self.term(Term::from(v)),
        }
    }

    #[inline]
    pub(crate) fn float(&mut self, f: f64) -> Result<Offset, Full> {
        self.value(tag::FLOAT, f.to_bits())
    }

    #[inline]
    pub(crate) fn pid(&mut self, pid: Pid) -> Result<Offset, Full> {
        match pid.local_id() {
            Some(n) => self.value(tag::PID, n),
            None => self.term(Term::Pid(pid)),
        }
    }

    #[inline]
    pub(crate) fn port(&mut self, port: Port) -> Result<Offset, Full> {
        match port.local_id() {
            Some(n) => self.value(tag::PORT, n),
            None => self.term(Term::Port(port)),
        }
    }

    /// A binary copied into the buffer.
    #[inline]
    pub(crate) fn binary(&mut self, bytes: &[u8]) -> Result<Offset, Full> {
        let (at, room) = self.head(tag::BINARY, bytes.len(), bytes.len())?;
        room.copy_from_slice(bytes);
        Ok(at)
    }

    /// The characters `chars` (at least one) consed onto the term at `tail`.
    #[inline]
    pub(crate) fn string(&mut self, chars: &[u8], tail: Offset) -> Result<Offset, Full> {
        debug_assert!(!chars.is_empty(), "an empty string is its tail");
        let (at, room) = self.head(tag::STRING, chars.len(), chars.len() + 4)?;
        let (room, tail_slot) = room.split_at_mut(chars.len());
        room.copy_from_slice(chars);
        tail_slot.copy_from_slice(&tail.to_le_bytes());
        Ok(at)
    }

    /// `[heads... | tail]` (at least one head).
    #[inline]
    pub(crate) fn list(
        &mut self,
        heads: impl ExactSizeIterator<Item = Offset>,
        tail: Offset,
    ) -> Result<Offset, Full> {
        let n = heads.len();
        debug_assert!(n > 0, "a list without heads is its tail");
        let (at, room) = self.head(tag::LIST, n, 4 * n + 4)?;
        let (room, tail_slot) = room.split_at_mut(4 * n);
        Self::put_offsets(room, heads);
        tail_slot.copy_from_slice(&tail.to_le_bytes());
        Ok(at)
    }

    #[inline]
    pub(crate) fn tuple(
        &mut self,
        items: impl ExactSizeIterator<Item = Offset>,
    ) -> Result<Offset, Full> {
        let n = items.len();
        let (at, room) = self.head(tag::TUPLE, n, 4 * n)?;
        Self::put_offsets(room, items);
        Ok(at)
    }

    /// A term kept as it is, beside the buffer.
    ///
    /// Inlined, with the keeping out of line: a call that took the writer would keep its
    /// cursor in memory for the whole interpreter loop.
    #[inline(always)]
    pub(crate) fn term(&mut self, term: Term) -> Result<Offset, Full> {
        if !self.keeps {
            return Err(Full {
                at_least: usize::MAX,
            });
        }
        let index = self.terms.as_ref().map_or(0, |terms| terms.len());
        let at = self.head(tag::TERM, index, 0)?.0;
        keep(self.terms, term);
        Ok(at)
    }

    /// Writes `term`: the offset of its record. The offsets of a container's elements are
    /// collected on `scratch` (one vector for the whole term, so that the recursive frame
    /// stays small).
    fn put_term(&mut self, term: &Term, scratch: &mut Vec<Offset>) -> Result<Offset, Full> {
        let (items, tail) = match term {
            Term::List(items) if !items.is_empty() => (items, None),
            Term::ImproperList(items, tail) => (items, Some(tail)),
            Term::Tuple(items) => (items, None),
            _ => return self.put_leaf(term),
        };
        let from = scratch.len();
        for item in items {
            let at = self.put_term(item, scratch)?;
            scratch.push(at);
        }
        let at = match (term, tail) {
            (Term::Tuple(_), _) => self.tuple(scratch[from..].iter().copied()),
            (_, Some(tail)) => {
                let tail = self.put_term(tail, scratch)?;
                self.list(scratch[from..].iter().copied(), tail)
            }
            (_, None) => {
                let nil = self.nil()?;
                self.list(scratch[from..].iter().copied(), nil)
            }
        };
        scratch.truncate(from);
        at
    }

    #[inline(never)]
    fn put_leaf(&mut self, term: &Term) -> Result<Offset, Full> {
        match term {
            Term::Atom(a) => self.atom(*a),
            Term::Int(i) => self.int(*i),
            Term::Float(f) => self.float(*f),
            Term::Binary(b) if b.len() <= INLINE_BINARY_LIMIT => self.binary(b),
            Term::Pid(p) => self.pid(*p),
            Term::Port(p) => self.port(*p),
            Term::List(_) => self.nil(),
            _ => self.term(term.clone()),
        }
    }

    /// The terms written so far, for [`Records::view`].
    #[inline]
    pub(crate) fn records(&self) -> Records<'_> {
        Records {
            buf: &self.buf[..self.end],
            terms: self.terms.as_deref().unwrap_or_default(),
        }
    }

    /// The kept terms, as a flat term holds them.
    #[inline]
    fn into_terms(self) -> KeptTerms {
        self.terms.take()
    }
}

/// Adds `term` to the kept terms.
#[inline(never)]
fn keep(terms: &mut KeptTerms, term: Term) {
    terms.get_or_insert_with(Vec::new).push(term);
}

impl FlatTerm {
    /// The flat form of `term`.
    pub fn from_term(term: &Term) -> FlatTerm {
        let mut scratch = Vec::new();
        let built = build_flat::<std::convert::Infallible>(64, false, |out| {
            Ok(out.put_term(term, &mut scratch)?)
        });
        built.unwrap_or_else(|_too_large| {
            // Past 4 GiB of records: the term is kept whole, beside a buffer of one record.
            build_flat::<std::convert::Infallible>(HEAD, false, |out| Ok(out.term(term.clone())?))
                .expect("one record fits")
        })
    }

    /// The term, for reading it one level at a time (as [`Term`]'s `&Term` is read).
    #[inline]
    pub fn root(&self) -> FlatRef<'_> {
        let records = self.parts.records();
        let at = if port_data::is_port_data(records.buf) {
            At::PortData(DataPart::Root)
        } else {
            At::Record(size(records.buf, 0))
        };
        FlatRef { records, at }
    }

    /// The term as a [`Term`].
    pub fn to_term(&self) -> Term {
        self.root().to_term()
    }

    /// The term as a [`Term`], moving out what the flat form holds as a `Term` (a shared
    /// binary, an `EXT2TERM` term) when that is the whole term.
    pub fn into_term(mut self) -> Term {
        // (A compact port data message keeps no terms.)
        if let Parts::WithTerms(parts) = &mut self.parts {
            let root = size(&parts.buf, 0);
            if parts.buf[root] == tag::TERM {
                return parts.terms.swap_remove(size(&parts.buf, root + 1));
            }
        }
        self.to_term()
    }

    /// Appends the `~0p` text of this term, with pids, ports and references named by
    /// `namer` (as [`Term::write_with`]).
    pub fn write_with(&self, out: &mut String, namer: &mut dyn IdentNamer) {
        crate::print::write_term(self.root(), out, namer);
    }

    /// The external form of the term (as [`crate::encode`] of [`FlatTerm::to_term`]).
    pub fn encode(&self) -> Vec<u8> {
        crate::encode(self.root())
    }

    /// Bytes of the buffer (the root's offset and the records, and for a term too large for
    /// the arena, room the records did not need; not counting [`Term`]s kept beside it; or a
    /// port data message's compact form, see [`FlatTerm::port_data`]).
    pub fn buffer_len(&self) -> usize {
        self.parts.buf().len()
    }
}

impl From<&Term> for FlatTerm {
    fn from(term: &Term) -> FlatTerm {
        FlatTerm::from_term(term)
    }
}

impl fmt::Display for FlatTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_with(&mut s, &mut DefaultNamer);
        f.write_str(&s)
    }
}

impl fmt::Debug for FlatTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlatTerm({self})")
    }
}

impl PartialEq<Term> for FlatTerm {
    /// Exact equality (`=:=`), as [`Term`]'s.
    fn eq(&self, other: &Term) -> bool {
        self.to_term() == *other
    }
}

impl PartialEq<FlatTerm> for Term {
    fn eq(&self, other: &FlatTerm) -> bool {
        other == self
    }
}

impl PartialEq for FlatTerm {
    fn eq(&self, other: &FlatTerm) -> bool {
        self.to_term() == other.to_term()
    }
}

impl Eq for FlatTerm {}

#[inline(never)]
fn leaf_to_term<'a>(leaf: Node<'a, FlatRef<'a>>) -> Term {
    match leaf {
        Node::Atom(a) => Term::Atom(a),
        Node::Int(i) => Term::Int(i),
        Node::BigInt(b) => Term::BigInt(b.clone()),
        Node::Float(f) => Term::Float(f),
        Node::Binary(b) => Term::Binary(Bytes::copy_from_slice(b)),
        Node::Bitstring(b) => Term::Bitstring(b.clone()),
        Node::Map(pairs) => Term::Map(pairs.to_vec()),
        Node::Pid(p) => Term::Pid(p),
        Node::Port(p) => Term::Port(p),
        Node::Ref(r) => Term::Ref(r),
        Node::List { .. } | Node::Tuple { .. } => unreachable!("containers recurse in to_term"),
    }
}

/// A term inside a [`FlatTerm`]: a [`TermRef`].
#[derive(Clone, Copy)]
pub struct FlatRef<'a> {
    records: Records<'a>,
    at: At<'a>,
}

/// Where a [`FlatRef`]'s term is.
#[derive(Clone, Copy)]
enum At<'a> {
    /// The record at this offset.
    Record(usize),
    /// A character of a string record: a small integer.
    Char(u8),
    /// Inside a term kept as a [`Term`].
    Term(&'a Term),
    /// A part of a port data message in the compact form (`port_data`).
    PortData(DataPart),
    /// A binary of the buffer's bytes `at..at + len` (a piece of a compact port data
    /// message; `u32`s, so that a place stays two words).
    Bytes { at: u32, len: u32 },
}

/// The parts of a port data message `{Port, {Tag, Data}}` in the compact form.
#[derive(Clone, Copy)]
enum DataPart {
    Root,
    Inner,
    Port,
    Tag,
    Data,
}

impl<'a> FlatRef<'a> {
    fn at(self, at: At<'a>) -> FlatRef<'a> {
        FlatRef { at, ..self }
    }

    /// `term` read the way a flat term is: one view type for a message in either form.
    #[inline]
    pub fn of_term(term: &'a Term) -> FlatRef<'a> {
        FlatRef {
            records: Records {
                buf: &[],
                terms: &[],
            },
            at: At::Term(term),
        }
    }

    /// The atom this is.
    #[inline]
    pub fn atom(self) -> Option<Atom> {
        match self.node() {
            Node::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is the atom `name`.
    #[inline]
    pub fn is_atom(self, name: &str) -> bool {
        self.atom().is_some_and(|a| a.as_str() == name)
    }

    /// The integer this is, if it fits `i64`.
    #[inline]
    pub fn int(self) -> Option<i64> {
        match self.node() {
            Node::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The bytes of the binary this is.
    #[inline]
    pub fn binary(self) -> Option<&'a [u8]> {
        // A piece of a compact port data message, read without making a `Node` (a data
        // message's usual read: `tuple()?.nth(1)?.tuple()?.nth(1)?.binary()`).
        match self.at {
            At::Bytes { at, len } => {
                let at = at as usize;
                return self.records.buf.get(at..at + len as usize);
            }
            At::PortData(DataPart::Data) => return port_data::data_binary(self.records.buf),
            At::PortData(_) => return None,
            _ => {}
        }
        match self.node() {
            Node::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The port this is.
    #[inline]
    pub fn port(self) -> Option<Port> {
        match self.node() {
            Node::Port(p) => Some(p),
            _ => None,
        }
    }

    /// The pid this is.
    #[inline]
    pub fn pid(self) -> Option<Pid> {
        match self.node() {
            Node::Pid(p) => Some(p),
            _ => None,
        }
    }

    /// The reference this is.
    #[inline]
    pub fn reference(self) -> Option<Ref> {
        match self.node() {
            Node::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// The elements of the tuple this is.
    #[inline]
    pub fn tuple(self) -> Option<FlatItems<'a>> {
        // A compact port data message's tuples, without making a `Node` (see `binary`).
        if let At::PortData(of @ (DataPart::Root | DataPart::Inner)) = self.at {
            return Some(self.items(Items::PortData { of, next: 0, at: 0 }, 2));
        }
        match self.node() {
            Node::Tuple { items, .. } => Some(items),
            _ => None,
        }
    }

    /// The elements of the proper list this is (`[]` included).
    #[inline]
    pub fn list(self) -> Option<FlatItems<'a>> {
        match self.node() {
            Node::List {
                items, tail: None, ..
            } => Some(items),
            _ => None,
        }
    }

    /// The term as a [`Term`].
    ///
    /// Containers recurse here; everything else is converted out of line, so that the
    /// recursive frame stays small (deep terms on small thread stacks).
    pub fn to_term(self) -> Term {
        if let Some(term) = self.record_to_term() {
            return term;
        }
        if let Some(kept) = self.kept() {
            return kept.clone();
        }
        match self.node() {
            Node::List { items, len, tail } => {
                let mut elements = Vec::with_capacity(len);
                for t in items {
                    elements.push(t.to_term());
                }
                match tail {
                    None => Term::List(elements),
                    Some(tail) => Term::ImproperList(elements, Box::new(tail.to_term())),
                }
            }
            Node::Tuple { items, len } => {
                let mut elements = Vec::with_capacity(len);
                for t in items {
                    elements.push(t.to_term());
                }
                Term::Tuple(elements)
            }
            leaf => leaf_to_term(leaf),
        }
    }

    /// A proper string of one segment (what the spec interpreter writes for `ERL_DRV_STRING`)
    /// converted straight from its bytes, without going through [`TermRef::node`] and
    /// [`FlatItems`] per character (a string's characters were most of a converted token
    /// list's time). `None`: the general path converts it. Out of line and not recursive, so
    /// that `to_term`'s recursive frame stays small.
    #[inline(never)]
    fn record_to_term(self) -> Option<Term> {
        let At::Record(at) = self.at else {
            return None;
        };
        let buf = self.records.buf;
        if buf[at] != tag::STRING || buf[size(buf, tail_slot(buf, at))] != tag::NIL {
            return None;
        }
        let chars = &buf[at + HEAD..at + HEAD + size(buf, at + 1)];
        Some(Term::List(
            chars.iter().map(|&c| Term::Int(i64::from(c))).collect(),
        ))
    }

    /// The [`Term`] this is, if the flat term keeps it as one.
    #[inline]
    fn kept(self) -> Option<&'a Term> {
        match self.at {
            At::Term(t) => Some(t),
            At::Record(at) if self.records.buf[at] == tag::TERM => {
                Some(self.records.term(size(self.records.buf, at + 1)))
            }
            _ => None,
        }
    }

    /// A term kept as a [`Term`], seen as a flat one.
    fn term_node(self, term: &'a Term) -> Node<'a, Self> {
        term.node().map_refs(
            |items, len| self.items(Items::Terms(items), len),
            |tail| self.at(At::Term(tail)),
        )
    }

    fn items(self, items: Items<'a>, len: usize) -> FlatItems<'a> {
        FlatItems {
            records: self.records,
            items,
            left: len,
        }
    }

    /// The list whose first segment is at `seg`: walks the segments for its length and tail.
    fn list_node(self, first: usize) -> Node<'a, Self> {
        let buf = self.records.buf;
        let mut len = 0;
        let mut seg = first;
        let tail = loop {
            len += size(buf, seg + 1);
            let tail = size(buf, tail_slot(buf, seg));
            match buf[tail] {
                tag::LIST | tag::STRING => seg = tail,
                tag::NIL => break None,
                tag::TERM => match self.records.term(size(buf, tail + 1)) {
                    Term::List(rest) => {
                        len += rest.len();
                        break None;
                    }
                    Term::ImproperList(rest, t) => {
                        len += rest.len();
                        break Some(self.at(At::Term(t)));
                    }
                    _ => break Some(self.at(At::Record(tail))),
                },
                _ => break Some(self.at(At::Record(tail))),
            }
        };
        let items = Items::Segment {
            seg: first,
            next: 0,
            n: size(buf, first + 1),
        };
        Node::List {
            items: self.items(items, len),
            len,
            tail,
        }
    }
}

impl<'a> FlatRef<'a> {
    /// A part of a compact port data message (see `port_data`): `{Port, {Tag, Data}}`,
    /// `Data` the header's bytes as a list ending in the pieces as binaries, the last one as
    /// the tail (just that binary for one piece and no header, the header's bytes alone for
    /// no piece), as [`FlatTerm::port_data`] writes it in records.
    fn port_data_node(self, part: DataPart) -> Node<'a, Self> {
        let buf = self.records.buf;
        let items = |of, at, len| self.items(Items::PortData { of, next: 0, at }, len);
        match part {
            DataPart::Root => Node::Tuple {
                items: items(DataPart::Root, 0, 2),
                len: 2,
            },
            DataPart::Inner => Node::Tuple {
                items: items(DataPart::Inner, 0, 2),
                len: 2,
            },
            DataPart::Port => Node::Port(Port::local(Layout::port(buf))),
            DataPart::Tag => Node::Atom(Layout::tag(buf)),
            DataPart::Data => {
                if let Some(binary) = port_data::data_binary(buf) {
                    return Node::Binary(binary);
                }
                let layout = Layout::of(buf);
                let pieces_at = layout.pieces_at();
                let Some(last) = layout.pieces.checked_sub(1) else {
                    return Node::List {
                        items: items(DataPart::Data, pieces_at, layout.header_len),
                        len: layout.header_len,
                        tail: None,
                    };
                };
                // The last piece ends the buffer.
                let last_len = Layout::piece_len(buf, last);
                let last_at = buf.len() - last_len;
                let len = layout.header_len + last;
                Node::List {
                    items: items(DataPart::Data, pieces_at, len),
                    len,
                    tail: Some(self.at(At::Bytes {
                        at: last_at as u32,
                        len: last_len as u32,
                    })),
                }
            }
        }
    }
}

impl fmt::Display for FlatRef<'_> {
    /// The term as Erlang prints it (`~0p`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        crate::print::write_term(*self, &mut s, &mut DefaultNamer);
        f.write_str(&s)
    }
}

impl fmt::Debug for FlatRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        crate::print::write_term(*self, &mut s, &mut DefaultNamer);
        write!(f, "FlatRef({s})")
    }
}

impl<'a> TermRef<'a> for FlatRef<'a> {
    type Items = FlatItems<'a>;

    #[inline]
    fn node(self) -> Node<'a, Self> {
        let at = match self.at {
            At::Record(at) => at,
            At::Char(c) => return Node::Int(i64::from(c)),
            At::Term(t) => return self.term_node(t),
            At::PortData(part) => return self.port_data_node(part),
            At::Bytes { at, len } => {
                let at = at as usize;
                return Node::Binary(&self.records.buf[at..at + len as usize]);
            }
        };
        let buf = self.records.buf;
        match buf[at] {
            tag::NIL => Node::List {
                items: self.items(Items::Terms([].iter()), 0),
                len: 0,
                tail: None,
            },
            tag::ATOM => Node::Atom(Atom::from_index(u32::from_le_bytes(
                buf[at + 1..at + 5].try_into().expect("an atom record"),
            ))),
            tag::INT => Node::Int(word(buf, at + 1) as i64),
            tag::FLOAT => Node::Float(f64::from_bits(word(buf, at + 1))),
            tag::PID => Node::Pid(Pid::local(word(buf, at + 1))),
            tag::PORT => Node::Port(Port::local(word(buf, at + 1))),
            tag::BINARY => {
                let len = size(buf, at + 1);
                Node::Binary(&buf[at + HEAD..at + HEAD + len])
            }
            tag::LIST | tag::STRING => self.list_node(at),
            tag::TUPLE => {
                let n = size(buf, at + 1);
                let items = Items::Segment {
                    seg: at,
                    next: 0,
                    n,
                };
                Node::Tuple {
                    items: self.items(items, n),
                    len: n,
                }
            }
            tag::TERM => self.term_node(self.records.term(size(buf, at + 1))),
            other => unreachable!("no record has tag {other}"),
        }
    }
}

/// The elements of a list or tuple of a [`FlatTerm`].
#[derive(Clone)]
pub struct FlatItems<'a> {
    records: Records<'a>,
    items: Items<'a>,
    /// Elements not yet given.
    left: usize,
}

#[derive(Clone)]
enum Items<'a> {
    /// Element `next` of the `n` of the list segment, string or tuple at `seg`; a list goes
    /// on in its tail segment.
    Segment { seg: usize, next: usize, n: usize },
    /// The elements of a term kept as a [`Term`] (a list's last part, or the whole term).
    Terms(std::slice::Iter<'a, Term>),
    /// Element `next` of a compact port data message's tuple or data list (`of`); `at`:
    /// where the next piece's bytes start.
    PortData {
        of: DataPart,
        next: usize,
        at: usize,
    },
}

impl<'a> Iterator for FlatItems<'a> {
    type Item = FlatRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<FlatRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let buf = self.records.buf;
        let at = loop {
            match &mut self.items {
                Items::Terms(items) => break At::Term(items.next()?),
                Items::PortData { of, next, at } => {
                    let i = *next;
                    *next += 1;
                    break match (*of, i) {
                        (DataPart::Root, 0) => At::PortData(DataPart::Port),
                        (DataPart::Root, _) => At::PortData(DataPart::Inner),
                        (DataPart::Inner, 0) => At::PortData(DataPart::Tag),
                        (DataPart::Inner, _) => At::PortData(DataPart::Data),
                        (_, i) => {
                            let layout = Layout::of(buf);
                            match i.checked_sub(layout.header_len) {
                                None => At::Char(buf[layout.header_at() + i]),
                                Some(piece) => {
                                    let len = Layout::piece_len(buf, piece);
                                    let start = *at;
                                    *at += len;
                                    // The buffer holds at most 4 GiB (`port_data::write`).
                                    At::Bytes {
                                        at: start as u32,
                                        len: len as u32,
                                    }
                                }
                            }
                        }
                    };
                }
                Items::Segment { seg, next, n } if *next < *n => {
                    let i = *next;
                    *next += 1;
                    break if buf[*seg] == tag::STRING {
                        At::Char(buf[*seg + HEAD + i])
                    } else {
                        At::Record(size(buf, *seg + HEAD + 4 * i))
                    };
                }
                Items::Segment { seg, .. } => {
                    // This segment is done, and `left` says the list goes on in its tail.
                    let tail = size(buf, tail_slot(buf, *seg));
                    self.items = match buf[tail] {
                        tag::TERM => match self.records.term(size(buf, tail + 1)) {
                            Term::List(rest) | Term::ImproperList(rest, _) => {
                                Items::Terms(rest.iter())
                            }
                            _ => return None,
                        },
                        tag::LIST | tag::STRING => Items::Segment {
                            seg: tail,
                            next: 0,
                            n: size(buf, tail + 1),
                        },
                        _ => return None,
                    };
                }
            }
        };
        Some(FlatRef {
            records: self.records,
            at,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }

    /// Skips by index where elements sit at known places (a tuple, a list segment or string
    /// the skip stays in, a port data message's tuples): `tuple().nth(1)` reads one element,
    /// not two.
    #[inline]
    fn nth(&mut self, n: usize) -> Option<FlatRef<'a>> {
        // A compact port data message's tuples: the element is known by its index.
        if let Items::PortData {
            of: of @ (DataPart::Root | DataPart::Inner),
            next,
            ..
        } = &mut self.items
        {
            if n >= self.left {
                self.left = 0;
                return None;
            }
            let i = *next + n;
            *next = i + 1;
            self.left -= n + 1;
            let part = match (*of, i) {
                (DataPart::Root, 0) => DataPart::Port,
                (DataPart::Root, _) => DataPart::Inner,
                (_, 0) => DataPart::Tag,
                (_, _) => DataPart::Data,
            };
            return Some(FlatRef {
                records: self.records,
                at: At::PortData(part),
            });
        }
        let skips = n < self.left
            && match &mut self.items {
                Items::Segment { next, n: len, .. } if *next + n < *len => {
                    *next += n;
                    true
                }
                _ => false,
            };
        if skips {
            self.left -= n;
        } else {
            for _ in 0..n {
                self.next()?;
            }
        }
        self.next()
    }
}

impl ExactSizeIterator for FlatItems<'_> {}

impl fmt::Debug for FlatItems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// A piece of a port's output data: bytes the driver lends for the call (copied into the
/// message) or a binary shared with it.
#[derive(Debug, Clone)]
pub enum DataPiece<'a> {
    /// Bytes valid for the duration of the call: copied.
    Borrowed(&'a [u8]),
    /// A binary the message shares (kept by reference when larger than
    /// [`INLINE_BINARY_LIMIT`], copied otherwise, as BEAM copies small binaries to the heap).
    Shared(Bytes),
}

impl DataPiece<'_> {
    /// The piece's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            DataPiece::Borrowed(b) => b,
            DataPiece::Shared(b) => b,
        }
    }

    /// Bytes of records this piece takes as a binary (a kept binary is one `TERM` record).
    #[inline]
    fn binary_room(&self) -> usize {
        match self {
            DataPiece::Shared(b) if b.len() > INLINE_BINARY_LIMIT => HEAD,
            piece => HEAD + piece.bytes().len(),
        }
    }
}

impl FlatTerm {
    /// A port's output message `{Port, {Tag, Data}}` (`Tag` is `data` for BEAM's
    /// `driver_output*`), built in one buffer as term output is. `Data` is, in a binary-mode
    /// port, the header's bytes as a list ending in the pieces as binaries, the last one as the
    /// tail (`[H1, H2, <<A>>, <<B>> | <<C>>]`; just `<<A>>` for one piece and no header; the
    /// header's bytes alone for no piece); in a list-mode port, every byte as a list of
    /// integers. Small binaries are copied in; a shared binary larger than
    /// [`INLINE_BINARY_LIMIT`] is kept by reference, and so is a larger borrowed one (copied
    /// once, so that converting the message to a [`Term`] does not copy it again).
    ///
    /// A binary-mode message whose pieces are all copied is written in a compact form: the
    /// port, the tag, the lengths and the bytes, in the thread's arena, read through the same
    /// [`FlatRef`] (see `port_data.rs`; under a backlog a message costs mostly the memory it
    /// fills).
    pub fn port_data(
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
        binary: bool,
    ) -> FlatTerm {
        if binary {
            let compact = port
                .local_id()
                .and_then(|number| port_data::write(number, tag, header, pieces));
            if let Some(buf) = compact {
                return FlatTerm {
                    parts: Parts::Records(buf),
                };
            }
        }
        let body_room = if binary {
            let n = pieces.len();
            pieces.iter().map(DataPiece::binary_room).sum::<usize>() + HEAD + 4 * n + 4
        } else {
            pieces.iter().map(|p| p.bytes().len()).sum::<usize>() + 1
        };
        // Both tuples, the port and the tag, the header's string record and a nil.
        let estimate = (HEAD + 8) * 2 + 9 + HEAD + HEAD + header.len() + 4 + 1 + body_room;
        let built = build_flat::<std::convert::Infallible>(estimate, true, |out| {
            let data = if binary {
                Self::binary_data(out, header, pieces)?
            } else {
                let mut tail = out.nil()?;
                for piece in pieces.iter().rev().map(DataPiece::bytes) {
                    if !piece.is_empty() {
                        tail = out.string(piece, tail)?;
                    }
                }
                if header.is_empty() {
                    tail
                } else {
                    out.string(header, tail)?
                }
            };
            let tag = out.atom(tag)?;
            let inner = out.tuple([tag, data].into_iter())?;
            let port = out.port(port)?;
            Ok(out.tuple([port, inner].into_iter())?)
        });
        built.unwrap_or_else(|_too_large| {
            // Past 4 GiB of records: the message as a Term, kept whole.
            let term = Self::port_data_term(port, tag, header, pieces, binary);
            FlatTerm::from_term(&term)
        })
    }

    /// The data of a binary-mode port's message (see [`FlatTerm::port_data`]).
    #[inline]
    fn binary_data(
        out: &mut FlatWriter<'_>,
        header: &[u8],
        pieces: &[DataPiece<'_>],
    ) -> Result<Offset, Full> {
        let put = |out: &mut FlatWriter<'_>, piece: &DataPiece<'_>| match piece {
            DataPiece::Shared(b) if b.len() > INLINE_BINARY_LIMIT => {
                out.term(Term::Binary(b.clone()))
            }
            DataPiece::Borrowed(b) if b.len() > INLINE_BINARY_LIMIT => {
                out.term(Term::Binary(Bytes::from(Box::<[u8]>::from(*b))))
            }
            piece => out.binary(piece.bytes()),
        };
        let tail = match pieces.split_last() {
            None => out.nil()?,
            Some((last, [])) => put(out, last)?,
            Some((last, rest)) => {
                let mut heads = [0; 8];
                let last = put(out, last)?;
                if rest.len() <= heads.len() {
                    for (slot, piece) in heads.iter_mut().zip(rest) {
                        *slot = put(out, piece)?;
                    }
                    out.list(heads[..rest.len()].iter().copied(), last)?
                } else {
                    let mut heads = Vec::with_capacity(rest.len());
                    for piece in rest {
                        heads.push(put(out, piece)?);
                    }
                    out.list(heads.into_iter(), last)?
                }
            }
        };
        if header.is_empty() {
            Ok(tail)
        } else {
            out.string(header, tail)
        }
    }

    /// [`FlatTerm::port_data`]'s message as a [`Term`].
    fn port_data_term(
        port: Port,
        tag: Atom,
        header: &[u8],
        pieces: &[DataPiece<'_>],
        binary: bool,
    ) -> Term {
        let int = |b: &u8| Term::Int(i64::from(*b));
        let mut items: Vec<Term> = header.iter().map(int).collect();
        let data = if binary {
            let mut binaries = pieces
                .iter()
                .map(|p| Term::Binary(Bytes::copy_from_slice(p.bytes())))
                .collect::<Vec<_>>();
            match binaries.pop() {
                None => Term::List(items),
                Some(last) if items.is_empty() && binaries.is_empty() => last,
                Some(last) => {
                    items.extend(binaries);
                    Term::ImproperList(items, Box::new(last))
                }
            }
        } else {
            items.extend(pieces.iter().flat_map(|p| p.bytes().iter().map(int)));
            Term::List(items)
        };
        Term::Tuple(vec![
            Term::Port(port),
            Term::Tuple(vec![Term::Atom(tag), data]),
        ])
    }
}
