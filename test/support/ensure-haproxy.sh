#!/bin/sh
# The cluster test (npm run test:cluster) puts Debian's HAProxy in front of
# three brokers (nothing is downloaded). Install it when missing. The package
# starts a haproxy service of its own where systemd runs; the test never uses
# it (it runs its own haproxy with deploy/haproxy.cfg on free ports).
set -e
command -v haproxy >/dev/null 2>&1 && exit 0
echo "installing Debian's haproxy for the cluster test" >&2
if [ "$(id -u)" = 0 ]; then apt-get install -y haproxy >/dev/null; else sudo apt-get install -y haproxy >/dev/null; fi
