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
