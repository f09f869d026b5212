//! The platform's Account Manager over HTTP: [`HttpAccountManager`], the `AccountManager` of a
//! platform deployment, speaking the contract of `docs/account-manager.md` (bodies in
//! [`wire`]). With the `reference-server` feature, `server` serves that contract over any
//! `AccountManager` (the embedded one, for a platform without its own yet).
//!
//! Every request carries the service token. `allocate` and `check-rate-limit` change state
//! with no key to recognise a repeat, so they are sent once; `release` and `handle-error`
//! carry an `Idempotency-Key` (one per call, the same on each retry) and are retried like the
//! state read. All go through one circuit breaker: while the manager cannot be reached every
//! call fails at once with [`AccountManagerError::Unavailable`], so the engine takes no action
//! without a check.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use invite_core::Clock;
use invite_core::async_trait;
use invite_core::domain::AccountId;
use invite_core::ports::{
    AccountManager, AccountManagerError, AccountState, Allocation, AllocationRequest, ErrorReport,
    RateDecision, RateLimitCheck, UsageStats,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::ServiceAuth;
use crate::error::{Error, Result};
use crate::http::{HttpOptions, Request, RetryPolicy, ServiceClient};

#[cfg(feature = "reference-server")]
pub mod server;
pub mod wire;

use wire::{
    AllocateAnswer, AllocateBody, CheckAnswer, CheckBody, ErrorBody, ReleaseBody, StatesAnswer,
    StatesBody,
};

const SERVICE: &str = "Account Manager";

/// How to reach the Account Manager.
#[derive(Debug, Clone)]
pub struct AccountManagerConfig {
    /// `ACCOUNT_MANAGER_URL`: scheme, host, port and an optional path prefix.
    pub base_url: String,
    /// The service token's identity and secret.
    pub auth: ServiceAuth,
    /// Timeouts, retries (of the idempotent calls only) and the circuit breaker.
    pub http: HttpOptions,
}

impl AccountManagerConfig {
    /// The manager at `base_url` with [`AccountManagerConfig::default_http`].
    pub fn new(base_url: impl Into<String>, auth: ServiceAuth) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            http: Self::default_http(),
        }
    }

    /// 2 s to connect, 5 s per answer (the calls are on every action's path), answers up to
    /// 1 MiB, the default retries and breaker.
    pub fn default_http() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_response_bytes: 1024 * 1024,
            breaker: crate::BreakerPolicy::default(),
        }
    }
}

/// The client. Cheap to share behind an `Arc`: one connection pool, one token, one breaker.
#[derive(Debug)]
pub struct HttpAccountManager {
    client: ServiceClient,
    base: Url,
    keys: Mutex<StdRng>,
}

impl HttpAccountManager {
    /// A client for `config`. Fails on a base URL that is not `http(s)://host…`, an empty
    /// identity or secret, or `https` without the `rustls` feature.
    pub fn new(config: AccountManagerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let base = crate::http::base_url(SERVICE, &config.base_url)?;
        Ok(Self {
            client: ServiceClient::new(SERVICE, config.auth, config.http, clock)?,
            base,
            keys: Mutex::new(StdRng::from_os_rng()),
        })
    }

    /// The URL of one call.
    pub fn url(&self, path: [&str; 3]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    /// A fresh idempotency key: 128 random bits in hex.
    fn key(&self) -> String {
        let bits: u128 = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random();
        format!("{bits:032x}")
    }

    /// POSTs `body` to `path` and reads the answer (`None` for an empty one).
    async fn post<B: Serialize, A: DeserializeOwned>(
        &self,
        path: [&str; 3],
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<Option<A>> {
        let url = self.url(path);
        let json = serde_json::to_vec(body).map_err(|e| Error::InvalidRequest {
            service: SERVICE,
            message: e.to_string(),
        })?;
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| (wire::IDEMPOTENCY_KEY, key))
            .into_iter()
            .collect();
        let request = Request {
            url: &url,
            json: Some(&json),
            headers: &headers,
        };
        let what = path.last().copied().unwrap_or_default();
        let retry = idempotency_key.is_some() || path == wire::STATES_PATH;
        let answer = self.client.call(&request, retry, what).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&answer)
            .map(Some)
            .map_err(|e| Error::Malformed {
                service: SERVICE,
                message: format!("{what}: {e}"),
            })
    }

    /// Like [`Self::post`] for a call that must answer with a body.
    async fn post_for<B: Serialize, A: DeserializeOwned>(
        &self,
        path: [&str; 3],
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<A> {
        self.post(path, body, idempotency_key)
            .await?
            .ok_or_else(|| Error::Malformed {
                service: SERVICE,
                message: format!("{}: an empty answer", path[2]),
            })
    }
}

/// The port's view of a failed call: what may pass later (unreachable, 5xx, an open circuit)
/// and answers that cannot be read are `Unavailable` — the engine steps back and tries again;
/// a refusal (401/403, another 4xx, a bad configuration) is `Rejected`.
fn port_error(err: Error) -> AccountManagerError {
    match err {
        Error::Status { .. }
        | Error::Timeout { .. }
        | Error::Connect { .. }
        | Error::CircuitOpen { .. }
        | Error::Malformed { .. }
        | Error::TooLarge { .. } => AccountManagerError::Unavailable(err.to_string()),
        Error::Config { .. }
        | Error::InvalidRequest { .. }
        | Error::NotFound { .. }
        | Error::Unauthorized { .. }
        | Error::Rejected { .. }
        | Error::TooManyRecords { .. } => AccountManagerError::Rejected(err.to_string()),
    }
}

#[async_trait]
impl AccountManager for HttpAccountManager {
    async fn allocate_account(
        &self,
        request: &AllocationRequest,
    ) -> Result<Allocation, AccountManagerError> {
        // No candidate: nothing to grant, as the port says — the contract's calls carry 1 to
        // 1000, so none is sent.
        if request.candidates.is_empty() {
            return Ok(Allocation::Unavailable { retry_at: None });
        }
        let answer: AllocateAnswer = self
            .post_for(wire::ALLOCATE_PATH, &AllocateBody::from(request), None)
            .await
            .map_err(port_error)?;
        if let AllocateAnswer::Granted { account_id } = &answer
            && !request.candidates.contains(account_id)
        {
            return Err(AccountManagerError::Unavailable(format!(
                "the {SERVICE} granted {account_id}, which is not one of the candidates"
            )));
        }
        Ok(answer.into())
    }

    async fn check_rate_limit(
        &self,
        check: &RateLimitCheck,
    ) -> Result<RateDecision, AccountManagerError> {
        let answer: CheckAnswer = self
            .post_for(wire::CHECK_PATH, &CheckBody::from(check), None)
            .await
            .map_err(port_error)?;
        Ok(answer.into())
    }

    async fn release_account(
        &self,
        account: &AccountId,
        usage: &UsageStats,
    ) -> Result<(), AccountManagerError> {
        let key = self.key();
        self.post::<_, serde_json::Value>(
            wire::RELEASE_PATH,
            &ReleaseBody::new(account, usage),
            Some(&key),
        )
        .await
        .map_err(port_error)?;
        Ok(())
    }

    async fn handle_error(
        &self,
        account: &AccountId,
        report: &ErrorReport,
    ) -> Result<AccountState, AccountManagerError> {
        let key = self.key();
        self.post_for(
            wire::HANDLE_ERROR_PATH,
            &ErrorBody::new(account, report),
            Some(&key),
        )
        .await
        .map_err(port_error)
    }

    async fn account_state(
        &self,
        account: &AccountId,
    ) -> Result<AccountState, AccountManagerError> {
        let mut states = self.account_states(std::slice::from_ref(account)).await?;
        states.pop().ok_or_else(|| {
            AccountManagerError::Unavailable(format!("the {SERVICE} answered no state"))
        })
    }

    async fn account_states(
        &self,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountState>, AccountManagerError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(accounts.len());
        for chunk in accounts.chunks(wire::MAX_ACCOUNTS_PER_CALL) {
            let body = StatesBody {
                account_ids: chunk.to_vec(),
            };
            let answer: StatesAnswer = self
                .post_for(wire::STATES_PATH, &body, None)
                .await
                .map_err(port_error)?;
            if answer.states.len() != chunk.len() {
                return Err(AccountManagerError::Unavailable(format!(
                    "the {SERVICE} answered {} states for {} accounts",
                    answer.states.len(),
                    chunk.len()
                )));
            }
            out.extend(answer.states);
        }
        Ok(out)
    }
}
