//! The SQLite store: contacts, events, tasks, and the occurrence index.
//!
//! The only user of `sqlx`. Opens the database in WAL mode with foreign keys
//! on and `synchronous=NORMAL` (nothing acknowledged is lost on `kill -9`),
//! applies the embedded migrations, and starts every write with
//! `BEGIN IMMEDIATE` so that a CLI writing next to a running agent waits for
//! the lock instead of failing with SQLITE_BUSY halfway through. Knows
//! nothing about iCalendar text beyond storing it; asks `calendar::expand`
//! what a series means.

mod audit;
mod contacts;
mod decisions;
mod events;
mod exchange;
mod holds;
mod meetings;
mod orders;
mod pending;
mod tasks;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::error::StoreError;

pub use audit::{ChainReport, ReplayRecord};
pub use decisions::Committed;
pub use events::{ImportMode, ImportReport, ImportSet};
pub use exchange::OutboxItem;
pub use holds::{HoldOutcome, HoldRequest};
pub use meetings::{BookOutcome, CancelOutcome, NewMeeting};
pub use orders::{NegotiationEnd, OrderState, StoredOrder};
pub use pending::{NewPending, PendingItem, PendingState, ResolveOutcome};
pub use tasks::{RemoteStatusOutcome, StoredTask, TaskHandoff, TaskOffer};

/// Each connection's SQLite page cache (negative: in KiB): 512 KiB instead
/// of SQLite's default of about 2 MB, which a growing disclosure log fills
/// on every connection. The hot path touches a few dozen pages (the newest
/// leaves of the log and of the remembered replies, and their parents); a
/// page that falls out is read back from the OS cache. Measurements: "About
/// the memory growth" in docs/reliability.md.
const PAGE_CACHE: &str = "-512";

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "attache.sqlite";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on the owner's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The disclosure log's head as this process last wrote or read it: a
    /// hint that saves a read per decision. The database refuses an append
    /// built on a stale head (a trigger), and the append then rereads it.
    audit_head: decisions::Head,
    /// How to open the disclosure log writer's own connection; `None` for
    /// an in-memory database, which has only the pool's one.
    options: Option<SqliteConnectOptions>,
    /// Started on the first decision logged, so CLI commands never start it.
    writer: std::sync::Arc<std::sync::OnceLock<decisions::DecisionWriter>>,
}

impl Store {
    /// Creates a new database at `path`; fails if one exists already.
    pub async fn create(path: &Path) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists already: refusing to overwrite an existing store",
                path.display()
            )));
        }
        Self::connect(path, true).await
    }

    /// Opens an existing database at `path`, bringing its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        // `Path::exists` says "no" when it may not look (EACCES on a
        // directory above): that must not read as "run init", which would
        // send the owner to create a second store next to their real one.
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => {
                return Err(StoreError::NotFound(format!(
                    "no store at {}: run `attache --data-dir DIR init` first",
                    path.display()
                )));
            }
            Err(e) => {
                // The deepest directory this user can still see is the one
                // that does not let them further in.
                let blocking = path
                    .ancestors()
                    .skip(1)
                    .find(|dir| dir.try_exists().unwrap_or(false))
                    .unwrap_or(path);
                let what = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    format!(
                        "permission denied: the directory {} does not let this user in. \
                         Run attache as the user who owns the data directory, or give this \
                         user search (x) permission on every directory above the store and \
                         read and write permission on the data directory (check with \
                         `ls -ld {}`)",
                        blocking.display(),
                        blocking.display()
                    )
                } else {
                    format!("{e}; check that {} can be read", blocking.display())
                };
                return Err(StoreError::Inaccessible(format!(
                    "cannot tell whether there is a store at {}: {what}",
                    path.display()
                )));
            }
        }
        Self::connect(path, false).await
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` is a different database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self::with_pool(pool, None))
    }

    fn with_pool(pool: SqlitePool, options: Option<SqliteConnectOptions>) -> Self {
        Self {
            pool,
            audit_head: Default::default(),
            options,
            writer: Default::default(),
        }
    }

    /// The disclosure log's writer (see `decisions.rs`), for file databases.
    fn decision_writer(&self) -> Option<&decisions::DecisionWriter> {
        let options = self.options.as_ref()?;
        Some(self.writer.get_or_init(|| {
            decisions::DecisionWriter::start(options.clone(), self.audit_head.clone())
        }))
    }

    async fn connect(path: &Path, create: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", PAGE_CACHE);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        // Migrations take the write lock themselves; two processes upgrading at
        // once serialize on it.
        MIGRATOR.run(&pool).await?;
        Ok(Self::with_pool(pool, Some(options)))
    }

    /// Starts a write transaction that holds the write lock from the start.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs SQLite's own consistency check; `Ok(())` when it says "ok".
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        match rows.as_slice() {
            [(ok,)] if ok == "ok" => Ok(()),
            _ => Err(StoreError::Corrupt {
                what: "database".into(),
                detail: rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("; "),
            }),
        }
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        if let Some(writer) = self.writer.get() {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The database path inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

async fn meta_get(
    conn: &mut sqlx::SqliteConnection,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
        .bind(key.to_owned())
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.0))
}

async fn meta_set(
    conn: &mut sqlx::SqliteConnection,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .bind(key.to_owned())
    .bind(value.to_owned())
    .execute(conn)
    .await?;
    Ok(())
}

/// Counters bumped by every write to a part of the store, so a running agent
/// (another process, maybe) notices CLI edits by polling one cheap row.
pub(crate) const CALENDAR_VERSION: &str = "calendar_version";
pub(crate) const CONTACTS_VERSION: &str = "contacts_version";
/// Bumped when holds are placed, extended, released, booked or expired, so
/// the running agent's view adds or drops them without rebuilding its index.
pub(crate) const HOLDS_VERSION: &str = "holds_version";

async fn bump_version(conn: &mut sqlx::SqliteConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    )
    .bind(key.to_owned())
    .execute(conn)
    .await?;
    Ok(())
}

/// Where the store stands: each part's change counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    pub calendar: i64,
    pub contacts: i64,
    pub holds: i64,
}

impl Store {
    /// The change counters; compare two readings to know what changed.
    pub async fn versions(&self) -> Result<Versions, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM meta WHERE key IN ('calendar_version', 'contacts_version', 'holds_version')",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut v = Versions::default();
        for (k, val) in rows {
            let n = val.parse().unwrap_or(0);
            match k.as_str() {
                CALENDAR_VERSION => v.calendar = n,
                CONTACTS_VERSION => v.contacts = n,
                HOLDS_VERSION => v.holds = n,
                _ => {}
            }
        }
        Ok(v)
    }
}

/// Unix seconds as an instant; a value out of chrono's range is a damaged row.
fn instant(what: &str, t: i64) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::from_timestamp(t, 0).ok_or_else(|| StoreError::Corrupt {
        what: what.into(),
        detail: format!("timestamp {t} out of range"),
    })
}

fn now_text(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: "value to store".into(),
        detail: e.to_string(),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.into(),
        detail: e.to_string(),
    })
}
