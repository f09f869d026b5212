//! What reaches the logs, in a test binary of its own: the test installs a scoped subscriber
//! and must see every line of the server and the engine, which other tests' threads, meeting
//! the same callsites first, could otherwise hide from it.

// The shared helpers of the end-to-end tests; this binary uses a few of them.
#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;
mod secrets;
