//! The outbox on a real network: Alice asks about Bob while Bob's agent is
//! offline. Her agent says so, keeps the question in its SQLite outbox, and
//! asks as soon as Bob's agent appears (even across a restart of her own
//! agent), or gives up at the deadline and says that instead.

use std::ops::Deref;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::common::world::{self, attache, calendar};
use crate::xmpp_agent::{Agent, PATIENCE, TestClient};

/// What Alice's agent says when it has to wait for Bob's.
const OFFLINE_NOTE: &str = "Bob's agent is offline; I'll ask as soon as it is back (until ";
/// What it says when it gave up.
const GAVE_UP: &str = "Bob's agent did not answer (offline?); I stopped asking. Try again later.";
/// How long an answer that needs a peer to come online, subscribe and be
/// asked may take on a loaded machine.
const PEER_PATIENCE: Duration = Duration::from_secs(45);

/// One outbox row, as the test reads it straight from the SQLite file.
#[derive(Debug)]
struct Row {
    peer: String,
    state: String,
    attempts: i64,
    created: i64,
    deadline: i64,
}

/// The shared world plus what this file reads from Alice's store.
struct World(world::World);

impl Deref for World {
    type Target = world::World;

    fn deref(&self) -> &world::World {
        &self.0
    }
}

impl World {
    /// Alice and Bob with agents that know each other; Alice is in Bob's
    /// team (busy blocks, no titles); Bob has one meeting tomorrow 10–11.
    fn new() -> World {
        let w = world::World::start();
        w.home("alice");
        w.home("bob");
        w.work_every_day("bob");
        let review = w
            .tomorrow
            .event("review@bob", "10:00", "11:00", &["SUMMARY:Design review"]);
        w.import_ics("bob", &calendar(&review));
        w.add_contact("alice", "bob", &[]);
        w.add_contact("bob", "alice", &["team"]);
        World(w)
    }

    /// Alice's agent running and her client logged in and talking to it.
    async fn alice_online(&self) -> (Agent, TestClient) {
        let agent = self.spawn("alice");
        let owner = self.owner("alice", &agent).await;
        (agent, owner)
    }

    /// Alice's agent's outbox, read from its SQLite file.
    async fn outbox(&self) -> Vec<Row> {
        let options = SqliteConnectOptions::new()
            .filename(attache::store::database_path(&self.dir("alice")))
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let mut db = SqliteConnection::connect_with(&options)
            .await
            .expect("open Alice's store");
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT peer, state, attempts, created_utc, deadline_utc FROM outbox ORDER BY created_utc",
        )
        .fetch_all(&mut db)
        .await
        .expect("read the outbox");
        let _ = db.close().await;
        rows.into_iter()
            .map(|(peer, state, attempts, created, deadline)| Row {
                peer,
                state,
                attempts,
                created,
                deadline,
            })
            .collect()
    }

    /// Moves every waiting question's deadline into the past, as if the
    /// agent had been down for longer than [`attache::agent::owner::ASK_DEADLINE`].
    /// Only while Alice's agent is stopped: it is the sole writer otherwise.
    async fn let_deadlines_pass(&self) {
        let options = SqliteConnectOptions::new()
            .filename(attache::store::database_path(&self.dir("alice")))
            .busy_timeout(Duration::from_secs(10));
        let mut db = SqliteConnection::connect_with(&options)
            .await
            .expect("open Alice's store");
        let past = Utc::now().timestamp() - 1;
        let changed = sqlx::query(
            "UPDATE outbox SET deadline_utc = ?, created_utc = ? - 120 WHERE state = 'waiting'",
        )
        .bind(past)
        .bind(past)
        .execute(&mut db)
        .await
        .expect("move the deadline")
        .rows_affected();
        assert_eq!(changed, 1, "one waiting question");
        let _ = db.close().await;
    }

    /// Polls the outbox until `ok` holds for it; panics with the rows and
    /// Alice's agent's log after `within`.
    async fn outbox_until(&self, within: Duration, agent: &Agent, ok: impl Fn(&[Row]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let rows = self.outbox().await;
            if ok(&rows) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "outbox never reached the expected state: {rows:?}\n{}",
                agent.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The next chat message to the owner, or a panic naming what was awaited.
async fn next_message(owner: &mut TestClient, within: Duration, what: &str, log: &Agent) -> String {
    match owner.next_message(within).await {
        Some((_, body)) => body,
        None => panic!("no message ({what}) within {within:?}:\n{}", log.log()),
    }
}

/// Asks about Bob and checks the interim note and the outbox row it left.
async fn ask_while_bob_is_offline(w: &World, owner: &mut TestClient, agent: &Agent) {
    let asked_at = Utc::now().timestamp();
    owner.say(&w.bare("alice.agent"), "free bob tomorrow").await;
    let note = next_message(owner, PATIENCE, "the offline note", agent).await;
    assert!(note.starts_with(OFFLINE_NOTE), "{note}");

    let rows = w.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        row.peer,
        format!("bob.agent@{}", w.server.domain()),
        "{row:?}"
    );
    assert_eq!(row.state, "waiting", "{row:?}");
    assert_eq!(row.attempts, 0, "not sent to anyone yet: {row:?}");
    assert!(
        (asked_at - 1..=Utc::now().timestamp() + 1).contains(&row.created),
        "{row:?}"
    );
    assert_eq!(
        row.deadline - row.created,
        attache::agent::owner::ASK_DEADLINE.num_seconds(),
        "{row:?}"
    );
    // The note names the deadline in Alice's zone.
    let deadline = chrono::DateTime::from_timestamp(row.deadline, 0).expect("deadline");
    let until = attache::chat::render::instant(deadline, chrono_tz::Europe::Berlin);
    assert!(note.contains(&until), "{until} in {note}");
}

/// The answer Bob's policy allows Alice (team: busy blocks, no titles).
fn assert_bobs_answer(w: &World, answer: &str) {
    assert!(answer.contains(&w.tomorrow.shown), "{answer}");
    assert!(answer.contains("10:00–11:00"), "{answer}");
    assert!(answer.contains("level busy"), "{answer}");
    assert!(!answer.contains("Design review"), "{answer}");
}

/// Bob's disclosure log holds exactly one free/busy decision, by the team rule.
fn assert_disclosed_once(w: &World) {
    let log = attache(&w.dir("bob"), &["log"]);
    assert_eq!(
        log.matches("freebusy: ").count(),
        1,
        "one free/busy decision:\n{log}"
    );
    assert!(
        log.contains("freebusy: allow at level busy by rule team-sees-busy-times"),
        "{log}"
    );
}

#[tokio::test]
async fn a_question_for_an_offline_agent_is_kept_and_asked_when_it_appears() {
    let started = Instant::now();
    let w = World::new();
    let (alice, mut owner) = w.alice_online().await;
    ask_while_bob_is_offline(&w, &mut owner, &alice).await;

    let _bob = w.spawn("bob");
    let answer = next_message(&mut owner, PEER_PATIENCE, "Bob's answer", &alice).await;
    assert_bobs_answer(&w, &answer);
    // Answered, and the owner told once. (The question may have gone out
    // more than once: every available presence of Bob's agent re-sends
    // what waits for it, and Prosody may deliver two.)
    w.outbox_until(PATIENCE, &alice, |rows| {
        rows.len() == 1 && rows[0].state == "answered" && rows[0].attempts >= 1
    })
    .await;
    let attempts = w.outbox().await[0].attempts;
    if let Some((_, extra)) = owner.next_message(Duration::from_secs(1)).await {
        panic!("the owner heard twice: {extra:?}");
    }
    // Bob's agent decided by the team rule and disclosed once: a repeated
    // request-id is answered from its replay memory, not decided again.
    assert_disclosed_once(&w);
    owner.close().await;
    eprintln!(
        "offline peer, answered on presence: {:?} ({attempts} attempt(s))",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_restarted_agent_still_asks_when_the_peer_appears() {
    let started = Instant::now();
    let w = World::new();
    let (alice, mut owner) = w.alice_online().await;
    ask_while_bob_is_offline(&w, &mut owner, &alice).await;

    alice.terminate_gracefully();
    let alice = w.spawn("alice");
    owner.wait_for_agent(&w.full("alice.agent"), &alice).await;
    let rows = w.outbox().await;
    assert!(
        rows.len() == 1 && rows[0].state == "waiting" && rows[0].attempts == 0,
        "kept across the restart: {rows:?}"
    );

    let _bob = w.spawn("bob");
    let answer = next_message(&mut owner, PEER_PATIENCE, "Bob's answer", &alice).await;
    assert_bobs_answer(&w, &answer);
    w.outbox_until(PATIENCE, &alice, |rows| {
        rows.len() == 1 && rows[0].state == "answered"
    })
    .await;
    assert_disclosed_once(&w);
    owner.close().await;
    eprintln!(
        "offline peer, answered after a restart: {:?}",
        started.elapsed()
    );
}

/// The deadline (`ASK_DEADLINE`, two minutes) has no setting to shorten it
/// and `run` ignores `--now`, so the test lets it pass while Alice's agent
/// is down by moving the stored deadline: on start the agent gives up, says
/// so, and does not ask Bob's agent when it appears.
#[tokio::test]
async fn a_question_past_its_deadline_is_given_up_and_never_sent() {
    let started = Instant::now();
    let w = World::new();
    let (alice, mut owner) = w.alice_online().await;
    ask_while_bob_is_offline(&w, &mut owner, &alice).await;

    alice.terminate_gracefully();
    w.let_deadlines_pass().await;
    let alice = w.spawn("alice");
    let gave_up = next_message(&mut owner, PATIENCE, "the give-up note", &alice).await;
    assert_eq!(gave_up, GAVE_UP);
    w.outbox_until(PATIENCE, &alice, |rows| {
        rows.len() == 1 && rows[0].state == "expired" && rows[0].attempts == 0
    })
    .await;

    // Bob's agent appears; a new question is answered, the expired one is not sent.
    let _bob = w.spawn("bob");
    owner.say(&w.bare("alice.agent"), "free bob tomorrow").await;
    let deadline = Instant::now() + PEER_PATIENCE;
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let body = next_message(&mut owner, left, "Bob's answer to the new question", &alice).await;
        if !body.starts_with(OFFLINE_NOTE) {
            break body;
        }
    };
    assert_bobs_answer(&w, &answer);
    w.outbox_until(PATIENCE, &alice, |rows| {
        rows.len() == 2
            && (rows[0].state.as_str(), rows[0].attempts) == ("expired", 0)
            && rows[1].state == "answered"
    })
    .await;
    // Only the new question reached Bob's agent, not the expired one.
    assert_disclosed_once(&w);
    assert!(
        owner
            .next_message(Duration::from_millis(500))
            .await
            .is_none(),
        "nothing more for the owner"
    );
    owner.close().await;
    eprintln!("offline peer, deadline passed: {:?}", started.elapsed());
}
