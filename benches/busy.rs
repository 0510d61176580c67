//! The foundation benchmark: `cargo bench --bench busy`.
//!
//! On a generated calendar of 10,000 events (500 recurring series that
//! started years ago) it times, side by side in one run:
//! - the warm in-process 30-day busy query (occurrence index in memory, and
//!   through the SQLite store),
//! - the in-process 14-day free-slot query,
//! - a 14-day busy query plain and through the default policy's decision and
//!   disclosure cut-down (issue: within 1.5× of plain),
//! - the whole `attache busy` process as a user runs it (store imported),
//! - the same 30-day query through Python's `recurring-ical-events` on the
//!   exported file (needs `scripts/setup-test-env.sh`),
//!
//! and prints the ratios. Targets: in-process busy < 1 ms; the process
//! at least 50× faster than the Python package.

#[path = "support/calendar_gen.rs"]
mod calendar_gen;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use attache::calendar::availability::{SlotOptions, WorkingHours, free_slots};
use attache::calendar::index::OccurrenceIndex;
use attache::domain::Contact;
use attache::domain::TimeRange;
use attache::policy::{
    Action, CalendarView, Request, allowed_window, disclose, evaluate, parse_files,
};
use attache::store::{Store, database_path};
use chrono::Utc;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed());
    }
    median(samples)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_attache");
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let ics = tmp.path().join("calendar.ics");
    let now = Utc::now();
    let text = calendar_gen::generate(now, 9_500, 500, 42);
    std::fs::write(&ics, &text).expect("write calendar");
    let events = text.matches("BEGIN:VEVENT").count();
    println!(
        "calendar: {events} VEVENTs (500 recurring series), {} KiB",
        text.len() / 1024
    );

    let tz = "Europe/Berlin";
    run_ok(
        Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["init", "--timezone", tz]),
    );
    let t = Instant::now();
    run_ok(
        Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .arg("import")
            .arg(&ics),
    );
    println!("import (parse, store, index): {}", ms(t.elapsed()));

    let window = TimeRange {
        start: now,
        end: now + chrono::Duration::days(30),
    };
    let free_window = TimeRange {
        start: now,
        end: now + chrono::Duration::days(14),
    };
    let owner_tz: chrono_tz::Tz = tz.parse().expect("zone");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (store_busy, index_busy, index_build, free, occurrences, plain14, policy14) =
        rt.block_on(async {
            let store = Store::open(&database_path(&data))
                .await
                .expect("open store");
            let (_, occurrences) = store.event_counts().await.expect("counts");
            let store_busy = {
                let mut samples = Vec::new();
                for _ in 0..200 {
                    let t = Instant::now();
                    std::hint::black_box(store.busy(window, owner_tz).await.expect("busy"));
                    samples.push(t.elapsed());
                }
                median(samples)
            };
            let series = store.all_series().await.expect("series");
            let t = Instant::now();
            let horizon = TimeRange {
                start: now - chrono::Duration::days(90),
                end: now + chrono::Duration::days(400),
            };
            let index = OccurrenceIndex::new(series, horizon, owner_tz).expect("index");
            let index_build = t.elapsed();
            let index_busy = time(2_000, || index.busy(window).expect("busy"));
            let hours = WorkingHours::default();
            let opts = SlotOptions {
                duration: chrono::Duration::minutes(30),
                ..SlotOptions::default()
            };
            let free = time(1_000, || {
                let busy = index.busy(free_window).expect("busy");
                free_slots(&busy, free_window, &hours, owner_tz, &opts, now)
            });
            // Policy: the default set, Bob in `team` (level busy, 14 days, working
            // hours, 30-minute granularity), asking for everything it allows.
            let policy_text = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.toml"),
            )
            .expect("default policy");
            let set =
                parse_files(&[("default.toml".into(), policy_text)], owner_tz).expect("policy");
            let contacts = vec![Contact {
                name: "Bob".into(),
                jid: "bob@example.org".into(),
                agent_jid: Some("bob.agent@example.org".into()),
                groups: vec!["team".into()],
            }];
            let fortnight = TimeRange {
                start: now,
                end: now + chrono::Duration::days(14),
            };
            let request = Request::new("bob.agent@example.org", Action::Freebusy);
            let plain14 = time(2_000, || index.busy(fortnight).expect("busy"));
            let slot_opts = SlotOptions::default();
            let policy14 = time(2_000, || {
                let d = evaluate(&set, &contacts, &request, now, &|_| 0);
                let w = allowed_window(&d, &request, now).expect("allowed");
                let busy = index.busy(w).expect("busy");
                let view = CalendarView {
                    busy: &busy,
                    instances: &[],
                    working_hours: &hours,
                    owner_tz,
                    slot_options: slot_opts,
                };
                disclose(&d, &request, &view, now)
            });
            (
                store_busy,
                index_busy,
                index_build,
                free,
                occurrences,
                plain14,
                policy14,
            )
        });
    println!("occurrence rows materialized: {occurrences}");
    println!(
        "in-process 30-day busy, occurrence index in memory (median of 2000): {}",
        ms(index_busy)
    );
    println!(
        "in-process 30-day busy, through SQLite (median of 200):            {}",
        ms(store_busy)
    );
    println!(
        "in-process 14-day free slots, 30 min (median of 1000):              {}",
        ms(free)
    );
    println!(
        "in-memory index build from the store's series:                      {}",
        ms(index_build)
    );
    println!(
        "14-day busy, plain (median of 2000):                                {}",
        ms(plain14)
    );
    println!(
        "14-day busy via the default policy + cut-down (median of 2000):     {}",
        ms(policy14)
    );
    let policy_ratio = policy14.as_secs_f64() / plain14.as_secs_f64();
    println!("ratio policy / plain: {policy_ratio:.2}x (target <= 1.5x)");
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };

    let from = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (now + chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let process = time(21, || {
        run_ok(
            Command::new(bin)
                .arg("--data-dir")
                .arg(&data)
                .args(["busy", "--from", &from, "--to", &to, "--json"]),
        )
    });
    println!(
        "`attache busy --json` 30 days, whole process (median of 21):       {}",
        ms(process)
    );

    let exported = tmp.path().join("exported.ics");
    run_ok(
        Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["export", "--out"])
            .arg(&exported),
    );
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oracle.py");
    if !python.exists() {
        println!(
            "python oracle: not set up — run scripts/setup-test-env.sh, then cargo bench --bench busy again"
        );
        println!(
            "\nverdict: in-process busy {} the 1 ms target; policy {} the 1.5x target",
            verdict(index_busy < Duration::from_millis(1)),
            verdict(policy_ratio <= 1.5)
        );
        return;
    }
    let ours = run_ok(
        Command::new(bin)
            .arg("--data-dir")
            .arg(&data)
            .args(["busy", "--from", &from, "--to", &to, "--json"]),
    );
    let mut theirs = None;
    let py = time(3, || {
        let out = run_ok(
            Command::new(&python)
                .arg(&oracle)
                .arg(&exported)
                .args(["--from", &from, "--to", &to, "--tz", tz]),
        );
        theirs = Some(out.stdout);
    });
    println!(
        "recurring-ical-events, same window, whole process (median of 3):   {}",
        ms(py)
    );
    let same = {
        let a: serde_json::Value = serde_json::from_slice(&ours.stdout).expect("our json");
        let b: serde_json::Value =
            serde_json::from_slice(&theirs.unwrap_or_default()).expect("oracle json");
        a == b
    };
    println!("answers identical: {same}");
    let ratio = py.as_secs_f64() / process.as_secs_f64();
    println!("\nratio python / attache process: {ratio:.1}x (target >= 50x)");
    println!(
        "verdict: in-process busy {} the 1 ms target; process {} the 50x target; policy {} the 1.5x target",
        verdict(index_busy < Duration::from_millis(1)),
        verdict(ratio >= 50.0),
        verdict(policy_ratio <= 1.5)
    );
}
