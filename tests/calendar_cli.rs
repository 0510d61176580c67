//! The command line as a user meets it: init, import/sync/export, contacts,
//! tasks, agenda, free, and what happens with bad input.

use std::path::Path;

use crate::common::{Agent, b, busy_triples, fixture};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text.replace('\n', "\r\n")).expect("write fixture copy");
    p
}

const ONE_EVENT: &str = "BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//test//EN
BEGIN:VEVENT
UID:one@test
DTSTAMP:20260101T000000Z
DTSTART:20260601T090000Z
DTEND:20260601T100000Z
SUMMARY:One
END:VEVENT
BEGIN:VEVENT
UID:two@test
DTSTAMP:20260101T000000Z
DTSTART:20260602T090000Z
DTEND:20260602T100000Z
SUMMARY:Two
END:VEVENT
END:VCALENDAR
";

#[test]
fn init_refuses_to_overwrite_an_existing_store() {
    let a = Agent::init("Europe/Berlin");
    let err = a.fails(&["init", "--timezone", "Europe/Berlin"]);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(a.dir.join("policies/default.toml").exists());
    assert!(a.dir.join("config.toml").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a.dir)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "data dir must be owner-only, is {mode:o}");
    }
}

#[test]
fn init_rejects_an_unknown_zone_with_an_example() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attache"))
        .args(["--data-dir"])
        .arg(tmp.path().join("d"))
        .args(["init", "--timezone", "Mars/Olympus"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Europe/Berlin"));
}

#[test]
fn commands_on_a_missing_store_say_to_run_init() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attache"))
        .args(["--data-dir"])
        .arg(tmp.path().join("nothing-here"))
        .args([
            "busy",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("attache --data-dir DIR init"));
}

#[test]
fn reimporting_a_file_updates_by_uid_and_never_duplicates() {
    let a = Agent::init("UTC");
    let f = fixture("scenarios/weekly-moved-and-cancelled.ics");
    let first = a.import(&f);
    assert!(first.contains("3 events (3 new, 0 updated)"), "{first}");
    let before = a.busy("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z");
    let second = a.import(&f);
    assert!(second.contains("3 events (0 new, 3 updated)"), "{second}");
    assert_eq!(
        a.busy("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        before
    );
}

#[test]
fn sync_removes_events_deleted_from_the_source_but_not_those_from_other_files() {
    let a = Agent::init("UTC");
    let tmp = tempfile::tempdir().expect("tmp");
    let cal = write(tmp.path(), "work.ics", ONE_EVENT);
    a.ok(&["sync", cal.to_str().expect("path")]);
    a.import(&fixture("scenarios/thisandfuture.ics"));
    assert_eq!(
        a.busy("2026-06-01T00:00:00Z", "2026-06-03T00:00:00Z").len(),
        2
    );

    // The owner deletes event "two" in their calendar app and syncs again.
    let without_two = ONE_EVENT.replace(
        "BEGIN:VEVENT\nUID:two@test\nDTSTAMP:20260101T000000Z\nDTSTART:20260602T090000Z\nDTEND:20260602T100000Z\nSUMMARY:Two\nEND:VEVENT\n",
        "",
    );
    write(tmp.path(), "work.ics", &without_two);
    let out = a.ok(&["sync", cal.to_str().expect("path")]);
    assert!(out.contains("1 events removed"), "{out}");
    assert_eq!(
        a.busy("2026-06-01T00:00:00Z", "2026-06-03T00:00:00Z"),
        vec![b("2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z")]
    );
    // Events from the other file are untouched.
    assert_eq!(
        a.busy("2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z").len(),
        2
    );
}

#[test]
fn export_then_import_gives_the_same_store() {
    let a = Agent::init("Europe/Berlin");
    for f in [
        "berlin-dst",
        "newyork-dst",
        "weekly-moved-and-cancelled",
        "thisandfuture",
        "blocking-rules",
    ] {
        a.import(&fixture(&format!("scenarios/{f}.ics")));
    }
    a.ok(&[
        "tasks",
        "add",
        "Write",
        "the",
        "report",
        "--due",
        "2026-06-01",
        "--priority",
        "2",
    ]);
    let exported = a.export();
    assert!(
        exported.starts_with("BEGIN:VCALENDAR\r\n"),
        "{}",
        &exported[..40.min(exported.len())]
    );
    assert!(exported.trim_end().ends_with("END:VCALENDAR"));

    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("export.ics");
    std::fs::write(&file, &exported).expect("write");
    let b2 = Agent::init("Europe/Berlin");
    b2.import(&file);
    assert_eq!(
        b2.export(),
        exported,
        "export → import → export must be stable"
    );
    for (from, to) in [
        ("2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z"),
        ("2026-05-01T00:00:00Z", "2026-05-15T00:00:00Z"),
    ] {
        assert_eq!(a.busy(from, to), b2.busy(from, to));
    }
    let tasks = b2.ok(&["tasks", "list", "--json"]);
    assert!(tasks.contains("Write the report"), "{tasks}");
}

#[test]
fn an_empty_calendar_imports_zero_events() {
    let a = Agent::init("UTC");
    let tmp = tempfile::tempdir().expect("tmp");
    let f = write(
        tmp.path(),
        "empty.ics",
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//x//y//EN\nEND:VCALENDAR\n",
    );
    let out = a.import(&f);
    assert!(out.contains("0 events"), "{out}");
}

/// Each malformed file fails with a message naming the line, exits non-zero,
/// and leaves the store exactly as it was.
#[test]
fn malformed_files_are_refused_whole_with_the_line_named() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    let before = a.export();
    let tmp = tempfile::tempdir().expect("tmp");

    let good_then_bad = format!(
        "{}BEGIN:VEVENT\nUID:bad@test\nDTSTAMP:20260101T000000Z\nDTSTART:2026-13-45\nEND:VEVENT\nEND:VCALENDAR\n",
        ONE_EVENT.trim_end().trim_end_matches("END:VCALENDAR")
    );
    let huge = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nDESCRIPTION:{}\nEND:VEVENT\nEND:VCALENDAR\n",
        "x".repeat(1 << 20)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad-date.ics", good_then_bad, "line 21"),
        (
            "truncated.ics",
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:t\nDTSTART:20260101T100000Z\n".into(),
            "line",
        ),
        (
            "unknown-tz.ics",
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:u\nDTSTART;TZID=Mars/Olympus:20260101T100000\nEND:VEVENT\nEND:VCALENDAR\n".into(),
            "line 5",
        ),
        ("huge-line.ics", huge, "line 5"),
        (
            "missing-colon.ics",
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:m\nDTSTART20260101T100000Z\nEND:VEVENT\nEND:VCALENDAR\n".into(),
            "line 5",
        ),
    ];
    for (name, text, want) in cases {
        let f = write(tmp.path(), name, &text);
        let err = a.fails(&["import", f.to_str().expect("path")]);
        assert!(err.contains(want), "{name}: expected '{want}' in: {err}");
        assert!(
            err.len() < 2000,
            "{name}: the error must not echo the input whole ({} bytes)",
            err.len()
        );
        assert_eq!(
            a.export(),
            before,
            "{name}: the store changed after a failed import"
        );
    }
    let garbage: Vec<u8> = (0..1500u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let f = tmp.path().join("garbage.ics");
    std::fs::write(&f, garbage).expect("write");
    let err = a.fails(&["import", f.to_str().expect("path")]);
    assert!(err.contains("line"), "{err}");
    assert_eq!(a.export(), before);
}

#[test]
fn busy_json_is_exactly_the_documented_format() {
    let a = Agent::init("UTC");
    a.import(&fixture("scenarios/thisandfuture.ics"));
    let out = a.ok(&[
        "busy",
        "--from",
        "2026-02-02T09:30:00Z",
        "--to",
        "2026-02-02T15:30:00Z",
        "--json",
    ]);
    let rows = busy_triples(&out);
    // Clipped to the window on both ends.
    assert_eq!(
        rows,
        vec![
            b("2026-02-02T09:30:00Z", "2026-02-02T10:00:00Z"),
            b("2026-02-02T15:00:00Z", "2026-02-02T15:30:00Z")
        ]
    );
    let err = a.fails(&[
        "busy",
        "--from",
        "yesterday",
        "--to",
        "2026-02-02T15:30:00Z",
    ]);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn free_offers_working_hours_around_busy_time_on_the_grid() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    // Monday 5 Jan 2026: busy 14:00–15:00 Berlin; working hours 09:00–17:00.
    let out = a.ok(&[
        "free",
        "--now",
        "2026-01-01T00:00:00Z",
        "--duration",
        "1h",
        "--from",
        "2026-01-05T00:00:00Z",
        "--to",
        "2026-01-06T00:00:00Z",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|o| {
            (
                o["start"].as_str().expect("s").into(),
                o["end"].as_str().expect("e").into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2026-01-05T08:00:00Z".into(), "2026-01-05T13:00:00Z".into()),
            ("2026-01-05T14:00:00Z".into(), "2026-01-05T16:00:00Z".into()),
        ]
    );
    // Saturday: no working hours.
    let out = a.ok(&[
        "free",
        "--now",
        "2026-01-01T00:00:00Z",
        "--duration",
        "30m",
        "--from",
        "2026-01-10T00:00:00Z",
        "--to",
        "2026-01-11T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn buffers_and_granularity_come_from_the_config() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    let cfg = a.dir.join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str("[calendar]\nbuffer_before = \"15m\"\nbuffer_after = \"15m\"\n");
    std::fs::write(&cfg, text).expect("write");
    let out = a.ok(&[
        "free",
        "--now",
        "2026-01-01T00:00:00Z",
        "--duration",
        "1h",
        "--from",
        "2026-01-05T00:00:00Z",
        "--to",
        "2026-01-06T00:00:00Z",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    // Busy 13:00–14:00Z widened to 12:45–14:15Z; the second range starts on the grid at 14:30Z.
    assert_eq!(v[0]["end"], "2026-01-05T12:45:00Z", "{out}");
    assert_eq!(v[1]["start"], "2026-01-05T14:30:00Z", "{out}");

    std::fs::write(
        &cfg,
        "timezone = \"Europe/Berlin\"\n[calendar]\nbufer_before = \"15m\"\n",
    )
    .expect("write");
    let err = a.fails(&["free", "--duration", "1h"]);
    assert!(err.contains("bufer_before"), "{err}");
}

#[test]
fn contacts_are_added_listed_and_removed_by_name_or_jid() {
    let a = Agent::init("UTC");
    a.ok(&[
        "contacts",
        "add",
        "Bob@Example.org",
        "--name",
        "Bob",
        "--agent",
        "bob.agent@example.org",
        "--group",
        "team",
        "--group",
        "Family",
    ]);
    a.ok(&["contacts", "add", "carol@example.org", "--name", "Carol"]);
    let list: serde_json::Value =
        serde_json::from_str(&a.ok(&["contacts", "list", "--json"])).expect("json");
    assert_eq!(list[0]["name"], "Bob");
    assert_eq!(list[0]["jid"], "bob@example.org");
    assert_eq!(list[0]["agent_jid"], "bob.agent@example.org");
    assert_eq!(list[0]["groups"], serde_json::json!(["family", "team"]));
    let err = a.fails(&["contacts", "add", "bob@example.org", "--name", "Robert"]);
    assert!(err.contains("already used by contact 'Bob'"), "{err}");
    let err = a.fails(&["contacts", "add", "not a jid", "--name", "X"]);
    assert!(err.contains("not a JID"), "{err}");
    a.ok(&["contacts", "remove", "BOB"]);
    a.ok(&["contacts", "remove", "carol@example.org"]);
    assert_eq!(a.ok(&["contacts", "list", "--json"]).trim(), "[]");
}

#[test]
fn tasks_keep_their_short_ids_when_others_are_done() {
    let a = Agent::init("UTC");
    a.ok(&["tasks", "add", "First"]);
    a.ok(&["tasks", "add", "Second", "--due", "2026-06-01 17:00"]);
    a.ok(&["tasks", "add", "Third"]);
    a.ok(&["tasks", "done", "1"]);
    let out = a.ok(&["tasks", "list"]);
    assert!(!out.contains("First"), "{out}");
    assert!(
        out.contains("  2  [ ] Second  (due Mon 01 Jun 17:00)"),
        "{out}"
    );
    assert!(out.contains("  3  [ ] Third"), "{out}");
    let all = a.ok(&["tasks", "list", "--all"]);
    assert!(all.contains("  1  [x] First"), "{all}");
    let err = a.fails(&["tasks", "done", "42"]);
    assert!(err.contains("no task 42"), "{err}");
}

#[test]
fn agenda_lists_the_days_events_in_local_time_including_free_ones() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/blocking-rules.ics"));
    let out = a.ok(&["agenda", "2026-05-05"]);
    assert!(
        out.contains("Tue 05 May 10:00–11:00  Floating time"),
        "{out}"
    );
    assert!(
        out.contains("Tue 05 May 14:00–15:00  Reminder only (free)"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&a.ok(&["agenda", "2026-05-04", "--json"])).expect("json");
    assert_eq!(json[0]["all_day"], true);
    assert_eq!(json[0]["summary"], "Day off (all day, no end)");
}

/// The committed malformed files (see tests/fixtures/malformed/README.md):
/// each is refused with a message that names the file and the line, and
/// nothing of it lands in the store.
#[test]
fn every_malformed_fixture_is_refused_and_leaves_the_store_unchanged() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/berlin-dst.ics"));
    let before = a.export();
    let dir = fixture("malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("malformed dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let expect: &[(&str, &str)] = &[
        ("bad-date.ics", "line 7"),
        ("missing-colon.ics", "line 9"),
        ("unknown-tzid.ics", "Mars/Olympus"),
        ("bad-rrule-freq.ics", "FORTNIGHTLY"),
        ("vevent-without-dtstart.ics", "DTSTART"),
    ];
    for f in files {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        let err = a.fails(&["import", f.to_str().expect("path")]);
        assert!(
            err.contains(&name),
            "{name}: the error must name the file: {err}"
        );
        assert!(
            err.contains("line "),
            "{name}: the error must name a line: {err}"
        );
        if let Some((_, want)) = expect.iter().find(|(n, _)| *n == name) {
            assert!(err.contains(want), "{name}: expected '{want}' in: {err}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            a.export(),
            before,
            "{name}: the store changed after a failed import"
        );
    }
}

/// `ATTACHE_*` environment variables override the file (`__` between table and key).
#[test]
fn environment_variables_override_the_config_file() {
    let a = Agent::init("Europe/Berlin");
    let saturday = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_attache"));
        cmd.arg("--data-dir").arg(&a.dir).args([
            "free",
            "--now",
            "2026-01-01T00:00:00Z",
            "--duration",
            "1h",
            "--from",
            "2026-01-10T00:00:00Z",
            "--to",
            "2026-01-11T00:00:00Z",
            "--json",
        ]);
        cmd.env_remove("ATTACHE_TIMEZONE");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        saturday(&[]).trim(),
        "[]",
        "no working hours on Saturdays by default"
    );
    let out = saturday(&[("ATTACHE_CALENDAR__WORKING_HOURS__SAT", "10:00-12:00")]);
    assert!(out.contains("2026-01-10T09:00:00Z"), "{out}");
    let out = saturday(&[
        ("ATTACHE_CALENDAR__WORKING_HOURS__SAT", "10:00-12:00"),
        ("ATTACHE_TIMEZONE", "UTC"),
    ]);
    assert!(out.contains("2026-01-10T10:00:00Z"), "{out}");
}

/// `attache … | head -1`: a reader that stops reading ends the command
/// quietly and successfully, with no panic on stderr.
#[test]
fn a_reader_that_stops_reading_ends_the_command_quietly() {
    use std::process::{Command, Stdio};
    let a = crate::common::Agent::init("Europe/Berlin");
    for args in [
        &["policy", "explain", "--peer", "x@example.org"][..],
        &["export"][..],
        &["contacts", "list", "--json"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(&a.dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn attache");
        // Closed before the command has started writing.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for attache");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}\n{stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
