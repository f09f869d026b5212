//! The task state machine, priorities and target statuses.
//!
//! [`TaskStatus::apply`] is the one place that decides which transitions are legal; stores
//! persist each transition as a compare-and-swap on the previous status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Status of a task (PostgreSQL enum `taskstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Created, not started (or started with a future `scheduled_at`).
    Pending,
    /// Running: its lanes take targets.
    InProgress,
    /// Paused by the user or by the circuit breaker.
    Paused,
    /// Every target has been processed.
    Completed,
    /// Stopped for an unrecoverable reason.
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

/// Something that happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEvent {
    /// The user starts the task. `scheduled_later` is true when its `scheduled_at` is still in
    /// the future: the task then stays `PENDING` until that time.
    Start {
        /// Whether the start time lies in the future.
        scheduled_later: bool,
    },
    /// The user (or the circuit breaker) pauses the task.
    Pause,
    /// The user resumes a paused task.
    Resume,
    /// The user cancels the task.
    Cancel,
    /// Every target has been processed.
    Complete,
    /// Something unrecoverable happened (group gone, no usable account left).
    Fail,
}

impl TaskEvent {
    /// Short name of the event, as in the API paths.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEvent::Start { .. } => "start",
            TaskEvent::Pause => "pause",
            TaskEvent::Resume => "resume",
            TaskEvent::Cancel => "cancel",
            TaskEvent::Complete => "complete",
            TaskEvent::Fail => "fail",
        }
    }
}

/// An event that is not allowed in the task's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a task that is {from}", event = event.as_str())]
pub struct InvalidTransition {
    /// Status the task was in.
    pub from: TaskStatus,
    /// The refused event.
    pub event: TaskEvent,
}

impl TaskStatus {
    /// Every status, in a stable order.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Paused,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The transition function of the state machine.
    pub fn apply(self, event: TaskEvent) -> Result<TaskStatus, InvalidTransition> {
        use TaskEvent as E;
        use TaskStatus as S;
        let next = match (self, event) {
            (
                S::Pending,
                E::Start {
                    scheduled_later: true,
                },
            ) => S::Pending,
            (
                S::Pending,
                E::Start {
                    scheduled_later: false,
                },
            ) => S::InProgress,
            (S::InProgress, E::Pause) => S::Paused,
            (S::Paused, E::Resume) => S::InProgress,
            (S::Pending | S::InProgress | S::Paused, E::Cancel) => S::Cancelled,
            (S::InProgress, E::Complete) => S::Completed,
            (S::Pending | S::InProgress | S::Paused, E::Fail) => S::Failed,
            (from, event) => return Err(InvalidTransition { from, event }),
        };
        Ok(next)
    }

    /// Whether the task can never run again.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Storage and API name (`IN_PROGRESS`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Paused => "PAUSED",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status or priority name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being parsed.
    pub kind: &'static str,
    /// The offending input.
    pub value: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl FromStr for TaskStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == up)
            .ok_or_else(|| UnknownName {
                kind: "task status",
                value: super::echo(s),
                expected: "PENDING, IN_PROGRESS, PAUSED, COMPLETED, FAILED, CANCELLED",
            })
    }
}

/// Priority of a task (PostgreSQL enum `taskpriority`). Ordered: `Low < Medium < High`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    /// Runs when nothing more important is runnable.
    Low,
    /// The default (`normal` is accepted as a synonym).
    #[default]
    #[serde(alias = "NORMAL", alias = "normal", alias = "medium", alias = "Medium")]
    Medium,
    /// Takes accounts from lower priorities at their next step.
    High,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// Storage and API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "LOW",
            Priority::Medium => "MEDIUM",
            Priority::High => "HIGH",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = UnknownName;

    /// Any case; `normal` means `MEDIUM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LOW" => Ok(Priority::Low),
            "MEDIUM" | "NORMAL" => Ok(Priority::Medium),
            "HIGH" => Ok(Priority::High),
            _ => Err(UnknownName {
                kind: "priority",
                value: super::echo(s),
                expected: "LOW, MEDIUM (or NORMAL), HIGH",
            }),
        }
    }
}

/// Status of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Not yet attempted.
    Pending,
    /// Claimed by a lane; the platform call may be under way.
    InProgress,
    /// Reached (invited, already a member, or message sent).
    Success,
    /// Attempted and refused for a target-level reason.
    Failed,
    /// Not attempted on purpose (suppressed, duplicate, invalid).
    Skipped,
    /// The platform call may or may not have happened; never retried blindly.
    Uncertain,
}

impl TargetStatus {
    /// Every target status, in a stable order.
    pub const ALL: [TargetStatus; 6] = [
        TargetStatus::Pending,
        TargetStatus::InProgress,
        TargetStatus::Success,
        TargetStatus::Failed,
        TargetStatus::Skipped,
        TargetStatus::Uncertain,
    ];

    /// Storage and API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::InProgress => "in_progress",
            TargetStatus::Success => "success",
            TargetStatus::Failed => "failed",
            TargetStatus::Skipped => "skipped",
            TargetStatus::Uncertain => "uncertain",
        }
    }

    /// Whether the target needs no more work.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            TargetStatus::Success | TargetStatus::Failed | TargetStatus::Skipped
        )
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let low = s.trim().to_ascii_lowercase();
        TargetStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == low)
            .ok_or_else(|| UnknownName {
                kind: "target status",
                value: super::echo(s),
                expected: "pending, in_progress, success, failed, skipped, uncertain",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [TaskEvent; 7] = [
        TaskEvent::Start {
            scheduled_later: false,
        },
        TaskEvent::Start {
            scheduled_later: true,
        },
        TaskEvent::Pause,
        TaskEvent::Resume,
        TaskEvent::Cancel,
        TaskEvent::Complete,
        TaskEvent::Fail,
    ];

    fn expected(from: TaskStatus, event: TaskEvent) -> Option<TaskStatus> {
        use TaskEvent as E;
        use TaskStatus as S;
        Some(match (from, event) {
            (S::Pending, E::Start { scheduled_later }) => {
                if scheduled_later {
                    S::Pending
                } else {
                    S::InProgress
                }
            }
            (S::InProgress, E::Pause) => S::Paused,
            (S::Paused, E::Resume) => S::InProgress,
            (S::Pending, E::Cancel) | (S::InProgress, E::Cancel) | (S::Paused, E::Cancel) => {
                S::Cancelled
            }
            (S::InProgress, E::Complete) => S::Completed,
            (S::Pending, E::Fail) | (S::InProgress, E::Fail) | (S::Paused, E::Fail) => S::Failed,
            _ => return None,
        })
    }

    #[test]
    fn every_status_event_pair() {
        let mut legal = 0;
        for from in TaskStatus::ALL {
            for event in EVENTS {
                match (from.apply(event), expected(from, event)) {
                    (Ok(got), Some(want)) => {
                        assert_eq!(got, want, "{from} + {event:?}");
                        legal += 1;
                    }
                    (Err(e), None) => {
                        assert_eq!(e, InvalidTransition { from, event });
                        assert!(e.to_string().contains(from.as_str()), "{e}");
                    }
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(legal, 11);
    }

    #[test]
    fn terminal_statuses_accept_nothing() {
        for from in TaskStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                assert!(from.apply(event).is_err());
            }
        }
    }

    #[test]
    fn priority_parsing_and_order() {
        assert_eq!("normal".parse::<Priority>().unwrap(), Priority::Medium);
        assert_eq!("NoRmAl".parse::<Priority>().unwrap(), Priority::Medium);
        assert_eq!("high".parse::<Priority>().unwrap(), Priority::High);
        assert_eq!("Low".parse::<Priority>().unwrap(), Priority::Low);
        assert!("urgent".parse::<Priority>().is_err());
        assert!(Priority::High > Priority::Medium && Priority::Medium > Priority::Low);
        let p: Priority = serde_json::from_str("\"normal\"").unwrap();
        assert_eq!(p, Priority::Medium);
    }

    #[test]
    fn status_names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for s in TargetStatus::ALL {
            assert_eq!(s.as_str().parse::<TargetStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}
