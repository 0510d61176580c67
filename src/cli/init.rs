//! `attache init`: a new data directory.

use std::path::Path;

use clap::Args;

use crate::config::{CONFIG_FILE, initial_config, parse_zone, system_zone};
use crate::error::CliError;
use crate::store::{Store, database_path};

/// Create a data directory: config, database and the default policy.
/// Refuses to touch a directory that already holds a store.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The owner's time zone, an IANA name [default: the system's zone, else UTC]
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,

    /// The agent's own XMPP account, e.g. alice-agent@example.org (writes [account])
    #[arg(long, value_name = "AGENT_JID", requires = "owner")]
    jid: Option<String>,

    /// The owner's JID: the only one who may command the agent by chat
    #[arg(long, value_name = "OWNER_JID", requires = "jid")]
    owner: Option<String>,

    /// Connect to HOST:PORT instead of looking the server up in DNS; a
    /// loopback address also allows plain TCP (a local test server)
    #[arg(long, value_name = "HOST:PORT", requires = "jid")]
    server: Option<String>,
}

/// The default sharing policy written to `policies/default.toml`.
pub(crate) const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");

pub(crate) async fn run(data_dir: &Path, args: InitArgs) -> Result<(), CliError> {
    let tz = match &args.timezone {
        Some(name) => parse_zone(name).map_err(CliError::Usage)?,
        None => system_zone().unwrap_or(chrono_tz::Tz::UTC),
    };
    let account = account_table(&args)?;
    let db = database_path(data_dir);
    if db.exists() {
        return Err(CliError::Usage(format!(
            "{} already holds a store ({}): refusing to overwrite it; choose another --data-dir",
            data_dir.display(),
            db.display()
        )));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Io { path, source }
    };
    create_private_dir(data_dir).map_err(io(data_dir))?;
    let config = data_dir.join(CONFIG_FILE);
    if !config.exists() {
        std::fs::write(&config, initial_config(tz.name())).map_err(io(&config))?;
    }
    if let Some(account) = &account {
        append_account(&config, account)?;
    }
    let policies = data_dir.join("policies");
    std::fs::create_dir_all(&policies).map_err(io(&policies))?;
    let default_policy = policies.join("default.toml");
    if !default_policy.exists() {
        std::fs::write(&default_policy, DEFAULT_POLICY).map_err(io(&default_policy))?;
    }
    let store = Store::create(&db).await?;
    store.close().await;
    say!(
        "Created {} (time zone {}). Next: attache --data-dir {} import CALENDAR.ics",
        data_dir.display(),
        tz.name(),
        data_dir.display()
    );
    if account.is_some() {
        say!(
            "The agent's password: set ATTACHE_PASSWORD, or write it to a file and set \
             [account] password_file in {}; then: attache --data-dir {} run",
            config.display(),
            data_dir.display()
        );
    }
    Ok(())
}

/// The `[account]` table for `--jid`/`--owner`/`--server`, validated
/// before anything is written.
fn account_table(args: &InitArgs) -> Result<Option<String>, CliError> {
    let (Some(jid), Some(owner)) = (&args.jid, &args.owner) else {
        return Ok(None);
    };
    let bare = |flag: &str, text: &str| {
        crate::xmpp::BareJid::new(text.trim())
            .ok()
            .filter(|j| j.node().is_some())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{flag} '{text}' is not a bare JID; write user@domain, e.g. alice@example.org"
                ))
            })
    };
    let jid = bare("--jid", jid)?;
    let owner = bare("--owner", owner)?;
    if jid == owner {
        return Err(CliError::Usage(format!(
            "--jid and --owner are both {jid}: the agent needs an XMPP account of its own"
        )));
    }
    let server = args.server.as_deref().unwrap_or("").trim();
    let address = crate::xmpp::parse_server(server).map_err(CliError::Usage)?;
    // Plain TCP only where the password cannot leave the machine.
    let plaintext = matches!(&address, crate::xmpp::ServerAddress::Explicit { host, .. }
        if crate::xmpp::is_loopback_host(host));
    Ok(Some(format!(
        "\n[account]\njid = {}\nowner = {}\nserver = {}\nallow_plaintext = {plaintext}\n",
        toml_string(jid.as_str()),
        toml_string(owner.as_str()),
        toml_string(server),
    )))
}

/// Adds the table to `config.toml`, unless the file already has one.
fn append_account(config: &Path, table: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: config.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(config).map_err(io)?;
    if text.lines().any(|l| l.trim() == "[account]") {
        return Err(CliError::Usage(format!(
            "{} already has an [account] table; edit it there instead of passing --jid",
            config.display()
        )));
    }
    std::fs::write(config, format!("{}{table}", text)).map_err(io)
}

/// A TOML basic string (JIDs and host names hold no control characters).
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The data directory holds the owner's private life: owner-only access.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
