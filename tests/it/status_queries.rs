//! A task's status is read from a handful of set-based queries whatever the number of its
//! accounts: the statements sqlx runs for one `status` call are counted from its `sqlx::query`
//! trace events, on PostgreSQL. (SQLite's statements run on sqlx's worker thread, out of reach
//! of the test's scoped subscriber; the same use case issues the same calls there.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::clock::Clock as _;
use invite_core::clock::VirtualClock;
use invite_core::domain::{AccountId, ActionKind, Platform, TaskId, UserId};
use invite_core::limits::{LimitPolicy, LocalAccountManager};
use invite_core::memory::{InProcessQueue, StaticDirectory};
use invite_core::ports::{Claim, ClaimStage, ReserveRequest};
use invite_core::service::{
    ActionType, CampaignParts, Campaigns, STATUS_MEMO_TTL, ServiceLimits, TargetDraft, TaskDraft,
};
use invite_store::Stores;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const USER: UserId = UserId::new(1);

fn t0() -> DateTime<Utc> {
    "2026-01-05T09:00:00Z".parse().unwrap()
}

/// Counts the statements sqlx runs (one `sqlx::query` event each).
struct CountQueries(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for CountQueries {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn campaigns(stores: &Stores, clock: Arc<VirtualClock>) -> Campaigns {
    let manager = LocalAccountManager::new(stores.ledger.clone(), clock.clone(), 1);
    Campaigns::new(
        CampaignParts {
            store: stores.tasks.clone(),
            queue: Arc::new(InProcessQueue::new()),
            accounts: Arc::new(manager),
            // Accounts to start with, and those the lanes name (a lane's account its owner
            // no longer lists is not counted as able to act).
            directory: Arc::new(
                StaticDirectory::new()
                    .with_sandbox_accounts(USER, 1)
                    .with_accounts(
                        USER,
                        Platform::Sandbox,
                        [("small", 2), ("large", 10)]
                            .into_iter()
                            .flat_map(|(name, n)| {
                                (0..n).map(move |i| {
                                    AccountId::parse(format!("{name}-acc-{i}")).unwrap()
                                })
                            }),
                    ),
            ),
            ledger: Some(stores.ledger.clone()),
            clock,
            suppression: stores.suppression.clone(),
            audience: None,
        },
        ServiceLimits::default(),
    )
}

/// A running invite task of 20 targets whose lanes are `accounts` accounts, each with two
/// actions in the window.
async fn running_task(stores: &Stores, c: &Campaigns, name: &str, accounts: usize) -> TaskId {
    let draft = TaskDraft {
        name: name.into(),
        platform: "sandbox".into(),
        action: ActionType::Invite,
        group: Some(format!("@{name}")),
        template: None,
        priority: None,
        scheduled_at: None,
        targets: (0..20)
            .map(|i| TargetDraft::new(format!("@{name}_{i:04}")))
            .collect(),
        accounts: None,
        add_to_contacts: false,
        dedupe_days: None,
    };
    let task = c.create(USER, draft, None).await.unwrap().task;
    let ids: Vec<AccountId> = (0..accounts)
        .map(|i| AccountId::parse(format!("{name}-acc-{i}")).unwrap())
        .collect();
    stores.tasks.ensure_lanes(task.id, &ids).await.unwrap();
    let policy = LimitPolicy::telegram();
    for (i, account) in ids.iter().enumerate() {
        for n in 0..2 {
            let request = ReserveRequest {
                account_id: account.clone(),
                kinds: vec![ActionKind::Invite],
                channel: task.settings.action.channel_key(),
                now: t0() - TimeDelta::hours(2) + TimeDelta::minutes(i as i64 * 3 + n * 30),
                pause_after: TimeDelta::zero(),
            };
            stores.ledger.reserve(&request, &policy).await.unwrap();
        }
    }
    c.start(USER, task.id).await.unwrap();
    task.id
}

/// The statements of one `status` call, and its ETA's account count.
async fn counted_status(c: &Campaigns, id: TaskId) -> (usize, usize) {
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountQueries(count.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let report = c.status(USER, id).await.unwrap();
    drop(guard);
    let eta = report.eta.expect("a running task has an ETA");
    (count.load(Ordering::Relaxed), eta.accounts)
}

async fn status_takes_a_handful_of_queries(url: &str) {
    let stores = invite_store::connect(url, Default::default())
        .await
        .unwrap();
    stores.migrate().await.unwrap();
    let clock = Arc::new(VirtualClock::manual(t0()));
    let c = campaigns(&stores, clock.clone());
    let small = running_task(&stores, &c, "small", 2).await;
    let large = running_task(&stores, &c, "large", 10).await;
    // The first statements of a connection prepare; count a warmed-up call, past the time
    // the first call's account figures serve the reads after it.
    counted_status(&c, small).await;
    counted_status(&c, large).await;
    clock.advance(STATUS_MEMO_TTL);
    let (two, accounts) = counted_status(&c, small).await;
    assert_eq!(accounts, 2);
    let (ten, accounts) = counted_status(&c, large).await;
    assert_eq!(accounts, 10);
    eprintln!("status statements: {two} with 2 accounts, {ten} with 10");
    assert_eq!(two, ten, "as many statements for 10 accounts as for 2");
    // The task with its counts, its lanes, the accounts' states, and the ledger's three tables.
    assert!((3..=6).contains(&ten), "{ten} statements for one status");

    // Within the second, an unchanged task is read with its counts in one statement…
    let (again, accounts) = counted_status(&c, large).await;
    assert_eq!(accounts, 10);
    assert_eq!(again, 1, "{again} statements for a repeated status");
    // …and a changed count (a claim here) reads everything again.
    let before = c.status(USER, large).await.unwrap();
    let account = AccountId::parse("large-acc-0").unwrap();
    let claim = Claim {
        task: large,
        account,
        holder: "status-test".to_owned(),
        now: clock.now(),
        random_high: None,
        stage: ClaimStage::First,
    };
    let claimed = stores.tasks.claim_target(&claim).await.unwrap();
    assert!(claimed.is_some(), "a pending target to claim");
    let (changed, _) = counted_status(&c, large).await;
    assert_eq!(
        changed, ten,
        "a changed count reads the account figures again"
    );
    let after = c.status(USER, large).await.unwrap();
    assert_ne!(before.progress, after.progress);

    // Reads that miss the remembered figures together compute them once: each reads the task
    // with its counts, one reads the rest, the others take what it kept.
    clock.advance(STATUS_MEMO_TTL);
    let (together, figures) = counted_statuses(&c, large, 8).await;
    assert!(figures.windows(2).all(|w| w[0] == w[1]), "{figures:?}");
    assert_eq!(
        together,
        8 + ten - 1,
        "8 reads at once after the figures aged"
    );
    stores.close().await;
}

/// The statements of `n` `status` calls made at once, and the figures each answered.
async fn counted_statuses(
    c: &Campaigns,
    id: TaskId,
    n: usize,
) -> (usize, Vec<(u64, u64, Option<invite_core::service::Eta>)>) {
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountQueries(count.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let reports = futures::future::join_all((0..n).map(|_| c.status(USER, id))).await;
    drop(guard);
    let figures = reports
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            (r.active_accounts, r.accounts, r.eta)
        })
        .collect();
    (count.load(Ordering::Relaxed), figures)
}

#[tokio::test]
async fn status_takes_a_handful_of_queries_on_postgres() {
    let Some(db) = invite_store::test_util::PostgresDatabase::create().await else {
        return;
    };
    status_takes_a_handful_of_queries(&db.url).await;
    db.drop_database().await;
}
