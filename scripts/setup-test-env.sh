#!/usr/bin/env bash
# Create (or reuse) the Python virtual environment used by the differential
# and interop tests: .venv in the repository root with the pins from
# scripts/requirements-test.txt (recurring-ical-events + icalendar for the
# oracle, slixmpp for the interop peer).
#
# Idempotent: when .venv already has exactly the pinned versions, it does
# nothing but say so.  Debian's system python refuses `pip install` (PEP 668),
# hence the venv.  If the venv module is missing (plain Debian without
# python3-venv) and we are root, it installs python3-venv with apt-get.
#
# Usage: bash scripts/setup-test-env.sh      (env PYTHON=python3.12 to choose)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements-test.txt"
PY="${PYTHON:-python3}"

say() { echo "setup-test-env: $*"; }

show_versions() {
    "$VENV/bin/python" -c 'from importlib.metadata import version as v; import recurring_ical_events, slixmpp; print("setup-test-env: icalendar", v("icalendar"), "/ recurring-ical-events", v("recurring-ical-events"), "/ slixmpp", v("slixmpp"))'
}

if ! command -v "$PY" >/dev/null 2>&1; then
    say "error: $PY not found" >&2
    exit 1
fi

# Check whether the venv already satisfies every pin.
venv_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$REQ" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        have = version(name.strip())
    except PackageNotFoundError:
        ok = False
        continue
    if have != want.strip():
        ok = False
sys.exit(0 if ok else 1)
PYEOF
}

if venv_ok; then
    say "$VENV already has the pinned packages; nothing to do"
    show_versions
    exit 0
fi

# A venv must be creatable with ensurepip; Debian splits that into python3-venv.
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            say "python venv/ensurepip missing: installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt-get install -y -qq python3-venv || apt-get install -y -qq "python${ver}-venv"
        else
            say "error: '$PY -m venv' is unavailable; install python3-venv" >&2
            exit 1
        fi
    fi
    # A half-made .venv (e.g. from a failed earlier run) is removed first.
    rm -rf "$VENV"
    say "creating virtual environment at $VENV with $("$PY" --version 2>&1)"
    "$PY" -m venv "$VENV"
else
    say "reusing existing virtual environment at $VENV"
fi

say "installing pins from $REQ"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"

if venv_ok; then
    show_versions
    say "done; run the oracle with: $VENV/bin/python scripts/oracle.py FILE.ics --from ... --to ... --tz ..."
else
    say "error: installed packages do not match the pins" >&2
    exit 1
fi
