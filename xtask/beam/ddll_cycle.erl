%% @doc BEAM's load + unload cycle on a driver library, for comparison with
%% ddll's criterion bench (crates/ddll/benches/cycle.rs): try_load, then
%% try_unload with a monitor and its 'DOWN' message (the library is closed),
%% N times. Prints the mean time per cycle in microseconds.
%%
%% erl -noshell -pa EBIN -eval 'ddll_cycle:main(init:get_plain_arguments())' -extra DRIVERS [N]
-module(ddll_cycle).
-export([main/1]).

main([Dir]) ->
    main([Dir, "20000"]);
main([Dir, N0]) ->
    N = list_to_integer(N0),
    cycle(Dir, N div 10),  % warm-up
    Rounds = [element(1, timer:tc(fun() -> cycle(Dir, N) end)) / N || _ <- lists:seq(1, 5)],
    io:format("BEAM load+unload ~s/echo_drv.so: ~.2f us per cycle (best of 5 rounds of ~b: ~s)~n",
              [Dir, lists:min(Rounds), N,
               string:join([io_lib:format("~.2f", [R]) || R <- Rounds], " ")]),
    erlang:halt(0).

cycle(_Dir, 0) ->
    ok;
cycle(Dir, N) ->
    {ok, loaded} = erl_ddll:try_load(Dir, echo_drv, []),
    {ok, pending_driver, Ref} = erl_ddll:try_unload(echo_drv, [{monitor, pending_driver}]),
    receive {'DOWN', Ref, driver, echo_drv, unloaded} -> ok end,
    cycle(Dir, N - 1).
