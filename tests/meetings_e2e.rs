//! Meetings end to end on a real Prosody (issue 6): three to five people
//! with agents, working hours every day and events tomorrow, so every test
//! means the same thing on any weekday. What each test adds over
//! tests/meetings.rs: mixed disclosure levels in one meeting, a quorum with
//! an attendee whose agent never ran, a clear reason when nothing fits, an
//! optional attendee's "no", and the message bound checked on the wire
//! count the attendees' disclosure logs record.

use std::ops::Deref;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use xmpp_parsers::jid::Jid;

use attache::negotiate::meeting::message_bound;

use crate::common::world::{self, attache, calendar, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

/// One exported VEVENT, as much of it as these tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub uid: String,
    pub sequence: String,
    pub summary: String,
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The shared world plus what meetings tests read back from it.
pub struct Scene(pub world::World);

impl Deref for Scene {
    type Target = world::World;

    fn deref(&self) -> &world::World {
        &self.0
    }
}

impl Scene {
    /// A home for each of `people`, working 08–20 every day (Berlin), with
    /// `busy` = (who, HH:MM, HH:MM) events tomorrow.
    pub fn new(people: &[&str], busy: &[(&str, &str, &str)]) -> Scene {
        let w = world::World::start();
        for who in people {
            w.home(who);
            w.work_every_day(who);
            let mut events = String::new();
            for (i, (_, from, to)) in busy.iter().filter(|(b, _, _)| b == who).enumerate() {
                events.push_str(&w.tomorrow.event(
                    &format!("busy{i}@{who}"),
                    from,
                    to,
                    &["SUMMARY:Private thing"],
                ));
            }
            w.import_ics(who, &calendar(&events));
        }
        Scene(w)
    }

    /// `who`'s exported events, parsed (times to UTC).
    pub fn events(&self, who: &str) -> Vec<Exported> {
        parse_export(&attache(&self.dir(who), &["export"]))
    }

    /// `who`'s exported events titled `summary`.
    pub fn events_titled(&self, who: &str, summary: &str) -> Vec<Exported> {
        self.events(who)
            .into_iter()
            .filter(|e| e.summary == summary)
            .collect()
    }

    /// How many decisions `who`'s disclosure log holds.
    pub fn log_len(&self, who: &str) -> usize {
        let json = attache(&self.dir(who), &["log", "--json"]);
        let v: Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("log --json ({e}): {json}"));
        v.as_array()
            .unwrap_or_else(|| panic!("log --json is not an array: {json}"))
            .len()
    }

    /// `who`'s disclosure log entries (as JSON objects).
    pub fn log_entries(&self, who: &str) -> Vec<Value> {
        let json = attache(&self.dir(who), &["log", "--json"]);
        match serde_json::from_str::<Value>(&json) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("log --json is not an array ({other:?}): {json}"),
        }
    }

    /// Waits until the organizer's agent gets a free/busy answer from each
    /// of `peers` (so it sees them online), asking as `owner`.
    pub async fn until_reachable(
        &self,
        owner: &mut TestClient,
        agent: &Jid,
        peers: &[&str],
        logs: &[&Agent],
    ) {
        for who in peers {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let reply = expect_reply(
                    owner,
                    agent,
                    Some(&format!("free {who} tomorrow")),
                    |_| true,
                    Duration::from_secs(30),
                    logs,
                )
                .await;
                // Busy level answers with times; yes-no asks for one.
                if reply.contains("level ") || reply.contains("shares only whether") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{who} never became reachable: {reply}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Sends `meet …` and returns the outcome line ("Booked: …" or "Could not
/// book …") and how long it took from sending.
pub async fn meet(
    owner: &mut TestClient,
    agent: &Jid,
    order: &str,
    within: Duration,
    logs: &[&Agent],
) -> (String, Duration) {
    let sent = Instant::now();
    let started = expect_reply(
        owner,
        agent,
        Some(order),
        |b| b.starts_with("Looking for a time") || b.starts_with("Could not book"),
        Duration::from_secs(20),
        logs,
    )
    .await;
    if started.starts_with("Could not book") {
        return (started, sent.elapsed());
    }
    let outcome = expect_reply(
        owner,
        agent,
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        within,
        logs,
    )
    .await;
    (outcome, sent.elapsed())
}

/// Reads the VEVENTs of an `attache export`.
pub fn parse_export(ics: &str) -> Vec<Exported> {
    // Unfold continuation lines first (RFC 5545 §3.1).
    let unfolded = ics.replace("\r\n ", "").replace("\n ", "");
    let mut events = Vec::new();
    for block in unfolded.split("BEGIN:VEVENT").skip(1) {
        let body = block.split("END:VEVENT").next().unwrap_or_default();
        let prop = |name: &str| {
            body.lines().find_map(|l| {
                let l = l.trim_end_matches('\r');
                let (head, value) = l.split_once(':')?;
                let key = head.split(';').next()?;
                (key == name).then(|| (head.to_string(), value.to_string()))
            })
        };
        let text = |name: &str| prop(name).map(|(_, v)| v).unwrap_or_default();
        let (Some(start), Some(end)) = (prop("DTSTART"), prop("DTEND")) else {
            panic!("an exported event without DTSTART/DTEND:\n{body}");
        };
        events.push(Exported {
            uid: text("UID"),
            sequence: text("SEQUENCE"),
            summary: text("SUMMARY"),
            status: text("STATUS"),
            start: ics_time(&start.0, &start.1),
            end: ics_time(&end.0, &end.1),
        });
    }
    events
}

/// A DATE-TIME as export writes it: UTC (`…Z`) or with `TZID=Europe/Berlin`.
fn ics_time(head: &str, value: &str) -> DateTime<Utc> {
    if let Some(utc) = value.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .unwrap_or_else(|e| panic!("{head}:{value}: {e}"));
        return Utc.from_utc_datetime(&t);
    }
    let t = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .unwrap_or_else(|e| panic!("{head}:{value}: {e}"));
    let zone: chrono_tz::Tz = head
        .split(';')
        .find_map(|p| p.strip_prefix("TZID="))
        .map(|z| z.trim_matches('"'))
        .unwrap_or(world::ZONE)
        .parse()
        .unwrap_or_else(|e| panic!("{head}: {e}"));
    zone.from_local_datetime(&t)
        .single()
        .unwrap_or_else(|| panic!("{head}:{value} is ambiguous"))
        .with_timezone(&Utc)
}

/// Pairs of CONFIRMED (or status-less) events in `events` that overlap.
pub fn double_bookings(events: &[Exported]) -> Vec<(Exported, Exported)> {
    let booked: Vec<&Exported> = events
        .iter()
        .filter(|e| e.status.is_empty() || e.status == "CONFIRMED")
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in booked.iter().enumerate() {
        for b in &booked[i + 1..] {
            if a.start < b.end && b.start < a.end {
                pairs.push(((*a).clone(), (*b).clone()));
            }
        }
    }
    pairs
}

/// All of `events` share one UID and one SEQUENCE, and there is one per person.
fn assert_same_meeting(per_person: &[(&str, Vec<Exported>)]) {
    for (who, events) in per_person {
        assert_eq!(events.len(), 1, "{who}: {events:?}");
    }
    let first = &per_person[0].1[0];
    for (who, events) in per_person {
        let e = &events[0];
        assert_eq!(
            (&e.uid, &e.sequence, e.start, e.end),
            (&first.uid, &first.sequence, first.start, first.end),
            "{who} differs from {}",
            per_person[0].0
        );
    }
}

#[tokio::test]
async fn attendees_at_yes_no_and_busy_levels_are_booked_at_the_earliest_time_for_all() {
    // Bob (team: level busy) is busy 08:00–09:00; Carol shows Alice only
    // yes/no and is busy 09:00–10:00. Alice cannot see Carol's busy time, so
    // her agent has to learn it by holds: the earliest half hour for all
    // three is 10:00–10:30.
    let w = Scene::new(
        &["alice", "bob", "carol"],
        &[("bob", "08:00", "09:00"), ("carol", "09:00", "10:00")],
    );
    w.add_contact("alice", "bob", &[]);
    w.add_contact("alice", "carol", &[]);
    w.add_contact("bob", "alice", &["team"]);
    w.add_contact("carol", "alice", &[]);
    std::fs::write(
        w.dir("carol").join("policies/alice.toml"),
        "[[rule]]\nname = \"alice-yes-no\"\nwho = \"contact:Alice\"\naction = \"freebusy\"\n\
         decision = \"allow\"\nlevel = \"yes-no\"\nwindow = \"14d\"\nhours = \"working\"\n\n\
         [[rule]]\nname = \"alice-books\"\nwho = \"contact:Alice\"\n\
         action = \"propose-meeting\"\ndecision = \"allow\"\n",
    )
    .expect("policy");
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob, &carol];
    let mut owner = w.owner("alice", &alice).await;
    owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    owner.wait_for_agent(&w.full("carol.agent"), &carol).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob", "carol"], &logs)
        .await;

    let (booked, took) = meet(
        &mut owner,
        &agent,
        "meet bob, carol for 30m tomorrow about Mixed levels",
        Duration::from_secs(90),
        &logs,
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Mixed levels, {} 10:00–10:30 with Bob, Carol.",
            w.tomorrow.shown
        ),
        "Bob's log:\n{}\nCarol's log:\n{}\nexports: {:#?}\n{}",
        attache(&w.dir("bob"), &["log"]),
        attache(&w.dir("carol"), &["log"]),
        ["alice", "bob", "carol"].map(|who| w.events_titled(who, "Mixed levels")),
        alice.log()
    );
    eprintln!("mixed levels booked in {took:?}");
    let per_person: Vec<(&str, Vec<Exported>)> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|who| (who, w.events_titled(who, "Mixed levels")))
        .collect();
    assert_same_meeting(&per_person);
    assert_eq!(per_person[0].1[0].sequence, "0");
    // Carol's log shows her yes-no rule decided what Alice learnt.
    let log = attache(&w.dir("carol"), &["log"]);
    assert!(log.contains("alice-yes-no"), "{log}");
    assert!(!log.contains("level busy"), "{log}");
}

#[tokio::test]
async fn a_quorum_meeting_books_without_the_attendee_whose_agent_is_not_running() {
    let people = ["alice", "bob", "carol", "dave", "erin"];
    let w = Scene::new(&people, &[]);
    for other in &people[1..] {
        w.add_contact("alice", other, &[]);
        w.add_contact(other, "alice", &["team"]);
    }
    // Erin's agent is never started while Alice negotiates.
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let dave = w.spawn("dave");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob, &carol, &dave];
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob", "carol", "dave"], &logs)
        .await;

    let (booked, took) = meet(
        &mut owner,
        &agent,
        "meet bob, carol, dave, erin for 30m tomorrow about Standup quorum 3",
        Duration::from_secs(90),
        &logs,
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Standup, {} 08:00–08:30 with Bob, Carol, Dave. No answer: Erin.",
            w.tomorrow.shown
        ),
        "{}",
        alice.log()
    );
    eprintln!("quorum meeting booked in {took:?}");
    let per_person: Vec<(&str, Vec<Exported>)> = ["alice", "bob", "carol", "dave"]
        .into_iter()
        .map(|who| (who, w.events_titled(who, "Standup")))
        .collect();
    assert_same_meeting(&per_person);
    assert_eq!(w.events_titled("erin", "Standup"), vec![]);

    // When Erin's agent starts it has nothing held or booked for Alice.
    let erin = w.spawn("erin");
    let mut erin_owner = w.owner("erin", &erin).await;
    let erin_agent = w.bare("erin.agent");
    let meetings = expect_reply(
        &mut erin_owner,
        &erin_agent,
        Some("meetings"),
        |_| true,
        Duration::from_secs(20),
        &[&erin],
    )
    .await;
    assert!(meetings.starts_with("No meetings coming up"), "{meetings}");
    let from = w.tomorrow.at("00:00");
    let to = w.tomorrow.at_on(1, "00:00");
    let busy = attache(
        &w.dir("erin"),
        &["busy", "--from", &from, "--to", &to, "--json"],
    );
    assert_eq!(
        busy.trim(),
        "[]",
        "Erin's agent holds time tomorrow: {busy}"
    );
    assert_eq!(w.events_titled("erin", "Standup"), vec![]);
    // Its log has only the presence subscription it approved on starting.
    let asked: Vec<Value> = w
        .log_entries("erin")
        .into_iter()
        .filter(|e| e["action"] != "presence")
        .collect();
    assert_eq!(
        asked,
        Vec::<Value>::new(),
        "nobody asked Erin's agent anything"
    );
}

#[tokio::test]
async fn no_common_time_in_working_hours_says_so_and_names_the_earliest_outside() {
    // Bob is busy through all of tomorrow's working hours (08–20).
    let w = Scene::new(&["alice", "bob"], &[("bob", "08:00", "20:00")]);
    w.add_contact("alice", "bob", &[]);
    w.add_contact("bob", "alice", &["team"]);
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob];
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob"], &logs).await;

    let (failed, _) = meet(
        &mut owner,
        &agent,
        "meet bob for 30m tomorrow about Impossible",
        Duration::from_secs(60),
        &logs,
    )
    .await;
    // Bob's rule shows busy time only inside working hours, so the earliest
    // half hour outside them not known to be busy would be 00:00; the one
    // named is the earliest at a waking hour (07:00–22:00).
    assert_eq!(
        failed,
        format!(
            "Could not book Impossible: no common time in working hours; \
             earliest outside them is {} 07:00–07:30.",
            w.tomorrow.shown
        ),
        "{}",
        alice.log()
    );
    eprintln!("{failed}");
    // Nothing was held or booked anywhere.
    assert_eq!(w.events_titled("alice", "Impossible"), vec![]);
    assert_eq!(w.events_titled("bob", "Impossible"), vec![]);
}

#[tokio::test]
async fn an_optional_attendee_who_declines_does_not_block_the_meeting() {
    // Carol is optional, busy all day, and shows Alice only yes/no (so
    // Alice's agent asks her to hold and she says no).
    let w = Scene::new(&["alice", "bob", "carol"], &[("carol", "08:00", "20:00")]);
    w.add_contact("alice", "bob", &[]);
    w.add_contact("alice", "carol", &[]);
    w.add_contact("bob", "alice", &["team"]);
    w.add_contact("carol", "alice", &[]);
    std::fs::write(
        w.dir("carol").join("policies/alice.toml"),
        "[[rule]]\nname = \"alice-books\"\nwho = \"contact:Alice\"\n\
         action = \"propose-meeting\"\ndecision = \"allow\"\n",
    )
    .expect("policy");
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob, &carol];
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob", "carol"], &logs)
        .await;

    let (booked, took) = meet(
        &mut owner,
        &agent,
        "meet bob for 30m tomorrow about Sidebar optional carol",
        Duration::from_secs(90),
        &logs,
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Sidebar, {} 08:00–08:30 with Bob. Declined: Carol.",
            w.tomorrow.shown
        ),
        "{}",
        alice.log()
    );
    eprintln!("optional decline booked in {took:?}");
    let per_person: Vec<(&str, Vec<Exported>)> = ["alice", "bob"]
        .into_iter()
        .map(|who| (who, w.events_titled(who, "Sidebar")))
        .collect();
    assert_same_meeting(&per_person);
    assert_eq!(w.events_titled("carol", "Sidebar"), vec![]);
    // Carol was asked (her log has the meeting decision) and said no.
    let asked = w
        .log_entries("carol")
        .iter()
        .filter(|e| e["action"] == "propose-meeting")
        .count();
    assert!(asked >= 1, "{:?}", w.log_entries("carol"));
}

#[tokio::test]
async fn one_meeting_of_three_stays_within_the_message_bound() {
    let w = Scene::new(&["alice", "bob", "carol"], &[]);
    for other in ["bob", "carol"] {
        w.add_contact("alice", other, &[]);
        w.add_contact(other, "alice", &["team"]);
    }
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob, &carol];
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob", "carol"], &logs)
        .await;
    let before: Vec<usize> = ["bob", "carol"].iter().map(|p| w.log_len(p)).collect();

    let (booked, _) = meet(
        &mut owner,
        &agent,
        "meet bob, carol for 30m tomorrow about Bounded",
        Duration::from_secs(60),
        &logs,
    )
    .await;
    // Nobody is busy: the first candidate is booked, in one round.
    assert_eq!(
        booked,
        format!(
            "Booked: Bounded, {} 08:00–08:30 with Bob, Carol.",
            w.tomorrow.shown
        )
    );
    let rounds = 1;
    // Each request an attendee's agent decides is one disclosure-log entry:
    // the availability query, the hold and the confirm.
    let mut total = 0;
    for (i, who) in ["bob", "carol"].iter().enumerate() {
        let entries = w.log_entries(who);
        let mine = &entries[before[i]..];
        let actions: Vec<&str> = mine
            .iter()
            .map(|e| e["action"].as_str().unwrap_or_default())
            .collect();
        assert!(
            mine.len() <= message_bound(1, rounds),
            "{who} got {} requests: {actions:?}",
            mine.len()
        );
        assert!(
            actions.contains(&"propose-meeting"),
            "{who} was never asked to hold: {actions:?}"
        );
        eprintln!("{who}: {} logged requests {actions:?}", mine.len());
        total += mine.len();
    }
    assert!(
        total <= message_bound(2, rounds),
        "{total} > {}",
        message_bound(2, rounds)
    );
    eprintln!(
        "3-person meeting: {total} logged requests, bound {}",
        message_bound(2, rounds)
    );
}

#[tokio::test]
async fn back_to_back_meetings_each_find_the_next_free_slot() {
    let w = Scene::new(&["alice", "bob"], &[]);
    w.add_contact("alice", "bob", &[]);
    w.add_contact("bob", "alice", &["team"]);
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob];
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, &["bob"], &logs).await;
    // Nobody is busy: meeting i goes to 08:00 + 30 min × i, each `meet`
    // sent as soon as the previous one is booked. Six meetings of three
    // requests each stay under Bob's default 20 requests an hour.
    for (i, slot) in [
        "08:00–08:30",
        "08:30–09:00",
        "09:00–09:30",
        "09:30–10:00",
        "10:00–10:30",
        "10:30–11:00",
    ]
    .iter()
    .enumerate()
    {
        let (booked, _) = meet(
            &mut owner,
            &agent,
            &format!("meet bob for 30m tomorrow about Row {i}"),
            Duration::from_secs(60),
            &logs,
        )
        .await;
        assert_eq!(
            booked,
            format!("Booked: Row {i}, {} {slot} with Bob.", w.tomorrow.shown),
            "Bob's log:\n{}",
            attache(&w.dir("bob"), &["log"])
        );
    }
}
