//! The queues between the connection and the handler, and who may fill
//! them.
//!
//! The connection never waits for a slow handler: an event that finds no
//! room is refused at once (the edge answers it with `resource-constraint`)
//! instead of holding up the stream. Two rules keep a flood from one
//! sender from costing anyone else:
//!
//! - **The owner has a lane of its own.** Everything from the owner's
//!   account goes through the urgent lane, which the handler always reads
//!   first. A peer sending a thousand requests cannot make the owner's
//!   `agenda` wait behind them, let alone be dropped.
//! - **Each other sender gets a share of the shared lane.** At most
//!   [`SHARE`] events from one bare JID wait at a time; the rest of that
//!   sender's stanzas are refused while other senders still find room.
//!
//! Connection state (online, offline, the roster) is never refused: it
//! waits for room in the shared lane, in order with the stanzas that came
//! before it, so that a fresh stream's `Online` is never read before a
//! presence of the old stream.
//!
//! Refusals are counted and logged at most once per [`REPORT_EVERY`], by
//! sender and kind only: a stanza's content never reaches the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jid::BareJid;
use tokio::sync::mpsc;
use tracing::warn;

use super::events::Incoming;

/// Events from other senders that may wait for the handler in all.
pub(super) const SHARED_QUEUE: usize = 256;
/// Of those, how many may come from one bare JID.
pub(super) const SHARE: usize = SHARED_QUEUE / 4;
/// Events for the urgent lane (the owner's).
pub(super) const URGENT_QUEUE: usize = 64;
/// Least time between two "shed" log lines.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How many events each sender has waiting in the shared lane.
type Shares = Arc<Mutex<HashMap<BareJid, usize>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection's end: puts events in the right lane.
pub(super) struct Lanes {
    urgent: mpsc::Sender<Incoming>,
    /// Each event with the sender whose share it uses (`None`: connection
    /// state, which uses none).
    shared: mpsc::Sender<(Option<BareJid>, Incoming)>,
    shares: Shares,
    /// Whose events take the urgent lane.
    owner: Option<BareJid>,
    shed: ShedReport,
}

/// The handler's end: urgent events first, then the shared lane in order.
pub(super) struct Inbox {
    urgent: mpsc::Receiver<Incoming>,
    shared: mpsc::Receiver<(Option<BareJid>, Incoming)>,
    shares: Shares,
}

/// Two lanes with their capacities; `owner` is the account whose events
/// are never queued behind other senders'.
pub(super) fn lanes(owner: Option<BareJid>) -> (Lanes, Inbox) {
    let (urgent_tx, urgent) = mpsc::channel(URGENT_QUEUE);
    let (shared_tx, shared) = mpsc::channel(SHARED_QUEUE);
    let shares = Shares::default();
    (
        Lanes {
            urgent: urgent_tx,
            shared: shared_tx,
            shares: shares.clone(),
            owner,
            shed: ShedReport::default(),
        },
        Inbox {
            urgent,
            shared,
            shares,
        },
    )
}

/// Why an event did not reach the handler.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// No room for it (the handler is behind, or its sender used its share):
    /// the sender should be told to try later.
    Busy,
    /// Nobody reads events any more: the session is ending.
    Closed,
}

impl Lanes {
    /// Queues an event from the network without waiting.
    pub(super) fn offer(&mut self, sender: BareJid, event: Incoming) -> Result<(), Refused> {
        if self.owner.as_ref() == Some(&sender) {
            return match self.urgent.try_send(event) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.shed.count(&sender, &event);
                    Err(Refused::Busy)
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Closed),
            };
        }
        let mut shares = lock(&self.shares);
        let waiting = shares.get(&sender).copied().unwrap_or(0);
        if waiting >= SHARE {
            drop(shares);
            self.shed.count(&sender, &event);
            return Err(Refused::Busy);
        }
        // Sent and counted under one lock, so the handler's decrement can
        // never run before this increment.
        match self.shared.try_send((Some(sender.clone()), event)) {
            Ok(()) => {
                *shares.entry(sender).or_default() += 1;
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full((_, event))) => {
                drop(shares);
                self.shed.count(&sender, &event);
                Err(Refused::Busy)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Closed),
        }
    }

    /// Connection state must not be lost: waits for room in the shared
    /// lane, behind what came before it.
    pub(super) async fn always(&self, event: Incoming) {
        let _ = self.shared.send((None, event)).await;
    }

    /// Queues connection state without waiting (the first event of a
    /// session, before anyone reads).
    pub(super) fn first(&self, event: Incoming) {
        let _ = self.shared.try_send((None, event));
    }

    /// Completes once the handler's end is gone.
    pub(super) async fn closed(&self) {
        self.urgent.closed().await;
    }
}

impl Inbox {
    /// The next event: anything urgent first; `None` once the connection's
    /// end is gone and both lanes are drained.
    pub(super) async fn next(&mut self) -> Option<Incoming> {
        tokio::select! {
            biased;
            Some(event) = self.urgent.recv() => Some(event),
            Some((sender, event)) = self.shared.recv() => {
                if let Some(sender) = sender {
                    let mut shares = lock(&self.shares);
                    if let Some(waiting) = shares.get_mut(&sender) {
                        *waiting = waiting.saturating_sub(1);
                        if *waiting == 0 {
                            shares.remove(&sender);
                        }
                    }
                }
                Some(event)
            }
            else => None,
        }
    }
}

/// Counts refusals and logs them now and then, without their content.
#[derive(Default)]
struct ShedReport {
    since_report: u64,
    last_report: Option<Instant>,
}

impl ShedReport {
    fn count(&mut self, sender: &BareJid, event: &Incoming) {
        self.since_report += 1;
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if due {
            let kind = match event {
                Incoming::Iq { .. } => "request",
                Incoming::Command { .. } => "command",
                Incoming::Message { .. } => "message",
                Incoming::Presence { .. } => "presence",
                Incoming::Online { .. } | Incoming::Offline | Incoming::Roster(_) => "state",
            };
            warn!(
                "the handler is behind: refused {} stanza(s) as busy since the last report; latest a {kind} from {sender}",
                self.since_report
            );
            self.since_report = 0;
            self.last_report = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jid::Jid;

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn presence(from: &str) -> Incoming {
        Incoming::Presence {
            from: Jid::from(bare(from)),
            kind: super::super::events::PresenceKind::Available,
        }
    }

    fn message(from: &str, body: &str) -> Incoming {
        Incoming::Message {
            from: Jid::from(bare(from)),
            body: body.into(),
            id: None,
            thread: None,
        }
    }

    #[tokio::test]
    async fn one_sender_fills_only_its_share_and_others_still_get_in() {
        let (mut lanes, mut inbox) = lanes(Some(bare("owner@x")));
        let flood = bare("flood@x");
        let accepted = (0..SHARED_QUEUE)
            .filter(|_| lanes.offer(flood.clone(), presence("flood@x")).is_ok())
            .count();
        assert_eq!(accepted, SHARE);
        assert_eq!(
            lanes.offer(flood.clone(), presence("flood@x")),
            Err(Refused::Busy)
        );
        assert_eq!(lanes.offer(bare("alice@x"), presence("alice@x")), Ok(()));
        // Reading one of the flood's events gives it room for one more.
        assert_eq!(inbox.next().await, Some(presence("flood@x")));
        assert_eq!(lanes.offer(flood.clone(), presence("flood@x")), Ok(()));
        assert_eq!(
            lanes.offer(flood.clone(), presence("flood@x")),
            Err(Refused::Busy)
        );
    }

    #[tokio::test]
    async fn the_owner_is_read_first_even_behind_a_full_shared_lane() {
        let (mut lanes, mut inbox) = lanes(Some(bare("owner@x")));
        for i in 0..SHARED_QUEUE {
            let sender = format!("peer{}@x", i % 8);
            let _ = lanes.offer(bare(&sender), presence(&sender));
        }
        assert_eq!(
            lanes.offer(bare("owner@x"), message("owner@x", "agenda")),
            Ok(())
        );
        assert_eq!(inbox.next().await, Some(message("owner@x", "agenda")));
        // Then the shared lane, in arrival order.
        assert_eq!(inbox.next().await, Some(presence("peer0@x")));
    }

    #[tokio::test]
    async fn the_shared_lane_as_a_whole_is_bounded() {
        let (mut lanes, _inbox) = lanes(None);
        let accepted = (0..SHARED_QUEUE * 2)
            .filter(|i| {
                let sender = format!("peer{i}@x");
                lanes.offer(bare(&sender), presence(&sender)).is_ok()
            })
            .count();
        assert_eq!(accepted, SHARED_QUEUE);
    }

    #[tokio::test]
    async fn connection_state_keeps_its_place_and_uses_no_share() {
        let (mut lanes, mut inbox) = lanes(Some(bare("owner@x")));
        let _ = lanes.offer(bare("alice@x"), presence("alice@x"));
        lanes.always(Incoming::Offline).await;
        for _ in 0..SHARE - 1 {
            let _ = lanes.offer(bare("alice@x"), presence("alice@x"));
        }
        assert_eq!(inbox.next().await, Some(presence("alice@x")));
        assert_eq!(inbox.next().await, Some(Incoming::Offline));
        // Alice used SHARE places in all, one of them freed by now.
        assert_eq!(lanes.offer(bare("alice@x"), presence("alice@x")), Ok(()));
        assert_eq!(
            lanes.offer(bare("alice@x"), presence("alice@x")),
            Err(Refused::Busy)
        );
    }

    #[tokio::test]
    async fn a_closed_inbox_is_reported_as_closed_not_busy() {
        let (mut lanes, inbox) = lanes(None);
        drop(inbox);
        assert_eq!(
            lanes.offer(bare("a@x"), presence("a@x")),
            Err(Refused::Closed)
        );
    }
}
