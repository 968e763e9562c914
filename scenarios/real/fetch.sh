#!/bin/sh
# Puts the real drivers that no installed Erlang application provides into DIR (the folder a
# real-driver scenario knows as DriverDir): yaws' setuid_drv.so, taken out of Debian's
# erlang-yaws package without installing it (apt-get download + dpkg -x change nothing on the
# system). The OTP applications' drivers (erlang-megaco, erlang-runtime-tools) are found where
# their packages install them, with code:priv_dir/1.
#   usage: scenarios/real/fetch.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
if [ ! -f "$dir/setuid_drv.so" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # apt fetches as its own user, which must be able to write here.
    chmod a+rwx "$work"
    (cd "$work" && apt-get download -q erlang-yaws >/dev/null)
    dpkg -x "$work"/erlang-yaws_*.deb "$work/x"
    cp "$work"/x/usr/lib/yaws-*/priv/lib/setuid_drv.so "$dir/"
fi
