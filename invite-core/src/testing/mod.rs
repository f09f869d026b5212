//! Everything an adapter's tests need, behind the `testing` feature (off by default, so
//! production builds carry none of it):
//!
//! - mocks of every port, generated from the traits by `mockall` so they never drift:
//!   [`MockTaskStore`], [`MockInviteStrategy`], [`MockAccountManager`], …;
//! - conformance suites, one per port, each an `async fn` taking a factory of the thing
//!   under test: [`store_contract`], [`ledger_contract`], [`leases_contract`],
//!   [`registry_contract`], [`suppression_contract`], [`sandbox_world_contract`],
//!   [`queue_contract`], [`account_manager_contract`], [`strategy_contract`];
//! - the fault-injecting platform and its journal checker, in [`crate::chaos`], to run the
//!   engine's promises against your own store and account manager.
//!
//! Our own adapters (the in-memory ports, SQLite, PostgreSQL, RabbitMQ, the local account
//! manager, the sandbox and Telegram strategies) run exactly these suites.
//!
//! A factory opens a fresh implementation for every case and may say how to clean up after it:
//!
//! ```
//! use std::sync::Arc;
//! use invite_core::memory::MemoryStore;
//! use invite_core::ports::TaskStore;
//! use invite_core::testing::{Opened, store_contract};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! store_contract(|| async {
//!     let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
//!     Some(Opened::shared(store))
//! })
//! .await;
//! # });
//! ```
//!
//! A store of several processes (a database) gives [`Subject::new`] a way to open another
//! handle on the same data with its own connections: the racing cases use it.

use std::future::Future;

mod account_manager;
mod fixtures;
mod harness;
mod queue;
mod strategy;
mod suites;

use suites::{
    engine, failure_paths, leases, ledger, registry, sandbox_world, suppression, targets, tasks,
};

pub use account_manager::{ManagedAccounts, account_manager_contract};
pub use harness::{Opened, Subject};
use harness::{cases, run_cases};
pub use queue::queue_contract;
pub use strategy::{Situation, StagedStrategy, claimed_target, strategy_contract};

use crate::ports::{AccountLeases, AccountRegistry, LimitLedger, SuppressionList, TaskStore};
pub use crate::ports::{
    MockAccountDirectory, MockAccountLeases, MockAccountManager, MockAccountRegistry,
    MockAudienceSource, MockInviteStrategy, MockJobQueue, MockLimitLedger, MockSecretStore,
    MockSuppressionList, MockTaskEvents, MockTaskStore,
};
use crate::sandbox::SandboxWorld;

/// The [`TaskStore`] contract: tasks (creation with duplicate identifiers merged, idempotency keys,
/// listing, updates, deletion, the state machine and its racers, the running cap across
/// processes, owners), targets (bulk adds, the report, progress), the engine's side (claims of
/// the lowest pending target, random ids, outcomes with their log rows, stale claims made
/// uncertain and settled, lanes, logs, stats, cleanup) and its failure paths (pinned targets,
/// follow-ups, recovery of silent holders only, claims racing from many accounts).
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn store_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn TaskStore>>>,
{
    run_cases(
        "store_contract",
        open,
        cases![
            tasks::create_task_merges_duplicate_identifiers,
            tasks::idempotency_keys_replay_or_refuse,
            tasks::list_tasks_filters_and_pages_newest_first,
            tasks::update_task_only_while_pending_or_paused,
            tasks::delete_task_cascades_but_not_while_running,
            tasks::transitions_follow_the_state_machine,
            tasks::concurrent_transitions_have_one_winner,
            tasks::running_cap_holds_for_racers_in_every_process,
            tasks::another_users_task_is_not_found,
            targets::add_targets_counts_duplicates_of_the_task_and_the_batch,
            targets::add_targets_in_bulk_spans_several_statements,
            targets::bulk_targets_keep_every_character_of_their_names,
            targets::add_targets_only_while_pending_or_paused,
            targets::the_report_pages_targets_in_id_order,
            targets::progress_counts_statuses_and_outcomes,
            targets::progress_equals_a_fresh_count_after_every_kind_of_write,
            targets::task_progress_is_the_task_and_its_counts,
            engine::claims_take_the_lowest_pending_target,
            engine::a_released_target_keeps_its_random_id,
            engine::outcomes_are_recorded_with_their_log_row,
            engine::stale_claims_become_uncertain_and_are_settled,
            engine::engine_tasks_are_running_or_armed,
            engine::lanes_are_created_once_and_saved,
            engine::pending_counts_cover_every_asked_task,
            engine::logs_filter_and_page_in_id_order,
            engine::stats_group_by_account_error_and_hour,
            engine::reached_since_looks_across_tasks_of_the_user,
            engine::a_recorded_group_key_joins_the_spellings_of_one_group,
            engine::cleanup_removes_old_logs_and_finished_tasks,
            engine::two_claimers_never_take_the_same_target,
            failure_paths::a_claim_never_takes_a_target_pinned_to_another_account,
            failure_paths::a_claim_takes_nothing_from_a_task_that_is_not_running,
            failure_paths::followup_claims_take_the_message_after_a_confirmed_invite,
            failure_paths::a_late_result_of_a_recovered_claim_wins_for_its_account,
            failure_paths::recovery_takes_the_claims_of_silent_holders_only,
            failure_paths::a_retry_settlement_keeps_the_pin,
            failure_paths::abandon_pinned_ends_the_targets_whose_sender_cannot_act,
            failure_paths::random_ids_are_unique_per_target_and_survive_a_new_claim,
            failure_paths::concurrent_claims_of_many_accounts_never_take_one_target_twice,
        ],
    )
    .await;
}

/// The [`LimitLedger`] contract: reservations record their events under the policy's window,
/// lifetime and pause, refunds return the slot, the account's state is kept and decides,
/// `performed` moves a reservation's events, `merge_channel` moves a channel's history to
/// another key, and of many racers for the last slot one wins.
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn ledger_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn LimitLedger>>>,
{
    run_cases(
        "ledger_contract",
        open,
        cases![
            ledger::reserve_records_events_and_lifetime,
            ledger::the_window_and_lifetime_caps_hold,
            ledger::refunds_return_the_slot,
            ledger::account_state_is_kept_and_decides,
            ledger::racers_for_the_last_slot_have_one_winner,
            ledger::performed_moves_the_events_of_a_reservation,
            ledger::histories_and_states_read_many_accounts_at_once,
            ledger::merge_channel_counts_the_written_key_under_the_resolved_one,
        ],
    )
    .await;
}

/// The [`AccountLeases`] contract: a lease is exclusive until it expires, its holder renews and
/// releases it, leases are per account, and of many racers for a free lease one wins.
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn leases_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn AccountLeases>>>,
{
    run_cases(
        "leases_contract",
        open,
        cases![
            leases::leases_are_exclusive_until_they_expire,
            leases::one_of_many_racers_takes_a_free_lease,
        ],
    )
    .await;
}

/// The [`AccountRegistry`] contract: one account per key and platform user, listed, patched and
/// removed by its owner only, and engine statuses never override a disabled account.
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn registry_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn AccountRegistry>>>,
{
    run_cases(
        "registry_contract",
        open,
        cases![
            registry::accounts_are_registered_once_per_key_and_platform_user,
            registry::accounts_are_listed_patched_and_removed_by_their_owner_only,
            registry::engine_statuses_never_override_a_disabled_account,
            registry::resolutions_and_budget_uses_are_kept_per_account,
        ],
    )
    .await;
}

/// The [`SuppressionList`] contract: suppression is per user and platform.
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn suppression_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn SuppressionList>>>,
{
    run_cases(
        "suppression_contract",
        open,
        cases![suppression::suppression_is_per_user_and_platform,],
    )
    .await;
}

/// The [`SandboxWorld`] contract: a member is added once, delivered random ids are remembered
/// per account, and of racers delivering one message one is first.
///
/// `open` gives every case a fresh, empty implementation (see [`Opened`]); `None` skips the
/// suite. Panics, naming the case, when the implementation breaks the contract.
pub async fn sandbox_world_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Opened<dyn SandboxWorld>>>,
{
    run_cases(
        "sandbox_world_contract",
        open,
        cases![
            sandbox_world::sandbox_world_adds_a_member_once,
            sandbox_world::sandbox_world_deduplicates_random_ids_per_account,
            sandbox_world::sandbox_world_racers_have_one_first_delivery,
        ],
    )
    .await;
}
