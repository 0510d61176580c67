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
//! over 1,000) and with 50 requests in flight (throughput), and the agent's
//! resident memory. Targets: (b)/(a) median ≤ 1.5; concurrent throughput of
//! (b) ≥ 50% of (a); idle agent under 30 MB.

#[path = "../benches/support/calendar_gen.rs"]
mod calendar_gen;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_xmpp::{IqRequest, IqResponse};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;

use crate::common::prosody::Prosody;
use crate::xmpp_agent::{Agent, TestClient};

const SEQUENTIAL: usize = 1_000;
const CONCURRENT_TOTAL: usize = 2_000;
const IN_FLIGHT: usize = 50;

fn attache(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_PASSWORD")
        .output()
        .expect("attache");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Sequential round trips: sorted latencies.
async fn sequential(
    client: &mut TestClient,
    to: &Jid,
    make: &dyn Fn(usize) -> Element,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let started = Instant::now();
        match client.iq(Some(to), IqRequest::Get(make(i))).await {
            IqResponse::Result(_) => {}
            IqResponse::Error(e) => panic!("request {i} failed: {e:?}"),
        }
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// `CONCURRENT_TOTAL` requests with `IN_FLIGHT` outstanding: requests per second.
async fn concurrent(client: &mut TestClient, to: &Jid, make: &dyn Fn(usize) -> Element) -> f64 {
    let started = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let (mut sent, mut done) = (0, 0);
    while done < CONCURRENT_TOTAL {
        while inflight.len() < IN_FLIGHT && sent < CONCURRENT_TOTAL {
            inflight.push(
                client
                    .client
                    .send_iq(Some(to.clone()), IqRequest::Get(make(sent)))
                    .await,
            );
            sent += 1;
        }
        tokio::select! {
            Some(answer) = inflight.next() => {
                match answer {
                    Ok(IqResponse::Result(_)) => done += 1,
                    other => panic!("concurrent request failed: {other:?}"),
                }
            }
            _ = client.client.next() => {}
        }
    }
    CONCURRENT_TOTAL as f64 / started.elapsed().as_secs_f64()
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
    // The default team rule, with a rate high enough for the benchmark.
    let policy = bob.join("policies/default.toml");
    let text = std::fs::read_to_string(&policy)
        .expect("policy")
        .replace("rate = \"20/hour\"", "rate = \"1000000/hour\"");
    std::fs::write(&policy, text).expect("policy");

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
    let freebusy = move |i: usize| -> Element {
        format!(
            "<freebusy xmlns='{ns}' request-id='bench-{i}-{}' level='busy'/>",
            std::process::id()
        )
        .parse()
        .expect("xml")
    };
    let freebusy_concurrent = move |i: usize| -> Element {
        format!(
            "<freebusy xmlns='{ns}' request-id='burst-{i}-{}' level='busy'/>",
            std::process::id()
        )
        .parse()
        .expect("xml")
    };

    // Warm up both paths.
    sequential(&mut pinger, &ponger_jid, &ping).await;
    let raw = sequential(&mut pinger, &ponger_jid, &ping).await;
    let fb = sequential(&mut alice, &bob_agent, &freebusy).await;
    // The concurrent phase (50 in flight on one tokio-xmpp client) stalls:
    // `send_iq` waits on a send queue that only drains while the stream is
    // polled. Until it is driven from one task, report sequential figures only.
    let (raw_tput, fb_tput) = if std::env::var_os("ATTACHE_BENCH_CONCURRENT").is_some() {
        let raw_tput = concurrent(&mut pinger, &ponger_jid, &ping).await;
        let fb_tput = concurrent(&mut alice, &bob_agent, &freebusy_concurrent).await;
        (raw_tput, fb_tput)
    } else {
        (f64::NAN, f64::NAN)
    };
    let busy_kib = rss_kib(pid);
    responder.abort();

    let median_ratio = pct(&fb, 0.5).as_secs_f64() / pct(&raw, 0.5).as_secs_f64();
    let tput_ratio = fb_tput / raw_tput;
    println!("calendar: 10,000 events (500 recurring series); policy: team, level busy, 14 days");
    println!(
        "(a) raw ping client↔client, sequential {SEQUENTIAL}: median {}  p99 {}",
        ms(pct(&raw, 0.5)),
        ms(pct(&raw, 0.99))
    );
    println!(
        "(b) free/busy client→agent, sequential {SEQUENTIAL}: median {}  p99 {}",
        ms(pct(&fb, 0.5)),
        ms(pct(&fb, 0.99))
    );
    if raw_tput.is_finite() {
        println!("(a) raw ping, {IN_FLIGHT} in flight: {raw_tput:.0} requests/s");
        println!("(b) free/busy, {IN_FLIGHT} in flight: {fb_tput:.0} requests/s");
    } else {
        println!(
            "concurrent throughput: not measured (set ATTACHE_BENCH_CONCURRENT; see the comment in the code)"
        );
    }
    println!("ratio (b)/(a) median: {median_ratio:.2} (target <= 1.5)");
    if tput_ratio.is_finite() {
        println!(
            "ratio (b)/(a) concurrent throughput: {:.0}% (target >= 50%)",
            tput_ratio * 100.0
        );
    }
    println!(
        "agent resident memory: idle {:.1} MB, after the runs {:.1} MB (target idle < 30 MB)",
        idle_kib as f64 / 1024.0,
        busy_kib as f64 / 1024.0
    );
    drop(agent);
}
