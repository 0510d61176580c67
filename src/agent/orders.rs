//! Meeting orders: a `meet` request resolved against the address book into
//! a [`MeetingOrder`] — the one way both the owner's chat and `attache meet`
//! do it — and orders the CLI leaves in the store for the running agent,
//! which [`pick_up`] hands to the [`Negotiator`].
//!
//! Owns the order's stored form and when an order is too old to start. Must
//! not negotiate (that is [`Negotiator`]) nor parse the request's words
//! (that is `chat`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::meetings::{MeetingOrder, Negotiator};
use super::owner::{find, unknown_contact};
use crate::chat::MeetRequest;
use crate::domain::{Contact, TimeRange};
use crate::error::StoreError;
use crate::negotiate::meeting::Attendee;
use crate::store::Store;

/// How long a meeting lasts when the request does not say.
pub const DEFAULT_DURATION: Duration = Duration::minutes(30);

/// An order older than this when the agent sees it is refused, not started:
/// the CLI that wrote it waits far less for a pickup and has given up (or
/// was killed), and a meeting nobody follows should not appear later.
pub const STALE_ORDER: Duration = Duration::seconds(30);

/// Turns a `meet …` request into a negotiation order, or says (in the
/// owner's words) what is wrong with it: unknown names, a quorum larger
/// than the meeting, a time already past.
pub fn meeting_order(
    m: &MeetRequest,
    contacts: &[Contact],
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<MeetingOrder, String> {
    let duration = m.duration.unwrap_or(DEFAULT_DURATION);
    let mut attendees: Vec<Attendee> = Vec::new();
    let mut problems = Vec::new();
    for (names, required) in [(&m.who, true), (&m.optional, false)] {
        for who in names {
            let group = who.trim().to_lowercase();
            let found: Vec<&Contact> = match find(contacts, who) {
                Some(c) => vec![c],
                None => contacts
                    .iter()
                    .filter(|c| c.groups.contains(&group))
                    .collect(),
            };
            if found.is_empty() {
                problems.push(unknown_contact(who, contacts));
            }
            for c in found {
                if attendees.iter().any(|a| a.person == c.jid) {
                    continue;
                }
                attendees.push(Attendee {
                    person: c.jid.clone(),
                    name: c.name.clone(),
                    agent: c.agent_jid.clone(),
                    required,
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    if attendees.is_empty() {
        return Err("Meet whom? e.g. meet bob for 30m tomorrow".into());
    }
    if let Some(q) = m.quorum
        && (q == 0 || q as usize > attendees.len())
    {
        return Err(format!(
            "A quorum of {q} needs at least {q} attendees; I have {}.",
            attendees.len()
        ));
    }
    let window = match &m.when {
        Some(w) => match w.slot(duration, tz).filter(|_| w.time.is_some()) {
            Some(slot) => slot,
            None => w.to_utc_range(tz),
        },
        None => TimeRange {
            start: now,
            end: now + Duration::days(14),
        },
    };
    let Some(window) =
        TimeRange::new(window.start.max(now), window.end).filter(|w| w.duration() >= duration)
    else {
        return Err("That time is already past; pick a later one.".into());
    };
    Ok(MeetingOrder {
        summary: m
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("Meeting")
            .to_string(),
        duration,
        window,
        attendees,
        quorum: m.quorum.map(|q| q as usize),
    })
}

/// A [`MeetingOrder`] as the store keeps it (durations in seconds).
#[derive(Debug, Serialize, Deserialize)]
struct OrderText {
    summary: String,
    duration_secs: i64,
    window: TimeRange,
    attendees: Vec<Attendee>,
    quorum: Option<usize>,
}

/// The text [`Store::add_meeting_order`] keeps for `order`.
pub fn order_json(order: &MeetingOrder) -> Result<String, String> {
    serde_json::to_string(&OrderText {
        summary: order.summary.clone(),
        duration_secs: order.duration.num_seconds(),
        window: order.window,
        attendees: order.attendees.clone(),
        quorum: order.quorum,
    })
    .map_err(|e| format!("could not write the order: {e}"))
}

/// Reads back what [`order_json`] wrote.
pub fn order_from_json(text: &str) -> Result<MeetingOrder, String> {
    let o: OrderText =
        serde_json::from_str(text).map_err(|e| format!("the stored order is unreadable: {e}"))?;
    if o.duration_secs <= 0 || o.attendees.is_empty() {
        return Err("the stored order names no attendees or no duration".into());
    }
    Ok(MeetingOrder {
        summary: o.summary,
        duration: Duration::seconds(o.duration_secs),
        window: o.window,
        attendees: o.attendees,
        quorum: o.quorum,
    })
}

/// Starts every order the CLI left since the last look: takes it (so that a
/// CLI giving up at the same moment cannot also reject it), starts the
/// negotiation and notes which meeting it became; an order that cannot
/// start is rejected with the reason, for the CLI to show.
pub async fn pick_up(
    store: &Store,
    negotiator: &Negotiator,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for stored in store.requested_meeting_orders().await? {
        let id = stored.id;
        if stored.created < now - STALE_ORDER {
            let why = "nobody picked the request up in time; run `attache meet` again";
            store.reject_meeting_order(id, why, now).await?;
            warn!(order = id, "refused a stale meeting order");
            continue;
        }
        if !store.take_meeting_order(id, now).await? {
            continue;
        }
        let order = match order_from_json(&stored.order_json) {
            Ok(o) => o,
            Err(why) => {
                store.reject_meeting_order(id, &why, now).await?;
                continue;
            }
        };
        match negotiator.start(order, now).await {
            Ok(short) => match store.meeting_by_short_id(short).await? {
                Some(m) => {
                    info!(order = id, meeting = %m.uid, "started a meeting ordered by the CLI");
                    store.set_meeting_order_uid(id, &m.uid, now).await?;
                }
                None => {
                    let why = format!("meeting {short} vanished as it started");
                    store.reject_meeting_order(id, &why, now).await?;
                }
            },
            Err(why) => {
                let why = format!("could not start negotiating: {why}");
                store.reject_meeting_order(id, &why, now).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::parse_at;

    const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-13T08:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn contact(name: &str, groups: &[&str]) -> Contact {
        let jid = format!("{}@example.org", name.to_lowercase());
        Contact {
            name: name.into(),
            agent_jid: Some(format!("{}.agent@example.org", name.to_lowercase())),
            jid,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn request(text: &str) -> MeetRequest {
        match parse_at(text, now(), TZ) {
            Ok(crate::chat::Command::Meet(m)) => m,
            other => panic!("not a meet request: {other:?}"),
        }
    }

    #[test]
    fn names_and_groups_become_attendees_once_each() {
        let contacts = [
            contact("Bob", &["team"]),
            contact("Carol", &["team"]),
            contact("Dave", &[]),
        ];
        let order = meeting_order(
            &request("meet bob, team for 45m tomorrow about Review optional dave quorum 2"),
            &contacts,
            now(),
            TZ,
        );
        let order = match order {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        let who: Vec<(&str, bool)> = order
            .attendees
            .iter()
            .map(|a| (a.name.as_str(), a.required))
            .collect();
        assert_eq!(who, [("Bob", true), ("Carol", true), ("Dave", false)]);
        assert_eq!(order.summary, "Review");
        assert_eq!(order.duration, Duration::minutes(45));
        assert_eq!(order.quorum, Some(2));
        // Tomorrow in Berlin, the whole day.
        assert_eq!(order.window.start.to_rfc3339(), "2026-01-13T23:00:00+00:00");
        assert_eq!(order.window.end.to_rfc3339(), "2026-01-14T23:00:00+00:00");
    }

    #[test]
    fn unknown_names_a_large_quorum_and_the_past_are_refused_in_words() {
        let contacts = [contact("Bob", &[])];
        let err = |text: &str| match meeting_order(&request(text), &contacts, now(), TZ) {
            Ok(o) => panic!("accepted {text}: {o:?}"),
            Err(e) => e,
        };
        assert!(err("meet zed for 30m").contains("I don't know 'zed'"));
        assert!(err("meet bob quorum 2").contains("A quorum of 2"));
        assert!(err("meet bob for 30m today 08:00").contains("already past"));
    }

    #[test]
    fn an_order_survives_the_store() {
        let contacts = [contact("Bob", &[])];
        let order = meeting_order(
            &request("meet bob for 1h30m tomorrow"),
            &contacts,
            now(),
            TZ,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = order_json(&order).unwrap_or_else(|e| panic!("{e}"));
        let back = order_from_json(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.summary, order.summary);
        assert_eq!(back.duration, Duration::minutes(90));
        assert_eq!(back.window, order.window);
        assert_eq!(back.attendees, order.attendees);
        assert_eq!(back.quorum, None);
        assert!(order_from_json("{").is_err());
        assert!(
            order_from_json(
                r#"{"summary":"x","duration_secs":0,"window":{"start":"2026-01-13T08:00:00Z","end":"2026-01-13T09:00:00Z"},"attendees":[],"quorum":null}"#
            )
            .is_err()
        );
    }
}
