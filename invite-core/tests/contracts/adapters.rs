//! The queue, account manager and strategy suites on our own implementations, and on broken
//! ones.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::clock::VirtualClock;
use invite_core::domain::{
    AccountId, GroupRef, Outcome, Platform, Priority, Target, TargetIdentifier,
};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{InProcessQueue, MemoryLedger};
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, ActionResult, Allocation, AllocationRequest,
    Delivery, ErrorReport, InviteStrategy, Job, JobQueue, PlatformError, QueueError, RateDecision,
    RateLimitCheck, UsageStats,
};
use invite_core::sandbox::{SandboxConfig, SandboxStrategy};
use invite_core::testing::{
    ManagedAccounts, Opened, Situation, StagedStrategy, account_manager_contract, claimed_target,
    queue_contract, strategy_contract,
};
use tokio_util::sync::CancellationToken;

use crate::must_fail;

fn now() -> DateTime<Utc> {
    "2026-01-05T09:00:00Z".parse().unwrap()
}

fn accounts() -> Vec<AccountId> {
    ["acc-1", "acc-2", "acc-3"]
        .map(|a| AccountId::parse(a).unwrap())
        .to_vec()
}

// ---- queue ----

#[tokio::test]
async fn in_process_queue_meets_the_queue_contract() {
    queue_contract(|| async { Some(Opened::shared(Arc::new(InProcessQueue::new()) as _)) }).await;
}

/// A queue that keeps one line: first in, first out, whatever the priority.
#[derive(Debug, Default)]
struct OneLine {
    jobs: Mutex<VecDeque<Job>>,
}

#[async_trait]
impl JobQueue for OneLine {
    async fn publish(&self, job: &Job, _priority: Priority) -> Result<(), QueueError> {
        self.jobs.lock().unwrap().push_back(job.clone());
        Ok(())
    }

    async fn next(&self, cancel: &CancellationToken) -> Result<Option<Delivery>, QueueError> {
        if let Some(job) = self.jobs.lock().unwrap().pop_front() {
            return Ok(Some(Delivery {
                job,
                priority: Priority::Medium,
                tag: 0,
            }));
        }
        cancel.cancelled().await;
        Ok(None)
    }

    async fn ack(&self, _delivery: &Delivery) -> Result<(), QueueError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_queue_without_priorities_fails_the_queue_contract() {
    must_fail(queue_contract(|| async {
        Some(Opened::shared(Arc::new(OneLine::default()) as _))
    }))
    .await;
}

// ---- account manager ----

fn local_manager() -> LocalAccountManager {
    LocalAccountManager::new(
        Arc::new(MemoryLedger::new()),
        Arc::new(VirtualClock::manual(now())),
        7,
    )
    .with_policy(Platform::Telegram, LimitPolicy::telegram())
}

#[tokio::test]
async fn local_account_manager_meets_the_account_manager_contract() {
    account_manager_contract(|| async {
        Some(ManagedAccounts {
            manager: Arc::new(local_manager()),
            platform: Platform::Telegram,
            accounts: accounts(),
        })
    })
    .await;
}

/// A manager that forgets which accounts it handed out: two lanes get one account.
#[derive(Debug)]
struct Forgetful(LocalAccountManager);

#[async_trait]
impl AccountManager for Forgetful {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        let granted = self.0.allocate_account(request).await?;
        if let Allocation::Granted(account) = &granted {
            self.0
                .release_account(account, &UsageStats::default())
                .await?;
        }
        Ok(granted)
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        self.0.check_rate_limit(check).await
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        self.0.release_account(account, usage).await
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        self.0.handle_error(account, report).await
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        self.0.account_state(account).await
    }
}

#[tokio::test]
async fn a_manager_granting_one_account_twice_fails_the_account_manager_contract() {
    must_fail(account_manager_contract(|| async {
        Some(ManagedAccounts {
            manager: Arc::new(Forgetful(local_manager())),
            platform: Platform::Telegram,
            accounts: accounts(),
        })
    }))
    .await;
}

// ---- strategies ----

fn person(name: &str, platform: Platform) -> Target {
    claimed_target(TargetIdentifier::parse(name, platform, &Default::default()).unwrap())
}

/// The sandbox staged through its configuration; it cannot stage a lost answer, a refused
/// connection, a refusal without cause nor an unknown error.
async fn staged_sandbox(situation: Situation) -> Option<StagedStrategy> {
    let group = GroupRef::parse("@contract_group").unwrap();
    let mut config = SandboxConfig {
        privacy_restricted: 0.0,
        already_member: 0.0,
        not_found: 0.0,
        flood_wait: 0.0,
        peer_flood: 0.0,
        latency_ms: (0, 0),
        ..SandboxConfig::default()
    };
    match situation {
        Situation::Accepts => {}
        Situation::AlreadyMember => config.already_member = 1.0,
        Situation::TargetRefuses => config.not_found = 1.0,
        Situation::FloodWait { seconds } => {
            config.flood_wait = 1.0;
            config.flood_wait_seconds = (seconds, seconds);
        }
        Situation::AccountRestricted => config.peer_flood = 1.0,
        Situation::GroupUnusable => config.missing_groups = vec![group.clone()],
        _ => return None,
    }
    Some(StagedStrategy {
        strategy: Arc::new(SandboxStrategy::new(config)),
        account: AccountId::parse("sandbox-1-01").unwrap(),
        target: person("@alice", Platform::Sandbox),
        group,
    })
}

#[tokio::test]
async fn sandbox_strategy_meets_the_strategy_contract() {
    strategy_contract(staged_sandbox).await;
}

/// A made-up messenger that answers as scripted: the shape of a new adapter's test, where the
/// script stands for the messenger's transport.
#[derive(Debug)]
struct Scripted {
    situation: Situation,
    /// The bug: a timeout once the request left is reported as never sent.
    timeout_as_not_sent: bool,
}

impl Scripted {
    fn answer(&self, success: Outcome) -> Result<ActionResult, PlatformError> {
        let code = |c: &str| c.to_owned();
        match self.situation {
            Situation::Accepts => Ok(ActionResult::new(success)),
            Situation::AlreadyMember => Ok(ActionResult::new(Outcome::AlreadyMember)),
            Situation::TargetRefuses => Err(PlatformError::Target {
                outcome: Outcome::PrivacyRestricted,
                code: code("PRIVACY"),
            }),
            Situation::FloodWait { seconds } => Err(PlatformError::FloodWait {
                seconds,
                code: code("SLOW_DOWN"),
            }),
            Situation::AccountRestricted => Err(PlatformError::AccountRestricted {
                code: code("SPAM_BLOCK"),
            }),
            Situation::AccountDead => Err(PlatformError::AccountDead {
                code: code("BANNED"),
            }),
            Situation::GroupUnusable => Err(PlatformError::Group {
                code: code("NO_SUCH_GROUP"),
                account_only: false,
            }),
            Situation::NoAnswerAfterSend if self.timeout_as_not_sent => {
                Err(PlatformError::Transient {
                    code: code("TIMEOUT"),
                })
            }
            Situation::NoAnswerAfterSend => Err(PlatformError::Ambiguous {
                code: code("TIMEOUT"),
            }),
            Situation::NotSent => Err(PlatformError::Transient {
                code: code("CONNECTION_REFUSED"),
            }),
            Situation::RefusedWithoutCause => Err(PlatformError::Refused {
                code: code("REFUSED"),
            }),
            _ => Err(PlatformError::Unknown {
                code: code("TEAPOT"),
                message: "an answer nobody expected".to_owned(),
            }),
        }
    }
}

#[async_trait]
impl InviteStrategy for Scripted {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }

    fn rate_limits(&self) -> LimitPolicy {
        LimitPolicy::telegram()
    }

    async fn initialize(&self, _account: &AccountId) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn check_invite_rights(
        &self,
        _account: &AccountId,
        _group: &GroupRef,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn invite(
        &self,
        _account: &AccountId,
        _target: &Target,
        _group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        self.answer(Outcome::Invited)
    }

    async fn send_message(
        &self,
        _account: &AccountId,
        _target: &Target,
        _text: &str,
        _random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        self.answer(Outcome::Sent)
    }

    async fn add_contact(
        &self,
        _account: &AccountId,
        _target: &Target,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn is_member(
        &self,
        _account: &AccountId,
        _target: &Target,
        _group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        Ok(false)
    }

    async fn disconnect(&self, _account: &AccountId) {}
}

fn staged_script(situation: Situation, timeout_as_not_sent: bool) -> StagedStrategy {
    StagedStrategy {
        strategy: Arc::new(Scripted {
            situation,
            timeout_as_not_sent,
        }),
        account: AccountId::parse("acc-1").unwrap(),
        target: person("@alice", Platform::Sandbox),
        group: GroupRef::parse("@contract_group").unwrap(),
    }
}

#[tokio::test]
async fn a_scripted_messenger_meets_the_strategy_contract() {
    strategy_contract(|situation| async move { Some(staged_script(situation, false)) }).await;
}

#[tokio::test]
async fn a_strategy_reporting_a_timeout_as_not_sent_fails_the_strategy_contract() {
    must_fail(strategy_contract(|situation| async move {
        Some(staged_script(situation, true))
    }))
    .await;
}
