//! The Integration Service client against a mock service: the query, the service token, the
//! answer's shapes, the cache on the virtual clock, retries and refusals.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::VirtualClock;
use invite_core::domain::{Platform, UserId};
use invite_core::ports::{AccountDirectory, DirectoryError, Secret};
use invite_platform::{BreakerPolicy, Error, IntegrationClient, IntegrationConfig, ServiceAuth};
use serde_json::{Value, json};
use wiremock::matchers::{header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{IDENTITY, SECRET, USER, fast_http, t0, verify_bearer};

const A: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const B: &str = "16fd2706-8baf-433b-82eb-8c7fada847da";

fn accounts_get() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts"))
        .and(query_param("user_id", "7"))
        .and(query_param("platform", "telegram"))
        .and(query_param("status", "active"))
        .and(header_exists("authorization"))
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn setup(ttl: Duration) -> (MockServer, Arc<IntegrationClient>, Arc<VirtualClock>) {
    setup_with(ttl, BreakerPolicy::default()).await
}

async fn setup_with(
    ttl: Duration,
    breaker: BreakerPolicy,
) -> (MockServer, Arc<IntegrationClient>, Arc<VirtualClock>) {
    let server = MockServer::start().await;
    let clock = Arc::new(VirtualClock::auto(t0()));
    let mut config = IntegrationConfig::new(
        server.uri(),
        ServiceAuth::new(IDENTITY, Secret::new(SECRET)),
    );
    config.http = fast_http();
    config.http.breaker = breaker;
    config.cache_ttl = ttl;
    let client = IntegrationClient::new(config, clock.clone()).expect("valid configuration");
    (server, Arc::new(client), clock)
}

fn ids(accounts: &[invite_core::ports::AccountInfo]) -> Vec<&str> {
    accounts.iter().map(|a| a.id.as_str()).collect()
}

#[tokio::test]
async fn the_users_active_accounts_are_listed_with_a_service_token() {
    let (server, client, _) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ok(json!({"accounts": [
            {"id": A, "platform": "telegram", "status": "active", "display_name": "Sales"},
            {"id": B.to_uppercase(), "platform": "telegram", "status": "active", "phone": "+79161234567", "name": "+7 916 123-45-67"},
            {"id": "legacy-7", "platform": "telegram", "status": "active"},
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let directory: Arc<dyn AccountDirectory> = client.clone();
    let accounts = directory.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(ids(&accounts), [A, B]);
    assert_eq!(accounts[0].display_name.as_deref(), Some("Sales"));
    assert_eq!(accounts[1].display_name, None, "a phone is never shown");
    let requests = server.received_requests().await.unwrap();
    let header = requests[0].headers.get("authorization").unwrap();
    let claims = verify_bearer(header.to_str().unwrap(), SECRET).unwrap();
    assert_eq!(claims["sub"], IDENTITY);
    assert_eq!(claims["service"], "invite-service");
}

#[tokio::test]
async fn answers_are_kept_for_the_ttl_on_the_clock() {
    let (server, client, clock) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ok(json!([{"id": A}])))
        .mount(&server)
        .await;
    let count = || async { server.received_requests().await.unwrap().len() };
    client.accounts(USER, Platform::Telegram).await.unwrap();
    client.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(count().await, 1, "the second answer came from the cache");
    clock.advance(TimeDelta::seconds(59));
    client.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(count().await, 1);
    clock.advance(TimeDelta::seconds(1));
    client.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(count().await, 2, "asked again once the TTL passed");
    client.invalidate(USER, Platform::Telegram);
    client.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(count().await, 3, "asked again after invalidate");
    // Another user is another entry.
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts"))
        .and(query_param("user_id", "8"))
        .respond_with(ok(json!([{"id": B}])))
        .mount(&server)
        .await;
    let other = client
        .accounts(UserId::new(8), Platform::Telegram)
        .await
        .unwrap();
    assert_eq!(ids(&other), [B]);
}

#[tokio::test]
async fn without_a_ttl_nothing_is_kept() {
    let (server, client, _) = setup(Duration::ZERO).await;
    accounts_get()
        .respond_with(ok(json!([{"id": A}])))
        .expect(2)
        .mount(&server)
        .await;
    client.accounts(USER, Platform::Telegram).await.unwrap();
    client.accounts(USER, Platform::Telegram).await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_and_failures_are_not_cached() {
    let (server, client, _) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    accounts_get()
        .respond_with(ok(json!([{"id": A}])))
        .mount(&server)
        .await;
    let accounts = client.accounts(USER, Platform::Telegram).await.unwrap();
    assert_eq!(ids(&accounts), [A]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let (server, client, _) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Status {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let directory: Arc<dyn AccountDirectory> = client.clone();
    match directory
        .accounts(USER, Platform::Telegram)
        .await
        .unwrap_err()
    {
        DirectoryError::Unavailable(message) => {
            assert!(message.contains("Integration Service"), "{message}");
            assert!(!message.contains(SECRET));
        }
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn refusals_and_malformed_answers_are_final() {
    let (server, client, _) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(SECRET));

    let (server, client, _) = setup(Duration::from_secs(60)).await;
    accounts_get()
        .respond_with(ok(json!({"count": 2})))
        .mount(&server)
        .await;
    let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no retry"
    );
}

#[tokio::test]
async fn an_unreachable_service_opens_the_circuit_until_a_trial_succeeds() {
    let policy = BreakerPolicy {
        failure_threshold: 2,
        cool_off: Duration::from_secs(30),
    };
    let (server, client, clock) = setup_with(Duration::ZERO, policy).await;
    let failing = accounts_get()
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let requests = || async { server.received_requests().await.unwrap().len() };
    for _ in 0..2 {
        let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 503, .. }), "{err:?}");
    }
    assert_eq!(requests().await, 6, "two calls of three attempts");
    // Open: fails at once, sends nothing.
    let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
    assert!(
        matches!(err, Error::CircuitOpen { until: Some(_), .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("Integration Service"), "{err}");
    assert_eq!(requests().await, 6);
    // After the cool-off one trial goes through; the service is back, the circuit closes.
    drop(failing);
    accounts_get()
        .respond_with(ok(json!([{"id": A}])))
        .mount(&server)
        .await;
    clock.advance(TimeDelta::seconds(29));
    assert!(matches!(
        client.accounts(USER, Platform::Telegram).await,
        Err(Error::CircuitOpen { .. })
    ));
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        ids(&client.accounts(USER, Platform::Telegram).await.unwrap()),
        [A]
    );
    assert_eq!(
        ids(&client.accounts(USER, Platform::Telegram).await.unwrap()),
        [A]
    );
    assert_eq!(requests().await, 8);
}

#[tokio::test]
async fn refusals_prove_the_service_is_there() {
    let policy = BreakerPolicy {
        failure_threshold: 1,
        cool_off: Duration::from_secs(30),
    };
    let (server, client, _) = setup_with(Duration::ZERO, policy).await;
    accounts_get()
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    for _ in 0..3 {
        let err = client.accounts(USER, Platform::Telegram).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}
