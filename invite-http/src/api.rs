//! Routes and handlers. Handlers only translate: wire types in, a [`Campaigns`] call, wire
//! types out; the rules live in `invite_core::service`. The OpenAPI document is generated from
//! this same router.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use invite_core::domain::{AccountId, ExecutionStatus, Platform, TaskId, TaskStatus, UserId};
use invite_core::import::{ColumnMapping, ColumnRef, FileFormat, ImportError, TextEncoding};
use invite_core::ports::{LogFilter, TaskFilter};
use invite_core::service::{Campaigns, ImportRequest, ReadOptions, ServiceError};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, Problem};
use crate::wire::*;

/// Prefix of every API route.
pub const PREFIX: &str = "/api/v1/invite";

const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;
/// Largest `offset` of a paginated list.
pub const MAX_OFFSET: u32 = 10_000_000;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Invite Service API",
        description = "Invite and direct-message campaigns through a user's own accounts, under the platforms' limits."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "tasks", description = "Campaigns"),
        (name = "import", description = "Audiences from files and Parsing Service results; the suppression list"),
        (name = "service", description = "Health, accounts, documents")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The documented router: every route of the service, with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(create_task, list_tasks))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(start_task))
        .routes(routes!(pause_task))
        .routes(routes!(resume_task))
        .routes(routes!(cancel_task))
        .routes(routes!(task_status))
        .routes(routes!(task_stats))
        .routes(routes!(task_report))
        .routes(routes!(task_logs))
        .routes(routes!(import_file).layer(DefaultBodyLimit::disable()))
        .routes(routes!(validate_file, validate_identifiers).layer(DefaultBodyLimit::disable()))
        .routes(routes!(import_parsing))
        .routes(routes!(list_suppressions, suppress, unsuppress))
        .routes(routes!(suppress_file).layer(DefaultBodyLimit::disable()))
        .routes(routes!(list_accounts))
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .merge(crate::accounts::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(PREFIX, api)
        .routes(routes!(metrics))
}

/// The OpenAPI document of [`api_router`], finished by [`crate::contract::finish`].
pub fn openapi() -> serde_json::Value {
    crate::contract::finish(api_router().split_for_parts().1)
}

/// The served router (without state).
pub fn router() -> Router<AppState> {
    let (router, doc) = api_router().split_for_parts();
    let doc = crate::contract::finish(doc);
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(Arc::new(doc)))
}

// ---- extractors ----

/// A JSON body whose rejections are problem documents, one status per kind: 415 when it is not
/// sent as `application/json`, 400 when it is not JSON at all, 413 over the body limit, 422
/// when it is JSON that does not fit the schema (whatever the field and however serde
/// classifies the mismatch: a number where an enumeration is expected is a syntax error to
/// serde_json, but the body is JSON).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(e) => {
                let status = match &e {
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                return Err(ApiError::BadRequest {
                    status,
                    detail: crate::edge::public_detail(&e.body_text()),
                });
            }
        };
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let detail = if path == "." {
                    format!("the body does not fit the schema: {}", e.inner())
                } else {
                    format!("the body does not fit the schema: {path}: {}", e.inner())
                };
                ApiError::BadRequest {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    detail: crate::edge::public_detail(&detail),
                }
            })
    }
}

/// A query string whose rejections are problem documents.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: crate::edge::public_detail(&e.body_text()),
            })
    }
}

/// A task id from the path; anything but plain decimal digits (no sign, no space) is a task
/// that does not exist.
#[derive(Debug, Clone, Copy)]
pub struct TaskIdParam(pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Service(ServiceError::NotFound))?;
        task_id_digits(&raw)
            .map(TaskIdParam)
            .ok_or(ApiError::Service(ServiceError::NotFound))
    }
}

/// A task id written as plain decimal digits (no sign, no space), as in paths, forms and
/// queries.
pub fn task_id_digits(raw: &str) -> Option<TaskId> {
    let digits = !raw.is_empty() && raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .map(TaskId::new)
}

/// A task id field of a form or query: digits only, else 422.
fn task_id_field(raw: Option<&str>) -> Result<Option<TaskId>, ApiError> {
    raw.map(|v| {
        task_id_digits(v)
            .ok_or_else(|| ApiError::field("task_id", "must be a task id: decimal digits, no sign"))
    })
    .transpose()
}

/// A multipart form whose rejections are problem documents: 415 when the body is not sent as
/// `multipart/form-data`, 400 when its boundary is missing or broken.
#[derive(Debug)]
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("multipart/form-data"));
        if !multipart {
            return Err(ApiError::BadRequest {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: "send the form as Content-Type: multipart/form-data".to_owned(),
            });
        }
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|e| ApiError::BadRequest {
                status: e.status(),
                detail: crate::edge::public_detail(&e.body_text()),
            })
    }
}

// ---- helpers ----

/// One audit line per state-changing call: who, which task, what, and how it ended.
fn audit<T>(user: UserId, task: Option<TaskId>, action: &str, result: &Result<T, ServiceError>) {
    let task_id = task.map_or_else(|| "-".to_owned(), |t| t.to_string());
    match result {
        Ok(_) => tracing::info!(
            audit = true,
            user.id = %user,
            task.id = %task_id,
            action,
            outcome = "ok",
            "audit: user {user} {action} task {task_id}: ok"
        ),
        Err(e) => tracing::info!(
            audit = true,
            user.id = %user,
            task.id = %task_id,
            action,
            outcome = "refused",
            reason = %e,
            "audit: user {user} {action} task {task_id}: refused"
        ),
    }
}

fn campaigns(state: &AppState) -> &Campaigns {
    state.campaigns()
}

fn page(limit: Option<u32>, offset: Option<u32>) -> Result<(u32, u32), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::field(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}"),
        ));
    }
    Ok((limit, offset))
}

fn parse_field<T: std::str::FromStr>(
    field: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::field(field, e.to_string()))
        })
        .transpose()
}

// ---- tasks ----

/// Create a task.
///
/// With an `Idempotency-Key` header, repeating the same request returns the first task (200,
/// `replayed: true`); the same key with another body is 422.
#[utoipa::path(
    post, path = "/tasks", tag = "tasks",
    request_body = CreateTaskBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body give the same task")),
    responses(
        (status = 201, description = "Created", body = CreatedTaskView),
        (status = 200, description = "Replay of an earlier request with the same key", body = CreatedTaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Limit max_targets_per_task exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or idempotency key reused with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTaskBody>,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?
                .to_owned(),
        ),
        None => None,
    };
    let result = campaigns(&state)
        .create(user, body.into(), key.as_deref())
        .await;
    audit(
        user,
        result.as_ref().ok().map(|c| c.task.id),
        "create",
        &result,
    );
    let created = result?;
    let status = if created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(CreatedTaskView::from(&created))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{PREFIX}/tasks/{}", created.task.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// List the caller's tasks, newest first.
#[utoipa::path(
    get, path = "/tasks", tag = "tasks",
    params(TaskListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_tasks(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<TaskListQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = TaskFilter {
        status: parse_field::<TaskStatus>("status", q.status.as_deref())?,
        platform: parse_field::<Platform>("platform", q.platform.as_deref())?,
        limit,
        offset,
    };
    let tasks = campaigns(&state).list(user, &filter).await?;
    Ok(Json(TaskPage {
        items: tasks.iter().map(TaskView::from).collect(),
        limit,
        offset,
    }))
}

/// One task of the caller (another user's task is 404).
#[utoipa::path(
    get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<TaskView>, ApiError> {
    let task = campaigns(&state).get(user, id).await?;
    Ok(Json(TaskView::from(&task)))
}

/// Change a task while it is PENDING or PAUSED (409 otherwise); `targets` are appended.
#[utoipa::path(
    put, path = "/tasks/{id}", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    request_body = UpdateTaskBody,
    responses(
        (status = 200, description = "Updated", body = UpdatedTaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not PENDING or PAUSED", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Limit max_targets_per_task exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn update_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ApiJson(body): ApiJson<UpdateTaskBody>,
) -> Result<Json<UpdatedTaskView>, ApiError> {
    let result = campaigns(&state).update(user, id, body.into()).await;
    audit(user, Some(id), "update", &result);
    Ok(Json(UpdatedTaskView::from(&result?)))
}

/// Delete a task that is not IN_PROGRESS, with its targets and logs.
#[utoipa::path(
    delete, path = "/tasks/{id}", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is IN_PROGRESS", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn delete_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<StatusCode, ApiError> {
    let result = campaigns(&state).delete(user, id).await;
    audit(user, Some(id), "delete", &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}

async fn lifecycle(
    state: &AppState,
    user: UserId,
    id: TaskId,
    action: &'static str,
) -> Result<Json<TaskView>, ApiError> {
    let c = campaigns(state);
    let result = match action {
        "start" => c.start(user, id).await,
        "pause" => c.pause(user, id).await,
        "resume" => c.resume(user, id).await,
        _ => c.cancel(user, id).await,
    };
    audit(user, Some(id), action, &result);
    Ok(Json(TaskView::from(&result?)))
}

/// Start a PENDING task (it stays PENDING until a future `scheduled_at`).
#[utoipa::path(
    post, path = "/tasks/{id}/start", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Started (or scheduled)", body = TaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal transition; the current status is in the problem", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit max_running_tasks exceeded", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn start_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<TaskView>, ApiError> {
    lifecycle(&state, user, id, "start").await
}

/// Pause an IN_PROGRESS task (the step in flight finishes).
#[utoipa::path(
    post, path = "/tasks/{id}/pause", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Paused", body = TaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal transition; the current status is in the problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn pause_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<TaskView>, ApiError> {
    lifecycle(&state, user, id, "pause").await
}

/// Resume a PAUSED task.
#[utoipa::path(
    post, path = "/tasks/{id}/resume", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Resumed", body = TaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal transition; the current status is in the problem", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit max_running_tasks exceeded", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn resume_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<TaskView>, ApiError> {
    lifecycle(&state, user, id, "resume").await
}

/// Cancel a task that is not finished.
#[utoipa::path(
    post, path = "/tasks/{id}/cancel", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled", body = TaskView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal transition; the current status is in the problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn cancel_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<TaskView>, ApiError> {
    lifecycle(&state, user, id, "cancel").await
}

/// Progress: counts by target status, percent, active accounts and an ETA from the accounts'
/// remaining capacity under the limits. Counts are always current; while they and the task
/// are unchanged, the account figures and the ETA are those of a read at most a second old.
#[utoipa::path(
    get, path = "/tasks/{id}/status", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Progress", body = StatusView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn task_status(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<StatusView>, ApiError> {
    let c = campaigns(&state);
    let report = c.status(user, id).await?;
    Ok(Json(StatusView::new(&report, c.parts().clock.now())))
}

/// Statistics per account, per error kind and per hour.
#[utoipa::path(
    get, path = "/tasks/{id}/stats", tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    responses(
        (status = 200, description = "Statistics", body = StatsView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn task_stats(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<StatsView>, ApiError> {
    let stats = campaigns(&state).stats(user, id).await?;
    Ok(Json(StatsView::new(id.get(), &stats)))
}

/// CSV columns of the report, in order.
pub const REPORT_CSV_HEADER: [&str; 9] = [
    "target_id",
    "identifier",
    "identifier_kind",
    "status",
    "outcome",
    "account_id",
    "attempts",
    "processed_at",
    "error",
];

/// The report: one row per target with outcome, account, time and error; `?format=csv` gives
/// the rows as CSV.
#[utoipa::path(
    get, path = "/tasks/{id}/report", tag = "tasks",
    params(("id" = i64, Path, description = "Task id"), ReportQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV with format=csv)", body = ReportView,
            content((ReportView = "application/json"), (String = "text/csv"))),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn task_report(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "expected json or csv")),
    };
    let report = campaigns(&state).report(user, id).await?;
    let rows: Vec<ReportRow> = report.targets.iter().map(ReportRow::from).collect();
    if !csv {
        let c = |s| report.progress.count(s);
        use invite_core::domain::TargetStatus as T;
        return Ok(Json(ReportView {
            task: TaskView::from(&report.task),
            counts: StatusCounts {
                pending: c(T::Pending),
                in_progress: c(T::InProgress),
                success: c(T::Success),
                failed: c(T::Failed),
                skipped: c(T::Skipped),
                uncertain: c(T::Uncertain),
            },
            outcomes: report
                .progress
                .by_outcome
                .iter()
                .map(|(o, n)| (o.to_string(), *n))
                .collect(),
            rows,
        })
        .into_response());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Service(ServiceError::Internal(e.to_string()));
    w.write_record(REPORT_CSV_HEADER).map_err(internal)?;
    for r in &rows {
        w.write_record([
            r.target_id.to_string(),
            r.identifier.clone(),
            r.identifier_kind.clone(),
            r.status.clone(),
            r.outcome.clone().unwrap_or_default(),
            r.account_id.clone().unwrap_or_default(),
            r.attempts.to_string(),
            r.processed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
        ])
        .map_err(internal)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Service(ServiceError::Internal(e.to_string())))?;
    let disposition = format!("attachment; filename=\"task-{id}-report.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Execution log, oldest first; filter by status, account and time; paginated.
#[utoipa::path(
    get, path = "/tasks/{id}/logs", tag = "tasks",
    params(("id" = i64, Path, description = "Task id"), LogQuery),
    responses(
        (status = 200, description = "A page of log rows", body = LogPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn task_logs(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = LogFilter {
        status: parse_field::<ExecutionStatus>("status", q.status.as_deref())?,
        account_id: parse_field::<AccountId>("account_id", q.account_id.as_deref())?,
        since: q.since,
        until: q.until,
        limit,
        offset,
    };
    let rows = campaigns(&state).logs(user, id, &filter).await?;
    let full = rows.len() as u32 == limit;
    Ok(Json(LogPage {
        items: rows.iter().map(LogView::from).collect(),
        limit,
        offset,
        next_offset: full.then(|| offset.checked_add(limit)).flatten(),
    }))
}

// ---- import ----

/// Largest text part of an upload form (task id, options, column names).
const MAX_FORM_FIELD_BYTES: usize = 1024;
/// Most parts in an upload form.
const MAX_FORM_FIELDS: usize = 32;

/// Longest text part of an upload form, in characters (the document's `maxLength`).
const MAX_FORM_FIELD_CHARS: usize = 255;

/// The reading options every upload form may have beside `file`.
pub const READ_FIELDS: [&str; 14] = [
    "format",
    "sheet",
    "delimiter",
    "encoding",
    "has_header",
    "username_column",
    "user_id_column",
    "phone_column",
    "identifier_column",
    "first_name_column",
    "last_name_column",
    "full_name_column",
    "email_column",
    "default_country",
];

/// The other text parts of `/import/file`.
pub const IMPORT_FILE_FIELDS: [&str; 2] = ["task_id", "dedupe_days"];
/// The other text parts of `/import/validate`.
pub const VALIDATE_FILE_FIELDS: [&str; 3] = ["task_id", "dedupe_days", "platform"];
/// The other text parts of `/suppressions/file`.
pub const SUPPRESS_FILE_FIELDS: [&str; 2] = ["platform", "reason"];

/// A multipart upload: the file, read with a byte cap, and the text parts.
#[derive(Debug, Default)]
struct Upload {
    file: Option<Vec<u8>>,
    file_name: Option<String>,
    fields: std::collections::HashMap<String, String>,
}

impl Upload {
    /// Reads the whole form. The file stops at `max_bytes` with a 413, before it is buffered
    /// whole; text parts stop at [`MAX_FORM_FIELD_BYTES`].
    async fn read(mut form: Multipart, max_bytes: u64, extra: &[&str]) -> Result<Self, ApiError> {
        let unreadable = |e: axum::extract::multipart::MultipartError| ApiError::BadRequest {
            status: e.status(),
            detail: e.body_text(),
        };
        let mut upload = Upload::default();
        let mut parts = 0;
        while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
            parts += 1;
            if parts > MAX_FORM_FIELDS {
                return Err(ApiError::field("form", "too many parts"));
            }
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if upload.file.is_some() {
                    return Err(ApiError::field("file", "send one file per request"));
                }
                upload.file_name = field.file_name().map(str::to_owned);
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    if (bytes.len() + chunk.len()) as u64 > max_bytes {
                        return Err(ApiError::Service(ServiceError::File(
                            ImportError::TooLarge { limit: max_bytes },
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                upload.file = Some(bytes);
            } else if READ_FIELDS.contains(&name.as_str()) || extra.contains(&name.as_str()) {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    if bytes.len() + chunk.len() > MAX_FORM_FIELD_BYTES {
                        return Err(ApiError::field(
                            &name,
                            format!("must be at most {MAX_FORM_FIELD_BYTES} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::field(&name, "must be UTF-8 text"))?;
                if text.chars().count() > MAX_FORM_FIELD_CHARS {
                    return Err(ApiError::field(
                        &name,
                        format!("must be at most {MAX_FORM_FIELD_CHARS} characters"),
                    ));
                }
                let text = text.trim();
                if text.is_empty() {
                    // One meaning per value: a field is given, or left out.
                    return Err(ApiError::field(
                        &name,
                        "must not be blank; leave the field out instead",
                    ));
                }
                upload.fields.insert(name, text.to_owned());
            } else {
                return Err(ApiError::field(
                    &name,
                    format!(
                        "unknown form field; expected file, {}",
                        READ_FIELDS
                            .iter()
                            .chain(extra)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(upload)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn file(&self) -> Result<&[u8], ApiError> {
        self.file
            .as_deref()
            .ok_or_else(|| ApiError::field("file", "is required (a multipart part named file)"))
    }

    fn task_id(&self) -> Result<Option<TaskId>, ApiError> {
        task_id_field(self.get("task_id"))
    }

    fn platform(&self) -> Result<Platform, ApiError> {
        Ok(
            parse_field::<Platform>("platform", self.get("platform"))?
                .unwrap_or(Platform::Telegram),
        )
    }

    /// The reading options and the de-duplication window.
    fn request(&self) -> Result<ImportRequest, ApiError> {
        let format = match self.get("format").map(str::to_ascii_lowercase).as_deref() {
            None => self
                .file_name
                .as_deref()
                .and_then(FileFormat::from_file_name),
            Some("csv") => Some(FileFormat::Csv),
            Some("xlsx") => Some(FileFormat::Xlsx),
            Some("json") => Some(FileFormat::Json),
            Some(_) => return Err(ApiError::field("format", "expected csv, xlsx or json")),
        };
        let delimiter = match self.get("delimiter") {
            None => None,
            Some(d) if d.eq_ignore_ascii_case("tab") || d == "\\t" => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(_) => {
                return Err(ApiError::field(
                    "delimiter",
                    "expected one ASCII character, or tab",
                ));
            }
        };
        let encoding = match self.get("encoding") {
            None => None,
            Some(label) => Some(TextEncoding::from_label(label).ok_or_else(|| {
                ApiError::field(
                    "encoding",
                    "expected utf-8, utf-16le, utf-16be or windows-1251",
                )
            })?),
        };
        let has_header = match self
            .get("has_header")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::field("has_header", "expected true or false")),
        };
        let column = |name: &str| -> Result<Option<ColumnRef>, ApiError> {
            let Some(v) = self.get(name) else {
                return Ok(None);
            };
            if v.bytes().all(|b| b.is_ascii_digit()) {
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ApiError::field(name, "a position counts from 1"))?;
                Ok(Some(ColumnRef::Index(n - 1)))
            } else {
                Ok(Some(ColumnRef::Name(v.to_owned())))
            }
        };
        let mapping = ColumnMapping {
            username: column("username_column")?,
            user_id: column("user_id_column")?,
            phone: column("phone_column")?,
            identifier: column("identifier_column")?,
            first_name: column("first_name_column")?,
            last_name: column("last_name_column")?,
            full_name: column("full_name_column")?,
            email: column("email_column")?,
        };
        let mapping = (mapping != ColumnMapping::default()).then_some(mapping);
        let normalize = normalize_options(self.get("default_country"))?;
        Ok(ImportRequest {
            read: ReadOptions {
                format,
                delimiter,
                encoding,
                sheet: self.get("sheet").map(str::to_owned),
                has_header,
                mapping,
                normalize,
            },
            dedupe_days: parse_field::<u32>("dedupe_days", self.get("dedupe_days"))?,
        })
    }
}

/// Phone normalisation from the `default_country` field.
fn normalize_options(
    country: Option<&str>,
) -> Result<invite_core::domain::NormalizeOptions, ApiError> {
    let default_country = match country {
        None => None,
        Some(c) => Some(
            invite_core::domain::Country::from_iso(c)
                .ok_or_else(|| ApiError::field("default_country", "unknown country code"))?,
        ),
    };
    Ok(invite_core::domain::NormalizeOptions { default_country })
}

fn max_upload(state: &AppState) -> u64 {
    campaigns(state).import_limits().max_bytes
}

/// Append the people of a file to a PENDING or PAUSED task.
///
/// Multipart form: `file` and `task_id`, optional reading options (`format`, `sheet`,
/// `delimiter`, `encoding`, `has_header`, `*_column`) and `dedupe_days`. Every row is accounted for:
/// `rows = valid + invalid + duplicate + suppressed`; the valid ones are stored in one
/// transaction, all or nothing.
#[utoipa::path(
    post, path = "/import/file", tag = "import",
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Imported: counts, row errors, skipped rows", body = ImportView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not PENDING or PAUSED", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the upload limit, or an XLSX unpacks past the import caps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable file (or one past the column or cell caps), invalid fields, or limit max_targets_per_task exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Reading the file took longer than the time budget", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn import_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiMultipart(multipart): ApiMultipart,
) -> Result<Json<ImportView>, ApiError> {
    let upload = Upload::read(multipart, max_upload(&state), &IMPORT_FILE_FIELDS).await?;
    let id = upload
        .task_id()?
        .ok_or_else(|| ApiError::field("task_id", "is required"))?;
    let request = upload.request()?;
    let result = campaigns(&state)
        .import_file(user, id, upload.file()?, &request)
        .await;
    audit(user, Some(id), "import file into", &result);
    let s = result.map_err(ApiError::Import)?;
    Ok(Json(ImportView::from(&s)))
}

/// Analyse a file as `/import/file` would, storing nothing.
///
/// With `task_id` (any status) the task's targets count as duplicates and its platform and
/// `dedupe_days` apply; without, `platform` (default `telegram`) names the suppression list.
#[utoipa::path(
    post, path = "/import/validate", tag = "import",
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The analysis", body = ImportView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the upload limit, or an XLSX unpacks past the import caps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable file (or one past the column or cell caps) or invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Reading the file took longer than the time budget", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn validate_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiMultipart(multipart): ApiMultipart,
) -> Result<Json<ImportView>, ApiError> {
    let upload = Upload::read(multipart, max_upload(&state), &VALIDATE_FILE_FIELDS).await?;
    let task = upload.task_id()?;
    let request = upload.request()?;
    let s = campaigns(&state)
        .validate_file(user, task, upload.platform()?, upload.file()?, &request)
        .await
        .map_err(ApiError::Import)?;
    Ok(Json(ImportView::from(&s)))
}

/// Check identifiers given in the query, with the rules and counts of a file.
///
/// The list is read as a one-column file: each identifier is a row (numbered from 1), valid,
/// invalid (with the reason), a duplicate (of an earlier one, of the task's targets, or of
/// someone reached within `dedupe_days`) or suppressed. Nothing is stored.
#[utoipa::path(
    get, path = "/import/validate", tag = "import",
    params(ValidateQuery),
    responses(
        (status = 200, description = "The analysis", body = ImportView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No identifiers, too many, or invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn validate_identifiers(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<ValidateQuery>,
) -> Result<Json<ImportView>, ApiError> {
    let identifiers: Vec<&str> = q
        .identifiers
        .as_deref()
        .unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if identifiers.is_empty() {
        return Err(ApiError::field(
            "identifiers",
            "give one or more identifiers, separated by commas",
        ));
    }
    let platform =
        parse_field::<Platform>("platform", q.platform.as_deref())?.unwrap_or(Platform::Telegram);
    let request = ImportRequest {
        read: ReadOptions {
            format: Some(FileFormat::Json),
            // The one column is the identifiers, however few of them are valid.
            mapping: Some(ColumnMapping {
                identifier: Some(ColumnRef::Index(0)),
                ..ColumnMapping::default()
            }),
            normalize: normalize_options(q.default_country.as_deref())?,
            ..ReadOptions::default()
        },
        dedupe_days: q.dedupe_days,
    };
    let list = serde_json::Value::from(identifiers).to_string();
    let task = task_id_field(q.task_id.as_deref())?;
    let s = campaigns(&state)
        .validate_file(user, task, platform, list.as_bytes(), &request)
        .await
        .map_err(ApiError::Import)?;
    Ok(Json(ImportView::from(&s)))
}

/// Append the users of a Parsing Service result to a PENDING or PAUSED task.
///
/// The result is read like a JSON upload (same columns, rules and counts). 503 when this
/// server has no Parsing Service (`PARSING_SERVICE_URL` unset).
#[utoipa::path(
    post, path = "/import/parsing", tag = "import",
    request_body = ParsingImportBody,
    responses(
        (status = 200, description = "Imported", body = ImportView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of the caller, or no such parsing result", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not PENDING or PAUSED", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a result the Parsing Service refused, or limit max_targets_per_task exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The Parsing Service refused our credentials or answered nonsense", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The Parsing Service is not configured or unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn import_parsing(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<ParsingImportBody>,
) -> Result<Json<ImportView>, ApiError> {
    let id = TaskId::new(body.task_id);
    let result = campaigns(&state)
        .import_parsing(
            user,
            id,
            &body.parsing_task_id.to_string(),
            body.dedupe_days,
        )
        .await;
    audit(user, Some(id), "import parsing result into", &result);
    let s = result.map_err(ApiError::Import)?;
    Ok(Json(ImportView::from(&s)))
}

// ---- suppression list ----

/// The caller's suppression list for a platform, oldest first.
#[utoipa::path(
    get, path = "/suppressions", tag = "import",
    params(SuppressionQuery),
    responses(
        (status = 200, description = "A page of the list", body = SuppressionPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_suppressions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<SuppressionQuery>,
) -> Result<Json<SuppressionPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let platform =
        parse_field::<Platform>("platform", q.platform.as_deref())?.unwrap_or(Platform::Telegram);
    let entries = campaigns(&state)
        .suppressions(user, platform, limit, offset)
        .await?;
    let full = entries.len() as u32 == limit;
    Ok(Json(SuppressionPage {
        items: entries.iter().map(SuppressionView::from).collect(),
        limit,
        offset,
        next_offset: full.then(|| offset.checked_add(limit)).flatten(),
    }))
}

/// Add people to the suppression list: never contacted, dropped at import, skipped at send.
#[utoipa::path(
    post, path = "/suppressions", tag = "import",
    request_body = SuppressBody,
    responses(
        (status = 200, description = "Added", body = SuppressView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid identifiers (each one listed)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn suppress(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<SuppressBody>,
) -> Result<Json<SuppressView>, ApiError> {
    let platform = parse_field::<Platform>("platform", body.platform.as_deref())?
        .unwrap_or(Platform::Telegram);
    let people: Vec<String> = body
        .identifier
        .into_iter()
        .chain(body.identifiers.unwrap_or_default())
        .collect();
    let result = campaigns(&state)
        .suppress(
            user,
            platform,
            &people,
            body.reason.as_deref().unwrap_or(""),
        )
        .await;
    audit(user, None, "suppress", &result);
    Ok(Json(SuppressView {
        added: result.map_err(ApiError::Import)?,
    }))
}

/// Remove one person from the suppression list.
#[utoipa::path(
    delete, path = "/suppressions", tag = "import",
    params(UnsuppressQuery),
    responses(
        (status = 200, description = "Whether the person was on the list", body = UnsuppressView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid identifier", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn unsuppress(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<UnsuppressQuery>,
) -> Result<Json<UnsuppressView>, ApiError> {
    let platform =
        parse_field::<Platform>("platform", q.platform.as_deref())?.unwrap_or(Platform::Telegram);
    let result = campaigns(&state)
        .unsuppress(user, platform, &q.identifier)
        .await;
    audit(user, None, "unsuppress", &result);
    Ok(Json(UnsuppressView { removed: result? }))
}

/// Add every valid person of a file to the suppression list (read like an import).
#[utoipa::path(
    post, path = "/suppressions/file", tag = "import",
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Added, with the file's analysis", body = SuppressFileView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the upload limit, or an XLSX unpacks past the import caps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable file (or one past the column or cell caps) or invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Reading the file took longer than the time budget", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn suppress_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiMultipart(multipart): ApiMultipart,
) -> Result<Json<SuppressFileView>, ApiError> {
    let upload = Upload::read(multipart, max_upload(&state), &SUPPRESS_FILE_FIELDS).await?;
    let request = upload.request()?;
    let result = campaigns(&state)
        .suppress_file(
            user,
            upload.platform()?,
            upload.file()?,
            &request.read,
            upload.get("reason").unwrap_or(""),
        )
        .await;
    audit(user, None, "suppress file", &result);
    let s = result.map_err(ApiError::Import)?;
    Ok(Json(SuppressFileView {
        added: s.added,
        report: ImportView::new(None, &s.report, s.added, None),
    }))
}

// ---- service ----

/// The caller's accounts with their limit state.
#[utoipa::path(
    get, path = "/accounts", tag = "service",
    params(AccountQuery),
    responses(
        (status = 200, description = "Accounts", body = AccountList),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown platform", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_accounts(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> Result<Json<AccountList>, ApiError> {
    let platform = parse_field::<Platform>("platform", q.platform.as_deref())?;
    let accounts = campaigns(&state).accounts(user, platform).await?;
    let mut items: Vec<AccountView> = accounts.iter().map(AccountView::from).collect();
    if let Some(registered) = state.accounts() {
        for (view, account) in items.iter_mut().zip(&accounts) {
            if account.info.platform == Platform::Telegram {
                view.telegram = registered.telegram_budget(&account.info.id).await;
            }
        }
    }
    Ok(Json(AccountList { items }))
}

/// Liveness and readiness of each dependency (503 when one is down). No token needed.
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "Every dependency is up", body = HealthView),
        (status = 503, description = "A dependency is down", body = HealthView),
    )
)]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let checks = state.health().check().await;
    let ok = checks.iter().all(|c| c.status == "ok");
    let view = HealthView {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(view))
}

/// This document. No token needed.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json", body = Object))
)]
async fn openapi_json(Extension(doc): Extension<Arc<serde_json::Value>>) -> Response {
    Json(&*doc).into_response()
}

/// Prometheus exposition (at the root path). No token needed.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are not enabled on this server", content_type = "text/plain", body = String),
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use proptest::prelude::*;

    use super::*;

    const BOUNDARY: &str = "XbOuNdArYx";
    const MAX_FILE: u64 = 1024;

    /// Bodies near a real form: part headers for known and unknown fields, the boundary (whole,
    /// cut, closing), line breaks and arbitrary bytes.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let name = prop_oneof![
            Just("file".to_owned()),
            Just("task_id".to_owned()),
            Just("dedupe_days".to_owned()),
            Just("format".to_owned()),
            Just("has_header".to_owned()),
            Just("username_column".to_owned()),
            Just("platform".to_owned()),
            Just("reason".to_owned()),
            "[a-z_\"é]{0,12}",
        ];
        let piece = prop_oneof![
            name.prop_map(|n| format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"; filename=\"a.csv\"\r\n\r\n"
            )
            .into_bytes()),
            Just(format!("\r\n--{BOUNDARY}--\r\n").into_bytes()),
            Just(format!("\r\n--{BOUNDARY}\r\n").into_bytes()),
            Just(b"--XbOu".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"+1".to_vec()),
            Just(vec![b'a'; 700]),
            proptest::collection::vec(any::<u8>(), 0..64),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    async fn read(bytes: Vec<u8>) -> Result<Upload, ApiError> {
        let request = Request::builder()
            .method("POST")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(bytes))
            .expect("a request");
        let ApiMultipart(form) = ApiMultipart::from_request(request, &()).await?;
        let upload = Upload::read(form, MAX_FILE, &VALIDATE_FILE_FIELDS).await?;
        upload.task_id()?;
        upload.platform()?;
        upload.request()?;
        Ok(upload)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any body is read or refused without a panic: a read form holds at most the file cap
        /// and short known fields; a refusal is a 400, 413 or 422 problem with a short detail.
        #[test]
        fn the_upload_form_reader_never_panics_and_stays_bounded(bytes in body()) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            match runtime.block_on(read(bytes)) {
                Ok(upload) => {
                    prop_assert!(upload.file.as_ref().map_or(0, Vec::len) as u64 <= MAX_FILE);
                    prop_assert!(upload.fields.len() <= MAX_FORM_FIELDS);
                    for (name, value) in &upload.fields {
                        prop_assert!(
                            READ_FIELDS.contains(&name.as_str())
                                || VALIDATE_FILE_FIELDS.contains(&name.as_str())
                        );
                        prop_assert!(value.chars().count() <= MAX_FORM_FIELD_CHARS);
                        prop_assert!(!value.trim().is_empty());
                    }
                }
                Err(e) => {
                    let status = e.status();
                    prop_assert!(
                        [StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::UNPROCESSABLE_ENTITY]
                            .contains(&status),
                        "{} {}", status, e
                    );
                    let problem = e.problem();
                    prop_assert!(problem.detail.chars().count() <= crate::edge::MAX_DETAIL_CHARS + 1);
                    prop_assert!(problem.errors.iter().all(|f| f.field.chars().count() <= 101));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_signed_task_id_in_a_form_is_refused_like_a_path_id() {
        for raw in ["+1", " 1", "1 ", "-1", "1e0", ""] {
            let body = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"task_id\"\r\n\r\n{raw}\r\n--{BOUNDARY}--\r\n"
            );
            let e = read(body.into_bytes()).await.err();
            // " 1" and "1 " are trimmed like every text part: task 1.
            if raw.trim() == "1" {
                assert!(e.is_none(), "{raw:?}");
            } else {
                let e = e.unwrap_or_else(|| panic!("{raw:?} was accepted"));
                assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{raw:?}");
            }
        }
    }
}
