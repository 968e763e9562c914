//! Project automation: `cargo xtask <task>`.
//!
//! * `drivers`  — build the example drivers against the project's header
//!   (`target/drivers/own`) and, when installed, OTP's (`target/drivers/otp`).
//! * `demo`     — build the drivers and run a few scenarios through ddll.
//! * `beam F…`  — run scenarios under a real `erl` and print the same form as ddll.
//! * `diff F…`  — run scenarios under both and show the differences.
//! * `term-bench [CHUNKS [CHUNK]]` — time `erl_drv_output_term` of `{tcp, Port, [100 | Bin50]}`
//!   in `term_drv.so` under BEAM and under ddll, the same way (in the driver, and delivered).
//! * `fuzz [SECONDS [SEED]]` — run the spec-interpreter and ETF-decoder fuzzers for a bounded
//!   time (stable Rust, no cargo-fuzz); crashers land in `crates/drv-term/tests/regressions/`,
//!   which the test suite replays.

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
        "term-bench" => term_bench(rest),
        "fuzz" => fuzz(rest),
        _ => help(),
    }
}

fn help() -> Result<()> {
    println!(
        "usage: cargo xtask <drivers | demo | beam FILE... | diff FILE... | \
         term-bench [CHUNKS [CHUNK]] | fuzz [SECONDS [SEED]]>"
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

/// `term-bench`: BEAM and ddll on the same `term_drv.so`, measured the same way.
fn term_bench(args: &[String]) -> Result<()> {
    let chunks = args.first().map_or("200", String::as_str);
    let chunk = args.get(1).map_or("10000", String::as_str);
    let drivers = otp_drivers()?;
    let ebin = root().join("target/beam-ebin");
    std::fs::create_dir_all(&ebin)?;
    let status = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(root().join("xtask/beam/term_bench.erl"))
        .status()
        .context("running erlc")?;
    if !status.success() {
        bail!("compiling xtask/beam/term_bench.erl failed");
    }
    let eval = format!(
        "term_bench:main([\"{}\", \"{chunks}\", \"{chunk}\"])",
        drivers.display()
    );
    let status = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(&ebin)
        .args(["-eval", &eval])
        .status()
        .context("running erl")?;
    if !status.success() {
        bail!("the BEAM benchmark failed");
    }
    let status = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "ddll",
            "--example",
            "term_bench",
            "--",
        ])
        .arg(&drivers)
        .args([chunks, chunk])
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("the ddll benchmark failed");
    }
    println!("(criterion: cargo bench -p ddll --bench term_output; cargo bench -p drv-term)");
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
