//! The interpreter for driver term specs (`erl_drv_output_term`,
//! `erl_drv_send_term`, `driver_output_term`, `driver_send_term`).
//!
//! A spec is a flat array of `ErlDrvTermData` in reverse Polish notation: each
//! term is a tag followed by its arguments, and `LIST`, `TUPLE`, `MAP` and
//! `STRING_CONS` combine terms already built. Memory the spec points into
//! (strings, binaries, doubles, 64-bit integers) is read through [`SpecEnv`],
//! so this crate needs no `unsafe`.

use bytes::Bytes;
use smallvec::SmallVec;

use crate::tags::*;
use crate::{Atom, EtfError, Pid, Port, Term, TermData};

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
    /// `len` bytes at `ptr` (`STRING`, `STRING_CONS`, `BUF2BINARY`, `EXT2TERM`);
    /// `None` if they cannot be read.
    fn bytes(&self, ptr: TermData, len: usize) -> Option<Bytes>;
    /// `len` bytes at `offset` of the driver binary `bin`, shared rather than
    /// copied; `None` for a NULL binary or a range past its end.
    fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<Bytes>;
    /// The `double` at `ptr` (`ERL_DRV_FLOAT`).
    fn float(&self, ptr: TermData) -> Option<f64>;
    /// The `ErlDrvSInt64` at `ptr` (`ERL_DRV_INT64`).
    fn int64(&self, ptr: TermData) -> Option<i64>;
    /// The `ErlDrvUInt64` at `ptr` (`ERL_DRV_UINT64`).
    fn uint64(&self, ptr: TermData) -> Option<u64>;
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

/// How many arguments follow each tag (index = tag).
const ARITY: [usize; 18] = [0, 0, 1, 1, 1, 3, 2, 1, 1, 2, 1, 1, 2, 1, 2, 1, 1, 1];

/// A length argument as C code passes it through an `int`: negative values
/// (and values an `int` cannot hold) are rejected, as the runtime does.
fn c_int_len(v: TermData) -> Option<usize> {
    let as_int = v as i64 as i32;
    (as_int >= 0 && v as i64 == i64::from(as_int)).then_some(as_int as usize)
}

/// A count argument (`LIST`, `TUPLE`, `MAP`): the runtime reads it as an `int`.
fn c_int_count(v: TermData) -> i64 {
    i64::from(v as i64 as i32)
}

struct Stack {
    terms: SmallVec<[Term; 8]>,
    /// Nesting depth of each term in `terms` (1 for a leaf).
    depths: SmallVec<[u32; 8]>,
}

impl Stack {
    fn push(&mut self, t: Term, depth: u32) {
        self.terms.push(t);
        self.depths.push(depth);
    }

    /// Removes the top `n` terms, returning them in push order and their deepest nesting.
    fn pop_n(&mut self, n: usize) -> (impl Iterator<Item = Term> + '_, u32) {
        let from = self.terms.len() - n;
        let depth = self.depths.drain(from..).max().unwrap_or(0);
        (self.terms.drain(from..), depth)
    }
}

/// Builds the term a driver term spec describes, validating it as the
/// runtime does: any error means no term at all.
pub fn build_term(spec: &[TermData], env: &dyn SpecEnv) -> Result<Term, SpecError> {
    let mut stack = Stack {
        terms: SmallVec::new(),
        depths: SmallVec::new(),
    };
    // An error the runtime finds only while building: reported if nothing else is wrong.
    let mut deferred = None;
    let mut i = 0;
    while i < spec.len() {
        let at = i;
        let tag = spec[i];
        let arity = *usize::try_from(tag)
            .ok()
            .filter(|&t| (ERL_DRV_NIL as usize..=ERL_DRV_MAP as usize).contains(&t))
            .and_then(|t| ARITY.get(t))
            .ok_or(SpecError::UnknownTag { at, tag })?;
        let args = spec
            .get(i + 1..i + 1 + arity)
            .ok_or(SpecError::MissingArguments { at, tag })?;
        i += 1 + arity;
        let underflow = SpecError::StackUnderflow { at, tag };
        let bad_buffer = SpecError::BadBuffer { at };
        match tag {
            ERL_DRV_NIL => stack.push(Term::List(Vec::new()), 1),
            ERL_DRV_ATOM => stack.push(
                Term::Atom(env.atom(args[0]).ok_or(SpecError::BadAtom { at })?),
                1,
            ),
            ERL_DRV_INT => stack.push(Term::Int(args[0] as i64), 1),
            ERL_DRV_UINT => stack.push(Term::from(crate::word_to_u64(args[0])), 1),
            ERL_DRV_INT64 => stack.push(Term::Int(env.int64(args[0]).ok_or(bad_buffer)?), 1),
            ERL_DRV_UINT64 => stack.push(Term::from(env.uint64(args[0]).ok_or(bad_buffer)?), 1),
            ERL_DRV_PORT => stack.push(
                Term::Port(env.port(args[0]).ok_or(SpecError::BadPort { at })?),
                1,
            ),
            ERL_DRV_PID => stack.push(
                Term::Pid(env.pid(args[0]).ok_or(SpecError::BadPid { at })?),
                1,
            ),
            ERL_DRV_FLOAT => {
                let f = env.float(args[0]).ok_or(bad_buffer)?;
                if !f.is_finite() {
                    return Err(SpecError::NonFiniteFloat { at });
                }
                stack.push(Term::Float(f), 1)
            }
            ERL_DRV_BINARY => {
                let (len, offset) = (args[1] as usize, args[2] as usize);
                let bin = env
                    .binary(args[0], len, offset)
                    .ok_or(SpecError::BadBinary { at })?;
                stack.push(Term::Binary(bin), 1)
            }
            ERL_DRV_BUF2BINARY => {
                let len = args[1] as usize;
                let bin = match (args[0], len) {
                    (_, 0) => Bytes::new(),
                    (0, _) => return Err(bad_buffer),
                    (ptr, len) => env.bytes(ptr, len).ok_or(bad_buffer)?,
                };
                stack.push(Term::Binary(bin), 1)
            }
            ERL_DRV_STRING | ERL_DRV_STRING_CONS => {
                let len = c_int_len(args[1]).ok_or(bad_buffer.clone())?;
                if args[0] == 0 {
                    return Err(bad_buffer);
                }
                let chars = if len == 0 {
                    Bytes::new()
                } else {
                    env.bytes(args[0], len).ok_or(bad_buffer)?
                };
                let heads: Vec<Term> = chars.iter().map(|&b| Term::Int(i64::from(b))).collect();
                if tag == ERL_DRV_STRING {
                    stack.push(Term::List(heads), 1);
                } else {
                    let tail = stack.terms.pop().ok_or(underflow)?;
                    let depth = stack.depths.pop().unwrap_or(1);
                    stack.push(Term::cons(heads, tail), depth.max(1));
                }
            }
            ERL_DRV_LIST | ERL_DRV_TUPLE | ERL_DRV_MAP => {
                let count = c_int_count(args[0]);
                let min = if tag == ERL_DRV_LIST { 1 } else { 0 };
                if count < min {
                    return Err(SpecError::BadCount { at });
                }
                let take = if tag == ERL_DRV_MAP { 2 * count } else { count } as usize;
                if take > stack.terms.len() {
                    return Err(underflow);
                }
                let (items, depth) = stack.pop_n(take);
                let depth = depth + 1;
                if depth as usize > MAX_NESTING {
                    return Err(SpecError::TooDeep { at });
                }
                let term = match tag {
                    ERL_DRV_TUPLE => Term::Tuple(items.collect()),
                    ERL_DRV_LIST => {
                        let mut heads: Vec<Term> = items.collect();
                        let tail = heads.pop().expect("count >= 1");
                        Term::cons(heads, tail)
                    }
                    _ => {
                        let mut pairs = Vec::with_capacity(take / 2);
                        let mut items = items;
                        while let (Some(k), Some(v)) = (items.next(), items.next()) {
                            pairs.push((k, v));
                        }
                        drop(items);
                        // Keep going: any other error of the spec takes precedence.
                        Term::map(pairs).unwrap_or_else(|| {
                            deferred.get_or_insert(SpecError::DuplicateMapKey { at });
                            Term::Map(Vec::new())
                        })
                    }
                };
                stack.push(term, depth);
            }
            ERL_DRV_EXT2TERM => {
                let len = args[1] as i64;
                if args[0] == 0 || len <= 0 {
                    return Err(bad_buffer);
                }
                let buf = env.bytes(args[0], len as usize).ok_or(bad_buffer)?;
                let term = match crate::etf::decode(&buf) {
                    Ok(term) => term,
                    Err(error) => {
                        let error = SpecError::BadExternalTerm { at, error };
                        if !error.found_after_receiver_check() {
                            return Err(error);
                        }
                        deferred.get_or_insert(error);
                        Term::List(Vec::new())
                    }
                };
                let depth = term.nesting_depth();
                if depth > MAX_NESTING {
                    return Err(SpecError::TooDeep { at });
                }
                stack.push(term, depth as u32);
            }
            _ => return Err(SpecError::UnknownTag { at, tag }),
        }
    }
    if stack.terms.len() != 1 {
        return Err(SpecError::NotOneTerm {
            terms: stack.terms.len(),
        });
    }
    if let Some(error) = deferred {
        return Err(error);
    }
    Ok(stack.terms.pop().expect("exactly one term"))
}
