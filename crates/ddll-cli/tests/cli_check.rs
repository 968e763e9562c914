//! `ddll check LIB.so` on the example drivers: its whole plain-words report and its exit
//! status, for a driver that loads and for each way of failing, with both driver builds.

// The integration tests' shared helpers live with the runtime's tests; one copy serves both.
#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

/// The report after its first line (`library: PATH`), for a library that has an entry.
fn entry(version: &str, name: &str, callbacks: &str, loads: &str) -> Vec<String> {
    vec![
        "marker: 0xfeeeeeed (ERL_DRV_EXTENDED_MARKER)".to_owned(),
        format!("version: {version} (this host: 3.3; it loads majors 2 to 3)"),
        format!("driver name: {name}"),
        "flags: 0x0 (none)".to_owned(),
        format!("callbacks: {callbacks}"),
        NO_UNDEFINED.to_owned(),
        format!("loads: {loads}"),
    ]
}

const NO_UNDEFINED: &str = "undefined symbols: none outside the driver API and the C library";

/// (library file stem, exit status 0?, the report after `library: PATH`).
fn cases() -> Vec<(&'static str, bool, Vec<String>)> {
    let lines = |ls: &[&str]| ls.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    vec![
        (
            "echo_drv",
            true,
            entry(
                "3.3",
                "echo_drv",
                "start, stop, output, control, timeout, call",
                "yes",
            ),
        ),
        (
            "major2_drv",
            true,
            entry("2.0", "major2_drv", "none", "yes"),
        ),
        (
            "old_version_drv",
            false,
            entry(
                "1.3",
                "old_version_drv",
                "none",
                "no: driver_incorrect_version (major version 1 is older than 2, the oldest \
                 this host loads)",
            ),
        ),
        (
            "newer_minor_drv",
            false,
            entry(
                "3.99",
                "newer_minor_drv",
                "none",
                "no: driver_incorrect_version (minor version 99 is newer than this host's 3.3)",
            ),
        ),
        (
            "bad_marker_drv",
            false,
            lines(&[
                "marker: 0x00000000 (not ERL_DRV_EXTENDED_MARKER, 0xfeeeeeed)",
                "version: 3.3 (this host: 3.3; it loads majors 2 to 3)",
                "driver name: bad_marker_drv",
                "flags: 0x0 (none)",
                "callbacks: none",
                NO_UNDEFINED,
                "loads: no: driver_incorrect_version (the extended marker is 0x00000000, not \
                 0xfeeeeeed)",
            ]),
        ),
        (
            "wrong_name_drv",
            false,
            entry(
                "3.3",
                "other",
                "none",
                "no: bad_driver_name (the file is named wrong_name_drv.so but the driver calls \
                 itself other)",
            ),
        ),
        (
            "bad_init_drv",
            false,
            entry(
                "3.3",
                "bad_init_drv",
                "init",
                "no: driver_init_failed (the entry's init callback returned non-zero)",
            ),
        ),
        (
            "null_init_drv",
            false,
            lines(&[
                NO_UNDEFINED,
                "loads: no: driver_init_failed (driver_init returned NULL)",
            ]),
        ),
        (
            "no_init_drv",
            false,
            lines(&[
                NO_UNDEFINED,
                "loads: no: no_driver_init (the library has no driver_init symbol: no \
                 DRIVER_INIT(name)?)",
            ]),
        ),
        (
            "undefined_symbol_drv",
            false,
            lines(&[
                "undefined symbols outside the driver API: ddll_example_missing_function \
                 (neither the driver API nor the C library provides them)",
                "loads: no: {open_error,-10} (the dynamic linker refused it: undefined symbol: \
                 ddll_example_missing_function)",
            ]),
        ),
        (
            "not_a_library",
            false,
            lines(&[
                "undefined symbols: not checked (nm cannot read the file)",
                "loads: no: {open_error,-10} (the dynamic linker refused it: file too short)",
            ]),
        ),
    ]
}

fn check_all(drivers: &Path) {
    let mut failures = Vec::new();
    for (stem, loads, report) in cases() {
        let library = drivers.join(format!("{stem}.so"));
        let out = Command::new(env!("CARGO_BIN_EXE_ddll"))
            .arg("check")
            .arg(&library)
            .output()
            .expect("ddll runs");
        let mut expected = vec![format!("library: {}", library.display())];
        expected.extend(report);
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        if got != expected || out.status.success() != loads {
            failures.push(format!(
                "{stem}: exit {:?} (want success = {loads})\n--- got\n{}\n--- want\n{}\n{}",
                out.status.code(),
                got.join("\n"),
                expected.join("\n"),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The undefined-symbol line needs `nm` (binutils, installed with the C compiler).
fn has_nm() -> bool {
    if Command::new("nm").arg("--version").output().is_ok() {
        return true;
    }
    support::skip::<()>("nm (binutils) is not installed");
    false
}

#[test]
fn check_reports_with_own_header() {
    if let Some(drivers) = support::own_drivers().filter(|_| has_nm()) {
        check_all(&drivers);
    }
}

#[test]
fn check_reports_with_otp_header() {
    if let Some(drivers) = support::otp_drivers().filter(|_| has_nm()) {
        check_all(&drivers);
    }
}
