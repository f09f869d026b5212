//! Test fixtures for this and other crates (feature `test-util`): a real Vault-compatible
//! server driven with its root token, and AppRole roles made per test.

use std::time::Duration;

use invite_core::ports::Secret;
use serde_json::{Value, json};

use crate::VaultConfig;

/// Whether a missing service fails the run (CI) instead of skipping.
pub fn services_required() -> bool {
    std::env::var("INVITE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A name part no other test (or test process) uses.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The test server (`VAULT_TEST_ADDR`, default `http://127.0.0.1:8201`), driven with its root
/// token (`VAULT_TEST_TOKEN`, default `root`).
#[derive(Clone)]
pub struct VaultAdmin {
    http: reqwest::Client,
    /// The server's address.
    pub addr: String,
    token: String,
}

/// One test's AppRole role, allowed to read `secret/<prefix>/*`.
pub struct VaultRole {
    /// The role's (and its policy's) name.
    pub name: String,
    /// The KV path prefix the role may read (`secret/<prefix>/*`).
    pub prefix: String,
    /// The role id.
    pub role_id: String,
    /// A secret id of the role.
    pub secret_id: String,
}

impl std::fmt::Debug for VaultAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultAdmin")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for VaultRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultRole")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl VaultAdmin {
    /// The server of `VAULT_TEST_ADDR`; `None` (after a skip line) when it is unreachable and
    /// services are not required.
    pub async fn connect() -> Option<Self> {
        let addr =
            std::env::var("VAULT_TEST_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8201".to_owned());
        let token = std::env::var("VAULT_TEST_TOKEN").unwrap_or_else(|_| "root".to_owned());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let health = http.get(format!("{addr}/v1/sys/health")).send().await;
        match health {
            Ok(answer) if answer.status().is_success() => Some(Self { http, addr, token }),
            other => {
                let why = match other {
                    Ok(answer) => format!("HTTP {}", answer.status()),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !services_required(),
                    "the Vault server at VAULT_TEST_ADDR ({addr}) is unreachable and \
                     INVITE_REQUIRE_SERVICES=1: {why}"
                );
                println!("SKIP vault: {addr} (VAULT_TEST_ADDR) is unreachable ({why})");
                None
            }
        }
    }

    /// Sends `method /v1/{path}` with `body`; the status and the JSON answer (`null` if none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the Vault server answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`call`](Self::call), failing the test on anything but 2xx.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status} {answer}"
        );
        answer
    }

    /// Enables AppRole at `auth/approle` unless it is there already.
    pub async fn enable_approle(&self) {
        let (status, answer) = self
            .call("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
            .await;
        let in_use = answer.to_string().contains("already in use");
        assert!(
            (200..300).contains(&status) || in_use,
            "enabling AppRole: HTTP {status} {answer}"
        );
    }

    /// A policy and a role (extra role parameters in `params`) reading `secret/<prefix>/*`.
    pub async fn role(&self, params: Value) -> VaultRole {
        self.role_for(&[], params).await
    }

    /// Like [`role`](Self::role), also allowed to read the KV secrets at `paths` (relative to
    /// the `secret/` mount, such as `invite-service/jwt_secret`).
    pub async fn role_for(&self, paths: &[&str], params: Value) -> VaultRole {
        self.enable_approle().await;
        let suffix = random_suffix();
        let name = format!("invite-test-{suffix}");
        let prefix = format!("invite-test/{suffix}");
        let mut policy = format!("path \"secret/data/{prefix}/*\" {{ capabilities = [\"read\"] }}");
        for path in paths {
            policy.push_str(&format!(
                "\npath \"secret/data/{path}\" {{ capabilities = [\"read\"] }}"
            ));
        }
        self.ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": policy })),
        )
        .await;
        let mut role = json!({
            "token_policies": [name],
            "token_ttl": "1h",
            "token_max_ttl": "4h",
            "secret_id_ttl": "1h",
        });
        role.as_object_mut()
            .unwrap()
            .extend(params.as_object().unwrap().clone());
        self.ok("POST", &format!("auth/approle/role/{name}"), Some(role))
            .await;
        let role_id = self
            .ok("GET", &format!("auth/approle/role/{name}/role-id"), None)
            .await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = self
            .ok(
                "POST",
                &format!("auth/approle/role/{name}/secret-id"),
                Some(json!({})),
            )
            .await["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
        VaultRole {
            name,
            prefix,
            role_id,
            secret_id,
        }
    }

    /// Writes a new version of `secret/<path>`.
    pub async fn put(&self, path: &str, data: Value) {
        self.ok(
            "POST",
            &format!("secret/data/{path}"),
            Some(json!({ "data": data })),
        )
        .await;
    }
}

impl VaultRole {
    /// A store configuration logging in as this role, with short timeouts.
    pub fn config(&self, addr: &str) -> VaultConfig {
        let mut config = VaultConfig::new(
            addr,
            Secret::new(self.role_id.clone()),
            Secret::new(self.secret_id.clone()),
        );
        config.connect_timeout = Duration::from_secs(2);
        config.request_timeout = Duration::from_secs(10);
        config.cache_ttl = Duration::from_secs(60);
        config
    }

    /// The port path of `name` under this role's prefix.
    pub fn path(&self, name: &str) -> String {
        format!("secret/{}/{name}", self.prefix)
    }
}
