//! The worker against the real PostgreSQL (`DATABASE_TEST_URL`, a fresh database per test)
//! and RabbitMQ (`AMQP_TEST_URL`, a random queue prefix per test). When a service is
//! unreachable a test prints a `SKIP` line — unless `INVITE_REQUIRE_SERVICES=1` (CI), where it
//! fails.

mod helpers;
mod telegram;
mod worker;
