//! People with agents on one real Prosody: the setup the network tests
//! share, so each test file states only what is special about its scene.
//!
//! A [`World`] owns the server and one temporary directory; each person
//! `who` gets the account `who@D` (password `who-pw`), the agent account
//! `who.agent@D` (password `who.agent-pw`) and a data directory
//! `TMP/who` initialised in [`ZONE`] by [`World::home`]. Dates are
//! "tomorrow in Berlin" ([`Tomorrow`]), so tests do not depend on the
//! weekday once [`World::work_every_day`] has widened the working hours.
//!
//! ```ignore
//! let w = World::start();
//! w.home("alice");
//! w.home("bob");
//! w.work_every_day("bob");
//! w.import_ics("bob", &calendar(&w.tomorrow.event("x@bob", "10:00", "11:00", &["SUMMARY:X"])));
//! w.add_contact("alice", "bob", &[]);
//! w.add_contact("bob", "alice", &["team"]);
//! let bob = w.spawn("bob");
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use xmpp_parsers::jid::Jid;

use super::prosody::Prosody;
use crate::xmpp_agent::{Agent, TestClient};

/// Every home's time zone: the dates and times tests write are Berlin's.
pub const ZONE: &str = "Europe/Berlin";

/// Runs `attache --data-dir DIR args…` with none of the caller's `ATTACHE_*`
/// variables leaking in, asserts it succeeded, and returns its stdout.
pub fn attache(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_attache"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("ATTACHE_DATA_DIR")
        .env_remove("ATTACHE_PASSWORD")
        .env_remove("ATTACHE_NOW")
        .output()
        .expect("run attache");
    assert!(
        out.status.success(),
        "attache {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A VCALENDAR holding `events` (from [`Tomorrow::event`]), for
/// [`World::import_ics`].
pub fn calendar(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{events}END:VCALENDAR\r\n")
}

/// Tomorrow in [`ZONE`], fixed when the world starts so that every part of a
/// test means the same day even across midnight.
pub struct Tomorrow {
    pub date: NaiveDate,
    /// As iCalendar and `busy` write dates: `YYYYMMDD`.
    pub ymd: String,
    /// As chat replies show it: "Wed 2 Dec".
    pub shown: String,
}

impl Tomorrow {
    /// The day after today, as it is now in Berlin.
    pub fn in_berlin() -> Tomorrow {
        let date =
            (Utc::now().with_timezone(&chrono_tz::Europe::Berlin) + Days::days(1)).date_naive();
        Tomorrow {
            date,
            ymd: date.format("%Y%m%d").to_string(),
            shown: date.format("%a %-d %b").to_string(),
        }
    }

    /// Tomorrow at `hhmm` Berlin time, as the protocol writes instants.
    pub fn at(&self, hhmm: &str) -> String {
        self.at_on(0, hhmm)
    }

    /// `days` after tomorrow at `hhmm` Berlin time, as the protocol writes instants.
    pub fn at_on(&self, days: u64, hhmm: &str) -> String {
        let time = NaiveTime::parse_from_str(hhmm, "%H:%M").expect("time");
        (self.date + chrono::Days::new(days))
            .and_time(time)
            .and_local_timezone(chrono_tz::Europe::Berlin)
            .single()
            .expect("an unambiguous local time")
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// A VEVENT tomorrow from `from` to `to` ("HH:MM", Berlin) with `props`
    /// (whole lines such as "SUMMARY:Doctor") after its times.
    pub fn event(&self, uid: &str, from: &str, to: &str, props: &[&str]) -> String {
        let ymd = &self.ymd;
        let (from, to) = (from.replace(':', ""), to.replace(':', ""));
        let mut event = format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n\
             DTSTART;TZID=Europe/Berlin:{ymd}T{from}00\r\nDTEND;TZID=Europe/Berlin:{ymd}T{to}00\r\n"
        );
        for prop in props {
            event.push_str(prop);
            event.push_str("\r\n");
        }
        event.push_str("END:VEVENT\r\n");
        event
    }
}

/// A running Prosody and the data directories of the people on it; both go
/// away when the world is dropped.
pub struct World {
    pub server: Prosody,
    tmp: tempfile::TempDir,
    /// Fixed at [`World::start`].
    pub tomorrow: Tomorrow,
}

impl World {
    /// A fresh server with nobody on it yet.
    pub fn start() -> World {
        World {
            server: Prosody::start(),
            tmp: tempfile::tempdir().expect("tmp"),
            tomorrow: Tomorrow::in_berlin(),
        }
    }

    /// `who`'s data directory (made by [`World::home`]).
    pub fn dir(&self, who: &str) -> PathBuf {
        self.tmp.path().join(who)
    }

    /// Registers `user` with the password `user-pw`: for people without a
    /// home, such as a stranger or an agent a test client plays.
    pub fn register(&self, user: &str) {
        self.server.register(user, &format!("{user}-pw"));
    }

    /// Registers `who` and `who.agent` and runs `attache init` for them in
    /// [`ZONE`] against this server; returns the data directory.
    pub fn home(&self, who: &str) -> PathBuf {
        let d = self.server.domain();
        self.register(who);
        self.register(&format!("{who}.agent"));
        let dir = self.dir(who);
        attache(
            &dir,
            &[
                "init",
                "--timezone",
                ZONE,
                "--jid",
                &format!("{who}.agent@{d}"),
                "--owner",
                &format!("{who}@{d}"),
                "--server",
                &self.server.server(),
            ],
        );
        dir
    }

    /// `who` works every day 08:00–20:00, so free/busy answers and
    /// meetings tomorrow do not depend on the weekday.
    pub fn work_every_day(&self, who: &str) {
        let config = self.dir(who).join("config.toml");
        let mut text = std::fs::read_to_string(&config).expect("config");
        text.push_str("\n[calendar.working_hours]\n");
        for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            text.push_str(&format!("{day} = \"08:00-20:00\"\n"));
        }
        std::fs::write(&config, text).expect("config");
    }

    /// Imports the iCalendar text `ics` (see [`calendar`]) into `who`'s
    /// calendar, through the file `TMP/who.ics`.
    pub fn import_ics(&self, who: &str, ics: &str) {
        let file = self.tmp.path().join(format!("{who}.ics"));
        std::fs::write(&file, ics).expect("ics");
        attache(&self.dir(who), &["import", file.to_str().expect("path")]);
    }

    /// `who` adds `other` (named `other` capitalised, with the agent
    /// `other.agent`) to the address book, in each of `groups`.
    pub fn add_contact(&self, who: &str, other: &str, groups: &[&str]) {
        let d = self.server.domain();
        let mut args = vec![
            "contacts".to_string(),
            "add".into(),
            format!("{other}@{d}"),
            "--name".into(),
            capitalized(other),
            "--agent".into(),
            format!("{other}.agent@{d}"),
        ];
        for g in groups {
            args.push("--group".into());
            args.push((*g).into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        attache(&self.dir(who), &args);
    }

    /// Starts `attache run` for `who` with debug logging into
    /// `who/agent.log`, appended so that a restarted agent's log follows
    /// the first one's.
    pub fn spawn(&self, who: &str) -> Agent {
        self.spawn_logging(who, Some("attache=debug,info"))
    }

    /// Like [`World::spawn`], but logging exactly as a user's agent does:
    /// no `RUST_LOG` and no `ATTACHE_LOG__LEVEL`, so the level is the
    /// configured default. For tests about what the default log holds.
    pub fn spawn_as_a_user_would(&self, who: &str) -> Agent {
        self.spawn_logging(who, None)
    }

    /// `attache run` for `who` with `RUST_LOG` set to `filter`, or unset.
    fn spawn_logging(&self, who: &str, filter: Option<&str>) -> Agent {
        let dir = self.dir(who);
        let log = dir.join("agent.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_attache"));
        command
            .arg("--data-dir")
            .arg(&dir)
            .arg("run")
            .env("ATTACHE_PASSWORD", format!("{who}.agent-pw"))
            .env_remove("ATTACHE_DATA_DIR")
            .env_remove("ATTACHE_NOW");
        match filter {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command
                .env_remove("RUST_LOG")
                .env_remove("ATTACHE_LOG__LEVEL"),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn attache run");
        Agent {
            child: Some(child),
            log,
        }
    }

    /// `who`'s owner logged in (as `who@D`) and talking to `who`'s running agent.
    pub async fn owner(&self, who: &str, agent: &Agent) -> TestClient {
        let mut c = TestClient::login(&self.server, &self.jid(who), &format!("{who}-pw")).await;
        c.wait_for_agent(&self.full(&format!("{who}.agent")), agent)
            .await;
        c
    }

    /// `user@D` as text, for logins and contact commands.
    pub fn jid(&self, user: &str) -> String {
        format!("{user}@{}", self.server.domain())
    }

    /// `user@D`: where owners send chat.
    pub fn bare(&self, user: &str) -> Jid {
        Jid::new(&self.jid(user)).expect("jid")
    }

    /// `user@D/attache`: the resource an agent binds, where IQs go.
    pub fn full(&self, user: &str) -> Jid {
        Jid::new(&format!("{}/attache", self.jid(user))).expect("jid")
    }
}

/// Sends `text` (if any) to `agent` and returns the first chat message to
/// `owner` that `wanted` accepts within `within`, skipping the others
/// (interim notes, earlier answers); panics with everything seen and the
/// agents' `logs`.
pub async fn expect_reply(
    owner: &mut TestClient,
    agent: &Jid,
    text: Option<&str>,
    wanted: impl Fn(&str) -> bool,
    within: Duration,
    logs: &[&Agent],
) -> String {
    if let Some(text) = text {
        owner.say(agent, text).await;
    }
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some((_, body)) = owner.next_message(Duration::from_secs(1)).await {
            if wanted(&body) {
                return body;
            }
            seen.push(body);
        }
    }
    let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
    panic!(
        "no wanted message after {text:?}; got {seen:?}\nagent logs:\n{}",
        logs.join("\n-----\n")
    )
}

/// "alice" → "Alice": the name a contact is added under.
fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
