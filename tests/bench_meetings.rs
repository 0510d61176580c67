//! Benchmark: how long a meeting takes to book between real agents on one
//! real Prosody, and how many requests it costs, for 2, 5 and 10
//! attendees; then two organizers booking at once against the same people,
//! counting double bookings (there must be none). Ignored by default:
//!
//! ```text
//! cargo test --release --test integration bench_meetings -- --ignored --nocapture
//! ```
//!
//! "Requests" are the decisions the attendees' disclosure logs record for
//! the meeting (availability query, holds, confirms); releases are not
//! logged, so this is a lower bound on the IQs the attendees received.

use std::time::Duration;

use attache::negotiate::meeting::{DEFAULT_MAX_ROUNDS, message_bound};

use crate::common::world::attache;
use crate::meetings_e2e::{Scene, double_bookings, meet};
use crate::xmpp_agent::Agent;

/// Attendee names, in the order scenes take them.
const PEOPLE: [&str; 10] = [
    "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
];

/// Meetings booked one after another per attendee count.
const SEQUENTIAL: usize = 10;

/// Meetings each of the two racing organizers books.
const RACING: usize = 5;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A scene with `organizers` and `n` attendees who all have each organizer
/// in their team; returns it with the running agents (organizers first).
fn scene(organizers: &[&str], n: usize) -> (Scene, Vec<Agent>) {
    let attendees = &PEOPLE[..n];
    let everyone: Vec<&str> = organizers.iter().chain(attendees).copied().collect();
    let w = Scene::new(&everyone, &[]);
    for o in organizers {
        for a in attendees {
            w.add_contact(o, a, &[]);
            w.add_contact(a, o, &["team"]);
        }
    }
    // The default policy allows 20 requests an hour per rule and peer; a
    // benchmark booking dozens of meetings in a minute would measure that
    // limit instead (a rate-limited free/busy query leaves the organizer
    // guessing, and its rounds run out).
    for a in attendees {
        let file = w.dir(a).join("policies/default.toml");
        let policy = std::fs::read_to_string(&file).expect("default policy");
        assert!(policy.contains("rate = \"20/hour\""), "{policy}");
        std::fs::write(
            &file,
            policy.replace("rate = \"20/hour\"", "rate = \"10000/hour\""),
        )
        .expect("policy");
    }
    let mut agents: Vec<Agent> = attendees.iter().map(|a| w.spawn(a)).collect();
    let mut first: Vec<Agent> = organizers.iter().map(|o| w.spawn(o)).collect();
    first.append(&mut agents);
    (w, first)
}

/// Asserts no attendee has two booked events overlapping; returns how many
/// booked events the attendees have in all.
fn check_no_double_bookings(w: &Scene, attendees: &[&str]) -> usize {
    let mut events = 0;
    for who in attendees {
        let mine = w.events(who);
        let doubles = double_bookings(&mine);
        assert!(doubles.is_empty(), "{who} is double-booked: {doubles:#?}");
        events += mine.len();
    }
    events
}

async fn sequential(n: usize) {
    let (w, agents) = scene(&["alice"], n);
    let logs: Vec<&Agent> = agents.iter().collect();
    let attendees = &PEOPLE[..n];
    let mut owner = w.owner("alice", &agents[0]).await;
    let agent = w.bare("alice.agent");
    w.until_reachable(&mut owner, &agent, attendees, &logs)
        .await;
    let who = attendees.join(", ");
    let mut times = Vec::new();
    let mut requests = Vec::new();
    for i in 0..SEQUENTIAL {
        let before: usize = attendees.iter().map(|a| w.log_len(a)).sum();
        let (outcome, took) = meet(
            &mut owner,
            &agent,
            &format!("meet {who} for 30m tomorrow about Bench {n}-{i}"),
            Duration::from_secs(120),
            &logs,
        )
        .await;
        assert!(
            outcome.starts_with("Booked:"),
            "{outcome}\n{}'s log:\n{}",
            attendees[0],
            attache(&w.dir(attendees[0]), &["log"])
        );
        let after: usize = attendees.iter().map(|a| w.log_len(a)).sum();
        let asked = after - before;
        assert!(
            asked <= message_bound(n, DEFAULT_MAX_ROUNDS as usize),
            "meeting {i} with {n}: {asked} requests"
        );
        times.push(took);
        requests.push(asked);
    }
    let booked = check_no_double_bookings(&w, attendees);
    assert_eq!(booked, n * SEQUENTIAL);
    times.sort();
    let mean = requests.iter().sum::<usize>() as f64 / requests.len() as f64;
    println!(
        "{n:>2} attendees, {SEQUENTIAL} meetings in a row: meet→Booked median {}, p95 {}, max {}; \
         requests per meeting {mean:.1} (min {}, max {}; bound for 1 round {})",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.95)),
        ms(times.last().copied().unwrap_or_default()),
        requests.iter().min().copied().unwrap_or_default(),
        requests.iter().max().copied().unwrap_or_default(),
        message_bound(n, 1),
    );
}

async fn racing(n: usize) {
    let (w, agents) = scene(&["alice", "zed"], n);
    let logs: Vec<&Agent> = agents.iter().collect();
    let attendees = &PEOPLE[..n];
    let who = attendees.join(", ");
    let mut alice = w.owner("alice", &agents[0]).await;
    let mut zed = w.owner("zed", &agents[1]).await;
    let (alice_agent, zed_agent) = (w.bare("alice.agent"), w.bare("zed.agent"));
    w.until_reachable(&mut alice, &alice_agent, attendees, &logs)
        .await;
    w.until_reachable(&mut zed, &zed_agent, attendees, &logs)
        .await;
    let book = |owner: &'static str| {
        let who = who.clone();
        move |i: usize| format!("meet {who} for 30m tomorrow about {owner} {i}")
    };
    let (alice_order, zed_order) = (book("A"), book("Z"));
    let mut outcomes = Vec::new();
    let mut times = Vec::new();
    for i in 0..RACING {
        let (a_order, z_order) = (alice_order(i), zed_order(i));
        let (a, z) = tokio::join!(
            meet(
                &mut alice,
                &alice_agent,
                &a_order,
                Duration::from_secs(180),
                &logs
            ),
            meet(
                &mut zed,
                &zed_agent,
                &z_order,
                Duration::from_secs(180),
                &logs
            ),
        );
        times.push(a.1);
        times.push(z.1);
        outcomes.push(a.0);
        outcomes.push(z.0);
    }
    let booked = outcomes.iter().filter(|o| o.starts_with("Booked:")).count();
    let events = check_no_double_bookings(&w, attendees);
    // Every booking is in every attendee's calendar, and nothing else is.
    assert_eq!(events, booked * n, "{outcomes:#?}");
    times.sort();
    println!(
        "2 organizers × {RACING} meetings at once with {n} attendees: {booked} of {} booked, \
         0 double bookings; meet→outcome median {}, p95 {}",
        outcomes.len(),
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.95)),
    );
    for o in outcomes.iter().filter(|o| !o.starts_with("Booked:")) {
        println!("  not booked: {o}");
    }
}

#[tokio::test]
#[ignore = "benchmark: cargo test --release --test integration bench_meetings -- --ignored --nocapture"]
async fn bench_meetings() {
    for n in [2, 5, 10] {
        sequential(n).await;
    }
    racing(4).await;
}
