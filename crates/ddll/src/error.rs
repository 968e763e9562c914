//! Errors of the runtime's API.

use drv_term::Term;

/// An Erlang exception of class `error`: what a BIF raises (e.g. `badarg`). The scenario
/// runner prints it as `{'EXIT', Reason}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception(pub Term);

impl Exception {
    /// An exception with `reason`.
    pub fn new(reason: Term) -> Exception {
        Exception(reason)
    }

    /// `badarg`.
    pub fn badarg() -> Exception {
        // Interning takes a lock and a hash lookup; callers often build this eagerly
        // (`ok_or(Exception::badarg())`) on hot paths, so the atom is looked up once.
        static BADARG: std::sync::OnceLock<drv_term::Atom> = std::sync::OnceLock::new();
        Exception(Term::Atom(
            *BADARG.get_or_init(|| drv_term::Atom::new("badarg")),
        ))
    }

    /// The reason.
    pub fn reason(&self) -> &Term {
        &self.0
    }
}

impl std::fmt::Display for Exception {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exception error: {}", self.0)
    }
}

impl std::error::Error for Exception {}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The C API shim could not be installed.
    #[error(transparent)]
    Shim(#[from] drv_abi::ShimError),
    /// More async threads than BEAM allows (`+A` takes at most 1024).
    #[error("an async pool of {0} threads is above the maximum of 1024")]
    AsyncThreads(usize),
}
