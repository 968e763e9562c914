//! The `ddll` command as a CI job uses it: `--version`, `check` of a bare file name, a missing
//! drivers folder, `script -` from standard input, results as they happen and exit statuses.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn ddll(args: &[&str], dir: &Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddll"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ddll starts");
    let written = child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes());
    // A run that cannot start (a missing drivers folder) exits without reading its input.
    if let Err(e) = written {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "stdin written: {e}"
        );
    }
    child.wait_with_output().expect("ddll ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_prints_the_crate_version() {
    let out = ddll(&["--version"], Path::new("."), "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("ddll {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_of_a_bare_file_name_checks_that_file() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    // Under the dynamic linker's search a bare name is not found (or is another file).
    let out = ddll(&["check", "echo_drv.so"], &drivers, "");
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).ends_with("loads: yes\n"),
        "{}",
        text(&out.stdout)
    );
}

/// (arguments, standard input, exit status, standard output, a part of standard error).
#[test]
fn script_statuses_and_streams() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = drivers.to_string_lossy().into_owned();
    let load = "erl_ddll:load(DriverDir, echo_drv).\n\
                P = erlang:open_port({spawn_driver, \"echo_drv\"}, [binary]).\n";
    let cases: Vec<(Vec<&str>, String, i32, &str, &str)> = vec![
        (
            vec!["script", "-", "--drivers", &dir],
            format!("{load}erlang:port_command(P, <<\"hi\">>).\nrecv(1000).\n"),
            0,
            "1: ok\n2: #Port<1>\n3: true\n4: {#Port<1>,{data,<<\"hi\">>}}\n",
            "",
        ),
        // A line that does not parse prints BEAM's syntax error and the run goes on; the
        // reason goes to stderr.
        (
            vec!["script", "-", "--drivers", &dir],
            format!("{load}not a statement(\nerlang:self().\n"),
            0,
            "1: ok\n2: #Port<1>\n3: {'EXIT',{scenario_error,syntax}}\n4: <proc:main>\n",
            "line 3",
        ),
        (
            vec!["script", "-", "--drivers", "/no/such/folder"],
            "erlang:self().\n".to_owned(),
            2,
            "",
            "the drivers folder /no/such/folder does not exist",
        ),
        (
            vec!["script", "/no/such/file.scen", "--drivers", &dir],
            String::new(),
            2,
            "",
            "/no/such/file.scen",
        ),
    ];
    let mut failures = Vec::new();
    for (args, input, status, stdout, stderr) in &cases {
        let out = ddll(args, Path::new("."), input);
        let (got_out, got_err) = (text(&out.stdout), text(&out.stderr));
        if out.status.code() != Some(*status) || got_out != *stdout || !got_err.contains(stderr) {
            failures.push(format!(
                "{args:?}: status {:?} (want {status})\n--- stdout\n{got_out}--- want\n{stdout}\
                 --- stderr\n{got_err}(want it to contain {stderr:?})",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `ddll test --bless` writes what a real BEAM prints: for a scenario of the corpus, the
/// corpus's own `.expected` (itself written by BEAM); then `ddll test` passes on it.
#[test]
fn bless_writes_beams_output() {
    let Some(drivers) = support::otp_drivers() else {
        return;
    };
    let scratch = support::workspace().join(format!("target/tmp/bless.{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let corpus = support::workspace().join("scenarios");
    std::fs::copy(
        corpus.join("echo_eof_option.scen"),
        scratch.join("echo_eof_option.scen"),
    )
    .expect("scenario copied");
    let drivers = drivers.to_string_lossy().into_owned();
    let args = [
        "test",
        "--bless",
        "echo_eof_option.scen",
        "--drivers",
        &drivers,
    ];
    let out = ddll(&args, &scratch, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let blessed = std::fs::read_to_string(scratch.join("echo_eof_option.expected"))
        .expect("the .expected is written");
    let beams = std::fs::read_to_string(corpus.join("echo_eof_option.expected"))
        .expect("the corpus's .expected");
    assert_eq!(blessed, beams);
    let out = ddll(
        &["test", "echo_eof_option.scen", "--drivers", &drivers],
        &scratch,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Without Erlang/OTP on `PATH`, `--bless` says so and exits 2, writing nothing.
#[test]
fn bless_without_erlang_is_a_clear_error() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let scratch = support::workspace().join(format!("target/tmp/no-erl.{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    std::fs::write(scratch.join("a.scen"), "1 + 1.\n").expect("scenario written");
    let out = Command::new(env!("CARGO_BIN_EXE_ddll"))
        .args(["test", "--bless", "a.scen", "--drivers"])
        .arg(&drivers)
        .current_dir(&scratch)
        .env("PATH", &scratch)
        .output()
        .expect("ddll runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no Erlang/OTP is installed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!scratch.join("a.expected").exists());
    let _ = std::fs::remove_dir_all(&scratch);
}
