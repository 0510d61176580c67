//! The disclosure log is tamper-evident: entries written by the agent, then
//! the SQLite file edited behind its back, and `attache log verify` names
//! the first broken entry.

use attache::audit::{AuditEntry, AuditOutcome};
use attache::store::{Store, database_path};
use chrono::{DateTime, Utc};

use crate::common::Agent;

fn entry(i: i64) -> AuditEntry {
    AuditEntry {
        at: DateTime::<Utc>::from_timestamp(1_780_000_000 + i * 60, 0).unwrap_or_default(),
        peer: "bob.agent@example.org".into(),
        peer_key: "bob@example.org".into(),
        action: "freebusy".into(),
        params: format!("{{\"window\":\"day {i}\"}}"),
        outcome: if i % 3 == 0 {
            AuditOutcome::Deny
        } else {
            AuditOutcome::Allow
        },
        rule: Some("team-sees-busy-times".into()),
        level: Some("busy".into()),
        disclosed: format!("busy: {i} intervals"),
    }
}

async fn agent_with_log(n: i64) -> Agent {
    let a = Agent::init("Europe/Berlin");
    let store = Store::open(&database_path(&a.dir)).await.expect("open");
    for i in 1..=n {
        store.append_audit(&entry(i)).await.expect("append");
    }
    store.close().await;
    a
}

/// Runs SQL on the agent's database directly, as an attacker with file access would.
async fn tamper(a: &Agent, statements: &[&'static str]) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database_path(&a.dir))
        .connect()
        .await
        .expect("connect");
    for s in statements {
        sqlx::query(*s).execute(&mut conn).await.expect("tamper");
    }
}

#[tokio::test]
async fn an_intact_log_verifies_and_lists() {
    let a = agent_with_log(5).await;
    let out = a.ok(&["log", "verify"]);
    assert!(out.contains("intact: 5 entries verified"), "{out}");
    let list = a.ok(&["log", "--peer", "bob@example.org"]);
    assert_eq!(list.lines().count(), 5, "{list}");
    assert!(
        list.contains("freebusy: allow at level busy by rule team-sees-busy-times"),
        "{list}"
    );
    let json: serde_json::Value = serde_json::from_str(&a.ok(&["log", "--json"])).expect("json");
    assert_eq!(json[0]["seq"], 1);
    assert_eq!(json[0]["outcome"], "allow");
}

#[tokio::test]
async fn an_edited_entry_is_detected_and_named() {
    let a = agent_with_log(6).await;
    tamper(
        &a,
        &["UPDATE audit_log SET disclosed = 'nothing' WHERE seq = 3"],
    )
    .await;
    let err = a.fails(&["log", "verify"]);
    assert!(err.contains("entry 3 was changed"), "{err}");
}

#[tokio::test]
async fn a_deleted_entry_is_detected_and_named() {
    let a = agent_with_log(6).await;
    tamper(&a, &["DELETE FROM audit_log WHERE seq = 4"]).await;
    let err = a.fails(&["log", "verify"]);
    assert!(err.contains("entry 4 is missing"), "{err}");
}

#[tokio::test]
async fn reordered_entries_are_detected() {
    let a = agent_with_log(6).await;
    // Swap entries 2 and 5 by renumbering them.
    tamper(
        &a,
        &[
            "UPDATE audit_log SET seq = -2 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 5",
            "UPDATE audit_log SET seq = 5 WHERE seq = -2",
        ],
    )
    .await;
    let err = a.fails(&["log", "verify"]);
    assert!(err.contains("entry 2"), "{err}");
}

#[tokio::test]
async fn a_deleted_tail_is_detected() {
    let a = agent_with_log(6).await;
    tamper(&a, &["DELETE FROM audit_log WHERE seq >= 5"]).await;
    let err = a.fails(&["log", "verify"]);
    assert!(err.contains("newest entries were deleted"), "{err}");
}

#[tokio::test]
async fn pruning_to_the_configured_retention_keeps_the_rest_verifiable() {
    let a = agent_with_log(6).await;
    let cfg = a.dir.join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str("[audit]\nretention = \"7d\"\n");
    std::fs::write(&cfg, text).expect("config");
    // Seven days and 210 s after the first entry's base time: entries 1–3 are older.
    let now = DateTime::<Utc>::from_timestamp(1_780_000_000 + 7 * 86_400 + 210, 0)
        .unwrap_or_default()
        .to_rfc3339();
    let out = a.ok(&["--now", &now, "log", "prune"]);
    assert!(out.contains("Pruned 3 entries"), "{out}");
    let out = a.ok(&["log", "verify"]);
    assert!(out.contains("intact: 3 entries verified"), "{out}");
    assert!(out.contains("Entries up to 3 were pruned"), "{out}");

    std::fs::write(&cfg, "[audit]\nretention = \"1d\"\n").expect("config");
    let err = a.fails(&["log", "prune"]);
    assert!(err.contains("at least 7d"), "{err}");
}
