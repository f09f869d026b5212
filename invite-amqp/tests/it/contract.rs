//! One contract for every `JobQueue`: run on the in-process queue and on RabbitMQ with the
//! same assertions.

use invite_core::domain::Priority;
use invite_core::memory::InProcessQueue;
use invite_core::ports::JobQueue;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestBroker, guarded, job, take};

/// Priority order (FIFO within one priority), acknowledgement and cancellation.
async fn queue_contract(queue: &dyn JobQueue) {
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
        let delivery = take(queue).await;
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

#[tokio::test]
async fn in_process_queue_meets_the_contract() {
    queue_contract(&InProcessQueue::new()).await;
}

#[tokio::test]
async fn amqp_queue_meets_the_contract() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = broker.queue().await;
    queue_contract(&queue).await;
    queue.close().await.expect("close");
    broker.cleanup().await;
}
