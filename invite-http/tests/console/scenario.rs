//! The scenario, step by step, as a marketer does it in the browser.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use fantoccini::Client;
use invite_core::ports::Secret;
use serde_json::{Value, json};

use crate::browser::{
    Driver, all, choose, click, find, screenshot, text, type_into, until, wait_for,
};
use crate::helpers::*;

/// Where the screenshots and the downloaded report go.
fn output() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(dir.join("downloads")).unwrap();
    dir
}

/// The audience file: 12 people, one unusable identifier (line 5) and one repeated (line 9).
fn audience_csv(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("username,first_name\n");
    for (i, name) in [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory", "niaj",
    ]
    .iter()
    .enumerate()
    {
        if i == 3 {
            csv.push_str("not an identifier!,Nobody\n");
        }
        if i == 7 {
            csv.push_str("@alice_demo,Alice\n");
        }
        csv.push_str(&format!("@{name}_demo,{}\n", capitalise(name)));
    }
    let path = dir.join("audience.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn tasks_of(s: &TestServer, user: i64) -> Vec<Value> {
    let page: Value = s.get("/tasks", user).await.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

pub async fn run(driver: &Driver) {
    let dir = output();
    let downloads = dir.join("downloads");
    for old in std::fs::read_dir(&downloads).unwrap() {
        let _ = std::fs::remove_file(old.unwrap().path());
    }
    let s = server(Db::Sqlite).await.unwrap();
    let c = driver.session(&downloads).await;
    steps(&s, &c, &dir).await;
    c.close().await.unwrap();
}

async fn steps(s: &TestServer, c: &Client, dir: &Path) {
    // The banner's link, as the binary prints it for this server.
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let banner =
        invite_http::auth::development_banner(&Secret::new(SECRET), Utc::now(), None, None, addr);
    let link = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the banner prints a link")
        .to_owned();
    assert!(link.starts_with(&format!("{}/#token=", s.base)), "{link}");

    c.goto(&link).await.unwrap();
    wait_for(c, "main[data-page=campaigns] .empty").await;
    let url = c.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("token"),
        "the token stays in the address bar: {url}"
    );
    assert_eq!(url.fragment(), Some("/campaigns"));
    let kept = c
        .execute(
            "return sessionStorage.getItem('invite-console-token')",
            vec![],
        )
        .await
        .unwrap();
    assert!(link.ends_with(kept.as_str().unwrap()));

    // New campaign: template preview, then the audience file and its report before anything
    // is stored.
    click(c, "#nav a[data-page=new]").await;
    let name = wait_for(c, "#f-name").await;
    name.send_keys("Spring launch").await.unwrap();
    choose(c, "#f-action", "invite_and_message").await;
    type_into(c, "#f-group", "@launch_group").await;
    type_into(
        c,
        "#f-template",
        "Hi {first_name|friend}, welcome to {{the launch}}!",
    )
    .await;
    assert_eq!(
        text(c, "[data-preview=named]").await,
        "Hi Alice, welcome to {the launch}!"
    );
    assert_eq!(
        text(c, "[data-preview=fallback]").await,
        "Hi friend, welcome to {the launch}!"
    );
    choose(c, "#f-priority", "high").await;
    let csv = audience_csv(dir);
    type_into(c, "#f-file", csv.to_str().unwrap()).await;
    assert!(
        find(c, "#create")
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some(),
        "creating needs the audience checked first"
    );
    click(c, "#check-audience").await;
    assert_eq!(text(c, "#audience-report [data-count=valid]").await, "12");
    assert_eq!(text(c, "#audience-report [data-count=invalid]").await, "1");
    assert!(
        text(c, "#audience-report [data-count=duplicate]")
            .await
            .starts_with("1 (1 in the file")
    );
    let first_error = text(c, "#audience-report .row-errors tbody tr").await;
    assert!(first_error.starts_with("5 "), "{first_error}");
    assert!(tasks_of(s, 1).await.is_empty(), "checking stored something");
    screenshot(c, dir, "new-campaign", "#audience-report").await;

    // A field the API refuses is named next to the field.
    name.clear().await.unwrap();
    click(c, "#create").await;
    let problem = text(c, ".problem").await;
    assert!(!problem.is_empty());
    let error = text(c, "[data-field=name] .field-error").await;
    assert!(error.starts_with("name:"), "{error}");
    assert_eq!(
        find(c, "#f-name")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(tasks_of(s, 1).await.is_empty());

    name.send_keys("Spring launch").await.unwrap();
    click(c, "#create").await;
    wait_for(c, "main[data-page=campaigns] #detail-title").await;
    let tasks = tasks_of(s, 1).await;
    assert_eq!(tasks.len(), 1);
    let first = tasks[0]["id"].as_i64().unwrap();
    assert_eq!(tasks[0]["priority"], "HIGH");
    assert_eq!(s.status_of(1, first).await["total"], 12);

    // Two more campaigns of the same user, made through the API: one to pause and resume,
    // one left pending.
    let second = s.create(1, task_body("Autumn follow-up", 6)).await;
    let third = s.create(1, task_body("Winter draft", 4)).await;

    // Campaigns: start the first and the second, pause and resume the second.
    click(c, "#nav a[data-page=campaigns]").await;
    let row = |id: i64| format!("tr[data-task=\"{id}\"]");
    wait_for(
        c,
        &format!("{} [data-action=start]:not([disabled])", row(first)),
    )
    .await;
    for (id, disabled) in [
        (first, ["pause", "resume"]),
        (second, ["pause", "resume"]),
        (third, ["pause", "resume"]),
    ] {
        for action in disabled {
            let b = find(c, &format!("{} [data-action={action}]", row(id))).await;
            assert!(
                b.attr("disabled").await.unwrap().is_some(),
                "{action} of {id}"
            );
        }
    }
    click(c, &format!("{} [data-action=start]", row(first))).await;
    wait_for(c, &format!("{}[data-status=IN_PROGRESS]", row(first))).await;
    click(c, &format!("{} [data-action=start]", row(second))).await;
    wait_for(
        c,
        &format!(
            "{}[data-status=IN_PROGRESS] [data-action=pause]:not([disabled])",
            row(second)
        ),
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for(
        c,
        &format!(
            "{}[data-status=PAUSED] [data-action=resume]:not([disabled])",
            row(second)
        ),
    )
    .await;
    assert!(
        find(c, &format!("{} [data-action=pause]", row(second)))
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.status_of(1, second).await["status"], "PAUSED");
    // Resumed from the keyboard: focus the button, press Enter.
    let resume = find(c, &format!("{} [data-action=resume]", row(second))).await;
    resume.send_keys("\u{E007}").await.unwrap();
    wait_for(c, &format!("{}[data-status=IN_PROGRESS]", row(second))).await;
    assert_eq!(s.status_of(1, second).await["status"], "IN_PROGRESS");

    // The engine runs (simulated hours in moments); the page follows without a reload.
    c.execute("window.__sameDocument = true", vec![])
        .await
        .unwrap();
    s.drive().await;
    let bar = wait_for(
        c,
        &format!(
            "{}[data-status=COMPLETED] [role=progressbar][data-percent=\"100\"]",
            row(first)
        ),
    )
    .await;
    assert_eq!(
        bar.attr("aria-valuenow").await.unwrap().as_deref(),
        Some("100")
    );
    wait_for(c, &format!("{}[data-status=COMPLETED]", row(second))).await;
    assert_eq!(
        c.execute("return window.__sameDocument === true", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page was reloaded"
    );
    let done = text(c, &format!("{} .progress-text", row(first))).await;
    assert!(done.starts_with("100 % of 12"), "{done}");
    assert!(
        find(c, &format!("{} [data-action=cancel]", row(first)))
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some(),
        "a finished campaign cannot be cancelled"
    );
    assert_eq!(
        find(
            c,
            &format!("{}[data-status=PENDING] [role=progressbar]", row(third))
        )
        .await
        .attr("aria-valuenow")
        .await
        .unwrap()
        .as_deref(),
        Some("0")
    );
    let campaigns = screenshot(c, dir, "campaigns", "body").await;
    // The README's picture, refreshed on request (`INVITE_UPDATE_SCREENSHOT=1`): a test run
    // leaves the checkout as it found it.
    if std::env::var_os("INVITE_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&campaigns, docs.join("console.png")).unwrap();
    }

    // At phone width every page fits: nothing to scroll sideways (wide tables scroll in
    // their own box).
    c.set_window_size(390, 844).await.unwrap();
    for (page, ready) in [
        ("/campaigns", format!("{} [role=progressbar]", row(first))),
        (
            &format!("/campaigns/{first}"),
            "#outcomes-chart g.bar".to_owned(),
        ),
        ("/new", "#f-name".to_owned()),
        ("/accounts", "tr[data-account] .usage".to_owned()),
        ("/suppressions", "#s-platform".to_owned()),
    ] {
        c.goto(&format!("{}/#{page}", s.base)).await.unwrap();
        wait_for(c, &ready).await;
        until(
            c,
            &format!("no horizontal scrolling of {page} at phone width"),
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
        if page == "/campaigns" {
            screenshot(c, dir, "campaigns-phone", "body").await;
        }
    }
    c.set_window_size(1280, 1000).await.unwrap();
    c.goto(&format!("{}/#/campaigns", s.base)).await.unwrap();
    wait_for(c, &format!("{} th a", row(first))).await;

    // Detail: charts, accounts, the log filtered and paged, the CSV report.
    click(c, &format!("{} th a", row(first))).await;
    wait_for(c, "#outcomes-chart g.bar").await;
    let outcomes = c
        .execute(
            "return [...document.querySelectorAll('#outcomes-chart g.bar')].reduce((n, g) => n + Number(g.dataset.value), 0)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        json!(12),
        "every finished target is in the outcome chart"
    );
    // One bar per hour from the first action to the last, quiet hours as zeros.
    let hours = c
        .execute(
            "return [...document.querySelectorAll('#hours-chart g.bar')].map(g => Number(g.dataset.value))",
            vec![],
        )
        .await
        .unwrap();
    let hours: Vec<u64> = serde_json::from_value(hours).unwrap();
    let stats: Value = s
        .get(&format!("/tasks/{first}/stats"), 1)
        .await
        .json()
        .await
        .unwrap();
    let timeline = stats["timeline"].as_array().unwrap();
    let hour = |v: &Value| {
        v["hour"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
    };
    let span = hour(timeline.last().unwrap()) - hour(&timeline[0]);
    assert_eq!(hours.len() as i64, span.num_hours() + 1);
    assert_eq!(
        hours.iter().sum::<u64>(),
        timeline
            .iter()
            .map(|t| t["actions"].as_u64().unwrap())
            .sum::<u64>()
    );
    let per_account = all(c, ".per-account tbody tr").await;
    assert!(!per_account.is_empty());
    let state = text(c, ".per-account tbody tr td.state").await;
    assert!(
        ["active", "cooling down", "dead"]
            .iter()
            .any(|s| state.starts_with(s)),
        "{state}"
    );
    wait_for(c, "table.log tbody tr").await;
    choose(c, "#log-status", "SUCCESS").await;
    click(c, "form.filters button[type=submit]").await;
    until(
        c,
        "the log shows only successes",
        "const rows = [...document.querySelectorAll('table.log tbody tr')]; \
         return rows.length > 0 && rows.every(r => r.cells[4].textContent === 'SUCCESS')",
    )
    .await;
    screenshot(c, dir, "campaign-detail", "body").await;
    click(c, "#download-csv").await;
    let report = dir
        .join("downloads")
        .join(format!("campaign-{first}-report.csv"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !report.is_file() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report was not downloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        csv.lines().count(),
        13,
        "a header and one row per person: {csv}"
    );
    assert!(
        csv.contains("@alice_demo") || csv.contains("alice_demo"),
        "{csv}"
    );

    // Accounts: each sandbox account with its limits.
    click(c, "#nav a[data-page=accounts]").await;
    wait_for(c, "tr[data-account] .usage").await;
    assert_eq!(all(c, "tr[data-account]").await.len(), 4);
    let usage = text(c, "tr[data-account] .usage-text").await;
    assert!(usage.contains(" / "), "{usage}");
    screenshot(c, dir, "accounts", "body").await;

    // Adding a Telegram account whose session cannot be read: the problem is shown, the
    // session string is not.
    let session = wait_for(c, "#a-session").await;
    session.send_keys("not-a-session-string-XYZ").await.unwrap();
    find(
        c,
        "form[aria-labelledby=add-account-title] button[type=submit]",
    )
    .await
    .click()
    .await
    .unwrap();
    let refused = text(c, "form[aria-labelledby=add-account-title] .problem").await;
    assert!(!refused.is_empty());
    let page = c.source().await.unwrap();
    assert!(!page.contains("XYZ"), "the session is echoed: {refused}");
    assert_eq!(all(c, "tr[data-account]").await.len(), 4);

    // Suppressions: add, upload, remove.
    click(c, "#nav a[data-page=suppressions]").await;
    choose(c, "#s-platform", "sandbox").await;
    type_into(c, "#s-people", "@mallory_demo\n@oscar_demo").await;
    click(c, "form[aria-labelledby=add-s-title] button").await;
    wait_for(c, "tr[data-identifier=\"@oscar_demo\"]").await;
    let list = dir.join("suppress.csv");
    std::fs::write(&list, "username\n@peggy_demo\n@trent_demo\n").unwrap();
    type_into(c, "#s-file", list.to_str().unwrap()).await;
    click(c, "form[aria-labelledby=upload-s-title] button").await;
    wait_for(c, "tr[data-identifier=\"@trent_demo\"]").await;
    assert_eq!(all(c, "table.suppressions tbody tr").await.len(), 4);
    screenshot(c, dir, "suppressions", "body").await;
    click(c, "tr[data-identifier=\"@mallory_demo\"] button").await;
    until(
        c,
        "@mallory_demo removed",
        "return !document.querySelector('tr[data-identifier=\"@mallory_demo\"]') && !!document.querySelector('tr[data-identifier=\"@oscar_demo\"]')",
    )
    .await;
    let page: Value = s
        .get("/suppressions?platform=sandbox", 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    // Signed out, a refused token is said so on the sign-in form; a good one signs in.
    click(c, "#signout").await;
    let field = wait_for(c, "#token").await;
    field.send_keys("not.a.token").await.unwrap();
    click(c, "main form button[type=submit]").await;
    let refused = text(c, "main form .problem").await;
    assert!(!refused.is_empty());
    assert!(
        find(c, "#nav")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );
    field.clear().await.unwrap();
    field.send_keys(&token(1)).await.unwrap();
    click(c, "main form button[type=submit]").await;
    wait_for(c, &format!("main[data-page=campaigns] {}", row(first))).await;

    // A second user's link: none of the first user's campaigns.
    let other = invite_http::console::link(addr, &token(2));
    c.goto(&other).await.unwrap();
    wait_for(c, "main[data-page=campaigns] .empty").await;
    assert!(all(c, "tr[data-task]").await.is_empty());
    for id in [first, second, third] {
        c.goto(&format!("{}/#/campaigns/{id}", s.base))
            .await
            .unwrap();
        let problem = text(c, ".problem").await;
        assert!(
            problem.contains("not found") || problem.contains("Not Found"),
            "{problem}"
        );
    }
    screenshot(c, dir, "second-user", "body").await;

    // A pasted audience gets the same report, row numbers counted from the first line.
    c.goto(&format!("{}/#/new", s.base)).await.unwrap();
    type_into(
        c,
        "#f-pasted",
        "@zed_demo\n123456789\nnot valid!!\n@zed_demo",
    )
    .await;
    click(c, "#check-audience").await;
    assert_eq!(text(c, "#audience-report [data-count=valid]").await, "2");
    assert_eq!(text(c, "#audience-report [data-count=invalid]").await, "1");
    let first_error = text(c, "#audience-report .row-errors tbody tr").await;
    assert!(first_error.starts_with("3 "), "{first_error}");
    assert!(tasks_of(s, 2).await.is_empty());
}
