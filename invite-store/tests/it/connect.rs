//! The factory and the migrations.

use std::time::Duration;

use invite_store::{Backend, Error, PoolConfig};

use invite_store::test_util::{postgres_admin, postgres_admin_url, with_database};

fn quick() -> PoolConfig {
    PoolConfig {
        max_connections: 2,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn unknown_schemes_and_malformed_urls_name_database_url() {
    let err = invite_store::connect("mysql://root:hunter2@db/invite", quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedUrl { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("DATABASE_URL") && !msg.contains("hunter2"),
        "{msg}"
    );

    let err = invite_store::connect("postgres://u:hunter2@host:notaport/db", quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("DATABASE_URL") && !msg.contains("hunter2"),
        "{msg}"
    );

    let err = invite_store::connect("sqlite:///no/such/dir/invite.db", quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_names_database_url_and_is_retryable() {
    // Port 1 on loopback: nothing listens there.
    let err = invite_store::connect("postgres://app:hunter2@127.0.0.1:1/invite", quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("DATABASE_URL") && msg.contains("127.0.0.1:1") && !msg.contains("hunter2"),
        "{msg}"
    );
    assert!(err.is_retryable());
    assert!(matches!(
        invite_core::ports::StoreError::from(err),
        invite_core::ports::StoreError::Unavailable(_)
    ));
}

#[tokio::test]
async fn the_url_picks_the_backend() {
    let stores = invite_store::connect("sqlite::memory:", quick())
        .await
        .unwrap();
    assert_eq!(stores.backend(), Backend::Sqlite);
    if postgres_admin().await.is_none() {
        return;
    }
    let url = postgres_admin_url().replacen("postgres://", "postgresql://", 1);
    let stores = invite_store::connect(&url, quick()).await.unwrap();
    assert_eq!(stores.backend(), Backend::Postgres);
    stores.close().await;
}

#[tokio::test]
async fn sqlite_file_migrations_are_idempotent_and_race_safe() {
    let path = std::env::temp_dir().join(format!("invite-store-migrate-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let mut handles = Vec::new();
    // As many migrators as migrations or more: a migrator may lose a race on each of them.
    for _ in 0..8 {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let stores = invite_store::connect(&url, quick()).await.unwrap();
            stores.migrate().await.unwrap();
            stores
        }));
    }
    for h in handles {
        let stores = h.await.unwrap();
        invite_store::migrate(&stores).await.unwrap();
        stores.close().await;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn postgres_migrations_are_idempotent_and_race_safe() {
    let Some(mut admin) = postgres_admin().await else {
        return;
    };
    let name = format!("invite_test_migrate_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = with_database(&postgres_admin_url(), &name);
    let mut handles = Vec::new();
    // As many migrators as migrations or more: a migrator may lose a race on each of them.
    for _ in 0..8 {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let stores = invite_store::connect(&url, quick()).await.unwrap();
            stores.migrate().await.unwrap();
            stores
        }));
    }
    for h in handles {
        let stores = h.await.unwrap();
        stores.migrate().await.unwrap();
        stores.close().await;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A disk that fills up inside a transaction: SQLite rolls the whole transaction back by itself
/// (`SQLITE_FULL` in a statement without a statement journal), so the `ROLLBACK` sqlx sends
/// for the dropped transaction fails, and sqlx still counts the transaction as open on the
/// connection. The pool must not hand that connection out again: every `begin_with` on it
/// would fail with "attempted to call begin_with at non-zero transaction depth".
#[tokio::test]
async fn a_sqlite_connection_a_full_disk_left_in_a_transaction_is_not_reused() {
    use sqlx::Connection as _;
    let path = std::env::temp_dir().join(format!(
        "invite-store-full-{}.db",
        invite_store::test_util::random_suffix()
    ));
    let url = format!("sqlite://{}", path.display());
    let one = PoolConfig {
        max_connections: 1,
        ..quick()
    };
    let stores = invite_store::connect(&url, one).await.unwrap();
    stores.migrate().await.unwrap();
    let invite_store::DbPool::Sqlite(pool) = stores.pool() else {
        unreachable!("a sqlite URL opens SQLite")
    };
    {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB)")
            .execute(&mut *conn)
            .await
            .unwrap();
        // The disk is full: the database may not grow past its current size.
        sqlx::query("PRAGMA max_page_count = 1")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let full = sqlx::query("INSERT INTO filler VALUES (zeroblob(1000000))")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(full.to_string().contains("full"), "{full}");
        // `tx` is dropped here and queues its ROLLBACK, which finds no transaction.
    }
    // The next write transaction of the store succeeds (the pool has one connection).
    stores
        .tasks
        .create_task(
            crate::helpers::new_task(crate::helpers::ALICE, "after a full disk"),
            vec![],
            None,
            crate::helpers::t0(),
        )
        .await
        .unwrap();
    stores.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// A scratch PostgreSQL database, migrated, with its stores and pool; `None` (after a `SKIP`
/// line) without a server.
async fn migrated_postgres() -> Option<(
    invite_store::test_util::PostgresDatabase,
    invite_store::Stores,
    sqlx::PgPool,
)> {
    let db = invite_store::test_util::PostgresDatabase::create().await?;
    let stores = invite_store::connect(&db.url, quick()).await.unwrap();
    stores.migrate().await.unwrap();
    let invite_store::DbPool::Postgres(pool) = stores.pool().clone() else {
        panic!("not PostgreSQL");
    };
    Some((db, stores, pool))
}

/// PostgreSQL deletes a task's targets and counts with the task, once per statement (no foreign
/// key: targets are written only by the store, into a task it holds, and a bulk COPY is not
/// slowed by a check per row or a transition table).
#[tokio::test]
async fn postgres_targets_go_with_their_task() {
    let Some((db, stores, pool)) = migrated_postgres().await else {
        return;
    };
    let task: i64 = sqlx::query_scalar(
        "INSERT INTO invite_tasks (user_id, name, platform, settings, channel_key) \
         VALUES (1, 't', 'sandbox', '{}', '@g') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO invite_targets (task_id, identifier_kind, identifier, identifier_key) \
         SELECT $1, 'username', 'p' || n, 'u:p' || n FROM generate_series(1, 3) AS n",
    )
    .bind(task)
    .execute(&pool)
    .await
    .unwrap();
    // Counted once they leave `pending` (inserts are counted by the store's own writer).
    sqlx::query("UPDATE invite_targets SET status = 'success' WHERE task_id = $1")
        .bind(task)
        .execute(&pool)
        .await
        .unwrap();
    let counted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invite_target_counts WHERE task_id = $1 AND n <> 0",
    )
    .bind(task)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(counted > 0);
    sqlx::query("DELETE FROM invite_tasks WHERE id = $1")
        .bind(task)
        .execute(&pool)
        .await
        .unwrap();
    let counts_left: i64 = sqlx::query_scalar("SELECT count(*) FROM invite_target_counts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counts_left, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM invite_targets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    stores.close().await;
    db.drop_database().await;
}

/// Targets written by the binary `COPY` carry the caller's time (microseconds kept), their task,
/// their source and no email, as a statement with parameters would write them.
#[tokio::test]
async fn postgres_bulk_targets_carry_the_callers_time_and_fields() {
    use chrono::{DateTime, Utc};
    use invite_core::domain::{
        Action, GroupRef, NewTarget, NewTask, Platform, Priority, TargetIdentifier, TargetSource,
        TaskSettings, UserId, Username,
    };

    let Some((db, stores, pool)) = migrated_postgres().await else {
        return;
    };
    let now: DateTime<Utc> = "1999-12-31T23:59:59.123456Z".parse().unwrap();
    let mut target = NewTarget::new(TargetIdentifier::Username(
        Username::parse("binary_person", Platform::Telegram).unwrap(),
    ));
    target.source = TargetSource::FileUpload;
    let task = NewTask {
        user_id: UserId::new(1),
        name: "binary".to_owned(),
        platform: Platform::Telegram,
        priority: Priority::Medium,
        settings: TaskSettings {
            action: Action::Invite {
                group: GroupRef::parse("@binary_group").unwrap(),
            },
            accounts: None,
            add_to_contacts: false,
            dedupe_days: None,
        },
        scheduled_at: None,
    };
    let id = stores
        .tasks
        .create_task(task, vec![target], None, now)
        .await
        .unwrap()
        .task
        .id;
    let row: (
        i64,
        DateTime<Utc>,
        DateTime<Utc>,
        String,
        Option<String>,
        String,
    ) = sqlx::query_as(
        "SELECT task_id, created_at, updated_at, source::text, email, identifier \
             FROM invite_targets",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            id.get(),
            now,
            now,
            "FILE_UPLOAD".to_owned(),
            None,
            "binary_person".to_owned()
        )
    );
    stores.close().await;
    db.drop_database().await;
}
