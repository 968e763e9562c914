//! `ddll test`'s reports when scenarios fail: a scenario whose output differs (its diff), a
//! driver that crashes (the crash reason, the run going on), a scenario that hangs (failed by
//! `--timeout`, the run going on), the summary line, the exit status and the JUnit file.
//!
//! Every scenario here is a corpus scenario (`echo_eof_option`) with BEAM's own `.expected`
//! for it: the failing ones change its lines after the first eleven, so that the report shows
//! where they part from BEAM.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The corpus scenario the cases are made from, and how many of its lines they keep.
const BASE: &str = "echo_eof_option";
const KEPT_LINES: usize = 11;

/// A scratch folder of scenarios (removed when dropped).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A folder holding `name.scen` for each case (the base scenario's first lines, then the
/// case's own) and, beside each, BEAM's `.expected` of the base scenario.
fn scratch(label: &str, cases: &[(&str, &str)]) -> Scratch {
    let dir = support::workspace().join(format!("target/tmp/{label}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let corpus = support::workspace().join("scenarios");
    let base = std::fs::read_to_string(corpus.join(format!("{BASE}.scen"))).expect("base");
    let kept: String = base
        .lines()
        .take(KEPT_LINES)
        .map(|l| format!("{l}\n"))
        .collect();
    for (name, tail) in cases {
        let text = if tail.is_empty() {
            base.clone()
        } else {
            format!("{kept}{tail}")
        };
        std::fs::write(dir.join(format!("{name}.scen")), text).expect("scenario written");
        std::fs::copy(
            corpus.join(format!("{BASE}.expected")),
            dir.join(format!("{name}.expected")),
        )
        .expect("BEAM's .expected copied");
    }
    Scratch(dir)
}

fn ddll_test(dir: &Path, drivers: &Path, extra: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ddll"))
        .arg("test")
        .arg(dir)
        .arg("--drivers")
        .arg(drivers)
        .args(extra)
        .output()
        .expect("ddll runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, report)
}

/// The report's part for `name`: its PASS/FAIL line and what follows up to the next result.
fn part(report: &str, dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.scen")).display().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in report.lines() {
        if line.starts_with("PASS ") || line.starts_with("FAIL ") {
            parts.push(String::new());
        } else if !line.starts_with(' ') && line.ends_with(" failed") {
            break;
        }
        if let Some(part) = parts.last_mut() {
            part.push_str(line);
            part.push('\n');
        }
    }
    parts
        .into_iter()
        .find(|p| p[5..].starts_with(&file))
        .unwrap_or_else(|| panic!("no result for {name}:\n{report}"))
}

/// The cases after the kept lines: a crash, a differing line, a hang; one passing on each
/// side of them, so the run is seen to go on.
const CRASH: &str = "erl_ddll:load(DriverDir, crash_drv).\n\
                     C = erlang:open_port({spawn_driver, \"crash_drv segv output\"}, []).\n\
                     erlang:port_command(C, \"x\").\n\
                     recv(1000).\n";
const DIFFERS: &str = "N = erlang:open_port({spawn_driver, \"echo_drv\"}, []).\n\
                       erlang:port_command(N, \"other\").\n\
                       recv(1000).\n";
const HANG: &str = "erl_ddll:load(DriverDir, crash_drv).\n\
                    H = erlang:open_port({spawn_driver, \"crash_drv hang output\"}, []).\n\
                    erlang:port_command(H, \"x\").\n\
                    recv(1000).\n";

#[test]
fn failures_are_reported_and_the_run_goes_on() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = scratch(
        "test-reports",
        &[
            ("a_passes", ""),
            ("b_crashes", CRASH),
            ("c_differs", DIFFERS),
            ("d_hangs", HANG),
            ("e_passes", ""),
        ],
    );
    let junit = dir.0.join("report.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    let (out, report) = ddll_test(&dir.0, &drivers, &["--timeout", "3", "--junit", &junit_arg]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.ends_with("2 passed, 3 failed\n"), "{report}");
    for name in ["a_passes", "e_passes"] {
        assert!(part(&report, &dir.0, name).starts_with("PASS "), "{report}");
    }
    // Isolated (the default): the crash is the port's exit reason, in the diff, and the rest
    // of the scenario ran; BEAM's line 12 is not what ddll printed there.
    let crashed = part(&report, &dir.0, "b_crashes");
    for wanted in [
        "FAIL ",
        "  - 12: #Port<2>\n  + 12: ok\n",
        "  + 15: {'EXIT',#Port<2>,{driver_crashed,sigsegv}}\n",
    ] {
        assert!(crashed.contains(wanted), "no {wanted:?} in\n{crashed}");
    }
    let differs = part(&report, &dir.0, "c_differs");
    assert_eq!(
        differs,
        format!(
            "FAIL {}\n  - 14: {{'EXIT',#Port<2>,normal}}\n  + 14: {{#Port<2>,{{data,\"other\"}}}}\n  \
             - 15: timeout\n  - 16: 0\n\n",
            dir.0.join("c_differs.scen").display()
        )
    );
    // Lines 12 and 13 ran; line 14's callback hangs, and nothing after it ran.
    let hung = part(&report, &dir.0, "d_hangs");
    for wanted in [
        "FAIL ",
        "  hung: still running after 3 s; killed\n",
        "  + 13: #Port<2>\n",
        "  - 14: {'EXIT',#Port<2>,normal}\n  - 15: timeout\n  - 16: 0\n",
    ] {
        assert!(hung.contains(wanted), "no {wanted:?} in\n{hung}");
    }
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    for wanted in [
        "<testsuite name=\"ddll\" tests=\"5\" failures=\"3\">",
        &format!(
            "<testcase name=\"{}\"",
            dir.0.join("a_passes.scen").display()
        ),
        "{&#39;EXIT&#39;,#Port&lt;2&gt;,{driver_crashed,sigsegv}}",
        "hung: still running after 3 s; killed",
    ] {
        let wanted = wanted.replace("&#39;", "'");
        assert!(xml.contains(&wanted), "no {wanted:?} in\n{xml}");
    }
    assert_eq!(xml.matches("<failure ").count(), 3, "{xml}");
}

/// `--in-process`: the crash takes the scenario's process down; the report says by which
/// signal, and the run goes on.
#[test]
fn in_process_a_crash_ends_its_scenario_only() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = scratch(
        "test-reports-in-process",
        &[("a_crashes", CRASH), ("b_passes", "")],
    );
    let (out, report) = ddll_test(&dir.0, &drivers, &["--in-process"]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let crashed = part(&report, &dir.0, "a_crashes");
    for wanted in [
        "  crashed: killed by signal 11\n",
        "  - 12: #Port<2>\n  + 12: ok\n",
        "  - 15: timeout\n",
    ] {
        assert!(crashed.contains(wanted), "no {wanted:?} in\n{crashed}");
    }
    assert!(report.ends_with("1 passed, 1 failed\n"), "{report}");
}

/// A scenario that says it runs in process does, and its result line says why; with
/// `--callback-timeout` an isolated hang becomes the port's `callback_timeout` exit instead
/// of a hung scenario.
#[test]
fn in_process_scenarios_say_why_and_callback_timeouts_end_hangs() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let dir = scratch(
        "test-reports-directive",
        &[("a_hangs", HANG), ("b_passes", "")],
    );
    let scen = dir.0.join("b_passes.scen");
    let mut text = std::fs::read_to_string(&scen).expect("scenario");
    text.push_str("% ddll test: in process: it says so\n");
    std::fs::write(&scen, text).expect("scenario written");
    let (out, report) = ddll_test(&dir.0, &drivers, &["--callback-timeout", "300"]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "PASS {} (in process: it says so)\n",
            scen.display()
        )),
        "{report}"
    );
    let hung = part(&report, &dir.0, "a_hangs");
    assert!(
        hung.contains("  + 15: {'EXIT',#Port<2>,{driver_crashed,callback_timeout}}\n"),
        "{hung}"
    );
    assert!(!hung.contains("hung:"), "{hung}");
}
