//! Peers' requests through the real store, the shipped default policy and
//! the disclosure log: each contact gets exactly what the policy gives, and
//! the rate limit holds across a restart.

use std::collections::BTreeSet;

use attache::agent::{CalendarSettings, Gatekeeper, Live};
use attache::calendar::availability::{SlotOptions, WorkingHours};
use attache::policy::{Action, Disclosure, Level, Outcome, PolicyWatcher, Request};
use attache::store::{Store, database_path};
use chrono::{DateTime, Duration, Utc};

use crate::common::{Agent, fixture};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn setup() -> Agent {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    a.ok(&[
        "contacts",
        "add",
        "bob@example.org",
        "--name",
        "Bob",
        "--agent",
        "bob.agent@example.org",
        "--group",
        "team",
    ]);
    a.ok(&[
        "contacts",
        "add",
        "carol@example.org",
        "--name",
        "Carol",
        "--agent",
        "carol.agent@example.org",
    ]);
    a
}

async fn gatekeeper(a: &Agent) -> (Gatekeeper, PolicyWatcher, Store) {
    let store = Store::open(&database_path(&a.dir)).await.expect("store");
    let watcher =
        PolicyWatcher::start(a.dir.join("policies"), chrono_tz::Europe::Berlin).expect("policies");
    let settings = CalendarSettings {
        owner_tz: chrono_tz::Europe::Berlin,
        working_hours: WorkingHours::default(),
        slot_options: SlotOptions::default(),
    };
    let live = std::sync::Arc::new(
        Live::load(store.clone(), chrono_tz::Europe::Berlin, chrono::Utc::now())
            .await
            .expect("live"),
    );
    (
        Gatekeeper::new(store.clone(), live, watcher.subscribe(), settings),
        watcher,
        store,
    )
}

const MONDAY: &str = "2026-01-05T07:00:00Z";

#[tokio::test]
async fn each_peer_gets_exactly_what_the_default_policy_gives() {
    let a = setup();
    let (gate, _w, _s) = gatekeeper(&a).await;
    let now = at(MONDAY);

    // Team member, asking through their agent: busy blocks, no titles, rounded to 30 min.
    let bob = gate
        .answer(
            &Request::new("bob.agent@example.org", Action::Freebusy),
            now,
        )
        .await
        .expect("answer");
    assert_eq!(bob.decision.outcome, Outcome::Allow);
    assert_eq!(bob.decision.level, Level::Busy);
    let Disclosure::Busy { busy, .. } = &bob.disclosure else {
        panic!("{:?}", bob.disclosure)
    };
    let starts: Vec<String> = busy.iter().map(|b| b.start.to_rfc3339()).collect();
    assert_eq!(
        starts,
        ["2026-01-05T13:00:00+00:00", "2026-01-13T15:00:00+00:00"]
    );

    // Another known contact: only yes/no for one proposed slot.
    let mut ask = Request::new("carol.agent@example.org", Action::Freebusy);
    ask.proposed = vec![attache::domain::TimeRange {
        start: at("2026-01-05T13:00:00Z"),
        end: at("2026-01-05T13:30:00Z"),
    }];
    let carol = gate.answer(&ask, now).await.expect("answer");
    assert_eq!(carol.decision.level, Level::YesNo);
    assert!(
        matches!(
            carol.disclosure,
            Disclosure::YesNo {
                answer: Some(false),
                ..
            }
        ),
        "{:?}",
        carol.disclosure
    );

    // A stranger: denied by default, nothing disclosed, still logged.
    let eve = gate
        .answer(&Request::new("eve@evil.example", Action::Freebusy), now)
        .await
        .expect("answer");
    assert_eq!(eve.decision.outcome, Outcome::Deny);
    assert!(eve.decision.rule.is_none());
    assert_eq!(eve.disclosure, Disclosure::Nothing);

    let log = a.ok(&["log"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(
        log.contains("eve@evil.example  freebusy: deny by default — nothing"),
        "{log}"
    );
    assert!(
        !log.contains("Weekly review"),
        "the log never holds titles: {log}"
    );
}

/// Carol may ask 20 yes/no questions an hour. Probing with many slots learns
/// at most 20 answers, the limit survives a restart, and the owner sees it in the log.
#[tokio::test]
async fn yes_no_probing_is_bounded_by_the_rate_limit_even_across_a_restart() {
    let a = setup();
    let now = at(MONDAY);
    let mut answered = BTreeSet::new();
    let mut limited = 0;
    let mut allowed = 0;
    {
        let (gate, _w, store) = gatekeeper(&a).await;
        for i in 0..30 {
            let mut r = Request::new(
                if i % 2 == 0 {
                    "carol.agent@example.org"
                } else {
                    "carol@example.org"
                },
                Action::Freebusy,
            );
            let start = at("2026-01-05T08:00:00Z") + Duration::minutes(30 * i);
            r.proposed = vec![attache::domain::TimeRange {
                start,
                end: start + Duration::minutes(30),
            }];
            let ans = gate
                .answer(&r, now + Duration::seconds(i))
                .await
                .expect("answer");
            match (&ans.decision.outcome, &ans.disclosure) {
                (
                    Outcome::Allow,
                    Disclosure::YesNo {
                        slot: Some(s),
                        answer,
                    },
                ) => {
                    allowed += 1;
                    // Outside working hours the answer is "not telling": nothing learnt.
                    if answer.is_some() {
                        answered.insert(s.start);
                    }
                }
                (Outcome::RateLimited, Disclosure::Nothing) => limited += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        store.close().await;
    }
    assert_eq!(
        allowed, 20,
        "both of Carol's JIDs share one budget of 20/hour"
    );
    assert!(
        answered.len() <= 20,
        "at most one slot learnt per answered request"
    );
    // 08:00Z..16:00Z on Monday is inside working hours: 16 half hours answered.
    assert_eq!(answered.len(), 16);
    assert_eq!(limited, 10);

    // Restart: a new store handle and gatekeeper on the same files.
    let (gate, _w, _s) = gatekeeper(&a).await;
    let mut r = Request::new("carol.agent@example.org", Action::Freebusy);
    r.proposed = vec![attache::domain::TimeRange {
        start: at("2026-01-06T08:00:00Z"),
        end: at("2026-01-06T08:30:00Z"),
    }];
    let ans = gate
        .answer(&r, now + Duration::minutes(5))
        .await
        .expect("answer");
    assert_eq!(
        ans.decision.outcome,
        Outcome::RateLimited,
        "a restart must not reset the rate limit"
    );
    // An hour later the budget is back.
    let ans = gate
        .answer(&r, now + Duration::minutes(61))
        .await
        .expect("answer");
    assert_eq!(ans.decision.outcome, Outcome::Allow);

    let log = a.ok(&["log", "--peer", "Carol"]);
    assert_eq!(log.matches("rate-limited").count(), 11, "{log}");
    assert!(a.ok(&["log", "verify"]).contains("32 entries verified"));
}

/// The CLI writes while the agent runs: one poll of the store's counters
/// brings the new events and contacts into the agent's in-memory view.
#[tokio::test]
async fn the_live_view_picks_up_cli_changes_on_the_next_poll() {
    let a = setup();
    let store = Store::open(&database_path(&a.dir)).await.expect("store");
    let now = at(MONDAY);
    let live = Live::load(store, chrono_tz::Europe::Berlin, now)
        .await
        .expect("live");
    assert!(
        !live.refresh(now).await.expect("refresh"),
        "nothing changed yet"
    );
    let window = attache::domain::TimeRange {
        start: at("2026-02-02T00:00:00Z"),
        end: at("2026-02-03T00:00:00Z"),
    };
    assert_eq!(live.snapshot().index.busy(window).expect("busy").len(), 1);

    a.import(&fixture("scenarios/thisandfuture.ics"));
    a.ok(&["contacts", "add", "dana@example.org", "--name", "Dana"]);
    assert!(live.refresh(now).await.expect("refresh"));
    let snap = live.snapshot();
    assert_eq!(snap.index.busy(window).expect("busy").len(), 3);
    assert!(snap.contacts.iter().any(|c| c.name == "Dana"));
}

/// docs/protocol.md §7: a retried request gets the same reply and is neither
/// decided nor logged again; a reused id with other content is refused.
#[tokio::test]
async fn a_repeated_request_is_replayed_not_decided_again() {
    use attache::agent::peer::{PeerReply, answer_peer};
    use attache::negotiate::ProtocolError;
    use xmpp_parsers::minidom::Element;

    let a = setup();
    let (gate, _w, _store) = gatekeeper(&a).await;
    let now = at(MONDAY);
    let ns = attache::negotiate::NS;
    let ask: Element = format!(
        "<freebusy xmlns='{ns}' request-id='q1' start='2026-01-05T00:00:00Z' end='2026-01-12T00:00:00Z'/>"
    )
    .parse()
    .expect("xml");
    let first = answer_peer(&gate, "bob.agent@example.org", &ask, now)
        .await
        .expect("answer");
    let again = answer_peer(&gate, "bob.agent@example.org", &ask, now)
        .await
        .expect("answer");
    assert!(matches!(first, PeerReply::Result(_)), "{first:?}");
    assert_eq!(first, again);
    assert_eq!(
        a.ok(&["log"]).lines().count(),
        1,
        "the replay is not logged again"
    );

    let other: Element = format!("<freebusy xmlns='{ns}' request-id='q1' level='yes-no'/>")
        .parse()
        .expect("xml");
    let reused = answer_peer(&gate, "bob.agent@example.org", &other, now)
        .await
        .expect("answer");
    assert_eq!(reused, PeerReply::Error(ProtocolError::RequestIdReused));

    // The same id from someone else is a different request.
    let eve = answer_peer(&gate, "eve@evil.example", &ask, now)
        .await
        .expect("answer");
    assert_eq!(eve, PeerReply::Error(ProtocolError::NotPermitted));

    let broken: Element = format!(
        "<freebusy xmlns='{ns}' request-id='q2' start='yesterday' end='2026-01-12T00:00:00Z'/>"
    )
    .parse()
    .expect("xml");
    let bad = answer_peer(&gate, "bob.agent@example.org", &broken, now)
        .await
        .expect("answer");
    assert!(
        matches!(bad, PeerReply::Error(ProtocolError::Invalid(_))),
        "{bad:?}"
    );

    // After a restart (a new gatekeeper on the same store) the reply is
    // still remembered: the in-memory index is loaded from the store.
    let logged = a.ok(&["log"]).lines().count();
    drop(gate);
    let (restarted, _w2, _store2) = gatekeeper(&a).await;
    let replayed = answer_peer(&restarted, "bob.agent@example.org", &ask, now)
        .await
        .expect("answer");
    assert_eq!(replayed, first);
    assert_eq!(a.ok(&["log"]).lines().count(), logged);
}
