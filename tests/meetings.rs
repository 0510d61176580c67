//! Meetings between real agents on a real Prosody (docs/protocol.md §12):
//! Alice's agent negotiates with Bob's and Carol's, holds a slot with both,
//! confirms, and every calendar ends up with the same event.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use xmpp_parsers::jid::Jid;

use crate::common::prosody::Prosody;
use crate::xmpp_agent::{Agent, TestClient};

fn attache(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_PASSWORD")
        .output()
        .expect("run attache");
    assert!(
        out.status.success(),
        "attache {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct World {
    server: Prosody,
    tmp: tempfile::TempDir,
    /// Tomorrow in Berlin: `YYYYMMDD` and as replies show it ("Wed 2 Dec").
    ymd: String,
    shown: String,
}

impl World {
    /// Agents for `people` (each with working hours 08–20 every day, Berlin);
    /// `busy` lists (who, HH:MM start, HH:MM end) tomorrow.
    fn new(people: &[&str], busy: &[(&str, &str, &str)]) -> World {
        let server = Prosody::start();
        let d = server.domain().to_string();
        let tmp = tempfile::tempdir().expect("tmp");
        let tz = chrono_tz::Europe::Berlin;
        let day = (Utc::now().with_timezone(&tz) + Days::days(1)).date_naive();
        let ymd = day.format("%Y%m%d").to_string();
        let shown = day.format("%a %-d %b").to_string();
        for who in people {
            server.register(who, &format!("{who}-pw"));
            server.register(&format!("{who}.agent"), &format!("{who}.agent-pw"));
            let dir = tmp.path().join(who);
            attache(
                &dir,
                &[
                    "init",
                    "--timezone",
                    "Europe/Berlin",
                    "--jid",
                    &format!("{who}.agent@{d}"),
                    "--owner",
                    &format!("{who}@{d}"),
                    "--server",
                    &server.server(),
                ],
            );
            let mut config = std::fs::read_to_string(dir.join("config.toml")).expect("config");
            config.push_str("\n[calendar.working_hours]\n");
            for wd in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
                config.push_str(&format!("{wd} = \"08:00-20:00\"\n"));
            }
            std::fs::write(dir.join("config.toml"), config).expect("config");
            let mut ics = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n");
            for (i, (_, from, to)) in busy.iter().filter(|(w, _, _)| w == who).enumerate() {
                let (from, to) = (from.replace(':', ""), to.replace(':', ""));
                ics.push_str(&format!(
                    "BEGIN:VEVENT\r\nUID:busy{i}@{who}\r\nDTSTAMP:20260101T000000Z\r\n\
                     DTSTART;TZID=Europe/Berlin:{ymd}T{from}00\r\nDTEND;TZID=Europe/Berlin:{ymd}T{to}00\r\n\
                     SUMMARY:Private thing\r\nEND:VEVENT\r\n"
                ));
            }
            ics.push_str("END:VCALENDAR\r\n");
            let file = tmp.path().join(format!("{who}.ics"));
            std::fs::write(&file, ics).expect("ics");
            attache(&dir, &["import", file.to_str().expect("path")]);
        }
        World {
            server,
            tmp,
            ymd,
            shown,
        }
    }

    fn dir(&self, who: &str) -> PathBuf {
        self.tmp.path().join(who)
    }

    /// `who` knows `other` (and their agent), in `group` if given.
    fn knows(&self, who: &str, other: &str, group: Option<&str>) {
        let d = self.server.domain();
        let mut args = vec![
            "contacts".to_string(),
            "add".into(),
            format!("{other}@{d}"),
            "--name".into(),
            capitalized(other),
            "--agent".into(),
            format!("{other}.agent@{d}"),
        ];
        if let Some(g) = group {
            args.push("--group".into());
            args.push(g.into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        attache(&self.dir(who), &args);
    }

    fn spawn(&self, who: &str) -> Agent {
        let dir = self.dir(who);
        let log = dir.join("agent.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("run")
            .env("ATTACHE_PASSWORD", format!("{who}.agent-pw"))
            .env("RUST_LOG", "attache=debug,info")
            .env_remove("ATTACHE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn attache run");
        Agent {
            child: Some(child),
            log,
        }
    }

    fn full(&self, user: &str) -> Jid {
        Jid::new(&format!("{user}@{}/attache", self.server.domain())).expect("jid")
    }

    fn bare(&self, user: &str) -> Jid {
        Jid::new(&format!("{user}@{}", self.server.domain())).expect("jid")
    }

    /// The UIDs and SEQUENCEs of `who`'s exported events whose summary is `summary`.
    fn exported(&self, who: &str, summary: &str) -> Vec<(String, String, String)> {
        let ics = attache(&self.dir(who), &["export"]);
        let mut found = Vec::new();
        for event in ics.split("BEGIN:VEVENT").skip(1) {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            if field("SUMMARY:") == summary {
                found.push((field("UID:"), field("SEQUENCE:"), field("DTSTART")));
            }
        }
        found
    }
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Sends `text` to the owner's agent and returns the first reply that
/// `wanted` accepts, within `within`.
async fn conversation(
    owner: &mut TestClient,
    agent: &Jid,
    text: Option<&str>,
    wanted: impl Fn(&str) -> bool,
    within: Duration,
    log: &Agent,
) -> String {
    if let Some(text) = text {
        owner.say(agent, text).await;
    }
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some((_, body)) = owner.next_message(Duration::from_secs(1)).await {
            if wanted(&body) {
                return body;
            }
            seen.push(body);
        }
    }
    panic!(
        "no wanted reply to {text:?}; got {seen:?}\nagent log:\n{}",
        log.log()
    )
}

#[tokio::test]
async fn three_people_are_booked_at_the_earliest_common_time_in_every_calendar() {
    // Bob is busy 08:00–09:00 and Carol 09:00–09:30 tomorrow: the earliest
    // 45 minutes all three have is 09:30–10:15.
    let w = World::new(
        &["alice", "bob", "carol"],
        &[("bob", "08:00", "09:00"), ("carol", "09:00", "09:30")],
    );
    w.knows("alice", "bob", None);
    w.knows("alice", "carol", None);
    w.knows("bob", "alice", Some("team"));
    w.knows("carol", "alice", Some("team"));
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let mut owner = TestClient::login(&w.server, &w.bare("alice").to_string(), "alice-pw").await;
    owner.wait_for_agent(&w.full("alice.agent"), &alice).await;
    owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    owner.wait_for_agent(&w.full("carol.agent"), &carol).await;
    let agent = w.bare("alice.agent");
    // Wait until Alice's agent sees both peers online (a free/busy answer).
    for who in ["bob", "carol"] {
        conversation(
            &mut owner,
            &agent,
            Some(&format!("free {who} tomorrow")),
            |b| b.contains("level busy"),
            Duration::from_secs(30),
            &alice,
        )
        .await;
    }

    let started = conversation(
        &mut owner,
        &agent,
        Some("meet bob, carol for 45m tomorrow about Design review"),
        |b| b.starts_with("Looking for a time"),
        Duration::from_secs(20),
        &alice,
    )
    .await;
    assert!(started.contains("Bob, Carol"), "{started}");
    let booked = conversation(
        &mut owner,
        &agent,
        None,
        |b| b.starts_with("Booked:"),
        Duration::from_secs(60),
        &alice,
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Design review, {} 09:30–10:15 with Bob, Carol.",
            w.shown
        )
    );

    // Every calendar has the event, with the same UID and SEQUENCE.
    let mut uids = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let events = w.exported(who, "Design review");
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        let (uid, sequence, start) = &events[0];
        assert!(start.contains(&format!("{}T", w.ymd)), "{who}: {start}");
        assert_eq!(sequence, "0", "{who}");
        uids.push(uid.clone());
    }
    assert!(uids.windows(2).all(|p| p[0] == p[1]), "{uids:?}");
    // Bob and Carol see it in their agenda, and their logs record the decision.
    let agenda = attache(&w.dir("bob"), &["agenda", "tomorrow"]);
    assert!(agenda.contains("Design review"), "{agenda}");
    let log = attache(&w.dir("carol"), &["log"]);
    assert!(log.contains("propose-meeting: allow"), "{log}");
}
