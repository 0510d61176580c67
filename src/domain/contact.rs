//! Address-book entries: a person, their agent, their groups.

use serde::{Deserialize, Serialize};

/// A person the owner knows. `jid` is the person's own bare JID; `agent_jid`
/// the bare JID of their attache agent, if they run one. A peer is
/// recognised by either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub jid: String,
    pub agent_jid: Option<String>,
    pub groups: Vec<String>,
}

impl Contact {
    /// Whether `bare_jid` is this person or their agent (JIDs compare case-insensitively
    /// in their local and domain parts, which is how they are stored).
    pub fn is_known_as(&self, bare_jid: &str) -> bool {
        self.jid.eq_ignore_ascii_case(bare_jid)
            || self
                .agent_jid
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(bare_jid))
    }
}
