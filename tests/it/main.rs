//! Workspace-level end-to-end tests.

mod chaos;
mod engine;
mod quickstart;
mod status_queries;
