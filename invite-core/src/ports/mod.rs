//! Ports: the small traits through which the engine reaches everything outside it. Each
//! module says what its port is for and which implementations exist.

mod account_manager;
mod audience;
mod directory;
mod events;
mod leases;
mod ledger;
mod queue;
mod registry;
mod secrets;
mod store;
mod strategy;
mod suppression;

pub use account_manager::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, ErrorReport,
    HoldId, LimitReason, LimitScope, PURPOSE_INVITE_CAMPAIGN, RateDecision, RateLimitCheck,
    Reservation, UsageStats,
};
pub use audience::{Audience, AudienceError, AudienceSource, StaticAudience};
pub use directory::{AccountDirectory, AccountInfo, DirectoryError};
pub use events::{EventError, TaskEventKind, TaskEventMessage, TaskEvents};
pub use leases::AccountLeases;
pub use ledger::{AccountHistory, LedgerEvent, LimitLedger, ReserveRequest};
pub use queue::{Delivery, Job, JobQueue, QueueError};
pub use registry::{
    AccountPatch, AccountRegistry, NewAccount, RegisteredAccount, Registration, RegistryStatus,
    Resolution, StatusChange,
};
pub use secrets::{Secret, SecretError, SecretStore};
pub use store::{
    AccountStats, AddedTargets, AttemptEnd, Claim, ClaimStage, CleanupReport, CreatedTask,
    DatabaseId, Followups, LogFilter, OutcomeRecord, Progress, SENDER_UNAVAILABLE, Settlement,
    StoreError, StoreResult, TaskFilter, TaskStats, TaskStore, abandonment, message_random_id,
};
pub use strategy::{ActionResult, ErrorClass, InviteStrategy, PlatformError};
pub use suppression::{SuppressionEntry, SuppressionList};

#[cfg(feature = "testing")]
pub use {
    account_manager::MockAccountManager, audience::MockAudienceSource,
    directory::MockAccountDirectory, events::MockTaskEvents, leases::MockAccountLeases,
    ledger::MockLimitLedger, queue::MockJobQueue, registry::MockAccountRegistry,
    secrets::MockSecretStore, store::MockTaskStore, strategy::MockInviteStrategy,
    suppression::MockSuppressionList,
};
