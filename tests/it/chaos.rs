//! The engine's promises under faults, judged by the independent chaos checker
//! (`invite_core::chaos`): seeded campaigns of several accounts and three tasks with crashes
//! at the platform's, the store's and the ledger's await points (before a write and after it
//! committed), timeouts before and after delivery, refusals, flood waits,
//! dead accounts and lost rights — on the in-memory store, a SQLite file and PostgreSQL. No
//! second delivery, no limit broken, no target lost, no outcome the platform's journal
//! contradicts. (`cargo run --release --example chaos -- --seeds 2000` runs more.)

use invite_core::chaos::{ChaosPorts, CheckCounts, run_seed, user_of};
use invite_core::domain::UserId;
use invite_core::ports::{Progress, TaskFilter, TaskStore};

use crate::engine::open;

/// The store's progress of each of `user`'s tasks (kept as counts by the SQL stores, moved in
/// the transaction of every write) equals a fresh count of the task's targets, after a run whose
/// engine crashed at the store's await points before and after its writes.
async fn counts_match_the_targets(store: &dyn TaskStore, user: UserId, seed: u64) {
    let filter = TaskFilter {
        limit: 100,
        ..TaskFilter::default()
    };
    for task in store.list_tasks(user, &filter).await.expect("tasks") {
        let mut counted = Progress::default();
        for t in store.targets(user, task.id, 0, 0).await.expect("targets") {
            *counted.by_status.entry(t.status).or_default() += 1;
            if let Some(o) = t.outcome {
                *counted.by_outcome.entry(o).or_default() += 1;
            }
        }
        let kept = store.progress(user, task.id).await.expect("progress");
        assert_eq!(kept, counted, "seed {seed}, task {}", task.id);
    }
}

/// Runs `seeds` on one store (each seed has its own user, so they share it) and asserts the
/// checker found nothing.
async fn seeds_keep_the_promises(backend: &str, seeds: std::ops::Range<u64>) {
    let Some(opened) = open(backend).await else {
        return;
    };
    let ports = opened.ports();
    let ports = ChaosPorts {
        store: ports.store,
        ledger: ports.ledger,
        suppression: ports.suppression,
        leases: ports.leases,
    };
    let mut total = CheckCounts::default();
    let mut first = Vec::new();
    let mut faults = 0;
    for seed in seeds.clone() {
        let ports = if backend == "memory" {
            ChaosPorts::memory()
        } else {
            ports.clone()
        };
        let outcome = run_seed(seed, ports.clone()).await.expect("store");
        counts_match_the_targets(ports.store.as_ref(), user_of(seed), seed).await;
        let r = &outcome.report;
        total.add(r.counts());
        faults += outcome.faults.total();
        first.extend(
            r.duplicates
                .iter()
                .chain(&r.cap_violations)
                .chain(&r.lost)
                .chain(&r.mismatched)
                .take(2)
                .map(|f| format!("seed {seed}: {f}")),
        );
        assert_eq!(outcome.bound_hit, None, "seed {seed}");
    }
    opened.close().await;
    assert!(
        faults > seeds.end - seeds.start,
        "faults were injected: {faults}"
    );
    assert!(
        total.is_clean(),
        "{total:?}; first findings:\n{}",
        first.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_its_promises_under_faults_in_memory() {
    seeds_keep_the_promises("memory", 0..300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_its_promises_under_faults_on_sqlite() {
    seeds_keep_the_promises("sqlite", 1000..1008).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_its_promises_under_faults_on_postgres() {
    seeds_keep_the_promises("postgres", 2000..2008).await;
}
