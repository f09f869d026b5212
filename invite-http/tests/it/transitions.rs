//! Illegal transitions are 409 with the current status; invalid requests list every field.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Db, problem, server, task_body};

async fn conflict(r: reqwest::Response, current: &str) {
    let p = problem(r, StatusCode::CONFLICT).await;
    assert_eq!(p["current_status"], current, "{p}");
    assert!(p["detail"].as_str().unwrap().contains(current), "{p}");
}

async fn illegal_transitions_are_409_with_the_current_status(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let id = s.create(1, task_body("T", 2)).await;
    conflict(
        s.post(&format!("/tasks/{id}/pause"), 1, None).await,
        "PENDING",
    )
    .await;
    conflict(
        s.post(&format!("/tasks/{id}/resume"), 1, None).await,
        "PENDING",
    )
    .await;
    s.post(&format!("/tasks/{id}/start"), 1, None).await;
    conflict(
        s.post(&format!("/tasks/{id}/start"), 1, None).await,
        "IN_PROGRESS",
    )
    .await;
    conflict(
        s.post(&format!("/tasks/{id}/resume"), 1, None).await,
        "IN_PROGRESS",
    )
    .await;
    let put = s
        .req(Method::PUT, &format!("/tasks/{id}"), Some(1))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    conflict(put, "IN_PROGRESS").await;
    let del = s
        .req(Method::DELETE, &format!("/tasks/{id}"), Some(1))
        .send()
        .await
        .unwrap();
    conflict(del, "IN_PROGRESS").await;
    s.drive().await;
    conflict(
        s.post(&format!("/tasks/{id}/cancel"), 1, None).await,
        "COMPLETED",
    )
    .await;
    conflict(
        s.post(&format!("/tasks/{id}/start"), 1, None).await,
        "COMPLETED",
    )
    .await;

    let other = s.create(1, task_body("U", 2)).await;
    let r: Value = s
        .post(&format!("/tasks/{other}/cancel"), 1, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "CANCELLED");
    conflict(
        s.post(&format!("/tasks/{other}/cancel"), 1, None).await,
        "CANCELLED",
    )
    .await;
    conflict(
        s.post(&format!("/tasks/{other}/resume"), 1, None).await,
        "CANCELLED",
    )
    .await;
}

async fn updates_apply_while_pending_or_paused(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let id = s.create(1, task_body("Draft", 2)).await;
    let r = s
        .req(Method::PUT, &format!("/tasks/{id}"), Some(1))
        .json(&json!({
            "name": "Final",
            "priority": "HIGH",
            "action": "invite_and_message",
            "template": "Hi {first_name|friend}!",
            "targets": ["@person_00000", "@new_person"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["task"]["name"], "Final");
    assert_eq!(r["task"]["priority"], "HIGH");
    assert_eq!(r["task"]["action"], "invite_and_message");
    assert_eq!(r["task"]["group"], "@launch_group");
    assert_eq!(r["added"]["inserted"], 1);
    assert_eq!(r["added"]["duplicates"], 1);
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let s = server(Db::Memory).await.unwrap();
    let body = json!({
        "name": "",
        "platform": "icq",
        "action": "invite",
        "group": "not a group",
        "priority": "urgent",
        "targets": ["@good_name", "@x", "", {"identifier": "@fine_name", "email": "e".repeat(300)}],
    });
    let p = problem(
        s.post("/tasks", 1, Some(body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "platform", "priority", "group"], "{p}");

    let body = json!({
        "name": "ok",
        "platform": "telegram",
        "action": "message",
        "template": "Hello {nickname}",
        "targets": ["@good_name", "@x", "", "+1", {"identifier": "@fine_name", "email": "e".repeat(300)}],
    });
    let p = problem(
        s.post("/tasks", 1, Some(body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let errors = p["errors"].as_array().unwrap();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "template",
            "targets[1]",
            "targets[2]",
            "targets[3]",
            "targets[4].email"
        ],
        "{p}"
    );
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid username")
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variable")
    );

    // Unreadable bodies are problems too.
    let r = s
        .req(Method::POST, "/tasks", Some(1))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
    let r = s
        .req(Method::POST, "/tasks", Some(1))
        .json(&json!({"name": "x", "platform": "sandbox", "action": "invite", "surprise": 1}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    problem(
        s.get("/tasks?limit=0", 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        s.get("/tasks?status=RUNNING", 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

crate::on_every_store!(
    illegal_transitions_are_409_with_the_current_status,
    updates_apply_while_pending_or_paused,
);
