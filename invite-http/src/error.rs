//! The API's one error type: every failure becomes an `application/problem+json` answer
//! (RFC 9457) with field-level detail where there is some. Internal errors are logged once,
//! here, and answered with an opaque 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use invite_core::import::ImportError;
use invite_core::ports::AudienceError;
use invite_core::service::{Limit, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::edge::clip;
use invite_core::domain::ECHO_CHARS;

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Path of the field (`name`, `targets[3]`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The limit a request breaks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitProblem {
    /// Name of the limit (`max_targets_per_task`, `max_running_tasks`).
    pub name: String,
    /// Its configured value.
    pub max: u64,
    /// What the request would reach.
    pub actual: u64,
}

/// An error answer (RFC 9457 problem details).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Invalid fields, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The task's status, for conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    /// The limit broken, for limit errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitProblem>,
    /// For unexpected failures: the id under which the failure was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid bearer token.
    #[error(transparent)]
    Unauthorized(AuthError),
    /// A body or query that cannot be read at all.
    #[error("{detail}")]
    BadRequest {
        /// Status (400, 415 or 422).
        status: StatusCode,
        /// What could not be read.
        detail: String,
    },
    /// A use-case error.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A use-case error of an import endpoint: there 413 is a file too large, so a breach of
    /// `max_targets_per_task` is a 422 naming the limit.
    #[error(transparent)]
    Import(ServiceError),
    /// No route for this path.
    #[error("no such route")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A handler panicked; the panic was logged under `error_id`.
    #[error("the request could not be completed (error id {error_id})")]
    Panic {
        /// The id in the log.
        error_id: String,
    },
}

impl ApiError {
    /// A 422 naming one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Service(ServiceError::Validation(vec![
            invite_core::service::FieldError {
                field: field.to_owned(),
                message: message.into(),
            },
        ]))
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest { status, .. } => *status,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Panic { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Import(ServiceError::LimitExceeded { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Import(e) => ApiError::Service(e.clone()).status(),
            ApiError::Service(e) => match e {
                ServiceError::Validation(_) | ServiceError::IdempotencyMismatch => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                ServiceError::NotFound => StatusCode::NOT_FOUND,
                ServiceError::Conflict { .. } => StatusCode::CONFLICT,
                ServiceError::LimitExceeded {
                    limit: Limit::MaxTargetsPerTask,
                    ..
                } => StatusCode::PAYLOAD_TOO_LARGE,
                ServiceError::LimitExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ServiceError::File(
                    ImportError::TooLarge { .. } | ImportError::InflatedTooLarge { .. },
                ) => StatusCode::PAYLOAD_TOO_LARGE,
                ServiceError::File(ImportError::TimedOut { .. }) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::File(_) => StatusCode::UNPROCESSABLE_ENTITY,
                ServiceError::Source(e) => match e {
                    AudienceError::NotFound { .. } => StatusCode::NOT_FOUND,
                    AudienceError::Rejected(_) | AudienceError::TooMany { .. } => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    AudienceError::Unauthorized(_) | AudienceError::Invalid(_) => {
                        StatusCode::BAD_GATEWAY
                    }
                    AudienceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                },
                ServiceError::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::NoUsableAccount { .. } => StatusCode::CONFLICT,
            },
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        if let ApiError::Import(e) = self {
            let mut problem = ApiError::Service(e.clone()).problem();
            problem.status = self.status().as_u16();
            return problem;
        }
        let status = self.status();
        let (kind, title) = match self {
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::BadRequest { .. } => ("bad-request", "Unreadable request"),
            ApiError::RouteNotFound => ("no-such-route", "No such route"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Panic { .. } => ("internal", "Internal error"),
            ApiError::Service(e) => match e {
                ServiceError::Validation(_) => ("validation", "Invalid request"),
                ServiceError::NotFound => ("not-found", "Task not found"),
                ServiceError::Conflict { .. } => ("conflict", "Not allowed in the task's status"),
                ServiceError::LimitExceeded { .. } => ("limit-exceeded", "Limit exceeded"),
                ServiceError::IdempotencyMismatch => {
                    ("idempotency-mismatch", "Idempotency key reused")
                }
                ServiceError::Unavailable(_) => ("unavailable", "Service unavailable"),
                ServiceError::Internal(_) => ("internal", "Internal error"),
                ServiceError::File(ImportError::TooLarge { .. }) => {
                    ("file-too-large", "File too large")
                }
                ServiceError::File(ImportError::InflatedTooLarge { .. }) => {
                    ("file-too-large", "File unpacks too large")
                }
                ServiceError::File(ImportError::TooManyColumns { .. }) => {
                    ("too-many-columns", "File too wide")
                }
                ServiceError::File(ImportError::CellTooLong { .. }) => {
                    ("cell-too-long", "Cell too long")
                }
                ServiceError::File(ImportError::TimedOut { .. }) => {
                    ("file-read-timeout", "File took too long to read")
                }
                ServiceError::File(_) => ("unreadable-file", "File cannot be imported"),
                ServiceError::Source(AudienceError::NotFound { .. }) => {
                    ("parsing-result-not-found", "Parsing result not found")
                }
                ServiceError::Source(_) => ("parsing-service", "Parsing Service failed"),
                ServiceError::NotConfigured(_) => ("not-configured", "Not configured"),
                ServiceError::NoUsableAccount { .. } => ("no-usable-account", "No usable account"),
            },
            ApiError::Import(_) => ("internal", "Internal error"),
        };
        let detail = match self {
            // Never the reason: it may help an attacker and it is logged at debug level.
            ApiError::Unauthorized(AuthError::Missing) => {
                "send Authorization: Bearer <JWT>".to_owned()
            }
            ApiError::Unauthorized(_) => "the bearer token is invalid or expired".to_owned(),
            ApiError::Service(ServiceError::Internal(_)) => {
                "the request could not be completed".to_owned()
            }
            ApiError::Service(ServiceError::Unavailable(_)) => {
                "a dependency is unavailable; try again later".to_owned()
            }
            ApiError::Service(ServiceError::LimitExceeded { limit, max, actual }) => match limit {
                Limit::MaxTargetsPerTask => format!(
                    "limit {limit} exceeded: the task would have {actual} targets, at most {max} are allowed"
                ),
                Limit::MaxRunningTasks => {
                    format!("limit {limit} exceeded: at most {max} tasks may run at once per user")
                }
            },
            // The fields and their messages are in `errors`: the detail only names them.
            ApiError::Service(ServiceError::Validation(errors)) => validation_detail(errors),
            other => crate::edge::clip(&other.to_string(), crate::edge::MAX_DETAIL_CHARS),
        };
        let mut problem = Problem {
            kind: format!("urn:invite:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            current_status: None,
            limit: None,
            error_id: None,
        };
        match self {
            ApiError::Service(ServiceError::Validation(errors)) => {
                problem.errors = errors
                    .iter()
                    .take(MAX_FIELD_PROBLEMS)
                    .map(|e| FieldProblem {
                        field: clip(&e.field, ECHO_CHARS),
                        message: clip(&e.message, crate::edge::MAX_DETAIL_CHARS),
                    })
                    .collect();
            }
            ApiError::Service(ServiceError::Conflict { current, .. }) => {
                problem.current_status = Some(current.to_string());
            }
            ApiError::Panic { error_id } => {
                problem.error_id = Some(error_id.clone());
            }
            ApiError::Service(ServiceError::LimitExceeded { limit, max, actual }) => {
                problem.limit = Some(LimitProblem {
                    name: limit.to_string(),
                    max: *max,
                    actual: *actual,
                });
            }
            _ => {}
        }
        problem
    }
}

/// Most field problems listed in one answer (a 10 000-target body may hold as many errors).
pub const MAX_FIELD_PROBLEMS: usize = 100;

/// `invalid fields: name, group` — the fields, not their values, which `errors` holds.
fn validation_detail(errors: &[invite_core::service::FieldError]) -> String {
    let mut names: Vec<String> = Vec::new();
    for e in errors {
        let name = clip(&e.field, ECHO_CHARS);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let shown = names.len().min(10);
    let mut detail = format!(
        "invalid field{}: {}",
        if names.len() == 1 { "" } else { "s" },
        names[..shown].join(", ")
    );
    if names.len() > shown {
        detail.push_str(&format!(" and {} more", names.len() - shown));
    }
    detail
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Service(ServiceError::Internal(e)) => {
                tracing::error!(error = %e, "request failed");
            }
            ApiError::Service(ServiceError::Unavailable(e)) => {
                tracing::warn!(error = %e, "request failed: dependency unavailable");
            }
            ApiError::Service(ServiceError::Source(e))
            | ApiError::Import(ServiceError::Source(e))
                if !matches!(
                    e,
                    AudienceError::NotFound { .. } | AudienceError::TooMany { .. }
                ) =>
            {
                tracing::warn!(error = %e, "request failed: the Parsing Service");
            }
            ApiError::Import(ServiceError::Internal(e)) => {
                tracing::error!(error = %e, "request failed");
            }
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(self.problem())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
