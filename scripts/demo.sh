#!/usr/bin/env bash
# The attache demo: a private Prosody on 127.0.0.1, three agents (Alice,
# Bob, Carol) with their own calendars and policies, and Alice asking by
# chat when Bob and Carol are free. Shows the conversation as Alice sees it
# in her XMPP client, then what Bob's agent logged. Cleans up everything
# (processes and temporary files) on exit.
#
# Usage: scripts/demo.sh        (installs Prosody with apt-get if missing and run as root)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
bash scripts/prosody-env.sh
echo "== building attache (release)"
cargo build --release --quiet --bin attache --example owner_chat
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/release/attache"
chat="$target/release/examples/owner_chat"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- Prosody on a free loopback port, as the prosody user when we are root.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
domain=localhost
mkdir -p "$work/prosody/data"
cat > "$work/prosody/prosody.cfg.lua" <<CFG
pidfile = "$work/prosody/prosody.pid"
data_path = "$work/prosody/data"
log = { info = "$work/prosody/prosody.log" }
network_settings = { nagle = false }
interfaces = { "127.0.0.1" }
c2s_ports = { $port }
c2s_direct_tls_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
admin_socket = "$work/prosody/admin.sock"
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
smacks_hibernation_time = 5
modules_enabled = { "roster", "saslauth", "disco", "ping", "version", "presence", "smacks", "posix" }
modules_disabled = { "s2s" }
VirtualHost "$domain"
CFG
as_prosody=()
if [ "$(id -u)" -eq 0 ]; then
    chmod 755 "$work"
    chown -R prosody:prosody "$work/prosody"
    as_prosody=(runuser -u prosody --)
fi
"${as_prosody[@]}" prosody --config "$work/prosody/prosody.cfg.lua" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
done
for user in alice bob carol; do
    "${as_prosody[@]}" prosodyctl --config "$work/prosody/prosody.cfg.lua" register "$user" "$domain" "$user-pw" >/dev/null
    "${as_prosody[@]}" prosodyctl --config "$work/prosody/prosody.cfg.lua" register "$user.agent" "$domain" "$user.agent-pw" >/dev/null
done
echo "== Prosody on 127.0.0.1:$port with accounts alice, bob, carol and their agents"

# --- Three data directories. Calendars are anchored on the next working day
# (default working hours are Mon–Fri 09:00–17:00).
tz=Europe/Berlin
offset=1
while [ "$(TZ=$tz date -d "+$offset day" +%u)" -gt 5 ]; do offset=$((offset + 1)); done
day=$(TZ=$tz date -d "+$offset day" +%Y%m%d)
iso=$(TZ=$tz date -d "+$offset day" +%Y-%m-%d)
ics() { # name, then VEVENT bodies
    local name=$1; shift
    { printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//attache demo//EN\r\n'
      for e in "$@"; do printf 'BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n%s\r\nEND:VEVENT\r\n' "$e"; done
      printf 'END:VCALENDAR\r\n'; } | sed 's/|/\r\n/g' > "$work/$name.ics"
}
ics bob "UID:b1|DTSTART;TZID=$tz:${day}T100000|DTEND;TZID=$tz:${day}T113000|SUMMARY:Design review|LOCATION:Room 4" \
        "UID:b2|DTSTART;TZID=$tz:${day}T140000|DTEND;TZID=$tz:${day}T150000|CLASS:PRIVATE|SUMMARY:Doctor"
ics carol "UID:c1|DTSTART;TZID=W. Europe Standard Time:${day}T090000|DTEND;TZID=W. Europe Standard Time:${day}T120000|SUMMARY:Workshop (from Outlook)"
ics alice "UID:a1|DTSTART;TZID=$tz:${day}T083000|DTEND;TZID=$tz:${day}T090000|RRULE:FREQ=DAILY;COUNT=5|SUMMARY:Standup"

for who in alice bob carol; do
    "$bin" --data-dir "$work/$who" init --timezone $tz --jid "$who.agent@$domain" --owner "$who@$domain" --server "127.0.0.1:$port" >/dev/null
    "$bin" --data-dir "$work/$who" import "$work/$who.ics" >/dev/null
done
"$bin" --data-dir "$work/alice" contacts add "bob@$domain" --name Bob --agent "bob.agent@$domain" >/dev/null
"$bin" --data-dir "$work/alice" contacts add "carol@$domain" --name Carol --agent "carol.agent@$domain" >/dev/null
# Bob counts Alice as team (busy blocks); Carol knows her only as a contact (yes/no).
"$bin" --data-dir "$work/bob" contacts add "alice@$domain" --name Alice --agent "alice.agent@$domain" --group team >/dev/null
"$bin" --data-dir "$work/carol" contacts add "alice@$domain" --name Alice --agent "alice.agent@$domain" >/dev/null
echo "== Bob's policy for Alice (team):";   "$bin" --data-dir "$work/bob" policy explain --peer "alice.agent@$domain" | head -2
echo "== Carol's policy for Alice:";         "$bin" --data-dir "$work/carol" policy explain --peer "alice.agent@$domain" | head -1

for who in alice bob carol; do
    ATTACHE_PASSWORD="$who.agent-pw" "$bin" --data-dir "$work/$who" run 2>"$work/$who.log" &
    pids+=($!)
done
sleep 1.5   # let the agents log in and exchange presence

echo
echo "== Alice's chat with her agent (as in her XMPP client; times in $tz)"
OWNER_PASSWORD=alice-pw "$chat" --server "127.0.0.1:$port" --jid "alice@$domain" --agent "alice.agent@$domain" \
    "agenda $iso" \
    "free bob $iso" \
    "free carol $iso" \
    "free carol $iso 10:00 for 1h" \
    "free carol $iso 13:00 for 1h" \
    "meet bob for 30m $iso about Sync" \
    "agnda"

echo "== What Bob's agent disclosed (attache log on Bob's side)"
"$bin" --data-dir "$work/bob" log
"$bin" --data-dir "$work/bob" log verify
echo
echo "Demo done: agents stopped, Prosody stopped, temporary files removed."
