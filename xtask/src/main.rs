//! Project automation: `cargo xtask <task>`.
//!
//! * `drivers`  — build the example drivers against the project's header
//!   (`target/drivers/own`) and, when installed, OTP's (`target/drivers/otp`).
//! * `demo`     — build the drivers and run a few scenarios through ddll.
//! * `beam F…`  — run scenarios under a real `erl` and print the same form as ddll.
//! * `diff F…`  — run scenarios under both and show the differences.
//! * `queue-bench [OPS]` — time `queue_bench_drv`'s driver-queue loops under ddll and BEAM
//!   (the same `.so`) and print ns/op side by side.
//! * `sanitize [TOOL]` — run the driver-queue concurrency and API tests (and the queue crate's
//!   own tests) under valgrind (TOOL: memcheck, the default and the gate; helgrind or drd
//!   report, but see `sanitize`'s notes).

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
        "queue-bench" => queue_bench(rest),
        "sanitize" => sanitize(rest),
        _ => help(),
    }
}

fn help() -> Result<()> {
    println!(
        "usage: cargo xtask <drivers | demo | beam FILE... | diff FILE... | queue-bench [OPS] \
         | sanitize [memcheck|helgrind|drd]>"
    );
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

/// `queue_bench_drv`'s loops: (control number, what it does).
const QUEUE_LOOPS: [(u32, &str); 3] = [
    (1, "driver_enq 64 B + peekq/deq every 16"),
    (2, "driver_enq_bin 64 B, one binary, deq every 16"),
    (3, "driver_enq_bin 64 B, 16 binaries, deq every 16"),
];

/// Runs each loop of `queue_bench_drv` a few times under ddll (release build) and BEAM, with
/// the same driver built against OTP's header, and prints the best ns/op of each side. The
/// loops are timed inside the driver (CLOCK_MONOTONIC), so both sides measure the same C code.
fn queue_bench(args: &[String]) -> Result<()> {
    let ops: u64 = match args.first() {
        Some(n) => n.parse().context("OPS is a number of operations")?,
        None => 2_000_000,
    };
    const RUNS: usize = 5;
    let drivers = otp_drivers()?;
    let binary = ddll_binary()?;
    let mut script = String::from(
        "erl_ddll:load(DriverDir, queue_bench_drv).\n\
         P = erlang:open_port({spawn_driver, \"queue_bench_drv\"}, []).\n",
    );
    for _ in 0..RUNS {
        for (number, _) in QUEUE_LOOPS {
            script.push_str(&format!("erlang:port_control(P, {number}, \"{ops}\").\n"));
        }
    }
    let dir = root().join("target/tmp");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("queue_bench.scen");
    std::fs::write(&file, script)?;
    let ours = best_ns_per_op(&run_ddll(&binary, &file, &drivers)?)?;
    let theirs = best_ns_per_op(&beam(&file, &drivers)?)?;
    println!("ns/op, best of {RUNS} runs of {ops} operations (same queue_bench_drv.so)");
    println!("{:<50} {:>8} {:>8}", "loop", "ddll", "BEAM");
    for (i, (_, name)) in QUEUE_LOOPS.iter().enumerate() {
        println!("{name:<50} {:>8.1} {:>8.1}", ours[i], theirs[i]);
    }
    Ok(())
}

/// The best ns/op of each loop from a bench scenario's output (`N: "ns=T ops=K"` lines, the
/// loops in turn).
fn best_ns_per_op(output: &str) -> Result<Vec<f64>> {
    let mut best = vec![f64::INFINITY; QUEUE_LOOPS.len()];
    let mut seen = 0;
    for line in output.lines() {
        let Some(rest) = line.split_once("\"ns=").map(|(_, r)| r) else {
            continue;
        };
        let (ns, ops) = rest
            .trim_end_matches('"')
            .split_once(" ops=")
            .context("a bench reply is \"ns=T ops=K\"")?;
        let per_op = ns.parse::<f64>()? / ops.parse::<f64>()?;
        let slot = &mut best[seen % QUEUE_LOOPS.len()];
        *slot = slot.min(per_op);
        seen += 1;
    }
    if seen == 0 || seen % QUEUE_LOOPS.len() != 0 {
        bail!("unexpected bench output:\n{output}");
    }
    Ok(best)
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

/// Runs the driver-queue tests under valgrind. memcheck (the default) must find no error
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
    // (package, test target, test filter)
    let suites: [(&str, &str, &str); 3] = [
        ("ddll", "queue_threads", ""),
        ("ddll", "queue_api", ""),
        ("drv-queue", "--lib", "queue::"),
    ];
    let mut failed = 0;
    for (package, target, filter) in suites {
        let build: Vec<&str> = if target == "--lib" {
            vec!["-p", package, "--lib"]
        } else {
            vec!["-p", package, "--test", target]
        };
        for binary in test_binaries(&build)? {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .arg(format!("--tool={tool}"))
                .arg("--error-exitcode=99");
            if tool == "memcheck" {
                valgrind.args(["--leak-check=full", "--errors-for-leak-kinds=definite"]);
            }
            let out = valgrind
                .arg(&binary)
                .args(["--test-threads", "1"])
                .args((!filter.is_empty()).then_some(filter))
                .env("QUEUE_THREADS_ROUNDS", "3")
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
    match (failed, tool) {
        (0, _) => Ok(()),
        (_, "memcheck") => bail!("{failed} test binaries failed under memcheck"),
        _ => {
            println!("({tool} reports are expected: see `cargo xtask sanitize`'s notes)");
            Ok(())
        }
    }
}
