//! Approvals on a real network (docs/protocol.md §5.3, §14): Bob's policy
//! says free/busy questions from Alice and Carol wait for him. Bob approves
//! one of Alice's (she gets the answer), denies another (she hears no), and
//! lets Carol's run out (both owners are told).

use std::time::Duration;

use chrono::{Duration as Days, Utc};

use crate::common::world::{Tomorrow, World, attache, calendar, expect_reply as expect};
use crate::xmpp_agent::{Agent, TestClient};

/// Bob's extra rules: Alice's questions wait an hour for him, Carol's 4 s.
const ASK_RULES: &str = r#"
[[rule]]
name = "alice-asks-first"
who = "contact:Alice"
action = "freebusy"
decision = "ask"
level = "busy"
window = "14d"
expires = "1h"

[[rule]]
name = "carol-asks-briefly"
who = "contact:Carol"
action = "freebusy"
decision = "ask"
level = "busy"
window = "14d"
expires = "4s"
"#;

/// Alice, Bob and Carol with agents, each knowing Bob and Bob knowing
/// both; Bob works every day 08:00–20:00, has one meeting tomorrow
/// 10:00–11:00, and his policy adds [`ASK_RULES`].
fn world() -> World {
    let w = World::start();
    for who in ["alice", "bob", "carol"] {
        w.home(who);
    }
    w.work_every_day("bob");
    let policy = w.dir("bob").join("policies").join("default.toml");
    let mut rules = std::fs::read_to_string(&policy).expect("default policy");
    rules.push_str(ASK_RULES);
    std::fs::write(&policy, rules).expect("policy");

    // Bob has one meeting tomorrow 10:00–11:00.
    let review = w
        .tomorrow
        .event("review@bob", "10:00", "11:00", &["SUMMARY:Design review"]);
    w.import_ics("bob", &calendar(&review));

    w.add_contact("alice", "bob", &[]);
    w.add_contact("carol", "bob", &[]);
    w.add_contact("bob", "alice", &[]);
    w.add_contact("bob", "carol", &[]);
    w
}

/// The number in "… approve N / deny N".
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

#[tokio::test]
async fn the_owner_approves_denies_or_lets_a_question_expire() {
    let w = world();
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let carol = w.spawn("carol");
    let mut bob_owner = w.owner("bob", &bob).await;
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut carol_owner = w.owner("carol", &carol).await;
    alice_owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let (bob_agent, alice_agent, carol_agent) = (
        w.bare("bob.agent"),
        w.bare("alice.agent"),
        w.bare("carol.agent"),
    );
    let logs = [&alice, &bob, &carol];
    let patience = Duration::from_secs(40);

    // A: Alice asks, Bob is asked, Bob approves, Alice gets the answer.
    expect(
        &mut alice_owner,
        &alice_agent,
        Some("free bob tomorrow"),
        |b| b.contains("is asking Bob first"),
        patience,
        &logs,
    )
    .await;
    let asked = expect(
        &mut bob_owner,
        &bob_agent,
        None,
        |b| b.contains("approve "),
        patience,
        &logs,
    )
    .await;
    assert!(
        asked.starts_with("Alice's agent asks when you are free"),
        "{asked}"
    );
    let n = pending_number(&asked);
    let listed = expect(
        &mut bob_owner,
        &bob_agent,
        Some("pending"),
        |b| b.starts_with("Waiting for you"),
        patience,
        &logs,
    )
    .await;
    assert!(
        listed.contains(&format!("{n}. Alice's agent asks")),
        "{listed}"
    );
    assert!(listed.contains("(expires "), "{listed}");
    let approved = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved") || b.contains("went wrong"),
        patience,
        &logs,
    )
    .await;
    assert!(
        approved.starts_with(&format!("Approved {n}:")),
        "{approved}"
    );
    assert!(approved.contains("level busy"), "{approved}");
    let answer = expect(
        &mut alice_owner,
        &alice_agent,
        None,
        |b| b.contains("(level busy"),
        patience,
        &logs,
    )
    .await;
    assert!(answer.contains("10:00"), "Bob's meeting is shown: {answer}");
    // Approving again changes nothing.
    let again = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("approve {n}")),
        |b| b.starts_with("Request"),
        patience,
        &logs,
    )
    .await;
    assert!(again.contains("already approved"), "{again}");
    let log = attache(&w.dir("bob"), &["log"]);
    assert!(log.contains("approved by owner"), "{log}");

    // C: Alice asks again, Bob denies, Alice hears no.
    expect(
        &mut alice_owner,
        &alice_agent,
        Some("free bob tomorrow"),
        |b| b.contains("is asking Bob first"),
        patience,
        &logs,
    )
    .await;
    let asked = expect(
        &mut bob_owner,
        &bob_agent,
        None,
        |b| b.contains("approve "),
        patience,
        &logs,
    )
    .await;
    let m = pending_number(&asked);
    assert_ne!(m, n);
    let denied = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("deny {m}")),
        |b| b.starts_with("Denied"),
        patience,
        &logs,
    )
    .await;
    assert!(
        denied.starts_with(&format!("Denied {m}: Alice's agent")),
        "{denied}"
    );
    let no = expect(
        &mut alice_owner,
        &alice_agent,
        None,
        |b| b.contains("did not approve"),
        patience,
        &logs,
    )
    .await;
    assert_eq!(
        no,
        "Bob did not approve your question (declined, or no answer in time)."
    );

    // B: Carol's question waits 4 s for Bob, who says nothing.
    expect(
        &mut carol_owner,
        &carol_agent,
        Some("free bob tomorrow"),
        |b| b.contains("is asking Bob first"),
        patience,
        &logs,
    )
    .await;
    let asked = expect(
        &mut bob_owner,
        &bob_agent,
        None,
        |b| b.contains("approve "),
        patience,
        &logs,
    )
    .await;
    assert!(asked.starts_with("Carol's agent asks"), "{asked}");
    let k = pending_number(&asked);
    let expired = expect(
        &mut bob_owner,
        &bob_agent,
        None,
        |b| b.starts_with("Expired:"),
        patience,
        &logs,
    )
    .await;
    assert!(expired.contains("Carol's agent asks"), "{expired}");
    let no = expect(
        &mut carol_owner,
        &carol_agent,
        None,
        |b| b.contains("did not approve"),
        patience,
        &logs,
    )
    .await;
    assert!(no.starts_with("Bob did not approve"), "{no}");
    // Too late now; nothing waits any more.
    let late = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("approve {k}")),
        |b| b.starts_with("Request"),
        patience,
        &logs,
    )
    .await;
    assert!(late.contains("already expired"), "{late}");
    let listed = expect(
        &mut bob_owner,
        &bob_agent,
        Some("pending"),
        |b| b.starts_with("Nothing waits"),
        patience,
        &logs,
    )
    .await;
    assert_eq!(listed, "Nothing waits for your approval.");
}

// ---------------------------------------------------------------------------
// Holds (§14 with §12.2): a test client plays Alice's agent and sends raw
// `<hold>`s; Bob's default policy asks him about contacts' proposals.

const NS: &str = attache::negotiate::NS;

fn hold_xml(id: &str, meeting: &str, from: &str, to: &str) -> xmpp_parsers::minidom::Element {
    let tomorrow = Tomorrow::in_berlin();
    let expires = (Utc::now() + Days::minutes(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    format!(
        "<hold xmlns='{NS}' request-id='{id}' meeting='{meeting}' sequence='0' \
         start='{}' end='{}' expires='{expires}'><summary>Sync</summary></hold>",
        tomorrow.at(from),
        tomorrow.at(to)
    )
    .parse()
    .expect("hold xml")
}

/// Waits for an IQ set `<reply>` from Bob's agent, acknowledges it, and
/// returns its payload.
async fn deferred_reply(client: &mut TestClient, agent: &Agent) -> xmpp_parsers::minidom::Element {
    use tokio_xmpp::Stanza;
    use xmpp_parsers::iq::Iq;
    let found = client
        .next_matching(Duration::from_secs(30), |s| match s {
            Stanza::Iq(Iq::Set {
                from, id, payload, ..
            }) if payload.is("reply", NS) => Some((from.clone(), id.clone(), payload.clone())),
            _ => None,
        })
        .await;
    let Some((from, id, payload)) = found else {
        panic!("no <reply> came\nagent log:\n{}", agent.log());
    };
    let ack = Iq::Result {
        from: None,
        to: from,
        id,
        payload: None,
    };
    client.send(ack.into()).await;
    payload
}

/// A test client playing Alice's agent, seen online by Bob's agent (it
/// approved Bob's agent's subscription); returns it and Bob's agent's JID.
async fn organizer(w: &World, bob: &Agent) -> (TestClient, xmpp_parsers::jid::Jid) {
    let jid = format!("alice.agent@{}", w.server.domain());
    let mut organizer = TestClient::login(&w.server, &jid, "alice.agent-pw").await;
    organizer
        .send(
            xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Subscribed)
                .with_to(w.bare("bob.agent"))
                .into(),
        )
        .await;
    let to = organizer.wait_for_agent(&w.full("bob.agent"), bob).await;
    (organizer, to)
}

/// Sends `hold`, expects `<pending>`, and returns the number Bob's owner
/// is asked to approve, with the line asking.
async fn propose(
    organizer: &mut TestClient,
    to: &xmpp_parsers::jid::Jid,
    hold: xmpp_parsers::minidom::Element,
    bob_owner: &mut TestClient,
    w: &World,
    bob: &Agent,
) -> (String, String) {
    let answer = organizer
        .iq(Some(to), tokio_xmpp::IqRequest::Set(hold))
        .await;
    assert!(
        matches!(&answer, tokio_xmpp::IqResponse::Result(Some(el)) if el.is("pending", NS)),
        "expected <pending>, got {answer:?}\n{}",
        bob.log()
    );
    let asked = expect(
        bob_owner,
        &w.bare("bob.agent"),
        None,
        |b| b.contains("approve "),
        Duration::from_secs(30),
        &[bob],
    )
    .await;
    (pending_number(&asked), asked)
}

#[tokio::test]
async fn an_approved_hold_is_placed_and_a_denied_one_refused() {
    let w = world();
    let bob = w.spawn("bob");
    let mut bob_owner = w.owner("bob", &bob).await;
    let (mut organizer, to) = organizer(&w, &bob).await;
    let bob_agent = w.bare("bob.agent");
    let logs = [&bob];
    let patience = Duration::from_secs(30);

    // Approved: the hold is placed after Bob says yes and the organizer hears <held>.
    let hold = hold_xml("h1", "m1@test", "14:00", "14:30");
    let (n, asked) = propose(&mut organizer, &to, hold, &mut bob_owner, &w, &bob).await;
    assert!(asked.starts_with("Alice's agent proposes Sync"), "{asked}");
    let approved = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        patience,
        &logs,
    )
    .await;
    assert!(approved.contains("The time is held"), "{approved}");
    let reply = deferred_reply(&mut organizer, &bob).await;
    assert_eq!(reply.attr("request-id"), Some("h1"));
    let held = reply.get_child("held", NS).expect("a <held> in the reply");
    assert_eq!(held.attr("meeting"), Some("m1@test"));

    // Denied: the organizer hears not-permitted.
    let hold = hold_xml("h2", "m2@test", "16:00", "16:30");
    let (m, _) = propose(&mut organizer, &to, hold, &mut bob_owner, &w, &bob).await;
    expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("deny {m}")),
        |b| b.starts_with("Denied"),
        patience,
        &logs,
    )
    .await;
    let reply = deferred_reply(&mut organizer, &bob).await;
    assert_eq!(reply.attr("request-id"), Some("h2"));
    let error = reply
        .get_child("error", NS)
        .expect("an <error> in the reply");
    assert!(error.get_child("not-permitted", NS).is_some(), "{error:?}");
}

#[tokio::test]
async fn an_answer_for_a_requester_that_went_away_reaches_it_when_it_is_back() {
    let w = world();
    let bob = w.spawn("bob");
    let mut bob_owner = w.owner("bob", &bob).await;
    let (mut organizer, to) = organizer(&w, &bob).await;
    let bob_agent = w.bare("bob.agent");
    let logs = [&bob];
    let patience = Duration::from_secs(30);
    let hold = hold_xml("h3", "m3@test", "15:00", "15:30");
    let (n, _) = propose(&mut organizer, &to, hold, &mut bob_owner, &w, &bob).await;
    // The organizer's agent goes away before Bob answers.
    organizer.close().await;
    let approved = expect(
        &mut bob_owner,
        &bob_agent,
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        patience,
        &logs,
    )
    .await;
    assert!(approved.contains("The time is held"), "{approved}");
    // Back online: the answer that waited for it arrives, once.
    let (mut organizer, _) = self::organizer(&w, &bob).await;
    let reply = deferred_reply(&mut organizer, &bob).await;
    assert_eq!(reply.attr("request-id"), Some("h3"));
    assert!(reply.get_child("held", NS).is_some(), "{reply:?}");
    let again = organizer
        .next_matching(Duration::from_secs(3), |s| match s {
            tokio_xmpp::Stanza::Iq(xmpp_parsers::iq::Iq::Set { payload, .. })
                if payload.is("reply", NS) =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    assert!(again.is_none(), "the reply came twice");
}
