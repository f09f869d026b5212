//! Audience import use cases: a file or a Parsing Service result into a task, the same
//! analysis with nothing stored, and the suppression list.
//!
//! The parsing is [`crate::import`]'s; these use cases add what needs the ports: the task's
//! existing targets and the user's suppression list feed the [`ImportContext`], the optional
//! cross-task de-duplication asks [`TaskStore::reached_since`], and the targets are appended
//! with [`TaskStore::add_targets`] in one transaction (all or nothing).
//!
//! # Cross-task de-duplication
//!
//! With `dedupe_days = N` (from the request, else from the task's settings) a person the user
//! already reached successfully in the same channel (the task's group, or direct messages)
//! within `N` days counts as a duplicate (`duplicate_reached`). The file is read once, the
//! valid targets are looked up with `reached_since` (one query per 10 000 people), and the
//! file is read again with those people in [`ImportContext::reached`] so that every row keeps
//! its exact account. The engine checks again right before each send.
//!
//! The channel is the group's stable key once the engine resolved it ([`Task::channel`]), and
//! the group as written before that (a task not started yet): at import `@chan` and `-100…`
//! of one group may still count as two groups. The check before each send is on the stable
//! key, so two tasks into one group under different spellings never reach one person twice
//! within `N` days.
//!
//! # Off the async workers
//!
//! Reading a file is CPU-bound: it runs on a blocking thread (`spawn_blocking`), at most
//! [`ImportLimits::max_concurrent_reads`] at once, and the request waits for it at most
//! [`ImportLimits::max_read_time`] (waiting for a turn included), then gets
//! [`ImportError::TimedOut`]. A read that timed out keeps its turn until it ends, which the
//! import caps bound, so slow files cannot pile up threads.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::{
    NormalizeOptions, Platform, TargetIdentifier, Task, TaskId, TaskStatus, UserId,
};
use crate::import::{
    ColumnMapping, FileFormat, ImportContext, ImportError, ImportLimits, ImportOptions,
    ImportReport, TextEncoding, import_bytes,
};
use crate::ports::SuppressionEntry;

use super::{Campaigns, FieldError, Result, ServiceError};

/// A file's reading, shareable with a blocking thread.
type Reader = Arc<
    dyn Fn(&ImportOptions, ImportContext<'_>) -> crate::import::Result<ImportReport> + Send + Sync,
>;

/// A reader of `file` (copied once, to be sent to a blocking thread).
fn file_reader(file: &[u8]) -> Reader {
    let file: Arc<[u8]> = Arc::from(file);
    Arc::new(move |o, c| import_bytes(&file, o, c))
}

/// Identifier keys asked of `reached_since` in one query.
const DEDUPE_CHUNK: usize = 10_000;

/// Page size when the use cases read a task's targets or a suppression list whole.
const PAGE: u32 = 1000;

/// How to read a file, as the uploader says; everything left `None` is detected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The format.
    pub format: Option<FileFormat>,
    /// The CSV delimiter.
    pub delimiter: Option<u8>,
    /// The character encoding of a CSV file.
    pub encoding: Option<TextEncoding>,
    /// The worksheet of an XLSX file.
    pub sheet: Option<String>,
    /// Whether the first row is a header.
    pub has_header: Option<bool>,
    /// Explicit columns.
    pub mapping: Option<ColumnMapping>,
    /// Phone normalisation.
    pub normalize: NormalizeOptions,
}

/// An import request beside the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    /// How to read the file.
    pub read: ReadOptions,
    /// Cross-task de-duplication window in days (within
    /// [`DEDUPE_DAYS`](super::DEDUPE_DAYS)); `None` takes the task's setting.
    pub dedupe_days: Option<u32>,
}

/// What an import found and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The task, when there is one.
    pub task_id: Option<TaskId>,
    /// The de-duplication window applied, in days.
    pub dedupe_days: Option<u32>,
    /// The analysis (`report.targets` are the rows taken).
    pub report: ImportReport,
    /// Targets stored (0 for a validation).
    pub inserted: u64,
}

/// What a bulk suppression from a file found and added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressSummary {
    /// The analysis of the file (nobody is skipped as suppressed: the list is the target).
    pub report: ImportReport,
    /// People new to the list.
    pub added: u64,
}

impl Campaigns {
    fn import_options(&self, platform: Platform, read: &ReadOptions) -> ImportOptions {
        ImportOptions {
            format: read.format,
            delimiter: read.delimiter,
            encoding: read.encoding,
            sheet: read.sheet.clone(),
            has_header: read.has_header,
            mapping: read.mapping.clone(),
            normalize: read.normalize,
            limits: self.import_limits,
            ..ImportOptions::new(platform)
        }
    }

    /// The task, if it may take targets (`PENDING` or `PAUSED`).
    async fn importable_task(&self, user: UserId, id: TaskId) -> Result<Task> {
        let task = self.get(user, id).await?;
        if !matches!(task.status, TaskStatus::Pending | TaskStatus::Paused) {
            return Err(ServiceError::Conflict {
                action: "import into",
                current: task.status,
            });
        }
        Ok(task)
    }

    /// Dedupe keys of every target of the task.
    async fn task_keys(&self, user: UserId, id: TaskId) -> Result<HashSet<String>> {
        let mut keys = HashSet::new();
        let mut offset = 0;
        loop {
            let page = self
                .parts
                .store
                .targets(user, id, PAGE, offset)
                .await
                .map_err(|e| ServiceError::from_store(e, "import into"))?;
            let n = page.len() as u32;
            keys.extend(page.iter().map(|t| t.person.identifier.dedupe_key()));
            if n < PAGE {
                return Ok(keys);
            }
            offset += n;
        }
    }

    /// Dedupe keys of the user's whole suppression list for the platform.
    async fn suppressed_keys(&self, user: UserId, platform: Platform) -> Result<HashSet<String>> {
        let mut keys = HashSet::new();
        let mut offset = 0;
        loop {
            let page = self
                .parts
                .suppression
                .suppressed(user, platform, PAGE, offset)
                .await
                .map_err(|e| ServiceError::from_store(e, "read"))?;
            let n = page.len() as u32;
            keys.extend(page.iter().map(|e| e.identifier.dedupe_key()));
            if n < PAGE {
                return Ok(keys);
            }
            offset += n;
        }
    }

    /// Runs `read` on a blocking thread when a reader's turn comes, within the time budget.
    async fn off_runtime<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let budget = self.import_limits.max_read_time;
        let readers = Arc::clone(&self.readers);
        let work = async move {
            let permit = readers
                .acquire_owned()
                .await
                .map_err(|_| ServiceError::Internal("the file readers are closed".to_owned()))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                read()
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("reading the file failed: {e}")))
        };
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    budget_s = budget.as_secs(),
                    "reading an uploaded file took longer than {} s",
                    budget.as_secs()
                );
                Err(ServiceError::File(ImportError::TimedOut {
                    seconds: budget.as_secs(),
                }))
            }
        }
    }

    /// Reads with the task's keys, the suppression list and, with a window, the people
    /// reached within it. `read` runs off the async workers ([`Self::off_runtime`]).
    async fn analyse(
        &self,
        user: UserId,
        task: Option<&Task>,
        platform: Platform,
        opts: &ImportOptions,
        dedupe_days: Option<u32>,
        read: Reader,
    ) -> Result<ImportReport> {
        let existing = match task {
            Some(t) => self.task_keys(user, t.id).await?,
            None => HashSet::new(),
        };
        let suppressed = self.suppressed_keys(user, platform).await?;
        let first = {
            let (read, opts) = (Arc::clone(&read), opts.clone());
            self.off_runtime(move || {
                // Contexts borrow `dyn KeySet`s, which are not `Sync`: the sets travel by
                // value and come back.
                let report = read(
                    &opts,
                    ImportContext {
                        existing: &existing,
                        suppressed: &suppressed,
                        reached: &(),
                    },
                );
                (report, existing, suppressed)
            })
            .await?
        };
        let (report, existing, suppressed) = first;
        let report = report.map_err(file_error)?;
        let (Some(days), Some(task)) = (dedupe_days, task) else {
            return Ok(report);
        };
        // The window is within `DEDUPE_DAYS`; still, a date before the representable past
        // counts every success ever recorded rather than overflowing.
        let now = self.parts.clock.now();
        let since = chrono::TimeDelta::try_days(i64::from(days))
            .and_then(|d| now.checked_sub_signed(d))
            .map_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, |since| {
                since.max(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
            });
        let channel = task.channel();
        let keys: Vec<String> = report
            .targets
            .iter()
            .map(|t| t.identifier.dedupe_key())
            .collect();
        let mut reached = HashSet::new();
        for chunk in keys.chunks(DEDUPE_CHUNK) {
            let hits = self
                .parts
                .store
                .reached_since(user, platform, chunk, &channel, since)
                .await
                .map_err(|e| ServiceError::from_store(e, "import into"))?;
            reached.extend(hits);
        }
        if reached.is_empty() {
            return Ok(report);
        }
        let opts = opts.clone();
        self.off_runtime(move || {
            read(
                &opts,
                ImportContext {
                    existing: &existing,
                    suppressed: &suppressed,
                    reached: &reached,
                },
            )
        })
        .await?
        .map_err(file_error)
    }

    /// Checks the window and stores the report's targets into the task (all or nothing).
    async fn store_targets(
        &self,
        user: UserId,
        task: &Task,
        dedupe_days: Option<u32>,
        report: ImportReport,
    ) -> Result<ImportSummary> {
        let total = self
            .parts
            .store
            .progress(user, task.id)
            .await
            .map_err(|e| ServiceError::from_store(e, "import into"))?
            .total();
        self.check_target_count(total as usize + report.targets.len())?;
        let added = if report.targets.is_empty() {
            Default::default()
        } else {
            self.parts
                .store
                .add_targets(user, task.id, report.targets.clone())
                .await
                .map_err(|e| ServiceError::from_store(e, "import into"))?
        };
        Ok(ImportSummary {
            task_id: Some(task.id),
            dedupe_days,
            report,
            inserted: added.inserted,
        })
    }

    fn dedupe_window(request: Option<u32>, task: Option<&Task>) -> Result<Option<u32>> {
        if let Some(e) = request.and_then(super::draft::dedupe_days_error) {
            return Err(ServiceError::Validation(vec![e]));
        }
        Ok(request.or_else(|| task.and_then(|t| t.settings.dedupe_days)))
    }

    /// Reads a file into the targets of a `PENDING` or `PAUSED` task of the user. Rows already
    /// in the task, suppressed or (with a window) reached recently are counted and skipped;
    /// more targets than [`ServiceLimits::max_targets_per_task`](super::ServiceLimits) is
    /// [`ServiceError::LimitExceeded`] and nothing is stored.
    #[tracing::instrument(skip_all, fields(user.id = %user, task.id = %id))]
    pub async fn import_file(
        &self,
        user: UserId,
        id: TaskId,
        file: &[u8],
        request: &ImportRequest,
    ) -> Result<ImportSummary> {
        let task = self.importable_task(user, id).await?;
        let days = Self::dedupe_window(request.dedupe_days, Some(&task))?;
        let opts = self.import_options(task.platform, &request.read);
        let report = self
            .analyse(
                user,
                Some(&task),
                task.platform,
                &opts,
                days,
                file_reader(file),
            )
            .await?;
        self.store_targets(user, &task, days, report).await
    }

    /// The analysis of [`import_file`](Self::import_file) with nothing stored. With a task
    /// (of any status) its targets, platform and window apply; without one, `platform`'s
    /// suppression list and no cross-task de-duplication.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn validate_file(
        &self,
        user: UserId,
        task: Option<TaskId>,
        platform: Platform,
        file: &[u8],
        request: &ImportRequest,
    ) -> Result<ImportSummary> {
        let task = match task {
            Some(id) => Some(self.get(user, id).await?),
            None => None,
        };
        let platform = task.as_ref().map_or(platform, |t| t.platform);
        let days = match &task {
            Some(t) => Self::dedupe_window(request.dedupe_days, Some(t))?,
            None => Self::dedupe_window(request.dedupe_days, None).map(|_| None)?,
        };
        let opts = self.import_options(platform, &request.read);
        let report = self
            .analyse(
                user,
                task.as_ref(),
                platform,
                &opts,
                days,
                file_reader(file),
            )
            .await?;
        Ok(ImportSummary {
            task_id: task.map(|t| t.id),
            dedupe_days: days,
            report,
            inserted: 0,
        })
    }

    /// Fetches the result of Parsing Service task `parsing_task` and imports it like a JSON
    /// upload into a `PENDING` or `PAUSED` task of the user.
    #[tracing::instrument(skip_all, fields(user.id = %user, task.id = %id))]
    pub async fn import_parsing(
        &self,
        user: UserId,
        id: TaskId,
        parsing_task: &str,
        dedupe_days: Option<u32>,
    ) -> Result<ImportSummary> {
        let source = self
            .parts
            .audience
            .clone()
            .ok_or(ServiceError::NotConfigured("the Parsing Service"))?;
        let task = self.importable_task(user, id).await?;
        let days = Self::dedupe_window(dedupe_days, Some(&task))?;
        let audience = source
            .fetch(user, parsing_task, self.import_limits.max_rows)
            .await
            .map_err(ServiceError::Source)?;
        let mut opts = self.import_options(task.platform, &ReadOptions::default());
        // The records are in memory already, bounded by their count.
        opts.limits.max_bytes = u64::MAX;
        let report = self
            .analyse(
                user,
                Some(&task),
                task.platform,
                &opts,
                days,
                Arc::new(move |o, c| audience.import(o, c)),
            )
            .await?;
        self.store_targets(user, &task, days, report).await
    }

    /// Adds people to the user's suppression list for `platform`; every identifier is
    /// checked first (all errors at once), then the new ones are added. Returns how many were
    /// new.
    pub async fn suppress(
        &self,
        user: UserId,
        platform: Platform,
        identifiers: &[String],
        reason: &str,
    ) -> Result<u64> {
        let opts = NormalizeOptions::default();
        let mut people = Vec::with_capacity(identifiers.len());
        let mut errors = Vec::new();
        if identifiers.is_empty() {
            errors.push(FieldError {
                field: "identifiers".to_owned(),
                message: "must hold at least one identifier".to_owned(),
            });
        }
        let max = self.limits.max_targets_per_task;
        if identifiers.len() > max {
            // Refused before any is read; the cap is the task limit, but no task is involved.
            return Err(ServiceError::Validation(vec![FieldError {
                field: "identifiers".to_owned(),
                message: format!(
                    "holds {} identifiers; at most {max} (max_targets_per_task) may be added in one request",
                    identifiers.len()
                ),
            }]));
        }
        for (i, raw) in identifiers.iter().enumerate() {
            match TargetIdentifier::parse(raw, platform, &opts) {
                Ok(id) => people.push(id),
                Err(e) => errors.push(FieldError {
                    field: format!("identifiers[{i}]"),
                    message: e.to_string(),
                }),
            }
        }
        let reason = Self::reason(reason, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        self.parts
            .suppression
            .suppress(user, platform, &people, &reason, self.parts.clock.now())
            .await
            .map_err(|e| ServiceError::from_store(e, "suppress"))
    }

    fn reason(reason: &str, errors: &mut Vec<FieldError>) -> String {
        // Counted as sent, as the document's `maxLength` does.
        if reason.chars().count() > 255 {
            errors.push(FieldError {
                field: "reason".to_owned(),
                message: "must be at most 255 characters".to_owned(),
            });
        }
        let reason = reason.trim();
        if reason.is_empty() {
            "manual".to_owned()
        } else {
            reason.to_owned()
        }
    }

    /// Adds every valid person of a file to the suppression list (the file is read like an
    /// import: same formats, columns and row errors).
    #[tracing::instrument(skip_all, fields(user.id = %user, %platform))]
    pub async fn suppress_file(
        &self,
        user: UserId,
        platform: Platform,
        file: &[u8],
        read: &ReadOptions,
        reason: &str,
    ) -> Result<SuppressSummary> {
        let mut errors = Vec::new();
        let reason = Self::reason(reason, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let opts = self.import_options(platform, read);
        let read = file_reader(file);
        let report = self
            .off_runtime(move || read(&opts, ImportContext::EMPTY))
            .await?
            .map_err(file_error)?;
        let people: Vec<TargetIdentifier> = report
            .targets
            .iter()
            .map(|t| t.identifier.clone())
            .collect();
        let added = if people.is_empty() {
            0
        } else {
            self.parts
                .suppression
                .suppress(user, platform, &people, &reason, self.parts.clock.now())
                .await
                .map_err(|e| ServiceError::from_store(e, "suppress"))?
        };
        Ok(SuppressSummary { report, added })
    }

    /// Removes one person from the list; returns whether they were on it.
    pub async fn unsuppress(
        &self,
        user: UserId,
        platform: Platform,
        identifier: &str,
    ) -> Result<bool> {
        let person = TargetIdentifier::parse(identifier, platform, &NormalizeOptions::default())
            .map_err(|e| {
                ServiceError::Validation(vec![FieldError {
                    field: "identifier".to_owned(),
                    message: e.to_string(),
                }])
            })?;
        self.parts
            .suppression
            .unsuppress(user, platform, &person)
            .await
            .map_err(|e| ServiceError::from_store(e, "unsuppress"))
    }

    /// A page of the user's suppression list for `platform`, oldest first.
    pub async fn suppressions(
        &self,
        user: UserId,
        platform: Platform,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<SuppressionEntry>> {
        self.parts
            .suppression
            .suppressed(user, platform, limit, offset)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))
    }

    /// The size limits of one import.
    pub fn import_limits(&self) -> &ImportLimits {
        &self.import_limits
    }
}

/// A file refused whole: the sender's fault, or (a read failure) ours.
fn file_error(e: ImportError) -> ServiceError {
    if e.is_client_error() {
        ServiceError::File(e)
    } else {
        ServiceError::Internal(e.to_string())
    }
}
