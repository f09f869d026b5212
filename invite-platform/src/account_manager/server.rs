//! The reference server of the Account Manager contract (`docs/account-manager.md`): an axum
//! [`Router`] serving the five calls over any [`AccountManager`] — in practice the embedded
//! `LocalAccountManager`, so a platform without an Account Manager of its own has a working
//! one, and [`HttpAccountManager`](super::HttpAccountManager) is tested against a real server.
//!
//! Every request must carry a service token signed with the shared secret (HS256, unexpired,
//! with a `sub`); `release` and `handle-error` must carry an `Idempotency-Key`, and a key seen
//! before is answered with its first answer without the call taking effect again (the last
//! [`REMEMBERED_KEYS`] keys are kept). An allocation not released within the hold TTL
//! ([`DEFAULT_HOLD_TTL`], or [`router_with_hold_ttl`]) is released with nothing done before
//! the next allocation is decided. A hold keeps the caller's name for it (`hold_id`), and a
//! release naming another hold than the account's current one — a late one, after the TTL let
//! the account go to another caller — frees nothing but still settles its reservation. A hold
//! is forgotten only once the manager behind took its release: if the manager failed, the
//! release (or the expiry) is answered 503 and the hold stays, to be released again. Each call is logged on one line, `account manager
//! call`, with the call, the account and the answer: the server's log shows allocate → check
//! → release for every action.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use invite_core::Clock;
use invite_core::domain::AccountId;
use invite_core::ports::{
    AccountManager, AccountManagerError, Allocation, HoldId, Secret, UsageStats,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::wire::{
    self, AllocateAnswer, AllocateBody, CheckAnswer, CheckBody, ErrorAnswer, ErrorBody,
    ErrorDetail, ReleaseBody, StatesAnswer, StatesBody,
};

/// How many idempotency keys (and their answers) the server remembers.
pub const REMEMBERED_KEYS: usize = 10_000;

/// Seconds a token's `iat` may be ahead of this server's clock.
const LEEWAY_SECONDS: i64 = 60;

/// How long an allocation holds its account without a release, by default: a caller that
/// lost the answer, or whose release could not reach the server, does not lock the account
/// for good.
pub const DEFAULT_HOLD_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The answers of idempotent calls, by call and key, oldest first out.
#[derive(Debug, Default)]
struct Replays {
    answers: HashMap<String, (StatusCode, Option<Vec<u8>>)>,
    order: VecDeque<String>,
}

/// A hold kept by the server: the caller's name for it and when it was allocated.
type Hold = (Option<HoldId>, DateTime<Utc>);

#[derive(Debug)]
struct Shared {
    manager: Arc<dyn AccountManager>,
    secret: Secret,
    clock: Arc<dyn Clock>,
    replays: Mutex<Replays>,
    /// Each account held through this server.
    holds: Mutex<HashMap<AccountId, Hold>>,
    hold_ttl: TimeDelta,
}

/// The routes of the contract over `manager`, checking tokens signed with `secret`, holds
/// lasting [`DEFAULT_HOLD_TTL`]. Mount it at the root of a listener
/// (`axum::serve(listener, router(…))`).
pub fn router(manager: Arc<dyn AccountManager>, secret: Secret, clock: Arc<dyn Clock>) -> Router {
    router_with_hold_ttl(manager, secret, clock, DEFAULT_HOLD_TTL)
}

/// [`router`] whose allocations are let go after `hold_ttl` without a release (before the
/// next allocation is decided). It must outlast the longest action a caller takes.
pub fn router_with_hold_ttl(
    manager: Arc<dyn AccountManager>,
    secret: Secret,
    clock: Arc<dyn Clock>,
    hold_ttl: std::time::Duration,
) -> Router {
    let shared = Arc::new(Shared {
        manager,
        secret,
        clock,
        replays: Mutex::new(Replays::default()),
        holds: Mutex::new(HashMap::new()),
        hold_ttl: TimeDelta::from_std(hold_ttl).unwrap_or(TimeDelta::MAX),
    });
    let path = |p: [&str; 3]| format!("/{}", p.join("/"));
    Router::new()
        .route(&path(wire::ALLOCATE_PATH), post(allocate))
        .route(&path(wire::CHECK_PATH), post(check))
        .route(&path(wire::RELEASE_PATH), post(release))
        .route(&path(wire::HANDLE_ERROR_PATH), post(handle_error))
        .route(&path(wire::STATES_PATH), post(states))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "not_found", "no such call") })
        .with_state(shared)
}

/// An error answer.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ErrorAnswer {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn problem(status: StatusCode, code: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        status,
        code,
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> Problem {
    problem(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn manager_error(err: &AccountManagerError) -> Problem {
    match err {
        AccountManagerError::Unavailable(m) => {
            problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone())
        }
        AccountManagerError::Rejected(m) => invalid(m.clone()),
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> (StatusCode, Option<Vec<u8>>) {
    (
        status,
        Some(serde_json::to_vec(body).expect("answers serialise")),
    )
}

fn respond((status, body): (StatusCode, Option<Vec<u8>>)) -> Response {
    match body {
        Some(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => status.into_response(),
    }
}

impl Shared {
    /// Checks the bearer token: HS256 under the shared secret, a `sub`, `exp` in the future,
    /// `iat` not ahead of the clock by more than a minute.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Problem> {
        let refuse = |why: &str| {
            tracing::warn!(reason = why, "account manager: service token refused");
            problem(StatusCode::UNAUTHORIZED, "unauthorized", why)
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| refuse("no bearer token"))?;
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse("not a JWT"));
        };
        let decode = |part: &str| -> Option<serde_json::Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| refuse("not a JWT"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(format!("{head}.{payload}").as_bytes());
        if decode(head).is_none_or(|h| h["alg"] != "HS256") {
            return Err(refuse("not an HS256 token"));
        }
        mac.verify_slice(&signature)
            .map_err(|_| refuse("bad signature"))?;
        let claims = decode(payload).ok_or_else(|| refuse("unreadable claims"))?;
        let now = self.clock.now().timestamp();
        if claims["sub"].as_str().is_none_or(|s| s.trim().is_empty()) {
            return Err(refuse("no sub claim"));
        }
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
            return Err(refuse("expired"));
        }
        if claims["iat"]
            .as_i64()
            .is_some_and(|iat| iat > now + LEEWAY_SECONDS)
        {
            return Err(refuse("issued in the future"));
        }
        Ok(())
    }

    /// The idempotency key of `headers`, checked.
    fn key(headers: &HeaderMap) -> Result<String, Problem> {
        let key = headers
            .get(wire::IDEMPOTENCY_KEY)
            .ok_or_else(|| invalid("the Idempotency-Key header is required"))?;
        let key = key
            .to_str()
            .ok()
            .filter(|k| {
                !k.is_empty()
                    && k.len() <= wire::MAX_IDEMPOTENCY_KEY_CHARS
                    && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                invalid("the Idempotency-Key must be 1 to 128 visible ASCII characters")
            })?;
        Ok(key.to_owned())
    }

    /// Lets go of the holds older than the TTL, releasing them with nothing done. A hold is
    /// forgotten once the manager took its release (if it failed, the hold is expired again
    /// at the next allocation).
    async fn expire_holds(&self) -> Result<(), Problem> {
        let now = self.clock.now();
        let expired: Vec<(AccountId, Option<HoldId>)> = self
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, (_, at))| now.signed_duration_since(*at) >= self.hold_ttl)
            .map(|(id, (hold, _))| (id.clone(), hold.clone()))
            .collect();
        for (account, hold) in expired {
            let usage = UsageStats {
                hold: hold.clone(),
                ..UsageStats::default()
            };
            self.manager
                .release_account(&account, &usage)
                .await
                .map_err(|e| manager_error(&e))?;
            self.forget_hold(&account, hold.as_ref());
            tracing::info!(call = "expire", account = %account, answer = "released", "account manager call");
        }
        Ok(())
    }

    /// Whether a release naming `named` lets go of the hold this server keeps for `account`:
    /// one it keeps, unnamed, or named so.
    fn is_current_hold(&self, account: &AccountId, named: Option<&HoldId>) -> bool {
        match self
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
        {
            Some((Some(current), _)) => named.is_none_or(|named| named == current),
            Some((None, _)) => true,
            None => false,
        }
    }

    /// Forgets the hold of `account` if it is still the one `named` (a newer one stays).
    fn forget_hold(&self, account: &AccountId, named: Option<&HoldId>) {
        let mut holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
        let same = holds
            .get(account)
            .is_some_and(|(current, _)| named.is_none() || current.as_ref() == named);
        if same {
            holds.remove(account);
        }
    }

    fn replay(&self, key: &str) -> Option<(StatusCode, Option<Vec<u8>>)> {
        self.replays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answers
            .get(key)
            .cloned()
    }

    fn remember(&self, key: String, answer: (StatusCode, Option<Vec<u8>>)) {
        let mut replays = self.replays.lock().unwrap_or_else(PoisonError::into_inner);
        if replays.answers.insert(key.clone(), answer).is_none() {
            replays.order.push_back(key);
        }
        while replays.order.len() > REMEMBERED_KEYS {
            if let Some(old) = replays.order.pop_front() {
                replays.answers.remove(&old);
            }
        }
    }
}

/// The body, read as `T`, or a 400 naming what is wrong.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        invalid(format!(
            "the body is invalid at {}: {}",
            e.path(),
            e.inner()
        ))
    })
}

/// A hold name, if any, must be 1 to 128 visible ASCII characters.
fn valid_hold(hold: Option<&HoldId>) -> Result<(), Problem> {
    match hold {
        Some(hold) if !hold.is_valid() => Err(invalid(format!(
            "hold_id must be 1 to {} visible ASCII characters",
            HoldId::MAX_CHARS
        ))),
        _ => Ok(()),
    }
}

fn count(what: &str, n: usize) -> Result<(), Problem> {
    if n == 0 || n > wire::MAX_ACCOUNTS_PER_CALL {
        return Err(invalid(format!(
            "{what} must hold 1 to {} accounts, not {n}",
            wire::MAX_ACCOUNTS_PER_CALL
        )));
    }
    Ok(())
}

async fn allocate(State(s): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        s.authorize(&headers)?;
        let body: AllocateBody = body(&bytes)?;
        count("candidates", body.candidates.len())?;
        valid_hold(body.hold_id.as_ref())?;
        s.expire_holds().await?;
        let user = body.user_id;
        let hold = body.hold_id.clone();
        let allocation = s
            .manager
            .allocate_account(&body.into())
            .await
            .map_err(|e| manager_error(&e))?;
        if let Allocation::Granted(account) = &allocation {
            s.holds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(account.clone(), (hold, s.clock.now()));
        }
        let answer = AllocateAnswer::from(&allocation);
        match &answer {
            AllocateAnswer::Granted { account_id } => tracing::info!(
                call = "allocate", account = %account_id, user = %user, answer = "granted",
                "account manager call"
            ),
            AllocateAnswer::Unavailable { retry_at } => tracing::info!(
                call = "allocate", user = %user, answer = "unavailable", retry_at = ?retry_at,
                "account manager call"
            ),
        }
        Ok(respond(json(StatusCode::OK, &answer)))
    };
    run.await.unwrap_or_else(|e: Problem| e.into_response())
}

async fn check(State(s): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        s.authorize(&headers)?;
        let body: CheckBody = body(&bytes)?;
        if body.kinds.is_empty() {
            return Err(invalid("kinds must name at least one kind of action"));
        }
        if body.channel.trim().is_empty() {
            return Err(invalid("channel must not be empty"));
        }
        let account = body.account_id.clone();
        let decision = s
            .manager
            .check_rate_limit(&body.into())
            .await
            .map_err(|e| manager_error(&e))?;
        let answer = CheckAnswer::new(&decision, s.clock.now());
        let shown = match &answer {
            CheckAnswer::Allowed { .. } => "allowed".to_owned(),
            CheckAnswer::Wait {
                retry_after_seconds,
                reason,
                ..
            } => format!("wait {retry_after_seconds} s ({})", reason.as_str()),
            CheckAnswer::Denied {
                reason, permanent, ..
            } => format!(
                "denied ({}{})",
                reason.as_str(),
                if *permanent { ", permanent" } else { "" }
            ),
        };
        tracing::info!(call = "check", account = %account, answer = %shown, "account manager call");
        Ok(respond(json(StatusCode::OK, &answer)))
    };
    run.await.unwrap_or_else(|e: Problem| e.into_response())
}

async fn release(State(s): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        s.authorize(&headers)?;
        let key = format!("release:{}", Shared::key(&headers)?);
        let body: ReleaseBody = body(&bytes)?;
        if let Some(answer) = s.replay(&key) {
            tracing::info!(call = "release", account = %body.account_id, answer = "replayed", "account manager call");
            return Ok(respond(answer));
        }
        valid_hold(body.hold_id.as_ref())?;
        let (account, usage) = body.into_parts();
        // A release of another hold than the current one (a late one) settles its
        // reservation, and the manager behind frees only the hold it names.
        let current = s.is_current_hold(&account, usage.hold.as_ref());
        s.manager
            .release_account(&account, &usage)
            .await
            .map_err(|e| manager_error(&e))?;
        if current {
            s.forget_hold(&account, usage.hold.as_ref());
        }
        tracing::info!(
            call = "release", account = %account, performed = usage.performed,
            outcome = ?usage.outcome, answer = if current { "released" } else { "not_held" },
            "account manager call"
        );
        let answer = (StatusCode::NO_CONTENT, None);
        s.remember(key, answer.clone());
        Ok(respond(answer))
    };
    run.await.unwrap_or_else(|e: Problem| e.into_response())
}

async fn handle_error(State(s): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        s.authorize(&headers)?;
        let key = format!("handle-error:{}", Shared::key(&headers)?);
        let body: ErrorBody = body(&bytes)?;
        if let Some(answer) = s.replay(&key) {
            tracing::info!(call = "handle_error", account = %body.account_id, answer = "replayed", "account manager call");
            return Ok(respond(answer));
        }
        let (account, report) = body.into_parts();
        let state = s
            .manager
            .handle_error(&account, &report)
            .await
            .map_err(|e| manager_error(&e))?;
        tracing::info!(
            call = "handle_error", account = %account, class = %report.class,
            code = %report.code, answer = ?state, "account manager call"
        );
        let answer = json(StatusCode::OK, &state);
        s.remember(key, answer.clone());
        Ok(respond(answer))
    };
    run.await.unwrap_or_else(|e: Problem| e.into_response())
}

async fn states(State(s): State<Arc<Shared>>, headers: HeaderMap, bytes: Bytes) -> Response {
    let run = async {
        s.authorize(&headers)?;
        let body: StatesBody = body(&bytes)?;
        count("account_ids", body.account_ids.len())?;
        let states = s
            .manager
            .account_states(&body.account_ids)
            .await
            .map_err(|e| manager_error(&e))?;
        tracing::debug!(
            call = "states",
            accounts = states.len(),
            "account manager call"
        );
        Ok(respond(json(StatusCode::OK, &StatesAnswer { states })))
    };
    run.await.unwrap_or_else(|e: Problem| e.into_response())
}
