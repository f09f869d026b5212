//! [`AmqpQueue`]: the RabbitMQ [`JobQueue`].
//!
//! One connection, two channels: one publishes with confirms, the other consumes the three
//! priority queues (so every delivery tag is unique on it and [`JobQueue::ack`] needs only the
//! tag). Deliveries the broker pushed (at most `prefetch` unacknowledged per queue) wait in a
//! local buffer; [`JobQueue::next`] hands out the highest priority among them.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;

use futures::FutureExt;
use futures::stream::{SelectAll, Stream, StreamExt};
use invite_core::async_trait;
use invite_core::domain::Priority;
use invite_core::ports::{Delivery, Job, JobQueue, QueueError};
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::AmqpConfig;

/// Content type of every message.
pub const CONTENT_TYPE: &str = "application/json";

/// AMQP delivery mode of a message that survives a broker restart.
const PERSISTENT: u8 = 2;

/// Queues in the order they are served.
const SERVED_ORDER: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

type Incoming =
    Pin<Box<dyn Stream<Item = (Priority, lapin::Result<lapin::message::Delivery>)> + Send>>;

/// The consuming side, started by the first [`JobQueue::next`].
#[derive(Default)]
struct Consuming {
    incoming: Option<SelectAll<Incoming>>,
    /// Pushed by the broker, not yet handed out; index 0 is the highest priority.
    buffered: [VecDeque<lapin::message::Delivery>; 3],
}

/// A [`JobQueue`] on RabbitMQ.
///
/// - **Queues**: `invite-high-priority`, `invite-normal`, `invite-low` (after the configured
///   prefix), durable, declared at [`AmqpQueue::connect`] — declaring an existing queue with
///   the same settings is a no-op, so any number of processes may connect at once.
/// - **Messages**: the JSON of a [`Job`], content type `application/json`, persistent
///   (delivery mode 2), published with confirms: [`JobQueue::publish`] returns once the broker
///   has taken the message; a negative confirm or an unroutable message is an error.
/// - **Consuming**: [`JobQueue::next`] returns the highest priority among the jobs delivered
///   to this consumer (HIGH, then MEDIUM, then LOW; first in, first out within one queue).
///   The broker pushes at most `prefetch` unacknowledged jobs per queue to one consumer.
///   A body that is not a [`Job`] is rejected without requeue and reported once as
///   [`QueueError::Malformed`]; the next call goes on with the following job.
/// - **At least once**: a job taken but not acknowledged returns to its queue when this
///   connection closes (the process died, or [`AmqpQueue::close`]) and goes to another
///   consumer. Jobs are nudges, the store holds the state, so a job handled twice is harmless.
/// - **Connection loss**: calls fail with [`QueueError::Unavailable`] naming the broker
///   without its password. This type does not reconnect: the caller (the engine's loop) retries
///   by connecting anew.
pub struct AmqpQueue {
    config: AmqpConfig,
    connection: Connection,
    publisher: Channel,
    consumer: Channel,
    consuming: Mutex<Consuming>,
    /// Tags handed out by `next` and not yet acknowledged.
    outstanding: std::sync::Mutex<HashSet<u64>>,
}

impl fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("config", &self.config)
            .field("connected", &self.connection.status().connected())
            .finish_non_exhaustive()
    }
}

impl AmqpQueue {
    /// Connects, declares the three queues and the events exchange, enables publisher confirms
    /// and sets the prefetch.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the broker cannot be reached or refuses a declaration.
    #[tracing::instrument(skip_all, fields(broker = %config.redacted_url()))]
    pub async fn connect(config: AmqpConfig) -> Result<Self, QueueError> {
        let properties =
            ConnectionProperties::default().with_connection_name(config.connection_name().into());
        let connection = Connection::connect(config.url(), properties)
            .await
            .map_err(|e| unavailable(&config, "connect", &e))?;
        let setup = async {
            let publisher = connection.create_channel().await?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            for priority in SERVED_ORDER {
                publisher
                    .queue_declare(
                        config.queue_name(priority).as_str().into(),
                        QueueDeclareOptions {
                            durable: true,
                            ..QueueDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
            }
            publisher
                .exchange_declare(
                    config.events_exchange().as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            let consumer = connection.create_channel().await?;
            // Per consumer (not `global`): LOW jobs filling their window never hold back HIGH.
            consumer
                .basic_qos(config.prefetch(), BasicQosOptions::default())
                .await?;
            lapin::Result::Ok((publisher, consumer))
        };
        let (publisher, consumer) = match setup.await {
            Ok(channels) => channels,
            Err(e) => {
                let error = unavailable(&config, "declare queues", &e);
                let _ = connection.close(200, "setup failed".into()).await;
                return Err(error);
            }
        };
        tracing::debug!(
            prefix = config.queue_prefix(),
            "connected to the job queue broker"
        );
        Ok(Self {
            config,
            connection,
            publisher,
            consumer,
            consuming: Mutex::new(Consuming::default()),
            outstanding: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// Closes the connection; jobs taken and not acknowledged go back to their queues.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the connection was already lost.
    pub async fn close(&self) -> Result<(), QueueError> {
        self.connection
            .close(200, "closing".into())
            .await
            .map_err(|e| unavailable(&self.config, "close", &e))
    }

    /// Publishes `body` to `exchange` with `routing_key`, persistent, and waits for the
    /// broker's confirm. `mandatory`: a message no queue takes is an error.
    pub(crate) async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        mandatory: bool,
    ) -> Result<(), QueueError> {
        let properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(PERSISTENT);
        let confirm = self
            .publisher
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| unavailable(&self.config, "publish", &e))?
            .await
            .map_err(|e| unavailable(&self.config, "publish", &e))?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => Err(QueueError::Unavailable(format!(
                "broker {}: no queue took the message for {routing_key:?} on exchange \
                 {exchange:?}",
                self.config.redacted_url()
            ))),
            Confirmation::Nack(_) => Err(QueueError::Unavailable(format!(
                "broker {}: the broker refused the message for {routing_key:?}",
                self.config.redacted_url()
            ))),
            Confirmation::NotRequested => Err(QueueError::Unavailable(format!(
                "broker {}: publisher confirms are off on this channel",
                self.config.redacted_url()
            ))),
        }
    }

    fn start_consuming(&self) -> impl Future<Output = Result<SelectAll<Incoming>, QueueError>> {
        // Registered highest priority first: the jobs already waiting in HIGH are pushed before
        // the broker even answers for MEDIUM.
        let consumer = self.consumer.clone();
        let config = self.config.clone();
        async move {
            let mut all = SelectAll::new();
            for priority in SERVED_ORDER {
                let stream = consumer
                    .basic_consume(
                        config.queue_name(priority).as_str().into(),
                        format!(
                            "{}-{}",
                            config.connection_name(),
                            priority.as_str().to_lowercase()
                        )
                        .as_str()
                        .into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| unavailable(&config, "consume", &e))?;
                let incoming: Incoming = Box::pin(stream.map(move |d| (priority, d)));
                all.push(incoming);
            }
            Ok(all)
        }
    }

    /// Hands out the highest buffered delivery, if any.
    async fn take_buffered(
        &self,
        consuming: &mut Consuming,
    ) -> Option<Result<Delivery, QueueError>> {
        let (slot, raw) = consuming
            .buffered
            .iter_mut()
            .enumerate()
            .find_map(|(slot, q)| q.pop_front().map(|d| (slot, d)))?;
        let priority = SERVED_ORDER[slot];
        let tag = raw.delivery_tag;
        match serde_json::from_slice::<Job>(&raw.data) {
            Ok(job) => {
                self.lock_outstanding().insert(tag);
                Some(Ok(Delivery { job, priority, tag }))
            }
            Err(e) => {
                let queue = self.config.queue_name(priority);
                tracing::warn!(
                    queue,
                    delivery.tag = tag,
                    error = %e,
                    "rejecting a message that is not a job (queue {queue}, delivery {tag})"
                );
                if let Err(e) = self
                    .consumer
                    .basic_reject(tag, BasicRejectOptions { requeue: false })
                    .await
                {
                    return Some(Err(unavailable(&self.config, "reject", &e)));
                }
                Some(Err(QueueError::Malformed(format!(
                    "message {tag} in {queue} is not a job ({e}); rejected without requeue"
                ))))
            }
        }
    }

    fn lock_outstanding(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stream_ended(&self) -> QueueError {
        QueueError::Unavailable(format!(
            "broker {}: the consumer was cancelled or its channel closed",
            self.config.redacted_url()
        ))
    }
}

impl Consuming {
    fn push(&mut self, priority: Priority, delivery: lapin::message::Delivery) {
        let slot = SERVED_ORDER
            .iter()
            .position(|p| *p == priority)
            .unwrap_or(SERVED_ORDER.len() - 1);
        self.buffered[slot].push_back(delivery);
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    #[tracing::instrument(skip_all, fields(priority = %priority))]
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError> {
        let body = serde_json::to_vec(job).map_err(|e| QueueError::Malformed(e.to_string()))?;
        self.publish_confirmed("", &self.config.queue_name(priority), &body, true)
            .await
    }

    async fn next(&self, cancel: &CancellationToken) -> Result<Option<Delivery>, QueueError> {
        let mut consuming = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            guard = self.consuming.lock() => guard,
        };
        if consuming.incoming.is_none() {
            // Not raced against `cancel`: a consumer registered on the broker and then dropped
            // here would hold its jobs until the connection closes.
            consuming.incoming = Some(self.start_consuming().await?);
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            // Take everything already received, so the choice sees every waiting priority.
            loop {
                let Some(incoming) = consuming.incoming.as_mut() else {
                    return Err(self.stream_ended());
                };
                match incoming.next().now_or_never() {
                    None => break,
                    Some(None) => {
                        consuming.incoming = None;
                        return Err(self.stream_ended());
                    }
                    Some(Some((_, Err(e)))) => {
                        return Err(unavailable(&self.config, "consume", &e));
                    }
                    Some(Some((priority, Ok(delivery)))) => consuming.push(priority, delivery),
                }
            }
            if let Some(taken) = self.take_buffered(&mut consuming).await {
                return taken.map(Some);
            }
            let Some(incoming) = consuming.incoming.as_mut() else {
                return Err(self.stream_ended());
            };
            let received = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(None),
                received = incoming.next() => received,
            };
            match received {
                None => {
                    consuming.incoming = None;
                    return Err(self.stream_ended());
                }
                Some((_, Err(e))) => return Err(unavailable(&self.config, "consume", &e)),
                Some((priority, Ok(delivery))) => consuming.push(priority, delivery),
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        // Acknowledging a tag the channel does not know would close the channel: refuse it here.
        if !self.lock_outstanding().remove(&delivery.tag) {
            return Err(QueueError::Malformed(format!(
                "delivery {} was not handed out by this queue or is already acknowledged",
                delivery.tag
            )));
        }
        self.consumer
            .basic_ack(delivery.tag, BasicAckOptions::default())
            .await
            .map_err(|e| unavailable(&self.config, "ack", &e))
    }
}

/// A client error as [`QueueError::Unavailable`], naming the broker without its password.
pub(crate) fn unavailable(config: &AmqpConfig, action: &str, error: &lapin::Error) -> QueueError {
    QueueError::Unavailable(format!(
        "broker {} ({action}): {}",
        config.redacted_url(),
        config.scrub(&error.to_string())
    ))
}
