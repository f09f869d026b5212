//! The JWT secret read from a real Vault-compatible server (`VAULT_TEST_ADDR`; CI starts a dev
//! OpenBao server): tokens signed with it are accepted, tokens signed with anything else are
//! not, and a server that cannot read it does not start.

use chrono::{TimeDelta, Utc};
use invite_core::domain::UserId;
use invite_core::ports::Secret;
use invite_http::auth::issue_token;
use invite_http::runtime::{Runtime, RuntimeOptions, secret_source};
use invite_platform::test_util::{VaultAdmin, random_suffix};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, Engine, config, server_with, token};

/// Where the service reads its JWT secret (SPEC §9), relative to the `secret/` mount.
const JWT_PATH: &str = "invite-service/jwt_secret";

#[tokio::test]
async fn the_jwt_secret_comes_from_vault() {
    let Some(admin) = VaultAdmin::connect().await else {
        return;
    };
    let role = admin.role_for(&[JWT_PATH], json!({})).await;
    let secret = format!("jwt-secret-from-vault-{}", random_suffix());
    admin.put(JWT_PATH, json!({ "secret_key": secret })).await;
    let mut c = config();
    c.vault = Some(role.config(&admin.addr));
    let s = server_with(Db::Memory, c, Engine::Virtual).await.unwrap();

    let signed = |secret: &str| {
        issue_token(
            &Secret::new(secret),
            UserId::new(1),
            Utc::now(),
            TimeDelta::hours(1),
            None,
            None,
        )
    };
    let list = |token: String| s.client.get(s.api("/tasks")).bearer_auth(token).send();
    assert_eq!(
        list(signed(&secret)).await.unwrap().status(),
        StatusCode::OK
    );
    // The test suite's own secret is not the one in Vault.
    assert_eq!(
        list(token(1)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let health: serde_json::Value = s
        .client
        .get(s.api("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(health.to_string().contains("Vault"), "{health}");
    assert!(!health.to_string().contains(&secret), "{health}");

    // A role that may not read the secret: the start fails, naming Vault, never the ids.
    let denied = admin.role(json!({})).await;
    let mut c = config();
    c.vault = Some(denied.config(&admin.addr));
    let clock = std::sync::Arc::new(invite_core::SystemClock);
    let secrets = secret_source(&c, clock.clone()).unwrap();
    let err = Runtime::build(
        &c,
        RuntimeOptions {
            clock,
            secrets: secrets.store,
            secret_generated: false,
            metrics: None,
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("VAULT_ADDR"), "{err}");
    assert!(
        !err.contains(&denied.secret_id) && !err.contains(&denied.role_id),
        "{err}"
    );
}
