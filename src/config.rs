//! Settings, layered with the `config` crate: built-in defaults (the
//! shipped `config.sample.toml`) → `DATA_DIR/config.toml` → `ATTACHE_*`
//! environment variables.
//!
//! Owns reading and validating settings; knows nothing of the store or the
//! network. Unknown keys are errors, so a typo never silently falls back to
//! a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::error::ConfigError;

/// The commented sample configuration; also the bottom layer of defaults.
pub const SAMPLE_CONFIG: &str = include_str!("../config.sample.toml");

/// The file name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Environment variables with the `ATTACHE_` prefix that are not settings.
const NON_SETTING_VARS: &[&str] = &["DATA_DIR", "PASSWORD"];

/// Everything attache reads from its configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The owner's IANA zone; empty for the system's zone.
    pub timezone: String,
    pub calendar: CalendarSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
    pub account: AccountSettings,
}

/// The agent's own XMPP account (validated when `attache run` logs in).
/// The password is never a setting: `ATTACHE_PASSWORD` or `password_file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// The agent's bare JID; empty until `attache init --jid`.
    pub jid: String,
    /// The owner's bare JID: the only one who may command the agent.
    pub owner: String,
    /// `host:port` to connect to, skipping DNS SRV; empty for the normal lookup.
    pub server: String,
    /// A file whose first line is the password, relative to the data directory.
    pub password_file: String,
    /// Plain TCP without TLS; refused unless `server` is a loopback address.
    pub allow_plaintext: bool,
    /// The resource the agent binds.
    pub resource: String,
}

/// How free time is offered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    pub granularity: String,
    pub buffer_before: String,
    pub buffer_after: String,
    pub min_notice: String,
    pub horizon: String,
    pub max_slots: usize,
    /// `mon` … `sun` → `"09:00-17:00"` (comma-separated spans, empty for none).
    pub working_hours: BTreeMap<String, String>,
}

/// The disclosure log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// How long entries are kept, e.g. "400d".
    pub retention: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
}

impl Settings {
    /// Loads the layers for `data_dir` (its `config.toml` may be absent).
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let env: config::Map<String, String> = std::env::vars()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("ATTACHE_")?;
                (!NON_SETTING_VARS.contains(&key)).then(|| (format!("ATTACHE_{key}"), v))
            })
            .collect();
        let built = Config::builder()
            .add_source(File::from_str(SAMPLE_CONFIG, FileFormat::Toml))
            .add_source(
                File::from(path.clone())
                    .format(FileFormat::Toml)
                    .required(false),
            )
            .add_source(
                Environment::with_prefix("ATTACHE")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| invalid(&path, e.to_string()))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| invalid(&path, e.to_string()))?;
        settings.validate(&path)?;
        Ok(settings)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        for (key, value) in [
            ("calendar.granularity", &self.calendar.granularity),
            ("calendar.buffer_before", &self.calendar.buffer_before),
            ("calendar.buffer_after", &self.calendar.buffer_after),
            ("calendar.min_notice", &self.calendar.min_notice),
            ("calendar.horizon", &self.calendar.horizon),
            ("audit.retention", &self.audit.retention),
        ] {
            crate::domain::time::parse_duration(value)
                .map_err(|e| invalid(path, format!("{key}: {e}")))?;
        }
        if Settings::duration(&self.audit.retention) < chrono::Duration::days(7) {
            return Err(invalid(
                path,
                format!(
                    "audit.retention = \"{}\" is too short: keep at least 7d (rate limits count recent entries)",
                    self.audit.retention
                ),
            ));
        }
        if !self.timezone.is_empty() {
            parse_zone(&self.timezone).map_err(|e| invalid(path, format!("timezone: {e}")))?;
        }
        Ok(())
    }

    /// The owner's zone: configured, else the system's, else UTC.
    pub fn owner_tz(&self) -> Tz {
        if let Ok(tz) = parse_zone(&self.timezone) {
            return tz;
        }
        system_zone().unwrap_or(Tz::UTC)
    }

    /// A duration setting, already validated by [`Settings::load`].
    pub fn duration(value: &str) -> chrono::Duration {
        crate::domain::time::parse_duration(value).unwrap_or_else(|_| chrono::Duration::zero())
    }
}

/// Reads an IANA zone name, with a hint when it is not one.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!(
            "'{name}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"
        )
    })
}

/// The system's zone, if it names an IANA zone.
pub fn system_zone() -> Option<Tz> {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
}

fn invalid(path: &Path, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

/// The data directory: `--data-dir`, else `ATTACHE_DATA_DIR` (both handled by
/// clap), else the platform's data directory.
pub fn resolve_data_dir(explicit: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    explicit
        .or_else(|| dirs::data_dir().map(|d| d.join("attache")))
        .ok_or(ConfigError::NoDataDir)
}

/// The `config.toml` that `init` writes: the zone, plus a pointer to the sample.
pub fn initial_config(timezone: &str) -> String {
    format!(
        "# attache configuration. Every key and its default is documented in\n\
         # config.sample.toml in the attache repository; add only what you change.\n\
         timezone = \"{timezone}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_shipped_sample() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|_| ConfigError::NoDataDir)?;
        let s = Settings::load(dir.path())?;
        assert_eq!(s.calendar.granularity, "30m");
        assert_eq!(s.calendar.max_slots, 3);
        assert_eq!(
            s.calendar.working_hours.get("mon").map(String::as_str),
            Some("09:00-17:00")
        );
        assert_eq!(
            s.calendar.working_hours.get("sat").map(String::as_str),
            Some("")
        );
        Ok(())
    }

    #[test]
    fn the_file_overrides_the_defaults_and_typos_are_reported() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|_| ConfigError::NoDataDir)?;
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &path,
            "timezone = \"Asia/Tokyo\"\n[calendar]\ngranularity = \"15m\"\n",
        )
        .map_err(|_| ConfigError::NoDataDir)?;
        let s = Settings::load(dir.path())?;
        assert_eq!(s.owner_tz(), chrono_tz::Asia::Tokyo);
        assert_eq!(s.calendar.granularity, "15m");

        std::fs::write(&path, "timezon = \"Asia/Tokyo\"\n").map_err(|_| ConfigError::NoDataDir)?;
        let err = Settings::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("timezon"), "{err}");

        std::fs::write(&path, "timezone = \"Mars/Olympus\"\n")
            .map_err(|_| ConfigError::NoDataDir)?;
        let err = Settings::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not an IANA time zone"), "{err}");
        Ok(())
    }
}
