#!/bin/sh
# Runs one scenario under real BEAM and prints its output.
#   usage: xtask/beam/run.sh SCENARIO.scen DRIVER_DIR
# Compiles ddll_scenario.erl into $DDLL_BEAM_EBIN (default /tmp/ddll-beam-ebin).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ebin=${DDLL_BEAM_EBIN:-/tmp/ddll-beam-ebin}
mkdir -p "$ebin"
if [ ! -f "$ebin/ddll_scenario.beam" ] || [ "$here/ddll_scenario.erl" -nt "$ebin/ddll_scenario.beam" ]; then
    erlc -o "$ebin" "$here/ddll_scenario.erl"
fi
exec erl -noshell -noinput -pa "$ebin" -eval 'ddll_scenario:main(init:get_plain_arguments())' -extra "$1" "$2"
