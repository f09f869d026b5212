//! The worker's configuration from the environment, read once at start. It shares the API's
//! variables (`DATABASE_URL`, `AMQP_URL`, `AMQP_QUEUE_PREFIX`, `LOG_FORMAT`, `INVITE_SANDBOX_*`,
//! `INVITE_MAX_RUNNING_TASKS`, `INVITE_LOG_RETENTION_DAYS`: one deployment, one set of
//! values) and adds its own: the admin address and the engine's timers. A bad value stops
//! the start with one line naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::engine::EngineConfig;
use invite_http::config::{Config, ConfigError};

/// Default address of `/health` and `/metrics`.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:8004";

/// The engine's timers (each overridable for tests and tuning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineTimers {
    /// `INVITE_HEARTBEAT_SECONDS`: how often the worker renews its heartbeat and looks for
    /// claims of stopped workers.
    pub heartbeat: TimeDelta,
    /// `INVITE_HOLDER_TIMEOUT_SECONDS`: a worker silent this long is dead; its claims are
    /// recovered (at least three heartbeats).
    pub holder_timeout: TimeDelta,
    /// `INVITE_LEASE_TTL_SECONDS`: how long an account lease lasts without renewal.
    pub lease_ttl: TimeDelta,
    /// `INVITE_IDLE_POLL_SECONDS`: the longest sleep between two passes (the database is
    /// the timer; a job wakes the worker sooner).
    pub idle_poll: TimeDelta,
}

impl Default for EngineTimers {
    fn default() -> Self {
        let d = EngineConfig::default();
        Self {
            heartbeat: d.heartbeat_interval,
            holder_timeout: d.holder_timeout,
            lease_ttl: d.lease_ttl,
            idle_poll: d.idle_poll,
        }
    }
}

impl EngineTimers {
    /// The engine's configuration with these timers and `worker_id`.
    pub fn engine_config(&self, worker_id: String) -> EngineConfig {
        EngineConfig {
            worker_id,
            heartbeat_interval: self.heartbeat,
            holder_timeout: self.holder_timeout,
            lease_ttl: self.lease_ttl,
            idle_poll: self.idle_poll,
            ..EngineConfig::default()
        }
    }
}

/// Everything a worker process is configured with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The variables shared with the API (`AMQP_URL` and a PostgreSQL `DATABASE_URL` are
    /// required here).
    pub shared: Config,
    /// `WORKER_ADMIN_ADDR`: where `/health` and `/metrics` are served.
    pub admin_addr: SocketAddr,
    /// The engine's timers.
    pub timers: EngineTimers,
    /// `INVITE_WORKER_DRAIN_SECONDS`: how long SIGTERM waits for the step in flight.
    pub drain: Duration,
}

impl WorkerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());
        if get("AMQP_URL").is_none() {
            return Err(ConfigError {
                var: "AMQP_URL",
                message: "required: the worker takes its jobs from RabbitMQ \
                          (amqp://user:password@host:5672/vhost)"
                    .to_owned(),
            });
        }
        let shared = Config::from_vars(vars.clone())?;
        let admin_addr = match get("WORKER_ADMIN_ADDR") {
            Some(v) => v.parse().map_err(|_| ConfigError {
                var: "WORKER_ADMIN_ADDR",
                message: format!("expected an address such as {DEFAULT_ADMIN_ADDR}, got {v:?}"),
            })?,
            None => DEFAULT_ADMIN_ADDR.parse().expect("a valid default"),
        };
        let mut timers = EngineTimers::default();
        for (var, slot) in [
            ("INVITE_HEARTBEAT_SECONDS", &mut timers.heartbeat),
            ("INVITE_HOLDER_TIMEOUT_SECONDS", &mut timers.holder_timeout),
            ("INVITE_LEASE_TTL_SECONDS", &mut timers.lease_ttl),
            ("INVITE_IDLE_POLL_SECONDS", &mut timers.idle_poll),
        ] {
            if let Some(v) = get(var) {
                *slot = TimeDelta::seconds(seconds(var, &v)?);
            }
        }
        if timers.holder_timeout < timers.heartbeat * 3 {
            return Err(ConfigError {
                var: "INVITE_HOLDER_TIMEOUT_SECONDS",
                message: format!(
                    "must be at least three heartbeats ({} s), or a live worker's claims would \
                     be taken from it",
                    timers.heartbeat.num_seconds() * 3
                ),
            });
        }
        if timers.lease_ttl < timers.heartbeat * 2 {
            return Err(ConfigError {
                var: "INVITE_LEASE_TTL_SECONDS",
                message: format!(
                    "must be at least two heartbeats ({} s)",
                    timers.heartbeat.num_seconds() * 2
                ),
            });
        }
        let drain = match get("INVITE_WORKER_DRAIN_SECONDS") {
            Some(v) => Duration::from_secs(seconds("INVITE_WORKER_DRAIN_SECONDS", &v)? as u64),
            None => Duration::from_secs(30),
        };
        Ok(Self {
            shared,
            admin_addr,
            timers,
            drain,
        })
    }
}

fn seconds(var: &'static str, value: &str) -> Result<i64, ConfigError> {
    match value.parse::<i64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            var,
            message: format!("expected a number of seconds from 1 to 86400, got {value:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM: [(&str, &str); 2] = [
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/invite"),
    ];

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        PLATFORM
            .iter()
            .chain(pairs)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = WorkerConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(c.admin_addr.to_string(), DEFAULT_ADMIN_ADDR);
        assert_eq!(c.timers, EngineTimers::default());
        assert_eq!(c.timers.holder_timeout, TimeDelta::seconds(90));
        assert_eq!(c.drain, Duration::from_secs(30));
        assert!(c.shared.amqp.is_some());
    }

    #[test]
    fn amqp_and_postgres_are_required() {
        let err = WorkerConfig::from_vars(Vec::new()).unwrap_err();
        assert_eq!(err.var, "AMQP_URL");
        let err =
            WorkerConfig::from_vars(vec![("AMQP_URL".to_owned(), "amqp://127.0.0.1".to_owned())])
                .unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("WORKER_ADMIN_ADDR", "nowhere"),
            ("INVITE_HEARTBEAT_SECONDS", "0"),
            ("INVITE_HOLDER_TIMEOUT_SECONDS", "20"),
            ("INVITE_LEASE_TTL_SECONDS", "abc"),
            ("INVITE_IDLE_POLL_SECONDS", "-1"),
            ("INVITE_WORKER_DRAIN_SECONDS", "100000"),
            ("INVITE_LOG_RETENTION_DAYS", "none"),
        ] {
            let err = WorkerConfig::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(&format!("{var}: ")), "{err}");
        }
    }

    #[test]
    fn the_platform_services_are_read_as_the_api_reads_them() {
        let err = WorkerConfig::from_vars(vars(&[("ACCOUNT_MANAGER_URL", "http://am:8010")]))
            .unwrap_err();
        assert_eq!(err.var, "INVITE_SERVICE_JWT_SECRET", "{err}");
        let c = WorkerConfig::from_vars(vars(&[
            ("ACCOUNT_MANAGER_URL", "http://am:8010"),
            ("INVITE_SERVICE_JWT_SECRET", "platform-secret"),
        ]))
        .unwrap();
        assert_eq!(
            c.shared.platform.account_manager_url.as_deref(),
            Some("http://am:8010")
        );
    }

    #[test]
    fn timers_are_read() {
        let c = WorkerConfig::from_vars(vars(&[
            ("INVITE_HEARTBEAT_SECONDS", "1"),
            ("INVITE_HOLDER_TIMEOUT_SECONDS", "5"),
            ("INVITE_LEASE_TTL_SECONDS", "10"),
            ("INVITE_IDLE_POLL_SECONDS", "2"),
        ]))
        .unwrap();
        let e = c.timers.engine_config("w-1".to_owned());
        assert_eq!(e.heartbeat_interval, TimeDelta::seconds(1));
        assert_eq!(e.holder_timeout, TimeDelta::seconds(5));
        assert_eq!(e.lease_ttl, TimeDelta::seconds(10));
        assert_eq!(e.idle_poll, TimeDelta::seconds(2));
        assert_eq!(e.worker_id, "w-1");
    }
}
