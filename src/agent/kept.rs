//! Sending what is kept in the outbox until its peer takes it: meeting
//! notices (release, cancel, decline) and deferred `<reply>`s. Whoever
//! keeps an entry writes it to the outbox before the first sending; it is
//! sent again each time the peer's presence appears, and closed here once
//! the peer answered.

use tracing::{debug, warn};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza_error::StanzaError;

use super::runtime::{IQ_TIMEOUT, Services};
use crate::store::OutboxItem;
use crate::xmpp::{DefinedCondition, FullJid, IqAnswer, IqKind, Jid, Outbox};

/// How one sending of a kept entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The peer took it.
    Taken,
    /// The peer answered with an error: there was nothing (left) to undo,
    /// or it does not accept this from us. Nothing more to send either way.
    Refused,
    /// The peer is away: the entry waits in the outbox.
    Away,
    /// Neither sent nor kept (the store failed, or the entry is unreadable;
    /// logged).
    Lost,
    /// Answered, but another sending of the same entry was answered first
    /// (the peer's presence appeared meanwhile): that one reports.
    Duplicate,
}

/// Whether an error answer is the server's word that the peer is gone
/// (offline, unknown, unreachable), not the peer's own answer: what was
/// sent should wait for the peer's presence and go again.
pub(crate) fn peer_gone(e: &StanzaError) -> bool {
    matches!(
        e.defined_condition,
        DefinedCondition::ServiceUnavailable
            | DefinedCondition::RecipientUnavailable
            | DefinedCondition::RemoteServerNotFound
            | DefinedCondition::RemoteServerTimeout
    )
}

/// Sends `item` to `to` once. When `kept` (it is in the outbox), the
/// attempt is counted and the entry closed once the peer answered.
pub(crate) async fn send_kept(
    s: &Services,
    outbox: &Outbox,
    item: &OutboxItem,
    to: FullJid,
    kept: bool,
) -> Delivery {
    let Ok(payload) = item.payload.parse::<Element>() else {
        warn!(request = %item.request_id, "unreadable entry in the outbox");
        return Delivery::Lost;
    };
    if kept && let Err(e) = s.store.mark_attempt(&item.request_id).await {
        warn!("outbox: {e}");
    }
    match outbox
        .query(Some(Jid::from(to)), IqKind::Set, payload, IQ_TIMEOUT)
        .await
    {
        Ok(IqAnswer::Error(e)) if peer_gone(&e) => {
            debug!(request = %item.request_id, "{} is gone; the entry waits", item.peer);
            Delivery::Away
        }
        Ok(answer) => {
            let (fate, reply) = match answer {
                IqAnswer::Result(_) => (Delivery::Taken, "result"),
                IqAnswer::Error(_) => (Delivery::Refused, "error"),
            };
            if kept {
                match s.store.complete(&item.request_id, reply).await {
                    Ok(true) => {}
                    Ok(false) => return Delivery::Duplicate,
                    Err(e) => warn!("outbox: {e}"),
                }
            }
            fate
        }
        Err(e) => {
            debug!(request = %item.request_id, "{} did not answer: {e}", item.peer);
            Delivery::Away
        }
    }
}
