//! A sandbox task's whole life over HTTP: create, start, pause, resume, complete.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, Engine, config, server, server_with, t0, task_body};

async fn a_sandbox_task_runs_to_completed_under_real_pacing_on_a_virtual_clock(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let mut body = task_body("Launch", 30);
    body["targets"]
        .as_array_mut()
        .unwrap()
        .push(json!({"identifier": "t.me/Person_00000", "first_name": "Ann"}));
    let r = s.post("/tasks", 1, Some(body)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/tasks/1")
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["inserted"], 30);
    assert_eq!(created["duplicates"], 1);
    let id = created["task"]["id"].as_i64().unwrap();

    let before = s.status_of(1, id).await;
    assert_eq!(before["status"], "PENDING");
    assert_eq!(before["total"], 30);
    assert_eq!(before["accounts"], 4);
    // 4 accounts, one invite per 96 min each into one group: 30 invites end 7 × 96 min on.
    let eta = &before["eta"];
    assert_eq!(eta["remaining"], 30);
    let finish: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(eta["finish_at"].clone()).unwrap();
    assert_eq!(finish, t0() + chrono::TimeDelta::minutes(7 * 96));

    let r = s.post(&format!("/tasks/{id}/start"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "IN_PROGRESS");

    // One pass: every account takes one target; then pause and nothing more moves.
    s.runtime.engine.tick().await.unwrap();
    let r = s.post(&format!("/tasks/{id}/pause"), 1, None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "PAUSED");
    s.drive().await;
    let paused = s.status_of(1, id).await;
    assert_eq!(paused["status"], "PAUSED");
    assert_eq!(paused["processed"], 4);
    assert_eq!(paused["active_accounts"], 4);

    let r = s.post(&format!("/tasks/{id}/resume"), 1, None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "IN_PROGRESS");
    s.drive().await;
    let done = s.status_of(1, id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["processed"], 30);
    assert_eq!(done["percent"], 100.0);
    assert!(done["eta"].is_null());
    let outcomes: u64 = done["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(outcomes, 30);
    assert!(done["outcomes"]["invited"].as_u64().unwrap() > 15, "{done}");

    let task: Value = s
        .get(&format!("/tasks/{id}"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["status"], "COMPLETED");
    assert!(task["finished_at"].is_string());

    let stats: Value = s
        .get(&format!("/tasks/{id}/stats"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["per_account"].as_array().unwrap().len(), 4);
    let attempts: u64 = stats["per_account"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempts"].as_u64().unwrap())
        .sum();
    assert!(attempts >= 30);
    assert!(!stats["timeline"].as_array().unwrap().is_empty());

    // Logs: paginated and filterable.
    let page: Value = s
        .get(&format!("/tasks/{id}/logs?limit=10"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    assert_eq!(page["next_offset"], 10);
    let account = page["items"][0]["account_id"].as_str().unwrap().to_owned();
    let mine: Value = s
        .get(
            &format!("/tasks/{id}/logs?limit=1000&account_id={account}"),
            1,
        )
        .await
        .json()
        .await
        .unwrap();
    let mine = mine["items"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|l| l["account_id"] == account.as_str()));
    let ok: Value = s
        .get(&format!("/tasks/{id}/logs?limit=1000&status=success"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        ok["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "SUCCESS")
    );
    let none: Value = s
        .get(
            &format!(
                "/tasks/{id}/logs?until={}",
                t0().to_rfc3339().replace('+', "%2B")
            ),
            1,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());

    // A finished task can be deleted.
    let r = s
        .req(reqwest::Method::DELETE, &format!("/tasks/{id}"), Some(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/tasks/{id}"), 1).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn the_background_engine_completes_a_task_and_health_reports_it(db: Db) {
    let Some(s) = server_with(db, config(), Engine::Background).await else {
        return;
    };
    let health = s.client.get(s.api("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let names: Vec<&str> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for dep in [
        "store",
        "limit_ledger",
        "queue",
        "account_directory",
        "engine",
    ] {
        assert!(names.contains(&dep), "{health}");
    }

    let id = s.create(7, task_body("Background", 12)).await;
    s.post(&format!("/tasks/{id}/start"), 7, None).await;
    let done = s.wait_for(7, id, "COMPLETED").await;
    assert_eq!(done["processed"], 12);

    let accounts: Value = s.get("/accounts", 7).await.json().await.unwrap();
    let items = accounts["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|a| a["id"].as_str().unwrap().starts_with("sandbox-7-"))
    );
    let used: u64 = items
        .iter()
        .flat_map(|a| a["usage"].as_array().unwrap().iter())
        .filter(|u| u["kind"] == "invite")
        .map(|u| u["used"].as_u64().unwrap())
        .sum();
    assert!(used <= 12, "{accounts}");
}

async fn a_start_before_scheduled_at_waits_in_pending(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let mut body = task_body("Later", 3);
    body["scheduled_at"] = json!((t0() + chrono::TimeDelta::hours(3)).to_rfc3339());
    let id = s.create(1, body).await;
    let r: Value = s
        .post(&format!("/tasks/{id}/start"), 1, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "PENDING");
    assert_eq!(r["start_requested"], true);
    // The engine starts it when the time comes (the virtual clock jumps there).
    s.drive().await;
    let done = s.status_of(1, id).await;
    assert_eq!(done["status"], "COMPLETED");
}

crate::on_every_store!(
    a_sandbox_task_runs_to_completed_under_real_pacing_on_a_virtual_clock,
    the_background_engine_completes_a_task_and_health_reports_it,
    a_start_before_scheduled_at_waits_in_pending,
);
