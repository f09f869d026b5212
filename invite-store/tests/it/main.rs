//! The conformance suites of `invite_core::testing` (`store_contract`, `ledger_contract`,
//! `leases_contract`, `registry_contract`, `suppression_contract`, `sandbox_world_contract`)
//! run on each SQL backend: SQLite in memory, SQLite on a file, PostgreSQL on a fresh database
//! per case. The in-memory reference runs the same suites in `invite-core`. `connect` tests
//! the factory and migrations; `sandbox_world` runs the sandbox platform across a restart of
//! an SQLite file.
//!
//! PostgreSQL is the server at `DATABASE_TEST_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); when it is unreachable the PostgreSQL tests
//! print a skip line and pass, unless `INVITE_REQUIRE_SERVICES=1`, when they fail.

mod connect;
mod helpers;
mod sandbox_world;

/// Declares, in module `$module`, one test per conformance suite run on `$backend`.
macro_rules! contract_suites {
    ($module:ident, $backend:ty) => {
        mod $module {
            use invite_core::testing;

            use crate::helpers::open;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn store_contract() {
                testing::store_contract(|| open::<$backend, _>(|s| s.tasks.clone())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ledger_contract() {
                testing::ledger_contract(|| open::<$backend, _>(|s| s.ledger.clone())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn leases_contract() {
                testing::leases_contract(|| open::<$backend, _>(|s| s.leases.clone())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn registry_contract() {
                testing::registry_contract(|| open::<$backend, _>(|s| s.registry.clone())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn suppression_contract() {
                testing::suppression_contract(|| open::<$backend, _>(|s| s.suppression.clone()))
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sandbox_world_contract() {
                testing::sandbox_world_contract(|| open::<$backend, _>(|s| s.sandbox.clone()))
                    .await;
            }
        }
    };
}

contract_suites!(sqlite_memory, crate::helpers::SqliteMemory);
contract_suites!(sqlite_file, crate::helpers::SqliteFile);
contract_suites!(postgres, crate::helpers::Postgres);
