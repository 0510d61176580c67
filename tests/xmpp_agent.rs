//! The agent on a real XMPP network: a private Prosody per test, the real
//! `attache run` binary as the agent, and test clients written with
//! tokio-xmpp playing the owner and strangers.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::xmlstream::{PendingFeaturesRecv, StreamHeader, Timeouts, initiate_stream};
use tokio_xmpp::{Client, Event, IqRequest, IqResponse};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_parsers::version::{VersionQuery, VersionResult};

use crate::common::prosody::Prosody;

const REFUSAL: &str = "Sorry, I am a personal agent and only take commands from my owner.";
const FEATURE_NS: &str = attache::negotiate::NS;

/// How long anything that should happen "at once" may take on a loaded CI machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

#[test]
fn the_harness_starts_prosody_registers_accounts_and_leaves_nothing_behind() {
    let mut server = Prosody::start();
    let alice = server.register("alice", "alice-pw");
    let bob = server.register("bob", "bob-pw");
    assert_eq!(alice, format!("alice@{}", server.domain()));
    assert_eq!(bob, format!("bob@{}", server.domain()));
    assert_eq!(server.server(), format!("127.0.0.1:{}", server.port()));
    let pid = server.pid().expect("a running server");
    let dir = server.dir().to_path_buf();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut a = TestClient::login(&server, &alice, "alice-pw").await;
        let mut b = TestClient::login(&server, &bob, "bob-pw").await;
        let domain = Jid::new(server.domain()).expect("domain JID");
        assert!(a.ping(&domain).await.is_ok(), "the server answers pings");
        a.say(&b.jid, "hello bob").await;
        let (from, body) = b.next_message(PATIENCE).await.expect("bob hears alice");
        assert_eq!(
            (from.to_bare().to_string(), body.as_str()),
            (alice.clone(), "hello bob")
        );
        a.close().await;
        b.close().await;
    });

    server.stop();
    assert!(!process_alive(pid), "stop() ends the server");
    server.restart();
    let restarted = server.pid().expect("a running server");
    drop(server);
    assert!(!process_alive(restarted), "drop kills the server");
    assert!(!dir.exists(), "drop removes {}", dir.display());
}

#[test]
fn init_writes_the_account_and_allows_plain_tcp_only_on_loopback() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let init = |dir: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_attache"))
            .arg("--data-dir")
            .arg(tmp.path().join(dir))
            .args(["init", "--timezone", "UTC"])
            .args(extra)
            .env_remove("ATTACHE_DATA_DIR")
            .output()
            .expect("run attache init")
    };
    let config = |dir: &str| {
        std::fs::read_to_string(tmp.path().join(dir).join("config.toml")).expect("config.toml")
    };

    let out = init(
        "local",
        &[
            "--jid",
            "bot@localhost",
            "--owner",
            "me@localhost",
            "--server",
            "127.0.0.1:5333",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = config("local");
    for line in [
        "[account]",
        r#"jid = "bot@localhost""#,
        r#"owner = "me@localhost""#,
        r#"server = "127.0.0.1:5333""#,
        "allow_plaintext = true",
    ] {
        assert!(local.contains(line), "{line} in\n{local}");
    }

    let out = init(
        "remote",
        &[
            "--jid",
            "bot@example.org",
            "--owner",
            "me@example.org",
            "--server",
            "xmpp.example.org:5222",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(config("remote").contains("allow_plaintext = false"));

    let out = init(
        "bad",
        &["--jid", "example.org", "--owner", "me@example.org"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--jid 'example.org' is not a bare JID"),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("bad").exists(),
        "nothing written on a bad JID"
    );
}

#[tokio::test]
async fn the_agent_answers_ping_disco_and_version() {
    let net = Network::start();
    let agent = net.spawn_agent();
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    let to = owner.wait_for_agent(&net.agent_full(), &agent).await;

    assert!(owner.ping(&to).await.is_ok(), "ping answered");

    let info = owner
        .iq(
            Some(&to),
            IqRequest::Get(DiscoInfoQuery { node: None }.into()),
        )
        .await;
    let IqResponse::Result(Some(info)) = info else {
        panic!("no disco#info result: {info:?}");
    };
    let info = DiscoInfoResult::try_from(info).expect("a disco#info result");
    assert!(
        info.identities
            .iter()
            .any(|i| i.category == "client" && i.type_ == "bot"),
        "{info:?}"
    );
    for feature in [
        FEATURE_NS,
        "urn:xmpp:ping",
        "jabber:iq:version",
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/caps",
    ] {
        assert!(info.features.contains(feature), "{feature} in {info:?}");
    }

    let version = owner
        .iq(Some(&to), IqRequest::Get(VersionQuery.into()))
        .await;
    let IqResponse::Result(Some(version)) = version else {
        panic!("no version result: {version:?}");
    };
    let version = VersionResult::try_from(version).expect("a version result");
    assert_eq!(version.name, "attache");
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(version.os, None, "the agent does not tell its OS");

    agent.terminate_gracefully();
}

#[tokio::test]
async fn an_unknown_iq_gets_an_error_and_the_agent_keeps_answering() {
    let net = Network::start();
    let agent = net.spawn_agent();
    let mut stranger_client = {
        let jid = net.server.register("stranger", "stranger-pw");
        TestClient::login(&net.server, &jid, "stranger-pw").await
    };
    let to = stranger_client
        .wait_for_agent(&net.agent_full(), &agent)
        .await;

    for request in [
        IqRequest::Get(Element::builder("query", "urn:example:nobody-knows").build()),
        IqRequest::Set(Element::builder("command", "urn:example:nobody-knows").build()),
    ] {
        let answer = stranger_client.iq(Some(&to), request).await;
        let IqResponse::Error(error) = answer else {
            panic!("an unknown IQ must get an error, got {answer:?}");
        };
        assert_eq!(
            error.defined_condition,
            DefinedCondition::ServiceUnavailable
        );
    }
    assert!(
        stranger_client.ping(&to).await.is_ok(),
        "still answers afterwards"
    );
    agent.terminate_gracefully();
}

#[tokio::test]
async fn the_owner_gets_an_answer_and_a_stranger_one_refusal() {
    let net = Network::start();
    let agent = net.spawn_agent();
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    let stranger_jid = net.server.register("stranger", "stranger-pw");
    let mut stranger = TestClient::login(&net.server, &stranger_jid, "stranger-pw").await;
    let to = owner.wait_for_agent(&net.agent_full(), &agent).await;
    let agent_bare: Jid = net.agent_bare().into();

    owner.say(&agent_bare, "tasks").await;
    let reply = owner
        .next_message(PATIENCE)
        .await
        .expect("the owner's answer");
    assert!(reply.1.starts_with("No open tasks."), "{}", reply.1);
    assert_eq!(reply.0.to_bare(), net.agent_bare());

    stranger.say(&agent_bare, "agenda").await;
    let refusal = stranger
        .next_message(PATIENCE)
        .await
        .expect("one polite refusal");
    assert_eq!(refusal.1, REFUSAL);
    stranger.say(&agent_bare, "agenda please").await;
    stranger.say(&agent_bare, "hello?").await;
    // The ping is answered after the messages were read; give the handler a moment more.
    assert!(stranger.ping(&to).await.is_ok());
    assert_eq!(
        stranger.next_message(Duration::from_secs(1)).await,
        None,
        "a stranger is refused once, then ignored"
    );
    agent.terminate_gracefully();
}

#[tokio::test]
async fn the_owner_subscription_is_approved_and_returned() {
    let net = Network::start();
    let agent = net.spawn_agent();
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    owner.wait_for_agent(&net.agent_full(), &agent).await;

    owner
        .send(Presence::subscribe().with_to(net.agent_bare()).into())
        .await;
    let mut approved = false;
    let mut asked_back = false;
    let deadline = Instant::now() + PATIENCE;
    while !(approved && asked_back) && Instant::now() < deadline {
        match owner.next_presence(deadline - Instant::now()).await {
            Some((from, kind)) if from.to_bare() == net.agent_bare() => match kind {
                PresenceType::Subscribed => approved = true,
                PresenceType::Subscribe => asked_back = true,
                _ => {}
            },
            Some(_) => {}
            None => break,
        }
    }
    assert!(approved, "the agent approves its owner's subscription");
    assert!(asked_back, "and asks to see the owner's presence");
    agent.terminate_gracefully();
}

#[tokio::test]
async fn a_wrong_password_stops_run_within_seconds_with_a_clear_message() {
    let net = Network::start();
    let started = Instant::now();
    let out = net
        .agent_command("not-the-password")
        .output()
        .expect("run attache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("login as agent@localhost failed: not-authorized"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ATTACHE_PASSWORD"),
        "says what to check: {stderr}"
    );
    assert!(
        !stderr.contains("not-the-password"),
        "never prints the password: {stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_server_stops_run_with_a_clear_message() {
    let mut net = Network::start();
    net.server.stop();
    let out = net.agent_command("agent-pw").output().expect("run attache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(
        stderr.contains("login as agent@localhost failed: cannot talk to 127.0.0.1:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_starttls_the_agent_keeps_its_password_to_itself() {
    let net = Network::start();
    net.require_tls();
    let out = net.agent_command("agent-pw").output().expect("run attache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(
        stderr.contains("does not offer STARTTLS; refusing to send the password in clear text"),
        "{stderr}"
    );
}

#[tokio::test]
async fn over_starttls_the_agent_logs_in_only_to_a_server_it_can_verify() {
    let net = Network::start_with(Prosody::start_with_tls());
    net.require_tls();

    // Only the system's CAs: the test CA is unknown.
    let out = net.agent_command("agent-pw").output().expect("run attache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown CA must fail: {stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");

    let agent = net.spawn_agent_with(|cmd| {
        cmd.env("SSL_CERT_FILE", net.server.ca_file())
            .env_remove("SSL_CERT_DIR");
    });
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    let to = owner.wait_for_agent(&net.agent_full(), &agent).await;
    assert!(owner.ping(&to).await.is_ok());
    agent.terminate_gracefully();
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_and_nothing_is_lost() {
    let net = Network::start();
    let relay = Relay::start(net.server.addr());
    net.point_agent_at(relay.addr);
    let agent = net.spawn_agent();
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    owner.wait_for_agent(&net.agent_full(), &agent).await;

    // The network fails under the agent; Prosody keeps its session
    // (XEP-0198 hibernation) and queues what arrives meanwhile.
    relay.cut_and_block();
    owner
        .say(
            &net.agent_bare().into(),
            "task add sent while you were away",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.unblock();

    let reply = owner
        .next_message(PATIENCE)
        .await
        .unwrap_or_else(|| panic!("no answer after the outage:\n{}", agent.log()));
    assert_eq!(reply.1, "Added task 1: sent while you were away");
    assert!(
        agent.log().contains("stream resumed"),
        "resumed, not a fresh stream:\n{}",
        agent.log()
    );
    agent.terminate_gracefully();
}

#[tokio::test]
async fn the_agent_survives_a_prosody_restart() {
    let mut net = Network::start();
    let agent = net.spawn_agent();
    {
        let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
        owner.wait_for_agent(&net.agent_full(), &agent).await;
        owner.close().await;
    }

    net.server.restart();

    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    let to = owner.wait_for_agent(&net.agent_full(), &agent).await;
    assert!(owner.ping(&to).await.is_ok(), "the next ping works");
    // A message to the bare JID needs the agent's presence: re-sent after the reset.
    owner.say(&net.agent_bare().into(), "tasks").await;
    let reply = owner
        .next_message(PATIENCE)
        .await
        .expect("an answer after the restart");
    assert!(reply.1.starts_with("No open tasks."), "{}", reply.1);
    agent.terminate_gracefully();
}

#[tokio::test]
async fn ping_round_trips_take_about_a_millisecond() {
    let net = Network::start();
    let agent = net.spawn_agent();
    let bob_jid = net.server.register("bob", "bob-pw");
    let mut owner = TestClient::login(&net.server, &net.owner, "owner-pw").await;
    let mut bob = TestClient::login(&net.server, &bob_jid, "bob-pw").await;
    let bob_full = bob.jid.clone();
    let responder = tokio::spawn(async move {
        bob.answer_pings().await;
    });
    let raw = owner.ping_median(&bob_full, 200).await;
    let to = owner.wait_for_agent(&net.agent_full(), &agent).await;
    let via_agent = owner.ping_median(&to, 200).await;
    responder.abort();
    // Printed, not asserted: timing on shared CI machines is noise. ~1 ms
    // means TCP_NODELAY works on both ends; ~40 ms means Nagle is back.
    println!(
        "XEP-0199 ping round trip, median of 200: client↔client {:.2} ms, client↔agent {:.2} ms",
        raw.as_secs_f64() * 1000.0,
        via_agent.as_secs_f64() * 1000.0
    );
    agent.terminate_gracefully();
}

/// A Prosody with the agent's and the owner's accounts.
struct Network {
    server: Prosody,
    owner: String,
    _data: tempfile::TempDir,
    data_dir: PathBuf,
}

impl Network {
    fn start() -> Network {
        Network::start_with(Prosody::start())
    }

    fn start_with(server: Prosody) -> Network {
        server.register("agent", "agent-pw");
        let owner = server.register("owner", "owner-pw");
        let data = tempfile::tempdir().expect("temp dir");
        let data_dir = data.path().join("data");
        let network = Network {
            server,
            owner,
            _data: data,
            data_dir,
        };
        let out = network
            .attache()
            .args(["init", "--timezone", "UTC", "--jid"])
            .arg(network.agent_bare().to_string())
            .arg("--owner")
            .arg(&network.owner)
            .arg("--server")
            .arg(network.server.server())
            .output()
            .expect("run attache init");
        assert!(
            out.status.success(),
            "attache init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        network
    }

    /// Turns off `allow_plaintext`, which `init --server 127.0.0.1:…` turned on.
    fn require_tls(&self) {
        let path = self.data_dir.join("config.toml");
        let config = std::fs::read_to_string(&path).expect("config.toml");
        assert!(config.contains("allow_plaintext = true"), "{config}");
        let config = config.replace("allow_plaintext = true", "allow_plaintext = false");
        std::fs::write(&path, config).expect("write config.toml");
    }

    /// Makes the agent connect to `addr` instead of the server itself.
    fn point_agent_at(&self, addr: SocketAddr) {
        let path = self.data_dir.join("config.toml");
        let config = std::fs::read_to_string(&path).expect("config.toml");
        let old = format!("server = \"{}\"", self.server.server());
        assert!(config.contains(&old), "{config}");
        let config = config.replace(&old, &format!("server = \"{addr}\""));
        std::fs::write(&path, config).expect("write config.toml");
    }

    fn agent_bare(&self) -> BareJid {
        BareJid::new(&format!("agent@{}", self.server.domain())).expect("agent JID")
    }

    fn agent_full(&self) -> Jid {
        Jid::new(&format!("agent@{}/attache", self.server.domain())).expect("agent JID")
    }

    fn attache(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_attache"));
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("ATTACHE_DATA_DIR")
            .env_remove("ATTACHE_PASSWORD")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn agent_command(&self, password: &str) -> Command {
        let mut cmd = self.attache();
        cmd.arg("run").env("ATTACHE_PASSWORD", password);
        cmd
    }

    /// `attache run` in the background, its log in the data directory.
    fn spawn_agent(&self) -> Agent {
        self.spawn_agent_with(|_| {})
    }

    fn spawn_agent_with(&self, adjust: impl FnOnce(&mut Command)) -> Agent {
        let log = self.data_dir.join("agent.log");
        let file = std::fs::File::create(&log).expect("agent log");
        let mut cmd = self.agent_command("agent-pw");
        cmd.env("RUST_LOG", "attache=debug,info")
            .stdout(Stdio::null())
            .stderr(file);
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn attache run");
        Agent {
            child: Some(child),
            log,
        }
    }
}

/// A running `attache run`, killed on drop.
pub(crate) struct Agent {
    pub(crate) child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Agent {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: the agent goes offline cleanly and exits with success.
    pub(crate) fn terminate_gracefully(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("attache run ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "exit after SIGTERM: {status}\n{}",
            self.log()
        );
        assert!(self.log().contains("offline"), "{}", self.log());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A TCP relay in front of the server whose connections the test can cut,
/// like a network that fails under a client. It runs on a thread of its
/// own: the test's runtime blocks while it waits for the agent to exit.
struct Relay {
    addr: SocketAddr,
    cut: tokio::sync::broadcast::Sender<()>,
    blocked: Arc<AtomicBool>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay port");
        listener.set_nonblocking(true).expect("non-blocking relay");
        let addr = listener.local_addr().expect("relay address");
        let (cut, _) = tokio::sync::broadcast::channel(4);
        let blocked = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (cut_tx, is_blocked) = (cut.clone(), blocked.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("relay runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("relay listener");
                let relay = async {
                    while let Ok((mut inbound, _)) = listener.accept().await {
                        if is_blocked.load(Ordering::SeqCst) {
                            continue; // dropped at once: the network is down
                        }
                        let mut cut_rx = cut_tx.subscribe();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(target).await else {
                                return;
                            };
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = cut_rx.recv() => {}
                            }
                        });
                    }
                };
                tokio::select! {
                    () = relay => {}
                    _ = stopped => {}
                }
            });
        });
        Relay {
            addr,
            cut,
            blocked,
            _stop: stop,
        }
    }

    /// Drops every relayed connection and refuses new ones until [`Relay::unblock`].
    fn cut_and_block(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        let _ = self.cut.send(());
    }

    fn unblock(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
}

/// Plain TCP to the test server, TCP_NODELAY on, no TLS: loopback only.
#[derive(Debug, Clone)]
struct Loopback(SocketAddr);

impl ServerConnector for Loopback {
    type Stream = BufStream<TcpStream>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        let tcp = TcpStream::connect(self.0).await?;
        tcp.set_nodelay(true)?;
        let header = StreamHeader {
            to: Some(Cow::Owned(jid.domain().to_string())),
            from: None,
            id: None,
        };
        let stream = initiate_stream(BufStream::new(tcp), ns, header, timeouts).await?;
        Ok((stream, ChannelBinding::None))
    }
}

/// A person's XMPP client, for the tests' side of the conversation.
pub(crate) struct TestClient {
    pub(crate) client: Client,
    jid: Jid,
    /// Stanzas that arrived while the test waited for something else.
    inbox: VecDeque<Stanza>,
}

impl TestClient {
    pub(crate) async fn login(server: &Prosody, jid: &str, password: &str) -> TestClient {
        let jid = BareJid::new(jid).expect("test JID");
        let mut client =
            Client::new_with_connector(jid, password, Loopback(server.addr()), Timeouts::tight());
        let bound = tokio::time::timeout(PATIENCE, async {
            while let Some(event) = client.next().await {
                if let Event::Online { bound_jid, .. } = event {
                    return Some(bound_jid);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("test client did not log in:\n{}", server.log()));
        let mut me = TestClient {
            client,
            jid: bound,
            inbox: VecDeque::new(),
        };
        // Like every real client: the roster first (Prosody only forwards
        // subscription requests to sessions that asked for it), then presence.
        let roster = Element::builder("query", "jabber:iq:roster").build();
        me.iq(None, IqRequest::Get(roster)).await;
        me.send(Presence::available().into()).await;
        me
    }

    pub(crate) async fn send(&mut self, stanza: Stanza) {
        self.client.send_stanza(stanza).await.expect("send");
    }

    pub(crate) async fn say(&mut self, to: &Jid, body: &str) {
        let message = Message::chat(Some(to.clone())).with_body(Lang::new(), body.to_string());
        self.send(message.into()).await;
    }

    /// Sends an IQ request and waits for its answer, keeping whatever else arrives.
    pub(crate) async fn iq(&mut self, to: Option<&Jid>, request: IqRequest) -> IqResponse {
        match self.iq_within(to, request, PATIENCE).await {
            Some(answer) => answer,
            None => panic!("no answer from {to:?} within {PATIENCE:?}"),
        }
    }

    /// Like [`TestClient::iq`], but `None` after `within` instead of a panic.
    pub(crate) async fn iq_within(
        &mut self,
        to: Option<&Jid>,
        request: IqRequest,
        within: Duration,
    ) -> Option<IqResponse> {
        let token = self.client.send_iq(to.cloned(), request).await;
        tokio::pin!(token);
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = &mut token => return Some(answer.expect("IQ sent")),
                event = self.client.next() => {
                    if let Some(Event::Stanza(stanza)) = event {
                        self.inbox.push_back(stanza);
                    }
                }
                () = &mut deadline => return None,
            }
        }
    }

    pub(crate) async fn ping(&mut self, to: &Jid) -> Result<(), IqResponse> {
        match self.iq(Some(to), IqRequest::Get(Ping.into())).await {
            IqResponse::Result(_) => Ok(()),
            error => Err(error),
        }
    }

    /// Pings the agent until it answers; returns the JID that answered.
    /// Each ping waits at most 2 s: one that got lost while the agent was
    /// still logging in must not use up the whole patience.
    pub(crate) async fn wait_for_agent(&mut self, agent_jid: &Jid, agent: &Agent) -> Jid {
        let deadline = Instant::now() + PATIENCE;
        let mut last = None;
        while Instant::now() < deadline {
            match self
                .iq_within(
                    Some(agent_jid),
                    IqRequest::Get(Ping.into()),
                    Duration::from_secs(2),
                )
                .await
            {
                Some(IqResponse::Result(_)) => return agent_jid.clone(),
                other => {
                    last = Some(format!("{other:?}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!(
            "the agent never answered a ping (last: {last:?}):\n{}",
            agent.log()
        )
    }

    /// The next chat message with a body: (from, body), or None after `within`.
    pub(crate) async fn next_message(&mut self, within: Duration) -> Option<(Jid, String)> {
        self.next_matching(within, |stanza| match stanza {
            Stanza::Message(m) if m.type_ != MessageType::Error => {
                let body = m.get_best_body_cloned(vec![])?.1;
                Some((m.from.clone()?, body))
            }
            _ => None,
        })
        .await
    }

    pub(crate) async fn next_presence(&mut self, within: Duration) -> Option<(Jid, PresenceType)> {
        self.next_matching(within, |stanza| match stanza {
            Stanza::Presence(p) => Some((p.from.clone()?, p.type_.clone())),
            _ => None,
        })
        .await
    }

    pub(crate) async fn next_matching<T>(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Stanza) -> Option<T>,
    ) -> Option<T> {
        while let Some(stanza) = self.inbox.pop_front() {
            if let Some(found) = wanted(&stanza) {
                return Some(found);
            }
        }
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = self.client.next() => match event {
                    Some(Event::Stanza(stanza)) => {
                        if let Some(found) = wanted(&stanza) {
                            return Some(found);
                        }
                    }
                    Some(_) => {}
                    None => return None,
                },
                () = &mut deadline => return None,
            }
        }
    }

    /// Answers every ping until the task is aborted (tokio-xmpp does not).
    pub(crate) async fn answer_pings(&mut self) {
        while let Some(event) = self.client.next().await {
            let Event::Stanza(Stanza::Iq(xmpp_parsers::iq::Iq::Get {
                from, id, payload, ..
            })) = event
            else {
                continue;
            };
            if payload.is("ping", "urn:xmpp:ping") {
                let result = xmpp_parsers::iq::Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: None,
                };
                self.send(result.into()).await;
            }
        }
    }

    /// The median of `count` sequential ping round trips.
    pub(crate) async fn ping_median(&mut self, to: &Jid, count: usize) -> Duration {
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            self.ping(to).await.expect("ping answered");
            times.push(started.elapsed());
        }
        times.sort();
        times[count / 2]
    }

    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.send_end()).await;
    }
}
