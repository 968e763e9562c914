%% @doc The echo round trip under real BEAM, the figure ddll's `echo' bench is compared with
%% (`cargo xtask echo-bench'): port_command of 64 bytes to `echo_drv' (binary mode), the
%% driver's `output' echoes them with `driver_output', the owner receives the message.
%%
%% `ddll_echo_bench:main([DriverDir, Rounds, Repeats])' prints one line per repeat,
%% `ns_per_round_trip: F', and exits 0.
-module(ddll_echo_bench).
-export([main/1]).

main([DriverDir, Rounds0, Repeats0]) ->
    Rounds = list_to_integer(Rounds0),
    Repeats = list_to_integer(Repeats0),
    ok = erl_ddll:load_driver(DriverDir, echo_drv),
    Port = open_port({spawn_driver, "echo_drv"}, [binary]),
    Data = binary:copy(<<"x">>, 64),
    loop(Port, Data, 10000),  % warm-up
    lists:foreach(
      fun(_) ->
              T0 = erlang:monotonic_time(nanosecond),
              loop(Port, Data, Rounds),
              T1 = erlang:monotonic_time(nanosecond),
              io:format("ns_per_round_trip: ~.1f~n", [(T1 - T0) / Rounds])
      end,
      lists:seq(1, Repeats)),
    port_close(Port),
    erlang:halt(0).

loop(_Port, _Data, 0) ->
    ok;
loop(Port, Data, N) ->
    true = port_command(Port, Data),
    receive
        {Port, {data, _}} -> loop(Port, Data, N - 1)
    end.
