//! The crate's error type, and its mapping to the ports' [`StoreError`] at the boundary.

use invite_core::domain::TaskStatus;
use invite_core::ports::StoreError;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the SQL stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL names no supported database.
    #[error(
        "DATABASE_URL {url:?} is not supported: expected postgres://, postgresql:// or sqlite:"
    )]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The URL could not be read.
    #[error("DATABASE_URL {url:?} is malformed: {source}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be reached (or opened) at start-up.
    #[error("cannot connect to the database at DATABASE_URL {url:?}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No such row for this owner.
    #[error("not found")]
    NotFound,
    /// The task is in another status than the operation needs.
    #[error("conflict: task is {current}")]
    Conflict {
        /// The status the task is in.
        current: TaskStatus,
    },
    /// An idempotency key reused with another request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// The owner already runs as many tasks as a capped transition allows.
    #[error("the owner already runs {running} tasks")]
    RunningLimit {
        /// Tasks of the owner `IN_PROGRESS`.
        running: u64,
    },
    /// A value the caller gave breaks a rule of the store.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// A stored value could not be read back into the domain model.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A value could not be written as JSON.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// Any other driver error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// Whether trying again later may help (the database is unreachable, busy or asked for a
    /// retry).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Database(e) | Error::Connect { source: e, .. } => is_transient(e),
            _ => false,
        }
    }
}

/// Whether a driver error means "unavailable for now" rather than "wrong".
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_transient(&code)
            } else {
                postgres_transient(&code)
            }
        }
        _ => false,
    }
}

/// PostgreSQL: connection exceptions, serialization failure, deadlock, too many connections,
/// server shutting down or starting.
fn postgres_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || matches!(
            sqlstate,
            "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
        )
}

/// SQLite: `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6), with any extended code.
/// Whether a driver error is SQLite's `BUSY` or `LOCKED` (primary or extended code).
pub(crate) fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| sqlite_transient(&code)),
        _ => false,
    }
}

fn sqlite_transient(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound | Error::Database(sqlx::Error::RowNotFound) => StoreError::NotFound,
            Error::Conflict { current } => StoreError::Conflict { current },
            Error::IdempotencyMismatch => StoreError::IdempotencyMismatch,
            Error::RunningLimit { running } => StoreError::RunningLimit { running },
            Error::Invalid(msg) => StoreError::Invalid(msg),
            e if e.is_retryable() => StoreError::Unavailable(e.to_string()),
            e => StoreError::Backend(e.to_string()),
        }
    }
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/invite"),
            "postgres://app:***@db:5432/invite"
        );
        assert_eq!(
            redact_url("postgres://app@db/invite"),
            "postgres://app@db/invite"
        );
        assert_eq!(redact_url("sqlite://invite.db"), "sqlite://invite.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn driver_errors_map_to_port_errors() {
        assert_eq!(
            StoreError::from(Error::Database(sqlx::Error::RowNotFound)),
            StoreError::NotFound
        );
        assert!(matches!(
            StoreError::from(Error::Database(sqlx::Error::PoolTimedOut)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(Error::Corrupt("x".into())),
            StoreError::Backend(_)
        ));
        assert!(postgres_transient("40001") && postgres_transient("08006"));
        assert!(!postgres_transient("23505"));
        assert!(sqlite_transient("5") && sqlite_transient("517") && sqlite_transient("262"));
        assert!(!sqlite_transient("19") && !sqlite_transient("2067"));
    }
}
