//! Conversions between this crate's terms and the [`eetf`] crate's (feature `eetf`), for a
//! host that already works with `eetf` terms.
//!
//! Both sides speak the external term format, and that is the bridge: a term is encoded as
//! `term_to_binary` would encode it and decoded by the other crate, so that pids, ports,
//! references, big integers, maps and improper lists mean the same on both sides.
//!
//! ```
//! use drv_term::Term;
//!
//! let term = Term::Tuple(vec![Term::atom("tcp"), Term::Int(42)]);
//! let theirs = eetf::Term::try_from(&term).expect("eetf reads it");
//! assert!(matches!(&theirs, eetf::Term::Tuple(t) if t.elements.len() == 2));
//! assert_eq!(Term::try_from(&theirs).expect("and back"), term);
//! ```

use crate::{FlatRef, FlatTerm, Term};

/// A term one side cannot represent (an `eetf` fun, say) or could not read.
#[derive(Debug, thiserror::Error)]
pub enum EetfError {
    /// `eetf` could not decode the external form of this crate's term.
    #[error("eetf cannot read the term: {0}")]
    Decode(#[from] eetf::DecodeError),
    /// `eetf` could not encode its term.
    #[error("eetf cannot write the term: {0}")]
    Encode(#[from] eetf::EncodeError),
    /// This crate cannot read the external form of the `eetf` term.
    #[error("not a term of this crate: {0}")]
    Etf(#[from] crate::EtfError),
}

fn from_external(bytes: &[u8]) -> Result<eetf::Term, EetfError> {
    Ok(eetf::Term::decode(bytes)?)
}

impl TryFrom<FlatRef<'_>> for eetf::Term {
    type Error = EetfError;

    fn try_from(term: FlatRef<'_>) -> Result<eetf::Term, EetfError> {
        from_external(&crate::encode(term))
    }
}

impl TryFrom<&Term> for eetf::Term {
    type Error = EetfError;

    fn try_from(term: &Term) -> Result<eetf::Term, EetfError> {
        from_external(&crate::encode(term))
    }
}

impl TryFrom<&FlatTerm> for eetf::Term {
    type Error = EetfError;

    fn try_from(term: &FlatTerm) -> Result<eetf::Term, EetfError> {
        eetf::Term::try_from(term.root())
    }
}

impl TryFrom<&eetf::Term> for Term {
    type Error = EetfError;

    /// Atoms are made as `binary_to_term` makes them (new ones interned).
    fn try_from(term: &eetf::Term) -> Result<Term, EetfError> {
        let mut bytes = Vec::new();
        term.encode(&mut bytes)?;
        Ok(crate::decode(&bytes)?)
    }
}

impl TryFrom<eetf::Term> for Term {
    type Error = EetfError;

    fn try_from(term: eetf::Term) -> Result<Term, EetfError> {
        Term::try_from(&term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pid, Port};

    fn check(term: Term, theirs: eetf::Term) {
        assert_eq!(
            eetf::Term::try_from(&term).expect("to eetf"),
            theirs,
            "{term}"
        );
        let flat = FlatTerm::from_term(&term);
        assert_eq!(eetf::Term::try_from(&flat).expect("flat to eetf"), theirs);
        assert_eq!(Term::try_from(&theirs).expect("from eetf"), term);
    }

    #[test]
    fn terms_mean_the_same_on_both_sides() {
        use eetf::{Atom, Binary, FixInteger, Float, List, Tuple};
        let atom = |a: &str| eetf::Term::from(Atom::from(a));
        let int = |i: i32| eetf::Term::from(FixInteger::from(i));
        let cases: Vec<(Term, eetf::Term)> = vec![
            (Term::atom("ok"), atom("ok")),
            (Term::Int(-5), int(-5)),
            (
                Term::Int(1 << 40),
                eetf::Term::from(eetf::BigInteger::from(1i64 << 40)),
            ),
            (
                Term::Float(1.5),
                eetf::Term::from(Float::try_from(1.5).expect("finite")),
            ),
            (
                Term::Binary(bytes::Bytes::from_static(b"abc")),
                eetf::Term::from(Binary::from(&b"abc"[..])),
            ),
            (Term::List(vec![]), eetf::Term::from(List::nil())),
            (
                Term::Tuple(vec![
                    Term::atom("tcp"),
                    Term::Int(1),
                    Term::List(vec![Term::Int(300)]),
                ]),
                eetf::Term::from(Tuple::from(vec![
                    atom("tcp"),
                    int(1),
                    eetf::Term::from(List::from(vec![int(300)])),
                ])),
            ),
            (
                Term::ImproperList(vec![Term::Int(300)], Box::new(Term::atom("tail"))),
                eetf::Term::from(eetf::ImproperList::from((vec![int(300)], atom("tail")))),
            ),
        ];
        for (term, theirs) in cases {
            check(term, theirs);
        }
    }

    #[test]
    fn identifiers_keep_their_node_and_numbers() {
        let node = crate::local_node().as_str().to_owned();
        let pid = Term::Pid(Pid::local(7));
        let theirs = eetf::Term::try_from(&pid).expect("a pid");
        let eetf::Term::Pid(p) = &theirs else {
            panic!("not a pid: {theirs}");
        };
        assert_eq!((p.node.name.as_str(), p.id), (node.as_str(), 7));
        assert_eq!(Term::try_from(&theirs).expect("back"), pid);
        let port = Term::Port(Port::local(9));
        let theirs = eetf::Term::try_from(&port).expect("a port");
        assert!(
            matches!(&theirs, eetf::Term::Port(p) if p.id == 9),
            "{theirs}"
        );
        assert_eq!(Term::try_from(&theirs).expect("back"), port);
    }

    #[test]
    fn what_this_crate_cannot_hold_is_an_error() {
        let fun = eetf::Term::from(eetf::ExternalFun::from(("m", "f", 1)));
        assert!(matches!(Term::try_from(&fun), Err(EetfError::Etf(_))));
    }
}
