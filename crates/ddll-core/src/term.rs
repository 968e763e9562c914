//! Option parsing from a generic, term-like input.
//!
//! The runtime converts its Erlang terms into [`Term`] (or parses them itself into the typed
//! options); every malformed shape is [`DdllError::BadArg`], exactly where the runtime raises
//! `badarg`.

use crate::types::{DdllError, LoadOptions, Pending, UnloadOptions};

/// A minimal Erlang term: enough to express option lists.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Term<'a> {
    /// An atom.
    Atom(&'a str),
    /// A tuple.
    Tuple(Vec<Term<'a>>),
    /// A proper list.
    List(Vec<Term<'a>>),
    /// Anything else: numbers, binaries, improper lists...
    Other,
}

fn pending(term: &Term<'_>) -> Result<Pending, DdllError> {
    match term {
        Term::Atom("pending_driver") => Ok(Pending::PendingDriver),
        Term::Atom("pending") => Ok(Pending::Pending),
        _ => Err(DdllError::BadArg),
    }
}

impl LoadOptions {
    /// Parse the option list of `try_load/3`.
    pub fn parse(options: &Term<'_>) -> Result<LoadOptions, DdllError> {
        let Term::List(items) = options else {
            return Err(DdllError::BadArg);
        };
        let mut parsed = LoadOptions::default();
        for item in items {
            let Term::Tuple(pair) = item else {
                return Err(DdllError::BadArg);
            };
            match pair.as_slice() {
                [Term::Atom("driver_options"), Term::List(flags)] => {
                    for flag in flags {
                        if *flag != Term::Atom("kill_ports") {
                            return Err(DdllError::BadArg);
                        }
                        parsed.kill_ports = true;
                    }
                }
                [Term::Atom("monitor"), value] => parsed.monitor = Some(pending(value)?),
                [Term::Atom("reload"), value] => parsed.reload = Some(pending(value)?),
                _ => return Err(DdllError::BadArg),
            }
        }
        Ok(parsed)
    }

    /// The options as a term list (canonical order: driver_options, monitor, reload).
    pub fn to_terms(&self) -> Vec<Term<'static>> {
        let mut terms = Vec::new();
        if self.kill_ports {
            terms.push(Term::Tuple(vec![
                Term::Atom("driver_options"),
                Term::List(vec![Term::Atom("kill_ports")]),
            ]));
        }
        if let Some(p) = self.monitor {
            terms.push(Term::Tuple(vec![
                Term::Atom("monitor"),
                Term::Atom(p.atom()),
            ]));
        }
        if let Some(p) = self.reload {
            terms.push(Term::Tuple(vec![
                Term::Atom("reload"),
                Term::Atom(p.atom()),
            ]));
        }
        terms
    }
}

impl UnloadOptions {
    /// Parse the option list of `try_unload/2`.
    pub fn parse(options: &Term<'_>) -> Result<UnloadOptions, DdllError> {
        let Term::List(items) = options else {
            return Err(DdllError::BadArg);
        };
        let mut parsed = UnloadOptions::default();
        for item in items {
            match item {
                Term::Atom("kill_ports") => parsed.kill_ports = true,
                Term::Tuple(pair) => match pair.as_slice() {
                    [Term::Atom("monitor"), value] => parsed.monitor = Some(pending(value)?),
                    _ => return Err(DdllError::BadArg),
                },
                _ => return Err(DdllError::BadArg),
            }
        }
        Ok(parsed)
    }
}
