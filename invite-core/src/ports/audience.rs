//! `AudienceSource`: people collected elsewhere — the results of a task of the platform's
//! Parsing Service — to add to a campaign. Implementations: the Parsing Service client
//! (`invite-platform`), and [`StaticAudience`], fixed records for embedded use and tests.
//!
//! A source only fetches. It returns the records as the service sent them ([`Audience`]), and
//! [`Audience::import`] reads them exactly as an uploaded JSON file is read
//! ([`crate::import`]): the same column detection, identifier rules, de-duplication and
//! suppression, and the same [`ImportReport`]. Fetching is async; importing is pure and
//! synchronous, since the [`ImportContext`] borrows the caller's key sets.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{TargetSource, UserId};
use crate::import::{
    self, FileFormat, ImportContext, ImportError, ImportOptions, ImportReport, import_bytes,
};

/// The records of one result, every page, in the source's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audience {
    /// One element per person: a JSON object (its keys are the columns, as in a JSON upload:
    /// `username`, `user_id`, `phone`, `first_name`, …) or a string (an identifier).
    pub records: Vec<Value>,
}

impl Audience {
    /// Reads the records as a JSON array upload with `opts` (whose `format` and `source` are
    /// set to JSON and [`TargetSource::ParsingImport`]). Row numbers are positions in
    /// `records`, from 1; `opts.limits` apply to the records written as one JSON array.
    pub fn import(
        &self,
        opts: &ImportOptions,
        ctx: ImportContext<'_>,
    ) -> import::Result<ImportReport> {
        let opts = ImportOptions {
            format: Some(FileFormat::Json),
            source: TargetSource::ParsingImport,
            ..opts.clone()
        };
        let bytes =
            serde_json::to_vec(&self.records).map_err(|e| ImportError::Read(e.to_string()))?;
        import_bytes(&bytes, &opts, ctx)
    }
}

/// Why a source gave no audience. Messages never hold credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    /// No such result, or not the user's.
    #[error("parsing result {task} not found")]
    NotFound {
        /// The source's task id.
        task: String,
    },
    /// The source refused this service's credentials.
    #[error("the audience source refused our credentials: {0}")]
    Unauthorized(String),
    /// The source refused the request for another reason.
    #[error("the audience source refused the request: {0}")]
    Rejected(String),
    /// The result holds more people than the caller accepts; fetching stopped there.
    #[error("the parsing result has more than {limit} users")]
    TooMany {
        /// The caller's limit.
        limit: u64,
    },
    /// The source answered something that cannot be read.
    #[error("the audience source sent an unreadable answer: {0}")]
    Invalid(String),
    /// The source is unreachable, timed out or kept failing; a later call may succeed.
    #[error("the audience source is unavailable: {0}")]
    Unavailable(String),
}

impl AudienceError {
    /// Whether the same call may succeed later.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Fetches the people a Parsing Service task collected.
#[cfg_attr(feature = "testing", mockall::automock)]
#[async_trait]
pub trait AudienceSource: Send + Sync + fmt::Debug {
    /// Every record of parsing task `task`, owned by `user`. More than `max_records` records
    /// is [`AudienceError::TooMany`].
    async fn fetch(
        &self,
        user: UserId,
        task: &str,
        max_records: u64,
    ) -> Result<Audience, AudienceError>;
}

/// Fixed records per user and task.
#[derive(Debug, Clone, Default)]
pub struct StaticAudience {
    results: HashMap<(UserId, String), Vec<Value>>,
}

impl StaticAudience {
    /// No results.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the records of `user`'s task `task`.
    pub fn with(mut self, user: UserId, task: &str, records: Vec<Value>) -> Self {
        self.results.insert((user, task.to_owned()), records);
        self
    }
}

#[async_trait]
impl AudienceSource for StaticAudience {
    async fn fetch(
        &self,
        user: UserId,
        task: &str,
        max_records: u64,
    ) -> Result<Audience, AudienceError> {
        let records =
            self.results
                .get(&(user, task.to_owned()))
                .ok_or_else(|| AudienceError::NotFound {
                    task: task.to_owned(),
                })?;
        if records.len() as u64 > max_records {
            return Err(AudienceError::TooMany { limit: max_records });
        }
        Ok(Audience {
            records: records.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::Platform;

    #[tokio::test]
    async fn static_records_import_as_parsing_targets() {
        let user = UserId::new(7);
        let source = StaticAudience::new().with(
            user,
            "p-1",
            vec![
                json!({"username": "alice_one", "first_name": "Alice"}),
                json!({"username": "1bad"}),
                json!({"user_id": 123456789}),
                json!({"username": "ALICE_ONE"}),
            ],
        );
        assert_eq!(
            source.fetch(user, "p-2", 10).await,
            Err(AudienceError::NotFound { task: "p-2".into() })
        );
        assert_eq!(
            source.fetch(user, "p-1", 3).await,
            Err(AudienceError::TooMany { limit: 3 })
        );
        let audience = source.fetch(user, "p-1", 4).await.unwrap();
        let report = audience
            .import(
                &ImportOptions::new(Platform::Telegram),
                ImportContext::EMPTY,
            )
            .unwrap();
        assert!(report.is_consistent());
        assert_eq!(report.format, FileFormat::Json);
        assert_eq!((report.rows, report.valid), (4, 2));
        assert_eq!((report.invalid, report.duplicate_in_file), (1, 1));
        assert_eq!(report.errors[0].row, 2);
        assert!(
            report
                .targets
                .iter()
                .all(|t| t.source == TargetSource::ParsingImport)
        );
    }
}
