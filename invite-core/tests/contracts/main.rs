//! The conformance suites of `invite_core::testing` run on the in-memory implementations, and
//! on deliberately broken ones that each suite must catch: a suite that cannot fail proves
//! nothing.

mod adapters;
mod broken_store;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use invite_core::memory::{MemoryLedger, MemoryRegistry, MemoryStore};
use invite_core::ports::{AccountLeases, LimitLedger, SuppressionList, TaskStore};
use invite_core::sandbox::{MemoryWorld, SandboxWorld};
use invite_core::testing::{
    Opened, Subject, leases_contract, ledger_contract, registry_contract, sandbox_world_contract,
    store_contract, suppression_contract,
};

/// Runs a suite that must fail.
pub(crate) async fn must_fail(suite: impl Future<Output = ()>) {
    let outcome = AssertUnwindSafe(suite).catch_unwind().await;
    assert!(
        outcome.is_err(),
        "the suite passed a deliberately broken implementation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_meets_the_store_contract() {
    store_contract(|| async {
        let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
        Some(Opened::shared(store))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_forgets_a_claims_holder_fails_the_store_contract() {
    must_fail(store_contract(|| async {
        let store: Arc<dyn TaskStore> = Arc::new(broken_store::ForgetfulStore::default());
        Some(Opened::shared(store))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_ledger_meets_the_ledger_contract() {
    ledger_contract(|| async {
        let ledger: Arc<dyn LimitLedger> = Arc::new(MemoryLedger::new());
        Some(Opened::shared(ledger))
    })
    .await;
}

/// A ledger each process keeps for itself: two processes both take the last slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_of_one_process_fails_the_ledger_contract() {
    must_fail(ledger_contract(|| async {
        let ledger: Arc<dyn LimitLedger> = Arc::new(MemoryLedger::new());
        let subject = Subject::new(ledger, || {
            async { Arc::new(MemoryLedger::new()) as Arc<dyn LimitLedger> }.boxed()
        });
        Some(Opened::new(subject))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_leases_meet_the_leases_contract() {
    leases_contract(|| async {
        let leases: Arc<dyn AccountLeases> = Arc::new(MemoryStore::new());
        Some(Opened::shared(leases))
    })
    .await;
}

/// Leases each process keeps for itself: every racer takes the same account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_one_process_fail_the_leases_contract() {
    must_fail(leases_contract(|| async {
        let leases: Arc<dyn AccountLeases> = Arc::new(MemoryStore::new());
        let subject = Subject::new(leases, || {
            async { Arc::new(MemoryStore::new()) as Arc<dyn AccountLeases> }.boxed()
        });
        Some(Opened::new(subject))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_registry_meets_the_registry_contract() {
    registry_contract(|| async { Some(Opened::shared(Arc::new(MemoryRegistry::new()) as _)) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_suppression_meets_the_suppression_contract() {
    suppression_contract(|| async {
        let list: Arc<dyn SuppressionList> = Arc::new(MemoryStore::new());
        Some(Opened::shared(list))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_world_meets_the_sandbox_world_contract() {
    sandbox_world_contract(|| async {
        let world: Arc<dyn SandboxWorld> = Arc::new(MemoryWorld::new());
        Some(Opened::shared(world))
    })
    .await;
}
