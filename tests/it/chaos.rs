//! The engine's promises under faults, judged by the independent chaos checker
//! (`invite_core::chaos`): seeded campaigns of several accounts and three tasks with crashes
//! at the platform's, the store's and the ledger's await points (before a write and after it
//! committed), timeouts before and after delivery, refusals, flood waits,
//! dead accounts and lost rights — on the in-memory store, a SQLite file and PostgreSQL. No
//! second delivery, no limit broken, no target lost, no outcome the platform's journal
//! contradicts. (`cargo run --release --example chaos -- --seeds 2000` runs more.)

use invite_core::chaos::{ChaosPorts, CheckCounts, run_seed};

use crate::engine::open;

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
        let outcome = run_seed(seed, ports).await.expect("store");
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
