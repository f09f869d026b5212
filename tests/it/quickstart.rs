//! The quickstart campaign end to end: its figures must hold.

use invite_core::domain::TaskStatus;
use invite_examples::quickstart::{Scenario, run};

#[tokio::test]
async fn quickstart_breaks_no_limit_and_is_efficient() {
    let mut out = Vec::new();
    let report = run(&Scenario::default(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.violations, 0, "{text}");
    assert!(report.efficiency() >= 0.95, "{text}");
    assert!(report.statuses.iter().all(|s| *s == TaskStatus::Completed));
    assert_eq!(report.outcomes.values().sum::<u64>(), 1000);
    assert!(text.lines().any(|l| l == "limit violations: 0"));
    assert!(text.lines().any(|l| l.starts_with("efficiency: 0.9")));
}

#[tokio::test]
async fn the_same_seed_gives_the_same_campaign() {
    let a = run(&Scenario::default(), &mut Vec::new()).await.unwrap();
    let b = run(&Scenario::default(), &mut Vec::new()).await.unwrap();
    assert_eq!(a.outcomes, b.outcomes);
    assert_eq!(a.duration, b.duration);
}

/// The same campaign on each store: the engine's outcomes do not depend on where they are kept.
async fn on_database(url: &str) {
    let memory = run(&Scenario::default(), &mut Vec::new()).await.unwrap();
    let scenario = Scenario {
        database_url: Some(url.to_owned()),
        ..Scenario::default()
    };
    let mut out = Vec::new();
    let report = run(&scenario, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.violations, 0, "{text}");
    assert!(report.efficiency() >= 0.95, "{text}");
    assert!(report.statuses.iter().all(|s| *s == TaskStatus::Completed));
    assert_eq!(report.outcomes, memory.outcomes, "{text}");
}

#[tokio::test]
async fn quickstart_runs_on_a_sqlite_file() {
    let path = std::env::temp_dir().join(format!(
        "invite-quickstart-{}.db",
        invite_store::test_util::random_suffix()
    ));
    on_database(&format!("sqlite://{}", path.display())).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn quickstart_runs_on_postgres() {
    let Some(db) = invite_store::test_util::PostgresDatabase::create().await else {
        return;
    };
    on_database(&db.url).await;
    db.drop_database().await;
}
