//! Shared code of the runnable examples: the quickstart campaign, also run by the
//! workspace tests so the figures it prints stay true.

pub mod journal_platform;
pub mod quickstart;
