//! `attache run`: the agent itself, in the foreground, on the XMPP network.
//!
//! Owns the process's life: logging, the first login, the shutdown signals,
//! and the [`FrontDesk`], which for now only greets the owner and turns
//! strangers away. The XMPP details are `crate::xmpp`'s; commands,
//! protocol and policies plug in at the [`Handler`] seam.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use tracing::{info, warn};

use super::Context;
use crate::error::CliError;
use crate::xmpp::{
    Account, BareJid, DefinedCondition, Handler, Incoming, Outbox, Outgoing, PresenceKind, Session,
    SessionOptions,
};

/// Run the agent in the foreground until Ctrl-C or SIGTERM: log in as the
/// [account] JID (password from ATTACHE_PASSWORD or password_file), answer
/// the network, and talk to the owner.
#[derive(Debug, Args)]
pub struct RunArgs {}

/// What the owner hears until the command parser is plugged in.
pub(crate) const PLACEHOLDER_REPLY: &str = "attache is running; commands arrive soon";

/// What anyone else hears, at most once an hour.
pub(crate) const REFUSAL: &str =
    "Sorry, I am a personal agent and only take commands from my owner.";

/// A stranger hears the refusal once per this period, then silence:
/// answering every message would make the agent a reflector.
const REFUSAL_PERIOD: Duration = Duration::from_secs(3600);

pub(crate) async fn run(ctx: &Context, data_dir: &Path, _args: RunArgs) -> Result<(), CliError> {
    let _logging = start_logging(&ctx.settings.log.level);
    let failed = |e: crate::xmpp::XmppError| CliError::Usage(e.to_string());
    let account = Account::from_settings(
        &ctx.settings.account,
        data_dir,
        std::env::var("ATTACHE_PASSWORD").ok(),
    )
    .map_err(failed)?;
    let desk = FrontDesk::new(account.owner.clone());
    let session = Session::connect(account, SessionOptions::default())
        .await
        .map_err(failed)?;
    session.serve(desk, shutdown_signal()).await.map_err(failed)
}

/// Logging for the life of the agent: `RUST_LOG` if set, else the
/// configured `log.level`. The binary installs a quiet default for one-shot
/// commands; this one replaces it on this thread, which with the binary's
/// single-threaded runtime means for every task of the agent.
fn start_logging(level: &str) -> tracing::subscriber::DefaultGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .finish();
    tracing::subscriber::set_default(subscriber)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM ({e}); stop the agent with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("interrupted; going offline"),
        () = terminate => info!("terminated; going offline"),
    }
}

/// The placeholder handler: the owner gets a sign of life, strangers a
/// polite refusal, and nothing is executed for anyone yet.
pub(crate) struct FrontDesk {
    owner: BareJid,
    /// The agent's own account, once online.
    me: Option<BareJid>,
    /// When each stranger was last refused.
    refused: HashMap<BareJid, Instant>,
}

impl FrontDesk {
    pub(crate) fn new(owner: BareJid) -> Self {
        Self {
            owner,
            me: None,
            refused: HashMap::new(),
        }
    }

    /// True when `jid` should hear the refusal now (and notes that it did).
    fn refuse_now(&mut self, jid: BareJid, now: Instant) -> bool {
        self.refused
            .retain(|_, at| now.duration_since(*at) < REFUSAL_PERIOD);
        if self.refused.contains_key(&jid) {
            return false;
        }
        self.refused.insert(jid, now);
        true
    }
}

impl Handler for FrontDesk {
    async fn handle(&mut self, event: Incoming, outbox: &Outbox) {
        let result = match event {
            Incoming::Online { jid, resumed } => {
                self.me = Some(jid.to_bare());
                if !resumed {
                    info!("online as {jid}; owner is {}", self.owner);
                }
                Ok(())
            }
            // The agent should know when its owner is around: ask to see
            // the owner's presence unless it does (or asked) already.
            Incoming::Roster(items) => {
                if items
                    .iter()
                    .any(|item| item.jid == self.owner && item.sees_or_asked())
                {
                    Ok(())
                } else {
                    info!("asking to see the owner's presence");
                    outbox
                        .send(Outgoing::Presence {
                            to: self.owner.clone(),
                            kind: PresenceKind::Subscribe,
                        })
                        .await
                }
            }
            Incoming::Offline => Ok(()),
            Incoming::Message {
                from, body, thread, ..
            } => {
                let sender = from.to_bare();
                if sender.node().is_none() || self.me.as_ref() == Some(&sender) {
                    // The server's notices and our own echoes: nobody to refuse.
                    Ok(())
                } else if sender == self.owner {
                    info!("message from the owner ({} chars)", body.chars().count());
                    outbox
                        .send(Outgoing::Chat {
                            to: from,
                            body: PLACEHOLDER_REPLY.into(),
                            thread,
                        })
                        .await
                } else if self.refuse_now(sender.clone(), Instant::now()) {
                    info!("refusing a message from {sender}: not the owner");
                    outbox
                        .send(Outgoing::Chat {
                            to: from,
                            body: REFUSAL.into(),
                            thread,
                        })
                        .await
                } else {
                    Ok(())
                }
            }
            Incoming::Presence {
                from,
                kind: PresenceKind::Subscribe,
            } => {
                let sender = from.to_bare();
                if sender == self.owner {
                    info!("the owner asked to see the agent's presence: approved");
                    approve_and_subscribe(outbox, sender).await
                } else {
                    // Peers' agents will need presence too; until policies
                    // decide, the request stays pending on the server.
                    info!("presence subscription request from {sender} left pending");
                    Ok(())
                }
            }
            Incoming::Presence { .. } => Ok(()),
            // Nothing is claimed yet, so this does not happen; if it does,
            // the sender still gets an answer.
            Incoming::Iq { from, id, .. } => {
                outbox
                    .send(Outgoing::IqError {
                        to: from,
                        id,
                        condition: DefinedCondition::FeatureNotImplemented,
                        text: None,
                    })
                    .await
            }
        };
        if let Err(e) = result {
            warn!("could not send: {e}");
        }
    }
}

async fn approve_and_subscribe(
    outbox: &Outbox,
    owner: BareJid,
) -> Result<(), crate::xmpp::XmppError> {
    outbox
        .send(Outgoing::Presence {
            to: owner.clone(),
            kind: PresenceKind::Subscribed,
        })
        .await?;
    outbox
        .send(Outgoing::Presence {
            to: owner,
            kind: PresenceKind::Subscribe,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_stranger_is_refused_once_an_hour() {
        let mut desk = FrontDesk::new(bare("owner@x"));
        let t0 = Instant::now();
        assert!(desk.refuse_now(bare("eve@y"), t0));
        assert!(!desk.refuse_now(bare("eve@y"), t0 + Duration::from_secs(60)));
        assert!(desk.refuse_now(bare("mallory@y"), t0 + Duration::from_secs(60)));
        assert!(desk.refuse_now(bare("eve@y"), t0 + REFUSAL_PERIOD));
    }
}
