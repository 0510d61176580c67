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
    /// The store's path cannot be looked at (permissions, I/O): kept apart
    /// from [`StoreError::NotFound`] so nobody is told to `init` over it.
    #[error("{0}")]
    Inaccessible(String),
    #[error(transparent)]
    Ics(#[from] IcsError),
    /// A decision could not be written to the disclosure log (the batch it
    /// was in was not committed; nothing of it was written).
    #[error("could not write the disclosure log: {0}")]
    LogWrite(String),
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
    /// The command line asks for something impossible (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The command ran but did not get what was asked, e.g. a meeting that
    /// could not be booked (exit status 1; the message says why).
    #[error("{0}")]
    NotDone(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Whoever read standard output stopped reading (`attache agenda | head
    /// -1`): the command ends quietly and successfully, like other Unix tools.
    #[error("standard output was closed by its reader")]
    OutputClosed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ics(#[from] IcsError),
    #[error(transparent)]
    Recurrence(#[from] RecurrenceError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Xmpp(#[from] crate::xmpp::XmppError),
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// How serious a policy finding is: an error rejects the whole policy set, a
/// warning is printed and the set still loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about a policy file, at a 1-based line and column (columns
/// count characters, not bytes), printed the way compilers print them:
/// `policies/team.toml:12:9: error: unknown level "bussy" (…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.severity, self.message
        )
    }
}

/// Errors from loading a set of policy files. Any error rejects the whole
/// set: a running agent keeps its last good one.
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut out: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    out.push(format!(
        "{errors} error{} in the policy files; nothing was changed: fix them and check again with `attache policy check`",
        if errors == 1 { "" } else { "s" }
    ));
    out.join("\n")
}

/// Errors of the running agent's services.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Recurrence(#[from] RecurrenceError),
}
