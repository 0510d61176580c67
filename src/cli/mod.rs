//! The command line: one file per subcommand, each subcommand's doc comment
//! is its `--help` text. Listings take `--json`.
//!
//! Owns argument parsing, opening the data directory, and printing. Domain
//! logic lives in `calendar` and `store`; this layer only wires them.

/// `println!` for a command's output. A reader that stops reading (`attache
/// agenda | head -1`) ends the command with [`CliError::OutputClosed`]
/// instead of a panic; the enclosing function must return a `Result` whose
/// error comes from [`CliError`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say_line(format_args!($($arg)*))?
    };
}

mod agenda;
mod busy;
mod contacts;
mod export;
mod free;
mod import;
mod init;
mod log;
mod meet;
mod policy;
mod run;
mod tasks;
mod when;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::error::CliError;
use crate::store::{Store, database_path};

/// attache — your calendar, contacts and tasks, negotiated by your own agent over XMPP.
#[derive(Debug, Parser)]
#[command(name = "attache", version, about, long_about = None)]
pub struct Cli {
    /// Where the store, config and policies live [default: the platform data dir]
    #[arg(long, env = "ATTACHE_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Pretend it is this instant (RFC 3339); for tests and "what would it have said"
    #[arg(
        long,
        env = "ATTACHE_NOW",
        global = true,
        hide = true,
        value_name = "TIME"
    )]
    pub now: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Import(import::ImportArgs),
    Sync(import::SyncArgs),
    Export(export::ExportArgs),
    Busy(busy::BusyArgs),
    Free(free::FreeArgs),
    Agenda(agenda::AgendaArgs),
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
    Log(log::LogArgs),
    Meet(meet::MeetArgs),
    Run(run::RunArgs),
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// An opened data directory: settings, store, the owner's zone and `now`.
pub(crate) struct Context {
    pub(crate) data_dir: PathBuf,
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) tz: Tz,
    pub(crate) now: DateTime<Utc>,
}

impl Context {
    async fn open(data_dir: &Path, now: DateTime<Utc>) -> Result<Self, CliError> {
        let settings = Settings::load(data_dir)?;
        let store = Store::open(&database_path(data_dir)).await?;
        let tz = settings.owner_tz();
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            settings,
            store,
            tz,
            now,
        })
    }
}

/// Runs one CLI invocation.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let data_dir = crate::config::resolve_data_dir(cli.data_dir)?;
    if let Command::Init(args) = cli.command {
        return init::run(&data_dir, args).await;
    }
    let now = match &cli.now {
        Some(t) => parse_instant("--now", t)?,
        None => Utc::now(),
    };
    let ctx = Context::open(&data_dir, now)
        .await
        .map_err(|e| storage_failure(e, &data_dir))?;
    let result = match cli.command {
        Command::Init(_) => Ok(()),
        Command::Import(args) => import::run_import(&ctx, args).await,
        Command::Sync(args) => import::run_sync(&ctx, args).await,
        Command::Export(args) => export::run(&ctx, args).await,
        Command::Busy(args) => busy::run(&ctx, args).await,
        Command::Free(args) => free::run(&ctx, args).await,
        Command::Agenda(args) => agenda::run(&ctx, args).await,
        Command::Contacts(cmd) => contacts::run(&ctx, cmd).await,
        Command::Tasks(cmd) => tasks::run(&ctx, cmd).await,
        Command::Log(args) => log::run(&ctx, args).await,
        Command::Meet(args) => meet::run(&ctx, args).await,
        Command::Run(args) => run::run(&ctx, &data_dir, args).await,
        Command::Policy(cmd) => policy::run(&ctx, cmd).await,
    };
    ctx.store.close().await;
    result.map_err(|e| storage_failure(e, &data_dir))
}

/// Turns SQLite's terse "attempt to write a readonly database" and "disk
/// I/O error" into what the owner can act on: which directory, what is
/// wrong with it and what to do. Other errors pass through unchanged.
fn storage_failure(e: CliError, data_dir: &Path) -> CliError {
    use crate::error::{AgentError, StoreError};
    let sqlite = match &e {
        CliError::Store(StoreError::Sqlx(sqlx::Error::Database(db)))
        | CliError::Agent(AgentError::Store(StoreError::Sqlx(sqlx::Error::Database(db)))) => db,
        _ => return e,
    };
    // Extended result codes carry the primary code in their low byte.
    let primary = sqlite
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    let store = database_path(data_dir);
    let what = match primary {
        // SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN
        Some(8) | Some(3) | Some(14) => format!(
            "cannot write to the store {}: the data directory {} (or a file in it) is read-only \
             for this user. Make the directory and its files writable by the user running \
             attache (check with `ls -la {}`), or run attache as their owner",
            store.display(),
            data_dir.display(),
            data_dir.display()
        ),
        // SQLITE_FULL, SQLITE_IOERR (a full disk shows up as either)
        Some(13) | Some(10) => format!(
            "cannot write to the store {}: the disk holding {} is full or failing. Free some \
             space there (check with `df -h {}`) and try again",
            store.display(),
            data_dir.display(),
            data_dir.display()
        ),
        _ => return e,
    };
    CliError::NotDone(format!(
        "{what}. The failed write was rolled back; the store holds what it held before \
         (SQLite said: {})",
        sqlite.message()
    ))
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Usage(format!("could not render JSON: {e}")))?;
    say!("{text}");
    Ok(())
}

/// One line on standard output; see `say!`.
pub(crate) fn say_line(line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").map_err(output_error)
}

/// Writes `text` as it is to standard output.
pub(crate) fn say_raw(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(output_error)
}

fn output_error(source: std::io::Error) -> CliError {
    if source.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::OutputClosed
    } else {
        CliError::Io {
            path: "standard output".into(),
            source,
        }
    }
}

/// A UTC instant as scripts read it: `2026-01-13T09:00:00Z`.
pub(crate) fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reads an RFC 3339 instant given on the command line.
pub(crate) fn parse_instant(flag: &str, text: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CliError::Usage(format!(
                "{flag} '{text}' is not an RFC 3339 time ({e}); write e.g. 2026-01-13T09:00:00Z or 2026-01-13T10:00:00+01:00"
            ))
        })
}
