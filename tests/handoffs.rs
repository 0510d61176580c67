//! Task handoff between real agents on a real Prosody (docs/protocol.md §13):
//! owners hand tasks over by chat, the assignee's policy (`offer-task`)
//! decides, statuses flow back, delegation goes onward with its chain, and
//! a task can be taken back.

use std::time::{Duration, Instant};

use attache::store::{Store, TaskHandoff, database_path};
use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::minidom::Element;

use crate::common::world::{World, attache, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

const WAIT: Duration = Duration::from_secs(40);

/// `who` takes tasks from any contact (`allow`) or asks first (`ask`).
fn takes_tasks(w: &World, who: &str, decision: &str) {
    let mut rule = format!(
        "[[rule]]\nname = \"contacts-hand-tasks\"\nwho = \"any-contact\"\n\
         action = \"offer-task\"\ndecision = \"{decision}\"\n"
    );
    if decision == "ask" {
        rule.push_str("expires = \"4h\"\n");
    }
    std::fs::write(w.dir(who).join("policies/tasks.toml"), rule).expect("policy");
}

/// A home for each of `people`, everyone in everyone's address book.
fn world(people: &[&str]) -> World {
    let w = World::start();
    for who in people {
        w.home(who);
    }
    for who in people {
        for other in people.iter().filter(|o| *o != who) {
            w.add_contact(who, other, &[]);
        }
    }
    w
}

/// Sends `text` as `who`'s owner and returns the first answer containing `wanted`.
async fn say(
    w: &World,
    owner: &mut TestClient,
    who: &str,
    text: Option<&str>,
    wanted: &str,
    logs: &[&Agent],
) -> String {
    expect_reply(
        owner,
        &w.bare(&format!("{who}.agent")),
        text,
        |b| b.contains(wanted),
        WAIT,
        logs,
    )
    .await
}

/// The task number in "New task 4 from Alice: …".
fn new_task_id(line: &str) -> i64 {
    line.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no task number in {line:?}"))
}

/// Every chat message `owner` gets within `within`.
async fn drain(owner: &mut TestClient, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some((_, body)) = owner.next_message(Duration::from_millis(300)).await {
            seen.push(body);
        }
    }
    seen
}

async fn handoff_of(w: &World, who: &str, id: i64) -> (String, TaskHandoff) {
    let store = Store::open(&database_path(&w.dir(who)))
        .await
        .expect("store");
    let (task, h) = store
        .task_with_handoff(id)
        .await
        .expect("read")
        .expect("the task");
    store.close().await;
    (task.task.status.as_ical().to_string(), h)
}

fn task_json(w: &World, who: &str) -> serde_json::Value {
    let out = attache(&w.dir(who), &["tasks", "list", "--all", "--json"]);
    serde_json::from_str(&out).expect("json")
}

#[tokio::test]
async fn a_task_handed_over_and_completed_comes_back_done_with_one_message() {
    let w = world(&["alice", "dana"]);
    takes_tasks(&w, "dana", "allow");
    let (alice, dana) = (w.spawn("alice"), w.spawn("dana"));
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut dana_owner = w.owner("dana", &dana).await;
    let logs = [&alice, &dana];

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add send slides"),
        "Added task 1",
        &logs,
    )
    .await;
    let started = Instant::now();
    let accepted = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana note the March version"),
        "accepted task 1",
        &logs,
    )
    .await;
    let accept_time = started.elapsed();
    assert_eq!(accepted, "Dana's agent accepted task 1: send slides.");
    let new = say(&w, &mut dana_owner, "dana", None, "New task", &logs).await;
    assert!(new.ends_with("from Alice: send slides"), "{new}");
    let n = new_task_id(&new);
    let (_, h) = handoff_of(&w, "dana", n).await;
    assert_eq!(
        h.origin_agent.as_deref(),
        Some(w.jid("alice.agent").as_str())
    );
    let tasks = task_json(&w, "dana");
    assert_eq!(tasks[0]["description"], "the March version", "{tasks}");
    // The accepted task reaches Dana's own task app as an iTIP REQUEST.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let itip = attache(&w.dir("dana"), &["export", "--since", &yesterday]);
    assert!(
        itip.contains("METHOD:REQUEST\r\n") && itip.contains("BEGIN:VTODO"),
        "{itip}"
    );
    assert!(itip.contains("SUMMARY:send slides"), "{itip}");

    // Progress flows back silently: Alice's task list knows, Alice is not pinged.
    say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("progress {n} 40%")),
        "40% done",
        &logs,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = handoff_of(&w, "alice", 1).await;
        if h.remote_partstat.map(|p| p.as_ical()) == Some("IN-PROCESS")
            && h.remote_percent == Some(40)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress at Alice: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let quiet = drain(&mut alice_owner, Duration::from_secs(1)).await;
    assert!(quiet.is_empty(), "progress is not announced: {quiet:?}");

    let started = Instant::now();
    say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("done {n}")),
        "Done:",
        &logs,
    )
    .await;
    let done = say(&w, &mut alice_owner, "alice", None, "completed", &logs).await;
    let flow_back = started.elapsed();
    assert_eq!(done, "Dana completed: send slides");
    // One message, not one per status or retry.
    let more = drain(&mut alice_owner, Duration::from_secs(3)).await;
    assert!(more.is_empty(), "{more:?}");
    let (status, h) = handoff_of(&w, "alice", 1).await;
    assert_eq!(status, "COMPLETED");
    assert_eq!(
        h.assignee_agent.as_deref(),
        Some(w.jid("dana.agent").as_str())
    );
    assert_eq!(h.remote_partstat.map(|p| p.as_ical()), Some("COMPLETED"));
    let listed = attache(&w.dir("alice"), &["tasks", "list"]);
    assert!(!listed.contains("send slides"), "{listed}");
    eprintln!("handoff accepted in {accept_time:?}; completion back in {flow_back:?}");
}

#[tokio::test]
async fn a_declined_offer_stays_with_the_offerer_who_is_told_once() {
    let w = world(&["alice", "dana", "erin"]);
    takes_tasks(&w, "dana", "ask");
    // Erin has no offer-task rule: the default denies.
    let (alice, dana, erin) = (w.spawn("alice"), w.spawn("dana"), w.spawn("erin"));
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut dana_owner = w.owner("dana", &dana).await;
    let logs = [&alice, &dana, &erin];

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add book the room"),
        "Added task 1",
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add order pizza"),
        "Added task 2",
        &logs,
    )
    .await;

    // Dana is asked and says no.
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana"),
        "is asked about task 1",
        &logs,
    )
    .await;
    let question = say(&w, &mut dana_owner, "dana", None, "approve", &logs).await;
    assert!(
        question.contains("offers you a task: book the room"),
        "{question}"
    );
    let k: String = question
        .rsplit(' ')
        .next()
        .map(str::to_string)
        .expect("a number");
    say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("deny {k}")),
        "Denied",
        &logs,
    )
    .await;
    let declined = say(&w, &mut alice_owner, "alice", None, "declined", &logs).await;
    assert_eq!(
        declined,
        "Dana's agent declined task 1 (book the room); it stays with you."
    );
    let listed = attache(&w.dir("alice"), &["tasks", "list"]);
    assert!(listed.contains("book the room"), "{listed}");
    assert!(!listed.contains("handed to"), "{listed}");
    let dana_tasks = attache(&w.dir("dana"), &["tasks", "list", "--all"]);
    assert!(!dana_tasks.contains("book the room"), "{dana_tasks}");

    // Erin's policy says no without asking her.
    let declined = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 2 to erin"),
        "declined",
        &logs,
    )
    .await;
    assert_eq!(
        declined,
        "Erin's agent declined task 2 (order pizza); it stays with you."
    );
    let more = drain(&mut alice_owner, Duration::from_secs(2)).await;
    assert!(more.is_empty(), "{more:?}");
    let (_, h) = handoff_of(&w, "alice", 2).await;
    assert_eq!(h.remote_partstat.map(|p| p.as_ical()), Some("DECLINED"));
    let log = attache(&w.dir("erin"), &["log"]);
    assert!(log.contains("offer-task: deny"), "{log}");
}

#[tokio::test]
async fn an_offer_the_owner_approves_is_accepted_and_one_left_to_expire_is_declined() {
    let w = world(&["alice", "dana"]);
    std::fs::write(
        w.dir("dana").join("policies/tasks.toml"),
        "[[rule]]\nname = \"contacts-hand-tasks\"\nwho = \"any-contact\"\n\
         action = \"offer-task\"\ndecision = \"ask\"\nexpires = \"4s\"\n",
    )
    .expect("policy");
    let (alice, dana) = (w.spawn("alice"), w.spawn("dana"));
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut dana_owner = w.owner("dana", &dana).await;
    let logs = [&alice, &dana];

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add fix the bike"),
        "Added task 1",
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add call mum"),
        "Added task 2",
        &logs,
    )
    .await;

    // Approved: the task lands on Dana's list and Alice hears "accepted".
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana"),
        "is asked about task 1",
        &logs,
    )
    .await;
    let question = say(&w, &mut dana_owner, "dana", None, "approve", &logs).await;
    let k = question.rsplit(' ').next().expect("a number").to_string();
    let approved = say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("approve {k}")),
        "Approved",
        &logs,
    )
    .await;
    assert!(approved.contains("on your task list"), "{approved}");
    let accepted = say(&w, &mut alice_owner, "alice", None, "accepted", &logs).await;
    assert_eq!(accepted, "Dana's agent accepted task 1: fix the bike.");
    let dana_tasks = attache(&w.dir("dana"), &["tasks", "list"]);
    assert!(dana_tasks.contains("fix the bike"), "{dana_tasks}");
    let (_, h) = handoff_of(&w, "alice", 1).await;
    assert_eq!(h.remote_partstat.map(|p| p.as_ical()), Some("ACCEPTED"));

    // Countered: Dana would take it with another due date (iTIP COUNTER);
    // it stays with Alice, who hears the date once.
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add water the plants"),
        "Added task 3",
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 3 to dana"),
        "is asked about task 3",
        &logs,
    )
    .await;
    let question = say(&w, &mut dana_owner, "dana", None, "approve", &logs).await;
    let k = question.rsplit(' ').next().expect("a number").to_string();
    let countered = say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("approve {k} due 2030-01-18 17:00")),
        "Countered",
        &logs,
    )
    .await;
    assert!(countered.contains("Fri 18 Jan 17:00"), "{countered}");
    let heard = say(
        &w,
        &mut alice_owner,
        "alice",
        None,
        "would take task 3",
        &logs,
    )
    .await;
    assert!(
        heard.contains("water the plants") && heard.contains("Fri 18 Jan 17:00"),
        "{heard}"
    );
    let dana_tasks = attache(&w.dir("dana"), &["tasks", "list", "--all"]);
    assert!(!dana_tasks.contains("water the plants"), "{dana_tasks}");

    // Nobody answers: after the expiry Alice hears "no answer".
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 2 to dana"),
        "is asked about task 2",
        &logs,
    )
    .await;
    say(&w, &mut dana_owner, "dana", None, "call mum", &logs).await;
    let late = say(&w, &mut alice_owner, "alice", None, "No answer", &logs).await;
    assert_eq!(
        late,
        "No answer from Dana: task 2 (call mum) stays with you."
    );
    let (_, h) = handoff_of(&w, "alice", 2).await;
    assert_eq!(h.remote_partstat.map(|p| p.as_ical()), Some("DECLINED"));
    let dana_tasks = attache(&w.dir("dana"), &["tasks", "list", "--all"]);
    assert!(!dana_tasks.contains("call mum"), "{dana_tasks}");
}

#[tokio::test]
async fn a_task_delegated_onward_reports_completion_up_the_chain() {
    let w = world(&["alice", "dana", "erin"]);
    takes_tasks(&w, "dana", "allow");
    takes_tasks(&w, "erin", "allow");
    let (alice, dana, erin) = (w.spawn("alice"), w.spawn("dana"), w.spawn("erin"));
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut dana_owner = w.owner("dana", &dana).await;
    let mut erin_owner = w.owner("erin", &erin).await;
    let logs = [&alice, &dana, &erin];

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add print posters"),
        "Added task 1",
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana"),
        "accepted task 1",
        &logs,
    )
    .await;
    let n = new_task_id(&say(&w, &mut dana_owner, "dana", None, "New task", &logs).await);

    // Dana passes it on to Erin; Alice's agent hears DELEGATED.
    say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("handoff {n} to erin")),
        "accepted task",
        &logs,
    )
    .await;
    let m = new_task_id(&say(&w, &mut erin_owner, "erin", None, "New task", &logs).await);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, h) = handoff_of(&w, "alice", 1).await;
        if h.remote_partstat.map(|p| p.as_ical()) == Some("DELEGATED") {
            assert_eq!(
                h.delegatee_agent.as_deref(),
                Some(w.jid("erin.agent").as_str())
            );
            break;
        }
        assert!(Instant::now() < deadline, "no DELEGATED at Alice: {h:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The chain is kept at every hop.
    let (_, h) = handoff_of(&w, "erin", m).await;
    assert_eq!(
        h.origin_agent.as_deref(),
        Some(w.jid("dana.agent").as_str())
    );
    assert_eq!(
        h.origin_chain,
        vec![w.jid("alice.agent"), w.jid("dana.agent")]
    );
    let (_, alice_h) = handoff_of(&w, "alice", 1).await;
    let (_, dana_h) = handoff_of(&w, "dana", n).await;
    let uid = |who: &str, id: i64| -> String {
        let tasks = task_json(&w, who);
        tasks
            .as_array()
            .and_then(|a| a.iter().find(|t| t["id"] == id))
            .map(|t| t["uid"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(dana_h.origin_uid, Some(uid("alice", 1)));
    assert_eq!(h.origin_uid, Some(uid("alice", 1)), "one UID at every hop");
    assert!(alice_h.origin_agent.is_none());

    // Handing it back to Alice would go in a circle.
    let circle = say(
        &w,
        &mut erin_owner,
        "erin",
        Some(&format!("handoff {m} to alice")),
        "circle",
        &logs,
    )
    .await;
    assert!(circle.contains(&format!("Task {m}")), "{circle}");

    // Erin completes: Dana hears it from Erin, Alice from Dana.
    say(
        &w,
        &mut erin_owner,
        "erin",
        Some(&format!("done {m}")),
        "Done:",
        &logs,
    )
    .await;
    let at_dana = say(&w, &mut dana_owner, "dana", None, "completed", &logs).await;
    assert_eq!(at_dana, "Erin completed: print posters");
    let at_alice = say(&w, &mut alice_owner, "alice", None, "completed", &logs).await;
    assert!(at_alice.ends_with("completed: print posters"), "{at_alice}");
    let (status, h) = handoff_of(&w, "alice", 1).await;
    assert_eq!(status, "COMPLETED");
    assert_eq!(h.remote_partstat.map(|p| p.as_ical()), Some("COMPLETED"));
    let (status, _) = handoff_of(&w, "dana", n).await;
    assert_eq!(status, "COMPLETED");
    let more = drain(&mut alice_owner, Duration::from_secs(2)).await;
    assert!(more.is_empty(), "{more:?}");
}

#[tokio::test]
async fn an_offer_whose_chain_names_the_agent_is_refused_as_a_loop() {
    let w = world(&["dana", "alice"]);
    takes_tasks(&w, "dana", "allow");
    let dana = w.spawn("dana");
    let mut alice = TestClient::login(&w.server, &w.jid("alice.agent"), "alice.agent-pw").await;
    let to = w.full("dana.agent");
    alice.wait_for_agent(&to, &dana).await;
    let ns = attache::negotiate::NS;
    let offer: Element = format!(
        "<task-offer xmlns='{ns}' request-id='loop1' task='t-loop@test'>\
         <summary>Round and round</summary><chain><agent jid='{}'/><agent jid='{}'/></chain>\
         </task-offer>",
        w.jid("erin.agent"),
        w.jid("dana.agent")
    )
    .parse()
    .expect("xml");
    match alice.iq(Some(&to), IqRequest::Set(offer)).await {
        IqResponse::Error(e) => {
            assert_eq!(format!("{:?}", e.defined_condition), "Conflict");
            assert_eq!(
                e.other.map(|o| o.name().to_string()).as_deref(),
                Some("delegation-loop")
            );
        }
        other => panic!("expected an error, got {other:?}\n{}", dana.log()),
    }
    let tasks = attache(&w.dir("dana"), &["tasks", "list", "--all"]);
    assert!(!tasks.contains("Round and round"), "{tasks}");
}

#[tokio::test]
async fn a_task_taken_back_is_cancelled_at_the_assignee_who_is_told_once() {
    let w = world(&["alice", "dana"]);
    takes_tasks(&w, "dana", "allow");
    let (alice, dana) = (w.spawn("alice"), w.spawn("dana"));
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut dana_owner = w.owner("dana", &dana).await;
    let logs = [&alice, &dana];

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add water plants"),
        "Added task 1",
        &logs,
    )
    .await;
    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana"),
        "accepted task 1",
        &logs,
    )
    .await;
    let n = new_task_id(&say(&w, &mut dana_owner, "dana", None, "New task", &logs).await);

    let reply = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("takeback 1"),
        "Took back",
        &logs,
    )
    .await;
    assert_eq!(
        reply,
        "Took back task 1: water plants. I am telling Dana's agent."
    );
    let told = say(&w, &mut dana_owner, "dana", None, "took back", &logs).await;
    assert_eq!(told, format!("Alice took back task {n}: water plants"));
    let more = drain(&mut dana_owner, Duration::from_secs(2)).await;
    assert!(more.is_empty(), "{more:?}");
    let (status, _) = handoff_of(&w, "dana", n).await;
    assert_eq!(status, "CANCELLED");
    let open = attache(&w.dir("dana"), &["tasks", "list"]);
    assert!(!open.contains("water plants"), "{open}");
    // Alice has it again, unassigned; a second takeback changes nothing.
    let listed = attache(&w.dir("alice"), &["tasks", "list"]);
    assert!(
        listed.contains("water plants") && !listed.contains("handed to"),
        "{listed}"
    );
    let again = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("takeback 1"),
        "Task 1",
        &logs,
    )
    .await;
    assert_eq!(again, "Task 1 was already taken back.");
}

#[tokio::test]
async fn task_messages_wait_for_an_offline_agent_and_survive_a_restart() {
    let w = world(&["alice", "dana"]);
    takes_tasks(&w, "dana", "allow");
    let alice = w.spawn("alice");
    let mut alice_owner = w.owner("alice", &alice).await;

    say(
        &w,
        &mut alice_owner,
        "alice",
        Some("task add send invoice"),
        "Added task 1",
        &[&alice],
    )
    .await;
    let offline = say(
        &w,
        &mut alice_owner,
        "alice",
        Some("handoff 1 to dana"),
        "offline",
        &[&alice],
    )
    .await;
    assert_eq!(
        offline,
        "Dana's agent is offline; I'll offer task 1 (send invoice) when it is back."
    );

    // Dana's agent comes online: the offer goes out, with nothing more to type.
    let dana = w.spawn("dana");
    let mut dana_owner = w.owner("dana", &dana).await;
    let logs = [&alice, &dana];
    say(
        &w,
        &mut alice_owner,
        "alice",
        None,
        "accepted task 1",
        &logs,
    )
    .await;
    let n = new_task_id(&say(&w, &mut dana_owner, "dana", None, "New task", &logs).await);

    // Alice's agent is down when Dana is done; it hears it after its restart.
    alice.terminate_gracefully();
    say(
        &w,
        &mut dana_owner,
        "dana",
        Some(&format!("done {n}")),
        "Done:",
        &[&dana],
    )
    .await;
    // Dana's agent keeps the status in its outbox meanwhile.
    let store = Store::open(&database_path(&w.dir("dana")))
        .await
        .expect("store");
    let waiting = store.all_waiting().await.expect("outbox");
    store.close().await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].peer, w.jid("alice.agent"));
    assert!(waiting[0].payload.contains("COMPLETED"), "{waiting:?}");
    let alice = w.spawn("alice");
    let done = say(
        &w,
        &mut alice_owner,
        "alice",
        None,
        "completed",
        &[&alice, &dana],
    )
    .await;
    assert_eq!(done, "Dana completed: send invoice");
    let (status, _) = handoff_of(&w, "alice", 1).await;
    assert_eq!(status, "COMPLETED");
    let more = drain(&mut alice_owner, Duration::from_secs(2)).await;
    assert!(more.iter().all(|m| !m.contains("completed")), "{more:?}");
}
