//! The engine's scenarios (limits, priorities, error classes, crashes), written once and run
//! unchanged on each store: in memory, on a SQLite file and on PostgreSQL.

mod failure_paths;
pub(crate) mod harness;
mod manager_outage;
mod scenarios;

use harness::Ports;
use invite_store::test_util::{PostgresDatabase, random_suffix};
use invite_store::{PoolConfig, Stores};

/// A store to run a scenario on, and how to clean up after it.
pub(crate) enum Opened {
    Memory,
    Sqlite(Stores, std::path::PathBuf),
    Postgres(Stores, PostgresDatabase),
}

impl Opened {
    pub(crate) fn ports(&self) -> Ports {
        match self {
            Opened::Memory => Ports::memory(),
            Opened::Sqlite(s, _) | Opened::Postgres(s, _) => Ports::of(s),
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Opened::Memory => {}
            Opened::Sqlite(stores, path) => {
                stores.close().await;
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Opened::Postgres(stores, db) => {
                stores.close().await;
                db.drop_database().await;
            }
        }
    }
}

pub(crate) async fn open(backend: &str) -> Option<Opened> {
    let connect = |url: String| async move {
        let stores = invite_store::connect(&url, PoolConfig::default())
            .await
            .expect("connect");
        stores.migrate().await.expect("migrate");
        stores
    };
    match backend {
        "memory" => Some(Opened::Memory),
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("invite-engine-{}.db", random_suffix()));
            let stores = connect(format!("sqlite://{}", path.display())).await;
            Some(Opened::Sqlite(stores, path))
        }
        _ => {
            let db = PostgresDatabase::create().await?;
            let stores = connect(db.url.clone()).await;
            Some(Opened::Postgres(stores, db))
        }
    }
}

async fn run<F, Fut>(backend: &str, scenario: F)
where
    F: FnOnce(Ports) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let Some(opened) = open(backend).await else {
        return;
    };
    let outcome = std::panic::AssertUnwindSafe(scenario(opened.ports()))
        .catch_unwind()
        .await;
    opened.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::run("memory", super::$name).await; })*
        }
        mod sqlite_file {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::run("sqlite", super::$name).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::run("postgres", super::$name).await; })*
        }
    };
}

use failure_paths::*;
use manager_outage::*;
use scenarios::*;

on_every_store!(
    a_release_lost_while_the_manager_is_away_is_made_when_it_returns,
    an_error_report_lost_while_the_manager_is_away_is_made_when_it_returns,
    a_groups_cap_counts_the_invites_done_before_it_was_resolved,
    people_reached_before_a_group_was_resolved_are_not_reached_again,
    an_uncertain_message_is_never_resent_by_another_account,
    an_uncertain_message_whose_sender_died_ends_uncertain,
    refused_writes_are_charged_and_bounded,
    invite_and_message_keeps_a_confirmed_invite_when_the_message_fails,
    invite_and_message_retries_only_the_message,
    a_live_slow_claim_is_not_recovered_by_another_worker,
    a_pause_stops_claims_within_the_pass,
    writes_of_every_kind_keep_the_pause,
    a_flood_wait_in_the_rights_check_cools_the_account_down,
    an_enormous_dedupe_window_is_all_the_past,
    a_panic_in_one_task_pauses_only_that_task,
    random_ids_never_repeat_across_restarts,
    a_crash_after_delivery_is_settled_through_the_sender,
    a_contact_and_its_invite_keep_the_pause,
    higher_priority_goes_first,
    equal_priorities_take_turns,
    equal_priorities_take_turns_within_a_step,
    higher_priority_goes_first_within_a_step,
    a_pause_stops_a_step_that_goes_on,
    a_later_high_task_takes_the_account_at_its_next_step,
    scheduled_task_waits_for_its_time,
    a_scheduled_task_waits_for_a_running_slot,
    a_campaign_on_real_limits_breaks_no_rule,
    target_errors_fail_the_target_and_the_account_goes_on,
    flood_wait_cools_the_account_and_returns_the_target_untouched,
    dead_account_ends_its_lanes_and_a_task_without_accounts_fails,
    account_without_rights_loses_its_lane_others_go_on,
    unusable_group_fails_the_task_with_the_reason,
    transient_errors_are_retried_with_backoff,
    unknown_errors_are_counted_never_success,
    ambiguous_invite_is_settled_by_a_membership_check,
    circuit_breaker_pauses_the_task,
    suppressed_people_are_skipped_at_send_time,
    crash_after_claim_leaves_uncertain_and_no_second_message,
    crash_before_the_invite_is_settled_and_invited_once,
    crash_after_the_invite_is_settled_without_a_second_invite,
);
