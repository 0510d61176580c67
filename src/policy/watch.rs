//! Hot reload: watches the policy directory and swaps in a new policy set
//! when the files change — but only when the whole set loads. A broken edit
//! is reported and the last good set keeps deciding.
//!
//! Owns the file watcher (the `notify` crate) and nothing else: it loads
//! with [`load_dir`] and publishes through `tokio::sync::watch`, so readers
//! take the current set with one atomic load and never see a half-read set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::{PolicySet, load_dir};
use crate::error::{Diagnostic, PolicyError};

/// Editors write a file in several steps (truncate, write, rename); changes
/// closer together than this are read as one.
const SETTLE: Duration = Duration::from_millis(50);

/// A rejected edit: what was wrong, for the log and the owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub diagnostics: Vec<Diagnostic>,
    /// The error as one text (I/O problems have no diagnostics).
    pub message: String,
}

/// The live policy set of a running agent.
pub struct PolicyWatcher {
    current: watch::Receiver<Arc<PolicySet>>,
    rejected: watch::Receiver<Option<Arc<Rejection>>>,
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl PolicyWatcher {
    /// Loads `dir` (which must load cleanly: an agent does not start on a
    /// broken policy) and watches it from then on. Needs a tokio runtime.
    pub fn start(dir: PathBuf, owner_tz: Tz) -> Result<Self, PolicyError> {
        let initial = load_dir(&dir, owner_tz)?;
        let (set_tx, current) = watch::channel(Arc::new(initial));
        let (rej_tx, rejected) = watch::channel(None);
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Any event (or watcher error) means "look again"; the reload decides.
            let relevant = match &res {
                Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
                Err(_) => true,
            };
            if relevant {
                let _ = ev_tx.send(());
            }
        })
        .map_err(|e| watch_error(&dir, e))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&dir, e))?;
        let task = tokio::spawn(async move {
            while ev_rx.recv().await.is_some() {
                tokio::time::sleep(SETTLE).await;
                while ev_rx.try_recv().is_ok() {}
                match load_dir(&dir, owner_tz) {
                    Ok(set) => {
                        let changed = **set_tx.borrow() != set;
                        if changed {
                            tracing::info!(rules = set.rules.len(), "policy reloaded");
                            set_tx.send_replace(Arc::new(set));
                        }
                        rej_tx.send_if_modified(|r| r.take().is_some());
                    }
                    Err(e) => {
                        let rejection = Rejection {
                            diagnostics: match &e {
                                PolicyError::Invalid(d) => d.clone(),
                                PolicyError::Io { .. } => Vec::new(),
                            },
                            message: e.to_string(),
                        };
                        rej_tx.send_if_modified(|r| {
                            if r.as_deref() == Some(&rejection) {
                                return false;
                            }
                            tracing::warn!(error = %rejection.message, "policy edit rejected; the last good policy stays in force");
                            *r = Some(Arc::new(rejection.clone()));
                            true
                        });
                    }
                }
            }
        });
        Ok(Self {
            current,
            rejected,
            _watcher: watcher,
            task,
        })
    }

    /// The policy set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.borrow().clone()
    }

    /// Changes of the set in force.
    pub fn subscribe(&self) -> watch::Receiver<Arc<PolicySet>> {
        self.current.clone()
    }

    /// The latest rejected edit, `None` once the files load again.
    pub fn rejections(&self) -> watch::Receiver<Option<Arc<Rejection>>> {
        self.rejected.clone()
    }
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn watch_error(dir: &std::path::Path, e: notify::Error) -> PolicyError {
    PolicyError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(format!("cannot watch for policy edits: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::Utc;

    use super::*;
    use crate::domain::Contact;
    use crate::policy::{Action, Level, Outcome, Request, evaluate};

    const TEAM_BUSY: &str = r#"
[groups]
team = "colleagues"

[[rule]]
name = "team-busy"
who = "group:team"
action = "freebusy"
decision = "allow"
level = "busy"
"#;

    fn bob() -> Vec<Contact> {
        vec![Contact {
            name: "Bob".into(),
            jid: "bob@example.org".into(),
            agent_jid: Some("bob.agent@example.org".into()),
            groups: vec!["team".into()],
        }]
    }

    fn level_for_bob(set: &PolicySet) -> (Outcome, Level) {
        let d = evaluate(
            set,
            &bob(),
            &Request::new("bob.agent@example.org", Action::Freebusy),
            Utc::now(),
            &|_| 0,
        );
        (d.outcome, d.level)
    }

    /// Polls `f` until it holds or `limit` passes; returns how long it took.
    async fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if f() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    #[tokio::test]
    async fn a_valid_edit_takes_effect_within_a_second() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("team.toml"), TEAM_BUSY)?;
        let w = PolicyWatcher::start(dir.path().to_path_buf(), Tz::UTC)?;
        assert_eq!(level_for_bob(&w.current()), (Outcome::Allow, Level::Busy));

        std::fs::write(
            dir.path().join("team.toml"),
            TEAM_BUSY.replace("\"busy\"", "\"yes-no\""),
        )?;
        let took = within(Duration::from_secs(1), || {
            level_for_bob(&w.current()).1 == Level::YesNo
        })
        .await;
        assert!(took.is_some(), "the edit was not applied within a second");
        Ok(())
    }

    #[tokio::test]
    async fn a_broken_edit_is_rejected_and_the_old_set_still_decides()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("team.toml"), TEAM_BUSY)?;
        let w = PolicyWatcher::start(dir.path().to_path_buf(), Tz::UTC)?;
        let rejections = w.rejections();

        std::fs::write(
            dir.path().join("team.toml"),
            TEAM_BUSY.replace("\"busy\"", "\"bussy\""),
        )?;
        let took = within(Duration::from_secs(1), || rejections.borrow().is_some()).await;
        assert!(
            took.is_some(),
            "the broken edit was not reported within a second"
        );
        let message = rejections
            .borrow()
            .as_ref()
            .map(|r| r.message.clone())
            .unwrap_or_default();
        assert!(message.contains("team.toml:10:9"), "{message}");
        assert!(message.contains("bussy"), "{message}");
        // The last good set is still in force.
        assert_eq!(level_for_bob(&w.current()), (Outcome::Allow, Level::Busy));

        // Fixing the file clears the rejection and applies the fix.
        std::fs::write(
            dir.path().join("team.toml"),
            TEAM_BUSY.replace("\"busy\"", "\"slots\""),
        )?;
        let took = within(Duration::from_secs(1), || {
            rejections.borrow().is_none() && level_for_bob(&w.current()).1 == Level::Slots
        })
        .await;
        assert!(took.is_some(), "the fix was not applied within a second");
        Ok(())
    }

    #[tokio::test]
    async fn a_new_file_with_a_deny_is_picked_up() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("team.toml"), TEAM_BUSY)?;
        let w = PolicyWatcher::start(dir.path().to_path_buf(), Tz::UTC)?;
        std::fs::write(
            dir.path().join("block.toml"),
            "[[rule]]\nname = \"block-bob\"\nwho = \"contact:Bob\"\naction = \"any\"\ndecision = \"deny\"\n",
        )?;
        let took = within(Duration::from_secs(1), || {
            level_for_bob(&w.current()).0 == Outcome::Deny
        })
        .await;
        assert!(took.is_some());
        Ok(())
    }

    #[test]
    fn a_broken_policy_at_start_is_an_error_naming_the_place()
    -> Result<(), Box<dyn std::error::Error>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("team.toml"), "[[rule]\nname = 1\n")?;
        let err =
            rt.block_on(async { PolicyWatcher::start(dir.path().to_path_buf(), Tz::UTC).err() });
        assert!(err.is_some_and(|e| e.to_string().contains("team.toml:1:")));
        Ok(())
    }
}
