//! The import endpoints: files into tasks, validation, Parsing Service results (against a
//! stand-in service), the suppression list, and every refusal.

use invite_core::ports::Secret;
use invite_core::service::ServiceLimits;
use invite_http::config::ParsingSettings;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Db, Engine, TestServer, config, problem, server, server_with, task_body};

const FILE: &[u8] = b"username\n@person_00000\n@new_one\n@NEW_ONE\n@blocked_one\n1bad\n";

fn fixture(name: &str) -> Vec<u8> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../invite-core/tests/fixtures/import/"
    );
    std::fs::read(format!("{dir}{name}")).unwrap()
}

fn form(file: &[u8], name: &str, fields: &[(&str, String)]) -> Form {
    let mut f = Form::new().part(
        "file",
        Part::bytes(file.to_vec()).file_name(name.to_owned()),
    );
    for (k, v) in fields {
        f = f.text((*k).to_owned(), v.clone());
    }
    f
}

impl TestServer {
    async fn upload(&self, route: &str, user: i64, form: Form) -> Response {
        self.req(Method::POST, route, Some(user))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn import(
        &self,
        user: i64,
        task: i64,
        file: &[u8],
        extra: &[(&str, String)],
    ) -> Response {
        let mut fields = vec![("task_id", task.to_string())];
        fields.extend_from_slice(extra);
        self.upload("/import/file", user, form(file, "people.csv", &fields))
            .await
    }

    async fn total(&self, user: i64, task: i64) -> u64 {
        self.status_of(user, task).await["total"].as_u64().unwrap()
    }
}

fn counts(v: &Value) -> [u64; 6] {
    [
        "rows",
        "valid",
        "invalid",
        "duplicate",
        "suppressed",
        "inserted",
    ]
    .map(|k| v[k].as_u64().unwrap())
}

async fn a_file_is_counted_then_appended(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let id = s.create(1, task_body("Import", 2)).await;
    let r = s
        .post(
            "/suppressions",
            1,
            Some(json!({"platform": "sandbox", "identifier": "@blocked_one", "reason": "opt-out"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["added"], 1);

    // Validation first: the same analysis, nothing stored.
    let fields = vec![("task_id", id.to_string())];
    let r = s
        .upload("/import/validate", 1, form(FILE, "people.csv", &fields))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let dry: Value = r.json().await.unwrap();
    assert_eq!(counts(&dry), [5, 1, 1, 2, 1, 0]);
    assert_eq!(s.total(1, id).await, 2);

    let r = s.import(1, id, FILE, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [5, 1, 1, 2, 1, 1], "{v}");
    assert_eq!(
        (
            v["duplicate_in_file"].as_u64(),
            v["duplicate_existing"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(v["format"], "csv");
    assert_eq!(v["error_total"], 1);
    assert_eq!(
        v["errors"][0],
        json!({"row": 6, "column": "username", "value": "1bad", "reason": v["errors"][0]["reason"]})
    );
    let reasons: Vec<(u64, &str)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["row"].as_u64().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, "already_in_task"),
            (4, "duplicate_in_file"),
            (5, "suppressed")
        ]
    );
    assert_eq!(s.total(1, id).await, 3);

    // Without a task, validation reads the platform's suppression list only.
    let fields = vec![("platform", "sandbox".to_owned())];
    let r = s
        .upload("/import/validate", 1, form(FILE, "people.csv", &fields))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [5, 2, 1, 1, 1, 0], "{v}");
    assert!(v["task_id"].is_null());

    // XLSX and JSON fixtures go through the same route.
    let r = s
        .upload(
            "/import/validate",
            1,
            form(&fixture("mixed.xlsx"), "mixed.xlsx", &[]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["format"], "xlsx");
    let r = s
        .upload(
            "/import/validate",
            1,
            form(&fixture("wrapped.json"), "wrapped.json", &[]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["format"], "json");

    // A CSV saved by Excel on a Russian-language Windows: Windows-1251, recognised.
    let cp1251 = fixture("cp1251_ru.csv");
    let r = s
        .upload("/import/validate", 1, form(&cp1251, "people.csv", &[]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["encoding"], "windows-1251", "{v}");
    assert_eq!(v["delimiter"], ";");
    assert_eq!(counts(&v), [4, 3, 1, 0, 0, 0], "{v}");
    assert_eq!(v["errors"][0]["value"], "@ёж");
    // Named as UTF-8 by the caller, it is refused.
    let fields = vec![("encoding", "utf-8".to_owned())];
    let p = problem(
        s.upload("/import/validate", 1, form(&cp1251, "people.csv", &fields))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("UTF-8"), "{p}");
}

async fn refusals_write_nothing(db: Db) {
    let mut c = config();
    c.limits = ServiceLimits {
        max_targets_per_task: 3,
        ..ServiceLimits::default()
    };
    c.max_upload_bytes = 4096;
    let Some(s) = server_with(db, c, Engine::Virtual).await else {
        return;
    };
    let id = s.create(1, task_body("Refusals", 2)).await;

    // Another user's task is not found.
    problem(s.import(2, id, FILE, &[]).await, StatusCode::NOT_FOUND).await;

    // More targets than the task limit: 422 naming the limit, nothing stored.
    let p = problem(
        s.import(1, id, b"@aaaa_one\n@aaaa_two\n", &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["limit"]["name"], "max_targets_per_task");
    assert_eq!(
        (p["limit"]["max"].as_u64(), p["limit"]["actual"].as_u64()),
        (Some(3), Some(4))
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("max_targets_per_task")
    );
    assert_eq!(s.total(1, id).await, 2);

    // Over the upload limit: 413 while reading.
    let big = vec![b'a'; 64 * 1024];
    let p = problem(
        s.import(1, id, &big, &[]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("4096"), "{p}");

    // Unreadable files: 422 saying what is wrong.
    for (name, says) in [
        ("not_xlsx.zip", "ZIP"),
        ("latin1.csv", "UTF-8"),
        ("broken.json", "JSON"),
    ] {
        let p = problem(
            s.upload(
                "/import/file",
                1,
                form(&fixture(name), name, &[("task_id", id.to_string())]),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{name}: {p}");
    }

    // Form errors name their field.
    let p = problem(
        s.upload("/import/file", 1, form(FILE, "a.csv", &[])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "task_id");
    let p = problem(
        s.import(1, id, FILE, &[("delimiter", "ab".to_owned())])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "delimiter");
    let p = problem(
        s.import(1, id, FILE, &[("encoding", "koi8-r".to_owned())])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "encoding");

    // A task that is not PENDING or PAUSED: 409 with its status.
    let r = s.post(&format!("/tasks/{id}/cancel"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(s.import(1, id, FILE, &[]).await, StatusCode::CONFLICT).await;
    assert_eq!(p["current_status"], "CANCELLED");
    assert_eq!(s.total(1, id).await, 2);
}

async fn the_suppression_list(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let fields = vec![
        ("platform", "sandbox".to_owned()),
        ("reason", "opt-out".to_owned()),
    ];
    let r = s
        .upload("/suppressions/file", 1, form(FILE, "people.csv", &fields))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["added"], 3, "{v}");
    assert_eq!(v["report"]["invalid"], 1);
    let r = s
        .post(
            "/suppressions",
            1,
            Some(json!({"platform": "sandbox", "identifiers": ["@new_one", "@zz_other", "bad name"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "identifiers[2]");
    let page: Value = s
        .get("/suppressions?platform=sandbox&limit=2", 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2);
    assert_eq!(page["items"][0]["reason"], "opt-out");
    let other: Value = s
        .get("/suppressions?platform=sandbox", 2)
        .await
        .json()
        .await
        .unwrap();
    assert!(other["items"].as_array().unwrap().is_empty());
    let r = s
        .req(
            Method::DELETE,
            "/suppressions?platform=sandbox&identifier=@NEW_ONE",
            Some(1),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["removed"], true);
    let r = s
        .req(
            Method::DELETE,
            "/suppressions?platform=sandbox&identifier=@new_one",
            Some(1),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["removed"], false);
    let page: Value = s
        .get("/suppressions?platform=sandbox", 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);

    // Suppressed rows are counted and skipped at import.
    let id = s.create(1, task_body("After", 0)).await;
    let r = s.import(1, id, FILE, &[]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [5, 1, 1, 1, 2, 1], "{v}");
    assert_eq!(s.total(1, id).await, 1);
}

async fn people_reached_recently_are_duplicates(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    let first = s.create(1, task_body("First", 8)).await;
    s.post(&format!("/tasks/{first}/start"), 1, None).await;
    s.drive().await;
    let report: Value = s
        .get(&format!("/tasks/{first}/report"), 1)
        .await
        .json()
        .await
        .unwrap();
    let reached = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "success")
        .count() as u64;
    assert!(reached > 0, "{report}");

    let second = s.create(1, json!({
        "name": "Second", "platform": "sandbox", "action": "invite", "group": "@launch_group", "targets": []
    })).await;
    let file: String = std::iter::once("username".to_owned())
        .chain((0..8).map(|i| format!("@person_{i:05}")))
        .collect::<Vec<_>>()
        .join("\n");
    let r = s
        .import(
            1,
            second,
            file.as_bytes(),
            &[("dedupe_days", "30".to_owned())],
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["duplicate_reached"].as_u64(), Some(reached), "{v}");
    assert_eq!(v["inserted"].as_u64(), Some(8 - reached));
    assert_eq!(v["dedupe_days"], 30);
    // Without the window everyone is new.
    let r = s
        .upload(
            "/import/validate",
            1,
            form(
                file.as_bytes(),
                "p.csv",
                &[("platform", "sandbox".to_owned())],
            ),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["valid"], 8);
}

async fn identifiers_in_the_query_are_validated(db: Db) {
    let Some(s) = server(db).await else {
        return;
    };
    // The task holds @person_00000 and @person_00001.
    let id = s.create(1, task_body("Query", 2)).await;
    let r = s
        .post(
            "/suppressions",
            1,
            Some(json!({"platform": "sandbox", "identifier": "@blocked_one"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = "@person_00000, https://t.me/new_one,@NEW_ONE,\n@blocked_one,1bad,8 (916) 123-45-67";
    let encoded = reqwest::Url::parse_with_params("http://h/", [("identifiers", list)]).unwrap();
    let query = |extra: &str| {
        format!(
            "/import/validate?{}{extra}",
            encoded.query().unwrap_or_default()
        )
    };
    let r = s
        .get(&query(&format!("&task_id={id}&default_country=RU")), 1)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    // rows, valid, invalid, duplicate, suppressed, inserted
    assert_eq!(counts(&v), [6, 2, 1, 2, 1, 0], "{v}");
    assert_eq!(v["task_id"], id);
    assert_eq!(
        v["errors"][0],
        json!({"row": 5, "column": v["errors"][0]["column"], "value": "1bad", "reason": v["errors"][0]["reason"]})
    );
    assert_eq!(s.total(1, id).await, 2, "nothing stored");

    // Without a task, on the platform's suppression list; without a country, the national
    // phone form is invalid.
    let r = s.get(&query("&platform=sandbox"), 1).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [6, 2, 2, 1, 1, 0], "{v}");
    assert!(v["task_id"].is_null());

    // Mostly invalid identifiers are still read as identifiers, each with its reason.
    let r = s
        .get("/import/validate?identifiers=1bad,2bad,@good_one", 1)
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [3, 1, 2, 0, 0, 0], "{v}");
    assert_eq!(v["errors"][1]["row"], 2);

    // Refusals name the field; another user's task is not found.
    for (q, field) in [
        ("/import/validate", "identifiers"),
        ("/import/validate?identifiers=%20,%20", "identifiers"),
        (
            "/import/validate?identifiers=@someone&platform=fax",
            "platform",
        ),
        (
            "/import/validate?identifiers=@someone&default_country=XX",
            "default_country",
        ),
    ] {
        let p = problem(s.get(q, 1).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], field, "{q}: {p}");
    }
    problem(
        s.get(&query(&format!("&task_id={id}")), 2).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

crate::on_every_store!(
    identifiers_in_the_query_are_validated,
    a_file_is_counted_then_appended,
    refusals_write_nothing,
    the_suppression_list,
    people_reached_recently_are_duplicates,
);

async fn parsing_server(mock: Option<&MockServer>) -> TestServer {
    let mut c = config();
    c.parsing = mock.map(|m| ParsingSettings {
        url: m.uri(),
        identity: "invite-service".to_owned(),
        secret: Secret::new("platform-shared-secret"),
    });
    server_with(Db::Memory, c, Engine::Virtual).await.unwrap()
}

#[tokio::test]
async fn parsing_results_are_imported_from_the_parsing_service() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/parsing/results/77/users"))
        .and(query_param("user_id", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"username": "parsed_one", "first_name": "Ann"},
            {"username": "1bad"},
            {"user_id": 123456789},
            {"username": "PARSED_ONE"},
        ])))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/parsing/results/78/users"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&mock)
        .await;
    let s = parsing_server(Some(&mock)).await;
    let id = s.create(1, task_body("Parsed", 1)).await;
    let r = s
        .post(
            "/import/parsing",
            1,
            Some(json!({"task_id": id, "parsing_task_id": 77})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(counts(&v), [4, 2, 1, 1, 0, 2], "{v}");
    assert_eq!(s.total(1, id).await, 3);
    let requests = mock.received_requests().await.unwrap();
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.starts_with("Bearer "));

    let p = problem(
        s.post(
            "/import/parsing",
            1,
            Some(json!({"task_id": id, "parsing_task_id": "78"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("78"), "{p}");
    problem(
        s.post(
            "/import/parsing",
            2,
            Some(json!({"task_id": id, "parsing_task_id": "77"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn the_parsing_endpoint_says_when_the_service_is_not_configured() {
    let s = parsing_server(None).await;
    let id = s.create(1, task_body("Parsed", 1)).await;
    let p = problem(
        s.post(
            "/import/parsing",
            1,
            Some(json!({"task_id": id, "parsing_task_id": "77"})),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Parsing Service is not configured"),
        "{p}"
    );
}
