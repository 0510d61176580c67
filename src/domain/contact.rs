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

/// Reads a bare JID (`name@example.org`) as typed by a person: trimmed,
/// an `xmpp:` prefix dropped, normalized (lower-cased local and domain
/// parts). A full JID (with `/resource`) is refused: contacts are people, not
/// devices.
pub fn parse_bare_jid(text: &str) -> Result<String, String> {
    let t = text.trim();
    let t = t.strip_prefix("xmpp:").unwrap_or(t);
    let jid = jid::Jid::new(t)
        .map_err(|e| format!("'{text}' is not a JID ({e}); write e.g. bob@example.org"))?;
    if jid.resource().is_some() {
        return Err(format!(
            "'{text}' names one device (the part after '/'); give the bare JID {}",
            jid.to_bare()
        ));
    }
    Ok(jid.to_bare().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_are_normalized_and_full_jids_refused() {
        assert_eq!(
            parse_bare_jid(" xmpp:Bob@Example.ORG "),
            Ok("bob@example.org".into())
        );
        assert!(
            parse_bare_jid("bob@example.org/phone").is_err_and(|e| e.contains("bob@example.org"))
        );
        assert!(parse_bare_jid("").is_err());
        assert!(parse_bare_jid("a@b@c").is_err());
    }
}
