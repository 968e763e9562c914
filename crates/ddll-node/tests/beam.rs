//! A ddll node used by a real BEAM node (OTP 25) through `ddll_remote`, on loopback only:
//! each test runs its own EPMD on a port of its own and kills it at the end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use ddll_node::{short_name, Node, NodeOptions};

const COOKIE: &str = "ddll_node_test";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips (returns `None`) with a loud message, or fails under `CI=true`.
fn skip<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true: cannot skip: {why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

/// An EPMD of this test alone, on loopback, run in the foreground as a child of the test so
/// that dropping it kills exactly it (`epmd -kill` refuses while nodes are registered).
struct Epmd {
    port: u16,
    child: Child,
}

impl Epmd {
    fn start() -> Option<Epmd> {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let port =
            24000 + (std::process::id() % 1000) as u16 * 8 + NEXT.fetch_add(1, Ordering::Relaxed);
        let Ok(child) = Command::new("epmd")
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return skip("epmd does not start (erlang-nox)");
        };
        let epmd = Epmd { port, child };
        let listening = wait_until(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(listening, "epmd does not listen on port {port}");
        Some(epmd)
    }
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ddll_remote` compiled, and echo_drv built against OTP's header, in a folder of this test.
fn build(dir: &Path) -> Option<()> {
    let erlc = Command::new("erlc")
        .arg("-o")
        .arg(dir)
        .arg(workspace().join("crates/ddll-node/erl/ddll_remote.erl"))
        .status();
    if !erlc.is_ok_and(|s| s.success()) {
        return skip("erlc cannot compile ddll_remote.erl (erlang-nox)");
    }
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-I/usr/lib/erlang/usr/include"])
        .arg(workspace().join("examples/drivers/echo_drv.c"))
        .arg("-o")
        .arg(dir.join("echo_drv.so"))
        .status();
    if !cc.is_ok_and(|s| s.success()) {
        return skip("cannot build echo_drv against OTP's header");
    }
    Some(())
}

struct Setup {
    epmd: Epmd,
    dir: PathBuf,
    rt: ddll::Runtime,
    node: Node,
}

fn setup(name: &str) -> Option<Setup> {
    let epmd = Epmd::start()?;
    let dir = workspace().join(format!("target/node-test/{name}.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test folder");
    build(&dir)?;
    let rt = ddll::Runtime::new().expect("the C API shim installs");
    let mut options = NodeOptions::new(
        &short_name(&format!("{name}{}", std::process::id())),
        COOKIE,
    );
    options.epmd_port = epmd.port;
    let node = Node::start(rt.clone(), options).expect("the node starts");
    Some(Setup {
        epmd,
        dir,
        rt,
        node,
    })
}

impl Setup {
    /// `erl` on loopback with `script` (a sequence of expressions; `N` is the ddll node,
    /// `Dir` the driver folder), its output read as it comes.
    fn erl(&self, cookie: &str, script: &str) -> Child {
        let script = format!(
            "process_flag(trap_exit, true), N = '{}', Dir = \"{}\", {script}",
            self.node.name().as_str(),
            self.dir.display()
        );
        Command::new("erl")
            .args(["-noshell", "-sname"])
            .arg(format!("beam{}_{}", std::process::id(), self.epmd.port))
            .args(["-setcookie", cookie, "-pa"])
            .arg(&self.dir)
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .args(["-eval", &script])
            .env("ERL_EPMD_PORT", self.epmd.port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("erl runs")
    }
}

/// The lines `child` prints, until it exits or `limit` passes (then it is killed).
fn lines_of(mut child: Child, limit: Duration) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn load_open_echo_control_call_close_unload() {
    let Some(s) = setup("roundtrip") else { return };
    let script = r#"
        P = fun(T) -> io:format("~p~n", [T]) end,
        P(ddll_remote:load_driver(N, Dir, echo_drv)),
        Port = ddll_remote:open_port(N, {spawn_driver, "echo_drv"}, [binary]),
        P({is_port(Port), node(Port) =:= N}),
        P(ddll_remote:port_command(Port, <<"hello">>)),
        P(receive {Port, {data, D}} -> D after 5000 -> timeout end),
        P(ddll_remote:port_control(Port, 2, "abc")),
        P(ddll_remote:port_call(Port, 2, {x, [1, 2], self()}) =:= {x, [1, 2], self()}),
        P(ddll_remote:port_close(Port)),
        P(receive {'EXIT', Port, R} -> R after 5000 -> timeout end),
        P(try ddll_remote:port_command(Port, <<"late">>) catch error:E -> {error, E} end),
        Me = self(),
        spawn(fun() -> Me ! {owned, ddll_remote:open_port(N, {spawn_driver, "echo_drv"}, [])} end),
        Owned = receive {owned, O} -> O after 5000 -> timeout end,
        timer:sleep(300),
        P(ddll_remote:port_info(Owned)),
        P(try ddll_remote:open_port(N, {spawn_driver, "no_such_drv"}, []) catch error:E2 -> {error, E2} end),
        P(ddll_remote:unload_driver(N, echo_drv)),
        P(lists:member(N, nodes(hidden))),
        halt()."#;
    let lines = lines_of(s.erl(COOKIE, script), Duration::from_secs(30));
    // What the same calls return on a local port of BEAM (erl_ddll/erlang).
    let expected = [
        "ok",
        "{true,true}",
        "true",
        "<<\"hello\">>",
        "\"ABC\"",
        "true",
        "true",
        "normal",
        "{error,badarg}",
        "undefined",
        "{error,badarg}",
        "ok",
        "true",
    ];
    assert_eq!(lines, expected);
    assert!(s.rt.ports().is_empty(), "{:?}", s.rt.ports());
}

#[test]
fn a_wrong_cookie_is_refused() {
    let Some(s) = setup("cookie") else { return };
    let script = r#"io:format("~p~n", [net_kernel:connect_node(N)]), halt()."#;
    let lines = lines_of(s.erl("not_the_cookie", script), Duration::from_secs(30));
    assert_eq!(lines, ["false"]);
    // The same node with the right cookie connects: the cookie made the difference.
    let lines = lines_of(s.erl(COOKIE, script), Duration::from_secs(30));
    assert_eq!(lines, ["true"]);
}

#[test]
fn a_killed_beam_node_loses_its_ports_and_drivers() {
    let Some(s) = setup("killed") else { return };
    let script = r#"
        ok = ddll_remote:load_driver(N, Dir, echo_drv),
        _ = ddll_remote:open_port(N, {spawn_driver, "echo_drv"}, [binary]),
        io:format("open~n"),
        receive after infinity -> ok end."#;
    let mut child = s.erl(COOKIE, script);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    // Bounded by the port being seen in ddll (or not) below.
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_line(&mut line);
        line
    });
    let opened = wait_until(Duration::from_secs(20), || s.rt.ports().len() == 1);
    if !opened {
        let _ = child.kill();
    }
    assert!(opened, "the BEAM node opened no port in ddll");
    assert_eq!(reader.join().expect("reader").trim(), "open");
    assert_eq!(s.rt.loaded_drivers(), ["echo_drv"]);
    child.kill().expect("the BEAM node is killed");
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(10), || s.rt.ports().is_empty()),
        "ports left: {:?}",
        s.rt.ports()
    );
    assert!(wait_until(Duration::from_secs(5), || s
        .rt
        .loaded_drivers()
        .is_empty()));
}
