//! Hostile edges: absurd numbers, panics, invented methods, oversized heads, odd path ids,
//! huge echoed values, forged time claims. Each refusal is a problem document, and the server
//! keeps serving afterwards.

use axum::routing::get;
use chrono::{TimeDelta, Utc};
use invite_core::service::ServiceLimits;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Db, Engine, SECRET, TestServer, config, problem, server, server_with, task_body,
};

const HUGE: &str = "4294967295";

impl TestServer {
    /// The server answers normally.
    async fn still_serves(&self) {
        let r = self.get("/tasks", 1).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    async fn upload_people(&self, route: &str, fields: &[(&str, String)]) -> reqwest::Response {
        let mut form = Form::new().part(
            "file",
            Part::bytes(b"username\n@abcde_one\n".to_vec()).file_name("people.csv"),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.clone());
        }
        self.req(Method::POST, route, Some(1))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }
}

async fn field_problem(r: reqwest::Response, field: &str) -> Value {
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], field, "{p}");
    p
}

#[tokio::test]
async fn absurd_numbers_are_422_everywhere_and_the_server_keeps_serving() {
    let s = server(Db::Memory).await.unwrap();
    let mut body = task_body("Absurd", 1);
    body["dedupe_days"] = json!(u32::MAX);
    field_problem(s.post("/tasks", 1, Some(body)).await, "dedupe_days").await;
    let mut body = task_body("Absurd", 1);
    body["scheduled_at"] = json!("+262142-12-31T23:59:59Z");
    let p = field_problem(s.post("/tasks", 1, Some(body)).await, "scheduled_at").await;
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("366"));

    let mut body = task_body("Fine", 1);
    body["dedupe_days"] = json!(3650);
    let id = s.create(1, body).await;
    for patch in [
        json!({"dedupe_days": u32::MAX}),
        json!({"dedupe_days": 0}),
        json!({"scheduled_at": "+262142-12-31T23:59:59Z"}),
        json!({"scheduled_at": "1900-01-01T00:00:00Z"}),
    ] {
        let r = s
            .req(Method::PUT, &format!("/tasks/{id}"), Some(1))
            .json(&patch)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    }

    // Import options: query, multipart validation and import.
    let r = s
        .get(
            &format!("/import/validate?identifiers=@abcde_one&task_id={id}&dedupe_days={HUGE}"),
            1,
        )
        .await;
    field_problem(r, "dedupe_days").await;
    let fields = [
        ("task_id", id.to_string()),
        ("dedupe_days", HUGE.to_owned()),
    ];
    field_problem(
        s.upload_people("/import/validate", &fields).await,
        "dedupe_days",
    )
    .await;
    field_problem(
        s.upload_people("/import/file", &fields).await,
        "dedupe_days",
    )
    .await;

    // Pagination.
    for q in [
        "offset=10000001",
        "offset=4294967295",
        "limit=0",
        "limit=1001",
    ] {
        let r = s.get(&format!("/tasks?{q}"), 1).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        let r = s.get(&format!("/tasks/{id}/logs?{q}"), 1).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let r = s.get("/tasks?offset=10000000", 1).await;
    assert_eq!(r.status(), StatusCode::OK);

    let status = s.status_of(1, id).await;
    assert_eq!(status["total"], 1);
    s.still_serves().await;
}

async fn boom() -> &'static str {
    panic!("a handler bug")
}

#[tokio::test]
async fn a_panic_is_a_500_problem_with_an_error_id_and_the_connection_is_kept() {
    let s = server(Db::Memory).await.unwrap();
    let router = axum::Router::new()
        .route("/boom", get(boom))
        .route("/fine", get(|| async { "fine" }));
    let app = invite_http::edge::harden(router).with_state(s.runtime.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // One connection for every request: a panic must not close it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = client.get(format!("{base}/boom")).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let p = problem(r, StatusCode::INTERNAL_SERVER_ERROR).await;
        let id = p["error_id"].as_str().unwrap();
        assert_eq!(id.len(), 16);
        assert!(p["detail"].as_str().unwrap().contains(id), "{p}");
        assert!(!p.to_string().contains("handler bug"), "{p}");
        let r = client.get(format!("{base}/fine")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

/// Series of the HTTP metrics whose method is not a standard verb.
async fn other_series(s: &TestServer) -> (usize, String) {
    let text = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n = text
        .lines()
        .filter(|l| l.starts_with("http_request") && l.contains("method=\"other\""))
        .count();
    (n, text)
}

#[tokio::test]
async fn invented_methods_leave_the_number_of_metric_series_unchanged() {
    let s = server(Db::Memory).await.unwrap();
    let send = |i: usize, path: String| {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        s.client.request(method, path).send()
    };
    // Every (path, status) the loop below produces, once.
    send(0, s.api("/tasks")).await.unwrap();
    send(0, s.url("/nowhere-0")).await.unwrap();
    let (before, _) = other_series(&s).await;
    assert!(before > 0);
    for i in 1..=100 {
        let r = send(i, s.api("/tasks")).await.unwrap();
        problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
        let r = send(i, s.url(&format!("/nowhere-{i}"))).await.unwrap();
        problem(r, StatusCode::NOT_FOUND).await;
    }
    let (after, text) = other_series(&s).await;
    assert_eq!(before, after);
    assert!(!text.contains("INVENTED"));
    assert!(!text.contains("nowhere"));
    s.still_serves().await;
}

#[tokio::test]
async fn oversized_request_heads_are_problems() {
    let s = server(Db::Memory).await.unwrap();
    let long = format!("/tasks?name={}", "a".repeat(10_000));
    let p = problem(s.get(&long, 1).await, StatusCode::URI_TOO_LONG).await;
    assert!(p["detail"].as_str().unwrap().contains("8192"));

    let mut r = s.req(Method::GET, "/tasks", Some(1));
    for i in 0..70 {
        r = r.header(format!("x-filler-{i}"), "1");
    }
    problem(
        r.send().await.unwrap(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    )
    .await;
    let r = s
        .req(Method::GET, "/tasks", Some(1))
        .header("x-filler", "b".repeat(20_000))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    s.still_serves().await;
}

#[tokio::test]
async fn answers_carry_the_security_headers_of_a_json_api() {
    let s = server(Db::Memory).await.unwrap();
    let r = s.get("/tasks", 1).await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = s.req(Method::GET, "/tasks", None).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    problem(r, StatusCode::UNAUTHORIZED).await;
    // The fallbacks go through the same layers.
    let r = s.client.get(s.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    problem(r, StatusCode::NOT_FOUND).await;
    let r = s
        .req(Method::PATCH, "/tasks", Some(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
    let r = s.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn path_ids_are_plain_digits() {
    let s = server(Db::Memory).await.unwrap();
    let id = s.create(1, task_body("Digits", 1)).await;
    assert_eq!(id, 1);
    for raw in [
        "%201",
        "+1",
        "1%20",
        "-1",
        "0x1",
        "1.0",
        "99999999999999999999",
    ] {
        let r = s.get(&format!("/tasks/{raw}"), 1).await;
        problem(r, StatusCode::NOT_FOUND).await;
    }
    let r = s.get("/tasks/1", 1).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn error_bodies_are_bounded_and_name_no_rust_types() {
    let s = server(Db::Memory).await.unwrap();
    let mut body = task_body("Huge group", 1);
    let group = "g".repeat(1 << 20);
    body["group"] = json!(group);
    let r = s.post("/tasks", 1, Some(body)).await;
    let p = field_problem(r, "group").await;
    let text = p.to_string();
    assert!(text.len() < 2_000, "{} bytes", text.len());
    assert_eq!(
        text.matches("invalid group").count(),
        1,
        "echoed once: {text}"
    );
    assert!(text.matches('g').count() < 200, "cut: {text}");

    for bad in [json!("a string"), json!([1, 2]), json!({"name": 1})] {
        let p = problem(
            s.post("/tasks", 1, Some(bad)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let detail = p["detail"].as_str().unwrap();
        for word in ["CreateTaskBody", "struct", "TargetInput", "ActionWire"] {
            assert!(!detail.contains(word), "{detail}");
        }
    }
    let mut body = task_body("Bad target", 0);
    body["targets"] = json!([42]);
    let p = problem(
        s.post("/tasks", 1, Some(body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        !p["detail"].as_str().unwrap().contains("TargetInput"),
        "{p}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn too_many_identifiers_to_suppress_speak_of_the_request() {
    let mut c = config();
    c.limits = ServiceLimits {
        max_targets_per_task: 5,
        ..ServiceLimits::default()
    };
    let s = server_with(Db::Memory, c, Engine::Virtual).await.unwrap();
    let many: Vec<String> = (0..10).map(|i| format!("@person_{i:05}")).collect();
    let r = s
        .post("/suppressions", 1, Some(json!({"identifiers": many})))
        .await;
    let p = field_problem(r, "identifiers").await;
    assert!(!p.to_string().contains("task's"), "{p}");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("10"));
    s.still_serves().await;
}

fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_from_the_future_are_refused() {
    let s = server(Db::Memory).await.unwrap();
    let now = Utc::now().timestamp();
    let exp = now + TimeDelta::hours(1).num_seconds();
    let later = now + TimeDelta::hours(1).num_seconds() / 2;
    for claims in [
        json!({"user_id": 1, "exp": exp, "nbf": later}),
        json!({"user_id": 1, "exp": exp, "iat": later}),
        json!({"user_id": 1, "exp": exp, "iat": now + 20 * 365 * 86_400}),
        json!({"user_id": 1, "exp": exp, "iss": ["platform"]}),
    ] {
        let r = s
            .client
            .get(s.api("/tasks"))
            .bearer_auth(signed(claims.clone()))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
    }
    let ok = json!({"user_id": 1, "exp": exp, "iat": now, "nbf": now});
    let r = s
        .client
        .get(s.api("/tasks"))
        .bearer_auth(signed(ok))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_document_states_the_ranges() {
    let doc = serde_json::to_value(invite_http::api::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "InviteTaskBody",
        "MessageTaskBody",
        "InviteAndMessageTaskBody",
        "UpdateTaskBody",
    ] {
        let days = &schemas[schema]["properties"]["dedupe_days"]["oneOf"][0];
        assert_eq!(days["minimum"], 1, "{schema}: {days}");
        assert_eq!(days["maximum"], 3650, "{schema}: {days}");
    }
    let params = doc["paths"]["/api/v1/invite/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["maximum"], 1000, "{limit}");
}
