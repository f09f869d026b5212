//! In-memory and in-process implementations of the ports: the embedded default when there is
//! no database or broker, and the doubles the engine's tests run on.

mod directory;
mod events;
mod ledger;
mod queue;
mod registry;
mod store;

pub use directory::{StaticDirectory, StaticSecrets};
pub use events::{NoEvents, RecordedEvents};
pub use ledger::MemoryLedger;
pub use queue::InProcessQueue;
pub use registry::MemoryRegistry;
pub use store::MemoryStore;
