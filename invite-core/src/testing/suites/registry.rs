//! The account registry.

use crate::domain::{Platform, UserId};
use crate::ports::{
    AccountPatch, NewAccount, Registration, RegistryStatus, Resolution, StatusChange, StoreError,
};

use super::super::fixtures::*;
use super::super::harness::Subject;

type Ctx = Subject<dyn AccountRegistry>;
use crate::ports::AccountRegistry;

fn new_account(id: &str, user: i64, tg_user: Option<i64>, key: &str, n: i64) -> NewAccount {
    NewAccount {
        id: acc(id),
        user_id: UserId::new(user),
        platform: Platform::Telegram,
        label: Some(format!("label {id}")),
        platform_user_id: tg_user,
        username: Some(format!("user_{id}")),
        phone_masked: Some("+7******4567".to_owned()),
        key_id: key.to_owned(),
        sealed: vec![0xA5; 64],
        status: RegistryStatus::Active,
        created_at: t0() + mins(n),
    }
}

fn added(r: Registration) -> crate::ports::RegisteredAccount {
    match r {
        Registration::Added(a) => a,
        Registration::Duplicate(id) => panic!("unexpected duplicate of {id}"),
    }
}

pub(crate) async fn accounts_are_registered_once_per_key_and_platform_user(s: Ctx) {
    let a = added(
        s.register(new_account("tg-1", 1, Some(1001), "k1", 0))
            .await
            .unwrap(),
    );
    assert_eq!(a.status, RegistryStatus::Active);
    assert_eq!(a.platform_user_id, Some(1001));
    assert_eq!(a.created_at, t0());
    assert_eq!(a.last_used_at, None);
    // The same key, even for another user: refused, naming the holder.
    assert_eq!(
        s.register(new_account("tg-2", 2, Some(1002), "k1", 1))
            .await
            .unwrap(),
        Registration::Duplicate(acc("tg-1"))
    );
    // The same Telegram user with another key.
    assert_eq!(
        s.register(new_account("tg-3", 1, Some(1001), "k3", 2))
            .await
            .unwrap(),
        Registration::Duplicate(acc("tg-1"))
    );
    // Unverified accounts have no platform user yet: several may exist.
    for (id, key) in [("tg-4", "k4"), ("tg-5", "k5")] {
        let mut n = new_account(id, 1, None, key, 3);
        n.status = RegistryStatus::Unverified;
        assert_eq!(
            added(s.register(n).await.unwrap()).status,
            RegistryStatus::Unverified
        );
    }
    // A use proves an unverified session.
    s.touch(&acc("tg-4"), t0() + mins(9)).await.unwrap();
    let used = s
        .registered_account(UserId::new(1), &acc("tg-4"))
        .await
        .unwrap();
    assert_eq!(used.status, RegistryStatus::Active);
    assert_eq!(used.last_used_at, Some(t0() + mins(9)));
    // Another platform may hold the same ids.
    let mut other = new_account("ig-1", 1, Some(1001), "k1", 4);
    other.platform = Platform::Instagram;
    added(s.register(other).await.unwrap());
    // The sealed blob comes back as stored, and only it.
    assert_eq!(s.sealed(&acc("tg-1")).await.unwrap(), vec![0xA5; 64]);
    assert_eq!(
        s.sealed(&acc("tg-9")).await.unwrap_err(),
        StoreError::NotFound
    );
    // Another handle (another process) sees the same.
    let other = s.another().await;
    let ids: Vec<String> = other
        .registered(UserId::new(1), Some(Platform::Telegram))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(ids, ["tg-1", "tg-4", "tg-5"]);
    assert_eq!(
        other.registered(UserId::new(1), None).await.unwrap().len(),
        4
    );
}

pub(crate) async fn accounts_are_listed_patched_and_removed_by_their_owner_only(s: Ctx) {
    for (i, id) in ["tg-a", "tg-b"].into_iter().enumerate() {
        added(
            s.register(new_account(id, 1, Some(2000 + i as i64), id, i as i64))
                .await
                .unwrap(),
        );
    }
    let (owner, stranger) = (UserId::new(1), UserId::new(2));
    assert!(s.registered(stranger, None).await.unwrap().is_empty());
    assert_eq!(
        s.registered_account(stranger, &acc("tg-a"))
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    let disable = AccountPatch {
        label: Some(None),
        enabled: Some(false),
    };
    assert_eq!(
        s.update(stranger, &acc("tg-a"), &disable)
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    let a = s.update(owner, &acc("tg-a"), &disable).await.unwrap();
    assert_eq!((a.status, a.label), (RegistryStatus::Disabled, None));
    let a = s
        .update(
            owner,
            &acc("tg-a"),
            &AccountPatch {
                label: Some(Some("main".to_owned())),
                enabled: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.label.as_deref()),
        (RegistryStatus::Active, Some("main"))
    );
    s.touch(&acc("tg-a"), t0() + mins(90)).await.unwrap();
    assert_eq!(
        s.registered_account(owner, &acc("tg-a"))
            .await
            .unwrap()
            .last_used_at,
        Some(t0() + mins(90))
    );
    assert_eq!(
        s.remove(stranger, &acc("tg-a")).await.unwrap_err(),
        StoreError::NotFound
    );
    s.remove(owner, &acc("tg-a")).await.unwrap();
    assert_eq!(
        s.remove(owner, &acc("tg-a")).await.unwrap_err(),
        StoreError::NotFound
    );
    let left: Vec<String> = s
        .registered(owner, None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(left, ["tg-b"]);
    // A removed key may be registered again.
    added(
        s.register(new_account("tg-a2", 1, Some(2000), "tg-a", 5))
            .await
            .unwrap(),
    );
}

pub(crate) async fn engine_statuses_never_override_a_disabled_account(s: Ctx) {
    let owner = UserId::new(1);
    for (i, id) in ["tg-x", "tg-y"].into_iter().enumerate() {
        added(
            s.register(new_account(id, 1, Some(3000 + i as i64), id, i as i64))
                .await
                .unwrap(),
        );
    }
    let spam = StatusChange {
        status: RegistryStatus::SpamLimited,
        until: Some(t0() + mins(24 * 60)),
        reason: Some("PEER_FLOOD".to_owned()),
    };
    s.set_status(&acc("tg-x"), &spam).await.unwrap();
    let x = s.registered_account(owner, &acc("tg-x")).await.unwrap();
    assert_eq!(x.status, RegistryStatus::SpamLimited);
    assert_eq!(x.status_until, Some(t0() + mins(24 * 60)));
    assert_eq!(x.status_reason.as_deref(), Some("PEER_FLOOD"));
    s.update(
        owner,
        &acc("tg-y"),
        &AccountPatch {
            label: None,
            enabled: Some(false),
        },
    )
    .await
    .unwrap();
    s.set_status(&acc("tg-y"), &spam).await.unwrap();
    assert_eq!(
        s.registered_account(owner, &acc("tg-y"))
            .await
            .unwrap()
            .status,
        RegistryStatus::Disabled
    );
    // Unknown accounts (removed meanwhile) are no error.
    s.set_status(&acc("gone"), &spam).await.unwrap();
    s.touch(&acc("gone"), t0()).await.unwrap();
}

/// Resolutions and budget uses are kept per account, replaced by key, pruned after two days,
/// and removed with the account.
pub(crate) async fn resolutions_and_budget_uses_are_kept_per_account(s: Ctx) {
    let a = added(
        s.register(new_account("tg-r1", 1, Some(3001), "kr1", 0))
            .await
            .unwrap(),
    );
    let other = acc("tg-r2");
    let resolution = |key: &str, hash: i64, n: i64| Resolution {
        key: key.to_owned(),
        peer_id: 42,
        access_hash: hash,
        resolved_at: t0() + mins(n),
    };
    s.save_resolution(&a.id, &resolution("@alice", 1, 0))
        .await
        .unwrap();
    s.save_resolution(&a.id, &resolution("@alice", 2, 5))
        .await
        .unwrap();
    s.save_resolution(&other, &resolution("@alice", 9, 0))
        .await
        .unwrap();
    assert_eq!(
        s.resolutions(&a.id).await.unwrap(),
        vec![resolution("@alice", 2, 5)]
    );
    for n in [0, 10, 20] {
        s.record_spend(&a.id, "import", t0() + mins(n))
            .await
            .unwrap();
    }
    s.record_spend(&a.id, "resolve", t0()).await.unwrap();
    assert_eq!(
        s.spends_since(&a.id, "import", t0() + mins(5))
            .await
            .unwrap(),
        vec![t0() + mins(10), t0() + mins(20)]
    );
    // Three days later, the old uses are gone.
    let later = t0() + mins(3 * 24 * 60);
    s.record_spend(&a.id, "import", later).await.unwrap();
    assert_eq!(
        s.spends_since(&a.id, "import", t0()).await.unwrap(),
        vec![later]
    );
    assert!(
        s.spends_since(&other, "import", t0())
            .await
            .unwrap()
            .is_empty()
    );
    s.remove(UserId::new(1), &a.id).await.unwrap();
    assert!(s.resolutions(&a.id).await.unwrap().is_empty());
    assert!(
        s.spends_since(&a.id, "resolve", t0())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.resolutions(&other).await.unwrap().len(), 1);
}
