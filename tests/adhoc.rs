//! XEP-0050 ad-hoc commands on a real network (issue 6): the owner's
//! client lists `meet`, `handoff`, `pending` and `free`, fills their forms,
//! and gets what the same chat command gives; a stranger sees no command
//! and may run none.

use std::time::Duration;

use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::common::world::{World, calendar, expect_reply as expect};
use crate::xmpp_agent::TestClient;

const COMMANDS: &str = "http://jabber.org/protocol/commands";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DATA: &str = "jabber:x:data";

fn xml(text: &str) -> Element {
    text.parse()
        .unwrap_or_else(|e| panic!("bad test XML ({e}): {text}"))
}

/// Escapes `&`, `<`, `>`, `'` for an XML text or attribute.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// The nodes the agent lists to `client` under the commands node.
async fn listed(client: &mut TestClient, agent: &Jid) -> Vec<String> {
    let query = xml(&format!("<query xmlns='{DISCO_ITEMS}' node='{COMMANDS}'/>"));
    match client.iq(Some(agent), IqRequest::Get(query)).await {
        IqResponse::Result(Some(items)) => items
            .children()
            .filter(|i| i.is("item", DISCO_ITEMS))
            .filter_map(|i| i.attr("node").map(String::from))
            .collect(),
        other => panic!("no command list: {other:?}"),
    }
}

/// Sends one `<command/>` (with a submitted form when `fields` is given).
async fn command(
    client: &mut TestClient,
    agent: &Jid,
    node: &str,
    session: Option<&str>,
    action: Option<&str>,
    fields: Option<&[(&str, &[&str])]>,
) -> IqResponse {
    let mut text = format!("<command xmlns='{COMMANDS}' node='{node}'");
    if let Some(s) = session {
        text.push_str(&format!(" sessionid='{}'", esc(s)));
    }
    if let Some(a) = action {
        text.push_str(&format!(" action='{a}'"));
    }
    text.push('>');
    if let Some(fields) = fields {
        text.push_str(&format!("<x xmlns='{DATA}' type='submit'>"));
        for (var, values) in fields {
            text.push_str(&format!("<field var='{var}'>"));
            for v in *values {
                text.push_str(&format!("<value>{}</value>", esc(v)));
            }
            text.push_str("</field>");
        }
        text.push_str("</x>");
    }
    text.push_str("</command>");
    client.iq(Some(agent), IqRequest::Set(xml(&text))).await
}

/// The `<command/>` of a result, or a panic naming what came instead.
fn result(answer: IqResponse) -> Element {
    match answer {
        IqResponse::Result(Some(c)) if c.is("command", COMMANDS) => c,
        other => panic!("not a command result: {other:?}"),
    }
}

/// Starts `node`: its session id and form.
async fn start(client: &mut TestClient, agent: &Jid, node: &str) -> (String, Element) {
    let c = result(command(client, agent, node, None, Some("execute"), None).await);
    assert_eq!(c.attr("status"), Some("executing"), "{c:?}");
    let session = c.attr("sessionid").expect("a session id").to_string();
    let form = c.get_child("x", DATA).expect("a form").clone();
    assert_eq!(form.attr("type"), Some("form"));
    (session, form)
}

/// The option values of field `var`.
fn options(form: &Element, var: &str) -> Vec<String> {
    form.children()
        .find(|f| f.is("field", DATA) && f.attr("var") == Some(var))
        .unwrap_or_else(|| panic!("no field {var} in {form:?}"))
        .children()
        .filter(|o| o.is("option", DATA))
        .filter_map(|o| o.get_child("value", DATA).map(Element::text))
        .collect()
}

/// Submits the form of `session` and returns the completion note.
async fn submit(
    client: &mut TestClient,
    agent: &Jid,
    node: &str,
    session: &str,
    fields: &[(&str, &[&str])],
) -> String {
    let c = result(
        command(
            client,
            agent,
            node,
            Some(session),
            Some("complete"),
            Some(fields),
        )
        .await,
    );
    assert_eq!(c.attr("status"), Some("completed"), "{c:?}");
    let note = c.get_child("note", COMMANDS).expect("a note");
    assert_eq!(note.attr("type"), Some("info"), "{c:?}");
    note.text()
}

#[tokio::test]
async fn the_owner_runs_free_and_meet_as_forms_and_a_stranger_sees_nothing() {
    let w = World::start();
    for who in ["alice", "bob"] {
        w.home(who);
    }
    w.register("eve");
    w.work_every_day("bob");
    let review = w
        .tomorrow
        .event("review@bob", "10:00", "11:00", &["SUMMARY:Design review"]);
    w.import_ics("bob", &calendar(&review));
    w.add_contact("alice", "bob", &[]);
    // Bob's default policy shows his team busy blocks.
    w.add_contact("bob", "alice", &["team"]);
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let mut owner = w.owner("alice", &alice).await;
    owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let agent = w.full("alice.agent");
    let chat_to = w.bare("alice.agent");
    let logs = [&alice, &bob];
    let patience = Duration::from_secs(40);

    // The agent says it has commands, and lists them to its owner only.
    let info = xml(&format!("<query xmlns='{DISCO_INFO}'/>"));
    let IqResponse::Result(Some(info)) = owner.iq(Some(&agent), IqRequest::Get(info)).await else {
        panic!("no disco#info");
    };
    assert!(
        info.children()
            .any(|f| f.is("feature", DISCO_INFO) && f.attr("var") == Some(COMMANDS)),
        "{info:?}"
    );
    assert_eq!(
        listed(&mut owner, &agent).await,
        ["meet", "handoff", "pending", "free"]
    );
    let mut eve = TestClient::login(&w.server, &w.jid("eve"), "eve-pw").await;
    assert!(listed(&mut eve, &agent).await.is_empty());
    match command(&mut eve, &agent, "free", None, Some("execute"), None).await {
        IqResponse::Error(e) => assert_eq!(e.defined_condition, DefinedCondition::Forbidden),
        other => panic!("a stranger ran a command: {other:?}"),
    }
    eve.close().await;

    // `free` by chat, then by form: the same answer arrives in chat.
    let by_chat = expect(
        &mut owner,
        &chat_to,
        Some("free bob tomorrow"),
        |b| b.contains("level busy"),
        patience,
        &logs,
    )
    .await;
    let (session, form) = start(&mut owner, &agent, "free").await;
    let bob_jid = w.jid("bob");
    assert_eq!(options(&form, "who"), std::slice::from_ref(&bob_jid));
    let note = submit(
        &mut owner,
        &agent,
        "free",
        &session,
        &[("who", &[&bob_jid]), ("when", &["tomorrow"])],
    )
    .await;
    assert!(note.contains("chat message"), "{note}");
    let by_form = expect(
        &mut owner,
        &chat_to,
        None,
        |b| b.contains("level busy"),
        patience,
        &logs,
    )
    .await;
    assert_eq!(by_form, by_chat);
    // The session is gone once submitted.
    match command(
        &mut owner,
        &agent,
        "free",
        Some(&session),
        Some("complete"),
        Some(&[]),
    )
    .await
    {
        IqResponse::Error(e) => assert_eq!(e.defined_condition, DefinedCondition::BadRequest),
        other => panic!("a used session was accepted: {other:?}"),
    }

    // A form with a mistake comes back with the reason; a cancelled one is gone.
    let (session, _) = start(&mut owner, &agent, "meet").await;
    let c = result(
        command(
            &mut owner,
            &agent,
            "meet",
            Some(&session),
            Some("complete"),
            Some(&[
                ("who", &[&bob_jid]),
                ("duration", &["30m"]),
                ("when", &["someday"]),
            ]),
        )
        .await,
    );
    assert_eq!(c.attr("status"), Some("executing"), "{c:?}");
    let problem = c.get_child("note", COMMANDS).expect("a note").text();
    assert!(problem.starts_with("When:"), "{problem}");
    let c = result(
        command(
            &mut owner,
            &agent,
            "meet",
            Some(&session),
            Some("cancel"),
            None,
        )
        .await,
    );
    assert_eq!(c.attr("status"), Some("canceled"), "{c:?}");

    // `meet` by form: the note is the chat reply, the booking comes by chat.
    let (session, form) = start(&mut owner, &agent, "meet").await;
    assert!(options(&form, "duration").contains(&"45m".to_string()));
    let note = submit(
        &mut owner,
        &agent,
        "meet",
        &session,
        &[
            ("who", &[&bob_jid]),
            ("duration", &["30m"]),
            ("when", &["tomorrow"]),
            ("title", &["Form sync"]),
            ("quorum", &[""]),
        ],
    )
    .await;
    assert!(
        note.starts_with("Looking for a time for Form sync with Bob (meeting "),
        "{note}"
    );
    let booked = expect(
        &mut owner,
        &chat_to,
        None,
        |b| b.starts_with("Booked: Form sync"),
        Duration::from_secs(60),
        &logs,
    )
    .await;
    assert!(booked.contains(&w.tomorrow.shown), "{booked}");
    assert!(booked.ends_with("with Bob."), "{booked}");
}

#[tokio::test]
async fn the_pending_form_approves_a_waiting_question() {
    let w = World::start();
    for who in ["alice", "bob"] {
        w.home(who);
    }
    w.work_every_day("bob");
    let policy = w.dir("bob").join("policies").join("default.toml");
    let mut rules = std::fs::read_to_string(&policy).expect("default policy");
    rules.push_str(
        r#"
[[rule]]
name = "alice-asks-first"
who = "contact:Alice"
action = "freebusy"
decision = "ask"
level = "busy"
window = "14d"
expires = "1h"
"#,
    );
    std::fs::write(&policy, rules).expect("policy");
    w.add_contact("alice", "bob", &[]);
    w.add_contact("bob", "alice", &[]);
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let mut bob_owner = w.owner("bob", &bob).await;
    let mut alice_owner = w.owner("alice", &alice).await;
    alice_owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    let logs = [&alice, &bob];
    let patience = Duration::from_secs(40);
    let bob_agent = w.full("bob.agent");

    // Nothing waits yet: the command completes at once and says so.
    let c = result(command(&mut bob_owner, &bob_agent, "pending", None, None, None).await);
    assert_eq!(c.attr("status"), Some("completed"), "{c:?}");
    assert_eq!(
        c.get_child("note", COMMANDS).map(Element::text).as_deref(),
        Some("Nothing waits for your approval.")
    );

    expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        Some("free bob tomorrow"),
        |b| b.contains("is asking Bob first"),
        patience,
        &logs,
    )
    .await;
    expect(
        &mut bob_owner,
        &w.bare("bob.agent"),
        None,
        |b| b.contains("approve "),
        patience,
        &logs,
    )
    .await;
    let (session, form) = start(&mut bob_owner, &bob_agent, "pending").await;
    let items = options(&form, "item");
    assert_eq!(items.len(), 1, "{form:?}");
    let n = items[0].clone();
    let note = submit(
        &mut bob_owner,
        &bob_agent,
        "pending",
        &session,
        &[("item", &[&n]), ("decision", &["approve"])],
    )
    .await;
    assert!(note.starts_with(&format!("Approved {n}:")), "{note}");
    let answer = expect(
        &mut alice_owner,
        &w.bare("alice.agent"),
        None,
        |b| b.contains("level busy"),
        patience,
        &logs,
    )
    .await;
    assert!(answer.starts_with("Bob"), "{answer}");
}
