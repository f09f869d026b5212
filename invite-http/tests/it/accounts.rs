//! Telegram accounts end to end, on a fake Telegram behind the seam: adding them (strings and
//! `.session` files of both libraries, a dead key, duplicates), the sealed secrets at rest, a
//! `telegram` task run to completion over them, and their statuses after PEER_FLOOD,
//! AUTH_KEY_UNREGISTERED and FLOOD_WAIT.

use std::net::Ipv4Addr;
use std::sync::Arc;

use invite_core::clock::Clock as _;
use invite_http::config::Config;
use invite_store::sqlx::{Connection, SqliteConnection};
use invite_telegram::ApiError;
use invite_telegram::fake::FakeTelegram;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::*;

const API_ID: i32 = 12345;
const API_HASH: &str = "0123456789abcdef0123456789abcdef";

fn key(seed: u8) -> Vec<u8> {
    (0..256_u32)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ 0x5a)
        .collect()
}

fn telethon(seed: u8) -> String {
    invite_telegram::session::telethon_string(
        2,
        Ipv4Addr::new(149, 154, 167, 51).into(),
        443,
        &key(seed),
    )
    .unwrap()
}

fn pyrogram(seed: u8, user: u64) -> String {
    invite_telegram::session::pyrogram_string(2, API_ID as u32, false, &key(seed), user, false)
        .unwrap()
}

fn telegram_config() -> Config {
    let mut c = config();
    c.telegram.api_id = Some(API_ID);
    c.telegram.api_hash = Some(invite_core::ports::Secret::new(API_HASH));
    c
}

async fn start(db: Db, engine: Engine) -> Option<(TestServer, FakeTelegram)> {
    let fake = FakeTelegram::new();
    let server =
        server_with_telegram(db, telegram_config(), engine, Arc::new(fake.clone())).await?;
    Some((server, fake))
}

async fn add(s: &TestServer, user: i64, session: &str, query: &str) -> reqwest::Response {
    s.req(
        reqwest::Method::POST,
        &format!("/accounts{query}"),
        Some(user),
    )
    .json(&json!({"platform": "telegram", "session": session, "label": "main"}))
    .send()
    .await
    .unwrap()
}

async fn added(r: reqwest::Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Each session made a Telegram account of the fake (user ids from `first_user_id`, no
/// username) and added by user 1; their registry ids in order.
async fn registered(
    s: &TestServer,
    fake: &FakeTelegram,
    sessions: &[String],
    first_user_id: i64,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        fake.add_account(session, first_user_id + i as i64, None);
        ids.push(
            added(add(s, 1, session, "").await).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids
}

/// A Telegram invite task of user 1 into `@launch_group`, created and started.
async fn started_invite(s: &TestServer, name: &str, targets: &[String]) -> i64 {
    let task = s
        .create(
            1,
            json!({"name": name, "platform": "telegram", "action": "invite",
                   "group": "@launch_group", "targets": targets}),
        )
        .await;
    let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    task
}

/// A `.session` file of the given library, made the way it makes them.
async fn session_file(telethon_layout: bool, seed: u8, user: i64) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!(
        "invite-test-{}.session",
        invite_store::test_util::random_suffix()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    if telethon_layout {
        invite_store::sqlx::query(
            "CREATE TABLE version (version INTEGER PRIMARY KEY); \
             CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, server_address TEXT, port INTEGER, auth_key BLOB, takeout_id INTEGER); \
             CREATE TABLE entities (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, username TEXT, phone INTEGER, name TEXT, date INTEGER);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        invite_store::sqlx::query(
            "INSERT INTO sessions VALUES (2, '149.154.167.51', 443, $1, NULL)",
        )
        .bind(key(seed))
        .execute(&mut conn)
        .await
        .unwrap();
    } else {
        invite_store::sqlx::query(
            "CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, api_id INTEGER, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER); \
             CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL, username TEXT, phone_number TEXT, last_update_on INTEGER NOT NULL DEFAULT 0);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        invite_store::sqlx::query("INSERT INTO sessions VALUES (2, $1, 0, $2, 1700000000, $3, 0)")
            .bind(API_ID)
            .bind(key(seed))
            .bind(user)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    bytes
}

async fn add_file(s: &TestServer, user: i64, file: Vec<u8>) -> reqwest::Response {
    let form = Form::new()
        .part("file", Part::bytes(file).file_name("my.session"))
        .text("platform", "telegram")
        .text("label", "from a file");
    s.req(reqwest::Method::POST, "/accounts", Some(user))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn accounts_are_added_checked_and_sealed(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    fake.add_account(&telethon(1), 5001, Some("sender_one"));
    fake.add_account(&pyrogram(2, 5002), 5002, Some("sender_two"));
    fake.add_account(&telethon(3), 5003, None);
    fake.add_account(&pyrogram(4, 5004), 5004, None);
    // Another key of user 5001.
    fake.add_account(&telethon(5), 5001, Some("sender_one"));

    let one = added(add(&s, 1, &telethon(1), "").await).await;
    assert_eq!(one["status"], "active");
    assert_eq!(one["telegram_user_id"], 5001);
    assert_eq!(one["username"], "sender_one");
    assert_eq!(one["label"], "main");
    assert_eq!(one["phone_masked"], "+*******5001");
    let id_one = one["id"].as_str().unwrap().to_owned();
    assert!(id_one.starts_with("tg-"));
    assert!(one.get("session").is_none() && one.get("api_hash").is_none());
    let two = added(add(&s, 1, &pyrogram(2, 5002), "").await).await;
    assert_eq!(two["telegram_user_id"], 5002);

    // Duplicates: the same key (even for another user), the same Telegram user.
    let connects = fake.connects();
    let p = problem(add(&s, 1, &telethon(1), "").await, StatusCode::CONFLICT).await;
    assert!(p["detail"].as_str().unwrap().contains(&id_one), "{p}");
    problem(add(&s, 2, &telethon(1), "").await, StatusCode::CONFLICT).await;
    assert_eq!(
        fake.connects(),
        connects,
        "a registered key is never connected twice"
    );
    problem(add(&s, 1, &telethon(5), "").await, StatusCode::CONFLICT).await;

    // A dead key and an unknown one: 422 saying why; nothing stored.
    fake.kill(&telethon(6), ApiError::rpc(401, "SESSION_REVOKED", None));
    let p = problem(
        add(&s, 1, &telethon(6), "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("SESSION_REVOKED"),
        "{p}"
    );
    let p = problem(
        add(&s, 1, &telethon(7), "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("AUTH_KEY_UNREGISTERED"),
        "{p}"
    );
    // Telegram unreachable: 503.
    fake.kill(
        &telethon(8),
        ApiError::Io(std::io::ErrorKind::ConnectionRefused),
    );
    problem(
        add(&s, 1, &telethon(8), "").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    // Not a session at all, or with another api_id: 422.
    problem(
        add(&s, 1, "not-a-session", "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let other_api =
        invite_telegram::session::pyrogram_string(2, 999, false, &key(9), 9, false).unwrap();
    problem(
        add(&s, 1, &other_api, "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Offline import: stored unverified, nothing connected.
    let connects = fake.connects();
    let offline = added(add(&s, 1, &telethon(10), "?verify=false").await).await;
    assert_eq!(offline["status"], "unverified");
    assert_eq!(fake.connects(), connects);

    // `.session` files of both libraries.
    let from_telethon = added(add_file(&s, 1, session_file(true, 3, 0).await).await).await;
    assert_eq!(from_telethon["telegram_user_id"], 5003);
    assert_eq!(from_telethon["label"], "from a file");
    let from_pyrogram = added(add_file(&s, 1, session_file(false, 4, 5004).await).await).await;
    assert_eq!(from_pyrogram["telegram_user_id"], 5004);
    problem(
        add_file(&s, 1, b"SQLite format 3\0 but nothing else".to_vec()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Listing with limits' use; another user sees none of them.
    let list = s.get_ok("/accounts?platform=telegram", 1).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "{list}");
    assert!(ids.contains(&id_one.as_str()));
    assert!(
        list["items"][0]["usage"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    );
    let theirs = s.get_ok("/accounts?platform=telegram", 2).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    problem(
        s.get(&format!("/accounts/{id_one}"), 2).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Rename, disable, remove.
    let r = s
        .req(
            reqwest::Method::PATCH,
            &format!("/accounts/{id_one}"),
            Some(1),
        )
        .json(&json!({"label": "renamed", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (patched["label"].as_str(), patched["status"].as_str()),
        (Some("renamed"), Some("disabled"))
    );
    let r = s
        .req(
            reqwest::Method::DELETE,
            &format!("/accounts/{id_one}"),
            Some(2),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .req(
            reqwest::Method::DELETE,
            &format!("/accounts/{id_one}"),
            Some(1),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        s.get(&format!("/accounts/{id_one}"), 1).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // At rest: no session key, session string or api_hash in the database file.
    if let Some(path) = s.database_file() {
        s.runtime.close().await;
        let mut bytes = std::fs::read(&path).unwrap();
        for suffix in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            if let Ok(more) = std::fs::read(&p) {
                bytes.extend(more);
            }
        }
        assert!(bytes.len() > 4096);
        for seed in [2_u8, 3, 4, 10] {
            assert!(
                !contains(&bytes, &key(seed)[..32]),
                "key bytes of session {seed} at rest"
            );
            assert!(!contains(&bytes, &key(seed)[100..132]));
        }
        assert!(!contains(&bytes, API_HASH.as_bytes()), "api_hash at rest");
        assert!(
            !contains(&bytes, &pyrogram(2, 5002).as_bytes()[..40]),
            "session string at rest"
        );
        // The check can fail: the public parts are there.
        assert!(contains(&bytes, b"sender_two"));
    }
}

pub async fn a_telegram_task_runs_over_registered_accounts(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let sessions = [telethon(21), telethon(22), telethon(23)];
    let ids = registered(&s, &fake, &sessions, 6001).await;
    // First writes: a flood wait of two days, PEER_FLOOD; and a key revoked for good (a
    // single 401 is confirmed on a new connection after a delay before the account is dead).
    fake.script(
        &sessions[0],
        [ApiError::rpc(420, "FLOOD_WAIT", Some(172_800))],
    );
    fake.script(&sessions[1], [ApiError::rpc(400, "PEER_FLOOD", None)]);
    fake.kill(
        &sessions[2],
        ApiError::rpc(401, "AUTH_KEY_UNREGISTERED", None),
    );

    let targets: Vec<String> = (0..6).map(|i| format!("@reader_{i:03}")).collect();
    let task = s
        .create(
            1,
            json!({
                "name": "telegram launch",
                "platform": "telegram",
                "action": "invite",
                "group": "@launch_group",
                "targets": targets,
            }),
        )
        .await;
    let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.drive().await;
    let status = s.status_of(1, task).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(fake.invited().len(), 6, "each target invited once");
    assert_eq!(fake.most_open_at_once(), 1);

    let view = |id: &str| {
        let id = id.to_owned();
        let s = &s;
        async move {
            let r = s.get(&format!("/accounts/{id}"), 1).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let flood = view(&ids[0]).await;
    assert_eq!(flood["status"], "cooling_down", "{flood}");
    assert_eq!(flood["status_reason"], "FLOOD_WAIT");
    let spam = view(&ids[1]).await;
    // Its 24-hour restriction is over by the end; the reason stays until then only.
    assert!(spam["last_used_at"].is_string(), "{spam}");
    let dead = view(&ids[2]).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["status_reason"], "AUTH_KEY_UNREGISTERED");
    // The spam-limited account did the work after its cooldown.
    let logs = s.get_ok(&format!("/tasks/{task}/logs"), 1).await;
    let codes: Vec<String> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["error_code"].as_str().map(str::to_owned))
        .collect();
    assert!(codes.contains(&"PEER_FLOOD".to_owned()), "{logs}");

    // Each account's resolutions and budget uses, as kept in the registry.
    let list = s.get_ok("/accounts", 1).await;
    let budgets: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.get("telegram"))
        .collect();
    assert_eq!(budgets.len(), 3, "{list}");
    let resolved: u64 = budgets
        .iter()
        .map(|b| b["resolved"].as_u64().unwrap())
        .sum();
    // Every target was resolved by the account that invited it (some by more than one).
    assert!(resolved >= 6, "{list}");
    for b in budgets {
        assert_eq!(b["resolve_budget_per_day"], 200, "{list}");
        assert_eq!(b["import_budget_per_day"], 20, "{list}");
        assert_eq!(b["imports_24h"], 0, "{list}");
    }
}

pub async fn every_spelling_of_one_group_shares_one_budget(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let session = telethon(31);
    fake.add_account(&session, 7001, None);
    added(add(&s, 1, &session, "").await).await;
    // Two tasks into one group, spelt two ways: 15 invites a day into it, not 15 per spelling.
    for (n, group) in ["@launch_group", "-1001777000123"].iter().enumerate() {
        let targets: Vec<String> = (0..15).map(|i| format!("@guest_{n}_{i:03}")).collect();
        let task = s
            .create(
                1,
                json!({"name": format!("spelling {n}"), "platform": "telegram",
                       "action": "invite", "group": group, "targets": targets}),
            )
            .await;
        let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let start = s.clock.as_ref().unwrap().now();
    let first_day = std::sync::Mutex::new(0_usize);
    s.runtime
        .engine
        .run_until_idle(|now| {
            if now < start + chrono::TimeDelta::hours(24) {
                *first_day.lock().unwrap() = fake.invited().len();
            }
        })
        .await
        .unwrap();
    let first_day = *first_day.lock().unwrap();
    assert!(
        first_day <= 15,
        "{first_day} invites into one group within 24 h"
    );
    assert!(first_day >= 10, "the day's budget was used: {first_day}");
    assert_eq!(
        fake.invited().len(),
        30,
        "both tasks finish on the following days"
    );
}

/// Two tasks into one group under two spellings, with `dedupe_days`: the second reaches no one
/// the first reached, since the engine checks before each send on the group's stable key.
pub async fn two_spellings_of_one_group_never_reach_one_person_twice(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let session = telethon(41);
    fake.add_account(&session, 8001, None);
    added(add(&s, 1, &session, "").await).await;
    let targets: Vec<String> = (0..5).map(|i| format!("@friend_{i:03}")).collect();
    let mut tasks = Vec::new();
    for (n, group) in ["@launch_group", "-1001777000123"].iter().enumerate() {
        let task = s
            .create(
                1,
                json!({"name": format!("spelling {n}"), "platform": "telegram",
                       "action": "invite", "group": group, "targets": targets,
                       "dedupe_days": 30}),
            )
            .await;
        let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
        assert_eq!(r.status(), StatusCode::OK);
        s.drive().await;
        let status = s.status_of(1, task).await;
        assert_eq!(status["status"], "COMPLETED", "{status}");
        tasks.push(task);
    }
    assert_eq!(fake.invited().len(), 5);
    assert_eq!(fake.writes(), 5, "no one was contacted twice");
    let report = s.get_ok(&format!("/tasks/{}/report", tasks[1]), 1).await;
    let outcomes: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["duplicate"; 5], "{report}");
}

/// Accounts disabled or removed while a task runs are let go at their next step: their
/// connections closed (and the connection leases released), no call made on them any more;
/// the task ends on the account left.
pub async fn a_disabled_or_removed_account_is_let_go(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let sessions = [telethon(51), telethon(52), telethon(53)];
    let ids = registered(&s, &fake, &sessions, 9001).await;
    let targets: Vec<String> = (0..12).map(|i| format!("@visitor_{i:03}")).collect();
    let task = started_invite(&s, "let go", &targets).await;
    // Mid-campaign: every account connected, some invites done.
    let clock = s.clock.clone().unwrap();
    loop {
        let pass = s.runtime.engine.tick().await.unwrap();
        if sessions.iter().all(|x| fake.open_of(x) == 1) && fake.invited().len() >= 3 {
            break;
        }
        clock
            .sleep_until(pass.next.expect("the task still runs"))
            .await;
    }
    assert!(fake.invited().len() < 12, "the task is not over yet");

    let r = s
        .req(
            reqwest::Method::PATCH,
            &format!("/accounts/{}", ids[0]),
            Some(1),
        )
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .req(
            reqwest::Method::DELETE,
            &format!("/accounts/{}", ids[1]),
            Some(1),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let calls = [fake.calls(&sessions[0]), fake.calls(&sessions[1])];

    s.drive().await;
    let status = s.status_of(1, task).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(fake.invited().len(), 12);
    assert_eq!(
        [fake.calls(&sessions[0]), fake.calls(&sessions[1])],
        calls,
        "no call on a disabled or removed account"
    );
    assert_eq!(
        fake.open_of(&sessions[0]),
        0,
        "the disabled account is disconnected"
    );
    assert_eq!(
        fake.open_of(&sessions[1]),
        0,
        "the removed account is disconnected"
    );
    assert_eq!(fake.most_open_at_once(), 1);
}

pub async fn a_task_with_no_usable_account_is_refused(db: Db) {
    let Some((s, _fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let task = s
        .create(
            3,
            json!({
                "name": "no accounts",
                "platform": "telegram",
                "action": "invite",
                "group": "@launch_group",
                "targets": ["@reader_001"],
            }),
        )
        .await;
    let p = problem(
        s.post(&format!("/tasks/{task}/start"), 3, None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("no usable"), "{p}");
}

/// `api_id` is a JSON integer: `12345.0` is accepted as 12345 (as JSON Schema counts it), a
/// fraction is refused by name. Found by the contract fuzzer: the float answered 422.
#[tokio::test]
async fn a_whole_number_float_api_id_is_an_integer() {
    let Some((s, fake)) = start(Db::Memory, Engine::Virtual).await else {
        return;
    };
    fake.add_account(&telethon(7), 5007, None);
    let body = |api_id: Value| {
        json!({"platform": "telegram", "session": telethon(7), "api_id": api_id,
               "api_hash": API_HASH, "label": null})
    };
    let r = s
        .req(reqwest::Method::POST, "/accounts", Some(1))
        .json(&body(json!(12345.0)))
        .send()
        .await
        .unwrap();
    added(r).await;
    let r = s
        .req(reqwest::Method::POST, "/accounts", Some(2))
        .json(&body(json!(12345.5)))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(p["detail"].as_str().unwrap().contains("api_id"), "{p}");
}

/// The device of the session's login, given when the account is added, is presented to
/// Telegram from the check at adding on, by every connection of the account.
pub async fn an_accounts_own_device_is_kept_and_presented(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let session = telethon(41);
    fake.add_account(&session, 7041, None);
    let post = |body: Value| {
        let s = &s;
        async move {
            s.req(reqwest::Method::POST, "/accounts", Some(1))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // A control character is refused, naming the field.
    let p = problem(
        post(json!({"platform": "telegram", "session": session, "device_model": "Pixel\n7"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("device_model"),
        "{p}"
    );
    added(
        post(json!({"platform": "telegram", "session": session,
                    "device_model": " Pixel 7 ", "system_version": "Android 14",
                    "app_version": "10.14.5 (4990)", "lang_code": "ru"}))
        .await,
    )
    .await;
    let want = invite_telegram::DeviceFields {
        device_model: Some("Pixel 7".into()),
        system_version: Some("Android 14".into()),
        app_version: Some("10.14.5 (4990)".into()),
        system_lang_code: None,
        lang_code: Some("ru".into()),
    };
    assert_eq!(fake.devices(), vec![want.clone()]);
    // A task's connection presents it too (sealed with the session, opened by the strategy).
    let task = s
        .create(
            1,
            json!({"name": "device", "platform": "telegram", "action": "invite",
                   "group": "@launch_group", "targets": ["@reader_900"]}),
        )
        .await;
    let r = s.post(&format!("/tasks/{task}/start"), 1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.drive().await;
    let devices = fake.devices();
    assert!(devices.len() >= 2, "{devices:?}");
    assert!(devices.iter().all(|d| *d == want), "{devices:?}");
}

/// `invite-http accounts login` on a scripted sign-in: a wrong code then the right one and a
/// 2FA password store the new session like an import (active, who it is from `get_me`, listed
/// with its use); the same Telegram user again is a 409 and its new session is logged out;
/// a flood wait and an expired code are one-line refusals that repeat nothing typed.
pub async fn an_account_signed_in_by_phone_is_stored_like_an_import(db: Db) {
    use invite_http::accounts::Login;
    use invite_http::cli::LinePrompt;
    use invite_telegram::fake_login::FakeLogin;

    let Some((s, _fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let accounts = s.runtime.state.accounts().expect("accounts enabled");
    let user = invite_core::domain::UserId::new(1);
    let typed = |lines: &str| LinePrompt::new(std::io::Cursor::new(lines.to_owned()), false);
    let options = || Login {
        label: Some("by phone".to_owned()),
        ..Login::default()
    };

    let login = FakeLogin::new("+447700900123", "40917", 6001, Some("phone_user"))
        .with_password("correct horse", Some("horse"))
        .key_seed(1);
    let account = accounts
        .login(
            user,
            &login,
            &mut typed("+44 7700 900123\n11111\n40917\ncorrect horse\n"),
            options(),
        )
        .await
        .unwrap();
    assert_eq!(login.codes_tried(), 2);
    assert!(login.disconnected() && !login.logged_out());
    let key_id = invite_telegram::SessionString::parse(&login.session())
        .unwrap()
        .key_fingerprint();
    assert_eq!(account.id.to_string(), format!("tg-{key_id}"));
    let list = s.get_ok("/accounts?platform=telegram", 1).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], account.id.to_string(), "{list}");
    let view = s.get_ok(&format!("/accounts/{}", account.id), 1).await;
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(view["telegram_user_id"], 6001);
    assert_eq!(view["username"], "phone_user");
    assert_eq!(view["label"], "by phone");
    assert_eq!(view["phone_masked"], "+********0123");

    // The same Telegram user signed in again: 409, and the new session is not left alive.
    let again = FakeLogin::new("+447700900123", "40917", 6001, Some("phone_user")).key_seed(2);
    let e = accounts
        .login(
            user,
            &again,
            &mut typed("+447700900123\n40917\n"),
            options(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::CONFLICT, "{e}");
    assert!(again.logged_out() && again.disconnected());

    // Refusals: one line, nothing typed repeated, nothing stored.
    let flood = FakeLogin::new("+447700900124", "40917", 6002, None).flood_wait(600);
    let e = accounts
        .login(
            user,
            &flood,
            &mut typed("+447700900124\n40917\n"),
            options(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
    let expired = FakeLogin::new("+447700900125", "40917", 6003, None).code_expired();
    let e2 = accounts
        .login(
            user,
            &expired,
            &mut typed("+447700900125\n40917\n"),
            options(),
        )
        .await
        .unwrap_err();
    assert_eq!(e2.status(), StatusCode::UNPROCESSABLE_ENTITY, "{e2}");
    for (e, what) in [
        (e.to_string(), "FLOOD_WAIT"),
        (e2.to_string(), "PHONE_CODE_EXPIRED"),
    ] {
        assert!(e.contains(what), "{e}");
        assert!(
            !e.contains('\n') && !e.contains("7700900") && !e.contains("40917"),
            "{e}"
        );
    }
    assert!(flood.disconnected() && expired.disconnected());
    let list = s.get_ok("/accounts?platform=telegram", 1).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

/// Every account of a running task disabled by its owner: the task stays running, idle, and
/// its status says why (no account able to act, the reason); enabling one lets it finish.
pub async fn a_task_whose_accounts_are_all_disabled_says_so(db: Db) {
    let Some((s, fake)) = start(db, Engine::Virtual).await else {
        return;
    };
    let sessions = [telethon(61), telethon(62)];
    let ids = registered(&s, &fake, &sessions, 9101).await;
    let targets: Vec<String> = (0..6).map(|i| format!("@guest_{i:03}")).collect();
    let task = started_invite(&s, "all off", &targets).await;
    let clock = s.clock.clone().unwrap();
    loop {
        let pass = s.runtime.engine.tick().await.unwrap();
        if !fake.invited().is_empty() {
            break;
        }
        clock
            .sleep_until(pass.next.expect("the task still runs"))
            .await;
    }
    let enable = |id: String, on: bool| {
        let s = &s;
        async move {
            let r = s
                .req(reqwest::Method::PATCH, &format!("/accounts/{id}"), Some(1))
                .json(&json!({ "enabled": on }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    for id in &ids {
        enable(id.clone(), false).await;
    }
    let pass = s.runtime.engine.tick().await.unwrap();
    let invited = fake.invited().len();
    assert!(invited < 6, "the task is not over");
    let status = s.status_of(1, task).await;
    assert_eq!(status["status"], "IN_PROGRESS", "{status}");
    assert_eq!(status["active_accounts"], 0, "{status}");
    assert_eq!(
        status["waiting_reason"].as_str(),
        Some(invite_core::service::EVERY_ACCOUNT_DISABLED),
        "{status}"
    );
    // Nothing moves while they are off.
    if let Some(next) = pass.next {
        clock.sleep_until(next).await;
    }
    s.runtime.engine.tick().await.unwrap();
    assert_eq!(fake.invited().len(), invited);

    enable(ids[1].clone(), true).await;
    s.drive().await;
    let status = s.status_of(1, task).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert!(status.get("waiting_reason").is_none(), "{status}");
    assert_eq!(fake.invited().len(), 6);
}

crate::on_every_store!(
    an_accounts_own_device_is_kept_and_presented,
    accounts_are_added_checked_and_sealed,
    a_telegram_task_runs_over_registered_accounts,
    a_task_with_no_usable_account_is_refused,
    every_spelling_of_one_group_shares_one_budget,
    two_spellings_of_one_group_never_reach_one_person_twice,
    a_disabled_or_removed_account_is_let_go,
    an_account_signed_in_by_phone_is_stored_like_an_import,
    a_task_whose_accounts_are_all_disabled_says_so,
);
