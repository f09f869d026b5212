//! Wiring: the one factory that picks backends from configuration ([`connect_backends`]),
//! the embedded engine with the sandbox platform, and the health of each dependency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use invite_core::async_trait;
use invite_core::clock::Clock;
use invite_core::domain::{AccountId, Platform, UserId};
use invite_core::engine::{Engine, EngineConfig, EngineParts};
use invite_core::import::ImportLimits;
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{
    InProcessQueue, MemoryLedger, MemoryRegistry, MemoryStore, NoEvents, StaticSecrets,
};
use invite_core::ports::Secret;
use invite_core::ports::TaskEvents;
use invite_core::ports::{
    AccountDirectory, AccountInfo, AccountLeases, AccountManager, AccountRegistry, AudienceSource,
    DirectoryError, InviteStrategy, JobQueue, LimitLedger, SecretStore, SuppressionList,
    TaskFilter, TaskStore,
};
use invite_core::registry::{RegistryDirectory, RegistryTracking};
use invite_core::retention::{Retention, RetentionPolicy};
use invite_core::sandbox::{MemoryWorld, SandboxConfig, SandboxStrategy, SandboxWorld};
use invite_core::service::{CampaignParts, Campaigns};
use invite_store::seal::{SealedSecrets, Sealer, SecretKey};
use invite_telegram::{
    ConnectionLease, Connector, GrammersConnector, TelegramConfig, TelegramStrategy,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;
use crate::auth::JwtAuth;
use crate::config::{Config, ParsingSettings, SandboxSettings, Storage};
use crate::observe::{MeteredAccounts, MeteredStore};
use crate::wire::CheckView;

/// Start-up failures of the wiring. The message names the variable at fault once.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A backend could not be reached or prepared.
    #[error("{}", named(what, message))]
    Backend {
        /// Which backend.
        what: &'static str,
        /// Why.
        message: String,
    },
}

fn named(var: &str, message: &str) -> String {
    if message.contains(var) {
        message.to_owned()
    } else {
        format!("{var}: {message}")
    }
}

/// The persistence and queue ports chosen from configuration.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Tasks, targets, lanes, logs.
    pub store: Arc<dyn TaskStore>,
    /// Do-not-contact list.
    pub suppression: Arc<dyn SuppressionList>,
    /// Account leases.
    pub leases: Arc<dyn AccountLeases>,
    /// Limit counters of the local account manager.
    pub ledger: Arc<dyn LimitLedger>,
    /// The sandbox platform's world (memberships, delivered messages).
    pub sandbox: Arc<dyn SandboxWorld>,
    /// Registered messenger accounts and their sealed secrets.
    pub registry: Arc<dyn AccountRegistry>,
    /// Where a generated secret key is kept: beside an SQLite file, else in the working
    /// directory.
    pub key_file: std::path::PathBuf,
    /// Work nudges.
    pub queue: Arc<dyn JobQueue>,
    /// Backend name for health and logs (`memory`, `sqlite`, `postgres`).
    pub store_kind: &'static str,
    /// Queue name for health and logs (`in-process`).
    pub queue_kind: &'static str,
    /// The database pool, to close on shutdown.
    pub pool: Option<invite_store::DbPool>,
    /// Parsing Service results (`PARSING_SERVICE_URL`); `None` when not configured.
    pub audience: Option<Arc<dyn AudienceSource>>,
    /// The RabbitMQ connection of the platform deployment (`AMQP_URL`); `None` in embedded
    /// mode. It is also [`Backends::queue`] and [`Backends::events`].
    pub amqp: Option<Arc<invite_amqp::ReconnectingQueue>>,
    /// Task events for other services (the topic exchange in the platform deployment).
    pub events: Arc<dyn TaskEvents>,
    /// The platform's Account Manager and Integration Service, when configured.
    pub platform: PlatformClients,
}

/// Clients of the platform's services chosen from configuration; `None` where the embedded
/// part serves instead.
#[derive(Debug, Clone, Default)]
pub struct PlatformClients {
    /// `ACCOUNT_MANAGER_URL` and its client.
    pub account_manager: Option<(String, Arc<invite_platform::HttpAccountManager>)>,
    /// `INTEGRATION_SERVICE_URL` and its client.
    pub integration: Option<(String, Arc<invite_platform::IntegrationClient>)>,
}

impl PlatformClients {
    /// The clients `config` asks for.
    pub fn connect(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, BuildError> {
        let services = &config.platform;
        let auth = || {
            services.auth().ok_or(BuildError::Backend {
                what: "INVITE_SERVICE_JWT_SECRET",
                message: "required by the platform's services".to_owned(),
            })
        };
        let mut out = Self::default();
        if let Some(url) = &services.account_manager_url {
            let client = invite_platform::HttpAccountManager::new(
                invite_platform::AccountManagerConfig::new(url, auth()?),
                clock.clone(),
            )
            .map_err(|e| BuildError::Backend {
                what: "ACCOUNT_MANAGER_URL",
                message: e.to_string(),
            })?;
            out.account_manager = Some((url.clone(), Arc::new(client)));
        }
        if let Some(url) = &services.integration_url {
            let client = invite_platform::IntegrationClient::new(
                invite_platform::IntegrationConfig::new(url, auth()?),
                clock,
            )
            .map_err(|e| BuildError::Backend {
                what: "INTEGRATION_SERVICE_URL",
                message: e.to_string(),
            })?;
            out.integration = Some((url.clone(), Arc::new(client)));
        }
        Ok(out)
    }
}

/// The directory of a deployment with the Integration Service: its accounts for Telegram,
/// generated sandbox accounts for the sandbox.
#[derive(Debug)]
struct PlatformDirectory {
    telegram: Arc<invite_platform::IntegrationClient>,
    others: Arc<dyn AccountDirectory>,
}

#[async_trait]
impl AccountDirectory for PlatformDirectory {
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        match platform {
            Platform::Telegram => {
                AccountDirectory::accounts(self.telegram.as_ref(), user, platform).await
            }
            _ => self.others.accounts(user, platform).await,
        }
    }
}

/// The audience source: the Parsing Service client of `invite-platform` when
/// `PARSING_SERVICE_URL` is set, else none.
fn audience_source(
    parsing: Option<&ParsingSettings>,
    clock: Arc<dyn Clock>,
) -> Result<Option<Arc<dyn AudienceSource>>, BuildError> {
    let Some(p) = parsing else {
        return Ok(None);
    };
    let auth = invite_platform::ServiceAuth::new(p.identity.clone(), p.secret.clone());
    let client = invite_platform::ParsingClient::new(
        invite_platform::ParsingConfig::new(&p.url, auth),
        clock,
    )
    .map_err(|e| BuildError::Backend {
        what: "PARSING_SERVICE_URL",
        message: e.to_string(),
    })?;
    Ok(Some(Arc::new(client)))
}

/// The one place that picks a backend: the in-memory ports, or the SQL stores of
/// `invite-store` (migrated here, at start); the Parsing Service client when configured. The
/// queue is RabbitMQ when `AMQP_URL` is set (the platform deployment), else in-process.
pub async fn connect_backends(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Backends, BuildError> {
    let amqp = match &config.amqp {
        Some(amqp) => Some(Arc::new(
            invite_amqp::ReconnectingQueue::connect(amqp.clone())
                .await
                .map_err(|e| BuildError::Backend {
                    what: "AMQP_URL",
                    message: e.to_string(),
                })?,
        )),
        None => None,
    };
    let (queue, queue_kind, events): (Arc<dyn JobQueue>, _, Arc<dyn TaskEvents>) = match &amqp {
        Some(q) => (q.clone(), "rabbitmq", q.clone()),
        None => (
            Arc::new(InProcessQueue::new()),
            "in-process",
            Arc::new(NoEvents),
        ),
    };
    let platform = PlatformClients::connect(config, clock.clone())?;
    let audience = audience_source(config.parsing.as_ref(), clock)?;
    match &config.storage {
        Storage::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok(Backends {
                store: store.clone(),
                suppression: store.clone(),
                leases: store,
                ledger: Arc::new(MemoryLedger::new()),
                sandbox: Arc::new(MemoryWorld::new()),
                registry: Arc::new(MemoryRegistry::new()),
                key_file: DEFAULT_KEY_FILE.into(),
                queue,
                store_kind: "memory",
                queue_kind,
                pool: None,
                audience,
                amqp,
                events,
                platform,
            })
        }
        Storage::Database(url) => {
            let backend = |e: invite_store::Error| BuildError::Backend {
                what: "DATABASE_URL",
                message: e.to_string(),
            };
            let stores = invite_store::connect(url.expose(), invite_store::PoolConfig::default())
                .await
                .map_err(backend)?;
            stores.migrate().await.map_err(backend)?;
            let store_kind = match stores.backend() {
                invite_store::Backend::Postgres => "postgres",
                invite_store::Backend::Sqlite => "sqlite",
            };
            Ok(Backends {
                store: stores.tasks.clone(),
                suppression: stores.suppression.clone(),
                leases: stores.leases.clone(),
                ledger: stores.ledger.clone(),
                sandbox: stores.sandbox.clone(),
                registry: stores.registry.clone(),
                key_file: key_file_beside(url.expose()),
                queue,
                store_kind,
                queue_kind,
                pool: Some(stores.pool().clone()),
                audience,
                amqp,
                events,
                platform,
            })
        }
    }
}

/// The key file when the database is not an SQLite file.
pub const DEFAULT_KEY_FILE: &str = "invite-secret.key";

/// `<database file>.key` for an SQLite file, else [`DEFAULT_KEY_FILE`].
fn key_file_beside(url: &str) -> std::path::PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or_default())
        .filter(|p| !p.is_empty() && !p.starts_with(':'));
    match path {
        Some(p) => format!("{p}.key").into(),
        None => DEFAULT_KEY_FILE.into(),
    }
}

/// Where the key that seals account secrets is read from Vault (with `VAULT_*` set).
pub const SECRET_KEY_PATH: &str = "secret/invite-service/secret_key";
/// Key of the sealing key at [`SECRET_KEY_PATH`] (32 bytes, base64 or hex).
pub const SECRET_KEY_KEY: &str = "key";

/// The key account secrets are sealed under: `INVITE_SECRET_KEY`; else, when `vault` is given
/// (`VAULT_*` set), [`SECRET_KEY_PATH`] in it; else the key file (created, mode 0600, when
/// absent; the start says so).
pub async fn secret_key(
    config: &Config,
    key_file: &std::path::Path,
    vault: Option<&dyn SecretStore>,
) -> Result<SecretKey, BuildError> {
    if let Some(key) = &config.telegram.secret_key {
        return SecretKey::parse(key.expose()).map_err(|e| BuildError::Backend {
            what: "INVITE_SECRET_KEY",
            message: e.to_string(),
        });
    }
    if let Some(vault) = vault {
        let failed = |message: String| BuildError::Backend {
            what: "VAULT_ADDR",
            message: format!(
                "the account-secret key at {SECRET_KEY_PATH}#{SECRET_KEY_KEY}: {message}"
            ),
        };
        let secret = vault
            .get(SECRET_KEY_PATH, SECRET_KEY_KEY)
            .await
            .map_err(|e| failed(e.to_string()))?;
        return SecretKey::parse(secret.expose()).map_err(|e| failed(e.to_string()));
    }
    let (key, created) = SecretKey::load_or_create(key_file).map_err(|e| BuildError::Backend {
        what: "INVITE_SECRET_KEY",
        message: format!("not set, and the key file failed: {e}"),
    })?;
    if created {
        tracing::warn!(
            path = %key_file.display(),
            "INVITE_SECRET_KEY is not set: generated a key file for account secrets at {} (mode 0600); keep it with the database, without it the stored sessions cannot be opened",
            key_file.display()
        );
    } else {
        tracing::info!(path = %key_file.display(), "account secrets sealed under the key file {}", key_file.display());
    }
    Ok(key)
}

/// Where the HS256 secret of the API's tokens is read (SPEC §9): path and key in the
/// [`SecretStore`].
pub const JWT_SECRET_PATH: &str = "secret/invite-service/jwt_secret";
/// Key of the JWT secret at [`JWT_SECRET_PATH`].
pub const JWT_SECRET_KEY: &str = "secret_key";

/// The secret store of embedded mode: the JWT secret from `INVITE_JWT_SECRET` (or generated
/// for the run) under [`JWT_SECRET_PATH`]. A Vault client takes its place in the platform
/// deployment.
pub fn embedded_secrets(jwt_secret: &Secret) -> Arc<dyn SecretStore> {
    Arc::new(StaticSecrets::new().with(JWT_SECRET_PATH, JWT_SECRET_KEY, jwt_secret.clone()))
}

/// Where the JWT secret comes from, chosen from the configuration.
#[derive(Debug, Clone)]
pub struct SecretSource {
    /// The store the secret is read from at [`JWT_SECRET_PATH`].
    pub store: Arc<dyn SecretStore>,
    /// The secret generated for this run, when nothing was configured (development only).
    pub generated: Option<Secret>,
}

/// The JWT secret's store: Vault when `VAULT_*` is set, else `INVITE_JWT_SECRET`, else a
/// secret generated for this run.
pub fn secret_source(config: &Config, clock: Arc<dyn Clock>) -> Result<SecretSource, BuildError> {
    if let Some(vault) = &config.vault {
        let store = invite_platform::VaultSecretStore::new(vault.clone(), clock).map_err(|e| {
            BuildError::Backend {
                what: "VAULT_ADDR",
                message: e.to_string(),
            }
        })?;
        return Ok(SecretSource {
            store: Arc::new(store),
            generated: None,
        });
    }
    let (secret, generated) = match &config.jwt.secret {
        Some(s) => (s.clone(), None),
        None => {
            let s = crate::auth::random_secret();
            (s.clone(), Some(s))
        }
    };
    Ok(SecretSource {
        store: embedded_secrets(&secret),
        generated,
    })
}

/// Generates the same `count` sandbox accounts (`sandbox-<user>-<n>`) for every user, and no
/// account on other platforms: the embedded mode's directory.
#[derive(Debug, Clone, Copy)]
pub struct SandboxDirectory {
    per_user: usize,
}

impl SandboxDirectory {
    /// `per_user` accounts for each user.
    pub fn new(per_user: usize) -> Self {
        Self { per_user }
    }
}

#[async_trait]
impl AccountDirectory for SandboxDirectory {
    async fn accounts(
        &self,
        user: UserId,
        platform: Platform,
    ) -> Result<Vec<AccountInfo>, DirectoryError> {
        if platform != Platform::Sandbox {
            return Ok(Vec::new());
        }
        (1..=self.per_user)
            .map(|n| {
                let id = AccountId::parse(format!("sandbox-{user}-{n:02}"))
                    .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
                Ok(AccountInfo {
                    display_name: Some(format!("Sandbox account {n}")),
                    id,
                    platform,
                    active: true,
                })
            })
            .collect()
    }
}

/// The accounts use case over `backends`' registry (the API's and the command line's).
pub fn accounts_use_case(
    config: &Config,
    backends: &Backends,
    sealer: Sealer,
    connector: Arc<dyn Connector>,
    lease: ConnectionLease,
    clock: Arc<dyn Clock>,
) -> crate::accounts::Accounts {
    crate::accounts::Accounts::new(
        backends.registry.clone(),
        sealer,
        connector,
        lease,
        config.telegram.api_id,
        config.telegram.api_hash.clone(),
        clock,
    )
}

/// The accounts use case of a short-lived process (the command line): the configured database
/// (migrated), its key, grammers, and a lease holder of its own.
pub async fn standalone_accounts(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<(crate::accounts::Accounts, Backends), BuildError> {
    let backends = connect_backends(config, clock.clone()).await?;
    let vault = match &config.vault {
        Some(_) => Some(secret_source(config, clock.clone())?.store),
        None => None,
    };
    let sealer = Sealer::new(&secret_key(config, &backends.key_file, vault.as_deref()).await?);
    let lease = ConnectionLease::new(
        backends.leases.clone(),
        invite_core::engine::unique_worker_id("invite-cli"),
        clock.clone(),
    );
    let accounts = accounts_use_case(
        config,
        &backends,
        sealer,
        Arc::new(GrammersConnector::default()),
        lease,
        clock,
    );
    Ok((accounts, backends))
}

/// The Telegram platform of one process, and what its use cases share with it.
#[derive(Debug, Clone)]
pub struct TelegramWiring {
    /// The Telegram strategy (see [`wire_telegram`]).
    pub strategy: Arc<dyn InviteStrategy>,
    /// The sealer of account secrets.
    pub sealer: Sealer,
    /// The process's connection lease (holder: its worker id).
    pub lease: ConnectionLease,
}

/// Wires the Telegram platform of a process whose engine is `worker_id`: account secrets
/// sealed under [`secret_key`] (`INVITE_SECRET_KEY`, else Vault's key when `VAULT_*` is set,
/// else the key file), every connection under the account's lease held by `worker_id`, and
/// sessions from the registry, or from `secrets` (Vault) when `INTEGRATION_SERVICE_URL` is
/// set. `secrets` is the process's secret store (Vault when `VAULT_*` is set). Both binaries,
/// `invite-http` and `invite-worker`, build theirs here, so a worker opens the sessions the
/// API registered.
pub async fn wire_telegram(
    config: &Config,
    backends: &Backends,
    secrets: &Arc<dyn SecretStore>,
    connector: Arc<dyn Connector>,
    worker_id: &str,
    clock: Arc<dyn Clock>,
) -> Result<TelegramWiring, BuildError> {
    let vault = config.vault.as_ref().map(|_| secrets.as_ref());
    let sealer = Sealer::new(&secret_key(config, &backends.key_file, vault).await?);
    let lease = ConnectionLease::new(backends.leases.clone(), worker_id.to_owned(), clock.clone());
    let vault_sessions = config
        .platform
        .integration_url
        .as_ref()
        .map(|_| secrets.clone());
    let strategy = telegram_strategy(
        config,
        vault_sessions,
        backends.registry.clone(),
        sealer.clone(),
        connector,
        lease.clone(),
        clock,
    )
    .await?;
    Ok(TelegramWiring {
        strategy,
        sealer,
        lease,
    })
}

/// Where each account's sealed secrets are served to the Telegram strategy.
const SESSIONS_PATH: &str = "secret/telegram/sessions";

/// The Telegram strategy over the registry's accounts: each account's session and `api_id`
/// opened from its sealed secrets, `TELEGRAM_API_ID` / `TELEGRAM_API_HASH` as defaults, and
/// every connection under the account's lease. With `vault` (a deployment with the
/// Integration Service), sessions are read from `{VAULT_TELEGRAM_SESSIONS_PATH}/{account_id}`
/// and the api credentials from `VAULT_TELEGRAM_API_CREDENTIALS_PATH` instead.
async fn telegram_strategy(
    config: &Config,
    vault: Option<Arc<dyn SecretStore>>,
    registry: Arc<dyn AccountRegistry>,
    sealer: Sealer,
    connector: Arc<dyn Connector>,
    lease: ConnectionLease,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn InviteStrategy>, BuildError> {
    if let Some(vault) = vault {
        let telegram_config = TelegramConfig {
            sessions_path: config.platform.sessions_path.clone(),
            api_credentials_path: config.platform.api_credentials_path.clone(),
            ..TelegramConfig::default()
        };
        let strategy =
            TelegramStrategy::with_account_credentials(telegram_config, vault, connector, clock)
                .await
                .map_err(|e| BuildError::Backend {
                    what: "VAULT_TELEGRAM_API_CREDENTIALS_PATH",
                    message: e.to_string(),
                })?
                .with_connection_lease(lease);
        return Ok(Arc::new(strategy));
    }
    let telegram_config = TelegramConfig {
        sessions_path: SESSIONS_PATH.to_owned(),
        ..TelegramConfig::default()
    };
    let mut defaults = StaticSecrets::new();
    if let Some(id) = config.telegram.api_id {
        defaults = defaults.with(
            &telegram_config.api_credentials_path,
            "api_id",
            Secret::new(id.to_string()),
        );
    }
    if let Some(hash) = &config.telegram.api_hash {
        defaults = defaults.with(
            &telegram_config.api_credentials_path,
            "api_hash",
            hash.clone(),
        );
    }
    let secrets = Arc::new(SealedSecrets::new(
        Arc::clone(&registry),
        sealer,
        SESSIONS_PATH,
        Arc::new(defaults),
    ));
    let strategy =
        TelegramStrategy::with_account_credentials(telegram_config, secrets, connector, clock)
            .await
            .map_err(|e| BuildError::Backend {
                what: "TELEGRAM_API_ID",
                message: e.to_string(),
            })?
            .with_connection_lease(lease)
            .with_resolutions(registry);
    Ok(Arc::new(strategy))
}

/// The sandbox's limit policy: Telegram's rules with every duration divided by the time scale.
pub fn sandbox_policy(settings: &SandboxSettings) -> LimitPolicy {
    LimitPolicy::telegram().time_scaled(settings.time_scale)
}

fn sandbox_config(settings: &SandboxSettings) -> SandboxConfig {
    let defaults = SandboxConfig::default();
    let scale = u64::from(settings.time_scale.max(1));
    let (lo, hi) = defaults.flood_wait_seconds;
    SandboxConfig {
        seed: settings.seed,
        flood_wait_seconds: ((lo / scale).max(1), (hi / scale).max(1)),
        limits: sandbox_policy(settings),
        ..defaults
    }
}

/// The sandbox platform, over the sandbox world of the backends (shared by every process on
/// one database).
pub fn sandbox_strategy(config: &Config, backends: &Backends) -> Arc<dyn InviteStrategy> {
    Arc::new(SandboxStrategy::with_world(
        sandbox_config(&config.sandbox),
        backends.sandbox.clone(),
    ))
}

/// An engine and the ports it shares with the use cases.
#[derive(Debug, Clone)]
pub struct EngineWiring {
    /// The engine (not running yet).
    pub engine: Arc<Engine>,
    /// The store as the engine and the API see it (counts metrics, announces changes).
    pub store: Arc<MeteredStore>,
    /// The local account manager, metered.
    pub accounts: Arc<MeteredAccounts>,
    /// The users' accounts (registered Telegram accounts, generated sandbox accounts).
    pub directory: Arc<dyn AccountDirectory>,
    /// The sandbox's limit policy.
    pub policy: LimitPolicy,
}

/// Wires an engine over `backends` with the Account Manager over HTTP when
/// `ACCOUNT_MANAGER_URL` is set, else the local account manager (the sandbox's policy); the
/// Integration Service's accounts when `INTEGRATION_SERVICE_URL` is set, else the registered
/// accounts (states tracked by the registry); generated sandbox accounts; and `strategies`; `engine` gives the worker id and the
/// tunables (the running-task limit comes from `config`). Both binaries build theirs here.
pub fn wire_engine(
    config: &Config,
    backends: &Backends,
    clock: Arc<dyn Clock>,
    strategies: Vec<Arc<dyn InviteStrategy>>,
    engine: EngineConfig,
) -> EngineWiring {
    let policy = sandbox_policy(&config.sandbox);
    let store = Arc::new(MeteredStore::new(backends.store.clone()));
    let manager: Arc<dyn AccountManager> = match &backends.platform.account_manager {
        Some((_, client)) => client.clone(),
        None => Arc::new(
            LocalAccountManager::new(backends.ledger.clone(), clock.clone(), config.sandbox.seed)
                .with_policy(Platform::Sandbox, policy),
        ),
    };
    let sandbox: Arc<dyn AccountDirectory> =
        Arc::new(SandboxDirectory::new(config.sandbox.accounts));
    let (manager, directory): (Arc<dyn AccountManager>, Arc<dyn AccountDirectory>) =
        match &backends.platform.integration {
            // Accounts, and their health, are the platform's: nothing to track here.
            Some((_, client)) => (
                manager,
                Arc::new(PlatformDirectory {
                    telegram: client.clone(),
                    others: sandbox,
                }),
            ),
            // Telegram accounts come from the registry, whose states follow the platform's
            // answers.
            None => (
                Arc::new(RegistryTracking::new(
                    manager,
                    backends.registry.clone(),
                    Platform::Telegram,
                    clock.clone(),
                )),
                Arc::new(RegistryDirectory::new(
                    backends.registry.clone(),
                    Platform::Telegram,
                    sandbox,
                )),
            ),
        };
    let accounts = Arc::new(MeteredAccounts::new(manager));
    let engine = Engine::new(
        EngineParts {
            store: store.clone(),
            suppression: backends.suppression.clone(),
            leases: backends.leases.clone(),
            accounts: accounts.clone(),
            directory: directory.clone(),
            clock,
        },
        strategies,
        EngineConfig {
            max_running_tasks: Some(config.limits.max_running_tasks as u64),
            ..engine
        },
    )
    .with_events(backends.events.clone());
    // The local limits live in the ledger: a group's history under its name as written joins
    // its stable key once resolved. The platform's Account Manager keeps its own.
    let engine = if backends.platform.account_manager.is_none() {
        engine.with_ledger(backends.ledger.clone())
    } else {
        engine
    };
    EngineWiring {
        engine: Arc::new(engine),
        store,
        accounts,
        directory,
        policy,
    }
}

/// The health of each dependency.
#[derive(Debug, Clone)]
pub struct Health {
    store: Arc<dyn TaskStore>,
    ledger: Arc<dyn LimitLedger>,
    directory: Arc<dyn AccountDirectory>,
    store_kind: &'static str,
    queue_kind: &'static str,
    secret_source: Option<&'static str>,
    engine_running: Arc<AtomicBool>,
    engine: Arc<Engine>,
    amqp: Option<Arc<invite_amqp::ReconnectingQueue>>,
    /// The engine runs in the `invite-worker` processes, not here (the API of the platform
    /// deployment).
    engine_elsewhere: bool,
    /// The platform's services, each probed when configured.
    platform: PlatformClients,
}

/// How long one probe of `/health` may take: a dependency that does not answer in time is
/// reported down rather than holding the answer (the probes run side by side).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// `probe`'s result, or a timeout error after [`PROBE_TIMEOUT`].
async fn within<T, E: std::fmt::Display>(
    probe: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
    }
}

impl Health {
    /// The health of an `invite-worker` process: its store, ledger, queue, directory and
    /// engine (no JWT secret: a worker serves no API).
    pub fn for_worker(
        backends: &Backends,
        directory: Arc<dyn AccountDirectory>,
        engine: Arc<Engine>,
        engine_running: Arc<AtomicBool>,
    ) -> Self {
        Self {
            store: backends.store.clone(),
            ledger: backends.ledger.clone(),
            directory,
            store_kind: backends.store_kind,
            queue_kind: backends.queue_kind,
            secret_source: None,
            engine_running,
            engine,
            amqp: backends.amqp.clone(),
            engine_elsewhere: false,
            platform: backends.platform.clone(),
        }
    }

    /// Probes every dependency, side by side, each within `PROBE_TIMEOUT`.
    pub async fn check(&self) -> Vec<CheckView> {
        let view = |name: &str, ok: bool, detail: String| CheckView {
            name: name.to_owned(),
            status: if ok { "ok" } else { "down" }.to_owned(),
            detail,
        };
        let probe = TaskFilter {
            limit: 1,
            ..TaskFilter::default()
        };
        let account = AccountId::parse("health-probe").expect("a valid id");
        let manager = async {
            match &self.platform.account_manager {
                Some((_, client)) => Some(within(client.account_state(&account)).await),
                None => None,
            }
        };
        let integration = async {
            match &self.platform.integration {
                Some((_, client)) => {
                    Some(within(client.fetch(UserId::new(0), Platform::Telegram)).await)
                }
                None => None,
            }
        };
        let (store, ledger, directory, manager, integration) = tokio::join!(
            within(self.store.list_tasks(UserId::new(0), &probe)),
            within(
                self.ledger
                    .history(&account, "", chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
            ),
            within(self.directory.accounts(UserId::new(0), Platform::Sandbox)),
            manager,
            integration,
        );
        let running = self.engine_running.load(Ordering::Relaxed);
        let engine = self.engine.health();
        let (engine_ok, engine_line) = if self.engine_elsewhere {
            (
                true,
                "in the invite-worker processes (platform deployment)".to_owned(),
            )
        } else {
            (
                running && (engine.store_ok || engine.passes == 0) && engine.unrecorded == 0,
                engine_detail(running, &engine),
            )
        };
        let queue_ok = match &self.amqp {
            Some(q) => q.is_connected().await,
            None => true,
        };
        let queue_detail = match &self.amqp {
            Some(q) if queue_ok => format!("rabbitmq {}", q.config().redacted_url()),
            Some(q) => format!("rabbitmq {}: reconnecting", q.config().redacted_url()),
            None => self.queue_kind.to_owned(),
        };
        let mut checks = vec![
            view(
                "store",
                store.is_ok(),
                match store {
                    Ok(_) => self.store_kind.to_owned(),
                    Err(e) => format!("{}: {e}", self.store_kind),
                },
            ),
            view(
                "limit_ledger",
                ledger.is_ok(),
                match ledger {
                    Ok(_) => self.store_kind.to_owned(),
                    Err(e) => format!("{}: {e}", self.store_kind),
                },
            ),
            view("queue", queue_ok, queue_detail),
            view(
                "account_directory",
                directory.is_ok(),
                match directory {
                    Ok(_) => "generated sandbox accounts".to_owned(),
                    Err(e) => e.to_string(),
                },
            ),
            match (&self.platform.account_manager, manager) {
                (Some((url, _)), Some(Ok(_))) => {
                    view("account_manager", true, format!("Account Manager at {url}"))
                }
                (Some((url, _)), Some(Err(e))) => view(
                    "account_manager",
                    false,
                    format!("Account Manager at {url}: {e}"),
                ),
                _ => view("account_manager", true, "local".to_owned()),
            },
        ];
        if let (Some((url, _)), Some(answer)) = (&self.platform.integration, integration) {
            checks.push(view(
                "integration_service",
                answer.is_ok(),
                match answer {
                    Ok(_) => format!("Telegram accounts from the Integration Service at {url}"),
                    Err(e) => format!("Integration Service at {url}: {e}"),
                },
            ));
        }
        checks.extend([view("engine", engine_ok, engine_line)]);
        if let Some(source) = self.secret_source {
            checks.push(view("jwt_secret", true, source.to_owned()));
        }
        checks
    }
}

/// The engine's line in `/health`: whether it runs, whether it can record results, and what
/// went wrong last.
fn engine_detail(running: bool, engine: &invite_core::engine::EngineHealth) -> String {
    let mut detail = if running {
        "in-process, running".to_owned()
    } else {
        "in-process, not running".to_owned()
    };
    if !engine.store_ok && engine.passes > 0 {
        detail.push_str("; not acting: results cannot be recorded");
    }
    if engine.unrecorded > 0 {
        detail.push_str(&format!(
            "; {} results wait to be recorded",
            engine.unrecorded
        ));
    }
    detail.push_str(&format!(
        "; {} passes, {} failed, {} panics caught",
        engine.passes, engine.failed_passes, engine.panics
    ));
    if let Some(e) = &engine.last_error {
        detail.push_str(&format!("; last error: {e}"));
    }
    detail
}

/// What the caller chooses beside the configuration.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Time (the system clock in production, a virtual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Secrets; the JWT secret is read at [`JWT_SECRET_PATH`] / [`JWT_SECRET_KEY`].
    pub secrets: Arc<dyn SecretStore>,
    /// Whether the JWT secret was generated for this run.
    pub secret_generated: bool,
    /// The Prometheus handle, when metrics are served.
    pub metrics: Option<PrometheusHandle>,
}

/// Everything one embedded process runs.
#[derive(Debug)]
pub struct Runtime {
    /// State of the HTTP handlers.
    pub state: AppState,
    /// The in-process engine.
    pub engine: Arc<Engine>,
    /// The store as the engine and the API see it (counts metrics, announces changes).
    pub store: Arc<MeteredStore>,
    queue: Arc<dyn JobQueue>,
    engine_running: Arc<AtomicBool>,
    pool: Option<invite_store::DbPool>,
    store_kind: &'static str,
    amqp: Option<Arc<invite_amqp::ReconnectingQueue>>,
    retention: Retention,
}

impl Runtime {
    /// The store's backend (`memory`, `sqlite`, `postgres`).
    pub fn store_kind(&self) -> &'static str {
        self.store_kind
    }

    /// Wires the backends, the local account manager, the sandbox platform, the engine and the
    /// use cases. With `AMQP_URL` set (the platform deployment) the engine is built (for
    /// `/health`) but not run: the API publishes work for the `invite-worker` processes.
    pub async fn build(config: &Config, options: RuntimeOptions) -> Result<Self, BuildError> {
        Self::build_with_telegram(config, options, Arc::new(GrammersConnector::default())).await
    }

    /// [`Runtime::build`] with the given Telegram connector (tests pass a fake Telegram).
    pub async fn build_with_telegram(
        config: &Config,
        options: RuntimeOptions,
        connector: Arc<dyn Connector>,
    ) -> Result<Self, BuildError> {
        let clock = options.clock;
        let backends = connect_backends(config, clock.clone()).await?;
        let platform_mode = backends.amqp.is_some();
        let worker_id = invite_core::engine::unique_worker_id("invite-http");
        let TelegramWiring {
            strategy: telegram,
            sealer,
            lease,
        } = wire_telegram(
            config,
            &backends,
            &options.secrets,
            connector.clone(),
            &worker_id,
            clock.clone(),
        )
        .await?;
        let EngineWiring {
            engine,
            store,
            accounts,
            directory,
            policy,
        } = wire_engine(
            config,
            &backends,
            clock.clone(),
            vec![sandbox_strategy(config, &backends), telegram],
            EngineConfig {
                worker_id,
                ..EngineConfig::default()
            },
        );
        let account_use = Arc::new(accounts_use_case(
            config,
            &backends,
            sealer,
            connector,
            lease,
            clock.clone(),
        ));
        let retention = Retention::new(
            store.clone(),
            clock.clone(),
            RetentionPolicy::days(config.retention_days),
        );
        let campaigns = Campaigns::new(
            CampaignParts {
                store: store.clone(),
                queue: backends.queue.clone(),
                accounts,
                directory: directory.clone(),
                ledger: Some(backends.ledger.clone()),
                clock,
                suppression: backends.suppression.clone(),
                audience: backends.audience.clone(),
            },
            config.limits,
        )
        .with_import_limits(ImportLimits {
            max_bytes: config.max_upload_bytes,
            ..ImportLimits::default()
        })
        .with_policy(Platform::Sandbox, policy)
        .with_events(backends.events.clone());
        let campaigns = if platform_mode {
            campaigns
        } else {
            campaigns.with_waker(engine.clone())
        };
        let engine_running = Arc::new(AtomicBool::new(false));
        let health = Health {
            store: store.clone(),
            ledger: backends.ledger.clone(),
            directory,
            store_kind: backends.store_kind,
            queue_kind: backends.queue_kind,
            secret_source: Some(if config.vault.is_some() {
                "Vault (secret/invite-service/jwt_secret)"
            } else if options.secret_generated {
                "generated for this run (development only)"
            } else {
                "INVITE_JWT_SECRET"
            }),
            engine_running: engine_running.clone(),
            engine: engine.clone(),
            amqp: backends.amqp.clone(),
            engine_elsewhere: platform_mode,
            platform: backends.platform.clone(),
        };
        let jwt_secret = options
            .secrets
            .get(JWT_SECRET_PATH, JWT_SECRET_KEY)
            .await
            .map_err(|e| BuildError::Backend {
                what: if config.vault.is_some() {
                    "VAULT_ADDR"
                } else {
                    "INVITE_JWT_SECRET"
                },
                message: e.to_string(),
            })?;
        let auth = JwtAuth::new(
            &jwt_secret,
            config.jwt.issuer.as_deref(),
            config.jwt.audience.as_deref(),
        );
        let state = AppState::new(Arc::new(campaigns), auth, health, options.metrics);
        state.set_accounts(account_use);
        Ok(Self {
            state,
            engine,
            store,
            queue: backends.queue,
            engine_running,
            pool: backends.pool,
            store_kind: backends.store_kind,
            amqp: backends.amqp,
            retention,
        })
    }

    /// Whether this process is the API of the platform deployment (`AMQP_URL` set).
    pub fn platform_mode(&self) -> bool {
        self.amqp.is_some()
    }

    /// Closes the broker connection and the database pool (after the server and the engine
    /// stopped).
    pub async fn close(&self) {
        if let Some(amqp) = &self.amqp {
            amqp.close().await;
        }
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
    }

    /// A receiver that changes whenever a task changes status or a target finishes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.store.subscribe()
    }

    /// Serves the API on `listener` with the engine and queue consumer in the background until
    /// `shutdown` completes; then stops the background work (waiting at most `drain`) and
    /// closes the database.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        drain: std::time::Duration,
    ) -> std::io::Result<()> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        self.spawn(&tracker, cancel.clone());
        let served = crate::serve(listener, self.state.clone(), shutdown).await;
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(?drain, "background work did not stop in time");
        }
        self.close().await;
        served
    }

    /// Runs the engine, the queue consumer (which wakes the engine for every job) and the
    /// retention job until `cancel` fires; all are tracked by `tracker` for a bounded drain on
    /// shutdown. In the platform deployment nothing runs here: the workers do it all.
    pub fn spawn(&self, tracker: &TaskTracker, cancel: CancellationToken) {
        if self.platform_mode() {
            return;
        }
        let retention = self.retention.clone();
        let token = cancel.clone();
        tracker.spawn(async move { retention.run(token).await });
        let engine = self.engine.clone();
        let running = self.engine_running.clone();
        let token = cancel.clone();
        tracker.spawn(async move {
            running.store(true, Ordering::Relaxed);
            engine.run(token).await;
            running.store(false, Ordering::Relaxed);
        });
        let engine = self.engine.clone();
        let queue = self.queue.clone();
        tracker.spawn(async move {
            loop {
                match queue.next(&cancel).await {
                    Ok(Some(delivery)) => {
                        engine.wake();
                        if let Err(e) = queue.ack(&delivery).await {
                            tracing::warn!(error = %e, "job not acknowledged");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "job queue failed; the engine keeps its own schedule");
                        break;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sealing_key_comes_from_the_variable_then_vault_then_a_file() {
        let key = SecretKey::generate().unwrap();
        let vault = StaticSecrets::new().with(
            SECRET_KEY_PATH,
            SECRET_KEY_KEY,
            Secret::new(key.to_base64()),
        );
        let file = std::env::temp_dir().join(format!(
            "invite-runtime-{}.key",
            invite_core::engine::unique_worker_id("t")
        ));
        let mut config = Config::default();
        assert_eq!(secret_key(&config, &file, Some(&vault)).await.unwrap(), key);
        assert!(!file.exists(), "no key file when Vault holds the key");
        let empty = StaticSecrets::new();
        let e = secret_key(&config, &file, Some(&empty)).await.unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
        let other = SecretKey::generate().unwrap();
        config.telegram.secret_key = Some(Secret::new(other.to_base64()));
        assert_eq!(
            secret_key(&config, &file, Some(&vault)).await.unwrap(),
            other
        );
        config.telegram.secret_key = None;
        let made = secret_key(&config, &file, None).await.unwrap();
        assert_eq!(secret_key(&config, &file, None).await.unwrap(), made);
        let _ = std::fs::remove_file(&file);
    }
}
