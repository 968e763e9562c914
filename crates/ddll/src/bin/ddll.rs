//! The `ddll` command: run scenarios, check driver libraries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drv_abi::driver::{Driver, LoadError};

#[derive(Parser)]
#[command(name = "ddll", about = "Run Erlang port drivers without BEAM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario file and prints `N: Term` for each line.
    Script {
        /// The scenario file.
        file: PathBuf,
        /// The folder bound to the scenario variable `DriverDir`.
        #[arg(long, env = "DDLL_DRIVER_DIR", default_value = "target/drivers/own")]
        drivers: PathBuf,
        /// Threads in the async pool (`erl +A`; 0 runs `driver_async` jobs at once).
        #[arg(long, default_value_t = ddll::RuntimeOptions::default().async_threads)]
        async_threads: usize,
    },
    /// Reports what a driver library declares and whether it would load.
    Check {
        /// The driver library (`.so`).
        library: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Script {
            file,
            drivers,
            async_threads,
        } => {
            let drivers = std::fs::canonicalize(&drivers).unwrap_or(drivers);
            let options = ddll::RuntimeOptions { async_threads };
            match ddll::scenario::run_file_with(&file, &drivers, options) {
                Ok(lines) => {
                    for line in lines {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ddll: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { library } => check(&library),
    }
}

fn check(library: &std::path::Path) -> ExitCode {
    if let Err(e) = drv_abi::install_shim() {
        eprintln!("ddll: {e}");
        return ExitCode::FAILURE;
    }
    println!("library: {}", library.display());
    let undefined = undefined_symbols(library);
    let opened = match ddll_sys::DriverLibrary::open_file(library) {
        Ok(lib) => lib,
        Err(e) => {
            println!("loads: no: {e}");
            report_undefined(&undefined);
            return ExitCode::FAILURE;
        }
    };
    let facts = match Driver::inspect(&opened) {
        Ok(facts) => facts,
        Err(e) => {
            println!("loads: no: {e} ({})", e.atom().unwrap_or("open_error"));
            return ExitCode::FAILURE;
        }
    };
    let marker_ok = facts.marker == 0xfeee_eeed;
    println!(
        "marker: {:#010x} ({})",
        facts.marker,
        if marker_ok {
            "extended driver"
        } else {
            "not ERL_DRV_EXTENDED_MARKER: will not load"
        }
    );
    println!("version: {}.{} (this host: 3.3)", facts.major, facts.minor);
    println!("driver name: {}", facts.name.as_deref().unwrap_or("(NULL)"));
    println!("flags: {:#x}{}", facts.flags, describe_flags(facts.flags));
    println!("callbacks: {}", facts.callbacks.set.join(", "));
    report_undefined(&undefined);
    let stem = library
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let verdict = match Driver::from_library(opened, &stem) {
        Ok(driver) => {
            driver.finish();
            "yes".to_owned()
        }
        Err(LoadError::BadDriverName) => format!(
            "no: bad_driver_name (the file is named {stem}.so but the driver calls itself {})",
            facts.name.as_deref().unwrap_or("(NULL)")
        ),
        Err(e) => format!("no: {} ({e})", e.atom().unwrap_or("open_error")),
    };
    println!("loads: {verdict}");
    if verdict == "yes" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn describe_flags(flags: i32) -> String {
    let names = [
        (1, "USE_PORT_LOCKING"),
        (2, "SOFT_BUSY"),
        (4, "NO_BUSY_MSGQ"),
        (8, "USE_INIT_ACK"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!(" ({})", set.join(" | "))
    }
}

/// Undefined dynamic symbols of the library that are neither part of the driver API nor
/// provided by the C library, read with `nm -D --undefined-only` when available.
fn undefined_symbols(library: &std::path::Path) -> Option<Vec<String>> {
    let out = std::process::Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(library)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let api: Vec<String> = drv_abi::api_function_names();
    let mut unknown = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(symbol) = line.split_whitespace().last() else {
            continue;
        };
        let bare = symbol.split('@').next().unwrap_or(symbol);
        if line.contains("@GLIBC") || line.contains(" w ") || bare.starts_with("__") {
            continue;
        }
        if bare == "driver_term_nil" || api.iter().any(|f| f == bare) {
            continue;
        }
        unknown.push(bare.to_owned());
    }
    Some(unknown)
}

fn report_undefined(undefined: &Option<Vec<String>>) {
    match undefined {
        None => println!("undefined symbols: not checked (nm not available)"),
        Some(list) if list.is_empty() => {
            println!("undefined symbols: none outside the driver API and the C library")
        }
        Some(list) => println!(
            "undefined symbols outside the driver API: {} (the library will fail to load unless something provides them)",
            list.join(", ")
        ),
    }
}
