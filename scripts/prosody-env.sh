#!/usr/bin/env bash
# Make sure the Prosody XMPP server is installed: the XMPP integration tests
# and the demo start their own private Prosody instances on 127.0.0.1 (see
# tests/common/prosody.rs); nothing here configures or starts a system-wide
# server.
#
# Idempotent: when `prosody` and `prosodyctl` are on PATH it only says which
# version is there. Otherwise it installs the Debian package with apt-get
# when run as root, and prints the command to run when not.
#
# Usage: bash scripts/prosody-env.sh
set -euo pipefail

say() { echo "prosody-env: $*"; }

have_prosody() {
    command -v prosody >/dev/null 2>&1 && command -v prosodyctl >/dev/null 2>&1
}

if have_prosody; then
    # `prosody --version` would start a server; ask the package manager instead.
    version="$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo "unknown version")"
    say "prosody is installed ($version)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "error: prosody is not installed; install it with:" >&2
    say "    sudo apt-get update && sudo apt-get install -y prosody" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "error: prosody is not installed and this system has no apt-get;" >&2
    say "install Prosody 0.12 or later with your package manager (https://prosody.im/download/)" >&2
    exit 1
fi

say "installing prosody with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq prosody >/dev/null
# The package may start a system-wide server on 5222 where an init system
# runs; the tests never use it, so it does no harm, and stopping it is the
# administrator's call, not this script's.
have_prosody || { say "error: apt-get finished but prosody is still not on PATH" >&2; exit 1; }
say "prosody installed ($(dpkg-query -W -f='${Version}' prosody))"
