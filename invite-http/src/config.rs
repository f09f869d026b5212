//! Configuration from the environment (SPEC §14), read once at start into typed values. A bad
//! value stops the start with one line naming the variable.

use std::net::SocketAddr;
use std::str::FromStr;

use invite_core::ports::Secret;
use invite_core::service::ServiceLimits;

/// A variable with a value this build cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where tasks, targets, logs and limit counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In this process's memory, lost on exit (`DATABASE_URL=memory://`).
    Memory,
    /// A SQLite (`sqlite:…`) or PostgreSQL (`postgres://…`) database; the URL may hold a
    /// password, so it is kept as a secret.
    Database(Secret),
}

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://invite.db";

impl Default for Storage {
    fn default() -> Self {
        Storage::Database(Secret::new(DEFAULT_DATABASE_URL))
    }
}

/// Token checking.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// HS256 secret (`INVITE_JWT_SECRET`); a random one per run when absent.
    pub secret: Option<Secret>,
    /// Required `iss`, if set (`INVITE_JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud`, if set (`INVITE_JWT_AUDIENCE`).
    pub audience: Option<String>,
}

/// The simulated messenger of embedded mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Every duration of the sandbox's limit policy (pauses, spread, rolling window,
    /// cooldowns) is divided by this (`INVITE_SANDBOX_TIME_SCALE`); caps stay the same. The
    /// default, 1440, turns a day into a minute, so a sandbox task visibly moves within
    /// seconds. 1 keeps Telegram's real pacing.
    pub time_scale: u32,
    /// Sandbox accounts generated for every user (`INVITE_SANDBOX_ACCOUNTS`).
    pub accounts: usize,
    /// Seed of the simulated people and weather (`INVITE_SANDBOX_SEED`).
    pub seed: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            time_scale: 1440,
            accounts: 10,
            seed: 42,
        }
    }
}

/// The platform's Parsing Service (`PARSING_SERVICE_URL`), the source of `POST
/// /import/parsing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsingSettings {
    /// `PARSING_SERVICE_URL`: base URL of the service.
    pub url: String,
    /// `INVITE_SERVICE_IDENTITY`: the `sub` of the service token (default `invite-service`).
    pub identity: String,
    /// `INVITE_SERVICE_JWT_SECRET`: the HS256 secret shared with the platform's services.
    pub secret: Secret,
}

/// Default `sub` of the service token.
pub const DEFAULT_SERVICE_IDENTITY: &str = "invite-service";

/// Default largest upload: 10 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = invite_core::import::DEFAULT_MAX_BYTES;

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`, default `127.0.0.1:8003`.
    pub bind_addr: SocketAddr,
    /// `DATABASE_URL`.
    pub storage: Storage,
    /// `INVITE_JWT_*`.
    pub jwt: JwtConfig,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// `INVITE_MAX_*`.
    pub limits: ServiceLimits,
    /// `INVITE_SANDBOX_*`.
    pub sandbox: SandboxSettings,
    /// `INVITE_MAX_UPLOAD_BYTES`: largest file accepted by the import endpoints.
    pub max_upload_bytes: u64,
    /// `PARSING_SERVICE_URL` and the service token; `None` when unset.
    pub parsing: Option<ParsingSettings>,
    /// `VAULT_ADDR`, `VAULT_ROLE_ID`, `VAULT_SECRET_ID`: the JWT secret is then read from Vault
    /// (`secret/invite-service/jwt_secret`, key `secret_key`) instead of `INVITE_JWT_SECRET`.
    pub vault: Option<invite_platform::VaultConfig>,
    /// `TELEGRAM_API_ID`, `TELEGRAM_API_HASH`, `INVITE_SECRET_KEY`: Telegram accounts.
    pub telegram: TelegramSettings,
    /// `AMQP_URL`: the platform deployment. The API then publishes work to RabbitMQ for the
    /// `invite-worker` processes instead of running the engine; it needs PostgreSQL.
    pub amqp: Option<invite_amqp::AmqpConfig>,
    /// `INVITE_LOG_RETENTION_DAYS`: execution logs, and tasks finished, longer ago than this
    /// are removed by the periodic cleanup.
    pub retention_days: u32,
    /// `ACCOUNT_MANAGER_URL`, `INTEGRATION_SERVICE_URL`, the service token and the Vault paths
    /// of Telegram sessions.
    pub platform: PlatformServices,
}

/// Settings of the Telegram accounts users add.
#[derive(Debug, Clone, Default)]
pub struct TelegramSettings {
    /// `TELEGRAM_API_ID`: the default `api_id` of added accounts.
    pub api_id: Option<i32>,
    /// `TELEGRAM_API_HASH`: the default `api_hash` of added accounts.
    pub api_hash: Option<Secret>,
    /// `INVITE_SECRET_KEY`: the key account secrets are sealed under (32 bytes, base64 or hex);
    /// without it, a key file beside the database.
    pub secret_key: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8003)),
            storage: Storage::default(),
            jwt: JwtConfig::default(),
            log_format: LogFormat::default(),
            limits: ServiceLimits::default(),
            sandbox: SandboxSettings::default(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            parsing: None,
            vault: None,
            telegram: TelegramSettings::default(),
            amqp: None,
            retention_days: invite_core::retention::DEFAULT_RETENTION_DAYS,
            platform: PlatformServices::default(),
        }
    }
}

/// The platform's services a deployment may use instead of the embedded parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformServices {
    /// `ACCOUNT_MANAGER_URL`: the Account Manager over HTTP instead of the local manager.
    pub account_manager_url: Option<String>,
    /// `INTEGRATION_SERVICE_URL`: users' accounts (UUID ids) from the Integration Service
    /// instead of the embedded registry; their sessions then come from Vault.
    pub integration_url: Option<String>,
    /// `INVITE_SERVICE_IDENTITY` and `INVITE_SERVICE_JWT_SECRET`: the service token of every
    /// platform call (the secret also checks the tokens of `invite-http account-manager`).
    pub service: Option<(String, Secret)>,
    /// `VAULT_TELEGRAM_SESSIONS_PATH`: prefix of the per-account session secrets in Vault,
    /// `{path}/{account_id}` (default `secret/telegram/sessions`).
    pub sessions_path: String,
    /// `VAULT_TELEGRAM_API_CREDENTIALS_PATH`: the secret holding `api_id` and `api_hash`
    /// (default `secret/telegram/api_credentials`).
    pub api_credentials_path: String,
}

impl Default for PlatformServices {
    fn default() -> Self {
        Self {
            account_manager_url: None,
            integration_url: None,
            service: None,
            sessions_path: "secret/telegram/sessions".to_owned(),
            api_credentials_path: "secret/telegram/api_credentials".to_owned(),
        }
    }
}

impl PlatformServices {
    /// The service token's identity and secret, for the clients.
    pub fn auth(&self) -> Option<invite_platform::ServiceAuth> {
        self.service
            .as_ref()
            .map(|(identity, secret)| invite_platform::ServiceAuth::new(identity, secret.clone()))
    }
}

/// The variables of the Vault connection, all three required once one is set.
const VAULT_VARS: [&str; 3] = ["VAULT_ADDR", "VAULT_ROLE_ID", "VAULT_SECRET_ID"];

impl Config {
    /// What the operator should know about this configuration before it serves: an address
    /// open beyond this machine (the API has no TLS of its own; put it behind a proxy).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let ip = self.bind_addr.ip();
        if ip.is_unspecified() {
            out.push(format!(
                "BIND_ADDR={} listens on every interface: the API (and /metrics) is reachable \
                 from other hosts without TLS; bind 127.0.0.1 behind a reverse proxy unless \
                 this is intended",
                self.bind_addr
            ));
        } else if !ip.is_loopback() {
            out.push(format!(
                "BIND_ADDR={} is not a loopback address: the API is reachable from the network \
                 without TLS",
                self.bind_addr
            ));
        }
        out
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (empty values count as unset).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());
        let mut config = Config::default();
        if let Some(v) = get("BIND_ADDR") {
            config.bind_addr = parse("BIND_ADDR", &v, "an address such as 127.0.0.1:8003")?;
        }
        if let Some(v) = get("DATABASE_URL") {
            let scheme = v.split(':').next().unwrap_or_default().to_ascii_lowercase();
            config.storage = match scheme.as_str() {
                "memory" => Storage::Memory,
                "sqlite" => Storage::Database(Secret::new(v)),
                "postgres" | "postgresql" if v.contains("://") => Storage::Database(Secret::new(v)),
                _ => {
                    return Err(ConfigError {
                        var: "DATABASE_URL",
                        message: "expected sqlite:…, postgres://… or memory://".to_owned(),
                    });
                }
            };
        }
        if let Some(v) = vars.get("INVITE_JWT_SECRET") {
            if v.len() < 32 {
                return Err(ConfigError {
                    var: "INVITE_JWT_SECRET",
                    message: format!("must be at least 32 bytes for HS256 (it has {})", v.len()),
                });
            }
            config.jwt.secret = Some(Secret::new(v.clone()));
        }
        if VAULT_VARS.iter().any(|v| get(v).is_some()) {
            if config.jwt.secret.is_some() {
                return Err(ConfigError {
                    var: "INVITE_JWT_SECRET",
                    message: "set either INVITE_JWT_SECRET or the VAULT_* variables (the secret \
                              then comes from Vault), not both"
                        .to_owned(),
                });
            }
            let vault = invite_platform::VaultConfig::from_vars(|name| {
                get(name).ok_or(std::env::VarError::NotPresent)
            })
            .map_err(|e| {
                let message = e.to_string();
                let var = VAULT_VARS
                    .into_iter()
                    .find(|v| message.contains(v))
                    .unwrap_or("VAULT_ADDR");
                ConfigError { var, message }
            })?;
            config.vault = Some(vault);
        }
        if let Some(v) = get("TELEGRAM_API_ID") {
            config.telegram.api_id = Some(v.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(
                || ConfigError {
                    var: "TELEGRAM_API_ID",
                    message: "expected the positive integer api_id of my.telegram.org".to_owned(),
                },
            )?);
        }
        config.telegram.api_hash = get("TELEGRAM_API_HASH").map(Secret::new);
        if let Some(v) = get("INVITE_SECRET_KEY") {
            invite_store::seal::SecretKey::parse(&v).map_err(|e| ConfigError {
                var: "INVITE_SECRET_KEY",
                message: e.to_string(),
            })?;
            config.telegram.secret_key = Some(Secret::new(v));
        }
        config.jwt.issuer = get("INVITE_JWT_ISSUER");
        config.jwt.audience = get("INVITE_JWT_AUDIENCE");
        if let Some(v) = get("LOG_FORMAT") {
            config.log_format = match v.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "pretty" | "text" => LogFormat::Pretty,
                _ => {
                    return Err(ConfigError {
                        var: "LOG_FORMAT",
                        message: format!("expected json or pretty, got {v:?}"),
                    });
                }
            };
        }
        let limits = &mut config.limits;
        for (var, slot) in [
            (
                "INVITE_MAX_TARGETS_PER_TASK",
                &mut limits.max_targets_per_task,
            ),
            ("INVITE_MAX_RUNNING_TASKS", &mut limits.max_running_tasks),
            ("INVITE_MAX_NAME_LENGTH", &mut limits.max_name_length),
            (
                "INVITE_MAX_TEMPLATE_LENGTH",
                &mut limits.max_template_length,
            ),
        ] {
            if let Some(v) = get(var) {
                *slot = positive(var, &v)?;
            }
        }
        if let Some(v) = get("INVITE_SANDBOX_TIME_SCALE") {
            config.sandbox.time_scale = positive("INVITE_SANDBOX_TIME_SCALE", &v)?;
        }
        if let Some(v) = get("INVITE_SANDBOX_ACCOUNTS") {
            config.sandbox.accounts = positive("INVITE_SANDBOX_ACCOUNTS", &v)?;
            if config.sandbox.accounts > 1000 {
                return Err(ConfigError {
                    var: "INVITE_SANDBOX_ACCOUNTS",
                    message: "at most 1000".to_owned(),
                });
            }
        }
        if let Some(v) = get("INVITE_MAX_UPLOAD_BYTES") {
            config.max_upload_bytes = positive("INVITE_MAX_UPLOAD_BYTES", &v)?;
        }
        let secret = vars.get("INVITE_SERVICE_JWT_SECRET");
        match (get("PARSING_SERVICE_URL"), secret) {
            (Some(url), Some(secret)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError {
                        var: "PARSING_SERVICE_URL",
                        message: "expected an http:// or https:// URL".to_owned(),
                    });
                }
                config.parsing = Some(ParsingSettings {
                    url,
                    identity: get("INVITE_SERVICE_IDENTITY")
                        .unwrap_or_else(|| DEFAULT_SERVICE_IDENTITY.to_owned()),
                    secret: Secret::new(secret.clone()),
                });
            }
            (Some(_), None) => {
                return Err(ConfigError {
                    var: "INVITE_SERVICE_JWT_SECRET",
                    message: "required with PARSING_SERVICE_URL: the HS256 secret of the \
                              service token"
                        .to_owned(),
                });
            }
            (None, _) => {}
        }
        if let Some(v) = get("INVITE_LOG_RETENTION_DAYS") {
            config.retention_days = positive("INVITE_LOG_RETENTION_DAYS", &v)?;
            if config.retention_days > 36_500 {
                return Err(ConfigError {
                    var: "INVITE_LOG_RETENTION_DAYS",
                    message: "at most 36500 days".to_owned(),
                });
            }
        }
        if get("AMQP_URL").is_some() {
            let amqp = invite_amqp::AmqpConfig::from_lookup(|name| get(name)).map_err(|e| {
                ConfigError {
                    var: "AMQP_URL",
                    message: e.to_string().trim_start_matches("AMQP_URL ").to_owned(),
                }
            })?;
            let postgres = matches!(&config.storage, Storage::Database(url)
                if url.expose().starts_with("postgres"));
            if !postgres {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    message: "the platform deployment (AMQP_URL set) shares one PostgreSQL \
                              database between the API and the workers: expected postgres://…"
                        .to_owned(),
                });
            }
            // Queues and exchange named `<prefix>invite-…`: several deployments (or test runs)
            // on one broker stay apart.
            config.amqp = Some(match get("AMQP_QUEUE_PREFIX") {
                Some(prefix) => amqp.with_queue_prefix(prefix),
                None => amqp,
            });
        }
        if let Some(v) = get("INVITE_SANDBOX_SEED") {
            config.sandbox.seed = parse("INVITE_SANDBOX_SEED", &v, "an unsigned integer")?;
        }
        config.platform = platform_services(&get, config.vault.is_some())?;
        Ok(config)
    }
}

/// `ACCOUNT_MANAGER_URL`, `INTEGRATION_SERVICE_URL` and their companions. A half-configured
/// platform stops the start with one line per problem.
fn platform_services(
    get: &dyn Fn(&str) -> Option<String>,
    vault: bool,
) -> Result<PlatformServices, ConfigError> {
    let mut out = PlatformServices::default();
    let mut problems: Vec<ConfigError> = Vec::new();
    let url = |var: &'static str, problems: &mut Vec<ConfigError>| {
        let v = get(var)?;
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            problems.push(ConfigError {
                var,
                message: "expected an http:// or https:// URL".to_owned(),
            });
        }
        Some(v)
    };
    out.account_manager_url = url("ACCOUNT_MANAGER_URL", &mut problems);
    out.integration_url = url("INTEGRATION_SERVICE_URL", &mut problems);
    if let Some(secret) = get("INVITE_SERVICE_JWT_SECRET") {
        let identity =
            get("INVITE_SERVICE_IDENTITY").unwrap_or_else(|| DEFAULT_SERVICE_IDENTITY.to_owned());
        out.service = Some((identity, Secret::new(secret)));
    }
    for (var, set) in [
        ("ACCOUNT_MANAGER_URL", out.account_manager_url.is_some()),
        ("INTEGRATION_SERVICE_URL", out.integration_url.is_some()),
    ] {
        if set && out.service.is_none() {
            problems.push(ConfigError {
                var: "INVITE_SERVICE_JWT_SECRET",
                message: format!("required with {var}: the HS256 secret of the service token"),
            });
        }
    }
    if out.integration_url.is_some() && !vault {
        problems.push(ConfigError {
            var: "VAULT_ADDR",
            message: "required with INTEGRATION_SERVICE_URL (with VAULT_ROLE_ID and \
                      VAULT_SECRET_ID): the sessions of the Integration Service's accounts \
                      are read from Vault"
                .to_owned(),
        });
    }
    for (var, slot) in [
        ("VAULT_TELEGRAM_SESSIONS_PATH", &mut out.sessions_path),
        (
            "VAULT_TELEGRAM_API_CREDENTIALS_PATH",
            &mut out.api_credentials_path,
        ),
    ] {
        if let Some(v) = get(var) {
            let v = v.trim_matches('/').to_owned();
            if v.is_empty() || v.split('/').any(str::is_empty) {
                problems.push(ConfigError {
                    var,
                    message: "expected a secret path such as secret/telegram/sessions".to_owned(),
                });
            }
            *slot = v;
        }
    }
    let mut problems = problems.into_iter();
    match problems.next() {
        None => Ok(out),
        Some(first) => Err(problems.fold(first, |mut all, next| {
            all.message.push_str(&format!("\n{next}"));
            all
        })),
    }
}

fn parse<T: FromStr>(var: &'static str, value: &str, expected: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError {
        var,
        message: format!("expected {expected}, got {value:?}"),
    })
}

fn positive<T: FromStr + Default + PartialEq>(
    var: &'static str,
    value: &str,
) -> Result<T, ConfigError> {
    let n: T = parse(var, value, "a positive integer")?;
    if n == T::default() {
        return Err(ConfigError {
            var,
            message: "must be a positive integer".to_owned(),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8003");
        assert_eq!(
            c.storage,
            Storage::Database(Secret::new("sqlite://invite.db"))
        );
        assert!(c.jwt.secret.is_none());
        assert_eq!(c.limits, ServiceLimits::default());
        assert_eq!(c.sandbox.time_scale, 1440);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("BIND_ADDR", "nowhere"),
            ("LOG_FORMAT", "xml"),
            ("INVITE_MAX_RUNNING_TASKS", "0"),
            ("INVITE_MAX_TARGETS_PER_TASK", "-3"),
            ("INVITE_SANDBOX_TIME_SCALE", "fast"),
            ("INVITE_JWT_SECRET", "short"),
            ("DATABASE_URL", "mysql://user:hunter2@x"),
            ("AMQP_URL", "amqps://guest:hunter2@localhost/%2f"),
            ("INVITE_LOG_RETENTION_DAYS", "0"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
            let line = err.to_string();
            assert!(line.starts_with(&format!("{var}: ")), "{line}");
            assert!(!line.contains('\n'));
            assert!(!line.contains("short"), "secrets never echoed: {line}");
            assert!(!line.contains("hunter2"), "secrets never echoed: {line}");
        }
    }

    #[test]
    fn an_address_open_to_the_network_is_warned_about() {
        assert!(Config::default().warnings().is_empty());
        for (addr, warned) in [
            ("0.0.0.0:8003", true),
            ("[::]:8003", true),
            ("10.0.0.5:8003", true),
            ("127.0.0.1:9000", false),
            ("[::1]:9000", false),
        ] {
            let c = Config::from_vars(vars(&[("BIND_ADDR", addr)])).unwrap();
            let w = c.warnings();
            assert_eq!(!w.is_empty(), warned, "{addr}: {w:?}");
            assert!(w.iter().all(|l| l.contains("BIND_ADDR")));
        }
    }

    #[test]
    fn values_are_read() {
        let c = Config::from_vars(vars(&[
            ("BIND_ADDR", "0.0.0.0:9000"),
            ("LOG_FORMAT", "JSON"),
            ("INVITE_MAX_TARGETS_PER_TASK", "50"),
            ("INVITE_JWT_SECRET", &"s".repeat(40)),
            ("INVITE_JWT_ISSUER", "platform"),
            ("INVITE_SANDBOX_TIME_SCALE", "1"),
            ("DATABASE_URL", "memory://"),
        ]))
        .unwrap();
        assert_eq!(c.storage, Storage::Memory);
        assert_eq!(c.bind_addr.port(), 9000);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.limits.max_targets_per_task, 50);
        assert_eq!(c.jwt.issuer.as_deref(), Some("platform"));
        assert_eq!(c.sandbox.time_scale, 1);
        assert_eq!(format!("{:?}", c.jwt.secret), "Some(Secret(***))");
        assert_eq!(c.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        assert!(c.parsing.is_none());
    }

    #[test]
    fn vault_needs_all_three_variables_and_replaces_the_jwt_secret() {
        let err = Config::from_vars(vars(&[("VAULT_ADDR", "http://vault:8200")])).unwrap_err();
        assert_eq!(err.var, "VAULT_ROLE_ID", "{err}");
        let err = Config::from_vars(vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role-1"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "VAULT_SECRET_ID", "{err}");
        let all = [
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role-1"),
            ("VAULT_SECRET_ID", "s3cret-id-value"),
        ];
        let err =
            Config::from_vars(vars(&[all[1], all[2], ("VAULT_ADDR", "vault:8200")])).unwrap_err();
        assert_eq!(err.var, "VAULT_ADDR", "{err}");
        assert!(!err.to_string().contains("s3cret-id-value"));
        let c = Config::from_vars(vars(&all)).unwrap();
        assert!(c.vault.is_some());
        assert!(!format!("{c:?}").contains("s3cret-id-value"));
        let mut both = all.to_vec();
        let long = "s".repeat(40);
        both.push(("INVITE_JWT_SECRET", &long));
        let err = Config::from_vars(vars(&both)).unwrap_err();
        assert_eq!(err.var, "INVITE_JWT_SECRET");
        assert!(!err.to_string().contains(&long));
    }

    #[test]
    fn the_parsing_service_needs_its_secret() {
        let err =
            Config::from_vars(vars(&[("PARSING_SERVICE_URL", "http://parsing:8000")])).unwrap_err();
        assert_eq!(err.var, "INVITE_SERVICE_JWT_SECRET");
        let c = Config::from_vars(vars(&[
            ("PARSING_SERVICE_URL", "http://parsing:8000"),
            ("INVITE_SERVICE_JWT_SECRET", "platform-secret"),
            ("INVITE_MAX_UPLOAD_BYTES", "1024"),
        ]))
        .unwrap();
        let p = c.parsing.unwrap();
        assert_eq!(
            (p.url.as_str(), p.identity.as_str()),
            ("http://parsing:8000", "invite-service")
        );
        assert!(!format!("{p:?}").contains("platform-secret"));
        assert_eq!(c.max_upload_bytes, 1024);
    }

    #[test]
    fn a_half_configured_platform_names_every_missing_companion() {
        let err = Config::from_vars(vars(&[
            ("ACCOUNT_MANAGER_URL", "http://am:8005"),
            ("INTEGRATION_SERVICE_URL", "integration:8000"),
        ]))
        .unwrap_err();
        let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "INTEGRATION_SERVICE_URL: expected an http:// or https:// URL",
                "INVITE_SERVICE_JWT_SECRET: required with ACCOUNT_MANAGER_URL: the HS256 secret of the service token",
                "INVITE_SERVICE_JWT_SECRET: required with INTEGRATION_SERVICE_URL: the HS256 secret of the service token",
                "VAULT_ADDR: required with INTEGRATION_SERVICE_URL (with VAULT_ROLE_ID and VAULT_SECRET_ID): the sessions of the Integration Service's accounts are read from Vault",
            ]
        );
    }

    #[test]
    fn the_platform_services_and_their_vault_paths() {
        let c = Config::from_vars(vars(&[
            ("ACCOUNT_MANAGER_URL", "http://am:8005"),
            ("INTEGRATION_SERVICE_URL", "http://integration:8000"),
            ("INVITE_SERVICE_JWT_SECRET", "platform-secret"),
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "secret-id"),
            ("VAULT_TELEGRAM_SESSIONS_PATH", "/kv/tg/sessions/"),
        ]))
        .unwrap();
        let p = &c.platform;
        assert_eq!(p.account_manager_url.as_deref(), Some("http://am:8005"));
        assert_eq!(
            p.integration_url.as_deref(),
            Some("http://integration:8000")
        );
        assert_eq!(p.sessions_path, "kv/tg/sessions");
        assert_eq!(p.api_credentials_path, "secret/telegram/api_credentials");
        assert_eq!(p.auth().unwrap().identity, "invite-service");
        assert!(!format!("{p:?}").contains("platform-secret"));
        let err = Config::from_vars(vars(&[("VAULT_TELEGRAM_SESSIONS_PATH", "a//b")])).unwrap_err();
        assert_eq!(err.var, "VAULT_TELEGRAM_SESSIONS_PATH");
        let embedded = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(embedded.platform, PlatformServices::default());
    }

    #[test]
    fn amqp_url_is_the_platform_deployment_on_postgres() {
        let amqp = ("AMQP_URL", "amqp://guest:s3cretpw@127.0.0.1:5672/%2f");
        let err = Config::from_vars(vars(&[amqp])).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL", "{err}");
        let c = Config::from_vars(vars(&[
            amqp,
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/invite"),
            ("INVITE_LOG_RETENTION_DAYS", "7"),
        ]))
        .unwrap();
        let shown = format!("{:?}", c.amqp.expect("platform mode"));
        assert!(!shown.contains("s3cretpw"), "{shown}");
        assert_eq!(c.retention_days, 7);
        assert_eq!(Config::default().retention_days, 30);
        assert!(Config::default().amqp.is_none());
    }
}
