%% ddll_remote: use drivers hosted by a ddll node (crates/ddll-node) from BEAM code.
%%
%% Each function returns and raises what the erl_ddll / erlang function of the same name
%% does locally. A port is the ddll node's own port identifier (#Port<Node.N>); its owner,
%% the calling process, gets {Port, {data, D}}, the driver's terms, and the port's exit as
%% the owner of a local port would: {'EXIT', Port, Reason} when it traps exits, else (for a
%% reason other than normal) it exits with Reason. When the ddll node goes away, the reason
%% is noconnection. If the ddll node goes away during a call, the call raises noconnection.
%%
%% BEAM links no process to a port of another node (distribution carries links and exit
%% signals between pids only), so the link is kept on the owner's node by an agent: a small
%% process per owner and ddll node (remembered in the owner's process dictionary under
%% {ddll_remote, agent, Node}), to which the ddll node reports the owner's port exits, and
%% which watches the ddll node for the connection's loss.
-module(ddll_remote).
-export([load_driver/3, unload_driver/2, open_port/3, port_command/2, port_control/3,
         port_call/3, port_close/1, port_info/1]).

load_driver(Node, Path, Name) -> call(Node, erl_ddll, load_driver, [Path, Name]).

unload_driver(Node, Name) -> call(Node, erl_ddll, unload_driver, [Name]).

open_port(Node, PortName, Opts) when is_atom(Node) ->
    ensure_agent(Node),
    call(Node, erlang, open_port, [PortName, Opts]);
open_port(_, PortName, Opts) ->
    erlang:error(badarg, [PortName, Opts]).

port_command(Port, Data) -> call(node_of(Port), erlang, port_command, [Port, Data]).

port_control(Port, Op, Data) -> call(node_of(Port), erlang, port_control, [Port, Op, Data]).

port_call(Port, Op, Data) -> call(node_of(Port), erlang, port_call, [Port, Op, Data]).

port_close(Port) -> call(node_of(Port), erlang, port_close, [Port]).

port_info(Port) -> call(node_of(Port), erlang, port_info, [Port]).

node_of(Port) when is_port(Port) -> node(Port);
node_of(_) -> erlang:error(badarg).

%% A gen-style call. The first call of a process to Node watches {ddll, Node} with a monitor,
%% which also finds a node without ddll (noproc); later calls watch only the connection, with
%% monitor_node, which costs no message over it (a monitor costs two). A lost connection ends
%% the wait with noconnection.
call(Node, Module, Function, Args) when is_atom(Node) ->
    Served = {?MODULE, served, Node},
    case get(Served) of
        true ->
            call_watching_node(Node, {call, self(), make_ref(), {Module, Function, Args}}, Args);
        _ ->
            Ref = erlang:monitor(process, {ddll, Node}),
            {ddll, Node} ! {call, self(), Ref, {Module, Function, Args}},
            receive
                {Ref, Reply} ->
                    erlang:demonitor(Ref, [flush]),
                    put(Served, true),
                    result(Reply, Args);
                {'DOWN', Ref, process, _, Reason} ->
                    erlang:error(Reason, Args)
            end
    end;
call(_, _, _, Args) ->
    erlang:error(badarg, Args).

call_watching_node(Node, {call, _, Ref, _} = Request, Args) ->
    erlang:monitor_node(Node, true),
    {ddll, Node} ! Request,
    receive
        {Ref, Reply} ->
            erlang:monitor_node(Node, false),
            %% The connection may have gone after the reply came: its nodedown is this
            %% call's (each monitor_node gives its own), not the caller's.
            receive {nodedown, Node} -> ok after 0 -> ok end,
            result(Reply, Args);
        {nodedown, Node} ->
            erase({?MODULE, served, Node}),
            erlang:error(noconnection, Args)
    end.

result({ok, Result}, _) -> Result;
result({error, Reason}, Args) -> erlang:error(Reason, Args).

%% The calling process's agent for Node, started (and made known to the ddll node, before
%% any port of this process opens there) when it has none alive.
ensure_agent(Node) ->
    Key = {?MODULE, agent, Node},
    case get(Key) of
        Agent when is_pid(Agent) ->
            case is_process_alive(Agent) of
                true -> ok;
                false -> start_agent(Key, Node)
            end;
        _ ->
            start_agent(Key, Node)
    end.

start_agent(Key, Node) ->
    Owner = self(),
    Agent = spawn(fun() -> agent(Owner, Node) end),
    put(Key, Agent),
    {ddll, Node} ! {port_agent, Owner, Agent},
    ok.

%% The ddll node sends the agent {opened, Port} when a port of Owner opens and
%% {'EXIT', Port, Reason} when it exits (after everything the port sent Owner before). What
%% the ddll node has for Owner after an exit comes through the agent as {relay, Message},
%% in order, until the agent answers that it has dealt with the exit ({port_exit_done, Owner}).
agent(Owner, Node) ->
    OwnerRef = erlang:monitor(process, Owner),
    NodeRef = erlang:monitor(process, {ddll, Node}),
    agent_loop(Owner, Node, OwnerRef, NodeRef, []).

agent_loop(Owner, Node, OwnerRef, NodeRef, Ports) ->
    receive
        {opened, Port} ->
            agent_loop(Owner, Node, OwnerRef, NodeRef, [Port | Ports]);
        {relay, Message} ->
            Owner ! Message,
            agent_loop(Owner, Node, OwnerRef, NodeRef, Ports);
        {'EXIT', Port, Reason} when is_port(Port) ->
            port_exited(Owner, Port, Reason),
            {ddll, Node} ! {port_exit_done, Owner},
            agent_loop(Owner, Node, OwnerRef, NodeRef, lists:delete(Port, Ports));
        {'DOWN', OwnerRef, process, _, _} ->
            %% The ddll node closes the ports of a dead owner itself.
            ok;
        {'DOWN', NodeRef, process, _, Reason} ->
            lists:foreach(fun(Port) -> port_exited(Owner, Port, Reason) end,
                          lists:reverse(Ports))
    end.

%% What the exit signal of a port linked to Owner does to it. A non-trapping owner gets the
%% signal itself over a link, so that it exits as a linked process does (kill included).
port_exited(Owner, Port, Reason) ->
    case erlang:process_info(Owner, trap_exit) of
        {trap_exit, true} ->
            Owner ! {'EXIT', Port, Reason};
        {trap_exit, false} when Reason =/= normal ->
            link(Owner),
            exit(Reason);
        _ ->
            ok
    end.
