//! One user never sees or touches another user's task, on any route.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Db, problem, server, task_body};

async fn another_users_task_is_not_found_on_every_route(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let id = s.create(1, task_body("Mine", 3)).await;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/tasks/{id}"), None),
        (
            Method::PUT,
            format!("/tasks/{id}"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/tasks/{id}"), None),
        (Method::POST, format!("/tasks/{id}/start"), None),
        (Method::POST, format!("/tasks/{id}/pause"), None),
        (Method::POST, format!("/tasks/{id}/resume"), None),
        (Method::POST, format!("/tasks/{id}/cancel"), None),
        (Method::GET, format!("/tasks/{id}/status"), None),
        (Method::GET, format!("/tasks/{id}/stats"), None),
        (Method::GET, format!("/tasks/{id}/report"), None),
        (Method::GET, format!("/tasks/{id}/report?format=csv"), None),
        (Method::GET, format!("/tasks/{id}/logs"), None),
    ];
    for (method, path, body) in &routes {
        let mut r = s.req(method.clone(), path, Some(2));
        if let Some(b) = body {
            r = r.json(b);
        }
        let p = problem(r.send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(p["type"], "urn:invite:problem:not-found", "{method} {path}");
    }
    // The owner's task is untouched, and the other user's list is empty.
    let task: Value = s
        .get(&format!("/tasks/{id}"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["name"], "Mine");
    assert_eq!(task["status"], "PENDING");
    let list: Value = s.get("/tasks", 2).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    let list: Value = s.get("/tasks", 1).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Accounts are per user too.
    let accounts: Value = s.get("/accounts", 2).await.json().await.unwrap();
    assert!(
        accounts["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["id"].as_str().unwrap().starts_with("sandbox-2-"))
    );
    // Idempotency keys are per user: the same key gives user 2 a task of their own.
    let a = s
        .req(Method::POST, "/tasks", Some(1))
        .header("idempotency-key", "same-key")
        .json(&task_body("A", 1))
        .send()
        .await
        .unwrap();
    let b = s
        .req(Method::POST, "/tasks", Some(2))
        .header("idempotency-key", "same-key")
        .json(&task_body("A", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::CREATED);
    assert_eq!(b.status(), StatusCode::CREATED);
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(a["task"]["id"], b["task"]["id"]);
}

#[tokio::test]
async fn a_non_numeric_task_id_is_not_found() {
    let s = server(Db::Memory).await.unwrap();
    let p = problem(s.get("/tasks/abc", 1).await, StatusCode::NOT_FOUND).await;
    assert_eq!(p["type"], "urn:invite:problem:not-found");
}

crate::on_every_store!(another_users_task_is_not_found_on_every_route,);
