//! The sandbox platform's world.

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn SandboxWorld>;
use crate::sandbox::SandboxWorld;

pub(crate) async fn sandbox_world_adds_a_member_once(s: Ctx) {
    let w = &s;
    assert!(!w.is_member("@group_a", "u:alice").await.unwrap());
    assert!(w.add_member("@group_a", "u:alice").await.unwrap());
    assert!(
        !w.add_member("@group_a", "u:alice").await.unwrap(),
        "idempotent"
    );
    assert!(w.is_member("@group_a", "u:alice").await.unwrap());
    // Memberships are per group and per person.
    assert!(!w.is_member("@group_b", "u:alice").await.unwrap());
    assert!(!w.is_member("@group_a", "u:bob").await.unwrap());
    assert!(w.add_member("@group_b", "u:alice").await.unwrap());
    assert!(w.add_member("@group_a", "u:bob").await.unwrap());
    // Another process sees them.
    let other = s.another().await;
    assert!(other.is_member("@group_a", "u:alice").await.unwrap());
    assert!(!other.add_member("@group_a", "u:bob").await.unwrap());
}

pub(crate) async fn sandbox_world_deduplicates_random_ids_per_account(s: Ctx) {
    let w = &s;
    let (a, b) = (acc("sandbox-1-01"), acc("sandbox-1-02"));
    assert!(w.record_delivery(&a, 42).await.unwrap());
    assert!(!w.record_delivery(&a, 42).await.unwrap(), "a resend");
    // Telegram de-duplicates per sending account: the same random_id from another is new.
    assert!(w.record_delivery(&b, 42).await.unwrap());
    assert!(!w.record_delivery(&b, 42).await.unwrap());
    assert!(w.record_delivery(&a, 43).await.unwrap());
    // The whole i64 range.
    for id in [i64::MIN, -1, 0, i64::MAX] {
        assert!(w.record_delivery(&a, id).await.unwrap(), "{id}");
        assert!(!w.record_delivery(&a, id).await.unwrap(), "{id}");
    }
    let other = s.another().await;
    assert!(!other.record_delivery(&a, 42).await.unwrap());
}

pub(crate) async fn sandbox_world_racers_have_one_first_delivery(s: Ctx) {
    let a = acc("sandbox-1-01");
    let mut racers = Vec::new();
    for _ in 0..8 {
        let handle = s.another().await;
        let a = a.clone();
        racers.push(tokio::spawn(async move {
            let delivered = handle.record_delivery(&a, 7).await.unwrap();
            let added = handle.add_member("@group_a", "u:race").await.unwrap();
            (delivered, added)
        }));
    }
    let (mut delivered, mut added) = (0, 0);
    for racer in racers {
        let (d, m) = racer.await.unwrap();
        delivered += usize::from(d);
        added += usize::from(m);
    }
    assert_eq!((delivered, added), (1, 1));
}
