//! Hostile uploads: a cell reference past column XFD and ZIP bombs are answered with a 4xx
//! problem naming the cap, and the service keeps answering.

use std::io::{Cursor, Read, Write};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use zip::write::SimpleFileOptions;

use crate::helpers::{Db, Engine, TestServer, config, problem, server_with};

const SHEET: &str = "xl/worksheets/sheet1.xml";

/// The `mixed.xlsx` fixture with its first worksheet replaced by what `write` writes.
fn workbook(write: &dyn Fn(&mut dyn Write)) -> Vec<u8> {
    let base = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../invite-core/tests/fixtures/import/mixed.xlsx"
    ))
    .unwrap();
    let mut src = zip::ZipArchive::new(Cursor::new(base)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.start_file(name.as_str(), options).unwrap();
        if name == SHEET {
            write(&mut out);
        } else {
            out.write_all(&data).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const TAIL: &str = "</sheetData></worksheet>";

/// The review's file: a value at `FXSHRXW1`, past XFD (it wrapped calamine's column count
/// and sized a 51 GB row).
fn column_overflow() -> Vec<u8> {
    workbook(&|w| {
        let xml = format!(
            r#"{HEAD}<row r="1"><c r="A1" t="inlineStr"><is><t>username</t></is></c><c r="FXSHRXW1" t="inlineStr"><is><t>x</t></is></c></row>{TAIL}"#
        );
        w.write_all(xml.as_bytes()).unwrap();
    })
}

/// One inline cell of 8 MiB, deflated to under 100 KiB.
fn inline_bomb() -> Vec<u8> {
    workbook(&|w| {
        w.write_all(HEAD.as_bytes()).unwrap();
        w.write_all(br#"<row r="1"><c r="A1" t="inlineStr"><is><t>"#)
            .unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..128 {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"</t></is></c></row>").unwrap();
        w.write_all(TAIL.as_bytes()).unwrap();
    })
}

impl TestServer {
    async fn validate_upload(&self, file: Vec<u8>) -> reqwest::Response {
        let form = Form::new().part("file", Part::bytes(file).file_name("people.xlsx"));
        self.req(reqwest::Method::POST, "/import/validate", Some(1))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn healthy(&self) {
        let r = self.client.get(self.api("/health")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn hostile_workbooks_are_refused_and_the_service_keeps_answering() {
    // The background engine, so that /health reports every check.
    let s = server_with(Db::Memory, config(), Engine::Background)
        .await
        .unwrap();
    s.healthy().await;

    let p = problem(
        s.validate_upload(column_overflow()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("out of the sheet"),
        "{p}"
    );
    s.healthy().await;

    let bomb = inline_bomb();
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    let p = problem(s.validate_upload(bomb).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(p["type"], "urn:invite:problem:file-too-large", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("1048576"), "{p}");
    s.healthy().await;

    // Ten thousand fields on a line: 422 naming the column cap.
    let commas = vec![b','; 10_000];
    let form = Form::new().part("file", Part::bytes(commas).file_name("people.csv"));
    let r = s
        .req(reqwest::Method::POST, "/import/validate", Some(1))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["type"], "urn:invite:problem:too-many-columns", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("256"), "{p}");
    s.healthy().await;
}

/// A CSV of distinct valid usernames with names, just under the upload cap: the most rows
/// (and identifiers to normalise and de-duplicate) an accepted file can hold.
fn largest_csv() -> Vec<u8> {
    let cap = invite_core::import::DEFAULT_MAX_BYTES as usize;
    let mut file = b"username,first_name,last_name\n".to_vec();
    let mut i = 0u64;
    loop {
        let row = format!("@user_{i:08},First{i},Last{i}\n");
        if file.len() + row.len() > cap {
            break;
        }
        file.extend_from_slice(row.as_bytes());
        i += 1;
    }
    file
}

/// `/health` keeps answering, every probe within the server's own probe timeout (a probe
/// past it turns the answer into 503), while two of the largest accepted uploads are read at
/// the same time; both uploads are then answered.
#[tokio::test]
async fn health_answers_while_two_largest_uploads_are_read() {
    let s = server_with(Db::Memory, config(), Engine::Background)
        .await
        .unwrap();
    s.healthy().await;
    let file = largest_csv();
    let uploads: Vec<_> = (0..2)
        .map(|_| {
            let form = Form::new().part("file", Part::bytes(file.clone()).file_name("people.csv"));
            let request = s
                .req(reqwest::Method::POST, "/import/validate", Some(1))
                .multipart(form);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut answered_during_both = 0;
    while uploads.iter().any(|u| !u.is_finished()) {
        let r = s
            .client
            .get(s.api("/health"))
            // Far above the probe timeout: the assertion is the status, not a time.
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .expect("/health answers during the uploads");
        let both_running = uploads.iter().all(|u| !u.is_finished());
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        if both_running {
            answered_during_both += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        answered_during_both >= 1,
        "no /health answer came while both uploads were being read"
    );
    for u in uploads {
        let r = u.await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let report: serde_json::Value = r.json().await.unwrap();
        assert_eq!(report["rows"], report["valid"], "{}", report["rows"]);
        assert!(
            report["rows"].as_u64().unwrap() > 250_000,
            "{}",
            report["rows"]
        );
    }
}
