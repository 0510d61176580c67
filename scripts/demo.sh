#!/usr/bin/env bash
# The attache demo: builds attache, creates a data directory for Alice with
# a calendar that recurs around today, and shows what her agent knows and
# would compute: agenda, busy time, free slots, tasks, contacts, export.
# Leaves nothing behind (a temporary directory, removed on exit).
#
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
echo "== building attache (release)"
cargo build --release --quiet
bin="$PWD/target/release/attache"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/alice"
tz=Europe/Berlin

d() { TZ=$tz date -d "$1" +%Y%m%d; }
# Alice's calendar, as her calendar app would export it, anchored on this week.
cat > "$work/alice.ics" <<ICS
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//attache demo//EN
BEGIN:VEVENT
UID:standup@demo
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:$(d '-60 days')T093000
DTEND;TZID=Europe/Berlin:$(d '-60 days')T094500
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR
SUMMARY:Team standup
END:VEVENT
BEGIN:VEVENT
UID:standup@demo
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:$(d 'tomorrow')T093000
STATUS:CANCELLED
DTSTART;TZID=Europe/Berlin:$(d 'tomorrow')T093000
DTEND;TZID=Europe/Berlin:$(d 'tomorrow')T094500
SUMMARY:Team standup
END:VEVENT
BEGIN:VEVENT
UID:lunch@demo
DTSTAMP:20260101T000000Z
DTSTART;TZID=W. Europe Standard Time:$(d 'tomorrow')T123000
DTEND;TZID=W. Europe Standard Time:$(d 'tomorrow')T133000
SUMMARY:Lunch with Carol (written by Outlook)
LOCATION:Café Lotte
END:VEVENT
BEGIN:VEVENT
UID:doctor@demo
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:$(d 'tomorrow')T150000
DTEND;TZID=Europe/Berlin:$(d 'tomorrow')T160000
CLASS:PRIVATE
SUMMARY:Doctor
END:VEVENT
BEGIN:VEVENT
UID:maybe@demo
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:$(d '+2 days')T100000
DTEND;TZID=Europe/Berlin:$(d '+2 days')T120000
STATUS:TENTATIVE
SUMMARY:Maybe: vendor demo
END:VEVENT
BEGIN:VEVENT
UID:offsite@demo
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:$(d '+3 days')
SUMMARY:Offsite (all day)
END:VEVENT
BEGIN:VTODO
UID:slides@demo
DTSTAMP:20260101T000000Z
SUMMARY:Send the slides to Bob
DUE;VALUE=DATE:$(d '+2 days')
PRIORITY:1
END:VTODO
END:VCALENDAR
ICS
sed -i 's/$/\r/' "$work/alice.ics"

a() { echo; echo "\$ attache $*"; "$bin" --data-dir "$data" "$@"; }
a init --timezone $tz
a import "$work/alice.ics"
a contacts add bob@example.org --name Bob --agent bob.agent@example.org --group team
a contacts list
a agenda tomorrow
a agenda week
from=$(date -u +%Y-%m-%dT00:00:00Z)
to=$(date -u -d '+4 days' +%Y-%m-%dT00:00:00Z)
a busy --from "$from" --to "$to"
a busy --from "$from" --to "$to" --json
a free --duration 1h --from "$from" --to "$to"
a tasks list
a export --out "$work/export.ics"
echo "(export: $(grep -c 'BEGIN:VEVENT' "$work/export.ics") events, $(grep -c 'BEGIN:VTODO' "$work/export.ics") task — round-trips through import)"
echo
echo "Demo done; the temporary data directory is removed."
