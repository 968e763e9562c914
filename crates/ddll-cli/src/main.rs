//! The `ddll` command: run scenarios, check driver libraries.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drv_abi::driver::{Driver, EntryFacts, LoadError, MIN_MAJOR_VERSION};
use drv_abi::types::{
    ERL_DRV_EXTENDED_MAJOR_VERSION, ERL_DRV_EXTENDED_MARKER, ERL_DRV_EXTENDED_MINOR_VERSION,
};

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
            match ddll_scenario::run_file_with(&file, &drivers, options) {
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

/// `ddll check LIB.so`: what the library declares, and whether (and why not) it loads, in
/// the order the runtime checks it. Exit status 0 when it loads.
fn check(library: &std::path::Path) -> ExitCode {
    if let Err(e) = drv_abi::install_shim() {
        eprintln!("ddll: {e}");
        return ExitCode::FAILURE;
    }
    let (report, loads) = check_report(library);
    for line in report {
        println!("{line}");
    }
    if loads {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The report's lines, and whether the library loads.
fn check_report(library: &std::path::Path) -> (Vec<String>, bool) {
    let mut lines = vec![format!("library: {}", library.display())];
    // Listed before opening: a symbol nothing provides is what makes the opening fail.
    let undefined = undefined_line(undefined_symbols(library));
    let opened = match ddll_sys::DriverLibrary::open_file(library) {
        Ok(opened) => opened,
        Err(e) => {
            lines.push(undefined);
            lines.push(format!("loads: no: {}", open_failure(&e)));
            return (lines, false);
        }
    };
    let facts = match Driver::inspect(&opened) {
        Ok(facts) => facts,
        Err(LoadError::DriverInitFailed) => {
            lines.push(undefined);
            lines.push("loads: no: driver_init_failed (driver_init returned NULL)".to_owned());
            return (lines, false);
        }
        Err(e) => {
            lines.push(undefined);
            lines.push(format!("loads: no: {}", load_failure(&e)));
            return (lines, false);
        }
    };
    let marker = ERL_DRV_EXTENDED_MARKER as u32;
    lines.push(if facts.marker == marker {
        format!("marker: {:#010x} (ERL_DRV_EXTENDED_MARKER)", facts.marker)
    } else {
        format!(
            "marker: {:#010x} (not ERL_DRV_EXTENDED_MARKER, {marker:#010x})",
            facts.marker
        )
    });
    lines.push(format!(
        "version: {}.{} (this host: {ERL_DRV_EXTENDED_MAJOR_VERSION}.\
         {ERL_DRV_EXTENDED_MINOR_VERSION}; it loads majors {MIN_MAJOR_VERSION} to \
         {ERL_DRV_EXTENDED_MAJOR_VERSION})",
        facts.major, facts.minor
    ));
    lines.push(format!(
        "driver name: {}",
        facts.name.as_deref().unwrap_or("(NULL)")
    ));
    lines.push(format!(
        "flags: {:#x} ({})",
        facts.flags,
        describe_flags(facts.flags)
    ));
    lines.push(format!(
        "callbacks: {}",
        if facts.callbacks.set.is_empty() {
            "none".to_owned()
        } else {
            facts.callbacks.set.join(", ")
        }
    ));
    lines.push(undefined);
    let stem = library
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let verdict = match version_problem(&facts) {
        Some(problem) => Err(format!("driver_incorrect_version ({problem})")),
        None => match Driver::from_library(opened, &stem) {
            Ok(driver) => {
                driver.finish();
                Ok(())
            }
            Err(LoadError::BadDriverName) => Err(format!(
                "bad_driver_name (the file is named {stem}.so but the driver calls itself {})",
                facts.name.as_deref().unwrap_or("(NULL)")
            )),
            Err(LoadError::DriverInitFailed) => {
                Err("driver_init_failed (the entry's init callback returned non-zero)".to_owned())
            }
            Err(e) => Err(load_failure(&e)),
        },
    };
    match verdict {
        Ok(()) => {
            lines.push("loads: yes".to_owned());
            (lines, true)
        }
        Err(why) => {
            lines.push(format!("loads: no: {why}"));
            (lines, false)
        }
    }
}

/// Why the runtime rejects the entry's marker or versions, in its order of checks.
fn version_problem(facts: &EntryFacts) -> Option<String> {
    let marker = ERL_DRV_EXTENDED_MARKER as u32;
    if facts.marker != marker {
        Some(format!(
            "the extended marker is {:#010x}, not {marker:#010x}",
            facts.marker
        ))
    } else if facts.major < MIN_MAJOR_VERSION {
        Some(format!(
            "major version {} is older than {MIN_MAJOR_VERSION}, the oldest this host loads",
            facts.major
        ))
    } else if facts.major > ERL_DRV_EXTENDED_MAJOR_VERSION {
        Some(format!(
            "major version {} is newer than this host's {ERL_DRV_EXTENDED_MAJOR_VERSION}",
            facts.major
        ))
    } else if facts.major == ERL_DRV_EXTENDED_MAJOR_VERSION
        && facts.minor > ERL_DRV_EXTENDED_MINOR_VERSION
    {
        Some(format!(
            "minor version {} is newer than this host's {ERL_DRV_EXTENDED_MAJOR_VERSION}.\
             {ERL_DRV_EXTENDED_MINOR_VERSION}",
            facts.minor
        ))
    } else {
        None
    }
}

/// A failure to open the library, with the runtime's error term.
fn open_failure(e: &ddll_sys::SysError) -> String {
    match e {
        ddll_sys::SysError::Dynamic { code, message } => {
            format!("{{open_error,{code}}} (the dynamic linker refused it: {message})")
        }
        ddll_sys::SysError::NoDriverInit => load_failure(&LoadError::NoDriverInit),
        ddll_sys::SysError::BadPath => "the path contains a NUL byte".to_owned(),
    }
}

/// A load error with the runtime's atom and a plain explanation.
fn load_failure(e: &LoadError) -> String {
    match e {
        LoadError::Open { code, message } => {
            format!("{{open_error,{code}}} (the dynamic linker refused it: {message})")
        }
        LoadError::NoDriverInit => {
            "no_driver_init (the library has no driver_init symbol: no DRIVER_INIT(name)?)"
                .to_owned()
        }
        other => format!("{} ({other})", other.atom().unwrap_or("error")),
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
        "none".to_owned()
    } else {
        set.join(" | ")
    }
}

/// Undefined dynamic symbols of the library that are neither part of the driver API nor
/// provided by the C library, read with `nm -D --undefined-only`; `Err` says why they could
/// not be listed.
fn undefined_symbols(library: &std::path::Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(library)
        .output()
        .map_err(|_| "nm (binutils) is not installed".to_owned())?;
    if !out.status.success() {
        return Err("nm cannot read the file".to_owned());
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
    Ok(unknown)
}

fn undefined_line(undefined: Result<Vec<String>, String>) -> String {
    match undefined {
        Err(why) => format!("undefined symbols: not checked ({why})"),
        Ok(list) if list.is_empty() => {
            "undefined symbols: none outside the driver API and the C library".to_owned()
        }
        Ok(list) => format!(
            "undefined symbols outside the driver API: {} (neither the driver API nor the C \
             library provides them)",
            list.join(", ")
        ),
    }
}
