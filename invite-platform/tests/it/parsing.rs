//! The Parsing Service client against a mock service: shapes, paging, retries, refusals,
//! timeouts, the service token and validation of the users it returns.

use std::time::Duration;

use chrono::TimeDelta;
use invite_core::domain::TargetSource;
use invite_core::ports::{AudienceError, AudienceSource};
use invite_platform::Error;
use serde_json::{Value, json};
use wiremock::matchers::{header_exists, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn users_get() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(USERS_PATH))
        .and(query_param("user_id", "7"))
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn usernames(from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .map(|i| json!({"username": format!("member_{i:04}"), "first_name": format!("N{i}")}))
        .collect()
}

#[tokio::test]
async fn plain_array_becomes_parsing_targets() {
    let (server, client, _) = setup().await;
    users_get()
        .and(header_exists("authorization"))
        .respond_with(ok(json!([
            {"id": 1, "user_id": 100200300, "username": "alice_one", "first_name": "Alice",
             "last_name": "Smith", "phone": null},
            {"id": 2, "user_id": 100200301, "username": null, "first_name": "Bob"},
            {"id": 3, "username": "@Carol_Three", "phone": "+79161234567"},
        ])))
        .expect(1)
        .mount(&server)
        .await;

    let audience = client.users(USER, "42", 1000).await.unwrap();
    assert_eq!(audience.records.len(), 3);
    let report = import(&audience);
    assert_eq!((report.rows, report.valid, report.invalid), (3, 3, 0));
    let shown: Vec<String> = report
        .targets
        .iter()
        .map(|t| t.identifier.to_string())
        .collect();
    assert_eq!(shown, ["@alice_one", "100200301", "@carol_three"]);
    assert_eq!(report.targets[0].first_name.as_deref(), Some("Alice"));
    assert_eq!(report.targets[0].last_name.as_deref(), Some("Smith"));
    assert!(
        report
            .targets
            .iter()
            .all(|t| t.source == TargetSource::ParsingImport)
    );
}

#[tokio::test]
async fn paged_object_across_three_pages() {
    let (server, client, _) = setup().await;
    users_get()
        .and(query_param_is_missing("page"))
        .respond_with(ok(
            json!({"items": usernames(0, 100), "page": 1, "total_pages": 3, "total": 250}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    users_get()
        .and(query_param("page", "2"))
        .respond_with(ok(
            json!({"items": usernames(100, 200), "page": 2, "total_pages": 3, "total": 250}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // The last page repeats someone from page 1 and has one invalid username.
    let mut last = usernames(200, 248);
    last.push(json!({"username": "member_0005"}));
    last.push(json!({"username": "9lives"}));
    users_get()
        .and(query_param("page", "3"))
        .respond_with(ok(
            json!({"items": last, "page": 3, "total_pages": 3, "total": 250}),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let audience = client.users(USER, "42", 10_000).await.unwrap();
    assert_eq!(audience.records.len(), 250);
    let report = import(&audience);
    assert_eq!(report.rows, 250);
    assert_eq!(report.valid, 248);
    assert_eq!(report.duplicate_in_file, 1);
    assert_eq!(report.invalid, 1);
    // Row numbers run across pages.
    assert_eq!(report.errors[0].row, 250);
    assert_eq!(report.skipped[0].row, 249);
}

#[tokio::test]
async fn next_links_are_followed() {
    let (server, client, _) = setup().await;
    let base = server.uri();
    users_get()
        .and(query_param_is_missing("cursor"))
        .respond_with(ok(json!({
            "count": 4, "previous": null,
            "next": format!("{base}{USERS_PATH}?user_id=7&cursor=b"),
            "results": ["@first_one", "@second_one"],
        })))
        .expect(1)
        .mount(&server)
        .await;
    users_get()
        .and(query_param("cursor", "b"))
        .respond_with(ok(json!({
            "count": 4, "next": "?user_id=7&cursor=c", "results": ["@third_one"],
        })))
        .expect(1)
        .mount(&server)
        .await;
    users_get()
        .and(query_param("cursor", "c"))
        .respond_with(ok(
            json!({"count": 4, "next": null, "results": ["@fourth_one"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let audience = client.users(USER, "42", 100).await.unwrap();
    assert_eq!(
        audience.records,
        vec![
            json!("@first_one"),
            json!("@second_one"),
            json!("@third_one"),
            json!("@fourth_one")
        ]
    );
    assert_eq!(import(&audience).valid, 4);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let (server, client, clock) = setup().await;
    users_get()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    users_get()
        .respond_with(ok(json!(["@after_retry"])))
        .expect(1)
        .mount(&server)
        .await;

    let audience = client.users(USER, "42", 100).await.unwrap();
    assert_eq!(audience.records, vec![json!("@after_retry")]);
    assert_eq!(slept(&clock), Duration::from_millis(100), "one backoff");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (server, client, clock) = setup().await;
    users_get()
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    users_get()
        .respond_with(ok(json!(["@patient_one"])))
        .mount(&server)
        .await;

    client.users(USER, "42", 100).await.unwrap();
    assert_eq!(slept(&clock), Duration::from_secs(3));
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (server, client, clock) = setup().await;
    users_get()
        .respond_with(ResponseTemplate::new(500))
        .expect(3 + 3)
        .mount(&server)
        .await;

    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert_eq!(
        err,
        Error::Status {
            service: "Parsing Service",
            status: 500,
            attempts: 3
        }
    );
    assert!(err.is_retryable());
    assert_eq!(slept(&clock), Duration::from_millis(100 + 200));

    let err = client.fetch(USER, "42", 100).await.unwrap_err();
    assert!(matches!(err, AudienceError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn client_errors_are_final_at_once() {
    let cases = [
        (404, "not found"),
        (401, "unauthorized"),
        (403, "unauthorized"),
        (422, "rejected"),
    ];
    for (status, expected) in cases {
        let (server, client, clock) = setup().await;
        users_get()
            .respond_with(ResponseTemplate::new(status).set_body_string("{\"detail\": \"nope\"}"))
            .expect(2)
            .mount(&server)
            .await;
        let err = client.users(USER, "42", 100).await.unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(slept(&clock), Duration::ZERO);
        let kind = match &err {
            Error::NotFound { what, .. } => {
                assert_eq!(what, "parsing result 42");
                "not found"
            }
            Error::Unauthorized { status: s, .. } => {
                assert_eq!(*s, status);
                "unauthorized"
            }
            Error::Rejected {
                status: s, message, ..
            } => {
                assert_eq!((*s, message.as_str()), (422, "{\"detail\": \"nope\"}"));
                "rejected"
            }
            other => panic!("{status}: {other:?}"),
        };
        assert_eq!(kind, expected, "HTTP {status}");
        let port = client.fetch(USER, " 42 ", 100).await.unwrap_err();
        match status {
            404 => assert_eq!(port, AudienceError::NotFound { task: "42".into() }),
            401 | 403 => assert!(matches!(port, AudienceError::Unauthorized(_))),
            _ => assert!(matches!(port, AudienceError::Rejected(_))),
        }
    }
}

#[tokio::test]
async fn malformed_answers_are_errors_without_retry() {
    let bodies = [
        "[{\"username\": \"broken\"",
        "{\"people\": [\"@someone_here\"]}",
        "\"just text\"",
        "",
    ];
    for body in bodies {
        let (server, client, _) = setup().await;
        users_get()
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .expect(2)
            .mount(&server)
            .await;
        let err = client.users(USER, "42", 100).await.unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{body}: {err:?}");
        assert!(!err.is_retryable());
        let port = client.fetch(USER, "42", 100).await.unwrap_err();
        assert!(matches!(port, AudienceError::Invalid(_)), "{port:?}");
    }
}

#[tokio::test]
async fn a_slow_service_times_out_after_bounded_attempts() {
    let server = wiremock::MockServer::start().await;
    let mut http = fast_http();
    http.request_timeout = Duration::from_millis(200);
    http.retry.max_retries = 1;
    let (client, clock) = client_of(&server.uri(), http);
    users_get()
        .respond_with(ok(json!(["@too_late"])).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;

    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert_eq!(
        err,
        Error::Timeout {
            service: "Parsing Service",
            attempts: 2
        }
    );
    assert!(err.is_retryable());
    assert_eq!(slept(&clock), Duration::from_millis(100));
}

#[tokio::test]
async fn an_unreachable_service_is_retried_then_reported() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (client, clock) = client_of(&format!("http://127.0.0.1:{port}"), fast_http());
    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert!(matches!(err, Error::Connect { attempts: 3, .. }), "{err:?}");
    assert_eq!(slept(&clock), Duration::from_millis(300));
}

#[tokio::test]
async fn every_request_carries_a_valid_service_token() {
    let (server, client, clock) = setup().await;
    users_get()
        .and(query_param_is_missing("page"))
        .respond_with(ok(
            json!({"users": ["@page_one"], "page": 1, "has_more": true}),
        ))
        .mount(&server)
        .await;
    users_get()
        .and(query_param("page", "2"))
        .respond_with(ok(
            json!({"users": ["@page_two"], "page": 2, "has_more": false}),
        ))
        .mount(&server)
        .await;

    client.users(USER, "42", 100).await.unwrap();
    clock.advance(TimeDelta::minutes(55));
    client.users(USER, "42", 100).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    let headers: Vec<String> = requests
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .expect("an Authorization header")
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let iat = t0().timestamp();
    for (i, header) in headers.iter().enumerate() {
        let claims = verify_bearer(header, SECRET).unwrap();
        let issued = if i < 2 { iat } else { iat + 55 * 60 };
        assert_eq!(
            claims,
            json!({"sub": IDENTITY, "service": "invite-service", "iat": issued, "exp": issued + 3600})
        );
        assert!(verify_bearer(header, "another-secret").is_err());
    }
    assert_eq!(headers[0], headers[1], "the token is reused");
    assert_ne!(headers[1], headers[2], "and refreshed near its expiry");
    assert_eq!(
        requests[0].headers.get("accept").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn invalid_identifiers_are_counted_as_invalid_rows() {
    let (server, client, _) = setup().await;
    users_get()
        .respond_with(ok(json!({"users": [
            {"username": "valid_name", "phone": null},
            {"username": "ab"},
            {"username": "1starts_with_digit"},
            {"username": "has space"},
            {"phone": "+12"},
            {"user_id": "12x"},
            {"first_name": "No identifier at all"},
            {"user_id": 5550001},
            {"phone": "+4915112345678"},
        ]})))
        .mount(&server)
        .await;

    let report = import(&client.users(USER, "42", 100).await.unwrap());
    assert_eq!(report.rows, 9);
    assert_eq!(report.valid, 3);
    assert_eq!(report.invalid, 6);
    let rows: Vec<u64> = report.errors.iter().map(|e| e.row).collect();
    assert_eq!(rows, [2, 3, 4, 5, 6, 7]);
    assert_eq!(report.errors[0].column, "username");
    assert_eq!(report.errors[0].value, "ab");
}

#[tokio::test]
async fn more_users_than_allowed_stops_fetching() {
    let (server, client, _) = setup().await;
    users_get()
        .and(query_param_is_missing("page"))
        .respond_with(ok(
            json!({"items": usernames(0, 60), "page": 1, "pages": 5}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    users_get()
        .and(query_param("page", "2"))
        .respond_with(ok(
            json!({"items": usernames(60, 120), "page": 2, "pages": 5}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    users_get()
        .and(query_param("page", "3"))
        .respond_with(ok(json!({"items": [], "page": 3, "pages": 5})))
        .expect(0)
        .mount(&server)
        .await;

    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert_eq!(
        err,
        Error::TooManyRecords {
            service: "Parsing Service",
            limit: 100
        }
    );
    let port = client.fetch(USER, "42", 119).await.unwrap_err();
    assert_eq!(port, AudienceError::TooMany { limit: 119 });
}

#[tokio::test]
async fn fewer_users_than_announced_is_an_error() {
    let (server, client, _) = setup().await;
    users_get()
        .respond_with(ok(
            json!({"results": ["@only_one"], "total": 3, "next": null}),
        ))
        .mount(&server)
        .await;
    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { message, .. } if message.contains("announced 3 users but its pages held 1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_service_that_ignores_the_page_parameter_is_caught() {
    let (server, client, _) = setup().await;
    users_get()
        .respond_with(ok(json!({"items": ["@same_again"], "page": 1, "pages": 3})))
        .expect(2)
        .mount(&server)
        .await;
    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { message, .. } if message.contains("asked for page 2, got page 1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn page_links_that_loop_or_leave_are_refused() {
    let (server, client, _) = setup().await;
    users_get()
        .and(query_param_is_missing("cursor"))
        .respond_with(ok(
            json!({"items": ["@a_person"], "next": "?user_id=7&cursor=x"}),
        ))
        .mount(&server)
        .await;
    users_get()
        .and(query_param("cursor", "x"))
        .respond_with(ok(
            json!({"items": ["@b_person"], "next": "?user_id=7&cursor=x"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { message, .. } if message.contains("loop")),
        "{err:?}"
    );

    let (server, client, _) = setup().await;
    users_get()
        .respond_with(ok(
            json!({"items": ["@a_person"], "next": "http://198.51.100.7/steal?page=2"}),
        ))
        .mount(&server)
        .await;
    let err = client.users(USER, "42", 100).await.unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { message, .. } if message.contains("leaves the service")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let server = wiremock::MockServer::start().await;
    let mut http = fast_http();
    http.max_response_bytes = 1000;
    let (client, _) = client_of(&server.uri(), http);
    users_get()
        .respond_with(ok(json!(usernames(0, 100))))
        .expect(1)
        .mount(&server)
        .await;
    let err = client.users(USER, "42", 1000).await.unwrap_err();
    assert_eq!(
        err,
        Error::TooLarge {
            service: "Parsing Service",
            limit: 1000
        }
    );
}

#[tokio::test]
async fn a_path_prefix_and_odd_task_ids_reach_the_right_url() {
    let server = wiremock::MockServer::start().await;
    let (client, _) = client_of(&format!("{}/parsing/", server.uri()), fast_http());
    Mock::given(method("GET"))
        .and(path("/parsing/api/parsing/results/a%20b%2Fc/users"))
        .respond_with(ok(json!(["@odd_task"])))
        .expect(1)
        .mount(&server)
        .await;
    let audience = client.users(USER, "a b/c", 10).await.unwrap();
    assert_eq!(audience.records.len(), 1);
}
