//! Isolated drivers (`ddll script --isolate`): `crash_drv` segfaults, aborts, exits or hangs
//! in each kind of callback; the host survives, the owner gets
//! `{'EXIT', Port, {driver_crashed, Why}}`, another driver keeps working, and the crashed
//! driver loads again.

#[path = "../../ddll/tests/support/mod.rs"]
mod support;

use ddll::Term;
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

/// The scenario for `crash_drv HOW WHERE`: a second port of the driver (`Q`), the line that
/// makes `P` fail, then (for failures outside a request) a second request; after the exits,
/// the drivers loaded, the other driver at work, and the crashed one loaded again.
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
         Q = erlang:open_port({{spawn_driver, \"crash_drv none none\"}}, [binary]).\n\
         P = erlang:open_port({{spawn_driver, \"crash_drv {how} {kind}\"}}, [binary]).\n\
         {trigger}\n\
         recv(200).\n\
         erlang:port_control(P, 1, \"\").\n\
         recv(2500).\n\
         recv(1000).\n\
         recv(200).\n\
         erl_ddll:loaded_drivers().\n\
         erlang:port_command(E, <<\"alive\">>).\n\
         recv(1000).\n\
         recv(100).\n\
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
        // A program the driver started, or a process it forked, holds the host's
        // descriptors: the host's death still shows.
        ("forksegv", "sigsegv"),
        ("forkhold", "sigsegv"),
    ];
    let mut runs: Vec<(&str, &str, &str)> = Vec::new();
    for (how, why) in cases {
        for kind in KINDS {
            // A hung driver thread holds up no callback: nothing overruns.
            if how == "hang" && kind == "thread" {
                continue;
            }
            runs.push((how, why, kind));
        }
    }
    // The cases mostly wait (for a crash, a timeout, a message that does not come): run a few
    // at once, so the test takes seconds rather than minutes on a small CI machine.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(how, why, kind)) = runs.get(i) else {
                    return;
                };
                if let Err(failure) = run_case(&drivers, how, why, kind) {
                    failures.lock().expect("not poisoned").push(failure);
                }
            });
        }
    });
    let failures = failures.into_inner().expect("not poisoned");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How many cases run at once.
const PARALLEL: usize = 8;

/// Runs `crash_drv HOW KIND` isolated: an error that says what was wrong unless the owner got
/// `{driver_crashed, WHY}`, the other driver kept working and the driver loaded again.
fn run_case(drivers: &std::path::Path, how: &str, why: &str, kind: &str) -> Result<(), String> {
    let out = script_output(drivers, &scenario(how, kind));
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    // Both of the driver's ports exit, and the driver is unloaded by the time the next line
    // (which runs as soon as the last exit signal has been received) looks.
    let crashed = format!("{{'EXIT',#Port<3>,{{driver_crashed,{why}}}}}");
    let other_crashed = format!("{{'EXIT',#Port<2>,{{driver_crashed,{why}}}}}");
    let wanted = [
        crashed.as_str(),
        other_crashed.as_str(),
        "12: {ok,[\"echo_drv\"]}",
        "{#Port<1>,{data,<<\"alive\">>}}",
        "16: ok",
    ];
    let missing: Vec<&str> = wanted.into_iter().filter(|w| !got.contains(w)).collect();
    if out.status.success() && missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crash_drv {how} {kind}: status {:?}, missing {missing:?}\n{got}",
            out.status.code()
        ))
    }
}

/// A crash seen by a line (its callback failed) is handled by the time the next line runs: the
/// driver's other port has exited and the driver is unloaded, whatever the threads' timing.
#[test]
fn the_line_after_a_crash_sees_the_driver_unloaded() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    for (how, kind, trigger) in [
        ("segv", "output", "erlang:port_command(P, <<\"x\">>)."),
        ("abort", "control", "erlang:port_control(P, 1, \"\")."),
        ("exit", "call", "erlang:port_call(P, 1, x)."),
    ] {
        let text = format!(
            "erl_ddll:load(DriverDir, crash_drv).\n\
             erl_ddll:load(DriverDir, echo_drv).\n\
             E = erlang:open_port({{spawn_driver, \"echo_drv\"}}, [binary]).\n\
             Q = erlang:open_port({{spawn_driver, \"crash_drv none none\"}}, [binary]).\n\
             P = erlang:open_port({{spawn_driver, \"crash_drv {how} {kind}\"}}, [binary]).\n\
             {trigger}\n\
             erl_ddll:loaded_drivers().\n\
             erlang:ports().\n"
        );
        let got = run_script(&drivers, &text);
        for wanted in ["7: {ok,[\"echo_drv\"]}", "8: [#Port<1>]"] {
            assert!(
                got.contains(wanted),
                "crash_drv {how} {kind}: no {wanted}\n{got}"
            );
        }
    }
}

/// `ddll script --isolate --callback-timeout 500` on `text`: its output.
fn script_output(drivers: &std::path::Path, text: &str) -> std::process::Output {
    script_output_with(drivers, text, &["--callback-timeout", "500"])
}

/// `ddll script --isolate` with `options` on `text`: its output.
fn script_output_with(
    drivers: &std::path::Path,
    text: &str,
    options: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ddll"))
        .args(["script", "-", "--isolate"])
        .args(options)
        .arg("--drivers")
        .arg(drivers)
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
        .expect("ddll runs")
}

/// [`script_output`]'s standard output, as text.
fn run_script(drivers: &std::path::Path, text: &str) -> String {
    String::from_utf8_lossy(&script_output(drivers, text).stdout).into_owned()
}

/// `Runtime::set_driver_isolation` isolates one driver of a runtime that loads the others in
/// process: the isolated one segfaults in its host and only its port exits, while this
/// process (which would die with an in-process segfault) and the in-process echo go on.
#[test]
fn one_driver_isolated_by_name() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    ddll::isolate::set_host_program(env!("CARGO_BIN_EXE_ddll"));
    let rt = ddll::Runtime::with_options("/", ddll::RuntimeOptions::default()).expect("runtime");
    rt.set_driver_isolation("crash_drv", Some(ddll::isolate::Isolation::default()));
    let me = rt.spawn(Some("test"));
    let dir = drivers.to_string_lossy().into_owned();
    for name in ["crash_drv", "echo_drv"] {
        rt.try_load(me.pid(), &dir, name, Default::default())
            .expect("loads");
    }
    let options = ddll::PortOptions::new().binary(true);
    let echo = rt.open_port(me.pid(), "echo_drv", options).expect("opens");
    let crash = rt
        .open_port(me.pid(), "crash_drv segv output", options)
        .expect("opens");
    let _ = rt.port_command_bytes(me.pid(), &crash, b"x");
    let exit = me
        .receive(Some(std::time::Duration::from_secs(5)))
        .expect("the crashed port's exit");
    assert_eq!(
        format!("{exit}"),
        format!(
            "{{'EXIT',{},{{driver_crashed,sigsegv}}}}",
            Term::Port(crash)
        )
    );
    rt.port_command_bytes(me.pid(), &echo, b"alive")
        .expect("sent");
    let echoed = me
        .receive(Some(std::time::Duration::from_secs(5)))
        .expect("echoed");
    assert!(format!("{echoed}").contains("alive"), "{echoed}");
}

/// A driver thread that hangs (`crash_drv hang thread`: it sleeps for ever) holds up no
/// callback: the port keeps answering, closes, and the driver unloads (its host exits with
/// the thread still asleep) and loads again; the run ends at once, leaving no host behind.
#[test]
fn a_hung_driver_thread_holds_up_nothing() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    let text = "erl_ddll:load(DriverDir, crash_drv).\n\
                P = erlang:open_port({spawn_driver, \"crash_drv hang thread\"}, [binary]).\n\
                erlang:port_command(P, <<\"x\">>).\n\
                recv(1000).\n\
                erlang:port_control(P, 1, \"\").\n\
                erlang:port_close(P).\n\
                recv(1000).\n\
                erl_ddll:unload(crash_drv).\n\
                erl_ddll:loaded_drivers().\n\
                erl_ddll:load(DriverDir, crash_drv).\n\
                Q = erlang:open_port({spawn_driver, \"crash_drv hang thread\"}, [binary]).\n\
                erlang:port_command(Q, <<\"y\">>).\n\
                recv(1000).\n";
    let started = std::time::Instant::now();
    // No callback timeout: nothing overruns, and nothing waits for the thread.
    let out = script_output_with(&drivers, text, &[]);
    let took = started.elapsed();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        got,
        "1: ok\n2: #Port<1>\n3: true\n4: {#Port<1>,{data,<<\"x\">>}}\n5: []\n6: true\n\
         7: {'EXIT',#Port<1>,normal}\n8: ok\n9: {ok,[]}\n10: ok\n11: #Port<2>\n12: true\n\
         13: {#Port<2>,{data,<<\"y\">>}}\n"
    );
    assert!(out.status.success());
    // The run's own waits are the two receives; a host waited for would add seconds.
    assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
}

/// The host's messages reach each mailbox in the order the host made them, across its two
/// ways of sending (request replies and the batches it sends on its own): keyed async jobs,
/// queued back to back, complete in order on the host's pool while the next `port_control`
/// is in flight, and the owner receives the completions in that order. (When a request's turn
/// ended at its reply, a batch read just then overtook the reply's messages and the batches
/// parked before it: every one of 24 such runs, four at a time, misordered some.)
#[test]
fn isolated_async_completions_arrive_in_order() {
    let Some(drivers) = support::own_drivers() else {
        return;
    };
    const JOBS: usize = 400;
    let mut text = String::from(
        "erl_ddll:load(DriverDir, async_drv).\n\
         P = erlang:open_port({spawn_driver, \"async_drv\"}, []).\n",
    );
    for job in 0..JOBS {
        text.push_str(&format!("erlang:port_control(P, 2, \"j{job}\").\n"));
    }
    for _ in 0..JOBS {
        text.push_str("recv(2000).\n");
    }
    let want: Vec<String> = (0..JOBS)
        .map(|job| format!("j{job}").chars().rev().collect())
        .collect();
    // Four runs at once: the order is at stake when the host's threads and the parent's
    // compete for the cores.
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| run_script(&drivers, &text)))
            .collect();
        for run in runs {
            let out = run.join().expect("a run");
            let got: Vec<&str> = out
                .lines()
                .filter_map(|line| line.split_once(": {#Port<1>,{data,\"done:"))
                .map(|(_, rest)| rest.trim_end_matches("\"}}"))
                .collect();
            assert_eq!(got, want, "{out}");
        }
    });
}
