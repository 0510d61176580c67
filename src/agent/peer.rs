//! Answering another agent: one request in (the IQ payload and the sender's
//! bare JID as the server stamped it), one reply out — a result element or a
//! protocol error — with the replay rules of docs/protocol.md §7: a repeated
//! request gets the remembered reply and is neither decided nor logged again.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xmpp_parsers::minidom::Element;

use super::Gatekeeper;
use crate::error::AgentError;
use crate::negotiate::wire::{
    FreebusyReply, PeerRequest, ProtocolError, RequestId, parse_request, pending_element,
    reply_element, serialized_len,
};
use crate::policy::{Action, Outcome, Request};
use crate::store::ReplayRecord;

/// How long a reply is remembered for replay (the protocol promises 24 h).
pub const REPLAY_MEMORY: Duration = Duration::hours(24);

/// What the requester is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerReply {
    Result(Element),
    /// An empty IQ result: received, nothing to say.
    Ack,
    Error(ProtocolError),
}

/// The remembered form of a reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Stored {
    Result { xml: String },
    NotPermitted,
    RateLimited { retry_after: i64 },
}

pub(crate) fn digest(payload: &Element) -> String {
    let mut buf = Vec::new();
    // A payload that cannot be written again cannot be compared either;
    // its digest is then that of nothing, which only ever matches itself.
    let _ = payload.write_to(&mut buf);
    Sha256::digest(&buf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Answers one request from `peer` (a bare JID) at `now`.
pub async fn answer_peer(
    gate: &Gatekeeper,
    peer: &str,
    payload: &Element,
    now: DateTime<Utc>,
) -> Result<PeerReply, AgentError> {
    let request = match parse_request(payload) {
        Ok(r) => r,
        Err(e) => return Ok(PeerReply::Error(e.into())),
    };
    let id = request.request_id().clone();
    let digest = digest(payload);
    let mut turn = gate.turn().await;
    if let Some((seen_digest, stored)) = turn.recall(peer, id.as_str(), now).await? {
        if seen_digest != digest {
            return Ok(PeerReply::Error(ProtocolError::RequestIdReused));
        }
        if let Some(reply) = replay(&stored) {
            return Ok(reply);
        }
    }
    let PeerRequest::Freebusy(q) = &request;
    let policy_request = Request {
        peer: peer.to_string(),
        action: Action::Freebusy,
        window: q.window,
        duration: q.duration,
        proposed: q.slots.clone(),
        requested_level: q.level,
    };
    let decided = turn.decide(&policy_request, now).await?;
    let (reply, stored) = match decided.decision.outcome {
        Outcome::Allow => {
            let reply = FreebusyReply::from_disclosure(
                id.clone(),
                decided.decision.level,
                &decided.disclosure,
            );
            let el = reply_element(&reply);
            let xml = element_text(&el);
            (PeerReply::Result(el), Stored::Result { xml })
        }
        Outcome::Ask { expires } => {
            let el = pending_element(&id, expires);
            let xml = element_text(&el);
            (PeerReply::Result(el), Stored::Result { xml })
        }
        Outcome::Deny => (
            PeerReply::Error(ProtocolError::NotPermitted),
            Stored::NotPermitted,
        ),
        Outcome::RateLimited => {
            let period = decided
                .decision
                .limits
                .as_ref()
                .map(|l| l.rate.period)
                .unwrap_or(Duration::hours(1));
            (
                PeerReply::Error(ProtocolError::RateLimited {
                    retry_after: period,
                }),
                Stored::RateLimited {
                    retry_after: period.num_seconds(),
                },
            )
        }
    };
    // A rate-limited request is not remembered: retried later, it deserves
    // a fresh look. Everything else is remembered in the same write that
    // logs the decision.
    let json = match &stored {
        Stored::RateLimited { .. } => None,
        other => serde_json::to_string(other).ok(),
    };
    let remember = json.as_deref().map(|reply| ReplayRecord {
        peer,
        request_id: id.as_str(),
        digest: &digest,
        reply,
    });
    turn.record(decided, remember).await?;
    Ok(reply)
}

pub(crate) fn replay(stored: &str) -> Option<PeerReply> {
    match serde_json::from_str::<Stored>(stored).ok()? {
        Stored::Result { xml } => xml.parse::<Element>().ok().map(PeerReply::Result),
        Stored::NotPermitted => Some(PeerReply::Error(ProtocolError::NotPermitted)),
        Stored::RateLimited { retry_after } => Some(PeerReply::Error(ProtocolError::RateLimited {
            retry_after: Duration::seconds(retry_after),
        })),
    }
}

pub(crate) fn element_text(el: &Element) -> String {
    let mut buf = Vec::with_capacity(serialized_len(el).min(1 << 16));
    let _ = el.write_to(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A fresh id for a request of ours.
pub fn new_request_id(now: DateTime<Utc>) -> RequestId {
    RequestId::generate(now)
}
