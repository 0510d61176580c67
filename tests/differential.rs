//! The differential test: `attache busy --json` against an independent
//! implementation, Python's `recurring-ical-events` (through
//! `scripts/oracle.py`), over every file in `tests/fixtures/ics/` and the
//! windows listed for it in `tests/fixtures/windows.json`.
//!
//! The oracle takes occurrence *starts* from recurring-ical-events and
//! applies attache's blocking rules itself; where the library disagrees
//! with RFC 5545 on ends and DST gaps, the oracle follows the RFC (see the
//! comment at the top of `scripts/oracle.py`). Any remaining difference must
//! be listed in `KNOWN_DIFFERENCES` with the RFC section that justifies
//! attache's answer; there are none today.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Agent, busy_triples, fixture, repo};

/// `(fixture file, reason with the RFC section)` for cases where attache and
/// the oracle may disagree because the oracle is wrong.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the differential test needs the Python oracle: run scripts/setup-test-env.sh \
         (creates .venv with recurring-ical-events; needs python3 and python3-venv: apt-get install python3-venv)"
    );
    venv
}

#[test]
fn attache_and_recurring_ical_events_agree_on_every_corpus_window() {
    let windows: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("windows.json")).expect("tests/fixtures/windows.json"),
    )
    .expect("windows.json is JSON");
    let cases: Vec<&Value> = match &windows {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => o["cases"].as_array().expect("cases").iter().collect(),
        _ => panic!("windows.json must be a list of cases"),
    };
    let corpus_dir = fixture("ics");
    let corpus: Vec<String> = std::fs::read_dir(&corpus_dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ics"))
        .collect();
    assert!(
        corpus.len() >= 40,
        "the corpus must hold at least 40 files, has {}",
        corpus.len()
    );

    // Resolve every case to an absolute file and check that every corpus file is queried.
    let mut resolved = Vec::new();
    for c in &cases {
        let file = c["file"].as_str().expect("file");
        let name = std::path::Path::new(file)
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let path = corpus_dir.join(&name);
        assert!(
            path.exists(),
            "windows.json names {file}, which is not in tests/fixtures/ics"
        );
        resolved.push(json!({
            "file": path.to_string_lossy(),
            "name": name,
            "from": c["from"], "to": c["to"], "tz": c["tz"],
        }));
    }
    for name in &corpus {
        assert!(
            resolved.iter().any(|c| c["name"] == name.as_str()),
            "{name} has no window in windows.json"
        );
    }

    // One Python run for the whole corpus: its start-up is the slow part.
    let tmp = tempfile::tempdir().expect("tmp");
    let batch = tmp.path().join("batch.json");
    std::fs::write(&batch, serde_json::to_string(&resolved).expect("json")).expect("write batch");
    let out = Command::new(python())
        .arg(repo().join("scripts/oracle.py"))
        .arg("--batch")
        .arg(&batch)
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<Value> = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    assert_eq!(expected.len(), resolved.len());

    // One data directory per (file, zone), one `busy` run per window.
    let mut agents: BTreeMap<(String, String), Agent> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (case, want) in resolved.iter().zip(&expected) {
        let name = case["name"].as_str().expect("name").to_string();
        let tz = case["tz"].as_str().expect("tz").to_string();
        let (from, to) = (
            case["from"].as_str().expect("from"),
            case["to"].as_str().expect("to"),
        );
        if let Some(err) = want.get("error") {
            failures.push(format!(
                "{name} [{from} .. {to}, {tz}]: the oracle could not compute it: {err}"
            ));
            continue;
        }
        let agent = agents.entry((name.clone(), tz.clone())).or_insert_with(|| {
            let a = Agent::init(&tz);
            a.import(&corpus_dir.join(&name));
            a
        });
        let got = agent.busy(from, to);
        let want = busy_triples(&want.to_string());
        compared += 1;
        if got != want && !KNOWN_DIFFERENCES.iter().any(|(f, _)| *f == name) {
            failures.push(format!(
                "{name} [{from} .. {to}, owner in {tz}]:\n  attache: {got:?}\n  oracle:  {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        resolved.len(),
        failures.join("\n")
    );
    eprintln!(
        "differential: {compared} windows over {} files agree",
        corpus.len()
    );
}
