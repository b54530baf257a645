#!/bin/sh
# The browser tests drive Debian's Chromium through playwright-core; nothing
# downloads a browser. Install the package when it is missing.
set -e
[ -x /usr/bin/chromium ] && exit 0
echo "installing Debian's chromium for the browser tests" >&2
if [ "$(id -u)" = 0 ]; then apt-get install -y chromium >/dev/null; else sudo apt-get install -y chromium >/dev/null; fi
