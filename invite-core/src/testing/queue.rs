//! The [`JobQueue`] contract.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::harness::{Opened, Subject, run_cases};
use crate::domain::{Priority, TaskId};
use crate::ports::{Delivery, Job, JobQueue};

/// How long a call may take before the case says it hung.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG_GUARD:?}"))
}

fn job(n: i64) -> Job {
    Job::ExecuteTask {
        task_id: TaskId::new(n),
    }
}

async fn take(queue: &dyn JobQueue) -> Delivery {
    let cancel = CancellationToken::new();
    guarded("next", queue.next(&cancel))
        .await
        .expect("next")
        .expect("a delivery, not a cancel")
}

/// Priority order (FIFO within one priority), acknowledgement and cancellation.
async fn priority_order_acks_and_cancellation(queue: Subject<dyn JobQueue>) {
    for (n, priority) in [
        (1, Priority::Low),
        (2, Priority::Medium),
        (3, Priority::High),
        (4, Priority::High),
        (5, Priority::Medium),
        (6, Priority::Low),
    ] {
        queue.publish(&job(n), priority).await.expect("publish");
    }

    let mut taken = Vec::new();
    for _ in 0..6 {
        let delivery = take(&*queue).await;
        taken.push((delivery.job.clone(), delivery.priority));
        queue.ack(&delivery).await.expect("ack");
    }
    assert_eq!(
        taken,
        [
            (job(3), Priority::High),
            (job(4), Priority::High),
            (job(2), Priority::Medium),
            (job(5), Priority::Medium),
            (job(1), Priority::Low),
            (job(6), Priority::Low),
        ]
    );

    // Nothing left: `next` waits until the token fires, then says so with `None`.
    let cancel = CancellationToken::new();
    let (waited, ()) = guarded("cancelled next", async {
        tokio::join!(queue.next(&cancel), async {
            tokio::task::yield_now().await;
            cancel.cancel();
        })
    })
    .await;
    assert_eq!(waited.expect("next after cancel"), None);

    // A token that already fired: `None` as well.
    assert_eq!(queue.next(&cancel).await.expect("next"), None);
}

/// The [`JobQueue`] contract: jobs come out by priority, first in first out within one
/// priority, each with the priority it was published with; an acknowledged delivery is gone;
/// `next` on an empty queue waits until its token fires and then answers `None`, at once when
/// the token already fired.
///
/// `open` gives every case a fresh, empty queue; `None` skips the suite.
pub async fn queue_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn JobQueue>>>,
{
    run_cases(
        "queue_contract",
        open,
        &[("priority_order_acks_and_cancellation", |s| {
            Box::pin(priority_order_acks_and_cancellation(s))
        })],
    )
    .await;
}
