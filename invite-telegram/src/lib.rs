#![doc = include_str!("../README.md")]

pub mod api;
pub mod errors;
pub mod grammers;
pub mod session;

pub use api::{Connector, TelegramApi};
pub use errors::{ApiError, CallKind, classify};
pub use grammers::{ClientParams, GrammersApi, GrammersConnector};
pub use session::{SessionError, SessionFormat, SessionString};
