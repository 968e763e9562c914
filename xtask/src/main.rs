//! Project automation: `cargo xtask <task>`.
//!
//! * `drivers`  — build the example drivers against the project's header
//!   (`target/drivers/own`) and, when installed, OTP's (`target/drivers/otp`).
//! * `demo`     — build the drivers and run a few scenarios through ddll.
//! * `beam F…`  — run scenarios under a real `erl` and print the same form as ddll.
//! * `diff F…`  — run scenarios under both and show the differences.
//! * `echo-bench` — the echo round trip (64 bytes) under ddll (its criterion bench) and under
//!   `erl` (`xtask/beam/ddll_echo_bench.erl`), on the same `echo_drv.so`, side by side; then
//!   both taking turns, for a fair ratio on a busy machine.
//! * `timer-bench` — the port timer and async job benches of ddll (criterion) beside the same
//!   loops under BEAM, on the same driver libraries.
//! * `beam-cycle [N]` — BEAM's load + unload cycle time on `echo_drv.so` (the figure to compare
//!   with `cargo bench -p ddll-benches --bench cycle`), then the machine's floor: a C program's
//!   dlopen + dlclose of a trivial library.
//! * `stress [--helgrind | --plain] [OPS]` — the stress test (`crates/ddll/tests/stress.rs`)
//!   run longer, under valgrind's memcheck (default; any error fails), helgrind (a report to
//!   read: it cannot see parking_lot's locks), or without valgrind.
//! * `term-bench [CHUNKS [CHUNK]]` — time `erl_drv_output_term` of `{tcp, Port, [100 | Bin50]}`
//!   in `term_drv.so` under BEAM and under ddll, the same way (in the driver, and delivered),
//!   taking turns.
//! * `fuzz [SECONDS [SEED]]` — run the spec-interpreter and ETF-decoder fuzzers for a bounded
//!   time (stable Rust, no cargo-fuzz); crashers land in `crates/drv-term/tests/regressions/`,
//!   which the test suite replays.
//! * `queue-bench [OPS]` — time `queue_bench_drv`'s driver-queue loops under ddll and BEAM
//!   (the same `.so`) and print ns/op side by side.
//! * `backlog-bench [TURNS [WORKLOAD...]]` — the workloads where ddll is not ahead by design
//!   (`crates/ddll/examples/backlog_bench.rs`, `xtask/beam/backlog_bench.erl`, `backlog_drv.so`):
//!   a 60-token term taken with `Runtime::receive`, the output family with 200,000 messages
//!   queued at an owner that does not receive (in turn in one process, and each alone in a
//!   fresh one), 1,000,000 queued (memory, flatness), the echo over
//!   100 ports, memory per idle port; BEAM and ddll in turns, medians and ratios.
//! * `node-bench [ROUNDS [TURNS]]` — remote echo round trips per second from a BEAM process:
//!   to an `echo_drv` port on a `ddll node` (`ddll_remote`) and, in turns, to a process on a
//!   peer BEAM node echoing through its own `echo_drv` port (`xtask/beam/node_echo_bench.erl`);
//!   loopback, an EPMD of its own. `DDLL_BENCH_BINARY` names another `ddll` build timed as a
//!   second node in the same turns, through the `ddll_remote.erl` named by `DDLL_BENCH_REMOTE`
//!   (default: the repository's), for before/after figures.
//! * `package [--allow-dirty]` — `cargo package` of every published crate, verified (each built
//!   from its `.crate` alone), in dependency order; nothing is published.
//! * `sanitize [TOOL]` — run the runtime's threaded tests (queues, timers, async, select,
//!   monitors, created ports, init-ack, term output, port lifetime, unloads, stress, a short
//!   soak) and the queue crate's own tests under valgrind (TOOL: memcheck, the default and the
//!   gate; helgrind or drd report, but see `sanitize`'s notes).
//! * `loom` — the model-checked synchronisation (spin lock, mailbox, reference counts, async
//!   pool), built with `--cfg loom` in `target/loom`; `LOOM_MAX_PREEMPTIONS` (default 3) bounds
//!   each model's search.
//! * `soak [SECONDS] [--valgrind]` — every capability at once for SECONDS (default 60;
//!   `crates/ddll/tests/soak.rs`), natively (RSS must stay flat) or under memcheck.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        help()?;
        bail!("no task given");
    };
    match task.as_str() {
        "drivers" => drivers().map(|_| ()),
        "demo" => demo(),
        "beam" => {
            for file in rest {
                let file = Path::new(file);
                print!("{}", beam(file, &drivers_for(file)?)?);
            }
            Ok(())
        }
        "diff" => diff(rest),
        "echo-bench" => echo_bench(),
        "timer-bench" => timer_bench(),
        "stress" => stress(rest),
        "beam-cycle" => beam_cycle(rest),
        "term-bench" => term_bench(rest),
        "fuzz" => fuzz(rest),
        "queue-bench" => queue_bench(rest),
        "backlog-bench" => backlog_bench(rest),
        "node-bench" => node_bench(rest),
        "sanitize" => sanitize(rest),
        "package" => package(rest),
        "loom" => loom(),
        "soak" => soak(rest),
        "help" | "-h" | "--help" => help(),
        unknown => {
            help()?;
            bail!("unknown task `{unknown}`")
        }
    }
}

fn help() -> Result<()> {
    println!(
        "usage: cargo xtask <drivers | demo | beam FILE... | diff FILE... | echo-bench \
         | timer-bench | beam-cycle [N] | stress [--helgrind | --plain] [OPS] | term-bench [CHUNKS [CHUNK]] \
         | fuzz [SECONDS [SEED]] | queue-bench [OPS] | backlog-bench [TURNS [WORKLOAD...]] | node-bench [ROUNDS [TURNS]] \
         | sanitize [TOOL] | loom | soak [SECONDS] [--valgrind] | package [--allow-dirty]>"
    );
    Ok(())
}

/// `package`: packs every crate but xtask as it would be published, and verifies each by
/// building it from its `.crate` alone. The internal dependencies are not on crates.io, so a
/// lone `cargo package -p ddll` could only be checked with `--no-verify`; `--workspace` packs
/// the crates in dependency order and resolves each one's internal dependencies from the
/// `.crate`s packed before it (cargo's temporary local registry under `target/package`), the
/// external ones from crates.io. So the full verify works without publishing anything.
///
/// Cargo unpacks that local registry's crates under `$CARGO_HOME/registry/src/-HASH/` (a
/// registry without a name) and does not unpack a name and version it finds there again, nor
/// rebuild a registry crate of a name and version it built before (registry sources do not
/// change): a crate changed since the last run would be verified against its old sources or
/// build. So those copies of the workspace's crates go first, and the packing builds in a
/// target folder of its own, emptied first (`target/xtask-package`).
fn package(args: &[String]) -> Result<()> {
    forget_unpacked_local_crates()?;
    let target = root().join("target/xtask-package");
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("removing {}", target.display()))?;
    }
    let status = Command::new(env!("CARGO"))
        .args(["package", "--workspace", "--exclude", "xtask"])
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root())
        .status()
        .context("running cargo package")?;
    if !status.success() {
        bail!("cargo package failed: a crate does not package or does not build alone");
    }
    Ok(())
}

/// Removes the copies of this workspace's crates that `cargo package` unpacked from its
/// temporary local registries (see [`package`]).
fn forget_unpacked_local_crates() -> Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(cargo_home.join("registry/src")) else {
        return Ok(());
    };
    let crates: Vec<String> = std::fs::read_dir(root().join("crates"))?
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    for registry in registries.filter_map(|e| e.ok().map(|e| e.path())) {
        // Named registries (crates.io's `index.crates.io-HASH`) keep their unpacked crates.
        if !registry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('-'))
        {
            continue;
        }
        for unpacked in std::fs::read_dir(&registry)?.filter_map(|e| e.ok().map(|e| e.path())) {
            let name = unpacked
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let ours = name.is_some_and(|n| {
                crates
                    .iter()
                    .filter_map(|c| n.strip_prefix(c.as_str())?.strip_prefix('-'))
                    .any(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                std::fs::remove_dir_all(&unpacked)
                    .with_context(|| format!("removing {}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn otp_include() -> Option<PathBuf> {
    let out = Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:format(\"~s\", [code:root_dir()]), halt().",
        ])
        .output()
        .ok()?;
    let include = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("usr/include");
    include.join("erl_driver.h").exists().then_some(include)
}

/// Builds every `examples/drivers/*.c` against `include` into `out` with
/// `examples/drivers/build.sh` (the tests build through the same script).
fn build(include: &Path, out: &Path) -> Result<()> {
    let status = Command::new("sh")
        .arg(root().join("examples/drivers/build.sh"))
        .arg(out)
        .env("ERL_INCLUDE", include)
        .status()
        .context("running examples/drivers/build.sh")?;
    if !status.success() {
        bail!("examples/drivers/build.sh failed for {}", include.display());
    }
    Ok(())
}

/// Builds both driver sets; returns the own-header folder.
fn drivers() -> Result<PathBuf> {
    let own = root().join("target/drivers/own");
    build(&root().join("crates/drv-abi/include"), &own)?;
    println!(
        "built example drivers against ddll's erl_driver.h into {}",
        own.display()
    );
    match otp_include() {
        Some(include) => {
            let otp = root().join("target/drivers/otp");
            build(&include, &otp)?;
            println!(
                "built example drivers against OTP's erl_driver.h into {}",
                otp.display()
            );
        }
        None => {
            println!("OTP's erl_driver.h not found (install erlang-dev): skipped the OTP build")
        }
    }
    Ok(own)
}

/// The `DriverDir` of a scenario: the real drivers' folder for `scenarios/real/`, else the
/// example drivers built against OTP's header.
fn drivers_for(file: &Path) -> Result<PathBuf> {
    let in_real = file
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "real");
    if in_real {
        real_drivers()
    } else {
        otp_drivers()
    }
}

/// The real drivers that no OTP application installs, put into `target/real-drivers` by
/// `scenarios/real/fetch.sh`.
fn real_drivers() -> Result<PathBuf> {
    let dir = root().join("target/real-drivers");
    let status = Command::new("sh")
        .arg(root().join("scenarios/real/fetch.sh"))
        .arg(&dir)
        .status()
        .context("running scenarios/real/fetch.sh")?;
    if !status.success() {
        bail!("scenarios/real/fetch.sh failed (needs apt-get and dpkg, after apt-get update)");
    }
    Ok(dir)
}

fn otp_drivers() -> Result<PathBuf> {
    let include = otp_include()
        .context("erl and OTP's headers are needed (apt-get install erlang-nox erlang-dev)")?;
    let otp = root().join("target/drivers/otp");
    build(&include, &otp)?;
    Ok(otp)
}

/// The ddll binary, built in release mode.
fn ddll_binary() -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "ddll-cli",
            "--bin",
            "ddll",
        ])
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("building ddll failed");
    }
    Ok(root().join("target/release/ddll"))
}

fn run_ddll(binary: &Path, file: &Path, drivers: &Path) -> Result<String> {
    let out = Command::new(binary)
        .arg("script")
        .arg(file)
        .arg("--drivers")
        .arg(drivers)
        .output()?;
    if !out.status.success() {
        bail!(
            "ddll failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn beam(file: &Path, drivers: &Path) -> Result<String> {
    let out = Command::new("sh")
        .arg(root().join("xtask/beam/run.sh"))
        .arg(file)
        .arg(drivers)
        .env("DDLL_BEAM_EBIN", root().join("target/beam-ebin"))
        .output()
        .context("running erl")?;
    if !out.status.success() {
        bail!(
            "BEAM failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn diff(files: &[String]) -> Result<()> {
    let binary = ddll_binary()?;
    let mut differing = 0;
    for file in files {
        let file = Path::new(file);
        let drivers = drivers_for(file)?;
        let ours = run_ddll(&binary, file, &drivers)?;
        let theirs = beam(file, &drivers)?;
        if ours == theirs {
            println!("same: {}", file.display());
            continue;
        }
        differing += 1;
        println!("DIFFERENT: {}", file.display());
        let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (
                a.get(i).copied().unwrap_or(""),
                b.get(i).copied().unwrap_or(""),
            );
            if x != y {
                println!("  ddll: {x}\n  beam: {y}");
            }
        }
    }
    if differing > 0 {
        bail!("{differing} scenario(s) differ");
    }
    Ok(())
}

fn demo() -> Result<()> {
    let drivers = drivers()?;
    let binary = ddll_binary()?;
    for name in [
        "echo_binary_mode",
        "echo_control",
        "echo_call",
        "driver_failures",
        "load_errors",
    ] {
        let file = root().join("scenarios").join(format!("{name}.scen"));
        println!("\n== {name} (scenarios/{name}.scen) ==");
        let source = std::fs::read_to_string(&file)?;
        let output = run_ddll(&binary, &file, &drivers)?;
        let mut results = output.lines().peekable();
        for (i, line) in source.lines().enumerate() {
            let number = format!("{}: ", i + 1);
            if let Some(result) = results.next_if(|r| r.starts_with(&number)) {
                println!("{line:<60} => {}", &result[number.len()..]);
            }
        }
    }
    Ok(())
}

/// Round trips per BEAM run, and runs (BEAM's figure is the best run, as criterion's is a
/// robust estimate rather than the mean of a noisy machine).
const BEAM_ROUNDS: u32 = 1_000_000;
const BEAM_RUNS: u32 = 5;
/// Turns of the taking-turns comparison: each runs BEAM, then ddll, for [`BEAM_ROUNDS`] round
/// trips, so that both see the same load on a shared machine.
const TURNS: u32 = 5;

/// Runs the echo round trip under ddll and BEAM on the same driver build and prints both:
/// criterion's estimate for ddll beside BEAM's best run, then both taking turns (the fairer
/// comparison on a busy machine, where the load changes between one and the other).
fn echo_bench() -> Result<()> {
    let drivers = otp_drivers()?;
    println!(
        "echo round trip: port_command of 64 bytes -> echo_drv output -> driver_output -> \
         message received ({})",
        drivers.join("echo_drv.so").display()
    );
    let beam = beam_echo(&drivers, BEAM_RUNS)?;
    let ddll = ddll_echo(&drivers)?;
    let (best, median) = best_and_median(&beam);
    println!("  ddll: {ddll:7.1} ns  (criterion estimate)");
    println!(
        "  BEAM: {best:7.1} ns  (best of {BEAM_RUNS} runs of {BEAM_ROUNDS}; median {median:.1} ns)"
    );
    let (mut beam_turns, mut ddll_turns) = (Vec::new(), Vec::new());
    for _ in 0..TURNS {
        beam_turns.extend(beam_echo(&drivers, 1)?);
        ddll_turns.push(ddll_echo_rounds(&drivers)?);
    }
    let (beam_best, beam_median) = best_and_median(&beam_turns);
    let (ddll_best, ddll_median) = best_and_median(&ddll_turns);
    println!("  taking turns, {TURNS} runs of {BEAM_ROUNDS} each:");
    println!("    ddll: best {ddll_best:7.1} ns, median {ddll_median:7.1} ns");
    println!("    BEAM: best {beam_best:7.1} ns, median {beam_median:7.1} ns");
    println!(
        "  ddll does {:.2}x BEAM's round trips per second (best against best; {:.2}x median \
         against median)",
        beam_best / ddll_best,
        beam_median / ddll_median
    );
    Ok(())
}

/// The smallest and the middle figure.
fn best_and_median(figures: &[f64]) -> (f64, f64) {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[0], sorted[sorted.len() / 2])
}

/// ns per round trip of one run of ddll's echo bench in its plain-loop mode
/// (`DDLL_ECHO_ROUNDS`), over [`BEAM_ROUNDS`] round trips like a BEAM run.
fn ddll_echo_rounds(drivers: &Path) -> Result<f64> {
    let out = Command::new(env!("CARGO"))
        .args(["bench", "--quiet", "-p", "ddll-benches", "--bench", "echo"])
        .env("DDLL_BENCH_DRIVERS", drivers)
        .env("DDLL_ECHO_ROUNDS", BEAM_ROUNDS.to_string())
        .current_dir(root())
        .output()
        .context("running cargo bench")?;
    let stderr = String::from_utf8(out.stderr)?;
    if !out.status.success() {
        bail!("the ddll echo rounds failed: {stderr}");
    }
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_round_trip: "))
        .with_context(|| format!("no figure in: {stderr}"))?
        .parse()
        .context("the figure")
}

/// Compiles `xtask/beam/MODULE.erl` into `target/beam-ebin`, then runs `erl` there with
/// `-eval EVAL` and `extra` as plain arguments (`init:get_plain_arguments()`). With `capture`,
/// returns erl's standard output; else erl prints straight to the terminal.
fn run_erl_module(module: &str, eval: &str, extra: &[&OsStr], capture: bool) -> Result<String> {
    let ebin = root().join("target/beam-ebin");
    std::fs::create_dir_all(&ebin)?;
    let source = root().join(format!("xtask/beam/{module}.erl"));
    let status = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(&source)
        .status()
        .context("running erlc")?;
    if !status.success() {
        bail!("erlc failed on {}", source.display());
    }
    let mut erl = Command::new("erl");
    erl.args(["-noshell", "-noinput", "-pa"])
        .arg(&ebin)
        .args(["-eval", eval, "-extra"])
        .args(extra)
        .stderr(Stdio::inherit())
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let out = erl.output().context("running erl")?;
    if !out.status.success() {
        bail!("erl failed running {module}");
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// ns per round trip of each of `runs` BEAM runs.
fn beam_echo(drivers: &Path, runs: u32) -> Result<Vec<f64>> {
    let (rounds, runs) = (BEAM_ROUNDS.to_string(), runs.to_string());
    let stdout = run_erl_module(
        "ddll_echo_bench",
        "ddll_echo_bench:main(init:get_plain_arguments())",
        &[drivers.as_os_str(), rounds.as_ref(), runs.as_ref()],
        true,
    )?;
    let figures: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ns_per_round_trip: "))
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if figures.is_empty() {
        bail!("the BEAM echo bench printed no figure");
    }
    Ok(figures)
}

/// criterion's estimate (ns) of ddll's echo bench on `drivers`.
fn ddll_echo(drivers: &Path) -> Result<f64> {
    let out = Command::new(env!("CARGO"))
        .args([
            "bench",
            "--quiet",
            "-p",
            "ddll-benches",
            "--bench",
            "echo",
            "--",
        ])
        .args(["--warm-up-time", "1", "--measurement-time", "3"])
        .env("DDLL_BENCH_DRIVERS", drivers)
        .current_dir(root())
        .output()
        .context("running cargo bench")?;
    let stdout = String::from_utf8(out.stdout)?;
    if !out.status.success() {
        bail!(
            "cargo bench failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
        .lines()
        .find_map(criterion_estimate)
        .with_context(|| format!("no criterion estimate in: {stdout}"))
}

/// The middle figure of a criterion line `NAME  time:   [1.0 ns 2.0 ns 3.0 ns]`, in ns.
fn criterion_estimate(line: &str) -> Option<f64> {
    let figures = line.split("time:").nth(1)?.trim().strip_prefix('[')?;
    let mut words = figures.split_whitespace().skip(2);
    let value: f64 = words.next()?.parse().ok()?;
    let scale = match words.next()? {
        "ps" => 1e-3,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    Some(value * scale)
}

/// The loops of `crates/ddll-benches/benches/timer_async.rs`, with their targets (ns per operation).
const TIMER_BENCHES: &[(&str, &str, f64)] = &[
    (
        "timer_set_read_cancel",
        "driver_set_timer + read + cancel",
        60.0,
    ),
    ("async_submit", "driver_async (no-op job)", 150.0),
    (
        "async_submit_to_ready",
        "driver_async -> ready_async, batch",
        250.0,
    ),
    ("async_chain", "driver_async -> ready_async, chained", 250.0),
];

/// Runs the timer/async benches under ddll (criterion, briefly) and under BEAM, on the drivers
/// built against OTP's header, and prints the medians side by side.
fn timer_bench() -> Result<()> {
    let drivers = otp_drivers()?;
    println!("BEAM: 20 rounds of 100000 operations per loop...");
    let eval = format!(
        "timer_async_bench:main([\"{}\", \"20\", \"100000\"])",
        drivers.display()
    );
    let beam = run_erl_module("timer_async_bench", &eval, &[], true)?;
    // "NAME MEDIAN MIN" per loop.
    let beam_figures = |name: &str| -> String {
        beam.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or("?".to_owned(), |rest| rest.replace(' ', " / "))
    };
    println!("ddll: cargo bench -p ddll-benches --bench timer_async (criterion, brief)...");
    let status = Command::new(env!("CARGO"))
        .args([
            "bench",
            "-p",
            "ddll-benches",
            "--bench",
            "timer_async",
            "--",
        ])
        .args(["--warm-up-time", "1", "--measurement-time", "3"])
        .env("DDLL_BENCH_DRIVERS", &drivers)
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("cargo bench failed");
    }
    println!();
    println!(
        "{:<40} {:>8} {:>18} {:>8}",
        "ns per operation", "ddll", "BEAM median / best", "target"
    );
    for (id, what, target) in TIMER_BENCHES {
        let ddll = criterion_median(id)?;
        let beam = beam_figures(id);
        println!(
            "{what:<40} {ddll:>8.1} {beam:>18} {:>8}",
            format!("<= {target}")
        );
    }
    println!("(ddll: criterion's median; BEAM: 20 rounds of 100000, the drivers' own timing)");
    Ok(())
}

/// The median point estimate (ns) criterion recorded for bench `id`.
fn criterion_median(id: &str) -> Result<f64> {
    let file = root()
        .join("target/criterion")
        .join(id)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    let median = &json[json.find("\"median\"").context("no median in estimates")?..];
    let value = &median[median
        .find("\"point_estimate\":")
        .context("no point estimate")?
        + "\"point_estimate\":".len()..];
    let end = value.find([',', '}']).context("unterminated number")?;
    Ok(value[..end].parse()?)
}

/// Builds the stress test and runs it longer: under valgrind's memcheck (invalid reads or
/// writes, e.g. a callback into a closed library, fail the run), helgrind, or natively.
fn stress(args: &[String]) -> Result<()> {
    let tool = if args.iter().any(|a| a == "--helgrind") {
        Some("helgrind")
    } else if args.iter().any(|a| a == "--plain") {
        None
    } else {
        Some("memcheck")
    };
    let ops = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("2000", String::as_str);
    let test = stress_binary()?;
    let mut command = match tool {
        Some(tool) => {
            let mut c = Command::new("valgrind");
            c.arg(format!("--tool={tool}")).arg("--num-callers=30");
            // Helgrind knows pthread locks only: every access guarded by a parking_lot lock
            // (futex-based) or an atomic shows up as a possible race, so its report is for
            // reading, not a verdict. Memcheck's errors (invalid reads/writes, e.g. a
            // callback into a closed library) fail the run.
            if tool == "memcheck" {
                c.arg("--error-exitcode=99");
            }
            c.arg(&test);
            c
        }
        None => Command::new(&test),
    };
    command
        .args(["--test-threads=1", "--nocapture"])
        .env("DDLL_STRESS_OPS", ops)
        .env("DDLL_STRESS_THREADS", "4")
        .current_dir(root().join("crates/ddll"));
    println!(
        "running {} with {ops} operations x 4 threads{}",
        test.display(),
        tool.map_or(String::new(), |t| format!(" under valgrind --tool={t}"))
    );
    let status = command
        .status()
        .context("running the stress test (is valgrind installed?)")?;
    if !status.success() {
        bail!("the stress run failed ({status})");
    }
    Ok(())
}

/// The stress test's executable, built in the dev profile (debug info for valgrind).
fn stress_binary() -> Result<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .args([
            "test",
            "-p",
            "ddll",
            "--test",
            "stress",
            "--no-run",
            "--message-format=json",
        ])
        .current_dir(root())
        .output()
        .context("building the stress test")?;
    if !out.status.success() {
        bail!(
            "building the stress test failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The artifact line of the `stress` test target carries its executable.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"name\":\"stress\"") && l.contains("\"executable\":\""))
        .context("cargo named no stress executable")?;
    let start = line.find("\"executable\":\"").expect("found above") + "\"executable\":\"".len();
    let end = line[start..]
        .find('"')
        .context("unterminated executable path")?;
    Ok(PathBuf::from(&line[start..start + end]))
}

/// Runs `xtask/beam/ddll_cycle.erl` on the OTP-header build of the drivers.
fn beam_cycle(args: &[String]) -> Result<()> {
    let drivers = otp_drivers()?;
    let mut extra = vec![drivers.as_os_str()];
    extra.extend(args.first().map(OsStr::new));
    run_erl_module(
        "ddll_cycle",
        "ddll_cycle:main(init:get_plain_arguments())",
        &extra,
        false,
    )?;
    dlopen_floor(args.first().map(String::as_str))
}

/// The machine's own floor under a load + unload cycle: a C program's dlopen + dlclose of a
/// trivial library (`xtask/floor`), which no loader can go below without skipping the close.
fn dlopen_floor(cycles: Option<&str>) -> Result<()> {
    let out = root().join("target/floor");
    std::fs::create_dir_all(&out)?;
    let src = root().join("xtask/floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compile = |args: &[&OsStr]| -> Result<()> {
        let status = Command::new(&cc)
            .args(["-O2", "-Wall"])
            .args(args)
            .status()?;
        if !status.success() {
            bail!("{cc} failed on {args:?}");
        }
        Ok(())
    };
    let (lib, program) = (out.join("trivial_lib.so"), out.join("dlopen_cycle"));
    compile(&[
        OsStr::new("-shared"),
        OsStr::new("-fPIC"),
        src.join("trivial_lib.c").as_os_str(),
        OsStr::new("-o"),
        lib.as_os_str(),
    ])?;
    compile(&[
        src.join("dlopen_cycle.c").as_os_str(),
        OsStr::new("-o"),
        program.as_os_str(),
        OsStr::new("-ldl"),
    ])?;
    let status = Command::new(&program).arg(&lib).args(cycles).status()?;
    if !status.success() {
        bail!("the dlopen floor program failed");
    }
    Ok(())
}

/// Builds the `ddll` crate's example `name` (a benchmark's ddll side) in release; its path.
fn ddll_example(name: &str) -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "ddll",
            "--example",
            name,
        ])
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("building the ddll benchmark {name} failed");
    }
    Ok(root().join("target/release/examples").join(name))
}

/// `term-bench`: BEAM and ddll on the same `term_drv.so`, measured the same way, taking turns
/// ([`TURNS`] runs of each, BEAM then ddll) so that both see the same load on a shared
/// machine. Each run prints its mean and median per call; the best and the middle of the
/// runs' medians are reported.
fn term_bench(args: &[String]) -> Result<()> {
    let chunks = args.first().map_or("200", String::as_str);
    let chunk = args.get(1).map_or("10000", String::as_str);
    let drivers = otp_drivers()?;
    let ddll = ddll_example("term_bench")?;
    let eval = format!(
        "term_bench:main([\"{}\", \"{chunks}\", \"{chunk}\"])",
        drivers.display()
    );
    println!(
        "erl_drv_output_term of {{tcp, Port, [100 | Bin50]}} ({}), {chunks} chunks of {chunk} \
         calls a run, ns per call:",
        drivers.join("term_drv.so").display()
    );
    // [runtime][in_driver, delivered]: each run's median.
    let mut medians = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for turn in 1..=TURNS {
        let beam = run_erl_module("term_bench", &eval, &[], true)?;
        let out = Command::new(&ddll)
            .arg(&drivers)
            .args([chunks, chunk])
            .output()
            .context("running the ddll benchmark")?;
        if !out.status.success() {
            bail!(
                "the ddll benchmark failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ours = String::from_utf8(out.stdout)?;
        for (runtime, text) in [beam, ours].iter().enumerate() {
            for (what, key) in ["in_driver_ns_per_call", "delivered_ns_per_call"]
                .iter()
                .enumerate()
            {
                let line = text
                    .lines()
                    .find(|l| l.contains(key))
                    .with_context(|| format!("no {key} in: {text}"))?;
                println!("  turn {turn}: {line}");
                let median: f64 = line
                    .rsplit(' ')
                    .next()
                    .context("a median")?
                    .parse()
                    .context("the median")?;
                medians[runtime][what].push(median);
            }
        }
    }
    println!("  taking turns, medians of {TURNS} runs each (best / middle):");
    for (runtime, name) in ["BEAM", "ddll"].iter().enumerate() {
        let (in_best, in_mid) = best_and_median(&medians[runtime][0]);
        let (del_best, del_mid) = best_and_median(&medians[runtime][1]);
        println!(
            "    {name}: in the driver {in_best:6.1} / {in_mid:6.1}   delivered {del_best:6.1} / \
             {del_mid:6.1}"
        );
    }
    println!(
        "(criterion: cargo bench -p ddll-benches --bench term_output; cargo bench -p drv-term)"
    );
    Ok(())
}

/// `fuzz`: the in-repo fuzz loop over both fuzz targets, for a bounded time.
fn fuzz(args: &[String]) -> Result<()> {
    let seconds = args.first().map_or("60", String::as_str);
    let seed = args.get(1).map_or("24301", String::as_str);
    let status = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "drv-term",
            "--example",
            "fuzz",
            "--",
        ])
        .args([seconds, seed])
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("the fuzz loop found crashes (saved under crates/drv-term/tests/regressions/)");
    }
    Ok(())
}

/// `queue_bench_drv`'s loops: (control number, what it does).
const QUEUE_LOOPS: [(u32, &str); 3] = [
    (1, "driver_enq 64 B + peekq/deq every 16"),
    (2, "driver_enq_bin 64 B, one binary, deq every 16"),
    (3, "driver_enq_bin 64 B, 16 binaries, deq every 16"),
];

/// Runs each loop of `queue_bench_drv` under ddll (release build) and BEAM in turns, with the
/// same driver built against OTP's header, and prints the best and the median ns/op of each
/// side. The loops are timed inside the driver (CLOCK_MONOTONIC), so both sides measure the same
/// C code; taking turns spreads a shared machine's load over both. `DDLL_BENCH_BINARY` names
/// another `ddll` executable to time (e.g. an older build, for before/after figures).
fn queue_bench(args: &[String]) -> Result<()> {
    let ops: u64 = match args.first() {
        Some(n) => n.parse().context("OPS is a number of operations")?,
        None => 2_000_000,
    };
    const RUNS_PER_TURN: usize = 2;
    let drivers = otp_drivers()?;
    let binary = match std::env::var_os("DDLL_BENCH_BINARY") {
        Some(path) => PathBuf::from(path),
        None => ddll_binary()?,
    };
    let mut script = String::from(
        "erl_ddll:load(DriverDir, queue_bench_drv).\n\
         P = erlang:open_port({spawn_driver, \"queue_bench_drv\"}, []).\n",
    );
    for _ in 0..RUNS_PER_TURN {
        for (number, _) in QUEUE_LOOPS {
            script.push_str(&format!("erlang:port_control(P, {number}, \"{ops}\").\n"));
        }
    }
    let dir = root().join("target/tmp");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("queue_bench.scen");
    std::fs::write(&file, script)?;
    let mut ours = vec![Vec::new(); QUEUE_LOOPS.len()];
    let mut theirs = vec![Vec::new(); QUEUE_LOOPS.len()];
    for _ in 0..TURNS {
        for (i, figure) in ns_per_op(&run_ddll(&binary, &file, &drivers)?)? {
            ours[i].push(figure);
        }
        for (i, figure) in ns_per_op(&beam(&file, &drivers)?)? {
            theirs[i].push(figure);
        }
    }
    println!(
        "ns/op of {ops} operations, {TURNS} turns of ddll then BEAM, {RUNS_PER_TURN} runs each \
         (same queue_bench_drv.so): best / median"
    );
    println!("{:<50} {:>15} {:>15}", "loop", "ddll", "BEAM");
    for (i, (_, name)) in QUEUE_LOOPS.iter().enumerate() {
        let (our_best, our_median) = best_and_median(&ours[i]);
        let (their_best, their_median) = best_and_median(&theirs[i]);
        println!(
            "{name:<50} {:>6.1} / {:>6.1} {:>6.1} / {:>6.1}",
            our_best, our_median, their_best, their_median
        );
    }
    Ok(())
}

/// Each run's ns/op from a bench scenario's output (`N: "ns=T ops=K"` lines, the loops in
/// turn), with the loop's index in [`QUEUE_LOOPS`].
fn ns_per_op(output: &str) -> Result<Vec<(usize, f64)>> {
    let mut figures = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.split_once("\"ns=").map(|(_, r)| r) else {
            continue;
        };
        let (ns, ops) = rest
            .trim_end_matches('"')
            .split_once(" ops=")
            .context("a bench reply is \"ns=T ops=K\"")?;
        let per_op = ns.parse::<f64>()? / ops.parse::<f64>()?;
        figures.push((figures.len() % QUEUE_LOOPS.len(), per_op));
    }
    if figures.is_empty() || figures.len() % QUEUE_LOOPS.len() != 0 {
        bail!("unexpected bench output:\n{output}");
    }
    Ok(figures)
}

/// The test binaries `cargo test --no-run` builds for `args`, from its JSON messages.
fn test_binaries(args: &[&str]) -> Result<Vec<PathBuf>> {
    let out = Command::new(env!("CARGO"))
        .args(["test", "--no-run", "--message-format=json"])
        .args(args)
        .current_dir(root())
        .output()?;
    if !out.status.success() {
        bail!(
            "building the tests failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let mut found = Vec::new();
    for line in text.lines() {
        // Test harnesses have `"test":true` in their profile (the `ddll` binary built for the
        // integration tests does not).
        let profile = line
            .split_once("\"profile\":{")
            .and_then(|(_, rest)| rest.split_once('}'))
            .map_or("", |(profile, _)| profile);
        let test = profile.contains("\"test\":true");
        if let (true, Some((_, rest))) = (test, line.split_once("\"executable\":\"")) {
            if let Some((path, _)) = rest.split_once('"') {
                found.push(PathBuf::from(path));
            }
        }
    }
    Ok(found)
}

/// Runs the runtime's threaded tests under valgrind. memcheck (the default) must find no error
/// (invalid reads/writes, uses of uninitialised memory, definite leaks); it is the gate.
/// helgrind and drd know neither parking_lot's futex-based locks (the port data lock, the
/// callback lock) nor plain atomics as synchronisation, so they report every access those
/// locks guard; with them this prints the counts and does not fail.
fn sanitize(args: &[String]) -> Result<()> {
    let tool = args.first().map_or("memcheck", String::as_str);
    if !["memcheck", "helgrind", "drd"].contains(&tool) {
        bail!("unknown valgrind tool {tool}: memcheck, helgrind or drd");
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        bail!("valgrind is not installed (apt-get install valgrind)");
    }
    // (package, test target, test filter): every test of the runtime that runs driver code on
    // more than one thread (driver threads, the timer thread, the async pool, the poll thread,
    // created ports), then the queue crate's own.
    let suites: [(&str, &str, &str); 13] = [
        ("ddll", "queue_threads", ""),
        ("ddll", "queue_api", ""),
        ("ddll", "timers_async", ""),
        ("ddll", "select", ""),
        ("ddll", "monitors", ""),
        ("ddll", "created_ports", ""),
        ("ddll", "init_ack", ""),
        ("ddll", "term_output", ""),
        ("ddll", "port_lifetime", ""),
        ("ddll", "unload_safety", ""),
        ("ddll", "stress", ""),
        // Everything at once, briefly (`DDLL_SOAK_SECONDS` below).
        ("ddll", "soak", ""),
        // All of the crate's unit tests: binaries, the queue and its slots, port data locks.
        ("drv-queue", "--lib", ""),
    ];
    let (mut failed, mut ran) = (0, 0);
    for (package, target, filter) in suites {
        let build: Vec<&str> = if target == "--lib" {
            vec!["-p", package, "--lib"]
        } else {
            vec!["-p", package, "--test", target]
        };
        for binary in test_binaries(&build)? {
            let mut valgrind = Command::new("valgrind");
            if tool == "memcheck" {
                valgrind.args(MEMCHECK_ARGS);
            } else {
                valgrind
                    .arg(format!("--tool={tool}"))
                    .arg("--error-exitcode=99");
            }
            let out = valgrind
                .arg(&binary)
                .args(["--test-threads", "1"])
                .args((!filter.is_empty()).then_some(filter))
                .env("QUEUE_THREADS_ROUNDS", "3")
                .env("DDLL_STRESS_OPS", "200")
                .env("DDLL_SOAK_SECONDS", "20")
                .env("DDLL_SOAK_WAIT_MS", "300000")
                .env("DDLL_SOAK_NO_RSS", "1")
                .current_dir(root())
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let summary = stderr
                .lines()
                .rfind(|l| l.contains("ERROR SUMMARY"))
                .unwrap_or("no valgrind summary");
            let tests = stdout
                .lines()
                .rfind(|l| l.starts_with("test result"))
                .unwrap_or("no test result");
            ran += 1;
            let name = binary.file_name().unwrap_or_default().to_string_lossy();
            println!("{tool} {name}: {tests}\n    {summary}");
            if !out.status.success() {
                failed += 1;
                if tool == "memcheck" {
                    eprintln!("{stderr}");
                }
            }
        }
    }
    println!("{tool}: {} passed, {failed} failed", ran - failed);
    match (failed, tool) {
        (0, _) => Ok(()),
        (_, "memcheck") => bail!("{failed} test binaries failed under memcheck"),
        _ => {
            println!("({tool} reports are expected: see `cargo xtask sanitize`'s notes)");
            Ok(())
        }
    }
}

/// The workloads of `backlog-bench`, each run as its own process (fresh memory figures).
const BACKLOG_WORKLOADS: [&str; 9] = [
    "tokens",
    "megaco",
    "output",
    "output_64",
    "outputv",
    "output_term",
    "queued",
    "echo100",
    "idle",
];

/// `backlog-bench`: each workload under BEAM then under ddll, TURNS times (default 5), on the
/// same driver build; the median of each figure per runtime, and ddll's over BEAM's.
/// `DDLL_BENCH_BINARY` names another build of the ddll side (`target/release/examples/
/// backlog_bench` copied aside, say), run third in each turn: its medians and ratio follow
/// (before/after figures taken in turns).
fn backlog_bench(args: &[String]) -> Result<()> {
    let turns: usize = args.first().map_or(Ok(5), |t| t.parse()).context("TURNS")?;
    let workloads: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(String::as_str).collect()
    } else {
        BACKLOG_WORKLOADS.to_vec()
    };
    let drivers = otp_drivers()?;
    let mut ddll = vec![("ddll", ddll_example("backlog_bench")?)];
    if let Some(other) = std::env::var_os("DDLL_BENCH_BINARY") {
        ddll.push(("other", PathBuf::from(other)));
    }
    let names: Vec<&str> = std::iter::once("BEAM")
        .chain(ddll.iter().map(|(name, _)| *name))
        .collect();
    // (figure name, each runtime's values), in the order first printed.
    let mut figures: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for turn in 1..=turns {
        for workload in &workloads {
            let eval = format!(
                "backlog_bench:main([\"{}\", \"{workload}\"])",
                drivers.display()
            );
            let mut outputs = vec![run_erl_module("backlog_bench", &eval, &[], true)?];
            for (name, binary) in &ddll {
                let out = Command::new(binary)
                    .arg(&drivers)
                    .arg(workload)
                    .output()
                    .with_context(|| format!("running the {name} benchmark"))?;
                if !out.status.success() {
                    bail!(
                        "the {name} benchmark failed on {workload}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                outputs.push(String::from_utf8(out.stdout)?);
            }
            for (runtime, text) in outputs.iter().enumerate() {
                for line in text.lines() {
                    let Some((name, value)) =
                        line.strip_prefix("figure ").and_then(|l| l.split_once(' '))
                    else {
                        continue;
                    };
                    let value: f64 = value.parse().with_context(|| format!("in {line}"))?;
                    println!("  turn {turn} {}: {name} {value:.1}", names[runtime]);
                    let at = match figures.iter().position(|(n, _)| n == name) {
                        Some(at) => at,
                        None => {
                            figures.push((name.to_owned(), vec![Vec::new(); names.len()]));
                            figures.len() - 1
                        }
                    };
                    figures[at].1[runtime].push(value);
                }
            }
        }
    }
    println!(
        "medians of {turns} turns ({}): {}, and each / BEAM",
        drivers.display(),
        names.join(", ")
    );
    for (name, values) in &figures {
        let medians: Vec<Option<f64>> = values
            .iter()
            .map(|v| (!v.is_empty()).then(|| best_and_median(v).1))
            .collect();
        let mut line = format!("  {name:32}");
        for median in &medians {
            match median {
                Some(m) => line.push_str(&format!(" {m:10.1}")),
                None => line.push_str(&format!(" {:>10}", "-")),
            }
        }
        if let Some(beam) = medians[0] {
            for median in medians[1..].iter().flatten() {
                line.push_str(&format!(" {:7.2}", median / beam));
            }
        }
        println!("{line}");
    }
    // The unflattering turn: a median hides a run that a user may meet (on a virtual
    // machine, a huge page fault is sometimes many times slower: docs/status.md).
    println!("worst of {turns} turns (the highest figure of each runtime):");
    for (name, values) in &figures {
        let mut line = format!("  {name:32}");
        for v in values {
            match v.iter().copied().reduce(f64::max) {
                Some(worst) => line.push_str(&format!(" {worst:10.1}")),
                None => line.push_str(&format!(" {:>10}", "-")),
            }
        }
        println!("{line}");
    }
    Ok(())
}

/// The loom models: (package, what to build and run).
const LOOM_MODELS: [(&str, &[&str]); 3] = [
    ("drv-queue", &["--test", "loom_refcount"]),
    ("drv-async", &["--test", "loom_pool"]),
    ("ddll", &["--lib", "loom_models"]),
];

/// Runs every loom model (release build: loom explores thousands of executions), each suite
/// timed. The models build in `target/loom`, so `--cfg loom` does not rebuild the usual target.
fn loom() -> Result<()> {
    let preemptions = std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "3".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.is_empty() => format!("{flags} --cfg loom"),
        _ => "--cfg loom".to_owned(),
    };
    for (package, target) in LOOM_MODELS {
        let start = std::time::Instant::now();
        let status = Command::new(env!("CARGO"))
            .args(["test", "--release", "-p", package])
            .args(target)
            .env("RUSTFLAGS", &rustflags)
            // Model checks need no whole-program optimization: link as fast as before it.
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env("CARGO_TARGET_DIR", root().join("target/loom"))
            .env("LOOM_MAX_PREEMPTIONS", &preemptions)
            .current_dir(root())
            .status()
            .context("running cargo")?;
        println!(
            "loom {package} {}: {:.1} s (build and run, LOOM_MAX_PREEMPTIONS={preemptions})",
            target.join(" "),
            start.elapsed().as_secs_f64()
        );
        if !status.success() {
            bail!("the loom models of {package} failed");
        }
    }
    Ok(())
}

/// Runs the soak test (`crates/ddll/tests/soak.rs`) for `SECONDS`, natively or under memcheck.
fn soak(args: &[String]) -> Result<()> {
    let valgrind = args.iter().any(|a| a == "--valgrind");
    let seconds = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("60", String::as_str);
    seconds
        .parse::<u64>()
        .context("SECONDS is a number of seconds")?;
    let binaries = test_binaries(&["-p", "ddll", "--test", "soak"])?;
    let binary = binaries.first().context("cargo built no soak test")?;
    let mut command = if valgrind {
        let mut c = Command::new("valgrind");
        c.args(MEMCHECK_ARGS).arg(binary);
        // Valgrind runs the program tens of times slower: replies get minutes, and its RSS is
        // valgrind's own (memcheck's leak check is the verdict on memory).
        c.env("DDLL_SOAK_WAIT_MS", "300000")
            .env("DDLL_SOAK_NO_RSS", "1");
        c
    } else {
        Command::new(binary)
    };
    let status = command
        .args(["--nocapture", "--test-threads=1"])
        .env("DDLL_SOAK_SECONDS", seconds)
        .current_dir(root())
        .status()
        .context("running the soak (is valgrind installed?)")?;
    if !status.success() {
        bail!("the soak failed ({status})");
    }
    Ok(())
}

/// Memcheck as the gate: any error fails (exit code 99), and so do definite and indirect
/// leaks; "possibly lost" and "still reachable" are the harness's threads and statics alive at
/// exit.
const MEMCHECK_ARGS: [&str; 5] = [
    "--tool=memcheck",
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect",
    "--num-callers=30",
];

/// Child processes of a bench, killed when it ends however it ends.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `node-bench`: remote echo round trips per second through a ddll node against those to a
/// process on a peer BEAM node running the same driver, taken in turns by one BEAM process.
fn node_bench(args: &[String]) -> Result<()> {
    let rounds: u32 = args.first().map_or(Ok(20_000), |a| a.parse())?;
    let turns: u32 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let drivers = otp_drivers()?;
    let ddll = ddll_binary()?;
    let ebin = root().join("target/beam-ebin");
    std::fs::create_dir_all(&ebin)?;
    let status = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(root().join("crates/ddll-node/erl/ddll_remote.erl"))
        .arg(root().join("xtask/beam/node_echo_bench.erl"))
        .status()
        .context("running erlc")?;
    if !status.success() {
        bail!("erlc failed");
    }
    let cookie = "ddll_node_bench";
    let epmd_port = std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port()
        .to_string();
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new("epmd")
            .args(["-port", &epmd_port, "-address", "127.0.0.1"])
            .spawn()
            .context("running epmd")?,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut start_node = |binary: &Path, sname: &str| -> Result<String> {
        let mut node = Command::new(binary)
            .args(["node", "--sname", sname, "--cookie", cookie, "--drivers"])
            .arg(&drivers)
            .env("ERL_EPMD_PORT", &epmd_port)
            .stdout(Stdio::piped())
            .spawn()
            .context("running ddll node")?;
        let mut up = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(node.stdout.take().context("piped")?),
            &mut up,
        )?;
        children.0.push(node);
        Ok(up
            .strip_suffix(" is up\n")
            .with_context(|| format!("ddll node printed {up:?}"))?
            .to_owned())
    };
    let ddll_node = start_node(&ddll, "ddll_bench")?;
    // Another build, timed in the same turns, through the `ddll_remote` it speaks (compiled
    // under another module name).
    let other_node = match std::env::var_os("DDLL_BENCH_BINARY") {
        Some(binary) => {
            let remote = std::env::var_os("DDLL_BENCH_REMOTE").map_or_else(
                || root().join("crates/ddll-node/erl/ddll_remote.erl"),
                PathBuf::from,
            );
            let source = std::fs::read_to_string(&remote)
                .with_context(|| format!("reading {}", remote.display()))?
                .replace("-module(ddll_remote).", "-module(ddll_remote_other).");
            let renamed = ebin.join("ddll_remote_other.erl");
            std::fs::write(&renamed, source)?;
            let status = Command::new("erlc")
                .arg("-o")
                .arg(&ebin)
                .arg(&renamed)
                .status()
                .context("running erlc")?;
            if !status.success() {
                bail!("erlc failed on {}", remote.display());
            }
            Some(start_node(Path::new(&binary), "ddll_bench_other")?)
        }
        None => None,
    };
    let host = ddll_node.split_once('@').context("alive@host")?.1;
    let erl = |sname: &str, eval: &str| {
        let mut erl = Command::new("erl");
        erl.args(["-noshell", "-sname", sname, "-setcookie", cookie])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-pa"])
            .arg(&ebin)
            .args(["-eval", eval])
            .env("ERL_EPMD_PORT", &epmd_port);
        erl
    };
    let dir = drivers.display().to_string();
    children.0.push(
        erl(
            "node_bench_peer",
            &format!("node_echo_bench:peer([\"{dir}\"])"),
        )
        .spawn()
        .context("running the peer erl")?,
    );
    println!(
        "remote echo round trips: a BEAM process sends 64 bytes to echo_drv ({}) hosted by\n  \
         ddll: a ddll node (ddll_remote:port_command/2, then the port's data message)\n  \
         BEAM: a process on a peer BEAM node that echoes through its own port\n  \
         same machine, loopback, {turns} turns of {rounds} round trips each",
        drivers.join("echo_drv.so").display()
    );
    let other = match &other_node {
        Some(node) => {
            println!("  other: a ddll node of DDLL_BENCH_BINARY, in the same turns");
            format!(", \"{node}\", \"ddll_remote_other\"")
        }
        None => String::new(),
    };
    let main = format!(
        "node_echo_bench:main([\"{ddll_node}\", \"node_bench_peer@{host}\", \"{dir}\", \
         \"{rounds}\", \"{turns}\"{other}])"
    );
    let out = erl("node_bench_main", &main)
        .stderr(Stdio::inherit())
        .output()
        .context("running the bench erl")?;
    let stdout = String::from_utf8(out.stdout)?;
    if !out.status.success() {
        bail!("the bench erl failed: {stdout}");
    }
    let figures = |tag: &str| -> Result<Vec<f64>> {
        Ok(stdout
            .lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(str::parse)
            .collect::<Result<_, _>>()?)
    };
    let ddll_rates = figures("ddll_round_trips_per_s: ")?;
    let beam_rates = figures("beam_round_trips_per_s: ")?;
    if ddll_rates.is_empty() || ddll_rates.len() != beam_rates.len() {
        bail!("the bench printed no figures: {stdout}");
    }
    let other_rates = figures("other_round_trips_per_s: ")?;
    for (turn, (d, b)) in ddll_rates.iter().zip(&beam_rates).enumerate() {
        match other_rates.get(turn) {
            Some(o) => println!(
                "  turn {}: ddll {d:9.0}/s  other {o:9.0}/s  BEAM {b:9.0}/s",
                turn + 1
            ),
            None => println!("  turn {}: ddll {d:9.0}/s  BEAM {b:9.0}/s", turn + 1),
        }
    }
    // Rates: the best is the largest; `best_and_median` takes times, so negate.
    let best_median = |rates: &[f64]| {
        let (best, median) = best_and_median(&rates.iter().map(|r| -r).collect::<Vec<_>>());
        (-best, -median)
    };
    let (ddll_best, ddll_median) = best_median(&ddll_rates);
    let (beam_best, beam_median) = best_median(&beam_rates);
    println!("  ddll: best {ddll_best:9.0}/s, median {ddll_median:9.0}/s");
    println!("  BEAM: best {beam_best:9.0}/s, median {beam_median:9.0}/s");
    if !other_rates.is_empty() {
        let (other_best, other_median) = best_median(&other_rates);
        println!("  other: best {other_best:9.0}/s, median {other_median:9.0}/s");
        println!(
            "  ddll does {:.2}x the round trips per second of the other build (median against \
             median); the other build {:.2}x BEAM's",
            ddll_median / other_median,
            other_median / beam_median
        );
    }
    println!(
        "  ddll does {:.2}x the round trips per second of BEAM-to-BEAM (median against median; \
         {:.2}x best against best)",
        ddll_median / beam_median,
        ddll_best / beam_best
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::criterion_estimate;

    #[test]
    fn reads_criterion_lines() {
        let cases: &[(&str, Option<f64>)] = &[
            (
                "echo_round_trip_64B     time:   [152.02 ns 154.06 ns 156.53 ns]",
                Some(154.06),
            ),
            ("x time: [1.5 µs 2.5 µs 3.5 µs]", Some(2500.0)),
            ("x time: [990 ps 1.01 ns 1.02 ns]", Some(1.01)),
            (
                "                        change: [-25.501% -23.692% -22.034%]",
                None,
            ),
            ("Benchmarking echo_round_trip_64B", None),
        ];
        for &(line, expected) in cases {
            assert_eq!(criterion_estimate(line), expected, "{line}");
        }
    }
}
