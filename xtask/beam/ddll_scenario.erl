%% @doc Runs a ddll scenario file under real BEAM: the oracle for the Rust runner.
%%
%% Build and run (the file and driver folder may be relative to the cwd):
%% ```
%% erlc -o EBIN xtask/beam/ddll_scenario.erl
%% erl -noshell -noinput -pa EBIN -eval 'ddll_scenario:main(["scenarios/echo.scen", "DRIVERS"])'
%% erl -noshell -noinput -pa EBIN -eval 'ddll_scenario:main(init:get_plain_arguments())' \
%%     -extra scenarios/echo.scen DRIVERS
%% '''
%% (the second form needs no quoting of paths; `xtask/beam/run.sh FILE DRIVERS`
%% compiles and runs it). DRIVERS is the folder of the
%% built example drivers (`examples/drivers/build.sh DRIVERS`). The VM exits
%% with status 0 after the last line, 2 if the scenario cannot be read.
%%
%% The language (see crates/ddll-scenario/README.md): one Erlang
%% expression per line ending in `.`, `%' comments, `Var = Expr.' bindings,
%% remote calls (`erlang:open_port(...)', `erl_ddll:load(...)', ...) and the
%% local calls `recv(TimeoutMs)', `as(Proc, Call)' and `kill(Proc)'. Every
%% remote call runs inside the current scenario process (`main' unless
%% inside `as/2'), a real process that traps exits. `DriverDir' is bound to
%% the absolute driver folder, `TmpDir' to a fresh empty folder (removed at
%% the end); the cwd is the scenario file's folder.
%%
%% Each statement prints `N: Term' (N = line number), Term as `~0p' writes it
%% but with scenario processes as `<proc:Name>', other pids as `<pid:K>',
%% ports as `#Port<K>', refs as `#Ref<K>' (K per kind, in order of first
%% appearance in the output). A raising statement prints `N: {'EXIT',Reason}'.
-module(ddll_scenario).
-export([main/1, run/2]).

%% A scenario's evaluation state lives in the runner's process dictionary:
%% it is threaded through erl_eval callbacks that cannot return extra state.
-define(CURRENT, ddll_scenario_current).  % name of the process running calls
-define(PROCS, ddll_scenario_procs).      % #{Name => Pid}
-define(NAMES, ddll_scenario_names).      % #{Pid => Name}
-define(SEEN, ddll_scenario_seen).        % #{Pid | Port | Ref => Text}
-define(COUNTS, ddll_scenario_counts).    % #{pid | port | ref => LastK}
-define(STATIC, ddll_scenario_static).    % drivers loaded before the scenario
-define(STATIC_PORTS, ddll_scenario_static_ports). % ports open before the scenario

%% @doc Entry point for `erl -eval': `main([ScenarioFile, DriverDir])'.
main([File, DriverDir]) ->
    Status = try run(File, DriverDir) of
                 ok -> 0;
                 {error, Why} ->
                     io:format(standard_error, "ddll_scenario: ~ts: ~tp~n", [File, Why]),
                     2
             catch
                 Class:Reason:Stack ->
                     io:format(standard_error, "ddll_scenario: crashed: ~p:~tp~n~tp~n",
                               [Class, Reason, Stack]),
                     3
             end,
    erlang:halt(Status);
main(_) ->
    io:format(standard_error, "usage: ddll_scenario:main([ScenarioFile, DriverDir])~n", []),
    erlang:halt(2).

%% @doc Evaluates every line of ScenarioFile, printing results to standard_io.
run(File, DriverDir) ->
    AbsFile = filename:absname(File),
    AbsDrivers = filename:absname(DriverDir),
    case file:read_file(AbsFile) of
        {ok, Bin} ->
            ok = io:setopts(standard_io, [{encoding, unicode}]),
            %% Error reports (e.g. "Bad value on output port") are not scenario
            %% output: keep them out of standard_io.
            _ = logger:remove_handler(default),
            ok = logger:add_handler(ddll_scenario_stderr, logger_std_h,
                                    #{config => #{type => standard_error}}),
            ok = file:set_cwd(filename:dirname(AbsFile)),
            put(?CURRENT, main),
            put(?PROCS, #{}),
            put(?NAMES, #{}),
            put(?SEEN, #{}),
            put(?COUNTS, #{pid => 0, port => 0, ref => 0}),
            {ok, Static} = erl_ddll:loaded_drivers(),
            put(?STATIC, Static),
            put(?STATIC_PORTS, erlang:ports()),
            Text = unicode:characters_to_list(Bin),
            Lines = string:split(Text, "\n", all),
            Scratch = scratch_dir(AbsDrivers),
            Bindings = erl_eval:add_binding('TmpDir', Scratch,
                                            erl_eval:add_binding('DriverDir', AbsDrivers,
                                                                 erl_eval:new_bindings())),
            try
                run_lines(Lines, 1, Bindings)
            after
                _ = file:del_dir_r(Scratch)
            end,
            ok;
        {error, Why} ->
            {error, Why}
    end.

%% A fresh folder for `TmpDir' beside the drivers (the same file system, so
%% libraries copied there can be mapped executable), unique per VM and run.
scratch_dir(AbsDrivers) ->
    Name = "scratch." ++ os:getpid() ++ "." ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(AbsDrivers, Name),
    ok = file:make_dir(Dir),
    Dir.

run_lines([], _N, _Bindings) ->
    ok;
run_lines([Line | Rest], N, Bindings0) ->
    Bindings = case erl_scan:string(Line, N) of
                   {ok, [], _} ->
                       Bindings0;  % blank or comment-only: prints nothing
                   {ok, Tokens, _} ->
                       run_statement(Tokens, N, Bindings0);
                   {error, _, _} ->
                       print(N, {'EXIT', {scenario_error, syntax}}),
                       Bindings0
               end,
    run_lines(Rest, N + 1, Bindings).

run_statement(Tokens, N, Bindings) ->
    case erl_parse:parse_exprs(Tokens) of
        {ok, Exprs0} ->
            Exprs = heap_binaries(Exprs0),
            put(?CURRENT, main),
            try erl_eval:exprs(Exprs, Bindings, local_handler(), remote_handler()) of
                {value, Value, NewBindings} ->
                    print(N, Value),
                    NewBindings
            catch
                _Class:Reason ->
                    print(N, {'EXIT', Reason}),
                    Bindings
            end;
        {error, _} ->
            print(N, {'EXIT', {scenario_error, syntax}}),
            Bindings
    end.

%% --- Binaries as compiled code makes them ------------------------------------

%% erl_eval builds every binary by appending to a writable one, so even a
%% small one is reference-counted; the same expression in compiled code makes
%% a heap binary up to 64 bytes (ERL_ONHEAP_BIN_LIMIT), as BIFs, driver output
%% and distribution do, and BEAM copies heap binaries into the byte runs of an
%% outputv I/O vector. So every binary construction (outside patterns) goes
%% through '$heap_binary'/1, which copies a binary of at most 64 bytes into a
%% heap binary.
heap_binaries({bin, Anno, Elements}) ->
    {call, Anno, {atom, Anno, '$heap_binary'}, [{bin, Anno, heap_binaries(Elements)}]};
heap_binaries({match, Anno, Pattern, Expr}) ->
    {match, Anno, Pattern, heap_binaries(Expr)};
heap_binaries(Tuple) when is_tuple(Tuple) ->
    list_to_tuple(heap_binaries(tuple_to_list(Tuple)));
heap_binaries(List) when is_list(List) ->
    [heap_binaries(E) || E <- List];
heap_binaries(Other) ->
    Other.

%% --- Local calls: recv/1, as/2, kill/1 -------------------------------------

local_handler() ->
    {eval, fun local_call/3}.

local_call(recv, [TimeoutExpr], Bindings) ->
    Timeout = eval_arg(TimeoutExpr, Bindings),
    Fun = fun() -> receive Msg -> Msg after Timeout -> timeout end end,
    {value, in_process(get(?CURRENT), Fun), Bindings};
local_call(as, [ProcExpr, CallExpr], Bindings) ->
    Proc = eval_arg(ProcExpr, Bindings),
    Saved = get(?CURRENT),
    put(?CURRENT, Proc),
    try erl_eval:expr(CallExpr, Bindings, local_handler(), remote_handler()) of
        {value, Value, _} -> {value, Value, Bindings}
    after
        put(?CURRENT, Saved)
    end;
local_call(kill, [ProcExpr], Bindings) ->
    Proc = eval_arg(ProcExpr, Bindings),
    case maps:find(Proc, get(?PROCS)) of
        {ok, Pid} ->
            Mon = erlang:monitor(process, Pid),
            exit(Pid, kill),
            receive {'DOWN', Mon, process, Pid, _} -> ok end,
            await_ports_closed(Pid, 1000),
            put(?PROCS, maps:remove(Proc, get(?PROCS))),
            {value, true, Bindings};
        error ->
            erlang:error({no_such_process, Proc})
    end;
local_call('$heap_binary', [BinExpr], Bindings) ->
    Value = case eval_arg(BinExpr, Bindings) of
                Bin when is_binary(Bin), byte_size(Bin) =< 64 -> binary:copy(Bin);
                Built -> Built
            end,
    {value, Value, Bindings};
local_call(_Name, _Args, _Bindings) ->
    erlang:error(undef).

%% A dead owner's ports close asynchronously; wait (up to Tries ms) so the
%% next line sees them gone, as the Rust runtime does synchronously.
await_ports_closed(_Pid, 0) ->
    ok;
await_ports_closed(Pid, Tries) ->
    Owned = [P || P <- erlang:ports(), erlang:port_info(P, connected) =:= {connected, Pid}],
    case Owned of
        [] -> ok;
        _ -> timer:sleep(1), await_ports_closed(Pid, Tries - 1)
    end.

eval_arg(Expr, Bindings) ->
    {value, Value, _} = erl_eval:expr(Expr, Bindings, local_handler(), remote_handler()),
    Value.

%% --- Remote calls run inside the current scenario process ------------------

remote_handler() ->
    {value, fun remote_call/2}.

remote_call({erl_ddll, loaded_drivers}, []) ->
    %% BEAM's static (linked-in) drivers are host facts, not scenario facts.
    {ok, Names} = in_process(get(?CURRENT), fun erl_ddll:loaded_drivers/0),
    {ok, Names -- get(?STATIC)};
remote_call({erlang, ports}, []) ->
    %% The VM's own ports (standard I/O and the like) are host facts too.
    erlang:ports() -- get(?STATIC_PORTS);
remote_call({M, F}, Args) ->
    in_process(get(?CURRENT), fun() -> apply(M, F, Args) end);
remote_call(Fun, Args) when is_function(Fun) ->
    in_process(get(?CURRENT), fun() -> apply(Fun, Args) end).

%% Runs Fun in the named scenario process (spawned on first use) and returns
%% its value, or raises the same reason in the runner when Fun raised.
in_process(Name, Fun) ->
    Pid = scenario_process(Name),
    Ref = erlang:monitor(process, Pid),
    Pid ! {ddll_scenario_run, self(), Ref, Fun},
    receive
        {Ref, {value, Value}} ->
            erlang:demonitor(Ref, [flush]),
            Value;
        {Ref, {raised, Class, Reason}} ->
            erlang:demonitor(Ref, [flush]),
            erlang:raise(Class, Reason, []);
        {'DOWN', Ref, process, Pid, Why} ->
            erlang:error({process_died, Name, Why})
    end.

scenario_process(Name) ->
    Procs = get(?PROCS),
    case maps:find(Name, Procs) of
        {ok, Pid} ->
            Pid;
        error ->
            Pid = spawn(fun() -> process_flag(trap_exit, true), serve() end),
            put(?PROCS, Procs#{Name => Pid}),
            put(?NAMES, (get(?NAMES))#{Pid => Name}),
            Pid
    end.

%% The scenario process loop: only tagged requests are taken here, so port
%% messages and 'EXIT's stay queued for recv/1.
serve() ->
    receive
        {ddll_scenario_run, From, Ref, Fun} ->
            Result = try {value, Fun()}
                     catch Class:Reason -> {raised, Class, Reason}
                     end,
            From ! {Ref, Result},
            serve()
    end.

%% --- Printing ---------------------------------------------------------------

print(N, Term) ->
    {Masked, Table} = mask(Term, #{}),
    Text0 = lists:flatten(io_lib:format("~0p", [Masked])),
    Text = unmask(Text0, Table),
    io:put_chars(standard_io, [integer_to_list(N), ": ", Text, "\n"]).

%% Replaces every pid/port/ref by a placeholder atom (so `~0p' lays the term
%% out unchanged otherwise); Table maps placeholder text back to the value.
mask(T, Table) when is_pid(T); is_port(T); is_reference(T) ->
    Key = lists:flatten(io_lib:format("ddll$scenario$~b", [map_size(Table)])),
    Atom = list_to_atom(Key),
    Quoted = lists:flatten(io_lib:format("~0p", [Atom])),
    {Atom, Table#{Quoted => T}};
mask(T, Table) when is_list(T) ->
    mask_list(T, Table, []);
mask(T, Table) when is_tuple(T) ->
    {Elems, Table1} = mask_elems(tuple_to_list(T), Table),
    {list_to_tuple(Elems), Table1};
mask(T, Table) when is_map(T) ->
    {Pairs, Table1} = mask_elems([{K, V} || {K, V} <- maps:to_list(T)], Table),
    {maps:from_list(Pairs), Table1};
mask(T, Table) ->
    {T, Table}.

mask_elems(Elems, Table) ->
    lists:mapfoldl(fun mask/2, Table, Elems).

%% Lists may be improper, so walk cell by cell.
mask_list([], Table, Acc) ->
    {lists:reverse(Acc), Table};
mask_list([H | T], Table, Acc) when is_list(T) ->
    {H1, Table1} = mask(H, Table),
    mask_list(T, Table1, [H1 | Acc]);
mask_list([H | T], Table, Acc) ->
    {H1, Table1} = mask(H, Table),
    {T1, Table2} = mask(T, Table1),
    {lists:reverse(Acc, [H1 | T1]), Table2}.

%% Replaces placeholders left to right, naming each value on first sight.
unmask(Text, Table) when map_size(Table) =:= 0 ->
    Text;
unmask(Text, Table) ->
    unmask(Text, Table, []).

unmask([], _Table, Acc) ->
    lists:reverse(Acc);
unmask([$' | Rest] = Text, Table, Acc) ->
    case lists:prefix("ddll$scenario$", Rest) of
        true ->
            {Digits, [$' | After]} = lists:splitwith(fun(C) -> C >= $0 andalso C =< $9 end,
                                                     lists:nthtail(14, Rest)),
            Key = "'ddll$scenario$" ++ Digits ++ "'",
            Name = name_of(maps:get(Key, Table)),
            unmask(After, Table, lists:reverse(Name, Acc));
        false ->
            [C | More] = Text,
            unmask(More, Table, [C | Acc])
    end;
unmask([C | More], Table, Acc) ->
    unmask(More, Table, [C | Acc]).

name_of(Value) ->
    Seen = get(?SEEN),
    case maps:find(Value, Seen) of
        {ok, Name} ->
            Name;
        error ->
            Name = fresh_name(Value),
            put(?SEEN, Seen#{Value => Name}),
            Name
    end.

fresh_name(Pid) when is_pid(Pid) ->
    case maps:find(Pid, get(?NAMES)) of
        {ok, ProcName} -> "<proc:" ++ atom_or_term(ProcName) ++ ">";
        error -> "<pid:" ++ next(pid) ++ ">"
    end;
fresh_name(Port) when is_port(Port) ->
    "#Port<" ++ next(port) ++ ">";
fresh_name(Ref) when is_reference(Ref) ->
    "#Ref<" ++ next(ref) ++ ">".

atom_or_term(Name) when is_atom(Name) -> atom_to_list(Name);
atom_or_term(Name) -> lists:flatten(io_lib:format("~0p", [Name])).

next(Kind) ->
    Counts = get(?COUNTS),
    K = maps:get(Kind, Counts) + 1,
    put(?COUNTS, Counts#{Kind => K}),
    integer_to_list(K).
