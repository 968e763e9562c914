%% @doc Remote echo round trips (`cargo xtask node-bench'): a BEAM process sends 64 bytes to
%% an `echo_drv' port hosted elsewhere and waits for them to come back, two ways, in turns:
%%
%%   ddll: the port is on a ddll node: `ddll_remote:port_command/2' (a call: request, reply)
%%         and the port's `{Port, {data, D}}' message, over distribution;
%%   BEAM: the port is on a peer BEAM node, owned by a process there (`peer/1') that echoes:
%%         `{Echo, Peer} ! {self(), D}', its port_command and data message, its send back.
%%
%% `main([DdllNode, PeerNode, DriverDir, Rounds, Turns])' prints per turn
%% `ddll_round_trips_per_s: F' and `beam_round_trips_per_s: F', then halts. With
%% `[..., OtherNode, OtherModule]' after them, each turn also times a second ddll node (another
%% build) through its own `ddll_remote' (compiled as OtherModule) and prints
%% `other_round_trips_per_s: F'.
-module(node_echo_bench).
-export([main/1, peer/1]).

-define(ECHO, node_echo_bench_echo).

main([DdllNode0, PeerNode0, DriverDir, Rounds0, Turns0 | Other0]) ->
    DdllNode = list_to_atom(DdllNode0),
    PeerNode = list_to_atom(PeerNode0),
    Rounds = list_to_integer(Rounds0),
    Turns = list_to_integer(Turns0),
    Data = binary:copy(<<"x">>, 64),
    ok = wait_for({?ECHO, PeerNode}, 100),
    Ddll = {"ddll", ddll_remote, open_echo(DdllNode, ddll_remote, DriverDir)},
    Others = case Other0 of
                 [OtherNode, OtherModule0] ->
                     OtherModule = list_to_atom(OtherModule0),
                     Node = list_to_atom(OtherNode),
                     [{"other", OtherModule, open_echo(Node, OtherModule, DriverDir)}];
                 [] ->
                     []
             end,
    Peer = {?ECHO, PeerNode},
    Sides = [Ddll | Others],
    [ddll_loop(M, Port, Data, 2000) || {_, M, Port} <- Sides],  % warm-up
    peer_loop(Peer, Data, 2000),
    lists:foreach(
      fun(_) ->
              [io:format("~s_round_trips_per_s: ~.1f~n",
                         [Tag, per_second(fun() -> ddll_loop(M, Port, Data, Rounds) end,
                                          Rounds)])
               || {Tag, M, Port} <- Sides],
              io:format("beam_round_trips_per_s: ~.1f~n",
                        [per_second(fun() -> peer_loop(Peer, Data, Rounds) end, Rounds)])
      end,
      lists:seq(1, Turns)),
    [true = M:port_close(Port) || {_, M, Port} <- Sides],
    erlang:halt(0).

%% An echo_drv port on the ddll node Node, through Module (a ddll_remote).
open_echo(Node, Module, DriverDir) ->
    ok = wait_for({ddll, Node}, 100),
    ok = Module:load_driver(Node, DriverDir, echo_drv),
    Module:open_port(Node, {spawn_driver, "echo_drv"}, [binary]).

per_second(Loop, Rounds) ->
    T0 = erlang:monotonic_time(nanosecond),
    Loop(),
    T1 = erlang:monotonic_time(nanosecond),
    Rounds * 1.0e9 / (T1 - T0).

ddll_loop(_Module, _Port, _Data, 0) ->
    ok;
ddll_loop(Module, Port, Data, N) ->
    true = Module:port_command(Port, Data),
    receive
        {Port, {data, _}} -> ddll_loop(Module, Port, Data, N - 1)
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
