//! One step of one account: allocate, pick a task, check limits, claim, act, record, release.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{debug, info, warn};

use super::{Engine, EngineError};
use crate::domain::{
    AccountId, Action, ExecutionStatus, Lane, LaneStatus, NewExecutionLog, Outcome, Target, Task,
    TaskEvent, TemplateValues,
};
use crate::ports::{
    AccountState, ActionResult, Allocation, AllocationRequest, ErrorReport, InviteStrategy,
    LimitScope, OutcomeRecord, PURPOSE_INVITE_CAMPAIGN, PlatformError, RateDecision,
    RateLimitCheck, Reservation, UsageStats,
};

/// When the account may act again after a step (at once when `None`).
type NextAt = Option<DateTime<Utc>>;

impl Engine {
    /// Steps one account; returns when it should be looked at again.
    pub(super) async fn step_account(
        &self,
        account: AccountId,
        mut lanes: Vec<(Task, Lane)>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self.try_step(&account, &mut lanes, now).await {
            Ok(at) => {
                let at = at.unwrap_or(now);
                self.set_account_next(&account, at);
                Some(at)
            }
            Err(e) => {
                warn!(account.id = %account, error = %e, "account step failed; retrying later");
                let at = now + self.config.idle_poll;
                self.set_account_next(&account, at);
                Some(at)
            }
        }
    }

    async fn try_step(
        &self,
        account: &AccountId,
        lanes: &mut [(Task, Lane)],
        now: DateTime<Utc>,
    ) -> Result<NextAt, EngineError> {
        // Highest priority first; among equals the lane used longest ago (round robin).
        lanes.sort_by(|(ta, la), (tb, lb)| {
            tb.priority
                .cmp(&ta.priority)
                .then(la.last_used_at.cmp(&lb.last_used_at))
                .then(ta.id.cmp(&tb.id))
        });
        let lanes: Vec<&mut (Task, Lane)> = lanes
            .iter_mut()
            .filter(|(_, l)| l.cooldown_until.is_none_or(|c| c <= now))
            .collect();
        let Some((first_task, _)) = lanes.first().map(|x| (&x.0, &x.1)) else {
            return Ok(None);
        };
        let (user, platform) = (first_task.user_id, first_task.platform);

        if !self
            .parts
            .leases
            .acquire(
                account,
                &self.config.worker_id,
                now,
                now + self.config.lease_ttl,
            )
            .await?
        {
            debug!(account.id = %account, "account leased by another worker");
            return Ok(Some(now + self.config.lease_ttl / 2));
        }

        info!(account.id = %account, user.id = %user, "Account Manager: allocate_account {account}");
        let allocation = self
            .parts
            .accounts
            .allocate_account(&AllocationRequest {
                user_id: user,
                platform,
                purpose: PURPOSE_INVITE_CAMPAIGN.to_owned(),
                candidates: vec![account.clone()],
            })
            .await?;
        match allocation {
            Allocation::Granted(_) => {}
            Allocation::Unavailable { retry_at } => {
                if let Some(AccountState::Dead { reason }) = self.account_state(account).await {
                    self.close_account_lanes(
                        account,
                        lanes,
                        &format!("account unusable: {reason}"),
                    )
                    .await?;
                    return Ok(Some(now + self.config.idle_poll));
                }
                return Ok(Some(retry_at.unwrap_or(now + self.config.idle_poll)));
            }
        }

        let mut usage = UsageStats::default();
        let result = self.act_with_account(account, lanes, now, &mut usage).await;
        info!(account.id = %account, "Account Manager: release_account {account}");
        self.parts.accounts.release_account(account, &usage).await?;
        result
    }

    async fn act_with_account(
        &self,
        account: &AccountId,
        lanes: Vec<&mut (Task, Lane)>,
        now: DateTime<Utc>,
        usage: &mut UsageStats,
    ) -> Result<NextAt, EngineError> {
        let mut chosen: Option<(usize, Option<Reservation>)> = None;
        let mut lanes = lanes;
        for (i, (task, lane)) in lanes.iter_mut().enumerate() {
            if self.state().halted.contains(&task.id) {
                continue;
            }
            let check = RateLimitCheck {
                account_id: account.clone(),
                platform: task.platform,
                kinds: task.settings.action.kinds().to_vec(),
                channel: task.settings.action.channel_key(),
            };
            info!(task.id = %task.id, account.id = %account, "Account Manager: check_rate_limit {account} {} {}", check.channel, task.settings.action.kinds()[0]);
            match self.parts.accounts.check_rate_limit(&check).await? {
                RateDecision::Allowed { reservation } => {
                    chosen = Some((i, reservation));
                    break;
                }
                RateDecision::Wait {
                    until,
                    scope: LimitScope::Channel,
                    reason,
                } => {
                    debug!(task.id = %task.id, account.id = %account, reason = reason.as_str(), %until, "lane waits");
                    lane.cooldown_until = Some(until);
                    self.parts.store.save_lane(lane).await?;
                }
                RateDecision::Wait {
                    until,
                    scope: LimitScope::Account,
                    reason,
                } => {
                    debug!(account.id = %account, reason = reason.as_str(), %until, "account waits");
                    return Ok(Some(until));
                }
                RateDecision::Denied {
                    reason,
                    permanent,
                    scope,
                } => {
                    let why = format!("limit {}", reason.as_str());
                    match (scope, permanent) {
                        (LimitScope::Channel, true) => {
                            info!(task.id = %task.id, account.id = %account, reason = %why, "lane closed for good");
                            lane.status = LaneStatus::Closed;
                            lane.reason = Some(why);
                            self.parts.store.save_lane(lane).await?;
                        }
                        (LimitScope::Account, true) => {
                            let owned: Vec<&mut (Task, Lane)> = lanes.into_iter().collect();
                            self.close_account_lanes(account, owned, &why).await?;
                            return Ok(Some(now + self.config.idle_poll));
                        }
                        (_, false) => {
                            return Ok(Some(now + self.config.idle_poll));
                        }
                    }
                }
            }
        }
        let Some((index, reservation)) = chosen else {
            // Only channel waits: the lanes' cooldowns decide when the account is due.
            return Ok(None);
        };
        usage.reservation = reservation;
        let (task, lane) = &mut *lanes[index];
        self.act_on_lane(account, task, lane, now, usage).await
    }

    async fn act_on_lane(
        &self,
        account: &AccountId,
        task: &Task,
        lane: &mut Lane,
        now: DateTime<Utc>,
        usage: &mut UsageStats,
    ) -> Result<NextAt, EngineError> {
        let Some(strategy) = self.strategies.get(&task.platform).cloned() else {
            return Ok(Some(now + self.config.idle_poll));
        };
        let random_id = task.settings.action.template().map(|_| self.random_i64());
        let Some(target) = self
            .parts
            .store
            .claim_target(task.id, account, now, random_id)
            .await?
        else {
            return Ok(None);
        };
        lane.last_used_at = Some(now);

        // Checks that need no platform call.
        if let Some(skip) = self.skip_reason(task, &target, now).await? {
            self.record(
                task,
                account,
                &target,
                skip,
                None,
                serde_json::Value::Null,
                None,
                now,
                "skip",
            )
            .await?;
            self.parts.store.save_lane(lane).await?;
            return Ok(None);
        }

        let initialized = self.state().initialized.contains(account);
        if !initialized {
            match strategy.initialize(account).await {
                Ok(()) => {
                    self.state().initialized.insert(account.clone());
                }
                Err(e) => {
                    return self
                        .platform_error(
                            strategy.as_ref(),
                            task,
                            lane,
                            account,
                            &target,
                            e,
                            now,
                            usage,
                        )
                        .await;
                }
            }
        }

        let started = std::time::Instant::now();
        let result = perform(strategy.as_ref(), account, task, &target).await;
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        usage.latency_ms = Some(latency);
        match result {
            Ok(done) => {
                usage.performed = true;
                usage.outcome = Some(done.outcome);
                lane.stats.attempts += 1;
                if done.outcome.target_status() == crate::domain::TargetStatus::Success {
                    lane.stats.successes += 1;
                } else {
                    lane.stats.failures += 1;
                }
                lane.stats.consecutive_account_errors = 0;
                self.state().breaker.remove(&task.id);
                self.state().transient.remove(account);
                let kind = action_name(&task.settings.action);
                self.record(
                    task,
                    account,
                    &target,
                    done.outcome,
                    None,
                    done.details,
                    Some(latency),
                    now,
                    kind,
                )
                .await?;
                self.parts.store.save_lane(lane).await?;
                Ok(None)
            }
            Err(e) => {
                self.platform_error(
                    strategy.as_ref(),
                    task,
                    lane,
                    account,
                    &target,
                    e,
                    now,
                    usage,
                )
                .await
            }
        }
    }

    async fn skip_reason(
        &self,
        task: &Task,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, EngineError> {
        if self
            .parts
            .suppression
            .is_suppressed(task.user_id, task.platform, &target.person.identifier)
            .await?
        {
            return Ok(Some(Outcome::Suppressed));
        }
        if let Some(days) = task.settings.dedupe_days {
            let since = now - TimeDelta::days(i64::from(days));
            let reached = self
                .parts
                .store
                .reached_since(
                    task.user_id,
                    task.platform,
                    &[target.person.identifier.dedupe_key()],
                    &task.settings.action.channel_key(),
                    since,
                )
                .await?;
            if !reached.is_empty() {
                return Ok(Some(Outcome::Duplicate));
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        task: &Task,
        account: &AccountId,
        target: &Target,
        outcome: Outcome,
        error: Option<&PlatformError>,
        details: serde_json::Value,
        latency_ms: Option<u64>,
        now: DateTime<Utc>,
        action: &str,
    ) -> Result<(), EngineError> {
        let record = OutcomeRecord {
            target_id: target.id,
            account_id: account.clone(),
            outcome,
            error_message: error.map(|e| e.code().to_owned()),
            result: details,
            at: now,
            log: NewExecutionLog {
                task_id: task.id,
                target_id: Some(target.id),
                account_id: account.clone(),
                action: action.to_owned(),
                status: ExecutionStatus::from_outcome(outcome),
                outcome: Some(outcome),
                error_kind: error.map(|e| e.class().as_str().to_owned()),
                error_code: error.map(|e| e.code().to_owned()),
                latency_ms,
                created_at: now,
            },
        };
        self.parts.store.record_outcome(&record).await?;
        info!(task.id = %task.id, user.id = %task.user_id, account.id = %account, target.id = %target.id, outcome = outcome.as_str(), "target processed");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn platform_error(
        &self,
        strategy: &dyn InviteStrategy,
        task: &Task,
        lane: &mut Lane,
        account: &AccountId,
        target: &Target,
        error: PlatformError,
        now: DateTime<Utc>,
        usage: &mut UsageStats,
    ) -> Result<NextAt, EngineError> {
        let class = error.class();
        let kind = action_name(&task.settings.action);
        warn!(task.id = %task.id, user.id = %task.user_id, account.id = %account, target.id = %target.id, class = class.as_str(), code = error.code(), "platform error");
        info!(task.id = %task.id, account.id = %account, target.id = %target.id, "Account Manager: handle_error {account} {}", class.as_str());
        let state = self
            .parts
            .accounts
            .handle_error(
                account,
                &ErrorReport {
                    platform: strategy.platform(),
                    class,
                    code: error.code().to_owned(),
                    message: error.to_string(),
                    retry_after: match &error {
                        PlatformError::FloodWait { seconds, .. } => Some(TimeDelta::seconds(
                            i64::try_from(*seconds).unwrap_or(i64::MAX),
                        )),
                        _ => None,
                    },
                    task_id: Some(task.id),
                    target_id: Some(target.id),
                },
            )
            .await?;
        let failed_log = |status| NewExecutionLog {
            task_id: task.id,
            target_id: Some(target.id),
            account_id: account.clone(),
            action: kind.to_owned(),
            status,
            outcome: None,
            error_kind: Some(class.as_str().to_owned()),
            error_code: Some(error.code().to_owned()),
            latency_ms: usage.latency_ms,
            created_at: now,
        };
        use PlatformError as P;
        let next = match &error {
            P::Target { .. } | P::Unknown { .. } | P::Refused { .. } | P::Ambiguous { .. } => {
                let outcome = match &error {
                    P::Target { outcome, .. } => *outcome,
                    P::Ambiguous { .. } => Outcome::Uncertain,
                    _ => Outcome::UnknownError,
                };
                usage.performed = true;
                usage.outcome = Some(outcome);
                lane.stats.attempts += 1;
                if outcome == Outcome::Uncertain {
                    // Settled when the task is next prepared.
                    self.state().prepared.remove(&task.id);
                } else {
                    lane.stats.failures += 1;
                }
                if class == crate::ports::ErrorClass::Target {
                    lane.stats.consecutive_account_errors = 0;
                    self.state().breaker.remove(&task.id);
                }
                self.record(
                    task,
                    account,
                    target,
                    outcome,
                    Some(&error),
                    serde_json::Value::Null,
                    usage.latency_ms,
                    now,
                    kind,
                )
                .await?;
                None
            }
            P::Transient { .. } => {
                let tries = {
                    let mut st = self.state();
                    let n = st.transient.entry(account.clone()).or_default();
                    *n += 1;
                    *n
                };
                if target.attempts >= self.config.max_target_attempts {
                    usage.performed = false;
                    self.record(
                        task,
                        account,
                        target,
                        Outcome::UnknownError,
                        Some(&error),
                        serde_json::json!({"gave_up_after": target.attempts}),
                        usage.latency_ms,
                        now,
                        kind,
                    )
                    .await?;
                } else {
                    self.parts
                        .store
                        .release_target(
                            target.id,
                            account,
                            Some(failed_log(ExecutionStatus::Failed)),
                        )
                        .await?;
                }
                let exp = 2_i32.saturating_pow(tries.saturating_sub(1).min(16));
                let backoff = (self.config.backoff_base * exp).min(self.config.backoff_max);
                Some(now + self.jitter(backoff))
            }
            P::FloodWait { .. } | P::AccountRestricted { .. } | P::AccountDead { .. } => {
                usage.performed = true;
                lane.stats.consecutive_account_errors += 1;
                self.parts
                    .store
                    .release_target(
                        target.id,
                        account,
                        Some(failed_log(ExecutionStatus::Failed)),
                    )
                    .await?;
                if let P::AccountDead { code } = &error {
                    lane.status = LaneStatus::Closed;
                    lane.reason = Some(format!("account unusable: {code}"));
                    // Its other lanes close at their next step, when allocation finds it dead;
                    // a new session for it would be connected afresh.
                    self.state().initialized.remove(account);
                }
                if class != crate::ports::ErrorClass::AccountTemporary {
                    self.trip_breaker(task, &error).await?;
                }
                match state {
                    AccountState::CoolingDown { until, .. } => Some(until),
                    _ => Some(now + self.config.idle_poll),
                }
            }
            P::Group { account_only, code } => {
                usage.performed = true;
                self.parts
                    .store
                    .release_target(
                        target.id,
                        account,
                        Some(failed_log(ExecutionStatus::Failed)),
                    )
                    .await?;
                if *account_only {
                    lane.status = LaneStatus::Closed;
                    lane.reason = Some(format!("no rights in the group: {code}"));
                } else {
                    self.fail(task, &format!("group unusable: {code}")).await?;
                }
                None
            }
        };
        lane.last_used_at = Some(now);
        self.parts.store.save_lane(lane).await?;
        Ok(next)
    }

    async fn trip_breaker(&self, task: &Task, error: &PlatformError) -> Result<(), EngineError> {
        let count = {
            let mut st = self.state();
            let entry = st
                .breaker
                .entry(task.id)
                .or_insert_with(|| (0, String::new()));
            entry.0 += 1;
            entry.1 = error.code().to_owned();
            entry.0
        };
        if count >= self.config.breaker_threshold {
            let reason = format!(
                "circuit breaker: {count} account-level errors in a row (last: {})",
                error.code()
            );
            warn!(task.id = %task.id, user.id = %task.user_id, %reason, "task paused");
            match self.transition(task, TaskEvent::Pause, Some(reason)).await {
                Ok(_) | Err(crate::ports::StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn close_account_lanes(
        &self,
        account: &AccountId,
        lanes: Vec<&mut (Task, Lane)>,
        reason: &str,
    ) -> Result<(), EngineError> {
        for (task, lane) in lanes {
            info!(task.id = %task.id, account.id = %account, reason, "lane closed");
            lane.status = LaneStatus::Closed;
            lane.reason = Some(reason.to_owned());
            self.parts.store.save_lane(lane).await?;
        }
        Ok(())
    }
}

const fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Invite { .. } => "invite",
        Action::Message { .. } => "message",
        Action::InviteAndMessage { .. } => "invite",
    }
}

/// The platform calls of one target.
async fn perform(
    strategy: &dyn InviteStrategy,
    account: &AccountId,
    task: &Task,
    target: &Target,
) -> Result<ActionResult, PlatformError> {
    if task.settings.add_to_contacts {
        strategy.add_contact(account, target).await?;
    }
    let message = |template: &crate::domain::Template| {
        let p = &target.person;
        let username = match &p.identifier {
            crate::domain::TargetIdentifier::Username(u) => Some(u.as_str()),
            _ => None,
        };
        template.render(&TemplateValues {
            username,
            first_name: p.first_name.as_deref(),
            last_name: p.last_name.as_deref(),
            full_name: p.full_name.as_deref(),
        })
    };
    let random_id = target.random_id.unwrap_or_default();
    match &task.settings.action {
        Action::Invite { group } => strategy.invite(account, target, group).await,
        Action::Message { template } => {
            strategy
                .send_message(account, target, &message(template), random_id)
                .await
        }
        Action::InviteAndMessage { group, template } => {
            let invited = strategy.invite(account, target, group).await?;
            if invited.outcome.target_status() != crate::domain::TargetStatus::Success {
                return Ok(invited);
            }
            let mut sent = strategy
                .send_message(account, target, &message(template), random_id)
                .await?;
            sent.details = serde_json::json!({
                "invite": invited.outcome.as_str(),
                "message": sent.outcome.as_str(),
                "details": sent.details,
            });
            // The invite is what the task counts; the message rides along.
            sent.outcome = invited.outcome;
            Ok(sent)
        }
    }
}
