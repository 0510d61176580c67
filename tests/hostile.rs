//! Hostile peers against a real agent on a real Prosody (issue 7): strangers,
//! forged and reused ids, replays, oversized, deep and malformed payloads,
//! unknown elements, a 1,000-request burst, yes-no probing, and a peer
//! fishing for the titles of private events. Every case asserts the error of
//! docs/protocol.md §6/§8, that nothing beyond the policy was disclosed,
//! that the agent still answers a ping within 10 s (the latency is printed
//! with `hostile[...]` for docs/reliability.md), and what the disclosure log
//! holds (§9: every decision, and nothing for a request never decided).
//!
//! ```sh
//! cargo test --test integration hostile -- --nocapture
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use attache::negotiate::wire::format_time;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_xmpp::{Event, IqRequest, IqResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;

use crate::common::world::{World, attache, calendar, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

const NS: &str = attache::negotiate::NS;

/// How long the agent may take to answer a ping after an attack.
const ALIVE_WITHIN: Duration = Duration::from_secs(10);

/// Words that appear only in the titles and locations of Bob's private and
/// confidential events: none of them may ever reach a peer.
const SECRETS: &[&str] = &[
    "Oncologist",
    "Zebra",
    "Quokka",
    "Lawyer",
    "Narwhal",
    "Axolotl",
];

/// Bob's agent, with a test client for each peer that talks to it.
///
/// Bob works every day 08:00–20:00 (Berlin) and tomorrow has a public design
/// review (10–11, Room 4), a PRIVATE appointment (14–15) and a CONFIDENTIAL
/// one (16–17). In Bob's address book: Alice (team: busy level, may book
/// meetings), Dana (family: details), Carol (no group: yes-no only,
/// proposals need approval). Eve and Mallory's agent are strangers.
struct Scene {
    w: World,
    bob: Agent,
    /// Bob's agent, where requests go.
    to: Jid,
}

impl Scene {
    async fn new() -> Scene {
        let w = World::start();
        w.home("bob");
        w.work_every_day("bob");
        for account in [
            "alice",
            "alice.agent",
            "carol.agent",
            "dana.agent",
            "eve",
            "mallory.agent",
        ] {
            w.register(account);
        }
        let t = &w.tomorrow;
        let events = t.event(
            "review@bob",
            "10:00",
            "11:00",
            &["SUMMARY:Design review", "LOCATION:Room 4"],
        ) + &t.event(
            "private@bob",
            "14:00",
            "15:00",
            &[
                "CLASS:PRIVATE",
                "SUMMARY:Oncologist Zebra",
                "LOCATION:Clinic Quokka",
            ],
        ) + &t.event(
            "confidential@bob",
            "16:00",
            "17:00",
            &[
                "CLASS:CONFIDENTIAL",
                "SUMMARY:Lawyer Narwhal",
                "LOCATION:Courthouse Axolotl",
            ],
        );
        w.import_ics("bob", &calendar(&events));
        w.add_contact("bob", "alice", &["team"]);
        w.add_contact("bob", "dana", &["family"]);
        w.add_contact("bob", "carol", &[]);
        let bob = w.spawn("bob");
        let to = w.full("bob.agent");
        Scene { w, bob, to }
    }

    /// `account` (registered with the password `account-pw`) logged in and
    /// sure that Bob's agent is online.
    async fn client(&self, account: &str) -> TestClient {
        let mut c = TestClient::login(
            &self.w.server,
            &self.w.jid(account),
            &format!("{account}-pw"),
        )
        .await;
        c.wait_for_agent(&self.to, &self.bob).await;
        c
    }

    /// Bob's disclosure log, as `attache log --json` prints it.
    fn log(&self) -> Vec<Value> {
        let json = attache(&self.w.dir("bob"), &["log", "--json"]);
        match serde_json::from_str::<Value>(&json) {
            Ok(Value::Array(entries)) => entries,
            other => panic!("`attache log --json` is not an array: {other:?}\n{json}"),
        }
    }

    /// `attache log verify` says the hash chain is intact.
    fn log_intact(&self) {
        let out = attache(&self.w.dir("bob"), &["log", "verify"]);
        assert!(out.contains("intact"), "{out}");
    }

    /// Pings Bob's agent from `c`, asserts an answer within
    /// [`ALIVE_WITHIN`], prints and returns the round trip.
    async fn alive(&self, c: &mut TestClient, case: &str) -> Duration {
        let started = Instant::now();
        let answer = c
            .iq_within(
                Some(&self.to),
                IqRequest::Get(xmpp_parsers::ping::Ping.into()),
                ALIVE_WITHIN,
            )
            .await;
        let took = started.elapsed();
        assert!(
            matches!(answer, Some(IqResponse::Result(_))),
            "{case}: no ping answer within {ALIVE_WITHIN:?} ({answer:?})\nagent log:\n{}",
            self.bob.log()
        );
        eprintln!(
            "hostile[{case}]: ping answered in {:.1} ms",
            took.as_secs_f64() * 1e3
        );
        took
    }
}

fn xml(text: &str) -> Element {
    text.parse()
        .unwrap_or_else(|e| panic!("test XML does not parse ({e}): {text}"))
}

async fn get(c: &mut TestClient, to: &Jid, payload: &str) -> IqResponse {
    c.iq(Some(to), IqRequest::Get(xml(payload))).await
}

async fn send_kind(c: &mut TestClient, to: &Jid, kind: &str, payload: String) -> IqResponse {
    if kind == "get" {
        get(c, to, &payload).await
    } else {
        set(c, to, &payload).await
    }
}

async fn set(c: &mut TestClient, to: &Jid, payload: &str) -> IqResponse {
    c.iq(Some(to), IqRequest::Set(xml(payload))).await
}

/// (error type, defined condition, application condition) of an error answer.
fn error_of(r: &IqResponse) -> (String, String, String) {
    match r {
        IqResponse::Error(e) => (
            format!("{:?}", e.type_),
            format!("{:?}", e.defined_condition),
            e.other
                .as_ref()
                .filter(|o| o.ns() == NS)
                .map(|o| o.name().to_string())
                .unwrap_or_default(),
        ),
        IqResponse::Result(p) => panic!("expected an error, got {p:?}"),
    }
}

fn expect_error(r: &IqResponse, want: (&str, &str, &str)) {
    let got = error_of(r);
    assert_eq!(
        (got.0.as_str(), got.1.as_str(), got.2.as_str()),
        want,
        "{r:?}"
    );
}

fn result_of(r: IqResponse) -> Element {
    match r {
        IqResponse::Result(Some(el)) => el,
        other => panic!("expected a result with a payload, got {other:?}"),
    }
}

/// Everything a peer received in `r`, as text: the result payload written
/// out, or the whole error (text and children included).
/// Sends `n` copies of one request back to back, without waiting for any
/// answer, and returns the answers: the copies reach the agent while the
/// first is still being decided or written.
async fn pipelined(c: &mut TestClient, to: &Jid, payload: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(
            c.client
                .send_iq(Some(to.clone()), IqRequest::Get(xml(payload)))
                .await,
        );
    }
    let all = futures_util::future::join_all(tokens);
    tokio::pin!(all);
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            answers = &mut all => {
                return answers
                    .into_iter()
                    .map(|a| bytes_of(&a.expect("IQ sent")))
                    .collect();
            }
            _ = c.client.next() => {}
            () = &mut deadline => panic!("{n} pipelined copies not all answered in 10 s"),
        }
    }
}

fn bytes_of(r: &IqResponse) -> String {
    match r {
        IqResponse::Result(Some(el)) => text_of(el),
        IqResponse::Result(None) => String::new(),
        IqResponse::Error(e) => format!("{e:?}"),
    }
}

fn text_of(el: &Element) -> String {
    let mut buf = Vec::new();
    el.write_to(&mut buf).expect("write element");
    String::from_utf8_lossy(&buf).into_owned()
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "{what} discloses {s:?} of a private event:\n{text}"
        );
    }
}

/// A yes-no question about `slot` (Berlin "HH:MM" pairs tomorrow).
fn yes_no(w: &World, id: &str, slots: &[(&str, &str)]) -> String {
    let mut x = format!("<freebusy xmlns='{NS}' request-id='{id}' level='yes-no'>");
    for (s, e) in slots {
        x.push_str(&format!(
            "<slot start='{}' end='{}'/>",
            w.tomorrow.at(s),
            w.tomorrow.at(e)
        ));
    }
    x.push_str("</freebusy>");
    x
}

fn hold(id: &str, meeting: &str, start: &str, end: &str, summary: &str) -> String {
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    format!(
        "<hold xmlns='{NS}' request-id='{id}' meeting='{meeting}' sequence='0' \
         start='{start}' end='{end}' expires='{expires}'><summary>{summary}</summary></hold>"
    )
}

fn count_action(log: &[Value], action: &str) -> usize {
    log.iter().filter(|e| e["action"] == action).count()
}

#[tokio::test]
async fn hostile_strangers_are_denied_and_a_contacts_own_account_is_the_contact() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let window = format!(
        "start='{}' end='{}'",
        s.w.tomorrow.at("00:00"),
        s.w.tomorrow.at_on(1, "00:00")
    );

    // A stranger's person account and a stranger's agent account: denied,
    // saying no more than "not permitted", logged as a default deny.
    let mut eve = s.client("eve").await;
    let mut mallory = s.client("mallory.agent").await;
    for (c, who) in [(&mut eve, "eve"), (&mut mallory, "mallory")] {
        let r = get(
            c,
            &to,
            &format!("<freebusy xmlns='{NS}' request-id='{who}-1' {window}/>"),
        )
        .await;
        expect_error(&r, ("Auth", "Forbidden", "not-permitted"));
        assert!(!bytes_of(&r).contains("rule"), "{r:?}");
        let r = set(
            c,
            &to,
            &hold(
                &format!("{who}-h"),
                &format!("m-{who}@x"),
                &s.w.tomorrow.at("12:00"),
                &s.w.tomorrow.at("12:30"),
                "Let me in",
            ),
        )
        .await;
        expect_error(&r, ("Auth", "Forbidden", "not-permitted"));
    }
    let log = s.log();
    for who in ["eve", "mallory.agent"] {
        let mine: Vec<&Value> = log
            .iter()
            .filter(|e| e["peer"] == s.w.jid(who).as_str())
            .collect();
        assert_eq!(mine.len(), 2, "{who}: {log:?}");
        assert!(mine.iter().all(|e| e["outcome"] == "deny"), "{mine:?}");
        assert!(mine.iter().all(|e| e["rule"].is_null()), "{mine:?}");
    }
    assert_eq!(
        count_action(&log, "propose-meeting"),
        2,
        "both holds logged: {log:?}"
    );

    // §9: Alice's own account and Alice's agent are the same person: the
    // same rule, the same level, the same busy blocks, and one rate count.
    let mut alice = s.client("alice").await;
    let mut alice_agent = s.client("alice.agent").await;
    let ask = |id: &str| format!("<freebusy xmlns='{NS}' request-id='{id}' {window}/>");
    let by_person = result_of(get(&mut alice, &to, &ask("p-1")).await);
    let by_agent = result_of(get(&mut alice_agent, &to, &ask("a-1")).await);
    assert_eq!(by_person.attr("level"), Some("busy"), "{by_person:?}");
    let busy = |el: &Element| -> Vec<(String, String)> {
        let reply = attache::negotiate::wire::parse_reply(el)
            .unwrap_or_else(|e| panic!("not a free/busy reply ({e}): {el:?}"));
        reply
            .busy
            .iter()
            .map(|b| (format_time(b.start), format_time(b.end)))
            .collect()
    };
    assert_eq!(busy(&by_person), busy(&by_agent));
    assert_eq!(busy(&by_person).len(), 3, "{by_person:?}");
    assert_no_secret("a busy answer", &text_of(&by_person));
    let log = s.log();
    let alices: Vec<&Value> = log
        .iter()
        .filter(|e| e["peer_key"] == s.w.jid("alice").as_str())
        .collect();
    assert_eq!(alices.len(), 2, "{log:?}");
    assert!(
        alices
            .iter()
            .all(|e| e["rule"] == "team-sees-busy-times" && e["outcome"] == "allow"),
        "{alices:?}"
    );
    // One rate count for both: 18 more from the agent, then the person's
    // 21st request of the hour is refused.
    for i in 0..18 {
        result_of(get(&mut alice_agent, &to, &ask(&format!("a-more-{i}"))).await);
    }
    let r = get(&mut alice, &to, &ask("p-over")).await;
    expect_error(&r, ("Wait", "ResourceConstraint", "rate-limited"));

    s.alive(&mut eve, "strangers and own account").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_forged_replies_and_reused_ids_change_nothing() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut owner = s.w.owner("bob", &s.bob).await;
    let mut alice = s.client("alice.agent").await;
    let mut mallory = s.client("mallory.agent").await;
    let before = s.log().len();

    // A <reply> for a request Bob's agent never sent, from a contact and
    // from a stranger: acknowledged (empty result) and dropped.
    for (c, who) in [(&mut alice, "alice"), (&mut mallory, "mallory")] {
        let forged = format!(
            "<reply xmlns='{NS}' request-id='never-{who}'>\
               <freebusy request-id='never-{who}' level='busy' start='{}' end='{}'/></reply>",
            s.w.tomorrow.at("00:00"),
            s.w.tomorrow.at_on(1, "00:00")
        );
        let r = set(c, &to, &forged).await;
        assert!(matches!(r, IqResponse::Result(None)), "{who}: {r:?}");
        let forged_hold = format!(
            "<reply xmlns='{NS}' request-id='never-h-{who}'>\
               <held request-id='never-h-{who}' meeting='m@x' sequence='0' expires='{}'/></reply>",
            s.w.tomorrow.at("12:00")
        );
        let r = set(c, &to, &forged_hold).await;
        assert!(matches!(r, IqResponse::Result(None)), "{who}: {r:?}");
    }
    // Without a request-id it is malformed.
    let r = set(&mut mallory, &to, &format!("<reply xmlns='{NS}'/>")).await;
    expect_error(&r, ("Modify", "BadRequest", "invalid-payload"));
    // Nothing changed: no log entry, no word to the owner, no event.
    assert_eq!(s.log().len(), before, "{:?}", s.log());
    if let Some((_, body)) = owner.next_message(Duration::from_secs(2)).await {
        panic!("the owner was told about a forged reply: {body}");
    }
    let ics = attache(&s.w.dir("bob"), &["export"]);
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 3, "{ics}");

    // The same request id with another payload: conflict, and the first
    // answer is still the remembered one.
    let first = format!(
        "<freebusy xmlns='{NS}' request-id='dup-1' start='{}' end='{}'/>",
        s.w.tomorrow.at("08:00"),
        s.w.tomorrow.at("12:00")
    );
    let other = format!(
        "<freebusy xmlns='{NS}' request-id='dup-1' start='{}' end='{}'/>",
        s.w.tomorrow.at("12:00"),
        s.w.tomorrow.at("20:00")
    );
    let answer = bytes_of(&get(&mut alice, &to, &first).await);
    let r = get(&mut alice, &to, &other).await;
    expect_error(&r, ("Cancel", "Conflict", "request-id-reused"));
    assert_eq!(bytes_of(&get(&mut alice, &to, &first).await), answer);
    // The same for a hold: the reused id books nothing.
    let (a, b) = (s.w.tomorrow.at("12:00"), s.w.tomorrow.at("12:30"));
    let (c, d) = (s.w.tomorrow.at("13:00"), s.w.tomorrow.at("13:30"));
    let held = result_of(set(&mut alice, &to, &hold("dup-h", "m1@x", &a, &b, "Sync")).await);
    assert!(held.is("held", NS), "{held:?}");
    let r = set(&mut alice, &to, &hold("dup-h", "m1@x", &c, &d, "Sync")).await;
    expect_error(&r, ("Cancel", "Conflict", "request-id-reused"));
    // Ids are per requester: Mallory's "dup-1" is Mallory's own (and denied).
    let r = get(&mut mallory, &to, &other).await;
    expect_error(&r, ("Auth", "Forbidden", "not-permitted"));
    // Logged: the first free/busy, the hold, Mallory's denial; no conflict.
    let log = s.log();
    assert_eq!(log.len(), before + 3, "{log:?}");

    s.alive(&mut mallory, "forged replies and reused ids").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_replays_get_the_same_answer_and_have_no_second_effect() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut alice = s.client("alice.agent").await;
    let mut mallory = s.client("mallory.agent").await;

    let q = format!(
        "<freebusy xmlns='{NS}' request-id='rp-1' start='{}' end='{}'/>",
        s.w.tomorrow.at("00:00"),
        s.w.tomorrow.at_on(1, "00:00")
    );
    let first = bytes_of(&get(&mut alice, &to, &q).await);
    let logged = s.log().len();
    for _ in 0..5 {
        assert_eq!(bytes_of(&get(&mut alice, &to, &q).await), first);
    }
    // Copies arriving while the first is still being written: the same
    // answer for all, decided and logged once.
    let q2 = q.replace("rp-1", "rp-2");
    let copies = pipelined(&mut alice, &to, &q2, 6).await;
    assert!(copies[0].contains("rp-2"), "{copies:?}");
    assert!(copies.iter().all(|c| *c == copies[0]), "{copies:?}");
    assert_eq!(s.log().len(), logged + 1, "{:?}", s.log());
    let logged = logged + 1;
    // A replayed denial: the same error, logged once.
    let denied = format!("<freebusy xmlns='{NS}' request-id='rp-m'/>");
    for _ in 0..3 {
        let r = get(&mut mallory, &to, &denied).await;
        expect_error(&r, ("Auth", "Forbidden", "not-permitted"));
    }
    assert_eq!(s.log().len(), logged + 1, "{:?}", s.log());

    // Hold and confirm, each sent three times: one hold, one booking.
    let (a, b) = (s.w.tomorrow.at("12:00"), s.w.tomorrow.at("12:30"));
    let h = hold("rp-h", "replay@x", &a, &b, "Replay sync");
    let held = bytes_of(&set(&mut alice, &to, &h).await);
    assert!(held.contains("<held"), "{held}");
    let c = format!("<confirm xmlns='{NS}' request-id='rp-c' meeting='replay@x' sequence='0'/>");
    let confirmed = bytes_of(&set(&mut alice, &to, &c).await);
    assert!(confirmed.contains("<confirmed"), "{confirmed}");
    for _ in 0..2 {
        assert_eq!(bytes_of(&set(&mut alice, &to, &h).await), held);
        assert_eq!(bytes_of(&set(&mut alice, &to, &c).await), confirmed);
    }
    let ics = attache(&s.w.dir("bob"), &["export"]);
    assert_eq!(
        ics.matches("SUMMARY:Replay sync").count(),
        1,
        "one booking: {ics}"
    );
    let log = s.log();
    let meeting: Vec<&str> = log
        .iter()
        .filter(|e| e["action"] == "propose-meeting")
        .filter_map(|e| e["disclosed"].as_str())
        .collect();
    assert_eq!(
        meeting.len(),
        2,
        "the hold and the confirm, once each: {meeting:?}"
    );
    assert!(
        meeting[0].starts_with("held") && meeting[1].starts_with("confirm"),
        "{meeting:?}"
    );

    s.alive(&mut alice, "replays").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_oversized_deep_and_malformed_payloads_are_refused() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut carol = s.client("carol.agent").await;
    let mut alice = s.client("alice.agent").await;
    let before = s.log().len();
    let t = &s.w.tomorrow;
    let (a, b) = (t.at("12:00"), t.at("13:00"));

    // Over the limits of §8.
    // Foreign children are ignored (§10), so only their size counts; the
    // XML parsers refuse single attributes or names this long.
    let padding = format!("<p xmlns='urn:example:pad'>{}</p>", "x".repeat(500)).repeat(36);
    let too_large = [
        format!("<freebusy xmlns='{NS}' request-id='big'>{padding}</freebusy>"),
        format!(
            "<freebusy xmlns='{NS}' request-id='year' start='{a}' end='{}'/>",
            (chrono::Utc::now() + chrono::Duration::days(368)).format("%Y-%m-%dT%H:%M:%SZ")
        ),
        {
            let mut x = format!("<freebusy xmlns='{NS}' request-id='slots' level='yes-no'>");
            for _ in 0..51 {
                x.push_str(&format!("<slot start='{a}' end='{b}'/>"));
            }
            x + "</freebusy>"
        },
    ];
    for payload in &too_large {
        let r = get(&mut carol, &to, payload).await;
        expect_error(&r, ("Modify", "NotAcceptable", "too-large"));
    }
    let r = set(
        &mut alice,
        &to,
        &hold("big-h", "big@x", &a, &b, &"S".repeat(201)),
    )
    .await;
    expect_error(&r, ("Modify", "NotAcceptable", "too-large"));
    let r = set(
        &mut alice,
        &to,
        &format!(
            "<hold xmlns='{NS}' request-id='big-h2' meeting='big@x' sequence='0' start='{a}' \
             end='{b}' expires='{b}'>{padding}</hold>"
        ),
    )
    .await;
    expect_error(&r, ("Modify", "NotAcceptable", "too-large"));

    // Malformed: bad times, end ≤ start, bad ids, levels, durations, and
    // nesting one level over the limit.
    let malformed = [
        format!("<freebusy xmlns='{NS}' request-id='m1' start='soon' end='later'/>"),
        format!("<freebusy xmlns='{NS}' request-id='m2' start='{b}' end='{a}'/>"),
        format!("<freebusy xmlns='{NS}' request-id='m3' start='{a}' end='{a}'/>"),
        format!(
            "<freebusy xmlns='{NS}' request-id='m4' start='2026-01-13T10:00:00+01:00' end='{b}'/>"
        ),
        format!("<freebusy xmlns='{NS}' request-id='m5' start='{a}'/>"),
        format!("<freebusy xmlns='{NS}'/>"),
        format!("<freebusy xmlns='{NS}' request-id='not valid!'/>"),
        format!("<freebusy xmlns='{NS}' request-id='{}'/>", "r".repeat(65)),
        format!("<freebusy xmlns='{NS}' request-id='m6' level='everything'/>"),
        format!("<freebusy xmlns='{NS}' request-id='m7' duration='-PT1H'/>"),
        format!(
            "<freebusy xmlns='{NS}' request-id='m8' level='yes-no'><slot start='{b}' end='{a}'/></freebusy>"
        ),
        format!("<freebusy xmlns='{NS}' request-id='m9'><slot end='{a}'/></freebusy>"),
        format!(
            "<freebusy xmlns='{NS}' request-id='m10'><x xmlns='urn:e'><y><z><w/></z></y></x></freebusy>"
        ),
    ];
    for payload in &malformed {
        let r = get(&mut carol, &to, payload).await;
        expect_error(&r, ("Modify", "BadRequest", "invalid-payload"));
    }
    for payload in [
        format!(
            "<hold xmlns='{NS}' request-id='mh1' meeting='m@x' sequence='0' start='{b}' end='{a}' expires='{b}'/>"
        ),
        format!(
            "<hold xmlns='{NS}' request-id='mh2' meeting='m@x' sequence='-1' start='{a}' end='{b}' expires='{b}'/>"
        ),
        format!(
            "<hold xmlns='{NS}' request-id='mh3' meeting='has space' sequence='0' start='{a}' end='{b}' expires='{b}'/>"
        ),
        format!("<confirm xmlns='{NS}' request-id='mc1' sequence='0'/>"),
    ] {
        let r = set(&mut alice, &to, &payload).await;
        expect_error(&r, ("Modify", "BadRequest", "invalid-payload"));
    }
    // Nothing was decided, so nothing was logged.
    assert_eq!(s.log().len(), before, "{:?}", s.log());
    s.alive(&mut carol, "oversized and malformed").await;

    s.log_intact();
}

/// Nesting far past the 4-level limit (§8), from a connection of its own:
/// the agent's connection cuts everything more than 128 levels below the
/// stanza before the XML parser sees it (`src/xmpp/guard.rs`), so the
/// stanza still arrives, shallow enough to parse at once, and the agent
/// answers bad-request and keeps serving. Both latencies (the answer, the
/// next ping) are printed for docs/reliability.md.
async fn deep_nesting_is_survived(depth: usize) {
    let s = Scene::new().await;
    let mut carol = s.client("carol.agent").await;
    let before = s.log().len();
    let (outcome, took) = deep_nesting(&s, depth).await;
    eprintln!(
        "hostile[deep nesting {depth}]: {outcome} after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        outcome,
        "bad-request/invalid-payload",
        "agent log:\n{}",
        s.bob.log()
    );
    s.alive(&mut carol, &format!("deep nesting {depth}")).await;
    assert_eq!(s.log().len(), before, "{:?}", s.log());
    s.log_intact();
}

#[tokio::test]
async fn hostile_nesting_1000_levels_deep_is_refused_and_survived() {
    deep_nesting_is_survived(1_000).await;
}

#[tokio::test]
async fn hostile_nesting_3000_levels_deep_is_refused_and_survived() {
    deep_nesting_is_survived(3_000).await;
}

#[tokio::test]
async fn hostile_nesting_10000_levels_deep_is_refused_and_survived() {
    deep_nesting_is_survived(10_000).await;
}

/// About 210 KiB, under Prosody's 256 KiB stanza limit: before the depth
/// guard this kept the agent's parser busy for minutes.
#[tokio::test]
async fn hostile_nesting_30000_levels_deep_is_refused_and_survived() {
    deep_nesting_is_survived(30_000).await;
}

/// Sends a `<freebusy>` nested `depth` levels deep from Carol's agent and
/// says what came back, and how long after the stanza was written.
async fn deep_nesting(s: &Scene, depth: usize) -> (String, Duration) {
    let mut c = RawClient::login(&s.w.server, "carol.agent", "carol.agent-pw").await;
    let stanza = format!(
        "<iq type='get' id='deep-1' to='{}'><freebusy xmlns='{NS}' request-id='deep'>{}{}</freebusy></iq>",
        s.to,
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let started = Instant::now();
    c.send(&stanza).await;
    let deadline = Duration::from_secs(15);
    loop {
        let Some(iq) = c.read_until("</iq>", deadline).await else {
            let why = "no answer within 15 s (or the stream was closed)";
            return (why.to_string(), started.elapsed());
        };
        if !iq.contains("deep-1") {
            continue;
        }
        let outcome = if iq.contains("<bad-request") && iq.contains("<invalid-payload") {
            "bad-request/invalid-payload".to_string()
        } else {
            format!("unexpected answer: {iq}")
        };
        return (outcome, started.elapsed());
    }
}

/// A bare-bones XMPP client on a raw socket (plain text and SASL PLAIN,
/// which the test Prosody allows on loopback). The deep stanza goes out as
/// text: tokio-xmpp's writer walks a deep tree in quadratic time as well
/// (30,000 levels: over two minutes in a debug build), which would time the
/// test's client instead of the agent.
struct RawClient {
    socket: tokio::net::TcpStream,
    received: String,
}

impl RawClient {
    async fn login(server: &crate::common::prosody::Prosody, user: &str, password: &str) -> Self {
        let socket = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect to Prosody");
        let mut c = RawClient {
            socket,
            received: String::new(),
        };
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
            server.domain()
        );
        let step = Duration::from_secs(10);
        c.send(&header).await;
        c.read_until("</stream:features>", step)
            .await
            .expect("stream features");
        let credentials = base64(format!("\0{user}\0{password}").as_bytes());
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>"
        ))
        .await;
        let answer = c.read_until("/>", step).await.expect("SASL answer");
        assert!(
            answer.contains("<success"),
            "login of {user} failed: {answer}"
        );
        c.send(&header).await;
        c.read_until("</stream:features>", step)
            .await
            .expect("stream features");
        c.send(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>deep</resource></bind></iq>",
        )
        .await;
        let bound = c.read_until("</iq>", step).await.expect("bind answer");
        assert!(bound.contains("type='result'"), "bind failed: {bound}");
        c
    }

    async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        self.socket
            .write_all(text.as_bytes())
            .await
            .expect("write to Prosody");
    }

    /// What arrived up to and including the next `marker`, or `None` if the
    /// stream ended or nothing matched in time.
    async fn read_until(&mut self, marker: &str, within: Duration) -> Option<String> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(at) = self.received.find(marker) {
                let rest = self.received.split_off(at + marker.len());
                return Some(std::mem::replace(&mut self.received, rest));
            }
            let mut buf = [0; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.socket.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.received.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// The next `<iq>` whose id starts with `id_prefix`, whole, or `None`
    /// if the stream ended or none came in time. What came before it is
    /// dropped.
    async fn answer(&mut self, id_prefix: &str, within: Duration) -> Option<String> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = Self::iq_end(&self.received, id_prefix) {
                let rest = self.received.split_off(end);
                let got = std::mem::replace(&mut self.received, rest);
                let start = got.rfind("<iq").unwrap_or(0);
                return Some(got[start..].to_string());
            }
            let mut buf = [0; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.socket.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.received.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// Where the `<iq>` with an id starting with `id_prefix` ends in
    /// `text`, if all of it is there. Prosody escapes `>` in attribute
    /// values, so the first `>` after the id ends the start tag.
    fn iq_end(text: &str, id_prefix: &str) -> Option<usize> {
        let at = [format!("id='{id_prefix}"), format!("id=\"{id_prefix}")]
            .iter()
            .filter_map(|marker| text.find(marker.as_str()))
            .min()?;
        let start = text[..at].rfind("<iq")?;
        let tag_end = at + text[at..].find('>')?;
        if text[start..tag_end].ends_with('/') {
            return Some(tag_end + 1);
        }
        Some(tag_end + text[tag_end..].find("</iq>")? + "</iq>".len())
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Names and attribute values over 8 KiB, from a contact's agent and from a
/// stranger, each as raw text from a connection of its own: rxml (under
/// tokio-xmpp, with its default 8,192-byte `max_token_length` and no way to
/// change it) refuses a name, attribute name or attribute value that long
/// with a fatal error, which ended the agent's whole stream and made it
/// reconnect, in a loop, as Prosody re-sent the stanza on every resumption.
/// The guard (`src/xmpp/guard.rs`) now cuts out a payload element with a
/// token over 4 KiB (the request's own child becomes a placeholder, so it
/// gets `service-unavailable`) and shortens or leaves out one on the stanza
/// itself, so the stanza still arrives, gets whatever answer is left to
/// give, and the stream is never lost. Long text is split by rxml and gets
/// the usual `too-large`.
#[tokio::test]
async fn hostile_names_and_attributes_over_8_kib_do_not_reset_the_stream() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut carol = s.client("carol.agent").await;
    let mut carol_raw = RawClient::login(&s.w.server, "carol.agent", "carol.agent-pw").await;
    let mut eve_raw = RawClient::login(&s.w.server, "eve", "eve-pw").await;
    let before = s.log().len();
    let t = &s.w.tomorrow;
    let (a, b) = (t.at("12:00"), t.at("13:00"));
    let long = "A".repeat(10 * 1024);
    // 5,000 two-byte characters: no cut may split one.
    let wide = "é".repeat(5_000);
    // 2,100 escaped ampersands: 10.5 KiB as sent, 2.1 KiB once decoded.
    let escaped = "&amp;".repeat(2_100);
    let freebusy = |id: &str, extra: &str, inner: &str| {
        format!(
            "<freebusy xmlns='{NS}' request-id='{id}' start='{a}' end='{b}'{extra}>{inner}</freebusy>"
        )
    };
    let iq = |id: &str, attrs: &str, payload: &str| {
        format!("<iq type='get' id='{id}' to='{to}'{attrs}>{payload}</iq>")
    };
    let ping = "<ping xmlns='urn:xmpp:ping'/>";
    // (case, sender is the stranger, id prefix to find the answer by,
    // stanza, what the answer must be).
    let cases = [
        (
            "payload attribute value 10 KiB",
            false,
            "lv",
            iq("lv", "", &freebusy("lv", &format!(" x='{long}'"), "")),
            "error (service-unavailable",
        ),
        (
            "payload attribute name 10 KiB",
            false,
            "ln",
            iq("ln", "", &freebusy("ln", &format!(" {long}='x'"), "")),
            "error (service-unavailable",
        ),
        (
            "payload element name 10 KiB",
            false,
            "en",
            iq(
                "en",
                "",
                &freebusy("en", "", &format!("<{long} xmlns='urn:e'/>")),
            ),
            "result",
        ),
        (
            "payload namespace 10 KiB",
            false,
            "ns",
            iq(
                "ns",
                "",
                &freebusy("ns", "", &format!("<x xmlns='urn:{long}'/>")),
            ),
            "result",
        ),
        (
            "payload attribute value 10 KiB of 2-byte chars",
            false,
            "lw",
            iq(
                "lw",
                "",
                &freebusy("lw", "", &format!("<x xmlns='urn:e' v='{wide}'/>")),
            ),
            "result",
        ),
        (
            "payload attribute value 10.5 KiB of &amp;",
            false,
            "la",
            iq(
                "la",
                "",
                &freebusy("la", "", &format!("<x xmlns='urn:e' v='{escaped}'/>")),
            ),
            "result",
        ),
        (
            "payload text 20 KiB",
            false,
            "tx",
            iq(
                "tx",
                "",
                &freebusy(
                    "tx",
                    "",
                    &format!("<x xmlns='urn:e'>{}</x>", "t".repeat(20 * 1024)),
                ),
            ),
            "error (not-acceptable",
        ),
        (
            "stanza attribute value 10 KiB",
            false,
            "sv",
            iq("sv", &format!(" x='{long}'"), ping),
            "result",
        ),
        (
            "stanza attribute name 10 KiB",
            false,
            "sn",
            iq("sn", &format!(" {long}='x'"), ping),
            "result",
        ),
        (
            "stanza attribute value 10 KiB of 2-byte chars",
            false,
            "sw",
            iq("sw", &format!(" x='{wide}'"), ping),
            "result",
        ),
        (
            "stanza id 10 KiB",
            false,
            "long-id-",
            iq(&format!("long-id-{long}"), "", ping),
            "result",
        ),
        (
            "stranger: payload attribute value 10 KiB",
            true,
            "ev",
            iq("ev", "", &freebusy("ev", &format!(" x='{long}'"), "")),
            "error (service-unavailable",
        ),
        (
            "stranger: stanza attribute value 10 KiB",
            true,
            "es",
            iq("es", &format!(" x='{long}'"), ping),
            "result",
        ),
    ];
    let mut outcomes = Vec::new();
    for (case, stranger, id, stanza, want) in &cases {
        let raw = if *stranger {
            &mut eve_raw
        } else {
            &mut carol_raw
        };
        let lost_before = s.bob.log().matches("connection lost").count();
        let started = Instant::now();
        raw.send(stanza).await;
        let answer = raw.answer(id, Duration::from_secs(10)).await;
        let took = started.elapsed();
        let kind = match &answer {
            None => "none".to_string(),
            Some(a) if a.contains("type='result'") => "result".to_string(),
            Some(a) if a.contains("type='error'") => {
                let condition = ["bad-request", "service-unavailable", "not-acceptable"]
                    .into_iter()
                    .find(|c| a.contains(&format!("<{c}")))
                    .unwrap_or("other");
                format!("error ({condition}, {} bytes)", a.len())
            }
            Some(a) => format!("unexpected: {:.300}", a),
        };
        let alive = s.alive(&mut carol, case).await;
        let lost = s.bob.log().matches("connection lost").count() - lost_before;
        eprintln!(
            "hostile[{case}]: {kind} after {:.1} ms; stream lost {lost} times; ping {:.1} ms",
            took.as_secs_f64() * 1e3,
            alive.as_secs_f64() * 1e3
        );
        outcomes.push((*case, *want, kind, lost));
    }
    let log = s.bob.log();
    for (case, want, kind, lost) in &outcomes {
        assert_eq!(*lost, 0, "{case}: the stream was lost\nagent log:\n{log}");
        assert!(
            kind.starts_with(want),
            "{case}: expected {want}, got {kind}\nagent log:\n{log}"
        );
    }
    for line in ["connection lost", "online again", "reconnecting"] {
        assert!(!log.contains(line), "the agent logged {line:?}:\n{log}");
    }
    // The four free/busy requests whose long part was a foreign child
    // were answered, each a decision; nothing else was decided.
    let decided = s.log().len() - before;
    assert_eq!(decided, 4, "{:?}", s.log());
    assert!(
        log.contains("in a received stanza"),
        "the guard logged no cut:\n{log}"
    );
    s.log_intact();
}

#[tokio::test]
async fn hostile_unknown_namespaces_and_elements_are_refused() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut alice = s.client("alice.agent").await;
    let before = s.log().len();
    for kind in ["get", "set"] {
        let r = send_kind(
            &mut alice,
            &to,
            kind,
            "<query xmlns='urn:example:unknown'/>".into(),
        )
        .await;
        expect_error(&r, ("Cancel", "ServiceUnavailable", ""));
        let r = send_kind(
            &mut alice,
            &to,
            kind,
            format!("<calendar-dump xmlns='{NS}'/>"),
        )
        .await;
        expect_error(&r, ("Cancel", "FeatureNotImplemented", ""));
        let r = send_kind(
            &mut alice,
            &to,
            kind,
            format!("<why xmlns='{NS}' request-id='w1'/>"),
        )
        .await;
        expect_error(&r, ("Cancel", "FeatureNotImplemented", ""));
    }
    // An unknown child of a known request, in our namespace.
    let r = get(
        &mut alice,
        &to,
        &format!("<freebusy xmlns='{NS}' request-id='u1'><titles/></freebusy>"),
    )
    .await;
    expect_error(&r, ("Cancel", "FeatureNotImplemented", ""));
    assert_eq!(s.log().len(), before, "{:?}", s.log());
    s.alive(&mut alice, "unknown elements").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_a_burst_of_1000_is_rate_limited_while_others_are_served() {
    const BURST: usize = 1_000;
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut carol = s.client("carol.agent").await;
    let mut alice = s.client("alice.agent").await;
    let mut owner = s.w.owner("bob", &s.bob).await;
    let bob_agent = s.w.bare("bob.agent");
    let t = &s.w.tomorrow;
    // Alice and Bob speak up half-way through the burst, when Carol's
    // requests are queued at the agent (and some are being shed).
    let half_way = tokio::sync::Notify::new();

    let burst = async {
        let started = Instant::now();
        let mut outstanding: HashMap<String, ()> = HashMap::new();
        for i in 0..BURST {
            if i == BURST / 2 {
                half_way.notify_one();
            }
            let id = format!("burst-{i}");
            let iq = Iq::Get {
                from: None,
                to: Some(to.clone()),
                id: id.clone(),
                payload: xml(&yes_no(&s.w, &id, &[("12:00", "12:30")])),
            };
            carol
                .client
                .send_stanza(iq.into())
                .await
                .unwrap_or_else(|e| panic!("burst request {i} not sent: {e}"));
            outstanding.insert(id, ());
        }
        let (mut allowed, mut limited, mut shed, mut other) = (0usize, 0usize, 0usize, Vec::new());
        while !outstanding.is_empty() {
            let event = tokio::time::timeout(Duration::from_secs(60), carol.client.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} of {BURST} burst requests unanswered after 60 s of silence",
                        outstanding.len()
                    )
                });
            match event {
                Some(Event::Stanza(Stanza::Iq(Iq::Result { id, payload, .. })))
                    if outstanding.remove(&id).is_some() =>
                {
                    let answers = payload
                        .map(|p| p.children().filter(|c| c.is("answer", NS)).count())
                        .unwrap_or(0);
                    assert!(answers <= 1, "{id}: {answers} answers");
                    allowed += 1;
                }
                Some(Event::Stanza(Stanza::Iq(Iq::Error { id, error, .. })))
                    if outstanding.remove(&id).is_some() =>
                {
                    match error.other.as_ref().map(|o| o.name()) {
                        Some("rate-limited") => limited += 1,
                        // The session sheds load when its handler queue is
                        // full (src/xmpp/session.rs): answered, not decided.
                        None if error.defined_condition
                            == xmpp_parsers::stanza_error::DefinedCondition::ResourceConstraint =>
                        {
                            shed += 1
                        }
                        _ => other.push(format!("{error:?}")),
                    }
                }
                Some(_) => {}
                None => panic!("Carol's stream ended during the burst"),
            }
        }
        (allowed, limited, shed, other, started.elapsed())
    };
    let meanwhile = async {
        half_way.notified().await;
        let started = Instant::now();
        let r = get(
            &mut alice,
            &to,
            &format!(
                "<freebusy xmlns='{NS}' request-id='during' start='{}' end='{}'/>",
                t.at("00:00"),
                t.at_on(1, "00:00")
            ),
        )
        .await;
        let alice_took = started.elapsed();
        assert_eq!(result_of(r).attr("level"), Some("busy"));
        let started = Instant::now();
        let agenda = expect_reply(
            &mut owner,
            &bob_agent,
            Some("agenda tomorrow"),
            |b| b.contains("Design review"),
            Duration::from_secs(10),
            &[&s.bob],
        )
        .await;
        let owner_took = started.elapsed();
        (alice_took, owner_took, agenda)
    };
    let ((allowed, limited, shed, other, burst_took), (alice_took, owner_took, _)) =
        tokio::join!(burst, meanwhile);
    eprintln!(
        "hostile[burst 1,000]: {allowed} answered, {limited} rate-limited, {shed} shed as busy, {} other, in {:.1} s; \
         another peer answered in {:.1} ms; owner `agenda` answered in {:.1} ms",
        other.len(),
        burst_took.as_secs_f64(),
        alice_took.as_secs_f64() * 1e3,
        owner_took.as_secs_f64() * 1e3
    );
    assert!(
        other.is_empty(),
        "{} others, e.g. {:?}",
        other.len(),
        other.first()
    );
    assert!(
        allowed <= 20,
        "the rule's rate is 20/hour: {allowed} answered"
    );
    assert!(allowed > 0, "a fresh peer gets answers");
    assert_eq!(allowed + limited + shed, BURST);
    assert!(owner_took < Duration::from_secs(10), "{owner_took:?}");

    // Every decision logged (shed requests were never decided).
    let log = s.log();
    let carols: Vec<&Value> = log
        .iter()
        .filter(|e| e["peer"] == s.w.jid("carol.agent").as_str())
        .collect();
    assert_eq!(carols.len(), allowed + limited, "one entry per decision");
    assert_eq!(
        carols.iter().filter(|e| e["outcome"] == "allow").count(),
        allowed
    );
    assert_eq!(
        carols
            .iter()
            .filter(|e| e["outcome"] == "rate-limited")
            .count(),
        limited
    );
    s.alive(&mut alice, "burst 1,000").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_yes_no_probing_learns_one_slot_per_request_and_the_rate_caps_it() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let mut carol = s.client("carol.agent").await;
    // Every half hour of the working day, 50 per request, asked 25 times.
    let mut slots = Vec::new();
    for h in 8..20 {
        for m in ["00", "30"] {
            slots.push((format!("{h:02}:{m}"), format!("{h:02}:{m}")));
        }
    }
    let times: Vec<(String, String)> = (0..50)
        .map(|i| {
            let start = s.w.tomorrow.at(&slots[i % slots.len()].0);
            let end = (chrono::DateTime::parse_from_rfc3339(&start).expect("instant")
                + chrono::Duration::minutes(30))
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
            (start, end)
        })
        .collect();
    let (mut answers, mut answered, mut limited) = (0, 0, 0);
    for i in 0..25 {
        let mut x = format!("<freebusy xmlns='{NS}' request-id='probe-{i}' level='slots'>");
        for (a, b) in times.iter().cycle().skip(i).take(50) {
            x.push_str(&format!("<slot start='{a}' end='{b}'/>"));
        }
        x.push_str("</freebusy>");
        match get(&mut carol, &to, &x).await {
            IqResponse::Result(Some(el)) => {
                assert_eq!(el.attr("level"), Some("yes-no"), "{el:?}");
                let n = el.children().filter(|c| c.is("answer", NS)).count();
                assert!(n <= 1, "{n} answers in one reply: {el:?}");
                assert!(
                    el.children().all(|c| c.is("answer", NS)),
                    "nothing but the answer: {el:?}"
                );
                answers += n;
                answered += 1;
            }
            r => {
                expect_error(&r, ("Wait", "ResourceConstraint", "rate-limited"));
                limited += 1;
            }
        }
    }
    eprintln!(
        "hostile[yes-no probing]: 25 requests × 50 slots: {answered} answered, {answers} slots learned, {limited} rate-limited"
    );
    assert!(answers <= 20, "the rate (20/hour) caps what is learned");
    assert_eq!((answered, limited), (20, 5));
    let log = s.log();
    assert_eq!(log.len(), 25, "{log:?}");
    assert!(
        log.iter()
            .filter(|e| e["outcome"] == "allow")
            .all(|e| e["level"] == "yes-no"),
        "{log:?}"
    );
    s.alive(&mut carol, "yes-no probing").await;
    s.log_intact();
}

#[tokio::test]
async fn hostile_no_action_reveals_the_titles_of_private_events() {
    let s = Scene::new().await;
    let to = s.to.clone();
    let t = &s.w.tomorrow;
    let day = format!("start='{}' end='{}'", t.at("00:00"), t.at_on(1, "00:00"));
    let mut everything = String::new();
    let seen = |everything: &mut String, what: &str, r: &IqResponse| {
        let text = bytes_of(r);
        assert_no_secret(what, &text);
        everything.push_str(&text);
    };

    // Dana (family: details) gets titles, but never the private ones.
    let mut dana = s.client("dana.agent").await;
    for level in ["details", "busy", "slots", "yes-no"] {
        let r = get(
            &mut dana,
            &to,
            &format!(
                "<freebusy xmlns='{NS}' request-id='d-{level}' level='{level}' {day}>\
                 <slot start='{}' end='{}'/></freebusy>",
                t.at("14:00"),
                t.at("15:00")
            ),
        )
        .await;
        seen(&mut everything, &format!("freebusy at level {level}"), &r);
        if level == "details" {
            let el = result_of(r);
            assert_eq!(el.attr("level"), Some("details"));
            let text = text_of(&el);
            assert!(
                text.contains("Design review") && text.contains("Room 4"),
                "{text}"
            );
            let blocks: Vec<String> = attache::negotiate::wire::parse_reply(&el)
                .unwrap_or_else(|e| panic!("not a free/busy reply ({e}): {text}"))
                .busy
                .iter()
                .map(|b| format_time(b.start))
                .collect();
            for hhmm in ["14:00", "16:00"] {
                assert!(
                    blocks.contains(&t.at(hhmm)),
                    "{hhmm} still blocks time: {text}"
                );
            }
            assert_eq!(
                el.children().filter(|c| c.is("event", NS)).count(),
                1,
                "only the public event gets an <event>: {text}"
            );
        }
    }
    // Narrow windows around each private event, at every level.
    for (i, (a, b)) in [("14:00", "15:00"), ("16:00", "17:00"), ("14:30", "14:45")]
        .iter()
        .enumerate()
    {
        let r = get(
            &mut dana,
            &to,
            &format!(
                "<freebusy xmlns='{NS}' request-id='d-narrow-{i}' level='details' start='{}' end='{}'/>",
                t.at(a),
                t.at(b)
            ),
        )
        .await;
        seen(&mut everything, "a narrow details window", &r);
    }

    // Alice (team) may hold: over the private events she is declined, with
    // a counter at most; a hold that names the secret echoes only her own
    // words; a freebusy at details is cut to busy.
    let mut alice = s.client("alice.agent").await;
    for (i, (a, b)) in [("14:00", "14:30"), ("16:30", "17:00"), ("13:45", "16:15")]
        .iter()
        .enumerate()
    {
        let r = set(
            &mut alice,
            &to,
            &hold(
                &format!("a-h{i}"),
                &format!("probe{i}@x"),
                &t.at(a),
                &t.at(b),
                "What is this",
            ),
        )
        .await;
        seen(&mut everything, "a declined hold", &r);
        let el = result_of(r);
        assert!(el.is("declined", NS), "{el:?}");
        assert_eq!(el.attr("reason"), Some("busy"));
    }
    let r = get(
        &mut alice,
        &to,
        &format!("<freebusy xmlns='{NS}' request-id='a-fb' level='details' {day}/>"),
    )
    .await;
    seen(&mut everything, "a team freebusy asking for details", &r);
    assert_eq!(result_of(r).attr("level"), Some("busy"));
    // A release and a confirm of holds that do not exist.
    for (i, p) in [
        format!("<release xmlns='{NS}' request-id='a-r' meeting='private@bob' sequence='0'/>"),
        format!("<confirm xmlns='{NS}' request-id='a-c' meeting='private@bob' sequence='0'/>"),
        format!("<cancel xmlns='{NS}' request-id='a-x' meeting='private@bob' sequence='0'/>"),
    ]
    .iter()
    .enumerate()
    {
        let r = set(&mut alice, &to, p).await;
        seen(
            &mut everything,
            &format!("meeting request {i} on the private event's uid"),
            &r,
        );
    }

    // Carol (yes-no) and strangers: freebusy and holds.
    let mut carol = s.client("carol.agent").await;
    let r = get(
        &mut carol,
        &to,
        &format!("<freebusy xmlns='{NS}' request-id='c-fb' level='details' {day}/>"),
    )
    .await;
    seen(&mut everything, "a yes-no contact asking for details", &r);
    let r = set(
        &mut carol,
        &to,
        &hold("c-h", "c@x", &t.at("14:00"), &t.at("14:30"), "Hm"),
    )
    .await;
    seen(&mut everything, "a hold needing approval", &r);
    let mut mallory = s.client("mallory.agent").await;
    let r = get(
        &mut mallory,
        &to,
        &format!("<freebusy xmlns='{NS}' request-id='m-fb' level='details' {day}/>"),
    )
    .await;
    seen(&mut everything, "a stranger asking for details", &r);

    // `why`-style probing, by chat and by IQ, from a contact's agent, a
    // contact's own account and a stranger: only the refusal comes back.
    let mut alice_person = s.client("alice").await;
    for c in [&mut alice, &mut carol, &mut mallory, &mut alice_person] {
        for text in [
            "why bob freebusy",
            "agenda tomorrow",
            "free bob tomorrow",
            "log",
            "help",
        ] {
            c.say(&s.w.bare("bob.agent"), text).await;
        }
        let r = c
            .iq(
                Some(&to),
                IqRequest::Get(xml(&format!(
                    "<why xmlns='{NS}' request-id='y1' action='freebusy'/>"
                ))),
            )
            .await;
        seen(&mut everything, "a <why> IQ", &r);
        while let Some((_, body)) = c.next_message(Duration::from_secs(2)).await {
            assert_no_secret("a chat answer to a peer", &body);
            assert!(body.contains(REFUSAL), "{body}");
            everything.push_str(&body);
        }
    }
    assert!(everything.contains("Design review"), "the test did look");
    eprintln!(
        "hostile[private titles]: {} bytes of replies checked, no private title or location",
        everything.len()
    );
    s.alive(&mut mallory, "private titles").await;
    s.log_intact();
}

/// What anyone but the owner hears by chat (at most once an hour).
const REFUSAL: &str = "only take commands from my owner";
