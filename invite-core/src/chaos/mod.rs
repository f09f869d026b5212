//! An independent observer of the engine under faults.
//!
//! [`FaultyPlatform`] is a simulated messenger that injects the faults real messengers and
//! real processes produce (flood waits, restrictions, refused writes, timeouts before and
//! after the write took effect, connection failures, crashes mid-call) and keeps its own
//! [`Journal`] of what reached it and what it delivered. [`CrashingStore`] and
//! [`CrashingLedger`] kill the process at the store's and the ledger's await points too:
//! before a write, or after it committed. [`check`] judges the engine's
//! promises (SPEC §5–§6: at most once, limits on every write that may have reached the
//! platform, every target finished, outcomes that match what happened) from that journal and
//! the outcomes the engine reported — it never reads the engine's own logs or ledgers.
//! [`run_seed`] runs one seeded campaign through crashes and restarts and checks it; the
//! `chaos` example runs hundreds.

mod check;
mod crashing;
mod journal;
mod platform;
mod run;

pub use check::{CheckCounts, CheckReport, Finding, ReportedTarget, TaskKind, check};
pub use crashing::{CrashPoints, CrashWhen, CrashingLedger, CrashingStore, StoreCrash};
pub use journal::{CallKind, Journal, JournalEntry, NewEntry, Reach};
pub use platform::{CrashSwitch, FaultCounts, FaultKind, FaultPlan, FaultyPlatform};
pub use run::{
    ChaosPorts, Crash, MAX_DAYS, MAX_PASSES, MAX_RESTARTS, SeedOutcome, run_seed, start_time,
    user_of,
};
