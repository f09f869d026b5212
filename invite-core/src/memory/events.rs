//! Task events kept in process: [`NoEvents`] drops them (the embedded default: nobody
//! subscribes), [`RecordedEvents`] keeps them in order for an embedder or a test to read.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::ports::{EventError, TaskEventMessage, TaskEvents};

/// Publishes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

#[async_trait]
impl TaskEvents for NoEvents {
    async fn publish_event(&self, _event: &TaskEventMessage) -> Result<(), EventError> {
        Ok(())
    }
}

/// Keeps every published event, in order.
#[derive(Debug, Default)]
pub struct RecordedEvents {
    events: Mutex<Vec<TaskEventMessage>>,
}

impl RecordedEvents {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events published so far, oldest first.
    pub fn events(&self) -> Vec<TaskEventMessage> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl TaskEvents for RecordedEvents {
    async fn publish_event(&self, event: &TaskEventMessage) -> Result<(), EventError> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}
