//! The web console in a real browser: Debian's Chromium, headless, driven through chromedriver
//! from Rust (WebDriver). The server is the same wiring as the binary, on a virtual clock the
//! test moves forward, so campaigns run to the end in moments.
//!
//! Skipped (with a line saying so) when chromedriver or Chromium is missing, unless
//! `INVITE_REQUIRE_SERVICES=1`, where a missing browser fails the test. Screenshots of every
//! page are written under `CARGO_TARGET_TMPDIR/console/`.

// The shared helpers of the end-to-end tests; this binary uses a few of them.
mod browser;
#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;
mod scenario;

use helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn the_console_is_served_with_a_policy_that_allows_only_its_own_files() {
    let s = server(Db::Memory).await.unwrap();
    let page = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    // No inline script: every script is a file of the console.
    assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(
        !html.contains("<script>") && !html.contains("http"),
        "{html}"
    );

    for (path, media) in [
        ("/console/app.js", "text/javascript"),
        ("/console/api.js", "text/javascript"),
        ("/console/charts.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media),
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    // The API keeps its own policy, and unknown paths stay problems.
    let api = s.get("/tasks", 1).await;
    assert_eq!(
        api.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    let missing = s
        .client
        .get(s.url("/console/nope.js"))
        .send()
        .await
        .unwrap();
    problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_marketer_runs_campaigns_from_the_console() {
    let Some(driver) = browser::Driver::start().await else {
        return;
    };
    scenario::run(&driver).await;
}
