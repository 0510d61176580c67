//! A task handed to another agent, seen from the offerer's side
//! (docs/protocol.md §13): which state the handoff is in, who may report
//! on it, and what the owner is told. Pure: the store persists a
//! [`Handoff`], the runtime feeds it [`StatusReport`]s from `<task-answer>`
//! and `<task-status>` and sends what [`Handoff::take_back`] asks for.
//!
//! Owns the transition rules and the "one short message" policy; must not
//! touch the store, the network or the clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a handed-off task stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum HandoffState {
    /// Sent; no answer yet (or the owner there is being asked).
    Offered,
    Accepted,
    Declined,
    /// Accepted with another due date.
    Countered {
        due: DateTime<Utc>,
    },
    /// The assignee passed it on to `to` (an agent's bare JID).
    Delegated {
        to: String,
    },
    InProcess {
        percent: u8,
    },
    Completed,
    /// Taken back by the owner, or dropped by the assignee's owner.
    Cancelled,
}

impl HandoffState {
    /// The iCalendar PARTSTAT / STATUS spelling, for the store and messages.
    pub fn name(&self) -> &'static str {
        match self {
            HandoffState::Offered => "NEEDS-ACTION",
            HandoffState::Accepted => "ACCEPTED",
            HandoffState::Declined => "DECLINED",
            HandoffState::Countered { .. } => "COUNTER",
            HandoffState::Delegated { .. } => "DELEGATED",
            HandoffState::InProcess { .. } => "IN-PROCESS",
            HandoffState::Completed => "COMPLETED",
            HandoffState::Cancelled => "CANCELLED",
        }
    }

    /// No status update can follow these.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            HandoffState::Declined | HandoffState::Completed | HandoffState::Cancelled
        )
    }
}

/// A status the assignee reports (`<task-answer partstat>` or
/// `<task-status partstat>`), already parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "partstat")]
pub enum ReportedStatus {
    NeedsAction,
    Accepted,
    Declined,
    Counter { due: DateTime<Utc> },
    Delegated { to: String },
    InProcess { percent: Option<u8> },
    Completed,
    Cancelled,
}

impl ReportedStatus {
    /// Reads the attributes of `<task-answer>` / `<task-status>` (§13).
    pub fn from_wire(
        partstat: &str,
        percent: Option<u8>,
        due: Option<DateTime<Utc>>,
        delegated_to: Option<&str>,
    ) -> Result<Self, HandoffError> {
        if percent.is_some_and(|p| p > 100) {
            return Err(HandoffError::BadPercent(percent.unwrap_or_default()));
        }
        Ok(match partstat.to_ascii_uppercase().as_str() {
            "NEEDS-ACTION" => ReportedStatus::NeedsAction,
            "ACCEPTED" => ReportedStatus::Accepted,
            "DECLINED" => ReportedStatus::Declined,
            "COUNTER" => ReportedStatus::Counter {
                due: due.ok_or(HandoffError::Missing {
                    partstat: "COUNTER",
                    attribute: "due",
                })?,
            },
            "DELEGATED" => ReportedStatus::Delegated {
                to: delegated_to
                    .filter(|t| !t.trim().is_empty())
                    .ok_or(HandoffError::Missing {
                        partstat: "DELEGATED",
                        attribute: "delegated-to",
                    })?
                    .to_string(),
            },
            "IN-PROCESS" => ReportedStatus::InProcess { percent },
            "COMPLETED" => ReportedStatus::Completed,
            "CANCELLED" => ReportedStatus::Cancelled,
            other => return Err(HandoffError::UnknownPartstat(other.to_string())),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            ReportedStatus::NeedsAction => "NEEDS-ACTION",
            ReportedStatus::Accepted => "ACCEPTED",
            ReportedStatus::Declined => "DECLINED",
            ReportedStatus::Counter { .. } => "COUNTER",
            ReportedStatus::Delegated { .. } => "DELEGATED",
            ReportedStatus::InProcess { .. } => "IN-PROCESS",
            ReportedStatus::Completed => "COMPLETED",
            ReportedStatus::Cancelled => "CANCELLED",
        }
    }
}

/// One status message from a peer agent about a task we offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The sender's bare JID.
    pub from: String,
    pub status: ReportedStatus,
}

/// What the owner is told: only completion, decline and counter are worth
/// a message ("one short message"); everything else shows in the task list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OwnerNotice {
    /// `by` is the agent that did the work: the delegatee if there is one.
    Completed {
        task: String,
        by: String,
    },
    Declined {
        task: String,
        by: String,
    },
    Countered {
        task: String,
        by: String,
        due: DateTime<Utc>,
    },
}

/// Why a status update was not applied; the runtime answers the peer with
/// `forbidden` for [`HandoffError::NotAssignee`], `conflict` for
/// [`HandoffError::Impossible`], `bad-request` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandoffError {
    #[error("{from} reported on task {task}, which was offered to {assignee}")]
    NotAssignee {
        task: String,
        from: String,
        assignee: String,
    },
    #[error("task {task} is {from}; it cannot become {to}")]
    Impossible {
        task: String,
        from: &'static str,
        to: &'static str,
    },
    #[error("percent-complete {0} is over 100")]
    BadPercent(u8),
    #[error("partstat {partstat} needs the {attribute} attribute")]
    Missing {
        partstat: &'static str,
        attribute: &'static str,
    },
    #[error(
        "unknown partstat {0:?}; expected one of ACCEPTED, DECLINED, COUNTER, DELEGATED, IN-PROCESS, COMPLETED, CANCELLED, NEEDS-ACTION"
    )]
    UnknownPartstat(String),
    #[error("task {task} was delegated by {to} to itself")]
    DelegationToSelf { task: String, to: String },
}

/// The offerer's record of one handed-off task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The task's UID, shared with the assignee.
    pub task: String,
    /// The agent the task was offered to (bare JID).
    pub assignee: String,
    /// The agent the assignee passed it on to, from a DELEGATED status.
    pub delegatee: Option<String>,
    pub state: HandoffState,
    /// The due date in force: ours, or the assignee's counter.
    pub due: Option<DateTime<Utc>>,
}

impl Handoff {
    /// A task just offered to `assignee`.
    pub fn offered(task: String, assignee: String, due: Option<DateTime<Utc>>) -> Self {
        Handoff {
            task,
            assignee,
            delegatee: None,
            state: HandoffState::Offered,
            due,
        }
    }

    /// Applies one status report. Only the assignee, or the delegatee it
    /// recorded, may report; a repeated report changes nothing and tells
    /// nobody (retries are normal); impossible transitions (anything after
    /// completion, decline or cancel; back to NEEDS-ACTION) are refused.
    /// Returns the message for the owner, if any.
    pub fn apply(&mut self, report: &StatusReport) -> Result<Option<OwnerNotice>, HandoffError> {
        let from = report.from.as_str();
        if from != self.assignee && self.delegatee.as_deref() != Some(from) {
            return Err(HandoffError::NotAssignee {
                task: self.task.clone(),
                from: report.from.clone(),
                assignee: self.assignee.clone(),
            });
        }
        let next = match (&self.state, &report.status) {
            // Replays of the current state: accepted, nothing changes.
            (HandoffState::Offered, ReportedStatus::NeedsAction)
            | (HandoffState::Accepted, ReportedStatus::Accepted)
            | (HandoffState::Declined, ReportedStatus::Declined)
            | (HandoffState::Completed, ReportedStatus::Completed)
            | (HandoffState::Cancelled, ReportedStatus::Cancelled) => return Ok(None),
            (HandoffState::Countered { due: a }, ReportedStatus::Counter { due: b }) if a == b => {
                return Ok(None);
            }
            (HandoffState::Delegated { to: a }, ReportedStatus::Delegated { to: b }) if a == b => {
                return Ok(None);
            }
            (HandoffState::InProcess { percent: a }, ReportedStatus::InProcess { percent: b })
                if b.is_none_or(|b| b == *a) =>
            {
                return Ok(None);
            }
            (state, status) if state.is_final() => {
                return Err(self.impossible(status));
            }
            (_, ReportedStatus::NeedsAction) => return Err(self.impossible(&report.status)),
            // Once work started (or was passed on), the answer to the offer is settled.
            (
                HandoffState::InProcess { .. } | HandoffState::Delegated { .. },
                ReportedStatus::Accepted,
            ) => return Err(self.impossible(&report.status)),
            (HandoffState::InProcess { .. }, ReportedStatus::Counter { .. }) => {
                return Err(self.impossible(&report.status));
            }
            (_, ReportedStatus::Accepted) => HandoffState::Accepted,
            (_, ReportedStatus::Declined) => HandoffState::Declined,
            (_, ReportedStatus::Counter { due }) => HandoffState::Countered { due: *due },
            (_, ReportedStatus::Delegated { to }) => {
                if to == from || *to == self.assignee {
                    return Err(HandoffError::DelegationToSelf {
                        task: self.task.clone(),
                        to: to.clone(),
                    });
                }
                HandoffState::Delegated { to: to.clone() }
            }
            (state, ReportedStatus::InProcess { percent }) => {
                let before = match state {
                    HandoffState::InProcess { percent } => *percent,
                    _ => 0,
                };
                let percent = percent.unwrap_or(before);
                if percent > 100 {
                    return Err(HandoffError::BadPercent(percent));
                }
                HandoffState::InProcess { percent }
            }
            (_, ReportedStatus::Completed) => HandoffState::Completed,
            (_, ReportedStatus::Cancelled) => HandoffState::Cancelled,
        };
        let by = self
            .delegatee
            .clone()
            .unwrap_or_else(|| self.assignee.clone());
        let notice = match &next {
            HandoffState::Completed => Some(OwnerNotice::Completed {
                task: self.task.clone(),
                by,
            }),
            HandoffState::Declined => Some(OwnerNotice::Declined {
                task: self.task.clone(),
                by,
            }),
            HandoffState::Countered { due } => {
                self.due = Some(*due);
                Some(OwnerNotice::Countered {
                    task: self.task.clone(),
                    by,
                    due: *due,
                })
            }
            HandoffState::Delegated { to } => {
                self.delegatee = Some(to.clone());
                None
            }
            _ => None,
        };
        self.state = next;
        Ok(notice)
    }

    /// The owner takes the task back. Returns the agent to send
    /// `<task-cancel>` to (always the assignee, which forwards it to its
    /// delegatee), or `None` when it is already cancelled (a repeat).
    /// A completed or declined task cannot be taken back.
    pub fn take_back(&mut self) -> Result<Option<String>, HandoffError> {
        match self.state {
            HandoffState::Cancelled => Ok(None),
            HandoffState::Completed | HandoffState::Declined => Err(HandoffError::Impossible {
                task: self.task.clone(),
                from: self.state.name(),
                to: "CANCELLED",
            }),
            _ => {
                self.state = HandoffState::Cancelled;
                Ok(Some(self.assignee.clone()))
            }
        }
    }

    fn impossible(&self, to: &ReportedStatus) -> HandoffError {
        HandoffError::Impossible {
            task: self.task.clone(),
            from: self.state.name(),
            to: to.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const BOB: &str = "bob-agent@example.org";
    const DAN: &str = "dan-agent@example.org";

    fn offered() -> Handoff {
        Handoff::offered("t1".into(), BOB.into(), None)
    }

    fn from(who: &str, status: ReportedStatus) -> StatusReport {
        StatusReport {
            from: who.into(),
            status,
        }
    }

    fn due() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 20, 17, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn accept_progress_complete_tells_the_owner_once_at_the_end() {
        let mut h = offered();
        assert_eq!(h.apply(&from(BOB, ReportedStatus::Accepted)), Ok(None));
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::InProcess { percent: Some(40) })),
            Ok(None)
        );
        assert_eq!(h.state, HandoffState::InProcess { percent: 40 });
        let done = h.apply(&from(BOB, ReportedStatus::Completed));
        assert_eq!(
            done,
            Ok(Some(OwnerNotice::Completed {
                task: "t1".into(),
                by: BOB.into()
            }))
        );
        // A retried COMPLETED is fine and silent.
        assert_eq!(h.apply(&from(BOB, ReportedStatus::Completed)), Ok(None));
    }

    #[test]
    fn completed_cannot_go_back_to_in_process() {
        let mut h = offered();
        h.apply(&from(BOB, ReportedStatus::Completed)).ok();
        let err = h.apply(&from(BOB, ReportedStatus::InProcess { percent: Some(50) }));
        assert!(matches!(
            err,
            Err(HandoffError::Impossible {
                from: "COMPLETED",
                to: "IN-PROCESS",
                ..
            })
        ));
        assert_eq!(h.state, HandoffState::Completed);
    }

    #[test]
    fn only_the_assignee_or_its_recorded_delegatee_may_report() {
        let mut h = offered();
        let err = h.apply(&from(DAN, ReportedStatus::Completed));
        assert!(matches!(err, Err(HandoffError::NotAssignee { .. })));
        assert_eq!(h.state, HandoffState::Offered);
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::Delegated { to: DAN.into() })),
            Ok(None)
        );
        assert_eq!(h.delegatee.as_deref(), Some(DAN));
        assert_eq!(
            h.apply(&from(DAN, ReportedStatus::InProcess { percent: Some(10) })),
            Ok(None)
        );
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::Completed)),
            Ok(Some(OwnerNotice::Completed {
                task: "t1".into(),
                by: DAN.into()
            }))
        );
        let stranger = h.apply(&from("eve@example.org", ReportedStatus::Cancelled));
        assert!(matches!(stranger, Err(HandoffError::NotAssignee { .. })));
    }

    #[test]
    fn decline_and_counter_tell_the_owner() {
        let mut h = offered();
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::Counter { due: due() })),
            Ok(Some(OwnerNotice::Countered {
                task: "t1".into(),
                by: BOB.into(),
                due: due()
            }))
        );
        assert_eq!(h.due, Some(due()));
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::Counter { due: due() })),
            Ok(None)
        );
        let mut h = offered();
        assert_eq!(
            h.apply(&from(BOB, ReportedStatus::Declined)),
            Ok(Some(OwnerNotice::Declined {
                task: "t1".into(),
                by: BOB.into()
            }))
        );
        assert!(h.apply(&from(BOB, ReportedStatus::Accepted)).is_err());
    }

    #[test]
    fn take_back_cancels_once_and_not_after_completion() {
        let mut h = offered();
        h.apply(&from(BOB, ReportedStatus::Accepted)).ok();
        assert_eq!(h.take_back(), Ok(Some(BOB.into())));
        assert_eq!(h.take_back(), Ok(None));
        assert!(h.apply(&from(BOB, ReportedStatus::Completed)).is_err());
        let mut done = offered();
        done.apply(&from(BOB, ReportedStatus::Completed)).ok();
        assert!(done.take_back().is_err());
    }

    #[test]
    fn impossible_and_malformed_reports_are_refused() {
        let mut h = offered();
        h.apply(&from(BOB, ReportedStatus::InProcess { percent: None }))
            .ok();
        assert_eq!(h.state, HandoffState::InProcess { percent: 0 });
        assert!(h.apply(&from(BOB, ReportedStatus::NeedsAction)).is_err());
        assert!(h.apply(&from(BOB, ReportedStatus::Accepted)).is_err());
        assert!(
            h.apply(&from(BOB, ReportedStatus::Delegated { to: BOB.into() }))
                .is_err()
        );
        assert!(ReportedStatus::from_wire("COMPLETED", Some(101), None, None).is_err());
        assert!(ReportedStatus::from_wire("COUNTER", None, None, None).is_err());
        assert!(ReportedStatus::from_wire("DELEGATED", None, None, Some(" ")).is_err());
        assert!(ReportedStatus::from_wire("MAYBE", None, None, None).is_err());
        assert_eq!(
            ReportedStatus::from_wire("in-process", Some(30), None, None),
            Ok(ReportedStatus::InProcess { percent: Some(30) })
        );
    }

    #[test]
    fn a_handoff_survives_serialization() {
        let mut h = offered();
        h.apply(&from(BOB, ReportedStatus::Delegated { to: DAN.into() }))
            .ok();
        let json = serde_json::to_string(&h).unwrap_or_default();
        let back: Result<Handoff, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(h));
    }

    fn arb_report() -> impl Strategy<Value = StatusReport> {
        let who = prop_oneof![Just(BOB), Just(DAN), Just("eve@example.org")];
        let status = prop_oneof![
            Just(ReportedStatus::NeedsAction),
            Just(ReportedStatus::Accepted),
            Just(ReportedStatus::Declined),
            Just(ReportedStatus::Counter { due: due() }),
            Just(ReportedStatus::Delegated { to: DAN.into() }),
            (0u8..=100).prop_map(|p| ReportedStatus::InProcess { percent: Some(p) }),
            Just(ReportedStatus::Completed),
            Just(ReportedStatus::Cancelled),
        ];
        (who, status).prop_map(|(w, status)| from(w, status))
    }

    proptest! {
        #[test]
        fn final_states_stay_final_and_only_three_changes_tell_the_owner(
            reports in proptest::collection::vec(arb_report(), 0..30)
        ) {
            let mut h = offered();
            for r in &reports {
                let before = h.clone();
                let result = h.apply(r);
                match &result {
                    Err(_) => prop_assert_eq!(&h, &before, "a refused report changed the state"),
                    Ok(Some(notice)) => {
                        prop_assert!(h.state != before.state);
                        let fits = matches!(
                            (notice, &h.state),
                            (OwnerNotice::Completed { .. }, HandoffState::Completed)
                                | (OwnerNotice::Declined { .. }, HandoffState::Declined)
                                | (OwnerNotice::Countered { .. }, HandoffState::Countered { .. })
                        );
                        prop_assert!(fits);
                    }
                    Ok(None) => prop_assert!(!matches!(
                        h.state,
                        HandoffState::Completed | HandoffState::Declined
                    ) || h.state == before.state),
                }
                if before.state.is_final() {
                    prop_assert_eq!(&h.state, &before.state);
                }
                if r.from != BOB && before.delegatee.as_deref() != Some(r.from.as_str()) {
                    let refused = matches!(result, Err(HandoffError::NotAssignee { .. }));
                    prop_assert!(refused, "a stranger's report was not refused");
                }
            }
        }
    }
}
