//! `invite_core::testing::queue_contract` on RabbitMQ: a queue prefix of its own per case,
//! its queues deleted afterwards. The in-process queue runs the same suite in `invite-core`.

use std::sync::Arc;

use invite_core::ports::JobQueue;
use invite_core::testing::{Opened, queue_contract};

use crate::helpers::TestBroker;

#[tokio::test]
async fn amqp_queue_meets_the_contract() {
    queue_contract(|| async {
        let broker = TestBroker::start().await?;
        let queue = Arc::new(broker.queue().await);
        let closing = queue.clone();
        let opened = Opened::shared(queue as Arc<dyn JobQueue>).with_teardown(async move {
            closing.close().await.expect("close");
            broker.cleanup().await;
        });
        Some(opened)
    })
    .await;
}
