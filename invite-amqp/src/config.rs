//! Connection settings: the broker URL (its password kept out of every message), the queue
//! name prefix, the consumer prefetch and the connection name shown in the broker's UI.

use std::fmt;
use std::str::FromStr;

use invite_core::domain::Priority;

/// The variable [`AmqpConfig::from_lookup`] reads.
pub const AMQP_URL_VAR: &str = "AMQP_URL";

/// Default number of unacknowledged jobs a consumer holds per queue.
pub const DEFAULT_PREFETCH: u16 = 8;

/// Default connection name (shown by `rabbitmqctl list_connections client_properties`).
pub const DEFAULT_CONNECTION_NAME: &str = "invite-service";

/// Bad configuration, naming the variable (never its secret part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set.
    #[error("{var} is not set (expected amqp://user:password@host:5672/vhost)")]
    Missing {
        /// Name of the variable.
        var: &'static str,
    },
    /// The variable is set but unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// Name of the variable.
        var: &'static str,
        /// What is wrong, without the password.
        reason: String,
    },
}

/// How to reach the broker and name things on it.
///
/// `Debug` shows the URL with its password replaced by `***`.
#[derive(Clone)]
pub struct AmqpConfig {
    url: String,
    queue_prefix: String,
    prefetch: u16,
    connection_name: String,
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.redacted_url())
            .field("queue_prefix", &self.queue_prefix)
            .field("prefetch", &self.prefetch)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

impl AmqpConfig {
    /// Settings for `url` (`amqp://user:password@host:port/vhost`, the default vhost written
    /// `%2f`), with no queue prefix, the default prefetch and connection name.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] (naming `AMQP_URL`) when the URL cannot be parsed or asks for
    /// TLS (`amqps://`), which this build does not include.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        Self::parse(url.into(), AMQP_URL_VAR)
    }

    /// Reads `AMQP_URL` through `lookup` (the binary passes the environment:
    /// `AmqpConfig::from_lookup(|name| std::env::var(name).ok())`); a library never reads the
    /// environment itself.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when it is unset or blank, [`ConfigError::Invalid`] when it
    /// cannot be used; both name the variable and never contain the password.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match lookup(AMQP_URL_VAR) {
            Some(url) if !url.trim().is_empty() => Self::parse(url.trim().to_owned(), AMQP_URL_VAR),
            _ => Err(ConfigError::Missing { var: AMQP_URL_VAR }),
        }
    }

    fn parse(url: String, var: &'static str) -> Result<Self, ConfigError> {
        let parsed = lapin::uri::AMQPUri::from_str(&url).map_err(|e| ConfigError::Invalid {
            var,
            reason: redact_text(&e, password_of(&url)),
        })?;
        if parsed.scheme == lapin::uri::AMQPScheme::AMQPS {
            return Err(ConfigError::Invalid {
                var,
                reason: "amqps:// needs TLS, which this build does not include".to_owned(),
            });
        }
        Ok(Self {
            url,
            queue_prefix: String::new(),
            prefetch: DEFAULT_PREFETCH,
            connection_name: DEFAULT_CONNECTION_NAME.to_owned(),
        })
    }

    /// Prepends `prefix` to every queue and exchange name (separate environments or tests on
    /// one broker).
    #[must_use]
    pub fn with_queue_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.queue_prefix = prefix.into();
        self
    }

    /// Unacknowledged jobs a consumer may hold per queue (at least 1).
    #[must_use]
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// The name the connection shows on the broker.
    #[must_use]
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// The queue name prefix.
    pub fn queue_prefix(&self) -> &str {
        &self.queue_prefix
    }

    /// Unacknowledged jobs a consumer may hold per queue.
    pub fn prefetch(&self) -> u16 {
        self.prefetch
    }

    /// The connection name.
    pub fn connection_name(&self) -> &str {
        &self.connection_name
    }

    /// The durable queue of a priority: `<prefix>invite-high-priority`, `<prefix>invite-normal`
    /// or `<prefix>invite-low`.
    pub fn queue_name(&self, priority: Priority) -> String {
        let base = match priority {
            Priority::High => "invite-high-priority",
            Priority::Medium => "invite-normal",
            Priority::Low => "invite-low",
        };
        format!("{}{base}", self.queue_prefix)
    }

    /// The topic exchange of task events: `<prefix>invite.events`.
    pub fn events_exchange(&self) -> String {
        format!("{}invite.events", self.queue_prefix)
    }

    /// The URL with its password replaced by `***`: what errors and logs show.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Removes the password from any text (an error of the client library, say).
    pub(crate) fn scrub(&self, text: &str) -> String {
        redact_text(text, password_of(&self.url))
    }
}

/// The `user:password@host` part of a URL, if any.
fn userinfo(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((start, &rest[..at]))
}

/// The password written in a URL, if any.
fn password_of(url: &str) -> Option<&str> {
    let (_, info) = userinfo(url)?;
    let (_, password) = info.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `url` with its password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some((start, info)) => match info.split_once(':') {
            Some((user, _)) => {
                let after = start + info.len();
                format!("{}{user}:***{}", &url[..start], &url[after..])
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn redact_text(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("amqp://u:p@ss@host/vh?heartbeat=10"),
            "amqp://u:***@host/vh?heartbeat=10"
        );
        assert_eq!(redact_url("amqp://host:5672/%2f"), "amqp://host:5672/%2f");
        assert_eq!(redact_url("amqp://user@host"), "amqp://user@host");
    }

    #[test]
    fn debug_hides_the_password() {
        let config = AmqpConfig::new("amqp://guest:hunter2hunter2@127.0.0.1:5672/%2f").unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("guest:***@127.0.0.1"), "{shown}");
    }

    #[test]
    fn from_lookup_names_the_variable() {
        let missing = AmqpConfig::from_lookup(|_| None).unwrap_err();
        assert!(missing.to_string().contains("AMQP_URL"), "{missing}");
        let blank = AmqpConfig::from_lookup(|_| Some("  ".to_owned())).unwrap_err();
        assert_eq!(blank, missing);

        let bad = AmqpConfig::from_lookup(|_| Some("amqp://u:topsecret@[::1".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("AMQP_URL"), "{bad}");
        assert!(!bad.contains("topsecret"), "{bad}");

        let tls = AmqpConfig::from_lookup(|_| Some("amqps://u:topsecret@host/%2f".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(tls.contains("AMQP_URL") && tls.contains("TLS"), "{tls}");
        assert!(!tls.contains("topsecret"), "{tls}");

        let ok = AmqpConfig::from_lookup(|name| {
            (name == "AMQP_URL").then(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
        })
        .unwrap();
        assert_eq!(ok.prefetch(), DEFAULT_PREFETCH);
        assert_eq!(ok.queue_prefix(), "");
    }

    #[test]
    fn names_carry_the_prefix() {
        let config = AmqpConfig::new("amqp://127.0.0.1")
            .unwrap()
            .with_queue_prefix("t1-");
        assert_eq!(config.queue_name(Priority::High), "t1-invite-high-priority");
        assert_eq!(config.queue_name(Priority::Medium), "t1-invite-normal");
        assert_eq!(config.queue_name(Priority::Low), "t1-invite-low");
        assert_eq!(config.events_exchange(), "t1-invite.events");
        assert_eq!(config.with_prefetch(0).prefetch(), 1);
    }
}
