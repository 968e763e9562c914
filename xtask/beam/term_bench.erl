%% Times erl_drv_output_term of {tcp, Port, [100 | Bin50]} under BEAM, with the
%% same driver (term_drv.so, port_control 10) and the same method as ddll's
%% `crates/ddll/benches/term_output.rs` and `cargo xtask term-bench`:
%%   in the driver: the driver's own clock around a loop of Chunk calls;
%%   delivered:     the loop plus receiving every term, on the caller's clock.
%% Usage: erl -noshell -pa EBIN -eval 'term_bench:main(["DRIVER_DIR", "CHUNKS", "CHUNK"])'
-module(term_bench).
-export([main/1]).

main([Dir, Chunks0, Chunk0]) ->
    Chunks = list_to_integer(Chunks0),
    Chunk = list_to_integer(Chunk0),
    ok = erl_ddll:load(Dir, term_drv),
    Port = open_port({spawn_driver, "term_drv"}, []),
    %% warm up
    _ = run(Port, 10, Chunk),
    Results = run(Port, Chunks, Chunk),
    {InDriver, Delivered} = lists:unzip(Results),
    io:format("beam in_driver_ns_per_call ~.1f median ~.1f~n",
              [lists:sum(InDriver) / (Chunks * Chunk), median(InDriver) / Chunk]),
    io:format("beam delivered_ns_per_call ~.1f median ~.1f~n",
              [lists:sum(Delivered) / (Chunks * Chunk), median(Delivered) / Chunk]),
    halt(0).

run(Port, Chunks, Chunk) ->
    Arg = integer_to_list(Chunk),
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         Reply = erlang:port_control(Port, 10, Arg),
         drain(Chunk),
         T1 = erlang:monotonic_time(nanosecond),
         {list_to_integer(Reply), T1 - T0}
     end || _ <- lists:seq(1, Chunks)].

drain(0) -> ok;
drain(N) ->
    receive {tcp, _, [100 | <<_:50/binary>>]} -> drain(N - 1)
    after 1000 -> error({missing_terms, N})
    end.

median(L) ->
    lists:nth(length(L) div 2 + 1, lists:sort(L)).
