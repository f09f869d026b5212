#![doc = include_str!("../README.md")]

pub mod api;
pub mod errors;
#[cfg(any(test, feature = "mock"))]
pub mod fake;
#[cfg(any(test, feature = "mock"))]
pub mod fake_login;
pub mod grammers;
pub mod lease;
pub mod login;
pub mod secrets;
pub mod session;
pub mod strategy;
pub mod verify;

pub use api::{Connector, DeviceFields, TelegramApi};
pub use errors::{ApiError, CallKind, classify};
pub use grammers::{ClientParams, GrammersApi, GrammersConnector, GrammersSignIn};
pub use lease::ConnectionLease;
pub use login::{CodeAnswer, LoginError, Prompt, SignIn, SignInConnector, sign_in};
pub use secrets::{EnvSecretStore, FileSecretStore};
pub use session::{KeyFingerprint, SessionError, SessionFormat, SessionString};
pub use strategy::{DEVICE_KEYS, Error, Result, TelegramConfig, TelegramStrategy};
pub use verify::{VerifyError, verify_session};
