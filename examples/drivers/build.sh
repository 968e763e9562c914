#!/bin/sh
# Builds every example driver into OUTDIR (default: ./build) and creates
# not_a_library.so (a text file, used to test open errors; *.so is gitignored
# so it is generated here rather than checked in).
#   usage: examples/drivers/build.sh [OUTDIR]
# Env: CC (default gcc), ERL_INCLUDE (default: erl's usr/include).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/build"}
cc=${CC:-cc}
inc=${ERL_INCLUDE:-/usr/lib/erlang/usr/include}
mkdir -p "$out"
for src in "$here"/*.c; do
    name=$(basename "$src" .c)
    "$cc" -shared -fPIC -O2 -Wall -Wextra -Werror -I"$inc" "$src" -o "$out/$name.so"
done
printf 'this is not a shared library\n' > "$out/not_a_library.so"
