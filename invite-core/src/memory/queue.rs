//! In-process [`JobQueue`]: three FIFO queues drained highest priority first.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::Priority;
use crate::ports::{Delivery, Job, JobQueue, QueueError};

#[derive(Debug, Default)]
struct Queues {
    next_tag: u64,
    by_priority: [VecDeque<(Job, u64)>; 3],
}

/// A queue inside the process (the embedded default). Jobs are only nudges: the store holds
/// the state, so nothing is lost with the process.
#[derive(Debug, Default)]
pub struct InProcessQueue {
    queues: Mutex<Queues>,
    notify: Notify,
}

impl InProcessQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.lock().by_priority.iter().map(VecDeque::len).sum()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next job without waiting.
    pub fn try_next(&self) -> Option<Delivery> {
        let mut q = self.lock();
        for (i, priority) in [
            (2, Priority::High),
            (1, Priority::Medium),
            (0, Priority::Low),
        ] {
            if let Some((job, tag)) = q.by_priority[i].pop_front() {
                return Some(Delivery { job, priority, tag });
            }
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const fn slot(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError> {
        {
            let mut q = self.lock();
            q.next_tag += 1;
            let tag = q.next_tag;
            q.by_priority[slot(priority)].push_back((job.clone(), tag));
        }
        self.notify.notify_one();
        Ok(())
    }

    async fn next(&self, cancel: &CancellationToken) -> Result<Option<Delivery>, QueueError> {
        loop {
            let notified = self.notify.notified();
            if let Some(d) = self.try_next() {
                return Ok(Some(d));
            }
            tokio::select! {
                () = notified => {}
                () = cancel.cancelled() => return Ok(None),
            }
        }
    }

    async fn ack(&self, _delivery: &Delivery) -> Result<(), QueueError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TaskId;

    #[tokio::test]
    async fn higher_priorities_first_fifo_within() {
        let q = InProcessQueue::new();
        let job = |n| Job::ExecuteTask {
            task_id: TaskId::new(n),
        };
        q.publish(&job(1), Priority::Low).await.unwrap();
        q.publish(&job(2), Priority::Medium).await.unwrap();
        q.publish(&job(3), Priority::High).await.unwrap();
        q.publish(&job(4), Priority::High).await.unwrap();
        let cancel = CancellationToken::new();
        let mut order = Vec::new();
        while !q.is_empty() {
            order.push(q.next(&cancel).await.unwrap().unwrap().job);
        }
        assert_eq!(order, [job(3), job(4), job(2), job(1)]);
        cancel.cancel();
        assert_eq!(q.next(&cancel).await.unwrap(), None);
    }
}
