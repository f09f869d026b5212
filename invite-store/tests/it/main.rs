//! The store contract suite: every test in `tasks`, `targets`, `engine`, `failure_paths`,
//! `ledger`, `suppression`, `leases`, `registry` and `sandbox_world` is written once against the ports and
//! run on each backend (the in-memory reference, SQLite in memory, SQLite on a file, PostgreSQL
//! on a fresh database per test). `connect` tests the factory and migrations; `sandbox_world`
//! also runs the sandbox platform across a restart of an SQLite file.
//!
//! PostgreSQL is the server at `DATABASE_TEST_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); when it is unreachable the PostgreSQL tests
//! print a skip line and pass, unless `INVITE_REQUIRE_SERVICES=1`, when they fail.

mod connect;
mod engine;
mod failure_paths;
mod helpers;
mod leases;
mod ledger;
mod registry;
mod sandbox_world;
mod suppression;
mod targets;
mod tasks;

/// Declares, in module `$module`, one test per contract test run on `$backend`.
macro_rules! contract_suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            contract_suite!(@tests $backend;
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
                ledger::reserve_records_events_and_lifetime,
                ledger::the_window_and_lifetime_caps_hold,
                ledger::refunds_return_the_slot,
                ledger::account_state_is_kept_and_decides,
                ledger::racers_for_the_last_slot_have_one_winner,
                ledger::performed_moves_the_events_of_a_reservation,
                ledger::histories_and_states_read_many_accounts_at_once,
                suppression::suppression_is_per_user_and_platform,
                leases::leases_are_exclusive_until_they_expire,
                leases::one_of_many_racers_takes_a_free_lease,
                registry::accounts_are_registered_once_per_key_and_platform_user,
                registry::accounts_are_listed_patched_and_removed_by_their_owner_only,
                registry::engine_statuses_never_override_a_disabled_account,
                registry::resolutions_and_budget_uses_are_kept_per_account,
                sandbox_world::sandbox_world_adds_a_member_once,
                sandbox_world::sandbox_world_deduplicates_random_ids_per_account,
                sandbox_world::sandbox_world_racers_have_one_first_delivery,
            );
        }
    };
    (@tests $backend:ty; $($group:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::helpers::run::<$backend, _, _>(crate::$group::$name).await;
            }
        )*
    };
}

contract_suite!(memory, crate::helpers::Memory);
contract_suite!(sqlite_memory, crate::helpers::SqliteMemory);
contract_suite!(sqlite_file, crate::helpers::SqliteFile);
contract_suite!(postgres, crate::helpers::Postgres);
