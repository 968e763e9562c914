//! Running a case against the driver, isolated, on a fresh runtime: the same calls the
//! scenario runner makes for the rendered lines (`super::case::render`), with a look at the
//! mailboxes after each operation for the isolated driver's crash.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ddll::{Pid, PortOptions, Process, Runtime, RuntimeOptions, Term};

use super::case::{CallTerm, Chunk, Dictionary, Op, OpKind, Owner};

/// The driver under test: its folder (`DriverDir`) and name.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub name: String,
    pub callback_timeout: Duration,
}

impl Target {
    /// The target for the library `DIR/NAME.so`.
    pub fn from_library(library: &Path, callback_timeout: Duration) -> Result<Target, String> {
        let library =
            std::fs::canonicalize(library).map_err(|e| format!("{}: {e}", library.display()))?;
        let name = library
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{}: no driver name in the file name", library.display()))?
            .to_owned();
        let dir = library
            .parent()
            .ok_or_else(|| format!("{}: no folder", library.display()))?
            .to_path_buf();
        Ok(Target {
            dir,
            name,
            callback_timeout,
        })
    }

    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions::default().isolate(Some(
            ddll::isolate::Isolation::default().callback_timeout(Some(self.callback_timeout)),
        ))
    }
}

/// A crash of the isolated driver: `{driver_crashed, Why}` seen after operation `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// `Why`, printed as Erlang prints it (`sigsegv`, `{exit,3}`, `callback_timeout`).
    pub why: String,
    /// The index (in the case) of the operation after which it was seen.
    pub at: usize,
    pub kind: OpKind,
    /// The process that got the exit, and how many messages its mailbox held with it.
    pub owner: Owner,
    pub queued: usize,
}

impl Crash {
    /// One finding per `Why` at an operation kind.
    pub fn key(&self) -> (String, OpKind) {
        (self.why.clone(), self.kind)
    }
}

/// What one run of a case showed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub crash: Option<Crash>,
    /// Behaviours seen (operation kind, number, accepted or not, reply size class): new ones
    /// make the case worth keeping in the corpus.
    pub behaviours: BTreeSet<(OpKind, u32, bool, u8)>,
}

/// `{'EXIT', Port, {driver_crashed, Why}}`'s `Why`.
fn crash_reason(term: &Term) -> Option<&Term> {
    match term {
        Term::Tuple(items) if items.len() == 3 && items[0] == Term::atom("EXIT") => {
            match &items[2] {
                Term::Tuple(reason)
                    if reason.len() == 2 && reason[0] == Term::atom("driver_crashed") =>
                {
                    Some(&reason[1])
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn printed(term: &Term) -> String {
    term.to_string()
}

fn size_class(term: &Term) -> u8 {
    let n = match term {
        Term::Binary(b) => b.len(),
        Term::List(items) => items.len(),
        Term::Tuple(items) => items.len() + 1000,
        _ => 2000,
    };
    match n {
        0 => 0,
        1..=8 => 1,
        9..=64 => 2,
        65..=999 => 3,
        1000..=1999 => 4,
        _ => 5,
    }
}

fn nil() -> Term {
    Term::List(Vec::new())
}

fn string_term(s: &str) -> Term {
    Term::List(s.bytes().map(|b| Term::int(b.into())).collect())
}

fn chunk_term(chunk: &Chunk) -> Term {
    match chunk {
        Chunk::Binary(b) => Term::Binary(b.clone().into()),
        Chunk::Bytes(b) => Term::List(b.iter().map(|&x| Term::int(x.into())).collect()),
    }
}

fn call_term(term: &CallTerm) -> Term {
    match term {
        CallTerm::Int(i) => Term::int((*i).into()),
        CallTerm::Atom(a) => Term::atom(a),
        CallTerm::Binary(b) => Term::Binary(b.clone().into()),
        CallTerm::List(items) => Term::List(items.iter().map(call_term).collect()),
        CallTerm::Tuple(items) => Term::Tuple(items.iter().map(call_term).collect()),
    }
}

/// The scenario's processes: `main`, and `other` while it lives.
struct Processes {
    runtime: Runtime,
    main: Arc<Process>,
    other: Option<Arc<Process>>,
}

impl Processes {
    fn get(&mut self, owner: Owner) -> Arc<Process> {
        match owner {
            Owner::Main => self.main.clone(),
            Owner::Other => self
                .other
                .get_or_insert_with(|| self.runtime.spawn(Some("other")))
                .clone(),
        }
    }

    /// A crash exit waiting in a mailbox: taken out, with the number of messages that were
    /// there with it.
    fn take_crash(&self) -> Option<(Owner, Term, usize)> {
        let others = self.other.iter().map(|p| (Owner::Other, p));
        for (owner, process) in std::iter::once((Owner::Main, &self.main)).chain(others) {
            let queued = process.message_count();
            if queued == 0 {
                continue;
            }
            if let Some(exit) = process.receive_matching(Some(Duration::ZERO), |t| {
                crash_reason(&t.to_term()).is_some()
            }) {
                return Some((owner, exit.into_term(), queued));
            }
        }
        None
    }
}

/// Runs `ops` on a fresh isolated runtime (as `ddll script --isolate` would run the rendered
/// scenario), recording what the driver accepted in `dict`.
pub fn run(target: &Target, ops: &[Op], dict: &mut Dictionary) -> Result<Outcome, String> {
    let runtime =
        Runtime::with_options(&target.dir, target.options()).map_err(|e| e.to_string())?;
    let main = runtime.spawn(Some("main"));
    let mut procs = Processes {
        runtime,
        main,
        other: None,
    };
    let mut outcome = Outcome::default();
    let dir = string_term(&target.dir.to_string_lossy());
    let name = Term::atom(&target.name);
    let main_pid = *procs.main.pid();
    let _ = ddll::erl_ddll_call(
        &procs.runtime,
        &main_pid,
        "load",
        &[dir.clone(), name.clone()],
    );
    let mut ports: Vec<Option<ddll::Port>> = Vec::new();
    for (at, op) in ops.iter().enumerate() {
        if op.port().is_some() && ports.is_empty() {
            continue;
        }
        let port_of = |i: usize| ports[i % ports.len()];
        let rt = &procs.runtime;
        let mut seen = |kind: OpKind, number: u32, result: &Result<Term, ddll::Exception>| {
            // A rejected operation number is no new behaviour: most random numbers are.
            let (number, accepted, class) = match result {
                Ok(t) => (number, true, size_class(t)),
                Err(_) => (0, false, 0),
            };
            outcome.behaviours.insert((kind, number, accepted, class));
            accepted
        };
        let mut received = None;
        match op {
            Op::Open { owner, args } => {
                let pid: Pid = *procs.get(*owner).pid();
                let command = if args.is_empty() {
                    target.name.clone()
                } else {
                    format!("{} {args}", target.name)
                };
                let opened =
                    procs
                        .runtime
                        .open_port(&pid, &command, PortOptions::new().binary(true));
                let result = opened.as_ref().map(|_| nil()).map_err(|e| e.clone());
                seen(OpKind::Open, 0, &result);
                ports.push(opened.ok());
            }
            Op::Command { port, data } => {
                if let Some(p) = port_of(*port) {
                    let term = match data.as_slice() {
                        [chunk] => chunk_term(chunk),
                        _ => Term::List(data.iter().map(chunk_term).collect()),
                    };
                    let result = rt.port_command(&main_pid, &p, &term).map(|()| nil());
                    seen(OpKind::Command, 0, &result);
                }
            }
            Op::Control {
                port,
                operation,
                data,
            } => {
                if let Some(p) = port_of(*port) {
                    let term = Term::Binary(data.clone().into());
                    let result = rt.port_control(&main_pid, &p, *operation, &term);
                    if seen(OpKind::Control, *operation, &result) {
                        dict.control_ops.insert(*operation);
                        dict.accepted_payload(data);
                    }
                }
            }
            Op::Call {
                port,
                operation,
                term,
            } => {
                if let Some(p) = port_of(*port) {
                    let result = rt.port_call(&main_pid, &p, *operation, &call_term(term));
                    if seen(OpKind::Call, *operation, &result) {
                        dict.call_ops.insert(*operation);
                        if let CallTerm::Binary(b) = term {
                            dict.accepted_payload(b);
                        }
                    }
                }
            }
            Op::Close { port } => {
                if let Some(p) = port_of(*port) {
                    let _ = rt.port_close(&main_pid, &p);
                }
            }
            Op::KillOther => {
                if let Some(other) = procs.other.take() {
                    procs.runtime.exit(other.pid(), Term::atom("kill"));
                }
            }
            Op::Unload => {
                let _ = ddll::erl_ddll_call(rt, &main_pid, "try_unload", &[name.clone(), nil()]);
            }
            Op::Load => {
                let args = [dir.clone(), name.clone(), nil()];
                let _ = ddll::erl_ddll_call(rt, &main_pid, "try_load", &args);
            }
            Op::Reload => {
                let reload = Term::Tuple(vec![Term::atom("reload"), Term::atom("pending_driver")]);
                let args = [dir.clone(), name.clone(), Term::List(vec![reload])];
                let _ = ddll::erl_ddll_call(rt, &main_pid, "try_load", &args);
            }
            Op::Wait { ms } => {
                received = procs
                    .main
                    .receive(Some(Duration::from_millis((*ms).into())))
                    .map(Term::from);
            }
        }
        // A crash that `recv` took is printed by that line of the scenario.
        let crash = match received.as_ref().and_then(crash_reason) {
            Some(why) => Some((Owner::Main, printed(why), 0)),
            None => procs.take_crash().map(|(owner, exit, queued)| {
                let why = crash_reason(&exit).map(printed).unwrap_or_default();
                (owner, why, queued)
            }),
        };
        if let Some((owner, why, queued)) = crash {
            outcome.crash = Some(Crash {
                why,
                at,
                kind: op.kind(),
                owner,
                queued,
            });
            break;
        }
    }
    // As the scenario runner ends: every process killed, so ports close and the driver goes.
    let Processes {
        runtime,
        main,
        other,
    } = procs;
    if let Some(other) = other {
        runtime.exit(other.pid(), Term::atom("kill"));
    }
    runtime.exit(main.pid(), Term::atom("kill"));
    Ok(outcome)
}
