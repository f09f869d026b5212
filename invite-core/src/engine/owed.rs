//! The account manager's absence: holds named per allocation, releases and error reports that
//! could not reach the manager kept and made again before the account's next allocation.
//!
//! "Account Manager unavailable" is no platform error of the account: the account's state, its
//! transient backoff and its task's breaker are left alone, and the account is stepped again
//! after the fixed [`EngineConfig::manager_retry`](super::EngineConfig::manager_retry). What the
//! manager missed meanwhile is owed: first the error reports (so a cooldown the platform asked
//! for is in force before the account is granted again), then the release (which names its
//! hold, so a late one never frees another caller's hold). Nothing is allocated for the account
//! until both went through — the account is not stuck until the manager's hold TTL.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{info, warn};

use super::Engine;
use crate::domain::AccountId;
use crate::ports::{ErrorReport, HoldId, UsageStats};

/// Calls to the account manager owed for one account.
#[derive(Debug, Default)]
pub(super) struct Owed {
    /// Error reports not taken, oldest first, with the time of their error.
    reports: Vec<(ErrorReport, DateTime<Utc>)>,
    /// The release not taken.
    release: Option<UsageStats>,
}

impl Engine {
    /// A fresh hold name for an allocation of `account`, remembered as the account's hold until
    /// it is released.
    pub(super) fn draw_hold(&self) -> HoldId {
        let mut st = self.state();
        st.holds_drawn += 1;
        HoldId::new(format!("{}-{}", self.hold_prefix, st.holds_drawn))
    }

    /// Records that `account` is held under `hold`.
    pub(super) fn note_hold(&self, account: &AccountId, hold: HoldId) {
        self.state().holding.insert(account.clone(), hold);
    }

    /// Releases `account` with `usage`. When the manager cannot be reached, the release is owed
    /// and made again before the account's next allocation (one it refused is not: asking
    /// again would not change its answer).
    pub(super) async fn release(&self, account: &AccountId, usage: UsageStats) {
        info!(account.id = %account, "Account Manager: release_account {account}");
        match self.parts.accounts.release_account(account, &usage).await {
            Ok(()) => {
                self.state().holding.remove(account);
            }
            Err(e) if e.is_retryable() => {
                warn!(account.id = %account, error = %e, "account not released; released again before its next allocation");
                self.note_error(&e.to_string());
                let mut st = self.state();
                st.holding.remove(account);
                st.owed.entry(account.clone()).or_default().release = Some(usage);
            }
            Err(e) => {
                warn!(account.id = %account, error = %e, "account release refused; its hold ends at the manager's TTL");
                self.note_error(&e.to_string());
                self.state().holding.remove(account);
            }
        }
    }

    /// Keeps an error report the manager could not take (of an error at `at`), to be made
    /// again before the account's next allocation.
    pub(super) fn owe_report(&self, account: &AccountId, report: ErrorReport, at: DateTime<Utc>) {
        self.state()
            .owed
            .entry(account.clone())
            .or_default()
            .reports
            .push((report, at));
    }

    /// Whether calls to the manager are owed for `account`.
    pub(super) fn owes(&self, account: &AccountId) -> bool {
        self.state().owed.contains_key(account)
    }

    /// Makes the calls owed for `account`, reports first, then the release; tells whether
    /// none is left (the account may be allocated).
    pub(super) async fn settle_owed(&self, account: &AccountId) -> bool {
        let Some(mut owed) = self.state().owed.remove(account) else {
            return true;
        };
        while let Some((report, at)) = owed.reports.first() {
            info!(account.id = %account, "Account Manager: handle_error {account} {} (owed)", report.class.as_str());
            // The wait the platform asked for runs from the error, not from this report.
            let elapsed = self.parts.clock.now() - *at;
            let report = ErrorReport {
                retry_after: report
                    .retry_after
                    .map(|wait| (wait - elapsed).max(TimeDelta::zero())),
                ..report.clone()
            };
            match self.parts.accounts.handle_error(account, &report).await {
                Ok(_) => {
                    owed.reports.remove(0);
                }
                Err(e) if !e.is_retryable() => {
                    warn!(account.id = %account, error = %e, "owed error report refused; dropped");
                    owed.reports.remove(0);
                }
                Err(e) => {
                    warn!(account.id = %account, error = %e, "owed error report not taken yet");
                    self.state().owed.insert(account.clone(), owed);
                    return false;
                }
            }
        }
        if let Some(usage) = owed.release.take() {
            info!(account.id = %account, "Account Manager: release_account {account} (owed)");
            match self.parts.accounts.release_account(account, &usage).await {
                Ok(()) => {}
                Err(e) if !e.is_retryable() => {
                    warn!(account.id = %account, error = %e, "owed release refused; its hold ends at the manager's TTL");
                }
                Err(e) => {
                    warn!(account.id = %account, error = %e, "owed release not taken yet");
                    owed.release = Some(usage);
                    self.state().owed.insert(account.clone(), owed);
                    return false;
                }
            }
        }
        true
    }
}
