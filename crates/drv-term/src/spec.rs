//! The interpreter for driver term specs (`erl_drv_output_term`,
//! `erl_drv_send_term`, `driver_output_term`, `driver_send_term`).
//!
//! A spec is a flat array of `ErlDrvTermData` in reverse Polish notation: each
//! term is a tag followed by its arguments, and `LIST`, `TUPLE`, `MAP` and
//! `STRING_CONS` combine terms already built. Memory the spec points into
//! (strings, binaries, doubles, 64-bit integers) is read through [`SpecEnv`],
//! so this crate needs no `unsafe`.

use bytes::Bytes;

use crate::flat::{build_flat, FlatWriter, Offset, Stop};
use crate::tags::*;
use crate::{Atom, EtfError, FlatTerm, Pid, Port, Term, TermData, INLINE_BINARY_LIMIT};

/// Deepest nesting of lists, tuples and maps accepted from a spec or from ETF.
/// BEAM has no such limit; this one keeps recursive printing, comparing and
/// dropping within a thread's stack.
pub const MAX_NESTING: usize = 1000;

/// What the spec interpreter needs from its caller: the meaning of handles and
/// access to the memory the spec points into.
pub trait SpecEnv {
    /// The atom for an `ERL_DRV_ATOM` argument (by default, what [`Atom::to_term_data`] gives).
    fn atom(&self, v: TermData) -> Option<Atom> {
        Atom::from_term_data(v)
    }
    /// The port for an `ERL_DRV_PORT` argument (by default, [`Port::from_local_term_data`]).
    fn port(&self, v: TermData) -> Option<Port> {
        Port::from_local_term_data(v)
    }
    /// The pid for an `ERL_DRV_PID` argument (by default, [`Pid::from_local_term_data`]).
    fn pid(&self, v: TermData) -> Option<Pid> {
        Pid::from_local_term_data(v)
    }
    /// The `len` bytes at `ptr` (`STRING`, `STRING_CONS`, `BUF2BINARY`, `EXT2TERM`), which
    /// the interpreter copies; `None` if they cannot be read.
    fn bytes(&self, ptr: TermData, len: usize) -> Option<&[u8]>;
    /// The `len` bytes at `offset` of the driver binary `bin`; `None` for a NULL binary or a
    /// range past its end. A binary of up to [`INLINE_BINARY_LIMIT`] bytes is copied from
    /// here into the term.
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]>;
    /// The same bytes as [`SpecEnv::binary`], shared rather than copied: asked for larger
    /// binaries, once `binary` has accepted the range. By default a copy.
    fn shared_binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes> {
        self.binary(bin, len, offset).map(Bytes::copy_from_slice)
    }
    /// The `double` at `ptr` (`ERL_DRV_FLOAT`).
    fn float(&self, ptr: TermData) -> Option<f64>;
    /// The `ErlDrvSInt64` at `ptr` (`ERL_DRV_INT64`).
    fn int64(&self, ptr: TermData) -> Option<i64>;
    /// The `ErlDrvUInt64` at `ptr` (`ERL_DRV_UINT64`).
    fn uint64(&self, ptr: TermData) -> Option<u64>;
}

/// An environment for specs that point at no memory: atoms, integers, ports, pids, `NIL` and
/// containers build as usual; a tag that reads memory (a string, a binary, a float, a 64-bit
/// integer, an external term) is rejected, its memory unreadable.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMemory;

impl SpecEnv for NoMemory {
    fn bytes(&self, _: TermData, _: usize) -> Option<&[u8]> {
        None
    }
    fn binary(&self, _: TermData, _: usize, _: usize) -> Option<&[u8]> {
        None
    }
    fn float(&self, _: TermData) -> Option<f64> {
        None
    }
    fn int64(&self, _: TermData) -> Option<i64> {
        None
    }
    fn uint64(&self, _: TermData) -> Option<u64> {
        None
    }
}

/// Why a spec was rejected. `at` is the index of the offending tag in the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A tag value that is none of the 17 `ERL_DRV_*` tags.
    #[error("unknown tag {tag} at {at}")]
    UnknownTag { at: usize, tag: TermData },
    /// The spec ends before the tag's arguments.
    #[error("missing arguments for tag {tag} at {at}")]
    MissingArguments { at: usize, tag: TermData },
    /// `ERL_DRV_ATOM` with a value that is no atom.
    #[error("bad atom at {at}")]
    BadAtom { at: usize },
    /// `ERL_DRV_PORT` with a value that is no port.
    #[error("bad port at {at}")]
    BadPort { at: usize },
    /// `ERL_DRV_PID` with a value that is no pid.
    #[error("bad pid at {at}")]
    BadPid { at: usize },
    /// `ERL_DRV_BINARY` with a NULL binary or a range past its end.
    #[error("bad binary or range at {at}")]
    BadBinary { at: usize },
    /// A NULL buffer, a negative length, or memory that cannot be read.
    #[error("bad buffer or length at {at}")]
    BadBuffer { at: usize },
    /// `ERL_DRV_FLOAT` whose value is NaN or infinite.
    #[error("non-finite float at {at}")]
    NonFiniteFloat { at: usize },
    /// `LIST` with a count <= 0, or `TUPLE`/`MAP` with a negative count.
    #[error("bad count at {at}")]
    BadCount { at: usize },
    /// A tag needs more terms than have been built (`STRING_CONS` with no
    /// tail, `LIST`/`TUPLE`/`MAP` count beyond the stack).
    #[error("not enough terms for tag {tag} at {at}")]
    StackUnderflow { at: usize, tag: TermData },
    /// `ERL_DRV_EXT2TERM` whose buffer is not a valid external term.
    #[error("bad external term at {at}: {error}")]
    BadExternalTerm { at: usize, error: EtfError },
    /// `ERL_DRV_MAP` with the same key twice. Reported only when the spec has no other
    /// error, as the runtime finds it only while building (see
    /// [`SpecError::found_after_receiver_check`]).
    #[error("duplicate map key at {at}")]
    DuplicateMapKey { at: usize },
    /// Terms nested deeper than [`MAX_NESTING`].
    #[error("terms nested too deep at {at}")]
    TooDeep { at: usize },
    /// The spec does not leave exactly one term.
    #[error("spec builds {terms} terms, not 1")]
    NotOneTerm { terms: usize },
    /// The term needs more than the 4 GiB a [`FlatTerm`] buffer can address (where BEAM
    /// would fail to allocate it).
    #[error("term too large for one buffer")]
    TooLarge,
}

impl SpecError {
    /// Whether the runtime finds this error only after it has checked the port and the
    /// receiver: BEAM validates a spec in a first pass and detects duplicate map keys while
    /// building the term, after finding the receiver (in an `ERL_DRV_MAP` or in the map of an
    /// `ERL_DRV_EXT2TERM`). With a dead receiver such a spec gives 0 (not delivered), not -1.
    pub fn found_after_receiver_check(&self) -> bool {
        matches!(
            self,
            SpecError::DuplicateMapKey { .. }
                | SpecError::BadExternalTerm {
                    error: EtfError::DuplicateMapKey,
                    ..
                }
        )
    }
}

/// The `N` arguments of the tag at `at`.
#[inline(always)]
fn args<const N: usize>(spec: &[TermData], at: usize) -> Result<[TermData; N], SpecError> {
    spec.get(at + 1..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or(SpecError::MissingArguments { at, tag: spec[at] })
}

/// A length argument as C code passes it through an `int`: negative values
/// (and values an `int` cannot hold) are rejected, as the runtime does.
fn c_int_len(v: TermData) -> Option<usize> {
    let as_int = v as i64 as i32;
    (as_int >= 0 && v as i64 == i64::from(as_int)).then_some(as_int as usize)
}

/// A count argument (`LIST`, `TUPLE`, `MAP`): the runtime reads it as an `int`, and rejects
/// one below `min`.
#[inline]
fn c_int_count(v: TermData, min: i32, at: usize) -> Result<usize, SpecError> {
    let count = v as i64 as i32;
    if count < min {
        return Err(SpecError::BadCount { at });
    }
    Ok(count as usize)
}

/// A term built so far (where its record starts) and how deeply it nests (1 for a leaf).
#[derive(Clone, Copy, Default)]
struct Entry {
    at: Offset,
    depth: u32,
}

/// Specs of up to this many words keep their stack of terms on the thread's stack.
const SMALL_SPEC: usize = 32;

/// Why the interpreter stopped, besides a full buffer.
enum Halt {
    /// The spec is bad.
    Spec(SpecError),
    /// Terms may nest deeper than [`MAX_NESTING`]: run again, tracking each term's depth.
    Deep,
}

impl From<SpecError> for Stop<Halt> {
    #[inline]
    fn from(e: SpecError) -> Stop<Halt> {
        Stop::Failed(Halt::Spec(e))
    }
}

/// The interpreter's stack of terms built so far, in room for as many as the spec has words.
///
/// With `EXACT_DEPTH`, each entry knows how deeply its term nests, so that the first container
/// past [`MAX_NESTING`] is rejected with its position. Without, the entries' depths are not
/// kept (a fold over every container's elements, a tenth of a small spec's cost): `budget`
/// counts containers and the depths of `EXT2TERM` terms, an upper bound of any term's depth
/// less one, and reaching [`MAX_NESTING`] halts with [`Halt::Deep`] (a spec of a thousand
/// containers), for a run with exact depths.
struct Stack<'a, const EXACT_DEPTH: bool> {
    entries: &'a mut [Entry],
    len: usize,
    budget: usize,
}

impl<const EXACT_DEPTH: bool> Stack<'_, EXACT_DEPTH> {
    #[inline]
    fn push(&mut self, entry: Entry) {
        self.entries[self.len] = entry;
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<Entry> {
        self.len = self.len.checked_sub(1)?;
        Some(self.entries[self.len])
    }

    /// The last `n` entries, for the container tag `tag` at `at`: where they start, and the
    /// container's depth.
    #[inline]
    fn take(&mut self, n: usize, tag: TermData, at: usize) -> Result<(usize, u32), Stop<Halt>> {
        let from = self
            .len
            .checked_sub(n)
            .ok_or(SpecError::StackUnderflow { at, tag })?;
        if !EXACT_DEPTH {
            self.nests(1)?;
            return Ok((from, 1));
        }
        let deepest = self.entries[from..self.len]
            .iter()
            .fold(0, |d, e| d.max(e.depth));
        if deepest as usize >= MAX_NESTING {
            return Err(SpecError::TooDeep { at }.into());
        }
        Ok((from, deepest + 1))
    }

    /// Counts `levels` more of nesting against the budget (without exact depths).
    #[inline]
    fn nests(&mut self, levels: usize) -> Result<(), Stop<Halt>> {
        self.budget += levels;
        if !EXACT_DEPTH && self.budget >= MAX_NESTING {
            return Err(Stop::Failed(Halt::Deep));
        }
        Ok(())
    }

    /// The offsets of the entries from `from` on.
    #[inline]
    fn offsets(&self, from: usize) -> impl ExactSizeIterator<Item = Offset> + '_ {
        self.entries[from..self.len].iter().map(|e| e.at)
    }
}

/// Leaf entries (depth 1).
#[inline]
fn leaf(at: Offset) -> Entry {
    Entry { at, depth: 1 }
}

/// Room for the records of a spec of `words` words, most of the time: a record takes 1 to 9
/// bytes besides what it copies, a container 4 more per element, which comes to at most 5
/// bytes per spec word; that leaves 3 a word for copied bytes (a 50-byte binary in the
/// documentation's `{tcp, Port, [100 | Bin]}`, 14 words, fits: 108 bytes of records). More
/// copied bytes grow the buffer. A small buffer matters: up to 120 bytes come from malloc's
/// fastest bins.
pub(crate) fn capacity_for(words: usize) -> usize {
    words.saturating_mul(8)
}

/// Builds the term a driver term spec describes, validating it as the runtime does: any error
/// means no term at all. The term is built as a [`FlatTerm`] and converted.
pub fn build_term<E: SpecEnv + ?Sized>(spec: &[TermData], env: &E) -> Result<Term, SpecError> {
    FlatTerm::from_spec(spec, env).map(FlatTerm::into_term)
}

impl FlatTerm {
    /// Builds the term a driver term spec describes, validating it as the runtime does: any
    /// error means no term at all. This is the spec interpreter.
    ///
    /// Generic over the environment so that a concrete one (the C ABI's) is inlined; a
    /// `&dyn SpecEnv` works too. Inlined itself, so that the caller gets the term in registers.
    #[inline]
    pub fn from_spec<E: SpecEnv + ?Sized>(
        spec: &[TermData],
        env: &E,
    ) -> Result<FlatTerm, SpecError> {
        build_flat(capacity_for(spec.len()), false, |out| {
            interpret(spec, env, out)
        })
        .map_err(|e| e.unwrap_or(SpecError::TooLarge))
    }
}

/// The interpreter: writes the records of the spec's term to `out`, and gives the offset of
/// its root.
#[inline(always)]
pub(crate) fn interpret<E: SpecEnv + ?Sized>(
    spec: &[TermData],
    env: &E,
    out: &mut FlatWriter<'_>,
) -> Result<Offset, Stop<SpecError>> {
    /// One run over a writer of its own (kept in registers), taken up by `out` if it succeeds.
    #[inline(always)]
    fn run<E: SpecEnv + ?Sized, const EXACT_DEPTH: bool>(
        spec: &[TermData],
        env: &E,
        out: &mut FlatWriter<'_>,
    ) -> Result<Offset, Stop<Halt>> {
        let mut local = out.local();
        let root = interpret_in::<E, EXACT_DEPTH>(spec, env, &mut local)?;
        let end = local.end();
        out.resume(end);
        Ok(root)
    }
    let halt = match run::<E, false>(spec, env, out) {
        Err(Stop::Failed(Halt::Deep)) => {
            out.restart();
            run::<E, true>(spec, env, out)
        }
        other => other,
    };
    halt.map_err(|stop| match stop {
        Stop::Full(full) => Stop::Full(full),
        Stop::Failed(Halt::Spec(e)) => Stop::Failed(e),
        Stop::Failed(Halt::Deep) => unreachable!("exact depths never halt for depth"),
    })
}

/// One run of [`interpret`].
#[inline(always)]
fn interpret_in<E: SpecEnv + ?Sized, const EXACT_DEPTH: bool>(
    spec: &[TermData],
    env: &E,
    out: &mut FlatWriter<'_>,
) -> Result<Offset, Stop<Halt>> {
    // The terms built so far: at most one per tag, so at most one per spec word. A plain
    // slice on the stack for the usual small spec (no spilled/inline checks per access).
    let mut small = [Entry::default(); SMALL_SPEC];
    let mut large = Vec::new();
    let mut stack = Stack::<EXACT_DEPTH> {
        entries: if spec.len() <= SMALL_SPEC {
            &mut small[..]
        } else {
            large.resize(spec.len(), Entry::default());
            &mut large[..]
        },
        len: 0,
        budget: 0,
    };
    // An error the runtime finds only while building: reported if nothing else is wrong.
    let mut deferred = None;
    let mut i = 0;
    while let Some(&tag) = spec.get(i) {
        let at = i;
        let bad_buffer = || SpecError::BadBuffer { at };
        let entry = match tag {
            ERL_DRV_NIL => {
                i += 1;
                leaf(out.nil()?)
            }
            ERL_DRV_ATOM => {
                let [atom] = args(spec, at)?;
                i += 2;
                leaf(out.atom(env.atom(atom).ok_or(SpecError::BadAtom { at })?)?)
            }
            ERL_DRV_INT => {
                let [v] = args(spec, at)?;
                i += 2;
                leaf(out.int(v as i64)?)
            }
            ERL_DRV_UINT => {
                let [v] = args(spec, at)?;
                i += 2;
                leaf(out.uint(crate::word_to_u64(v))?)
            }
            ERL_DRV_INT64 => {
                let [ptr] = args(spec, at)?;
                i += 2;
                leaf(out.int(env.int64(ptr).ok_or_else(bad_buffer)?)?)
            }
            ERL_DRV_UINT64 => {
                let [ptr] = args(spec, at)?;
                i += 2;
                leaf(out.uint(env.uint64(ptr).ok_or_else(bad_buffer)?)?)
            }
            ERL_DRV_PORT => {
                let [port] = args(spec, at)?;
                i += 2;
                leaf(out.port(env.port(port).ok_or(SpecError::BadPort { at })?)?)
            }
            ERL_DRV_PID => {
                let [pid] = args(spec, at)?;
                i += 2;
                leaf(out.pid(env.pid(pid).ok_or(SpecError::BadPid { at })?)?)
            }
            ERL_DRV_FLOAT => {
                let [ptr] = args(spec, at)?;
                i += 2;
                let f = env.float(ptr).ok_or_else(bad_buffer)?;
                if !f.is_finite() {
                    return Err(SpecError::NonFiniteFloat { at }.into());
                }
                leaf(out.float(f)?)
            }
            ERL_DRV_BINARY => {
                let [bin, len, offset] = args(spec, at)?;
                i += 4;
                let (len, offset) = (len as usize, offset as usize);
                let bytes = env
                    .binary(bin, len, offset)
                    .ok_or(SpecError::BadBinary { at })?;
                leaf(if len <= INLINE_BINARY_LIMIT {
                    out.binary(bytes)?
                } else {
                    let shared = env
                        .shared_binary(bin, len, offset)
                        .ok_or(SpecError::BadBinary { at })?;
                    out.term(Term::Binary(shared))?
                })
            }
            ERL_DRV_BUF2BINARY => {
                let [ptr, len] = args(spec, at)?;
                i += 3;
                leaf(match (ptr, len as usize) {
                    (_, 0) => out.binary(&[])?,
                    (0, _) => return Err(bad_buffer().into()),
                    (ptr, len) => out.binary(env.bytes(ptr, len).ok_or_else(bad_buffer)?)?,
                })
            }
            ERL_DRV_STRING | ERL_DRV_STRING_CONS => {
                let [ptr, len] = args(spec, at)?;
                i += 3;
                let len = c_int_len(len).ok_or_else(bad_buffer)?;
                if ptr == 0 {
                    return Err(bad_buffer().into());
                }
                let tail = if tag == ERL_DRV_STRING_CONS {
                    Some(stack.pop().ok_or(SpecError::StackUnderflow { at, tag })?)
                } else {
                    None
                };
                let chars = match len {
                    0 => &[][..],
                    _ => env.bytes(ptr, len).ok_or_else(bad_buffer)?,
                };
                match (tail, chars.is_empty()) {
                    // No characters: the tail itself, or [].
                    (Some(tail), true) => tail,
                    (None, true) => leaf(out.nil()?),
                    (Some(tail), false) => Entry {
                        at: out.string(chars, tail.at)?,
                        depth: tail.depth,
                    },
                    (None, false) => {
                        let nil = out.nil()?;
                        leaf(out.string(chars, nil)?)
                    }
                }
            }
            ERL_DRV_TUPLE => {
                let [count] = args(spec, at)?;
                i += 2;
                let (from, depth) = stack.take(c_int_count(count, 0, at)?, tag, at)?;
                let entry = Entry {
                    at: out.tuple(stack.offsets(from))?,
                    depth,
                };
                stack.len = from;
                entry
            }
            ERL_DRV_LIST => {
                let [count] = args(spec, at)?;
                i += 2;
                let (from, depth) = stack.take(c_int_count(count, 1, at)?, tag, at)?;
                let tail = stack.pop().expect("a list takes at least one term");
                let at = if stack.len == from {
                    // No heads: the tail itself.
                    tail.at
                } else {
                    out.list(stack.offsets(from), tail.at)?
                };
                stack.len = from;
                Entry { at, depth }
            }
            ERL_DRV_MAP => {
                let [count] = args(spec, at)?;
                i += 2;
                let pairs = c_int_count(count, 0, at)?;
                let (from, depth) = stack.take(2 * pairs, tag, at)?;
                let records = out.records();
                let view = |e: &Entry| records.view(e.at).to_term();
                let pairs = stack.entries[from..stack.len]
                    .chunks_exact(2)
                    .map(|kv| (view(&kv[0]), view(&kv[1])))
                    .collect();
                // Keep going: any other error of the spec takes precedence.
                let map = Term::map(pairs).unwrap_or_else(|| {
                    deferred.get_or_insert(SpecError::DuplicateMapKey { at });
                    Term::Map(Vec::new())
                });
                stack.len = from;
                Entry {
                    at: out.term(map)?,
                    depth,
                }
            }
            ERL_DRV_EXT2TERM => {
                let [ptr, len] = args(spec, at)?;
                i += 3;
                let len = len as i64;
                if ptr == 0 || len <= 0 {
                    return Err(bad_buffer().into());
                }
                let buf = env.bytes(ptr, len as usize).ok_or_else(bad_buffer)?;
                let term = match crate::etf::decode(buf) {
                    Ok(term) => term,
                    Err(error) => {
                        let error = SpecError::BadExternalTerm { at, error };
                        if !error.found_after_receiver_check() {
                            return Err(error.into());
                        }
                        deferred.get_or_insert(error);
                        Term::List(Vec::new())
                    }
                };
                let depth = term.nesting_depth();
                if depth > MAX_NESTING {
                    return Err(SpecError::TooDeep { at }.into());
                }
                stack.nests(depth)?;
                Entry {
                    at: out.term(term)?,
                    depth: depth as u32,
                }
            }
            _ => return Err(SpecError::UnknownTag { at, tag }.into()),
        };
        stack.push(entry);
    }
    let [root] = stack.entries[..stack.len] else {
        return Err(SpecError::NotOneTerm { terms: stack.len }.into());
    };
    if let Some(error) = deferred {
        return Err(error.into());
    }
    Ok(root.at)
}
