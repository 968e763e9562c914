//! The `erl_ddll` module: the seven BIFs through `ddll-core`, and the convenience functions
//! of OTP's Erlang module (`load/2`, `load_driver/2`, `unload/1`, ...), which wait for the
//! monitor message of their pending operation.

use std::sync::Arc;
use std::time::Duration;

use ddll_core::convenience::{Convenience, ConvenienceError, Step};
use ddll_core::{DdllError, InfoItem, InfoValue, LoadOptions, MonitorKind, Reply, UnloadOptions};
use drv_term::{Pid, Ref, Term};

use crate::error::Exception;
use crate::runtime::{atom, load_error_term, pid_key, Runtime};

/// Typed erl_ddll operations.
impl Runtime {
    /// `erl_ddll:try_load(Path, Name, Options)`.
    pub fn try_load(
        &self,
        pid: &Pid,
        path: &str,
        name: &str,
        options: LoadOptions,
    ) -> Result<Reply, DdllError> {
        let _settle = self.operation();
        let outcome = self.with_core(|core, loader| {
            if !self.is_alive(pid) {
                return ddll_core::Outcome {
                    result: Err(DdllError::BadArg),
                    effects: Vec::new(),
                };
            }
            core.try_load(loader, pid_key(pid), path, name, options)
        });
        self.apply(outcome.effects);
        outcome.result
    }

    /// `erl_ddll:try_unload(Name, Options)`.
    pub fn try_unload(
        &self,
        pid: &Pid,
        name: &str,
        options: UnloadOptions,
    ) -> Result<Reply, DdllError> {
        let _settle = self.operation();
        let outcome = self.with_core(|core, _| {
            if !self.is_alive(pid) {
                return ddll_core::Outcome {
                    result: Err(DdllError::BadArg),
                    effects: Vec::new(),
                };
            }
            core.try_unload(pid_key(pid), name, options)
        });
        self.apply(outcome.effects);
        outcome.result
    }

    /// `erl_ddll:monitor(driver, {Name, Kind})`: a reference; immediate answers are already in
    /// the mailbox when this returns.
    pub fn monitor_driver(&self, pid: &Pid, name: &str, kind: MonitorKind) -> Ref {
        self.monitor_driver_named(pid, name, kind, None)
    }

    /// `monitor_driver`, where an immediate answer names the driver by `name_term` (the term
    /// the caller passed, e.g. a string) instead of the atom, as the runtime does.
    fn monitor_driver_named(
        &self,
        pid: &Pid,
        name: &str,
        kind: MonitorKind,
        name_term: Option<Term>,
    ) -> Ref {
        let _settle = self.operation();
        let mut outcome = self.with_core(|core, _| {
            if !self.is_alive(pid) {
                // A dead process's monitor never fires: it gets a reference and nothing else.
                return ddll_core::Outcome {
                    result: Ok(core.unused_monitor_ref()),
                    effects: Vec::new(),
                };
            }
            core.monitor(pid_key(pid), name, kind)
        });
        let reference = outcome.result.map(|m| m.0).unwrap_or(0);
        if let Some(name_term) = name_term {
            let (immediate, rest): (Vec<_>, Vec<_>) = outcome
                .effects
                .into_iter()
                .partition(|e| matches!(e, ddll_core::Effect::Notify(n) if n.immediate));
            for effect in immediate {
                if let ddll_core::Effect::Notify(n) = effect {
                    self.notify_named(&n, name_term.clone());
                }
            }
            outcome.effects = rest;
        }
        self.apply(outcome.effects);
        Ref::local(reference)
    }

    /// `erl_ddll:demonitor(Ref)`.
    pub fn demonitor_driver(&self, pid: &Pid, reference: &Ref) {
        let _settle = self.operation();
        if let Some(id) = reference.local_id() {
            self.with_core(|core, _| core.demonitor(pid_key(pid), ddll_core::MonitorRef(id)));
        }
    }

    /// `erl_ddll:loaded_drivers()`: the names, most recently loaded first.
    pub fn loaded_drivers(&self) -> Vec<String> {
        let _settle = self.operation();
        self.with_core(|core, _| {
            core.loaded_drivers()
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
    }

    /// `erl_ddll:info(Name, Item)`.
    pub fn driver_info(&self, name: &str, item: InfoItem) -> Result<InfoValue<u64>, DdllError> {
        let _settle = self.operation();
        self.with_core(|core, _| core.info(name, item))
    }

    /// One of OTP's convenience functions, waiting (up to `wait`) for the monitor message of a
    /// pending operation, as the Erlang module does with `receive`.
    pub fn convenience(
        &self,
        pid: &Pid,
        which: Convenience,
        path: &str,
        name: &str,
        wait: Option<Duration>,
    ) -> Result<(), ConvenienceError> {
        let reply = match which.call() {
            ddll_core::convenience::Call::TryLoad(opts) => self.try_load(pid, path, name, opts),
            ddll_core::convenience::Call::TryUnload(opts) => self.try_unload(pid, name, opts),
        };
        match which.first_step(reply) {
            Step::Done(result) => result,
            Step::Wait(monitor) => {
                let process = self.process(pid).ok_or(ConvenienceError::LoadCancelled)?;
                let wanted = Ref::local(monitor.0);
                let message = process.receive_matching(wait, |m| {
                    m.tuple().is_some_and(|mut items| {
                        items.len() == 5 && items.nth(1).and_then(|r| r.reference()) == Some(wanted)
                    })
                });
                match message.map(Term::from).as_ref().and_then(notification_of) {
                    Some((kind, tag)) => which
                        .finish(&ddll_core::Notification {
                            to: pid_key(pid),
                            kind,
                            monitor,
                            driver: Arc::from(name),
                            tag,
                            immediate: false,
                        })
                        .unwrap_or(Ok(())),
                    None => Err(ConvenienceError::LoadCancelled),
                }
            }
        }
    }
}

/// Reads a `{'UP'|'DOWN', Ref, driver, Name, Tag}` message back into its parts.
fn notification_of(message: &Term) -> Option<(ddll_core::UpDown, ddll_core::Tag)> {
    let Term::Tuple(items) = message else {
        return None;
    };
    let kind = match &items[0] {
        Term::Atom(a) if a.as_str() == "UP" => ddll_core::UpDown::Up,
        Term::Atom(a) if a.as_str() == "DOWN" => ddll_core::UpDown::Down,
        _ => return None,
    };
    let tag = match &items[4] {
        Term::Atom(a) => match a.as_str() {
            "loaded" => ddll_core::Tag::Loaded,
            "unloaded" => ddll_core::Tag::Unloaded,
            "unload_cancelled" => ddll_core::Tag::UnloadCancelled,
            "load_cancelled" => ddll_core::Tag::LoadCancelled,
            "permanent" => ddll_core::Tag::Permanent,
            _ => return None,
        },
        Term::Tuple(pair) if pair.len() == 2 => {
            ddll_core::Tag::LoadFailure(load_error_of(&pair[1])?)
        }
        _ => return None,
    };
    Some((kind, tag))
}

fn load_error_of(term: &Term) -> Option<ddll_core::LoadError> {
    match term {
        Term::Atom(a) => (-8..=-1)
            .map(ddll_core::LoadError::from_code)
            .find(|e| e.atom() == Some(a.as_str())),
        Term::Tuple(pair) if pair.len() == 2 => match &pair[1] {
            Term::Int(code) => Some(ddll_core::LoadError::OpenError(*code as i32)),
            _ => None,
        },
        _ => None,
    }
}

/// `erl_ddll:F(Args)` on terms, for the scenario runner and other term-level callers: BEAM's
/// argument checks (`badarg`) and result shapes.
pub fn call(
    runtime: &Runtime,
    pid: &Pid,
    function: &str,
    args: &[Term],
) -> Result<Term, Exception> {
    let ok = |t: Term| Term::Tuple(vec![atom("ok"), t]);
    match (function, args) {
        ("try_load", [path, name, options]) => {
            let path = load_path(path).ok_or(Exception::badarg())?;
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            let options =
                LoadOptions::parse(&core_term(options)).map_err(|_| Exception::badarg())?;
            Ok(reply_term(runtime.try_load(pid, &path, &name, options)))
        }
        ("try_unload", [name, options]) => {
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            let options =
                UnloadOptions::parse(&core_term(options)).map_err(|_| Exception::badarg())?;
            Ok(reply_term(runtime.try_unload(pid, &name, options)))
        }
        ("load" | "load_driver" | "reload" | "reload_driver", [path, name]) => {
            let which = match function {
                "load" => Convenience::Load,
                "load_driver" => Convenience::LoadDriver,
                "reload" => Convenience::Reload,
                _ => Convenience::ReloadDriver,
            };
            let path = load_path(path).ok_or(Exception::badarg())?;
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            Ok(convenience_term(
                runtime.convenience(pid, which, &path, &name, None),
            ))
        }
        ("unload" | "unload_driver", [name]) => {
            let which = if function == "unload" {
                Convenience::Unload
            } else {
                Convenience::UnloadDriver
            };
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            Ok(convenience_term(
                runtime.convenience(pid, which, "", &name, None),
            ))
        }
        ("loaded_drivers", []) => Ok(ok(Term::List(
            runtime
                .loaded_drivers()
                .iter()
                .map(|n| string_term(n))
                .collect(),
        ))),
        ("monitor", [tag, Term::Tuple(spec)]) if *tag == atom("driver") && spec.len() == 2 => {
            let name = list_or_atom(&spec[0]).ok_or(Exception::badarg())?;
            let kind = match &spec[1] {
                Term::Atom(a) => MonitorKind::from_atom(a.as_str()).ok_or(Exception::badarg())?,
                _ => return Err(Exception::badarg()),
            };
            Ok(Term::Ref(runtime.monitor_driver_named(
                pid,
                &name,
                kind,
                Some(spec[0].clone()),
            )))
        }
        ("monitor", [_, _]) => Err(Exception::badarg()),
        ("demonitor", [Term::Ref(r)]) => {
            runtime.demonitor_driver(pid, r);
            Ok(atom("true"))
        }
        ("demonitor", [_]) => Err(Exception::badarg()),
        ("info", [name, Term::Atom(item)]) => {
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            let item = InfoItem::from_atom(item.as_str()).ok_or(Exception::badarg())?;
            let value = runtime
                .driver_info(&name, item)
                .map_err(|_| Exception::badarg())?;
            Ok(info_term(runtime, value))
        }
        ("info", [name]) => {
            let name = list_or_atom(name).ok_or(Exception::badarg())?;
            let mut items = Vec::new();
            for item in InfoItem::ALL {
                let value = runtime
                    .driver_info(&name, item)
                    .map_err(|_| Exception::badarg())?;
                items.push(Term::Tuple(vec![
                    atom(item.atom()),
                    info_term(runtime, value),
                ]));
            }
            Ok(Term::List(items))
        }
        ("info", []) => {
            // As the Erlang module: every driver but the linked-in ones.
            let mut all = Vec::new();
            for name in runtime.loaded_drivers() {
                if runtime.driver_info(&name, InfoItem::LinkedInDriver) == Ok(InfoValue::Bool(true))
                {
                    continue;
                }
                let info = call(runtime, pid, "info", &[string_term(&name)])?;
                all.push(Term::Tuple(vec![string_term(&name), info]));
            }
            Ok(Term::List(all))
        }
        ("format_error", [code]) => format_error(code).map(|s| string_term(&s)),
        _ => Err(Exception::new(atom("undef"))),
    }
}

/// `erl_ddll:format_error/1`, with the Erlang module's own text for `load_cancelled`.
fn format_error(code: &Term) -> Result<String, Exception> {
    use ddll_core::ErrorTerm;
    let term = match code {
        Term::Atom(a) if a.as_str() == "load_cancelled" => {
            return Ok("Loading was cancelled from other process".to_owned())
        }
        Term::Atom(a) => ErrorTerm::Atom(a.as_str()),
        Term::Tuple(pair) if pair.len() == 2 && pair[0] == atom("open_error") => match &pair[1] {
            Term::Int(n) => ErrorTerm::OpenError(*n),
            _ => return Err(Exception::badarg()),
        },
        _ => return Err(Exception::badarg()),
    };
    ddll_core::format_error(term, &|code| {
        Some(ddll_sys::dynamic_error_message(code).to_owned())
    })
    .map_err(|_| Exception::badarg())
}

fn reply_term(reply: Result<Reply, DdllError>) -> Term {
    match reply {
        Ok(Reply {
            status,
            monitor: None,
        }) => Term::Tuple(vec![atom("ok"), atom(status.atom())]),
        Ok(Reply {
            status,
            monitor: Some(m),
        }) => Term::Tuple(vec![
            atom("ok"),
            atom(status.atom()),
            Term::Ref(Ref::local(m.0)),
        ]),
        Err(e) => Term::Tuple(vec![atom("error"), error_term(e)]),
    }
}

fn error_term(e: DdllError) -> Term {
    match e {
        DdllError::Load(load) => load_error_term(load),
        other => atom(other.atom().unwrap_or("badarg")),
    }
}

fn convenience_term(result: Result<(), ConvenienceError>) -> Term {
    let error = |t: Term| Term::Tuple(vec![atom("error"), t]);
    match result {
        Ok(()) => atom("ok"),
        Err(ConvenienceError::Call(e)) => error(error_term(e)),
        Err(ConvenienceError::LoadCancelled) => error(atom("load_cancelled")),
        Err(ConvenienceError::Permanent) => error(atom("permanent")),
        Err(ConvenienceError::LoadFailure(e)) => error(load_error_term(e)),
    }
}

fn info_term(runtime: &Runtime, value: InfoValue<u64>) -> Term {
    match value {
        InfoValue::Processes(list) => Term::List(
            list.into_iter()
                .map(|(pid, count)| {
                    Term::Tuple(vec![
                        Term::Pid(runtime.pid_of(pid)),
                        Term::Int(i64::from(count)),
                    ])
                })
                .collect(),
        ),
        InfoValue::DriverOptions { kill_ports: true } => Term::List(vec![atom("kill_ports")]),
        InfoValue::DriverOptions { kill_ports: false } => Term::List(vec![]),
        InfoValue::PortCount(n) => Term::Int(i64::from(n)),
        InfoValue::Bool(b) => atom(if b { "true" } else { "false" }),
        InfoValue::LinkedInDriver => atom("linked_in_driver"),
        InfoValue::Permanent => atom("permanent"),
    }
}

/// An Erlang string (list of character codes).
pub fn string_term(s: &str) -> Term {
    Term::List(
        s.chars()
            .map(|c| Term::Int(i64::from(u32::from(c))))
            .collect(),
    )
}

/// A driver name: a non-empty atom, or an iolist. BEAM reads the name as a C string, so it
/// ends at a NUL byte (`"echo_drv\0x"` is `echo_drv`).
fn list_or_atom(term: &Term) -> Option<String> {
    let mut name = match term {
        Term::Atom(a) if !a.as_str().is_empty() => a.as_str().to_owned(),
        Term::Atom(_) => return None,
        other => iolist_string(other)?,
    };
    if let Some(nul) = name.find('\0') {
        name.truncate(nul);
    }
    Some(name)
}

/// The folder argument of a load: an iolist without NUL bytes (BEAM: `badarg`).
fn load_path(term: &Term) -> Option<String> {
    iolist_string(term).filter(|path| !path.contains('\0'))
}

/// An iolist's bytes as a string (Latin-1 bytes map to their code points).
fn iolist_string(term: &Term) -> Option<String> {
    let bytes = crate::iodata::flatten(term)?;
    Some(bytes.iter().map(|&b| char::from(b)).collect())
}

/// A term as `ddll-core`'s option input.
fn core_term(term: &Term) -> ddll_core::term::Term<'static> {
    use ddll_core::term::Term as C;
    match term {
        Term::Atom(a) => C::Atom(a.as_str()),
        Term::Tuple(items) => C::Tuple(items.iter().map(core_term).collect()),
        Term::List(items) => C::List(items.iter().map(core_term).collect()),
        _ => C::Other,
    }
}
