#![doc = include_str!("../README.md")]

pub mod clock;
pub mod domain;
pub mod import;
pub mod limits;
pub mod ports;

pub use async_trait::async_trait;
pub use clock::{Clock, SystemClock, VirtualClock};
