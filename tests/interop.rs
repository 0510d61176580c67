//! Interop smoke test: an independent peer, written in Python with slixmpp
//! from docs/protocol.md alone (`scripts/interop_peer.py`), asks a real
//! attache agent for free/busy on a real Prosody. If the two disagree,
//! either attache or the document is wrong: the document must be enough for
//! a stranger to implement a peer.
//!
//! The peer logs in as Alice's agent, whom Bob knows in the group `team`
//! (the default policy's `team-sees-busy-times`: level busy, working hours,
//! 30-minute granularity). It prints one JSON line per exchange; this test
//! checks them against Bob's calendar.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::common::repo;
use crate::common::world::{World, calendar};

const NS: &str = "urn:x-attache:agent:1";

/// The venv's python with slixmpp, or a panic saying how to install it:
/// a test that did not run must never look green.
fn python_with_slixmpp() -> PathBuf {
    const HOW: &str = "run `bash scripts/setup-test-env.sh` (creates .venv with the pins from \
         scripts/requirements-test.txt, slixmpp among them; needs python3 and python3-venv: \
         apt-get install python3-venv)";
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the interop test needs the Python peer's environment, and {} is missing: {HOW}",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", "import slixmpp"])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}; {HOW}", python.display()));
    assert!(
        probe.status.success(),
        "slixmpp is not installed in .venv ({}): {HOW}",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    python
}

/// Bob works every day 08:00–20:00 (Berlin) and has tomorrow: a review
/// 10:00–11:00, a tentative call 14:00–14:30 and a chat 16:10–16:40 that
/// the 30-minute granularity widens to 16:00–17:00.
fn bobs_world() -> World {
    let w = World::start();
    w.home("bob");
    w.register("alice.agent");
    w.work_every_day("bob");
    let t = &w.tomorrow;
    let events = t.event("review@bob", "10:00", "11:00", &["SUMMARY:Design review"])
        + &t.event(
            "call@bob",
            "14:00",
            "14:30",
            &["SUMMARY:Call", "STATUS:TENTATIVE"],
        )
        + &t.event("chat@bob", "16:10", "16:40", &["SUMMARY:Chat"]);
    w.import_ics("bob", &calendar(&events));
    w.add_contact("bob", "alice", &["team"]);
    w
}

#[test]
fn a_python_peer_written_from_the_document_gets_bobs_busy_times() {
    let python = python_with_slixmpp();
    let w = bobs_world();
    let bob = w.spawn("bob");
    let t = &w.tomorrow;
    let slot = (t.at("10:00"), t.at("10:30"));
    let slot2 = (t.at("12:00"), t.at("12:30"));

    let started = Instant::now();
    let out = Command::new(&python)
        .arg(repo().join("scripts/interop_peer.py"))
        .args(["--jid", &w.jid("alice.agent")])
        .args(["--password", "alice.agent-pw"])
        .args(["--host", "127.0.0.1"])
        .args(["--port", &w.server.port().to_string()])
        .args(["--agent", &w.jid("bob.agent")])
        .args(["--start", &t.at("00:00"), "--end", &t.at_on(1, "00:00")])
        .args(["--duration", "PT1H"])
        .args(["--slot", &slot.0, &slot.1])
        .args(["--slot2", &slot2.0, &slot2.1])
        .args(["--timeout", "90"])
        .output()
        .unwrap_or_else(|e| panic!("could not run scripts/interop_peer.py: {e}"));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let context = format!(
        "peer exit {}, {elapsed:?}\n--- stdout\n{stdout}--- stderr\n{}--- bob's agent\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        bob.log()
    );

    let mut ex: BTreeMap<String, Value> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("peer printed a non-JSON line ({e}): {line}\n{context}"));
        let name = v["exchange"].as_str().unwrap_or("?").to_string();
        ex.insert(name, v);
    }
    let violations: Vec<String> = ex
        .values()
        .flat_map(|v| {
            let name = v["exchange"].as_str().unwrap_or("?").to_string();
            v["violations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |x| format!("{name}: {}", x.as_str().unwrap_or("?")))
        })
        .collect();
    assert!(
        violations.is_empty(),
        "the peer saw protocol violations:\n{}\n{context}",
        violations.join("\n")
    );
    assert!(out.status.success(), "the peer failed\n{context}");
    let get = |name: &str| -> &Value {
        ex.get(name)
            .unwrap_or_else(|| panic!("no exchange {name:?} in the peer's output\n{context}"))
    };

    // §3: the full JID from presence, the feature in disco#info.
    let disco = get("disco-info");
    assert_eq!(disco["found_by"], "presence", "{context}");
    assert_eq!(disco["agent_asked_to_subscribe"], true, "{context}");
    assert_eq!(disco["agent"], format!("{}/attache", w.jid("bob.agent")));
    assert!(
        disco["features"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(NS))),
        "{context}"
    );

    // §5.2 at level busy: the working day shown, Bob's events rounded outward.
    let busy = get("busy");
    assert_eq!(busy["reply_type"], "result", "{context}");
    assert_eq!(busy["level"], "busy", "{context}");
    assert_eq!(busy["start"], json!(t.at("00:00")), "{context}");
    assert_eq!(busy["end"], json!(t.at_on(1, "00:00")), "{context}");
    assert_eq!(
        busy["shown"],
        json!([[t.at("08:00"), t.at("20:00")]]),
        "{context}"
    );
    assert_eq!(
        busy["busy"],
        json!([
            [t.at("10:00"), t.at("11:00"), "BUSY"],
            [t.at("14:00"), t.at("14:30"), "BUSY-TENTATIVE"],
            [t.at("16:00"), t.at("17:00"), "BUSY"],
        ]),
        "{context}"
    );

    // Level slots (below busy, so granted as asked): the default k = 3
    // one-hour slots, earliest first, around the review; the peer checked
    // that none overlaps a busy interval.
    let slots = get("slots");
    assert_eq!(slots["level"], "slots", "{context}");
    assert_eq!(
        slots["free"],
        json!([
            [t.at("08:00"), t.at("09:00")],
            [t.at("09:00"), t.at("10:00")],
            [t.at("11:00"), t.at("12:00")],
        ]),
        "{context}"
    );

    // Level yes-no: one answer, for the first slot only.
    let yes_no = get("yes-no");
    assert_eq!(yes_no["level"], "yes-no", "{context}");
    assert_eq!(
        yes_no["answers"],
        json!([[slot.0, slot.1, "busy"]]),
        "{context}"
    );
    let first_only = get("yes-no-first-only");
    assert_eq!(
        first_only["answers"],
        json!([[slot2.0, slot2.1, "free"]]),
        "{context}"
    );
    let no_slot = get("yes-no-without-slot");
    assert_eq!(no_slot["level"], "yes-no", "{context}");
    assert_eq!(no_slot["answers"], json!([]), "{context}");

    // §7: a repeat gets the remembered answer; the same id with another
    // payload is refused.
    // Attribute order is not part of the payload (XML says it is insignificant).
    for name in ["replay", "replay-reordered"] {
        let replay = get(name);
        assert_eq!(
            replay["request_id"], busy["request_id"],
            "{name}\n{context}"
        );
        assert_eq!(replay["identical"], true, "{name}\n{context}");
        assert_eq!(replay["canonical"], busy["canonical"], "{name}\n{context}");
    }
    let reused = get("reused-id");
    assert_eq!(reused["reply_type"], "error", "{context}");
    assert_eq!(reused["error"]["type"], "cancel", "{context}");
    assert_eq!(reused["error"]["condition"], "conflict", "{context}");
    assert_eq!(
        reused["error"]["app_condition"], "request-id-reused",
        "{context}"
    );

    // §6: malformed requests are refused, and the agent keeps serving.
    for name in [
        "malformed-no-request-id",
        "malformed-time-not-utc",
        "malformed-slot-time-not-utc",
        "malformed-end-before-start",
    ] {
        let e = get(name);
        assert_eq!(e["reply_type"], "error", "{name}\n{context}");
        assert_eq!(e["error"]["type"], "modify", "{name}\n{context}");
        assert_eq!(e["error"]["condition"], "bad-request", "{name}\n{context}");
        assert_eq!(
            e["error"]["app_condition"], "invalid-payload",
            "{name}\n{context}"
        );
    }
    eprintln!("interop peer: {} exchanges in {elapsed:?}", ex.len());
}
