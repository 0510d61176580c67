//! `attache run`: the agent itself, in the foreground, on the XMPP network.
//!
//! Owns the process's life: logging, loading the policies and the calendar,
//! the first login, the shutdown signals. What the agent does with each
//! event is `crate::agent::runtime`'s; the XMPP details are `crate::xmpp`'s.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use clap::Args;
use tracing::{info, warn};

use chrono::Utc;

use super::Context;
use super::free::{slot_options, working_hours};
use crate::agent::runtime::{AgentRuntime, Services};
use crate::agent::{CalendarSettings, Gatekeeper, Live};
use crate::error::CliError;
use crate::negotiate::NS;
use crate::policy::PolicyWatcher;
use crate::xmpp::{Account, CommandList, Outgoing, Session, SessionOptions};

/// Run the agent in the foreground until Ctrl-C or SIGTERM: log in as the
/// [account] JID (password from ATTACHE_PASSWORD or password_file), answer
/// the network, and talk to the owner.
#[derive(Debug, Args)]
pub struct RunArgs {}

pub(crate) async fn run(ctx: &Context, data_dir: &Path, _args: RunArgs) -> Result<(), CliError> {
    let _logging = start_logging(&ctx.settings.log.level);
    let account = Account::from_settings(
        &ctx.settings.account,
        data_dir,
        std::env::var("ATTACHE_PASSWORD").ok(),
    )?;
    let owner = account.owner.clone();
    let owner_for_notes = owner.clone();

    // Everything the agent decides with, loaded before going online so a
    // broken policy or calendar stops it here, with the reason.
    let policies = PolicyWatcher::start(data_dir.join("policies"), ctx.tz)?;
    let live = Arc::new(Live::load(ctx.store.clone(), ctx.tz, Utc::now()).await?);
    let settings = CalendarSettings {
        owner_tz: ctx.tz,
        working_hours: working_hours(&ctx.settings)?,
        slot_options: slot_options(&ctx.settings, chrono::Duration::minutes(30)),
    };
    let gate = Arc::new(Gatekeeper::new(
        ctx.store.clone(),
        live.clone(),
        policies.subscribe(),
        settings,
    ));
    let mut runtime = AgentRuntime::new(Services {
        store: ctx.store.clone(),
        live,
        gate,
        owner,
        me: account.jid.clone(),
        retention: crate::config::Settings::duration(&ctx.settings.audit.retention),
    });
    let options = SessionOptions {
        claimed: vec![NS.to_string()],
        // XEP-0050 forms for meet, handoff, pending and free (issue 6).
        commands: Some(CommandList {
            owner: owner_for_notes.clone(),
            commands: crate::agent::adhoc::command_nodes(),
        }),
        owner: Some(owner_for_notes.clone()),
        ..SessionOptions::default()
    };
    let session = Session::connect(account, options).await?;
    let chores = runtime.spawn_chores(session.outbox());
    // A broken policy edit is logged and told to the owner, once per edit;
    // the last good policy stays in force.
    let mut rejections = policies.rejections();
    let outbox = session.outbox();
    let owner_jid = owner_for_notes;
    let notes = tokio::spawn(async move {
        while rejections.changed().await.is_ok() {
            let message = rejections.borrow().as_ref().map(|r| r.message.clone());
            if let Some(message) = message {
                warn!("policy edit rejected, the last good policy stays in force:\n{message}");
                let body = format!(
                    "Your policy edit has a mistake, so I keep using the previous policy until it is fixed:\n{message}"
                );
                let _ = outbox
                    .send(Outgoing::Chat {
                        to: owner_jid.clone().into(),
                        body,
                        thread: None,
                    })
                    .await;
            }
        }
    });
    let result = session.serve(runtime, shutdown_signal()).await;
    chores.abort();
    notes.abort();
    drop(policies);
    Ok(result?)
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
