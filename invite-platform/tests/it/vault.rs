//! The Vault secret store against a real Vault-compatible server (`VAULT_TEST_ADDR`, root
//! token `VAULT_TEST_TOKEN`; CI starts a dev OpenBao server). Each test makes its own policy,
//! AppRole role and secrets under a random prefix, so tests run in parallel and again on the
//! same server. The circuit breaker test needs no server.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::VirtualClock;
use invite_core::ports::{Secret, SecretError, SecretStore};
use invite_platform::{BreakerPolicy, VaultConfig, VaultSecretStore, VaultStats};
use serde_json::{Value, json};

use invite_platform::test_util::{VaultAdmin as Admin, VaultRole as Role, random_suffix};

use crate::helpers::t0;

/// What the tests ask of the server beyond the fixture: the tokens a role logged in to.
trait Tokens {
    async fn tokens_of(&self, role: &Role) -> Vec<Value>;
    async fn revoke_tokens_of(&self, role: &Role) -> usize;
}

impl Tokens for Admin {
    /// The accessors and lookups of the tokens `role` has logged in to.
    async fn tokens_of(&self, role: &Role) -> Vec<Value> {
        let (status, list) = self
            .call("GET", "auth/token/accessors?list=true", None)
            .await;
        assert_eq!(status, 200, "listing token accessors: {list}");
        let mut found = Vec::new();
        for accessor in list["data"]["keys"].as_array().unwrap() {
            let (status, lookup) = self
                .call(
                    "POST",
                    "auth/token/lookup-accessor",
                    Some(json!({ "accessor": accessor })),
                )
                .await;
            if status == 200 && lookup["data"]["meta"]["role_name"] == role.name.as_str() {
                found.push(lookup["data"].clone());
            }
        }
        found
    }

    /// Revokes every token `role` has logged in to; how many.
    async fn revoke_tokens_of(&self, role: &Role) -> usize {
        let tokens = self.tokens_of(role).await;
        for token in &tokens {
            self.ok(
                "POST",
                "auth/token/revoke-accessor",
                Some(json!({ "accessor": token["accessor"] })),
            )
            .await;
        }
        tokens.len()
    }
}

/// A store of `config` on a manual virtual clock at [`t0`].
fn store_of(config: VaultConfig) -> (VaultSecretStore, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::manual(t0()));
    let store = VaultSecretStore::new(config, clock.clone()).expect("valid configuration");
    (store, clock)
}

/// A server, a role with the secret `jwt_secret` (`secret_key: "s3cret-<prefix>"`) and a
/// store logging in as that role.
async fn setup(role_params: Value) -> Option<(Admin, Role, VaultSecretStore, Arc<VirtualClock>)> {
    let admin = Admin::connect().await?;
    let role = admin.role(role_params).await;
    admin
        .put(
            &format!("{}/jwt_secret", role.prefix),
            json!({ "secret_key": format!("s3cret-{}", role.prefix), "count": 3 }),
        )
        .await;
    let (store, clock) = store_of(role.config(&admin.addr));
    Some((admin, role, store, clock))
}

async fn value(store: &VaultSecretStore, path: &str, key: &str) -> String {
    store
        .get(path, key)
        .await
        .unwrap_or_else(|e| panic!("reading {path}#{key}: {e}"))
        .expose()
        .to_owned()
}

#[tokio::test]
async fn reads_a_secret() {
    let Some((_admin, role, store, _)) = setup(json!({})).await else {
        return;
    };
    let path = role.path("jwt_secret");
    assert_eq!(
        value(&store, &path, "secret_key").await,
        format!("s3cret-{}", role.prefix)
    );
    let stats = store.stats();
    assert_eq!((stats.logins, stats.reads, stats.renewals), (1, 1, 0));
}

#[tokio::test]
async fn missing_path_or_key_is_not_found_and_other_values_are_refused() {
    let Some((_admin, role, store, _)) = setup(json!({})).await else {
        return;
    };
    let missing = role.path("nothing-here");
    assert_eq!(
        store.get(&missing, "secret_key").await,
        Err(SecretError::NotFound {
            path: missing.clone(),
            key: "secret_key".to_owned()
        })
    );
    let path = role.path("jwt_secret");
    assert!(matches!(
        store.get(&path, "no_such_key").await,
        Err(SecretError::NotFound { .. })
    ));
    let Err(SecretError::Unavailable(message)) = store.get(&path, "count").await else {
        panic!("a number is not a secret string");
    };
    assert!(
        message.contains("count") && message.contains("not a string"),
        "{message}"
    );
}

#[tokio::test]
async fn a_path_the_policy_denies_is_unavailable_after_one_login() {
    let Some((admin, role, store, _)) = setup(json!({})).await else {
        return;
    };
    admin
        .put(&format!("elsewhere/{}", role.name), json!({"k": "v"}))
        .await;
    let err = store
        .get(&format!("secret/elsewhere/{}", role.name), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SecretError::Unavailable(m) if m.contains("403")),
        "{err}"
    );
    assert_eq!(store.stats().logins, 1);
}

#[tokio::test]
async fn a_wrong_secret_id_is_unavailable_and_named_nowhere() {
    let Some(admin) = Admin::connect().await else {
        return;
    };
    let role = admin.role(json!({})).await;
    let wrong = format!("wrong-{}", random_suffix());
    let mut config = role.config(&admin.addr);
    config.secret_id = Secret::new(wrong.clone());
    let (store, _) = store_of(config);
    let err = store
        .get(&role.path("jwt_secret"), "secret_key")
        .await
        .unwrap_err();
    let SecretError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("login"), "{message}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{store:?}")] {
        assert!(!shown.contains(&wrong), "the secret id leaked: {shown}");
        assert!(
            !shown.contains(&role.role_id),
            "the role id leaked: {shown}"
        );
    }
    assert_eq!(store.stats().logins, 0);
}

#[tokio::test]
async fn a_revoked_token_logs_in_again() {
    let Some((admin, role, store, clock)) = setup(json!({})).await else {
        return;
    };
    let path = role.path("jwt_secret");
    let expected = format!("s3cret-{}", role.prefix);
    assert_eq!(value(&store, &path, "secret_key").await, expected);
    assert_eq!(admin.revoke_tokens_of(&role).await, 1);

    // Past the cache, well before renewal: the read meets the revoked token (403).
    clock.advance(TimeDelta::minutes(2));
    assert_eq!(value(&store, &path, "secret_key").await, expected);
    let stats = store.stats();
    assert_eq!((stats.logins, stats.reads, stats.renewals), (2, 3, 0));

    // Revoked again, and now due for renewal: the renewal fails and the store logs in.
    assert_eq!(admin.revoke_tokens_of(&role).await, 1);
    clock.advance(TimeDelta::minutes(45));
    assert_eq!(value(&store, &path, "secret_key").await, expected);
    let stats = store.stats();
    assert_eq!((stats.logins, stats.reads, stats.renewals), (3, 4, 0));
}

#[tokio::test]
async fn the_token_is_renewed_after_two_thirds_of_its_lease() {
    let Some((admin, role, store, clock)) = setup(json!({})).await else {
        return;
    };
    let path = role.path("jwt_secret");
    value(&store, &path, "secret_key").await;
    let tokens = admin.tokens_of(&role).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["last_renewal_time"].as_i64().unwrap_or(0), 0);

    // The lease is one hour: at 39 minutes nothing is renewed, at 41 the next read renews.
    clock.advance(TimeDelta::minutes(39));
    value(&store, &path, "secret_key").await;
    assert_eq!(store.stats().renewals, 0);
    clock.advance(TimeDelta::minutes(2));
    value(&store, &path, "secret_key").await;
    let stats = store.stats();
    assert_eq!((stats.logins, stats.renewals), (1, 1));
    let tokens = admin.tokens_of(&role).await;
    assert_eq!(tokens.len(), 1, "still the same token");
    assert!(
        tokens[0]["last_renewal_time"].as_i64().unwrap_or(0) > 0,
        "the server saw the renewal: {}",
        tokens[0]
    );

    // Renewed at 41 minutes: the next renewal is due 40 minutes later, not before.
    clock.advance(TimeDelta::minutes(39));
    value(&store, &path, "secret_key").await;
    assert_eq!(store.stats().renewals, 1);
    clock.advance(TimeDelta::minutes(2));
    value(&store, &path, "secret_key").await;
    assert_eq!(store.stats().renewals, 2);
}

#[tokio::test]
async fn a_token_that_cannot_be_renewed_is_replaced_near_expiry() {
    let Some((_admin, role, store, clock)) = setup(json!({"token_type": "batch"})).await else {
        return;
    };
    let path = role.path("jwt_secret");
    value(&store, &path, "secret_key").await;
    clock.advance(TimeDelta::minutes(41));
    value(&store, &path, "secret_key").await;
    let stats = store.stats();
    assert_eq!((stats.logins, stats.renewals), (2, 0));
}

#[tokio::test]
async fn the_cache_serves_until_its_ttl_passes() {
    let Some((admin, role, store, clock)) = setup(json!({})).await else {
        return;
    };
    let path = role.path("jwt_secret");
    let first = format!("s3cret-{}", role.prefix);
    assert_eq!(value(&store, &path, "secret_key").await, first);
    let after_first = store.stats();

    admin
        .put(
            &format!("{}/jwt_secret", role.prefix),
            json!({"secret_key": "rotated"}),
        )
        .await;
    clock.advance(TimeDelta::seconds(59));
    assert_eq!(value(&store, &path, "secret_key").await, first);
    assert_eq!(store.stats(), after_first, "served without a request");

    clock.advance(TimeDelta::seconds(1));
    assert_eq!(value(&store, &path, "secret_key").await, "rotated");
    assert_eq!(store.stats().reads, after_first.reads + 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_login() {
    let Some((admin, role, store, _)) = setup(json!({})).await else {
        return;
    };
    for i in 0..6 {
        admin
            .put(
                &format!("{}/s{i}", role.prefix),
                json!({"v": format!("value {i}")}),
            )
            .await;
    }
    let store = Arc::new(store);
    let reads: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let path = role.path(&format!("s{i}"));
            tokio::spawn(async move { store.get(&path, "v").await })
        })
        .collect();
    for (i, read) in reads.into_iter().enumerate() {
        assert_eq!(read.await.unwrap().unwrap().expose(), format!("value {i}"));
    }
    let stats = store.stats();
    assert_eq!((stats.logins, stats.reads), (1, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_lets_a_trial_through_after_the_cool_off() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = VaultConfig::new(
        format!("http://127.0.0.1:{port}"),
        Secret::new("role"),
        Secret::new("secret"),
    );
    config.breaker = BreakerPolicy {
        failure_threshold: 3,
        cool_off: Duration::from_secs(30),
    };
    let (store, clock) = store_of(config);
    let read = || store.get("secret/invite-service/jwt_secret", "secret_key");
    let requests = |s: VaultStats| s.requests;

    for n in 1..=3 {
        let err = read().await.unwrap_err();
        assert!(
            matches!(&err, SecretError::Unavailable(m) if m.contains("unreachable")),
            "{err}"
        );
        assert_eq!(requests(store.stats()), n);
    }
    let err = read().await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Unavailable(m) if m.contains("suspended")),
        "{err}"
    );
    assert_eq!(requests(store.stats()), 3, "failed fast, nothing sent");

    clock.advance(TimeDelta::seconds(29));
    assert!(read().await.is_err());
    assert_eq!(requests(store.stats()), 3);

    // The cool-off is over: one trial goes out; it fails, so the circuit opens again.
    clock.advance(TimeDelta::seconds(1));
    let err = read().await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Unavailable(m) if m.contains("unreachable")),
        "{err}"
    );
    assert_eq!(requests(store.stats()), 4);
    assert!(read().await.is_err());
    assert_eq!(requests(store.stats()), 4);
}
