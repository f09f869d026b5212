//! Workspace-level end-to-end tests.

mod chaos;
mod engine;
mod quickstart;
