//! The Account Manager over HTTP: one contract suite run on the embedded `LocalAccountManager`
//! directly and on `HttpAccountManager` talking to the reference server over a real socket;
//! then the faults a real manager can have, against wiremock.
//!
//! The suite ([`contract`]) only needs a factory of managers over a clock and a limit policy,
//! so it can move next to the port later without change.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::domain::{AccountId, ActionKind, Outcome, Platform, UserId};
use invite_core::limits::{ActionLimits, LimitPolicy, LocalAccountManager};
use invite_core::memory::MemoryLedger;
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, ErrorClass,
    ErrorReport, LimitReason, LimitScope, PURPOSE_INVITE_CAMPAIGN, RateDecision, RateLimitCheck,
    Secret, UsageStats,
};
use invite_core::{Clock as _, VirtualClock};
use invite_platform::account_manager::server;
use invite_platform::{
    AccountManagerConfig, BreakerPolicy, HttpAccountManager, HttpOptions, RetryPolicy, ServiceAuth,
};
use serde_json::json;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{IDENTITY, SECRET, t0, verify_bearer};

type Factory<F> = fn(Arc<VirtualClock>, LimitPolicy) -> F;

fn id(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn allocation(candidates: &[&str]) -> AllocationRequest {
    AllocationRequest {
        user_id: UserId::new(7),
        platform: Platform::Telegram,
        purpose: PURPOSE_INVITE_CAMPAIGN.to_owned(),
        candidates: candidates.iter().map(|c| id(c)).collect(),
        hold: None,
    }
}

fn invite(account: &str, channel: &str) -> RateLimitCheck {
    RateLimitCheck {
        account_id: id(account),
        platform: Platform::Telegram,
        kinds: vec![ActionKind::Invite],
        channel: channel.to_owned(),
    }
}

fn flood_wait(seconds: i64) -> ErrorReport {
    ErrorReport {
        platform: Platform::Telegram,
        class: ErrorClass::AccountTemporary,
        code: "FLOOD_WAIT".to_owned(),
        message: format!("A wait of {seconds} seconds is required"),
        retry_after: Some(TimeDelta::seconds(seconds)),
        task_id: None,
        target_id: None,
    }
}

/// Telegram's limits, but an invite may go once per channel ever, with no pause: the second
/// invite of an account into a channel is denied for good.
fn one_invite_per_channel() -> LimitPolicy {
    let mut policy = LimitPolicy::telegram();
    policy.invite = ActionLimits {
        per_account: 100,
        per_channel: None,
        per_channel_lifetime: Some(1),
        pause_min: TimeDelta::zero(),
        pause_max: TimeDelta::zero(),
        spread: false,
    };
    policy.writes_per_account = None;
    policy
}

fn performed(decision: &RateDecision, at: chrono::DateTime<chrono::Utc>) -> UsageStats {
    let RateDecision::Allowed { reservation } = decision else {
        panic!("expected an allowed check, got {decision:?}");
    };
    UsageStats {
        hold: None,
        reservation: *reservation,
        performed: true,
        performed_at: Some(at),
        outcome: Some(Outcome::Invited),
        latency_ms: Some(120),
    }
}

/// What every `AccountManager` must do, whatever carries the calls.
pub async fn contract<F, Fut>(make: F)
where
    F: Fn(Arc<VirtualClock>, LimitPolicy) -> Fut,
    Fut: Future<Output = Arc<dyn AccountManager>>,
{
    // Holding: an account is held by one caller until released.
    let clock = Arc::new(VirtualClock::manual(t0()));
    let manager = make(clock.clone(), LimitPolicy::telegram()).await;
    let granted = manager.allocate_account(&allocation(&["a1", "a2"])).await;
    assert_eq!(granted, Ok(Allocation::Granted(id("a1"))));
    let next = manager.allocate_account(&allocation(&["a1", "a2"])).await;
    assert_eq!(next, Ok(Allocation::Granted(id("a2"))), "a1 is held");
    let none = manager.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(none, Ok(Allocation::Unavailable { retry_at: None }));

    // Checking: the first action is allowed; the next one waits for the pause.
    let first = manager.check_rate_limit(&invite("a1", "g1")).await.unwrap();
    assert!(
        matches!(
            first,
            RateDecision::Allowed {
                reservation: Some(_)
            }
        ),
        "{first:?}"
    );
    let second = manager.check_rate_limit(&invite("a1", "g1")).await.unwrap();
    let RateDecision::Wait { until, .. } = second else {
        panic!("expected a wait, got {second:?}");
    };
    assert!(until >= t0() + TimeDelta::minutes(10), "{until}");
    manager
        .release_account(&id("a1"), &performed(&first, t0()))
        .await
        .unwrap();
    let again = manager.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(again, Ok(Allocation::Granted(id("a1"))), "released");

    // Errors: a flood wait cools the account down; a dead account stays dead.
    let state = manager.handle_error(&id("a2"), &flood_wait(60)).await;
    let cooling_until = t0() + TimeDelta::seconds(60 + 30);
    assert_eq!(
        state,
        Ok(AccountState::CoolingDown {
            until: cooling_until,
            reason: "FLOOD_WAIT".to_owned()
        })
    );
    manager
        .release_account(&id("a2"), &UsageStats::default())
        .await
        .unwrap();
    let cooling = manager.allocate_account(&allocation(&["a2"])).await;
    assert_eq!(
        cooling,
        Ok(Allocation::Unavailable {
            retry_at: Some(cooling_until)
        })
    );
    let dead = ErrorReport {
        class: ErrorClass::AccountDead,
        code: "USER_DEACTIVATED".to_owned(),
        retry_after: None,
        ..flood_wait(0)
    };
    let state = manager.handle_error(&id("a3"), &dead).await.unwrap();
    assert!(matches!(state, AccountState::Dead { .. }), "{state:?}");
    let target_error = ErrorReport {
        class: ErrorClass::Target,
        code: "USER_PRIVACY_RESTRICTED".to_owned(),
        retry_after: None,
        ..flood_wait(0)
    };
    let unchanged = manager.handle_error(&id("a4"), &target_error).await;
    assert_eq!(unchanged, Ok(AccountState::Active));

    // States, in the order asked; a cooldown that ended is active.
    let states = manager
        .account_states(&[id("a3"), id("a2"), id("a4")])
        .await
        .unwrap();
    assert!(matches!(states[0], AccountState::Dead { .. }));
    assert!(matches!(states[1], AccountState::CoolingDown { .. }));
    assert_eq!(states[2], AccountState::Active);
    assert_eq!(states.len(), 3);
    clock.advance(TimeDelta::seconds(90));
    assert_eq!(
        manager.account_state(&id("a2")).await,
        Ok(AccountState::Active)
    );

    // Denied for good: a channel's lifetime cap.
    let clock = Arc::new(VirtualClock::manual(t0()));
    let manager = make(clock.clone(), one_invite_per_channel()).await;
    let first = manager.check_rate_limit(&invite("b1", "g1")).await.unwrap();
    manager
        .release_account(&id("b1"), &performed(&first, t0()))
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(1));
    let denied = manager.check_rate_limit(&invite("b1", "g1")).await.unwrap();
    assert_eq!(
        denied,
        RateDecision::Denied {
            reason: LimitReason::ChannelLifetime,
            permanent: true,
            scope: LimitScope::Channel
        }
    );
    let other_channel = manager.check_rate_limit(&invite("b1", "g2")).await.unwrap();
    assert!(matches!(other_channel, RateDecision::Allowed { .. }));

    // A refund gives the slot back: the lifetime cap is not spent by an action never sent.
    let refunded = manager.check_rate_limit(&invite("b2", "g1")).await.unwrap();
    let RateDecision::Allowed { reservation } = refunded else {
        panic!("expected an allowed check, got {refunded:?}");
    };
    let unused = UsageStats {
        reservation,
        ..UsageStats::default()
    };
    manager.release_account(&id("b2"), &unused).await.unwrap();
    let after_refund = manager.check_rate_limit(&invite("b2", "g1")).await.unwrap();
    assert!(
        matches!(after_refund, RateDecision::Allowed { .. }),
        "{after_refund:?}"
    );
}

fn embedded(clock: Arc<VirtualClock>, policy: LimitPolicy) -> LocalAccountManager {
    LocalAccountManager::new(Arc::new(MemoryLedger::new()), clock, 1)
        .with_policy(Platform::Telegram, policy)
}

async fn local_manager(clock: Arc<VirtualClock>, policy: LimitPolicy) -> Arc<dyn AccountManager> {
    Arc::new(embedded(clock, policy))
}

/// The reference server over a local manager on 127.0.0.1:0; its base URL.
pub async fn reference_server(
    manager: Arc<dyn AccountManager>,
    clock: Arc<VirtualClock>,
) -> String {
    let router = server::router(manager, Secret::new(SECRET), clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn client(base: &str, clock: Arc<VirtualClock>, http: HttpOptions) -> HttpAccountManager {
    let mut config =
        AccountManagerConfig::new(base, ServiceAuth::new(IDENTITY, Secret::new(SECRET)));
    config.http = http;
    HttpAccountManager::new(config, clock).expect("valid configuration")
}

async fn http_manager(clock: Arc<VirtualClock>, policy: LimitPolicy) -> Arc<dyn AccountManager> {
    let base = reference_server(Arc::new(embedded(clock.clone(), policy)), clock.clone()).await;
    Arc::new(client(&base, clock, AccountManagerConfig::default_http()))
}

#[tokio::test]
async fn the_contract_holds_for_the_local_manager() {
    let make: Factory<_> = |c, p| local_manager(c, p);
    contract(make).await;
}

#[tokio::test]
async fn the_contract_holds_over_http_against_the_reference_server() {
    let make: Factory<_> = |c, p| http_manager(c, p);
    contract(make).await;
}

/// The conformance suite every account manager runs (`invite_core::testing`), over HTTP
/// against the reference server.
#[tokio::test]
async fn the_http_client_meets_the_account_manager_conformance_suite() {
    use invite_core::testing::{ManagedAccounts, account_manager_contract};
    account_manager_contract(|| async {
        let clock = Arc::new(VirtualClock::manual(t0()));
        Some(ManagedAccounts {
            manager: http_manager(clock, LimitPolicy::telegram()).await,
            platform: Platform::Telegram,
            accounts: ["am-one", "am-two", "am-three"]
                .into_iter()
                .map(|a| AccountId::parse(a).unwrap())
                .collect(),
        })
    })
    .await;
}

#[tokio::test]
async fn the_reference_server_refuses_requests_without_a_valid_token() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let local = Arc::new(embedded(clock.clone(), LimitPolicy::telegram()));
    let base = reference_server(local, clock.clone()).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/accounts/allocate");
    let body = json!({"user_id": 7, "platform": "telegram", "purpose": "invite_campaign", "candidates": ["a1"]});
    let anonymous = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let answer: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unauthorized");

    // A client signing with another secret is refused, and told so as a final error.
    let mut config =
        AccountManagerConfig::new(&base, ServiceAuth::new(IDENTITY, Secret::new("not-it")));
    config.http = AccountManagerConfig::default_http();
    let stranger = HttpAccountManager::new(config, clock.clone()).unwrap();
    let err = stranger
        .allocate_account(&allocation(&["a1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccountManagerError::Rejected(ref m) if m.contains("401")),
        "{err}"
    );
    assert!(!err.to_string().contains("not-it"));

    // A token that expired by the server's clock.
    let server_clock = Arc::new(VirtualClock::manual(t0()));
    let manager = Arc::new(embedded(server_clock.clone(), LimitPolicy::telegram()));
    let base = reference_server(manager, server_clock.clone()).await;
    let client = client(&base, clock.clone(), AccountManagerConfig::default_http());
    assert_eq!(
        client.account_state(&id("a1")).await,
        Ok(AccountState::Active)
    );
    server_clock.advance(TimeDelta::hours(2));
    let err = client.account_state(&id("a1")).await.unwrap_err();
    assert!(
        matches!(err, AccountManagerError::Rejected(ref m) if m.contains("401")),
        "{err}"
    );
}

#[tokio::test]
async fn the_reference_server_names_what_is_wrong_with_a_body() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let local = Arc::new(embedded(clock.clone(), LimitPolicy::telegram()));
    let base = reference_server(local, clock.clone()).await;
    let mut config =
        AccountManagerConfig::new(&base, ServiceAuth::new(IDENTITY, Secret::new(SECRET)));
    config.http = AccountManagerConfig::default_http();
    let client = HttpAccountManager::new(config, clock).unwrap();
    // No candidate is answered without a call (the port's `Unavailable`); too many reach the
    // server, which names the rule.
    assert_eq!(
        client.allocate_account(&allocation(&[])).await.unwrap(),
        Allocation::Unavailable { retry_at: None }
    );
    let names: Vec<String> = (0..1001).map(|n| format!("acc-{n}")).collect();
    let many: Vec<&str> = names.iter().map(String::as_str).collect();
    let err = client
        .allocate_account(&allocation(&many))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccountManagerError::Rejected(ref m) if m.contains("candidates must hold 1 to 1000 accounts, not 1001")),
        "{err}"
    );
    let mut check = invite("a1", "g1");
    check.kinds.clear();
    let err = client.check_rate_limit(&check).await.unwrap_err();
    assert!(err.to_string().contains("at least one kind"), "{err}");
}

#[tokio::test]
async fn a_repeated_release_key_releases_once() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let local = Arc::new(embedded(clock.clone(), one_invite_per_channel()));
    let base = reference_server(local.clone(), clock.clone()).await;
    let decision = local.check_rate_limit(&invite("c1", "g1")).await.unwrap();
    let RateDecision::Allowed { reservation } = decision else {
        panic!("{decision:?}");
    };
    // Two deliveries of one refund (the first answer lost): refunded once.
    let body =
        json!({"account_id": "c1", "reservation": reservation.unwrap().0, "performed": false});
    let auth = invite_platform::ServiceToken::new(
        "test",
        ServiceAuth::new(IDENTITY, Secret::new(SECRET)),
        clock.clone(),
    )
    .unwrap()
    .current();
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let answer = http
            .post(format!("{base}/v1/accounts/release"))
            .bearer_auth(auth.expose())
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }
    let without_key = http
        .post(format!("{base}/v1/accounts/release"))
        .bearer_auth(auth.expose())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(without_key.status(), 400);
    // The slot is free once: one more invite is allowed, then the lifetime cap speaks.
    let allowed = local.check_rate_limit(&invite("c1", "g1")).await.unwrap();
    let at = clock.now();
    local
        .release_account(&id("c1"), &performed(&allowed, at))
        .await
        .unwrap();
    let denied = local.check_rate_limit(&invite("c1", "g1")).await.unwrap();
    assert!(matches!(denied, RateDecision::Denied { .. }), "{denied:?}");
}

// Faults, against wiremock.

/// Short timeouts, two quick retries, a breaker that opens after 2 failures for 30 s.
fn faulty_http() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(300),
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        },
        max_response_bytes: 64 * 1024,
        breaker: BreakerPolicy {
            failure_threshold: 2,
            cool_off: Duration::from_secs(30),
        },
    }
}

async fn mock() -> (MockServer, HttpAccountManager, Arc<VirtualClock>) {
    let server = MockServer::start().await;
    let clock = Arc::new(VirtualClock::auto(t0()));
    let client = client(&server.uri(), clock.clone(), faulty_http());
    (server, client, clock)
}

#[tokio::test]
async fn every_request_carries_the_service_token_and_the_documented_body() {
    let (server, client, _) = mock().await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/check-rate-limit"))
        .respond_with(|req: &Request| {
            let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
            let claims = verify_bearer(auth, SECRET).expect("a valid token");
            assert_eq!(claims["sub"], IDENTITY);
            let body: serde_json::Value = req.body_json().unwrap();
            assert_eq!(
                body,
                json!({"account_id": "a1", "platform": "telegram", "kinds": ["invite"], "channel": "g1"})
            );
            ResponseTemplate::new(200).set_body_json(json!({
                "decision": "denied", "reason": "account_window", "permanent": false, "scope": "account"
            }))
        })
        .expect(1)
        .mount(&server)
        .await;
    let denied = client.check_rate_limit(&invite("a1", "g1")).await.unwrap();
    assert_eq!(
        denied,
        RateDecision::Denied {
            reason: LimitReason::AccountWindow,
            permanent: false,
            scope: LimitScope::Account
        }
    );
}

#[tokio::test]
async fn an_unavailable_allocation_and_a_foreign_grant() {
    let (server, client, _) = mock().await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/allocate"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"result": "unavailable", "retry_at": "2025-03-01T10:30:00Z"}),
            ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let none = client.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(
        none,
        Ok(Allocation::Unavailable {
            retry_at: Some(t0() + TimeDelta::minutes(30))
        })
    );
    Mock::given(method("POST"))
        .and(path("/v1/accounts/allocate"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"result": "granted", "account_id": "zz"})),
        )
        .mount(&server)
        .await;
    let err = client
        .allocate_account(&allocation(&["a1"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not one of the candidates"),
        "{err}"
    );
}

#[tokio::test]
async fn a_check_is_never_retried_a_release_is_with_the_same_key() {
    let (server, client, _) = mock().await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/check-rate-limit"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let err = client
        .check_rate_limit(&invite("a1", "g1"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("503 (1 attempts)"), "{err}");

    Mock::given(method("POST"))
        .and(path("/v1/accounts/release"))
        .and(header_exists("idempotency-key"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/release"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    client
        .release_account(&id("a1"), &UsageStats::default())
        .await
        .expect("released on the third attempt");
    let keys: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/accounts/release")
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == keys[0] && k.len() == 32),
        "{keys:?}"
    );
    client
        .release_account(&id("a1"), &UsageStats::default())
        .await
        .unwrap();
    let last = server.received_requests().await.unwrap();
    let key = last.last().unwrap().headers["idempotency-key"]
        .to_str()
        .unwrap();
    assert_ne!(key, keys[0], "a new release, a new key");
}

#[tokio::test]
async fn a_slow_manager_times_out_and_the_breaker_opens() {
    let (server, client, clock) = mock().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let err = client
        .check_rate_limit(&invite("a1", "g1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("did not answer in time (1 attempts)"),
        "{err}"
    );
    assert!(err.is_retryable());
    let err = client.account_state(&id("a1")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("did not answer in time (3 attempts)"),
        "{err}"
    );
    // Two calls could not reach it: the circuit is open, nothing is sent.
    let sent = server.received_requests().await.unwrap().len();
    let err = client
        .check_rate_limit(&invite("a1", "g1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("suspended"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), sent);
    // After the cool-off one trial goes through; an answer closes the circuit.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"states": [{"state": "active"}]})),
        )
        .mount(&server)
        .await;
    clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        client.account_state(&id("a1")).await,
        Ok(AccountState::Active)
    );
}

#[tokio::test]
async fn malformed_answers_are_unavailable_not_acted_on() {
    let (server, client, _) = mock().await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/check-rate-limit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"decision": "maybe"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/states"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"states": [{"state": "active"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/handle-error"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .mount(&server)
        .await;
    let err = client
        .check_rate_limit(&invite("a1", "g1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccountManagerError::Unavailable(ref m) if m.contains("unreadable answer")),
        "{err}"
    );
    let err = client
        .account_states(&[id("a1"), id("a2")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 states for 2 accounts"), "{err}");
    let err = client
        .handle_error(&id("a1"), &flood_wait(5))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn refusals_are_final() {
    let (server, client, _) = mock().await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts/handle-error"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "invalid_request", "message": "unknown account"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client
        .handle_error(&id("a1"), &flood_wait(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccountManagerError::Rejected(ref m) if m.contains("unknown account")),
        "{err}"
    );
}

#[test]
fn a_bad_base_url_is_a_clear_error() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let config = AccountManagerConfig::new(
        "ftp://manager",
        ServiceAuth::new(IDENTITY, Secret::new(SECRET)),
    );
    let err = HttpAccountManager::new(config, clock).unwrap_err();
    assert!(err.to_string().contains("Account Manager"), "{err}");
}

/// The OpenAPI document names the fields the wire types send, no more, no fewer.
#[test]
fn the_openapi_document_matches_the_wire_types() {
    use invite_platform::account_manager::wire;
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/account-manager.openapi.json")).unwrap();
    let schemas = &doc["components"]["schemas"];
    let keys = |v: serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let documented = |name: &str| keys(schemas[name]["properties"].clone());
    let usage = UsageStats {
        hold: Some(invite_core::ports::HoldId::new("hold-1")),
        reservation: Some(invite_core::ports::Reservation(3)),
        performed: true,
        performed_at: Some(t0()),
        outcome: Some(Outcome::Invited),
        latency_ms: Some(5),
    };
    let report = ErrorReport {
        task_id: Some(invite_core::domain::TaskId::new(1)),
        target_id: Some(invite_core::domain::TargetId::new(2)),
        ..flood_wait(3)
    };
    let sent = [
        (
            "AllocateBody",
            serde_json::to_value(wire::AllocateBody::from(&allocation(&["a"]))),
        ),
        (
            "CheckBody",
            serde_json::to_value(wire::CheckBody::from(&invite("a", "g"))),
        ),
        (
            "ReleaseBody",
            serde_json::to_value(wire::ReleaseBody::new(&id("a"), &usage)),
        ),
        (
            "ErrorBody",
            serde_json::to_value(wire::ErrorBody::new(&id("a"), &report)),
        ),
        (
            "StatesBody",
            serde_json::to_value(wire::StatesBody {
                account_ids: vec![id("a")],
            }),
        ),
    ];
    for (name, value) in sent {
        assert_eq!(keys(value.unwrap()), documented(name), "{name}");
    }
    let answers = [
        (
            "CheckAnswer",
            RateDecision::Wait {
                until: t0(),
                reason: LimitReason::Pause,
                scope: LimitScope::Account,
            },
            1,
        ),
        (
            "CheckAnswer",
            RateDecision::Denied {
                reason: LimitReason::Busy,
                permanent: false,
                scope: LimitScope::Account,
            },
            2,
        ),
    ];
    for (name, decision, variant) in answers {
        let value = serde_json::to_value(wire::CheckAnswer::new(&decision, t0())).unwrap();
        let documented = keys(schemas[name]["oneOf"][variant]["properties"].clone());
        assert_eq!(keys(value), documented, "{name} {decision:?}");
    }
}

#[tokio::test]
async fn a_hold_never_released_ends_after_its_ttl() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let manager = Arc::new(embedded(clock.clone(), LimitPolicy::telegram()));
    let router = server::router_with_hold_ttl(
        manager,
        Secret::new(SECRET),
        clock.clone(),
        Duration::from_secs(60),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = client(&base, clock.clone(), AccountManagerConfig::default_http());
    let granted = client.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(granted, Ok(Allocation::Granted(id("a1"))));
    // The release is lost: the account stays held for the TTL, then is let go.
    clock.advance(TimeDelta::seconds(59));
    let held = client.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(held, Ok(Allocation::Unavailable { retry_at: None }));
    clock.advance(TimeDelta::seconds(1));
    let again = client.allocate_account(&allocation(&["a1"])).await;
    assert_eq!(again, Ok(Allocation::Granted(id("a1"))));
}

/// Regression: a release that arrived after its hold's TTL (the caller was slow, or its release
/// was retried after the manager came back) freed the hold of the caller the account went to
/// next, so a third caller was granted it while the second still acted on it.
#[tokio::test]
async fn a_release_after_the_ttl_leaves_the_next_holder_alone() {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let manager = Arc::new(embedded(clock.clone(), LimitPolicy::telegram()));
    let router = server::router_with_hold_ttl(
        manager,
        Secret::new(SECRET),
        clock.clone(),
        Duration::from_secs(60),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = client(&base, clock.clone(), AccountManagerConfig::default_http());
    let as_hold = |hold: &str| AllocationRequest {
        hold: Some(invite_core::ports::HoldId::new(hold)),
        ..allocation(&["a1"])
    };
    let release = |hold: &str| UsageStats {
        hold: Some(invite_core::ports::HoldId::new(hold)),
        ..UsageStats::default()
    };
    let granted = Ok(Allocation::Granted(id("a1")));
    assert_eq!(client.allocate_account(&as_hold("first")).await, granted);
    clock.advance(TimeDelta::seconds(60));
    // The first hold lapsed: the account goes to the second caller.
    assert_eq!(client.allocate_account(&as_hold("second")).await, granted);
    // The first caller's release comes now.
    client
        .release_account(&id("a1"), &release("first"))
        .await
        .unwrap();
    assert_eq!(
        client.allocate_account(&as_hold("third")).await,
        Ok(Allocation::Unavailable { retry_at: None }),
        "the second caller still holds the account"
    );
    client
        .release_account(&id("a1"), &release("second"))
        .await
        .unwrap();
    assert_eq!(client.allocate_account(&as_hold("third")).await, granted);
}
