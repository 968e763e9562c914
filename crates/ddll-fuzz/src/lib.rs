//! `ddll fuzz`: fuzzing an Erlang port driver with the operations an Erlang program uses.
//!
//! Each case is a sequence of operations (`open_port` with generated start commands,
//! `port_command` with iodata of generated shapes and lengths, `port_control` and `port_call`
//! with generated operation numbers and payloads, `port_close`, the death of a port's owner,
//! unload, load and reload, and short waits for the driver's timers and async jobs), made from
//! random bytes with `arbitrary` or by mutating a case of the corpus (the seed scenarios, then
//! every case that showed a new behaviour). What the driver accepted — operation numbers,
//! payloads and their lengths — steers generation (`case::Dictionary`).
//!
//! Every case runs on a fresh runtime with the driver isolated (`ddll::isolate`), so a crash
//! takes only the driver's host process down and a callback past the timeout is killed. A
//! finding is a `{driver_crashed, Why}` exit; one per `Why` at an operation kind. It is shrunk
//! (`shrink`: fewer operations, shorter payloads, simpler values), written as a scenario that
//! `ddll script --isolate` replays, and that replay is checked before the file is written.

#![forbid(unsafe_code)]

pub mod case;
pub mod exec;
pub mod shrink;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use self::case::{Dictionary, Op, OpKind};
use self::exec::{Crash, Target};

/// `ddll fuzz`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FuzzArgs {
    /// The driver library (`NAME.so`); its folder is the scenarios' `DriverDir`.
    pub library: PathBuf,
    /// How long to fuzz.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub seconds: u64,
    /// A folder of seed scenarios (`*.scen`, e.g. the driver's own tests), mutated.
    #[arg(long, value_name = "DIR")]
    pub seeds: Option<PathBuf>,
    /// Where findings are written, one `.scen` per finding.
    #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
    pub out: PathBuf,
    /// A driver callback that runs longer than MS milliseconds is a finding.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub callback_timeout: u64,
    /// The random seed (default: from the clock), printed so a run can be repeated.
    #[arg(long)]
    pub rng_seed: Option<u64>,
}

/// A finding, shrunk and written.
#[derive(Debug, Clone)]
pub struct Finding {
    pub why: String,
    pub kind: OpKind,
    /// The scenario file, and whether its replay showed the same crash.
    pub file: PathBuf,
    pub replayed: bool,
    /// Port operations in the scenario (without its load and the trailing `recv`s).
    pub operations: usize,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub findings: Vec<Finding>,
    pub corpus: usize,
}

/// The most operations a generated case has.
const MAX_OPS: usize = 10;
/// The most oracle runs spent shrinking one finding.
const SHRINK_BUDGET: usize = 300;
/// The most cases kept in the corpus.
const MAX_CORPUS: usize = 512;

/// A small xorshift generator: the bytes `arbitrary` turns into operations.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `ddll fuzz`: prints progress on standard error, the summary on standard output; exit
/// status 1 with findings, 0 without, 2 when it could not start.
pub fn run_cli(args: &FuzzArgs) -> ExitCode {
    match fuzz(args, &mut std::io::stderr()) {
        Ok(report) => {
            println!(
                "ddll fuzz: {} executions, {} corpus cases, {} finding(s)",
                report.executions,
                report.corpus,
                report.findings.len()
            );
            for f in &report.findings {
                println!(
                    "  {{driver_crashed,{}}} at {}: {} ({} operations{})",
                    f.why,
                    f.kind.name(),
                    f.file.display(),
                    f.operations,
                    if f.replayed {
                        ", replay checked"
                    } else {
                        "; the replay did NOT show it"
                    }
                );
            }
            if report.findings.is_empty() {
                println!("no crash and no callback past the timeout found");
                ExitCode::SUCCESS
            } else {
                println!(
                    "replay: ddll script --isolate --callback-timeout {} --drivers DIR FILE.scen",
                    args.callback_timeout
                );
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ddll fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

/// Fuzzes `args.library` for `args.seconds`, writing findings to `args.out` and progress
/// lines to `progress`.
pub fn fuzz(args: &FuzzArgs, progress: &mut dyn std::io::Write) -> Result<Report, String> {
    let target = Target::from_library(&args.library, Duration::from_millis(args.callback_timeout))?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let seed = args.rng_seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let _ = writeln!(progress, "ddll fuzz: {} (rng seed {seed})", target.name);
    let mut rng = Rng(seed | 1);
    let mut dict = Dictionary::default();
    let mut corpus: Vec<Vec<Op>> = match &args.seeds {
        Some(dir) => seeds::load(dir)?,
        None => Vec::new(),
    };
    let mut behaviours = BTreeSet::new();
    let mut found: BTreeMap<(String, OpKind), Finding> = BTreeMap::new();
    let mut report = Report::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut next_progress = started + Duration::from_secs(1);
    // Seeds run first, as they are.
    let mut pending: Vec<Vec<Op>> = corpus.clone();
    while Instant::now() < deadline {
        let ops = match pending.pop() {
            Some(ops) => ops,
            None => {
                let bytes = rng.bytes(1024);
                let mut u = arbitrary::Unstructured::new(&bytes);
                let mutated = if !corpus.is_empty() && rng.next() % 3 >= 1 {
                    let base = &corpus[(rng.next() % corpus.len() as u64) as usize];
                    mutate(base, &mut u, &dict)
                } else {
                    case::case(&mut u, &dict, MAX_OPS)
                };
                match mutated {
                    Ok(ops) => ops,
                    Err(_) => continue,
                }
            }
        };
        let outcome = exec::run(&target, &ops, &mut dict)?;
        report.executions += 1;
        let before = behaviours.len();
        behaviours.extend(outcome.behaviours);
        if behaviours.len() > before && corpus.len() < MAX_CORPUS {
            corpus.push(ops.clone());
        }
        if let Some(crash) = outcome.crash {
            if let std::collections::btree_map::Entry::Vacant(slot) = found.entry(crash.key()) {
                let _ = writeln!(
                    progress,
                    "ddll fuzz: found {{driver_crashed,{}}} at {} after {} executions ({:.1}s); \
                     shrinking",
                    crash.why,
                    crash.kind.name(),
                    report.executions,
                    started.elapsed().as_secs_f64()
                );
                let finding = settle(&target, &args.out, ops, &crash, &mut dict)?;
                let _ = writeln!(
                    progress,
                    "ddll fuzz: wrote {} ({} operations)",
                    finding.file.display(),
                    finding.operations
                );
                slot.insert(finding);
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            let secs = now.duration_since(started).as_secs_f64();
            let _ = writeln!(
                progress,
                "ddll fuzz: {:.0}s {} execs ({:.0}/s) corpus {} findings {}",
                secs,
                report.executions,
                report.executions as f64 / secs,
                corpus.len(),
                found.len()
            );
            next_progress = now + Duration::from_secs(1);
        }
    }
    report.corpus = corpus.len();
    report.findings = found.into_values().collect();
    Ok(report)
}

/// A changed copy of a corpus case: operations inserted, removed, replaced or repeated.
fn mutate(
    base: &[Op],
    u: &mut arbitrary::Unstructured<'_>,
    dict: &Dictionary,
) -> arbitrary::Result<Vec<Op>> {
    let mut ops = base.to_vec();
    for _ in 0..u.int_in_range(1..=3)? {
        let at = u.int_in_range(0..=ops.len())?;
        match u.int_in_range(0..=3)? {
            0 => ops.insert(at, case::op(u, dict)?),
            1 if at < ops.len() && ops.len() > 1 => {
                ops.remove(at);
            }
            2 if at < ops.len() => ops[at] = case::op(u, dict)?,
            3 if at < ops.len() => {
                let copy = ops[at].clone();
                let to = u.int_in_range(0..=ops.len())?;
                ops.insert(to, copy);
            }
            _ => ops.push(case::op(u, dict)?),
        }
    }
    ops.truncate(MAX_OPS * 2);
    Ok(ops)
}

/// Shrinks a new finding, writes its scenario and checks that the scenario replays it.
fn settle(
    target: &Target,
    out: &Path,
    mut ops: Vec<Op>,
    crash: &Crash,
    dict: &mut Dictionary,
) -> Result<Finding, String> {
    ops.truncate(crash.at + 1);
    let key = crash.key();
    let mut failed_to_run = None;
    let shrunk = shrink::shrink(
        ops,
        case::simpler,
        |candidate| match exec::run(target, candidate, dict) {
            Ok(outcome) => outcome.crash.is_some_and(|c| c.key() == key),
            Err(e) => {
                failed_to_run = Some(e);
                false
            }
        },
        SHRINK_BUDGET,
    );
    if let Some(e) = failed_to_run {
        return Err(e);
    }
    // The shrunk case once more, for where its crash shows and what is queued with it.
    let last = exec::run(target, &shrunk, dict)?.crash;
    let (shrunk, drains) = match &last {
        Some(c) if c.key() == key => {
            let mut shrunk = shrunk;
            shrunk.truncate(c.at + 1);
            (shrunk, vec![(c.owner, c.queued)])
        }
        _ => (shrunk, vec![(crash.owner, crash.queued.max(1))]),
    };
    let file = out.join(format!(
        "{}_{}.scen",
        key.1.name(),
        key.0
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .trim_matches('_')
    ));
    let body = case::render(&target.name, &shrunk, &drains);
    let text = format!(
        "% ddll fuzz finding: {{driver_crashed,{}}} at {}.\n\
         % Replay: ddll script --isolate --callback-timeout {} --drivers DIR THIS_FILE\n{body}",
        key.0,
        key.1.name(),
        target.callback_timeout.as_millis(),
    );
    let replayed = replays(target, &text, &key.0)?;
    std::fs::write(&file, &text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Finding {
        why: key.0,
        kind: key.1,
        file,
        replayed,
        operations: case::effective_len(&shrunk),
    })
}

/// Whether the scenario `text`, run as `ddll script --isolate` runs it, prints the crash.
fn replays(target: &Target, text: &str, why: &str) -> Result<bool, String> {
    let lines = ddll_scenario::run_text_with(text, &target.dir, &target.dir, target.options())?;
    let needle = format!("{{driver_crashed,{why}}}");
    Ok(lines.iter().any(|l| l.contains(&needle)))
}

/// Seed scenarios turned into cases: their `open_port`, `port_command`, `port_control`,
/// `port_call`, `port_close` and `recv` lines with literal arguments.
mod seeds {
    use std::collections::HashMap;
    use std::path::Path;

    use ddll_scenario::parse::{self, BinType, Expr};

    use super::case::{CallTerm, Chunk, Op, Owner};

    pub fn load(dir: &Path) -> Result<Vec<Vec<Op>>, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "scen"))
            .collect();
        files.sort();
        let mut cases = Vec::new();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let ops = from_text(&text);
            if ops.iter().any(|op| matches!(op, Op::Open { .. })) {
                cases.push(ops);
            }
        }
        Ok(cases)
    }

    fn from_text(text: &str) -> Vec<Op> {
        let mut ports: HashMap<String, usize> = HashMap::new();
        let mut ops = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let Ok(Some(line)) = parse::parse_line(i + 1, raw) else {
                continue;
            };
            let Expr::Call {
                module,
                function,
                args,
            } = &line.stmt.expr
            else {
                continue;
            };
            let port = |e: &Expr| match e {
                Expr::Var(v) => ports.get(v).copied(),
                _ => None,
            };
            let op = match (module.as_deref(), function.as_str(), args.as_slice()) {
                (Some("erlang"), "open_port", [Expr::Tuple(name), _]) => {
                    let args = match name.as_slice() {
                        [_, Expr::Str(s)] => s
                            .split_once(' ')
                            .map(|(_, rest)| {
                                rest.chars()
                                    .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                                    .collect()
                            })
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    if let Some(var) = &line.stmt.bind {
                        ports.insert(var.clone(), ports.len());
                    }
                    Some(Op::Open {
                        owner: Owner::Main,
                        args,
                    })
                }
                (Some("erlang"), "port_command", [p, data, ..]) => {
                    port(p).zip(bytes(data)).map(|(port, b)| Op::Command {
                        port,
                        data: vec![Chunk::Binary(b)],
                    })
                }
                (Some("erlang"), "port_control", [p, Expr::Int(op), data]) => port(p)
                    .zip(bytes(data))
                    .zip(u32::try_from(*op).ok())
                    .map(|((port, data), operation)| Op::Control {
                        port,
                        operation,
                        data,
                    }),
                (Some("erlang"), "port_call", [p, Expr::Int(op), term]) => port(p)
                    .zip(call_term(term))
                    .zip(u32::try_from(*op).ok())
                    .map(|((port, term), operation)| Op::Call {
                        port,
                        operation,
                        term,
                    }),
                (Some("erlang"), "port_close", [p]) => port(p).map(|port| Op::Close { port }),
                (None, "recv", [Expr::Int(ms)]) => Some(Op::Wait {
                    ms: u32::try_from(*ms).unwrap_or(30).min(30),
                }),
                _ => None,
            };
            ops.extend(op);
        }
        ops
    }

    /// The bytes of a literal string, list of bytes or binary of byte-sized integers.
    fn bytes(e: &Expr) -> Option<Vec<u8>> {
        match e {
            Expr::Str(s) => s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
            Expr::List(items, None) => items
                .iter()
                .map(|i| match i {
                    Expr::Int(n) => u8::try_from(*n).ok(),
                    _ => None,
                })
                .collect(),
            Expr::Binary(segments) => {
                let mut out = Vec::new();
                for s in segments {
                    match (&s.value, &s.size, &s.kind) {
                        (Expr::Int(n), None, BinType::Integer) => out.push(*n as u8),
                        (Expr::Str(_), None, BinType::Integer) => out.extend(bytes(&s.value)?),
                        _ => return None,
                    }
                }
                Some(out)
            }
            _ => None,
        }
    }

    fn call_term(e: &Expr) -> Option<CallTerm> {
        Some(match e {
            Expr::Int(n) => CallTerm::Int(i64::try_from(*n).ok()?),
            Expr::Atom(a) => CallTerm::Atom(match a.as_str() {
                "ok" => "ok",
                "true" => "true",
                "false" => "false",
                "undefined" => "undefined",
                _ => "x",
            }),
            Expr::Tuple(items) => {
                CallTerm::Tuple(items.iter().map(call_term).collect::<Option<_>>()?)
            }
            Expr::List(items, None) => {
                CallTerm::List(items.iter().map(call_term).collect::<Option<_>>()?)
            }
            other => CallTerm::Binary(bytes(other)?),
        })
    }
}
