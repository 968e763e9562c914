//! A ddll node used by a real BEAM node (OTP 25) through `ddll_remote`, on loopback only:
//! each test runs its own EPMD on a port of its own and kills it at the end.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{build, erl_command, lines_of, wait_until, workspace, Epmd, COOKIE, SCRIPT_PRELUDE};

use ddll_node::{short_name, Node, NodeOptions};

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
        erl_command(self.epmd.port, cookie, &self.dir)
            .args(["-eval", &script])
            .spawn()
            .expect("erl runs")
    }

    /// `erl` without distribution running `script` with `N` its own node (`nonode@nohost`).
    fn erl_alone(&self, script: &str) -> Child {
        let script = format!(
            "process_flag(trap_exit, true), N = node(), Dir = \"{}\", {script}",
            self.dir.display()
        );
        Command::new("erl")
            .args(["-noshell", "-pa"])
            .arg(&self.dir)
            .args(["-eval", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("erl runs")
    }
}

/// Runs `script` through `ddll_remote` on the ddll node and through `ddll_local` by a BEAM
/// without distribution (the expectation), both after [`SCRIPT_PRELUDE`], and checks that the
/// local run reached its last line, `end`, and that both printed the same lines.
fn assert_remote_does_as_local(s: &Setup, script: &str) {
    let remote = format!("M = ddll_remote, {SCRIPT_PRELUDE} {script}");
    let local = format!("M = ddll_local, {SCRIPT_PRELUDE} {script}");
    let remote = lines_of(s.erl(COOKIE, &remote), Duration::from_secs(90));
    let local = lines_of(s.erl_alone(&local), Duration::from_secs(90));
    assert_eq!(
        local.last().map(String::as_str),
        Some("end"),
        "the local run did not finish: {local:#?}"
    );
    assert_eq!(remote, local);
}

/// Every `ddll_remote` function returns and raises, and the owner receives, what the
/// `erlang` / `erl_ddll` function of the same name gives on a local port of BEAM: the same
/// script runs both ways and prints the same lines.
#[test]
fn ddll_remote_does_what_beam_does_locally() {
    let Some(s) = setup("roundtrip") else { return };
    let script = r#"
        P(M:load_driver(N, Dir, echo_drv)),
        P(M:load_driver(N, Dir, term_drv)),
        P(M:load_driver(N, Dir, no_such_drv)),
        P(Try(fun() -> M:load_driver(N, 42, echo_drv) end)),
        P(Try(fun() -> M:load_driver(N, Dir, "echo_drv") end)),
        P1 = Name(M:open_port(N, {spawn_driver, "echo_drv"}, [binary]), p1),
        P({is_port(P1), node(P1) =:= N}),
        P(M:port_command(P1, <<"hello">>)),
        P(Recv(5000)),
        P(M:port_command(P1, ["io", $l, <<"ist">>])),
        P(Recv(5000)),
        P(M:port_command(P1, "twice:ab")),
        P(Recv(5000)),
        P(Recv(5000)),
        P(M:port_control(P1, 2, "abc")),
        P(M:port_control(P1, 3, <<"four">>)),
        P(Try(fun() -> M:port_control(P1, 99, "") end)),
        P(Try(fun() -> M:port_control(P1, -1, "") end)),
        P(Try(fun() -> M:port_control(P1, 2, an_atom) end)),
        P(M:port_call(P1, 2, {x, [1, 2], self(), P1, #{a => 1.5}, make_ref()})),
        P(M:port_call(P1, 3, [])),
        P(Try(fun() -> M:port_call(P1, 99, x) end)),
        P([{K, case K of id -> is_integer(V); _ -> V end} || {K, V} <- M:port_info(P1)]),
        P(Try(fun() -> M:port_command(P1, an_atom) end)),
        P(M:port_command(P1, "fail_atom")),
        P(Recv(5000)),
        P(Recv(300)),
        P(Try(fun() -> M:port_command(P1, <<"late">>) end)),
        P(Try(fun() -> M:port_control(P1, 2, "x") end)),
        P(Try(fun() -> M:port_call(P1, 2, x) end)),
        P(Try(fun() -> M:port_close(P1) end)),
        P(M:port_info(P1)),
        P2 = Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), p2),
        P(M:port_command(P2, "exit_posix")),
        P(Recv(5000)),
        P3 = Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), p3),
        P(M:port_close(P3)),
        P(Recv(500)),
        P(Try(fun() -> M:port_close(P3) end)),
        P(Try(fun() -> M:open_port(N, {spawn_driver, "no_such_drv"}, []) end)),
        P(Try(fun() -> M:open_port(N, {spawn_driver, "echo_drv"}, [no_such_option]) end)),
        P(Try(fun() -> M:open_port(N, {spawn_driver, an_atom}, []) end)),
        T = Name(M:open_port(N, {spawn_driver, "term_drv"}, []), t),
        [begin P({C, M:port_control(T, 1, C)}), P(Recv(1000)) end
         || C <- ["port", "caller_pid", "pid", "tcp", "map", "map_port", "nested", "float", "ext2term",
                  "binary", "string_cons", "int_big", "uint64", "bad_port", "bad_pid"]],
        P(M:port_control(T, 3, "tuple")),
        P(Recv(5000)),
        P(M:port_command(T, "caller_pid")),
        P(Recv(5000)),
        P(Recv(5000)),
        P(M:port_close(T)),
        P(Recv(500)),
        NotTrapping = fun(Cmd) ->
            Me = self(),
            {Owner, Ref} = spawn_monitor(fun() ->
                Port = M:open_port(N, {spawn_driver, "echo_drv"}, []),
                true = M:port_command(Port, Cmd),
                receive after 1000 -> ok end,
                Me ! {alive, self(), erlang:process_info(self(), messages)},
                receive after 5000 -> ok end
            end),
            Name(Owner, owner),
            Seen = receive
                       {'DOWN', Ref, process, Owner, Why} -> {down, Why};
                       {alive, Owner, Msgs} -> {alive, Msgs}
                   after 5000 -> timeout
                   end,
            exit(Owner, kill),
            receive {'DOWN', Ref, process, Owner, _} -> ok after 5000 -> ok end,
            Seen
        end,
        P(NotTrapping("fail_atom")),
        P(NotTrapping("exit")),
        P(NotTrapping("fail_posix")),
        P(NotTrapping("hello")),
        Me = self(),
        spawn(fun() -> Me ! {owned, M:open_port(N, {spawn_driver, "echo_drv"}, [])} end),
        Owned = receive {owned, O} -> O after 5000 -> timeout end,
        timer:sleep(300),
        P(M:port_info(Owned)),
        P(M:unload_driver(N, echo_drv)),
        P(M:unload_driver(N, term_drv)),
        P(Try(fun() -> M:unload_driver(N, echo_drv) end)),
        P(Recv(300)),
        P(lists:member(N, nodes(hidden)) orelse N =:= node()),
        io:format("end~n"),
        halt()."#;
    assert_remote_does_as_local(&s, script);
    assert!(s.rt.ports().is_empty(), "{:?}", s.rt.ports());
    assert!(s.rt.loaded_drivers().is_empty());
}

/// A port's messages keep their order: output a timer makes right after a command's output
/// reaches the owner after it, round after round; and `port_command/2` raises `badarg` for a
/// port another process closed, as BEAM's own do (the same script through `ddll_local`).
#[test]
fn port_output_keeps_its_order_and_a_port_closed_by_another_process_refuses_commands() {
    let Some(s) = setup("order") else { return };
    let script = r#"
        P(M:load_driver(N, Dir, echo_drv)),
        E = Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), e),
        OutOfOrder = fun Rounds(0, Seen) -> Seen;
                         Rounds(I, Seen) ->
                             Tag = integer_to_list(I),
                             true = M:port_command(E, "then_timer:" ++ Tag),
                             First = receive F -> F after 5000 -> timeout end,
                             Second = receive S -> S after 5000 -> timeout end,
                             case {First, Second} of
                                 {{E, {data, Tag}}, {E, {data, "timeout"}}} ->
                                     Rounds(I - 1, Seen);
                                 Pair ->
                                     Rounds(I - 1, [Pair | Seen])
                             end
                     end,
        P({out_of_order, OutOfOrder(500, [])}),
        C = Name(M:open_port(N, {spawn_driver, "echo_drv"}, []), c),
        Me = self(),
        spawn(fun() -> Me ! {closed, M:port_close(C)} end),
        P(receive {closed, R} -> R after 5000 -> timeout end),
        P(Recv(5000)),
        P(Try(fun() -> M:port_command(C, "late") end)),
        P(Recv(300)),
        P(M:port_close(E)),
        P(Recv(500)),
        P(M:unload_driver(N, echo_drv)),
        io:format("end~n"),
        halt()."#;
    assert_remote_does_as_local(&s, script);
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

/// A driver callback that blocks holds up its caller only: requests run on the connection's
/// reader when their proxy is idle, and another thread takes over the reading when one holds
/// it up. While one process of the BEAM node waits 4 s on a `port_control` that sleeps in the
/// driver, another echoes through its own port over the same connection.
#[test]
fn a_blocking_driver_callback_holds_up_its_caller_only() {
    let Some(s) = setup("blocking") else { return };
    let script = r#"
        ok = ddll_remote:load_driver(N, Dir, busy_drv),
        ok = ddll_remote:load_driver(N, Dir, echo_drv),
        Me = self(),
        spawn(fun() ->
            Slow = ddll_remote:open_port(N, {spawn_driver, "busy_drv"}, []),
            Me ! started,
            Me ! {slow, ddll_remote:port_control(Slow, 6, "4000")}
        end),
        receive started -> ok end,
        timer:sleep(300),
        T0 = erlang:monotonic_time(millisecond),
        Echo = ddll_remote:open_port(N, {spawn_driver, "echo_drv"}, [binary]),
        true = ddll_remote:port_command(Echo, <<"meanwhile">>),
        Echoed = receive {Echo, {data, D}} -> D after 10000 -> timeout end,
        Waited = erlang:monotonic_time(millisecond) - T0,
        io:format("~p~n", [{Echoed, Waited < 2500}]),
        io:format("~p~n", [receive {slow, R} -> R after 10000 -> timeout end]),
        io:format("~p~n", [receive {slow, R2} -> R2 after 0 -> none end]),
        halt()."#;
    let lines = lines_of(s.erl(COOKIE, script), Duration::from_secs(60));
    assert_eq!(lines, ["{<<\"meanwhile\">>,true}", "\"ok\"", "none"]);
}

/// The node connects out: it sends to a BEAM node it has no connection with (EPMD lookup,
/// the initiating side of the handshake), the BEAM process answers a runtime process and uses
/// `ddll_remote` over that same connection; a BEAM node of another cookie refuses it.
#[test]
fn the_node_connects_to_a_beam_node() {
    let Some(s) = setup("connect") else { return };
    let beam_name = ddll_node::short_name(&format!("beam{}_{}", std::process::id(), s.epmd.port));

    let mut other = s.erl(
        "not_the_cookie",
        r#"register(listener, self()), io:format("ready~n"), receive after 20000 -> halt() end."#,
    );
    let mut ready = String::new();
    let _ = BufReader::new(other.stdout.take().expect("piped")).read_line(&mut ready);
    assert_eq!(ready, "ready\n");
    let refused = s.node.connect(&beam_name);
    assert!(
        refused.is_err(),
        "a node of another cookie accepted: {refused:?}"
    );
    let _ = other.kill();
    let _ = other.wait();
    // Unregistered from EPMD once gone: the next erl takes the same name.
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", s.epmd.port)).is_ok()
            && s.node.connect(&beam_name).is_err()
    }));

    let script = r#"
        From ! {reply, self(), node()},
        P(receive thanks -> thanks after 10000 -> timeout end),
        P({node(From) =:= N, lists:member(N, nodes(hidden))}),
        P(ddll_remote:load_driver(N, Dir, echo_drv)),
        Port = ddll_remote:open_port(N, {spawn_driver, "echo_drv"}, [binary]),
        P(ddll_remote:port_command(Port, <<"over the connection ddll made">>)),
        P(Recv(5000)),
        P(ddll_remote:port_close(Port)),
        P(Recv(5000)),
        P(ddll_remote:unload_driver(N, echo_drv)),"#;
    let script = format!(
        "register(listener, self()), io:format(\"ready~n\"), \
         receive {{hello, From}} -> {SCRIPT_PRELUDE} {script} ok \
         after 20000 -> io:format(\"no hello~n\") end, halt()."
    );
    let mut erl = s.erl(COOKIE, &script);
    let mut stdout = BufReader::new(erl.stdout.take().expect("piped"));
    let mut ready = String::new();
    let _ = stdout.read_line(&mut ready);
    assert_eq!(ready, "ready\n");
    let me = s.rt.spawn(None);
    let hello = ddll::Term::Tuple(vec![ddll::Term::atom("hello"), ddll::Term::Pid(*me.pid())]);
    s.node
        .send_named(&beam_name, "listener", &hello)
        .expect("the node connects and sends");
    let reply = me
        .receive(Some(Duration::from_secs(20)))
        .map(|m| m.into_term())
        .expect("the BEAM process answers");
    let ddll::Term::Tuple(items) = &reply else {
        panic!("{reply:?}")
    };
    let [tag, ddll::Term::Pid(beam_pid), ddll::Term::Atom(node)] = items.as_slice() else {
        panic!("{reply:?}")
    };
    assert_eq!(*tag, ddll::Term::atom("reply"));
    assert_eq!(node.as_str(), beam_name);
    assert_eq!(beam_pid.node.as_str(), beam_name);
    // A pid of the BEAM node, sent to as `Pid ! Message` over the same connection.
    s.node
        .send(*beam_pid, &ddll::Term::atom("thanks"))
        .expect("sends to the pid");
    erl.stdout = Some(stdout.into_inner());
    let lines = lines_of(erl, Duration::from_secs(30));
    assert_eq!(
        lines,
        [
            "thanks",
            "{true,true}",
            "ok",
            "true",
            "{{port,true},{data,<<\"over the connection ddll made\">>}}",
            "true",
            "{'EXIT',{port,true},normal}",
            "ok",
        ]
    );
}
