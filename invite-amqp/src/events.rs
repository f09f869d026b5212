//! Task events on a topic exchange (`<prefix>invite.events`) for other services to subscribe
//! to: routing keys `invite.task.started`, `.paused`, `.resumed`, `.completed`, `.failed`,
//! `.cancelled`; a small JSON body ([`TaskEventMessage`]).
//!
//! There is no port for events in `invite-core` yet: [`AmqpQueue::publish_task_event`] is an
//! inherent method, and the engine does not call it yet.

use chrono::{DateTime, Utc};
use invite_core::domain::{TaskId, TaskStatus, UserId};
use invite_core::ports::QueueError;
use serde::{Deserialize, Serialize};

use crate::queue::AmqpQueue;

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
}

impl AmqpQueue {
    /// Publishes a task event to the events exchange with routing key
    /// `invite.task.<event>`, persistent and confirmed. No subscriber is needed: an event
    /// nobody listens to is dropped by the broker, not an error.
    ///
    /// Not yet called by the engine (there is no events port in `invite-core`).
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the broker cannot be reached or refuses the message.
    #[tracing::instrument(skip_all, fields(task.id = %event.task_id, user.id = %event.user_id, event = event.event.as_str()))]
    pub async fn publish_task_event(&self, event: &TaskEventMessage) -> Result<(), QueueError> {
        let body = serde_json::to_vec(event).map_err(|e| QueueError::Malformed(e.to_string()))?;
        self.publish_confirmed(
            &self.config().events_exchange(),
            &event.event.routing_key(),
            &body,
            false,
        )
        .await
    }
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
