//! [`TelegramStrategy`]: the core's `InviteStrategy` for Telegram, over the [`TelegramApi`]
//! seam.
//!
//! Per account it keeps one connection (opened from the session string in the secret store),
//! a cache of the access hashes this account resolved (they are valid for this account only),
//! and a rolling 24-hour budget of username resolutions. Every call is timed; nothing is retried
//! or slept on here, except one re-resolution when Telegram rejects a cached access hash.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::Clock;
use invite_core::async_trait;
use invite_core::domain::{AccountId, GroupRef, Outcome, Platform, Target, TargetIdentifier};
use invite_core::limits::LimitPolicy;
use invite_core::ports::{
    AccountRegistry, ActionResult, ErrorClass, InviteStrategy, PlatformError, Resolution, Secret,
    SecretError, SecretStore,
};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::api::{
    ChannelRef, Connector, DeviceFields, GroupLookup, GroupPeer, InviteReport, PhoneLookup,
    ResolvedPeer, TelegramApi, UserRef,
};
use crate::errors::{ApiError, CallKind, classify};
use crate::lease::{ConnectionLease, Held};
use crate::session::{KeyFingerprint, SessionString};

/// Errors of building the strategy (configuration, at start).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The api credentials could not be read.
    #[error("reading the Telegram api credentials: {0}")]
    Secret(#[from] SecretError),
    /// `api_id` is not a positive integer.
    #[error("api_id at {path} is not a positive integer")]
    InvalidApiId {
        /// The secret's path.
        path: String,
    },
}

/// Result of this crate's fallible set-up.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of the strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// Secret path holding `api_id` and `api_hash`.
    pub api_credentials_path: String,
    /// Prefix of the per-account session secrets: `{sessions_path}/{account_id}`.
    pub sessions_path: String,
    /// Key of the session string in those secrets.
    pub session_key: String,
    /// Time limit of every Telegram call (connection included).
    pub call_timeout: Duration,
    /// Username resolutions per account in any rolling 24 h (Telegram allows about 200).
    pub resolve_budget_per_day: u32,
    /// Phone imports (`contacts.importContacts`, one of Telegram's most tightly limited
    /// calls) per account in any rolling 24 h.
    pub import_budget_per_day: u32,
    /// Cooldown when Telegram asks to import a contact later (`retry_contacts`).
    pub import_retry_cooldown: Duration,
    /// A broadcast channel with this many members or more takes no more adds.
    pub broadcast_member_limit: i32,
    /// A single 401 or transport 404 (unknown auth key) is confirmed once after this delay,
    /// on a new connection, before the account is written off.
    pub dead_confirm_delay: Duration,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_credentials_path: "secret/telegram/api_credentials".to_owned(),
            sessions_path: "secret/telegram/sessions".to_owned(),
            session_key: "session_string".to_owned(),
            call_timeout: Duration::from_secs(30),
            resolve_budget_per_day: 200,
            import_budget_per_day: 20,
            import_retry_cooldown: Duration::from_secs(3600),
            broadcast_member_limit: 200,
            dead_confirm_delay: Duration::from_secs(60),
        }
    }
}

/// A user resolution remembered for one account.
#[derive(Debug, Clone)]
enum Cached {
    Found(UserRef),
    Refused(PlatformError),
}

struct Resolved {
    user: UserRef,
    /// From the cache (so possibly stale), and re-resolvable.
    from_cache: bool,
}

#[derive(Default)]
struct AccountState {
    api: Option<Arc<dyn TelegramApi>>,
    /// The account's lease, held while `api` is open (with a [`ConnectionLease`]).
    lease: Option<Held>,
    /// Telegram said the session is dead; remembered with the key it said it of, so a new
    /// session put in the secret store is tried again.
    dead: Option<(String, KeyFingerprint)>,
    fingerprint: Option<KeyFingerprint>,
    users: HashMap<TargetIdentifier, Cached>,
    ids: HashMap<i64, UserRef>,
    groups: HashMap<GroupRef, GroupPeer>,
    /// Member counts of broadcast channels: read once, then counted up with each add.
    member_counts: HashMap<i64, i32>,
    resolutions: VecDeque<DateTime<Utc>>,
    imports: VecDeque<DateTime<Utc>>,
    /// Resolutions kept in the registry by an earlier run, by the target's identifier.
    stored: HashMap<String, UserRef>,
    /// The registry's resolutions and budget uses were read (see
    /// [`TelegramStrategy::with_resolutions`]).
    loaded: bool,
    /// A 401 / transport 404 seen once and not confirmed yet (its code).
    unconfirmed_dead: Option<String>,
    /// The account's own user id, from `get_me` on connecting.
    me: Option<i64>,
}

/// The Telegram strategy.
pub struct TelegramStrategy {
    config: TelegramConfig,
    secrets: Arc<dyn SecretStore>,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
    /// The application's `api_id`, for accounts whose secrets carry none.
    api_id: Option<i32>,
    /// Only needed to sign in, which this service never does; kept for completeness.
    _api_hash: Option<Secret>,
    lease: Option<ConnectionLease>,
    /// Where resolutions and budget uses are kept across restarts.
    resolutions: Option<Arc<dyn AccountRegistry>>,
    accounts: StdMutex<HashMap<AccountId, Arc<Mutex<AccountState>>>>,
}

impl fmt::Debug for TelegramStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramStrategy")
            .field("config", &self.config)
            .field("connector", &self.connector)
            .field("api_id", &self.api_id)
            .field("api_hash", &"***")
            .finish_non_exhaustive()
    }
}

impl TelegramStrategy {
    /// Reads the api credentials from `secrets` and builds the strategy. Sessions are read
    /// per account, when it is first used.
    pub async fn new(
        config: TelegramConfig,
        secrets: Arc<dyn SecretStore>,
        connector: Arc<dyn Connector>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        Self::build(config, secrets, connector, clock, true).await
    }

    /// Like [`TelegramStrategy::new`], for accounts that carry their own credentials: each
    /// account's `api_id` is read beside its session (key `api_id`), and the credentials at
    /// `api_credentials_path` are only a default, which may be absent (an account without
    /// either is unusable: `API_ID_MISSING`).
    pub async fn with_account_credentials(
        config: TelegramConfig,
        secrets: Arc<dyn SecretStore>,
        connector: Arc<dyn Connector>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        Self::build(config, secrets, connector, clock, false).await
    }

    /// Holds each account's lease for as long as its connection is open (see
    /// [`ConnectionLease`]); without it, connections are not leased here.
    #[must_use]
    pub fn with_connection_lease(mut self, lease: ConnectionLease) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Keeps each account's resolutions (the access hashes it was given) and its uses of the
    /// resolution and import budgets in `registry`, so a restart neither resolves everything
    /// again nor forgets what it spent. Read once per account, at its first use; a registry
    /// that fails is logged and the account goes on from memory.
    #[must_use]
    pub fn with_resolutions(mut self, registry: Arc<dyn AccountRegistry>) -> Self {
        self.resolutions = Some(registry);
        self
    }

    async fn load(&self, account: &AccountId, state: &mut AccountState) {
        if state.loaded {
            return;
        }
        state.loaded = true;
        let Some(registry) = &self.resolutions else {
            return;
        };
        let since = self.clock.now() - TimeDelta::hours(24);
        let read = async {
            Ok::<_, invite_core::ports::StoreError>((
                registry.resolutions(account).await?,
                registry
                    .spends_since(account, RESOLVE_BUDGET, since)
                    .await?,
                registry.spends_since(account, IMPORT_BUDGET, since).await?,
            ))
        };
        match read.await {
            Ok((kept, resolutions, imports)) => {
                for r in kept {
                    let user = UserRef {
                        id: r.peer_id,
                        access_hash: r.access_hash,
                    };
                    state.ids.entry(user.id).or_insert(user);
                    state.stored.insert(r.key, user);
                }
                state.resolutions.extend(resolutions);
                state.imports.extend(imports);
            }
            Err(e) => {
                warn!(account.id = %account, error = %e, "resolutions of Telegram account {account} not read; going on from memory");
            }
        }
    }

    async fn keep_spend(&self, account: &AccountId, budget: &str, at: DateTime<Utc>) {
        if let Some(registry) = &self.resolutions
            && let Err(e) = registry.record_spend(account, budget, at).await
        {
            warn!(account.id = %account, error = %e, "budget use of Telegram account {account} not kept");
        }
    }

    async fn keep_resolution(&self, account: &AccountId, key: String, user: UserRef) {
        if let Some(registry) = &self.resolutions {
            let resolution = Resolution {
                key,
                peer_id: user.id,
                access_hash: user.access_hash,
                resolved_at: self.clock.now(),
            };
            if let Err(e) = registry.save_resolution(account, &resolution).await {
                warn!(account.id = %account, error = %e, "resolution of Telegram account {account} not kept");
            }
        }
    }

    async fn build(
        config: TelegramConfig,
        secrets: Arc<dyn SecretStore>,
        connector: Arc<dyn Connector>,
        clock: Arc<dyn Clock>,
        required: bool,
    ) -> Result<Self> {
        let path = config.api_credentials_path.clone();
        let optional = |r: std::result::Result<Secret, SecretError>| match r {
            Ok(v) => Ok(Some(v)),
            Err(SecretError::NotFound { .. }) if !required => Ok(None),
            Err(e) => Err(e),
        };
        let api_id = match optional(secrets.get(&path, "api_id").await)? {
            Some(v) => {
                Some(parse_api_id(v.expose()).ok_or(Error::InvalidApiId { path: path.clone() })?)
            }
            None => None,
        };
        let api_hash = optional(secrets.get(&path, "api_hash").await)?;
        Ok(Self {
            config,
            secrets,
            connector,
            clock,
            api_id,
            _api_hash: api_hash,
            lease: None,
            resolutions: None,
            accounts: StdMutex::new(HashMap::new()),
        })
    }

    /// The `api_id` to connect `account` with: its own, else the default.
    async fn api_id_of(&self, path: &str) -> Result<i32, PlatformError> {
        match self.secrets.get(path, "api_id").await {
            Ok(v) => parse_api_id(v.expose()).ok_or_else(|| dead("API_ID_INVALID")),
            Err(SecretError::NotFound { .. }) => self.api_id.ok_or_else(|| dead("API_ID_MISSING")),
            Err(SecretError::Unavailable(_)) => Err(PlatformError::Transient {
                code: "SECRET_STORE_UNAVAILABLE".to_owned(),
            }),
        }
    }

    /// The account's own device fields, read beside its session (keys [`DEVICE_KEYS`]); each
    /// one missing takes the connector's default.
    async fn device_of(&self, path: &str) -> Result<DeviceFields, PlatformError> {
        let mut values = Vec::with_capacity(DEVICE_KEYS.len());
        for key in DEVICE_KEYS {
            values.push(match self.secrets.get(path, key).await {
                Ok(v) => Some(v.expose().trim().to_owned()).filter(|v| !v.is_empty()),
                Err(SecretError::NotFound { .. }) => None,
                Err(SecretError::Unavailable(_)) => {
                    return Err(PlatformError::Transient {
                        code: "SECRET_STORE_UNAVAILABLE".to_owned(),
                    });
                }
            });
        }
        let mut values = values.into_iter();
        let mut next = || values.next().flatten();
        Ok(DeviceFields {
            device_model: next(),
            system_version: next(),
            app_version: next(),
            system_lang_code: next(),
            lang_code: next(),
        })
    }

    /// Closes the account's connection and gives its lease up.
    async fn close(state: &mut AccountState) {
        if let Some(api) = state.api.take() {
            api.disconnect().await;
        }
        if let Some(held) = state.lease.take() {
            held.release().await;
        }
    }

    fn state(&self, account: &AccountId) -> Arc<Mutex<AccountState>> {
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(accounts.entry(account.clone()).or_default())
    }

    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        tokio::time::timeout(self.config.call_timeout, call)
            .await
            .unwrap_or(Err(ApiError::Timeout(self.config.call_timeout)))
    }

    /// Classifies an error of a call; a dead session is dropped and remembered.
    async fn failed(
        &self,
        account: &AccountId,
        state: &mut AccountState,
        error: &ApiError,
        kind: CallKind,
    ) -> PlatformError {
        let classified = classify(error, kind);
        debug!(
            account.id = %account,
            error.class = %classified.class(),
            error.code = classified.code(),
            "Telegram call failed for account {account}: {}",
            classified.code()
        );
        if error.breaks_connection() {
            // The client is spent (timed out, runner gone, connection lost): the next call
            // opens a new one rather than reusing a dead runner.
            Self::close(state).await;
        }
        if classified.class() == ErrorClass::AccountDead {
            if confirm_first(error) && state.unconfirmed_dead.is_none() {
                // One 401 can be a server's passing state: confirmed on a new connection
                // after a delay (the account cools down meanwhile; nothing was done).
                warn!(
                    account.id = %account,
                    error.code = classified.code(),
                    "Telegram account {account} refused ({}); confirming after a delay",
                    classified.code()
                );
                state.unconfirmed_dead = Some(classified.code().to_owned());
                Self::close(state).await;
                return PlatformError::FloodWait {
                    seconds: self.config.dead_confirm_delay.as_secs().max(1),
                    code: classified.code().to_owned(),
                };
            }
            self.mark_dead(account, state, classified.code()).await;
        }
        classified
    }

    async fn mark_dead(&self, account: &AccountId, state: &mut AccountState, code: &str) {
        warn!(
            account.id = %account,
            error.code = code,
            "Telegram account {account} is unusable ({code}); it stays out until its session changes"
        );
        if let Some(fingerprint) = state.fingerprint {
            state.dead = Some((code.to_owned(), fingerprint));
        }
        Self::close(state).await;
    }

    /// The account's connection, opened from its session secret if needed.
    async fn connected(
        &self,
        account: &AccountId,
        state: &mut AccountState,
    ) -> Result<Arc<dyn TelegramApi>, PlatformError> {
        self.load(account, state).await;
        if let Some(api) = &state.api {
            if state.lease.as_ref().is_none_or(|held| !held.is_lost()) {
                return Ok(Arc::clone(api));
            }
            // The heartbeat lost the lease and closed the connection: start afresh.
            Self::close(state).await;
        }
        let path = format!("{}/{}", self.config.sessions_path, account);
        let secret = self
            .secrets
            .get(&path, &self.config.session_key)
            .await
            .map_err(|e| match e {
                SecretError::NotFound { .. } => dead("SESSION_MISSING"),
                SecretError::Unavailable(_) => PlatformError::Transient {
                    code: "SECRET_STORE_UNAVAILABLE".to_owned(),
                },
            })?;
        let session = SessionString::parse(secret.expose()).map_err(|e| {
            warn!(account.id = %account, error = %e, "session of Telegram account {account} refused: {e}");
            dead("SESSION_INVALID")
        })?;
        drop(secret);
        let fingerprint = session.key_fingerprint();
        if let Some((code, dead_key)) = &state.dead {
            if *dead_key == fingerprint {
                return Err(dead(code));
            }
            state.dead = None;
        }
        state.fingerprint = Some(fingerprint);
        let api_id = self.api_id_of(&path).await?;
        if let Some(session_api_id) = session.api_id()
            && session_api_id != api_id
        {
            warn!(account.id = %account, "session of Telegram account {account} was created with another api_id");
            return Err(dead("API_ID_MISMATCH"));
        }
        // No lease, no connection.
        if let Some(lease) = &self.lease {
            state.lease = Some(lease.take(account).await?);
        }
        let device = self.device_of(&path).await?;
        let connecting = if device.is_empty() {
            self.connector.connect(&session, api_id).await
        } else {
            self.connector.connect_as(&session, api_id, &device).await
        };
        let api = match connecting {
            Ok(api) => api,
            Err(e) => {
                let error = self.failed(account, state, &e, CallKind::Read).await;
                Self::close(state).await;
                return Err(error);
            }
        };
        let me = match self.timed(api.get_me()).await {
            Ok(me) => me,
            Err(e) => {
                api.disconnect().await;
                let error = self.failed(account, state, &e, CallKind::Read).await;
                Self::close(state).await;
                return Err(error);
            }
        };
        let refusal = if me.bot {
            Some("BOT_ACCOUNT")
        } else if session.user_id().is_some_and(|id| id != me.id) {
            Some("SESSION_USER_MISMATCH")
        } else {
            None
        };
        if let Some(code) = refusal {
            api.disconnect().await;
            self.mark_dead(account, state, code).await;
            return Err(dead(code));
        }
        // A refusal waiting to be confirmed was not: the session works.
        state.unconfirmed_dead = None;
        state.me = Some(me.id);
        debug!(account.id = %account, dc = session.dc_id(), "Telegram account {account} connected");
        if let Some(held) = &mut state.lease {
            held.keep_alive(Arc::clone(&api));
        }
        state.api = Some(Arc::clone(&api));
        Ok(api)
    }

    /// Takes one username resolution from the account's rolling daily budget.
    async fn spend_resolution(
        &self,
        account: &AccountId,
        state: &mut AccountState,
    ) -> Result<(), PlatformError> {
        let budget = self.config.resolve_budget_per_day;
        let now = self.clock.now();
        spend(
            &mut state.resolutions,
            budget,
            now,
            "RESOLVE_BUDGET_EXHAUSTED",
        )?;
        self.keep_spend(account, RESOLVE_BUDGET, now).await;
        Ok(())
    }

    /// Takes one phone import from the account's rolling daily budget.
    async fn spend_import(
        &self,
        account: &AccountId,
        state: &mut AccountState,
    ) -> Result<(), PlatformError> {
        let budget = self.config.import_budget_per_day;
        let now = self.clock.now();
        spend(&mut state.imports, budget, now, "IMPORT_BUDGET_EXHAUSTED")?;
        self.keep_spend(account, IMPORT_BUDGET, now).await;
        Ok(())
    }

    async fn resolve_user(
        &self,
        account: &AccountId,
        state: &mut AccountState,
        api: &dyn TelegramApi,
        target: &Target,
    ) -> Result<Resolved, PlatformError> {
        let identifier = &target.person.identifier;
        match state.users.get(identifier) {
            Some(Cached::Found(user)) => {
                return Ok(Resolved {
                    user: *user,
                    from_cache: true,
                });
            }
            Some(Cached::Refused(error)) => return Err(error.clone()),
            None => {}
        }
        if let Some(user) = state.stored.get(&identifier.to_string()).copied() {
            // Resolved by an earlier run: as good (and as possibly stale) as the cache.
            state.users.insert(identifier.clone(), Cached::Found(user));
            return Ok(Resolved {
                user,
                from_cache: true,
            });
        }
        let found = match identifier {
            TargetIdentifier::UserId(id) => {
                // Only a hash this account resolved works; without one, try the bare id
                // (Telegram accepts it for the account's contacts and known peers).
                let user = state.ids.get(&id.get()).copied().unwrap_or(UserRef {
                    id: id.get(),
                    access_hash: 0,
                });
                return Ok(Resolved {
                    user,
                    from_cache: false,
                });
            }
            TargetIdentifier::Username(name) => {
                self.spend_resolution(account, state).await?;
                match self.timed(api.resolve_username(name.as_str())).await {
                    Ok(ResolvedPeer::User { bot: false, user }) => Ok(user),
                    Ok(ResolvedPeer::User { bot: true, .. }) => {
                        Err(target_error(Outcome::Unresolvable, "USER_IS_BOT"))
                    }
                    Ok(ResolvedPeer::NotAUser) => {
                        Err(target_error(Outcome::Unresolvable, "NOT_A_USER"))
                    }
                    Err(e) => Err(self.failed(account, state, &e, CallKind::Read).await),
                }
            }
            TargetIdentifier::Phone(phone) => {
                self.spend_import(account, state).await?;
                let (first, last) = contact_names(target);
                // Importing is idempotent, so a lost answer is simply retried: a read.
                match self
                    .timed(api.import_phone(phone.as_str(), &first, &last))
                    .await
                {
                    Ok(PhoneLookup::Found(user)) => {
                        // The import made them a contact of the account: undone at once (the
                        // access hash stays valid), so campaigns leave no contacts behind.
                        if let Err(e) = self.timed(api.delete_contact(user)).await {
                            warn!(account.id = %account, error.code = classify(&e, CallKind::Read).code(), "imported contact of Telegram account {account} not deleted");
                        }
                        Ok(user)
                    }
                    Ok(PhoneLookup::NotFound) => {
                        Err(target_error(Outcome::NotFound, "PHONE_NOT_ON_TELEGRAM"))
                    }
                    Ok(PhoneLookup::RetryLater) => {
                        return Err(PlatformError::FloodWait {
                            seconds: self.config.import_retry_cooldown.as_secs(),
                            code: "IMPORT_CONTACTS_RETRY".to_owned(),
                        });
                    }
                    Err(e) => Err(self.failed(account, state, &e, CallKind::Read).await),
                }
            }
        };
        match found {
            Ok(user) => {
                state.users.insert(identifier.clone(), Cached::Found(user));
                state.ids.insert(user.id, user);
                self.keep_resolution(account, identifier.to_string(), user)
                    .await;
                Ok(Resolved {
                    user,
                    from_cache: false,
                })
            }
            Err(error) => {
                // The person's own answers are final for this account; anything else is not.
                if error.class() == ErrorClass::Target {
                    state
                        .users
                        .insert(identifier.clone(), Cached::Refused(error.clone()));
                }
                Err(error)
            }
        }
    }

    async fn resolve_group(
        &self,
        account: &AccountId,
        state: &mut AccountState,
        api: &dyn TelegramApi,
        group: &GroupRef,
    ) -> Result<GroupPeer, PlatformError> {
        if let Some(peer) = state.groups.get(group) {
            return Ok(*peer);
        }
        if matches!(group, GroupRef::Username(_)) {
            self.spend_resolution(account, state).await?;
        }
        match self.timed(api.resolve_group(group)).await {
            Ok(GroupLookup::Found(peer)) => {
                state.groups.insert(group.clone(), peer);
                Ok(peer)
            }
            Ok(GroupLookup::NotMember) => Err(PlatformError::Group {
                code: "NOT_A_MEMBER".to_owned(),
                account_only: true,
            }),
            Ok(GroupLookup::NotAGroup) => Err(PlatformError::Group {
                code: "NOT_A_GROUP".to_owned(),
                account_only: false,
            }),
            Err(e) => Err(self.failed(account, state, &e, CallKind::Read).await),
        }
    }

    /// Telegram refuses adds into a broadcast channel past 200 members: check first.
    async fn check_broadcast_room(
        &self,
        account: &AccountId,
        state: &mut AccountState,
        api: &dyn TelegramApi,
        channel: ChannelRef,
    ) -> Result<(), PlatformError> {
        let count = match state.member_counts.get(&channel.id) {
            Some(count) => Some(*count),
            None => match self.timed(api.member_count(channel)).await {
                Ok(count) => {
                    if let Some(count) = count {
                        state.member_counts.insert(channel.id, count);
                    }
                    count
                }
                Err(e) => return Err(self.failed(account, state, &e, CallKind::Read).await),
            },
        };
        if count.is_some_and(|c| c >= self.config.broadcast_member_limit) {
            return Err(PlatformError::Group {
                code: "BROADCAST_MEMBER_LIMIT".to_owned(),
                account_only: false,
            });
        }
        Ok(())
    }

    /// `inviteToChannel` answered without the "added" service message: someone already in a
    /// supergroup can get that answer instead of `USER_ALREADY_PARTICIPANT`. Their
    /// membership entry tells: added by someone else, or joined before this call, means they
    /// were a member already. The invite was answered, so nothing here is an error: a failed
    /// check leaves it `Invited`, saying so.
    async fn confirm_added(
        &self,
        state: &AccountState,
        api: &dyn TelegramApi,
        channel: ChannelRef,
        user: UserRef,
        started: DateTime<Utc>,
    ) -> ActionResult {
        let invited = |check: serde_json::Value| ActionResult {
            outcome: Outcome::Invited,
            details: json!({ "confirmed_by_update": false, "membership": check }),
        };
        let entry = match self.timed(api.membership(channel, user)).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return invited(json!("absent")),
            Err(e) => {
                let code = classify(&e, CallKind::Read).code().to_owned();
                return invited(json!({ "check_failed": code }));
            }
        };
        let by_someone_else = entry
            .inviter_id
            .is_some_and(|inviter| state.me.is_some_and(|me| me != inviter));
        let before = entry
            .date
            .is_some_and(|date| date < started.timestamp() - JOIN_DATE_TOLERANCE_SECS);
        if by_someone_else || before {
            return ActionResult {
                outcome: Outcome::AlreadyMember,
                details: json!({
                    "code": "ALREADY_MEMBER_BY_CHECK",
                    "joined_at": entry.date,
                    "inviter_id": entry.inviter_id,
                }),
            };
        }
        invited(json!("confirmed"))
    }

    /// Forgets a cached resolution that Telegram rejected; true when it was one.
    fn forget(state: &mut AccountState, target: &Target, resolved: &Resolved) -> bool {
        if !resolved.from_cache {
            return false;
        }
        state.stored.remove(&target.person.identifier.to_string());
        state.users.remove(&target.person.identifier);
        state.ids.remove(&resolved.user.id);
        true
    }
}

impl TelegramStrategy {
    /// Telegram refused this account's handle of the person even fresh (or it never had
    /// one): remembered for this account only, so its later attempts fail here, before any
    /// call, while other accounts still try with their own hashes.
    fn unreachable_here(
        state: &mut AccountState,
        target: &Target,
        error: &ApiError,
        failed: &PlatformError,
    ) {
        if stale_hash(error) {
            state.users.insert(
                target.person.identifier.clone(),
                Cached::Refused(failed.clone()),
            );
        }
    }
}

/// Takes one use from a rolling 24-hour budget of `budget` uses (`used`: their times, oldest
/// first); exhausted, a flood wait until the oldest use leaves the window.
fn spend(
    used: &mut VecDeque<DateTime<Utc>>,
    budget: u32,
    now: DateTime<Utc>,
    code: &str,
) -> Result<(), PlatformError> {
    let window = TimeDelta::hours(24);
    while used.front().is_some_and(|t| *t + window <= now) {
        used.pop_front();
    }
    if used.len() >= budget as usize {
        let oldest = used.front().copied().unwrap_or(now);
        let seconds = (oldest + window - now).num_seconds().max(1) as u64;
        return Err(PlatformError::FloodWait {
            seconds,
            code: code.to_owned(),
        });
    }
    used.push_back(now);
    Ok(())
}

fn parse_api_id(text: &str) -> Option<i32> {
    text.trim().parse::<i32>().ok().filter(|v| *v > 0)
}

fn dead(code: &str) -> PlatformError {
    PlatformError::AccountDead {
        code: code.to_owned(),
    }
}

fn target_error(outcome: Outcome, code: &str) -> PlatformError {
    PlatformError::Target {
        outcome,
        code: code.to_owned(),
    }
}

/// Keys of an account's device fields beside its session, in [`DeviceFields`]' order.
pub const DEVICE_KEYS: [&str; 5] = [
    "device_model",
    "system_version",
    "app_version",
    "system_lang_code",
    "lang_code",
];

/// The budget names kept in the registry.
const RESOLVE_BUDGET: &str = "resolve";
const IMPORT_BUDGET: &str = "import";

/// Slack between Telegram's clock and ours when reading a join date.
const JOIN_DATE_TOLERANCE_SECS: i64 = 120;

/// An account-dead error that is confirmed once before the account is written off: a 401
/// (the session's authorisation) or the transport's 404 (unknown auth key) — except a
/// deactivated or banned user, which Telegram states as a fact about the person, not as a
/// passing state of a server.
fn confirm_first(error: &ApiError) -> bool {
    match error {
        ApiError::Rpc { code: 401, .. } => {
            !(error.is("USER_DEACTIVATED") || error.is("USER_DEACTIVATED_BAN"))
        }
        ApiError::TransportStatus(404) => true,
        _ => false,
    }
}

/// Telegram rejected the access hash: stale for this account.
fn stale_hash(error: &ApiError) -> bool {
    error.is("USER_ID_INVALID") || error.is("PEER_ID_INVALID")
}

/// Names for the account's contact list: the target's, or a neutral placeholder (Telegram
/// requires a first name).
fn contact_names(target: &Target) -> (String, String) {
    let p = &target.person;
    let first = p
        .first_name
        .clone()
        .or_else(|| p.full_name.clone())
        .or_else(|| match &p.identifier {
            TargetIdentifier::Username(u) => Some(u.as_str().to_owned()),
            _ => None,
        })
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "Contact".to_owned());
    (first, p.last_name.clone().unwrap_or_default())
}

/// The outcome of an invite that Telegram answered without error: the user listed in
/// `missing_invitees` is privacy-restricted (never invited), otherwise invited.
pub fn invite_outcome(report: &InviteReport, user_id: i64) -> ActionResult {
    let missing = report
        .missing
        .iter()
        .find(|m| m.user_id == user_id)
        .or_else(|| report.missing.first());
    match missing {
        Some(m) => ActionResult {
            outcome: Outcome::PrivacyRestricted,
            details: json!({
                "missing_invitee": true,
                "premium_would_allow_invite": m.premium_would_allow_invite,
                "premium_required_for_pm": m.premium_required_for_pm,
            }),
        },
        None => ActionResult {
            outcome: Outcome::Invited,
            details: json!({ "confirmed_by_update": report.confirmed_by_update }),
        },
    }
}

#[async_trait]
impl InviteStrategy for TelegramStrategy {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn rate_limits(&self) -> LimitPolicy {
        LimitPolicy::telegram()
    }

    async fn initialize(&self, account: &AccountId) -> Result<(), PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        self.connected(account, &mut state).await.map(drop)
    }

    async fn check_invite_rights(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<(), PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let peer = self
            .resolve_group(account, &mut state, api.as_ref(), group)
            .await?;
        let rights = match self.timed(api.own_rights(peer)).await {
            Ok(rights) => rights,
            Err(e) => return Err(self.failed(account, &mut state, &e, CallKind::Read).await),
        };
        if !rights.can_invite() {
            return Err(PlatformError::Group {
                code: "NO_INVITE_RIGHTS".to_owned(),
                account_only: true,
            });
        }
        if let GroupPeer::Channel {
            channel,
            broadcast: true,
        } = peer
        {
            self.check_broadcast_room(account, &mut state, api.as_ref(), channel)
                .await?;
        }
        Ok(())
    }

    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let peer = self
            .resolve_group(account, &mut state, api.as_ref(), group)
            .await?;
        let mut retried = false;
        loop {
            let resolved = self
                .resolve_user(account, &mut state, api.as_ref(), target)
                .await?;
            let user = resolved.user;
            let started = self.clock.now();
            let answer = match peer {
                GroupPeer::Channel { channel, broadcast } => {
                    if broadcast {
                        self.check_broadcast_room(account, &mut state, api.as_ref(), channel)
                            .await?;
                    }
                    self.timed(api.invite_to_channel(channel, user)).await
                }
                GroupPeer::Chat { id } => self.timed(api.add_chat_user(id, user)).await,
            };
            let error = match answer {
                Ok(report) => {
                    let mut result = invite_outcome(&report, user.id);
                    if let GroupPeer::Channel { channel, .. } = peer
                        && result.outcome == Outcome::Invited
                        && !report.confirmed_by_update
                    {
                        result = self
                            .confirm_added(&state, api.as_ref(), channel, user, started)
                            .await;
                    }
                    if let GroupPeer::Channel {
                        channel,
                        broadcast: true,
                    } = peer
                        && result.outcome == Outcome::Invited
                        && let Some(count) = state.member_counts.get_mut(&channel.id)
                    {
                        *count += 1;
                    }
                    return Ok(result);
                }
                Err(e) => e,
            };
            if error.is("USER_ALREADY_PARTICIPANT") {
                return Ok(ActionResult {
                    outcome: Outcome::AlreadyMember,
                    details: json!({ "code": "USER_ALREADY_PARTICIPANT" }),
                });
            }
            // A rejected access hash means nothing was done: resolve afresh, once.
            if stale_hash(&error) && !retried && Self::forget(&mut state, target, &resolved) {
                retried = true;
                continue;
            }
            let failed = self
                .failed(account, &mut state, &error, CallKind::Write)
                .await;
            Self::unreachable_here(&mut state, target, &error, &failed);
            return Err(failed);
        }
    }

    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let mut retried = false;
        loop {
            let resolved = self
                .resolve_user(account, &mut state, api.as_ref(), target)
                .await?;
            let error = match self
                .timed(api.send_message(resolved.user, text, random_id))
                .await
            {
                Ok(sent) => {
                    return Ok(ActionResult {
                        outcome: Outcome::Sent,
                        details: json!({ "message_id": sent.message_id, "random_id": random_id }),
                    });
                }
                Err(e) => e,
            };
            // The caller's random_id is stored before its first attempt and reused on every
            // retry: Telegram refusing it as a duplicate means that attempt was delivered.
            if error.is("RANDOM_ID_DUPLICATE") {
                return Ok(ActionResult {
                    outcome: Outcome::Sent,
                    details: json!({ "random_id": random_id, "deduplicated": true }),
                });
            }
            if stale_hash(&error) && !retried && Self::forget(&mut state, target, &resolved) {
                retried = true;
                continue;
            }
            let failed = self
                .failed(account, &mut state, &error, CallKind::Write)
                .await;
            Self::unreachable_here(&mut state, target, &error, &failed);
            return Err(failed);
        }
    }

    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let resolved = self
            .resolve_user(account, &mut state, api.as_ref(), target)
            .await?;
        // A phone's import was undone after resolving: the contact is added like any other.
        let (first, last) = contact_names(target);
        match self
            .timed(api.add_contact(resolved.user, &first, &last))
            .await
        {
            Ok(()) => Ok(()),
            // Adding a contact twice changes nothing: read-like for retries.
            Err(e) => Err(self.failed(account, &mut state, &e, CallKind::Read).await),
        }
    }

    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let peer = self
            .resolve_group(account, &mut state, api.as_ref(), group)
            .await?;
        let resolved = self
            .resolve_user(account, &mut state, api.as_ref(), target)
            .await?;
        match self.timed(api.is_participant(peer, resolved.user)).await {
            Ok(member) => Ok(member),
            Err(e) => Err(self.failed(account, &mut state, &e, CallKind::Read).await),
        }
    }

    async fn group_key(
        &self,
        account: &AccountId,
        group: &GroupRef,
    ) -> Result<Option<String>, PlatformError> {
        let state = self.state(account);
        let mut state = state.lock().await;
        let api = self.connected(account, &mut state).await?;
        let peer = self
            .resolve_group(account, &mut state, api.as_ref(), group)
            .await?;
        Ok(Some(match peer {
            GroupPeer::Channel { channel, .. } => format!("telegram:channel:{}", channel.id),
            GroupPeer::Chat { id } => format!("telegram:chat:{id}"),
        }))
    }

    async fn disconnect(&self, account: &AccountId) {
        let state = self.state(account);
        let mut state = state.lock().await;
        if state.api.is_some() {
            Self::close(&mut state).await;
            debug!(account.id = %account, "Telegram account {account} disconnected");
        }
    }
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
