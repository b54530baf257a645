#!/bin/sh
# The metrics test checks the exposition with `promtool check metrics`, from
# Debian's prometheus package (nothing is downloaded). Install it when missing.
set -e
command -v promtool >/dev/null 2>&1 && exit 0
echo "installing Debian's prometheus (promtool) for the metrics test" >&2
if [ "$(id -u)" = 0 ]; then apt-get install -y prometheus >/dev/null; else sudo apt-get install -y prometheus >/dev/null; fi
