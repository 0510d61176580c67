//! Shared helpers: a fresh data directory, running the binary, fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod prosody;
pub mod world;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// A data directory initialised with `attache init --timezone tz`, removed on drop.
pub struct Agent {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Agent {
    pub fn init(tz: &str) -> Agent {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let agent = Agent { _tmp: tmp, dir };
        agent.ok(&["init", "--timezone", tz]);
        agent
    }

    /// Runs `attache --data-dir DIR args…`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("ATTACHE_DATA_DIR")
            .env_remove("ATTACHE_TIMEZONE")
            .output()
            .expect("run attache")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "attache {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "attache {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn import(&self, path: &Path) -> String {
        self.ok(&["import", path.to_str().expect("utf-8 path")])
    }

    /// `busy --json` as `(start, end, status)` triples.
    pub fn busy(&self, from: &str, to: &str) -> Vec<(String, String, String)> {
        let out = self.ok(&["busy", "--from", from, "--to", to, "--json"]);
        busy_triples(&out)
    }

    /// The full `export` output.
    pub fn export(&self) -> String {
        self.ok(&["export"])
    }
}

/// Reads the `busy --json` format into triples, checking its shape.
pub fn busy_triples(json: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {json}"))
        .iter()
        .map(|o| {
            let obj = o.as_object().expect("object");
            assert_eq!(obj.len(), 3, "exactly start, end, status: {o}");
            (
                obj["start"].as_str().expect("start").to_string(),
                obj["end"].as_str().expect("end").to_string(),
                obj["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

/// Shorthand for expected busy rows.
pub fn b(start: &str, end: &str) -> (String, String, String) {
    (start.into(), end.into(), "busy".into())
}

pub fn t(start: &str, end: &str) -> (String, String, String) {
    (start.into(), end.into(), "tentative".into())
}
