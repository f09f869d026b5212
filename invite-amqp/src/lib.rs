#![doc = include_str!("../README.md")]

mod config;
mod events;
mod queue;
mod reconnect;

pub use config::{
    AMQP_URL_VAR, AmqpConfig, ConfigError, DEFAULT_CONNECTION_NAME, DEFAULT_PREFETCH,
};
pub use events::{TaskEventKind, TaskEventMessage};
pub use queue::{AmqpQueue, CONTENT_TYPE};
pub use reconnect::ReconnectingQueue;
