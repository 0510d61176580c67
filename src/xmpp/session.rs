//! A logged-in agent on the XMPP network: the first login (bounded, so a
//! wrong password is an error and not an endless retry), the reconnection
//! policy afterwards, presence with caps after every fresh stream, the
//! built-in answers, the pending-IQ table with deadlines, and the two
//! channels handlers see: [`Session::next`] for [`Incoming`] events and
//! [`Outbox`] for [`Outgoing`] stanzas and IQ requests.
//!
//! Owns the tokio-xmpp `StanzaStream` (resource binding and XEP-0198
//! stream management live there). Knows nothing of what messages mean.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use jid::{BareJid, FullJid, Jid};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaStage, StanzaStream, StreamEvent as StreamState,
};
use tokio_xmpp::xmlstream::Timeouts;
use tracing::{debug, info, warn};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::account::Account;
use super::builtin::{Answer, Capabilities};
use super::commands::CommandList;
use super::connect::{AgentConnector, explain, login};
use super::error::XmppError;
use super::events::{
    Incoming, IqAnswer, IqKind, Outgoing, message_event, presence_event, roster_items,
};
use super::lanes::{Inbox, Lanes, Refused, lanes};

/// Stanzas queued towards the server (tokio-xmpp's own queues, each way).
const STANZA_QUEUE: usize = 64;

/// First delay between reconnection attempts; doubles up to the maximum.
const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(500);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(60);

/// Bounds on the goodbye: unavailable presence, then the stream footer.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle stream is probed (XEP-0198 `<r/>` or a ping) after a minute and
/// declared dead 30 s later, so a silently broken link is noticed in 90 s.
const STREAM_TIMEOUTS: Timeouts = Timeouts {
    read_timeout: Duration::from_secs(60),
    response_timeout: Duration::from_secs(30),
};

/// How a session is set up.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Namespaces whose IQ requests reach the handler as [`Incoming::Iq`]
    /// (and are advertised in disco#info); every other request is answered
    /// by the edge.
    pub claimed: Vec<String>,
    /// Bound on the first login: TCP, TLS, SASL and resource binding.
    pub login_timeout: Duration,
    /// XEP-0050 ad-hoc commands to offer the owner; their requests reach
    /// the handler as [`Incoming::Command`].
    pub commands: Option<CommandList>,
    /// The owner's account: its stanzas reach the handler before anyone
    /// else's and never wait behind a flood (see `lanes`).
    pub owner: Option<BareJid>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            claimed: Vec::new(),
            login_timeout: Duration::from_secs(20),
            commands: None,
            owner: None,
        }
    }
}

/// A logged-in XMPP session; reconnects by itself until [`Session::close`].
pub struct Session {
    jid: FullJid,
    events: Inbox,
    outbox: Outbox,
    driver: JoinHandle<Result<(), XmppError>>,
}

/// Sends stanzas and IQ requests through a [`Session`]; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    commands: mpsc::Sender<Command>,
    pending: PendingIqs,
}

enum Command {
    Send(Box<Stanza>),
    Close(oneshot::Sender<()>),
}

/// IQ requests the agent sent that still wait for an answer, by stanza id.
type PendingIqs = Arc<Mutex<HashMap<String, PendingIq>>>;

struct PendingIq {
    /// Who must answer: an answer with the same id from anyone else is
    /// ignored (RFC 6120 §8.1.2.1). `None`: our own account (the server).
    to: Option<Jid>,
    reply: oneshot::Sender<Result<IqAnswer, XmppError>>,
}

impl Session {
    /// Logs in once, within `options.login_timeout`: a wrong password or an
    /// unreachable server is an error here, never a silent retry loop. Once
    /// online, lost connections are re-established in the background
    /// (XEP-0198 resumption when the server still knows the session).
    pub async fn connect(account: Account, options: SessionOptions) -> Result<Self, XmppError> {
        let failed = |reason: String| XmppError::Login {
            jid: account.jid.to_string(),
            reason,
        };
        let secs = options.login_timeout.as_secs();
        let connector = AgentConnector::for_account(&account);
        let first = timeout(
            options.login_timeout,
            login(&connector, &account, STREAM_TIMEOUTS),
        )
        .await
        .map_err(|_| failed(format!("no answer from {} within {secs} s", account.server)))?
        .map_err(|e| failed(explain(&e, &account)))?;

        let mut stream = StanzaStream::new(
            Box::new(reconnector(
                first,
                connector,
                account.clone(),
                options.login_timeout,
            )),
            STANZA_QUEUE,
        );
        let bound = timeout(options.login_timeout, first_binding(&mut stream))
            .await
            .map_err(|_| failed(format!("resource binding took more than {secs} s")))?
            .ok_or_else(|| failed("the server closed the stream during resource binding".into()))?;
        let jid = bound.try_into_full().unwrap_or_else(|_| account.full_jid());
        info!("online as {jid}");

        let mut caps = Capabilities::new(options.claimed);
        if let Some(list) = options.commands {
            caps = caps.with_commands(list);
        }
        let (lanes, events) = lanes(options.owner);
        let (commands_tx, commands) = mpsc::channel(STANZA_QUEUE);
        let pending = PendingIqs::default();
        // The handler's first event, like after every later fresh stream.
        lanes.first(Incoming::Online {
            jid: jid.clone(),
            resumed: false,
        });
        let mut driver = Driver {
            stream,
            jid: jid.clone(),
            caps,
            own: account.jid.clone(),
            lanes,
            commands,
            pending: pending.clone(),
            roster_request: None,
        };
        driver.announce().await;
        Ok(Self {
            jid,
            events,
            outbox: Outbox {
                commands: commands_tx,
                pending,
            },
            driver: tokio::spawn(driver.run()),
        })
    }

    /// The full JID the server bound at login.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The next event; `None` once the session has ended (see [`Session::close`]
    /// for why).
    pub async fn next(&mut self) -> Option<Incoming> {
        self.events.next().await
    }

    /// Says goodbye (unavailable presence, stream footer) and ends the
    /// session; reports why it ended if it had already failed.
    pub async fn close(self) -> Result<(), XmppError> {
        let Session {
            events,
            outbox,
            driver,
            ..
        } = self;
        // Nobody reads events any more; dropping them also frees a driver
        // that waits for room in a full queue.
        drop(events);
        let (done_tx, done) = oneshot::channel();
        if outbox.commands.send(Command::Close(done_tx)).await.is_ok() {
            let _ = done.await;
        }
        match driver.await {
            Ok(result) => result,
            Err(e) => {
                warn!("the XMPP session task failed: {e}");
                Err(XmppError::Closed)
            }
        }
    }
}

/// What the agent does with the events of a session; `attache run` plugs
/// one in and [`Session::serve`] drives it.
pub trait Handler {
    /// Called for each event, in order. Return quickly: spawn a task (with
    /// a cloned [`Outbox`]) for anything that waits on the network, such as
    /// [`Outbox::query`], or later events wait behind it.
    fn handle(&mut self, event: Incoming, outbox: &Outbox) -> impl Future<Output = ()>;
}

impl Session {
    /// Feeds every event to `handler` until `until` completes (a shutdown
    /// signal) or the session ends, then closes the session gracefully.
    pub async fn serve<H: Handler>(
        mut self,
        mut handler: H,
        until: impl Future<Output = ()>,
    ) -> Result<(), XmppError> {
        let outbox = self.outbox();
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => break,
                event = self.next() => match event {
                    Some(event) => handler.handle(event, &outbox).await,
                    None => break,
                },
            }
        }
        self.close().await
    }
}

impl Outbox {
    /// Queues a stanza for sending (it waits in the queue while reconnecting).
    pub async fn send(&self, outgoing: Outgoing) -> Result<(), XmppError> {
        let stanza = outgoing.into_stanza(next_id());
        self.commands
            .send(Command::Send(Box::new(stanza)))
            .await
            .map_err(|_| XmppError::Closed)
    }

    /// Sends an IQ request and waits at most `within` for its answer.
    /// `to: None` asks our own account (the server), e.g. for the roster.
    pub async fn query(
        &self,
        to: Option<Jid>,
        kind: IqKind,
        payload: Element,
        within: Duration,
    ) -> Result<IqAnswer, XmppError> {
        let id = next_id();
        let (reply, answer) = oneshot::channel();
        lock(&self.pending).insert(
            id.clone(),
            PendingIq {
                to: to.clone(),
                reply,
            },
        );
        // Whatever happens below (timeout, cancellation), the entry goes.
        let _forget = Forget {
            pending: &self.pending,
            id: id.clone(),
        };
        let iq = match kind {
            IqKind::Get => Iq::Get {
                from: None,
                to: to.clone(),
                id,
                payload,
            },
            IqKind::Set => Iq::Set {
                from: None,
                to: to.clone(),
                id,
                payload,
            },
        };
        self.commands
            .send(Command::Send(Box::new(iq.into())))
            .await
            .map_err(|_| XmppError::Closed)?;
        let to_text = || to.as_ref().map_or("the server".to_string(), Jid::to_string);
        match timeout(within, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(XmppError::Closed),
            Err(_) => Err(XmppError::IqTimeout {
                to: to_text(),
                after: within,
            }),
        }
    }
}

/// Removes a pending IQ when its requester stops waiting.
struct Forget<'a> {
    pending: &'a PendingIqs,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

/// A poisoned lock only means another task panicked mid-insert; the map
/// itself is still a valid map.
fn lock(pending: &PendingIqs) -> std::sync::MutexGuard<'_, HashMap<String, PendingIq>> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stanza ids: unique within this process, unguessable enough across
/// restarts that a late answer to an old request never matches a new one.
fn next_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    format!("att-{epoch:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn initial_presence(caps: &Capabilities) -> Presence {
    Presence::available().with_payload(caps.caps())
}

/// Waits for the stream to be bound after the first login.
async fn first_binding(stream: &mut StanzaStream) -> Option<Jid> {
    while let Some(event) = stream.next().await {
        match event {
            StreamEvent::Stream(StreamState::Reset { bound_jid, .. }) => return Some(bound_jid),
            other => debug!("before binding: {other:?}"),
        }
    }
    None
}

/// tokio-xmpp asks for a new connection whenever the old one is gone. The
/// first request gets the connection already made by [`Session::connect`];
/// later ones start a background retry loop with backoff.
fn reconnector(
    first: Connection,
    connector: AgentConnector,
    account: Account,
    login_timeout: Duration,
) -> impl FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static {
    let mut first = Some(first);
    move |_location, slot| {
        if let Some(connection) = first.take() {
            // An error only means the stream is already gone.
            let _ = slot.send(connection);
            return;
        }
        tokio::spawn(reconnect(
            connector.clone(),
            account.clone(),
            login_timeout,
            slot,
        ));
    }
}

async fn reconnect(
    connector: AgentConnector,
    account: Account,
    login_timeout: Duration,
    mut slot: oneshot::Sender<Connection>,
) {
    let mut delay = RECONNECT_FIRST_DELAY;
    loop {
        if slot.is_closed() {
            return;
        }
        info!("reconnecting as {}", account.jid);
        match timeout(login_timeout, login(&connector, &account, STREAM_TIMEOUTS)).await {
            Ok(Ok(connection)) => {
                // An error only means the session was closed meanwhile.
                let _ = slot.send(connection);
                return;
            }
            // Keep trying even on auth errors: the first login proved the
            // password, so this is the server's trouble (or a changed
            // password, which the log says loudly).
            Ok(Err(e)) => warn!(
                "login as {} failed: {}; next attempt in {:.1} s",
                account.jid,
                explain(&e, &account),
                delay.as_secs_f32()
            ),
            Err(_) => warn!(
                "login as {} timed out; next attempt in {:.1} s",
                account.jid,
                delay.as_secs_f32()
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(delay)) => {}
            _ = slot.closed() => return,
        }
        delay = (delay * 2).min(RECONNECT_MAX_DELAY);
    }
}

/// Up to a quarter more, so many agents cut off by one server restart do
/// not all come back in the same millisecond.
fn jittered(delay: Duration) -> Duration {
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 250)
        .unwrap_or_default();
    delay + delay * noise / 1000
}

/// The task that owns the stream: routes stanzas, answers what the edge
/// answers, and keeps presence up across reconnections.
struct Driver {
    stream: StanzaStream,
    /// The JID bound on the current stream.
    jid: FullJid,
    caps: Capabilities,
    own: BareJid,
    lanes: Lanes,
    commands: mpsc::Receiver<Command>,
    pending: PendingIqs,
    /// The id of the roster request sent on the current stream.
    roster_request: Option<String>,
}

/// Why the driver loop ended.
enum End {
    Close(Option<oneshot::Sender<()>>),
    Failed,
}

impl Driver {
    async fn run(mut self) -> Result<(), XmppError> {
        let end = loop {
            tokio::select! {
                event = self.stream.next() => match event {
                    Some(event) => self.on_stream_event(event).await,
                    None => break End::Failed,
                },
                command = self.commands.recv() => match command {
                    Some(Command::Send(stanza)) => self.send(stanza).await,
                    Some(Command::Close(done)) => break End::Close(Some(done)),
                    None => break End::Close(None),
                },
                // Nobody listens any more: the session was dropped unclosed.
                () = self.lanes.closed() => break End::Close(None),
            }
        };
        self.fail_pending(false);
        match end {
            End::Failed => {
                warn!("the XMPP connection worker stopped");
                Err(XmppError::Closed)
            }
            End::Close(done) => {
                self.goodbye().await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                Ok(())
            }
        }
    }

    async fn goodbye(self) {
        let mut token = self
            .stream
            .send(Box::new(Presence::unavailable().into()))
            .await;
        let _ = timeout(GOODBYE_TIMEOUT, token.wait_for(StanzaStage::Sent)).await;
        if timeout(CLOSE_TIMEOUT, self.stream.close()).await.is_err() {
            debug!("the stream did not close in time; dropping it");
        }
        info!("offline");
    }

    /// What every fresh stream starts with (RFC 6121 §2.2, §4.2): the
    /// roster request, without which Prosody does not forward subscription
    /// requests, then initial presence with caps.
    async fn announce(&mut self) {
        let id = next_id();
        let roster = Iq::Get {
            from: None,
            to: None,
            id: id.clone(),
            payload: Element::builder("query", xmpp_parsers::ns::ROSTER).build(),
        };
        self.roster_request = Some(id);
        self.send(Box::new(roster.into())).await;
        let presence = initial_presence(&self.caps);
        self.send(Box::new(presence.into())).await;
    }

    /// Stanzas without `from` come from our own account (RFC 6120 §8.1.2.1).
    fn is_own_account(&self, from: &Option<Jid>) -> bool {
        from.as_ref().is_none_or(|f| f.to_bare() == self.own)
    }

    async fn send(&mut self, stanza: Box<Stanza>) {
        // Queued; tokio-xmpp writes it now or after the next reconnection.
        let _ = self.stream.send(stanza).await;
    }

    async fn on_stream_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Stream(StreamState::Reset { bound_jid, .. }) => {
                // A fresh stream: the server forgot our presence, and answers
                // to requests sent on the old stream will never come.
                self.fail_pending(true);
                self.announce().await;
                info!("online again as {bound_jid} (new stream)");
                if let Ok(jid) = bound_jid.try_into_full() {
                    self.jid = jid;
                }
                self.lanes
                    .always(Incoming::Online {
                        jid: self.jid.clone(),
                        resumed: false,
                    })
                    .await;
            }
            StreamEvent::Stream(StreamState::Resumed) => {
                info!("online again (stream resumed, nothing lost)");
                // The bound JID does not change on resumption.
                self.lanes
                    .always(Incoming::Online {
                        jid: self.jid.clone(),
                        resumed: true,
                    })
                    .await;
            }
            StreamEvent::Stream(StreamState::Suspended) => {
                warn!("connection lost; reconnecting");
                self.lanes.always(Incoming::Offline).await;
            }
            StreamEvent::Stanza(Stanza::Iq(iq)) => self.on_iq(iq).await,
            StreamEvent::Stanza(Stanza::Message(message)) => {
                if let Some(event) = message_event(message, &self.own) {
                    self.deliver_message(event).await;
                }
            }
            StreamEvent::Stanza(Stanza::Presence(presence)) => {
                if let Some(Incoming::Presence { from, kind }) = presence_event(presence) {
                    // Nothing to answer when there is no room: a later
                    // presence from the same account says the same.
                    let _ = self
                        .lanes
                        .offer(from.to_bare(), Incoming::Presence { from, kind });
                }
            }
        }
    }

    async fn on_iq(&mut self, iq: Iq) {
        let (from, id, kind, payload) = match iq {
            Iq::Get {
                from, id, payload, ..
            } => (from, id, IqKind::Get, payload),
            Iq::Set {
                from, id, payload, ..
            } => (from, id, IqKind::Set, payload),
            Iq::Result {
                from, id, payload, ..
            } if self.roster_request.as_ref() == Some(&id) && self.is_own_account(&from) => {
                self.roster_request = None;
                let items = payload.map_or(Some(Vec::new()), roster_items);
                match items {
                    Some(items) => self.lanes.always(Incoming::Roster(items)).await,
                    None => warn!("the server's roster answer is not a roster"),
                }
                return;
            }
            Iq::Result {
                from, id, payload, ..
            } => return self.on_answer(from, id, IqAnswer::Result(payload)),
            Iq::Error {
                from, id, error, ..
            } => return self.on_answer(from, id, IqAnswer::Error(error)),
        };
        let from_own_account = self.is_own_account(&from);
        // Without `from`, the request came from our own account.
        let sender = from.clone().unwrap_or_else(|| self.own.clone().into());
        let me = Jid::from(self.jid.clone());
        let answer = self
            .caps
            .commands_answer(kind, &payload, &sender.to_bare(), &me)
            .unwrap_or_else(|| self.caps.answer(kind, &payload, from_own_account));
        let answer = match answer {
            Answer::Deliver => self.deliver(Incoming::Iq {
                from: sender.clone(),
                id: id.clone(),
                kind,
                payload,
            }),
            Answer::Command(request) => self.deliver(Incoming::Command {
                from: sender,
                id: id.clone(),
                request,
            }),
            answer => answer,
        };
        // The reply goes back exactly as the request came: a request
        // without `from` gets a reply without `to` (RFC 6120 §8.1.2.1).
        let reply = match answer {
            Answer::Result(payload) => Iq::Result {
                from: None,
                to: from,
                id,
                payload,
            },
            Answer::Error(error) => Iq::Error {
                from: None,
                to: from,
                id,
                error,
                payload: None,
            },
            Answer::Deliver | Answer::Command(_) => return,
        };
        self.send(Box::new(reply.into())).await;
    }

    /// Hands a request to the handler: [`Answer::Deliver`] when it took it
    /// (it answers), else a `resource-constraint` error to send at once.
    fn deliver(&mut self, event: Incoming) -> Answer {
        let sender = match &event {
            Incoming::Iq { from, .. } | Incoming::Command { from, .. } => from.to_bare(),
            _ => self.own.clone(),
        };
        match self.lanes.offer(sender, event) {
            Ok(()) => Answer::Deliver,
            // Never silence, even when the handler is swamped.
            Err(_) => Answer::Error(busy()),
        }
    }

    /// Hands a message to the handler; one that finds no room is bounced
    /// with a `resource-constraint` error (RFC 6120 §8.3), so the sender's
    /// client shows it as not delivered instead of it vanishing.
    async fn deliver_message(&mut self, event: Incoming) {
        let Incoming::Message { from, id, .. } = &event else {
            return;
        };
        let (from, id) = (from.clone(), id.clone());
        if self.lanes.offer(from.to_bare(), event) != Err(Refused::Busy) {
            return;
        }
        let mut bounce = Message::error(Some(from));
        bounce.id = id.map(xmpp_parsers::message::Id);
        bounce.payloads.push(busy().into());
        self.send(Box::new(bounce.into())).await;
    }

    fn on_answer(&mut self, from: Option<Jid>, id: String, answer: IqAnswer) {
        let mut pending = lock(&self.pending);
        let Some(request) = pending.get(&id) else {
            debug!("answer {id} from {from:?} matches no pending request (late or unsolicited)");
            return;
        };
        let from_expected = match (&request.to, &from) {
            (None, None) => true,
            (None, Some(f)) => f.to_bare() == self.own && f.resource().is_none(),
            (Some(to), Some(f)) => to == f,
            // Answers from our own account may omit `from`.
            (Some(to), None) => to.to_bare() == self.own,
        };
        if !from_expected {
            warn!("ignoring an answer to {id} from {from:?}: the request went elsewhere");
            return;
        }
        if let Some(request) = pending.remove(&id) {
            let _ = request.reply.send(Ok(answer));
        }
    }

    /// Ends every pending request: `reset` when the stream was replaced
    /// (the answer can no longer arrive), else because the session ends.
    fn fail_pending(&mut self, reset: bool) {
        for (_, request) in lock(&self.pending).drain() {
            let error = if reset {
                XmppError::ConnectionReset {
                    to: request
                        .to
                        .as_ref()
                        .map_or("the server".to_string(), Jid::to_string),
                }
            } else {
                XmppError::Closed
            };
            let _ = request.reply.send(Err(error));
        }
    }
}

/// The refusal of a stanza the handler has no room for.
fn busy() -> xmpp_parsers::stanza_error::StanzaError {
    let mut busy = super::builtin::error(ErrorType::Wait, DefinedCondition::ResourceConstraint);
    busy.texts
        .insert("en".into(), "busy; try again later".into());
    busy
}
