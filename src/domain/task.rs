//! Tasks (VTODO, RFC 5545 §3.6.2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time::IcalTime;

/// `STATUS` of a VTODO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    #[default]
    NeedsAction,
    InProcess,
    Completed,
    Cancelled,
}

impl TaskStatus {
    /// The iCalendar spelling (`NEEDS-ACTION`, …).
    pub fn as_ical(self) -> &'static str {
        match self {
            TaskStatus::NeedsAction => "NEEDS-ACTION",
            TaskStatus::InProcess => "IN-PROCESS",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn from_ical(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NEEDS-ACTION" => Some(TaskStatus::NeedsAction),
            "IN-PROCESS" => Some(TaskStatus::InProcess),
            "COMPLETED" => Some(TaskStatus::Completed),
            "CANCELLED" => Some(TaskStatus::Cancelled),
            _ => None,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, TaskStatus::NeedsAction | TaskStatus::InProcess)
    }
}

/// A task as the owner's list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub uid: String,
    pub summary: String,
    pub description: Option<String>,
    pub due: Option<IcalTime>,
    /// 1 (highest) … 9 (lowest); `None` when undefined (RFC 5545 PRIORITY 0).
    pub priority: Option<u8>,
    pub status: TaskStatus,
    pub percent_complete: Option<u8>,
    pub completed: Option<DateTime<Utc>>,
    /// The agent or person this task was handed to (`DELEGATED-TO`).
    pub delegated_to: Option<String>,
    /// Who handed this task to the owner (`DELEGATED-FROM`).
    pub delegated_from: Option<String>,
    pub sequence: i64,
}

impl Task {
    /// A UID no other task has: time, process, and a per-process counter.
    pub fn new_uid(now: DateTime<Utc>) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!(
            "{}-{}-{}@attache",
            now.timestamp_nanos_opt().unwrap_or_default(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A new open task made by the owner.
    pub fn new(summary: impl Into<String>, due: Option<IcalTime>, now: DateTime<Utc>) -> Self {
        Task {
            uid: Task::new_uid(now),
            summary: summary.into(),
            description: None,
            due,
            priority: None,
            status: TaskStatus::NeedsAction,
            percent_complete: None,
            completed: None,
            delegated_to: None,
            delegated_from: None,
            sequence: 0,
        }
    }
}
