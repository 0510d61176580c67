//! Changing booked meetings between real agents on a real Prosody
//! (docs/protocol.md §12.5–12.7): the organizer's owner cancels or moves a
//! meeting booked with two attendees, or an attendee's owner declines it,
//! and every calendar and every owner hears about it once.

use std::time::Duration;

use crate::common::world::{World, attache, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

/// Alice, Bob and Carol with running agents and a 45-minute "Design review"
/// that Alice's agent booked with both tomorrow; Alice's owner is logged in.
struct Booked {
    w: World,
    alice: Agent,
    bob: Agent,
    carol: Agent,
    owner: TestClient,
    /// The short id Alice's agent gave the meeting.
    id: String,
}

impl Booked {
    async fn new() -> Booked {
        let w = World::start();
        for who in ["alice", "bob", "carol"] {
            w.home(who);
            w.work_every_day(who);
        }
        w.add_contact("alice", "bob", &[]);
        w.add_contact("alice", "carol", &[]);
        w.add_contact("bob", "alice", &["team"]);
        w.add_contact("carol", "alice", &["team"]);
        let bob = w.spawn("bob");
        let carol = w.spawn("carol");
        let alice = w.spawn("alice");
        let mut owner = w.owner("alice", &alice).await;
        owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
        owner.wait_for_agent(&w.full("carol.agent"), &carol).await;
        let agent = w.bare("alice.agent");
        // Alice's agent sees both peers online once they answer free/busy.
        for who in ["bob", "carol"] {
            expect_reply(
                &mut owner,
                &agent,
                Some(&format!("free {who} tomorrow")),
                |b| b.contains("level busy"),
                Duration::from_secs(30),
                &[&alice],
            )
            .await;
        }
        let started = expect_reply(
            &mut owner,
            &agent,
            Some("meet bob, carol for 45m tomorrow 10:00 about Design review"),
            |b| b.starts_with("Looking for a time"),
            Duration::from_secs(20),
            &[&alice],
        )
        .await;
        let id = started
            .split("(meeting ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("a meeting id in the reply")
            .to_string();
        let booked = expect_reply(
            &mut owner,
            &agent,
            None,
            |b| b.starts_with("Booked:") || b.starts_with("Could not"),
            Duration::from_secs(60),
            &[&alice, &bob, &carol],
        )
        .await;
        assert_eq!(
            booked,
            format!(
                "Booked: Design review, {} 10:00–10:45 with Bob, Carol.",
                w.tomorrow.shown
            )
        );
        Booked {
            w,
            alice,
            bob,
            carol,
            owner,
            id,
        }
    }

    /// `who`'s exported "Design review" events: (UID, SEQUENCE, DTSTART, STATUS).
    fn exported(&self, who: &str) -> Vec<[String; 4]> {
        let ics = attache(&self.w.dir(who), &["export"]);
        ics.split("BEGIN:VEVENT")
            .skip(1)
            .filter_map(|event| {
                let field = |name: &str| {
                    event
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                        .unwrap_or_default()
                };
                (field("SUMMARY:") == "Design review").then(|| {
                    [
                        field("UID:"),
                        field("SEQUENCE:"),
                        field("DTSTART"),
                        field("STATUS:"),
                    ]
                })
            })
            .collect()
    }
}

#[tokio::test]
async fn the_organizer_cancels_and_every_calendar_and_owner_knows() {
    let mut b = Booked::new().await;
    let mut bob_owner = b.w.owner("bob", &b.bob).await;
    let mut carol_owner = b.w.owner("carol", &b.carol).await;
    let agent = b.w.bare("alice.agent");
    let listed = expect_reply(
        &mut b.owner,
        &agent,
        Some("meetings"),
        |t| t.contains("Design review"),
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert_eq!(
        listed,
        format!(
            "{} Design review, {} 10:00–10:45 with Bob, Carol — booked",
            b.id, b.w.tomorrow.shown
        )
    );
    let started = std::time::Instant::now();
    let cancelled = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!("cancel {}", b.id)),
        |t| t.starts_with("Cancelled"),
        Duration::from_secs(30),
        &[&b.alice],
    )
    .await;
    eprintln!("cancel answered in {:?}", started.elapsed());
    assert_eq!(
        cancelled,
        format!(
            "Cancelled: Design review, {} 10:00–10:45. Told Bob, Carol.",
            b.w.tomorrow.shown
        )
    );
    for (who, client) in [("bob", &mut bob_owner), ("carol", &mut carol_owner)] {
        let told = expect_reply(
            client,
            &b.w.bare(&format!("{who}.agent")),
            None,
            |t| t.starts_with("Cancelled by"),
            Duration::from_secs(10),
            &[&b.alice, &b.bob, &b.carol],
        )
        .await;
        assert_eq!(
            told,
            format!(
                "Cancelled by Alice's agent: Design review, {} 10:00–10:45",
                b.w.tomorrow.shown
            )
        );
    }
    let mut uids = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let events = b.exported(who);
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        assert_eq!(events[0][3], "CANCELLED", "{who}: {events:?}");
        uids.push(events[0][0].clone());
        let agenda = attache(&b.w.dir(who), &["agenda", "tomorrow"]);
        assert!(!agenda.contains("Design review"), "{who}: {agenda}");
    }
    assert!(uids.windows(2).all(|p| p[0] == p[1]), "{uids:?}");
    // Each owner's calendar app gets it as an iTIP CANCEL.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    for who in ["alice", "bob"] {
        let itip = attache(&b.w.dir(who), &["export", "--since", &yesterday]);
        assert!(itip.contains("METHOD:CANCEL\r\n"), "{who}: {itip}");
        assert!(itip.contains("STATUS:CANCELLED"), "{who}: {itip}");
    }
    // Cancelled meetings leave the list; cancelling again changes nothing.
    let listed = expect_reply(
        &mut b.owner,
        &agent,
        Some("meetings"),
        |_| true,
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert!(listed.starts_with("No meetings coming up"), "{listed}");
    let again = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!("cancel {}", b.id)),
        |_| true,
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert_eq!(again, "Design review is already cancelled.");
}

#[tokio::test]
async fn the_organizer_moves_it_and_every_calendar_has_the_new_time() {
    let mut b = Booked::new().await;
    let agent = b.w.bare("alice.agent");
    let before = b.exported("alice");
    let day_after = b.w.tomorrow.date + chrono::Days::new(1);
    let started = std::time::Instant::now();
    let ack = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!(
            "move {} to {} 11:00",
            b.id,
            day_after.format("%Y-%m-%d")
        )),
        |t| t.starts_with("Looking for a new time") || t.starts_with("Could not"),
        Duration::from_secs(20),
        &[&b.alice],
    )
    .await;
    assert!(ack.contains("until everyone agrees"), "{ack}");
    let moved = expect_reply(
        &mut b.owner,
        &agent,
        None,
        |t| t.starts_with("Moved:") || t.starts_with("Could not"),
        Duration::from_secs(60),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    eprintln!("move done in {:?}", started.elapsed());
    assert_eq!(
        moved,
        format!(
            "Moved: Design review from {} 10:00–10:45 to {} 11:00–11:45.",
            b.w.tomorrow.shown,
            day_after.format("%a %-d %b")
        )
    );
    // Same UID, SEQUENCE 1, the new start, one event each.
    let new_start = b.w.tomorrow.at_on(1, "11:00").replace(['-', ':'], "");
    for who in ["alice", "bob", "carol"] {
        let events = b.exported(who);
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        let [uid, sequence, start, status] = &events[0];
        assert_eq!(uid, &before[0][0], "{who}");
        assert_eq!(sequence, "1", "{who}");
        assert!(start.ends_with(&new_start), "{who}: {start} vs {new_start}");
        assert_eq!(status, "CONFIRMED", "{who}");
    }
    let listed = expect_reply(
        &mut b.owner,
        &agent,
        Some("meetings"),
        |t| t.contains("Design review"),
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert!(listed.contains("11:00–11:45"), "{listed}");
}

#[tokio::test]
async fn an_attendee_declines_and_the_organizer_is_told() {
    let mut b = Booked::new().await;
    let mut bob_owner = b.w.owner("bob", &b.bob).await;
    let bob_agent = b.w.bare("bob.agent");
    let listed = expect_reply(
        &mut bob_owner,
        &bob_agent,
        Some("meetings"),
        // Bob's owner may first get the "Booked: …" note kept while offline.
        |t| t.ends_with("— booked"),
        Duration::from_secs(10),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    assert!(listed.ends_with("organized by Alice — booked"), "{listed}");
    let id = listed.split(' ').next().expect("an id").to_string();
    let declined = expect_reply(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("decline {id}")),
        |t| t.starts_with("Declined"),
        Duration::from_secs(30),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    assert_eq!(
        declined,
        format!(
            "Declined: Design review, {} 10:00–10:45; removed from your calendar. Alice's agent was told.",
            b.w.tomorrow.shown
        )
    );
    let told = expect_reply(
        &mut b.owner,
        &b.w.bare("alice.agent"),
        None,
        |t| t.contains("declined"),
        Duration::from_secs(10),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    assert_eq!(told, "Bob declined Design review.");
    assert_eq!(b.exported("bob")[0][3], "CANCELLED");
    assert_eq!(b.exported("alice")[0][3], "CONFIRMED");
    let listed = expect_reply(
        &mut b.owner,
        &b.w.bare("alice.agent"),
        Some("meetings"),
        |t| t.contains("Design review"),
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert!(listed.contains("Bob (declined), Carol"), "{listed}");
}

#[tokio::test]
async fn a_move_that_fails_keeps_the_old_time_and_a_later_move_still_works() {
    let mut b = Booked::new().await;
    let agent = b.w.bare("alice.agent");
    // Bob gets busy tomorrow 14:00–15:00 after the booking.
    b.w.import_ics(
        "bob",
        &crate::common::world::calendar(&b.w.tomorrow.event(
            "dentist@bob",
            "14:00",
            "15:00",
            &["SUMMARY:Dentist"],
        )),
    );
    let failed = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!("move {} to tomorrow 14:00", b.id)),
        |t| t.starts_with("Could not move") || t.starts_with("Moved:"),
        Duration::from_secs(60),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    assert!(
        failed.starts_with("Could not move Design review: ")
            && failed.ends_with(&format!("It stays at {} 10:00–10:45.", b.w.tomorrow.shown)),
        "{failed}"
    );
    let old_start = b.w.tomorrow.at("10:00").replace(['-', ':'], "");
    for who in ["alice", "bob", "carol"] {
        let events = b.exported(who);
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        let [_, sequence, start, status] = &events[0];
        assert_eq!(sequence, "0", "{who}");
        assert!(start.ends_with(&old_start), "{who}: {start}");
        assert_eq!(status, "CONFIRMED", "{who}");
    }
    let moved = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!("move {} to tomorrow 16:00", b.id)),
        |t| t.starts_with("Could not move") || t.starts_with("Moved:"),
        Duration::from_secs(60),
        &[&b.alice, &b.bob, &b.carol],
    )
    .await;
    assert_eq!(
        moved,
        format!(
            "Moved: Design review from {0} 10:00–10:45 to {0} 16:00–16:45.",
            b.w.tomorrow.shown
        )
    );
    for who in ["alice", "bob", "carol"] {
        let events = b.exported(who);
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        assert_eq!(events[0][1], "1", "{who}: {events:?}");
    }
}

/// Stops `who`'s agent cleanly (it says goodbye to the server), leaving a
/// placeholder in its place.
fn stop(agent: &mut Agent) {
    let placeholder = Agent {
        child: None,
        log: agent.log.clone(),
    };
    std::mem::replace(agent, placeholder).terminate_gracefully();
}

#[tokio::test]
async fn a_cancel_waits_for_an_attendee_whose_agent_is_away_and_reaches_it_when_it_is_back() {
    let mut b = Booked::new().await;
    let agent = b.w.bare("alice.agent");
    let carol_agent = b.w.bare("carol.agent");
    let mut carol_owner = b.w.owner("carol", &b.carol).await;
    stop(&mut b.carol);
    let cancelled = expect_reply(
        &mut b.owner,
        &agent,
        Some(&format!("cancel {}", b.id)),
        |t| t.starts_with("Cancelled"),
        Duration::from_secs(30),
        &[&b.alice],
    )
    .await;
    assert_eq!(
        cancelled,
        format!(
            "Cancelled: Design review, {} 10:00–10:45. Told Bob. The agent of Carol is away: I will tell it when it is back.",
            b.w.tomorrow.shown
        )
    );
    assert_eq!(b.exported("bob")[0][3], "CANCELLED");
    assert_eq!(
        b.exported("carol")[0][3],
        "CONFIRMED",
        "Carol's agent is away"
    );

    // Carol's agent comes back: the cancel that waited for it arrives.
    b.carol = b.w.spawn("carol");
    let told = expect_reply(
        &mut carol_owner,
        &carol_agent,
        None,
        |t| t.starts_with("Cancelled by"),
        Duration::from_secs(30),
        &[&b.alice, &b.carol],
    )
    .await;
    assert_eq!(
        told,
        format!(
            "Cancelled by Alice's agent: Design review, {} 10:00–10:45",
            b.w.tomorrow.shown
        )
    );
    let delivered = expect_reply(
        &mut b.owner,
        &agent,
        None,
        |t| t.starts_with("Told Carol"),
        Duration::from_secs(10),
        &[&b.alice, &b.carol],
    )
    .await;
    assert_eq!(
        delivered,
        "Told Carol's agent that Design review is cancelled."
    );
    assert_eq!(b.exported("carol")[0][3], "CANCELLED");
    // Nothing is left waiting in Alice's outbox.
    let waiting = crate::recovery::scalar(
        &b.w,
        "alice",
        "SELECT count(*) FROM outbox WHERE state = 'waiting'",
    )
    .await;
    assert_eq!(waiting, 0);
}

#[tokio::test]
async fn a_decline_waits_for_the_organizers_agent_when_it_is_away() {
    let mut b = Booked::new().await;
    let mut bob_owner = b.w.owner("bob", &b.bob).await;
    let bob_agent = b.w.bare("bob.agent");
    let listed = expect_reply(
        &mut bob_owner,
        &bob_agent,
        Some("meetings"),
        |t| t.ends_with("— booked"),
        Duration::from_secs(10),
        &[&b.bob],
    )
    .await;
    let id = listed.split(' ').next().expect("an id").to_string();
    stop(&mut b.alice);
    let declined = expect_reply(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("decline {id}")),
        |t| t.starts_with("Declined"),
        Duration::from_secs(30),
        &[&b.bob],
    )
    .await;
    assert_eq!(
        declined,
        format!(
            "Declined: Design review, {} 10:00–10:45; removed from your calendar. Alice's agent is away: I will tell it when it is back.",
            b.w.tomorrow.shown
        )
    );
    assert_eq!(b.exported("bob")[0][3], "CANCELLED");

    b.alice = b.w.spawn("alice");
    b.owner
        .wait_for_agent(&b.w.full("alice.agent"), &b.alice)
        .await;
    let told = expect_reply(
        &mut b.owner,
        &b.w.bare("alice.agent"),
        None,
        |t| t.contains("declined"),
        Duration::from_secs(30),
        &[&b.alice, &b.bob],
    )
    .await;
    assert_eq!(told, "Bob declined Design review.");
    let delivered = expect_reply(
        &mut bob_owner,
        &bob_agent,
        None,
        |t| t.starts_with("Told Alice"),
        Duration::from_secs(10),
        &[&b.alice, &b.bob],
    )
    .await;
    assert_eq!(
        delivered,
        "Told Alice's agent that you declined Design review."
    );
    let listed = expect_reply(
        &mut b.owner,
        &b.w.bare("alice.agent"),
        Some("meetings"),
        |t| t.contains("Design review"),
        Duration::from_secs(10),
        &[&b.alice],
    )
    .await;
    assert!(listed.contains("Bob (declined), Carol"), "{listed}");
}
