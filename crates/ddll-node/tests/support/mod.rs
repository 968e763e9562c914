//! What the node tests share (`crates/ddll-cli/tests/node.rs` includes it too): an EPMD of
//! the test's own on loopback, the drivers built against OTP's header, `erl` on loopback.

#![allow(dead_code)] // each including test uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub const COOKIE: &str = "ddll_node_test";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips (returns `None`) with a loud message, or fails under `CI=true`.
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true: cannot skip: {why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

/// An EPMD of this test alone, on loopback, run in the foreground as a child of the test so
/// that dropping it kills exactly it (`epmd -kill` refuses while nodes are registered).
pub struct Epmd {
    pub port: u16,
    child: Child,
}

impl Epmd {
    pub fn start() -> Option<Epmd> {
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

/// `ddll_remote` and `ddll_local` compiled, and the drivers the tests use built against
/// OTP's header, in a folder of this test.
pub fn build(dir: &Path) -> Option<()> {
    let erlc = Command::new("erlc")
        .arg("-o")
        .arg(dir)
        .arg(workspace().join("crates/ddll-node/erl/ddll_remote.erl"))
        .arg(workspace().join("crates/ddll-node/tests/erl/ddll_local.erl"))
        .status();
    if !erlc.is_ok_and(|s| s.success()) {
        return skip("erlc cannot compile ddll_remote.erl (erlang-nox)");
    }
    for driver in DRIVERS {
        let cc = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-I/usr/lib/erlang/usr/include"])
            .arg(workspace().join(format!("examples/drivers/{driver}.c")))
            .arg("-o")
            .arg(dir.join(format!("{driver}.so")))
            .status();
        if !cc.is_ok_and(|s| s.success()) {
            return skip(&format!("cannot build {driver} against OTP's header"));
        }
    }
    Some(())
}

/// The drivers of `examples/drivers` the tests load.
pub const DRIVERS: [&str; 4] = ["echo_drv", "term_drv", "crash_drv", "busy_drv"];

/// The lines `child` prints, until it exits or `limit` passes (then it is killed).
pub fn lines_of(mut child: Child, limit: Duration) -> Vec<String> {
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

pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Definitions the comparison scripts share, `M` being `ddll_remote` or `ddll_local`: `P`
/// prints a term with its identifiers named (the ports and pids a script named with `Name`,
/// `self`, else whether they are of the ddll node / this node), so that the two runs print
/// the same lines when they behave the same; `Try` shows an exception as `{Class, Reason}`;
/// `Recv` shows the next message, or `timeout`.
pub const SCRIPT_PRELUDE: &str = r#"
    logger:remove_handler(default),
    Show = fun Show(X) when is_port(X) ->
                   case get({name, X}) of undefined -> {port, node(X) =:= N}; Nm -> Nm end;
               Show(X) when X =:= self() -> self;
               Show(X) when is_pid(X) ->
                   case get({name, X}) of undefined -> {pid, node(X) =:= node()}; Nm -> Nm end;
               Show(X) when is_reference(X) -> ref;
               Show([H | T]) -> [Show(H) | Show(T)];
               Show(X) when is_tuple(X) -> list_to_tuple(Show(tuple_to_list(X)));
               Show(X) when is_map(X) -> maps:from_list(Show(maps:to_list(X)));
               Show(X) -> X
           end,
    P = fun(T) -> io:format("~p~n", [Show(T)]) end,
    Try = fun(F) -> try F() catch C:R -> {C, R} end end,
    Name = fun(X, Nm) -> put({name, X}, Nm), X end,
    Recv = fun(Ms) -> receive Msg -> Show(Msg) after Ms -> timeout end end,
"#;

/// `erl -noshell -sname beamPID_EPMD` on loopback with `cookie`, `ERL_EPMD_PORT` at `epmd`
/// and `dir` on its code path, its standard output piped; the caller adds `-eval`.
pub fn erl_command(epmd: u16, cookie: &str, dir: &Path) -> Command {
    let mut erl = Command::new("erl");
    erl.args(["-noshell", "-sname"])
        .arg(format!("beam{}_{epmd}", std::process::id()))
        .args(["-setcookie", cookie])
        .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-pa"])
        .arg(dir)
        .env("ERL_EPMD_PORT", epmd.to_string())
        .stdout(Stdio::piped());
    erl
}
