//! Two real agents on a real Prosody: Alice asks, by chat, when Bob is free;
//! Bob's agent answers exactly what Bob's policy allows; strangers, probing
//! and malformed requests get the documented errors.

use std::time::Duration;

use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;

use crate::common::world::{World, attache, calendar};
use crate::xmpp_agent::{Agent, PATIENCE, TestClient};

const NS: &str = attache::negotiate::NS;

/// Alice and Bob with their agents; `bob_knows_alice` puts Alice in Bob's
/// address book with these `--group`s (None: a stranger to Bob). Bob works
/// every day 08:00–20:00 and has a design review (10–11) and a private
/// doctor's appointment (14–15) tomorrow; Eve and Carol's agent have
/// accounts only.
fn world(bob_knows_alice: Option<&[&str]>) -> World {
    let w = World::start();
    w.home("alice");
    w.home("bob");
    w.register("eve");
    w.register("carol.agent");
    w.work_every_day("bob");
    let t = &w.tomorrow;
    let events = t.event(
        "review@bob",
        "10:00",
        "11:00",
        &["SUMMARY:Design review", "LOCATION:Room 4"],
    ) + &t.event(
        "doctor@bob",
        "14:00",
        "15:00",
        &["CLASS:PRIVATE", "SUMMARY:Doctor"],
    );
    w.import_ics("bob", &calendar(&events));
    w.add_contact("alice", "bob", &[]);
    if let Some(groups) = bob_knows_alice {
        w.add_contact("bob", "alice", groups);
    }
    w.add_contact("bob", "carol", &[]);
    w
}

/// Alice (the owner) asks her agent and waits for the answer about Bob,
/// skipping interim notes ("Bob's agent is offline; I'll ask…").
async fn ask(alice: &mut TestClient, agent: &Jid, question: &str, log: &Agent) -> String {
    let bare: Jid = agent.to_bare().into();
    alice.say(&bare, question).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some((_, body)) = alice.next_message(Duration::from_secs(2)).await
            && !body.contains("offline; I'll ask")
        {
            return body;
        }
    }
    panic!("no answer to {question:?}:\n{}", log.log())
}

async fn start(world: &World) -> (Agent, Agent, TestClient) {
    let bob = world.spawn("bob");
    let alice = world.spawn("alice");
    let mut owner = world.owner("alice", &alice).await;
    owner.wait_for_agent(&world.full("bob.agent"), &bob).await;
    (alice, bob, owner)
}

#[tokio::test]
async fn a_team_member_sees_busy_blocks_without_titles() {
    let w = world(Some(&["team"]));
    let (alice, _bob, mut owner) = start(&w).await;
    let answer = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow",
        &alice,
    )
    .await;
    assert!(answer.contains(&w.tomorrow.shown), "{answer}");
    assert!(
        answer.contains("10:00–11:00") && answer.contains("14:00–15:00"),
        "{answer}"
    );
    assert!(answer.contains("level busy"), "{answer}");
    assert!(
        !answer.contains("Design review") && !answer.contains("Doctor"),
        "{answer}"
    );
    // Bob's disclosure log names the rule.
    let log = attache(&w.dir("bob"), &["log"]);
    assert!(
        log.contains("freebusy: allow at level busy by rule team-sees-busy-times"),
        "{log}"
    );
}

#[tokio::test]
async fn family_sees_titles_but_never_of_private_events() {
    let w = world(Some(&["family"]));
    let (alice, _bob, mut owner) = start(&w).await;
    let answer = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow",
        &alice,
    )
    .await;
    assert!(answer.contains("Design review"), "{answer}");
    assert!(
        answer.contains("14:00–15:00"),
        "the private event still blocks time: {answer}"
    );
    assert!(!answer.contains("Doctor"), "{answer}");
    assert!(answer.contains("level details"), "{answer}");
}

#[tokio::test]
async fn another_contact_only_learns_whether_one_time_works() {
    let w = world(Some(&[]));
    let (alice, _bob, mut owner) = start(&w).await;
    let answer = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow",
        &alice,
    )
    .await;
    assert!(
        answer.contains("shares only whether a time works; ask with a time"),
        "{answer}"
    );
    let busy = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow 10:00 for 1h",
        &alice,
    )
    .await;
    assert!(busy.contains("Bob is busy then"), "{busy}");
    let free = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow 12:00 for 1h",
        &alice,
    )
    .await;
    assert!(free.contains("Bob is free"), "{free}");
    assert!(!free.contains("Design review"), "{free}");
}

#[tokio::test]
async fn a_slots_rule_offers_a_few_free_times() {
    let w = world(Some(&[]));
    std::fs::write(
        w.dir("bob").join("policies/default.toml"),
        "[[rule]]\nname = \"contacts-get-slots\"\nwho = \"any-contact\"\naction = \"freebusy\"\ndecision = \"allow\"\nlevel = \"slots\"\nhours = \"working\"\nmax_slots = 2\n",
    )
    .expect("policy");
    let (alice, _bob, mut owner) = start(&w).await;
    let answer = ask(
        &mut owner,
        &w.full("alice.agent"),
        "free bob tomorrow for 1h",
        &alice,
    )
    .await;
    assert!(answer.contains("Bob's agent offers:"), "{answer}");
    assert!(
        answer.contains("08:00–09:00") && answer.contains("09:00–10:00"),
        "{answer}"
    );
    assert!(!answer.contains("11:00–12:00"), "at most 2 slots: {answer}");
}

/// Requests straight from test clients: a stranger, a malformed payload, an
/// unknown element, and a contact who probes past its rate limit.
#[tokio::test]
async fn strangers_probes_and_bad_payloads_get_the_documented_errors() {
    let w = world(None);
    let bob = w.spawn("bob");
    let bob_agent = w.full("bob.agent");
    let mut eve = TestClient::login(&w.server, &w.jid("eve"), "eve-pw").await;
    eve.wait_for_agent(&bob_agent, &bob).await;

    let ask = |xml: String| -> Element { xml.parse().expect("xml") };
    let error_of = |r: IqResponse| match r {
        IqResponse::Error(e) => (
            format!("{:?}", e.defined_condition),
            e.other.map(|o| o.name().to_string()).unwrap_or_default(),
        ),
        IqResponse::Result(p) => panic!("expected an error, got {p:?}"),
    };

    let r = eve
        .iq(
            Some(&bob_agent),
            IqRequest::Get(ask(format!("<freebusy xmlns='{NS}' request-id='e1'/>"))),
        )
        .await;
    assert_eq!(error_of(r), ("Forbidden".into(), "not-permitted".into()));

    let r = eve
        .iq(
            Some(&bob_agent),
            IqRequest::Get(ask(format!(
                "<freebusy xmlns='{NS}' request-id='e2' start='soon' end='later'/>"
            ))),
        )
        .await;
    assert_eq!(error_of(r), ("BadRequest".into(), "invalid-payload".into()));

    let r = eve
        .iq(
            Some(&bob_agent),
            IqRequest::Get(ask(format!("<calendar-dump xmlns='{NS}'/>"))),
        )
        .await;
    assert_eq!(error_of(r).0, "FeatureNotImplemented");
    assert!(
        eve.ping(&bob_agent).await.is_ok(),
        "the agent keeps serving"
    );

    // Carol (a contact, yes-no at 20/hour) probes one slot per request.
    let mut carol = TestClient::login(&w.server, &w.jid("carol.agent"), "carol.agent-pw").await;
    let tomorrow = &w.tomorrow.ymd;
    let mut outcomes = Vec::new();
    for i in 0..21 {
        let xml = format!(
            "<freebusy xmlns='{NS}' request-id='c{i}' level='yes-no'><slot start='{}-{}-{}T{:02}:00:00Z' end='{}-{}-{}T{:02}:30:00Z'/></freebusy>",
            &tomorrow[..4],
            &tomorrow[4..6],
            &tomorrow[6..],
            8 + i % 10,
            &tomorrow[..4],
            &tomorrow[4..6],
            &tomorrow[6..],
            8 + i % 10
        );
        outcomes.push(
            match carol.iq(Some(&bob_agent), IqRequest::Get(ask(xml))).await {
                IqResponse::Result(_) => "answered".to_string(),
                IqResponse::Error(e) => e.other.map(|o| o.name().to_string()).unwrap_or_default(),
            },
        );
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "answered").count(),
        20,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.last().map(String::as_str), Some("rate-limited"));
    assert!(eve.ping(&bob_agent).await.is_ok());

    let log = attache(&w.dir("bob"), &["log"]);
    assert!(log.contains("freebusy: deny by default"), "{log}");
    assert!(log.contains("rate-limited"), "{log}");
    assert!(attache(&w.dir("bob"), &["log", "verify"]).contains("intact"));
    let _ = PATIENCE;
}

/// A broken policy edit while the agent runs: the owner is told by chat,
/// and the last good policy keeps deciding.
#[tokio::test]
async fn a_broken_policy_edit_is_reported_to_the_owner_and_the_old_one_keeps_deciding() {
    let w = world(Some(&["team"]));
    let (_alice, bob, _owner) = start(&w).await;
    let mut bob_owner = TestClient::login(&w.server, &w.jid("bob"), "bob-pw").await;
    bob_owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let policy = w.dir("bob").join("policies/default.toml");
    let text = std::fs::read_to_string(&policy).expect("policy");
    std::fs::write(
        &policy,
        text.replacen("level = \"busy\"", "level = \"bussy\"", 1),
    )
    .expect("write");
    let mut told = None;
    for _ in 0..10 {
        if let Some((_, body)) = bob_owner.next_message(Duration::from_secs(1)).await
            && body.contains("policy edit has a mistake")
        {
            told = Some(body);
            break;
        }
    }
    let told = told.unwrap_or_else(|| panic!("the owner was not told:\n{}", bob.log()));
    assert!(
        told.contains("default.toml:") && told.contains("bussy"),
        "{told}"
    );

    // Alice (team) still gets busy blocks under the last good policy.
    let mut alice = TestClient::login(&w.server, &w.jid("alice.agent"), "alice.agent-pw").await;
    let request: Element = format!("<freebusy xmlns='{NS}' request-id='after-edit'/>")
        .parse()
        .expect("xml");
    match alice
        .iq(Some(&w.full("bob.agent")), IqRequest::Get(request))
        .await
    {
        IqResponse::Result(Some(el)) => assert_eq!(el.attr("level"), Some("busy")),
        other => panic!("{other:?}"),
    }
}
