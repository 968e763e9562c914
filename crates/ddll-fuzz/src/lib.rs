//! `ddll fuzz`: fuzzing an Erlang port driver with the operations an Erlang program uses.
//!
//! Each case is a sequence of operations (`open_port` with generated start commands,
//! `port_command` with iodata of generated shapes and lengths, `port_control` and `port_call`
//! with generated operation numbers and payloads, `port_close`, the death of a port's owner,
//! unload, load and reload, and short waits for the driver's timers and async jobs), made from
//! random bytes with `arbitrary` or by mutating a case of the corpus (the seed scenarios, then
//! every case that showed a new behaviour or reached new coverage): operations inserted,
//! removed, replaced or repeated, payload bytes changed, and the constants the driver compared
//! its input with put in. What the driver accepted — operation numbers, payloads and their
//! lengths — steers generation (`case::Dictionary`).
//!
//! Every case runs with the driver isolated (`ddll::isolate`), so a crash takes only the
//! driver's host process down and a callback past the timeout is killed. A finding is a
//! `{driver_crashed, Why}` exit, one per `Why` at a place (`exec::Place`); under `--valgrind`
//! also an error memcheck reports (`memcheck`), one per kind at a function of the driver. It
//! is shrunk (`shrink`: fewer operations, shorter payloads, simpler values), written as a
//! scenario that `ddll script --isolate` replays, and that replay is checked before the file
//! is written; a later case that shows the same finding in fewer operations is shrunk again
//! and replaces it. A driver built with sanitizer coverage reports its edges and comparisons
//! (`coverage`).

#![forbid(unsafe_code)]

pub mod case;
pub mod coverage;
pub mod exec;
pub mod memcheck;
pub mod shrink;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use self::case::{Dictionary, Op};
use self::coverage::{Cmp, Coverage};
use self::exec::{Crash, Executor, Target};

/// What `ddll fuzz` is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The driver library (`NAME.so`); its folder is the scenarios' `DriverDir`.
    pub library: PathBuf,
    /// How long to fuzz.
    pub seconds: u64,
    /// A folder of seed scenarios (`*.scen`, e.g. the driver's own tests), mutated.
    pub seeds: Option<PathBuf>,
    /// Where findings are written, one `.scen` per finding.
    pub out: PathBuf,
    /// A driver callback that runs longer than this is a finding.
    pub callback_timeout: Duration,
    /// The random seed (`None`: from the clock), printed so a run can be repeated.
    pub rng_seed: Option<u64>,
    /// Runs the driver's host under valgrind's memcheck: its errors are findings too.
    pub valgrind: bool,
}

impl Config {
    /// Fuzzing `library` for a minute, findings in `fuzz-findings`, a one-second callback
    /// timeout (ten under valgrind, which runs the driver many times slower).
    pub fn new(library: impl Into<PathBuf>) -> Config {
        Config {
            library: library.into(),
            seconds: 60,
            seeds: None,
            out: PathBuf::from("fuzz-findings"),
            callback_timeout: DEFAULT_CALLBACK_TIMEOUT,
            rng_seed: None,
            valgrind: false,
        }
    }
}

/// The callback timeout unless one is given.
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(1);
/// The callback timeout under valgrind unless one is given.
pub const DEFAULT_VALGRIND_CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A finding, shrunk and written.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What it is: `{driver_crashed,sigsegv} at port_command`, `memcheck InvalidRead in
    /// vg_output`.
    pub key: String,
    /// The crash `Why` and where it showed.
    pub why: String,
    pub place: exec::Place,
    /// memcheck's error, for a `--valgrind` finding.
    pub memcheck: Option<memcheck::MemError>,
    /// The scenario file, and whether its replay showed the same finding.
    pub file: PathBuf,
    pub replayed: bool,
    /// Port operations in the scenario (without its load and the trailing `recv`s).
    pub operations: usize,
    /// Times a case showed it (the first and every later one).
    pub seen: u64,
    /// What shrinking it took: candidate runs and time.
    pub shrink_runs: usize,
    pub shrink_time: Duration,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub findings: Vec<Finding>,
    pub corpus: usize,
    /// Edges of the driver reached (0: not built with sanitizer coverage).
    pub edges: usize,
    /// memcheck errors outside any operation (at a case's end, as its ports closed).
    pub unattributed: Vec<memcheck::MemError>,
}

/// The most operations a generated case has.
const MAX_OPS: usize = 10;
/// The most oracle runs spent shrinking one finding.
const SHRINK_BUDGET: usize = 300;
/// The longest time spent shrinking one finding.
const SHRINK_TIME: Duration = Duration::from_secs(60);
/// The same under memcheck.
const SHRINK_TIME_MEMCHECK: Duration = Duration::from_secs(45);
/// The most cases kept in the corpus.
const MAX_CORPUS: usize = 512;
/// The most comparisons kept with a corpus case.
const MAX_CMPS: usize = 64;
/// The most input-to-state substitutions tried for a new corpus case.
const MAX_SUBSTITUTIONS: usize = 16;

/// A small xorshift generator: the bytes `arbitrary` turns into operations.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// Each seed its own stream (splitmix64's mix; xorshift needs a state that is not 0).
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

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

/// A corpus case, with the comparisons the driver made running it.
#[derive(Debug, Clone)]
struct Entry {
    ops: Vec<Op>,
    cmps: Vec<Cmp>,
}

/// The replay command of a finding.
pub fn replay_command(callback_timeout: Duration, valgrind: bool) -> String {
    format!(
        "ddll script --isolate{} --callback-timeout {} --drivers DIR FILE.scen",
        if valgrind { " --valgrind" } else { "" },
        callback_timeout.as_millis()
    )
}

/// Fuzzes `config.library` for `config.seconds`, writing findings to `config.out` and
/// progress lines to `progress`. Starts hosts with [`ddll::isolate::set_host_launcher`] (the
/// coverage hooks preloaded, memcheck under `--valgrind`), cleared again at the end: the
/// launcher is process-wide, so run one `fuzz` at a time.
pub fn fuzz(config: &Config, progress: &mut dyn std::io::Write) -> Result<Report, String> {
    let target = Target::from_library(&config.library, config.callback_timeout)?;
    std::fs::create_dir_all(&config.out).map_err(|e| format!("{}: {e}", config.out.display()))?;
    if config.valgrind {
        memcheck::available()?;
    }
    let work = tempfile::Builder::new()
        .prefix("ddll-fuzz-")
        .tempdir()
        .map_err(|e| format!("a temporary folder: {e}"))?;
    let coverage = Coverage::new(work.path())?;
    let reports = if config.valgrind {
        let dir = work.path().join("memcheck");
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Some(memcheck::Reports::new(dir, target.library.clone()))
    } else {
        None
    };
    let prefix = match &reports {
        Some(r) => memcheck::launcher_prefix(Some(&r.dir)),
        None => Vec::new(),
    };
    ddll::isolate::set_host_launcher(Some(ddll::isolate::HostLauncher::new(
        prefix,
        coverage.env(),
    )));
    let mut exec = Executor::new(target, Some(coverage), reports);
    let result = fuzz_with(config, &mut exec, progress);
    exec.finish();
    ddll::isolate::set_host_launcher(None);
    result
}

fn fuzz_with(
    config: &Config,
    exec: &mut Executor,
    progress: &mut dyn std::io::Write,
) -> Result<Report, String> {
    let seed = config.rng_seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let _ = writeln!(
        progress,
        "ddll fuzz: {} (rng seed {seed}{})",
        exec.target.name,
        if config.valgrind {
            ", under valgrind memcheck"
        } else {
            ""
        }
    );
    let mut rng = Rng::new(seed);
    let mut dict = Dictionary::default();
    let mut corpus: Vec<Entry> = match &config.seeds {
        Some(dir) => seeds::load(dir)?
            .into_iter()
            .map(|ops| Entry {
                ops,
                cmps: Vec::new(),
            })
            .collect(),
        None => Vec::new(),
    };
    let mut behaviours = BTreeSet::new();
    let mut found: BTreeMap<String, Finding> = BTreeMap::new();
    // Per crash key as seen: the crash `classify` found it to be (with the probe that shows
    // it), or `None` when it is what it looks like.
    let mut aliases: BTreeMap<String, Option<(Vec<Op>, Crash)>> = BTreeMap::new();
    let mut report = Report::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let mut next_progress = started + Duration::from_secs(1);
    // Seeds run first, as they are.
    let mut pending: Vec<Vec<Op>> = corpus.iter().map(|e| e.ops.clone()).collect();
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
        let outcome = exec.run(&ops, &mut dict)?;
        report.executions += 1;
        let before = behaviours.len();
        behaviours.extend(outcome.behaviours);
        let mut novel = behaviours.len() > before;
        let mut cmps = Vec::new();
        if let (Some(trace), Some(coverage)) = (&outcome.trace, exec.coverage.as_mut()) {
            novel |= coverage.merge(trace);
            cmps = trace.cmps.clone();
            cmps.truncate(MAX_CMPS);
            dict.compared(&trace.cmps);
        }
        if novel && corpus.len() < MAX_CORPUS {
            // Its comparisons first: each operand in the input replaced by what the driver
            // compared it with (the next step past a check on the input).
            pending.extend(case::substitutions(&ops, &cmps, MAX_SUBSTITUTIONS));
            corpus.push(Entry {
                ops: ops.clone(),
                cmps,
            });
        }
        report.unattributed.extend(outcome.unattributed);
        if let Some(crash) = outcome.crash {
            // The driver's own work, started by which operation? (See `classify`.)
            let raw = crash.key();
            let known = found.contains_key(&raw);
            let (ops, crash) = match aliases.get(&raw) {
                _ if known => (ops, crash),
                Some(None) => (ops, crash),
                Some(Some((probe, c))) => (probe.clone(), c.clone()),
                None => {
                    let classified = classify(exec, &ops, &crash, &mut dict)?;
                    aliases.insert(raw, classified.clone());
                    classified.unwrap_or((ops, crash))
                }
            };
            let key = crash.key();
            let shorter = |f: &Finding| case::effective_len(&ops[..=crash.at]) < f.operations;
            match found.get_mut(&key) {
                Some(f) if !shorter(f) => f.seen += 1,
                existing => {
                    let seen = existing.map_or(0, |f| f.seen) + 1;
                    let _ = writeln!(
                        progress,
                        "ddll fuzz: {} {key} after {} executions ({:.1}s); shrinking",
                        if seen == 1 { "found" } else { "shorter" },
                        report.executions,
                        started.elapsed().as_secs_f64()
                    );
                    let (mut finding, text) = settle(exec, &config.out, ops, &crash, &mut dict)?;
                    finding.seen = seen;
                    // The shortest scenario seen stays (one that replays over one that does not).
                    let keep = found.get(&key).is_none_or(|old| {
                        (finding.replayed, std::cmp::Reverse(finding.operations))
                            > (old.replayed, std::cmp::Reverse(old.operations))
                    });
                    if keep {
                        std::fs::write(&finding.file, &text)
                            .map_err(|e| format!("{}: {e}", finding.file.display()))?;
                        let _ = writeln!(
                            progress,
                            "ddll fuzz: wrote {} ({} operations; shrunk in {} runs, {:.1}s)",
                            finding.file.display(),
                            finding.operations,
                            finding.shrink_runs,
                            finding.shrink_time.as_secs_f64()
                        );
                        found.insert(key, finding);
                    } else if let Some(old) = found.get_mut(&key) {
                        old.seen = seen;
                    }
                }
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            let secs = now.duration_since(started).as_secs_f64();
            let edges = exec.coverage.as_ref().map_or(0, Coverage::edges);
            let _ = writeln!(
                progress,
                "ddll fuzz: {:.0}s {} execs ({:.0}/s) corpus {} {}findings {}",
                secs,
                report.executions,
                report.executions as f64 / secs,
                corpus.len(),
                if edges > 0 {
                    format!("cov {edges} edges ")
                } else {
                    String::new()
                },
                found.len()
            );
            next_progress = now + Duration::from_secs(1);
        }
    }
    report.corpus = corpus.len();
    report.edges = exec.coverage.as_ref().map_or(0, Coverage::edges);
    report.findings = found.into_values().collect();
    Ok(report)
}

/// A changed copy of a corpus case: operations inserted, removed, replaced or repeated, or
/// an operation's payload or number changed (bytes, the driver's compared constants).
fn mutate(
    base: &Entry,
    u: &mut arbitrary::Unstructured<'_>,
    dict: &Dictionary,
) -> arbitrary::Result<Vec<Op>> {
    let mut ops = base.ops.clone();
    // Payload changes only where the driver's comparisons say what to put in: without them
    // they took the planted bugs' test from about 80 to about 500 cases (the operations and
    // their order are what most bugs are behind).
    let payload_share = if base.cmps.is_empty() && dict.cmps.is_empty() {
        0
    } else {
        4
    };
    for _ in 0..u.int_in_range(1..=3)? {
        let at = u.int_in_range(0..=ops.len())?;
        match u.int_in_range(0..=3 + payload_share)? {
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
            4.. => {
                let with_data: Vec<usize> = (0..ops.len())
                    .filter(|&i| case::has_payload(&ops[i]))
                    .collect();
                if with_data.is_empty() {
                    ops.push(case::op(u, dict)?);
                } else {
                    let i = with_data[u.choose_index(with_data.len())?];
                    case::mutate_op(&mut ops[i], u, dict, &base.cmps)?;
                }
            }
            _ => ops.push(case::op(u, dict)?),
        }
    }
    ops.truncate(MAX_OPS * 2);
    Ok(ops)
}

/// How long the probe of [`classify`] waits in place of the operation.
const ASYNC_PROBE_MS: u32 = 30;

/// A crash seen at an operation may have come from the driver's own work (a timer, an async
/// job, a thread) that happened to end the host while the operation ran; one seen during a
/// wait may have been started by an earlier operation than the last. Probes tell: the case
/// cut after its first, second, ... operation, then waits; the first that crashes the same
/// way during a wait shows that crash, during the wait after the operation that started it
/// (the shrinker then drops the waits it does not need). So one such crash stays one
/// finding, whatever operations came between.
fn classify(
    exec: &mut Executor,
    ops: &[Op],
    crash: &Crash,
    dict: &mut Dictionary,
) -> Result<Option<(Vec<Op>, Crash)>, String> {
    if crash.memcheck.is_some() {
        return Ok(None);
    }
    for k in 1..=crash.at + 1 {
        if !ops[..k].iter().any(|op| matches!(op, Op::Open { .. })) {
            continue;
        }
        // A `recv` takes one message: one wait for each the operations may have sent (the
        // driver's replies), and one for the crash.
        let replies = ops[..k].iter().filter(|op| op.port().is_some()).count();
        let mut probe = ops[..k].to_vec();
        probe.extend(std::iter::repeat_n(
            Op::Wait { ms: ASYNC_PROBE_MS },
            1 + replies.min(MAX_OPS),
        ));
        match exec.run(&probe, dict)?.crash {
            Some(c) if c.why == crash.why && matches!(c.place, exec::Place::WaitAfter(_)) => {
                return Ok(Some((probe, c)));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The scenario file name of a finding.
fn file_name(crash: &Crash) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .trim_matches('_')
            .to_owned()
    };
    match &crash.memcheck {
        Some(e) => format!(
            "{}_memcheck_{}_{}.scen",
            crash.place.file_part(),
            clean(&e.kind),
            clean(&e.function())
        ),
        None => format!("{}_{}.scen", crash.place.file_part(), clean(&crash.why)),
    }
}

/// The scenario text of a finding.
fn scenario_text(target: &Target, finding: &Finding, body: &str, valgrind: bool) -> String {
    let mut text = match &finding.memcheck {
        Some(e) => {
            let mut t = format!(
                "% ddll fuzz finding: memcheck {} in {} {}: {}.\n",
                e.kind,
                e.frame(),
                finding.place.describe(),
                e.what
            );
            for aux in &e.aux {
                t.push_str(&format!("% {aux}.\n"));
            }
            t.push_str(&format!(
                "% Under memcheck the driver's ports exit with {{driver_crashed,{}}}; \
                 valgrind's report goes to standard error.\n",
                finding.why
            ));
            t
        }
        None => format!(
            "% ddll fuzz finding: {{driver_crashed,{}}} {}.\n",
            finding.why,
            finding.place.describe()
        ),
    };
    text.push_str(&format!(
        "% Replay: {}\n",
        replay_command(target.callback_timeout, valgrind).replace("DIR FILE.scen", "DIR THIS_FILE")
    ));
    text.push_str(body);
    text
}

/// Shrinks a finding, makes its scenario and checks that the scenario replays it.
fn settle(
    exec: &mut Executor,
    out: &Path,
    mut ops: Vec<Op>,
    crash: &Crash,
    dict: &mut Dictionary,
) -> Result<(Finding, String), String> {
    ops.truncate(crash.at + 1);
    let key = crash.key();
    let mut failed_to_run = None;
    let began = Instant::now();
    // Under memcheck each candidate that shows the error costs a new host (seconds).
    let until = began
        + if exec.memcheck.is_some() {
            SHRINK_TIME_MEMCHECK
        } else {
            SHRINK_TIME
        };
    let mut runs = 0usize;
    let shrunk = shrink::shrink(
        ops,
        case::simpler,
        |candidate| {
            if Instant::now() > until || failed_to_run.is_some() {
                return false;
            }
            runs += 1;
            match exec.run(candidate, dict) {
                Ok(outcome) => outcome.crash.is_some_and(|c| c.key() == key),
                Err(e) => {
                    failed_to_run = Some(e);
                    false
                }
            }
        },
        SHRINK_BUDGET,
    );
    if let Some(e) = failed_to_run {
        return Err(e);
    }
    // The shrunk case once more, for where its crash shows and what is queued with it.
    let last = exec.run(&shrunk, dict)?.crash;
    let (shrunk, drains, shown) = match last {
        Some(c) if c.key() == key => {
            let mut shrunk = shrunk;
            shrunk.truncate(c.at + 1);
            // At least one `recv(1000)`: a crash that a short `recv` caught here may come a
            // little later in the replay.
            let drains = vec![(c.owner, c.queued.max(1))];
            (shrunk, drains, c)
        }
        _ => (
            shrunk,
            vec![(crash.owner, crash.queued.max(1))],
            crash.clone(),
        ),
    };
    let mut finding = Finding {
        key,
        why: shown.why.clone(),
        place: shown.place,
        memcheck: shown.memcheck.clone(),
        file: out.join(file_name(&shown)),
        replayed: false,
        operations: case::effective_len(&shrunk),
        seen: 1,
        shrink_runs: runs,
        shrink_time: began.elapsed(),
    };
    let body = case::render(&exec.target.name, &shrunk, &drains);
    let text = scenario_text(&exec.target, &finding, &body, exec.memcheck.is_some());
    finding.replayed = replays(exec, &text, &finding)?;
    Ok((finding, text))
}

/// Whether the scenario `text`, run as `ddll script --isolate` runs it (under memcheck too,
/// for a memcheck finding), shows the finding.
fn replays(exec: &mut Executor, text: &str, finding: &Finding) -> Result<bool, String> {
    // The shared runtime's host would otherwise be alive beside the replay's.
    exec.finish();
    let target = &exec.target;
    let lines = ddll_scenario::run_text_with(text, &target.dir, &target.dir, target.options())?;
    let needle = format!("{{driver_crashed,{}}}", finding.why);
    let crashed = lines.iter().any(|l| l.contains(&needle));
    Ok(match (&finding.memcheck, &exec.memcheck) {
        (Some(expected), Some(reports)) => {
            let errors = reports.take();
            crashed
                && errors
                    .iter()
                    .any(|e| e.kind == expected.kind && e.function() == expected.function())
        }
        _ => crashed,
    })
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
