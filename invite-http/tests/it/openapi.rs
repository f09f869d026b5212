//! The OpenAPI document lists every route the router serves, and every documented route is
//! served.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Db, problem, server, task_body, token};

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

/// The status the server answers for `(method, path)` is one the document lists for it.
fn documented(doc: &Value, method: &str, path: &str, status: StatusCode) -> bool {
    doc["paths"][path][method]["responses"]
        .get(status.as_str())
        .is_some_and(|r| r["content"]["application/problem+json"].is_object())
}

/// One status per kind of unreadable request, each documented on the operation with the
/// problem document: 400 not JSON (or a broken form), 415 not sent as JSON (or as a form), 422
/// JSON that breaks the schema, whatever the field.
#[tokio::test]
async fn each_kind_of_unreadable_request_has_one_documented_status() {
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
    let id = s.create(1, task_body("Doc", 1)).await;
    let json_ops = [
        ("post", "/tasks".to_owned()),
        ("put", format!("/tasks/{id}")),
        ("post", "/suppressions".to_owned()),
        ("post", "/import/parsing".to_owned()),
    ];
    for (method, path) in &json_ops {
        let doc_path = format!("/api/v1/invite{}", path.replace(&id.to_string(), "{id}"));
        let m: Method = method.to_uppercase().parse().unwrap();
        let send = |body: &'static str, ct: Option<&'static str>| {
            let mut r = s
                .client
                .request(m.clone(), s.api(path))
                .bearer_auth(token(1))
                .body(body);
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            r.send()
        };
        for (body, ct, status) in [
            ("{", Some("application/json"), StatusCode::BAD_REQUEST),
            ("\u{0}", Some("application/json"), StatusCode::BAD_REQUEST),
            ("{}", None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("{}", Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (
                r#"{"name": 1}"#,
                Some("application/json"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                r#"{"action": 1}"#,
                Some("application/json"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "[]",
                Some("application/json"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let r = send(body, ct).await.unwrap();
            assert_eq!(r.status(), status, "{method} {path} {body:?} {ct:?}");
            let p = problem(r, status).await;
            assert!(
                documented(&doc, method, &doc_path, status),
                "{method} {doc_path}: {status} is not documented ({p})"
            );
        }
    }
    for path in ["/import/file", "/import/validate", "/suppressions/file"] {
        let doc_path = format!("/api/v1/invite{path}");
        for (ct, status) in [
            (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Some("application/json"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Some("multipart/form-data"), StatusCode::BAD_REQUEST),
        ] {
            let mut r = s
                .client
                .post(s.api(path))
                .bearer_auth(token(1))
                .body("--x\r\n");
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            let p = problem(r.send().await.unwrap(), status).await;
            assert!(
                documented(&doc, "post", &doc_path, status),
                "POST {doc_path}: {status} is not documented ({p})"
            );
        }
    }
}

/// A whole-number float is an integer (as in JSON Schema); a fraction is not.
#[tokio::test]
async fn whole_number_floats_are_integers() {
    let s = server(Db::Memory).await.unwrap();
    let mut body = task_body("Floats", 1);
    body["dedupe_days"] = serde_json::json!(30.0);
    let r = s.post("/tasks", 1, Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["task"]["dedupe_days"], 30);
    for bad in [
        serde_json::json!(30.5),
        serde_json::json!(1e300),
        serde_json::json!(-1.0),
    ] {
        body["dedupe_days"] = bad.clone();
        let r = s.post("/tasks", 1, Some(body.clone())).await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

/// A form's or a query's task id is plain digits, as a path's: `+1` and ` 1` are refused.
#[tokio::test]
async fn signed_task_ids_in_forms_and_queries_are_refused() {
    let s = server(Db::Memory).await.unwrap();
    let id = s.create(1, task_body("Signed", 1)).await;
    assert_eq!(id, 1, "the first task of a fresh store");
    for raw in ["+1", "-1", "1.0", "0x1"] {
        let form = reqwest::multipart::Form::new().text("task_id", raw).part(
            "file",
            reqwest::multipart::Part::bytes(b"username\n@alice_example\n".to_vec())
                .file_name("people.csv"),
        );
        let r = s
            .client
            .post(s.api("/import/file"))
            .bearer_auth(token(1))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], "task_id", "{raw}: {p}");
        let r = s
            .client
            .get(format!(
                "{}?identifiers=%40alice_example&task_id={}",
                s.api("/import/validate"),
                raw.replace('+', "%2B")
            ))
            .bearer_auth(token(1))
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], "task_id", "{raw}: {p}");
    }
}

/// The document's shape of a new task: one object per action, told apart by `action`.
#[tokio::test]
async fn the_document_has_one_task_shape_per_action() {
    let doc = invite_http::api::openapi();
    let schemas = &doc["components"]["schemas"];
    let shapes = schemas["CreateTaskBody"]["oneOf"].as_array().unwrap();
    assert_eq!(shapes.len(), 3);
    for (name, needs, refuses) in [
        ("InviteTaskBody", vec!["group"], vec!["template"]),
        ("MessageTaskBody", vec!["template"], vec!["group"]),
        (
            "InviteAndMessageTaskBody",
            vec!["group", "template"],
            vec![],
        ),
    ] {
        let s = &schemas[name];
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for f in needs {
            assert!(required.contains(&f), "{name} needs {f}");
        }
        for f in refuses {
            assert_eq!(s["properties"][f]["type"], "null", "{name} refuses {f}");
        }
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            s["properties"]["platform"]["$ref"],
            "#/components/schemas/Platform"
        );
    }
    let platforms = &schemas["Platform"]["enum"];
    assert_eq!(
        platforms.as_array().unwrap().len(),
        invite_core::domain::Platform::ALL.len()
    );
    // Every operation documents a 500 with the problem document.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"]["500"]["content"]["application/problem+json"].is_object(),
                "{method} {path}"
            );
        }
    }
}
