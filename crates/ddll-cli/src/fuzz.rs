//! `ddll fuzz`: its arguments and what it prints around `ddll_fuzz::fuzz`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `ddll fuzz`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FuzzArgs {
    /// The driver library (`NAME.so`); its folder is the scenarios' `DriverDir`.
    library: PathBuf,
    /// How long to fuzz.
    #[arg(long, value_name = "N", default_value_t = 60)]
    seconds: u64,
    /// A folder of seed scenarios (`*.scen`, e.g. the driver's own tests), mutated.
    #[arg(long, value_name = "DIR")]
    seeds: Option<PathBuf>,
    /// Where findings are written, one `.scen` per finding.
    #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
    out: PathBuf,
    /// A driver callback that runs longer than MS milliseconds is a finding (default 1000;
    /// 10000 with --valgrind).
    #[arg(long, value_name = "MS")]
    callback_timeout: Option<u64>,
    /// The random seed (default: from the clock), printed so a run can be repeated.
    #[arg(long)]
    rng_seed: Option<u64>,
    /// Runs the driver under valgrind's memcheck: an invalid read or write, a use of
    /// uninitialised memory or a bad free in the driver is a finding too (valgrind must be
    /// installed; cases run many times slower).
    #[arg(long)]
    valgrind: bool,
}

impl FuzzArgs {
    fn config(&self) -> ddll_fuzz::Config {
        let mut config = ddll_fuzz::Config::new(&self.library);
        config.seconds = self.seconds;
        config.seeds.clone_from(&self.seeds);
        config.out.clone_from(&self.out);
        config.rng_seed = self.rng_seed;
        config.valgrind = self.valgrind;
        config.callback_timeout = match self.callback_timeout {
            Some(ms) => Duration::from_millis(ms),
            None if self.valgrind => ddll_fuzz::DEFAULT_VALGRIND_CALLBACK_TIMEOUT,
            None => ddll_fuzz::DEFAULT_CALLBACK_TIMEOUT,
        };
        config
    }
}

/// `ddll fuzz`: progress on standard error, the summary on standard output; exit status 1
/// with findings, 0 without, 2 when it could not start.
pub(crate) fn run(args: &FuzzArgs) -> ExitCode {
    let config = args.config();
    let report = match ddll_fuzz::fuzz(&config, &mut std::io::stderr()) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ddll fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "ddll fuzz: {} executions, {} corpus cases, {}{} finding(s)",
        report.executions,
        report.corpus,
        if report.edges > 0 {
            format!("{} edges covered, ", report.edges)
        } else {
            String::new()
        },
        report.findings.len()
    );
    for f in &report.findings {
        let what = match &f.memcheck {
            Some(e) => format!(
                "memcheck {} ({}) in {} {}",
                e.kind,
                e.what,
                e.frame(),
                f.place.describe()
            ),
            None => format!("{{driver_crashed,{}}} {}", f.why, f.place.describe()),
        };
        println!(
            "  {what}: {} ({} operations, seen {} time(s){})",
            f.file.display(),
            f.operations,
            f.seen,
            if f.replayed {
                ", replay checked"
            } else {
                "; the replay did NOT show it"
            }
        );
    }
    for e in &report.unattributed {
        println!(
            "  memcheck {} ({}) in {} outside any operation (as a case's ports closed at its \
             end): not shrunk",
            e.kind,
            e.what,
            e.frame()
        );
    }
    if report.findings.is_empty() {
        println!(
            "no crash{} and no callback past the timeout found",
            if config.valgrind {
                ", no memcheck error"
            } else {
                ""
            }
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "replay: {}",
            ddll_fuzz::replay_command(config.callback_timeout, config.valgrind)
        );
        ExitCode::from(1)
    }
}
