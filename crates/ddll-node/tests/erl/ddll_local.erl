%% ddll_local: ddll_remote's functions done by the local BEAM itself (the node argument is
%% ignored). The node tests run one script through both modules and compare what they print:
%% what BEAM does locally is the expectation of what ddll does remotely.
-module(ddll_local).
-export([load_driver/3, unload_driver/2, open_port/3, port_command/2, port_control/3,
         port_call/3, port_close/1, port_info/1]).

load_driver(_Node, Path, Name) -> erl_ddll:load_driver(Path, Name).

unload_driver(_Node, Name) -> erl_ddll:unload_driver(Name).

open_port(_Node, PortName, Opts) -> erlang:open_port(PortName, Opts).

port_command(Port, Data) -> erlang:port_command(Port, Data).

port_control(Port, Op, Data) -> erlang:port_control(Port, Op, Data).

port_call(Port, Op, Data) -> erlang:port_call(Port, Op, Data).

port_close(Port) -> erlang:port_close(Port).

port_info(Port) -> erlang:port_info(Port).
