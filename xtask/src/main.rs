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

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        return help();
    };
    match task.as_str() {
        "drivers" => drivers().map(|_| ()),
        "demo" => demo(),
        "beam" => {
            let dir = otp_drivers()?;
            for file in rest {
                print!("{}", beam(Path::new(file), &dir)?);
            }
            Ok(())
        }
        "diff" => diff(rest),
        "echo-bench" => echo_bench(),
        "timer-bench" => timer_bench(),
        _ => help(),
    }
}

fn help() -> Result<()> {
    println!("usage: cargo xtask <drivers | demo | beam FILE... | diff FILE... | echo-bench | timer-bench>");
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
            "ddll",
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
    let drivers = otp_drivers()?;
    let binary = ddll_binary()?;
    let mut differing = 0;
    for file in files {
        let file = Path::new(file);
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
    let ebin = compile_beam_echo()?;
    let beam = beam_echo(&ebin, &drivers, BEAM_RUNS)?;
    let ddll = ddll_echo(&drivers)?;
    let (best, median) = best_and_median(&beam);
    println!("  ddll: {ddll:7.1} ns  (criterion estimate)");
    println!(
        "  BEAM: {best:7.1} ns  (best of {BEAM_RUNS} runs of {BEAM_ROUNDS}; median {median:.1} ns)"
    );
    let (mut beam_turns, mut ddll_turns) = (Vec::new(), Vec::new());
    for _ in 0..TURNS {
        beam_turns.extend(beam_echo(&ebin, &drivers, 1)?);
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
        .args(["bench", "--quiet", "-p", "ddll", "--bench", "echo"])
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

/// Compiles the BEAM side of the echo bench; the folder of its `.beam`.
fn compile_beam_echo() -> Result<PathBuf> {
    let ebin = root().join("target/beam-ebin");
    std::fs::create_dir_all(&ebin)?;
    let status = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(root().join("xtask/beam/ddll_echo_bench.erl"))
        .status()
        .context("running erlc")?;
    if !status.success() {
        bail!("erlc failed on xtask/beam/ddll_echo_bench.erl");
    }
    Ok(ebin)
}

/// ns per round trip of each of `runs` BEAM runs.
fn beam_echo(ebin: &Path, drivers: &Path, runs: u32) -> Result<Vec<f64>> {
    let out = Command::new("erl")
        .args(["-noshell", "-noinput", "-pa"])
        .arg(ebin)
        .args([
            "-eval",
            "ddll_echo_bench:main(init:get_plain_arguments())",
            "-extra",
        ])
        .arg(drivers)
        .arg(BEAM_ROUNDS.to_string())
        .arg(runs.to_string())
        .output()
        .context("running erl")?;
    if !out.status.success() {
        bail!(
            "the BEAM echo bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let figures: Vec<f64> = String::from_utf8(out.stdout)?
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
        .args(["bench", "--quiet", "-p", "ddll", "--bench", "echo", "--"])
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

/// The loops of `crates/ddll/benches/timer_async.rs`, with their targets (ns per operation).
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
    let ebin = root().join("target/beam-ebin");
    std::fs::create_dir_all(&ebin)?;
    let status = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(root().join("xtask/beam/timer_async_bench.erl"))
        .status()
        .context("running erlc")?;
    if !status.success() {
        bail!("erlc failed on xtask/beam/timer_async_bench.erl");
    }
    println!("BEAM: 20 rounds of 100000 operations per loop...");
    let args = format!(
        "timer_async_bench:main([\"{}\", \"20\", \"100000\"])",
        drivers.display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(&ebin)
        .args(["-eval", &args])
        .output()
        .context("running erl")?;
    if !out.status.success() {
        bail!(
            "BEAM bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let beam = String::from_utf8(out.stdout)?;
    // "NAME MEDIAN MIN" per loop.
    let beam_figures = |name: &str| -> String {
        beam.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or("?".to_owned(), |rest| rest.replace(' ', " / "))
    };
    println!("ddll: cargo bench -p ddll --bench timer_async (criterion, brief)...");
    let status = Command::new(env!("CARGO"))
        .args(["bench", "-p", "ddll", "--bench", "timer_async", "--"])
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
