//! Meetings under negotiation or booked (iTIP REQUEST/REPLY/CANCEL), the
//! holds that keep their time free meanwhile, and task handoff states.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time::TimeRange;

/// Which side of a meeting the owner is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingRole {
    Organizer,
    Attendee,
}

/// Where a meeting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingStatus {
    Negotiating,
    Booked,
    Cancelled,
    /// The organizer gave up: no slot suited everyone required.
    Failed,
}

/// An attendee's answer (iCalendar PARTSTAT, the values meetings use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PartStat {
    #[default]
    #[serde(rename = "NEEDS-ACTION")]
    NeedsAction,
    #[serde(rename = "TENTATIVE")]
    Tentative,
    #[serde(rename = "ACCEPTED")]
    Accepted,
    #[serde(rename = "DECLINED")]
    Declined,
}

impl PartStat {
    /// The iCalendar spelling.
    pub fn as_ical(self) -> &'static str {
        match self {
            PartStat::NeedsAction => "NEEDS-ACTION",
            PartStat::Tentative => "TENTATIVE",
            PartStat::Accepted => "ACCEPTED",
            PartStat::Declined => "DECLINED",
        }
    }

    /// Reads the iCalendar spelling (any case).
    pub fn from_ical(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NEEDS-ACTION" => Some(PartStat::NeedsAction),
            "TENTATIVE" => Some(PartStat::Tentative),
            "ACCEPTED" => Some(PartStat::Accepted),
            "DECLINED" => Some(PartStat::Declined),
            _ => None,
        }
    }
}

/// Someone invited to a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// The person's bare JID, or a `mailto:` address for people reached by mail.
    pub person: String,
    /// Their agent's bare JID; `None` for people without an agent (§15).
    pub agent: Option<String>,
    pub name: Option<String>,
    /// REQ-PARTICIPANT (true) or OPT-PARTICIPANT.
    pub required: bool,
    pub partstat: PartStat,
}

impl Attendee {
    /// The calendar address (RFC 5545 CAL-ADDRESS) written into ATTENDEE and
    /// ORGANIZER: `mailto:` addresses as given, JIDs as `xmpp:` URIs.
    pub fn address(person: &str) -> String {
        let lower = person.to_ascii_lowercase();
        if lower.starts_with("mailto:") || lower.starts_with("xmpp:") {
            person.to_owned()
        } else {
            format!("xmpp:{person}")
        }
    }
}

/// A meeting as the store keeps it (the booked time itself is an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meeting {
    pub uid: String,
    /// The small number the owner types in chat (`cancel 3`).
    pub short_id: i64,
    pub role: MeetingRole,
    /// The organizer agent's bare JID (our own for [`MeetingRole::Organizer`]).
    pub organizer: String,
    /// The organizer's owner as a calendar address (ORGANIZER), when known.
    pub organizer_address: Option<String>,
    pub summary: String,
    pub sequence: i64,
    /// The agreed time; `None` while negotiating.
    pub range: Option<TimeRange>,
    pub status: MeetingStatus,
    /// The organizer's negotiation state machine, serialized by its owner module.
    pub state_json: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Time kept free for a meeting while it is negotiated. Blocks other holds
/// and bookings (and shows as BUSY-TENTATIVE) until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The meeting's iCalendar UID.
    pub meeting: String,
    /// The organizer agent's bare JID; with `meeting`, the hold's identity.
    pub organizer: String,
    /// The organizer's owner as a calendar address, for ORGANIZER at booking.
    pub organizer_address: Option<String>,
    pub sequence: i64,
    pub range: TimeRange,
    pub expires: DateTime<Utc>,
    pub summary: Option<String>,
    pub attendees: Vec<Attendee>,
}

impl Hold {
    /// Whether the hold still blocks time at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires > now
    }
}

/// A task's state as its assignee reports it (iTIP PARTSTAT for VTODO, plus
/// CANCELLED when the assignee's owner dropped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskPartStat {
    #[serde(rename = "NEEDS-ACTION")]
    NeedsAction,
    #[serde(rename = "ACCEPTED")]
    Accepted,
    #[serde(rename = "DECLINED")]
    Declined,
    #[serde(rename = "IN-PROCESS")]
    InProcess,
    #[serde(rename = "COMPLETED")]
    Completed,
    #[serde(rename = "DELEGATED")]
    Delegated,
    #[serde(rename = "CANCELLED")]
    Cancelled,
}

impl TaskPartStat {
    /// The iCalendar spelling.
    pub fn as_ical(self) -> &'static str {
        match self {
            TaskPartStat::NeedsAction => "NEEDS-ACTION",
            TaskPartStat::Accepted => "ACCEPTED",
            TaskPartStat::Declined => "DECLINED",
            TaskPartStat::InProcess => "IN-PROCESS",
            TaskPartStat::Completed => "COMPLETED",
            TaskPartStat::Delegated => "DELEGATED",
            TaskPartStat::Cancelled => "CANCELLED",
        }
    }

    /// Reads the iCalendar spelling (any case).
    pub fn from_ical(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NEEDS-ACTION" => Some(TaskPartStat::NeedsAction),
            "ACCEPTED" => Some(TaskPartStat::Accepted),
            "DECLINED" => Some(TaskPartStat::Declined),
            "IN-PROCESS" => Some(TaskPartStat::InProcess),
            "COMPLETED" => Some(TaskPartStat::Completed),
            "DELEGATED" => Some(TaskPartStat::Delegated),
            "CANCELLED" => Some(TaskPartStat::Cancelled),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partstats_read_back_what_they_write() {
        for p in [
            PartStat::NeedsAction,
            PartStat::Tentative,
            PartStat::Accepted,
            PartStat::Declined,
        ] {
            assert_eq!(PartStat::from_ical(p.as_ical()), Some(p));
        }
        for p in [
            TaskPartStat::NeedsAction,
            TaskPartStat::Accepted,
            TaskPartStat::Declined,
            TaskPartStat::InProcess,
            TaskPartStat::Completed,
            TaskPartStat::Delegated,
            TaskPartStat::Cancelled,
        ] {
            assert_eq!(TaskPartStat::from_ical(p.as_ical()), Some(p));
        }
        assert_eq!(PartStat::from_ical("maybe"), None);
    }

    #[test]
    fn jids_become_xmpp_uris_and_mail_addresses_stay() {
        assert_eq!(Attendee::address("bob@example.org"), "xmpp:bob@example.org");
        assert_eq!(
            Attendee::address("mailto:c@example.org"),
            "mailto:c@example.org"
        );
    }
}
