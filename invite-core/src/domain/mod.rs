//! The domain model: plain data and pure rules, no I/O.

mod action;
mod identifier;
mod ids;
mod outcome;
mod platform;
mod status;
mod task;
mod template;

pub use action::{Action, ActionKind, ECHO_CHARS, GroupRef, InvalidGroup, echo};
pub use identifier::{
    Country, IdentifierError, NormalizeOptions, Phone, PlatformUserId, TargetIdentifier, Username,
};
pub use ids::{AccountId, InvalidId, TargetId, TaskId, UserId};
pub use outcome::{ExecutionStatus, Outcome};
pub use platform::{Platform, UnknownPlatform};
pub use status::{InvalidTransition, Priority, TargetStatus, TaskEvent, TaskStatus, UnknownName};
pub use task::{
    ExecutionLog, Lane, LaneStats, LaneStatus, NewExecutionLog, NewTarget, NewTask, Target,
    TargetSource, Task, TaskSettings, TaskUpdate,
};
pub use template::{Template, TemplateError, TemplateValues, Variable};
