//! No token, signing secret or phone number reaches the logs (SPEC §13), at any level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use invite_core::domain::UserId;
use invite_core::ports::Secret;
use invite_http::auth::issue_token;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Db, SECRET, server, token};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the server, the engine and the client all log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn no_token_secret_or_phone_reaches_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Callsites other tests' threads met first get this subscriber's interest too.
    tracing::callsite::rebuild_interest_cache();

    let s = server(Db::Memory).await.unwrap();
    let good = token(1);
    let forged = issue_token(
        &Secret::new("a-secret-the-server-does-not-know-at-all"),
        UserId::new(1),
        Utc::now(),
        TimeDelta::hours(1),
        None,
        None,
    );
    let expired = issue_token(
        &Secret::new(SECRET),
        UserId::new(1),
        Utc::now() - TimeDelta::hours(3),
        TimeDelta::hours(1),
        None,
        None,
    );
    for bad in [&forged, &expired] {
        let r = s
            .client
            .get(s.api("/tasks"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let body = json!({
        "name": "Phones",
        "platform": "sandbox",
        "action": "message",
        "template": "Hello {first_name|friend}",
        "targets": [
            {"identifier": "+4915112345678", "first_name": "Zed"},
            "+447700900123",
            "+79161234567",
            "@person_plain",
            "+1 (555) 01"
        ],
    });
    // Invalid first (the error names the field, not the number), then valid.
    let r = s.post("/tasks", 1, Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut valid = body;
    valid["targets"].as_array_mut().unwrap().pop();
    let id = s.create(1, valid).await;
    s.post(&format!("/tasks/{id}/start"), 1, None).await;
    s.drive().await;
    let report = s
        .req(Method::GET, &format!("/tasks/{id}/report"), Some(1))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    let status = s.status_of(1, id).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("audit: user 1 create task"),
        "nothing captured:\n{logs}"
    );
    assert!(
        logs.contains("task completed"),
        "the engine's lines are captured too"
    );
    for secret in [
        SECRET,
        good.as_str(),
        forged.as_str(),
        expired.as_str(),
        "4915112345678",
        "447700900123",
        "79161234567",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
