//! The [`AccountManager`] contract.

use std::future::Future;
use std::sync::Arc;

use chrono::TimeDelta;

use super::harness::run_plain;
use crate::domain::UserId;
use crate::domain::{AccountId, ActionKind, Platform};
use crate::ports::{
    AccountManager, AccountState, Allocation, AllocationRequest, ErrorClass, ErrorReport, HoldId,
    PURPOSE_INVITE_CAMPAIGN, RateDecision, RateLimitCheck, UsageStats,
};

/// A manager under test, fresh for one case, with accounts it knows.
#[derive(Debug, Clone)]
pub struct ManagedAccounts {
    /// The manager.
    pub manager: Arc<dyn AccountManager>,
    /// The platform its accounts are on.
    pub platform: Platform,
    /// At least three accounts, active and unused, each allowed at least one invite now.
    pub accounts: Vec<AccountId>,
}

impl ManagedAccounts {
    fn request(&self, candidates: &[AccountId]) -> AllocationRequest {
        AllocationRequest {
            user_id: UserId::new(1001),
            platform: self.platform,
            purpose: PURPOSE_INVITE_CAMPAIGN.to_owned(),
            candidates: candidates.to_vec(),
            hold: None,
        }
    }

    async fn allocate(&self, candidates: &[AccountId]) -> Allocation {
        self.manager
            .allocate_account(&self.request(candidates))
            .await
            .expect("allocate_account")
    }

    async fn allocate_as(&self, candidates: &[AccountId], hold: &str) -> Allocation {
        let request = AllocationRequest {
            hold: Some(HoldId::new(hold)),
            ..self.request(candidates)
        };
        self.manager
            .allocate_account(&request)
            .await
            .expect("allocate_account")
    }

    async fn release_as(&self, account: &AccountId, hold: &str) {
        let usage = UsageStats {
            hold: Some(HoldId::new(hold)),
            ..UsageStats::default()
        };
        self.manager
            .release_account(account, &usage)
            .await
            .expect("release_account");
    }

    fn check(&self, account: &AccountId) -> RateLimitCheck {
        RateLimitCheck {
            account_id: account.clone(),
            platform: self.platform,
            kinds: vec![ActionKind::Invite],
            channel: "@contract_group".to_owned(),
        }
    }

    fn report(&self, class: ErrorClass, code: &str, retry_after: Option<TimeDelta>) -> ErrorReport {
        ErrorReport {
            platform: self.platform,
            class,
            code: code.to_owned(),
            message: String::new(),
            retry_after,
            task_id: None,
            target_id: None,
        }
    }

    fn three(&self) -> (AccountId, AccountId, AccountId) {
        assert!(
            self.accounts.len() >= 3,
            "the factory must give at least three accounts"
        );
        (
            self.accounts[0].clone(),
            self.accounts[1].clone(),
            self.accounts[2].clone(),
        )
    }
}

async fn a_candidate_is_granted_and_held_until_released(m: ManagedAccounts) {
    let (a, b, _) = m.three();
    let Allocation::Granted(first) = m.allocate(&[a.clone(), b.clone()]).await else {
        panic!("two fresh candidates: one must be granted");
    };
    assert!(first == a || first == b, "granted {first}, not a candidate");
    let Allocation::Granted(second) = m.allocate(&[a.clone(), b.clone()]).await else {
        panic!("the other candidate is free");
    };
    assert_ne!(first, second, "a held account is granted once");
    assert!(
        matches!(
            m.allocate(&[a.clone(), b.clone()]).await,
            Allocation::Unavailable { .. }
        ),
        "both candidates are held"
    );
    m.manager
        .release_account(&first, &UsageStats::default())
        .await
        .expect("release_account");
    assert_eq!(
        m.allocate(&[a, b]).await,
        Allocation::Granted(first),
        "a released account is granted again"
    );
}

async fn a_late_release_frees_only_the_hold_it_names(m: ManagedAccounts) {
    let (a, _, _) = m.three();
    let one = std::slice::from_ref(&a);
    assert_eq!(
        m.allocate_as(one, "hold-first").await,
        Allocation::Granted(a.clone())
    );
    m.release_as(&a, "hold-first").await;
    assert_eq!(
        m.allocate_as(one, "hold-second").await,
        Allocation::Granted(a.clone())
    );
    // The first hold's release once more (retried after its answer was lost): the second
    // caller keeps the account.
    m.release_as(&a, "hold-first").await;
    assert!(
        matches!(
            m.allocate_as(one, "hold-third").await,
            Allocation::Unavailable { .. }
        ),
        "a late release of another hold freed the current one"
    );
    m.release_as(&a, "hold-second").await;
    assert_eq!(
        m.allocate_as(one, "hold-third").await,
        Allocation::Granted(a),
        "the release naming the current hold frees it"
    );
}

async fn no_candidate_is_unavailable(m: ManagedAccounts) {
    assert!(matches!(
        m.allocate(&[]).await,
        Allocation::Unavailable { .. }
    ));
}

async fn a_fresh_account_may_invite(m: ManagedAccounts) {
    let (a, _, _) = m.three();
    assert_eq!(
        m.manager.account_state(&a).await.expect("account_state"),
        AccountState::Active
    );
    let decision = m
        .manager
        .check_rate_limit(&m.check(&a))
        .await
        .expect("check_rate_limit");
    assert!(
        matches!(decision, RateDecision::Allowed { .. }),
        "a fresh account is allowed an invite, got {decision:?}"
    );
}

async fn a_dead_account_is_never_granted_nor_allowed(m: ManagedAccounts) {
    let (a, b, _) = m.three();
    let state = m
        .manager
        .handle_error(
            &a,
            &m.report(ErrorClass::AccountDead, "USER_DEACTIVATED", None),
        )
        .await
        .expect("handle_error");
    assert!(matches!(state, AccountState::Dead { .. }), "{state:?}");
    assert!(matches!(
        m.manager.account_state(&a).await.expect("account_state"),
        AccountState::Dead { .. }
    ));
    assert_eq!(
        m.allocate(&[a.clone(), b.clone()]).await,
        Allocation::Granted(b),
        "the dead candidate is passed over"
    );
    assert!(matches!(
        m.allocate(std::slice::from_ref(&a)).await,
        Allocation::Unavailable { .. }
    ));
    let decision = m
        .manager
        .check_rate_limit(&m.check(&a))
        .await
        .expect("check_rate_limit");
    assert!(
        !matches!(decision, RateDecision::Allowed { .. }),
        "a dead account is allowed nothing, got {decision:?}"
    );
}

async fn a_flood_wait_cools_the_account_down(m: ManagedAccounts) {
    let (a, _, _) = m.three();
    let state = m
        .manager
        .handle_error(
            &a,
            &m.report(
                ErrorClass::AccountTemporary,
                "FLOOD_WAIT",
                Some(TimeDelta::hours(6)),
            ),
        )
        .await
        .expect("handle_error");
    assert!(
        matches!(state, AccountState::CoolingDown { .. }),
        "{state:?}"
    );
    match m.allocate(std::slice::from_ref(&a)).await {
        Allocation::Unavailable { retry_at } => {
            if let (Some(at), AccountState::CoolingDown { until, .. }) = (retry_at, &state) {
                assert!(at <= *until, "retry_at after the cooldown's end");
            }
        }
        other => panic!("a cooling account was granted: {other:?}"),
    }
    let decision = m
        .manager
        .check_rate_limit(&m.check(&a))
        .await
        .expect("check_rate_limit");
    assert!(
        !matches!(decision, RateDecision::Allowed { .. }),
        "a cooling account is allowed nothing, got {decision:?}"
    );
}

async fn target_and_transient_errors_leave_the_account_active(m: ManagedAccounts) {
    let (a, _, _) = m.three();
    for (class, code) in [
        (ErrorClass::Target, "USER_PRIVACY_RESTRICTED"),
        (ErrorClass::Transient, "CONNECTION_REFUSED"),
    ] {
        let state = m
            .manager
            .handle_error(&a, &m.report(class, code, None))
            .await
            .expect("handle_error");
        assert_eq!(state, AccountState::Active, "after a {class} error");
    }
}

async fn states_come_in_the_order_asked(m: ManagedAccounts) {
    let (a, b, c) = m.three();
    m.manager
        .handle_error(
            &b,
            &m.report(ErrorClass::AccountDead, "AUTH_KEY_UNREGISTERED", None),
        )
        .await
        .expect("handle_error");
    let states = m
        .manager
        .account_states(&[c.clone(), b.clone(), a.clone()])
        .await
        .expect("account_states");
    assert_eq!(states.len(), 3);
    assert_eq!(states[0], AccountState::Active);
    assert!(matches!(states[1], AccountState::Dead { .. }), "{states:?}");
    assert_eq!(states[2], AccountState::Active);
}

/// The [`AccountManager`] contract: a candidate is granted and held until released (never
/// granted twice at once), a release frees only the hold it names, no candidate is unavailable, a fresh account may invite, a dead
/// account (an [`ErrorClass::AccountDead`] report) is passed over and allowed nothing, a flood
/// wait cools the account down, target and transient errors leave it active, and
/// `account_states` answers in the order asked.
///
/// `open` gives every case a fresh manager (see [`ManagedAccounts`]); `None` skips the suite.
pub async fn account_manager_contract<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<ManagedAccounts>>,
{
    run_plain(
        "account_manager_contract",
        open,
        &[
            ("a_candidate_is_granted_and_held_until_released", |m| {
                Box::pin(a_candidate_is_granted_and_held_until_released(m))
            }),
            ("a_late_release_frees_only_the_hold_it_names", |m| {
                Box::pin(a_late_release_frees_only_the_hold_it_names(m))
            }),
            ("no_candidate_is_unavailable", |m| {
                Box::pin(no_candidate_is_unavailable(m))
            }),
            ("a_fresh_account_may_invite", |m| {
                Box::pin(a_fresh_account_may_invite(m))
            }),
            ("a_dead_account_is_never_granted_nor_allowed", |m| {
                Box::pin(a_dead_account_is_never_granted_nor_allowed(m))
            }),
            ("a_flood_wait_cools_the_account_down", |m| {
                Box::pin(a_flood_wait_cools_the_account_down(m))
            }),
            (
                "target_and_transient_errors_leave_the_account_active",
                |m| Box::pin(target_and_transient_errors_leave_the_account_active(m)),
            ),
            ("states_come_in_the_order_asked", |m| {
                Box::pin(states_come_in_the_order_asked(m))
            }),
        ],
    )
    .await;
}
