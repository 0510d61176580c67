//! The typed values that cross the XMPP edge: [`Incoming`] events the
//! agent reacts to and [`Outgoing`] commands it gives, and their
//! translation from and to stanzas.
//!
//! Owns that translation only; deciding what to answer is the handler's
//! job (or [`super::builtin`]'s for ping, disco and version).

use jid::{BareJid, FullJid, Jid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::commands::{CommandRequest, CommandResponse};

/// Whether an IQ request reads (`get`) or changes (`set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqKind {
    Get,
    Set,
}

/// Presence as the agent deals with it: availability and RFC 6121
/// subscription management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceKind {
    Available,
    Unavailable,
    /// The sender asks to see our presence.
    Subscribe,
    /// The sender lets us see theirs.
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

/// Something that arrived for the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The session is online. `resumed: false` means a fresh stream: the
    /// server forgot our presence and any request in flight (presence has
    /// already been re-sent by the edge).
    Online {
        jid: FullJid,
        resumed: bool,
    },
    /// The connection was lost; the edge is reconnecting by itself.
    Offline,
    /// The agent's roster, as the server keeps it; sent after every fresh
    /// stream (the edge asks for it, as RFC 6121 clients must).
    Roster(Vec<RosterItem>),
    /// A chat or normal message with a body.
    Message {
        from: Jid,
        body: String,
        id: Option<String>,
        thread: Option<String>,
    },
    /// An IQ request in a namespace a handler claimed; the handler must
    /// answer it with [`Outgoing::IqResult`] or [`Outgoing::IqError`].
    Iq {
        from: Jid,
        id: String,
        kind: IqKind,
        payload: Element,
    },
    Presence {
        from: Jid,
        kind: PresenceKind,
    },
    /// An XEP-0050 ad-hoc command request from the owner (the edge refuses
    /// everyone else's); answer with [`Outgoing::CommandResult`] or a
    /// [`super::CommandError`].
    Command {
        from: Jid,
        id: String,
        request: CommandRequest,
    },
}

/// Something the agent sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A one-to-one chat message.
    Chat {
        to: Jid,
        body: String,
        thread: Option<String>,
    },
    /// Subscription management (`Subscribe`, `Subscribed`, …) or directed presence.
    Presence { to: BareJid, kind: PresenceKind },
    /// The answer to an [`Incoming::Iq`].
    IqResult {
        to: Jid,
        id: String,
        payload: Option<Element>,
    },
    /// The refusal of an [`Incoming::Iq`].
    IqError {
        to: Jid,
        id: String,
        condition: DefinedCondition,
        text: Option<String>,
        /// An application-specific condition (RFC 6120 §8.3.4), e.g. the
        /// protocol's `<rate-limited/>`.
        app: Option<Element>,
    },
    /// The answer to an [`Incoming::Command`].
    CommandResult {
        to: Jid,
        id: String,
        response: CommandResponse,
    },
}

/// Whose presence is shared, from the agent's side (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    None,
    /// The contact sees the agent's presence.
    From,
    /// The agent sees the contact's presence.
    To,
    Both,
}

/// One contact in the agent's server-side roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    pub jid: BareJid,
    pub subscription: Subscription,
    /// The agent asked to see the contact's presence and waits for an answer.
    pub asked: bool,
}

impl RosterItem {
    /// The agent sees the contact's presence, or has asked to.
    pub fn sees_or_asked(&self) -> bool {
        self.asked || matches!(self.subscription, Subscription::To | Subscription::Both)
    }
}

/// The answer to an IQ request the agent sent.
#[derive(Debug, Clone, PartialEq)]
pub enum IqAnswer {
    Result(Option<Element>),
    Error(StanzaError),
}

impl Outgoing {
    /// The stanza to put on the wire, with `id` if it needs a fresh one.
    pub(crate) fn into_stanza(self, id: String) -> Stanza {
        match self {
            Outgoing::Chat { to, body, thread } => {
                let mut message = Message::chat(Some(to)).with_body(Lang::new(), body);
                message.id = Some(Id(id));
                message.thread =
                    thread.map(|id| xmpp_parsers::message::Thread { parent: None, id });
                message.into()
            }
            Outgoing::Presence { to, kind } => {
                let mut presence = Presence::new(presence_type(kind)).with_to(to);
                presence.id = Some(id);
                presence.into()
            }
            Outgoing::IqResult { to, id, payload } => Iq::Result {
                from: None,
                to: Some(to),
                id,
                payload,
            }
            .into(),
            Outgoing::IqError {
                to,
                id,
                condition,
                text,
                app,
            } => {
                let type_ = error_type(&condition);
                let mut error = match text {
                    Some(text) => StanzaError::new(type_, condition, "en", text),
                    None => super::builtin::error(type_, condition),
                };
                error.other = app;
                Iq::Error {
                    from: None,
                    to: Some(to),
                    id,
                    error,
                    payload: None,
                }
                .into()
            }
            Outgoing::CommandResult { to, id, response } => Iq::Result {
                from: None,
                to: Some(to),
                id,
                payload: Some(super::commands::response_element(response)),
            }
            .into(),
        }
    }
}

/// RFC 6120 §8.3.3 pairs each condition with the usual error type.
fn error_type(condition: &DefinedCondition) -> ErrorType {
    use DefinedCondition as C;
    match condition {
        C::BadRequest | C::JidMalformed | C::NotAcceptable | C::PolicyViolation => {
            ErrorType::Modify
        }
        C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
            ErrorType::Auth
        }
        C::ResourceConstraint | C::UnexpectedRequest => ErrorType::Wait,
        _ => ErrorType::Cancel,
    }
}

fn presence_type(kind: PresenceKind) -> PresenceType {
    match kind {
        PresenceKind::Available => PresenceType::None,
        PresenceKind::Unavailable => PresenceType::Unavailable,
        PresenceKind::Subscribe => PresenceType::Subscribe,
        PresenceKind::Subscribed => PresenceType::Subscribed,
        PresenceKind::Unsubscribe => PresenceType::Unsubscribe,
        PresenceKind::Unsubscribed => PresenceType::Unsubscribed,
    }
}

/// Reads a roster result; `None` when it is not one.
pub(crate) fn roster_items(payload: Element) -> Option<Vec<RosterItem>> {
    use xmpp_parsers::roster::{Ask, Roster, Subscription as S};
    let roster = Roster::try_from(payload).ok()?;
    Some(
        roster
            .items
            .into_iter()
            .map(|item| RosterItem {
                jid: item.jid,
                subscription: match item.subscription {
                    S::From => Subscription::From,
                    S::To => Subscription::To,
                    S::Both => Subscription::Both,
                    S::None | S::Remove => Subscription::None,
                },
                asked: item.ask == Ask::Subscribe,
            })
            .collect(),
    )
}

/// A message worth a handler's attention: one-to-one, with a body. Error
/// messages are never answered (that is how bots loop forever).
pub(crate) fn message_event(message: Message, own: &BareJid) -> Option<Incoming> {
    if !matches!(message.type_, MessageType::Chat | MessageType::Normal) {
        return None;
    }
    let body = message.get_best_body_cloned(vec!["en"])?.1;
    Some(Incoming::Message {
        from: message.from.unwrap_or_else(|| own.clone().into()),
        body,
        id: message.id.map(|id| id.0),
        thread: message.thread.map(|t| t.id),
    })
}

/// Presence a handler may act on; probes and errors stay at the edge.
pub(crate) fn presence_event(presence: Presence) -> Option<Incoming> {
    let kind = match presence.type_ {
        PresenceType::None => PresenceKind::Available,
        PresenceType::Unavailable => PresenceKind::Unavailable,
        PresenceType::Subscribe => PresenceKind::Subscribe,
        PresenceType::Subscribed => PresenceKind::Subscribed,
        PresenceType::Unsubscribe => PresenceKind::Unsubscribe,
        PresenceType::Unsubscribed => PresenceKind::Unsubscribed,
        PresenceType::Probe | PresenceType::Error => return None,
    };
    Some(Incoming::Presence {
        from: presence.from?,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn chat_messages_with_a_body_become_events_and_errors_never_do() {
        let own = BareJid::new("agent@x").unwrap_or_else(|e| panic!("{e}"));
        let mut m = Message::chat(Some(jid("agent@x"))).with_body(Lang::new(), "agenda".into());
        m.from = Some(jid("owner@x/phone"));
        assert_eq!(
            message_event(m.clone(), &own),
            Some(Incoming::Message {
                from: jid("owner@x/phone"),
                body: "agenda".into(),
                id: None,
                thread: None,
            })
        );
        m.type_ = MessageType::Error;
        assert_eq!(message_event(m, &own), None);
        let typing = Message::chat(Some(jid("agent@x")));
        assert_eq!(message_event(typing, &own), None);
    }

    #[test]
    fn an_iq_error_carries_the_conventional_error_type() {
        let stanza = Outgoing::IqError {
            to: jid("peer@x/a"),
            id: "7".into(),
            condition: DefinedCondition::Forbidden,
            text: Some("not permitted".into()),
            app: None,
        }
        .into_stanza(String::new());
        let Stanza::Iq(Iq::Error { id, error, .. }) = stanza else {
            panic!("not an IQ error: {stanza:?}");
        };
        assert_eq!(id, "7");
        assert_eq!(error.type_, ErrorType::Auth);
        assert_eq!(
            error.texts.get("en").map(String::as_str),
            Some("not permitted")
        );
    }

    #[test]
    fn subscription_requests_are_typed() {
        let p = Presence::subscribe().with_from(jid("owner@x"));
        assert_eq!(
            presence_event(p),
            Some(Incoming::Presence {
                from: jid("owner@x"),
                kind: PresenceKind::Subscribe
            })
        );
        assert_eq!(
            presence_event(Presence::probe().with_from(jid("s@x"))),
            None
        );
    }
}
