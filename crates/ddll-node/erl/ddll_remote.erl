%% ddll_remote: use drivers hosted by a ddll node (crates/ddll-node) from BEAM code.
%%
%% Each function returns and raises what the erl_ddll / erlang function of the same name
%% does locally. A port is the ddll node's own port identifier (#Port<Node.N>); its owner,
%% the calling process, gets {Port, {data, D}} and {'EXIT', Port, Reason} messages as a
%% trapping owner of a local port would. If the ddll node goes away during a call, the call
%% raises noconnection.
-module(ddll_remote).
-export([load_driver/3, unload_driver/2, open_port/3, port_command/2, port_control/3,
         port_call/3, port_close/1, port_info/1]).

load_driver(Node, Path, Name) -> call(Node, erl_ddll, load_driver, [Path, Name]).

unload_driver(Node, Name) -> call(Node, erl_ddll, unload_driver, [Name]).

open_port(Node, PortName, Opts) -> call(Node, erlang, open_port, [PortName, Opts]).

port_command(Port, Data) -> call(node_of(Port), erlang, port_command, [Port, Data]).

port_control(Port, Op, Data) -> call(node_of(Port), erlang, port_control, [Port, Op, Data]).

port_call(Port, Op, Data) -> call(node_of(Port), erlang, port_call, [Port, Op, Data]).

port_close(Port) -> call(node_of(Port), erlang, port_close, [Port]).

port_info(Port) -> call(node_of(Port), erlang, port_info, [Port]).

node_of(Port) when is_port(Port) -> node(Port);
node_of(_) -> erlang:error(badarg).

%% A gen-style call: the monitor's reference tags the reply, and a lost connection ends the
%% wait with noconnection.
call(Node, Module, Function, Args) when is_atom(Node) ->
    Ref = erlang:monitor(process, {ddll, Node}),
    {ddll, Node} ! {call, self(), Ref, {Module, Function, Args}},
    receive
        {Ref, {ok, Result}} ->
            erlang:demonitor(Ref, [flush]),
            Result;
        {Ref, {error, Reason}} ->
            erlang:demonitor(Ref, [flush]),
            erlang:error(Reason, Args);
        {'DOWN', Ref, process, _, Reason} ->
            erlang:error(Reason, Args)
    end;
call(_, _, _, Args) ->
    erlang:error(badarg, Args).
