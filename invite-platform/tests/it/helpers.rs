//! A mock Parsing Service, a client wired to it on a virtual clock, and a token checker.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use invite_core::VirtualClock;
use invite_core::domain::{Platform, UserId};
use invite_core::import::{ImportContext, ImportOptions, ImportReport};
use invite_core::ports::{Audience, Secret};
use invite_platform::{
    BreakerPolicy, HttpOptions, ParsingClient, ParsingConfig, RetryPolicy, ServiceAuth,
};
use serde_json::Value;
use sha2::Sha256;
use wiremock::MockServer;

pub const SECRET: &str = "shared-test-signing-secret";
pub const IDENTITY: &str = "invite-service@platform.test";
pub const USER: UserId = UserId::new(7);
pub const USERS_PATH: &str = "/api/parsing/results/42/users";

/// A fixed instant: the virtual clock starts here.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Short timeouts; two retries after 100 ms and 200 ms.
pub fn fast_http() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        },
        max_response_bytes: 1024 * 1024,
        breaker: BreakerPolicy::default(),
    }
}

/// A client of `base` on an auto-advancing virtual clock (backoff waits take no real time and
/// show as the clock's movement).
pub fn client_of(base: &str, http: HttpOptions) -> (ParsingClient, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::auto(t0()));
    let mut config = ParsingConfig::new(base, ServiceAuth::new(IDENTITY, Secret::new(SECRET)));
    config.http = http;
    let client = ParsingClient::new(config, clock.clone()).expect("valid configuration");
    (client, clock)
}

/// A mock server and a client of it with [`fast_http`].
pub async fn setup() -> (MockServer, ParsingClient, Arc<VirtualClock>) {
    let server = MockServer::start().await;
    let (client, clock) = client_of(&server.uri(), fast_http());
    (server, client, clock)
}

/// Checks an `Authorization` header holds a valid HS256 token signed with `secret`; returns
/// its claims.
pub fn verify_bearer(header: &str, secret: &str) -> Result<Value, String> {
    let token = header.strip_prefix("Bearer ").ok_or("not a bearer token")?;
    let parts: Vec<&str> = token.split('.').collect();
    let [head, payload, signature] = parts[..] else {
        return Err(format!("{} parts, not 3", parts.len()));
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let head = decode(head)?;
    if head["alg"] != "HS256" {
        return Err(format!("alg {}", head["alg"]));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{payload}", parts[0]).as_bytes());
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    mac.verify_slice(&signature)
        .map_err(|_| "bad signature".to_owned())?;
    decode(payload)
}

/// Imports an audience for Telegram with nothing existing or suppressed.
pub fn import(audience: &Audience) -> ImportReport {
    let report = audience
        .import(
            &ImportOptions::new(Platform::Telegram),
            ImportContext::EMPTY,
        )
        .expect("the audience imports");
    assert!(report.is_consistent());
    report
}

/// Time the virtual clock moved since [`t0`].
pub fn slept(clock: &VirtualClock) -> Duration {
    use invite_core::Clock as _;
    (clock.now() - t0()).to_std().unwrap()
}
