#!/bin/sh
# The PKCS#11 root-of-trust tests run against a real token: SoftHSM2, from
# Debian's softhsm2 package (nothing is downloaded). Install it when missing.
set -e
[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1 && exit 0
echo "installing Debian's softhsm2 for the PKCS#11 root-of-trust tests" >&2
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
# A machine whose package lists were never fetched knows no softhsm2 yet.
$sudo apt-get install -y softhsm2 >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y softhsm2 >/dev/null; }
