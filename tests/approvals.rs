//! Approvals on a real network (docs/protocol.md §5.3, §14): Bob's policy
//! says free/busy questions from Alice and Carol wait for him. Bob approves
//! one of Alice's (she gets the answer), denies another (she hears no), and
//! lets Carol's run out (both owners are told).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use xmpp_parsers::jid::Jid;

use crate::common::prosody::Prosody;
use crate::xmpp_agent::{Agent, TestClient};

fn attache(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_PASSWORD")
        .env_remove("ATTACHE_NOW")
        .output()
        .expect("run attache");
    assert!(
        out.status.success(),
        "attache {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

struct World {
    server: Prosody,
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let server = Prosody::start();
        let d = server.domain().to_string();
        let tmp = tempfile::tempdir().expect("tmp");
        for who in ["alice", "bob", "carol"] {
            server.register(who, &format!("{who}-pw"));
            server.register(&format!("{who}.agent"), &format!("{who}.agent-pw"));
            let dir = tmp.path().join(who);
            attache(
                &dir,
                &[
                    "init",
                    "--timezone",
                    "Europe/Berlin",
                    "--jid",
                    &format!("{who}.agent@{d}"),
                    "--owner",
                    &format!("{who}@{d}"),
                    "--server",
                    &server.server(),
                ],
            );
        }
        let bob = tmp.path().join("bob");
        let mut config = std::fs::read_to_string(bob.join("config.toml")).expect("config");
        config.push_str("\n[calendar.working_hours]\n");
        for wd in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            config.push_str(&format!("{wd} = \"08:00-20:00\"\n"));
        }
        std::fs::write(bob.join("config.toml"), config).expect("config");
        let policy = bob.join("policies").join("default.toml");
        let mut rules = std::fs::read_to_string(&policy).expect("default policy");
        rules.push_str(ASK_RULES);
        std::fs::write(&policy, rules).expect("policy");

        // Bob has one meeting tomorrow 10:00–11:00.
        let day =
            (Utc::now().with_timezone(&chrono_tz::Europe::Berlin) + Days::days(1)).date_naive();
        let ymd = day.format("%Y%m%d").to_string();
        let ics = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n\
             BEGIN:VEVENT\r\nUID:review@bob\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:{ymd}T100000\r\n\
             DTEND;TZID=Europe/Berlin:{ymd}T110000\r\nSUMMARY:Design review\r\nEND:VEVENT\r\n\
             END:VCALENDAR\r\n"
        );
        let file = tmp.path().join("bob.ics");
        std::fs::write(&file, ics).expect("ics");
        attache(&bob, &["import", file.to_str().expect("path")]);

        let w = World { server, tmp };
        w.knows("alice", "bob");
        w.knows("carol", "bob");
        w.knows("bob", "alice");
        w.knows("bob", "carol");
        w
    }

    fn dir(&self, who: &str) -> PathBuf {
        self.tmp.path().join(who)
    }

    fn knows(&self, who: &str, other: &str) {
        let d = self.server.domain();
        let mut name = other.to_string();
        name[..1].make_ascii_uppercase();
        attache(
            &self.dir(who),
            &[
                "contacts",
                "add",
                &format!("{other}@{d}"),
                "--name",
                &name,
                "--agent",
                &format!("{other}.agent@{d}"),
            ],
        );
    }

    fn spawn(&self, who: &str) -> Agent {
        let dir = self.dir(who);
        let log = dir.join("agent.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("run")
            .env("ATTACHE_PASSWORD", format!("{who}.agent-pw"))
            .env("RUST_LOG", "attache=debug,info")
            .env_remove("ATTACHE_DATA_DIR")
            .env_remove("ATTACHE_NOW")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn attache run");
        Agent {
            child: Some(child),
            log,
        }
    }

    fn full(&self, user: &str) -> Jid {
        Jid::new(&format!("{user}@{}/attache", self.server.domain())).expect("jid")
    }

    fn bare(&self, user: &str) -> Jid {
        Jid::new(&format!("{user}@{}", self.server.domain())).expect("jid")
    }

    /// `who`'s owner logged in and talking to a running agent.
    async fn owner(&self, who: &str, agent: &Agent) -> TestClient {
        let mut c = TestClient::login(
            &self.server,
            &self.bare(who).to_string(),
            &format!("{who}-pw"),
        )
        .await;
        c.wait_for_agent(&self.full(&format!("{who}.agent")), agent)
            .await;
        c
    }
}

/// Sends `text` (if any) to `agent` and returns the first message `wanted`
/// accepts within `within`; panics with everything seen and the agents' logs.
async fn expect(
    owner: &mut TestClient,
    agent: &Jid,
    text: Option<&str>,
    wanted: impl Fn(&str) -> bool,
    within: Duration,
    logs: &[&Agent],
) -> String {
    if let Some(text) = text {
        owner.say(agent, text).await;
    }
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some((_, body)) = owner.next_message(Duration::from_secs(1)).await {
            if wanted(&body) {
                return body;
            }
            seen.push(body);
        }
    }
    let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
    panic!(
        "no wanted message after {text:?}; got {seen:?}\nagent logs:\n{}",
        logs.join("\n-----\n")
    )
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
    let w = World::new();
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

/// Tomorrow at `hhmm` Berlin time, as the protocol writes instants.
fn tomorrow_at(hhmm: &str) -> String {
    let tz = chrono_tz::Europe::Berlin;
    let day = (Utc::now().with_timezone(&tz) + Days::days(1)).date_naive();
    let time = chrono::NaiveTime::parse_from_str(hhmm, "%H:%M").expect("time");
    day.and_time(time)
        .and_local_timezone(tz)
        .single()
        .expect("an unambiguous local time")
        .with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn hold_xml(id: &str, meeting: &str, from: &str, to: &str) -> xmpp_parsers::minidom::Element {
    let expires = (Utc::now() + Days::minutes(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    format!(
        "<hold xmlns='{NS}' request-id='{id}' meeting='{meeting}' sequence='0' \
         start='{}' end='{}' expires='{expires}'><summary>Sync</summary></hold>",
        tomorrow_at(from),
        tomorrow_at(to)
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

#[tokio::test]
async fn an_approved_hold_is_placed_and_a_denied_one_refused() {
    let w = World::new();
    let bob = w.spawn("bob");
    let mut bob_owner = w.owner("bob", &bob).await;
    let d = w.server.domain().to_string();
    let mut organizer =
        TestClient::login(&w.server, &format!("alice.agent@{d}"), "alice.agent-pw").await;
    // Let Bob's agent see this "agent" online: approve its subscription.
    organizer
        .send(
            xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Subscribed)
                .with_to(w.bare("bob.agent"))
                .into(),
        )
        .await;
    let to = organizer.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let bob_agent = w.bare("bob.agent");
    let logs = [&bob];
    let patience = Duration::from_secs(30);

    // Approved: the hold is placed after Bob says yes and the organizer hears <held>.
    let answer = organizer
        .iq(
            Some(&to),
            tokio_xmpp::IqRequest::Set(hold_xml("h1", "m1@test", "14:00", "14:30")),
        )
        .await;
    match answer {
        tokio_xmpp::IqResponse::Result(Some(el)) => assert!(el.is("pending", NS), "{el:?}"),
        other => panic!("expected <pending>, got {other:?}\n{}", bob.log()),
    }
    let asked = expect(
        &mut bob_owner,
        &bob_agent,
        None,
        |b| b.contains("approve "),
        patience,
        &logs,
    )
    .await;
    assert!(asked.starts_with("Alice's agent proposes Sync"), "{asked}");
    let n = pending_number(&asked);
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
    let answer = organizer
        .iq(
            Some(&to),
            tokio_xmpp::IqRequest::Set(hold_xml("h2", "m2@test", "16:00", "16:30")),
        )
        .await;
    assert!(
        matches!(&answer, tokio_xmpp::IqResponse::Result(Some(el)) if el.is("pending", NS)),
        "{answer:?}"
    );
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
