%% The timer and async loops of crates/ddll/benches/timer_async.rs, under BEAM, on the same
%% timer_drv.so / async_drv.so (the drivers time the loops themselves).
%%   usage: erl -noshell -pa EBIN -eval 'timer_async_bench:main(["DIR", "ROUNDS", "N"])'
%% Prints one line per loop: "NAME MEDIAN_NS MIN_NS" (per operation, over ROUNDS rounds of N).
-module(timer_async_bench).
-export([main/1]).

main([DriverDir, RoundsText, NText]) ->
    Rounds = list_to_integer(RoundsText),
    N = list_to_integer(NText),
    ok = erl_ddll:load(DriverDir, timer_drv),
    ok = erl_ddll:load(DriverDir, async_drv),
    T = open_port({spawn_driver, "timer_drv"}, []),
    A = open_port({spawn_driver, "async_drv"}, []),
    Report = fun(Name, Round) ->
        %% One warm-up round, then the measured ones.
        _ = Round(),
        Sorted = lists:sort([Round() / N || _ <- lists:seq(1, Rounds)]),
        Median = lists:nth((length(Sorted) + 1) div 2, Sorted),
        io:format("~s ~.1f ~.1f~n", [Name, Median, hd(Sorted)])
    end,
    Report("timer_set_read_cancel", fun() -> control(T, 7, N) end),
    Report("async_submit", fun() ->
        Ns = control(A, 9, N),
        %% Wait for the backlog (one thread: the job queued last is ready last).
        _ = elapsed(A, 10, 1),
        Ns
    end),
    Report("async_submit_to_ready", fun() -> elapsed(A, 10, N) end),
    Report("async_chain", fun() -> elapsed(A, 11, N) end),
    halt().

control(Port, Op, N) ->
    list_to_integer(erlang:port_control(Port, Op, integer_to_list(N))).

elapsed(Port, Op, N) ->
    "ok" = erlang:port_control(Port, Op, integer_to_list(N)),
    receive
        {Port, {data, "elapsed " ++ Ns}} -> list_to_integer(Ns)
    after 60000 ->
        exit(no_elapsed_message)
    end.
