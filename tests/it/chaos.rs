//! The engine's promises under faults, judged by the independent chaos checker
//! (`invite_core::chaos`): 50 seeded campaigns with crashes, timeouts, refusals and flood
//! waits, in memory; no second delivery, no limit broken, no target lost, no outcome the
//! platform's journal contradicts.

use invite_core::chaos::{ChaosPorts, CheckCounts, run_seed};

#[tokio::test]
#[ignore = "fails on the current engine; enabled when the engine keeps its promises under faults"]
async fn the_engine_keeps_its_promises_under_faults() {
    let mut total = CheckCounts::default();
    let mut first = Vec::new();
    for seed in 0..50 {
        let outcome = run_seed(seed, ChaosPorts::memory()).await.expect("store");
        let r = &outcome.report;
        total.add(r.counts());
        first.extend(
            r.duplicates
                .iter()
                .chain(&r.cap_violations)
                .chain(&r.lost)
                .chain(&r.mismatched)
                .take(2)
                .map(|f| format!("seed {seed}: {f}")),
        );
        assert_eq!(outcome.bound_hit, None, "seed {seed}");
    }
    assert!(
        total.is_clean(),
        "{total:?}; first findings:\n{}",
        first.join("\n")
    );
}
