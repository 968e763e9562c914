//! The scenario corpus: every `scenarios/*.scen` runs under ddll, with the example drivers
//! built against the project's header and against OTP's, and must print exactly the
//! checked-in `.expected` (BEAM's output) — and, where `erl` is installed (always under
//! `CI=true`), exactly what a live BEAM prints for the same file and drivers.

// The integration tests' shared helpers live with the runtime's tests; one copy serves both.
#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

/// Files whose BEAM behaviour ddll does not reproduce yet, with the reason (each is a known
/// gap, reported in the issue notes).
const KNOWN_GAPS: &[(&str, &str)] = &[];

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::workspace().join("scenarios"))
        .expect("scenarios folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "scen"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has scenarios");
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
    let mut failures = Vec::new();
    for file in corpus() {
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

/// The checked-in `.expected` files are still what BEAM prints (same drivers).
#[test]
fn expected_files_match_live_beam() {
    let Some(drivers) = support::otp_drivers() else {
        return;
    };
    for file in corpus() {
        let Some(beam) = support::run_beam(&file, &drivers) else {
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
