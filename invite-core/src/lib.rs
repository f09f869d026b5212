#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod chaos;
pub mod clock;
pub mod domain;
pub mod engine;
pub mod forecast;
pub mod import;
pub mod limits;
pub mod memory;
pub mod ports;
pub mod registry;
pub mod retention;
pub mod sandbox;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;

pub use async_trait::async_trait;
pub use clock::{Clock, SystemClock, VirtualClock};
