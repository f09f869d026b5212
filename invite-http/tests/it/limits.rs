//! Every configured limit answers 413/422 naming the limit, and nothing is half-written;
//! idempotent creation.

use invite_core::service::ServiceLimits;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Db, Engine, config, problem, server, server_with, task_body};

async fn small(db: Db) -> Option<crate::helpers::TestServer> {
    let mut c = config();
    c.limits = ServiceLimits {
        max_targets_per_task: 5,
        max_running_tasks: 2,
        max_name_length: 20,
        max_template_length: 40,
    };
    server_with(db, c, Engine::Virtual).await
}

async fn too_many_targets_is_413_naming_the_limit_and_writes_nothing(db: Db) {
    let Some(s) = small(db).await else {
        return;
    };
    let p = problem(
        s.post("/tasks", 1, Some(task_body("Big", 6))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(p["limit"]["name"], "max_targets_per_task");
    assert_eq!(p["limit"]["max"], 5);
    assert_eq!(p["limit"]["actual"], 6);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("max_targets_per_task")
    );
    let list: Value = s.get("/tasks", 1).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());

    // Appending past the limit by an update is refused the same way, and appends nothing.
    let id = s.create(1, task_body("Small", 4)).await;
    let r = s
        .req(Method::PUT, &format!("/tasks/{id}"), Some(1))
        .json(&json!({"name": "Renamed", "targets": ["@extra_one", "@extra_two"]}))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(p["limit"]["actual"], 6);
    let st = s.status_of(1, id).await;
    assert_eq!(st["total"], 4);
    let task: Value = s
        .get(&format!("/tasks/{id}"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["name"], "Small");
}

async fn name_and_template_lengths_are_field_errors_naming_the_limit(db: Db) {
    let Some(s) = small(db).await else {
        return;
    };
    let mut body = task_body(&"n".repeat(21), 1);
    body["action"] = json!("invite_and_message");
    body["template"] = json!("x".repeat(41));
    let p = problem(
        s.post("/tasks", 1, Some(body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let errors = p["errors"].as_array().unwrap();
    let find = |f: &str| {
        errors
            .iter()
            .find(|e| e["field"] == f)
            .unwrap_or_else(|| panic!("no error for {f}: {p}"))["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(find("name").contains("max_name_length"));
    assert!(find("template").contains("max_template_length"));
}

async fn running_tasks_per_user_are_limited_on_start_and_resume(db: Db) {
    let Some(s) = small(db).await else {
        return;
    };
    let ids = [
        s.create(1, task_body("A", 2)).await,
        s.create(1, task_body("B", 2)).await,
        s.create(1, task_body("C", 2)).await,
    ];
    for id in &ids[..2] {
        assert_eq!(
            s.post(&format!("/tasks/{id}/start"), 1, None)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let p = problem(
        s.post(&format!("/tasks/{}/start", ids[2]), 1, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["limit"]["name"], "max_running_tasks");
    assert_eq!(p["limit"]["max"], 2);
    assert!(p["detail"].as_str().unwrap().contains("max_running_tasks"));
    let task: Value = s
        .get(&format!("/tasks/{}", ids[2]), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["status"], "PENDING");
    // Another user has slots of their own.
    let other = s.create(2, task_body("Other", 1)).await;
    assert_eq!(
        s.post(&format!("/tasks/{other}/start"), 2, None)
            .await
            .status(),
        StatusCode::OK
    );
    // Pausing frees a slot; resuming it while full is refused.
    s.post(&format!("/tasks/{}/pause", ids[0]), 1, None).await;
    assert_eq!(
        s.post(&format!("/tasks/{}/start", ids[2]), 1, None)
            .await
            .status(),
        StatusCode::OK
    );
    let p = problem(
        s.post(&format!("/tasks/{}/resume", ids[0]), 1, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["limit"]["name"], "max_running_tasks");
}

async fn idempotent_create_returns_the_same_task_and_refuses_another_body(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let send = |key: &'static str, body: Value| {
        s.req(Method::POST, "/tasks", Some(1))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("k-1", task_body("Once", 3)).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send("k-1", task_body("Once", 3)).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["task"]["id"], first["task"]["id"]);
    assert_eq!(again["replayed"], true);
    // The same request written differently is the same request.
    let mut respelled = task_body("  Once ", 3);
    respelled["targets"][0] = json!("https://t.me/PERSON_00000");
    respelled["priority"] = json!("normal");
    let r = send("k-1", respelled).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(
        send("k-1", task_body("Once", 4)).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["type"], "urn:invite:problem:idempotency-mismatch");
    let list: Value = s.get("/tasks", 1).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Without a key, every request creates.
    s.create(1, task_body("Once", 3)).await;
    s.create(1, task_body("Once", 3)).await;
    let list: Value = s.get("/tasks", 1).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

crate::on_every_store!(
    too_many_targets_is_413_naming_the_limit_and_writes_nothing,
    name_and_template_lengths_are_field_errors_naming_the_limit,
    running_tasks_per_user_are_limited_on_start_and_resume,
    idempotent_create_returns_the_same_task_and_refuses_another_body,
);
