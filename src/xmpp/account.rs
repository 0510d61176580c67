//! The agent's XMPP account as it is used to log in: its JID, its owner,
//! where to connect, whether plain TCP is allowed, and the password.
//!
//! Owns turning the `[account]` settings plus `ATTACHE_PASSWORD` or the
//! password file into a validated [`Account`]; reads nothing but that file.
//! The password is a [`Secret`]: it never appears in `Debug`, `Display`,
//! logs or error messages.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use jid::{BareJid, FullJid, ResourcePart};

use crate::config::AccountSettings;

use super::error::XmppError;

/// The port of `_xmpp-client._tcp` when `server` names a host without one.
const DEFAULT_CLIENT_PORT: u16 = 5222;

/// A password: usable by the login, invisible everywhere else.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for the SASL exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the TCP connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    /// The normal lookup: `_xmpp-client._tcp.DOMAIN` SRV records, else DOMAIN:5222.
    Dns,
    /// Exactly this host and port (the `server` setting); no SRV lookup.
    Explicit { host: String, port: u16 },
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns => f.write_str("the server found by DNS"),
            Self::Explicit { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Explicit { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Everything needed to log in as the agent.
#[derive(Debug, Clone)]
pub struct Account {
    /// The agent's own bare JID.
    pub jid: BareJid,
    /// The owner's bare JID: the only one who may command the agent.
    pub owner: BareJid,
    pub server: ServerAddress,
    /// Plain TCP, no TLS: only ever true for a loopback `server`.
    pub allow_plaintext: bool,
    pub resource: ResourcePart,
    pub password: Secret,
}

impl Account {
    /// Validates the settings and finds the password: `env_password` (the
    /// value of `ATTACHE_PASSWORD`) wins over `password_file`, which is read
    /// relative to `data_dir`.
    pub fn from_settings(
        settings: &AccountSettings,
        data_dir: &Path,
        env_password: Option<String>,
    ) -> Result<Self, XmppError> {
        let bad = |m: String| XmppError::Account(m);
        if settings.jid.trim().is_empty() {
            return Err(bad(
                "jid is empty: set [account] jid (the agent's own account) and owner in \
                 config.toml, or start a new data directory with \
                 `attache init --jid AGENT_JID --owner YOUR_JID`"
                    .into(),
            ));
        }
        let jid = parse_account_jid("jid", &settings.jid)?;
        if settings.owner.trim().is_empty() {
            return Err(bad(
                "owner is empty: set [account] owner to your own JID (only it may command the agent)"
                    .into(),
            ));
        }
        let owner = BareJid::new(settings.owner.trim())
            .map_err(|e| bad(format!("owner '{}' is not a JID: {e}", settings.owner)))?;
        if owner == jid {
            return Err(bad(format!(
                "owner and jid are both {jid}: the agent needs an account of its own"
            )));
        }
        let resource = ResourcePart::new(settings.resource.trim())
            .map_err(|e| {
                bad(format!(
                    "resource '{}' is not valid: {e}",
                    settings.resource
                ))
            })?
            .into_owned();
        let server = parse_server(&settings.server).map_err(bad)?;
        if settings.allow_plaintext {
            let loopback =
                matches!(&server, ServerAddress::Explicit { host, .. } if is_loopback_host(host));
            if !loopback {
                return Err(bad(format!(
                    "allow_plaintext is only allowed with a loopback server \
                     (127.0.0.1, ::1 or localhost); with {server} the password would cross \
                     the network in clear text"
                )));
            }
        }
        let password = match env_password.filter(|p| !p.is_empty()) {
            Some(p) => Secret::new(p),
            None => read_password_file(&settings.password_file, data_dir)?,
        };
        Ok(Self {
            jid,
            owner,
            server,
            allow_plaintext: settings.allow_plaintext,
            resource,
            password,
        })
    }

    /// The JID the agent asks to bind: `jid/resource`.
    pub fn full_jid(&self) -> FullJid {
        self.jid.with_resource(&self.resource)
    }
}

/// True for addresses that never leave this machine: `localhost`,
/// 127.0.0.0/8 and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Reads `host:port`, `[v6]:port` or a bare host (port 5222); empty means DNS.
pub fn parse_server(text: &str) -> Result<ServerAddress, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(ServerAddress::Dns);
    }
    let invalid = |why: &str| {
        format!(
            "server '{text}' {why}; write HOST:PORT, e.g. xmpp.example.org:5222 or 127.0.0.1:5222, or leave it empty for DNS"
        )
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("has no closing ']'"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(invalid("has text after ']'")),
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address has no room for a port.
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("has no valid port"))?,
        None => DEFAULT_CLIENT_PORT,
    };
    Ok(ServerAddress::Explicit {
        host: host.to_string(),
        port,
    })
}

fn parse_account_jid(key: &str, text: &str) -> Result<BareJid, XmppError> {
    let jid = BareJid::new(text.trim())
        .map_err(|e| XmppError::Account(format!("{key} '{text}' is not a bare JID: {e}")))?;
    if jid.node().is_none() {
        return Err(XmppError::Account(format!(
            "{key} '{text}' has no user part: write user@domain"
        )));
    }
    Ok(jid)
}

fn read_password_file(file: &str, data_dir: &Path) -> Result<Secret, XmppError> {
    if file.trim().is_empty() {
        return Err(XmppError::Account(
            "no password: set ATTACHE_PASSWORD, or [account] password_file to a file holding it"
                .into(),
        ));
    }
    let path = data_dir.join(file.trim());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| XmppError::Account(format!("password_file {}: {e}", path.display())))?;
    // The first line, so an editor's trailing newline is not part of it.
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(XmppError::Account(format!(
            "password_file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(jid: &str, owner: &str, server: &str, plaintext: bool) -> AccountSettings {
        AccountSettings {
            jid: jid.into(),
            owner: owner.into(),
            server: server.into(),
            password_file: String::new(),
            allow_plaintext: plaintext,
            resource: "attache".into(),
        }
    }

    fn account(s: &AccountSettings) -> Result<Account, XmppError> {
        Account::from_settings(s, Path::new("/nonexistent"), Some("pw".into()))
    }

    #[test]
    fn the_password_never_shows_in_debug_or_display() -> Result<(), XmppError> {
        let a = account(&settings("agent@example.org", "me@example.org", "", false))?;
        let shown = format!("{a:?} {}", a.password);
        assert!(!shown.contains("pw\""), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        assert_eq!(a.password.expose(), "pw");
        Ok(())
    }

    #[test]
    fn server_addresses_are_read_with_or_without_port() {
        let explicit = |h: &str, p| ServerAddress::Explicit {
            host: h.into(),
            port: p,
        };
        assert_eq!(parse_server(""), Ok(ServerAddress::Dns));
        assert_eq!(
            parse_server("127.0.0.1:5333"),
            Ok(explicit("127.0.0.1", 5333))
        );
        assert_eq!(
            parse_server("xmpp.example.org"),
            Ok(explicit("xmpp.example.org", 5222))
        );
        assert_eq!(parse_server("[::1]:5333"), Ok(explicit("::1", 5333)));
        assert_eq!(parse_server("::1"), Ok(explicit("::1", 5222)));
        assert!(parse_server("host:port").is_err());
        assert!(parse_server(":5222").is_err());
    }

    #[test]
    fn plaintext_is_refused_unless_the_server_is_loopback() {
        for ok in [
            "127.0.0.1:5222",
            "localhost:5222",
            "[::1]:5222",
            "127.3.4.5",
        ] {
            assert!(
                account(&settings("a@x", "o@x", ok, true)).is_ok(),
                "{ok} is loopback"
            );
        }
        for refused in ["", "xmpp.example.org:5222", "10.0.0.1:5222"] {
            let err = account(&settings("a@x", "o@x", refused, true))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("allow_plaintext"), "{refused}: {err}");
        }
    }

    #[test]
    fn missing_or_malformed_jids_say_what_to_do() {
        let err = |s: AccountSettings| account(&s).err().map(|e| e.to_string());
        let e = err(settings("", "o@x", "", false)).unwrap_or_default();
        assert!(e.contains("attache init --jid"), "{e}");
        let e = err(settings("example.org", "o@x", "", false)).unwrap_or_default();
        assert!(e.contains("no user part"), "{e}");
        let e = err(settings("a@x", "", "", false)).unwrap_or_default();
        assert!(e.contains("owner is empty"), "{e}");
        let e = err(settings("a@x", "a@x", "", false)).unwrap_or_default();
        assert!(e.contains("account of its own"), "{e}");
    }

    #[test]
    fn the_password_comes_from_the_environment_or_the_first_line_of_the_file()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("pw"), "from-file\nignored\n")?;
        let mut s = settings("a@x", "o@x", "", false);
        s.password_file = "pw".into();
        let a = Account::from_settings(&s, dir.path(), None)?;
        assert_eq!(a.password.expose(), "from-file");
        let a = Account::from_settings(&s, dir.path(), Some("from-env".into()))?;
        assert_eq!(a.password.expose(), "from-env");
        s.password_file = String::new();
        let e = Account::from_settings(&s, dir.path(), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("ATTACHE_PASSWORD"), "{e}");
        Ok(())
    }
}
