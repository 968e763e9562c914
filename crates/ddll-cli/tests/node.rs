//! `ddll node` used by a real BEAM node (OTP 25) through `ddll_remote` when a driver crashes,
//! on loopback only with an EPMD of the test's own: in process, the crash takes the ddll node
//! down and the BEAM owners see their ports exit with `noconnection` while their node lives on;
//! isolated (`--isolate`), the owner sees `{driver_crashed, Why}` and the ddll node lives on.

#[path = "../../ddll-node/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{build, erl_command, lines_of, workspace, Epmd, COOKIE, SCRIPT_PRELUDE};

/// A `ddll node` process of the test, killed when dropped.
struct DdllNode {
    child: Child,
    name: String,
}

impl DdllNode {
    fn start(epmd: &Epmd, dir: &PathBuf, alive: &str, isolate: bool) -> DdllNode {
        let mut node = Command::new(env!("CARGO_BIN_EXE_ddll"));
        node.args(["node", "--sname", alive, "--cookie", COOKIE, "--drivers"])
            .arg(dir)
            .env("ERL_EPMD_PORT", epmd.port.to_string())
            .stdout(Stdio::piped());
        if isolate {
            node.arg("--isolate");
        }
        let mut child = node.spawn().expect("ddll node runs");
        let mut up = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut up)
            .expect("ddll node says it is up");
        let name = up
            .strip_suffix(" is up\n")
            .unwrap_or_else(|| panic!("ddll node printed {up:?}"))
            .to_owned();
        DdllNode { child, name }
    }
}

impl Drop for DdllNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    epmd: Epmd,
    dir: PathBuf,
}

fn setup(name: &str) -> Option<Setup> {
    let epmd = Epmd::start()?;
    let dir = workspace().join(format!("target/node-test/{name}.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test folder");
    build(&dir)?;
    Some(Setup { epmd, dir })
}

impl Setup {
    /// What `script` prints, run by a trapping process of a BEAM node with `N` the ddll
    /// node and `Dir` the driver folder, after [`SCRIPT_PRELUDE`] with `M = ddll_remote`.
    fn run(&self, node: &DdllNode, script: &str) -> Vec<String> {
        let script = format!(
            "process_flag(trap_exit, true), N = '{}', Dir = \"{}\", M = ddll_remote, \
             {SCRIPT_PRELUDE} {script}",
            node.name,
            self.dir.display()
        );
        let erl = erl_command(self.epmd.port, COOKIE, &self.dir)
            .args(["-eval", &script])
            .spawn()
            .expect("erl runs");
        lines_of(erl, Duration::from_secs(60))
    }
}

/// Opens an echo port owned by a process that does not trap exits and a `crash_drv` port
/// `HOW WHERE` owned by the script's process, makes the latter crash with a port_command
/// and prints what each owner sees.
const CRASH: &str = r#"
    P(M:load_driver(N, Dir, echo_drv)),
    P(M:load_driver(N, Dir, crash_drv)),
    E = Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), e),
    Me = self(),
    {Owner, OwnerRef} = spawn_monitor(fun() ->
        Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), owned),
        Me ! opened,
        receive after infinity -> ok end
    end),
    Name(Owner, not_trapping),
    P(receive opened -> opened after 5000 -> timeout end),
    C = Name(M:open_port(N, {spawn_driver, Crash}, [binary]), c),
    P(Try(fun() -> M:port_command(C, <<"x">>) end)),
    P(Recv(10000)),
    P(Recv(1000)),
    P(receive {'DOWN', OwnerRef, process, Owner, Why} -> {not_trapping_down, Why}
      after 2000 -> not_trapping_alive end),
    P(Recv(1000)),
    P({beam_alive, lists:member(N, nodes(hidden))}),
    P(Try(fun() -> M:port_command(E, "still") end)),
    P(Recv(1000)),
    halt()."#;

#[test]
fn a_driver_crash_in_process_costs_beam_a_connection_not_its_life() {
    let Some(s) = setup("crash") else { return };
    let mut node = DdllNode::start(
        &s.epmd,
        &s.dir,
        &format!("crash{}", std::process::id()),
        false,
    );
    let lines = s.run(
        &node,
        &format!("Crash = \"crash_drv segv output\", {CRASH}"),
    );
    assert_eq!(
        lines,
        [
            "ok",
            "ok",
            "opened",
            "{error,noconnection}",
            "{'EXIT',e,noconnection}",
            "{'EXIT',c,noconnection}",
            "{not_trapping_down,noconnection}",
            "timeout",
            "{beam_alive,false}",
            "{error,noconnection}",
            "timeout",
        ]
    );
    let status = node.child.wait().expect("the ddll node ends");
    assert!(
        !status.success(),
        "the crash took the ddll node down: {status}"
    );
}

#[test]
fn an_isolated_driver_crash_costs_only_its_port() {
    let Some(s) = setup("isolated") else { return };
    let mut node = DdllNode::start(
        &s.epmd,
        &s.dir,
        &format!("isolated{}", std::process::id()),
        true,
    );
    let lines = s.run(
        &node,
        &format!("Crash = \"crash_drv segv output\", {CRASH}"),
    );
    assert_eq!(
        lines,
        [
            "ok",
            "ok",
            "opened",
            "true",
            "{'EXIT',c,{driver_crashed,sigsegv}}",
            "timeout",
            "not_trapping_alive",
            "timeout",
            "{beam_alive,true}",
            "true",
            "{e,{data,\"still\"}}",
        ]
    );
    assert!(
        node.child
            .try_wait()
            .expect("the ddll node's status")
            .is_none(),
        "the ddll node lives on"
    );
}
