//! Load (issue 7), two documented commands whose figures are printed; the
//! correctness parts (no failed request, a log entry per answer, no double
//! booking, the same meeting in every calendar) are asserted:
//!
//! ```sh
//! # one agent, 20 peers × LOAD_REQUESTS free/busy requests (default 10,000)
//! LOAD_REQUESTS=10000 cargo test --release --test integration load_twenty_peers_freebusy -- --ignored --nocapture
//! # 10 agents negotiating LOAD_MEETINGS meetings among themselves (default 1,000)
//! LOAD_MEETINGS=1000 cargo test --release --test integration load_ten_agents_thousand_meetings -- --ignored --nocapture
//! ```
//!
//! Both run on one loopback Prosody with the agents logging at `warn`, so
//! the figures measure the agents, not their debug logs. `LOAD_SEED`
//! changes the meeting plan (default 7); a failure prints it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_xmpp::Event;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::bench_agents::calendar_gen;
use crate::common::world::{World, attache};
use crate::meetings_e2e::{Exported, Scene, double_bookings};
use crate::xmpp_agent::{Agent, PATIENCE, TestClient};

/// Peers asking Bob's agent at once.
const PEERS: usize = 20;

/// Requests each peer keeps outstanding.
const PEER_IN_FLIGHT: usize = 8;

/// Requests each peer sends before the measured run (and the RSS baseline).
const WARM_UP: usize = 100;

/// Meeting orders each organizer's owner keeps outstanding.
const ORDERS_IN_FLIGHT: usize = 4;

/// The ten people of the meeting load.
const PEOPLE: [&str; 10] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];

/// The working day every meeting agent has (Berlin), so that meetings fit
/// in fewer days than the policies' window.
const WORKING_DAY: &str = "06:00-22:00";
const SLOTS_PER_DAY: usize = 32;

/// A positive number from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name}={v:?} is not a positive number")),
        Err(_) => default,
    }
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `RssAnon`, …), 0 when
/// the process is gone.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Raises every rate in `who`'s default policy from the default 20/hour to
/// 1,000,000/hour and widens its windows to `window`, so that the load,
/// not a limit, is measured.
fn unlimited_policy(dir: &Path, window: &str) {
    let policy = dir.join("policies/default.toml");
    let text = std::fs::read_to_string(&policy).expect("policy");
    assert!(
        text.contains("rate = \"20/hour\"") && text.contains("window = \"14d\""),
        "the default policy changed; adjust the load test's overrides:\n{text}"
    );
    let text = text
        .replace("rate = \"20/hour\"", "rate = \"1000000/hour\"")
        .replace("window = \"14d\"", &format!("window = \"{window}\""));
    std::fs::write(&policy, text).expect("policy");
}

/// Starts `attache run` for `who` logging warnings only; returns the agent
/// and its process id (for its memory).
fn spawn_quiet(w: &World, who: &str) -> (Agent, u32) {
    let dir = w.dir(who);
    let log = dir.join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(&dir)
        .arg("run")
        .env("ATTACHE_PASSWORD", format!("{who}.agent-pw"))
        .env("RUST_LOG", "warn")
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_NOW")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn attache run");
    let pid = child.id();
    (
        Agent {
            child: Some(child),
            log,
        },
        pid,
    )
}

/// Samples a process's resident memory every 100 ms until stopped: the
/// peak shows growth that a before/after pair could miss, and a reading at
/// every tenth of the requests shows whether memory levels off.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Sampled>,
}

/// What an [`RssSampler`] saw.
#[derive(Default)]
struct Sampled {
    peak_kib: u64,
    /// `(requests answered, RSS KiB, of which anonymous KiB)` at each
    /// tenth of the run.
    tenths: Vec<(usize, u64, u64)>,
}

impl RssSampler {
    /// Samples `pid` while `answered` counts up to `total`.
    fn start(pid: u32, answered: Arc<AtomicUsize>, total: usize) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Sampled::default();
            let mut next = 1;
            while !flag.load(Ordering::Relaxed) {
                let rss = rss_kib(pid);
                seen.peak_kib = seen.peak_kib.max(rss);
                let done = answered.load(Ordering::Relaxed);
                if next <= 10 && done * 10 >= total * next {
                    seen.tenths.push((done, rss, status_kib(pid, "RssAnon")));
                    while next <= 10 && done * 10 >= total * next {
                        next += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        });
        RssSampler { stop, task }
    }

    async fn finish(self) -> Sampled {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Entries `attache log verify` vouches for in `dir`'s disclosure log.
fn verified_entries(dir: &Path) -> usize {
    let out = attache(dir, &["log", "verify"]);
    out.split_whitespace()
        .zip(out.split_whitespace().skip(1))
        .find_map(|(n, word)| word.starts_with("entries").then(|| n.parse().ok())?)
        .unwrap_or_else(|| panic!("log verify said no entry count: {out}"))
}

/// What one peer saw: every answered request's latency (from its first
/// send), failures by kind, and how often the agent shed load.
#[derive(Default)]
struct PeerRun {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
    overloads: usize,
}

/// The agent's documented answer when its queue is full: retry later.
fn is_overload(error: &StanzaError) -> bool {
    error.defined_condition == DefinedCondition::ResourceConstraint
        && error.texts.values().any(|t| t.contains("try again later"))
}

/// Sends `total` free/busy requests (level busy, each with a new
/// request-id) to `to`, `in_flight` outstanding, retrying the ones the
/// agent shed as overloaded. Like `bench_agents::drive`, one loop writes
/// and reads, with our own stanza ids.
async fn peer_load(
    client: &mut TestClient,
    to: &Jid,
    tag: &str,
    total: usize,
    in_flight: usize,
    progress: &AtomicUsize,
) -> PeerRun {
    let ns = attache::negotiate::NS;
    let mut run = PeerRun::default();
    let mut pending: HashMap<String, Instant> = HashMap::with_capacity(in_flight);
    // Requests to (re)send: (number, when first sent).
    let mut queue: VecDeque<(usize, Option<Instant>)> = (0..total).map(|n| (n, None)).collect();
    let mut attempt = 0usize;
    let mut answered = 0;
    while answered < total {
        while pending.len() < in_flight {
            let Some((n, first)) = queue.pop_front() else {
                break;
            };
            attempt += 1;
            let id = format!("{tag}-{n}-{attempt}");
            let payload: Element =
                format!("<freebusy xmlns='{ns}' request-id='{id}' level='busy'/>")
                    .parse()
                    .expect("xml");
            let iq = Iq::Get {
                from: None,
                to: Some(to.clone()),
                id: id.clone(),
                payload,
            };
            pending.insert(id, first.unwrap_or_else(Instant::now));
            client
                .client
                .send_stanza(iq.into())
                .await
                .unwrap_or_else(|e| panic!("{tag}: request {n} not sent: {e}"));
        }
        let event = tokio::time::timeout(PATIENCE, client.client.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{tag}: no answer within {PATIENCE:?}: {answered} of {total} answered, {} outstanding",
                    pending.len()
                )
            });
        let (id, failure) = match event {
            Some(Event::Stanza(Stanza::Iq(Iq::Result { id, .. }))) => (id, None),
            Some(Event::Stanza(Stanza::Iq(Iq::Error { id, error, .. }))) => (id, Some(error)),
            Some(_) => continue,
            None => panic!("{tag}: the client's stream ended during the load"),
        };
        let Some(at) = pending.remove(&id) else {
            continue;
        };
        match failure {
            None => {
                run.latencies.push(at.elapsed());
                answered += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            Some(error) if is_overload(&error) => {
                run.overloads += 1;
                let n = id
                    .rsplit('-')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("our own stanza id {id} has no number"));
                queue.push_back((n, Some(at)));
                // Back off a little so the retry is not shed again at once.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Some(error) => {
                let text = error.texts.values().next().cloned().unwrap_or_default();
                *run.errors
                    .entry(format!("{:?} {text:?}", error.defined_condition))
                    .or_default() += 1;
                answered += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    run
}

/// Runs [`peer_load`] for every client at once, counting answers in
/// `progress`; returns the clients and their runs merged, and the wall time.
async fn all_peers(
    clients: Vec<TestClient>,
    to: &Jid,
    phase: &str,
    total: usize,
    progress: Arc<AtomicUsize>,
) -> (Vec<TestClient>, PeerRun, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let to = to.clone();
            let tag = format!("load-{}-{phase}-p{i}", std::process::id());
            let progress = progress.clone();
            tokio::spawn(async move {
                let run = peer_load(&mut client, &to, &tag, total, PEER_IN_FLIGHT, &progress).await;
                (client, run)
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut merged = PeerRun::default();
    for task in tasks {
        let (client, run) = task.await.expect("a peer's load task panicked");
        clients.push(client);
        merged.latencies.extend(run.latencies);
        merged.overloads += run.overloads;
        for (kind, n) in run.errors {
            *merged.errors.entry(kind).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    merged.latencies.sort();
    (clients, merged, elapsed)
}

#[tokio::test]
#[ignore = "load: LOAD_REQUESTS=10000 cargo test --release --test integration load_twenty_peers_freebusy -- --ignored --nocapture"]
async fn load_twenty_peers_freebusy() {
    let requests = env_count("LOAD_REQUESTS", 10_000);
    let w = World::start();
    let d = w.server.domain().to_string();
    let bob = w.home("bob");
    let ics = bob.join("big.ics");
    std::fs::write(
        &ics,
        calendar_gen::generate(chrono::Utc::now(), 9_500, 500, 42),
    )
    .expect("ics");
    attache(&bob, &["import", ics.to_str().expect("path")]);
    let peers: Vec<String> = (0..PEERS).map(|i| format!("peer{i:02}")).collect();
    for p in &peers {
        w.register(p);
        w.register(&format!("{p}.agent"));
        w.add_contact("bob", p, &["team"]);
    }
    unlimited_policy(&bob, "14d");
    let logged_before = verified_entries(&bob);

    let (agent, pid) = spawn_quiet(&w, "bob");
    let bob_agent = w.full("bob.agent");
    let mut clients = Vec::new();
    for p in &peers {
        let mut c = TestClient::login(
            &w.server,
            &format!("{p}.agent@{d}"),
            &format!("{p}.agent-pw"),
        )
        .await;
        c.wait_for_agent(&bob_agent, &agent).await;
        clients.push(c);
    }
    let idle_kib = rss_kib(pid);

    let (clients, warm, _) =
        all_peers(clients, &bob_agent, "warm", WARM_UP, Default::default()).await;
    assert!(
        warm.errors.is_empty(),
        "warm-up errors: {:?}\n{}",
        warm.errors,
        agent.log()
    );
    let warm_kib = rss_kib(pid);
    let warm_anon_kib = status_kib(pid, "RssAnon");
    let progress = Arc::new(AtomicUsize::new(0));
    let sampler = RssSampler::start(pid, progress.clone(), PEERS * requests);
    let (clients, run, elapsed) = all_peers(clients, &bob_agent, "run", requests, progress).await;
    let mut sampled = sampler.finish().await;
    let end_kib = rss_kib(pid);
    if sampled.tenths.last().is_none_or(|t| t.0 < PEERS * requests) {
        let anon = status_kib(pid, "RssAnon");
        sampled.tenths.push((PEERS * requests, end_kib, anon));
    }

    // Every answered request is one disclosure-log entry; the log is
    // written as the answer goes out, so give the last ones a moment.
    let answered = PEERS * (WARM_UP + requests);
    let expected = logged_before + answered;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logged = verified_entries(&bob);
    while logged < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        logged = verified_entries(&bob);
    }
    for c in clients {
        c.close().await;
    }

    let total = run.latencies.len();
    println!(
        "one agent (10,000-event calendar), {PEERS} peers × {requests} free/busy requests \
         (level busy), {PEER_IN_FLIGHT} in flight each, after {WARM_UP} warm-up each"
    );
    println!(
        "throughput: {:.0} requests/s ({total} answered in {:.1} s); latency p50 {}  p99 {}  max {}",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        ms(pct(&run.latencies, 0.5)),
        ms(pct(&run.latencies, 0.99)),
        ms(run.latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "errors: {:?}; overload answers (\"busy; try again later\", retried): {} (+{} in warm-up)",
        run.errors, run.overloads, warm.overloads
    );
    println!(
        "agent RSS: idle {}, after warm-up {}, peak {}, end {} (growth after warm-up {:+.1} MB)",
        mb(idle_kib),
        mb(warm_kib),
        mb(sampled.peak_kib),
        mb(end_kib),
        (end_kib as f64 - warm_kib as f64) / 1024.0
    );
    // A plateau shows as the later tenths staying level.
    println!("agent RSS by requests answered (anonymous memory in brackets):");
    println!("  warm-up   {} [{}]", mb(warm_kib), mb(warm_anon_kib));
    for (done, rss, anon) in &sampled.tenths {
        println!(
            "  {:>3}% {:>7}  {} [{}]  {:+.1} MB",
            done * 100 / (PEERS * requests),
            done,
            mb(*rss),
            mb(*anon),
            (*rss as f64 - warm_kib as f64) / 1024.0
        );
    }
    if let (Some(half), Some(last)) = (
        sampled.tenths.iter().find(|t| t.0 * 2 >= PEERS * requests),
        sampled.tenths.last(),
    ) {
        println!(
            "  growth over the second half: {:+.1} MB",
            (last.1 as f64 - half.1 as f64) / 1024.0
        );
    }
    println!(
        "disclosure log: {} new entries verified for {answered} answered requests",
        logged - logged_before
    );
    assert!(
        run.errors.is_empty(),
        "requests failed: {:?}\n{}",
        run.errors,
        agent.log()
    );
    assert_eq!(
        logged, expected,
        "one disclosure-log entry per answered request"
    );
    drop(agent);
}

/// One meeting of the plan: who organizes, who attends, on which day
/// (counted from tomorrow), its unique title.
struct Planned {
    organizer: usize,
    day: u64,
    attendees: Vec<usize>,
    title: String,
}

/// `count` meetings, each between a random organizer and 2–3 random
/// others on one of `days` random days, deterministic in `seed`.
fn plan(count: usize, days: usize, seed: u64) -> Vec<Planned> {
    let mut rng = calendar_gen::Lcg::new(seed);
    (0..count)
        .map(|i| {
            let organizer = rng.below(PEOPLE.len() as u64) as usize;
            let want = 2 + rng.below(2) as usize;
            let mut attendees = Vec::new();
            while attendees.len() < want {
                let a = (rng.next() % PEOPLE.len() as u64) as usize;
                if a != organizer && !attendees.contains(&a) {
                    attendees.push(a);
                }
            }
            Planned {
                organizer,
                day: rng.below(days as u64),
                attendees,
                title: format!("L{i}"),
            }
        })
        .collect()
}

/// How one order ended, as the organizer's owner was told.
struct Outcome {
    title: String,
    /// The "Booked: …" or "Could not book …" line (or the refusal to start).
    text: String,
    took: Duration,
}

impl Outcome {
    fn booked(&self) -> bool {
        self.text.starts_with("Booked:")
    }

    /// "Booked: L1, Tue 2 Dec 10:00–10:30 with Bob, Carol." → ["bob", "carol"].
    fn accepted(&self) -> Vec<String> {
        let Some((_, with)) = self.text.split_once(" with ") else {
            return Vec::new();
        };
        let names = with.split('.').next().unwrap_or_default();
        names
            .split(',')
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The reason a failed order gave, without its title.
    fn reason(&self) -> String {
        let prefix = format!("Could not book {}: ", self.title);
        self.text
            .strip_prefix(&prefix)
            .unwrap_or(&self.text)
            .trim_end_matches('.')
            .to_string()
    }
}

/// The title an outcome line is about, if it is one.
fn outcome_title(body: &str) -> Option<&str> {
    if let Some(rest) = body.strip_prefix("Booked: ") {
        return rest.split(',').next();
    }
    body.strip_prefix("Could not book ")?.split(':').next()
}

/// One owner's orders: sends them `ORDERS_IN_FLIGHT` at a time over chat,
/// each acknowledged before the next goes out, and collects the outcomes.
async fn owner_orders(
    owner: &mut TestClient,
    agent: &Jid,
    orders: Vec<(String, String)>,
    stall: Duration,
) -> Vec<Outcome> {
    let total = orders.len();
    let mut queue: VecDeque<(String, String)> = orders.into();
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut done = Vec::with_capacity(total);
    let mut last_progress = Instant::now();
    let mut ignored: Vec<String> = Vec::new();
    // Handles a message that is an outcome; returns false for anything else.
    let take = |body: &str, sent: &mut HashMap<String, Instant>, done: &mut Vec<Outcome>| {
        let Some(title) = outcome_title(body) else {
            return false;
        };
        let Some(at) = sent.remove(title) else {
            return false;
        };
        done.push(Outcome {
            title: title.to_string(),
            text: body.to_string(),
            took: at.elapsed(),
        });
        true
    };
    while done.len() < total {
        if sent.len() < ORDERS_IN_FLIGHT
            && let Some((title, order)) = queue.pop_front()
        {
            owner.say(agent, &order).await;
            sent.insert(title.clone(), Instant::now());
            // The acknowledgement comes before any later outcome line.
            loop {
                let Some((_, body)) = owner.next_message(PATIENCE).await else {
                    panic!(
                        "no acknowledgement of {order:?} within {PATIENCE:?}; other messages: {:?}",
                        ignored.iter().rev().take(5).collect::<Vec<_>>()
                    );
                };
                if body.starts_with(&format!("Looking for a time for {title} ")) {
                    break;
                }
                if take(&body, &mut sent, &mut done) {
                    if done.last().is_some_and(|o| o.title == title) {
                        break; // refused at once ("Could not book …")
                    }
                    continue;
                }
                // The agent could not take the order at all.
                if body.starts_with("I could not start") || body.starts_with("I am not connected") {
                    if let Some(at) = sent.remove(&title) {
                        done.push(Outcome {
                            title: title.clone(),
                            text: body,
                            took: at.elapsed(),
                        });
                    }
                    break;
                }
                // Anything else (e.g. news of a meeting another agent
                // booked with this owner) is not about this order.
                ignored.push(body);
            }
            last_progress = Instant::now();
            continue;
        }
        match owner.next_message(Duration::from_secs(1)).await {
            Some((_, body)) => {
                if take(&body, &mut sent, &mut done) {
                    last_progress = Instant::now();
                }
            }
            None => assert!(
                last_progress.elapsed() < stall,
                "no outcome for {stall:?}; still waiting for {:?}",
                sent.keys().collect::<Vec<_>>()
            ),
        }
    }
    done
}

#[tokio::test]
#[ignore = "load: LOAD_MEETINGS=1000 cargo test --release --test integration load_ten_agents_thousand_meetings -- --ignored --nocapture"]
async fn load_ten_agents_thousand_meetings() {
    let meetings = env_count("LOAD_MEETINGS", 1_000);
    let seed = env_count("LOAD_SEED", 7) as u64;
    // Half-hour meetings; each person is in ~3.5/10 of them. Leave twice
    // the room they need, so that the load, not a full calendar, decides.
    let per_person = meetings * 35 / 100 + 1;
    let days = (per_person * 2).div_ceil(SLOTS_PER_DAY).max(1);
    let plan = plan(meetings, days, seed);
    let w = Scene(World::start());
    for who in PEOPLE {
        let dir = w.home(who);
        let config = dir.join("config.toml");
        let mut text = std::fs::read_to_string(&config).expect("config");
        text.push_str("\n[calendar.working_hours]\n");
        for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            text.push_str(&format!("{day} = \"{WORKING_DAY}\"\n"));
        }
        std::fs::write(&config, text).expect("config");
        unlimited_policy(&dir, &format!("{}d", days + 3));
        for other in PEOPLE.iter().filter(|o| **o != who) {
            w.add_contact(who, other, &["team"]);
        }
    }
    let (agents, pids): (Vec<Agent>, Vec<u32>) =
        PEOPLE.iter().map(|who| spawn_quiet(&w, who)).unzip();
    let logs: Vec<&Agent> = agents.iter().collect();
    let mut owners = Vec::new();
    for (who, agent) in PEOPLE.iter().zip(&agents) {
        let mut owner = w.owner(who, agent).await;
        let others: Vec<&str> = PEOPLE.iter().filter(|o| *o != who).copied().collect();
        w.until_reachable(&mut owner, &w.bare(&format!("{who}.agent")), &others, &logs)
            .await;
        owners.push(owner);
    }
    let before: Vec<u64> = pids.iter().map(|p| rss_kib(*p)).collect();

    let mut orders: Vec<Vec<(String, String)>> = vec![Vec::new(); PEOPLE.len()];
    for m in &plan {
        let who: Vec<&str> = m.attendees.iter().map(|a| PEOPLE[*a]).collect();
        let when = (w.tomorrow.date + chrono::Days::new(m.day)).format("%Y-%m-%d");
        orders[m.organizer].push((
            m.title.clone(),
            format!("meet {} for 30m {when} about {}", who.join(", "), m.title),
        ));
    }
    let stall = Duration::from_secs(120);
    let started = Instant::now();
    let tasks: Vec<_> = owners
        .into_iter()
        .zip(orders)
        .enumerate()
        .map(|(i, (mut owner, orders))| {
            let agent = w.bare(&format!("{}.agent", PEOPLE[i]));
            tokio::spawn(async move {
                let outcomes = owner_orders(&mut owner, &agent, orders, stall).await;
                (owner, outcomes)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok((owner, mut mine)) => {
                owner.close().await;
                outcomes.append(&mut mine);
            }
            Err(e) => {
                let logs: Vec<String> = agents.iter().map(Agent::log).collect();
                panic!(
                    "an owner's orders failed (LOAD_SEED={seed}, LOAD_MEETINGS={meetings}): {e}\n{}",
                    logs.join("\n-----\n")
                );
            }
        }
    }
    let elapsed = started.elapsed();
    let after: Vec<u64> = pids.iter().map(|p| rss_kib(*p)).collect();

    let booked: Vec<&Outcome> = outcomes.iter().filter(|o| o.booked()).collect();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.booked()) {
        *failures.entry(o.reason()).or_default() += 1;
    }
    let mut times: Vec<Duration> = booked.iter().map(|o| o.took).collect();
    times.sort();

    // Read every calendar back: no overlapping booked events, and every
    // booked meeting once, identically, in the organizer's and each
    // accepting attendee's calendar.
    let calendars: BTreeMap<&str, Vec<Exported>> =
        PEOPLE.iter().map(|who| (*who, w.events(who))).collect();
    let mut doubles = Vec::new();
    for (who, events) in &calendars {
        for pair in double_bookings(events) {
            doubles.push((*who, pair));
        }
    }
    let by_title: HashMap<&str, &Planned> = plan.iter().map(|m| (m.title.as_str(), m)).collect();
    let mut inconsistent = Vec::new();
    for o in &booked {
        let m = by_title[o.title.as_str()];
        let mut people = vec![PEOPLE[m.organizer].to_string()];
        people.extend(o.accepted());
        let copies: Vec<(&String, Vec<&Exported>)> = people
            .iter()
            .map(|p| {
                let mine = calendars
                    .get(p.as_str())
                    .map(|evs| evs.iter().filter(|e| e.summary == o.title).collect())
                    .unwrap_or_default();
                (p, mine)
            })
            .collect();
        let reference = copies[0].1.first().copied();
        let same = copies.iter().all(|(_, evs)| {
            evs.len() == 1
                && reference.is_some_and(|r| {
                    (&evs[0].uid, &evs[0].sequence, evs[0].start, evs[0].end)
                        == (&r.uid, &r.sequence, r.start, r.end)
                })
        });
        if !same {
            inconsistent.push(format!("{}: {copies:?}", o.text));
        }
    }

    println!(
        "10 agents, {meetings} meetings (2–3 attendees + organizer, 30 min, each on one \
         of {days} days, {WORKING_DAY}), {ORDERS_IN_FLIGHT} orders in flight per organizer, LOAD_SEED={seed}"
    );
    println!(
        "booked {} of {}; {:.2} meetings/s booked ({:.1} s); order→Booked p50 {}  p99 {}  max {}",
        booked.len(),
        outcomes.len(),
        booked.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default()),
    );
    println!("not booked, by reason: {failures:?}");
    println!(
        "double bookings: {}; booked meetings not identical in every accepted calendar: {}",
        doubles.len(),
        inconsistent.len()
    );
    for (i, who) in PEOPLE.iter().enumerate() {
        println!(
            "  {who}: RSS {} → {}, {} events",
            mb(before[i]),
            mb(after[i]),
            calendars[who].len()
        );
    }
    assert_eq!(outcomes.len(), meetings);
    assert!(
        doubles.is_empty(),
        "double bookings (LOAD_SEED={seed}, LOAD_MEETINGS={meetings}): {doubles:#?}"
    );
    assert!(
        inconsistent.is_empty(),
        "meetings differ between calendars (LOAD_SEED={seed}, LOAD_MEETINGS={meetings}):\n{}",
        inconsistent.join("\n")
    );
    drop(agents);
}
