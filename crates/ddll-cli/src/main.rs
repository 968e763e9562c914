//! The `ddll` command: run scenarios, check driver libraries.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drv_abi::driver::{Driver, EntryFacts, LoadError, MIN_MAJOR_VERSION};
use drv_abi::types::{
    ERL_DRV_EXTENDED_MAJOR_VERSION, ERL_DRV_EXTENDED_MARKER, ERL_DRV_EXTENDED_MINOR_VERSION,
};

/// Exit statuses, as `--help` states them.
const EXIT_STATUSES: &str = "Exit status of `ddll script`: 0 when every line ran (a line that \
does not parse prints `{'EXIT',{scenario_error,syntax}}`, as under BEAM, and the reason on \
stderr); 2 when it could not start (bad arguments, an unreadable file, a missing drivers folder). A \
driver that takes an in-process run down ends it by its signal (the shell shows 128+N): \
`--isolate` keeps such a driver in a child process instead.";

#[derive(Parser)]
#[command(
    name = "ddll",
    version,
    about = "Run Erlang port drivers without BEAM",
    after_help = EXIT_STATUSES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a scenario file and prints `N: Term` for each line as soon as it has run.
    #[command(after_help = EXIT_STATUSES)]
    Script {
        /// The scenario file; `-` reads standard input (relative paths are then taken from
        /// the current folder).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        isolation: ScriptIsolation,
    },
    /// Runs scenario files (or every `*.scen` in folders) against their `.expected` files:
    /// a diff per differing scenario, then `N passed, N failed`; exit status 1 on any
    /// failure. Each scenario runs in a `ddll script --isolate` process of its own, so a
    /// driver that crashes or hangs fails its scenario (with the output so far and why) and
    /// the run goes on. A scenario with a comment line `% ddll test: in process: REASON`
    /// runs its drivers in process (the report says so, with the reason).
    Test {
        /// Scenario files and folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Seconds a scenario may run before it fails as hung.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
        /// Also writes the results as a JUnit XML report.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Instead of checking: runs each scenario under a real `erl` (Erlang/OTP must be
        /// installed) and writes what BEAM prints to its `.expected` file.
        #[arg(long, conflicts_with = "junit")]
        bless: bool,
        /// Runs every scenario's drivers in the scenario's own process, not isolated: a
        /// crash still fails only its scenario, but ends it there.
        #[arg(long)]
        in_process: bool,
        /// Isolated (the default), as `ddll script --isolate`; kept for old command lines.
        #[arg(long, hide = true, conflicts_with = "in_process")]
        isolate: bool,
        /// A driver callback that runs longer than MS milliseconds is ended by killing the
        /// driver's process (`Why` is `callback_timeout`); not with `--in-process`.
        #[arg(long, value_name = "MS", conflicts_with = "in_process")]
        callback_timeout: Option<u64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Runs a hidden Erlang node that BEAM nodes use drivers through (`ddll_remote`, see
    /// crates/ddll-node): registers with EPMD (starting it if needed) and serves until killed.
    Node {
        /// The short node name: NAME@ this host's name.
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present = "name",
            conflicts_with = "name"
        )]
        sname: Option<String>,
        /// The long node name, NAME@HOST.
        #[arg(long, value_name = "NAME@HOST")]
        name: Option<String>,
        /// The cookie connecting nodes must know.
        #[arg(long, env = "DDLL_COOKIE")]
        cookie: String,
        /// The folder relative driver paths of `load_driver` are taken from.
        #[arg(long, value_name = "DIR", default_value = ".")]
        drivers: PathBuf,
        /// Loads every driver isolated, in a child process of its own.
        #[arg(long)]
        isolate: bool,
        /// Connects to the node NODE (alive@host) at start, before saying it is up: its
        /// processes can then use this node without connecting themselves. Repeatable; a
        /// node that cannot be reached (or refuses the cookie) stops the start.
        #[arg(long, value_name = "NODE")]
        connect: Vec<String>,
    },
    /// Fuzzes a driver library, isolated: generated sequences of port operations; each crash
    /// or callback past the timeout is shrunk and written as a scenario that
    /// `ddll script --isolate` replays (with `--valgrind`, memcheck's errors too; with a
    /// driver built with `-fsanitize-coverage=trace-pc,trace-cmp`, guided by its coverage).
    /// Exit status 1 when something was found.
    Fuzz(fuzz::FuzzArgs),
    /// Reports what a driver library declares and whether it would load.
    Check {
        /// The driver library (`.so`); a bare file name means the file in the current folder.
        library: PathBuf,
    },
}

/// How scenarios run (shared by `script` and `test`).
#[derive(clap::Args)]
struct RunArgs {
    /// The folder bound to the scenario variable `DriverDir` (it must exist).
    #[arg(long, env = "DDLL_DRIVER_DIR", default_value = "target/drivers/own")]
    drivers: PathBuf,
    /// Threads in the async pool (`erl +A`; 0 runs `driver_async` jobs at once).
    #[arg(long, default_value_t = ddll::RuntimeOptions::default().async_threads)]
    async_threads: usize,
}

/// Whether `ddll script` isolates drivers.
#[derive(clap::Args)]
struct ScriptIsolation {
    /// Loads every driver isolated, in a child process of its own: a driver that crashes
    /// takes only its ports down, and their owners get `{'EXIT', Port, {driver_crashed, Why}}`.
    #[arg(long)]
    isolate: bool,
    /// With `--isolate`: a driver callback that runs longer than MS milliseconds is ended by
    /// killing the driver's process (`Why` is `callback_timeout`).
    #[arg(long, value_name = "MS", requires = "isolate")]
    callback_timeout: Option<u64>,
    /// With `--isolate`: runs each driver's host under valgrind's memcheck, which prints
    /// its first error on standard error and ends the host (the driver's ports exit with
    /// `{driver_crashed, {exit, 86}}`): how `ddll fuzz --valgrind`'s findings replay.
    #[arg(long, requires = "isolate")]
    valgrind: bool,
}

impl RunArgs {
    /// The drivers folder, absolute, or why it cannot be used.
    fn driver_dir(&self) -> Result<PathBuf, String> {
        match std::fs::canonicalize(&self.drivers) {
            Ok(dir) if dir.is_dir() => Ok(dir),
            Ok(_) => Err(format!(
                "the drivers folder {} is not a folder",
                self.drivers.display()
            )),
            Err(e) => Err(format!(
                "the drivers folder {} does not exist or cannot be read ({e}); give one with \
                 --drivers DIR",
                self.drivers.display()
            )),
        }
    }

    fn options(&self, isolation: &ScriptIsolation) -> ddll::RuntimeOptions {
        let isolate = ddll::isolate::Isolation::default().callback_timeout(
            isolation
                .callback_timeout
                .map(std::time::Duration::from_millis),
        );
        ddll::RuntimeOptions::default()
            .async_threads(self.async_threads)
            .isolate(isolation.isolate.then_some(isolate))
    }
}

/// `ddll script` could not start (exit status 2).
const CANNOT_START: u8 = 2;

mod fuzz;
mod test;

fn main() -> ExitCode {
    // An isolated driver's host process is this program started again.
    ddll::isolate::run_host_if_requested();
    let cli = Cli::parse();
    match cli.command {
        Command::Script {
            file,
            run,
            isolation,
        } => {
            if isolation.valgrind {
                if let Err(e) = ddll_fuzz::memcheck::available() {
                    eprintln!("ddll: {e}");
                    return ExitCode::from(CANNOT_START);
                }
                ddll::isolate::set_host_launcher(Some(ddll::isolate::HostLauncher::new(
                    ddll_fuzz::memcheck::launcher_prefix(None),
                    Vec::new(),
                )));
            }
            script(&file, &run, &isolation)
        }
        Command::Check { library } => check(&library),
        Command::Node {
            sname,
            name,
            cookie,
            drivers,
            isolate,
            connect,
        } => node(sname, name, cookie, drivers, isolate, &connect),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Test {
            paths,
            timeout,
            bless: true,
            run,
            ..
        } => test::bless(&paths, std::time::Duration::from_secs(timeout), &run),
        Command::Test {
            paths,
            timeout,
            junit,
            bless: false,
            in_process,
            isolate: _,
            callback_timeout,
            run,
        } => test::run(
            &paths,
            &test::Settings {
                timeout: std::time::Duration::from_secs(timeout),
                junit: junit.as_deref(),
                isolate: !in_process,
                callback_timeout,
            },
            &run,
        ),
    }
}

/// `ddll node`: starts the node and serves until the process ends.
fn node(
    sname: Option<String>,
    name: Option<String>,
    cookie: String,
    drivers: PathBuf,
    isolate: bool,
    connect: &[String],
) -> ExitCode {
    let name = match (sname, name) {
        (Some(alive), _) => ddll_node::short_name(&alive),
        (None, Some(name)) => name,
        (None, None) => unreachable!("clap requires --sname or --name"),
    };
    let options = ddll::RuntimeOptions::default()
        .isolate(isolate.then_some(ddll::isolate::Isolation::default()));
    let started = ddll::Runtime::with_options(drivers, options)
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            ddll_node::Node::start(rt, ddll_node::NodeOptions::new(&name, &cookie))
                .map_err(|e| e.to_string())
        })
        .and_then(|node| {
            for peer in connect {
                node.connect(peer)
                    .map_err(|e| format!("cannot connect to {peer}: {e}"))?;
            }
            Ok(node)
        });
    match started {
        Ok(node) => {
            println!("{} is up", node.name().as_str());
            node.wait();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ddll node: {e}");
            ExitCode::from(CANNOT_START)
        }
    }
}

/// `ddll script FILE`: prints each line's result as soon as it is evaluated.
fn script(file: &std::path::Path, run: &RunArgs, isolation: &ScriptIsolation) -> ExitCode {
    let started = (|| {
        let drivers = run.driver_dir()?;
        let (text, base) = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| format!("standard input: {e}"))?;
            let base = std::env::current_dir().map_err(|e| format!("current folder: {e}"))?;
            (text, base)
        } else {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            (text, ddll_scenario::base_dir_of(file)?)
        };
        Ok::<_, String>((text, base, drivers))
    })();
    let (text, base, drivers) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("ddll: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    let stdout = std::io::stdout();
    let ended =
        ddll_scenario::run_text_each(&text, &base, &drivers, run.options(isolation), |line| {
            // Flushed per line: a driver that takes the process down next loses nothing printed.
            let mut out = stdout.lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ddll: {e}");
            ExitCode::from(CANNOT_START)
        }
    }
}

/// `ddll check LIB.so`: what the library declares, and whether (and why not) it loads, in
/// the order the runtime checks it. Exit status 0 when it loads.
fn check(library: &std::path::Path) -> ExitCode {
    if let Err(e) = drv_abi::install_shim() {
        eprintln!("ddll: {e}");
        return ExitCode::FAILURE;
    }
    // A name without a folder would go to the dynamic linker's search path, not this file.
    let local;
    let library = if library.parent() == Some(std::path::Path::new("")) {
        local = std::path::Path::new(".").join(library);
        &local
    } else {
        library
    };
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
