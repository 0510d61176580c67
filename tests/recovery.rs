//! Crashes in the middle of a negotiation (docs/protocol.md §12, §14, §15) on
//! a real Prosody: an attendee agent or the organizer agent is killed with
//! SIGKILL while a meeting waits for Carol's owner to approve her hold, then
//! restarted; the meeting must still end booked exactly once everywhere (or
//! fail with nothing left held), the stores must stay sound and the
//! disclosure logs verifiable. And a person without an agent answers a
//! proposal by chat.
//!
//! The scene: Alice organizes; Bob's agent knows Alice in his team (it
//! holds at once); Carol's agent knows her only as a contact, so by the
//! default policy her proposals wait for Carol's approval (§14) — the
//! window in which the tests kill an agent.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::common::world::{World, attache, expect_reply as expect};
use crate::xmpp_agent::{Agent, TestClient};

const SUMMARY: &str = "Recovery sync";

/// Alice, Bob and Carol at home, all working every day, knowing each other
/// as described in the module documentation.
fn world() -> World {
    let w = World::start();
    for who in ["alice", "bob", "carol"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.add_contact("alice", "bob", &[]);
    w.add_contact("alice", "carol", &[]);
    w.add_contact("bob", "alice", &["team"]);
    w.add_contact("carol", "alice", &[]);
    w
}

/// Opens `who`'s store read-only.
async fn store(w: &World, who: &str) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(attache::store::database_path(&w.dir(who)))
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&options)
        .await
        .expect("open a store")
}

pub(crate) async fn scalar(w: &World, who: &str, sql: &str) -> i64 {
    let mut db = store(w, who).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut db)
        .await
        .expect("query a store");
    let _ = db.close().await;
    n
}

/// Polls `who`'s `holds` table until it has a row (within 30 s).
async fn wait_for_hold(w: &World, who: &str, logs: &[&Agent]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if scalar(w, who, "SELECT count(*) FROM holds").await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
    panic!("{who} never held a slot:\n{}", logs.join("\n-----\n"));
}

/// SIGKILL: no goodbye to the server, no chance to save anything more.
fn kill_hard(mut agent: Agent) {
    if let Some(mut child) = agent.child.take() {
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

/// Kills Alice's agent hard, restarts it past Prosody's hibernation, waits
/// for its log to say `resumed` (if given) and until Carol's agent sees it
/// again (Carol's `free alice` gets an answer): returns the new agent and
/// Alice's new owner client.
async fn restart_alice(
    w: &World,
    alice: Agent,
    first_owner: TestClient,
    carol_owner: &mut TestClient,
    carol: &Agent,
    resumed: Option<&str>,
) -> (Agent, TestClient) {
    kill_hard(alice);
    first_owner.close().await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let alice = w.spawn("alice");
    let alice_owner = w.owner("alice", &alice).await;
    if let Some(line) = resumed {
        let until = Instant::now() + Duration::from_secs(20);
        while !alice.log().contains(line) {
            assert!(Instant::now() < until, "not resumed:\n{}", alice.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Carol's agent must see Alice's again before its reply can go out.
    expect(
        carol_owner,
        &w.bare("carol.agent"),
        Some("free alice tomorrow"),
        // "offline; I'll ask as soon as it is back" is skipped: the answer
        // that follows once Carol's agent sees Alice's is what counts.
        |b| b.contains("level") || b.contains("shares only"),
        Duration::from_secs(40),
        &[carol],
    )
    .await;
    (alice, alice_owner)
}

/// The soundness checks every crash test ends with, for each of `people`:
/// at most one event per meeting (`booked` says whether exactly one), no
/// hold live any more, SQLite's integrity check and the log's hash chain.
async fn assert_sound(w: &World, people: &[&str], booked: bool) {
    let now = chrono::Utc::now().timestamp();
    for who in people {
        let events = exported(w.dir(who).as_path(), SUMMARY);
        if booked {
            assert_eq!(events, 1, "{who} has {events} events for the meeting");
        } else {
            assert_eq!(events, 0, "{who} has {events} events for the meeting");
        }
        let live = scalar(
            w,
            who,
            &format!("SELECT count(*) FROM holds WHERE expires_utc > {now}"),
        )
        .await;
        assert_eq!(live, 0, "{who} still holds time");
        let mut db = store(w, who).await;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut db)
            .await
            .expect("integrity check");
        let _ = db.close().await;
        assert_eq!(check, "ok", "{who}'s store");
        let verified = attache(&w.dir(who), &["log", "verify"]);
        assert!(verified.contains("intact"), "{who}: {verified}");
    }
}

/// How many exported events (not cancelled) `dir`'s calendar has titled `summary`.
fn exported(dir: &Path, summary: &str) -> usize {
    let ics = attache(dir, &["export"]);
    ics.split("BEGIN:VEVENT")
        .skip(1)
        .filter(|e| e.lines().any(|l| l.trim() == format!("SUMMARY:{summary}")))
        .filter(|e| !e.contains("STATUS:CANCELLED"))
        .count()
}

/// The number in "... approve N / deny N".
fn pending_number(line: &str) -> String {
    let tail = line
        .rsplit_once("approve ")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no `approve N` in {line:?}"));
    tail.split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no number in {line:?}"))
        .to_string()
}

/// Waits until Alice's agent sees `who`'s agent online (a free/busy answer
/// comes back).
async fn alice_sees(w: &World, alice: &mut TestClient, who: &str, logs: &[&Agent]) {
    expect(
        alice,
        &w.bare("alice.agent"),
        Some(&format!("free {who} tomorrow")),
        |b| b.contains("level") || b.contains("shares only"),
        Duration::from_secs(40),
        logs,
    )
    .await;
}

/// Everyone online, the meeting asked for, Bob holding and Carol asked:
/// returns (agents alice, bob, carol; clients alice, carol; Carol's
/// approval number).
async fn negotiation_waiting_for_carol(
    w: &World,
) -> (Agent, Agent, Agent, TestClient, TestClient, String) {
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut carol_owner = w.owner("carol", &carol).await;
    for who in ["bob", "carol"] {
        alice_sees(w, &mut alice_owner, who, &[&alice, &bob, &carol]).await;
    }
    expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        Some(&format!("meet bob, carol for 30m tomorrow about {SUMMARY}")),
        |b| b.starts_with("Looking for a time"),
        Duration::from_secs(20),
        &[&alice],
    )
    .await;
    wait_for_hold(w, "bob", &[&alice, &bob, &carol]).await;
    let asked = expect(
        &mut carol_owner,
        &w.bare("carol.agent"),
        None,
        |b| b.contains("approve "),
        Duration::from_secs(30),
        &[&alice, &carol],
    )
    .await;
    assert!(asked.contains(SUMMARY), "{asked}");
    let n = pending_number(&asked);
    (alice, bob, carol, alice_owner, carol_owner, n)
}

#[tokio::test]
async fn an_attendee_agent_killed_after_holding_comes_back_and_the_meeting_is_booked_once() {
    let w = world();
    let started = Instant::now();
    let (alice, bob, carol, mut alice_owner, mut carol_owner, n) =
        negotiation_waiting_for_carol(&w).await;
    kill_hard(bob);
    // Past Prosody's hibernation (5 s in tests): Alice's agent sees Bob's
    // agent go, then come back.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let bob = w.spawn("bob");
    alice_sees(&w, &mut alice_owner, "bob", &[&alice, &bob]).await;

    // Carol approves: her agent's deferred <held> reaches Alice's agent,
    // which confirms with Bob's restarted agent (his hold survived).
    let approved = expect(
        &mut carol_owner,
        &w.bare("carol.agent"),
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        Duration::from_secs(20),
        &[&carol],
    )
    .await;
    assert!(approved.contains("The time is held for them"), "{approved}");
    let booked = expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(60),
        &[&alice, &bob, &carol],
    )
    .await;
    assert!(
        booked.starts_with("Booked:") && booked.contains("Bob, Carol"),
        "{booked}\n{}\n-----\n{}",
        alice.log(),
        carol.log()
    );
    eprintln!("attendee crash: booked after {:?}", started.elapsed());
    assert_sound(&w, &["alice", "bob", "carol"], true).await;
}

#[tokio::test]
async fn an_organizer_killed_mid_negotiation_resumes_and_finishes() {
    let w = world();
    let started = Instant::now();
    let (alice, bob, carol, first_owner, mut carol_owner, n) =
        negotiation_waiting_for_carol(&w).await;
    // The restarted agent resumes the negotiation from its saved state.
    let (alice, mut alice_owner) = restart_alice(
        &w,
        alice,
        first_owner,
        &mut carol_owner,
        &carol,
        Some("resuming a negotiation after a restart"),
    )
    .await;
    let approved = expect(
        &mut carol_owner,
        &w.bare("carol.agent"),
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        Duration::from_secs(20),
        &[&carol],
    )
    .await;
    assert!(approved.contains("The time is held for them"), "{approved}");
    let ended = expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(60),
        &[&alice, &bob, &carol],
    )
    .await;
    eprintln!("organizer crash: {ended:?} after {:?}", started.elapsed());
    assert!(
        ended.starts_with("Booked:"),
        "{ended}\n{}\n-----\n{}",
        alice.log(),
        carol.log()
    );
    assert_sound(&w, &["alice", "bob", "carol"], true).await;
}

#[tokio::test]
async fn an_organizer_killed_mid_move_resumes_it_and_tells_its_owner() {
    let w = world();
    let (alice, bob, carol, mut first_owner, mut carol_owner, n) =
        negotiation_waiting_for_carol(&w).await;
    let alice_agent = w.bare("alice.agent");
    let carol_agent = w.bare("carol.agent");
    let all = [&alice, &bob, &carol];
    expect(
        &mut carol_owner,
        &carol_agent,
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        Duration::from_secs(20),
        &all,
    )
    .await;
    expect(
        &mut first_owner,
        &alice_agent,
        None,
        |b| b.starts_with("Booked:"),
        Duration::from_secs(60),
        &all,
    )
    .await;
    let listed = expect(
        &mut first_owner,
        &alice_agent,
        Some("meetings"),
        |b| b.contains(SUMMARY),
        Duration::from_secs(10),
        &all,
    )
    .await;
    let id = listed.split(' ').next().expect("an id").to_string();
    let day_after = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    expect(
        &mut first_owner,
        &alice_agent,
        Some(&format!("move {id} to {day_after} 11:00")),
        |b| b.starts_with("Looking for a new time"),
        Duration::from_secs(20),
        &all,
    )
    .await;
    // Carol is asked again; while she thinks, Alice's agent dies.
    let asked = expect(
        &mut carol_owner,
        &carol_agent,
        None,
        |b| b.contains("approve "),
        Duration::from_secs(30),
        &all,
    )
    .await;
    let again = pending_number(&asked);
    let (alice, mut alice_owner) = restart_alice(
        &w,
        alice,
        first_owner,
        &mut carol_owner,
        &carol,
        Some("resuming a move after a restart"),
    )
    .await;
    expect(
        &mut carol_owner,
        &carol_agent,
        Some(&format!("approve {again}")),
        |b| b.starts_with("Approved"),
        Duration::from_secs(20),
        &[&carol],
    )
    .await;
    let all = [&alice, &bob, &carol];
    let ended = expect(
        &mut alice_owner,
        &alice_agent,
        None,
        |b| b.starts_with("Moved:") || b.starts_with("Could not move"),
        Duration::from_secs(60),
        &all,
    )
    .await;
    assert!(
        ended.starts_with("Moved:") && ended.contains("11:00"),
        "{ended}\n{}",
        alice.log()
    );
    assert_sound(&w, &["alice", "bob", "carol"], true).await;
    // The one event each has the new time and sequence 1.
    for who in ["alice", "bob", "carol"] {
        let ics = attache(&w.dir(who), &["export"]);
        let event = ics
            .split("BEGIN:VEVENT")
            .find(|e| e.contains(&format!("SUMMARY:{SUMMARY}")))
            .unwrap_or_else(|| panic!("{who}: no event\n{ics}"));
        assert!(event.contains("SEQUENCE:1"), "{who}: {event}");
    }
}

#[tokio::test]
async fn an_organizer_killed_mid_negotiation_hears_a_denial_and_releases_everything() {
    let w = world();
    let started = Instant::now();
    let (alice, bob, carol, first_owner, mut carol_owner, n) =
        negotiation_waiting_for_carol(&w).await;
    let (alice, mut alice_owner) =
        restart_alice(&w, alice, first_owner, &mut carol_owner, &carol, None).await;
    // Carol says no: the error her agent sends names no meeting, and the
    // restarted organizer no longer knows the request-id.
    expect(
        &mut carol_owner,
        &w.bare("carol.agent"),
        Some(&format!("deny {n}")),
        |b| b.starts_with("Denied"),
        Duration::from_secs(20),
        &[&carol],
    )
    .await;
    let ended = expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(60),
        &[&alice, &bob, &carol],
    )
    .await;
    eprintln!(
        "organizer crash, denied: {ended:?} after {:?}",
        started.elapsed()
    );
    assert_eq!(
        ended,
        format!(
            "Could not book {SUMMARY}: Carol's agent does not take meeting proposals from you."
        )
    );
    // Bob's hold is released by the organizer, not left to expire.
    let released = Instant::now() + Duration::from_secs(20);
    while scalar(&w, "bob", "SELECT count(*) FROM holds").await > 0 {
        assert!(Instant::now() < released, "Bob still holds:\n{}", bob.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_sound(&w, &["alice", "bob", "carol"], false).await;
}

/// Alice's agent and Erin, a person without an agent, logged in.
async fn alice_and_erin(w: &World, summary: &str) -> (Agent, TestClient, TestClient) {
    w.register("erin");
    attache(
        &w.dir("alice"),
        &["contacts", "add", &w.jid("erin"), "--name", "Erin"],
    );
    let alice = w.spawn("alice");
    let mut owner = w.owner("alice", &alice).await;
    let erin = TestClient::login(&w.server, &w.jid("erin"), "erin-pw").await;
    expect(
        &mut owner,
        &w.bare("alice.agent"),
        Some(&format!("meet erin for 30m tomorrow about {summary}")),
        |b| b.starts_with("Looking for a time"),
        Duration::from_secs(20),
        &[&alice],
    )
    .await;
    (alice, owner, erin)
}

/// The next chat message Erin gets from Alice's agent.
async fn erin_hears(erin: &mut TestClient, alice: &Agent) -> String {
    match erin.next_message(Duration::from_secs(20)).await {
        Some((_, body)) => body,
        None => panic!("Erin heard nothing:\n{}", alice.log()),
    }
}

#[tokio::test]
async fn a_person_without_an_agent_says_yes_by_chat_and_is_booked() {
    let w = World::start();
    w.home("alice");
    w.work_every_day("alice");
    let (alice, mut owner, mut erin) = alice_and_erin(&w, "Chat sync").await;
    let agent = w.bare("alice.agent");

    let proposal = erin_hears(&mut erin, &alice).await;
    assert!(
        proposal.starts_with("alice's agent proposes Chat sync, ")
            && proposal.contains("Europe/Berlin (your time: ")
            && proposal.ends_with("UTC). Reply yes or no."),
        "{proposal}"
    );
    // Not understood once: asked again; then a yes.
    erin.say(&agent, "maybe").await;
    let again = erin_hears(&mut erin, &alice).await;
    assert!(
        again.starts_with("Sorry, I only understand yes or no. Chat sync, ")
            && again.ends_with("— yes or no?"),
        "{again}"
    );
    erin.say(&agent, " Yes. ").await;
    let booked = expect(
        &mut owner,
        &agent,
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(30),
        &[&alice],
    )
    .await;
    assert!(booked.starts_with("Booked: Chat sync, "), "{booked}");
    assert!(booked.contains("with Erin."), "{booked}");
    let told = erin_hears(&mut erin, &alice).await;
    assert!(told.starts_with("Booked: Chat sync, "), "{told}");
    assert_eq!(exported(&w.dir("alice"), "Chat sync"), 1);
    // Erin is not the owner: anything further is refused as before.
    erin.say(&agent, "yes").await;
    let refused = erin_hears(&mut erin, &alice).await;
    assert!(
        refused.starts_with("Sorry, I am a personal agent"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_person_without_an_agent_says_no_and_the_owner_is_told() {
    let w = World::start();
    w.home("alice");
    w.work_every_day("alice");
    let (alice, mut owner, mut erin) = alice_and_erin(&w, "Chat sync").await;
    let agent = w.bare("alice.agent");
    // Every proposal (one per round) gets a no; the rounds run out.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut proposals = 0;
    let ended = loop {
        assert!(Instant::now() < deadline, "no end:\n{}", alice.log());
        if let Some((_, body)) = erin.next_message(Duration::from_millis(500)).await {
            assert!(body.contains("proposes Chat sync"), "{body}");
            proposals += 1;
            erin.say(&agent, if proposals % 2 == 0 { "no" } else { "N!" })
                .await;
        }
        if let Some((_, body)) = owner.next_message(Duration::from_millis(200)).await
            && (body.starts_with("Booked:") || body.starts_with("Could not book"))
        {
            break body;
        }
    };
    assert!(ended.starts_with("Could not book Chat sync"), "{ended}");
    assert!(proposals >= 1, "{proposals}");
    assert_eq!(exported(&w.dir("alice"), "Chat sync"), 0);
    let now = chrono::Utc::now().timestamp();
    let live = scalar(
        &w,
        "alice",
        &format!("SELECT count(*) FROM holds WHERE expires_utc > {now}"),
    )
    .await;
    assert_eq!(live, 0, "Alice's agent still holds time");
}

#[tokio::test]
async fn a_person_has_one_proposal_open_at_a_time() {
    let w = World::start();
    w.home("alice");
    w.work_every_day("alice");
    let (alice, mut owner, mut erin) = alice_and_erin(&w, "First talk").await;
    let agent = w.bare("alice.agent");
    expect(
        &mut owner,
        &agent,
        Some("meet erin for 30m tomorrow about Second talk"),
        |b| b.starts_with("Looking for a time"),
        Duration::from_secs(20),
        &[&alice],
    )
    .await;
    let first = erin_hears(&mut erin, &alice).await;
    assert!(first.contains("proposes First talk, "), "{first}");
    // The second proposal waits while the first is open.
    if let Some((_, early)) = erin.next_message(Duration::from_secs(2)).await {
        panic!("a second proposal while the first is open: {early}");
    }
    erin.say(&agent, "ok").await;
    let booked = erin_hears(&mut erin, &alice).await;
    assert!(booked.starts_with("Booked: First talk, "), "{booked}");
    let second = erin_hears(&mut erin, &alice).await;
    assert!(second.contains("proposes Second talk, "), "{second}");
    erin.say(&agent, "y").await;
    let booked = erin_hears(&mut erin, &alice).await;
    assert!(booked.starts_with("Booked: Second talk, "), "{booked}");
    for summary in ["First talk", "Second talk"] {
        assert_eq!(exported(&w.dir("alice"), summary), 1, "{summary}");
    }
}
