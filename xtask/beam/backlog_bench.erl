%% BEAM's half of `cargo xtask backlog-bench': the workloads of ddll's
%% `crates/ddll/examples/backlog_bench.rs', measured the same way on the same
%% backlog_drv.so / echo_drv.so, one workload per run.
%% Usage: erl -noshell -pa EBIN -eval 'backlog_bench:main(["DRIVER_DIR", "WORKLOAD"])'
%% Prints `figure NAME VALUE' lines.
-module(backlog_bench).
-export([main/1]).

-define(CHUNK, 10000).

main([Dir, Workload]) ->
    ok = erl_ddll:load(Dir, backlog_drv),
    ok = erl_ddll:load(Dir, echo_drv),
    run(list_to_atom(Workload)),
    halt(0).

figure(Name, Value) ->
    io:format("figure ~s ~.1f~n", [Name, float(Value)]).

%% The output workloads: backlog_drv's control code and the figure's name.
outputs() ->
    [{2, "output_64_ns"}, {3, "outputv_3x64_ns"}, {4, "output_term_tcp_ns"}].

median(L) ->
    lists:nth(length(L) div 2 + 1, lists:sort(L)).

%% Resident memory of the emulator, bytes.
resident_bytes() ->
    {ok, Statm} = file:read_file("/proc/self/statm"),
    [_, Pages | _] = string:lexemes(binary_to_list(Statm), " \n"),
    list_to_integer(Pages) * 4096.

run(tokens) ->
    Port = open_port({spawn_driver, "backlog_drv"}, [binary]),
    Chunk = 3000,
    Run = fun() ->
                  median([begin
                              T0 = erlang:monotonic_time(nanosecond),
                              tokens(Port, Chunk),
                              (erlang:monotonic_time(nanosecond) - T0) / Chunk
                          end || _ <- lists:seq(1, 30)])
          end,
    _ = Run(),
    figure("tokens_receive_ns", Run());
run(megaco) ->
    %% erlang-megaco's own scanner, driven as megaco_flex_scanner:scan/2 drives it.
    ok = erl_ddll:load_driver(code:priv_dir(megaco) ++ "/lib", "megaco_flex_scanner_drv"),
    Port = open_port({spawn, "megaco_flex_scanner_drv"}, [binary]),
    Chunk = 3000,
    Run = fun() ->
                  median([begin
                              T0 = erlang:monotonic_time(nanosecond),
                              scans(Port, megaco_text(), Chunk),
                              (erlang:monotonic_time(nanosecond) - T0) / Chunk
                          end || _ <- lists:seq(1, 30)])
          end,
    _ = Run(),
    figure("megaco_scan_receive_ns", Run());
run(output) ->
    [figure(Name, median(output_chunks(Code, 20))) || {Code, Name} <- outputs()];
run(Alone) when Alone =:= output_64; Alone =:= outputv; Alone =:= output_term ->
    %% One of them in a fresh emulator: what it costs on memory the others did not free.
    [{Code, Name}] = [O || {Nth, O} <- lists:zip([output_64, outputv, output_term], outputs()),
                           Nth =:= Alone],
    figure(Name ++ "_alone", median(output_chunks(Code, 20)));
run(queued) ->
    Self = self(),
    Before = resident_bytes(),
    Chunks = 100,
    %% A fresh owner that never receives; it reports and waits to be killed.
    Pid = spawn(fun() ->
                        Port = open_port({spawn_driver, "backlog_drv"}, [binary]),
                        Times = [call_loop(Port, 2) || _ <- lists:seq(1, Chunks)],
                        Self ! {times, Times},
                        %% Then, told to, takes the backlog, oldest first, reading each
                        %% message's data (the `take' message is found behind it, untimed).
                        receive take -> ok end,
                        T0 = erlang:monotonic_time(nanosecond),
                        Taken = take(Port, 0),
                        Self ! {taken, (erlang:monotonic_time(nanosecond) - T0) / Taken}
                end),
    Times = receive {times, T} -> T end,
    After = resident_bytes(),
    figure("queued_64_bytes_per_message", (After - Before) / (Chunks * ?CHUNK)),
    figure("queued_first_10k_ns", hd(Times)),
    figure("queued_last_10x10k_ns", median(lists:nthtail(Chunks - 10, Times))),
    Pid ! take,
    receive {taken, PerMessage} -> figure("queued_taken_ns", PerMessage) end;
run(echo100) ->
    Ports = 100,
    Rounds = 5000,
    Self = self(),
    Data = binary:copy(<<"x">>, 64),
    Owners = [spawn(fun() ->
                            Port = open_port({spawn_driver, "echo_drv"}, [binary]),
                            Self ! {ready, self()},
                            receive go -> ok end,
                            echo(Port, Data, Rounds),
                            Self ! {done, self()}
                    end) || _ <- lists:seq(1, Ports)],
    [receive {ready, P} -> ok end || P <- Owners],
    T0 = erlang:monotonic_time(nanosecond),
    [P ! go || P <- Owners],
    [receive {done, P} -> ok end || P <- Owners],
    figure("echo_100_ports_ns",
           (erlang:monotonic_time(nanosecond) - T0) / (Ports * Rounds));
run(idle) ->
    First = open_port({spawn_driver, "backlog_drv"}, []),
    N = 10000,
    Before = resident_bytes(),
    Ports = [open_port({spawn_driver, "backlog_drv"}, []) || _ <- lists:seq(1, N)],
    After = resident_bytes(),
    figure("idle_port_bytes", (After - Before) / N),
    length([First | Ports]).

take(Port, N) ->
    receive
        {Port, {data, Data}} when byte_size(Data) =:= 64 -> take(Port, N + 1)
    after 0 -> N
    end.

%% The same bytes as MEGACO_TEXT in ddll's half.
megaco_text() ->
    <<"MEGACO/1 [124.124.124.222]:55555\nTransaction = 9998 {\n  Context = - {\n"
      "    ServiceChange = ROOT {\n      Services {\n        Method = Restart,\n"
      "        ServiceChangeAddress = 55555,\n        Profile = ResGW/1,\n"
      "        Reason = \"901 mg col boot\"\n      }\n    }\n  }\n}\n">>.

scans(_Port, _Text, 0) -> ok;
scans(Port, Text, N) ->
    [] = erlang:port_control(Port, $s, Text),
    receive
        {tokens, Tokens, _} when length(Tokens) =:= 41 -> scans(Port, Text, N - 1)
    end.

tokens(_Port, 0) -> ok;
tokens(Port, N) ->
    [] = erlang:port_control(Port, 1, []),
    receive
        [_ | _] = Tokens when length(Tokens) =:= 60 -> tokens(Port, N - 1)
    end.

%% ns per call in the driver of each of Chunks chunks of loop Code, on a fresh owner that
%% never receives.
output_chunks(Code, Chunks) ->
    Self = self(),
    Pid = spawn(fun() ->
                        Port = open_port({spawn_driver, "backlog_drv"}, [binary]),
                        Self ! {times, [call_loop(Port, Code) || _ <- lists:seq(1, Chunks)]},
                        receive never -> ok end
                end),
    receive
        {times, Times} ->
            exit(Pid, kill),
            Times
    end.

call_loop(Port, Code) ->
    Reply = erlang:port_control(Port, Code, integer_to_list(?CHUNK)),
    list_to_integer(Reply) / ?CHUNK.

echo(_Port, _Data, 0) -> ok;
echo(Port, Data, N) ->
    true = port_command(Port, Data),
    receive {Port, {data, _}} -> echo(Port, Data, N - 1) end.
