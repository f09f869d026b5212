//! The Integration Service client: the accounts a user connected, as [`AccountInfo`]s — the
//! [`AccountDirectory`] of a platform deployment.
//!
//! `GET {INTEGRATION_SERVICE_URL}/api/v1/accounts?user_id={user}&platform={platform}&status=active`
//! with the service token, retried like every platform call when it may pass. Answers are
//! kept in process for a short time ([`IntegrationConfig::cache_ttl`]): the engine asks for a
//! user's accounts at every pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::Clock;
use invite_core::async_trait;
use invite_core::domain::{AccountId, Platform, UserId};
use invite_core::ports::{AccountDirectory, AccountInfo, DirectoryError};
use reqwest::Url;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::ServiceAuth;
use crate::error::{Error, Result};
use crate::http::{HttpOptions, ServiceClient};

const SERVICE: &str = "Integration Service";

/// Keys of an object answer that may hold the list of accounts, in order of preference.
const LIST_KEYS: [&str; 5] = ["accounts", "items", "results", "data", "sessions"];

/// How to reach the Integration Service.
#[derive(Debug, Clone)]
pub struct IntegrationConfig {
    /// `INTEGRATION_SERVICE_URL`: scheme, host, port and an optional path prefix.
    pub base_url: String,
    /// The service token's identity and secret.
    pub auth: ServiceAuth,
    /// Timeouts, retries and the size limit of an answer.
    pub http: HttpOptions,
    /// How long a user's accounts are kept before they are asked for again (0: never kept).
    pub cache_ttl: Duration,
}

impl IntegrationConfig {
    /// The service at `base_url` with default timeouts and retries, answers kept 60 s.
    pub fn new(base_url: impl Into<String>, auth: ServiceAuth) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            http: HttpOptions::default(),
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// Accounts of one user on one platform, and when they were fetched.
type Cached = (DateTime<Utc>, Vec<AccountInfo>);

/// The client. Cheap to share behind an `Arc`: one connection pool, one cached token, one
/// cache of answers.
#[derive(Debug)]
pub struct IntegrationClient {
    client: ServiceClient,
    base: Url,
    cache_ttl: TimeDelta,
    cache: Mutex<HashMap<(UserId, Platform), Cached>>,
    clock: Arc<dyn Clock>,
}

impl IntegrationClient {
    /// A client for `config`. Fails on a base URL that is not `http(s)://host…`, an empty
    /// identity or secret, or `https` without the `rustls` feature.
    pub fn new(config: IntegrationConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let base = crate::http::base_url(SERVICE, &config.base_url)?;
        let cache_ttl = TimeDelta::from_std(config.cache_ttl).map_err(|_| Error::Config {
            service: SERVICE,
            message: "the cache TTL is too long".to_owned(),
        })?;
        Ok(Self {
            client: ServiceClient::new(SERVICE, config.auth, config.http, clock.clone())?,
            base,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            clock,
        })
    }

    /// `{base_url}/api/v1/accounts?user_id={user}&platform={platform}&status=active`.
    pub fn accounts_url(&self, user: UserId, platform: Platform) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1", "accounts"]);
        }
        url.query_pairs_mut()
            .append_pair("user_id", &user.to_string())
            .append_pair("platform", platform.as_str())
            .append_pair("status", "active");
        url
    }

    /// The user's active accounts on `platform`, from the cache while it is fresh.
    #[tracing::instrument(skip_all, fields(user.id = %user, platform = %platform))]
    pub async fn accounts(&self, user: UserId, platform: Platform) -> Result<Vec<AccountInfo>> {
        let now = self.clock.now();
        if let Some((at, accounts)) = self.cache().get(&(user, platform))
            && now < *at + self.cache_ttl
        {
            return Ok(accounts.clone());
        }
        let accounts = self.fetch(user, platform).await?;
        if self.cache_ttl > TimeDelta::zero() {
            self.cache()
                .insert((user, platform), (self.clock.now(), accounts.clone()));
        }
        Ok(accounts)
    }

    /// Asks the service, bypassing the cache.
    pub async fn fetch(&self, user: UserId, platform: Platform) -> Result<Vec<AccountInfo>> {
        let url = self.accounts_url(user, platform);
        let body = self
            .client
            .get(&url, &format!("accounts of user {user}"))
            .await?;
        let (accounts, skipped) =
            parse_accounts(&body, platform).map_err(|message| Error::Malformed {
                service: SERVICE,
                message,
            })?;
        if skipped > 0 {
            tracing::warn!(
                skipped,
                kept = accounts.len(),
                "accounts without a valid UUID id left out"
            );
        }
        tracing::debug!(accounts = accounts.len(), "fetched the user's accounts");
        Ok(accounts)
    }

    /// Forgets what is cached for the user on `platform` (after an account was connected or
    /// removed, say).
    pub fn invalidate(&self, user: UserId, platform: Platform) {
        self.cache().remove(&(user, platform));
    }

    /// The service's name, as errors give it.
    pub const fn service(&self) -> &'static str {
        self.client.service()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(UserId, Platform), Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AccountDirectory for IntegrationClient {
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        IntegrationClient::accounts(self, user, platform)
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))
    }
}

/// Reads an answer: an array of accounts, or an object holding one under `accounts`,
/// `items`, `results`, `data` or `sessions`. Returns the active accounts of `platform` (in
/// the order given, each id once) and how many records had no valid UUID id.
///
/// A record is an object with `id` (or `account_id`, `uuid`): a UUID, normalised to lower
/// case. It is left out when its `platform` names another platform, or its `status` is not
/// `active` (`is_active: false` likewise). The name shown is `display_name`, `name`,
/// `first_name` + `last_name`, or `@username`, whichever comes first — never a phone number.
fn parse_accounts(
    body: &[u8],
    platform: Platform,
) -> std::result::Result<(Vec<AccountInfo>, usize), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let records = match &value {
        Value::Array(items) => items,
        Value::Object(map) => LIST_KEYS
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .ok_or_else(|| {
                format!(
                    "the answer holds no list of accounts (looked for {})",
                    LIST_KEYS.join(", ")
                )
            })?,
        _ => return Err("the answer is neither a list nor an object".to_owned()),
    };
    let mut seen = HashSet::new();
    let mut accounts = Vec::new();
    let mut skipped = 0;
    for record in records {
        let Some(id) = record_id(record) else {
            skipped += 1;
            continue;
        };
        let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::trim);
        if text("platform").is_some_and(|p| !p.eq_ignore_ascii_case(platform.as_str())) {
            continue;
        }
        let active = match (
            text("status"),
            record.get("is_active").and_then(Value::as_bool),
        ) {
            (Some(status), _) => status.eq_ignore_ascii_case("active"),
            (None, Some(flag)) => flag,
            (None, None) => true,
        };
        if !active || !seen.insert(id.clone()) {
            continue;
        }
        accounts.push(AccountInfo {
            id,
            platform,
            display_name: display_name(record),
            active,
        });
    }
    Ok((accounts, skipped))
}

/// The record's UUID as an account id (hyphenated, lower case).
fn record_id(record: &Value) -> Option<AccountId> {
    let raw = ["id", "account_id", "uuid"]
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_str))?;
    let uuid = Uuid::try_parse(raw.trim()).ok()?;
    AccountId::parse(uuid.hyphenated().to_string()).ok()
}

/// A name to show for the account, never one that is a phone number.
fn display_name(record: &Value) -> Option<String> {
    let text = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let joined = match (text("first_name"), text("last_name")) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (one, other) => one.or(other).map(str::to_owned),
    };
    text("display_name")
        .map(str::to_owned)
        .or_else(|| text("name").map(str::to_owned))
        .or(joined)
        .or_else(|| text("username").map(|u| format!("@{}", u.trim_start_matches('@'))))
        .filter(|name| !looks_like_phone(name))
}

/// Digits with at most phone punctuation (`+7 916 123-45-67`, `79161234567`).
fn looks_like_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    digits >= 7
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

#[cfg(test)]
mod tests {
    use invite_core::SystemClock;
    use invite_core::ports::Secret;
    use serde_json::json;

    use super::*;

    const A: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const B: &str = "16fd2706-8baf-433b-82eb-8c7fada847da";

    fn parse(v: Value) -> (Vec<AccountInfo>, usize) {
        parse_accounts(v.to_string().as_bytes(), Platform::Telegram).unwrap()
    }

    fn ids(accounts: &[AccountInfo]) -> Vec<&str> {
        accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn the_url_keeps_a_prefix_and_asks_for_active_accounts() {
        let auth = ServiceAuth::new("invite", Secret::new("k"));
        let c = IntegrationClient::new(
            IntegrationConfig::new("http://gw.local/integration/", auth),
            Arc::new(SystemClock),
        )
        .unwrap();
        assert_eq!(
            c.accounts_url(UserId::new(7), Platform::Telegram).as_str(),
            "http://gw.local/integration/api/v1/accounts?user_id=7&platform=telegram&status=active"
        );
    }

    #[test]
    fn reads_arrays_and_wrapped_lists() {
        let one = json!([{"id": A}]);
        assert_eq!(ids(&parse(one).0), [A]);
        for key in LIST_KEYS {
            let wrapped = json!({ "total": 1, key: [{"account_id": A.to_uppercase()}] });
            assert_eq!(ids(&parse(wrapped).0), [A], "{key}");
        }
        let bad = |v: Value| parse_accounts(v.to_string().as_bytes(), Platform::Telegram);
        assert!(bad(json!({"count": 0})).unwrap_err().contains("no list"));
        assert!(bad(json!("x")).is_err());
        assert!(
            parse_accounts(b"<html>", Platform::Telegram)
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn keeps_active_accounts_of_the_platform_once() {
        let (accounts, skipped) = parse(json!([
            {"id": A, "platform": "telegram", "status": "active"},
            {"id": B, "platform": "instagram", "status": "active"},
            {"id": B, "status": "banned"},
            {"id": B, "is_active": false},
            {"id": A},
            {"id": "not-a-uuid"},
            {"id": 42},
            {"name": "no id"},
        ]));
        assert_eq!(ids(&accounts), [A]);
        assert_eq!(skipped, 3);
        assert!(accounts[0].active);
        assert_eq!(accounts[0].platform, Platform::Telegram);
    }

    #[test]
    fn names_shown_are_never_phone_numbers() {
        let name = |v: Value| display_name(&v);
        assert_eq!(
            name(json!({"display_name": "Sales 1", "name": "x"})).as_deref(),
            Some("Sales 1")
        );
        assert_eq!(
            name(json!({"first_name": "Anna", "last_name": "S"})).as_deref(),
            Some("Anna S")
        );
        assert_eq!(
            name(json!({"username": "sales_bot"})).as_deref(),
            Some("@sales_bot")
        );
        assert_eq!(name(json!({"name": "+7 916 123-45-67"})), None);
        assert_eq!(
            name(json!({"display_name": "79161234567", "phone": "79161234567"})),
            None
        );
        assert_eq!(name(json!({"phone": "+79161234567"})), None);
        assert_eq!(
            name(json!({"name": "Team 2024"})).as_deref(),
            Some("Team 2024")
        );
    }
}
