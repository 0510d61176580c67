//! One error type per layer. Each message says what went wrong, where, and
//! what to do about it; none echoes a huge input whole.

use std::path::PathBuf;

use thiserror::Error;

/// Errors from reading an iCalendar file. `line` is the 1-based line of the
/// file as written (before unfolding).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}line {line}: {message}", source_prefix(.source_name))]
pub struct IcsError {
    pub source_name: Option<String>,
    pub line: usize,
    pub message: String,
}

fn source_prefix(name: &Option<String>) -> String {
    name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default()
}

impl IcsError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            source_name: None,
            line,
            message: message.into(),
        }
    }

    /// Names the file the error came from.
    pub fn in_file(mut self, name: impl Into<String>) -> Self {
        self.source_name = Some(name.into());
        self
    }
}

/// Errors from expanding recurrence rules.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecurrenceError {
    #[error("event {uid}: RRULE {rule:?} is not valid: {reason}")]
    BadRule {
        uid: String,
        rule: String,
        reason: String,
    },
    #[error(
        "event {uid}: its rules produce more than {limit} instances in the requested window; \
         narrow the window or fix the RRULE (e.g. FREQ=SECONDLY)"
    )]
    TooManyInstances { uid: String, limit: usize },
}

/// Errors from the SQLite store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("could not bring the database up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the stored row {what} is damaged: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Ics(#[from] IcsError),
}

/// Errors from loading the configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no data directory: pass --data-dir DIR or set ATTACHE_DATA_DIR")]
    NoDataDir,
}

/// Errors a CLI command reports to the user; the binary prints them and exits non-zero.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ics(#[from] IcsError),
    #[error(transparent)]
    Recurrence(#[from] RecurrenceError),
}
