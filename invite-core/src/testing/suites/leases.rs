//! Account leases.

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn AccountLeases>;
use crate::ports::AccountLeases;

pub(crate) async fn leases_are_exclusive_until_they_expire(s: Ctx) {
    let a = acc("acc-1");
    let until = t0() + mins(5);
    assert!(s.acquire(&a, "worker-1", t0(), until).await.unwrap());
    assert!(
        !s.acquire(&a, "worker-2", t0() + mins(1), t0() + mins(6))
            .await
            .unwrap()
    );
    // The holder renews.
    assert!(
        s.acquire(&a, "worker-1", t0() + mins(4), t0() + mins(10))
            .await
            .unwrap()
    );
    assert!(
        !s.acquire(&a, "worker-2", t0() + mins(6), t0() + mins(11))
            .await
            .unwrap(),
        "renewed"
    );
    // Expired: taken over.
    assert!(
        s.acquire(&a, "worker-2", t0() + mins(11), t0() + mins(16))
            .await
            .unwrap()
    );
    assert!(
        !s.acquire(&a, "worker-1", t0() + mins(12), t0() + mins(17))
            .await
            .unwrap()
    );
    // Only the holder releases.
    s.release(&a, "worker-1").await.unwrap();
    assert!(
        !s.acquire(&a, "worker-1", t0() + mins(12), t0() + mins(17))
            .await
            .unwrap()
    );
    s.release(&a, "worker-2").await.unwrap();
    assert!(
        s.acquire(&a, "worker-1", t0() + mins(12), t0() + mins(17))
            .await
            .unwrap()
    );
    // Leases are per account.
    assert!(
        s.acquire(&acc("acc-2"), "worker-2", t0() + mins(12), t0() + mins(17))
            .await
            .unwrap()
    );
}

pub(crate) async fn one_of_many_racers_takes_a_free_lease(s: Ctx) {
    let a = acc("acc-race");
    let mut racers = Vec::new();
    for i in 0..8 {
        let handle = s.another().await;
        let a = a.clone();
        racers.push(tokio::spawn(async move {
            handle
                .acquire(&a, &format!("worker-{i}"), t0(), t0() + mins(5))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
}
