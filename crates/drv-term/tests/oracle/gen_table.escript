#!/usr/bin/env escript
%% Regenerates oracle_table.txt: one line per term, "<hex of term_to_binary>\t<~0p output>".
%% Run with OTP 25: escript gen_table.escript > oracle_table.txt
main(_) ->
    io:setopts(standard_io, [{encoding, unicode}]),
    Big = maps:from_list([{I, I} || I <- lists:seq(1, 33)]),
    Terms = [
        "", [], <<>>, "abc", [[97,98],[99]], [1,2,3], [0], [97,0], [10], "a\nb", "tab\there",
        [7], [8], [27], [127], [160,255], [159], [233,97], [256], [1000,97], [-1], [97|98], [1|2],
        [1,2|3], [[]], [$a,$b,1], "a\"b\\c", [20320,22909], [12, 11], "\r\n\t\v\b\f\e",
        -1, -128, 0, 255, 256, -256, 2147483647, 2147483648, -2147483648, -2147483649,
        1 bsl 59, 1 bsl 63, -(1 bsl 63), (1 bsl 64) - 1, 1 bsl 64, 1 bsl 100, -(1 bsl 100), 1 bsl 2100,
        1.0, 0.1, -0.0, 0.0, 1.0e-5, 123456789012.0, 1.0e15, 1.0e16, 3.14159, -2.5e-300, 5.0e-324,
        1.7976931348623157e308, 0.30000000000000004, 100.0, 1.0e100, -1234.5,
        a, 'EXIT', 'hello world', 'Abc', '', 'a@b', 'a.b', true, 'é', 'ünïcödé', list_to_atom([300]),
        'it\'s', 'a\nb', '_x', x1_Y, 'and', '[]', '{}', 'ok!', 'aé', 'a-b', 'Ω',
        {}, {a}, {1,2,{3}}, list_to_tuple(lists:seq(1, 300)),
        #{}, #{a => 1, b => 2}, #{1 => a, 1.0 => b, 0.5 => c}, #{"k" => [1], {t} => #{}},
        #{[] => 1, <<>> => 2, a => 3, {} => 4, 2 => 5}, Big,
        <<1,2,3>>, <<"abc">>, <<"a\nb">>, <<"é">>, <<0>>, <<255,1>>, <<"hello world">>, <<"你"/utf8>>,
        <<"a\"b">>, {"abc", <<"d">>, [x]}, [{a,1},{b,2}], [[1],[2]], ["abc", "def"], [<<"x">>|<<"y">>],
        self(), hd(erlang:ports()), make_ref(), {self(), make_ref()},
        [self()], #{self() => 1},
        %% large maps (hash order): small-integer keys of every size and sign
        maps:from_list([{I, I} || I <- lists:seq(-40, 40)]),
        maps:from_list([{I * 1000003, x} || I <- lists:seq(1, 100)]),
        maps:from_list([{(1 bsl 59) - I, I} || I <- lists:seq(1, 40)] ++ [{-(1 bsl 59) + I, I} || I <- lists:seq(0, 39)]),
        maps:from_list([{I, [I]} || I <- lists:seq(1, 1000)]),
        %% ... keys of other types: big integers, floats, binaries, strings, lists, tuples
        maps:from_list([{I, I} || I <- lists:seq(1, 40)] ++ [{1 bsl 60, 1}]),
        maps:from_list([{(1 bsl 64) * I + I, I} || I <- lists:seq(1, 20)] ++ [{-(1 bsl 59) - I, I} || I <- lists:seq(1, 20)] ++ [{1 bsl 200, big}]),
        maps:from_list([{I * 0.5, I} || I <- lists:seq(-20, 20)] ++ [{-0.0, z}, {1.0e300, h}]),
        maps:from_list([{list_to_binary(lists:seq(1, I)), I} || I <- lists:seq(0, 40)]),
        maps:from_list([{lists:seq(65, 65 + I), I} || I <- lists:seq(0, 40)]),
        maps:from_list([{[I, 1000 + I, <<I>> | I], I} || I <- lists:seq(1, 40)] ++ [{[[]], 0}, {[1 | 2], 1}, {[300], 2}, {[1, 2, 300, 4], 3}]),
        maps:from_list([{{I, <<"x">>, {I * 2.5}, "ab"}, I} || I <- lists:seq(1, 40)] ++ [{{}, e}]),
        maps:from_list([{I, I} || I <- lists:seq(1, 40)] ++ [{a, 1}])
    ],
    _ = rand:seed(exsss, {1, 2, 3}),
    Floats = [X * math:pow(10, E) || E <- lists:seq(-25, 25), X <- [1.0, 1.5, 123.0, -9.75]]
        ++ [9007199254740992.0, 9007199254740991.0, 1.0e-4, 1.5e-4, 1.23456789e-4] ++ [(rand:uniform() - 0.5) * math:pow(10, rand:uniform(600) - 300) || _ <- lists:seq(1, 150)],
    [io:put_chars([hex(term_to_binary(T)), $\t, unicode:characters_to_binary(io_lib:format("~0p", [T])), $\n]) || T <- Terms ++ Floats],
    ok.

hex(B) -> [io_lib:format("~2.16.0b", [X]) || <<X>> <= B].
