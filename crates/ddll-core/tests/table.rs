//! Table tests: every row of the runtime's try_load / try_unload state × option logic, and
//! scenarios whose expected output was taken from a real OTP 25 `erl`.

mod common;

use common::{Ddll, Harness, Impl, Op, BAD_DIR, DIR_A, DIR_B, GONE_DIR};
use ddll_core::{HandleStatus, MonitorKind, Pending};

const PD: Option<Pending> = Some(Pending::PendingDriver);
const PE: Option<Pending> = Some(Pending::Pending);

fn load(pid: u8, drv: &'static str) -> Op {
    Op::Load {
        pid,
        drv,
        dir: DIR_A,
        kill: false,
        monitor: None,
        reload: None,
    }
}

fn load_with(
    pid: u8,
    dir: &'static str,
    kill: bool,
    monitor: Option<Pending>,
    reload: Option<Pending>,
) -> Op {
    Op::Load {
        pid,
        drv: "da",
        dir,
        kill,
        monitor,
        reload,
    }
}

fn unload(pid: u8, kill: bool, monitor: Option<Pending>) -> Op {
    Op::Unload {
        pid,
        drv: "da",
        kill,
        monitor,
    }
}

fn mon(pid: u8, kind: MonitorKind) -> Op {
    Op::Monitor {
        pid,
        drv: "da",
        kind,
    }
}

/// Run `setup`, then `op`; compare the reply, the effects and the status of "da" afterwards.
fn check(setup: &[Op], op: Op, reply: &str, effects: &[&str], status: Option<HandleStatus>) {
    let mut h = Harness::new(Impl::default());
    h.sys.core.add_linked_in("tcp_inet");
    for s in setup {
        h.step(s);
    }
    let before = h.core_state();
    let obs = h.step(&op);
    let context = format!("setup {setup:?}\nop {op:?}\nstate before: {before}");
    assert_eq!(obs.reply, reply, "{context}");
    assert_eq!(obs.effects, effects, "{context}");
    assert_eq!(h.sys.core.status("da"), status, "{context}");
    if reply.starts_with("{error") {
        assert_eq!(
            h.core_state(),
            before,
            "errors leave the state unchanged\n{context}"
        );
    }
}

use HandleStatus::{ForceReload, ForceUnload, Permanent, Reload, Unload};
/// Name, setup, operation, expected reply, expected effects, expected status of "da".
type Row = (
    &'static str,
    Vec<Op>,
    Op,
    &'static str,
    &'static [&'static str],
    Option<HandleStatus>,
);

const OK: Option<HandleStatus> = Some(HandleStatus::Ok);

#[test]
fn try_load_rows() {
    let loaded = [load(1, "da")];
    let two_users = [load(1, "da"), load(2, "da")];
    let unloading = [load(1, "da"), Op::PortOpen("da"), unload(1, false, None)];
    let reloading = [
        load(1, "da"),
        Op::PortOpen("da"),
        load_with(1, DIR_A, false, None, PD),
    ];
    let permanent = [load(1, "da"), Op::Lock("da")];
    let awaiting_unload = [
        load(1, "da"),
        Op::PortOpen("da"),
        mon(2, MonitorKind::UnloadedOnly),
        mon(3, MonitorKind::Unloaded),
        unload(1, false, None),
    ];
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("unknown: real load", vec![], load_with(1, DIR_A, false, PD, None), "{ok,loaded}", &[], OK),
        ("unknown + reload", vec![], load_with(1, DIR_A, false, None, PD), "{error,not_loaded}", &[], None),
        ("unknown: load fails", vec![], load_with(1, BAD_DIR, false, None, None), "{error,bad_driver_name}", &[], None),
        ("unknown: open error", vec![], load_with(1, GONE_DIR, false, None, None), "{error,{open_error,-10}}", &[], None),
        ("linked-in", vec![], Op::Load { pid: 1, drv: "tcp_inet", dir: DIR_A, kill: false, monitor: None, reload: None }, "{error,linked_in_driver}", &[], None),
        ("ok: same path, other dir spelling", loaded.to_vec(), load_with(2, "/lib/a//", false, PD, None), "{ok,already_loaded}", &[], OK),
        ("ok: other path", loaded.to_vec(), load_with(2, DIR_B, false, None, None), "{error,inconsistent}", &[], OK),
        ("ok: other options", loaded.to_vec(), load_with(2, DIR_A, true, None, None), "{error,inconsistent}", &[], OK),
        ("ok: reload pending_driver, others use it", two_users.to_vec(), load_with(1, DIR_A, false, None, PD), "{error,pending_process}", &[], OK),
        ("ok: reload pending_driver, loaded twice", vec![load(1, "da"), load(1, "da")], load_with(1, DIR_A, false, None, PD), "{error,pending_process}", &[], OK),
        ("ok: reload, other options", loaded.to_vec(), load_with(1, DIR_A, true, None, PD), "{error,inconsistent}", &[], OK),
        ("ok: reload pending, not mine", loaded.to_vec(), load_with(2, DIR_A, false, None, PE), "{error,not_loaded_by_this_process}", &[], OK),
        ("ok: reload granted (new path allowed)", loaded.to_vec(), load_with(1, DIR_B, false, PE, PD), "{ok,pending_driver,#1}", &[], Some(Reload)),
        ("ok: reload pending granted over others", two_users.to_vec(), load_with(1, DIR_A, false, None, PE), "{ok,pending_process}", &[], Some(Reload)),
        ("ok: reload with kill_ports kills", vec![load_with(1, DIR_A, true, None, None), Op::PortOpen("da")], load_with(1, DIR_A, true, PD, PD), "{ok,pending_driver,#1}", &["kill da", "closed 1 ports of da"], Some(ForceReload)),
        ("unload pending + reload", unloading.to_vec(), load_with(2, DIR_A, false, None, PD), "{error,not_loaded_by_this_process}", &[], Some(Unload)),
        ("unload pending: other path", unloading.to_vec(), load_with(2, DIR_B, false, None, None), "{error,inconsistent}", &[], Some(Unload)),
        ("unload pending: cancelled (not unloaded_only)", awaiting_unload.to_vec(), load_with(2, DIR_A, false, PD, None), "{ok,already_loaded}", &["p3 UP #2 da unload_cancelled"], OK),
        ("reload pending + reload", reloading.to_vec(), load_with(2, DIR_A, false, None, PE), "{error,pending_reload}", &[], Some(Reload)),
        ("reload pending: other path", reloading.to_vec(), load_with(2, DIR_B, false, None, None), "{error,inconsistent}", &[], Some(Reload)),
        ("reload pending: joins, always monitored", reloading.to_vec(), load_with(2, DIR_A, false, None, None), "{ok,pending_driver,#1}", &[], Some(Reload)),
        ("permanent", permanent.to_vec(), load_with(2, DIR_A, false, None, None), "{error,permanent}", &[], Some(Permanent)),
    ];
    for (name, setup, op, reply, effects, status) in rows {
        eprintln!("row: {name}");
        check(&setup, op, reply, effects, status);
    }
}

#[test]
fn try_unload_rows() {
    let loaded = [load(1, "da")];
    let with_port = [load(1, "da"), Op::PortOpen("da")];
    let killer = [load_with(1, DIR_A, true, None, None), Op::PortOpen("da")];
    let two_users = [load(1, "da"), load(2, "da")];
    let reloading = [
        load(1, "da"),
        load(2, "da"),
        Op::PortOpen("da"),
        load_with(1, DIR_A, false, None, PE),
        load_with(3, DIR_A, false, None, None),
    ];
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("unknown", vec![], unload(1, false, None), "{error,not_loaded}", &[], None),
        ("linked-in", vec![], Op::Unload { pid: 1, drv: "tcp_inet", kill: false, monitor: None }, "{error,linked_in_driver}", &[], None),
        ("permanent", vec![load(1, "da"), Op::Lock("da")], unload(1, false, None), "{error,permanent}", &[], Some(Permanent)),
        ("not mine", loaded.to_vec(), unload(2, false, None), "{error,not_loaded_by_this_process}", &[], OK),
        ("last user: pending_driver + monitor", loaded.to_vec(), unload(1, false, PD), "{ok,pending_driver,#1}", &[], Some(Unload)),
        ("others remain: no monitor for pending_driver", two_users.to_vec(), unload(1, false, PD), "{ok,pending_process}", &[], OK),
        ("others remain: monitor for pending", two_users.to_vec(), unload(1, false, PE), "{ok,pending_process,#1}", &[], OK),
        ("open port, no kill", with_port.to_vec(), unload(1, false, None), "{ok,pending_driver}", &[], Some(Unload)),
        ("open port, kill option", with_port.to_vec(), unload(1, true, None), "{ok,pending_driver}", &["kill da", "closed 1 ports of da"], Some(ForceUnload)),
        ("open port, kill_ports driver option", killer.to_vec(), unload(1, false, None), "{ok,pending_driver}", &["kill da", "closed 1 ports of da"], Some(ForceUnload)),
        ("nobody loaded it (unload pending)", vec![load(1, "da"), Op::PortOpen("da"), unload(1, false, None)], unload(2, false, PE), "{ok,pending_driver,#1}", &[], Some(Unload)),
        ("reload pending, others remain", reloading.to_vec(), unload(1, false, None), "{ok,pending_process}", &[], Some(Reload)),
    ];
    for (name, setup, op, reply, effects, status) in rows {
        eprintln!("row: {name}");
        check(&setup, op, reply, effects, status);
    }
    // Reload pending, last user goes: loaders get load_cancelled, newest monitor first.
    let mut setup = reloading.to_vec();
    setup.push(unload(2, false, None));
    setup.push(unload(3, false, None));
    check(
        &setup,
        unload(1, false, None),
        "{ok,pending_driver}",
        &["p3 DOWN #1 da load_cancelled"],
        Some(Unload),
    );
}

/// Feed a scenario and compare every reply/effect line with the expected transcript, in which
/// the driver list (`erl_ddll:loaded_drivers()`) follows the steps that changed it.
fn scenario(ops: &[Op], expected: &[&str]) {
    let mut h = Harness::new(Impl::default());
    for name in ["tcp_inet", "udp_inet"] {
        h.sys.core.add_linked_in(name);
    }
    let mut got = Vec::new();
    let mut drivers = format!("{:?}", h.sys.core.loaded_drivers());
    for op in ops {
        let obs = h.step(op);
        got.push(obs.reply);
        got.extend(obs.effects);
        let now = format!("{:?}", h.sys.core.loaded_drivers());
        if now != drivers {
            got.push(now.clone());
            drivers = now;
        }
    }
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, expected);
}

/// Transcript of t1/t2/t3 runs in OTP 25 `erl` (refs renumbered; the driver list after each step
/// that changed it).
#[test]
fn matches_real_erl_transcripts() {
    // Unload with an open port; second unload also pending; monitors fire newest first.
    scenario(
        &[
            load(1, "da"),
            load(1, "db"),
            Op::PortOpen("da"),
            unload(1, false, None),
            unload(1, false, None),
            unload(1, false, PD),
            unload(1, false, PE),
            Op::PortClose("da"),
            Op::Run,
        ],
        &[
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da"]"#,
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da", "db"]"#,
            "port",
            "{ok,pending_driver}",
            "{ok,pending_driver}",
            "{ok,pending_driver,#1}",
            "{ok,pending_driver,#2}",
            "true",
            "ok",
            "p1 DOWN #2 da unloaded",
            "p1 DOWN #1 da unloaded",
            r#"["tcp_inet", "udp_inet", "db"]"#,
        ],
    );
    // A reload moves the driver to the end of the list; unloaded_only also fires on reload;
    // a failed reload removes the driver.
    scenario(
        &[
            load(1, "da"),
            load(1, "db"),
            mon(1, MonitorKind::UnloadedOnly),
            mon(1, MonitorKind::Unloaded),
            load_with(1, DIR_A, false, PD, PD),
            Op::Run,
            load_with(1, BAD_DIR, false, PD, PD),
            Op::Run,
        ],
        &[
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da"]"#,
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da", "db"]"#,
            "#1",
            "#2",
            "{ok,pending_driver,#3}",
            "ok",
            "p1 DOWN #2 da unloaded",
            "p1 DOWN #1 da unloaded",
            "p1 UP #3 da loaded",
            r#"["tcp_inet", "udp_inet", "db", "da"]"#,
            "{ok,pending_driver,#4}",
            "ok",
            "p1 DOWN #4 da {load_failure,bad_driver_name}",
            r#"["tcp_inet", "udp_inet", "db"]"#,
        ],
    );
    // Reload `pending` over another user: granted at once (process references are dropped).
    scenario(
        &[
            load(1, "da"),
            load(2, "da"),
            load_with(1, DIR_A, false, None, PD),
            load_with(1, DIR_A, false, PE, PE),
            Op::Run,
            load(1, "da"),
        ],
        &[
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da"]"#,
            "{ok,already_loaded}",
            "{error,pending_process}",
            "{ok,pending_process,#1}",
            "ok",
            "p1 UP #1 da loaded",
            "{ok,already_loaded}",
        ],
    );
}

#[test]
fn info_matches_real_erl() {
    let mut h = Harness::new(Impl::default());
    h.sys.core.add_linked_in("tcp_inet");
    for op in [
        load(1, "da"),
        load(2, "da"),
        load(1, "da"),
        Op::PortOpen("da"),
        mon(3, MonitorKind::Unloaded),
        mon(3, MonitorKind::UnloadedOnly),
        mon(2, MonitorKind::Unloaded),
    ] {
        h.step(&op);
    }
    assert_eq!(
        h.sys.info("da"),
        "processes=[{p2,1},{p1,2}] driver_options=[] port_count=1 linked_in_driver=false \
         permanent=false awaiting_load=[] awaiting_unload=[{p3,2},{p2,1}]"
    );
    assert_eq!(
        h.sys.info("tcp_inet"),
        "processes=linked_in_driver driver_options=linked_in_driver port_count=linked_in_driver \
         linked_in_driver=true permanent=false awaiting_load=linked_in_driver \
         awaiting_unload=linked_in_driver"
    );
    assert_eq!(h.sys.info("nonexistent"), "badarg");
    h.step(&Op::Lock("da"));
    assert_eq!(
        h.sys.info("da"),
        "processes=permanent driver_options=[] port_count=permanent linked_in_driver=false \
         permanent=true awaiting_load=permanent awaiting_unload=permanent"
    );
}

#[test]
fn immediate_monitor_answers() {
    let cases: [(&[Op], Op, &[&str]); 6] = [
        (
            &[],
            mon(1, MonitorKind::Loaded),
            &["p1 DOWN #1 da unloaded"],
        ),
        (
            &[],
            mon(1, MonitorKind::Unloaded),
            &["p1 DOWN #1 da unloaded"],
        ),
        (
            &[load(1, "da")],
            mon(1, MonitorKind::Loaded),
            &["p1 UP #1 da loaded"],
        ),
        (&[load(1, "da")], mon(1, MonitorKind::Unloaded), &[]),
        (
            &[load(1, "da"), Op::PortOpen("da"), unload(1, false, None)],
            mon(2, MonitorKind::Loaded),
            &["p2 DOWN #1 da load_cancelled"],
        ),
        (
            &[load(1, "da"), Op::Lock("da")],
            mon(2, MonitorKind::UnloadedOnly),
            &["p2 UP #1 da permanent"],
        ),
    ];
    for (setup, op, effects) in cases {
        let mut h = Harness::new(Impl::default());
        for s in setup {
            h.step(s);
        }
        let obs = h.step(&op);
        assert_eq!(obs.reply, "#1", "{setup:?} {op:?}");
        assert_eq!(obs.effects, effects, "{setup:?} {op:?}");
    }
}

#[test]
fn process_death_and_lock() {
    // Death of the last user with kill_ports: ports killed, driver unloaded after the check.
    scenario(
        &[
            load_with(1, DIR_A, true, None, None),
            Op::PortOpen("da"),
            mon(2, MonitorKind::Unloaded),
            Op::Die(1),
            Op::Run,
        ],
        &[
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da"]"#,
            "port",
            "#1",
            "ok",
            "kill da",
            "closed 1 ports of da",
            "ok",
            "p2 DOWN #1 da unloaded",
            r#"["tcp_inet", "udp_inet"]"#,
        ],
    );
    // Lock: every waiting monitor gets UP permanent (load, then unload, then unload_only).
    scenario(
        &[
            load(1, "da"),
            Op::PortOpen("da"),
            mon(2, MonitorKind::UnloadedOnly),
            mon(2, MonitorKind::Unloaded),
            load_with(1, DIR_A, false, PD, PD),
            Op::Lock("da"),
            Op::PortClose("da"),
            Op::Run,
        ],
        &[
            "{ok,loaded}",
            r#"["tcp_inet", "udp_inet", "da"]"#,
            "port",
            "#1",
            "#2",
            "{ok,pending_driver,#3}",
            "ok",
            "p1 UP #3 da permanent",
            "p2 UP #2 da permanent",
            "p2 UP #1 da permanent",
            "true",
            "ok",
        ],
    );
}
