//! Meetings between real agents on a real Prosody (docs/protocol.md §12):
//! Alice's agent negotiates with Bob's and Carol's, holds a slot with both,
//! confirms, and every calendar ends up with the same event.

use std::ops::Deref;
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;

use crate::common::world::{self, attache, calendar, expect_reply as conversation};
use crate::xmpp_agent::{Agent, TestClient};

/// The shared world plus this file's ways of setting up and reading meetings.
struct World(world::World);

impl Deref for World {
    type Target = world::World;

    fn deref(&self) -> &world::World {
        &self.0
    }
}

impl World {
    /// Agents for `people` (each with working hours 08–20 every day, Berlin);
    /// `busy` lists (who, HH:MM start, HH:MM end) tomorrow.
    fn new(people: &[&str], busy: &[(&str, &str, &str)]) -> World {
        let w = world::World::start();
        for who in people {
            w.home(who);
            w.work_every_day(who);
            let mut events = String::new();
            for (i, (_, from, to)) in busy.iter().filter(|(w, _, _)| w == who).enumerate() {
                events.push_str(&w.tomorrow.event(
                    &format!("busy{i}@{who}"),
                    from,
                    to,
                    &["SUMMARY:Private thing"],
                ));
            }
            w.import_ics(who, &calendar(&events));
        }
        World(w)
    }

    /// `who` knows `other` (and their agent), in `group` if given.
    fn knows(&self, who: &str, other: &str, group: Option<&str>) {
        self.add_contact(who, other, group.as_slice());
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
    let mut owner = w.owner("alice", &alice).await;
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
            &[&alice],
        )
        .await;
    }

    let started = conversation(
        &mut owner,
        &agent,
        Some("meet bob, carol for 45m tomorrow about Design review"),
        |b| b.starts_with("Looking for a time"),
        Duration::from_secs(20),
        &[&alice],
    )
    .await;
    assert!(started.contains("Bob, Carol"), "{started}");
    let booked = conversation(
        &mut owner,
        &agent,
        None,
        |b| b.starts_with("Booked:"),
        Duration::from_secs(60),
        &[&alice],
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Design review, {} 09:30–10:15 with Bob, Carol.",
            w.tomorrow.shown
        )
    );

    // Every calendar has the event, with the same UID and SEQUENCE.
    let mut uids = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let events = w.exported(who, "Design review");
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        let (uid, sequence, start) = &events[0];
        assert!(
            start.contains(&format!("{}T", w.tomorrow.ymd)),
            "{who}: {start}"
        );
        assert_eq!(sequence, "0", "{who}");
        uids.push(uid.clone());
    }
    assert!(uids.windows(2).all(|p| p[0] == p[1]), "{uids:?}");
    // Bob and Carol see it in their agenda, and their logs record the decision.
    let agenda = attache(&w.dir("bob"), &["agenda", "tomorrow"]);
    assert!(agenda.contains("Design review"), "{agenda}");
    let log = attache(&w.dir("carol"), &["log"]);
    assert!(log.contains("propose-meeting: allow"), "{log}");

    // What changed today goes to each owner's own calendar app as an iTIP
    // REQUEST: one message on standard output, one file per meeting.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let itip = attache(&w.dir("bob"), &["export", "--since", &yesterday]);
    assert!(itip.contains("METHOD:REQUEST\r\n"), "{itip}");
    assert!(itip.contains(&format!("UID:{}", uids[0])), "{itip}");
    assert_eq!(itip.matches("BEGIN:VEVENT").count(), 1, "{itip}");
    let dir = w.dir("carol").join("itip");
    let said = attache(
        &w.dir("carol"),
        &[
            "export",
            "--since",
            &yesterday,
            "--out-dir",
            dir.to_str().expect("dir"),
        ],
    );
    assert!(said.starts_with("1 file in"), "{said}");
    let file = std::fs::read_to_string(dir.join("meeting-1.ics")).expect("meeting-1.ics");
    assert!(
        file.contains("METHOD:REQUEST") && file.contains("Design review"),
        "{file}"
    );
    // Nothing changed after tomorrow.
    let later = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(attache(&w.dir("bob"), &["export", "--since", &later]), "");
}

// ---------------------------------------------------------------------------
// The attendee's side at the protocol level (§12.2–12.3): test clients play
// organizer agents and send raw `<hold>`s and `<confirm>`s to a real agent.

const NS: &str = attache::negotiate::NS;

impl World {
    /// Starts `attendee`'s agent, which knows each of `organizers` (in the
    /// group given; by the default policy `team` sees busy time and may
    /// propose meetings), and logs a test client in as each organizer's agent.
    async fn attendee_and_organizers(
        &self,
        attendee: &str,
        organizers: &[(&str, Option<&str>)],
    ) -> (Agent, Vec<TestClient>) {
        for (o, group) in organizers {
            self.knows(attendee, o, *group);
        }
        let agent = self.spawn(attendee);
        let mut clients = Vec::new();
        for (o, _) in organizers {
            let jid = format!("{o}.agent@{}", self.server.domain());
            let mut c = TestClient::login(&self.server, &jid, &format!("{o}.agent-pw")).await;
            c.wait_for_agent(&self.full(&format!("{attendee}.agent")), &agent)
                .await;
            clients.push(c);
        }
        (agent, clients)
    }
}

fn hold_xml(id: &str, meeting: &str, slot: (&str, &str), expires: &str, summary: &str) -> Element {
    format!(
        "<hold xmlns='{NS}' request-id='{id}' meeting='{meeting}' sequence='0' \
         start='{}' end='{}' expires='{expires}'><summary>{summary}</summary></hold>",
        slot.0, slot.1
    )
    .parse()
    .expect("hold xml")
}

fn confirm_xml(id: &str, meeting: &str) -> Element {
    format!("<confirm xmlns='{NS}' request-id='{id}' meeting='{meeting}' sequence='0'/>")
        .parse()
        .expect("confirm xml")
}

/// An instant `secs` from now, as the protocol writes it.
fn in_secs(secs: i64) -> String {
    (Utc::now() + Days::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn set(client: &mut TestClient, to: &Jid, payload: Element) -> IqResponse {
    client.iq(Some(to), IqRequest::Set(payload)).await
}

fn result_of(r: IqResponse, agent: &Agent) -> Element {
    match r {
        IqResponse::Result(Some(el)) => el,
        other => panic!(
            "expected a result, got {other:?}\nagent log:\n{}",
            agent.log()
        ),
    }
}

/// (defined condition, application condition) of an error answer.
fn error_of(r: IqResponse) -> (String, String) {
    match r {
        IqResponse::Error(e) => (
            format!("{:?}", e.defined_condition),
            e.other.map(|o| o.name().to_string()).unwrap_or_default(),
        ),
        IqResponse::Result(p) => panic!("expected an error, got {p:?}"),
    }
}

/// The `<counter>` of a `<declined>`, as (start, end).
fn counter_of(declined: &Element) -> Option<(String, String)> {
    declined.get_child("counter", NS).map(|c| {
        (
            c.attr("start").unwrap_or_default().to_string(),
            c.attr("end").unwrap_or_default().to_string(),
        )
    })
}

fn instant(v: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(v)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_busy_attendee_counters_only_for_organizers_who_may_see_free_slots() {
    // Carol is busy 09:00–10:00. Alice is in her team (free/busy at level
    // busy); Dave may propose meetings but only gets yes-no free/busy.
    let w = World::new(
        &["alice", "carol", "dave"],
        &[("carol", "09:00", "10:00"), ("carol", "19:00", "20:00")],
    );
    std::fs::write(
        w.dir("carol").join("policies/dave.toml"),
        "[[rule]]\nname = \"dave-books-meetings\"\nwho = \"contact:Dave\"\n\
         action = \"propose-meeting\"\ndecision = \"allow\"\n",
    )
    .expect("policy");
    let (carol, mut clients) = w
        .attendee_and_organizers("carol", &[("alice", Some("team")), ("dave", None)])
        .await;
    let (mut alice, mut dave) = {
        let mut it = clients.drain(..);
        (it.next().expect("alice"), it.next().expect("dave"))
    };
    let to = w.full("carol.agent");
    let busy_slot = (w.tomorrow.at("09:00"), w.tomorrow.at("09:30"));
    let slot = (busy_slot.0.as_str(), busy_slot.1.as_str());

    let declined = result_of(
        set(
            &mut alice,
            &to,
            hold_xml("a1", "m-a@test", slot, &in_secs(300), "Sync"),
        )
        .await,
        &carol,
    );
    assert!(declined.is("declined", NS), "{declined:?}");
    assert_eq!(declined.attr("reason"), Some("busy"));
    // The earliest free half hour from the asked time on: right after.
    let counter = counter_of(&declined);
    assert_eq!(
        counter,
        Some((w.tomorrow.at("10:00"), w.tomorrow.at("10:30"))),
        "{declined:?}"
    );

    // Dave would learn a free slot he may not see: no counter.
    let declined = result_of(
        set(
            &mut dave,
            &to,
            hold_xml("d1", "m-d@test", slot, &in_secs(300), "Sync"),
        )
        .await,
        &carol,
    );
    assert!(declined.is("declined", NS), "{declined:?}");
    assert_eq!(declined.attr("reason"), Some("busy"));
    assert_eq!(counter_of(&declined), None, "{declined:?}");

    // The counter really is free: Alice holds it.
    let (cs, ce) = counter.expect("a counter");
    let held = result_of(
        set(
            &mut alice,
            &to,
            hold_xml("a2", "m-a@test", (&cs, &ce), &in_secs(300), "Sync"),
        )
        .await,
        &carol,
    );
    assert!(held.is("held", NS), "{held:?}");

    // A counter stays inside the hours Alice's free/busy rule shows (Carol's
    // working hours, 08–20): busy until 20:00, so the next morning.
    let late = (w.tomorrow.at("19:30"), w.tomorrow.at("20:00"));
    let declined = result_of(
        set(
            &mut alice,
            &to,
            hold_xml(
                "a3",
                "m-late@test",
                (&late.0, &late.1),
                &in_secs(300),
                "Late",
            ),
        )
        .await,
        &carol,
    );
    assert_eq!(
        counter_of(&declined),
        Some((w.tomorrow.at_on(1, "08:00"), w.tomorrow.at_on(1, "08:30"))),
        "{declined:?}"
    );

    // Carol's disclosure log accounts for the slots the counters showed.
    let log = attache(&w.dir("carol"), &["log"]);
    let shown = format!("counter: {}", &cs[..16]);
    assert!(log.contains(&shown), "{shown} not in:\n{log}");
    assert_eq!(log.matches("counter:").count(), 2, "{log}");
}

#[tokio::test]
async fn two_organizers_racing_for_one_slot_get_exactly_one_booking() {
    let w = World::new(&["alice", "bob", "carol"], &[]);
    let (bob, mut clients) = w
        .attendee_and_organizers("bob", &[("alice", Some("team")), ("carol", Some("team"))])
        .await;
    let (mut alice, mut carol) = {
        let mut it = clients.drain(..);
        (it.next().expect("alice"), it.next().expect("carol"))
    };
    let to = w.full("bob.agent");
    let started = Instant::now();
    // Three races: the same slot, then overlapping slots either way round.
    let races = [
        (("10:00", "10:30"), ("10:00", "10:30")),
        (("12:00", "12:30"), ("12:15", "12:45")),
        (("14:15", "14:45"), ("14:00", "14:30")),
    ];
    for (round, (a_slot, c_slot)) in races.iter().enumerate() {
        let a = (w.tomorrow.at(a_slot.0), w.tomorrow.at(a_slot.1));
        let c = (w.tomorrow.at(c_slot.0), w.tomorrow.at(c_slot.1));
        let (ma, mc) = (format!("race{round}-a@test"), format!("race{round}-c@test"));
        let (sa, sc) = (format!("Race {round} A"), format!("Race {round} C"));
        let (expires, id) = (in_secs(300), format!("h{round}"));
        let (ra, rc) = tokio::join!(
            set(
                &mut alice,
                &to,
                hold_xml(&id, &ma, (&a.0, &a.1), &expires, &sa)
            ),
            set(
                &mut carol,
                &to,
                hold_xml(&id, &mc, (&c.0, &c.1), &expires, &sc)
            ),
        );
        let (ra, rc) = (result_of(ra, &bob), result_of(rc, &bob));
        let held: Vec<bool> = [&ra, &rc].iter().map(|r| r.is("held", NS)).collect();
        assert_eq!(
            held.iter().filter(|h| **h).count(),
            1,
            "round {round}: {ra:?} / {rc:?}"
        );
        let (winner, won_slot, meeting, loser) = if held[0] {
            (&mut alice, &a, &ma, &rc)
        } else {
            (&mut carol, &c, &mc, &ra)
        };
        assert!(loser.is("declined", NS), "round {round}: {loser:?}");
        assert_eq!(loser.attr("reason"), Some("busy"));
        // A counter (both may see busy time) never points at the held time.
        if let Some((cs, ce)) = counter_of(loser) {
            assert!(
                instant(&ce) <= instant(&won_slot.0) || instant(&cs) >= instant(&won_slot.1),
                "round {round}: counter {cs}..{ce} overlaps the hold {won_slot:?}"
            );
        }
        let confirmed = result_of(
            set(winner, &to, confirm_xml(&format!("c{round}"), meeting)).await,
            &bob,
        );
        assert!(confirmed.is("confirmed", NS), "{confirmed:?}");
    }
    let raced = started.elapsed();
    for round in 0..races.len() {
        let a = w.exported("bob", &format!("Race {round} A"));
        let c = w.exported("bob", &format!("Race {round} C"));
        assert_eq!(a.len() + c.len(), 1, "round {round}: {a:?} {c:?}");
    }
    eprintln!("three races with confirms: {raced:?}");
}

#[tokio::test]
async fn a_lapsed_hold_frees_the_slot_and_its_late_confirm_is_refused() {
    let w = World::new(&["alice", "bob", "carol"], &[]);
    let (bob, mut clients) = w
        .attendee_and_organizers("bob", &[("alice", Some("team")), ("carol", Some("team"))])
        .await;
    let (mut alice, mut carol) = {
        let mut it = clients.drain(..);
        (it.next().expect("alice"), it.next().expect("carol"))
    };
    let to = w.full("bob.agent");
    let (taken, free) = (
        (w.tomorrow.at("11:00"), w.tomorrow.at("11:30")),
        (w.tomorrow.at("15:00"), w.tomorrow.at("15:30")),
    );
    let slot = (taken.0.as_str(), taken.1.as_str());
    let short = in_secs(3);

    // Alice holds 11:00 and 15:00 for three seconds and never confirms in time.
    let held = result_of(
        set(
            &mut alice,
            &to,
            hold_xml("x1", "lapse@test", slot, &short, "Lapse"),
        )
        .await,
        &bob,
    );
    assert!(held.is("held", NS), "{held:?}");
    let until = instant(held.attr("expires").expect("expires"));
    assert!(until <= instant(&short), "{held:?}");
    let held = result_of(
        set(
            &mut alice,
            &to,
            hold_xml("x2", "late@test", (&free.0, &free.1), &short, "Late"),
        )
        .await,
        &bob,
    );
    assert!(held.is("held", NS), "{held:?}");

    // While the hold lives, Carol cannot have 11:00.
    let declined = result_of(
        set(
            &mut carol,
            &to,
            hold_xml("y1", "after@test", slot, &in_secs(300), "After"),
        )
        .await,
        &bob,
    );
    assert!(declined.is("declined", NS), "{declined:?}");

    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;

    // After it lapsed, she can; Alice's late confirm finds the slot taken.
    let held = result_of(
        set(
            &mut carol,
            &to,
            hold_xml("y2", "after@test", slot, &in_secs(300), "After"),
        )
        .await,
        &bob,
    );
    assert!(held.is("held", NS), "{held:?}");
    let refused = set(&mut alice, &to, confirm_xml("x3", "lapse@test")).await;
    assert_eq!(
        error_of(refused),
        ("Conflict".to_string(), "hold-expired".to_string())
    );
    // A late confirm of a slot nobody took meanwhile still books (§12.3).
    let late = result_of(
        set(&mut alice, &to, confirm_xml("x4", "late@test")).await,
        &bob,
    );
    assert!(late.is("confirmed", NS), "{late:?}");
    let done = result_of(
        set(&mut carol, &to, confirm_xml("y3", "after@test")).await,
        &bob,
    );
    assert!(done.is("confirmed", NS), "{done:?}");

    assert_eq!(w.exported("bob", "Lapse"), vec![]);
    assert_eq!(w.exported("bob", "After").len(), 1);
    assert_eq!(w.exported("bob", "Late").len(), 1);
}

#[tokio::test]
async fn replayed_holds_and_confirms_get_the_same_answer_and_book_once() {
    let w = World::new(&["alice", "bob"], &[]);
    let (bob, mut clients) = w
        .attendee_and_organizers("bob", &[("alice", Some("team"))])
        .await;
    let mut alice = clients.pop().expect("alice");
    let to = w.full("bob.agent");
    let slot = (w.tomorrow.at("13:00"), w.tomorrow.at("13:30"));
    let hold = hold_xml(
        "r1",
        "replay@test",
        (&slot.0, &slot.1),
        &in_secs(300),
        "Replay",
    );

    let first = result_of(set(&mut alice, &to, hold.clone()).await, &bob);
    assert!(first.is("held", NS), "{first:?}");
    let again = result_of(set(&mut alice, &to, hold.clone()).await, &bob);
    assert_eq!(first, again);
    // The same id for another slot is a mistake, not a replay.
    let other = hold_xml(
        "r1",
        "replay@test",
        (&w.tomorrow.at("16:00"), &w.tomorrow.at("16:30")),
        &in_secs(300),
        "Replay",
    );
    assert_eq!(
        error_of(set(&mut alice, &to, other).await).1,
        "request-id-reused"
    );

    let confirm = confirm_xml("r2", "replay@test");
    let first = result_of(set(&mut alice, &to, confirm.clone()).await, &bob);
    assert!(first.is("confirmed", NS), "{first:?}");
    let again = result_of(set(&mut alice, &to, confirm).await, &bob);
    assert_eq!(first, again);
    // A confirm of the booked meeting under a new id is a replay too, and
    // so is the original hold.
    let fresh = result_of(
        set(&mut alice, &to, confirm_xml("r3", "replay@test")).await,
        &bob,
    );
    assert!(fresh.is("confirmed", NS), "{fresh:?}");
    let held = result_of(set(&mut alice, &to, hold).await, &bob);
    assert!(held.is("held", NS), "{held:?}");

    let booked = w.exported("bob", "Replay");
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0].1, "0");
}

/// Plays Bob's agent for Alice's real agent: tells nothing about free/busy,
/// declines the first hold with a counter at `counter`, holds that, and
/// confirms. Returns the slots it was asked to hold, in order.
async fn counter_playing_attendee(
    mut bob: TestClient,
    counter: (String, String),
) -> Vec<(String, String)> {
    use tokio_xmpp::Stanza;
    use xmpp_parsers::iq::Iq;
    use xmpp_parsers::presence::{Presence, Type as PresenceType};
    let mut asked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // (subscriber, or the IQ request's sender, id and payload)
        let incoming = bob
            .next_matching(Duration::from_secs(1), |s| match s {
                Stanza::Presence(p) if p.type_ == PresenceType::Subscribe => {
                    Some(Err(p.from.clone()))
                }
                Stanza::Iq(Iq::Get {
                    from, id, payload, ..
                })
                | Stanza::Iq(Iq::Set {
                    from, id, payload, ..
                }) => Some(Ok((from.clone(), id.clone(), payload.clone()))),
                _ => None,
            })
            .await;
        let (from, id, payload) = match incoming {
            None => continue,
            Some(Err(subscriber)) => {
                let mut ok = Presence::new(PresenceType::Subscribed);
                ok.to = subscriber;
                bob.send(ok.into()).await;
                continue;
            }
            Some(Ok(request)) => request,
        };
        let attr = |n: &str| payload.attr(n).unwrap_or_default().to_string();
        let common = format!(
            "xmlns='{NS}' request-id='{}' meeting='{}' sequence='{}'",
            attr("request-id"),
            attr("meeting"),
            attr("sequence")
        );
        let answer: Option<Element> = match payload.name() {
            // Nothing about availability: the organizer must try holds.
            "freebusy" => None,
            "hold" => {
                let slot = (attr("start"), attr("end"));
                asked.push(slot.clone());
                let xml = if slot == counter {
                    format!("<held {common} expires='{}'/>", attr("expires"))
                } else if asked.len() == 1 {
                    format!(
                        "<declined {common} reason='busy'><counter start='{}' end='{}'/></declined>",
                        counter.0, counter.1
                    )
                } else {
                    format!("<declined {common} reason='busy'/>")
                };
                Some(xml.parse().expect("answer xml"))
            }
            "confirm" => Some(format!("<confirmed {common}/>").parse().expect("xml")),
            "release" => Some(
                format!(
                    "<released xmlns='{NS}' request-id='{}' meeting='{}'/>",
                    attr("request-id"),
                    attr("meeting")
                )
                .parse()
                .expect("xml"),
            ),
            _ => None,
        };
        let done = payload.name() == "confirm";
        let result = Iq::Result {
            from: None,
            to: from,
            id,
            payload: answer,
        };
        bob.send(result.into()).await;
        if done {
            break;
        }
    }
    asked
}

#[tokio::test]
async fn an_organizer_books_the_counter_proposal_of_a_busy_attendee() {
    let w = World::new(&["alice", "bob"], &[]);
    w.knows("alice", "bob", None);
    let d = w.server.domain().to_string();
    // Bob's "agent" is online before Alice's and approves her subscription.
    let bob = TestClient::login(&w.server, &format!("bob.agent@{d}"), "bob.agent-pw").await;
    let counter = (w.tomorrow.at("15:00"), w.tomorrow.at("15:30"));
    let fake = tokio::spawn(counter_playing_attendee(bob, counter.clone()));
    let alice = w.spawn("alice");
    let mut owner = w.owner("alice", &alice).await;
    let agent = w.bare("alice.agent");
    // Alice's agent sees Bob's agent online once the subscription is through.
    let mut started = String::new();
    for _ in 0..20 {
        started = conversation(
            &mut owner,
            &agent,
            Some("meet bob for 30m tomorrow about Counter"),
            |b| b.starts_with("Looking for a time") || b.contains("offline"),
            Duration::from_secs(20),
            &[&alice],
        )
        .await;
        if started.starts_with("Looking for a time") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(started.starts_with("Looking for a time"), "{started}");
    let booked = conversation(
        &mut owner,
        &agent,
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(60),
        &[&alice],
    )
    .await;
    assert_eq!(
        booked,
        format!(
            "Booked: Counter, {} 15:00–15:30 with Bob.",
            w.tomorrow.shown
        ),
        "{}",
        alice.log()
    );
    let asked = fake.await.expect("the fake attendee");
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_ne!(asked[0], counter);
    assert_eq!(asked[1], counter);
    let events = w.exported("alice", "Counter");
    assert_eq!(events.len(), 1, "{events:?}");
}
