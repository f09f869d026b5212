//! Messenger accounts users give the embedded service: `POST /accounts` (a session string as
//! JSON, or a Telethon / Pyrogram `.session` file as multipart), `GET /accounts/{id}`,
//! `PATCH /accounts/{id}`, `DELETE /accounts/{id}`. `GET /accounts` (in `api`) lists them with
//! their limits' use, through the registry's directory.
//!
//! [`Accounts`] is the use case, shared with the command line (`invite-http accounts …`):
//! decode the session, check it with Telegram unless told not to (under the account's lease,
//! like every connection), seal its secrets and register it. The account id is
//! `tg-<auth_key_id>`: one per session key, so the same key twice is the same account (a 409),
//! and the lease that guards the check is the one the engine holds later.

mod session_file;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use invite_core::clock::Clock;
use invite_core::domain::{AccountId, Platform, UserId};
use invite_core::ports::{
    AccountPatch, AccountRegistry, NewAccount, RegisteredAccount, Registration, RegistryStatus,
    Secret, StoreError,
};
use invite_core::registry::effective_status;
use invite_store::seal::{AccountDevice, AccountSecrets, Sealer};
use invite_telegram::api::SelfUser;
use invite_telegram::lease::Held;
use invite_telegram::{
    ConnectionLease, Connector, DeviceFields, LoginError, Prompt, SessionString, SignIn,
    SignInConnector, TelegramConfig, VerifyError, sign_in, verify_session,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use session_file::{SessionFileError, session_from_file};

use crate::AppState;
use crate::api::{ApiJson, ApiQuery};
use crate::auth::AuthUser;
use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::wire::TelegramBudgetView;

/// Longest label.
pub const MAX_LABEL_CHARS: usize = 100;
/// Largest `.session` file accepted.
pub const MAX_SESSION_FILE_BYTES: usize = 50 * 1024 * 1024;

/// Why an account was not added or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Invalid input (a field and why).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// Telegram refused the session: dead key, wrong `api_id`, a bot (422).
    #[error("{0}")]
    Refused(String),
    /// The same session key or Telegram user is registered already (409).
    #[error("{0}")]
    Duplicate(String),
    /// The account is connected by another process right now (409).
    #[error("the account is connected by another process; try again in a minute")]
    InUse,
    /// Telegram answered the check with an unexpected error (502).
    #[error("{0}")]
    Upstream(String),
    /// Telegram or the store cannot be reached now (503).
    #[error("{0}")]
    Unavailable(String),
    /// No such account of the caller (404).
    #[error("no such account")]
    NotFound,
    /// Accounts are not enabled in this process (503).
    #[error("accounts are not available in this deployment")]
    NotConfigured,
    /// An error of the HTTP layer (authentication, unreadable body).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl AccountError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        AccountError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn store(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AccountError::NotFound,
            e => {
                tracing::warn!(error = %e, "account registry failed");
                AccountError::Unavailable("the account registry is unavailable".to_owned())
            }
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AccountError::Invalid { .. } | AccountError::Refused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AccountError::Duplicate(_) | AccountError::InUse => StatusCode::CONFLICT,
            AccountError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AccountError::Unavailable(_) | AccountError::NotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AccountError::NotFound => StatusCode::NOT_FOUND,
            AccountError::Api(e) => e.status(),
        }
    }
}

impl IntoResponse for AccountError {
    fn into_response(self) -> Response {
        let (kind, title) = match &self {
            AccountError::Api(_) => return self.into_api_response(),
            AccountError::Invalid { .. } => ("validation", "Invalid request"),
            AccountError::Refused(_) => ("session-refused", "Session refused"),
            AccountError::Duplicate(_) => ("duplicate-account", "Account registered already"),
            AccountError::InUse => ("account-in-use", "Account in use"),
            AccountError::Upstream(_) => ("telegram", "Telegram refused the check"),
            AccountError::Unavailable(_) => ("unavailable", "Service unavailable"),
            AccountError::NotFound => ("not-found", "Account not found"),
            AccountError::NotConfigured => ("not-configured", "Not configured"),
        };
        let status = self.status();
        let mut problem = Problem {
            kind: format!("urn:invite:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: Vec::new(),
            current_status: None,
            limit: None,
            error_id: None,
        };
        if let AccountError::Invalid { field, message } = &self {
            problem.errors.push(crate::error::FieldProblem {
                field: field.clone(),
                message: message.clone(),
            });
        }
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(PROBLEM_JSON),
        );
        response
    }
}

impl AccountError {
    fn into_api_response(self) -> Response {
        match self {
            AccountError::Api(e) => e.into_response(),
            other => other.into_response(),
        }
    }
}

/// What a new account is made of.
#[derive(Clone, Default)]
pub struct AddAccount {
    /// Messenger (only `telegram` has accounts to add).
    pub platform: String,
    /// A Telethon or Pyrogram session string.
    pub session: String,
    /// `api_id` (default `TELEGRAM_API_ID`).
    pub api_id: Option<i32>,
    /// `api_hash` (default `TELEGRAM_API_HASH`).
    pub api_hash: Option<String>,
    /// The owner's name for it.
    pub label: Option<String>,
    /// The device the session's login was made on, presented to Telegram on every
    /// connection (empty: the server's defaults).
    pub device: AccountDevice,
}

impl std::fmt::Debug for AddAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddAccount")
            .field("platform", &self.platform)
            .field("api_id", &self.api_id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A phone sign-in's options (`invite-http accounts login`).
#[derive(Clone, Default)]
pub struct Login {
    /// `api_id` (default `TELEGRAM_API_ID`).
    pub api_id: Option<i32>,
    /// `api_hash` (default `TELEGRAM_API_HASH`).
    pub api_hash: Option<String>,
    /// The owner's name for the account.
    pub label: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("api_id", &self.api_id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// The registry row of an account about to be stored, its secrets aside.
struct NewRegistration {
    id: AccountId,
    label: Option<String>,
    key_id: String,
    status: RegistryStatus,
    platform_user_id: Option<i64>,
    username: Option<String>,
    phone: Option<String>,
}

/// The accounts use case.
#[derive(Debug, Clone)]
pub struct Accounts {
    registry: Arc<dyn AccountRegistry>,
    sealer: Sealer,
    connector: Arc<dyn Connector>,
    lease: ConnectionLease,
    api_id: Option<i32>,
    api_hash: Option<Secret>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

/// `+` and the last four digits, the rest hidden.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let shown = digits.len().min(4);
    let hidden = digits.len() - shown;
    let tail: String = digits[hidden..].iter().collect();
    format!("+{}{tail}", "*".repeat(hidden))
}

impl Accounts {
    /// The use case over its parts; `api_id` / `api_hash` are the defaults of added accounts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<dyn AccountRegistry>,
        sealer: Sealer,
        connector: Arc<dyn Connector>,
        lease: ConnectionLease,
        api_id: Option<i32>,
        api_hash: Option<Secret>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registry,
            sealer,
            connector,
            lease,
            api_id,
            api_hash,
            clock,
            timeout: Duration::from_secs(30),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<dyn AccountRegistry> {
        &self.registry
    }

    /// Checks (when `verify`), seals and registers an account of `user`.
    pub async fn add(
        &self,
        user: UserId,
        input: AddAccount,
        verify: bool,
    ) -> Result<RegisteredAccount, AccountError> {
        let platform = input
            .platform
            .parse::<Platform>()
            .map_err(|e| AccountError::invalid("platform", e.to_string()))?;
        if platform != Platform::Telegram {
            return Err(AccountError::invalid(
                "platform",
                "only telegram accounts can be added (sandbox accounts are generated)",
            ));
        }
        let label = clean_label(input.label.as_deref())?;
        let device = clean_device(&input.device)?;
        let session = SessionString::parse(&input.session)
            .map_err(|e| AccountError::invalid("session", e.to_string()))?;
        let (api_id, api_hash) = self.credentials(input.api_id, input.api_hash)?;
        let key_id = session.key_fingerprint().to_string();
        let id = AccountId::parse(format!("tg-{key_id}"))
            .map_err(|e| AccountError::Unavailable(e.to_string()))?;
        // The same key: refused before connecting (a second connection of a session in use
        // would get it invalidated).
        match self.registry.sealed(&id).await {
            Ok(_) => return Err(self.duplicate(user, &id).await),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(AccountError::store(e)),
        }
        let (status, platform_user_id, username, phone) = if verify {
            let me = verify_session(
                &self.connector,
                Some(&self.lease),
                &id,
                &session,
                api_id,
                &device_fields(&device),
                self.timeout,
            )
            .await
            .map_err(|e| match e {
                VerifyError::Refused(_) => AccountError::Refused(e.to_string()),
                VerifyError::Unreachable(_) => AccountError::Unavailable(e.to_string()),
                VerifyError::Failed(_) => AccountError::Upstream(e.to_string()),
                VerifyError::InUse => AccountError::InUse,
            })?;
            (
                RegistryStatus::Active,
                Some(me.id),
                me.username,
                me.phone.as_deref().map(mask_phone),
            )
        } else {
            (RegistryStatus::Unverified, session.user_id(), None, None)
        };
        let registration = self
            .store(
                user,
                NewRegistration {
                    id,
                    label,
                    key_id,
                    status,
                    platform_user_id,
                    username,
                    phone,
                },
                AccountSecrets {
                    session: input.session.trim().to_owned(),
                    api_id,
                    api_hash,
                    device,
                },
            )
            .await?;
        match registration {
            Registration::Added(account) => Ok(account),
            Registration::Duplicate(existing) => Err(self.duplicate(user, &existing).await),
        }
    }

    /// Signs `user` in with a phone number (`invite-http accounts login`): phone, login code
    /// and 2FA password asked through `prompt`, on a new connection made by `connector` with
    /// `api_id` / `api_hash` (default `TELEGRAM_API_ID` / `TELEGRAM_API_HASH`). The new session
    /// is stored like an import: sealed, verified (`get_me` on the sign-in's own connection, so
    /// the new key is never used from two at once), the same Telegram user twice a 409. The
    /// account's lease is held from before it is registered until the sign-in's connection is
    /// closed, so the engine cannot open a second connection of the new key meanwhile. A
    /// session that is not kept (refused, duplicate, store failure) is logged out at once.
    pub async fn login(
        &self,
        user: UserId,
        connector: &dyn SignInConnector,
        prompt: &mut dyn Prompt,
        login: Login,
    ) -> Result<RegisteredAccount, AccountError> {
        let label = clean_label(login.label.as_deref())?;
        let (api_id, api_hash) = self.credentials(login.api_id, login.api_hash)?;
        let flow = connector.start(api_id, &api_hash).await.map_err(|e| {
            AccountError::Unavailable(format!("Telegram cannot be reached now ({e})"))
        })?;
        let me = match sign_in(flow.as_ref(), prompt).await {
            Ok(me) => me,
            Err(e) => {
                flow.disconnect().await;
                return Err(match e {
                    LoginError::Unreachable(_) | LoginError::FloodWait { .. } => {
                        AccountError::Unavailable(e.to_string())
                    }
                    e => AccountError::Refused(e.to_string()),
                });
            }
        };
        let kept = self
            .keep_signed_in(user, flow.as_ref(), me, label, api_id, api_hash)
            .await;
        flow.disconnect().await;
        let (account, held) = kept?;
        if let Some(held) = held {
            held.release().await;
        }
        Ok(account)
    }

    /// Stores what a sign-in made, or logs it out.
    async fn keep_signed_in(
        &self,
        user: UserId,
        flow: &dyn SignIn,
        me: SelfUser,
        label: Option<String>,
        api_id: i32,
        api_hash: String,
    ) -> Result<(RegisteredAccount, Option<Held>), AccountError> {
        let stored = async {
            let session = flow.session_string().map_err(|e| {
                AccountError::Upstream(format!("the sign-in left no session ({e})"))
            })?;
            let key_id = SessionString::parse(&session)
                .map_err(|e| AccountError::Upstream(format!("the sign-in left no session ({e})")))?
                .key_fingerprint()
                .to_string();
            let id = AccountId::parse(format!("tg-{key_id}"))
                .map_err(|e| AccountError::Unavailable(e.to_string()))?;
            let held = self
                .lease
                .take(&id)
                .await
                .map_err(|_| AccountError::InUse)?;
            let registration = self
                .store(
                    user,
                    NewRegistration {
                        id,
                        label,
                        key_id,
                        status: RegistryStatus::Active,
                        platform_user_id: Some(me.id),
                        username: me.username.clone(),
                        phone: me.phone.as_deref().map(mask_phone),
                    },
                    AccountSecrets {
                        session,
                        api_id,
                        api_hash,
                        device: AccountDevice::default(),
                    },
                )
                .await;
            match registration {
                Ok(Registration::Added(account)) => Ok((account, Some(held))),
                Ok(Registration::Duplicate(existing)) => {
                    held.release().await;
                    Err(self.duplicate(user, &existing).await)
                }
                Err(e) => {
                    held.release().await;
                    Err(e)
                }
            }
        }
        .await;
        if stored.is_err()
            && let Err(e) = flow.log_out().await
        {
            tracing::warn!(error = %e, "the new Telegram session that was not kept could not be logged out");
        }
        stored
    }

    /// `api_id` and `api_hash` given, else the defaults, checked.
    fn credentials(
        &self,
        api_id: Option<i32>,
        api_hash: Option<String>,
    ) -> Result<(i32, String), AccountError> {
        let api_id = api_id.or(self.api_id).ok_or_else(|| {
            AccountError::invalid("api_id", "is required (or set TELEGRAM_API_ID)")
        })?;
        if api_id <= 0 {
            return Err(AccountError::invalid(
                "api_id",
                "must be a positive integer",
            ));
        }
        let api_hash = match api_hash {
            Some(h) => h,
            None => self
                .api_hash
                .as_ref()
                .map(|h| h.expose().to_owned())
                .ok_or_else(|| {
                    AccountError::invalid("api_hash", "is required (or set TELEGRAM_API_HASH)")
                })?,
        };
        if api_hash.len() != 32 || !api_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AccountError::invalid(
                "api_hash",
                "must be the 32 hexadecimal digits of my.telegram.org",
            ));
        }
        Ok((api_id, api_hash))
    }

    /// Seals `secrets` and registers the account (audited when added).
    async fn store(
        &self,
        user: UserId,
        new: NewRegistration,
        secrets: AccountSecrets,
    ) -> Result<Registration, AccountError> {
        let sealed = self
            .sealer
            .seal(&new.id, &secrets)
            .map_err(|e| AccountError::Unavailable(e.to_string()))?;
        let registration = self
            .registry
            .register(NewAccount {
                id: new.id,
                user_id: user,
                platform: Platform::Telegram,
                label: new.label,
                platform_user_id: new.platform_user_id,
                username: new.username,
                phone_masked: new.phone,
                key_id: new.key_id,
                sealed,
                status: new.status,
                created_at: self.clock.now(),
            })
            .await
            .map_err(AccountError::store)?;
        if let Registration::Added(account) = &registration {
            tracing::info!(audit = true, user.id = %user, account.id = %account.id, "audit: user {user} added account {}", account.id);
        }
        Ok(registration)
    }

    async fn duplicate(&self, user: UserId, existing: &AccountId) -> AccountError {
        match self.registry.registered_account(user, existing).await {
            Ok(_) => AccountError::Duplicate(format!(
                "this Telegram account or session is registered already as {existing}"
            )),
            Err(_) => AccountError::Duplicate(
                "this Telegram account or session is registered already by another user".to_owned(),
            ),
        }
    }

    /// The caller's accounts.
    pub async fn list(
        &self,
        user: UserId,
        platform: Option<Platform>,
    ) -> Result<Vec<RegisteredAccount>, AccountError> {
        self.registry
            .registered(user, platform)
            .await
            .map_err(AccountError::store)
    }

    /// One account of the caller.
    pub async fn get(
        &self,
        user: UserId,
        id: &AccountId,
    ) -> Result<RegisteredAccount, AccountError> {
        self.registry
            .registered_account(user, id)
            .await
            .map_err(AccountError::store)
    }

    /// Changes the label or switches the account off or on.
    pub async fn update(
        &self,
        user: UserId,
        id: &AccountId,
        patch: AccountPatch,
    ) -> Result<RegisteredAccount, AccountError> {
        let patch = AccountPatch {
            label: match patch.label {
                Some(l) => Some(clean_label(l.as_deref())?),
                None => None,
            },
            enabled: patch.enabled,
        };
        let account = self
            .registry
            .update(user, id, &patch)
            .await
            .map_err(AccountError::store)?;
        tracing::info!(audit = true, user.id = %user, account.id = %id, "audit: user {user} changed account {id}");
        Ok(account)
    }

    /// Removes the account and its secrets.
    pub async fn remove(&self, user: UserId, id: &AccountId) -> Result<(), AccountError> {
        self.registry
            .remove(user, id)
            .await
            .map_err(AccountError::store)?;
        tracing::info!(audit = true, user.id = %user, account.id = %id, "audit: user {user} removed account {id}");
        Ok(())
    }

    /// The view of an account now.
    pub fn view(&self, a: &RegisteredAccount) -> RegisteredAccountView {
        RegisteredAccountView::new(a, self.clock.now())
    }

    /// What a Telegram account resolved and spent of its daily budgets, from the registry
    /// (the limits are the Telegram strategy's); `None` when the registry cannot say.
    pub async fn telegram_budget(&self, id: &AccountId) -> Option<TelegramBudgetView> {
        let limits = TelegramConfig::default();
        let since = self.clock.now() - chrono::TimeDelta::hours(24);
        let read = async {
            Ok::<_, invite_core::ports::StoreError>(TelegramBudgetView {
                resolved: self.registry.resolutions(id).await?.len(),
                resolutions_24h: self
                    .registry
                    .spends_since(id, "resolve", since)
                    .await?
                    .len(),
                resolve_budget_per_day: limits.resolve_budget_per_day,
                imports_24h: self.registry.spends_since(id, "import", since).await?.len(),
                import_budget_per_day: limits.import_budget_per_day,
            })
        };
        match read.await {
            Ok(view) => Some(view),
            Err(e) => {
                tracing::warn!(account.id = %id, error = %e, "budgets of account {id} not read");
                None
            }
        }
    }
}

/// A label as sent: at most [`MAX_LABEL_CHARS`] characters and no control character (as
/// the document says), kept trimmed; blank is none.
fn clean_label(label: Option<&str>) -> Result<Option<String>, AccountError> {
    let Some(label) = label else {
        return Ok(None);
    };
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(AccountError::invalid(
            "label",
            format!("at most {MAX_LABEL_CHARS} characters"),
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(AccountError::invalid(
            "label",
            "contains control characters",
        ));
    }
    let label = label.trim();
    Ok((!label.is_empty()).then(|| label.to_owned()))
}

/// The longest device field accepted.
pub const MAX_DEVICE_FIELD_CHARS: usize = 128;

/// Device fields as sent: each at most [`MAX_DEVICE_FIELD_CHARS`] characters without control
/// characters, trimmed; blank is none.
fn clean_device(device: &AccountDevice) -> Result<AccountDevice, AccountError> {
    let clean = |field: &'static str, v: &Option<String>| -> Result<Option<String>, AccountError> {
        let Some(v) = v else { return Ok(None) };
        if v.chars().count() > MAX_DEVICE_FIELD_CHARS {
            return Err(AccountError::invalid(
                field,
                format!("at most {MAX_DEVICE_FIELD_CHARS} characters"),
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(AccountError::invalid(field, "contains control characters"));
        }
        let v = v.trim();
        Ok((!v.is_empty()).then(|| v.to_owned()))
    };
    Ok(AccountDevice {
        device_model: clean("device_model", &device.device_model)?,
        system_version: clean("system_version", &device.system_version)?,
        app_version: clean("app_version", &device.app_version)?,
        system_lang_code: clean("system_lang_code", &device.system_lang_code)?,
        lang_code: clean("lang_code", &device.lang_code)?,
    })
}

/// The stored device as the Telegram connector takes it.
fn device_fields(device: &AccountDevice) -> DeviceFields {
    DeviceFields {
        device_model: device.device_model.clone(),
        system_version: device.system_version.clone(),
        app_version: device.app_version.clone(),
        system_lang_code: device.system_lang_code.clone(),
        lang_code: device.lang_code.clone(),
    }
}

// ---- wire ----

/// A new account (JSON). Multipart forms carry the same fields as text parts, and the session
/// as a `file` part instead of `session`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddAccountRequest {
    /// `telegram`.
    pub platform: String,
    /// A Telethon or Pyrogram session string. Stored sealed; never shown again.
    #[schema(example = "1BVtsOK8Bu…")]
    pub session: String,
    /// The application's api_id (default: `TELEGRAM_API_ID`).
    #[serde(default, deserialize_with = "crate::wire::optional_whole")]
    pub api_id: Option<i32>,
    /// The application's api_hash (default: `TELEGRAM_API_HASH`). Stored sealed.
    pub api_hash: Option<String>,
    /// A name for the account.
    pub label: Option<String>,
    /// The device model of the session's login (`Pixel 7`), presented to Telegram instead of
    /// the server's default; at most 128 characters, like the other device fields.
    pub device_model: Option<String>,
    /// Its operating system (`Android 14`).
    pub system_version: Option<String>,
    /// Its application version (`10.14.5 (4990)`).
    pub app_version: Option<String>,
    /// Its system language (`en`).
    pub system_lang_code: Option<String>,
    /// Its application language (`en`).
    pub lang_code: Option<String>,
}

/// A new account as a multipart form.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AddAccountForm {
    /// A Telethon or Pyrogram `.session` file (SQLite).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// `telegram`.
    platform: String,
    /// The application's api_id.
    api_id: Option<i32>,
    /// The application's api_hash.
    api_hash: Option<String>,
    /// A name for the account.
    label: Option<String>,
    /// Device model of the session's login.
    device_model: Option<String>,
    /// Its operating system.
    system_version: Option<String>,
    /// Its application version.
    app_version: Option<String>,
    /// Its system language.
    system_lang_code: Option<String>,
    /// Its application language.
    lang_code: Option<String>,
}

/// Options of `POST /accounts`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddQuery {
    /// `false`: store without connecting (status `unverified`); default `true`: connect and
    /// call `get_me` first.
    pub verify: Option<bool>,
}

/// A change of an account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccountRequest {
    /// New label (`null` clears it).
    #[serde(default, deserialize_with = "serde_with_none::deserialize")]
    #[schema(value_type = Option<String>)]
    pub label: Option<Option<String>>,
    /// `false` disables the account (tasks stop using it); `true` enables it again.
    pub enabled: Option<bool>,
}

/// A registered account (never its secrets).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredAccountView {
    /// Id (`tg-` and the session key's public id).
    pub id: String,
    /// Messenger.
    pub platform: String,
    /// The owner's name for it.
    pub label: Option<String>,
    /// Telegram user id (from `get_me`).
    pub telegram_user_id: Option<i64>,
    /// Username.
    pub username: Option<String>,
    /// Phone with all but the last four digits hidden.
    pub phone_masked: Option<String>,
    /// `unverified`, `active`, `cooling_down`, `spam_limited`, `frozen`, `dead` or `disabled`.
    pub status: String,
    /// End of `cooling_down` or `spam_limited`.
    pub status_until: Option<DateTime<Utc>>,
    /// Platform code behind the status (`PEER_FLOOD`, `AUTH_KEY_UNREGISTERED`…).
    pub status_reason: Option<String>,
    /// Added at.
    pub created_at: DateTime<Utc>,
    /// Last used by a task.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl RegisteredAccountView {
    /// The view of `a` at `now` (a timed status that is over shows as `active`).
    pub fn new(a: &RegisteredAccount, now: DateTime<Utc>) -> Self {
        let status = effective_status(a.status, a.status_until, now);
        let timed = status == a.status;
        Self {
            id: a.id.to_string(),
            platform: a.platform.to_string(),
            label: a.label.clone(),
            telegram_user_id: a.platform_user_id,
            username: a.username.clone(),
            phone_masked: a.phone_masked.clone(),
            status: status.to_string(),
            status_until: a.status_until.filter(|_| timed),
            status_reason: a.status_reason.clone().filter(|_| timed),
            created_at: a.created_at,
            last_used_at: a.last_used_at,
        }
    }
}

/// The caller's registered accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredAccountList {
    /// Accounts, oldest first.
    pub items: Vec<RegisteredAccountView>,
}

// ---- handlers ----

fn accounts(state: &AppState) -> Result<&Accounts, AccountError> {
    state.accounts().ok_or(AccountError::NotConfigured)
}

fn account_id(raw: &str) -> Result<AccountId, AccountError> {
    AccountId::parse(raw).map_err(|_| AccountError::NotFound)
}

async fn read_form(multipart: Multipart) -> Result<AddAccount, AccountError> {
    let mut multipart = multipart;
    let mut input = AddAccount::default();
    let mut file: Option<Vec<u8>> = None;
    let bad = |e: axum::extract::multipart::MultipartError| {
        AccountError::invalid(
            "body",
            format!("unreadable multipart body: {}", e.body_text()),
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let bytes = field.bytes().await.map_err(bad)?;
                if bytes.len() > MAX_SESSION_FILE_BYTES {
                    return Err(AccountError::invalid("file", "larger than 50 MB"));
                }
                file = Some(bytes.to_vec());
            }
            "device_model" | "system_version" | "app_version" | "system_lang_code"
            | "lang_code" => {
                let text = Some(field.text().await.map_err(bad)?);
                let d = &mut input.device;
                match name.as_str() {
                    "device_model" => d.device_model = text,
                    "system_version" => d.system_version = text,
                    "app_version" => d.app_version = text,
                    "system_lang_code" => d.system_lang_code = text,
                    _ => d.lang_code = text,
                }
            }
            "platform" | "session" | "api_id" | "api_hash" | "label" => {
                let text = field.text().await.map_err(bad)?;
                match name.as_str() {
                    "platform" => input.platform = text,
                    "session" => input.session = text,
                    "api_id" => {
                        input.api_id = Some(text.trim().parse().map_err(|_| {
                            AccountError::invalid("api_id", "must be a positive integer")
                        })?);
                    }
                    "api_hash" => input.api_hash = Some(text),
                    _ => input.label = Some(text),
                }
            }
            other => {
                return Err(AccountError::invalid(
                    &crate::edge::clip(other, invite_core::domain::ECHO_CHARS),
                    "unknown field (expected file, platform, api_id, api_hash, label)",
                ));
            }
        }
    }
    if input.platform.is_empty() {
        input.platform = "telegram".to_owned();
    }
    match file {
        Some(bytes) => {
            input.session = session_from_file(&bytes, input.api_id)
                .await
                .map_err(|e| AccountError::invalid("file", e.to_string()))?;
        }
        None if input.session.is_empty() => {
            return Err(AccountError::invalid(
                "file",
                "send a Telethon or Pyrogram .session file as `file`",
            ));
        }
        None => {}
    }
    Ok(input)
}

/// Add a messenger account.
///
/// JSON with a Telethon or Pyrogram session string, or `multipart/form-data` with a `file` part
/// holding a Telethon or Pyrogram `.session` file and the other fields as text parts.
/// `api_id` / `api_hash` default to `TELEGRAM_API_ID` / `TELEGRAM_API_HASH`. The session is
/// checked with Telegram (`get_me`) unless `?verify=false`. Secrets are sealed at rest and never
/// shown again.
#[utoipa::path(
    post, path = "/accounts", tag = "service",
    params(AddQuery),
    request_body(content(
        (AddAccountRequest = "application/json"),
        (AddAccountForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Added", body = RegisteredAccountView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Telegram user or session key is registered already, or the account is connected elsewhere", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, an unreadable session, or a session Telegram refuses (dead key, wrong api_id, a bot)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Telegram answered the check with an unexpected error", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Telegram cannot be reached now", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn add_account(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<AddQuery>,
    request: Request,
) -> Result<(StatusCode, Json<RegisteredAccountView>), AccountError> {
    let service = accounts(&state)?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let input = if multipart {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| AccountError::invalid("body", e.body_text()))?;
        read_form(form).await?
    } else {
        let ApiJson(body) = ApiJson::<AddAccountRequest>::from_request(request, &state).await?;
        AddAccount {
            platform: body.platform,
            session: body.session,
            api_id: body.api_id,
            api_hash: body.api_hash,
            label: body.label,
            device: AccountDevice {
                device_model: body.device_model,
                system_version: body.system_version,
                app_version: body.app_version,
                system_lang_code: body.system_lang_code,
                lang_code: body.lang_code,
            },
        }
    };
    let account = service.add(user, input, q.verify.unwrap_or(true)).await?;
    Ok((StatusCode::CREATED, Json(service.view(&account))))
}

/// One of the caller's registered accounts. Its use of the limits is in `GET /accounts`.
#[utoipa::path(
    get, path = "/accounts/{id}", tag = "service",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = RegisteredAccountView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account of the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_account(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RegisteredAccountView>, AccountError> {
    let service = accounts(&state)?;
    let account = service.get(user, &account_id(&id)?).await?;
    Ok(Json(service.view(&account)))
}

/// Rename an account, or switch it off (`"enabled": false`: tasks stop using it, and its
/// Telegram connection is closed, at its next step) or on.
#[utoipa::path(
    patch, path = "/accounts/{id}", tag = "service",
    params(("id" = String, Path, description = "Account id")),
    request_body = PatchAccountRequest,
    responses(
        (status = 200, description = "Changed", body = RegisteredAccountView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn patch_account(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchAccountRequest>,
) -> Result<Json<RegisteredAccountView>, AccountError> {
    let service = accounts(&state)?;
    let account = service
        .update(
            user,
            &account_id(&id)?,
            AccountPatch {
                label: body.label,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(Json(service.view(&account)))
}

/// Remove an account and its sealed secrets; tasks stop using it, and its Telegram connection
/// is closed, at its next step (its lanes stay idle: the same session added again resumes them).
#[utoipa::path(
    delete, path = "/accounts/{id}", tag = "service",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account of the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn delete_account(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AccountError> {
    accounts(&state)?.remove(user, &account_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The documented routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(
            routes!(add_account).layer(DefaultBodyLimit::max(MAX_SESSION_FILE_BYTES + 64 * 1024)),
        )
        .routes(routes!(get_account, patch_account, delete_account))
}

/// `Option<Option<T>>` from a field that may be absent, `null` or a value.
mod serde_with_none {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked_but_the_last_four_digits() {
        assert_eq!(mask_phone("79991234567"), "+*******4567");
        assert_eq!(mask_phone("+1 23"), "+123");
    }
}
