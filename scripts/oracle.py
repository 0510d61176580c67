#!/usr/bin/env python3
"""Independent busy-time oracle for differential tests of `attache busy --json`.

Expands the VEVENTs of an iCalendar file with the Python package
`recurring-ical-events` (pinned 3.8.2, on `icalendar` 7.3.2; see
scripts/requirements-test.txt and scripts/setup-test-env.sh) and then applies
attache's blocking rules itself:

* only VEVENTs block (VTODO, VJOURNAL, VFREEBUSY never do);
* TRANSP:TRANSPARENT and STATUS:CANCELLED do not block;
* STATUS:TENTATIVE gives "tentative", anything else "busy";
* DATE values and floating DATE-TIMEs are read in the owner's zone (--tz);
  a DATE day runs from local midnight to local midnight;
* a DATE-TIME DTSTART without DTEND/DURATION is zero length (never blocks);
  a DATE DTSTART without an end lasts one day;
* intervals are clipped to the window [--from, --to), busy wins over
  tentative where they overlap (tentative is cut around busy), touching or
  overlapping intervals of the same status are merged, empty ones dropped.

Occurrence *starts* (RRULE/RDATE/EXDATE/RECURRENCE-ID/RANGE=THISANDFUTURE) come
from recurring-ical-events.  Occurrence *ends* and the local-to-UTC conversion
are computed here, following RFC 5545, because the library does not:

* it adds durations with Python's wall-clock datetime arithmetic, so a DTEND
  (exact duration) or DURATION:PT24H across a DST change comes out one hour
  off; here DTEND-DTSTART is an exact duration, and in DURATION the weeks and
  days are nominal (calendar days) while hours/minutes/seconds are exact;
* for zones built from a file's VTIMEZONE (Windows and Mozilla TZIDs) it uses
  dateutil, which reads a wall-clock time inside the skipped DST hour with the
  offset *after* the gap; RFC 5545 3.3.5 (and attache) read it with the offset
  from before the gap (02:30 on a spring-forward day is 03:30 summer time).
  An ambiguous time (repeated hour) is the first occurrence.

Usage:
  python scripts/oracle.py FILE.ics --from 2026-11-01T00:00:00Z \
      --to 2026-12-01T00:00:00Z --tz Europe/Berlin
  python scripts/oracle.py --batch tests/fixtures/windows.json
  python scripts/oracle.py FILE.ics --from ... --to ... --tz ... --instances

Single mode prints a JSON array of {"start", "end", "status"} objects (UTC,
"YYYY-MM-DDTHH:MM:SSZ", sorted by start).  Batch mode reads a JSON list of
{"file", "from", "to", "tz"} objects (other keys are ignored; a relative
"file" is looked up relative to the current directory, then to the batch
file's directory) and prints a JSON list with one entry per case, in order:
the result array, or {"error": "..."} when that case could not be computed.
--instances prints the raw occurrences in the window (before the blocking
rules) for debugging.  Exit status: 0 on success, 2 on usage errors, 1 when
the single file cannot be parsed or expanded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import functools
import re
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    import icalendar
    import recurring_ical_events
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"oracle: {exc}; run scripts/setup-test-env.sh and use .venv/bin/python\n"
    )
    sys.exit(2)

UTC = dt.timezone.utc
# The query window is widened by this much on each side before asking the
# library (its end computation may differ from ours by a DST hour); results
# are clipped to the real window afterwards.
QUERY_MARGIN = dt.timedelta(days=2)


class OracleError(Exception):
    """A case that cannot be computed (bad input)."""


# ---------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------


def parse_rfc3339(text: str) -> dt.datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise OracleError(f"not an RFC 3339 date-time: {text!r}") from exc
    if parsed.tzinfo is None:
        raise OracleError(f"RFC 3339 date-time needs a Z or an offset: {text!r}")
    return parsed.astimezone(UTC)


def fmt_utc(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_zone(name: str) -> dt.tzinfo:
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OracleError(f"unknown owner time zone {name!r}") from exc


def is_date(value) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


@functools.lru_cache(maxsize=65536)
def resolve_local(local: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant of wall-clock time `local` (naive) in zone `tz`.

    Works for any tzinfo (zoneinfo, dateutil's tzical from a VTIMEZONE, fixed
    offsets) using only UTC->local conversion, which every implementation gets
    right.  Ambiguous: the earlier instant.  Non-existent (in a gap): read with
    the offset in force before the gap, i.e. moved forward by the gap length.
    """
    local = local.replace(tzinfo=None, fold=0)
    offsets = set()
    for hours in range(-36, 37, 3):
        probe = (local + dt.timedelta(hours=hours)).replace(tzinfo=UTC)
        offset = probe.astimezone(tz).utcoffset()
        if offset is not None:
            offsets.add(offset)
    candidates = []
    for offset in offsets:
        instant = (local - offset).replace(tzinfo=UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == local:
            candidates.append(instant)
    if candidates:
        return min(candidates)
    # In a gap: take the offset in force a few hours earlier.
    before = resolve_local(local - dt.timedelta(hours=3), tz)
    offset = before.astimezone(tz).utcoffset()
    return (local - offset).replace(tzinfo=UTC)


def to_utc(value, owner_tz: dt.tzinfo) -> dt.datetime:
    """DATE -> owner-local midnight; floating -> owner-local; zoned -> resolved."""
    if is_date(value):
        return resolve_local(dt.datetime(value.year, value.month, value.day), owner_tz)
    if value.tzinfo is None:
        return resolve_local(value, owner_tz)
    if value.utcoffset() == dt.timedelta(0) and _is_utc_zone(value.tzinfo):
        return value.replace(tzinfo=UTC)
    return resolve_local(value.replace(tzinfo=None), value.tzinfo)


def _is_utc_zone(tz: dt.tzinfo) -> bool:
    if tz is UTC:
        return True
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"):
        return True
    return str(tz) in ("UTC", "UTC+00:00")


def local_parts(value, owner_tz: dt.tzinfo):
    """(naive wall-clock datetime, zone it is read in)."""
    if is_date(value):
        return dt.datetime(value.year, value.month, value.day), owner_tz
    if value.tzinfo is None:
        return value, owner_tz
    return value.replace(tzinfo=None), value.tzinfo


# ---------------------------------------------------------------------------
# DURATION values as written (Python's timedelta cannot tell P1D from PT24H)
# ---------------------------------------------------------------------------

DURATION_RE = re.compile(
    r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)


def parse_duration(text: str):
    """'P1DT2H' -> (nominal_days, exact_seconds), sign applied to both."""
    match = DURATION_RE.match(text.strip().upper())
    if not match:
        raise OracleError(f"bad DURATION {text!r}")
    sign, weeks, days, hours, minutes, seconds = match.groups()
    nominal = 7 * int(weeks or 0) + int(days or 0)
    exact = 3600 * int(hours or 0) + 60 * int(minutes or 0) + int(seconds or 0)
    if sign == "-":
        nominal, exact = -nominal, -exact
    return nominal, exact


def timedelta_as_duration(delta: dt.timedelta):
    """Best effort for durations only available as timedelta (RDATE PERIODs)."""
    return delta.days, delta.seconds + delta.microseconds // 1_000_000


def raw_vevent_durations(data: bytes) -> list:
    """The DURATION text of every VEVENT, in file order (None when absent).

    icalendar walks components in file order, so this list lines up with
    the VEVENTs of the parsed calendar(s).
    """
    text = data.decode("utf-8", errors="replace")
    lines = re.split(r"\r\n|\n|\r", text)
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    result = []
    stack: list[str] = []
    current = None
    for line in unfolded:
        name, _, value = line.partition(":")
        prop = name.split(";", 1)[0].strip().upper()
        if prop == "BEGIN":
            stack.append(value.strip().upper())
            if stack[-1] == "VEVENT":
                current = {"DURATION": None}
        elif prop == "END":
            if stack and stack[-1] == "VEVENT" and current is not None:
                result.append(current["DURATION"])
                current = None
            if stack:
                stack.pop()
        elif prop == "DURATION" and stack and stack[-1] == "VEVENT" and current:
            current["DURATION"] = value.strip()
    return result


# ---------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------


def add_duration(start_value, nominal_days: int, exact_seconds: int, owner_tz):
    """RFC 5545 3.3.6: add nominal days in wall-clock time, then exact seconds."""
    wall, zone = local_parts(start_value, owner_tz)
    if isinstance(start_value, dt.datetime) and start_value.tzinfo is not None and _is_utc_zone(start_value.tzinfo):
        base = wall.replace(tzinfo=UTC) + dt.timedelta(days=nominal_days)
    else:
        base = resolve_local(wall + dt.timedelta(days=nominal_days), zone)
    return base + dt.timedelta(seconds=exact_seconds)


class Calendar:
    """One parsed .ics file (possibly several VCALENDARs)."""

    def __init__(self, path: str):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise OracleError(f"cannot read {path}: {exc}") from exc
        self.path = path
        try:
            self.calendars = icalendar.Calendar.from_ical(data, multiple=True)
        except Exception as exc:  # icalendar raises ValueError and friends
            raise OracleError(f"{path}: cannot parse: {exc}") from exc
        if not self.calendars:
            raise OracleError(f"{path}: no VCALENDAR")
        for cal in self.calendars:
            if cal.name != "VCALENDAR":
                raise OracleError(f"{path}: top-level {cal.name} is not a VCALENDAR")
        # Map each VEVENT (by identity) to its DURATION text.
        events = [ev for cal in self.calendars for ev in cal.walk("VEVENT")]
        durations = raw_vevent_durations(data)
        self.raw_duration = {}
        if len(durations) == len(events):
            for event, text in zip(events, durations):
                self.raw_duration[id(event)] = text
        self.queries = []
        for cal in self.calendars:
            try:
                self.queries.append(
                    recurring_ical_events.of(cal, components=["VEVENT"])
                )
            except Exception as exc:
                raise OracleError(f"{path}: cannot expand: {exc}") from exc

    def instances(self, start: dt.datetime, end: dt.datetime, owner_tz):
        """All occurrences overlapping [start, end) (UTC), as dicts."""
        q_start = (start - QUERY_MARGIN).astimezone(owner_tz)
        q_end = (end + QUERY_MARGIN).astimezone(owner_tz)
        result = []
        for query in self.queries:
            try:
                # Private API of the pinned version: gives the occurrence's
                # source component, which the public between() hides.
                occurrences = query._occurrences_between(q_start, q_end)
            except Exception as exc:
                raise OracleError(f"{self.path}: cannot expand: {exc}") from exc
            for occ in occurrences:
                result.append(self._instance(occ, owner_tz))
        result.sort(key=lambda i: (i["start_utc"], i["end_utc"], i["uid"]))
        return [i for i in result if _touches_window(i, start, end)]

    def _instance(self, occ, owner_tz) -> dict:
        component = occ._adapter._component
        start_value = occ.start
        start_utc = to_utc(start_value, owner_tz)
        end_utc = self._end(component, start_value, start_utc, owner_tz)
        return {
            "uid": str(component.get("UID", "")),
            "summary": str(component.get("SUMMARY", "")),
            "status": str(component.get("STATUS", "")).upper(),
            "transp": str(component.get("TRANSP", "OPAQUE")).upper(),
            "recurrence_id": (
                str(component["RECURRENCE-ID"].dt) if "RECURRENCE-ID" in component else None
            ),
            "lib_start": str(occ.start),
            "lib_end": str(occ.end),
            "start_utc": start_utc,
            "end_utc": end_utc,
        }

    def _end(self, component, start_value, start_utc, owner_tz) -> dt.datetime:
        # An RDATE;VALUE=PERIOD instance carries its own end.
        for rdates in _as_list(component.get("RDATE")):
            for rdate in rdates.dts:
                period = rdate.dt
                if isinstance(period, tuple) and to_utc(period[0], owner_tz) == start_utc:
                    if isinstance(period[1], dt.timedelta):
                        days, secs = timedelta_as_duration(period[1])
                        return add_duration(start_value, days, secs, owner_tz)
                    return to_utc(period[1], owner_tz)
        dtstart = component["DTSTART"].dt
        if "DTEND" in component:
            dtend = component["DTEND"].dt
            if is_date(dtstart) and is_date(dtend):
                return add_duration(start_value, (dtend - dtstart).days, 0, owner_tz)
            # Exact duration of the component as written.
            # (A DATE/DATE-TIME mix is invalid; it is read the same way.)
            exact = to_utc(dtend, owner_tz) - to_utc(dtstart, owner_tz)
            return start_utc + exact
        if "DURATION" in component:
            text = self.raw_duration.get(id(component))
            if text is not None:
                days, secs = parse_duration(text)
            else:
                days, secs = timedelta_as_duration(component["DURATION"].dt)
            return add_duration(start_value, days, secs, owner_tz)
        if is_date(start_value):
            return add_duration(start_value, 1, 0, owner_tz)
        return start_utc


def _touches_window(inst, start, end) -> bool:
    """Overlaps [start, end); a zero-length instance counts when inside it."""
    if inst["start_utc"] == inst["end_utc"]:
        return start <= inst["start_utc"] < end
    return inst["start_utc"] < end and inst["end_utc"] > start


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------
# Blocking rules
# ---------------------------------------------------------------------------


def merge(intervals):
    """Merge touching/overlapping (start, end) pairs; input need not be sorted."""
    merged: list[list[dt.datetime]] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def subtract(intervals, holes):
    """Cut every interval around the (merged, sorted) holes."""
    result = []
    for start, end in intervals:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            next_pieces = []
            for p_start, p_end in pieces:
                if h_end <= p_start or h_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if p_start < h_start:
                    next_pieces.append((p_start, h_start))
                if h_end < p_end:
                    next_pieces.append((h_end, p_end))
            pieces = next_pieces
        result.extend(pieces)
    return [(s, e) for s, e in result if s < e]


def busy(path: str, start: dt.datetime, end: dt.datetime, tz_name: str, cache=None):
    if end < start:
        raise OracleError("--to is before --from")
    owner_tz = load_zone(tz_name)
    calendar = load_calendar(path, cache)
    busy_iv, tentative_iv = [], []
    for inst in calendar.instances(start, end, owner_tz):
        if inst["transp"] == "TRANSPARENT" or inst["status"] == "CANCELLED":
            continue
        s = max(inst["start_utc"], start)
        e = min(inst["end_utc"], end)
        if s >= e:
            continue
        (tentative_iv if inst["status"] == "TENTATIVE" else busy_iv).append((s, e))
    busy_m = merge(busy_iv)
    tentative_m = merge(subtract(merge(tentative_iv), busy_m))
    out = [(s, e, "busy") for s, e in busy_m] + [
        (s, e, "tentative") for s, e in tentative_m
    ]
    out.sort()
    return [{"start": fmt_utc(s), "end": fmt_utc(e), "status": st} for s, e, st in out]


def load_calendar(path: str, cache=None) -> Calendar:
    """Parse a file once per batch run (several windows query the same file)."""
    if cache is None:
        return Calendar(path)
    key = os.path.abspath(path)
    if key not in cache:
        try:
            cache[key] = Calendar(path)
        except OracleError as exc:
            cache[key] = exc
    if isinstance(cache[key], OracleError):
        raise cache[key]
    return cache[key]


def instances_report(path, start, end, tz_name):
    owner_tz = load_zone(tz_name)
    calendar = Calendar(path)
    report = []
    for inst in calendar.instances(start, end, owner_tz):
        row = dict(inst)
        row["start_utc"] = fmt_utc(inst["start_utc"])
        row["end_utc"] = fmt_utc(inst["end_utc"])
        report.append(row)
    return report


def run_batch(batch_path: str):
    try:
        with open(batch_path, encoding="utf-8") as handle:
            cases = json.load(handle)
    except (OSError, ValueError) as exc:
        raise OracleError(f"cannot read batch file {batch_path}: {exc}") from exc
    if isinstance(cases, dict) and "cases" in cases:
        cases = cases["cases"]
    if not isinstance(cases, list):
        raise OracleError("batch file must hold a JSON list of {file, from, to, tz}")
    base = os.path.dirname(os.path.abspath(batch_path))
    cache: dict = {}
    results = []
    for case in cases:
        try:
            path = case["file"]
            if not os.path.isabs(path) and not os.path.exists(path):
                alt = os.path.join(base, path)
                if os.path.exists(alt):
                    path = alt
            results.append(
                busy(
                    path,
                    parse_rfc3339(case["from"]),
                    parse_rfc3339(case["to"]),
                    case["tz"],
                    cache,
                )
            )
        except (OracleError, KeyError, TypeError) as exc:
            results.append({"error": str(exc)})
        except Exception as exc:  # a library crash must not hide other cases
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Busy-time oracle (recurring-ical-events) for attache busy --json"
    )
    parser.add_argument("file", nargs="?", help="the .ics file")
    parser.add_argument("--from", dest="start", help="window start, RFC 3339")
    parser.add_argument("--to", dest="end", help="window end, RFC 3339")
    parser.add_argument("--tz", default="UTC", help="owner's IANA time zone")
    parser.add_argument("--batch", help="JSON list of {file, from, to, tz} cases")
    parser.add_argument(
        "--instances", action="store_true", help="print raw occurrences instead"
    )
    args = parser.parse_args(argv)
    try:
        if args.batch:
            if args.file:
                parser.error("give either FILE or --batch, not both")
            print(json.dumps(run_batch(args.batch)))
            return 0
        if not (args.file and args.start and args.end):
            parser.error("FILE, --from and --to are required (or --batch)")
        start, end = parse_rfc3339(args.start), parse_rfc3339(args.end)
        if args.instances:
            print(json.dumps(instances_report(args.file, start, end, args.tz), indent=1))
        else:
            print(json.dumps(busy(args.file, start, end, args.tz)))
        return 0
    except OracleError as exc:
        sys.stderr.write(f"oracle: {exc}\n")
        return 1
    except Exception as exc:
        sys.stderr.write(f"oracle: {args.file}: {type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
