//! The errors of the platform clients. Messages name the service and what went wrong, never a
//! token or a secret.

use invite_core::ports::AudienceError;

/// Result of a platform client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed call to one of the platform's services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The client was configured wrongly (a bad URL, an empty secret…); found at construction.
    #[error("invalid {service} client configuration: {message}")]
    Config {
        /// The service.
        service: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The request itself is unusable (an empty task id…); nothing was sent.
    #[error("invalid request to the {service}: {message}")]
    InvalidRequest {
        /// The service.
        service: &'static str,
        /// What is wrong.
        message: String,
    },
    /// HTTP 404.
    #[error("the {service} has no {what}")]
    NotFound {
        /// The service.
        service: &'static str,
        /// What was asked for.
        what: String,
    },
    /// HTTP 401 or 403: the service refused this service's token.
    #[error("the {service} refused the service token (HTTP {status})")]
    Unauthorized {
        /// The service.
        service: &'static str,
        /// 401 or 403.
        status: u16,
    },
    /// Another 4xx (or an unexpected redirect): the request is wrong and retrying will not help.
    #[error("the {service} refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The service.
        service: &'static str,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        message: String,
    },
    /// HTTP 5xx or 429, still after every allowed attempt.
    #[error("the {service} answered HTTP {status} ({attempts} attempts)")]
    Status {
        /// The service.
        service: &'static str,
        /// The last status code.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer within the request timeout, still after every allowed attempt.
    #[error("the {service} did not answer in time ({attempts} attempts)")]
    Timeout {
        /// The service.
        service: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection failed or broke, still after every allowed attempt.
    #[error("the {service} is unreachable: {message} ({attempts} attempts)")]
    Connect {
        /// The service.
        service: &'static str,
        /// The transport's error.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Calls to the service are suspended after repeated failures to reach it (its circuit
    /// breaker is open); nothing was sent.
    #[error("calls to the {service} are suspended after repeated failures to reach it{}", match until { Some(t) => format!(", until {t}"), None => String::new() })]
    CircuitOpen {
        /// The service.
        service: &'static str,
        /// When one trial call will be let through (`None`: a trial call is under way).
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// An answer that is not what the service's API promises: broken JSON, an unknown shape,
    /// page links that loop or leave the service, fewer users than announced.
    #[error("the {service} sent an unreadable answer: {message}")]
    Malformed {
        /// The service.
        service: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// One answer's body is larger than the configured limit; reading stopped there.
    #[error("an answer of the {service} is larger than {limit} bytes")]
    TooLarge {
        /// The service.
        service: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The result holds more records than the caller accepts; fetching stopped there.
    #[error("the {service} result has more than {limit} records")]
    TooManyRecords {
        /// The service.
        service: &'static str,
        /// The caller's limit.
        limit: u64,
    },
}

impl Error {
    /// Whether the same call may succeed later: a 5xx or 429, a timeout, a broken connection
    /// or an open circuit. The client has already retried these as far as its policy allows.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Status { .. }
                | Self::Timeout { .. }
                | Self::Connect { .. }
                | Self::CircuitOpen { .. }
        )
    }
}

impl Error {
    /// The port's view of a failed fetch of parsing task `task`.
    pub(crate) fn into_audience_error(self, task: &str) -> AudienceError {
        let err = self;
        match err {
            Error::NotFound { .. } => AudienceError::NotFound {
                task: task.to_owned(),
            },
            Error::Unauthorized { .. } => AudienceError::Unauthorized(err.to_string()),
            Error::Rejected { .. } | Error::InvalidRequest { .. } => {
                AudienceError::Rejected(err.to_string())
            }
            Error::TooManyRecords { limit, .. } => AudienceError::TooMany { limit },
            Error::Malformed { .. } | Error::TooLarge { .. } => {
                AudienceError::Invalid(err.to_string())
            }
            Error::Status { .. }
            | Error::Timeout { .. }
            | Error::Connect { .. }
            | Error::CircuitOpen { .. }
            | Error::Config { .. } => AudienceError::Unavailable(err.to_string()),
        }
    }
}
