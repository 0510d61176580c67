//! `attache policy check|explain|test` as the owner uses them.

use crate::common::{Agent, fixture, repo};

/// An agent whose policy directory holds only `files`.
fn with_policies(files: &[std::path::PathBuf]) -> Agent {
    let a = Agent::init("Europe/Berlin");
    let dir = a.dir.join("policies");
    for old in std::fs::read_dir(&dir).expect("policies dir") {
        std::fs::remove_file(old.expect("entry").path()).expect("remove");
    }
    for f in files {
        std::fs::copy(f, dir.join(f.file_name().expect("name"))).expect("copy");
    }
    a
}

#[test]
fn each_broken_policy_file_gets_one_precise_message_with_line_and_column() {
    let cases = [
        (
            "typo-in-key.toml",
            "typo-in-key.toml:6:1: error: unknown key \"levle\"",
        ),
        (
            "bad-level.toml",
            "bad-level.toml:6:9: error: unknown level \"bussy\"",
        ),
        (
            "bad-time.toml",
            "bad-time.toml:7:9: error: `hours`: \"25:00\" is not a time of day",
        ),
        (
            "unknown-group.toml",
            "unknown-group.toml:6:7: error: rule \"team-sees-busy-times\" names group \"tema\"",
        ),
        (
            "toml-syntax-error.toml",
            "toml-syntax-error.toml:1:8: error: this is not valid TOML",
        ),
    ];
    for (file, want) in cases {
        let a = with_policies(&[fixture(&format!("policies/broken/{file}"))]);
        a.ok(&[
            "contacts",
            "add",
            "bob@example.org",
            "--name",
            "Bob",
            "--group",
            "team",
        ]);
        let err = a.fails(&["policy", "check"]);
        let diagnostics: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(": error: ") && l.contains(".toml:"))
            .collect();
        assert_eq!(
            diagnostics.len(),
            1,
            "{file}: exactly one message expected:\n{err}"
        );
        assert!(
            diagnostics[0].contains(want),
            "{file}: expected '{want}' in:\n{err}"
        );
    }
}

#[test]
fn the_shipped_default_and_examples_check_clean() {
    let a = Agent::init("Europe/Berlin");
    a.ok(&[
        "contacts",
        "add",
        "bob@example.org",
        "--name",
        "Bob",
        "--group",
        "team",
    ]);
    a.ok(&[
        "contacts",
        "add",
        "carol@example.org",
        "--name",
        "Carol",
        "--group",
        "family",
    ]);
    let out = a.ok(&["policy", "check"]);
    assert!(out.contains("Policies OK: 5 rules"), "{out}");

    let examples = repo().join("policies/examples");
    for entry in std::fs::read_dir(&examples).expect("examples") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".toml") || name.ends_with(".tests.toml") {
            continue;
        }
        let a = with_policies(std::slice::from_ref(&path));
        a.ok(&[
            "contacts",
            "add",
            "eve@example.org",
            "--name",
            "Eve",
            "--group",
            "team",
        ]);
        let out = a.ok(&["policy", "check"]);
        assert!(out.contains("Policies OK"), "{name}: {out}");
    }
}

#[test]
fn the_shipped_expectations_pass_against_the_default_policy() {
    let a = Agent::init("Europe/Berlin");
    a.ok(&[
        "contacts",
        "add",
        "bob@example.org",
        "--name",
        "Bob",
        "--group",
        "team",
    ]);
    a.ok(&[
        "contacts",
        "add",
        "carol@example.org",
        "--name",
        "Carol",
        "--group",
        "family",
    ]);
    a.ok(&["contacts", "add", "dana@example.org", "--name", "Dana"]);
    let tests = repo().join("policies/examples/default.tests.toml");
    let out = a.ok(&["policy", "test", tests.to_str().expect("path")]);
    assert!(out.contains(" passed, 0 failed"), "{out}");

    // A wrong expectation fails, names its line, and exits non-zero.
    let tmp = tempfile::tempdir().expect("tmp");
    let wrong = tmp.path().join("wrong.tests.toml");
    std::fs::write(&wrong, "[[case]]\nname = \"strangers see busy\"\npeer = \"eve@evil.example\"\naction = \"freebusy\"\nexpect = \"allow\"\n")
        .expect("write");
    let out = a.run(&["policy", "test", wrong.to_str().expect("path")]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  strangers see busy"), "{stdout}");
    assert!(stdout.contains("wrong.tests.toml:1"), "{stdout}");
}

#[test]
fn explain_names_the_deciding_rule_and_what_would_be_disclosed() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    a.ok(&[
        "contacts",
        "add",
        "bob@example.org",
        "--name",
        "Bob",
        "--agent",
        "bob.agent@example.org",
        "--group",
        "team",
    ]);
    let out = a.ok(&[
        "policy",
        "explain",
        "--peer",
        "bob.agent@example.org",
        "--at",
        "2026-01-05T07:00:00Z",
    ]);
    assert!(
        out.contains("is allowed: rule team-sees-busy-times"),
        "{out}"
    );
    assert!(out.contains("busy: 2 intervals"), "{out}");
    assert!(
        !out.contains("Weekly review"),
        "busy level never shows titles: {out}"
    );
    let out = a.ok(&["policy", "explain", "--peer", "eve@evil.example"]);
    assert!(out.contains("is denied"), "{out}");
    assert!(out.contains("No rule matches"), "{out}");
}
