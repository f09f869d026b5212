//! The report as JSON and CSV matches the stored outcomes; metrics move when a task runs.

use std::collections::BTreeMap;

use invite_core::domain::{TaskId, UserId};
use invite_core::ports::TaskStore;
use invite_http::api::REPORT_CSV_HEADER;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Db, server, task_body};

async fn the_csv_report_parses_and_matches_the_stored_outcomes(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let id = s.create(3, task_body("Report", 40)).await;
    s.post(&format!("/tasks/{id}/start"), 3, None).await;
    s.drive().await;

    let r = s.get(&format!("/tasks/{id}/report?format=csv"), 3).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, REPORT_CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 40);

    let stored = s
        .runtime
        .store
        .targets(UserId::new(3), TaskId::new(id), 0, 0)
        .await
        .unwrap();
    assert_eq!(stored.len(), 40);
    for (row, target) in rows.iter().zip(&stored) {
        assert_eq!(row[0], target.id.to_string());
        assert_eq!(row[1], target.person.identifier.to_string());
        assert_eq!(row[3], target.status.to_string());
        assert_eq!(row[4], target.outcome.unwrap().to_string());
        assert_eq!(row[5], target.account_id.as_ref().unwrap().to_string());
        let at: chrono::DateTime<chrono::Utc> = row[7].parse().unwrap();
        assert_eq!(Some(at), target.processed_at);
        assert_eq!(row[8], target.error_message.clone().unwrap_or_default());
    }

    // The JSON report says the same.
    let json: Value = s
        .get(&format!("/tasks/{id}/report"), 3)
        .await
        .json()
        .await
        .unwrap();
    let json_rows = json["rows"].as_array().unwrap();
    assert_eq!(json_rows.len(), 40);
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    for (j, c) in json_rows.iter().zip(&rows) {
        assert_eq!(j["outcome"], c[4].to_owned());
        *by_outcome.entry(c[4].to_owned()).or_default() += 1;
    }
    let outcomes: BTreeMap<String, u64> = serde_json::from_value(json["outcomes"].clone()).unwrap();
    assert_eq!(outcomes, by_outcome);
    assert_eq!(json["task"]["status"], "COMPLETED");
    assert_eq!(
        s.get(&format!("/tasks/{id}/report?format=xml"), 3)
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Sum of a metric's samples whose labels include all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_change_after_a_task_runs(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let scrape = || async {
        let r = s.client.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    };
    let before = scrape().await;
    let id = s.create(4, task_body("Metrics", 10)).await;
    s.post(&format!("/tasks/{id}/start"), 4, None).await;
    s.drive().await;
    let after = scrape().await;
    let processed = |t: &str| metric(t, "invite_targets_processed", &[r#"platform="sandbox""#]);
    assert!(processed(&after) >= processed(&before) + 10.0, "{after}");
    let completed = |t: &str| {
        metric(
            t,
            "invite_tasks_total",
            &[r#"platform="sandbox""#, r#"status="COMPLETED""#],
        )
    };
    assert!(completed(&after) >= completed(&before) + 1.0, "{after}");
    assert!(
        metric(
            &after,
            "invite_task_duration_seconds_count",
            &[r#"platform="sandbox""#]
        ) >= 1.0
    );
    assert!(after.contains("invite_active_tasks"));
    let requests = |t: &str| {
        metric(
            t,
            "http_requests_total",
            &[
                r#"path="/api/v1/invite/tasks/{id}/start""#,
                r#"status="200""#,
            ],
        )
    };
    assert!(requests(&after) >= requests(&before) + 1.0, "{after}");
    assert!(after.contains("http_request_duration_seconds_bucket"));
}

crate::on_every_store!(
    the_csv_report_parses_and_matches_the_stored_outcomes,
    metrics_change_after_a_task_runs,
);
