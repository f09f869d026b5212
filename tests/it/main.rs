//! Workspace-level end-to-end tests.

mod engine;
mod quickstart;
