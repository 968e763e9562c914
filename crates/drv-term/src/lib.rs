//! Erlang terms for driver code: the `ErlDrvTermData` spec interpreter behind
//! `erl_drv_output_term`/`erl_drv_send_term`, a [`Term`] type with Erlang's
//! term order and OTP 25's `~0p` printing, and the external term format.
//!
//! A term comes in two forms. [`Term`] is the general one: a tree of values, easy to build,
//! match and compare. [`FlatTerm`] is the form a driver's term travels in: the whole term in
//! one buffer (as BEAM builds a driver's term into one heap fragment), so building, sending
//! and dropping it costs one allocation; the spec interpreter builds it
//! ([`FlatTerm::from_spec`]). Both print alike and encode alike: printing and ETF encoding
//! read either through [`TermRef`], one level ([`Node`]) at a time.
//!
//! The crate has no `unsafe`: memory a spec points into is read through
//! [`SpecEnv`], which the C ABI layer implements over real pointers.
//!
//! ```
//! use drv_term::{build_term, decode, encode, tags::*, Atom, FlatTerm, Port, SpecEnv, TermData};
//!
//! /// Memory for the spec: one driver binary (handle 1) and nothing else.
//! struct Env;
//! impl SpecEnv for Env {
//!     fn bytes(&self, _: TermData, _: usize) -> Option<&[u8]> { None }
//!     fn binary(&self, bin: TermData, len: usize, offset: usize) -> Option<&[u8]> {
//!         let data: &[u8] = b"hello world";
//!         (bin == 1).then_some(())?;
//!         data.get(offset..offset.checked_add(len)?)
//!     }
//!     fn float(&self, _: TermData) -> Option<f64> { None }
//!     fn int64(&self, _: TermData) -> Option<i64> { None }
//!     fn uint64(&self, _: TermData) -> Option<u64> { None }
//! }
//!
//! let port = Port::local(3).to_local_term_data().unwrap();
//! let spec = [
//!     ERL_DRV_ATOM, Atom::new("tcp").to_term_data(),
//!     ERL_DRV_PORT, port,
//!     ERL_DRV_INT, 100,
//!     ERL_DRV_BINARY, 1, 5, 0,
//!     ERL_DRV_LIST, 2,
//!     ERL_DRV_TUPLE, 3,
//! ];
//! // The message form: one buffer.
//! let flat = FlatTerm::from_spec(&spec, &Env).unwrap();
//! assert_eq!(flat.to_string(), r#"{tcp,#Port<0.3>,[100|<<"hello">>]}"#);
//! // The general form.
//! let term = build_term(&spec, &Env).unwrap();
//! assert_eq!(term, flat.to_term());
//! assert_eq!(encode(&term), flat.encode());
//! assert_eq!(decode(&encode(&term)).unwrap(), term);
//! ```

#![forbid(unsafe_code)]

pub mod arena;
mod atom;
#[cfg(feature = "eetf")]
mod eetf_terms;
mod etf;
mod flat;
// The fuzz targets, for `cargo xtask fuzz` (examples/fuzz.rs) and the tests that replay its
// crashers: not API, so hidden from the docs.
#[doc(hidden)]
pub mod fuzz;
mod hamt;
mod ident;
mod print;
mod spec;
mod term;
mod view;

pub use atom::{Atom, AtomError, MAX_ATOMS, MAX_ATOM_CHARS};
/// The `eetf` crate this one converts to and from (feature `eetf`).
#[cfg(feature = "eetf")]
pub use eetf;
#[cfg(feature = "eetf")]
pub use eetf_terms::EetfError;
pub use etf::{decode, decode_prefix, decode_safe, encode, encode_into, ext, EtfError, VERSION};
pub use flat::{DataPiece, FlatItems, FlatLog, FlatRef, FlatTerm, LoggedSpec, INLINE_BINARY_LIMIT};
pub use hamt::SMALL_MAP_LIMIT;
pub use ident::{local_node, Pid, Port, Ref, MAX_REF_WORDS};
pub use print::{write_float, DefaultNamer, IdentNamer};
pub use spec::{build_term, NoMemory, SpecEnv, SpecError, MAX_NESTING};
pub use term::{BigInt, Bitstring, Term};
pub use view::{Node, TermRef};

/// `ErlDrvTermData`: one word of a driver term spec.
pub type TermData = std::os::raw::c_ulong;

/// A spec word as `u64` (`c_ulong` is 32 bits on some targets, 64 on this one).
#[allow(clippy::useless_conversion)]
pub(crate) fn word_to_u64(v: TermData) -> u64 {
    u64::from(v)
}

/// The `ERL_DRV_*` tags of a driver term spec, with erl_driver.h's values.
pub mod tags {
    use crate::TermData;
    /// `[]`; no arguments.
    pub const ERL_DRV_NIL: TermData = 1;
    /// An atom; argument: `driver_mk_atom(name)`.
    pub const ERL_DRV_ATOM: TermData = 2;
    /// An integer; argument: `ErlDrvSInt`.
    pub const ERL_DRV_INT: TermData = 3;
    /// A port; argument: `driver_mk_port(port)`.
    pub const ERL_DRV_PORT: TermData = 4;
    /// A binary; arguments: `ErlDrvBinary*`, length, offset.
    pub const ERL_DRV_BINARY: TermData = 5;
    /// A string; arguments: `char*`, length.
    pub const ERL_DRV_STRING: TermData = 6;
    /// A tuple of the last N terms; argument: N.
    pub const ERL_DRV_TUPLE: TermData = 7;
    /// A list of the last N terms, the last being the tail; argument: N.
    pub const ERL_DRV_LIST: TermData = 8;
    /// Characters consed onto the last term; arguments: `char*`, length.
    pub const ERL_DRV_STRING_CONS: TermData = 9;
    /// A pid; argument: `driver_connected`/`driver_caller`/... value.
    pub const ERL_DRV_PID: TermData = 10;
    /// A float; argument: `double*`.
    pub const ERL_DRV_FLOAT: TermData = 11;
    /// A term in external format; arguments: `char*`, length.
    pub const ERL_DRV_EXT2TERM: TermData = 12;
    /// An unsigned integer; argument: `ErlDrvUInt`.
    pub const ERL_DRV_UINT: TermData = 13;
    /// A binary copied from a buffer; arguments: `char*`, length.
    pub const ERL_DRV_BUF2BINARY: TermData = 14;
    /// A 64-bit integer; argument: `ErlDrvSInt64*`.
    pub const ERL_DRV_INT64: TermData = 15;
    /// An unsigned 64-bit integer; argument: `ErlDrvUInt64*`.
    pub const ERL_DRV_UINT64: TermData = 16;
    /// A map of the last 2N terms (key, value, ...); argument: N.
    pub const ERL_DRV_MAP: TermData = 17;
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
