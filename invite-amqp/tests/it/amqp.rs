//! `AmqpQueue` against the real broker: priorities, confirms, redelivery, malformed messages,
//! cancellation, task events and the secrecy of the URL's password.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use invite_amqp::{AmqpConfig, AmqpQueue, TaskEventKind, TaskEventMessage};
use invite_core::domain::{Priority, TaskId, TaskStatus, UserId};
use invite_core::ports::{Job, JobQueue, QueueError, TaskEvents};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions};
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestBroker, amqp_test_url, guarded, job, take, take_result};

#[tokio::test]
async fn a_fresh_consumer_sees_higher_priorities_first_and_fifo_within_one() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let publisher = broker.queue().await;
    let published = [
        (1, Priority::Low),
        (2, Priority::Low),
        (3, Priority::Medium),
        (4, Priority::High),
        (5, Priority::High),
        (6, Priority::Medium),
        (7, Priority::Low),
        (8, Priority::High),
    ];
    for (n, priority) in published {
        // Confirmed: once `publish` returns the broker holds the message.
        publisher.publish(&job(n), priority).await.expect("publish");
    }
    assert_eq!(broker.ready(Priority::High).await, 3);
    assert_eq!(broker.ready(Priority::Medium).await, 2);
    assert_eq!(broker.ready(Priority::Low).await, 3);
    publisher.close().await.expect("close publisher");

    let consumer = broker.queue().await;
    let mut order = Vec::new();
    for _ in 0..published.len() {
        let delivery = take(&consumer).await;
        order.push(delivery.job.clone());
        consumer.ack(&delivery).await.expect("ack");
    }
    assert_eq!(
        order,
        [4, 5, 8, 3, 6, 1, 2, 7].map(job),
        "HIGH, then MEDIUM, then LOW; first in first out within each"
    );
    consumer.close().await.expect("close consumer");
    for priority in Priority::ALL {
        assert_eq!(broker.ready(priority).await, 0, "{priority} drained");
    }
    broker.cleanup().await;
}

#[tokio::test]
async fn messages_are_persistent_json_jobs() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = broker.queue().await;
    let sent = Job::ProcessLane {
        task_id: TaskId::new(11),
        account_id: "acc-1".parse().expect("account id"),
    };
    queue
        .publish(&sent, Priority::Medium)
        .await
        .expect("publish");

    let got = guarded(
        "basic_get",
        broker.admin.basic_get(
            broker.config.queue_name(Priority::Medium).as_str().into(),
            lapin::options::BasicGetOptions::default(),
        ),
    )
    .await
    .expect("basic_get")
    .expect("the message is in invite-normal");
    let properties = &got.delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    let body: serde_json::Value = serde_json::from_slice(&got.delivery.data).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"type": "process_lane", "task_id": 11, "account_id": "acc-1"})
    );
    got.delivery
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    queue.close().await.expect("close");
    broker.cleanup().await;
}

/// Takes deliveries until `last` arrives, acknowledging each; returns the jobs seen.
async fn drain_until(queue: &AmqpQueue, last: &Job) -> Vec<Job> {
    let mut seen = Vec::new();
    loop {
        let delivery = take(queue).await;
        queue.ack(&delivery).await.expect("ack");
        let done = &delivery.job == last;
        seen.push(delivery.job);
        if done {
            return seen;
        }
    }
}

async fn unacked_job_goes_to_the_next_consumer(drop_instead_of_close: bool) {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let first = broker.queue().await;
    first
        .publish(&job(1), Priority::Medium)
        .await
        .expect("publish");
    first
        .publish(&job(2), Priority::Medium)
        .await
        .expect("publish");

    let acked = take(&first).await;
    assert_eq!(acked.job, job(1));
    first.ack(&acked).await.expect("ack");
    let abandoned = take(&first).await;
    assert_eq!(abandoned.job, job(2));
    // The worker dies (or stops) without acknowledging job 2.
    if drop_instead_of_close {
        drop(first);
    } else {
        first.close().await.expect("close");
    }

    let second = broker.queue().await;
    // Job 2 comes back; job 3 is published after, so once both are seen nothing else
    // (such as the acknowledged job 1) can still be on its way.
    let seen = drain_until(&second, &job(2)).await;
    second
        .publish(&job(3), Priority::Medium)
        .await
        .expect("publish");
    let rest = drain_until(&second, &job(3)).await;
    assert_eq!(seen, [job(2)], "the unacknowledged job, and only it");
    assert_eq!(rest, [job(3)], "the acknowledged job never comes back");
    second.close().await.expect("close");
    broker.cleanup().await;
}

#[tokio::test]
async fn an_unacked_job_is_redelivered_after_its_consumer_closes() {
    unacked_job_goes_to_the_next_consumer(false).await;
}

#[tokio::test]
async fn an_unacked_job_is_redelivered_after_its_consumer_is_dropped() {
    unacked_job_goes_to_the_next_consumer(true).await;
}

#[tokio::test]
async fn a_malformed_message_is_reported_once_and_not_redelivered() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = broker.queue().await;
    broker
        .publish_raw(Priority::High, b"{\"type\":\"no_such_job\"}")
        .await;
    queue
        .publish(&job(1), Priority::High)
        .await
        .expect("publish");

    match take_result(&queue).await {
        Err(QueueError::Malformed(why)) => {
            assert!(why.contains("invite-high-priority"), "{why}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    // The consumer goes on with the next message.
    let delivery = take(&queue).await;
    assert_eq!(delivery.job, job(1));
    queue.ack(&delivery).await.expect("ack");
    queue.close().await.expect("close");

    // Rejected without requeue: gone, even once its consumer closed.
    let again = broker.queue().await;
    again
        .publish(&job(2), Priority::High)
        .await
        .expect("publish");
    match take_result(&again).await {
        Ok(Some(d)) => {
            assert_eq!(d.job, job(2), "only the new job");
            again.ack(&d).await.expect("ack");
        }
        other => panic!("expected job 2, got {other:?}"),
    }
    again.close().await.expect("close");
    assert_eq!(broker.ready(Priority::High).await, 0);
    broker.cleanup().await;
}

#[tokio::test]
async fn cancel_ends_a_waiting_next() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = std::sync::Arc::new(broker.queue().await);
    let cancel = CancellationToken::new();
    let waiting = tokio::spawn({
        let queue = queue.clone();
        let cancel = cancel.clone();
        async move { queue.next(&cancel).await }
    });
    tokio::task::yield_now().await;
    cancel.cancel();
    let result = guarded("next after cancel", waiting)
        .await
        .expect("task joined");
    assert_eq!(result, Ok(None));

    // The queue still works after a cancelled wait.
    queue
        .publish(&job(1), Priority::Low)
        .await
        .expect("publish");
    let delivery = take(queue.as_ref()).await;
    assert_eq!(delivery.job, job(1));
    queue.ack(&delivery).await.expect("ack");
    queue.close().await.expect("close");
    broker.cleanup().await;
}

#[tokio::test]
async fn acking_an_unknown_delivery_is_refused_without_breaking_the_channel() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = broker.queue().await;
    queue
        .publish(&job(1), Priority::Low)
        .await
        .expect("publish");
    let delivery = take(&queue).await;
    queue.ack(&delivery).await.expect("ack");
    assert!(matches!(
        queue.ack(&delivery).await,
        Err(QueueError::Malformed(_))
    ));
    queue
        .publish(&job(2), Priority::Low)
        .await
        .expect("publish");
    let next = take(&queue).await;
    assert_eq!(next.job, job(2));
    queue.ack(&next).await.expect("ack still works");
    queue.close().await.expect("close");
    broker.cleanup().await;
}

#[tokio::test]
async fn task_events_reach_a_queue_bound_to_invite_task() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    let queue = broker.queue().await;
    let at: DateTime<Utc> = "2025-03-01T12:00:00Z".parse().expect("time");

    // Nobody subscribed yet: the event is dropped by the broker, not an error.
    queue
        .publish_task_event(&TaskEventMessage::new(
            TaskEventKind::Started,
            TaskId::new(1),
            UserId::new(9),
            at,
        ))
        .await
        .expect("event without subscribers");

    let subscriber = format!("{}events-subscriber", broker.config.queue_prefix());
    broker.declare_extra_queue(&subscriber).await;
    broker
        .admin
        .queue_bind(
            subscriber.as_str().into(),
            broker.config.events_exchange().as_str().into(),
            "invite.task.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    // Through the core's port, as the engine and the use cases publish them.
    let events: &dyn TaskEvents = &queue;
    for kind in TaskEventKind::ALL {
        let mut event = TaskEventMessage::new(kind, TaskId::new(42), UserId::new(9), at);
        if kind == TaskEventKind::Failed {
            event = event.with_reason("group gone");
        }
        events.publish_event(&event).await.expect("event");
    }

    let mut consumer = broker
        .admin
        .basic_consume(
            subscriber.as_str().into(),
            "events-test".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume events");
    let mut seen = Vec::new();
    for _ in TaskEventKind::ALL {
        let delivery = guarded("event", consumer.next())
            .await
            .expect("stream open")
            .expect("delivery");
        let body: serde_json::Value = serde_json::from_slice(&delivery.data).expect("JSON");
        seen.push((delivery.routing_key.to_string(), body));
    }
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "invite.task.started",
            "invite.task.paused",
            "invite.task.resumed",
            "invite.task.completed",
            "invite.task.failed",
            "invite.task.cancelled",
        ]
    );
    let failed = &seen[4].1;
    assert_eq!(
        *failed,
        serde_json::json!({
            "event": "failed", "task_id": 42, "user_id": 9,
            "status": serde_json::to_value(TaskStatus::Failed).expect("status"),
            "reason": "group gone", "at": "2025-03-01T12:00:00Z"
        })
    );
    assert_eq!(seen[0].1["status"], "IN_PROGRESS");
    assert_eq!(seen[0].1["reason"], serde_json::Value::Null);
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), 6);

    queue.close().await.expect("close");
    broker.cleanup().await;
}

/// The test URL with its password replaced by `password`.
fn with_password(password: &str) -> String {
    let url = amqp_test_url();
    let start = url.find("://").map_or(0, |i| i + 3);
    let at = url.rfind('@').expect("AMQP_TEST_URL has user:password@");
    let user = url[start..at].split(':').next().unwrap_or("guest");
    format!("{}{user}:{password}{}", &url[..start], &url[at..])
}

#[tokio::test]
async fn the_password_never_shows() {
    let Some(broker) = TestBroker::start().await else {
        return;
    };
    const WRONG: &str = "not-the-password-4d1f";

    // Refused by the broker.
    let refused = AmqpConfig::new(with_password(WRONG)).expect("config");
    assert!(!format!("{refused:?}").contains(WRONG));
    let error = guarded("connect", AmqpQueue::connect(refused))
        .await
        .expect_err("wrong password");
    let text = format!("{error} {error:?}");
    assert!(matches!(error, QueueError::Unavailable(_)), "{text}");
    assert!(!text.contains(WRONG), "{text}");
    assert!(text.contains(":***@"), "names the broker: {text}");

    // Nothing listening.
    let nowhere = AmqpConfig::new(format!("amqp://guest:{WRONG}@127.0.0.1:1/%2f")).expect("config");
    let error = guarded("connect", AmqpQueue::connect(nowhere))
        .await
        .expect_err("closed port");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(WRONG), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");

    // A connected queue, and one whose connection is gone.
    let queue = broker.queue().await;
    let password = amqp_test_url()
        .split("://")
        .nth(1)
        .and_then(|rest| rest.rsplit_once('@'))
        .and_then(|(info, _)| info.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .expect("AMQP_TEST_URL has a password");
    let shown = format!("{queue:?}");
    assert!(shown.contains(":***@"), "{shown}");
    assert!(!shown.contains(&format!(":{password}@")), "{shown}");
    queue.close().await.expect("close");
    let error = queue
        .publish(&job(1), Priority::High)
        .await
        .expect_err("publish after close");
    let text = error.to_string();
    assert!(matches!(error, QueueError::Unavailable(_)), "{text}");
    assert!(text.contains(":***@"), "{text}");
    assert!(!text.contains(&format!(":{password}@")), "{text}");
    let cancel = CancellationToken::new();
    let next = guarded("next after close", queue.next(&cancel)).await;
    assert!(matches!(next, Err(QueueError::Unavailable(_))), "{next:?}");
    broker.cleanup().await;
}
