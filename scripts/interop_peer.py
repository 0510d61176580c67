#!/usr/bin/env python3
"""An independent peer for attache's agent protocol (urn:x-attache:agent:1).

Written from docs/protocol.md alone (sections 2-8), without reading
attache's source: if this peer and attache disagree, either attache or the
document is wrong, and the document must say enough for a stranger to get
it right.  tests/interop.rs runs it against a real attache agent.

It logs in as an agent account, finds the responder's full JID through
presence (section 3), checks its disco#info for the protocol feature, asks
free/busy questions at the levels busy, slots and yes-no (section 5),
repeats one with the same request id (section 7), reuses an id with other
content (section 7) and sends malformed payloads (sections 4, 6), and
prints one JSON line per exchange on stdout.

Exit status: 0 when every exchange followed the document, 1 when the peer
saw a protocol violation (each JSON line lists its own under "violations"),
2 when it could not log in or reach the agent at all.

Usage:
  interop_peer.py --jid alice.agent@localhost --password PW \
      --host 127.0.0.1 --port 5222 --agent bob.agent@localhost \
      --start 2026-01-12T00:00:00Z --end 2026-01-13T00:00:00Z \
      --slot 2026-01-12T09:00:00Z 2026-01-12T10:00:00Z \
      --slot2 2026-01-12T11:00:00Z 2026-01-12T11:30:00Z

The server may be plain TCP (a test server on 127.0.0.1 without TLS):
STARTTLS is used when offered, and plain authentication is allowed
without it only for a loopback --host.
"""

import argparse
import asyncio
import json
import logging
import re
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

try:
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout
except ImportError:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        "interop_peer: slixmpp is not installed; run `bash scripts/setup-test-env.sh` "
        "and use .venv/bin/python\n"
    )
    sys.exit(2)

NS = "urn:x-attache:agent:1"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
CLIENT = "jabber:client"

# §4.3, least to most.
LEVELS = ["none", "yes-no", "slots", "busy", "details"]
# §4.2: RFC 3339 in UTC with a Z, to the second.
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# §4.1.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# §7: attache retries after 10 s; a peer waiting longer for one answer has
# learnt that the responder does not answer.
IQ_TIMEOUT = 10


def new_request_id():
    """A 26-character ULID-like id (§4.1): 48 bits of milliseconds, 80 random."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def parse_instant(text):
    """An instant of §4.2 as a datetime, or None when it is not one."""
    if text is None or not INSTANT.match(text):
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def parse_duration(text):
    """The RFC 5545 DURATION subset this peer sends (PnDTnHnMnS, PnW)."""
    m = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not m or text in ("P", "PT"):
        raise ValueError(f"not an RFC 5545 duration: {text}")
    w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def local(tag):
    """The local name of an ElementTree tag `{ns}name`."""
    return tag.rsplit("}", 1)[-1]


def ns_of(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def canonical(elem):
    """A comparable form of an element: name, sorted attributes, text, children."""
    return [
        elem.tag,
        sorted(elem.attrib.items()),
        (elem.text or "").strip(),
        [canonical(c) for c in elem],
    ]


def children(parent, name):
    """Every child `name` in our namespace."""
    return [c for c in parent if c.tag == f"{{{NS}}}{name}"]


def parse_period_list(text):
    """§5.2: `START/END,START/END…`, whitespace allowed around commas, periods
    and the `/`. Returns ([(start, end)], None) or (None, what is wrong)."""
    if not (text or "").strip():
        return None, "an empty period list"
    out = []
    for n, item in enumerate(text.split(","), 1):
        item = item.strip()
        if not item:
            return None, f"period {n} is empty"
        parts = item.split("/")
        if len(parts) != 2:
            return None, f"{item!r} is not START/END"
        s, e = parse_instant(parts[0].strip()), parse_instant(parts[1].strip())
        if s is None or e is None:
            return None, f"{item!r} has an instant that is not of §4.2"
        if e <= s:
            return None, f"{item!r} does not end after it starts"
        out.append((s, e))
    return out, None


class Exchange:
    """One request and its answer, reported as one JSON line."""

    def __init__(self, name, sent):
        self.record = {"exchange": name, "sent": sent, "violations": []}

    def violation(self, text):
        self.record["violations"].append(text)

    def __setitem__(self, key, value):
        self.record[key] = value

    def __getitem__(self, key):
        return self.record[key]


class Peer(slixmpp.ClientXMPP):
    """The requester side of §5, and nothing else."""

    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.agent_bare = slixmpp.JID(args.agent).bare
        self.agent_full = None
        self.found_by = None
        self.agent_online = asyncio.Event()
        self.exchanges = []
        self.failed = None
        self.register_plugin("xep_0030")
        # §3: agents subscribe to each other's presence; approve Bob's agent.
        self.auto_authorize = True
        self.auto_subscribe = True
        self.add_event_handler("session_start", self.session_start)
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.agent_asked_to_subscribe = False
        self.add_event_handler("failed_all_auth", self.on_failed_auth)

    def on_failed_auth(self, _event):
        self.failed = "authentication failed"
        self.disconnect()

    def on_subscribe(self, presence):
        # auto_authorize approves it; noted because §5.3 needs it.
        if presence["from"].bare == self.agent_bare:
            self.agent_asked_to_subscribe = True

    def on_available(self, presence):
        sender = presence["from"]
        if sender.bare == self.agent_bare and sender.resource and self.agent_full is None:
            self.agent_full = sender.full
            self.found_by = "presence"
            self.agent_online.set()

    async def session_start(self, _event):
        try:
            await self.get_roster()
            self.send_presence()
            # §3: the requester learns the full JID from presence, which needs
            # a subscription the responder approves.
            self.send_presence_subscription(pto=self.agent_bare, ptype="subscribe")
            await self.run_exchanges()
        except Exception as e:  # report, never hang: the test reads our output
            self.failed = f"{type(e).__name__}: {e}"
        finally:
            self.disconnect()

    async def run_exchanges(self):
        a = self.args
        try:
            await asyncio.wait_for(self.agent_online.wait(), a.presence_timeout)
        except asyncio.TimeoutError:
            # The examples in §3 and §5 always use the resource `attache`.
            self.agent_full = f"{self.agent_bare}/attache"
            self.found_by = "fixed-resource"
        await self.discover()

        busy = await self.freebusy("busy", {"start": a.start, "end": a.end, "level": "busy"})
        await self.freebusy(
            "slots",
            {"start": a.start, "end": a.end, "duration": a.duration, "level": "slots"},
            cross_busy=busy,
        )
        await self.freebusy("yes-no", {"level": "yes-no"}, slots=[a.slot])
        await self.freebusy("yes-no-first-only", {"level": "yes-no"}, slots=[a.slot2, a.slot])
        await self.freebusy("yes-no-without-slot", {"level": "yes-no"})
        # §7: same requester, same request id, same payload → same answer.
        if busy is not None:
            await self.freebusy(
                "replay",
                {"start": a.start, "end": a.end, "level": "busy"},
                request_id=busy["request_id"],
                expect_same_as=busy,
            )
            await self.freebusy(
                "replay-reordered",
                {"start": a.start, "end": a.end, "level": "busy"},
                request_id=busy["request_id"],
                expect_same_as=busy,
                reorder=True,
            )
            # §7: same id, other content → conflict + <request-id-reused/>.
            await self.expect_error(
                "reused-id",
                {"request-id": busy["request_id"], "start": a.start, "end": a.end,
                 "level": "slots"},
                "conflict", "cancel", "request-id-reused",
            )
        # §6: malformed payload, bad time, end ≤ start → bad-request + <invalid-payload/>.
        await self.expect_error(
            "malformed-no-request-id",
            {"start": a.start, "end": a.end, "level": "busy"},
            "bad-request", "modify", "invalid-payload",
        )
        await self.expect_error(
            "malformed-time-not-utc",
            {"request-id": new_request_id(), "start": a.start.replace("Z", "+00:00"),
             "end": a.end, "level": "busy"},
            "bad-request", "modify", "invalid-payload",
        )
        await self.expect_error(
            "malformed-slot-time-not-utc",
            {"request-id": new_request_id(), "level": "yes-no"},
            "bad-request", "modify", "invalid-payload",
            slots=[(a.slot[0].replace("Z", "+00:00"), a.slot[1])],
        )
        await self.expect_error(
            "malformed-end-before-start",
            {"request-id": new_request_id(), "start": a.end, "end": a.start, "level": "busy"},
            "bad-request", "modify", "invalid-payload",
        )

    def emit(self, ex):
        self.exchanges.append(ex)
        print(json.dumps(ex.record, sort_keys=True), flush=True)

    async def discover(self):
        ex = Exchange("disco-info", f"disco#info to {self.agent_full}")
        ex["agent"] = self.agent_full
        ex["found_by"] = self.found_by
        ex["agent_asked_to_subscribe"] = self.agent_asked_to_subscribe
        iq = self.make_iq_get(queryxmlns=DISCO_INFO, ito=self.agent_full)
        try:
            reply = await iq.send(timeout=IQ_TIMEOUT)
            features = [f.get("var") for f in reply.xml.iter(f"{{{DISCO_INFO}}}feature")]
            ex["reply_type"] = "result"
            ex["features"] = features
            if NS not in features:
                ex.violation(f"§3: disco#info lacks the feature {NS}")
        except IqError as e:
            ex["reply_type"] = "error"
            ex["error"] = self.error_of(e.iq.xml)
            ex.violation("§3: disco#info answered with an error")
        except IqTimeout:
            ex["reply_type"] = "timeout"
            ex.violation(f"§2: no answer to disco#info within {IQ_TIMEOUT} s")
        self.emit(ex)

    def payload(self, attrs, slots=()):
        elem = ET.Element(f"{{{NS}}}freebusy", attrs)
        for start, end in slots:
            ET.SubElement(elem, f"{{{NS}}}slot", {"start": start, "end": end})
        return elem

    async def send_payload(self, elem):
        """Sends `elem` in an IQ get; returns (type, the IQ's XML or None)."""
        iq = self.make_iq_get(ito=self.agent_full)
        iq.append(elem)
        try:
            reply = await iq.send(timeout=IQ_TIMEOUT)
            return "result", reply.xml
        except IqError as e:
            return "error", e.iq.xml
        except IqTimeout:
            return "timeout", None

    @staticmethod
    def sent_text(elem):
        # ElementTree names the namespace ns0; show it as the document writes it.
        text = ET.tostring(elem, encoding="unicode")
        return text.replace("ns0:", "").replace("xmlns:ns0=", "xmlns=")

    def error_of(self, iq_xml):
        """The §6 parts of an error IQ: type, stanza condition, app condition, text."""
        err = iq_xml.find(f"{{{CLIENT}}}error")
        out = {"type": None, "condition": None, "app_condition": None, "app_attrs": {},
               "text": None}
        if err is None:
            return out
        out["type"] = err.get("type")
        for c in err:
            if ns_of(c.tag) == STANZAS:
                if local(c.tag) == "text":
                    out["text"] = c.text
                else:
                    out["condition"] = local(c.tag)
            elif ns_of(c.tag) == NS:
                out["app_condition"] = local(c.tag)
                out["app_attrs"] = dict(c.attrib)
        return out

    async def freebusy(self, name, attrs, slots=(), request_id=None, cross_busy=None,
                       expect_same_as=None, reorder=False):
        """One §5 request; checks the reply against §5.2 and returns what it learnt.

        With `reorder`, the attributes go out in the opposite order: XML says
        attribute order is insignificant, so that is still the same payload.
        """
        rid = request_id or new_request_id()
        ordered = {"request-id": rid, **attrs}
        if reorder:
            ordered = dict(reversed(list(ordered.items())))
        elem = self.payload(ordered, slots)
        ex = Exchange(name, self.sent_text(elem))
        ex["request_id"] = rid
        asked = attrs.get("level", "details")
        kind, xml = await self.send_payload(elem)
        ex["reply_type"] = kind
        if kind == "timeout":
            ex.violation(f"§2: no answer within {IQ_TIMEOUT} s")
            self.emit(ex)
            return None
        if kind == "error":
            ex["error"] = self.error_of(xml)
            ex.violation(f"expected a result, got error {ex['error']}")
            self.emit(ex)
            return None
        fb = xml.find(f"{{{NS}}}freebusy")
        if fb is None:
            pending = xml.find(f"{{{NS}}}pending")
            if pending is not None:
                ex["pending"] = dict(pending.attrib)
                ex.violation("§5.3: pending where the policy should allow at once")
            else:
                ex.violation("§5.2: the result carries no <freebusy>")
            self.emit(ex)
            return None
        ex["canonical"] = canonical(fb)
        self.check_reply(ex, fb, rid, asked, attrs, slots, cross_busy)
        if expect_same_as is not None and ex["canonical"] != expect_same_as["canonical"]:
            ex.violation("§7: a repeat with the same request id got a different answer")
        if expect_same_as is not None:
            ex["same_as"] = expect_same_as["exchange"]
            ex["identical"] = ex["canonical"] == expect_same_as["canonical"]
        self.emit(ex)
        return ex.record

    def check_reply(self, ex, fb, rid, asked, attrs, slots, cross_busy):
        """§5.2: the shape and the promises of a <freebusy> result."""
        if fb.get("request-id") != rid:
            ex.violation(f"§5.2: request-id {fb.get('request-id')!r} is not {rid!r}")
        level = fb.get("level")
        ex["level"] = level
        if level not in LEVELS:
            ex.violation(f"§4.3: unknown level {level!r}")
            return
        if LEVELS.index(level) > LEVELS.index(asked):
            ex.violation(f"§4.3: granted {level} above the {asked} asked for")
        if level == "none":
            ex.violation("§6: level none must be an error, not a result")
        ex["start"], ex["end"] = fb.get("start"), fb.get("end")
        window = None
        if ex["start"] is not None or ex["end"] is not None:
            s, e = parse_instant(ex["start"]), parse_instant(ex["end"])
            if s is None or e is None or e <= s:
                ex.violation(f"§5.2: bad reply window {ex['start']!r}–{ex['end']!r}")
            else:
                window = (s, e)
                rs, re_ = parse_instant(attrs.get("start")), parse_instant(attrs.get("end"))
                if rs and s < rs or re_ and e > re_:
                    ex.violation("§5.2: the reply window exceeds the requested one")

        def intervals(name):
            """§5.2: the periods of every <name>, as (start, end, fbtype), by start.

            Checks what the responder promises: one element per kind (per
            FBTYPE for <busy>), no empty element, each list sorted as written
            and without whitespace."""
            out = []
            seen_fbtypes = []
            for elem in children(fb, name):
                fbtype = elem.get("fbtype") if name == "busy" else None
                if fbtype in seen_fbtypes:
                    ex.violation(f"§5.2: a second <{name}>" + (f" with fbtype {fbtype}" if fbtype else ""))
                seen_fbtypes.append(fbtype)
                if elem.get("start") is not None or elem.get("end") is not None:
                    ex.violation(f"§5.2: <{name}> has start/end attributes (version 0 form)")
                text = elem.text or ""
                if re.search(r"\s", text):
                    ex.violation(f"§5.2: the responder wrote whitespace in <{name}>")
                periods, error = parse_period_list(text)
                if error:
                    ex.violation(f"§5.2: <{name}>: {error}")
                    continue
                if periods != sorted(periods):
                    ex.violation(f"§5.2: <{name}> is not sorted")
                out.extend((s, e, fbtype) for s, e in periods)
            return sorted(out, key=lambda p: (p[0], p[1]))

        shown = intervals("shown")
        ex["shown"] = [[iso(s), iso(e)] for s, e, _ in shown]
        check_sorted_disjoint(ex, "shown", shown, merge=False)
        if window is None and shown:
            ex.violation("§5.2: <shown> without a window")
        for s, e, _ in shown:
            if window and (s < window[0] or e > window[1]):
                ex.violation(f"§5.2: <shown> {iso(s)}–{iso(e)} outside the window")

        def inside_shown(s, e):
            return any(ss <= s and e <= se for ss, se, _ in shown)

        present = {local(c.tag) for c in fb}
        allowed = {
            "yes-no": {"answer"},
            "slots": {"shown", "free"},
            "busy": {"shown", "busy"},
            "details": {"shown", "busy", "event"},
        }.get(level, set())
        for extra in sorted(present - allowed):
            ex.violation(f"§5.2: <{extra}> in a reply at level {level}")

        if level in ("busy", "details"):
            busy = intervals("busy")
            ex["busy"] = [[iso(s), iso(e), fbtype] for s, e, fbtype in busy]
            for s, e, fbtype in busy:
                if fbtype not in ("BUSY", "BUSY-TENTATIVE"):
                    ex.violation(f"§5.2: fbtype {fbtype!r}")
                if not inside_shown(s, e):
                    ex.violation(f"§5.2: busy {iso(s)}–{iso(e)} outside every <shown>")
            check_sorted_disjoint(ex, "busy", busy, merge=True)
        if level == "slots":
            free = intervals("free")
            ex["free"] = [[iso(s), iso(e)] for s, e, _ in free]
            want = parse_duration(attrs.get("duration", "PT30M"))
            for s, e, _ in free:
                if e - s != want:
                    ex.violation(f"§5.2: free slot {iso(s)}–{iso(e)} is not {attrs.get('duration', 'PT30M')} long")
                if not inside_shown(s, e):
                    ex.violation(f"§5.2: free slot {iso(s)}–{iso(e)} outside every <shown>")
                for bs, be, fbtype in (cross_busy or {}).get("busy", []):
                    bs, be = parse_instant(bs), parse_instant(be)
                    if s < be and bs < e:
                        ex.violation(
                            f"§5.2: free slot {iso(s)}–{iso(e)} overlaps busy {iso(bs)}–{iso(be)} "
                            "of the busy-level answer"
                        )
        if level == "yes-no":
            answers = [c for c in fb if c.tag == f"{{{NS}}}answer"]
            ex["answers"] = [[a.get("start"), a.get("end"), (a.text or "").strip()] for a in answers]
            if not slots:
                if answers:
                    ex.violation("§5.2: an <answer> to a yes-no request without <slot>")
            elif len(answers) != 1:
                ex.violation(f"§5.1: {len(answers)} answers at level yes-no, not exactly one")
            else:
                a = answers[0]
                if (a.get("start"), a.get("end")) != tuple(slots[0]):
                    ex.violation("§5.1: the <answer> is not for the first proposed slot")
                if (a.text or "").strip() not in ("free", "busy", "undisclosed"):
                    ex.violation(f"§5.2: answer {a.text!r} is not free, busy or undisclosed")

    async def expect_error(self, name, attrs, condition, etype, app_condition, slots=()):
        """A request §6 says must be refused with `condition` + `<app_condition/>`."""
        elem = self.payload(attrs, slots)
        ex = Exchange(name, self.sent_text(elem))
        kind, xml = await self.send_payload(elem)
        ex["reply_type"] = kind
        if kind == "error":
            err = self.error_of(xml)
            ex["error"] = err
            if err["condition"] != condition:
                ex.violation(f"§6: condition {err['condition']!r}, not {condition!r}")
            if err["type"] != etype:
                ex.violation(f"§6: error type {err['type']!r}, not {etype!r}")
            if err["app_condition"] != app_condition:
                ex.violation(f"§6: application condition {err['app_condition']!r}, not {app_condition!r}")
        elif kind == "timeout":
            ex.violation(f"§2: no answer within {IQ_TIMEOUT} s")
        else:
            ex.violation(f"§6: expected {condition}/<{app_condition}/>, got a result")
        self.emit(ex)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_sorted_disjoint(ex, name, items, merge):
    """§5.2: sorted and disjoint; with `merge`, touching periods of one fbtype are merged.

    `items` are (start, end, fbtype)."""
    for (s1, e1, a), (s2, e2, b) in zip(items, items[1:]):
        if s2 < s1:
            ex.violation(f"§5.2: <{name}> not sorted at {iso(s2)}")
        elif s2 < e1:
            ex.violation(f"§5.2: <{name}> {iso(s1)}–{iso(e1)} overlaps {iso(s2)}–{iso(e2)}")
        elif merge and s2 == e1 and a == b:
            ex.violation(f"§5.2: <{name}> {iso(s1)}–{iso(e1)} and the next are not merged")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jid", required=True, help="this peer's agent account")
    p.add_argument("--password", required=True)
    p.add_argument("--host", required=True, help="the XMPP server's address (no DNS SRV)")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--agent", required=True, help="the responder's bare JID")
    p.add_argument("--start", required=True, help="window start, e.g. 2026-01-12T00:00:00Z")
    p.add_argument("--end", required=True, help="window end")
    p.add_argument("--duration", default="PT1H", help="meeting length for level slots")
    p.add_argument("--slot", nargs=2, required=True, metavar=("START", "END"),
                   help="the slot asked about at level yes-no")
    p.add_argument("--slot2", nargs=2, required=True, metavar=("START", "END"),
                   help="a second slot, proposed first in a two-slot yes-no request")
    p.add_argument("--presence-timeout", type=float, default=20,
                   help="seconds to wait for the agent's presence before trying /attache")
    p.add_argument("--timeout", type=float, default=120, help="overall limit in seconds")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")
    args = p.parse_args()
    for t in [args.start, args.end, *args.slot, *args.slot2]:
        if parse_instant(t) is None:
            p.error(f"not an instant of §4.2 (YYYY-MM-DDTHH:MM:SSZ): {t}")
    args.slot, args.slot2 = tuple(args.slot), tuple(args.slot2)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    peer = Peer(args)
    # The test server speaks plain TCP on loopback; elsewhere insist on TLS.
    loopback = args.host in ("127.0.0.1", "::1", "localhost")
    peer.enable_direct_tls = False
    peer.enable_starttls = True
    peer.enable_plaintext = loopback
    mech = peer.plugin["feature_mechanisms"]
    mech.unencrypted_plain = loopback
    mech.unencrypted_scram = loopback
    peer.connect(args.host, args.port)

    try:
        peer.loop.run_until_complete(asyncio.wait_for(peer.disconnected, args.timeout))
    except asyncio.TimeoutError:
        peer.failed = peer.failed or f"gave up after {args.timeout} s"
    # slixmpp leaves its stream tasks running after the disconnect: end them
    # here rather than have asyncio complain about them at exit.
    pending = [t for t in asyncio.all_tasks(peer.loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        peer.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    if peer.failed:
        sys.stderr.write(f"interop_peer: {peer.failed}\n")
        print(json.dumps({"exchange": "fatal", "error": peer.failed, "violations": [peer.failed]}),
              flush=True)
        return 2
    if not peer.exchanges:
        sys.stderr.write("interop_peer: no exchange took place\n")
        return 2
    violations = sum(len(ex["violations"]) for ex in peer.exchanges)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
