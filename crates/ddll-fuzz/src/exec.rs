//! Running a case against the driver, isolated: the same calls the scenario runner makes for
//! the rendered lines (`super::case::render`), with a look at the mailboxes before and after
//! each operation for the isolated driver's crash. Each case runs on a fresh runtime; under
//! memcheck (`--valgrind`), where starting a host costs seconds, cases run one after another
//! on one runtime whose `keeper` process keeps the driver (and its host) loaded, until a
//! crash ends the host.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ddll::{Pid, PortOptions, Process, Runtime, RuntimeOptions, Term};

use super::case::{CallTerm, Chunk, Dictionary, Op, OpKind, Owner};
use super::coverage::{Coverage, Trace};
use super::memcheck::{self, MemError, Reports};

/// The driver under test: its folder (`DriverDir`), name and library.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub name: String,
    pub library: PathBuf,
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
            library,
            callback_timeout,
        })
    }

    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions::default().isolate(Some(
            ddll::isolate::Isolation::default().callback_timeout(Some(self.callback_timeout)),
        ))
    }
}

/// Where a crash showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// During an operation of this kind: its exit was there when the operation returned.
    During(OpKind),
    /// Between operations, or during a `recv` wait: in a timer, async job or thread of the
    /// driver, after the last operation of this kind (not a wait).
    WaitAfter(OpKind),
}

impl Place {
    /// `at port_command`, `during wait after port_control`.
    pub fn describe(self) -> String {
        match self {
            Place::During(kind) => format!("at {}", kind.name()),
            Place::WaitAfter(kind) => format!("during wait after {}", kind.name()),
        }
    }

    /// For a file name: `port_command`, `wait_after_port_control`.
    pub fn file_part(self) -> String {
        match self {
            Place::During(kind) => kind.name().to_owned(),
            Place::WaitAfter(kind) => format!("wait_after_{}", kind.name()),
        }
    }
}

/// A crash of the isolated driver: `{driver_crashed, Why}` seen after operation `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// `Why`, printed as Erlang prints it (`sigsegv`, `{exit,3}`, `callback_timeout`).
    pub why: String,
    /// The index (in the case) of the last operation run before it was seen.
    pub at: usize,
    pub place: Place,
    /// The process that got the exit, and how many messages its mailbox held with it.
    pub owner: Owner,
    pub queued: usize,
    /// Under memcheck: the error that ended the host.
    pub memcheck: Option<MemError>,
}

impl Crash {
    /// What makes two crashes one finding: the same `Why` at the same place; for memcheck's
    /// errors, the same kind of error at the same function of the driver.
    pub fn key(&self) -> String {
        match &self.memcheck {
            Some(e) => format!("memcheck {} in {}", e.kind, e.function()),
            None => format!("{{driver_crashed,{}}} {}", self.why, self.place.describe()),
        }
    }
}

/// What one run of a case showed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub crash: Option<Crash>,
    /// Behaviours seen (operation kind, number, accepted or not, reply size class): new ones
    /// make the case worth keeping in the corpus.
    pub behaviours: BTreeSet<(OpKind, u32, bool, u8)>,
    /// The driver's coverage, when it was built with sanitizer coverage.
    pub trace: Option<Trace>,
    /// memcheck errors that ended a host outside the case's operations (at its end, when
    /// its processes were killed and the ports closed).
    pub unattributed: Vec<MemError>,
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

/// How many cases one runtime runs under memcheck before it is replaced (the driver's global
/// state and the host's memory grow otherwise).
const CASES_PER_SESSION: usize = 200;

/// A runtime with the driver loaded by `keeper` (under memcheck), reused by the next case.
struct Session {
    runtime: Runtime,
    keeper: Option<Arc<Process>>,
    cases: usize,
}

impl Session {
    fn start(target: &Target, keep: bool) -> Result<Session, String> {
        let runtime =
            Runtime::with_options(&target.dir, target.options()).map_err(|e| e.to_string())?;
        let keeper = keep.then(|| {
            let keeper = runtime.spawn(Some("keeper"));
            let args = [
                string_term(&target.dir.to_string_lossy()),
                Term::atom(&target.name),
            ];
            let _ = ddll::erl_ddll_call(&runtime, keeper.pid(), "load", &args);
            keeper
        });
        Ok(Session {
            runtime,
            keeper,
            cases: 0,
        })
    }

    /// Ends the keeper, so the driver unloads and its host exits.
    fn end(self) {
        if let Some(keeper) = &self.keeper {
            self.runtime.exit(keeper.pid(), Term::atom("kill"));
        }
    }
}

/// Runs cases against the target, with what the run observes.
#[derive(Debug)]
pub struct Executor {
    pub target: Target,
    /// Coverage from the driver (preloaded hooks), if set up.
    pub coverage: Option<Coverage>,
    /// memcheck's reports, under `--valgrind`: cases then share a runtime.
    pub memcheck: Option<Reports>,
    session: Option<Session>,
    /// Under memcheck, the next session, started in the background while a case runs: a case
    /// that shows an error ends its host, and a new one takes seconds to start.
    spare: Option<std::thread::JoinHandle<Result<Session, String>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cases", &self.cases)
            .finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(target: Target, coverage: Option<Coverage>, memcheck: Option<Reports>) -> Executor {
        Executor {
            target,
            coverage,
            memcheck,
            session: None,
            spare: None,
        }
    }

    /// Ends the shared runtime and the spare, if any (their hosts exit).
    pub fn finish(&mut self) {
        if let Some(session) = self.session.take() {
            session.end();
        }
        if let Some(Ok(Ok(spare))) = self.spare.take().map(std::thread::JoinHandle::join) {
            spare.end();
        }
    }

    /// A new session: the spare if one was started, and a spare started for the next.
    fn new_session(&mut self, keep: bool) -> Result<Session, String> {
        if !keep {
            return Session::start(&self.target, false);
        }
        let session = match self.spare.take().map(std::thread::JoinHandle::join) {
            Some(Ok(started)) => started?,
            _ => Session::start(&self.target, true)?,
        };
        let target = self.target.clone();
        self.spare = std::thread::Builder::new()
            .name("ddll-fuzz-spare".into())
            .spawn(move || Session::start(&target, true))
            .ok();
        Ok(session)
    }

    /// Runs `ops` (as `ddll script --isolate` would run the rendered scenario), recording
    /// what the driver accepted in `dict`.
    pub fn run(&mut self, ops: &[Op], dict: &mut Dictionary) -> Result<Outcome, String> {
        let keep = self.memcheck.is_some();
        let mut session = match self.session.take() {
            Some(session) => session,
            None => self.new_session(keep)?,
        };
        if let Some(coverage) = &self.coverage {
            coverage.reset()?;
        }
        let mut outcome = run_on(&self.target, &session.runtime, ops, dict);
        session.cases += 1;
        if let Some(reports) = &self.memcheck {
            let mut errors = reports.take();
            if let Some(crash) = &mut outcome.crash {
                if crash.why == memcheck::crash_why() && !errors.is_empty() {
                    crash.memcheck = Some(errors.remove(0));
                }
            }
            outcome.unattributed = errors;
        }
        if let Some(coverage) = &self.coverage {
            outcome.trace = Some(coverage.read()?);
        }
        let host_gone = outcome.crash.is_some() || !outcome.unattributed.is_empty();
        if keep && !host_gone && session.cases < CASES_PER_SESSION {
            self.session = Some(session);
        } else {
            session.end();
        }
        Ok(outcome)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The last operation before `at` (inclusive) that is not a wait: what a crash noticed
/// between operations came after.
fn last_acting(ops: &[Op], at: usize) -> OpKind {
    ops[..=at]
        .iter()
        .rev()
        .map(Op::kind)
        .find(|k| *k != OpKind::Wait)
        .unwrap_or(OpKind::Open)
}

/// Runs `ops` on `runtime` as a fresh `main` process (and `other`), killed at the end.
fn run_on(target: &Target, runtime: &Runtime, ops: &[Op], dict: &mut Dictionary) -> Outcome {
    let main = runtime.spawn(Some("main"));
    let mut procs = Processes {
        runtime: runtime.clone(),
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
        // An exit there before the operation runs came from the driver's own work since
        // the last one (a timer, an async job, a thread).
        if at > 0 {
            if let Some((owner, exit, queued)) = procs.take_crash() {
                let why = crash_reason(&exit).map(printed).unwrap_or_default();
                outcome.crash = Some(Crash {
                    why,
                    at: at - 1,
                    place: Place::WaitAfter(last_acting(ops, at - 1)),
                    owner,
                    queued,
                    memcheck: None,
                });
                break;
            }
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
            let place = match op {
                Op::Wait { .. } => Place::WaitAfter(last_acting(ops, at)),
                _ => Place::During(op.kind()),
            };
            outcome.crash = Some(Crash {
                why,
                at,
                place,
                owner,
                queued,
                memcheck: None,
            });
            break;
        }
    }
    // As the scenario runner ends: every process killed, so ports close and the driver goes
    // (but for the keeper's load).
    let Processes {
        runtime,
        main,
        other,
    } = procs;
    if let Some(other) = other {
        runtime.exit(other.pid(), Term::atom("kill"));
    }
    runtime.exit(main.pid(), Term::atom("kill"));
    outcome
}
