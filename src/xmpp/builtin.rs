//! What the agent answers by itself, before any handler sees a stanza:
//! XEP-0199 ping, XEP-0030 disco#info (with the XEP-0115 caps node),
//! XEP-0092 version, RFC 6121 roster pushes, and an error for every other
//! IQ request nobody claimed — an IQ is never left unanswered.
//!
//! XEP-0050 ad-hoc commands are listed (disco#items on the commands node)
//! to the owner only, and their `<command/>` requests passed on typed; a
//! stranger sees an empty list and gets `forbidden`.
//!
//! Pure: IQ payload in, answer out. Owns the agent's identity and feature
//! list; knows nothing of connections, what a command does, or policies.

use std::collections::BTreeSet;

use jid::{BareJid, Jid};
use xmpp_parsers::caps::{self, Caps};
use xmpp_parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item,
};
use xmpp_parsers::hashes::Algo;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::version::VersionResult;

use super::commands::{COMMANDS_NS, CommandError, CommandList, CommandRequest, parse_request};
use super::events::IqKind;

/// The namespace of attache's own agent-to-agent protocol, advertised in
/// disco#info so peers can tell an attache agent from a person's client.
/// A placeholder until `docs/protocol.md` fixes it.
pub const FEATURE_NS: &str = crate::negotiate::NS;

/// The XEP-0115 node: a URI naming the software.
pub const CAPS_NODE: &str = "urn:x-attache:client";

/// XEP-0092 software name.
pub const SOFTWARE_NAME: &str = "attache";

/// The XEP-0030 identity: category `client`, type `bot` ("an automated
/// client that is not controlled by a human user" in the registry; the
/// `automation` category is for ad-hoc command nodes, not entities).
pub const IDENTITY_CATEGORY: &str = "client";
pub const IDENTITY_TYPE: &str = "bot";

/// What the agent is and which features it speaks; fixed for a session.
#[derive(Debug, Clone)]
pub struct Capabilities {
    info: DiscoInfoResult,
    /// Namespaces whose IQ requests go to the handler instead of an error.
    claimed: BTreeSet<String>,
    caps: Caps,
    /// XEP-0050 commands offered to the owner, if any.
    commands: Option<CommandList>,
}

/// The edge's decision for an incoming IQ request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Reply `type='result'` with this payload.
    Result(Option<Element>),
    /// Reply `type='error'`.
    Error(StanzaError),
    /// An ad-hoc command request from the owner, for the handler.
    Command(CommandRequest),
    /// A handler claimed this namespace: pass it on (the handler answers).
    Deliver,
}

impl Capabilities {
    /// The built-in features plus [`FEATURE_NS`] and every `claimed`
    /// namespace (which handlers must then answer).
    pub fn new<I, S>(claimed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::build(claimed.into_iter().map(Into::into).collect(), None)
    }

    /// The same, also offering XEP-0050 ad-hoc commands (listed and run
    /// for `list.owner` only; the feature itself is advertised to all, as
    /// disco#info cannot vary by asker without breaking the caps hash).
    pub fn with_commands(self, list: CommandList) -> Self {
        Self::build(self.claimed, Some(list))
    }

    fn build(claimed: BTreeSet<String>, commands: Option<CommandList>) -> Self {
        let mut features: BTreeSet<String> = [ns::DISCO_INFO, ns::CAPS, ns::PING, ns::VERSION]
            .into_iter()
            .chain([FEATURE_NS])
            .map(String::from)
            .collect();
        features.extend(claimed.iter().cloned());
        if commands.is_some() {
            features.insert(COMMANDS_NS.to_string());
        }
        let info = DiscoInfoResult {
            node: None,
            identities: vec![Identity::new(
                IDENTITY_CATEGORY,
                IDENTITY_TYPE,
                "en",
                SOFTWARE_NAME,
            )],
            features,
            extensions: vec![],
        };
        // SHA-1 is what XEP-0115 requires every entity to support; hashing
        // a known input with a known algorithm cannot fail.
        let hash = caps::hash_caps(&caps::compute_disco(&info), Algo::Sha_1)
            .unwrap_or_else(|_| xmpp_parsers::hashes::Hash::new(Algo::Sha_1, vec![]));
        let caps = Caps::new(CAPS_NODE, hash);
        Self {
            info,
            claimed,
            caps,
            commands,
        }
    }

    /// The `<c/>` element for presence (XEP-0115).
    pub fn caps(&self) -> Caps {
        self.caps.clone()
    }

    /// The disco#info features, e.g. for tests and `attache` diagnostics.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.info.features.iter().map(String::as_str)
    }

    /// `node#ver`, the disco node the caps hash stands for.
    fn caps_node(&self) -> String {
        caps::query_caps(self.caps.clone()).node.unwrap_or_default()
    }

    /// Decides what to do with an IQ request. `from_own_account` is true
    /// when the IQ has no `from` or comes from the agent's own bare JID
    /// (the only senders allowed to push roster changes).
    pub(crate) fn answer(&self, kind: IqKind, payload: &Element, from_own_account: bool) -> Answer {
        let ns = payload.ns();
        if self.claimed.contains(ns.as_str()) {
            return Answer::Deliver;
        }
        match (kind, ns.as_str(), payload.name()) {
            (IqKind::Get, ns::PING, "ping") => Answer::Result(None),
            (IqKind::Get, ns::DISCO_INFO, "query") => self.disco_info(payload),
            (IqKind::Get, ns::VERSION, "query") => Answer::Result(Some(
                VersionResult {
                    name: SOFTWARE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    // Which OS the agent runs on is nobody's business.
                    os: None,
                }
                .into(),
            )),
            // RFC 6121 §2.1.6: acknowledge the server's roster pushes, refuse
            // anyone else's.
            (IqKind::Set, ns::ROSTER, "query") if from_own_account => Answer::Result(None),
            (_, ns::PING | ns::DISCO_INFO | ns::VERSION, _) => Answer::Error(error(
                ErrorType::Cancel,
                DefinedCondition::FeatureNotImplemented,
            )),
            // RFC 6120 §8.4: a namespace we do not understand.
            _ => Answer::Error(error(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
            )),
        }
    }

    /// The answers about ad-hoc commands, which depend on who asks: the
    /// command list (disco#items on the commands node), a command's
    /// disco#info, and `<command/>` requests. `None`: not about commands
    /// (or none are offered), so [`Capabilities::answer`] decides. `me` is
    /// the agent's bound JID, which the listed items name.
    pub(crate) fn commands_answer(
        &self,
        kind: IqKind,
        payload: &Element,
        from: &BareJid,
        me: &Jid,
    ) -> Option<Answer> {
        let list = self.commands.as_ref()?;
        let owner = *from == list.owner;
        match (kind, payload.ns().as_str(), payload.name()) {
            (IqKind::Set, COMMANDS_NS, "command") => Some(if !owner {
                Answer::Error(CommandError::Forbidden.stanza_error())
            } else {
                match parse_request(payload) {
                    Ok(r) if list.has(&r.node) => Answer::Command(r),
                    Ok(_) => Answer::Error(CommandError::UnknownNode.stanza_error()),
                    Err(e) => Answer::Error(e.stanza_error()),
                }
            }),
            (IqKind::Get, ns::DISCO_ITEMS, "query") => {
                let query = DiscoItemsQuery::try_from(payload.clone()).ok()?;
                if query.node.as_deref() != Some(COMMANDS_NS) {
                    return None;
                }
                // A stranger learns nothing, not even that there are commands.
                let items = if owner {
                    list.commands
                        .iter()
                        .map(|c| Item {
                            jid: me.clone(),
                            node: Some(c.node.clone()),
                            name: Some(c.name.clone()),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Some(Answer::Result(Some(
                    DiscoItemsResult {
                        node: query.node,
                        items,
                        rsm: None,
                    }
                    .into(),
                )))
            }
            (IqKind::Get, ns::DISCO_INFO, "query") if owner => {
                let query = DiscoInfoQuery::try_from(payload.clone()).ok()?;
                let node = query.node.filter(|n| list.has(n))?;
                let command = list.commands.iter().find(|c| c.node == node)?;
                // XEP-0050 §2.3: a command node is an automation/command-node.
                Some(Answer::Result(Some(
                    DiscoInfoResult {
                        node: Some(node),
                        identities: vec![Identity::new(
                            "automation",
                            "command-node",
                            "en",
                            command.name.clone(),
                        )],
                        features: [COMMANDS_NS, ns::DATA_FORMS]
                            .into_iter()
                            .map(String::from)
                            .collect(),
                        extensions: vec![],
                    }
                    .into(),
                )))
            }
            _ => None,
        }
    }

    fn disco_info(&self, payload: &Element) -> Answer {
        let Ok(query) = DiscoInfoQuery::try_from(payload.clone()) else {
            return Answer::Error(error(ErrorType::Modify, DefinedCondition::BadRequest));
        };
        match query.node {
            None => Answer::Result(Some(self.info.clone().into())),
            // Peers that saw our caps ask about `node#ver`: the same answer.
            Some(node) if node == self.caps_node() => {
                let mut info = self.info.clone();
                info.node = Some(node);
                Answer::Result(Some(info.into()))
            }
            Some(_) => Answer::Error(error(ErrorType::Cancel, DefinedCondition::ItemNotFound)),
        }
    }
}

/// A stanza error without text: the condition says it all.
pub(crate) fn error(type_: ErrorType, condition: DefinedCondition) -> StanzaError {
    StanzaError {
        type_,
        by: None,
        defined_condition: condition,
        texts: Default::default(),
        other: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse()
            .unwrap_or_else(|e| panic!("bad test XML {xml}: {e}"))
    }

    fn condition(answer: Answer) -> Option<DefinedCondition> {
        match answer {
            Answer::Error(e) => Some(e.defined_condition),
            _ => None,
        }
    }

    #[test]
    fn a_ping_gets_an_empty_result() {
        let caps = Capabilities::new(Vec::<String>::new());
        let ping = el("<ping xmlns='urn:xmpp:ping'/>");
        assert_eq!(caps.answer(IqKind::Get, &ping, false), Answer::Result(None));
    }

    #[test]
    fn disco_info_names_a_bot_and_the_attache_feature_also_under_the_caps_node() {
        let caps = Capabilities::new(["urn:example:claimed"]);
        for query in [
            "<query xmlns='http://jabber.org/protocol/disco#info'/>".to_string(),
            format!(
                "<query xmlns='http://jabber.org/protocol/disco#info' node='{}'/>",
                caps.caps_node()
            ),
        ] {
            let Answer::Result(Some(result)) = caps.answer(IqKind::Get, &el(&query), false) else {
                panic!("no disco#info result for {query}");
            };
            let info = DiscoInfoResult::try_from(result).expect("a disco#info result");
            assert_eq!(info.identities[0].category, "client");
            assert_eq!(info.identities[0].type_, "bot");
            for feature in [FEATURE_NS, ns::PING, ns::VERSION, "urn:example:claimed"] {
                assert!(info.features.contains(feature), "{feature} in {info:?}");
            }
        }
        let other = el("<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>");
        assert_eq!(
            condition(caps.answer(IqKind::Get, &other, false)),
            Some(DefinedCondition::ItemNotFound)
        );
    }

    #[test]
    fn version_says_attache_and_not_the_os() {
        let caps = Capabilities::new(Vec::<String>::new());
        let q = el("<query xmlns='jabber:iq:version'/>");
        let Answer::Result(Some(result)) = caps.answer(IqKind::Get, &q, false) else {
            panic!("no version result");
        };
        let v = VersionResult::try_from(result).expect("a version result");
        assert_eq!(v.name, "attache");
        assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(v.os, None);
    }

    #[test]
    fn unknown_iqs_get_an_error_and_claimed_ones_go_to_the_handler() {
        let caps = Capabilities::new([FEATURE_NS]);
        let unknown = el("<query xmlns='urn:example:nobody'/>");
        for kind in [IqKind::Get, IqKind::Set] {
            assert_eq!(
                condition(caps.answer(kind, &unknown, false)),
                Some(DefinedCondition::ServiceUnavailable)
            );
        }
        let ping_set = el("<ping xmlns='urn:xmpp:ping'/>");
        assert_eq!(
            condition(caps.answer(IqKind::Set, &ping_set, false)),
            Some(DefinedCondition::FeatureNotImplemented)
        );
        let ours = el(&format!("<request xmlns='{FEATURE_NS}'/>"));
        assert_eq!(caps.answer(IqKind::Set, &ours, false), Answer::Deliver);
    }

    #[test]
    fn only_the_own_account_may_push_roster_changes() {
        let caps = Capabilities::new(Vec::<String>::new());
        let push = el("<query xmlns='jabber:iq:roster'><item jid='x@y'/></query>");
        assert_eq!(caps.answer(IqKind::Set, &push, true), Answer::Result(None));
        assert_eq!(
            condition(caps.answer(IqKind::Set, &push, false)),
            Some(DefinedCondition::ServiceUnavailable)
        );
    }

    #[test]
    fn only_the_owner_sees_and_runs_the_ad_hoc_commands() {
        use crate::xmpp::commands::CommandNode;
        let jid = |s: &str| BareJid::new(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let me = Jid::new("agent@x/attache").unwrap_or_else(|e| panic!("{e}"));
        let caps = Capabilities::new(Vec::<String>::new()).with_commands(CommandList {
            owner: jid("owner@x"),
            commands: vec![CommandNode {
                node: "free".into(),
                name: "Free".into(),
            }],
        });
        assert!(caps.features().any(|f| f == COMMANDS_NS));
        let list = el(&format!(
            "<query xmlns='http://jabber.org/protocol/disco#items' node='{COMMANDS_NS}'/>"
        ));
        let items = |from: &str| match caps.commands_answer(IqKind::Get, &list, &jid(from), &me) {
            Some(Answer::Result(Some(r))) => DiscoItemsResult::try_from(r)
                .map(|r| r.items.len())
                .unwrap_or_else(|e| panic!("{e}")),
            other => panic!("no items: {other:?}"),
        };
        assert_eq!(items("owner@x"), 1);
        assert_eq!(items("eve@x"), 0);
        let run = el(&format!("<command xmlns='{COMMANDS_NS}' node='free'/>"));
        assert!(matches!(
            caps.commands_answer(IqKind::Set, &run, &jid("owner@x"), &me),
            Some(Answer::Command(r)) if r.node == "free"
        ));
        let refused = caps.commands_answer(IqKind::Set, &run, &jid("eve@x"), &me);
        assert_eq!(
            refused.and_then(condition),
            Some(DefinedCondition::Forbidden)
        );
        let other = el(&format!("<command xmlns='{COMMANDS_NS}' node='agenda'/>"));
        assert_eq!(
            caps.commands_answer(IqKind::Set, &other, &jid("owner@x"), &me)
                .and_then(condition),
            Some(DefinedCondition::ItemNotFound)
        );
        // Without commands offered, the edge answers as before.
        let plain = Capabilities::new(Vec::<String>::new());
        assert_eq!(
            plain.commands_answer(IqKind::Set, &run, &jid("owner@x"), &me),
            None
        );
        assert!(!plain.features().any(|f| f == COMMANDS_NS));
    }

    #[test]
    fn the_caps_hash_is_stable_for_the_same_features() {
        let a = Capabilities::new([FEATURE_NS]);
        let b = Capabilities::new([FEATURE_NS]);
        assert_eq!(a.caps().ver, b.caps().ver);
        assert_ne!(
            a.caps().ver,
            Capabilities::new(["urn:example:more"]).caps().ver
        );
    }
}
