//! The scenario corpus: every `scenarios/*.scen` runs under ddll, with the example drivers
//! built against the project's header and against OTP's, and must print exactly the
//! checked-in `.expected` (BEAM's output) — and, where `erl` is installed (always under
//! `CI=true`), exactly what a live BEAM prints for the same file and drivers. The real-driver
//! corpus, `scenarios/real/*.scen`, runs drivers the project did not write (Debian's builds of
//! OTP's and yaws' drivers) the same way.

// The integration tests' shared helpers live with the runtime's tests; one copy serves both.
#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

/// Files whose BEAM behaviour ddll does not reproduce yet, with the reason (each is a known
/// gap, reported in the issue notes).
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// The scenarios `ddll test` runs in process although it isolates drivers, because what they
/// rely on does not cross to an isolated driver's process: each says so, with the reason, in
/// a `% ddll test: in process: REASON` line (and `ddll test` prints it). The one list of these
/// exceptions: [`corpus_matches_beam_isolated`] checks that these, and only these, say so.
const IN_PROCESS_WHEN_ISOLATED: &[&str] = &["ddll_linked_in"];

fn corpus() -> Vec<PathBuf> {
    let files = scenarios_in("scenarios");
    assert!(files.len() >= 10, "the corpus has scenarios");
    files
}

/// The real-driver corpus.
fn real_corpus() -> Vec<PathBuf> {
    let files = scenarios_in("scenarios/real");
    assert!(files.len() >= 5, "the real-driver corpus has scenarios");
    files
}

fn scenarios_in(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::workspace().join(folder))
        .unwrap_or_else(|e| panic!("{folder}: {e}"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "scen"))
        .collect();
    files.sort();
    files
}

fn expected(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file.with_extension("expected"))
        .expect("every scenario has its .expected")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_gap(file: &std::path::Path) -> bool {
    let stem = file.file_stem().expect("name").to_string_lossy();
    KNOWN_GAPS.iter().any(|(name, _)| *name == stem)
}

/// Runs a scenario in a fresh `ddll` process, as BEAM runs each in a fresh VM (linker error
/// numbers, for one, are per VM).
fn run_ddll(file: &std::path::Path, drivers: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddll"))
        .arg("script")
        .arg(file)
        .arg("--drivers")
        .arg(drivers)
        .output()
        .expect("ddll runs");
    assert!(
        out.status.success(),
        "ddll script {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check_corpus(drivers: &std::path::Path) {
    check_files(corpus(), drivers);
}

fn check_files(files: Vec<PathBuf>, drivers: &std::path::Path) {
    let mut failures = Vec::new();
    for file in files {
        let got = run_ddll(&file, drivers);
        let want = expected(&file);
        if is_gap(&file) {
            assert_ne!(
                got,
                want,
                "{} now matches: remove it from KNOWN_GAPS",
                file.display()
            );
            continue;
        }
        if got != want {
            failures.push(format!(
                "{}:\n--- ddll\n{}\n--- BEAM (.expected)\n{}",
                file.display(),
                got.join("\n"),
                want.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_matches_beam_with_own_header() {
    if let Some(drivers) = support::own_drivers() {
        check_corpus(&drivers);
    }
}

#[test]
fn corpus_matches_beam_with_otp_header() {
    if let Some(drivers) = support::otp_drivers() {
        check_corpus(&drivers);
    }
}

/// `ddll test` on the corpus, which runs every scenario with its drivers isolated (each in a
/// host process of its own) except the [`IN_PROCESS_WHEN_ISOLATED`] ones, which it runs in
/// process saying why: every scenario passes (prints BEAM's `.expected`) but the
/// [`KNOWN_GAPS`], which fail as they fail in process.
#[test]
fn corpus_matches_beam_isolated() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddll"))
        .arg("test")
        .arg(support::workspace().join("scenarios"))
        .arg("--drivers")
        .arg(&drivers)
        .args(["--timeout", "60"])
        .output()
        .expect("ddll runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut problems = Vec::new();
    let mut in_process = Vec::new();
    let mut results = 0;
    for line in report.lines() {
        let (passed, rest) = if let Some(rest) = line.strip_prefix("PASS ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            (false, rest)
        } else {
            continue;
        };
        results += 1;
        let (file, how) = rest.split_once(" (in process: ").unwrap_or((rest, ""));
        let file = std::path::Path::new(file);
        let name = file.file_stem().expect("a file").to_string_lossy();
        if !how.is_empty() {
            in_process.push(name.to_string());
        }
        match (passed, is_gap(file)) {
            (true, true) => problems.push(format!("{name} now passes: remove it from KNOWN_GAPS")),
            (false, false) => problems.push(format!("{name} fails")),
            _ => {}
        }
    }
    assert_eq!(results, corpus().len(), "a result per scenario:\n{report}");
    assert_eq!(
        in_process, IN_PROCESS_WHEN_ISOLATED,
        "the scenarios run in process are the listed ones"
    );
    assert!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
}

/// Real drivers, each driven as its own Erlang code does, print what BEAM printed.
#[test]
fn real_drivers_match_beam() {
    if let Some(drivers) = real_drivers() {
        check_files(real_corpus(), &drivers);
    }
}

/// The checked-in `.expected` files are still what BEAM prints (same drivers).
#[test]
fn expected_files_match_live_beam() {
    let Some(drivers) = support::otp_drivers() else {
        return;
    };
    check_live_beam(corpus(), &drivers);
}

/// The real-driver corpus's `.expected` files are still what BEAM prints.
#[test]
fn real_expected_files_match_live_beam() {
    if let Some(drivers) = real_drivers() {
        check_live_beam(real_corpus(), &drivers);
    }
}

fn check_live_beam(files: Vec<PathBuf>, drivers: &std::path::Path) {
    for file in files {
        let Some(beam) = support::run_beam(&file, drivers) else {
            return;
        };
        assert_eq!(
            beam,
            expected(&file),
            "BEAM's output changed for {}",
            file.display()
        );
    }
}

/// The real drivers' folder for `scenarios/real/` (`DriverDir` there): yaws' `setuid_drv.so`
/// put into `target/real-drivers` by `scenarios/real/fetch.sh`, once the OTP applications'
/// drivers the corpus also runs are found installed (`erlang-megaco`,
/// `erlang-runtime-tools`). Skips, or fails under `CI=true`, when any is missing.
fn real_drivers() -> Option<PathBuf> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let root = ddll_scenario::erlang_root().ok_or("erl is not installed (erlang-nox)")?;
        for (app, library, package) in [
            ("megaco", "megaco_flex_scanner_drv.so", "erlang-megaco"),
            ("megaco", "megaco_flex_scanner_drv_mt.so", "erlang-megaco"),
            ("runtime_tools", "trace_ip_drv.so", "erlang-runtime-tools"),
            ("runtime_tools", "trace_file_drv.so", "erlang-runtime-tools"),
        ] {
            let installed = std::fs::read_dir(root.join("lib"))
                .map_err(|e| format!("{}: {e}", root.display()))?
                .flatten()
                .any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{app}-"))
                        && e.path().join("priv/lib").join(library).exists()
                });
            if !installed {
                return Err(format!("{library} is not installed ({package})"));
            }
        }
        let dir = support::workspace().join("target/real-drivers");
        let status = std::process::Command::new("sh")
            .arg(support::workspace().join("scenarios/real/fetch.sh"))
            .arg(&dir)
            .status()
            .map_err(|e| format!("running scenarios/real/fetch.sh: {e}"))?;
        if !status.success() {
            return Err(
                "scenarios/real/fetch.sh could not take setuid_drv.so out of erlang-yaws \
                 (apt-get download needs apt-get update first)"
                    .to_owned(),
            );
        }
        Ok(dir)
    });
    match found {
        Ok(dir) => Some(dir.clone()),
        Err(e) => support::skip(&format!("the real-driver corpus cannot run: {e}")),
    }
}
