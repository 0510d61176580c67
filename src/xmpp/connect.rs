//! Opening an authenticated XMPP stream: TCP (to the configured
//! `host:port`, or wherever DNS SRV points), TCP_NODELAY, STARTTLS, SASL.
//!
//! Owns the transport and the login; the stanza stream, resource binding
//! and XEP-0198 are tokio-xmpp's `StanzaStream`, driven by `session`.
//!
//! tokio-xmpp's own connectors do not set TCP_NODELAY, which makes every
//! IQ round trip wait ~40 ms for Nagle's algorithm and delayed ACKs; this
//! connector sets it on every socket.
//!
//! Every stream the agent reads stanzas from goes through a
//! [`DepthGuard`], which cuts out elements nested too deep for the XML
//! parser to handle in reasonable time, and names or attribute values too
//! long for it to accept without ending the stream (see `guard`). On a STARTTLS
//! connection the plaintext part before TLS is not guarded (TLS reads the
//! raw socket after `<proceed/>`, and only the server speaks before it);
//! the TLS stream, which carries every stanza, is.

use std::borrow::Cow;

use sasl::common::{ChannelBinding, Credentials};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::connect::starttls::starttls;
use tokio_xmpp::connect::{AsyncReadAndWrite, DnsConfig, ServerConnector};
use tokio_xmpp::error::{AuthError, Error as TxError, ProtocolError};
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{PendingFeaturesRecv, StreamHeader, Timeouts, initiate_stream};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ns;
use xmpp_parsers::sasl::DefinedCondition as SaslCondition;

use super::account::{Account, ServerAddress};
use super::guard::DepthGuard;

/// The one stream type both plaintext and TLS connections end up as.
pub(crate) type BoxedStream = Box<dyn AsyncReadAndWrite + Send + 'static>;

/// Connects as configured: explicit address or DNS, always TCP_NODELAY,
/// STARTTLS unless plaintext was allowed (loopback only, see `Account`).
#[derive(Debug, Clone)]
pub(crate) struct AgentConnector {
    server: ServerAddress,
    plaintext: bool,
}

impl AgentConnector {
    pub(crate) fn for_account(account: &Account) -> Self {
        Self {
            server: account.server.clone(),
            plaintext: account.allow_plaintext,
        }
    }

    async fn tcp(&self, domain: &str) -> Result<TcpStream, TxError> {
        let dns = match &self.server {
            ServerAddress::Explicit { host, port } => DnsConfig::no_srv(host, *port),
            ServerAddress::Dns => DnsConfig::srv_default_client(domain),
        };
        let stream = dns.resolve().await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

impl ServerConnector for AgentConnector {
    type Stream = BoxedStream;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), TxError> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Owned(domain.to_owned())),
            from: None,
            id: None,
        };
        let tcp = self.tcp(domain).await?;
        if self.plaintext {
            let io: BoxedStream = Box::new(BufStream::new(DepthGuard::new(tcp)));
            let stream = initiate_stream(io, ns, header(), timeouts).await?;
            return Ok((stream, ChannelBinding::None));
        }
        let stream = initiate_stream(BufStream::new(tcp), ns, header(), timeouts).await?;
        let (features, stream) = stream.recv_features().await?;
        if !features.can_starttls() {
            // Never fall back to plain text on a real network.
            return Err(ProtocolError::NoTls.into());
        }
        let (tls, binding) = starttls(stream, domain).await?;
        let io: BoxedStream = Box::new(BufStream::new(DepthGuard::new(tls)));
        let stream = initiate_stream(io, ns, header(), timeouts).await?;
        Ok((stream, binding))
    }
}

/// Connects and authenticates; what `StanzaStream` needs to bind a resource.
pub(crate) async fn login(
    connector: &AgentConnector,
    account: &Account,
    timeouts: Timeouts,
) -> Result<Connection, TxError> {
    let jid: Jid = account.jid.clone().into();
    let (stream, binding) = connector.connect(&jid, ns::JABBER_CLIENT, timeouts).await?;
    let (features, stream) = stream.recv_features().await?;
    // `Account` guarantees a user part; an empty name would just fail SASL.
    let user = account.jid.node().map(|n| n.as_str()).unwrap_or_default();
    let credentials = Credentials::default()
        .with_username(user)
        .with_password(account.password.expose())
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, credentials).await?;
    let stream = stream
        .send_header(StreamHeader {
            to: Some(Cow::Owned(account.jid.domain().as_str().to_owned())),
            from: None,
            id: None,
        })
        .await?;
    let (features, stream) = stream.recv_features().await?;
    Ok(Connection {
        stream: stream.box_stream(),
        features,
        identity: account.full_jid().into(),
    })
}

/// Says why a login failed, in words an owner can act on.
pub(crate) fn explain(error: &TxError, account: &Account) -> String {
    let server = match &account.server {
        ServerAddress::Explicit { .. } => account.server.to_string(),
        ServerAddress::Dns => format!(
            "the XMPP server of {} (DNS SRV _xmpp-client._tcp, else port 5222; \
             set [account] server to bypass DNS)",
            account.jid.domain()
        ),
    };
    match error {
        TxError::Auth(AuthError::Fail(condition)) => {
            let name = sasl_condition_name(condition);
            match condition {
                SaslCondition::NotAuthorized | SaslCondition::CredentialsExpired => format!(
                    "{name} (check the password in ATTACHE_PASSWORD or password_file, \
                     and that the account exists)"
                ),
                SaslCondition::AccountDisabled => format!("{name} (ask the server's admin)"),
                _ => name.to_string(),
            }
        }
        TxError::Auth(AuthError::NoMechanism) => {
            "the server offers no SASL mechanism attache supports (SCRAM-SHA-1/256, PLAIN)".into()
        }
        TxError::Protocol(ProtocolError::NoTls) => {
            format!("{server} does not offer STARTTLS; refusing to send the password in clear text")
        }
        TxError::Io(e) => format!("cannot talk to {server}: {e}"),
        // What the DNS lookup returns when no address answered.
        TxError::Disconnected if account.server == ServerAddress::Dns => {
            format!("cannot reach {server}")
        }
        TxError::Disconnected => format!(
            "{server} closed the connection (is it an XMPP server for {}?)",
            account.jid.domain()
        ),
        TxError::DnsNet(_) | TxError::DnsProto(_) | TxError::Idna => format!(
            "found no address for {} in DNS; check the domain of the JID, or set [account] server",
            account.jid.domain()
        ),
        other => format!("{other} (server: {server})"),
    }
}

fn sasl_condition_name(condition: &SaslCondition) -> &'static str {
    match condition {
        SaslCondition::Aborted => "aborted",
        SaslCondition::AccountDisabled => "account-disabled",
        SaslCondition::CredentialsExpired => "credentials-expired",
        SaslCondition::EncryptionRequired => "encryption-required",
        SaslCondition::IncorrectEncoding => "incorrect-encoding",
        SaslCondition::InvalidAuthzid => "invalid-authzid",
        SaslCondition::InvalidMechanism => "invalid-mechanism",
        SaslCondition::MalformedRequest => "malformed-request",
        SaslCondition::MechanismTooWeak => "mechanism-too-weak",
        SaslCondition::NotAuthorized => "not-authorized",
        SaslCondition::TemporaryAuthFailure => "temporary-auth-failure",
    }
}
