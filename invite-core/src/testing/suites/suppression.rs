//! The suppression list.

use crate::domain::Platform;

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn SuppressionList>;
use crate::ports::SuppressionList;

pub(crate) async fn suppression_is_per_user_and_platform(s: Ctx) {
    let tg = Platform::Telegram;
    let people = [
        ident("@spam_hater"),
        ident("+79161234567"),
        ident("@spam_hater"),
        ident("4242"),
    ];
    assert_eq!(
        s.suppress(ALICE, tg, &people, "manual", t0())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.suppress(
            ALICE,
            tg,
            &[ident("4242"), ident("@new_person")],
            "blocked_us",
            t0() + mins(1)
        )
        .await
        .unwrap(),
        1,
        "existing entries are kept"
    );
    assert!(
        s.is_suppressed(ALICE, tg, &ident("@SPAM_HATER"))
            .await
            .unwrap()
    );
    assert!(
        !s.is_suppressed(BOB, tg, &ident("@spam_hater"))
            .await
            .unwrap()
    );
    assert!(
        !s.is_suppressed(ALICE, Platform::Sandbox, &ident("@spam_hater"))
            .await
            .unwrap()
    );

    let list = s.suppressed(ALICE, tg, 0, 0).await.unwrap();
    let ids: Vec<_> = list.iter().map(|e| e.identifier.clone()).collect();
    assert_eq!(
        ids,
        [
            ident("@spam_hater"),
            ident("+79161234567"),
            ident("4242"),
            ident("@new_person")
        ]
    );
    assert_eq!(
        (list[2].reason.as_str(), list[2].created_at),
        ("manual", t0())
    );
    assert_eq!(
        (list[3].reason.as_str(), list[3].created_at),
        ("blocked_us", t0() + mins(1))
    );
    assert_eq!(s.suppressed(ALICE, tg, 2, 1).await.unwrap(), list[1..3]);
    assert!(s.suppressed(BOB, tg, 0, 0).await.unwrap().is_empty());

    assert!(!s.unsuppress(BOB, tg, &ident("@spam_hater")).await.unwrap());
    assert!(
        s.unsuppress(ALICE, tg, &ident("@spam_hater"))
            .await
            .unwrap()
    );
    assert!(
        !s.unsuppress(ALICE, tg, &ident("@spam_hater"))
            .await
            .unwrap()
    );
    assert!(
        !s.is_suppressed(ALICE, tg, &ident("@spam_hater"))
            .await
            .unwrap()
    );
    assert_eq!(s.suppress(ALICE, tg, &[], "manual", t0()).await.unwrap(), 0);
}
