//! The agent benchmark (issue: "the agent on the XMPP network"), run by one
//! command and printed, not asserted — timings on shared machines are noise:
//!
//! ```sh
//! cargo test --release --test integration bench_ -- --ignored --nocapture
//! ```
//!
//! Through one loopback Prosody it measures (a) a raw XEP-0199 ping round
//! trip between two plain clients and (b) a free/busy request to an agent
//! whose owner has a 10,000-event calendar, each sequentially (median, p99
//! over 1,000) and with 50 requests in flight (throughput over 2,000), and
//! the agent's resident memory. Both use one request loop ([`drive`]) on one
//! client connection, so the figures compare. Targets: (b)/(a) median ≤ 1.5;
//! concurrent throughput of (b) ≥ 50% of (a); idle agent under 30 MB.

#[path = "../benches/support/calendar_gen.rs"]
pub(crate) mod calendar_gen;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_xmpp::Event;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;

use crate::common::prosody::Prosody;
use crate::common::world::attache;
use crate::xmpp_agent::{Agent, PATIENCE, TestClient};

const WARM_UP: usize = 200;
const SEQUENTIAL: usize = 1_000;
const CONCURRENT_TOTAL: usize = 2_000;
const IN_FLIGHT: usize = 50;

/// Makes every run's stanza ids unique, so a straggler is never mistaken
/// for an answer of the next run.
static NEXT_RUN: AtomicUsize = AtomicUsize::new(0);

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15; the kernel counts 100 ticks a second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A process and all its descendants (Prosody runs under `runuser` as root).
fn with_descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        all.extend(with_descendants(child));
    }
    all
}

/// CPU used by each of `pids` while `run` runs, in µs per request.
async fn cpu_per_request<F: Future<Output = Run>>(pids: &[Vec<u32>], run: F) -> (Run, Vec<f64>) {
    let total = |group: &Vec<u32>| group.iter().map(|p| cpu_time(*p)).sum::<Duration>();
    let before: Vec<Duration> = pids.iter().map(total).collect();
    let run = run.await;
    let n = run.latencies.len().max(1) as f64;
    let used = pids
        .iter()
        .zip(before)
        .map(|(g, b)| total(g).saturating_sub(b).as_secs_f64() * 1e6 / n)
        .collect();
    (run, used)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// One measured run: each request's round trip, sorted, and the wall time.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// Serialized size of the first answer's payload.
    reply_bytes: usize,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `total` IQ gets built by `make` to `to`, keeping `in_flight` of them
/// outstanding, from one loop that both writes the requests and reads the
/// answers off the client's stream. The stanza ids are ours (not tokio-xmpp's
/// IQ tracker's), so every answer arrives on the stream and is matched here
/// against its send time. Pings and free/busy requests go through exactly
/// this path, so their figures compare.
///
/// Each `send_stanza` completes once the stanza is written; tokio-xmpp keeps
/// writing while its incoming queue waits for us, so the loop cannot wedge.
async fn drive(
    client: &mut TestClient,
    to: &Jid,
    make: &dyn Fn(usize) -> Element,
    total: usize,
    in_flight: usize,
) -> Run {
    let tag = format!(
        "bench-{}-{}",
        std::process::id(),
        NEXT_RUN.fetch_add(1, Ordering::Relaxed)
    );
    let mut pending: HashMap<String, Instant> = HashMap::with_capacity(in_flight);
    let mut latencies = Vec::with_capacity(total);
    let mut sent = 0;
    let mut reply_bytes = None;
    let started = Instant::now();
    while latencies.len() < total {
        while pending.len() < in_flight && sent < total {
            let id = format!("{tag}-{sent}");
            let iq = Iq::Get {
                from: None,
                to: Some(to.clone()),
                id: id.clone(),
                payload: make(sent),
            };
            pending.insert(id, Instant::now());
            client
                .client
                .send_stanza(iq.into())
                .await
                .unwrap_or_else(|e| panic!("request {sent} not sent: {e}"));
            sent += 1;
        }
        let event = tokio::time::timeout(PATIENCE, client.client.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within {PATIENCE:?}: {} of {total} answered, {} outstanding",
                    latencies.len(),
                    pending.len()
                )
            });
        let (id, failure) = match event {
            Some(Event::Stanza(Stanza::Iq(Iq::Result { id, payload, .. }))) => {
                if reply_bytes.is_none() {
                    let mut buf = Vec::new();
                    if let Some(p) = payload {
                        let _ = p.write_to(&mut buf);
                    }
                    reply_bytes = Some(buf.len());
                }
                (id, None)
            }
            Some(Event::Stanza(Stanza::Iq(Iq::Error { id, error, .. }))) => (id, Some(error)),
            Some(_) => continue,
            None => panic!("the client's stream ended during the benchmark"),
        };
        let Some(at) = pending.remove(&id) else {
            continue; // not ours (e.g. a late answer from an earlier phase)
        };
        if let Some(error) = failure {
            panic!("request {id} failed: {error:?}");
        }
        latencies.push(at.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Run {
        latencies,
        elapsed,
        reply_bytes: reply_bytes.unwrap_or(0),
    }
}

#[tokio::test]
#[ignore = "benchmark: cargo test --release --test integration bench_ -- --ignored --nocapture"]
async fn bench_agent_freebusy_against_raw_ping() {
    let server = Prosody::start();
    let d = server.domain().to_string();
    for u in ["bob", "bob.agent", "alice.agent", "pinger", "ponger"] {
        server.register(u, &format!("{u}-pw"));
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let bob = tmp.path().join("bob");
    attache(
        &bob,
        &[
            "init",
            "--timezone",
            "Europe/Berlin",
            "--jid",
            &format!("bob.agent@{d}"),
            "--owner",
            &format!("bob@{d}"),
            "--server",
            &server.server(),
        ],
    );
    let ics = tmp.path().join("big.ics");
    std::fs::write(
        &ics,
        calendar_gen::generate(chrono::Utc::now(), 9_500, 500, 42),
    )
    .expect("ics");
    attache(&bob, &["import", ics.to_str().expect("path")]);
    attache(
        &bob,
        &[
            "contacts",
            "add",
            &format!("alice@{d}"),
            "--name",
            "Alice",
            "--agent",
            &format!("alice.agent@{d}"),
            "--group",
            "team",
        ],
    );
    // The default team rule, with a rate high enough for the benchmark
    // (warm-up, sequential and concurrent requests all count).
    let policy = bob.join("policies/default.toml");
    let text = std::fs::read_to_string(&policy).expect("policy");
    assert!(
        text.contains("rate = \"20/hour\""),
        "the default policy changed; adjust the benchmark's rate override:\n{text}"
    );
    std::fs::write(
        &policy,
        text.replace("rate = \"20/hour\"", "rate = \"1000000/hour\""),
    )
    .expect("policy");

    let log = bob.join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(&bob)
        .arg("run")
        .env("ATTACHE_PASSWORD", "bob.agent-pw")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let agent = Agent {
        child: Some(child),
        log,
    };
    let bob_agent = Jid::new(&format!("bob.agent@{d}/attache")).expect("jid");

    let mut pinger = TestClient::login(&server, &format!("pinger@{d}"), "pinger-pw").await;
    let mut ponger = TestClient::login(&server, &format!("ponger@{d}"), "ponger-pw").await;
    let ponger_jid = ponger.client.bound_jid().cloned().expect("bound");
    let responder = tokio::spawn(async move { ponger.answer_pings().await });
    let mut alice = TestClient::login(&server, &format!("alice.agent@{d}"), "alice.agent-pw").await;
    alice.wait_for_agent(&bob_agent, &agent).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = rss_kib(pid);

    let ping = |_| -> Element { Ping.into() };
    let ns = attache::negotiate::NS;
    let pid_tag = std::process::id();
    let next_request = AtomicUsize::new(0);
    // Every request-id is new: the agent refuses replays.
    let freebusy = |_| -> Element {
        let n = next_request.fetch_add(1, Ordering::Relaxed);
        format!("<freebusy xmlns='{ns}' request-id='bench-{pid_tag}-{n}' level='busy'/>")
            .parse()
            .expect("xml")
    };

    // The smallest answer: is one slot free (level yes-no)? It separates the
    // agent's own cost from the server's cost of relaying a large reply.
    let slot_start = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string();
    let slot_end = slot_start.replace("T10:00:00Z", "T11:00:00Z");
    let yes_no = |_| -> Element {
        let n = next_request.fetch_add(1, Ordering::Relaxed);
        format!(
            "<freebusy xmlns='{ns}' request-id='bench-{pid_tag}-{n}' level='yes-no'>\
             <slot start='{slot_start}' end='{slot_end}'/></freebusy>"
        )
        .parse()
        .expect("xml")
    };

    // Warm up both paths, then measure each alone and with IN_FLIGHT outstanding.
    drive(&mut pinger, &ponger_jid, &ping, WARM_UP, IN_FLIGHT).await;
    drive(&mut alice, &bob_agent, &freebusy, WARM_UP, IN_FLIGHT).await;
    let raw = drive(&mut pinger, &ponger_jid, &ping, SEQUENTIAL, 1).await;
    let fb = drive(&mut alice, &bob_agent, &freebusy, SEQUENTIAL, 1).await;
    // Who spends the CPU in the bursts: the agent, the server, this client.
    let watched = [
        vec![pid],
        with_descendants(server.pid().unwrap_or(0)),
        vec![std::process::id()],
    ];
    let (raw_burst, raw_cpu) = cpu_per_request(
        &watched,
        drive(&mut pinger, &ponger_jid, &ping, CONCURRENT_TOTAL, IN_FLIGHT),
    )
    .await;
    let (fb_burst, fb_cpu) = cpu_per_request(
        &watched,
        drive(
            &mut alice,
            &bob_agent,
            &freebusy,
            CONCURRENT_TOTAL,
            IN_FLIGHT,
        ),
    )
    .await;
    let yn = drive(&mut alice, &bob_agent, &yes_no, SEQUENTIAL, 1).await;
    let (yn_burst, yn_cpu) = cpu_per_request(
        &watched,
        drive(&mut alice, &bob_agent, &yes_no, CONCURRENT_TOTAL, IN_FLIGHT),
    )
    .await;
    let busy_kib = rss_kib(pid);
    responder.abort();

    let (raw_bytes, fb_bytes, yn_bytes) = (raw.reply_bytes, fb.reply_bytes, yn.reply_bytes);
    let (raw, fb) = (&raw.latencies, &fb.latencies);
    let (raw_tput, fb_tput) = (raw_burst.per_second(), fb_burst.per_second());
    let median_ratio = pct(fb, 0.5).as_secs_f64() / pct(raw, 0.5).as_secs_f64();
    println!("calendar: 10,000 events (500 recurring series); policy: team, level busy, 14 days");
    println!(
        "(a) raw ping client↔client, sequential {SEQUENTIAL}: median {}  p99 {}",
        ms(pct(raw, 0.5)),
        ms(pct(raw, 0.99))
    );
    println!(
        "(b) free/busy client→agent, sequential {SEQUENTIAL}: median {}  p99 {}",
        ms(pct(fb, 0.5)),
        ms(pct(fb, 0.99))
    );
    println!(
        "(a) raw ping, {IN_FLIGHT} in flight, {CONCURRENT_TOTAL} requests: {raw_tput:.0} requests/s (median {}  p99 {})",
        ms(pct(&raw_burst.latencies, 0.5)),
        ms(pct(&raw_burst.latencies, 0.99))
    );
    println!(
        "(b) free/busy, {IN_FLIGHT} in flight, {CONCURRENT_TOTAL} requests: {fb_tput:.0} requests/s (median {}  p99 {})",
        ms(pct(&fb_burst.latencies, 0.5)),
        ms(pct(&fb_burst.latencies, 0.99))
    );
    println!(
        "(c) yes-no free/busy, sequential {SEQUENTIAL}: median {}  p99 {}; {IN_FLIGHT} in flight: {:.0} requests/s",
        ms(pct(&yn.latencies, 0.5)),
        ms(pct(&yn.latencies, 0.99)),
        yn_burst.per_second()
    );
    let cpu = |c: &[f64]| {
        format!(
            "agent {:.0} µs, server {:.0} µs, client {:.0} µs",
            c[0], c[1], c[2]
        )
    };
    println!(
        "CPU per request in the bursts: (a) ping: {} (the agent idles)",
        cpu(&raw_cpu)
    );
    println!(
        "CPU per request in the bursts: (b) free/busy: {}",
        cpu(&fb_cpu)
    );
    println!(
        "CPU per request in the bursts: (c) yes-no: {}",
        cpu(&yn_cpu)
    );
    println!("reply payload sizes: (a) {raw_bytes} B  (b) {fb_bytes} B  (c) {yn_bytes} B");
    println!("ratio (b)/(a) median: {median_ratio:.2} (target <= 1.5)");
    println!(
        "ratio (c)/(a) median: {:.2}; concurrent throughput (c)/(a): {:.0}%",
        pct(&yn.latencies, 0.5).as_secs_f64() / pct(raw, 0.5).as_secs_f64(),
        yn_burst.per_second() / raw_tput * 100.0
    );
    println!(
        "ratio (b)/(a) concurrent throughput: {:.0}% (target >= 50%)",
        fb_tput / raw_tput * 100.0
    );
    println!(
        "agent resident memory: idle {:.1} MB, after the runs {:.1} MB (target idle < 30 MB)",
        idle_kib as f64 / 1024.0,
        busy_kib as f64 / 1024.0
    );
    drop(agent);
}
