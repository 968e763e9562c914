//! Scenarios: a text file of Erlang expressions run against a [`Runtime`], printing
//! `N: Term` per line in a host-independent form so that the same file can be run under BEAM
//! (`cargo xtask beam`) and compared. The language is described in the crate's `README.md`;
//! [`parse`] reads it.

#![forbid(unsafe_code)]

mod bits;
pub mod parse;

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drv_term::{IdentNamer, Pid, Port, Ref, Term};

use ddll::{string_term, CommandOptions, Exception, PortOptions, Process, Runtime, RuntimeOptions};
use parse::{Expr, Line};

/// Runs a scenario file; `driver_dir` is bound to the variable `DriverDir`. Returns the output
/// lines (without trailing newlines).
pub fn run_file(file: &Path, driver_dir: &Path) -> Result<Vec<String>, String> {
    run_file_with(file, driver_dir, RuntimeOptions::default())
}

/// [`run_file`] on a runtime with `options`.
pub fn run_file_with(
    file: &Path,
    driver_dir: &Path,
    options: RuntimeOptions,
) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let base = base_dir_of(file)?;
    run_text_with(&text, &base, driver_dir, options)
}

/// Runs scenario `text` with relative paths taken from `base_dir`.
pub fn run_text(text: &str, base_dir: &Path, driver_dir: &Path) -> Result<Vec<String>, String> {
    run_text_with(text, base_dir, driver_dir, RuntimeOptions::default())
}

/// [`run_text`] on a runtime with `options`.
pub fn run_text_with(
    text: &str,
    base_dir: &Path,
    driver_dir: &Path,
    options: RuntimeOptions,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    run_text_each(text, base_dir, driver_dir, options, |line| {
        out.push(line.to_owned())
    })?;
    Ok(out)
}

/// Runs scenario `text` line by line, handing each result line to `each` as soon as it is
/// evaluated (so a caller that prints it loses nothing if a driver then takes the process
/// down). A line that does not parse is, as under the BEAM runner, the result
/// `{'EXIT',{scenario_error,syntax}}` and the run goes on (each line is scanned and parsed on
/// its own there too); its reason goes to stderr, for the author. `Err` when the runtime
/// cannot start.
pub fn run_text_each(
    text: &str,
    base_dir: &Path,
    driver_dir: &Path,
    options: RuntimeOptions,
    mut each: impl FnMut(&str),
) -> Result<(), String> {
    let runtime = Runtime::with_options(base_dir, options).map_err(|e| e.to_string())?;
    let mut runner = Runner::new(runtime, driver_dir);
    for (index, raw) in text.split('\n').enumerate() {
        match parse::parse_line(index + 1, raw) {
            Ok(Some(line)) => each(&runner.line(&line)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("ddll: {e}");
                each(&format!("{}: {{'EXIT',{{scenario_error,syntax}}}}", e.line));
            }
        }
    }
    runner.shutdown();
    Ok(())
}

/// What a scenario's comment line `% ddll test: in process: REASON` says: `ddll test`, which
/// loads drivers isolated (each in a child process), runs this scenario's drivers in its own
/// process instead, for REASON (what the scenario relies on that does not cross to an
/// isolated driver's process). `None` when no line says so.
pub fn in_process_reason(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let comment = line.trim_start().strip_prefix('%')?;
        let directive = comment.trim_start_matches('%').trim_start();
        let reason = directive.strip_prefix(IN_PROCESS_DIRECTIVE)?.trim();
        Some(if reason.is_empty() {
            "no reason given".to_owned()
        } else {
            reason.to_owned()
        })
    })
}

/// The start of the comment [`in_process_reason`] reads (after `%`).
pub const IN_PROCESS_DIRECTIVE: &str = "ddll test: in process:";

/// The folder a scenario file's relative paths are taken from: its own, absolute.
pub fn base_dir_of(file: &Path) -> Result<PathBuf, String> {
    let base = file.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    std::fs::canonicalize(base).map_err(|e| format!("{}: {e}", base.display()))
}

struct Runner {
    runtime: Runtime,
    processes: HashMap<String, Arc<Process>>,
    vars: HashMap<String, Term>,
    namer: Namer,
    /// The folder bound to `TmpDir`, removed at the end of the run.
    scratch: Option<PathBuf>,
}

/// Host-independent names, numbered in order of first appearance in the output.
#[derive(Default)]
struct Namer {
    procs: HashMap<Pid, String>,
    pids: HashMap<Pid, usize>,
    ports: HashMap<Port, usize>,
    refs: HashMap<Ref, usize>,
}

fn number<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, usize>, key: &K) -> usize {
    let next = map.len() + 1;
    *map.entry(key.clone()).or_insert(next)
}

impl IdentNamer for Namer {
    fn pid(&mut self, pid: &Pid) -> String {
        match self.procs.get(pid) {
            Some(name) => format!("<proc:{name}>"),
            None => format!("<pid:{}>", number(&mut self.pids, pid)),
        }
    }

    fn port(&mut self, port: &Port) -> String {
        format!("#Port<{}>", number(&mut self.ports, port))
    }

    fn reference(&mut self, reference: &Ref) -> String {
        format!("#Ref<{}>", number(&mut self.refs, reference))
    }
}

impl Runner {
    fn new(runtime: Runtime, driver_dir: &Path) -> Runner {
        let mut vars = HashMap::new();
        vars.insert(
            "DriverDir".to_owned(),
            string_term(&driver_dir.to_string_lossy()),
        );
        let scratch = scratch_dir(driver_dir);
        if let Some(dir) = &scratch {
            vars.insert("TmpDir".to_owned(), string_term(&dir.to_string_lossy()));
        }
        Runner {
            runtime,
            processes: HashMap::new(),
            vars,
            namer: Namer::default(),
            scratch,
        }
    }

    fn process(&mut self, name: &str) -> Arc<Process> {
        if let Some(p) = self.processes.get(name) {
            return p.clone();
        }
        let p = self.runtime.spawn(Some(name));
        self.namer.procs.insert(*p.pid(), name.to_owned());
        self.processes.insert(name.to_owned(), p.clone());
        p
    }

    fn line(&mut self, line: &Line) -> String {
        let value = match self.eval(&line.stmt.expr, "main") {
            Ok(value) => {
                if let Some(var) = &line.stmt.bind {
                    if var != "_" {
                        self.vars.insert(var.clone(), value.clone());
                    }
                }
                value
            }
            Err(Exception(reason)) => Term::Tuple(vec![atom("EXIT"), reason]),
        };
        let mut text = format!("{}: ", line.number);
        value.write_with(&mut text, &mut self.namer);
        text
    }

    /// Kills every scenario process so their ports close and drivers unload.
    fn shutdown(&mut self) {
        for p in self.processes.values() {
            self.runtime.exit(p.pid(), atom("kill"));
        }
        if let Some(dir) = self.scratch.take() {
            // Best effort, as the BEAM runner's file:del_dir_r.
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn eval(&mut self, expr: &Expr, who: &str) -> Result<Term, Exception> {
        Ok(match expr {
            Expr::Atom(a) => atom(a),
            Expr::Int(i) => int_term(*i),
            Expr::Float(f) => Term::Float(*f),
            Expr::Str(s) => string_term(s),
            Expr::Binary(segments) => {
                let mut writer = bits::BitWriter::default();
                for segment in segments {
                    let size = match &segment.size {
                        Some(size) => Some(self.eval(size, who)?),
                        None => None,
                    };
                    // A string is one segment per char, each with the segment's size and type.
                    let values = match &segment.value {
                        Expr::Str(s) => s.chars().map(|c| int_term(u32::from(c).into())).collect(),
                        value => vec![self.eval(value, who)?],
                    };
                    for value in &values {
                        writer.segment(segment, value, size.as_ref())?;
                    }
                }
                writer.finish()
            }
            Expr::Append(left, right) => {
                let left = self.eval(left, who)?;
                let right = self.eval(right, who)?;
                // `++` copies its left operand, which must be a proper list (else `badarg`).
                match left {
                    Term::List(items) => Term::cons(items, right),
                    _ => return Err(Exception::badarg()),
                }
            }
            Expr::List(items, tail) => {
                let items = items
                    .iter()
                    .map(|e| self.eval(e, who))
                    .collect::<Result<Vec<_>, _>>()?;
                match tail {
                    None => Term::List(items),
                    Some(tail) => Term::cons(items, self.eval(tail, who)?),
                }
            }
            Expr::Tuple(items) => Term::Tuple(
                items
                    .iter()
                    .map(|e| self.eval(e, who))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Map(pairs) => {
                let mut map: Vec<(Term, Term)> = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (self.eval(k, who)?, self.eval(v, who)?);
                    // A later association of the same key wins, as in an Erlang map literal.
                    map.retain(|(old, _)| !old.erl_eq(&k));
                    map.push((k, v));
                }
                Term::map(map).expect("keys were made unique")
            }
            Expr::Var(name) => self
                .vars
                .get(name)
                .cloned()
                .ok_or_else(|| Exception::new(Term::Tuple(vec![atom("unbound"), atom(name)])))?,
            Expr::Call {
                module,
                function,
                args,
            } => return self.call(module.as_deref(), function, args, who),
        })
    }

    fn call(
        &mut self,
        module: Option<&str>,
        function: &str,
        args: &[Expr],
        who: &str,
    ) -> Result<Term, Exception> {
        match (module, function, args) {
            (None, "as", [Expr::Atom(name), call]) => {
                let name = name.clone();
                self.process(&name);
                return self.eval(call, &name);
            }
            (None, "kill", [Expr::Atom(name)]) => {
                let Some(p) = self.processes.remove(name) else {
                    return Err(Exception::new(Term::Tuple(vec![
                        atom("no_such_process"),
                        atom(name),
                    ])));
                };
                self.runtime.exit(p.pid(), atom("kill"));
                return Ok(atom("true"));
            }
            _ => {}
        }
        let args = args
            .iter()
            .map(|e| self.eval(e, who))
            .collect::<Result<Vec<_>, _>>()?;
        let me = self.process(who);
        let pid = *me.pid();
        match (module, function, args.as_slice()) {
            (None, "recv", [timeout]) => {
                let timeout = receive_timeout(timeout)?;
                Ok(me
                    .receive(timeout)
                    .map_or_else(|| atom("timeout"), Term::from))
            }
            (Some("erl_ddll"), f, args) => ddll::erl_ddll_call(&self.runtime, &pid, f, args),
            (Some("erlang"), "element", [Term::Int(n), Term::Tuple(items)]) => usize::try_from(*n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| items.get(i).cloned())
                .ok_or(Exception::badarg()),
            // BEAM's element/2 on anything else (a `recv` that timed out, say): badarg.
            (Some("erlang"), "element", [_, _]) => Err(Exception::badarg()),
            (Some("erlang"), f, args) => self.erlang(&pid, f, args),
            (Some("file" | "filename"), f, args) => files(module.unwrap_or(""), f, args),
            (Some("code"), "priv_dir", [app]) => priv_dir(app),
            _ => Err(Exception::new(atom("undef"))),
        }
    }

    fn erlang(&mut self, pid: &Pid, function: &str, args: &[Term]) -> Result<Term, Exception> {
        let rt = &self.runtime;
        match (function, args) {
            ("self", []) => Ok(Term::Pid(*pid)),
            ("open_port", [Term::Tuple(name), options]) if name.len() == 2 => {
                let kind = &name[0];
                if *kind != atom("spawn_driver") && *kind != atom("spawn") {
                    return Err(Exception::badarg());
                }
                // BEAM's open_port takes the command as an atom too (its text,
                // UTF-8) or as a string; nothing else.
                let command = match &name[1] {
                    Term::Atom(a) => a.as_str().to_string(),
                    other => ddll::iodata::flatten(other)
                        .map(|b| b.iter().map(|&c| char::from(c)).collect::<String>())
                        .ok_or(Exception::badarg())?,
                };
                let options = port_options(options)?;
                rt.open_port(pid, &command, options).map(Term::Port)
            }
            ("port_command", [Term::Port(p), data]) => {
                rt.port_command(pid, p, data).map(|()| atom("true"))
            }
            ("port_command", [Term::Port(p), data, options]) => {
                let options = command_options(options)?;
                rt.port_command_with(pid, p, data, options)
                    .map(|sent| atom(if sent { "true" } else { "false" }))
            }
            ("port_connect", [Term::Port(p), Term::Pid(to)]) => {
                rt.port_connect(p, to).map(|()| atom("true"))
            }
            ("port_control", [Term::Port(p), Term::Int(op), data]) => {
                let op = u32::try_from(*op).map_err(|_| Exception::badarg())?;
                rt.port_control(pid, p, op, data)
            }
            ("port_call", [Term::Port(p), Term::Int(op), data]) => {
                let op = u32::try_from(*op).map_err(|_| Exception::badarg())?;
                rt.port_call(pid, p, op, data)
            }
            ("port_close", [Term::Port(p)]) => rt.port_close(pid, p).map(|()| atom("true")),
            ("ports", []) => Ok(Term::List(rt.ports().into_iter().map(Term::Port).collect())),
            ("port_info", [Term::Port(p)]) => Ok(rt.port_info(p)),
            ("port_info", [Term::Port(p), item]) => rt.port_info_item(p, item),
            ("byte_size", [Term::Binary(b)]) => Ok(int_term(b.len() as i128)),
            ("byte_size", [Term::Bitstring(b)]) => Ok(int_term(b.bytes().len() as i128)),
            ("bit_size", [bits @ (Term::Binary(_) | Term::Bitstring(_))]) => {
                let (_, bit_len) = bits.bits().expect("a binary or bitstring");
                Ok(int_term(bit_len as i128))
            }
            ("length", [Term::List(items)]) => Ok(int_term(items.len() as i128)),
            ("integer_to_list", [Term::Int(i)]) => Ok(string_term(&i.to_string())),
            ("binary_part", [Term::Bitstring(b), Term::Int(start), Term::Int(len)]) => {
                // A bitstring's whole bytes are a binary's: its partial last byte is out of
                // reach, as in BEAM.
                let whole = Bytes::copy_from_slice(&b.bytes()[..b.bytes().len() - 1]);
                binary_part(&whole, *start, *len)
            }
            ("binary_part", [Term::Binary(b), Term::Int(start), Term::Int(len)]) => {
                binary_part(b, *start, *len)
            }
            ("send", [Term::Port(p), message]) => {
                rt.port_message(pid, p, message)?;
                Ok(message.clone())
            }
            ("send", [Term::Port(p), message, options]) => {
                let nosuspend = send_options(options)?;
                let sent = rt.port_send(pid, p, message, nosuspend)?;
                Ok(atom(if sent { "ok" } else { "nosuspend" }))
            }
            (
                "port_command" | "port_control" | "port_call" | "port_close" | "port_info" | "send"
                | "open_port" | "port_connect" | "byte_size" | "bit_size" | "binary_part"
                | "length" | "integer_to_list",
                _,
            ) => Err(Exception::badarg()),
            _ => Err(Exception::new(atom("undef"))),
        }
    }
}

/// A fresh folder for `TmpDir` beside the drivers (the same file system, so libraries copied
/// there can be mapped executable), unique per OS process and run.
fn scratch_dir(driver_dir: &Path) -> Option<PathBuf> {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = driver_dir.join(format!("scratch.{}.{run}", std::process::id()));
    std::fs::create_dir_all(&dir).ok().map(|()| dir)
}

/// The file functions scenarios use to swap driver libraries and read what drivers wrote:
/// `file:copy/2`, `file:delete/1`, `file:read_file/1` and `filename:join/2`, with the results
/// BEAM gives.
fn files(module: &str, function: &str, args: &[Term]) -> Result<Term, Exception> {
    let path = |t: &Term| -> Result<PathBuf, Exception> {
        let bytes = ddll::iodata::flatten(t).ok_or(Exception::badarg())?;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
    };
    let posix = |e: std::io::Error| {
        let reason = e.raw_os_error().map_or_else(
            || atom("eio"),
            |errno| atom(&drv_abi::errno_id(errno).to_string_lossy()),
        );
        Term::Tuple(vec![atom("error"), reason])
    };
    match (module, function, args) {
        ("file", "copy", [from, to]) => {
            let (from, to) = (path(from)?, path(to)?);
            Ok(match std::fs::copy(&from, &to) {
                Ok(n) => Term::Tuple(vec![atom("ok"), Term::int(i128::from(n))]),
                Err(e) => posix(e),
            })
        }
        ("file", "delete", [file]) => Ok(match std::fs::remove_file(path(file)?) {
            Ok(()) => atom("ok"),
            Err(e) => posix(e),
        }),
        ("file", "read_file", [file]) => Ok(match std::fs::read(path(file)?) {
            Ok(data) => Term::Tuple(vec![atom("ok"), Term::Binary(Bytes::from(data))]),
            Err(e) => posix(e),
        }),
        ("filename", "join", [dir, name]) => {
            let (dir, name) = (path(dir)?, path(name)?);
            Ok(string_term(&dir.join(name).to_string_lossy()))
        }
        _ => Err(Exception::new(atom("undef"))),
    }
}

/// A `receive ... after T` timeout: `infinity` or milliseconds from 0 to 2^32-1; anything else
/// raises `timeout_value`, as BEAM does.
fn receive_timeout(timeout: &Term) -> Result<Option<Duration>, Exception> {
    match timeout {
        Term::Atom(a) if a.as_str() == "infinity" => Ok(None),
        Term::Int(ms) if (0..=i64::from(u32::MAX)).contains(ms) => {
            Ok(Some(Duration::from_millis(*ms as u64)))
        }
        _ => Err(Exception::new(atom("timeout_value"))),
    }
}

/// `code:priv_dir(App)`: `Root/lib/App-Vsn/priv` (the newest version) or `Root/lib/App/priv`
/// of the Erlang installation, `{error, bad_name}` when there is none, as BEAM answers for an
/// application outside its code path. The root is `$DDLL_ERL_ROOT`, else what `erl` reports.
fn priv_dir(app: &Term) -> Result<Term, Exception> {
    let app = match app {
        Term::Atom(a) => a.as_str().to_owned(),
        other => ddll::iodata::flatten(other)
            .map(|b| b.iter().map(|&c| char::from(c)).collect())
            .ok_or(Exception::new(atom("function_clause")))?,
    };
    let bad_name = || Term::Tuple(vec![atom("error"), atom("bad_name")]);
    let Some(root) = erlang_root() else {
        return Ok(bad_name());
    };
    let lib = root.join("lib");
    let prefix = format!("{app}-");
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(&lib)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let version = if name == app {
                        Vec::new()
                    } else {
                        let rest = name.strip_prefix(&prefix)?;
                        rest.split('.')
                            .map(|p| p.parse().ok())
                            .collect::<Option<_>>()?
                    };
                    Some((version, e.path().join("priv")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    Ok(match versions.pop() {
        Some((_, dir)) => string_term(&dir.to_string_lossy()),
        None => bad_name(),
    })
}

/// The Erlang installation's root folder (`code:root_dir()`), found once per process.
pub fn erlang_root() -> Option<PathBuf> {
    static ROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(root) = std::env::var_os("DDLL_ERL_ROOT") {
            return Some(PathBuf::from(root));
        }
        let out = std::process::Command::new("erl")
            .args([
                "-noshell",
                "-eval",
                "io:format(\"~s\", [code:root_dir()]), halt().",
            ])
            .output()
            .ok()?;
        let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !root.is_empty()).then(|| PathBuf::from(root))
    })
    .clone()
}

fn atom(name: &str) -> Term {
    Term::Atom(drv_term::Atom::new(name))
}

fn int_term(i: i128) -> Term {
    Term::int(i)
}

/// The options of `erlang:port_command/3` (a proper list of `force` and `nosuspend`).
fn command_options(options: &Term) -> Result<CommandOptions, Exception> {
    let Term::List(items) = options else {
        return Err(Exception::badarg());
    };
    let mut parsed = CommandOptions::new();
    for item in items {
        match item {
            Term::Atom(a) if a.as_str() == "force" => parsed = parsed.force(true),
            Term::Atom(a) if a.as_str() == "nosuspend" => parsed = parsed.nosuspend(true),
            _ => return Err(Exception::badarg()),
        }
    }
    Ok(parsed)
}

/// `erlang:binary_part(B, Start, Len)` of the bytes `b`; a negative length counts back from
/// `start`, as in BEAM.
fn binary_part(b: &Bytes, start: i64, len: i64) -> Result<Term, Exception> {
    let (from, to) = if len >= 0 {
        (start, start.checked_add(len))
    } else {
        (start.saturating_add(len), Some(start))
    };
    let range = usize::try_from(from)
        .ok()
        .zip(to.and_then(|to| usize::try_from(to).ok()))
        .filter(|(from, to)| from <= to && *to <= b.len())
        .ok_or(Exception::badarg())?;
    Ok(Term::Binary(b.slice(range.0..range.1)))
}

/// The options of `erlang:send/3`: whether `nosuspend` is among them (`noconnect` means
/// nothing without distribution).
fn send_options(options: &Term) -> Result<bool, Exception> {
    let Term::List(items) = options else {
        return Err(Exception::badarg());
    };
    let mut nosuspend = false;
    for item in items {
        match item {
            Term::Atom(a) if a.as_str() == "nosuspend" => nosuspend = true,
            Term::Atom(a) if a.as_str() == "noconnect" => {}
            _ => return Err(Exception::badarg()),
        }
    }
    Ok(nosuspend)
}

/// The `open_port` options ddll honours; others that BEAM accepts for drivers are ignored,
/// anything else is `badarg`.
fn port_options(options: &Term) -> Result<PortOptions, Exception> {
    let Term::List(items) = options else {
        return Err(Exception::badarg());
    };
    let mut parsed = PortOptions::new();
    for item in items {
        match item {
            Term::Atom(a) => match a.as_str() {
                "binary" => parsed = parsed.binary(true),
                "eof" => parsed = parsed.eof(true),
                "stream" | "in" | "out" | "use_stdio" | "nouse_stdio" | "hide" | "exit_status"
                | "overlapped_io" | "stderr_to_stdout" => {}
                _ => return Err(Exception::badarg()),
            },
            // Tuple options BEAM accepts for drivers; ddll has no use for them.
            Term::Tuple(pair)
                if pair.len() == 2
                    && matches!(&pair[0], Term::Atom(a) if ["packet", "line", "cd", "env", "args", "arg0", "parallelism", "busy_limits_port", "busy_limits_msgq"].contains(&a.as_str())) =>
                {}
            _ => return Err(Exception::badarg()),
        }
    }
    Ok(parsed)
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
