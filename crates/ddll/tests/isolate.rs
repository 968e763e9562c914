//! Isolated drivers (`ddll script --isolate`): `crash_drv` segfaults, aborts, exits or hangs
//! in each kind of callback; the host survives, the owner gets
//! `{'EXIT', Port, {driver_crashed, Why}}`, another driver keeps working, and the crashed
//! driver loads again.

mod support;

use std::process::Command;

const KINDS: [&str; 8] = [
    "start",
    "output",
    "control",
    "call",
    "timeout",
    "ready_async",
    "ready_input",
    "thread",
];

/// The scenario for `crash_drv HOW WHERE`: the line that makes it fail, then (for failures
/// outside a request) a second request, which a hung host makes overrun its timeout.
fn scenario(how: &str, kind: &str) -> String {
    let trigger = match kind {
        "control" => "erlang:port_control(P, 1, \"\").",
        "call" => "erlang:port_call(P, 1, x).",
        _ => "erlang:port_command(P, <<\"x\">>).",
    };
    format!(
        "erl_ddll:load(DriverDir, crash_drv).\n\
         erl_ddll:load(DriverDir, echo_drv).\n\
         E = erlang:open_port({{spawn_driver, \"echo_drv\"}}, [binary]).\n\
         P = erlang:open_port({{spawn_driver, \"crash_drv {how} {kind}\"}}, [binary]).\n\
         {trigger}\n\
         recv(200).\n\
         erlang:port_control(P, 1, \"\").\n\
         recv(3000).\n\
         recv(3000).\n\
         erlang:port_command(E, <<\"alive\">>).\n\
         recv(1000).\n\
         recv(300).\n\
         erl_ddll:load(DriverDir, crash_drv).\n"
    )
}

#[test]
fn a_crashing_isolated_driver_takes_only_its_ports_down() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let cases = [
        ("segv", "sigsegv"),
        ("abort", "sigabrt"),
        ("exit", "{exit,3}"),
        ("hang", "callback_timeout"),
    ];
    let mut failures = Vec::new();
    for (how, why) in cases {
        for kind in KINDS {
            // A hung driver thread holds up no callback: nothing overruns.
            if how == "hang" && kind == "thread" {
                continue;
            }
            let text = scenario(how, kind);
            let out = Command::new(env!("CARGO_BIN_EXE_ddll"))
                .args(["script", "-", "--isolate", "--callback-timeout", "500"])
                .arg("--drivers")
                .arg(&drivers)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .expect("piped")
                        .write_all(text.as_bytes())?;
                    child.wait_with_output()
                })
                .expect("ddll runs");
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            let crashed = format!("{{'EXIT',#Port<2>,{{driver_crashed,{why}}}}}");
            let wanted = [
                crashed.as_str(),
                "{#Port<1>,{data,<<\"alive\">>}}",
                "13: ok",
            ];
            let missing: Vec<&str> = wanted.into_iter().filter(|w| !got.contains(w)).collect();
            if !out.status.success() || !missing.is_empty() {
                failures.push(format!(
                    "crash_drv {how} {kind}: status {:?}, missing {missing:?}\n{got}",
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
