//! `ddll test`: scenarios against their `.expected` files, each in a process of its own.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::RunArgs;

/// One scenario's outcome.
struct Outcome {
    file: PathBuf,
    /// `None` when it passed, else the report.
    failure: Option<String>,
    /// Why it ran its drivers in process (its `% ddll test: in process:` line), if it did.
    in_process: Option<String>,
    seconds: f64,
}

/// How `ddll test` runs scenarios.
pub(super) struct Settings<'a> {
    /// A scenario still running after this fails as hung.
    pub(super) timeout: Duration,
    pub(super) junit: Option<&'a Path>,
    /// Drivers are loaded isolated (`ddll script --isolate`), except in scenarios that say
    /// they run in process.
    pub(super) isolate: bool,
    /// Milliseconds an isolated driver's callback may run.
    pub(super) callback_timeout: Option<u64>,
}

pub(super) fn run(paths: &[PathBuf], settings: &Settings<'_>, args: &RunArgs) -> ExitCode {
    let drivers = match args.driver_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("ddll: {e}");
            return ExitCode::from(super::CANNOT_START);
        }
    };
    let files = match scenario_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("ddll: {e}");
            return ExitCode::from(super::CANNOT_START);
        }
    };
    let mut outcomes = Vec::new();
    for file in files {
        let started = Instant::now();
        let (failure, in_process) = run_one(&file, &drivers, settings, args);
        // Said on the result line: a scenario that does not run isolated is never silent
        // about it.
        let how = in_process
            .as_ref()
            .map(|reason| format!(" (in process: {reason})"))
            .unwrap_or_default();
        match &failure {
            None => println!("PASS {}{how}", file.display()),
            Some(report) => println!("FAIL {}{how}\n{report}", file.display()),
        }
        outcomes.push(Outcome {
            file,
            failure,
            in_process,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if let Some(junit) = settings.junit {
        if let Err(e) = std::fs::write(junit, junit_xml(&outcomes)) {
            eprintln!("ddll: {}: {e}", junit.display());
            return ExitCode::from(super::CANNOT_START);
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The `*.scen` files named or inside the folders named, folders' files sorted.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "scen"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!(
                "{}: no such scenario file or folder",
                path.display()
            ));
        }
    }
    Ok(files)
}

/// Runs `file` with `ddll script` (this program) and compares: the failure report, if any,
/// and why the scenario ran its drivers in process (when isolation was asked for and the
/// scenario says it cannot have it).
fn run_one(
    file: &Path,
    drivers: &Path,
    settings: &Settings<'_>,
    args: &RunArgs,
) -> (Option<String>, Option<String>) {
    let in_process = if settings.isolate {
        match std::fs::read_to_string(file) {
            Ok(text) => ddll_scenario::in_process_reason(&text),
            Err(e) => return (Some(format!("  {}: {e}", file.display())), None),
        }
    } else {
        None
    };
    let isolate = settings.isolate && in_process.is_none();
    (
        run_script(file, drivers, settings, isolate, args),
        in_process,
    )
}

/// [`run_one`]'s run: the failure report, if any.
fn run_script(
    file: &Path,
    drivers: &Path,
    settings: &Settings<'_>,
    isolate: bool,
    args: &RunArgs,
) -> Option<String> {
    let timeout = settings.timeout;
    let expected_file = file.with_extension("expected");
    let expected = match std::fs::read_to_string(&expected_file) {
        Ok(text) => text,
        Err(e) => return Some(format!("  {}: {e}", expected_file.display())),
    };
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return Some(format!("  cannot find this program to run it: {e}")),
    };
    let mut command = Command::new(program);
    command
        .arg("script")
        .arg(file)
        .arg("--drivers")
        .arg(drivers)
        .arg("--async-threads")
        .arg(args.async_threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if isolate {
        command.arg("--isolate");
        if let Some(ms) = settings.callback_timeout {
            command.arg("--callback-timeout").arg(ms.to_string());
        }
    }
    let run = match run_captured(&mut command, timeout) {
        Ok(run) => run,
        Err(e) => return Some(format!("  cannot start ddll script: {e}")),
    };
    let (status, got, errors, hung) = (run.status, run.stdout, run.stderr, run.hung);
    let ended = if hung {
        Some(format!(
            "  hung: still running after {} s; killed",
            timeout.as_secs()
        ))
    } else {
        match status {
            Some(s) if s.success() => None,
            Some(s) => {
                use std::os::unix::process::ExitStatusExt;
                Some(match s.signal() {
                    Some(signal) => format!("  crashed: killed by signal {signal}"),
                    None => format!(
                        "  ddll script exited with status {}",
                        s.code().unwrap_or(-1)
                    ),
                })
            }
            None => Some("  ddll script could not be waited for".to_owned()),
        }
    };
    if ended.is_none() && got == expected {
        return None;
    }
    let mut report = String::new();
    if let Some(ended) = ended {
        report.push_str(&ended);
        report.push('\n');
    }
    for line in errors.lines() {
        report.push_str(&format!("  stderr: {line}\n"));
    }
    report.push_str(&diff(&expected, &got));
    Some(report)
}

/// What a program run by [`run_captured`] did.
struct Captured {
    /// `None` when it could not be waited for.
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
    /// It ran past its time and was killed.
    hung: bool,
}

/// Runs `command` (its output piped) for at most `timeout`, killing it then.
fn run_captured(command: &mut Command, timeout: Duration) -> std::io::Result<Captured> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read on threads, so a program printing much cannot stall on a full pipe.
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut hung = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                hung = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    Ok(Captured {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        hung,
    })
}

/// The BEAM runner of scenarios (the one `cargo xtask beam` uses), built into the program so
/// that `--bless` works wherever `ddll` is installed.
const BEAM_RUNNER: &str = include_str!("../beam/ddll_scenario.erl");

/// `ddll test --bless`: runs each scenario under a real `erl` and writes what it prints to
/// the scenario's `.expected` file (BEAM is the oracle: an `.expected` is never written by
/// ddll itself).
pub(super) fn bless(paths: &[PathBuf], timeout: Duration, args: &RunArgs) -> ExitCode {
    let started = (|| {
        let drivers = args.driver_dir()?;
        let files = scenario_files(paths)?;
        let ebin = compile_beam_runner()?;
        Ok::<_, String>((drivers, files, ebin))
    })();
    let (drivers, files, ebin) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("ddll: {e}");
            return ExitCode::from(super::CANNOT_START);
        }
    };
    let mut failed = 0;
    for file in &files {
        let mut erl = Command::new("erl");
        erl.args(["-noshell", "-noinput", "-pa"])
            .arg(ebin.path())
            .args([
                "-eval",
                "ddll_scenario:main(init:get_plain_arguments())",
                "-extra",
            ])
            .arg(file)
            .arg(&drivers);
        let outcome = match run_captured(&mut erl, timeout) {
            Err(e) => Err(format!("cannot run erl: {e}")),
            Ok(run) if run.hung => Err(format!(
                "erl still running after {} s; killed",
                timeout.as_secs()
            )),
            Ok(run) if run.status.is_some_and(|s| s.success()) => {
                let expected = file.with_extension("expected");
                std::fs::write(&expected, run.stdout)
                    .map(|()| expected)
                    .map_err(|e| format!("{}: {e}", file.with_extension("expected").display()))
            }
            Ok(run) => Err(format!(
                "erl failed ({}): {}",
                run.status
                    .map_or_else(|| "no status".to_owned(), |s| s.to_string()),
                run.stderr.trim()
            )),
        };
        match outcome {
            Ok(expected) => println!("BLESSED {}", expected.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL {}\n  {e}", file.display());
            }
        }
    }
    println!("{} blessed, {failed} failed", files.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A temporary folder (removed when dropped).
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles [`BEAM_RUNNER`] with `erlc` into a new temporary folder; a clear error when no
/// Erlang/OTP is installed.
fn compile_beam_runner() -> Result<TempDir, String> {
    let dir = TempDir(std::env::temp_dir().join(format!("ddll-bless-{}", std::process::id())));
    std::fs::create_dir_all(dir.path()).map_err(|e| format!("{}: {e}", dir.path().display()))?;
    let source = dir.path().join("ddll_scenario.erl");
    std::fs::write(&source, BEAM_RUNNER).map_err(|e| format!("{}: {e}", source.display()))?;
    let compiled = Command::new("erlc")
        .arg("-o")
        .arg(dir.path())
        .arg(&source)
        .output();
    match compiled {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "--bless writes .expected files from a real BEAM, and no Erlang/OTP is installed \
             (erlc and erl were not found on PATH)"
                .to_owned(),
        ),
        Err(e) => Err(format!("cannot run erlc: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "erlc failed on the scenario runner: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Ok(dir),
    }
}

/// A line diff: `-` what BEAM printed, `+` what ddll printed, for each differing line.
fn diff(expected: &str, got: &str) -> String {
    let (want, have): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..want.len().max(have.len()) {
        match (want.get(i), have.get(i)) {
            (Some(w), Some(h)) if w == h => {}
            (w, h) => {
                if let Some(w) = w {
                    out.push_str(&format!("  - {w}\n"));
                }
                if let Some(h) = h {
                    out.push_str(&format!("  + {h}\n"));
                }
            }
        }
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit_xml(outcomes: &[Outcome]) -> String {
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"ddll\" tests=\"{}\" \
         failures=\"{failed}\">\n",
        outcomes.len()
    );
    for o in outcomes {
        let name = xml_escape(&o.file.display().to_string());
        xml.push_str(&format!(
            "  <testcase name=\"{name}\" time=\"{:.3}\"",
            o.seconds
        ));
        let in_process = o.in_process.as_ref().map(|reason| {
            format!(
                "    <system-out>in process: {}</system-out>\n",
                xml_escape(reason)
            )
        });
        match (&o.failure, in_process) {
            (None, None) => xml.push_str("/>\n"),
            (failure, in_process) => {
                xml.push_str(">\n");
                if let Some(report) = failure {
                    xml.push_str(&format!(
                        "    <failure message=\"differs from .expected\">{}</failure>\n",
                        xml_escape(report)
                    ));
                }
                xml.push_str(&in_process.unwrap_or_default());
                xml.push_str("  </testcase>\n");
            }
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}
