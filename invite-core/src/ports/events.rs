//! `TaskEvents`: what happened to a task, told to other services (SPEC §8: `started`,
//! `paused`, `resumed`, `completed`, `failed`, `cancelled`). Implementations: RabbitMQ's topic
//! exchange (`invite-amqp`), [`RecordedEvents`](crate::memory::RecordedEvents) in memory, and
//! [`NoEvents`](crate::memory::NoEvents) (the embedded default).
//!
//! The store holds the task's state; an event is a notice about it. A notice that cannot be
//! published is logged by the caller and never undoes or blocks the transition.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Task, TaskEvent, TaskId, TaskStatus, UserId};

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEventKind {
    /// The task began running.
    Started,
    /// The task was paused (by its owner or the circuit breaker).
    Paused,
    /// The task runs again after a pause.
    Resumed,
    /// Every target was processed.
    Completed,
    /// The task stopped for an unrecoverable reason.
    Failed,
    /// The owner cancelled the task.
    Cancelled,
}

impl TaskEventKind {
    /// Every kind.
    pub const ALL: [TaskEventKind; 6] = [
        TaskEventKind::Started,
        TaskEventKind::Paused,
        TaskEventKind::Resumed,
        TaskEventKind::Completed,
        TaskEventKind::Failed,
        TaskEventKind::Cancelled,
    ];

    /// Lowercase name, the last word of the routing key.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEventKind::Started => "started",
            TaskEventKind::Paused => "paused",
            TaskEventKind::Resumed => "resumed",
            TaskEventKind::Completed => "completed",
            TaskEventKind::Failed => "failed",
            TaskEventKind::Cancelled => "cancelled",
        }
    }

    /// `invite.task.<kind>`.
    pub fn routing_key(self) -> String {
        format!("invite.task.{}", self.as_str())
    }

    /// The notice a state-machine event gives once applied: none for a start that only
    /// schedules the task for later.
    pub const fn of(event: TaskEvent) -> Option<Self> {
        match event {
            TaskEvent::Start {
                scheduled_later: true,
            } => None,
            TaskEvent::Start {
                scheduled_later: false,
            } => Some(TaskEventKind::Started),
            TaskEvent::Pause => Some(TaskEventKind::Paused),
            TaskEvent::Resume => Some(TaskEventKind::Resumed),
            TaskEvent::Complete => Some(TaskEventKind::Completed),
            TaskEvent::Fail => Some(TaskEventKind::Failed),
            TaskEvent::Cancel => Some(TaskEventKind::Cancelled),
        }
    }

    /// The task's status after the event.
    pub const fn status(self) -> TaskStatus {
        match self {
            TaskEventKind::Started | TaskEventKind::Resumed => TaskStatus::InProgress,
            TaskEventKind::Paused => TaskStatus::Paused,
            TaskEventKind::Completed => TaskStatus::Completed,
            TaskEventKind::Failed => TaskStatus::Failed,
            TaskEventKind::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// The body of a task event, e.g.
/// `{"event":"failed","task_id":7,"user_id":1,"status":"FAILED","reason":"group gone","at":"2025-01-01T00:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEventMessage {
    /// What happened.
    pub event: TaskEventKind,
    /// The task.
    pub task_id: TaskId,
    /// Its owner.
    pub user_id: UserId,
    /// The task's status after the event.
    pub status: TaskStatus,
    /// Why (a failure's or a pause's reason), if known.
    pub reason: Option<String>,
    /// When it happened (from the engine's clock).
    pub at: DateTime<Utc>,
}

impl TaskEventMessage {
    /// An event without a reason; the status follows from `event`.
    pub fn new(event: TaskEventKind, task_id: TaskId, user_id: UserId, at: DateTime<Utc>) -> Self {
        Self {
            event,
            task_id,
            user_id,
            status: event.status(),
            reason: None,
            at,
        }
    }

    /// With a reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The notice of `event` just applied to `task` (as the store returned it), if the event
    /// gives one; the time is the task's `updated_at`, the reason its `status_reason`.
    pub fn after(event: TaskEvent, task: &Task) -> Option<Self> {
        let kind = TaskEventKind::of(event)?;
        Some(Self {
            event: kind,
            task_id: task.id,
            user_id: task.user_id,
            status: task.status,
            reason: task.status_reason.clone(),
            at: task.updated_at,
        })
    }
}

/// Errors of an event publisher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The notice could not be published.
    #[error("task event not published: {0}")]
    Unavailable(String),
}

/// Publishes task events.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait TaskEvents: Send + Sync + std::fmt::Debug {
    /// Publishes one notice (confirmed by the broker where there is one).
    async fn publish_event(&self, event: &TaskEventMessage) -> Result<(), EventError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_routing_key() {
        let at = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event =
            TaskEventMessage::new(TaskEventKind::Failed, TaskId::new(7), UserId::new(1), at)
                .with_reason("group gone");
        assert_eq!(event.event.routing_key(), "invite.task.failed");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event": "failed", "task_id": 7, "user_id": 1, "status": "FAILED",
                "reason": "group gone", "at": "2025-01-01T00:00:00Z"
            })
        );
        for kind in TaskEventKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}
