//! Faults (issue 7): agents killed with SIGKILL at random points of a long
//! scripted run of meetings and task handoffs, Prosody restarted in the
//! middle of a negotiation, a read-only data directory and a full disk. After
//! every fault the stores must be sound: SQLite's `integrity_check`, the
//! disclosure log's hash chain, no hold left live, no double booking, no
//! booked meeting missing at an attendee that accepted it, no task lost that
//! an owner was told about.
//!
//! The long run is one command (FAULT_KILLS defaults to 50; FAULT_SEED
//! replays a run, the seed is printed):
//!
//! ```text
//! cargo test --release --test integration faults_kill9 -- --ignored --nocapture
//! ```
//!
//! A 3-kill variant of the same run is part of CI.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::common::world::{World, attache, calendar, expect_reply};
use crate::xmpp_agent::{Agent, TestClient};

/// The people of the long run: each organizes, attends and hands tasks over.
const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dana"];

/// Prosody keeps a vanished client's session this long (`smacks_hibernation_time`
/// in tests/common/prosody.rs); a restart waits longer, so peers see the agent go.
const HIBERNATION: Duration = Duration::from_secs(5);

/// How long the agents get, after the last restart, to finish or abandon
/// every negotiation: past the 5-minute availability window a resumed
/// negotiation may wait out (see `kill9_run`).
const QUIET_WITHIN: Duration = Duration::from_secs(420);

/// xorshift64*: reproducible from the printed seed, no extra crate.
struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64, so that close seeds give unrelated runs.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// Everyone at home, working every day, in everyone's team (so meeting
/// proposals are held at once) and taking tasks from any contact.
fn fault_world(people: &[&str]) -> World {
    let w = World::start();
    for who in people {
        w.home(who);
        w.work_every_day(who);
        let rule = "[[rule]]\nname = \"contacts-hand-tasks\"\nwho = \"any-contact\"\n\
                    action = \"offer-task\"\ndecision = \"allow\"\n";
        std::fs::write(w.dir(who).join("policies/tasks.toml"), rule).expect("task policy");
    }
    for who in people {
        for other in people.iter().filter(|o| *o != who) {
            w.add_contact(who, other, &["team"]);
        }
    }
    w
}

/// SIGKILL: no goodbye to the server, no chance to save anything more.
fn kill_hard(mut agent: Agent) {
    if let Some(mut child) = agent.child.take() {
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

/// Opens `who`'s store read-only.
async fn store(dir: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(attache::store::database_path(dir))
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&options)
        .await
        .expect("open a store")
}

async fn scalar(dir: &Path, sql: &str) -> i64 {
    let mut db = store(dir).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut db)
        .await
        .expect("query a store");
    let _ = db.close().await;
    n
}

async fn integrity(dir: &Path) -> String {
    let mut db = store(dir).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .expect("integrity check");
    let _ = db.close().await;
    check
}

/// Runs `attache --data-dir DIR args…` and returns its output, success or not.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_PASSWORD")
        .env_remove("ATTACHE_NOW")
        .output()
        .expect("run attache")
}

/// One exported event: what the double-booking and cross-calendar checks read.
#[derive(Debug, Clone)]
struct Exported {
    uid: String,
    sequence: i64,
    status: String,
    start: i64,
    end: i64,
}

/// Reads `attache export`'s VEVENTs (unfolded lines; DTSTART/DTEND in UTC
/// or with a TZID).
fn exported_events(ics: &str) -> Vec<Exported> {
    let unfolded = ics.replace("\r\n ", "").replace("\n ", "");
    unfolded
        .split("BEGIN:VEVENT")
        .skip(1)
        .map(|block| {
            let block = block.split("END:VEVENT").next().unwrap_or_default();
            let mut e = Exported {
                uid: String::new(),
                sequence: 0,
                status: "CONFIRMED".into(),
                start: 0,
                end: 0,
            };
            for line in block.lines().map(str::trim) {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let base = name.split(';').next().unwrap_or_default();
                match base {
                    "UID" => e.uid = value.to_string(),
                    "SEQUENCE" => e.sequence = value.parse().unwrap_or(0),
                    "STATUS" => e.status = value.to_string(),
                    "DTSTART" => e.start = instant(name, value),
                    "DTEND" => e.end = instant(name, value),
                    _ => {}
                }
            }
            e
        })
        .collect()
}

/// Unix seconds of an iCalendar DATE-TIME property `name:value`.
fn instant(name: &str, value: &str) -> i64 {
    if let Some(utc) = value.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .unwrap_or_else(|e| panic!("{name}:{value}: {e}"));
        return t.and_utc().timestamp();
    }
    let tz: chrono_tz::Tz = name
        .split(';')
        .find_map(|p| p.strip_prefix("TZID="))
        .unwrap_or("UTC")
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let t = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .unwrap_or_else(|e| panic!("{name}:{value}: {e}"));
    tz.from_local_datetime(&t)
        .earliest()
        .unwrap_or_else(|| panic!("{name}:{value} does not exist"))
        .timestamp()
}

/// What the owners were told during the run, per person.
#[derive(Default)]
struct Told {
    messages: BTreeMap<String, Vec<String>>,
}

impl Told {
    /// Collects whatever the owners received in the last moment.
    async fn collect(&mut self, owners: &mut [(String, TestClient)], each: Duration) {
        for (who, owner) in owners.iter_mut() {
            while let Some((_, body)) = owner.next_message(each).await {
                self.messages.entry(who.clone()).or_default().push(body);
            }
        }
    }

    fn of(&self, who: &str) -> &[String] {
        self.messages
            .get(who)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Every agent's owner logged in; the agents running.
async fn owners(w: &World, agents: &[Option<Agent>], people: &[&str]) -> Vec<(String, TestClient)> {
    let mut out = Vec::new();
    for (who, agent) in people.iter().zip(agents) {
        let agent = agent.as_ref().expect("running at the start");
        out.push((who.to_string(), w.owner(who, agent).await));
    }
    out
}

/// The figures a run prints and the checks it counts.
#[derive(Default, Debug)]
struct Figures {
    kills: u32,
    meetings: u32,
    booked: u32,
    failed: u32,
    handoffs: u32,
    handoffs_accepted: u32,
}

/// The scripted run: meetings and handoffs ordered by the owners, agents
/// killed with SIGKILL at random moments and restarted after a random delay
/// past Prosody's hibernation; then quiescence and the checks.
async fn kill9_run(kills: u32) {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64);
    println!("faults_kill9: seed {seed} (FAULT_SEED={seed} replays the schedule), {kills} kills");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let w = fault_world(&PEOPLE);
    let mut agents: Vec<Option<Agent>> = PEOPLE.iter().map(|p| Some(w.spawn(p))).collect();
    let mut owners = owners(&w, &agents, &PEOPLE).await;
    // When each dead agent comes back, and since when each live one runs.
    let mut back_at: Vec<Option<Instant>> = vec![None; PEOPLE.len()];
    // The owners' logins waited for every agent to be online.
    let online = Instant::now()
        .checked_sub(Duration::from_secs(10))
        .unwrap_or_else(Instant::now);
    let mut up_since: Vec<Instant> = vec![online; PEOPLE.len()];
    let mut told = Told::default();
    let mut figures = Figures::default();
    let mut step = 0u32;
    let mut orders_since_kill = 0u32;
    while figures.kills < kills {
        step += 1;
        // Restarts that are due.
        for i in 0..PEOPLE.len() {
            if back_at[i].is_some_and(|t| Instant::now() >= t) {
                agents[i] = Some(w.spawn(PEOPLE[i]));
                back_at[i] = None;
                up_since[i] = Instant::now();
            }
        }
        // Orders go only to agents up for a few seconds: they are online.
        let settled: Vec<usize> = (0..PEOPLE.len())
            .filter(|&i| agents[i].is_some() && up_since[i].elapsed() > Duration::from_secs(3))
            .collect();
        // A kill only after at least two orders since the last one, so
        // every crash lands in the middle of work.
        let dice = if orders_since_kill < 2 {
            rng.below(75)
        } else {
            rng.below(100)
        };
        if dice < 75 && settled.is_empty() {
            // Nobody to order anything from right now: wait for restarts.
        } else if dice < 45 {
            orders_since_kill += 1;
            let org = settled[rng.below(settled.len() as u64) as usize];
            let others: Vec<&str> = (0..PEOPLE.len())
                .filter(|&i| i != org)
                .map(|i| PEOPLE[i])
                .collect();
            let first = rng.below(others.len() as u64) as usize;
            let mut who = vec![others[first]];
            if rng.below(2) == 0 {
                who.push(others[(first + 1) % others.len()]);
            }
            let day = w.tomorrow.date + chrono::Days::new(rng.below(3));
            figures.meetings += 1;
            let text = format!(
                "meet {} for 30m {} about F{}",
                who.join(", "),
                day.format("%Y-%m-%d"),
                figures.meetings
            );
            owners[org]
                .1
                .say(&w.bare(&format!("{}.agent", PEOPLE[org])), &text)
                .await;
        } else if dice < 75 {
            orders_since_kill += 1;
            let from = settled[rng.below(settled.len() as u64) as usize];
            let to = (from + 1 + rng.below(PEOPLE.len() as u64 - 1) as usize) % PEOPLE.len();
            figures.handoffs += 1;
            let summary = format!("T{}", figures.handoffs);
            let added = attache(&w.dir(PEOPLE[from]), &["tasks", "add", &summary]);
            let id = added
                .split_whitespace()
                .nth(2)
                .map(|n| n.trim_end_matches(':').to_string())
                .unwrap_or_else(|| panic!("no task id in {added:?}"));
            owners[from]
                .1
                .say(
                    &w.bare(&format!("{}.agent", PEOPLE[from])),
                    &format!("handoff {id} to {}", PEOPLE[to]),
                )
                .await;
        } else {
            let alive: Vec<usize> = (0..PEOPLE.len()).filter(|&i| agents[i].is_some()).collect();
            if !alive.is_empty() {
                let victim = alive[rng.below(alive.len() as u64) as usize];
                if let Some(agent) = agents[victim].take() {
                    kill_hard(agent);
                }
                figures.kills += 1;
                orders_since_kill = 0;
                let delay = HIBERNATION + rng.millis(500, 4_000);
                back_at[victim] = Some(Instant::now() + delay);
                println!(
                    "step {step}: kill -9 {} ({} of {kills}), back in {delay:?}",
                    PEOPLE[victim], figures.kills
                );
            }
        }
        let pause = rng.millis(200, 2_500);
        let until = Instant::now() + pause;
        while Instant::now() < until {
            told.collect(&mut owners, Duration::from_millis(50)).await;
        }
    }
    // Everyone back, then quiet: no negotiation open, no hold live.
    for i in 0..PEOPLE.len() {
        if agents[i].is_none() {
            let wait = back_at[i].map(|t| t.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait.unwrap_or_default()).await;
            agents[i] = Some(w.spawn(PEOPLE[i]));
        }
    }
    // A negotiation whose organizer was killed while it asked for free/busy
    // is resumed, but the lost questions are not asked again: it waits for
    // the availability window (5 minutes) to close. So quiet may take that.
    let quiet_from = Instant::now();
    let quiet_by = quiet_from + QUIET_WITHIN;
    let mut quiet = false;
    let mut stuck = Vec::new();
    let mut slow_to_settle = None;
    while Instant::now() < quiet_by {
        told.collect(&mut owners, Duration::from_millis(100)).await;
        let now = Utc::now().timestamp();
        stuck.clear();
        for who in PEOPLE {
            let dir = w.dir(who);
            let open = scalar(
                &dir,
                "SELECT count(*) FROM meetings WHERE status = 'negotiating'",
            )
            .await;
            let held = scalar(
                &dir,
                &format!("SELECT count(*) FROM holds WHERE expires_utc > {now}"),
            )
            .await;
            if open + held > 0 {
                let mut db = store(&dir).await;
                let states: Vec<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT uid, summary, state_json FROM meetings WHERE status = 'negotiating'",
                )
                .fetch_all(&mut db)
                .await
                .expect("meetings");
                let _ = db.close().await;
                stuck.push(format!(
                    "{who}: {open} negotiating, {held} holds live; open: {states:?}"
                ));
            }
        }
        if stuck.is_empty() {
            quiet = true;
            break;
        }
        // What still waited half a minute in, for a run slow to settle.
        if slow_to_settle.is_none() && quiet_from.elapsed() > Duration::from_secs(30) {
            slow_to_settle = Some(stuck.clone());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let quiet_after = quiet_from.elapsed();
    if quiet && let Some(waiting) = &slow_to_settle {
        println!("faults_kill9: still open 30 s after the last restart: {waiting:?}");
    }
    told.collect(&mut owners, Duration::from_millis(300)).await;
    let mut violations = Vec::new();
    if !quiet {
        violations.push(format!("not quiet after {QUIET_WITHIN:?}: {stuck:?}"));
    }
    check_everything(&w, &told, &mut figures, &mut violations).await;
    // A run in which nothing was booked or handed over tested nothing.
    if figures.booked == 0 || figures.handoffs_accepted == 0 {
        violations.push(format!("nothing got done: {figures:?}"));
    }
    for (_, owner) in owners {
        owner.close().await;
    }
    let logs: Vec<String> = agents.iter().flatten().map(Agent::log).collect();
    println!(
        "faults_kill9: seed {seed}; kills {}; meetings attempted {}, booked {}, failed {}, \
         not started or unreported {}; handoffs {} ({} accepted); violations {}; quiet {:.0?} after the last restart; duration {:.0?}",
        figures.kills,
        figures.meetings,
        figures.booked,
        figures.failed,
        figures.meetings - figures.booked - figures.failed,
        figures.handoffs,
        figures.handoffs_accepted,
        violations.len(),
        quiet_after,
        started.elapsed()
    );
    for v in &violations {
        println!("VIOLATION: {v}");
    }
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations (listed above)\nagent logs (tail):\n{}",
        violations.len(),
        logs.iter()
            .map(|l| l
                .chars()
                .rev()
                .take(4_000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>())
            .collect::<Vec<_>>()
            .join("\n-----\n")
    );
}

/// The end-of-run checks, appended to `violations`.
async fn check_everything(
    w: &World,
    told: &Told,
    figures: &mut Figures,
    violations: &mut Vec<String>,
) {
    let now = Utc::now().timestamp();
    let mut exports: HashMap<String, Vec<Exported>> = HashMap::new();
    for who in PEOPLE {
        let dir = w.dir(who);
        let check = integrity(&dir).await;
        if check != "ok" {
            violations.push(format!("{who}: integrity_check says {check}"));
        }
        let verify = run(&dir, &["log", "verify"]);
        let text = String::from_utf8_lossy(&verify.stdout);
        if !verify.status.success() || !text.contains("intact") {
            violations.push(format!(
                "{who}: log verify: {text}{}",
                String::from_utf8_lossy(&verify.stderr)
            ));
        }
        let live = scalar(
            &dir,
            &format!("SELECT count(*) FROM holds WHERE expires_utc > {now}"),
        )
        .await;
        if live > 0 {
            violations.push(format!("{who}: {live} holds still live"));
        }
        let events = exported_events(&attache(&dir, &["export"]));
        let confirmed: Vec<&Exported> = events
            .iter()
            .filter(|e| e.status != "CANCELLED" && e.status != "TENTATIVE")
            .collect();
        for (i, a) in confirmed.iter().enumerate() {
            for b in &confirmed[i + 1..] {
                if a.start < b.end && b.start < a.end {
                    violations.push(format!("{who}: double booking {} and {}", a.uid, b.uid));
                }
            }
        }
        exports.insert(who.to_string(), events);
    }
    // Every meeting an organizer booked is at every attendee that accepted,
    // with the same UID and SEQUENCE; no attendee keeps a booking its
    // organizer does not have.
    for who in PEOPLE {
        let mut db = store(&w.dir(who)).await;
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT uid, role, status, sequence FROM meetings")
                .fetch_all(&mut db)
                .await
                .expect("meetings");
        let accepted: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.uid, a.agent FROM meeting_attendees a JOIN meetings m ON m.uid = a.uid \
             WHERE m.role = 'organizer' AND m.status = 'booked' AND a.partstat = 'ACCEPTED' \
             AND a.agent IS NOT NULL",
        )
        .fetch_all(&mut db)
        .await
        .expect("attendees");
        let organizers: Vec<(String, String)> = sqlx::query_as(
            "SELECT uid, organizer FROM meetings WHERE role = 'attendee' AND status = 'booked'",
        )
        .fetch_all(&mut db)
        .await
        .expect("organizers");
        let _ = db.close().await;
        let live = |person: &str, uid: &str| {
            exports[person]
                .iter()
                .find(|e| e.uid == uid && e.status != "CANCELLED")
                .cloned()
        };
        for (uid, role, status, sequence) in &rows {
            if role == "organizer" && status == "booked" {
                figures.booked += 1;
                match live(who, uid) {
                    Some(e) if e.sequence == *sequence => {}
                    other => violations.push(format!(
                        "{who} booked {uid} (seq {sequence}) but exports {other:?}"
                    )),
                }
            }
            if role == "organizer" && (status == "failed" || status == "cancelled") {
                figures.failed += 1;
            }
        }
        for (uid, agent) in &accepted {
            let person = agent.split('.').next().unwrap_or_default();
            let mine = live(who, uid);
            let theirs = exports.get(person).and_then(|_| live(person, uid));
            match (mine, theirs) {
                (Some(m), Some(t))
                    if m.sequence == t.sequence && m.start == t.start && m.end == t.end => {}
                (m, t) => violations.push(format!(
                    "{uid}: {who} (organizer) has {m:?}, accepted attendee {person} has {t:?}"
                )),
            }
        }
        for (uid, organizer) in &organizers {
            let person = organizer.split('.').next().unwrap_or_default();
            if exports.contains_key(person) && live(person, uid).is_none() {
                violations.push(format!(
                    "{who} has {uid} booked, its organizer {person} does not"
                ));
            }
        }
    }
    // What the owners were told holds: booked meetings exist, announced
    // tasks exist.
    for who in PEOPLE {
        let mut db = store(&w.dir(who)).await;
        // Organizers and attendees alike are told "Booked: TITLE, …".
        let booked: Vec<(String,)> =
            sqlx::query_as("SELECT summary FROM meetings WHERE status = 'booked'")
                .fetch_all(&mut db)
                .await
                .expect("booked");
        let statuses: Vec<(String, String)> =
            sqlx::query_as("SELECT summary, status FROM meetings")
                .fetch_all(&mut db)
                .await
                .expect("meetings");
        let _ = db.close().await;
        let tasks: serde_json::Value =
            serde_json::from_str(&attache(&w.dir(who), &["tasks", "list", "--all", "--json"]))
                .expect("tasks json");
        let tasks = tasks.as_array().cloned().unwrap_or_default();
        let lines = told.of(who);
        for (n, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("Booked: ") {
                let title = rest.split(',').next().unwrap_or_default();
                // The last word counts: an attendee's booking that the
                // organizer cancelled later (a stale booking from a round
                // whose confirm failed elsewhere) comes with its own message.
                let cancelled_later = lines[n + 1..].iter().any(|l| {
                    l.starts_with("Cancelled by ")
                        && l.split_once(": ")
                            .is_some_and(|(_, t)| t.split(',').next() == Some(title))
                });
                if !booked.iter().any(|(s,)| s == title) && !cancelled_later {
                    let about: Vec<&String> = lines.iter().filter(|l| l.contains(title)).collect();
                    let stored: Vec<&String> = statuses
                        .iter()
                        .filter(|(s, _)| s == title)
                        .map(|(_, status)| status)
                        .collect();
                    violations.push(format!(
                        "{who} was told {line:?}, the store has no such booking \
                         (stored as {stored:?}; everything {who} was told about it: {about:?})"
                    ));
                }
            }
            if line.starts_with("New task ") {
                figures.handoffs_accepted += 1;
                let id: i64 = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(-1);
                let summary = line.rsplit(": ").next().unwrap_or_default();
                if !tasks
                    .iter()
                    .any(|t| t["id"] == id && t["summary"] == summary)
                {
                    violations.push(format!(
                        "{who} was told {line:?}, the task is not in the store"
                    ));
                }
            }
        }
    }
}

#[tokio::test]
#[ignore = "the long fault run (minutes): FAULT_KILLS, default 50"]
async fn faults_kill9_during_a_long_run() {
    let kills = std::env::var("FAULT_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(50);
    kill9_run(kills).await;
}

#[tokio::test]
async fn faults_kill9_three_times_during_a_short_run() {
    kill9_run(3).await;
}

const RESTART_SUMMARY: &str = "Restart sync";

/// How many live (not cancelled) exported events `dir` has titled `summary`.
fn titled(dir: &Path, summary: &str) -> usize {
    let ics = attache(dir, &["export"]);
    ics.split("BEGIN:VEVENT")
        .skip(1)
        .filter(|e| e.lines().any(|l| l.trim() == format!("SUMMARY:{summary}")))
        .filter(|e| !e.contains("STATUS:CANCELLED"))
        .count()
}

/// Sends `text` from `who`'s owner and waits for an answer `wanted` accepts.
async fn ask(
    w: &World,
    owner: &mut TestClient,
    who: &str,
    text: Option<&str>,
    wanted: impl Fn(&str) -> bool,
    within: Duration,
    logs: &[&Agent],
) -> String {
    expect_reply(
        owner,
        &w.bare(&format!("{who}.agent")),
        text,
        wanted,
        within,
        logs,
    )
    .await
}

/// Alice organizes with Bob (who knows her in his team: he holds at once)
/// and Carol (who knows her only as a contact: Carol is asked first). While
/// Carol's approval is pending, Prosody restarts under all three agents;
/// then Carol approves. The meeting ends booked everywhere or cleanly
/// failed, with nothing left held.
#[tokio::test]
async fn faults_prosody_restart_mid_negotiation() {
    let mut w = World::start();
    for who in ["alice", "bob", "carol"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.add_contact("alice", "bob", &[]);
    w.add_contact("alice", "carol", &[]);
    w.add_contact("bob", "alice", &["team"]);
    w.add_contact("carol", "alice", &[]);
    let started = Instant::now();
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let logs = [&alice, &bob, &carol];
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut carol_owner = w.owner("carol", &carol).await;
    let answered = |b: &str| b.contains("level") || b.contains("shares only");
    for who in ["bob", "carol"] {
        let text = format!("free {who} tomorrow");
        let within = Duration::from_secs(40);
        ask(
            &w,
            &mut alice_owner,
            "alice",
            Some(&text),
            answered,
            within,
            &logs,
        )
        .await;
    }
    let text = format!("meet bob, carol for 30m tomorrow about {RESTART_SUMMARY}");
    let looking = |b: &str| b.starts_with("Looking for a time");
    let within = Duration::from_secs(20);
    ask(
        &w,
        &mut alice_owner,
        "alice",
        Some(&text),
        looking,
        within,
        &logs,
    )
    .await;
    let asked = ask(
        &w,
        &mut carol_owner,
        "carol",
        None,
        |b| b.contains("approve "),
        Duration::from_secs(30),
        &logs,
    )
    .await;
    let n = asked
        .rsplit_once("approve ")
        .and_then(|(_, t)| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no approval number in {asked:?}"))
        .to_string();

    alice_owner.close().await;
    carol_owner.close().await;
    let restart = Instant::now();
    w.server.restart();
    println!("prosody restarted in {:?}", restart.elapsed());
    let mut alice_owner = w.owner("alice", &alice).await;
    let mut carol_owner = w.owner("carol", &carol).await;
    // Carol's agent must see Alice's again before its answer can go out.
    let within = Duration::from_secs(60);
    ask(
        &w,
        &mut carol_owner,
        "carol",
        Some("free alice tomorrow"),
        answered,
        within,
        &logs,
    )
    .await;
    ask(
        &w,
        &mut carol_owner,
        "carol",
        Some(&format!("approve {n}")),
        |b| b.starts_with("Approved"),
        Duration::from_secs(20),
        &logs,
    )
    .await;
    let ended = ask(
        &w,
        &mut alice_owner,
        "alice",
        None,
        |b| b.starts_with("Booked:") || b.starts_with("Could not book"),
        Duration::from_secs(90),
        &logs,
    )
    .await;
    println!(
        "prosody restart mid-negotiation: {ended:?} after {:?}",
        started.elapsed()
    );
    let booked = ended.starts_with("Booked:");
    // A clean failure releases every hold (or lets it expire): wait for that.
    let released = Instant::now() + Duration::from_secs(120);
    loop {
        let now = Utc::now().timestamp();
        let mut live = 0;
        for who in ["alice", "bob", "carol"] {
            let sql = format!("SELECT count(*) FROM holds WHERE expires_utc > {now}");
            live += scalar(&w.dir(who), &sql).await;
        }
        if live == 0 {
            break;
        }
        if Instant::now() >= released {
            let mut held = Vec::new();
            for who in ["alice", "bob", "carol"] {
                if live_holds(&w.dir(who)).await > 0 {
                    held.push(who);
                }
            }
            let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
            panic!(
                "{live} holds still live (at {held:?}) after {ended:?}; agent logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for who in ["alice", "bob", "carol"] {
        let dir = w.dir(who);
        let events = titled(&dir, RESTART_SUMMARY);
        assert_eq!(
            events,
            usize::from(booked),
            "{who}: {events} events after {ended:?}"
        );
        assert_eq!(integrity(&dir).await, "ok", "{who}'s store");
        let verified = attache(&dir, &["log", "verify"]);
        assert!(verified.contains("intact"), "{who}: {verified}");
    }
    alice_owner.close().await;
    carol_owner.close().await;
}

/// Live holds in `dir`'s store now.
async fn live_holds(dir: &Path) -> i64 {
    let now = Utc::now().timestamp();
    scalar(
        dir,
        &format!("SELECT count(*) FROM holds WHERE expires_utc > {now}"),
    )
    .await
}

/// The organizer calls a negotiation off while one attendee's agent is
/// away and another's owner has not yet approved the hold. The release the
/// organizer could not deliver waits in the outbox and goes out when the
/// attendee's presence comes back; the approval that comes after the end
/// is answered with a release. Either way the attendee's slot is free again
/// at once instead of after the whole hold time (5 minutes). Both made
/// `faults_prosody_restart_mid_negotiation` flaky: after the restart the
/// organizer saw an attendee offline for a moment and dropped its release,
/// or gave up before the approval came.
#[tokio::test]
async fn faults_a_release_waits_for_an_attendee_that_was_away() {
    let w = World::start();
    for who in ["alice", "bob", "carol"] {
        w.home(who);
        w.work_every_day(who);
    }
    w.add_contact("alice", "bob", &[]);
    w.add_contact("alice", "carol", &[]);
    w.add_contact("bob", "alice", &["team"]);
    w.add_contact("carol", "alice", &[]);
    let bob = w.spawn("bob");
    let carol = w.spawn("carol");
    let alice = w.spawn("alice");
    let mut owner = w.owner("alice", &alice).await;
    let mut carol_owner = w.owner("carol", &carol).await;
    owner.wait_for_agent(&w.full("bob.agent"), &bob).await;
    owner.wait_for_agent(&w.full("carol.agent"), &carol).await;
    let answered = |b: &str| b.contains("level") || b.contains("shares only");
    for who in ["bob", "carol"] {
        let text = format!("free {who} tomorrow");
        let logs = [&alice, &bob, &carol];
        ask(
            &w,
            &mut owner,
            "alice",
            Some(&text),
            answered,
            Duration::from_secs(40),
            &logs,
        )
        .await;
    }
    // Bob holds at once; Carol's owner is asked, so the negotiation waits.
    let text = "meet bob, carol for 30m tomorrow about Away sync";
    let logs = [&alice, &bob, &carol];
    let looking = |b: &str| b.starts_with("Looking for a time");
    let started = ask(
        &w,
        &mut owner,
        "alice",
        Some(text),
        looking,
        Duration::from_secs(20),
        &logs,
    )
    .await;
    let id = started
        .split("(meeting ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no meeting id in {started:?}"))
        .to_string();
    let asked = ask(
        &w,
        &mut carol_owner,
        "carol",
        None,
        |b| b.contains("approve "),
        Duration::from_secs(30),
        &logs,
    )
    .await;
    let approval = asked
        .rsplit_once("approve ")
        .and_then(|(_, t)| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no approval number in {asked:?}"))
        .to_string();
    let held = Instant::now() + Duration::from_secs(30);
    while live_holds(&w.dir("bob")).await == 0 {
        assert!(Instant::now() < held, "Bob never held:\n{}", bob.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Bob's agent goes offline (Alice's sees its unavailable presence) …
    bob.terminate_gracefully();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = [&alice, &carol];
    let called_off = |b: &str| b.starts_with("Called off");
    let cancel = format!("cancel {id}");
    ask(
        &w,
        &mut owner,
        "alice",
        Some(&cancel),
        called_off,
        Duration::from_secs(20),
        &logs,
    )
    .await;
    assert_eq!(live_holds(&w.dir("bob")).await, 1, "Bob's store, offline");
    // … and comes back: the release that waited for it arrives.
    let back = Instant::now();
    let bob = w.spawn("bob");
    let within = Duration::from_secs(60);
    while live_holds(&w.dir("bob")).await > 0 {
        assert!(
            back.elapsed() < within,
            "Bob's hold outlived its release by {within:?}:\n{}\n-----\n{}",
            alice.log(),
            bob.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "the release reached Bob {:?} after he came back",
        back.elapsed()
    );
    let sql = "SELECT count(*) FROM outbox WHERE state = 'waiting'";
    assert_eq!(scalar(&w.dir("alice"), sql).await, 0, "Alice's outbox");
    // Carol's owner approves the called-off meeting: her agent holds, and
    // Alice's answers that hold with a release.
    assert_eq!(live_holds(&w.dir("carol")).await, 0, "Carol's store");
    let approve = format!("approve {approval}");
    let logs = [&alice, &carol];
    let approved = |b: &str| b.starts_with("Approved");
    let within = Duration::from_secs(20);
    ask(
        &w,
        &mut carol_owner,
        "carol",
        Some(&approve),
        approved,
        within,
        &logs,
    )
    .await;
    let late = Instant::now();
    let within = Duration::from_secs(30);
    while live_holds(&w.dir("carol")).await > 0 || late.elapsed() < Duration::from_secs(2) {
        assert!(
            late.elapsed() < within,
            "Carol's late hold was not released within {within:?}:\n{}\n-----\n{}",
            alice.log(),
            carol.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sql = "SELECT count(*) FROM holds";
    let placed = scalar(&w.dir("carol"), sql).await;
    println!("Carol's late hold released (holds rows left: {placed})");
    owner.close().await;
    carol_owner.close().await;
}

/// Whether the tests run as root (who ignores file permissions).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs attache on `dir` as a user who may not write there: `nobody` when
/// the tests run as root (root ignores file modes), else the current user.
fn run_unprivileged(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_attache")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_attache"))
    };
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_NOW")
        .env("ATTACHE_PASSWORD", "x")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run attache")
}

/// A data directory with one event in it, under a directory anyone may
/// traverse; returns the data directory and a 300-event .ics to import.
fn data_dir_with_an_event(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod tmp");
    let dir = tmp.join("data");
    attache(&dir, &["init", "--timezone", "Europe/Berlin"]);
    let first = tmp.join("first.ics");
    let event = "BEGIN:VEVENT\r\nUID:one@t\r\nDTSTAMP:20260101T000000Z\r\n\
                 DTSTART:20261210T090000Z\r\nDTEND:20261210T100000Z\r\nSUMMARY:One\r\nEND:VEVENT\r\n";
    std::fs::write(&first, calendar(event)).expect("ics");
    attache(&dir, &["import", first.to_str().expect("path")]);
    let more = tmp.join("more.ics");
    let mut events = String::new();
    for i in 0..300 {
        events.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:more-{i}@t\r\nDTSTAMP:20260101T000000Z\r\n\
             DTSTART:20261211T090000Z\r\nDTEND:20261211T100000Z\r\nSUMMARY:More {i} {}\r\nEND:VEVENT\r\n",
            "x".repeat(150)
        ));
    }
    std::fs::write(&more, calendar(&events)).expect("ics");
    (dir, more)
}

/// Sets every file under `path` read-only (or writable again).
fn chmod_tree(path: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).expect("stat");
    let mode = meta.permissions().mode();
    let mode = if writable {
        mode | 0o200
    } else {
        mode & !0o222
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            chmod_tree(&entry.path(), writable);
        }
    }
}

/// The store after a refused write: sound and holding exactly what it held.
async fn unchanged(dir: &Path, before: &str) {
    assert_eq!(integrity(dir).await, "ok");
    let after = attache(dir, &["export"]);
    // DTSTAMP is the export's own time: compare everything else.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("DTSTAMP"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&after), strip(before), "the store changed");
    let verified = attache(dir, &["log", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
}

/// Checks a refused command: it failed, said so naming the data directory,
/// and did not panic.
fn refused(out: &Output, dir: &Path, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} succeeded on an unwritable data dir"
    );
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    assert!(
        stderr.contains(&dir.display().to_string()),
        "{what}: the error does not name the data directory: {stderr}"
    );
    println!("{what}: {}", stderr.trim());
    stderr
}

#[tokio::test]
async fn faults_read_only_data_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, more) = data_dir_with_an_event(tmp.path());
    let before = attache(&dir, &["export"]);
    // The owner of the directory may read it but not write it. As root,
    // that owner is `nobody` (root would ignore the modes).
    if is_root() {
        let owned = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&dir)
            .status()
            .expect("run chown");
        assert!(owned.success(), "chown -R nobody {}", dir.display());
    }
    chmod_tree(&dir, false);
    let import = run_unprivileged(&dir, &["import", more.to_str().expect("path")]);
    let contacts = run_unprivileged(
        &dir,
        &["contacts", "add", "bob@example.org", "--name", "Bob"],
    );
    let agent = run_unprivileged(&dir, &["run"]);
    for (out, what) in [
        (&import, "import"),
        (&contacts, "contacts add"),
        (&agent, "run"),
    ] {
        let said = refused(out, &dir, what);
        let lower = said.to_lowercase();
        assert!(
            lower.contains("read-only") || lower.contains("permission") || lower.contains("writ"),
            "{what}: the error does not say the directory cannot be written: {said}"
        );
    }
    chmod_tree(&dir, true);
    unchanged(&dir, &before).await;
}

/// A data directory this user may not enter: commands must say so, with
/// the directory, instead of "no store, run init" (which would lead the
/// owner to create a second, empty store).
#[tokio::test]
async fn faults_data_dir_without_permission() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, _) = data_dir_with_an_event(tmp.path());
    let before = attache(&dir, &["export"]);
    // Nobody but root may enter; as root the unprivileged user is `nobody`.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let agenda = run_unprivileged(&dir, &["agenda"]);
    let agent = run_unprivileged(&dir, &["run"]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (out, what) in [(&agenda, "agenda"), (&agent, "run")] {
        let said = refused(out, &dir, what);
        assert!(
            said.to_lowercase().contains("permission denied"),
            "{what}: the error does not name the permission problem: {said}"
        );
        assert!(
            !said.contains("no store") && !said.contains("init` first"),
            "{what}: a directory it may not enter is not a missing store: {said}"
        );
    }
    unchanged(&dir, &before).await;
}

/// A tmpfs of 2 MiB holds the data directory; a filler file takes the rest
/// of it; an import then fails with a clear error and leaves the store as
/// it was. Mounting needs root.
#[tokio::test]
#[ignore = "needs root to mount a tmpfs: cargo test --test integration faults_disk_full -- --ignored"]
async fn faults_disk_full() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .output()
        .expect("run mount");
    assert!(
        mounted.status.success(),
        "cannot mount a tmpfs here (not root?): {}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    /// Unmounts on the way out, even after a failed assertion.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let (dir, more) = data_dir_with_an_event(&mnt);
    let before = attache(&dir, &["export"]);
    // Fill the disk.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let import = run(&dir, &["import", more.to_str().expect("path")]);
    let task = run(&dir, &["tasks", "add", "a task that does not fit"]);
    for (out, what) in [(&import, "import"), (&task, "tasks add")] {
        let said = refused(out, &dir, what);
        let lower = said.to_lowercase();
        assert!(
            lower.contains("full") || lower.contains("space"),
            "{what}: the error does not say the disk is full: {said}"
        );
    }
    std::fs::remove_file(&filler).expect("remove filler");
    unchanged(&dir, &before).await;
    // With room again, the same import works.
    attache(&dir, &["import", more.to_str().expect("path")]);
    assert_eq!(integrity(&dir).await, "ok");
}
