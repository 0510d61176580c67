//! Who is online: the resources of peers whose presence the agent sees.
//!
//! The runtime writes it from presence stanzas; everything that sends to a
//! peer's agent (meetings, handoffs, deferred replies) reads it, since an
//! IQ must go to a full JID. Right after a (re)start, or any fresh stream,
//! the map is empty until the server has sent everyone's presence, which
//! takes a moment: a task that must reach a peer then waits for it
//! ([`Presence::settled_resource`]) instead of calling the peer offline at
//! once, as a restarted organizer resuming its negotiations used to.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jid::{BareJid, FullJid};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long after a fresh stream the presence of contacts is still
/// arriving. Prosody sends it at once with the agent's initial presence;
/// this leaves room for a slow server or a loaded machine.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Online resources by bare JID; cheap to clone (shared).
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    online: Mutex<HashMap<BareJid, BTreeSet<FullJid>>>,
    /// Bumped whenever a resource appears.
    appeared: watch::Sender<u64>,
    /// When the presence of the current stream has arrived; `None` before
    /// the first stream is up.
    settled_at: Mutex<Option<Instant>>,
    /// Bumped at each fresh stream ([`Presence::clear`]).
    streams: watch::Sender<u64>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                online: Mutex::new(HashMap::new()),
                appeared: watch::Sender::new(0),
                settled_at: Mutex::new(None),
                streams: watch::Sender::new(0),
            }),
        }
    }
}

impl Presence {
    fn online(&self) -> MutexGuard<'_, HashMap<BareJid, BTreeSet<FullJid>>> {
        self.inner
            .online
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One online resource of `peer`, if any.
    pub fn resource(&self, peer: &BareJid) -> Option<FullJid> {
        self.online()
            .get(peer)
            .and_then(|set| set.iter().next().cloned())
    }

    /// [`Presence::resource`] for a JID given as text (as the store keeps
    /// them); `None` for one that does not parse.
    pub fn resource_of(&self, peer: &str) -> Option<FullJid> {
        self.resource(&BareJid::new(peer).ok()?)
    }

    /// `full` is online; true when it was not seen before (servers repeat
    /// presence, and only a new resource is worth re-sending anything to).
    pub fn appeared(&self, full: FullJid) -> bool {
        let new = self
            .online()
            .entry(full.to_bare())
            .or_default()
            .insert(full);
        if new {
            self.inner.appeared.send_modify(|n| *n = n.wrapping_add(1));
        }
        new
    }

    /// `full` went offline.
    pub fn left(&self, full: &FullJid) {
        let bare = full.to_bare();
        let mut online = self.online();
        if let Some(set) = online.get_mut(&bare) {
            set.remove(full);
            if set.is_empty() {
                online.remove(&bare);
            }
        }
    }

    /// Every resource of `peer` went offline.
    pub fn gone(&self, peer: &BareJid) {
        self.online().remove(peer);
    }

    /// Forgets everyone: a fresh stream is up, whose server sends every
    /// presence again within [`SETTLE`].
    pub fn clear(&self) {
        self.online().clear();
        *self
            .inner
            .settled_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + SETTLE);
        self.inner.streams.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Which stream the map is about: changes at each [`Presence::clear`].
    pub fn stream(&self) -> u64 {
        *self.inner.streams.borrow()
    }

    /// Waits (up to `within`) until the map is about a stream other than
    /// `seen`: after a request was lost to a new stream, whoever is online
    /// is known only once the new stream's presence is coming in.
    pub async fn next_stream(&self, seen: u64, within: Duration) -> bool {
        let mut streams = self.inner.streams.subscribe();
        let wait = streams.wait_for(|n| *n != seen);
        matches!(tokio::time::timeout(within, wait).await, Ok(Ok(_)))
    }

    /// A resource of `peer`: at once when one is online or everyone's
    /// presence has arrived; otherwise (the stream is new, or not up yet)
    /// once the peer's presence appears or [`SETTLE`] has passed.
    pub async fn settled_resource(&self, peer: &BareJid) -> Option<FullJid> {
        let settled_at = *self
            .inner
            .settled_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let deadline = settled_at.unwrap_or(now + SETTLE);
        self.wait_for(peer, deadline.saturating_duration_since(now))
            .await
    }

    /// [`Presence::settled_resource`] for a JID given as text.
    pub async fn settled_resource_of(&self, peer: &str) -> Option<FullJid> {
        self.settled_resource(&BareJid::new(peer).ok()?).await
    }

    /// A resource of `peer`, waiting up to `within` for one to appear.
    pub async fn wait_for(&self, peer: &BareJid, within: Duration) -> Option<FullJid> {
        // Subscribed before looking, so an appearance in between is seen.
        let mut appeared = self.inner.appeared.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(full) = self.resource(peer) {
                return Some(full);
            }
            match tokio::time::timeout_at(deadline, appeared.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> FullJid {
        FullJid::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn resources_come_and_go() {
        let p = Presence::default();
        let bob = full("bob@x/a").to_bare();
        assert!(p.appeared(full("bob@x/a")));
        assert!(!p.appeared(full("bob@x/a")), "a repeat is not new");
        assert!(p.appeared(full("bob@x/b")));
        p.left(&full("bob@x/a"));
        assert_eq!(p.resource(&bob), Some(full("bob@x/b")));
        p.left(&full("bob@x/b"));
        assert_eq!(p.resource(&bob), None);
        p.appeared(full("bob@x/c"));
        p.gone(&bob);
        assert_eq!(p.resource_of("bob@x"), None);
        p.appeared(full("bob@x/c"));
        p.clear();
        assert_eq!(p.resource(&bob), None);
    }

    #[tokio::test]
    async fn waiting_ends_when_the_peer_appears_or_time_is_up() {
        let p = Presence::default();
        let bob = full("bob@x/a").to_bare();
        let later = p.clone();
        let appear = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            later.appeared(full("carol@x/a"));
            tokio::time::sleep(Duration::from_millis(30)).await;
            later.appeared(full("bob@x/a"));
        });
        assert_eq!(
            p.wait_for(&bob, Duration::from_secs(5)).await,
            Some(full("bob@x/a"))
        );
        let _ = appear.await;
        let dana = full("dana@x/a").to_bare();
        let started = std::time::Instant::now();
        assert_eq!(p.wait_for(&dana, Duration::from_millis(50)).await, None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_stream_is_waited_for_once_and_then_known() {
        let p = Presence::default();
        let seen = p.stream();
        let later = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            later.clear();
        });
        let started = Instant::now();
        assert!(p.next_stream(seen, SETTLE).await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // Already past it: no wait; no new stream: time runs out.
        assert!(p.next_stream(seen, SETTLE).await);
        assert!(!p.next_stream(p.stream(), Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_missing_after_a_fresh_stream_is_waited_for_only_until_presence_settles() {
        let p = Presence::default();
        let bob = full("bob@x/a").to_bare();
        // Before the first stream: waits the whole settling time.
        let started = Instant::now();
        assert_eq!(p.settled_resource(&bob).await, None);
        assert_eq!(started.elapsed(), SETTLE);
        // A fresh stream: waits for what is left of it, and no more.
        p.clear();
        tokio::time::sleep(SETTLE / 2).await;
        let started = Instant::now();
        assert_eq!(p.settled_resource(&bob).await, None);
        assert_eq!(started.elapsed(), SETTLE / 2);
        let started = Instant::now();
        assert_eq!(p.settled_resource(&bob).await, None);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "settled: offline means offline"
        );
        // One that appears while waiting is taken at once.
        p.clear();
        let later = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            later.appeared(full("bob@x/a"));
        });
        let started = Instant::now();
        assert_eq!(p.settled_resource(&bob).await, Some(full("bob@x/a")));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
