//! The log never holds what owners keep to themselves (issue 7): at the
//! default log level, no agent's log and no CLI's stderr contains a title,
//! location or description of an event, a task's title or note, a meeting's
//! title, or a password — whatever path the data took.
//!
//! Alice and Bob run their agents exactly as a user would (no `RUST_LOG`,
//! no `ATTACHE_LOG__LEVEL`: the configured default, `info`). Their
//! calendars hold public, private and confidential events with made-up
//! words no code or protocol would print by itself. The run sends those
//! words down every path that touches them: free/busy at every level up to
//! `details` between the agents and from a raw peer, a meeting negotiated,
//! booked, moved and cancelled, a peer's meeting proposal approved by the
//! owner, a task handed off, accepted and completed, the owners' `agenda`,
//! `free`, `meetings`, `tasks`, `log`, `why`, `pending` and an unknown
//! command, an .ics import and other commands through the CLI while the
//! agents run, and hostile and malformed requests carrying those words.
//! The chat replies must show the words (so the paths really ran); the logs
//! must not.
//!
//! ```sh
//! cargo test --test integration log_secrecy -- --nocapture
//! ```

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;

use crate::common::world::{World, calendar, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

const NS: &str = attache::negotiate::NS;

/// How long any one answer may take.
const WAIT: Duration = Duration::from_secs(40);

/// Bob's events tomorrow (Berlin): public 10–11, private 14–15,
/// confidential 16–17.
const BOB_PUBLIC: [&str; 3] = ["Secret-Title-7f3a", "Secret-Place-91c2", "Secret-Note-4d0e"];
const BOB_PRIVATE: [&str; 3] = [
    "Private-Title-b81e",
    "Private-Place-3a9f",
    "Private-Note-c57d",
];
const BOB_CONFIDENTIAL: [&str; 2] = ["Confidential-Title-6a2f", "Confidential-Place-e3b0"];
/// Alice's events tomorrow: public 11–12, private 15–16.
const ALICE_PUBLIC: [&str; 3] = ["Alice-Title-2c6d", "Alice-Place-5e0b", "Alice-Note-8d3c"];
const ALICE_PRIVATE: [&str; 2] = ["Alice-Private-0f7e", "Alice-Hideout-71d4"];
/// Imported through the CLI into Bob's calendar while the agents run: 12–13.
const IMPORTED: [&str; 3] = [
    "Imported-Title-0b3e",
    "Imported-Place-4c1a",
    "Imported-Note-9b7f",
];
const MEETING: &str = "Secret-Meeting-5b7c";
const TASK: &str = "Secret-Task-e29b";
const TASK_NOTE: &str = "Secret-Handoff-Note-8f1a";
/// The title of the meeting a peer (Carol's agent, a raw client) proposes.
const PEER_MEETING: &str = "Peer-Hold-Title-71aa";
/// Words inside hostile and malformed requests.
const HOSTILE: [&str; 2] = ["Hostile-Title-3d5c", "Hostile-Note-a40c"];

/// Every word that must stay out of the logs.
fn secrets() -> Vec<&'static str> {
    [
        &BOB_PUBLIC[..],
        &BOB_PRIVATE,
        &BOB_CONFIDENTIAL,
        &ALICE_PUBLIC,
        &ALICE_PRIVATE,
        &IMPORTED,
        &[MEETING, TASK, TASK_NOTE, PEER_MEETING],
        &HOSTILE,
    ]
    .concat()
}

/// The passwords of everyone on the server.
const PASSWORDS: [&str; 6] = [
    "alice-pw",
    "alice.agent-pw",
    "bob-pw",
    "bob.agent-pw",
    "carol.agent-pw",
    "eve-pw",
];

/// `title, location, description` and more as iCalendar lines.
fn props(class: Option<&str>, words: &[&str]) -> Vec<String> {
    let names = ["SUMMARY", "LOCATION", "DESCRIPTION"];
    class
        .map(|c| format!("CLASS:{c}"))
        .into_iter()
        .chain(words.iter().zip(names).map(|(w, n)| format!("{n}:{w}")))
        .collect()
}

fn event(w: &World, uid: &str, from: &str, to: &str, props: &[String]) -> String {
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    w.tomorrow.event(uid, from, to, &props)
}

/// Alice and Bob may see each other's details, book meetings with each other
/// and hand each other tasks; Bob shows Carol's agent details too (it asks
/// for less, level by level) and asks before taking her proposals.
fn policy(w: &World, who: &str, other: &str, extra: &str) {
    let rules = format!(
        "[[rule]]\nname = \"peer-sees-details\"\nwho = \"contact:{other}\"\n\
         action = \"freebusy\"\ndecision = \"allow\"\nlevel = \"details\"\nwindow = \"14d\"\n\
         [[rule]]\nname = \"peer-books\"\nwho = \"contact:{other}\"\n\
         action = \"propose-meeting\"\ndecision = \"allow\"\n\
         [[rule]]\nname = \"peer-hands-tasks\"\nwho = \"contact:{other}\"\n\
         action = \"offer-task\"\ndecision = \"allow\"\n{extra}"
    );
    std::fs::write(w.dir(who).join("policies/default.toml"), rules).expect("policy");
}

/// Runs the CLI as a user would (no `RUST_LOG`), asserts success and
/// returns (stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ATTACHE_LOG__LEVEL")
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_PASSWORD")
        .env_remove("ATTACHE_NOW")
        .stdin(Stdio::null())
        .output()
        .expect("run attache");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "attache {args:?}: {stderr}");
    (stdout, stderr)
}

/// Says `text` as `who`'s owner (or just listens) and returns the first
/// answer `wanted` accepts.
async fn say(
    w: &World,
    owner: &mut TestClient,
    who: &str,
    text: Option<&str>,
    wanted: impl Fn(&str) -> bool,
    logs: &[&Agent],
) -> String {
    let agent = w.bare(&format!("{who}.agent"));
    expect_reply(owner, &agent, text, wanted, WAIT, logs).await
}

/// Says `text` as `who`'s owner once a second until an answer shows
/// `word`: the running agent sees what the CLI wrote within a second or so,
/// not at once.
async fn until_shown(
    w: &World,
    owner: &mut TestClient,
    who: &str,
    text: &str,
    word: &str,
    logs: &[&Agent],
) {
    let agent = w.bare(&format!("{who}.agent"));
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < WAIT {
        owner.say(&agent, text).await;
        while let Some((_, body)) = owner.next_message(Duration::from_secs(1)).await {
            if body.contains(word) {
                return;
            }
            seen.push(body);
        }
    }
    let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
    panic!(
        "{who}'s agent never showed {word:?} for {text:?}; got {seen:?}\n{}",
        logs.join("\n-----\n")
    )
}

/// The number after `word` in `text` ("… (meeting 3)", "approve 2").
fn number_after(text: &str, word: &str) -> String {
    text.split(word)
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| panic!("no number after {word:?} in {text:?}"))
}

fn xml(text: &str) -> Element {
    text.parse()
        .unwrap_or_else(|e| panic!("test XML does not parse ({e}): {text}"))
}

/// Sends `payload` to `to` and returns the answer as text, result or error.
async fn raw(c: &mut TestClient, to: &Jid, set: bool, payload: &str) -> String {
    let request = if set {
        IqRequest::Set(xml(payload))
    } else {
        IqRequest::Get(xml(payload))
    };
    match c.iq(Some(to), request).await {
        IqResponse::Result(Some(el)) => String::from(&el),
        IqResponse::Result(None) => String::new(),
        IqResponse::Error(e) => format!("{e:?}"),
    }
}

#[tokio::test]
async fn log_secrecy_no_title_place_note_or_password_reaches_the_default_log() {
    let w = World::start();
    for who in ["alice", "bob"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.register("carol.agent");
    w.register("eve");
    let bob_events = event(
        &w,
        "public@bob",
        "10:00",
        "11:00",
        &props(None, &BOB_PUBLIC),
    ) + &event(
        &w,
        "private@bob",
        "14:00",
        "15:00",
        &props(Some("PRIVATE"), &BOB_PRIVATE),
    ) + &event(
        &w,
        "confidential@bob",
        "16:00",
        "17:00",
        &props(Some("CONFIDENTIAL"), &BOB_CONFIDENTIAL),
    );
    w.import_ics("bob", &calendar(&bob_events));
    let alice_events = event(
        &w,
        "public@alice",
        "11:00",
        "12:00",
        &props(None, &ALICE_PUBLIC),
    ) + &event(
        &w,
        "private@alice",
        "15:00",
        "16:00",
        &props(Some("PRIVATE"), &ALICE_PRIVATE),
    );
    w.import_ics("alice", &calendar(&alice_events));
    w.add_contact("alice", "bob", &[]);
    w.add_contact("bob", "alice", &[]);
    w.add_contact("bob", "carol", &[]);
    policy(&w, "alice", "Bob", "");
    let carol_rules = "[[rule]]\nname = \"carol-sees-details\"\nwho = \"contact:Carol\"\n\
         action = \"freebusy\"\ndecision = \"allow\"\nlevel = \"details\"\nwindow = \"14d\"\n\
         [[rule]]\nname = \"carol-proposals-wait\"\nwho = \"contact:Carol\"\n\
         action = \"propose-meeting\"\ndecision = \"ask\"\nexpires = \"4h\"\n";
    policy(&w, "bob", "Alice", carol_rules);

    let bob = w.spawn_as_a_user_would("bob");
    let alice = w.spawn_as_a_user_would("alice");
    let logs = [&alice, &bob];
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut bob_owner = w.owner("bob", &bob).await;
    alice_owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let mut cli_stderr = Vec::new();

    // Free/busy between the agents, at `details` and about one slot.
    let details = |b: &str| b.contains("level");
    let seen = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("free bob tomorrow"),
        details,
        &logs,
    )
    .await;
    assert!(seen.contains(BOB_PUBLIC[0]), "details reach Alice: {seen}");
    assert!(!seen.contains(BOB_PRIVATE[0]), "{seen}");
    let slot = |b: &str| b.contains("Bob is") || b.contains("level");
    let text = "free bob tomorrow 10:00 for 1h";
    say(&w, &mut alice_owner, "alice", Some(text), slot, &logs).await;
    let seen = say(
        &w,
        &mut bob_owner,
        "bob",
        Some("free alice tomorrow"),
        details,
        &logs,
    )
    .await;
    assert!(seen.contains(ALICE_PUBLIC[0]), "details reach Bob: {seen}");

    // A peer's agent asks at every level; a stranger is refused.
    let bob_agent = w.full("bob.agent");
    let mut carol = TestClient::login(&w.server, &w.jid("carol.agent"), "carol.agent-pw").await;
    carol.wait_for_agent(&bob_agent, &bob).await;
    let (from, to) = (w.tomorrow.at("08:00"), w.tomorrow.at("20:00"));
    let window = format!("start='{from}' end='{to}'");
    let (ten, eleven) = (w.tomorrow.at("10:00"), w.tomorrow.at("11:00"));
    let mut answers = Vec::new();
    for (n, level) in ["yes-no", "slots", "busy", "details"].iter().enumerate() {
        let payload = format!(
            "<freebusy xmlns='{NS}' request-id='lvl{n}' {window} duration='PT1H' level='{level}'>\
             <slot start='{ten}' end='{eleven}'/></freebusy>"
        );
        answers.push(raw(&mut carol, &bob_agent, false, &payload).await);
    }
    for (answer, level) in answers.iter().zip(["yes-no", "slots", "busy", "details"]) {
        assert!(answer.contains(&format!("level='{level}'")), "{answer}");
    }
    assert!(answers[3].contains(BOB_PUBLIC[0]), "{answers:?}");
    let mut eve = TestClient::login(&w.server, &w.jid("eve"), "eve-pw").await;
    eve.wait_for_agent(&bob_agent, &bob).await;
    let refused = raw(
        &mut eve,
        &bob_agent,
        false,
        &format!("<freebusy xmlns='{NS}' request-id='eve1' level='details'/>"),
    )
    .await;
    assert!(refused.contains("Forbidden"), "{refused}");

    // Hostile and malformed requests carrying words of their own.
    let (h0, h1) = (HOSTILE[0], HOSTILE[1]);
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let hostile = [
        (
            false,
            format!("<freebusy xmlns='{NS}' request-id='{h0}' start='{h1}' end='{h0}'/>"),
        ),
        (
            false,
            format!("<freebusy xmlns='{NS}' request-id='h2' level='{h0}'/>"),
        ),
        (
            false,
            format!("<calendar-dump xmlns='{NS}' what='{h0}'>{h1}</calendar-dump>"),
        ),
        (
            true,
            format!(
                "<hold xmlns='{NS}' request-id='h3' meeting='{h0}@x' sequence='0' start='{eleven}' \
             end='{ten}' expires='{expires}'><summary>{h0}</summary></hold>"
            ),
        ),
        (
            true,
            format!(
                "<hold xmlns='{NS}' request-id='h4' meeting='m@x' sequence='x' start='{h1}' \
             end='{ten}' expires='{expires}'><summary>{}</summary></hold>",
                "S".repeat(300)
            ),
        ),
        (
            true,
            format!(
                "<task-offer xmlns='{NS}' request-id='h5'><summary>{h1}</summary></task-offer>"
            ),
        ),
    ];
    for (set, payload) in &hostile {
        let answer = raw(&mut carol, &bob_agent, *set, payload).await;
        assert!(
            answer.contains("BadRequest")
                || answer.contains("NotAcceptable")
                || answer.contains("FeatureNotImplemented")
                || answer.contains("Forbidden"),
            "{payload}: {answer}"
        );
        raw(&mut eve, &bob_agent, *set, payload).await;
    }

    // A peer proposes a meeting; Bob's owner approves it.
    let (six, half) = (w.tomorrow.at("18:00"), w.tomorrow.at("18:30"));
    let proposal = format!(
        "<hold xmlns='{NS}' request-id='p1' meeting='peer@carol' sequence='0' start='{six}' \
         end='{half}' expires='{expires}'><summary>{PEER_MEETING}</summary></hold>"
    );
    raw(&mut carol, &bob_agent, true, &proposal).await;
    let asked = say(
        &w,
        &mut bob_owner,
        "bob",
        None,
        |b| b.contains("approve "),
        &logs,
    )
    .await;
    assert!(asked.contains(PEER_MEETING), "{asked}");
    let n = number_after(&asked, "approve ");
    let approved = |b: &str| b.starts_with("Approved");
    say(
        &w,
        &mut bob_owner,
        "bob",
        Some(&format!("approve {n}")),
        approved,
        &logs,
    )
    .await;

    // A meeting negotiated, booked, moved and cancelled.
    let text = format!("meet bob for 30m tomorrow about {MEETING}");
    let looking = |b: &str| b.starts_with("Looking for a time");
    let started = say(&w, &mut alice_owner, "alice", Some(&text), looking, &logs).await;
    let id = number_after(&started, "(meeting ");
    let ended = |b: &str| b.starts_with("Booked:") || b.starts_with("Could not");
    let booked = say(&w, &mut alice_owner, "alice", None, ended, &logs).await;
    assert!(
        booked.starts_with("Booked:") && booked.contains(MEETING),
        "{booked}"
    );
    let listed = |b: &str| b.contains(MEETING);
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("meetings"),
        listed,
        &logs,
    )
    .await;
    say(&w, &mut bob_owner, "bob", Some("meetings"), listed, &logs).await;
    let moved = |b: &str| b.starts_with("Moved") || b.starts_with("Could not");
    let text = format!("move {id} to tomorrow 12:30");
    let answer = say(&w, &mut alice_owner, "alice", Some(&text), moved, &logs).await;
    assert!(answer.starts_with("Moved"), "{answer}");
    let cancelled = |b: &str| b.starts_with("Cancelled");
    let text = format!("cancel {id}");
    say(&w, &mut alice_owner, "alice", Some(&text), cancelled, &logs).await;
    let told = |b: &str| b.starts_with("Cancelled by") && b.contains(MEETING);
    say(&w, &mut bob_owner, "bob", None, told, &logs).await;

    // A task handed off, accepted and completed.
    let text = format!("task add {TASK} due tomorrow");
    let added = say(
        &w,
        &mut alice_owner,
        "alice",
        Some(&text),
        |b| b.starts_with("Added task"),
        &logs,
    )
    .await;
    let task = number_after(&added, "Added task ");
    let text = format!("handoff {task} to bob note {TASK_NOTE}");
    let accepted = |b: &str| b.contains("accepted task");
    say(&w, &mut alice_owner, "alice", Some(&text), accepted, &logs).await;
    let new = say(
        &w,
        &mut bob_owner,
        "bob",
        None,
        |b| b.contains("New task"),
        &logs,
    )
    .await;
    assert!(new.contains(TASK), "{new}");
    let theirs = number_after(&new, "New task ");
    say(
        &w,
        &mut bob_owner,
        "bob",
        Some("tasks"),
        |b| b.contains(TASK),
        &logs,
    )
    .await;
    let text = format!("done {theirs}");
    say(
        &w,
        &mut bob_owner,
        "bob",
        Some(&text),
        |b| b.starts_with("Done"),
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        None,
        |b| b.contains("completed"),
        &logs,
    )
    .await;

    // The CLI while the agents run: an import, then what reads it.
    let file = w.dir("bob").join("imported.ics");
    let imported = event(
        &w,
        "imported@bob",
        "12:00",
        "13:00",
        &props(None, &IMPORTED),
    );
    std::fs::write(&file, calendar(&imported)).expect("ics");
    let path = file.to_str().expect("path");
    for args in [
        &["import", path][..],
        &["agenda", "tomorrow"],
        &["export"],
        &["busy", "--from", &from, "--to", &to],
        &["tasks", "list", "--all"],
        &["log"],
        &["log", "verify"],
        &["contacts", "list"],
        &["policy", "check"],
    ] {
        let (_, stderr) = cli(&w.dir("bob"), args);
        cli_stderr.push((format!("bob: attache {args:?}"), stderr));
    }
    for args in [
        &["agenda", "tomorrow"][..],
        &["tasks", "list", "--all"],
        &["log"],
    ] {
        let (_, stderr) = cli(&w.dir("alice"), args);
        cli_stderr.push((format!("alice: attache {args:?}"), stderr));
    }

    // The owners' own commands, the import seen by the running agents.
    let text = "agenda tomorrow";
    until_shown(&w, &mut bob_owner, "bob", text, IMPORTED[0], &logs).await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("agenda tomorrow"),
        |b| b.contains(ALICE_PUBLIC[0]),
        &logs,
    )
    .await;
    let text = "free bob tomorrow";
    until_shown(&w, &mut alice_owner, "alice", text, IMPORTED[0], &logs).await;
    for (who, owner) in [("alice", &mut alice_owner), ("bob", &mut bob_owner)] {
        let other = if who == "alice" { "bob" } else { "alice" };
        for text in [
            "log".to_string(),
            format!("log {other}"),
            format!("why {other} freebusy"),
            format!("why {other} meet"),
            "pending".into(),
            "contacts".into(),
            "tasks".into(),
            "help".into(),
            format!("{} please", BOB_PUBLIC[0]),
        ] {
            say(&w, owner, who, Some(&text), |_| true, &logs).await;
        }
    }
    // Commands are taken in order: once this is answered, all were.
    let last = |b: &str| b.contains(IMPORTED[0]);
    say(
        &w,
        &mut bob_owner,
        "bob",
        Some("agenda tomorrow"),
        last,
        &logs,
    )
    .await;
    let last = |b: &str| b.contains(ALICE_PUBLIC[0]);
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("agenda tomorrow"),
        last,
        &logs,
    )
    .await;

    alice_owner.close().await;
    bob_owner.close().await;
    carol.close().await;
    eve.close().await;
    // Stopped politely, so that every line is written.
    let logs_of = [("alice", alice.log.clone()), ("bob", bob.log.clone())];
    for agent in [alice, bob] {
        agent.terminate_gracefully();
    }
    let mut checked = 0;
    for (who, path) in logs_of {
        let log = std::fs::read_to_string(&path).expect("agent log");
        // The log is the default one: written, and without debug lines.
        assert!(
            log.contains("online as"),
            "{who}'s log is not the agent's:\n{log}"
        );
        assert!(
            !log.contains("DEBUG"),
            "{who}'s agent logs at debug level:\n{log}"
        );
        checked += log.len();
        println!(
            "{who}'s log at the default level: {} lines",
            log.lines().count()
        );
        for word in secrets().iter().chain(PASSWORDS.iter()) {
            assert!(
                !log.contains(word),
                "{who}'s log holds {word:?}:\n{}",
                log.lines()
                    .filter(|l| l.contains(word))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    for (what, stderr) in &cli_stderr {
        for word in secrets().iter().chain(PASSWORDS.iter()) {
            assert!(
                !stderr.contains(word),
                "{what} printed {word:?} on stderr:\n{stderr}"
            );
        }
    }
    println!(
        "log secrecy: {} words, {checked} bytes of agent log and {} CLI runs checked",
        secrets().len() + PASSWORDS.len(),
        cli_stderr.len()
    );
}
