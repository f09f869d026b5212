//! Shared code of the runnable examples: the quickstart campaign, also run by the
//! workspace tests so the figures it prints stay true.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use invite_examples::quickstart::{Scenario, run};
//!
//! // The default campaign in memory; `database_url: Some("sqlite://…")` keeps it on disk.
//! let report = run(&Scenario::default(), &mut std::io::stdout()).await?;
//! assert_eq!(report.violations, 0);
//! # Ok(()) }
//! ```

pub mod journal_platform;
pub mod quickstart;
