//! The external term format, byte-identical to OTP 25's `term_to_binary/1`
//! for what it encodes, and accepting what `binary_to_term/1` accepts of the
//! term types this crate has.

use std::cell::Cell;

use bytes::Bytes;

use crate::view::{Node, TermRef};
use crate::{Atom, Pid, Port, Ref, Term, MAX_NESTING};

/// The version byte every external term starts with.
pub const VERSION: u8 = 131;

/// ETF tag bytes.
#[allow(missing_docs)]
pub mod ext {
    pub const NEW_FLOAT: u8 = 70;
    pub const BIT_BINARY: u8 = 77;
    pub const ATOM_CACHE_REF: u8 = 82;
    pub const COMPRESSED: u8 = 80;
    pub const NEW_PID: u8 = 88;
    pub const NEW_PORT: u8 = 89;
    pub const NEWER_REFERENCE: u8 = 90;
    pub const SMALL_INTEGER: u8 = 97;
    pub const INTEGER: u8 = 98;
    pub const FLOAT: u8 = 99;
    pub const ATOM: u8 = 100;
    pub const REFERENCE: u8 = 101;
    pub const PORT: u8 = 102;
    pub const PID: u8 = 103;
    pub const SMALL_TUPLE: u8 = 104;
    pub const LARGE_TUPLE: u8 = 105;
    pub const NIL: u8 = 106;
    pub const STRING: u8 = 107;
    pub const LIST: u8 = 108;
    pub const BINARY: u8 = 109;
    pub const SMALL_BIG: u8 = 110;
    pub const LARGE_BIG: u8 = 111;
    pub const NEW_FUN: u8 = 112;
    pub const EXPORT: u8 = 113;
    pub const NEW_REFERENCE: u8 = 114;
    pub const SMALL_ATOM: u8 = 115;
    pub const MAP: u8 = 116;
    pub const FUN: u8 = 117;
    pub const ATOM_UTF8: u8 = 118;
    pub const SMALL_ATOM_UTF8: u8 = 119;
    pub const V4_PORT: u8 = 120;
}

/// Why bytes are not a valid external term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    /// The first byte is not 131.
    #[error("missing version byte 131")]
    BadVersion,
    /// The input ends inside a term.
    #[error("input ends inside a term")]
    Truncated,
    /// A `BIT_BINARY_EXT` whose bit count does not fit its length.
    #[error("bad bit count in a bitstring")]
    BadBitstring,
    /// A tag byte this decoder does not know.
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    /// A valid tag for a term type this crate does not represent (funs,
    /// bitstrings, compressed terms, atom cache references).
    #[error("unsupported term type (tag {0})")]
    Unsupported(u8),
    /// An atom that is too long, not valid UTF-8, or does not fit the table.
    #[error("bad atom")]
    BadAtom,
    /// A NaN or infinite float, or an unparsable `FLOAT_EXT`.
    #[error("bad float")]
    BadFloat,
    /// A map with the same key twice.
    #[error("duplicate map key")]
    DuplicateMapKey,
    /// A pid, port or reference whose node is not an atom, or a reference with a bad length.
    #[error("bad pid, port or reference")]
    BadIdentifier,
    /// Terms nested deeper than [`MAX_NESTING`].
    #[error("terms nested too deep")]
    TooDeep,
    /// [`decode_safe`] met an atom that is not in the atom table (`binary_to_term(B, [safe])`
    /// fails with `badarg` there).
    #[error("an atom not already in the atom table (safe decode)")]
    NewAtom,
}

/// Encodes a term ([`Term`] or [`FlatTerm`](crate::FlatTerm)) as `term_to_binary/1` would.
pub fn encode<'a>(term: impl TermRef<'a>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(term, &mut out);
    out
}

/// Appends the external form of a term (with the version byte) to `out`.
pub fn encode_into<'a>(term: impl TermRef<'a>, out: &mut Vec<u8>) {
    out.push(VERSION);
    encode_term(term, out);
}

fn put_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_be_bytes());
}

fn encode_atom(atom: Atom, out: &mut Vec<u8>) {
    let name = atom.as_str();
    // OTP 25 writes Latin-1 atoms as ATOM_EXT and only others as UTF-8; ASCII, the common
    // case, is the same bytes in both.
    if name.is_ascii() {
        out.push(ext::ATOM);
        put_u16(out, name.len());
        out.extend_from_slice(name.as_bytes());
    } else if name.chars().all(|c| (c as u32) < 256) {
        out.push(ext::ATOM);
        put_u16(out, name.chars().count());
        out.extend(name.chars().map(|c| c as u32 as u8));
    } else if name.len() < 256 {
        out.push(ext::SMALL_ATOM_UTF8);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    } else {
        out.push(ext::ATOM_UTF8);
        put_u16(out, name.len());
        out.extend_from_slice(name.as_bytes());
    }
}

fn encode_big(negative: bool, magnitude: &[u8], out: &mut Vec<u8>) {
    if magnitude.len() < 256 {
        out.push(ext::SMALL_BIG);
        out.push(magnitude.len() as u8);
    } else {
        out.push(ext::LARGE_BIG);
        put_u32(out, magnitude.len());
    }
    out.push(u8::from(negative));
    out.extend_from_slice(magnitude);
}

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if (0..=255).contains(&i) {
        out.extend_from_slice(&[ext::SMALL_INTEGER, i as u8]);
    } else if let Ok(v) = i32::try_from(i) {
        out.push(ext::INTEGER);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        let mag = i.unsigned_abs().to_le_bytes();
        let len = mag.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        encode_big(i < 0, &mag[..len], out);
    }
}

/// Containers recurse here; everything else is encoded out of line, so that the recursive
/// frame stays small (deep terms on small thread stacks).
fn encode_term<'a, R: TermRef<'a>>(term: R, out: &mut Vec<u8>) {
    match term.node() {
        Node::List {
            items,
            len,
            tail: None,
        } if encode_string::<R>(items.clone(), len, out) => {}
        Node::List { items, len, tail } => {
            put_sequence_head(ext::LIST, len, out);
            for t in items {
                encode_term(t, out);
            }
            match tail {
                Some(t) => encode_term(t, out),
                None => out.push(ext::NIL),
            }
        }
        Node::Tuple { items, len } => {
            put_sequence_head(ext::SMALL_TUPLE, len, out);
            for t in items {
                encode_term(t, out);
            }
        }
        Node::Map(pairs) => encode_map(pairs, out),
        leaf => encode_leaf(leaf, out),
    }
}

/// Encodes a proper list that is `[]` or a string (`STRING_EXT`: up to 65535 elements, each
/// 0..=255); `false` (and nothing written) for any other list.
#[inline(never)]
fn encode_string<'a, R: TermRef<'a>>(items: R::Items, len: usize, out: &mut Vec<u8>) -> bool {
    let byte = |t: R| match t.node() {
        Node::Int(c @ 0..=255) => Some(c as u8),
        _ => None,
    };
    if len == 0 {
        out.push(ext::NIL);
        return true;
    }
    if len > 0xFFFF || !items.clone().all(|t| byte(t).is_some()) {
        return false;
    }
    out.push(ext::STRING);
    put_u16(out, len);
    out.extend(items.filter_map(byte));
    true
}

/// The tag and length of a list (`LIST_EXT`) or a tuple (`SMALL_TUPLE_EXT` or, from 256
/// elements, `LARGE_TUPLE_EXT`).
#[inline(never)]
fn put_sequence_head(tag: u8, len: usize, out: &mut Vec<u8>) {
    match tag {
        ext::SMALL_TUPLE if len < 256 => out.extend_from_slice(&[tag, len as u8]),
        ext::SMALL_TUPLE => {
            out.push(ext::LARGE_TUPLE);
            put_u32(out, len);
        }
        _ => {
            out.push(tag);
            put_u32(out, len);
        }
    }
}

#[inline(never)]
fn encode_map(pairs: &[(Term, Term)], out: &mut Vec<u8>) {
    out.push(ext::MAP);
    put_u32(out, pairs.len());
    let mut put = |(k, v): &(Term, Term)| {
        encode_term(k, out);
        encode_term(v, out);
    };
    // BEAM writes a large map's pairs in reverse iteration order.
    match crate::hamt::large_map_order(pairs) {
        Some(order) => order.into_iter().rev().for_each(|i| put(&pairs[i])),
        None => pairs.iter().for_each(put),
    }
}

#[inline(never)]
fn encode_leaf<'a, R: TermRef<'a>>(leaf: Node<'a, R>, out: &mut Vec<u8>) {
    match leaf {
        Node::Atom(a) => encode_atom(a, out),
        Node::Int(i) => encode_int(i, out),
        Node::BigInt(b) => match b.to_i64() {
            Some(i) => encode_int(i, out),
            None => encode_big(b.is_negative(), b.magnitude_le_bytes(), out),
        },
        Node::Float(f) => {
            out.push(ext::NEW_FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Node::Binary(b) => {
            out.push(ext::BINARY);
            put_u32(out, b.len());
            out.extend_from_slice(b);
        }
        Node::Bitstring(b) => {
            out.push(ext::BIT_BINARY);
            put_u32(out, b.bytes().len());
            out.push(b.trailing_bits());
            out.extend_from_slice(b.bytes());
        }
        Node::Pid(p) => {
            out.push(ext::NEW_PID);
            encode_atom(p.node, out);
            for v in [p.id, p.serial, p.creation] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Node::Port(p) => {
            if let Ok(id) = u32::try_from(p.id) {
                out.push(ext::NEW_PORT);
                encode_atom(p.node, out);
                out.extend_from_slice(&id.to_be_bytes());
            } else {
                out.push(ext::V4_PORT);
                encode_atom(p.node, out);
                out.extend_from_slice(&p.id.to_be_bytes());
            }
            out.extend_from_slice(&p.creation.to_be_bytes());
        }
        Node::Ref(r) => {
            out.push(ext::NEWER_REFERENCE);
            put_u16(out, r.words().len());
            encode_atom(r.node, out);
            out.extend_from_slice(&r.creation.to_be_bytes());
            for w in r.words() {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        Node::List { .. } | Node::Tuple { .. } | Node::Map(_) => {
            unreachable!("containers are encoded by encode_term")
        }
    }
}

/// Decodes one external term. Bytes after it are ignored, as `binary_to_term/1` does.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    decode_prefix(bytes).map(|(t, _)| t)
}

/// Decodes one external term and says how many bytes it took.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Term, usize), EtfError> {
    decode_prefix_with(bytes, Atoms::Intern)
}

/// Decodes one external term from untrusted input, as `binary_to_term(B, [safe])`: an atom
/// (also a pid's, port's or reference's node) that is not already in the atom table fails
/// with [`EtfError::NewAtom`] rather than being added. The table is never collected, so
/// input that could name new atoms could fill it.
pub fn decode_safe(bytes: &[u8]) -> Result<Term, EtfError> {
    decode_prefix_with(bytes, Atoms::Existing).map(|(t, _)| t)
}

fn decode_prefix_with(bytes: &[u8], atoms: Atoms) -> Result<(Term, usize), EtfError> {
    match bytes.first() {
        Some(&VERSION) => {}
        Some(_) => return Err(EtfError::BadVersion),
        None => return Err(EtfError::Truncated),
    }
    let mut reader = Reader {
        buf: bytes,
        pos: 1,
        atoms,
    };
    let term = reader.term(0)?;
    Ok((term, reader.pos))
}

/// Whether decoding may add atoms to the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Atoms {
    Intern,
    Existing,
}

/// Slots of [`RECENT_ATOMS`].
const RECENT_ATOM_SLOTS: usize = 64;

thread_local! {
    /// The atoms this thread decoded lately, by a hash of their bytes: the atoms of a
    /// stream of messages (node names above all) repeat from one message to the next, and a
    /// hit costs neither a UTF-8 check nor a lookup in the atom table. An atom is never
    /// freed, so a remembered one stays valid.
    static RECENT_ATOMS: [Cell<Option<Atom>>; RECENT_ATOM_SLOTS] =
        const { [const { Cell::new(None) }; RECENT_ATOM_SLOTS] };
}

fn recent_atom_slot(bytes: &[u8]) -> usize {
    let byte = |b: Option<&u8>| usize::from(b.copied().unwrap_or(0));
    let mix = bytes.len() ^ (byte(bytes.first()) << 1) ^ (byte(bytes.last()) << 3);
    mix % RECENT_ATOM_SLOTS
}

/// The remembered atom whose name is `bytes` (UTF-8, or Latin-1 when not `utf8`).
fn recent_atom(bytes: &[u8], utf8: bool) -> Option<Atom> {
    let atom = RECENT_ATOMS.with(|slots| slots[recent_atom_slot(bytes)].get())?;
    let name = atom.as_str();
    // Latin-1 bytes name the same atom as UTF-8 ones only when they are ASCII.
    (name.as_bytes() == bytes && (utf8 || name.is_ascii())).then_some(atom)
}

fn remember_atom(name: &[u8], atom: Atom) {
    RECENT_ATOMS.with(|slots| slots[recent_atom_slot(name)].set(Some(atom)));
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    atoms: Atoms,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        let end = self.pos.checked_add(n).ok_or(EtfError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(EtfError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, EtfError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize)
    }
    fn u32(&mut self) -> Result<u32, EtfError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn len32(&mut self) -> Result<usize, EtfError> {
        Ok(self.u32()? as usize)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// A vector for `n` items of at least `min_item_bytes` each, never
    /// reserving more than the remaining input could fill.
    fn vec_for<T>(&self, n: usize, min_item_bytes: usize) -> Result<Vec<T>, EtfError> {
        if n.saturating_mul(min_item_bytes) > self.remaining() {
            return Err(EtfError::Truncated);
        }
        Ok(Vec::with_capacity(n))
    }

    fn atom(&mut self) -> Result<Atom, EtfError> {
        let tag = self.u8()?;
        self.atom_body(tag)
    }

    fn atom_body(&mut self, tag: u8) -> Result<Atom, EtfError> {
        let (len, utf8) = match tag {
            ext::ATOM => (self.u16()?, false),
            ext::SMALL_ATOM => (usize::from(self.u8()?), false),
            ext::ATOM_UTF8 => (self.u16()?, true),
            ext::SMALL_ATOM_UTF8 => (usize::from(self.u8()?), true),
            ext::ATOM_CACHE_REF => return Err(EtfError::Unsupported(tag)),
            _ => return Err(EtfError::BadIdentifier),
        };
        let name = self.take(len)?;
        if let Some(atom) = recent_atom(name, utf8) {
            return Ok(atom);
        }
        let latin1;
        let name = if utf8 {
            std::str::from_utf8(name).map_err(|_| EtfError::BadAtom)?
        } else if name.is_ascii() {
            std::str::from_utf8(name).expect("ASCII is UTF-8")
        } else {
            latin1 = name.iter().map(|&b| char::from(b)).collect::<String>();
            &latin1
        };
        let atom = match self.atoms {
            Atoms::Intern => Atom::try_new(name).map_err(|_| EtfError::BadAtom),
            Atoms::Existing => Atom::existing(name).ok_or(EtfError::NewAtom),
        }?;
        remember_atom(name.as_bytes(), atom);
        Ok(atom)
    }

    fn float(f: f64) -> Result<Term, EtfError> {
        if f.is_finite() {
            Ok(Term::Float(f))
        } else {
            Err(EtfError::BadFloat)
        }
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        if depth >= MAX_NESTING {
            return Err(EtfError::TooDeep);
        }
        // Containers recurse; everything else is decoded out of line so that
        // the recursive frame stays small (deep terms on small thread stacks).
        match self.u8()? {
            ext::LIST => self.list(depth),
            ext::SMALL_TUPLE => {
                let n = usize::from(self.u8()?);
                self.tuple(n, depth)
            }
            ext::LARGE_TUPLE => {
                let n = self.len32()?;
                self.tuple(n, depth)
            }
            ext::MAP => self.map(depth),
            tag => self.leaf(tag),
        }
    }

    fn list(&mut self, depth: usize) -> Result<Term, EtfError> {
        let n = self.len32()?;
        let mut items = self.vec_for(n, 1)?;
        for _ in 0..n {
            items.push(self.term(depth + 1)?);
        }
        let tail = self.term(depth + 1)?;
        Ok(Term::cons(items, tail))
    }

    fn tuple(&mut self, n: usize, depth: usize) -> Result<Term, EtfError> {
        let mut items = self.vec_for(n, 1)?;
        for _ in 0..n {
            items.push(self.term(depth + 1)?);
        }
        Ok(Term::Tuple(items))
    }

    fn map(&mut self, depth: usize) -> Result<Term, EtfError> {
        let n = self.len32()?;
        let mut pairs = self.vec_for(n, 2)?;
        for _ in 0..n {
            let k = self.term(depth + 1)?;
            let v = self.term(depth + 1)?;
            pairs.push((k, v));
        }
        Term::map(pairs).ok_or(EtfError::DuplicateMapKey)
    }

    #[inline(never)]
    fn leaf(&mut self, tag: u8) -> Result<Term, EtfError> {
        Ok(match tag {
            ext::SMALL_INTEGER => Term::Int(i64::from(self.u8()?)),
            ext::INTEGER => Term::Int(i64::from(self.u32()? as i32)),
            ext::SMALL_BIG | ext::LARGE_BIG => {
                let n = if tag == ext::SMALL_BIG {
                    usize::from(self.u8()?)
                } else {
                    self.len32()?
                };
                let negative = self.u8()? != 0;
                Term::int_from_le_bytes(negative, self.take(n)?)
            }
            ext::NEW_FLOAT => Reader::float(f64::from_bits(u64::from_be_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )))?,
            ext::FLOAT => {
                let text = self.take(31)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(31);
                let s = std::str::from_utf8(&text[..end]).map_err(|_| EtfError::BadFloat)?;
                Reader::float(s.trim().parse().map_err(|_| EtfError::BadFloat)?)?
            }
            ext::ATOM | ext::SMALL_ATOM | ext::ATOM_UTF8 | ext::SMALL_ATOM_UTF8 => {
                Term::Atom(self.atom_body(tag)?)
            }
            ext::NIL => Term::List(Vec::new()),
            ext::STRING => {
                let n = self.u16()?;
                Term::string_latin1(self.take(n)?)
            }
            ext::BINARY => {
                let n = self.len32()?;
                Term::Binary(Bytes::copy_from_slice(self.take(n)?))
            }
            ext::BIT_BINARY => {
                let n = self.len32()?;
                let bits = self.u8()?;
                let data = Bytes::copy_from_slice(self.take(n)?);
                // As binary_to_term/1: 1..=8 bits in a non-empty last byte, or no bytes and
                // no bits; the unused low bits of the last byte are dropped.
                match (n, bits) {
                    (0, 0) | (1.., 8) => Term::Binary(data),
                    (1.., 1..=7) => Term::Bitstring(
                        crate::Bitstring::new(data, bits).expect("bytes and bits checked"),
                    ),
                    _ => return Err(EtfError::BadBitstring),
                }
            }
            ext::NEW_PID | ext::PID => {
                let node = self.atom()?;
                let id = self.u32()?;
                let serial = self.u32()?;
                let creation = if tag == ext::PID {
                    u32::from(self.u8()?)
                } else {
                    self.u32()?
                };
                Term::Pid(Pid {
                    node,
                    id,
                    serial,
                    creation,
                })
            }
            ext::NEW_PORT | ext::PORT | ext::V4_PORT => {
                let node = self.atom()?;
                let id = if tag == ext::V4_PORT {
                    u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))
                } else {
                    u64::from(self.u32()?)
                };
                let creation = if tag == ext::PORT {
                    u32::from(self.u8()?)
                } else {
                    self.u32()?
                };
                Term::Port(Port { node, id, creation })
            }
            ext::REFERENCE => {
                let node = self.atom()?;
                let id = self.u32()?;
                let creation = u32::from(self.u8()?);
                Term::Ref(Ref::new(node, creation, &[id]).ok_or(EtfError::BadIdentifier)?)
            }
            ext::NEW_REFERENCE | ext::NEWER_REFERENCE => {
                let n = self.u16()?;
                let node = self.atom()?;
                let creation = if tag == ext::NEW_REFERENCE {
                    u32::from(self.u8()?)
                } else {
                    self.u32()?
                };
                if n == 0 || n > crate::ident::MAX_REF_WORDS {
                    return Err(EtfError::BadIdentifier);
                }
                let mut words = [0u32; crate::ident::MAX_REF_WORDS];
                for w in words.iter_mut().take(n) {
                    *w = self.u32()?;
                }
                Term::Ref(Ref::new(node, creation, &words[..n]).ok_or(EtfError::BadIdentifier)?)
            }
            ext::COMPRESSED | ext::ATOM_CACHE_REF | ext::NEW_FUN | ext::EXPORT | ext::FUN => {
                return Err(EtfError::Unsupported(tag))
            }
            _ => return Err(EtfError::UnknownTag(tag)),
        })
    }
}
