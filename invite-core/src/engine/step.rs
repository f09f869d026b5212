//! One step of one account: allocate, pick a task and the part of its work, check limits,
//! claim, act, record, release.
//!
//! Charging: the reservation taken by `check_rate_limit` is refunded only when no write reached
//! the platform — nothing was claimed, the target was skipped, the connection failed, or the
//! strategy answered [`PlatformError::Transient`] (whose contract is that the request never
//! left). Every other answer, success or error, is charged, and the ledger entry takes the
//! time the write was issued.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{debug, info, warn};

use super::{Engine, EngineError, Unrecorded};
use crate::domain::{
    AccountId, Action, ActionKind, ExecutionStatus, Lane, LaneStatus, NewExecutionLog, Outcome,
    Platform, Target, TargetStatus, Task, TaskEvent, TaskId, TemplateValues, UserId,
};
use crate::ports::{
    AccountState, ActionResult, Allocation, AllocationRequest, AttemptEnd, Claim, ClaimStage,
    ErrorClass, ErrorReport, HoldId, InviteStrategy, LimitReason, LimitScope, OutcomeRecord,
    PURPOSE_INVITE_CAMPAIGN, PlatformError, RateDecision, RateLimitCheck, Reservation, StoreError,
    UsageStats,
};

/// When the account may act again after a step (at once when `None`).
type NextAt = Option<DateTime<Utc>>;

/// What a step does to its target: one write, of the action's kind in this part of the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Add the person to the account's contacts (when the task asks for it).
    Contact,
    /// Invite into the task's group.
    Invite,
    /// Send the task's message.
    Message,
}

impl Part {
    const fn kind(self) -> ActionKind {
        match self {
            Part::Contact => ActionKind::Contact,
            Part::Invite => ActionKind::Invite,
            Part::Message => ActionKind::Message,
        }
    }

    const fn name(self) -> &'static str {
        self.kind().as_str()
    }
}

/// The part a claim of `stage` does for `task`: a target's work is a sequence of writes —
/// the contact (when the task adds contacts), then the invite, then the message — each its
/// own step, through one account, with its own limit check and the pause between them.
const fn part_of(task: &Task, stage: ClaimStage) -> Part {
    match (&task.settings.action, stage) {
        (_, ClaimStage::First) if task.settings.add_to_contacts => Part::Contact,
        (Action::Message { .. }, _) | (Action::InviteAndMessage { .. }, ClaimStage::Followup) => {
            Part::Message
        }
        _ => Part::Invite,
    }
}

/// What one step chose to do.
struct Choice {
    index: usize,
    stage: ClaimStage,
    reservation: Option<Reservation>,
    /// The claim taken with the reservation, when the ledger shares the store's database
    /// (`None`: the target is still to be claimed).
    claimed: Option<Option<Target>>,
}

/// The platform calls of one step and whether a write reached the platform.
struct Performed {
    result: Result<ActionResult, PlatformError>,
    reached: bool,
    at: DateTime<Utc>,
    /// The error came from connecting the account, before any call of the target.
    connect: bool,
}

/// Whether a lane may act at `now` (no cooldown, or one that has passed).
fn ready_at(lane: &Lane, now: DateTime<Utc>) -> bool {
    lane.cooldown_until.is_none_or(|c| c <= now)
}

/// The lanes that may act at `now`, in their order.
fn ready_lanes(lanes: &mut [(Task, Lane)], now: DateTime<Utc>) -> Vec<&mut (Task, Lane)> {
    lanes.iter_mut().filter(|(_, l)| ready_at(l, now)).collect()
}

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
                self.note_error(&e.to_string());
                // The manager away is no fault of the account: a fixed short wait, no backoff.
                let wait = match &e {
                    EngineError::AccountManager(m) if m.is_retryable() => self.config.manager_retry,
                    _ => self.config.idle_poll,
                };
                let at = now + wait;
                self.set_account_next(&account, at);
                Some(at)
            }
        }
    }

    /// One step of `account`: its first attempt, then — while the account may act again at
    /// once (its limits let it, one of its lanes still has work, nothing is owed to the
    /// manager) — its next ones, up to [`EngineConfig::max_step_attempts`] attempts or
    /// [`EngineConfig::step_budget`] on the clock, so that accounts progress independently
    /// rather than in lock-step passes. Each attempt sorts the lanes afresh (priority, then
    /// the lane used longest ago: round robin among equals) and goes through its own limit
    /// check and claim (the claim takes nothing from a task no longer running). When the
    /// account manager keeps its ledger in the store's database, an attempt leaves it nothing
    /// to record at release, and the account stays allocated under one hold from attempt to
    /// attempt; otherwise every attempt is allocated and released.
    ///
    /// [`EngineConfig::max_step_attempts`]: super::EngineConfig::max_step_attempts
    /// [`EngineConfig::step_budget`]: super::EngineConfig::step_budget
    async fn try_step(
        &self,
        account: &AccountId,
        lanes: &mut [(Task, Lane)],
        started: DateTime<Utc>,
    ) -> Result<NextAt, EngineError> {
        let budget_end = started
            .checked_add_signed(self.config.step_budget)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let keep_hold = self.shared_ledger();
        // The hold the account is allocated under, kept from the previous attempt.
        let mut held: Option<HoldId> = None;
        let mut attempts: u32 = 0;
        // The attempt of this step that last used each task's lane (a lane used at the same
        // instant as another by the clock goes after it: round robin on any clock).
        let mut used: HashMap<TaskId, u32> = HashMap::new();
        loop {
            let now = if attempts == 0 {
                started
            } else {
                self.parts.clock.now()
            };
            // Highest priority first; among equals the lane used longest ago (round robin).
            lanes.sort_by(|(ta, la), (tb, lb)| {
                tb.priority
                    .cmp(&ta.priority)
                    .then(la.last_used_at.cmp(&lb.last_used_at))
                    .then(used.get(&ta.id).cmp(&used.get(&tb.id)))
                    .then(ta.id.cmp(&tb.id))
            });
            let first = lanes
                .iter()
                .find(|(_, l)| ready_at(l, now))
                .map(|(t, _)| (t.user_id, t.platform));
            let Some((user, platform)) = first else {
                if let Some(hold) = held.take() {
                    self.release_hold(account, hold).await;
                }
                return Ok(None);
            };

            let hold = match held.take() {
                Some(hold) => hold,
                None => match self
                    .allocate(account, user, platform, ready_lanes(lanes, now), now)
                    .await?
                {
                    Ok(hold) => hold,
                    Err(next) => return Ok(next),
                },
            };
            let ready = ready_lanes(lanes, now);

            let mut usage = UsageStats {
                hold: Some(hold.clone()),
                ..UsageStats::default()
            };
            let mut acted = None;
            let result = self
                .act_with_account(account, ready, now, &mut usage, &mut acted)
                .await;
            attempts += 1;
            if let Some(task) = acted {
                used.insert(task, attempts);
            }
            let acted = acted.is_some();
            let mut again = acted
                && matches!(result, Ok(None))
                && attempts < self.config.max_step_attempts
                && self.parts.clock.now() < budget_end
                && !self.owes(account);
            if again {
                // The lease renewed when due; should the store fail here, the step ends (and
                // lets go of its hold): the next step takes the lease afresh.
                again = matches!(
                    self.hold_lease(account, self.parts.clock.now()).await,
                    Ok(true)
                );
            }
            if again && keep_hold && usage.reservation.is_none() {
                // Nothing for the manager to record: the account stays allocated.
                held = Some(hold);
                continue;
            }
            self.release(account, usage).await;
            if self.owes(account) {
                // What the manager missed is made again soon, before anything else: the account
                // waits for the manager's word (a cooldown it reported, a pause), not this step's.
                let retry = self.parts.clock.now() + self.config.manager_retry;
                return result.map(|_| Some(retry));
            }
            if !again {
                return result;
            }
        }
    }

    /// Settles what the manager is owed, takes the account's lease and allocates the account
    /// for one step: its hold, or when the account is to be looked at again.
    async fn allocate(
        &self,
        account: &AccountId,
        user: UserId,
        platform: Platform,
        lanes: Vec<&mut (Task, Lane)>,
        now: DateTime<Utc>,
    ) -> Result<Result<HoldId, NextAt>, EngineError> {
        // What the manager missed while it was away goes first: nothing is allocated before.
        if !self.settle_owed(account).await {
            return Ok(Err(Some(now + self.config.manager_retry)));
        }

        if !self.hold_lease(account, now).await? {
            debug!(account.id = %account, "account leased by another worker");
            return Ok(Err(Some(now + self.config.lease_ttl / 2)));
        }

        info!(account.id = %account, user.id = %user, "Account Manager: allocate_account {account}");
        let hold = self.draw_hold();
        let allocation = self
            .parts
            .accounts
            .allocate_account(&AllocationRequest {
                user_id: user,
                platform,
                purpose: PURPOSE_INVITE_CAMPAIGN.to_owned(),
                candidates: vec![account.clone()],
                hold: Some(hold.clone()),
            })
            .await?;
        match allocation {
            Allocation::Granted(_) => {
                self.note_hold(account, hold.clone());
                Ok(Ok(hold))
            }
            Allocation::Unavailable { retry_at } => {
                // An account that may not be used now (cooling down, dead, or disabled or
                // removed by its owner) keeps no connection open meanwhile: its strategy closes
                // it and releases the connection's lease; it connects afresh once usable.
                if let Some(strategy) = self.strategies.get(&platform) {
                    strategy.disconnect(account).await;
                }
                // Its connection's lease went with the connection: the next step takes the
                // account's lease afresh, not trusting the renewal time remembered here.
                {
                    let mut st = self.state();
                    st.initialized.remove(account);
                    st.leased_until.remove(account);
                }
                if let Some(AccountState::Dead { reason }) = self.account_state(account).await {
                    self.close_account_lanes(
                        account,
                        lanes,
                        &format!("account unusable: {reason}"),
                    )
                    .await?;
                    return Ok(Err(Some(now + self.config.idle_poll)));
                }
                Ok(Err(Some(retry_at.unwrap_or(now + self.config.idle_poll))))
            }
        }
    }

    /// Lets go of the hold of an allocation with nothing else to record.
    async fn release_hold(&self, account: &AccountId, hold: HoldId) {
        let usage = UsageStats {
            hold: Some(hold),
            ..UsageStats::default()
        };
        self.release(account, usage).await;
    }

    /// Takes or renews this worker's lease on `account` for `lease_ttl` — unless the lease
    /// taken by this worker has more than three quarters of its time left, which no other
    /// worker can take from it: a step then costs no lease write.
    async fn hold_lease(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let ttl = self.config.lease_ttl;
        let fresh = self
            .state()
            .leased_until
            .get(account)
            .is_some_and(|until| *until - now > ttl * 3 / 4);
        if fresh {
            return Ok(true);
        }
        let until = now + ttl;
        let held = self
            .parts
            .leases
            .acquire(account, &self.config.worker_id, now, until)
            .await?;
        let mut st = self.state();
        if held {
            st.leased_until.insert(account.clone(), until);
        } else {
            st.leased_until.remove(account);
        }
        Ok(held)
    }

    /// The stages a lane may take now, the furthest along first (a started target is
    /// finished before a new one is started).
    async fn stages_of(
        &self,
        task: &Task,
        account: &AccountId,
    ) -> Result<Vec<ClaimStage>, EngineError> {
        let staged = task.settings.add_to_contacts
            || matches!(task.settings.action, Action::InviteAndMessage { .. });
        if !staged {
            return Ok(vec![ClaimStage::First]);
        }
        let waiting = self.parts.store.followups(task.id, account).await?;
        let mut stages = Vec::with_capacity(3);
        if waiting.after_invite {
            stages.push(ClaimStage::Followup);
        }
        if waiting.after_contact {
            stages.push(ClaimStage::AfterContact);
        }
        stages.push(ClaimStage::First);
        Ok(stages)
    }

    async fn act_with_account(
        &self,
        account: &AccountId,
        mut lanes: Vec<&mut (Task, Lane)>,
        now: DateTime<Utc>,
        usage: &mut UsageStats,
        acted: &mut Option<TaskId>,
    ) -> Result<NextAt, EngineError> {
        let mut chosen: Option<Choice> = None;
        // Account-scoped waits met so far, per kind: other kinds may still go.
        let mut waits: Vec<(ActionKind, DateTime<Utc>)> = Vec::new();
        let shared_ledger = self.shared_ledger();
        'lanes: for (i, (task, lane)) in lanes.iter_mut().enumerate() {
            if self.state().halted.contains(&task.id) {
                continue;
            }
            for stage in self.stages_of(task, account).await? {
                let kind = part_of(task, stage).kind();
                if waits.iter().any(|(k, _)| *k == kind) {
                    continue;
                }
                let check = RateLimitCheck {
                    account_id: account.clone(),
                    platform: task.platform,
                    kinds: vec![kind],
                    channel: self.limit_channel(task),
                };
                info!(task.id = %task.id, account.id = %account, "Account Manager: check_rate_limit {account} {} {kind}", check.channel);
                // With the ledger in the store's database, the target is claimed in the
                // check's transaction (only for a platform this engine can act on: a claim is
                // always acted on or given back).
                let (decision, claimed) =
                    if shared_ledger && self.strategies.contains_key(&task.platform) {
                        let claim = self.claim_of(task, account, stage);
                        let (decision, target) =
                            self.parts.accounts.check_and_claim(&check, &claim).await?;
                        (decision, Some(target))
                    } else {
                        (self.parts.accounts.check_rate_limit(&check).await?, None)
                    };
                match decision {
                    RateDecision::Allowed { reservation } => {
                        chosen = Some(Choice {
                            index: i,
                            stage,
                            reservation,
                            claimed,
                        });
                        break 'lanes;
                    }
                    RateDecision::Wait {
                        until,
                        scope: LimitScope::Channel,
                        reason,
                    } => {
                        debug!(task.id = %task.id, account.id = %account, reason = reason.as_str(), %until, "lane waits");
                        lane.cooldown_until = Some(until);
                        self.parts.store.save_lane(lane).await?;
                        continue 'lanes;
                    }
                    RateDecision::Wait {
                        until,
                        scope: LimitScope::Account,
                        reason,
                    } => {
                        debug!(account.id = %account, reason = reason.as_str(), %until, "account waits");
                        if matches!(
                            reason,
                            LimitReason::Pause | LimitReason::Cooldown | LimitReason::AccountDead
                        ) {
                            // Whatever the kind: the whole account waits.
                            return Ok(Some(until));
                        }
                        waits.push((kind, until));
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
                                self.close_lane(task, lane, why).await?;
                                continue 'lanes;
                            }
                            (LimitScope::Account, true) => {
                                self.close_account_lanes(account, lanes, &why).await?;
                                return Ok(Some(now + self.config.idle_poll));
                            }
                            (_, false) => {
                                return Ok(Some(now + self.config.idle_poll));
                            }
                        }
                    }
                }
            }
        }
        let Some(choice) = chosen else {
            // Only waits: the earliest account wait, or the lanes' cooldowns decide.
            return Ok(waits.iter().map(|(_, at)| *at).min());
        };
        usage.reservation = choice.reservation;
        let (task, lane) = &mut *lanes[choice.index];
        self.act_on_lane(
            account,
            task,
            lane,
            choice.stage,
            choice.claimed,
            usage,
            acted,
        )
        .await
    }

    /// Whether the account manager keeps its ledger in the store's database: a limit check
    /// then claims in its transaction, and an attempt's end records the ledger's `performed`
    /// in the outcome's.
    fn shared_ledger(&self) -> bool {
        self.parts
            .store
            .ledger_database()
            .is_some_and(|db| self.parts.accounts.ledger_database() == Some(db))
    }

    /// The claim of `stage`'s part of `task`'s next target by `account`, now.
    fn claim_of(&self, task: &Task, account: &AccountId, stage: ClaimStage) -> Claim {
        Claim {
            task: task.id,
            account: account.clone(),
            holder: self.config.worker_id.clone(),
            now: self.parts.clock.now(),
            random_high: (part_of(task, stage) == Part::Message).then(|| self.random_high()),
            stage,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn act_on_lane(
        &self,
        account: &AccountId,
        task: &Task,
        lane: &mut Lane,
        stage: ClaimStage,
        claimed: Option<Option<Target>>,
        usage: &mut UsageStats,
        acted: &mut Option<TaskId>,
    ) -> Result<NextAt, EngineError> {
        let now = self.parts.clock.now();
        let Some(strategy) = self.strategies.get(&task.platform).cloned() else {
            return Ok(Some(now + self.config.idle_poll));
        };
        let part = part_of(task, stage);
        let claimed = match claimed {
            Some(claimed) => claimed,
            None => {
                let claim = self.claim_of(task, account, stage);
                self.parts.store.claim_target(&claim).await?
            }
        };
        let Some(target) = claimed else {
            // Nothing this account may take in this task now (the rest is pinned to other
            // accounts, or the task was paused): look again later, other lanes go on.
            lane.cooldown_until = Some(now + self.config.idle_poll);
            self.parts.store.save_lane(lane).await?;
            return Ok(None);
        };
        *acted = Some(task.id);
        self.state()
            .in_flight
            .insert(account.clone(), (task.id, target.id));
        let next = self
            .act_on_target(strategy.as_ref(), account, task, lane, part, &target, usage)
            .await;
        self.state().in_flight.remove(account);
        next
    }

    #[allow(clippy::too_many_arguments)]
    async fn act_on_target(
        &self,
        strategy: &dyn InviteStrategy,
        account: &AccountId,
        task: &Task,
        lane: &mut Lane,
        part: Part,
        target: &Target,
        usage: &mut UsageStats,
    ) -> Result<NextAt, EngineError> {
        let now = self.parts.clock.now();
        lane.last_used_at = Some(now);

        // Checks that need no platform call.
        if let Some(skip) = self.skip_reason(task, target, now).await? {
            let record = self.outcome_record(
                task,
                account,
                target,
                part,
                Ok(ActionResult::new(skip)),
                None,
                now,
            );
            self.end_attempt(record, false, lane, usage).await?;
            return Ok(None);
        }

        let initialized = self.state().initialized.contains(account);
        if !initialized {
            if let Err(e) = strategy.initialize(account).await {
                // Connecting is no write: nothing is charged, whatever the error.
                let performed = Performed {
                    result: Err(e),
                    reached: false,
                    at: self.parts.clock.now(),
                    connect: true,
                };
                return self
                    .platform_error(
                        strategy, task, lane, account, target, part, performed, usage,
                    )
                    .await;
            }
            self.state().initialized.insert(account.clone());
        }

        let started = std::time::Instant::now();
        let performed = perform(strategy, account, task, target, part, &*self.parts.clock).await;
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        usage.latency_ms = Some(latency);
        if performed.reached {
            usage.performed = true;
            usage.performed_at = Some(performed.at);
        }
        match &performed.result {
            Ok(done) => {
                let done = done.clone();
                lane.stats.attempts += 1;
                if done.outcome.target_status() == TargetStatus::Success {
                    lane.stats.successes += 1;
                } else {
                    lane.stats.failures += 1;
                }
                lane.stats.consecutive_account_errors = 0;
                self.state().breaker.remove(&task.id);
                self.state().transient.remove(account);
                usage.outcome = Some(done.outcome);
                if part == Part::Contact {
                    // The invite or the message follows, through this account.
                    let mut log = self
                        .outcome_record(
                            task,
                            account,
                            target,
                            part,
                            Ok(done),
                            Some(latency),
                            performed.at,
                        )
                        .log;
                    log.outcome = None;
                    self.write(Unrecorded::ContactPart {
                        target: target.id,
                        account: account.clone(),
                        log,
                    })
                    .await?;
                    self.parts.store.save_lane(lane).await?;
                    return Ok(None);
                }
                let invite_done = part == Part::Invite
                    && matches!(task.settings.action, Action::InviteAndMessage { .. })
                    && done.outcome.target_status() == TargetStatus::Success;
                let record = self.outcome_record(
                    task,
                    account,
                    target,
                    part,
                    Ok(done),
                    Some(latency),
                    performed.at,
                );
                // With a confirmed invite, the message follows through the same account, after
                // its own check.
                self.end_attempt(record, invite_done, lane, usage).await?;
                Ok(None)
            }
            Err(_) => {
                self.platform_error(
                    strategy, task, lane, account, target, part, performed, usage,
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
        if target.invite_outcome.is_some() {
            // The follow-up of a confirmed invite: de-duplication was decided before it.
            return Ok(None);
        }
        if let Some(days) = task.settings.dedupe_days {
            // Beyond the representable past, every success ever recorded counts.
            let since = TimeDelta::try_days(i64::from(days))
                .and_then(|d| now.checked_sub_signed(d))
                .map_or(DateTime::<Utc>::UNIX_EPOCH, |since| {
                    since.max(DateTime::<Utc>::UNIX_EPOCH)
                });
            let reached = self
                .parts
                .store
                .reached_since(
                    task.user_id,
                    task.platform,
                    &[target.person.identifier.dedupe_key()],
                    // The group's stable key: every spelling of it is one group here.
                    &self.limit_channel(task),
                    since,
                )
                .await?;
            if !reached.is_empty() {
                return Ok(Some(Outcome::Duplicate));
            }
        }
        Ok(None)
    }

    /// The record that ends `target` (or, for a confirmed invite of an `invite_and_message`
    /// target, its invite part). A message that follows a confirmed invite keeps the invite's
    /// outcome and carries its own in `result.message`.
    #[allow(clippy::too_many_arguments)]
    fn outcome_record(
        &self,
        task: &Task,
        account: &AccountId,
        target: &Target,
        part: Part,
        result: Result<ActionResult, (Outcome, &PlatformError)>,
        latency_ms: Option<u64>,
        at: DateTime<Utc>,
    ) -> OutcomeRecord {
        let (outcome, mut details, error) = match result {
            Ok(done) => (done.outcome, done.details, None),
            Err((outcome, e)) => (outcome, serde_json::Value::Null, Some(e)),
        };
        // The log row tells what this attempt did; the target's outcome what is known.
        let attempt = outcome;
        let mut outcome = outcome;
        let maybe_sent_before =
            part == Part::Message && target.invite_outcome.is_none() && target.sender.is_some();
        if maybe_sent_before && outcome.target_status() != TargetStatus::Success {
            // An earlier attempt of this message may have been delivered: a later refusal
            // does not prove it was not.
            details = serde_json::json!({
                "retry": outcome.as_str(),
                "retry_error": error.map(PlatformError::code),
            });
            outcome = Outcome::Uncertain;
        }
        let (target_outcome, details) = match target.invite_outcome {
            Some(invited) => (
                invited,
                serde_json::json!({
                    "invite": invited.as_str(),
                    "message": outcome.as_str(),
                    "message_error": error.map(PlatformError::code),
                    "details": details,
                }),
            ),
            None => (outcome, details),
        };
        OutcomeRecord {
            target_id: target.id,
            account_id: account.clone(),
            outcome: target_outcome,
            error_message: error.map(|e| e.code().to_owned()),
            result: details,
            at,
            log: NewExecutionLog {
                task_id: task.id,
                target_id: Some(target.id),
                account_id: account.clone(),
                action: if matches!(attempt, Outcome::Suppressed | Outcome::Duplicate) {
                    "skip".to_owned()
                } else {
                    part.name().to_owned()
                },
                status: ExecutionStatus::from_outcome(attempt),
                outcome: Some(attempt),
                error_kind: error.map(|e| e.class().as_str().to_owned()),
                error_code: error.map(|e| e.code().to_owned()),
                latency_ms,
                created_at: at,
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn platform_error(
        &self,
        strategy: &dyn InviteStrategy,
        task: &Task,
        lane: &mut Lane,
        account: &AccountId,
        target: &Target,
        part: Part,
        performed: Performed,
        usage: &mut UsageStats,
    ) -> Result<NextAt, EngineError> {
        let Err(error) = performed.result else {
            return Ok(None);
        };
        let at = performed.at;
        let class = error.class();
        warn!(task.id = %task.id, user.id = %task.user_id, account.id = %account, target.id = %target.id, class = class.as_str(), code = error.code(), "platform error");
        let slowmode = error.code() == "SLOWMODE_WAIT";
        let state = if slowmode {
            // A wait of one chat, not of the account.
            AccountState::Active
        } else {
            info!(task.id = %task.id, account.id = %account, target.id = %target.id, "Account Manager: handle_error {account} {}", class.as_str());
            let retry_after = match &error {
                PlatformError::FloodWait { seconds, .. } => Some(
                    TimeDelta::try_seconds(i64::try_from(*seconds).unwrap_or(i64::MAX))
                        .unwrap_or(TimeDelta::MAX),
                ),
                _ => None,
            };
            let report = ErrorReport {
                platform: strategy.platform(),
                class,
                code: error.code().to_owned(),
                message: error.to_string(),
                retry_after,
                task_id: Some(task.id),
                target_id: Some(target.id),
            };
            match self.parts.accounts.handle_error(account, &report).await {
                Ok(state) => state,
                Err(e) => {
                    // The manager is away (or refused the report): the target is still settled
                    // below. A report that did not reach the manager is made again before the
                    // account's next allocation, so its cooldown is in force before the account
                    // acts again; here the account keeps the wait the platform asked for.
                    warn!(task.id = %task.id, account.id = %account, error = %e, "error report not taken");
                    if e.is_retryable() {
                        self.owe_report(account, report, at);
                    }
                    match retry_after {
                        Some(wait) => AccountState::CoolingDown {
                            until: at
                                .checked_add_signed(wait)
                                .unwrap_or(DateTime::<Utc>::MAX_UTC),
                            reason: error.code().to_owned(),
                        },
                        None => AccountState::Active,
                    }
                }
            }
        };
        // The audit counts rows of the parts' names (but transient ones): a failed connection
        // is logged under its own name.
        let action = if performed.connect {
            "connect"
        } else {
            part.name()
        };
        let failed_log = |status| NewExecutionLog {
            task_id: task.id,
            target_id: Some(target.id),
            account_id: account.clone(),
            action: action.to_owned(),
            status,
            outcome: None,
            error_kind: Some(class.as_str().to_owned()),
            error_code: Some(error.code().to_owned()),
            latency_ms: usage.latency_ms,
            created_at: at,
        };
        let release = Unrecorded::Release {
            target: target.id,
            account: account.clone(),
            log: Some(failed_log(ExecutionStatus::Failed)),
        };
        if performed.reached {
            lane.stats.attempts += 1;
        }
        use PlatformError as P;
        let next = match &error {
            P::Target { .. } | P::Unknown { .. } => {
                let outcome = match &error {
                    P::Target { outcome, .. } => *outcome,
                    _ => Outcome::UnknownError,
                };
                usage.outcome = Some(outcome);
                lane.stats.failures += 1;
                if class == ErrorClass::Target {
                    lane.stats.consecutive_account_errors = 0;
                    self.state().breaker.remove(&task.id);
                }
                let record = self.outcome_record(
                    task,
                    account,
                    target,
                    part,
                    Err((outcome, &error)),
                    usage.latency_ms,
                    at,
                );
                self.write(Unrecorded::Outcome(record)).await?;
                None
            }
            P::Ambiguous { .. } => {
                // It may have happened: settled later (a message only through this account,
                // with its random_id; an invite by a membership check), never re-sent blindly.
                usage.outcome = Some(Outcome::Uncertain);
                self.write(Unrecorded::Uncertain {
                    target: target.id,
                    account: account.clone(),
                    log: Some(failed_log(ExecutionStatus::Pending)),
                })
                .await?;
                self.state().prepared.remove(&task.id);
                None
            }
            P::Refused { .. } => {
                // Charged; retried a bounded number of times, each charged.
                if target.attempts >= self.config.max_write_attempts {
                    lane.stats.failures += 1;
                    let record = self.outcome_record(
                        task,
                        account,
                        target,
                        part,
                        Err((Outcome::UnknownError, &error)),
                        usage.latency_ms,
                        at,
                    );
                    self.write(Unrecorded::Outcome(record)).await?;
                } else {
                    self.write(release).await?;
                }
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
                    let mut record = self.outcome_record(
                        task,
                        account,
                        target,
                        part,
                        Err((Outcome::UnknownError, &error)),
                        usage.latency_ms,
                        at,
                    );
                    if record.result.is_null() {
                        record.result = serde_json::json!({"gave_up_after": target.attempts});
                    }
                    self.write(Unrecorded::Outcome(record)).await?;
                } else {
                    self.write(release).await?;
                }
                let exp = 2_i32.saturating_pow(tries.saturating_sub(1).min(16));
                let backoff = (self.config.backoff_base * exp).min(self.config.backoff_max);
                Some(at + self.jitter(backoff))
            }
            P::FloodWait { seconds, .. } if slowmode => {
                self.write(release).await?;
                let wait = TimeDelta::try_seconds(i64::try_from(*seconds).unwrap_or(i64::MAX))
                    .unwrap_or(TimeDelta::MAX);
                lane.cooldown_until = Some(at.checked_add_signed(wait).unwrap_or(at));
                None
            }
            P::FloodWait { .. } | P::AccountRestricted { .. } | P::AccountDead { .. } => {
                lane.stats.consecutive_account_errors += 1;
                self.write(release).await?;
                if let P::AccountDead { code } = &error {
                    // Its other lanes close at their next step, when allocation finds it dead;
                    // a new session for it would be connected afresh.
                    self.state().initialized.remove(account);
                    self.close_lane(task, lane, format!("account unusable: {code}"))
                        .await?;
                }
                if class != ErrorClass::AccountTemporary {
                    self.trip_breaker(task, &error).await?;
                }
                match state {
                    AccountState::CoolingDown { until, .. } => Some(until),
                    _ => Some(at + self.config.idle_poll),
                }
            }
            P::Group { account_only, code } => {
                self.write(release).await?;
                if *account_only {
                    self.close_lane(task, lane, format!("no rights in the group: {code}"))
                        .await?;
                } else {
                    self.fail(task, &format!("group unusable: {code}")).await?;
                }
                None
            }
        };
        lane.last_used_at = Some(at);
        self.parts.store.save_lane(lane).await?;
        Ok(next)
    }

    /// Writes the end of an attempt — its record (an outcome, or with `invite_part` the
    /// confirmed invite of an `invite_and_message` target) and its lane — in one transaction
    /// of the store ([`TaskStore::record_attempt`](crate::ports::TaskStore::record_attempt)),
    /// with the reservation's `performed` when the ledger shares the store's database: then
    /// `release_account` has nothing left to record. Should the store not take it at once,
    /// the record and the lane are written apart, as [`Engine::write`] writes (a result the
    /// store cannot take is kept; one settled meanwhile is not recorded), and the ledger's
    /// `performed` is left to `release_account`.
    async fn end_attempt(
        &self,
        record: OutcomeRecord,
        invite_part: bool,
        lane: &Lane,
        usage: &mut UsageStats,
    ) -> Result<(), EngineError> {
        let performed = match (usage.reservation, usage.performed, usage.performed_at) {
            (Some(reservation), true, Some(at)) if self.shared_ledger() => Some((reservation, at)),
            _ => None,
        };
        let end = AttemptEnd {
            record,
            invite_part,
            lane: lane.clone(),
            performed,
        };
        match self.parts.store.record_attempt(&end).await {
            Ok(()) => {
                if performed.is_some() {
                    usage.reservation = None;
                }
                let record = &end.record;
                if !invite_part {
                    info!(task.id = %record.log.task_id, account.id = %record.account_id, target.id = %record.target_id, outcome = record.outcome.as_str(), "target processed");
                }
                return Ok(());
            }
            Err(e) => {
                debug!(target.id = %end.record.target_id, error = %e, "attempt not recorded in one transaction; written part by part");
            }
        }
        let write = if invite_part {
            Unrecorded::InvitePart(end.record)
        } else {
            Unrecorded::Outcome(end.record)
        };
        self.write(write).await?;
        self.parts.store.save_lane(lane).await?;
        Ok(())
    }

    /// Writes a result to the store. If the store cannot take it, the result is kept and the
    /// engine stops acting until it is written ([`Engine::tick`] writes it first).
    pub(super) async fn write(&self, write: Unrecorded) -> Result<(), EngineError> {
        match self.apply(&write).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => {
                // The claim was taken from this worker (presumed dead) and already settled:
                // the settlement stands; the platform's answer is in this log line.
                warn!(target.id = %write.target(), result = ?write, "result of a claim settled meanwhile; not recorded");
                Ok(())
            }
            Err(e) => {
                warn!(target.id = %write.target(), error = %e, "result not recorded; kept until the store takes it");
                let mut st = self.state();
                st.unrecorded.push(write);
                st.health.store_ok = false;
                Err(e.into())
            }
        }
    }

    pub(super) async fn apply(&self, write: &Unrecorded) -> Result<(), StoreError> {
        let store = &self.parts.store;
        match write {
            Unrecorded::Outcome(record) => {
                store.record_outcome(record).await?;
                info!(task.id = %record.log.task_id, account.id = %record.account_id, target.id = %record.target_id, outcome = record.outcome.as_str(), "target processed");
                Ok(())
            }
            Unrecorded::InvitePart(record) => store.record_invite_part(record).await,
            Unrecorded::ContactPart {
                target,
                account,
                log,
            } => {
                store
                    .record_contact_part(*target, account, log.clone())
                    .await
            }
            Unrecorded::Release {
                target,
                account,
                log,
            } => store.release_target(*target, account, log.clone()).await,
            Unrecorded::Uncertain {
                target,
                account,
                log,
            } => store.mark_uncertain(*target, account, log.clone()).await,
        }
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
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Closes a lane for good; targets pinned to its account in the task end at once.
    pub(super) async fn close_lane(
        &self,
        task: &Task,
        lane: &mut Lane,
        reason: String,
    ) -> Result<(), EngineError> {
        info!(task.id = %task.id, account.id = %lane.account_id, reason = %reason, "lane closed");
        lane.status = LaneStatus::Closed;
        lane.reason = Some(reason);
        self.parts.store.save_lane(lane).await?;
        let now = self.parts.clock.now();
        let ended = self
            .parts
            .store
            .abandon_pinned(
                task.id,
                std::slice::from_ref(&lane.account_id),
                self.horizon_start(now),
                now,
            )
            .await?;
        if ended > 0 {
            warn!(task.id = %task.id, account.id = %lane.account_id, count = ended, "targets pinned to a closed lane's account ended unconfirmed");
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
            debug!(task.id = %task.id, account.id = %account, reason, "closing the account's lane");
            self.close_lane(task, lane, reason.to_owned()).await?;
        }
        Ok(())
    }
}

/// The platform calls of one part of a target's work. `at` is when the first write was
/// issued; `reached` whether any write may have reached the platform.
async fn perform(
    strategy: &dyn InviteStrategy,
    account: &AccountId,
    task: &Task,
    target: &Target,
    part: Part,
    clock: &dyn crate::clock::Clock,
) -> Performed {
    let at = clock.now();
    let charged = |e: &PlatformError| e.class().is_charged();
    let result = match (&task.settings.action, part) {
        (_, Part::Contact) => strategy
            .add_contact(account, target)
            .await
            .map(|()| ActionResult::new(Outcome::Sent)),
        (Action::Invite { group } | Action::InviteAndMessage { group, .. }, Part::Invite) => {
            strategy.invite(account, target, group).await
        }
        (
            Action::Message { template } | Action::InviteAndMessage { template, .. },
            Part::Message,
        ) => {
            let p = &target.person;
            let username = match &p.identifier {
                crate::domain::TargetIdentifier::Username(u) => Some(u.as_str()),
                _ => None,
            };
            let text = template.render(&TemplateValues {
                username,
                first_name: p.first_name.as_deref(),
                last_name: p.last_name.as_deref(),
                full_name: p.full_name.as_deref(),
            });
            let Some(random_id) = target.random_id else {
                // A message claim always stores one; without it nothing may be sent.
                return Performed {
                    result: Err(PlatformError::Transient {
                        code: "NO_RANDOM_ID".to_owned(),
                    }),
                    reached: false,
                    at,
                    connect: false,
                };
            };
            strategy
                .send_message(account, target, &text, random_id)
                .await
        }
        (Action::Invite { .. }, Part::Message) | (Action::Message { .. }, Part::Invite) => {
            Err(PlatformError::Transient {
                code: "NO_SUCH_PART".to_owned(),
            })
        }
    };
    let reached = result.as_ref().err().is_none_or(charged);
    Performed {
        result,
        reached,
        at,
        connect: false,
    }
}
