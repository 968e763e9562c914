%% @doc Remote echo round trips (`cargo xtask node-bench'): a BEAM process sends 64 bytes to
%% an `echo_drv' port hosted elsewhere and waits for them to come back, two ways, in turns:
%%
%%   ddll: the port is on a ddll node: `ddll_remote:port_command/2' (a call: request, reply)
%%         and the port's `{Port, {data, D}}' message, over distribution;
%%   BEAM: the port is on a peer BEAM node, owned by a process there (`peer/1') that echoes:
%%         `{Echo, Peer} ! {self(), D}', its port_command and data message, its send back.
%%
%% `main([DdllNode, PeerNode, DriverDir, Rounds, Turns])' prints per turn
%% `ddll_round_trips_per_s: F' and `beam_round_trips_per_s: F', then halts.
-module(node_echo_bench).
-export([main/1, peer/1]).

-define(ECHO, node_echo_bench_echo).

main([DdllNode0, PeerNode0, DriverDir, Rounds0, Turns0]) ->
    DdllNode = list_to_atom(DdllNode0),
    PeerNode = list_to_atom(PeerNode0),
    Rounds = list_to_integer(Rounds0),
    Turns = list_to_integer(Turns0),
    Data = binary:copy(<<"x">>, 64),
    ok = wait_for({ddll, DdllNode}, 100),
    ok = wait_for({?ECHO, PeerNode}, 100),
    ok = ddll_remote:load_driver(DdllNode, DriverDir, echo_drv),
    Port = ddll_remote:open_port(DdllNode, {spawn_driver, "echo_drv"}, [binary]),
    Peer = {?ECHO, PeerNode},
    ddll_loop(Port, Data, 2000),  % warm-up
    peer_loop(Peer, Data, 2000),
    lists:foreach(
      fun(_) ->
              io:format("ddll_round_trips_per_s: ~.1f~n",
                        [per_second(fun() -> ddll_loop(Port, Data, Rounds) end, Rounds)]),
              io:format("beam_round_trips_per_s: ~.1f~n",
                        [per_second(fun() -> peer_loop(Peer, Data, Rounds) end, Rounds)])
      end,
      lists:seq(1, Turns)),
    true = ddll_remote:port_close(Port),
    erlang:halt(0).

per_second(Loop, Rounds) ->
    T0 = erlang:monotonic_time(nanosecond),
    Loop(),
    T1 = erlang:monotonic_time(nanosecond),
    Rounds * 1.0e9 / (T1 - T0).

ddll_loop(_Port, _Data, 0) ->
    ok;
ddll_loop(Port, Data, N) ->
    true = ddll_remote:port_command(Port, Data),
    receive
        {Port, {data, _}} -> ddll_loop(Port, Data, N - 1)
    end.

peer_loop(_Peer, _Data, 0) ->
    ok;
peer_loop(Peer, Data, N) ->
    Peer ! {self(), Data},
    receive
        {echoed, _} -> peer_loop(Peer, Data, N - 1)
    end.

%% Waits until the process registered as Name on Node answers a monitor (Tries times 100 ms).
wait_for(_, 0) ->
    timeout;
wait_for(Dest, Tries) ->
    Ref = erlang:monitor(process, Dest),
    receive
        {'DOWN', Ref, process, _, _} ->
            timer:sleep(100),
            wait_for(Dest, Tries - 1)
    after 200 ->
            erlang:demonitor(Ref, [flush]),
            ok
    end.

%% The peer node's echo process: owns an echo_drv port and echoes through it.
peer([DriverDir]) ->
    ok = erl_ddll:load_driver(DriverDir, echo_drv),
    Port = open_port({spawn_driver, "echo_drv"}, [binary]),
    register(?ECHO, self()),
    echo(Port).

echo(Port) ->
    receive
        {From, Data} ->
            true = port_command(Port, Data),
            receive
                {Port, {data, D}} -> From ! {echoed, D}
            end,
            echo(Port)
    end.
