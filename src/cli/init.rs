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
}

/// The default sharing policy written to `policies/default.toml`.
pub(crate) const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");

pub(crate) async fn run(data_dir: &Path, args: InitArgs) -> Result<(), CliError> {
    let tz = match &args.timezone {
        Some(name) => parse_zone(name).map_err(CliError::Usage)?,
        None => system_zone().unwrap_or(chrono_tz::Tz::UTC),
    };
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
    let policies = data_dir.join("policies");
    std::fs::create_dir_all(&policies).map_err(io(&policies))?;
    let default_policy = policies.join("default.toml");
    if !default_policy.exists() {
        std::fs::write(&default_policy, DEFAULT_POLICY).map_err(io(&default_policy))?;
    }
    let store = Store::create(&db).await?;
    store.close().await;
    println!(
        "Created {} (time zone {}). Next: attache --data-dir {} import CALENDAR.ics",
        data_dir.display(),
        tz.name(),
        data_dir.display()
    );
    Ok(())
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
