//! The OpenAPI document lists every route the router serves, and every documented route is
//! served.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Db, server, task_body, token};

/// SPEC §9 (with `GET /import/validate` for identifiers in the query), with the suppression
/// list of the import issue.
const SPEC_ROUTES: [(&str, &str); 29] = [
    ("post", "/api/v1/invite/tasks"),
    // Accounts users give the embedded service (issue 11).
    ("post", "/api/v1/invite/accounts"),
    ("get", "/api/v1/invite/accounts/{id}"),
    ("patch", "/api/v1/invite/accounts/{id}"),
    ("delete", "/api/v1/invite/accounts/{id}"),
    ("get", "/api/v1/invite/tasks"),
    ("get", "/api/v1/invite/tasks/{id}"),
    ("put", "/api/v1/invite/tasks/{id}"),
    ("delete", "/api/v1/invite/tasks/{id}"),
    ("post", "/api/v1/invite/tasks/{id}/start"),
    ("post", "/api/v1/invite/tasks/{id}/pause"),
    ("post", "/api/v1/invite/tasks/{id}/resume"),
    ("post", "/api/v1/invite/tasks/{id}/cancel"),
    ("get", "/api/v1/invite/tasks/{id}/status"),
    ("get", "/api/v1/invite/tasks/{id}/stats"),
    ("get", "/api/v1/invite/tasks/{id}/report"),
    ("get", "/api/v1/invite/tasks/{id}/logs"),
    ("post", "/api/v1/invite/import/file"),
    ("post", "/api/v1/invite/import/validate"),
    ("get", "/api/v1/invite/import/validate"),
    ("post", "/api/v1/invite/import/parsing"),
    ("get", "/api/v1/invite/suppressions"),
    ("post", "/api/v1/invite/suppressions"),
    ("delete", "/api/v1/invite/suppressions"),
    ("post", "/api/v1/invite/suppressions/file"),
    ("get", "/api/v1/invite/health"),
    ("get", "/api/v1/invite/accounts"),
    ("get", "/api/v1/invite/openapi.json"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_document_and_the_router_agree() {
    let s = server(Db::Memory).await.unwrap();
    let doc: Value = s
        .client
        .get(s.api("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let spec: BTreeSet<(String, String)> = SPEC_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, spec, "documented routes differ from SPEC §9");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every documented route is served: not the router's "no such route" nor a 405.
    let id = s.create(1, task_body("Doc", 1)).await;
    for (method, path) in &documented {
        let url = s.url(&path.replace("{id}", &id.to_string()));
        let method: Method = method.to_uppercase().parse().unwrap();
        let r = s
            .client
            .request(method.clone(), url)
            .bearer_auth(token(1))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_ne!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("urn:invite:problem:no-such-route"),
            "{method} {path}: {text}"
        );
    }

    // And what is not documented is not served.
    for (method, path) in [
        (Method::GET, "/api/v1/invite/nowhere"),
        (Method::GET, "/api/v1/invite/tasks/1/secret"),
        (Method::POST, "/api/v1/invite/import/nowhere"),
    ] {
        let r = s
            .client
            .request(method.clone(), s.url(path))
            .bearer_auth(token(1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("urn:invite:problem:no-such-route")
        );
    }
    let r = s
        .client
        .request(Method::PATCH, s.api("/tasks"))
        .bearer_auth(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}
