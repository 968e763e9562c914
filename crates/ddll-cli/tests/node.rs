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

/// `ddll node --sname ALIVE` with the test's cookie, EPMD and driver folder, and `args`.
fn ddll_node(epmd: &Epmd, dir: &PathBuf, alive: &str, args: &[&str]) -> Command {
    let mut node = Command::new(env!("CARGO_BIN_EXE_ddll"));
    node.args(["node", "--sname", alive, "--cookie", COOKIE, "--drivers"])
        .arg(dir)
        .args(args)
        .env("ERL_EPMD_PORT", epmd.port.to_string())
        .stdout(Stdio::piped());
    node
}

impl DdllNode {
    fn start(epmd: &Epmd, dir: &PathBuf, alive: &str, isolate: bool) -> DdllNode {
        let args: &[&str] = if isolate { &["--isolate"] } else { &[] };
        DdllNode::start_with(epmd, dir, alive, args)
    }

    /// Starts it with `args` and waits until it says it is up.
    fn start_with(epmd: &Epmd, dir: &PathBuf, alive: &str, args: &[&str]) -> DdllNode {
        let mut child = ddll_node(epmd, dir, alive, args)
            .spawn()
            .expect("ddll node runs");
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

/// Runs [`CRASH`] (`crash_drv` segfaulting in `output`) against a ddll node whose drivers are
/// isolated or not; the lines BEAM printed, and the node (with the EPMD it registered with) to
/// see whether it lived on.
fn crash_case(name: &str, isolated: bool) -> Option<(Vec<String>, DdllNode, Setup)> {
    let s = setup(name)?;
    let node = DdllNode::start(
        &s.epmd,
        &s.dir,
        &format!("{name}{}", std::process::id()),
        isolated,
    );
    let lines = s.run(
        &node,
        &format!("Crash = \"crash_drv segv output\", {CRASH}"),
    );
    Some((lines, node, s))
}

#[test]
fn a_driver_crash_in_process_costs_beam_a_connection_not_its_life() {
    let Some((lines, mut node, _epmd)) = crash_case("crash", false) else {
        return;
    };
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
    let Some((lines, mut node, _epmd)) = crash_case("isolated", true) else {
        return;
    };
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

/// `ddll node --connect NODE` connects to a BEAM node at start, before it says it is up: the
/// BEAM node sees it come up as a hidden node and uses it over that connection. A node that
/// cannot be reached stops the start with an error.
#[test]
fn the_node_connects_at_start() {
    let Some(s) = setup("connect_at_start") else {
        return;
    };
    let alive = format!("connecting{}", std::process::id());
    let ddll_name = ddll_node::short_name(&alive);
    let script = format!(
        "process_flag(trap_exit, true), N = '{ddll_name}', Dir = \"{}\", M = ddll_remote, \
         {SCRIPT_PRELUDE} \
         ok = net_kernel:monitor_nodes(true, [{{node_type, hidden}}]), \
         io:format(\"ready~n\"), \
         P(receive {{nodeup, N, Info}} -> {{nodeup, Info}} after 20000 -> no_nodeup end), \
         P(lists:member(N, nodes(hidden))), \
         P(M:load_driver(N, Dir, echo_drv)), \
         Port = Name(M:open_port(N, {{spawn_driver, \"echo_drv\"}}, [binary]), port), \
         P(M:port_command(Port, <<\"over the connection ddll made\">>)), \
         P(Recv(5000)), \
         P(M:port_close(Port)), \
         halt().",
        s.dir.display()
    );
    let mut erl = erl_command(s.epmd.port, COOKIE, &s.dir)
        .args(["-eval", &script])
        .spawn()
        .expect("erl runs");
    let mut stdout = BufReader::new(erl.stdout.take().expect("piped"));
    let mut ready = String::new();
    let _ = stdout.read_line(&mut ready);
    assert_eq!(ready, "ready\n");
    let beam_name = ddll_node::short_name(&format!("beam{}_{}", std::process::id(), s.epmd.port));
    let _node = DdllNode::start_with(&s.epmd, &s.dir, &alive, &["--connect", &beam_name]);
    erl.stdout = Some(stdout.into_inner());
    assert_eq!(
        lines_of(erl, Duration::from_secs(60)),
        [
            "{nodeup,[{node_type,hidden}]}",
            "true",
            "ok",
            "true",
            "{port,{data,<<\"over the connection ddll made\">>}}",
            "true",
        ]
    );

    let nobody = ddll_node::short_name(&format!("nobody{}", std::process::id()));
    let out = ddll_node(
        &s.epmd,
        &s.dir,
        &format!("{alive}b"),
        &["--connect", &nobody],
    )
    .stderr(Stdio::piped())
    .output()
    .expect("ddll node runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("ddll node: cannot connect to {nobody}: ")),
        "{stderr}"
    );
}
