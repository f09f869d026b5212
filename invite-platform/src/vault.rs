//! The Vault client: a [`SecretStore`] reading KV v2 secrets with an AppRole login — the
//! secret store of a platform deployment (embedded use reads the environment or files
//! instead).
//!
//! - **Login**: `POST {address}/v1/auth/{approle_mount}/login` with the role id and secret id
//!   gives a client token with a lease. Once two thirds of the lease have passed (on the
//!   injected [`Clock`]) the token is renewed with `POST /v1/auth/token/renew-self`; when
//!   renewal fails, or the token is not renewable, the store logs in again. A read answered
//!   403 (a revoked or expired token) logs in again and retries once per call.
//! - **Reads**: the port path `secret/invite-service/jwt_secret` means KV v2 mount `secret`
//!   (the first segment) and `GET /v1/secret/data/invite-service/jwt_secret`; the key is
//!   looked up in `data.data`.
//! - **Cache**: a secret's values are kept for [`VaultConfig::cache_ttl`]; concurrent callers
//!   share one login.
//! - **Circuit breaker**: after [`BreakerPolicy::failure_threshold`] consecutive calls that
//!   could not reach Vault, calls fail fast for the cool-off, then one trial goes through.
//!
//! Tokens, the role id, the secret id and secret values never reach logs, errors or `Debug`.

use std::collections::HashMap;
use std::env::VarError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::Clock;
use invite_core::async_trait;
use invite_core::ports::{Secret, SecretError, SecretStore};
use reqwest::{StatusCode, Url};

use crate::breaker::{BreakerPolicy, CircuitBreaker};
use crate::error::{Error, Result};
use crate::http::{ServiceClient, chain};

mod transformers;

use transformers::{AuthAnswer, Grant, KvAnswer, KvValue, error_messages};

const SERVICE: &str = "Vault";

/// Largest answer read from Vault.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Longest part of an error answer repeated in an error.
const MAX_MESSAGE_CHARS: usize = 200;

/// Paths cached before expired entries are swept out.
const CACHE_SWEEP_AT: usize = 256;

/// How to reach Vault and log in.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `VAULT_ADDR`: `http(s)://host:port` (an optional path prefix is kept).
    pub address: String,
    /// `VAULT_ROLE_ID`.
    pub role_id: Secret,
    /// `VAULT_SECRET_ID`.
    pub secret_id: Secret,
    /// Where the AppRole auth method is mounted (default `approle`).
    pub approle_mount: String,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one whole request.
    pub request_timeout: Duration,
    /// How long a secret's values are served from memory (zero: read on every call).
    pub cache_ttl: Duration,
    /// When calls stop being sent to an unreachable Vault.
    pub breaker: BreakerPolicy,
}

impl VaultConfig {
    /// Vault at `address`, logging in as `role_id` / `secret_id`; 5 s to connect, 10 s per
    /// request, values cached for 5 minutes, the default breaker.
    pub fn new(address: impl Into<String>, role_id: Secret, secret_id: Secret) -> Self {
        Self {
            address: address.into(),
            role_id,
            secret_id,
            approle_mount: "approle".to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(5 * 60),
            breaker: BreakerPolicy::default(),
        }
    }

    /// `VAULT_ADDR`, `VAULT_ROLE_ID` and `VAULT_SECRET_ID` read through `var` (the binary
    /// passes `std::env::var`; a library never reads the environment itself), with
    /// [`VaultConfig::new`]'s defaults. Fails with one error naming the first variable that is
    /// missing or malformed.
    pub fn from_vars(var: impl Fn(&str) -> Result<String, VarError>) -> Result<Self> {
        let config = |message: String| Error::Config {
            service: SERVICE,
            message,
        };
        let read = |name: &str| match var(name) {
            Ok(value) if value.trim().is_empty() => Err(config(format!("{name} is empty"))),
            Ok(value) => Ok(value.trim().to_owned()),
            Err(VarError::NotPresent) => Err(config(format!("{name} is not set"))),
            Err(VarError::NotUnicode(_)) => Err(config(format!("{name} is not valid UTF-8"))),
        };
        let address = read("VAULT_ADDR")?;
        parse_address(&address).map_err(|why| config(format!("VAULT_ADDR: {why}")))?;
        let credential = |name: &str| {
            let value = read(name)?;
            if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(config(format!(
                    "{name} holds whitespace or control characters"
                )));
            }
            Ok(Secret::new(value))
        };
        let role_id = credential("VAULT_ROLE_ID")?;
        let secret_id = credential("VAULT_SECRET_ID")?;
        Ok(Self::new(address, role_id, secret_id))
    }
}

/// Vault's address as a base URL, or why it is not one.
fn parse_address(address: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(address.trim()).map_err(|e| format!("{address:?} is not a URL: {e}"))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(format!("{url} is not a base URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{url} must have no query or fragment"));
    }
    ServiceClient::check_scheme(SERVICE, &url).map_err(|e| match e {
        Error::Config { message, .. } => message,
        other => other.to_string(),
    })?;
    Ok(url)
}

/// Requests this store has sent, by kind — for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VaultStats {
    /// HTTP requests sent (or attempted), of every kind.
    pub requests: u64,
    /// Successful AppRole logins.
    pub logins: u64,
    /// Successful token renewals.
    pub renewals: u64,
    /// KV reads sent, whatever their answer.
    pub reads: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    logins: AtomicU64,
    renewals: AtomicU64,
    reads: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The current client token and when to renew it.
struct Token {
    value: Secret,
    /// When the lease was granted or last renewed.
    granted: DateTime<Utc>,
    /// The lease; zero for a token that does not expire.
    lease: TimeDelta,
    renewable: bool,
}

impl Token {
    fn new(value: Secret, grant: &Grant, now: DateTime<Utc>) -> Self {
        Self {
            value,
            granted: now,
            lease: TimeDelta::seconds(i64::try_from(grant.lease_seconds).unwrap_or(i64::MAX)),
            renewable: grant.renewable,
        }
    }

    /// Whether two thirds of the lease have passed (or the clock went back before the grant).
    fn due(&self, now: DateTime<Utc>) -> bool {
        if self.lease.is_zero() {
            return false;
        }
        now < self.granted || now >= self.granted + self.lease * 2 / 3
    }
}

struct CachedSecret {
    fetched: DateTime<Utc>,
    values: HashMap<String, KvValue>,
}

/// A KV v2 location: the mount and the path inside it.
struct KvPath<'a> {
    mount: &'a str,
    rest: Vec<&'a str>,
}

impl<'a> KvPath<'a> {
    fn parse(path: &'a str) -> std::result::Result<Self, SecretError> {
        let invalid = |why: &str| {
            SecretError::Unavailable(format!("secret path {path:?} is not usable: {why}"))
        };
        let mut segments = path.trim_matches('/').split('/');
        let mount = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        if mount.is_empty() || rest.is_empty() {
            return Err(invalid("it must be `<mount>/<path>`"));
        }
        let all = || std::iter::once(mount).chain(rest.iter().copied());
        if all().any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(invalid("empty, `.` or `..` segment"));
        }
        if all().any(|s| s.chars().any(char::is_control)) {
            return Err(invalid("control characters"));
        }
        Ok(Self { mount, rest })
    }
}

/// Why a request to Vault did not give what was asked; the messages name no secret.
#[derive(Debug)]
enum Failure {
    /// Vault could not be reached or could not serve (connection, timeout, 5xx, 429).
    Unreachable(String),
    /// HTTP 403: the token is revoked, expired or not allowed.
    Denied(String),
    /// HTTP 404.
    Missing,
    /// Any other refusal or an unreadable answer.
    Failed(String),
}

impl Failure {
    fn into_port_error(self, path: &str, key: &str) -> SecretError {
        match self {
            Self::Missing => SecretError::NotFound {
                path: path.to_owned(),
                key: key.to_owned(),
            },
            Self::Unreachable(message) | Self::Denied(message) | Self::Failed(message) => {
                SecretError::Unavailable(message)
            }
        }
    }
}

/// Reads KV v2 secrets from Vault with an AppRole login. Share it behind an `Arc`: one
/// connection pool, one token, one cache and one circuit breaker.
pub struct VaultSecretStore {
    http: reqwest::Client,
    base: Url,
    role_id: Secret,
    secret_id: Secret,
    approle_mount: String,
    cache_ttl: TimeDelta,
    clock: Arc<dyn Clock>,
    breaker: CircuitBreaker,
    token: tokio::sync::Mutex<Option<Token>>,
    cache: Mutex<HashMap<String, CachedSecret>>,
    counters: Counters,
}

impl fmt::Debug for VaultSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSecretStore")
            .field("address", &self.base.as_str())
            .field("approle_mount", &self.approle_mount)
            .field("cache_ttl", &self.cache_ttl)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl VaultSecretStore {
    /// A store for `config`. Fails on an address that is not `http(s)://host…` (`https` needs
    /// the `rustls` feature), an empty role id, secret id or AppRole mount. Sends nothing:
    /// the first read logs in.
    pub fn new(config: VaultConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let config_error = |message: String| Error::Config {
            service: SERVICE,
            message,
        };
        let base = parse_address(&config.address)
            .map_err(|why| config_error(format!("the address: {why}")))?;
        if config.role_id.expose().trim().is_empty() {
            return Err(config_error("the role id is empty".to_owned()));
        }
        if config.secret_id.expose().trim().is_empty() {
            return Err(config_error("the secret id is empty".to_owned()));
        }
        let approle_mount = config.approle_mount.trim_matches('/').to_owned();
        if approle_mount.is_empty() {
            return Err(config_error("the AppRole mount is empty".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("invite-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            http,
            base,
            role_id: config.role_id,
            secret_id: config.secret_id,
            approle_mount,
            cache_ttl: TimeDelta::from_std(config.cache_ttl).unwrap_or(TimeDelta::MAX),
            breaker: CircuitBreaker::new(config.breaker, clock.clone()),
            clock,
            token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// Requests sent so far.
    pub fn stats(&self) -> VaultStats {
        let c = &self.counters;
        VaultStats {
            requests: c.requests.load(Ordering::Relaxed),
            logins: c.logins.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
        }
    }

    /// `{address}/v1/{segments…}`, each segment percent-encoded.
    fn url<'s>(&self, segments: impl IntoIterator<Item = &'s str>) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("a checked base URL takes a path")
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        url
    }

    /// `text` with the credentials and `token` blanked out, in case an answer repeats them.
    fn scrub(&self, text: &str, token: Option<&Secret>) -> String {
        let mut text = text.to_owned();
        let secrets = [Some(&self.role_id), Some(&self.secret_id), token];
        for secret in secrets.into_iter().flatten() {
            let value = secret.expose();
            if !value.is_empty() {
                text = text.replace(value, "***");
            }
        }
        match text.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }

    /// Sends `request` (`what` names it in errors) and returns the body of a 2xx answer.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
        token: Option<&Secret>,
    ) -> std::result::Result<Vec<u8>, Failure> {
        bump(&self.counters.requests);
        let mut response = request
            .header("X-Vault-Request", "true")
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "no answer in time".to_owned()
                } else {
                    chain(&e.without_url())
                };
                Failure::Unreachable(format!("{what}: Vault is unreachable: {why}"))
            })?;
        let status = response.status();
        let mut body = Vec::new();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES)
        {
            return Err(Failure::Failed(format!(
                "{what}: Vault's answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > MAX_ANSWER_BYTES {
                        return Err(Failure::Failed(format!(
                            "{what}: Vault's answer is larger than {MAX_ANSWER_BYTES} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Unreachable(format!(
                        "{what}: the answer broke off: {}",
                        chain(&e.without_url())
                    )));
                }
            }
        }
        if status.is_success() {
            return Ok(body);
        }
        let errors = self.scrub(&error_messages(&body), token);
        let refused = |kind: &str| {
            let mut message = format!("{what}: Vault {kind} (HTTP {})", status.as_u16());
            if !errors.is_empty() {
                message.push_str(": ");
                message.push_str(&errors);
            }
            message
        };
        Err(match status {
            StatusCode::NOT_FOUND => Failure::Missing,
            StatusCode::FORBIDDEN => Failure::Denied(refused("denied access")),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Failure::Unreachable(refused("could not serve the request"))
            }
            s if s.is_redirection() => Failure::Failed(refused("answered with a redirect")),
            _ => Failure::Failed(refused("refused the request")),
        })
    }

    /// Logs in with the AppRole credentials.
    async fn login(&self) -> std::result::Result<Token, Failure> {
        let what = "AppRole login";
        let url = self.url(["auth", self.approle_mount.as_str(), "login"]);
        let body = serde_json::json!({
            "role_id": self.role_id.expose(),
            "secret_id": self.secret_id.expose(),
        });
        let answer = match self.send(self.http.post(url).json(&body), what, None).await {
            Ok(answer) => answer,
            Err(Failure::Missing) => {
                return Err(Failure::Failed(format!(
                    "{what}: Vault has no AppRole auth method at auth/{} (HTTP 404)",
                    self.approle_mount
                )));
            }
            Err(Failure::Denied(message)) => return Err(Failure::Failed(message)),
            Err(other) => return Err(other),
        };
        let grant = serde_json::from_slice::<AuthAnswer>(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| a.grant().map_err(str::to_owned))
            .map_err(|why| Failure::Failed(format!("{what}: unreadable answer: {why}")))?;
        if grant.token.expose().is_empty() {
            return Err(Failure::Failed(format!(
                "{what}: the answer holds no client token"
            )));
        }
        bump(&self.counters.logins);
        tracing::info!(
            lease_seconds = grant.lease_seconds,
            renewable = grant.renewable,
            "logged in to Vault with AppRole"
        );
        Ok(Token::new(grant.token.clone(), &grant, self.clock.now()))
    }

    /// Renews `token` with `renew-self`.
    async fn renew(&self, token: &Token) -> std::result::Result<Token, Failure> {
        let what = "token renewal";
        let url = self.url(["auth", "token", "renew-self"]);
        let request = self
            .http
            .post(url)
            .header("X-Vault-Token", token.value.expose())
            .json(&serde_json::json!({}));
        let answer = self.send(request, what, Some(&token.value)).await?;
        let grant = serde_json::from_slice::<AuthAnswer>(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| a.grant().map_err(str::to_owned))
            .map_err(|why| Failure::Failed(format!("{what}: unreadable answer: {why}")))?;
        bump(&self.counters.renewals);
        tracing::debug!(
            lease_seconds = grant.lease_seconds,
            "renewed the Vault token"
        );
        Ok(Token::new(token.value.clone(), &grant, self.clock.now()))
    }

    /// The token to use now, and whether it was logged in for this call. Renews or logs in
    /// when two thirds of the lease have passed; concurrent callers wait for one login.
    async fn token(&self) -> std::result::Result<(Secret, bool), Failure> {
        let mut current = self.token.lock().await;
        if let Some(token) = current.as_ref() {
            if !token.due(self.clock.now()) {
                return Ok((token.value.clone(), false));
            }
            if token.renewable {
                match self.renew(token).await {
                    Ok(renewed) => {
                        let value = renewed.value.clone();
                        *current = Some(renewed);
                        return Ok((value, false));
                    }
                    Err(failure) => {
                        tracing::info!(?failure, "Vault token renewal failed, logging in again");
                    }
                }
            }
            *current = None;
        }
        let token = self.login().await?;
        let value = token.value.clone();
        *current = Some(token);
        Ok((value, true))
    }

    /// Drops `token` if it is still the current one, so that the next call logs in.
    async fn forget(&self, token: &Secret) {
        let mut current = self.token.lock().await;
        if current.as_ref().is_some_and(|t| &t.value == token) {
            *current = None;
        }
    }

    /// Reads the secret at `location`; a 403 logs in again and retries once.
    async fn read(
        &self,
        location: &KvPath<'_>,
        path: &str,
    ) -> std::result::Result<HashMap<String, KvValue>, Failure> {
        let what = format!("reading {path}");
        let url = self.url(
            [location.mount, "data"]
                .into_iter()
                .chain(location.rest.iter().copied()),
        );
        let mut logged_in = false;
        loop {
            let (token, fresh) = self.token().await?;
            logged_in |= fresh;
            bump(&self.counters.reads);
            let request = self
                .http
                .get(url.clone())
                .header("X-Vault-Token", token.expose());
            match self.send(request, &what, Some(&token)).await {
                Ok(answer) => {
                    let answer = serde_json::from_slice::<KvAnswer>(&answer)
                        .map_err(|e| Failure::Failed(format!("{what}: unreadable answer: {e}")))?;
                    return answer.values().ok_or(Failure::Missing);
                }
                Err(Failure::Denied(_)) if !logged_in => {
                    tracing::info!("Vault refused the token (HTTP 403), logging in again");
                    self.forget(&token).await;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    fn cached(&self, path: &str, now: DateTime<Utc>) -> Option<HashMap<String, KvValue>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(path)?;
        let fresh = entry.fetched <= now && now < entry.fetched + self.cache_ttl;
        fresh.then(|| entry.values.clone())
    }

    fn remember(&self, path: &str, values: &HashMap<String, KvValue>, now: DateTime<Utc>) {
        if self.cache_ttl <= TimeDelta::zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_SWEEP_AT {
            let ttl = self.cache_ttl;
            cache.retain(|_, e| e.fetched <= now && now < e.fetched + ttl);
        }
        cache.insert(
            path.to_owned(),
            CachedSecret {
                fetched: now,
                values: values.clone(),
            },
        );
    }

    /// The values of the secret at `path`, from the cache or from Vault through the breaker.
    async fn values(&self, path: &str) -> std::result::Result<HashMap<String, KvValue>, Failure> {
        let now = self.clock.now();
        if let Some(values) = self.cached(path, now) {
            return Ok(values);
        }
        let location = KvPath::parse(path).map_err(|e| match e {
            SecretError::Unavailable(message) => Failure::Failed(message),
            SecretError::NotFound { .. } => Failure::Missing,
        })?;
        let permit = self.breaker.permit().map_err(|open| {
            Failure::Unreachable(match open.until {
                Some(until) => format!(
                    "Vault calls are suspended until {until} after repeated failures to reach it"
                ),
                None => "Vault calls are suspended while a trial call runs".to_owned(),
            })
        })?;
        let result = self.read(&location, path).await;
        match &result {
            Err(Failure::Unreachable(_)) => permit.failed(),
            _ => permit.reached(),
        }
        let values = result?;
        self.remember(path, &values, now);
        Ok(values)
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    #[tracing::instrument(skip_all, fields(secret.path = %path, secret.key = %key))]
    async fn get(&self, path: &str, key: &str) -> std::result::Result<Secret, SecretError> {
        let values = self.values(path).await.map_err(|failure| {
            if !matches!(failure, Failure::Missing) {
                tracing::warn!(?failure, "reading secret {path} from Vault failed");
            }
            failure.into_port_error(path, key)
        })?;
        match values.get(key) {
            Some(KvValue::Text(value)) => Ok(value.clone()),
            Some(KvValue::NotText(kind)) => Err(SecretError::Unavailable(format!(
                "secret {path}#{key} in Vault is {kind}, not a string"
            ))),
            None => Err(SecretError::NotFound {
                path: path.to_owned(),
                key: key.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use invite_core::VirtualClock;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned().ok_or(VarError::NotPresent)
    }

    fn message(err: Error) -> String {
        err.to_string()
    }

    #[test]
    fn config_from_variables() {
        let config = VaultConfig::from_vars(vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role-1234"),
            ("VAULT_SECRET_ID", "sid-5678"),
        ]))
        .unwrap();
        assert_eq!(config.address, "http://vault:8200");
        assert_eq!(config.role_id.expose(), "role-1234");
        let shown = format!("{config:?}");
        assert!(!shown.contains("role-1234") && !shown.contains("sid-5678"));
    }

    #[test]
    fn config_errors_name_the_variable() {
        let missing = VaultConfig::from_vars(vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role-1234"),
        ]))
        .unwrap_err();
        assert!(message(missing).contains("VAULT_SECRET_ID is not set"));
        let bad_addr = VaultConfig::from_vars(vars(&[("VAULT_ADDR", "vault:8200")])).unwrap_err();
        assert!(message(bad_addr).contains("VAULT_ADDR"));
        let ftp = VaultConfig::from_vars(vars(&[("VAULT_ADDR", "ftp://vault")])).unwrap_err();
        assert!(message(ftp).contains("VAULT_ADDR"));
        let spaced = VaultConfig::from_vars(vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role 1234"),
            ("VAULT_SECRET_ID", "sid"),
        ]))
        .unwrap_err();
        let text = message(spaced);
        assert!(text.contains("VAULT_ROLE_ID") && !text.contains("role 1234"));
        let empty = VaultConfig::from_vars(vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "r"),
            ("VAULT_SECRET_ID", "  "),
        ]))
        .unwrap_err();
        assert!(message(empty).contains("VAULT_SECRET_ID is empty"));
    }

    #[test]
    fn kv_paths() {
        let p = KvPath::parse("secret/invite-service/jwt_secret").unwrap();
        assert_eq!(
            (p.mount, p.rest.as_slice()),
            ("secret", &["invite-service", "jwt_secret"][..])
        );
        assert!(KvPath::parse("secret").is_err());
        assert!(KvPath::parse("secret//x").is_err());
        assert!(KvPath::parse("secret/../sys").is_err());
        assert!(KvPath::parse("").is_err());
    }

    #[test]
    fn urls_encode_each_segment() {
        let clock = Arc::new(VirtualClock::manual(DateTime::UNIX_EPOCH));
        let config = VaultConfig::new("http://vault:8200/", Secret::new("r"), Secret::new("s"));
        let store = VaultSecretStore::new(config, clock).unwrap();
        let url = store.url(["secret", "data", "a b", "c?d"]);
        assert_eq!(url.as_str(), "http://vault:8200/v1/secret/data/a%20b/c%3Fd");
    }

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_lease() {
        let t0 = DateTime::UNIX_EPOCH;
        let grant = Grant {
            token: Secret::new("t"),
            lease_seconds: 3600,
            renewable: true,
        };
        let token = Token::new(Secret::new("t"), &grant, t0);
        assert!(!token.due(t0 + TimeDelta::minutes(39)));
        assert!(token.due(t0 + TimeDelta::minutes(40)));
        assert!(token.due(t0 - TimeDelta::seconds(1)));
        let forever = Grant {
            lease_seconds: 0,
            ..grant
        };
        let root = Token::new(Secret::new("t"), &forever, t0);
        assert!(!root.due(t0 + TimeDelta::days(365)));
    }

    #[test]
    fn debug_and_errors_hide_credentials() {
        let clock = Arc::new(VirtualClock::manual(DateTime::UNIX_EPOCH));
        let config = VaultConfig::new(
            "http://vault:8200",
            Secret::new("role-abc"),
            Secret::new("sid-xyz"),
        );
        let store = VaultSecretStore::new(config, clock).unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("role-abc") && !shown.contains("sid-xyz"));
        let token = Secret::new("hvs.tok");
        let scrubbed = store.scrub("bad role-abc / sid-xyz / hvs.tok", Some(&token));
        assert_eq!(scrubbed, "bad *** / *** / ***");
    }
}
