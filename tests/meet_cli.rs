//! `attache meet` (issue 6): the command line asks the running agent to
//! negotiate, follows the meeting in the store and reports it, as text or
//! JSON; with no agent running it says so and leaves nothing behind.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::common::world::{self, attache, expect_reply};
use attache::store::{OrderState, Store, database_path};

/// Runs `attache --data-dir DIR args…` off the async runtime (it may wait
/// for seconds) and returns what it did, success or not.
async fn attache_output(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(&dir)
            .args(&args)
            .env_remove("ATTACHE_DATA_DIR")
            .env_remove("ATTACHE_PASSWORD")
            .env_remove("ATTACHE_NOW")
            .output()
            .expect("run attache")
    })
    .await
    .expect("join")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The UIDs of `dir`'s exported events called `summary`, with their DTSTART lines.
fn exported(dir: &Path, summary: &str) -> Vec<(String, String)> {
    let ics = attache(dir, &["export"]);
    let mut found = Vec::new();
    for event in ics.split("BEGIN:VEVENT").skip(1) {
        let field = |name: &str| {
            event
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        if field("SUMMARY:") == summary {
            found.push((field("UID:"), field("DTSTART")));
        }
    }
    found
}

#[tokio::test]
async fn a_meeting_asked_on_the_command_line_is_booked_in_both_calendars() {
    let w = world::World::start();
    for who in ["alice", "bob"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.add_contact("alice", "bob", &[]);
    w.add_contact("bob", "alice", &["team"]);
    let bob = w.spawn("bob");
    let alice = w.spawn("alice");
    let mut owner = w.owner("alice", &alice).await;
    owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    // Alice's agent must see Bob's online before it can negotiate with him.
    expect_reply(
        &mut owner,
        &w.bare("alice.agent"),
        Some("free bob tomorrow"),
        |b| b.contains("level busy"),
        Duration::from_secs(30),
        &[&alice, &bob],
    )
    .await;

    let args = [
        "meet", "bob", "--for", "30m", "--when", "tomorrow", "--about", "Sync", "--json",
    ];
    let out = attache_output(&w.dir("alice"), &args).await;
    assert!(
        out.status.success(),
        "meet failed: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        alice.log(),
        bob.log()
    );
    let v = json_of(&out);
    assert_eq!(v["status"], "booked", "{v}");
    assert_eq!(v["summary"], "Sync");
    assert!(v["meeting"].as_i64().is_some_and(|n| n >= 1), "{v}");
    assert!(v.get("reason").is_none(), "{v}");
    // Bob works from 08:00 Berlin and has nothing tomorrow: the first slot.
    assert_eq!(v["start"], w.tomorrow.at("08:00"), "{v}");
    assert_eq!(v["end"], w.tomorrow.at("08:30"), "{v}");
    assert_eq!(
        v["attendees"],
        serde_json::json!([{
            "name": "Bob",
            "jid": w.jid("bob"),
            "partstat": "ACCEPTED",
            "required": true
        }])
    );

    // Both calendars hold the event under the UID the CLI reported.
    let uid = v["uid"].as_str().expect("uid").to_string();
    for who in ["alice", "bob"] {
        let events = exported(&w.dir(who), "Sync");
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        assert_eq!(events[0].0, uid, "{who}");
        assert!(events[0].1.contains(&w.tomorrow.ymd), "{who}: {events:?}");
    }

    // Without --json: the line the owner gets by chat.
    let args = [
        "meet", "bob", "--for", "30m", "--when", "tomorrow", "--about", "Retro",
    ];
    let out = attache_output(&w.dir("alice"), &args).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.trim(),
        format!("Booked: Retro, {} 08:30–09:00 with Bob.", w.tomorrow.shown)
    );
}

#[tokio::test]
async fn without_a_running_agent_meet_says_so_and_leaves_the_order_rejected() {
    let w = world::World::start();
    w.home("alice");
    w.home("bob");
    w.add_contact("alice", "bob", &[]);
    let dir = w.dir("alice");

    let args = [
        "meet", "bob", "--for", "30m", "--when", "tomorrow", "--json",
    ];
    let out = attache_output(&dir, &args).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no running agent picked up the request: start `attache run`"),
        "{stderr}"
    );
    let v = json_of(&out);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["meeting"], Value::Null);
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no running agent"))
    );

    // The order is rejected, so an agent started later will not run it,
    // and no meeting was created.
    let store = Store::open(&database_path(&dir)).await.expect("store");
    let order = store
        .meeting_order(1)
        .await
        .expect("read")
        .expect("order 1");
    assert_eq!(order.state, OrderState::Rejected);
    assert!(order.error.is_some_and(|e| e.contains("no running agent")));
    assert!(
        store
            .requested_meeting_orders()
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.meeting_by_short_id(1).await.expect("read").is_none());
    store.close().await;

    // A request that cannot be read is a usage error (2), and no order.
    for bad in [
        vec!["meet", "zed", "--for", "30m"],
        vec!["meet", "bob", "--for", "half an hour"],
        vec!["meet", "bob", "--when", "fri quorum 1"],
        vec!["meet", "bob", "--quorum", "2"],
    ] {
        let out = attache_output(&dir, &bad).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = Store::open(&database_path(&dir)).await.expect("store");
    assert!(store.meeting_order(2).await.expect("read").is_none());
    store.close().await;
}

#[tokio::test]
async fn when_the_meeting_cannot_be_booked_the_reason_comes_back_from_the_store() {
    let w = world::World::start();
    for who in ["alice", "bob"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.add_contact("alice", "bob", &[]);
    // Bob's agent never runs.
    let alice = w.spawn("alice");
    let _owner = w.owner("alice", &alice).await;

    let args = [
        "meet", "bob", "--for", "30m", "--when", "tomorrow", "--about", "Sync", "--json", "--wait",
        "60",
    ];
    let out = attache_output(&w.dir("alice"), &args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", alice.log());
    let v = json_of(&out);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["reason"], "Bob's agent is offline", "{v}");
    assert_eq!(v["start"], Value::Null);
    assert!(v["meeting"].as_i64().is_some(), "{v}");
    assert_eq!(
        stderr.trim(),
        "error: Could not book Sync: Bob's agent is offline."
    );
    // Nothing was booked.
    assert!(exported(&w.dir("alice"), "Sync").is_empty());
}
