//! Where a task stands: counts, active accounts and an ETA from the accounts' remaining
//! capacity under the limits; the final report; the user's accounts with their limit state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Campaigns, Result, ServiceError};
use crate::domain::{
    AccountId, ActionKind, LaneStatus, Platform, Target, TargetStatus, Task, TaskId, UserId,
};
use crate::forecast::{ForecastAccount, forecast};
use crate::ports::{AccountInfo, AccountState, Progress};

/// The ETA of a task: when the limits let its remaining targets be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eta {
    /// Time of the last action, if every remaining target can be placed.
    pub finish_at: Option<DateTime<Utc>>,
    /// Targets still to do (pending, in progress, uncertain).
    pub remaining: u64,
    /// Targets no account can ever take (lifetime caps, dead accounts).
    pub uncovered: u64,
    /// Accounts the forecast placed work on.
    pub accounts: usize,
}

/// Progress of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatusReport {
    /// The task.
    pub task: Task,
    /// Targets per status and outcome.
    pub progress: Progress,
    /// All targets.
    pub total: u64,
    /// Targets with no work left.
    pub finished: u64,
    /// `finished / total` in percent (100 for a finished task without targets).
    pub percent: f64,
    /// Accounts working for this task: not cooling down after a platform error, not dead.
    pub active_accounts: u64,
    /// Accounts assigned to the task (its lanes, or the candidates before the first start).
    pub accounts: u64,
    /// When the remaining targets can be done under the limits (none for a finished task).
    pub eta: Option<Eta>,
    /// Why a running task does nothing, when its owner is the one to act: every account
    /// of the task was disabled (or removed) by its owner. The task stays running and goes
    /// on when one is enabled again.
    pub waiting: Option<String>,
}

/// [`TaskStatusReport::waiting`] when every account of a running task is disabled or removed.
pub const EVERY_ACCOUNT_DISABLED: &str = "every account of the task is disabled or removed by its owner: enable one (PATCH /api/v1/invite/accounts/{id}) and the task goes on";

/// A finished (or running) task's outcome per target.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReport {
    /// The task.
    pub task: Task,
    /// Counts.
    pub progress: Progress,
    /// Every target, in id order.
    pub targets: Vec<Target>,
}

/// Use of one action kind by an account in the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindUsage {
    /// Kind.
    pub kind: ActionKind,
    /// Actions in the rolling window.
    pub used: u64,
    /// The cap of the window.
    pub limit: u64,
    /// Next action of this kind not before (pause and spread).
    pub next_allowed_at: Option<DateTime<Utc>>,
}

/// One of the user's accounts with its limit state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountOverview {
    /// The account.
    pub info: AccountInfo,
    /// Health as the account manager sees it.
    pub state: AccountState,
    /// Usage per kind (when the local ledger is available).
    pub usage: Vec<KindUsage>,
}

/// How long a status read's account figures and ETA serve the reads after it, as long as the
/// task and its counts are unchanged. Counts are always read afresh.
pub const STATUS_MEMO_TTL: TimeDelta = TimeDelta::seconds(1);

/// Tasks whose figures are remembered at once; past it the memo starts over.
const STATUS_MEMO_TASKS: usize = 4096;

/// Active accounts, assigned accounts, the ETA and why the task waits on its owner.
type Figures = (u64, u64, Option<Eta>, Option<String>);

/// What a status read derived from the lanes, the account manager and the ledger — the costly
/// part of a status — kept for [`STATUS_MEMO_TTL`] of clock time. A read reuses it only when
/// the task (its version and status) and its counts are what they were, so a step that
/// changed anything (an outcome, a claim, a requeue after a cooldown) shows at once; what is
/// left to age is the forecast's view of time, by at most a second.
///
/// Reads of one task that miss the memo together compute its figures once: the first takes
/// the task's flight, the others wait for it and then find its figures (a burst of requests
/// when the figures age out would otherwise each read the lanes, the account manager and the
/// ledger at once).
#[derive(Debug, Default)]
pub(super) struct StatusMemo {
    remembered: Mutex<HashMap<TaskId, Remembered>>,
    flights: Mutex<HashMap<TaskId, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Clone)]
struct Remembered {
    at: DateTime<Utc>,
    key: (DateTime<Utc>, crate::domain::TaskStatus, Progress),
    active_accounts: u64,
    accounts: u64,
    eta: Option<Eta>,
    waiting: Option<String>,
}

impl StatusMemo {
    fn recall(&self, task: &Task, progress: &Progress, now: DateTime<Utc>) -> Option<Remembered> {
        let memo = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        memo.get(&task.id)
            .filter(|r| {
                r.at <= now
                    && now - r.at < STATUS_MEMO_TTL
                    && r.key.0 == task.updated_at
                    && r.key.1 == task.status
                    && &r.key.2 == progress
            })
            .cloned()
    }

    /// The task's flight: held by the one read computing its figures.
    fn flight(&self, task: TaskId) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.len() >= STATUS_MEMO_TASKS && !flights.contains_key(&task) {
            // Only flights nobody holds or waits for are dropped.
            flights.retain(|_, f| Arc::strong_count(f) > 1);
        }
        flights.entry(task).or_default().clone()
    }

    fn keep(&self, task: &Task, progress: &Progress, now: DateTime<Utc>, figures: Figures) {
        let (active_accounts, accounts, eta, waiting) = figures;
        let mut memo = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= STATUS_MEMO_TASKS && !memo.contains_key(&task.id) {
            memo.clear();
        }
        memo.insert(
            task.id,
            Remembered {
                at: now,
                key: (task.updated_at, task.status, progress.clone()),
                active_accounts,
                accounts,
                eta,
                waiting,
            },
        );
    }
}

/// The start of the limits' rolling window ending at `now`.
fn window_start(now: DateTime<Utc>, policy: &crate::limits::LimitPolicy) -> DateTime<Utc> {
    now.checked_sub_signed(policy.window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Campaigns {
    /// Accounts a task may use: its lanes once it ran, else the owner's usable accounts; with
    /// each, its lane's cooldown and whether the owner lets it act (a lane's account that
    /// its owner disabled or removed keeps its lane, idle; the engine uses it again once
    /// enabled).
    async fn task_accounts(
        &self,
        task: &Task,
    ) -> Result<Vec<(AccountId, Option<DateTime<Utc>>, bool)>> {
        let lanes = self
            .parts
            .store
            .lanes(task.user_id, task.id)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))?;
        if !lanes.is_empty() {
            let enabled: Option<Vec<AccountId>> = match self
                .parts
                .directory
                .accounts(task.user_id, task.platform)
                .await
            {
                Ok(listed) => Some(
                    listed
                        .into_iter()
                        .filter(|a| a.active)
                        .map(|a| a.id)
                        .collect(),
                ),
                // The figures still come; whether the owner disabled one is not known now.
                Err(e) => {
                    tracing::warn!(task.id = %task.id, error = %e, "accounts of task {} not listed for its status", task.id);
                    None
                }
            };
            return Ok(lanes
                .into_iter()
                .filter(|l| l.status == LaneStatus::Active)
                .map(|l| {
                    let on = enabled.as_ref().is_none_or(|e| e.contains(&l.account_id));
                    (l.account_id, l.cooldown_until, on)
                })
                .collect());
        }
        let mut accounts: Vec<AccountId> = self
            .parts
            .directory
            .accounts(task.user_id, task.platform)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
            .into_iter()
            .filter(|a| a.active)
            .map(|a| a.id)
            .collect();
        if let Some(wanted) = &task.settings.accounts {
            accounts.retain(|a| wanted.contains(a));
        }
        Ok(accounts.into_iter().map(|a| (a, None, true)).collect())
    }

    /// The states of `accounts` in their order, from one call to the account manager.
    async fn account_states(&self, accounts: &[AccountId]) -> Result<Vec<AccountState>> {
        let states = self
            .parts
            .accounts
            .account_states(accounts)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if states.len() != accounts.len() {
            return Err(ServiceError::Internal(format!(
                "the account manager gave {} states for {} accounts",
                states.len(),
                accounts.len()
            )));
        }
        Ok(states)
    }

    /// Counts, percent, active accounts and the ETA of a task.
    pub async fn status(&self, user: UserId, id: TaskId) -> Result<TaskStatusReport> {
        // The task (ownership checked) and its counts in one store call.
        let (task, progress) = self
            .parts
            .store
            .task_progress(user, id)
            .await
            .map_err(|e| ServiceError::from_store(e, "read"))?;
        let total = progress.total();
        let finished = progress.finished();
        let percent = if total == 0 {
            if task.status.is_terminal() {
                100.0
            } else {
                0.0
            }
        } else {
            (finished as f64 * 10_000.0 / total as f64).round() / 100.0
        };
        let (active_accounts, accounts, eta, waiting) = self.figures(&task, &progress).await?;
        Ok(TaskStatusReport {
            task,
            progress,
            total,
            finished,
            percent,
            active_accounts,
            accounts,
            eta,
            waiting,
        })
    }

    /// The task's figures from the memo while they are fresh for this task and these counts,
    /// else computed by one read at a time (the others take what it remembered).
    async fn figures(&self, task: &Task, progress: &Progress) -> Result<Figures> {
        let memo = &self.status_memo;
        let recalled = |now| {
            memo.recall(task, progress, now)
                .map(|r| (r.active_accounts, r.accounts, r.eta, r.waiting))
        };
        if let Some(figures) = recalled(self.parts.clock.now()) {
            return Ok(figures);
        }
        let flight = memo.flight(task.id);
        let _held = flight.lock().await;
        // The clock is read after the wait, so that what the read before this one kept counts.
        let now = self.parts.clock.now();
        if let Some(figures) = recalled(now) {
            return Ok(figures);
        }
        let figures = self.account_figures(task, progress, now).await?;
        memo.keep(task, progress, now, figures.clone());
        Ok(figures)
    }

    /// Active accounts, assigned accounts and the ETA of a task from its lanes, the account
    /// manager and the ledger.
    async fn account_figures(
        &self,
        task: &Task,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Result<Figures> {
        let total = progress.total();
        let finished = progress.finished();
        let accounts = self.task_accounts(task).await?;
        let ids: Vec<AccountId> = accounts.iter().map(|(a, _, _)| a.clone()).collect();
        // The group's stable key once the engine resolved it, as the limits key on it.
        let channel = task.channel();
        let policy = self.policy(task.platform);
        // Every account's state in one call.
        let states = self.account_states(&ids).await?;
        let mut forecast_accounts = Vec::with_capacity(accounts.len());
        let mut active = 0;
        for ((account, lane_cooldown, enabled), mut state) in accounts.iter().zip(states) {
            // Switched off by its owner: no capacity until switched on again.
            if !enabled {
                state = AccountState::Dead {
                    reason: "disabled".to_owned(),
                };
            }
            // Pacing (a lane's next eligible time) delays the forecast but leaves the account
            // active; a cooldown or death from the account manager does not.
            if state.is_usable_at(now) {
                active += 1;
            }
            if let Some(until) = lane_cooldown.filter(|u| *u > now)
                && state == AccountState::Active
            {
                state = AccountState::CoolingDown {
                    until,
                    reason: "lane cooldown".to_owned(),
                };
            }
            let mut fa = ForecastAccount::fresh(account.clone());
            fa.state = state;
            forecast_accounts.push(fa);
        }
        let remaining = total - finished;
        // Claimed targets already hold their slot in the ledger: place only the others.
        let to_place = remaining.saturating_sub(progress.count(TargetStatus::InProgress));
        let eta = if task.status.is_terminal() {
            None
        } else {
            let start = task.scheduled_at.map_or(now, |at| at.max(now));
            // Every account's window and lifetime in the channel, read once for all kinds.
            let histories = match &self.parts.ledger {
                Some(ledger) => {
                    let histories = ledger
                        .histories(&ids, &channel, window_start(now, &policy))
                        .await
                        .map_err(|e| ServiceError::from_store(e, "read"))?;
                    if histories.len() != ids.len() {
                        return Err(ServiceError::Internal(format!(
                            "the ledger gave {} histories for {} accounts",
                            histories.len(),
                            ids.len()
                        )));
                    }
                    Some(histories)
                }
                None => None,
            };
            let mut finish_at = Some(start);
            let mut uncovered = 0;
            for &kind in task.settings.action.kinds() {
                let mut fas = forecast_accounts.clone();
                if let Some(histories) = &histories {
                    for (fa, history) in fas.iter_mut().zip(histories) {
                        fa.recent = history.recent.clone();
                        fa.lifetime = HashMap::from([(channel.clone(), history.lifetime_of(kind))]);
                    }
                }
                let demand = BTreeMap::from([(channel.clone(), to_place)]);
                let f = forecast(&policy, kind, start, &demand, &fas);
                uncovered = uncovered.max(f.uncovered);
                finish_at = match (finish_at, f.finish_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            Some(Eta {
                finish_at,
                remaining,
                uncovered,
                accounts: forecast_accounts
                    .iter()
                    .filter(|a| !matches!(a.state, AccountState::Dead { .. }))
                    .count(),
            })
        };
        let waiting = (task.status == crate::domain::TaskStatus::InProgress
            && !accounts.is_empty()
            && accounts.iter().all(|(_, _, enabled)| !enabled))
        .then(|| EVERY_ACCOUNT_DISABLED.to_owned());
        Ok((active, accounts.len() as u64, eta, waiting))
    }

    /// Every target of the task with its outcome.
    pub async fn report(&self, user: UserId, id: TaskId) -> Result<TaskReport> {
        let task = self.get(user, id).await?;
        let store = &self.parts.store;
        let map = |e| ServiceError::from_store(e, "read");
        let progress = store.progress(user, id).await.map_err(map)?;
        let targets = store.targets(user, id, 0, 0).await.map_err(map)?;
        Ok(TaskReport {
            task,
            progress,
            targets,
        })
    }

    /// The user's accounts (of one platform, or all), with health and use of the window.
    pub async fn accounts(
        &self,
        user: UserId,
        platform: Option<Platform>,
    ) -> Result<Vec<AccountOverview>> {
        let now = self.parts.clock.now();
        let platforms: Vec<Platform> = platform.map_or_else(|| Platform::ALL.to_vec(), |p| vec![p]);
        let mut out = Vec::new();
        for p in platforms {
            let infos = self
                .parts
                .directory
                .accounts(user, p)
                .await
                .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
            let policy = self.policy(p);
            let ids: Vec<AccountId> = infos.iter().map(|i| i.id.clone()).collect();
            let states = self.account_states(&ids).await?;
            let histories = match &self.parts.ledger {
                Some(ledger) => ledger
                    .histories(&ids, "", window_start(now, &policy))
                    .await
                    .map_err(|e| ServiceError::from_store(e, "read"))?,
                None => Vec::new(),
            };
            let mut histories = histories.into_iter();
            for (info, state) in infos.into_iter().zip(states) {
                let mut usage = Vec::new();
                if self.parts.ledger.is_some() {
                    let history = histories.next().ok_or_else(|| {
                        ServiceError::Internal("the ledger gave too few histories".to_owned())
                    })?;
                    for kind in ActionKind::ALL {
                        let events: Vec<_> =
                            history.recent.iter().filter(|e| e.kind == kind).collect();
                        let next = events
                            .iter()
                            .map(|e| {
                                e.not_before_next.max(
                                    e.at.checked_add_signed(policy.min_interval_account(kind))
                                        .unwrap_or(e.not_before_next),
                                )
                            })
                            .max()
                            .filter(|t| *t > now);
                        usage.push(KindUsage {
                            kind,
                            used: events.len() as u64,
                            limit: u64::from(policy.limits(kind).per_account),
                            next_allowed_at: next,
                        });
                    }
                }
                out.push(AccountOverview { info, state, usage });
            }
        }
        Ok(out)
    }
}
