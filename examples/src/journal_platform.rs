//! A simulated messenger shared by several worker processes, with its own journal in
//! PostgreSQL: the platform side of the multi-process chaos run (`chaos_platform`).
//!
//! Its world (who is in which group, which `random_id`s each account used) and its journal
//! live in the schema `chaos_platform`, apart from the engine's tables. Every write is decided,
//! applied and journalled in one transaction, committed before the platform answers: a worker
//! killed while the answer travels back cannot take back what reached the platform, and the
//! journal is what the checker ([`invite_core::chaos::check`]) judges. Calls about one person
//! in one group (or one account's `random_id`) are serialised by an advisory lock, as a real
//! platform serialises them.
//!
//! Its world follows Telegram as [`invite_core::chaos::FaultyPlatform`] does: a message whose
//! `random_id` the sending account already used delivers nothing and answers success; an
//! invite of a member answers `already_member`. Some people (by a seeded hash) are members
//! before the campaign, refuse invites by privacy or do not exist; flood waits, connection
//! failures before the request and timeouts after delivery are drawn per call.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use invite_core::async_trait;
use invite_core::chaos::{CallKind, JournalEntry, Reach};
use invite_core::domain::{AccountId, GroupRef, Outcome, Platform, Target, TaskId};
use invite_core::limits::LimitPolicy;
use invite_core::ports::{ActionResult, InviteStrategy, PlatformError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{PgPool, Row};

/// The platform's schema, apart from the engine's tables.
pub const SCHEMA: &str = "chaos_platform";

/// Chances per call, and shares of people.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlatformFaults {
    /// Share of (group, person) pairs where the person is a member before the campaign.
    pub pre_member: f64,
    /// Share of people whose privacy settings refuse invites.
    pub privacy_restricted: f64,
    /// Share of people that do not exist.
    pub not_found: f64,
    /// `FLOOD_WAIT_X` on a write.
    pub flood_wait: f64,
    /// Range of X, in seconds.
    pub flood_wait_seconds: (u64, u64),
    /// A connection failure before the request left.
    pub transient: f64,
    /// `TIMEOUT` after the write took effect.
    pub timeout_after: f64,
}

impl Default for PlatformFaults {
    fn default() -> Self {
        Self {
            pre_member: 0.08,
            privacy_restricted: 0.06,
            not_found: 0.03,
            flood_wait: 0.02,
            flood_wait_seconds: (1, 3),
            transient: 0.03,
            timeout_after: 0.03,
        }
    }
}

/// Creates the platform's schema and tables (idempotent).
pub async fn prepare(pool: &PgPool) -> sqlx::Result<()> {
    for statement in [
        format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.journal (
                seq BIGSERIAL PRIMARY KEY,
                at TIMESTAMPTZ NOT NULL,
                account TEXT NOT NULL,
                call TEXT NOT NULL,
                task BIGINT,
                channel TEXT,
                person TEXT,
                random_id BIGINT,
                reach TEXT NOT NULL,
                answer TEXT NOT NULL)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.members (
                channel TEXT NOT NULL, person TEXT NOT NULL, PRIMARY KEY (channel, person))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.messages (
                account TEXT NOT NULL, random_id BIGINT NOT NULL, PRIMARY KEY (account, random_id))"
        ),
    ] {
        sqlx::query(&statement).execute(pool).await?;
    }
    Ok(())
}

fn call_name(call: CallKind) -> &'static str {
    call.as_str()
}

fn call_of(name: &str) -> CallKind {
    match name {
        "invite" => CallKind::Invite,
        "message" => CallKind::Message,
        "add_contact" => CallKind::AddContact,
        "is_member" => CallKind::IsMember,
        _ => CallKind::CheckRights,
    }
}

fn reach_of(name: &str) -> Reach {
    match name {
        "not_reached" => Reach::NotReached,
        "delivered" => Reach::Delivered,
        "deduplicated" => Reach::Deduplicated,
        _ => Reach::ReachedNotDelivered,
    }
}

/// The whole journal, in order.
pub async fn read_journal(pool: &PgPool) -> sqlx::Result<Vec<JournalEntry>> {
    let rows = sqlx::query(&format!(
        "SELECT seq, at, account, call, task, channel, person, random_id, reach, answer
         FROM {SCHEMA}.journal ORDER BY seq"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let account: String = r.try_get("account")?;
            Ok(JournalEntry {
                seq: u64::try_from(r.try_get::<i64, _>("seq")?).unwrap_or(0),
                at: r.try_get("at")?,
                account: AccountId::parse(account)
                    .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                call: call_of(r.try_get::<String, _>("call")?.as_str()),
                task: r.try_get::<Option<i64>, _>("task")?.map(TaskId::new),
                channel: r.try_get("channel")?,
                person: r.try_get("person")?,
                random_id: r.try_get("random_id")?,
                reach: reach_of(r.try_get::<String, _>("reach")?.as_str()),
                answer: r.try_get("answer")?,
            })
        })
        .collect()
}

/// One call to journal.
struct Call<'a> {
    at: DateTime<Utc>,
    account: &'a AccountId,
    call: CallKind,
    task: Option<TaskId>,
    channel: Option<&'a str>,
    person: Option<&'a str>,
    random_id: Option<i64>,
}

/// The messenger of the chaos run.
#[derive(Debug)]
pub struct JournalPlatform {
    pool: PgPool,
    seed: u64,
    faults: PlatformFaults,
    policy: LimitPolicy,
    rng: Mutex<StdRng>,
}

impl JournalPlatform {
    /// The platform over `pool` (where [`prepare`] ran); people are drawn from `seed` (the
    /// same for every process), faults from `seed` and `process_salt`.
    pub fn new(
        pool: PgPool,
        seed: u64,
        process_salt: u64,
        faults: PlatformFaults,
        policy: LimitPolicy,
    ) -> Self {
        Self {
            pool,
            seed,
            faults,
            policy,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ process_salt.rotate_left(17))),
        }
    }

    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random()
    }

    fn flood_seconds(&self) -> u64 {
        let (lo, hi) = self.faults.flood_wait_seconds;
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(lo..=hi.max(lo))
    }

    fn unit(&self, parts: &[&str]) -> f64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.seed.hash(&mut h);
        parts.hash(&mut h);
        (h.finish() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn not_found(&self, person: &str) -> bool {
        self.unit(&["person", person]) < self.faults.not_found
    }

    fn privacy_restricted(&self, person: &str) -> bool {
        let p = self.unit(&["person", person]);
        p >= self.faults.not_found && p < self.faults.not_found + self.faults.privacy_restricted
    }

    fn member_before(&self, channel: &str, person: &str) -> bool {
        self.unit(&["member", channel, person]) < self.faults.pre_member
    }

    fn unavailable(e: &sqlx::Error) -> PlatformError {
        // The platform could not take the call: nothing was applied (the transaction is
        // rolled back), so nothing reached it.
        PlatformError::Transient {
            code: format!("PLATFORM_UNAVAILABLE: {e}"),
        }
    }

    async fn journal(
        tx: &mut sqlx::PgConnection,
        call: &Call<'_>,
        reach: Reach,
        answer: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO {SCHEMA}.journal
                (at, account, call, task, channel, person, random_id, reach, answer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(call.at)
        .bind(call.account.as_str())
        .bind(call_name(call.call))
        .bind(call.task.map(|t| t.get()))
        .bind(call.channel)
        .bind(call.person)
        .bind(call.random_id)
        .bind(reach.as_str())
        .bind(answer)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn lock(tx: &mut sqlx::PgConnection, key: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// A fault that comes before the write is applied, if one is drawn.
    fn early_fault(&self) -> Option<(Reach, String, PlatformError)> {
        let x = self.draw();
        if x < self.faults.transient {
            return Some((
                Reach::NotReached,
                "CONNECTION_REFUSED".to_owned(),
                PlatformError::Transient {
                    code: "CONNECTION_REFUSED".to_owned(),
                },
            ));
        }
        if x < self.faults.transient + self.faults.flood_wait {
            let seconds = self.flood_seconds();
            return Some((
                Reach::ReachedNotDelivered,
                format!("FLOOD_WAIT_{seconds}"),
                PlatformError::FloodWait {
                    seconds,
                    code: "FLOOD_WAIT".to_owned(),
                },
            ));
        }
        None
    }

    fn timeout_after(&self) -> bool {
        self.draw() < self.faults.timeout_after
    }

    /// The answer to a write that reached the person: `outcome`, or (now and then) a timeout
    /// the caller sees although the write was done.
    fn delivered(&self, outcome: Outcome) -> (Reach, String, Result<ActionResult, PlatformError>) {
        if self.timeout_after() {
            (
                Reach::Delivered,
                "TIMEOUT after delivery".to_owned(),
                Err(PlatformError::Ambiguous {
                    code: "TIMEOUT".to_owned(),
                }),
            )
        } else {
            (
                Reach::Delivered,
                "ok".to_owned(),
                Ok(ActionResult::new(outcome)),
            )
        }
    }

    async fn invite_tx(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> sqlx::Result<Result<ActionResult, PlatformError>> {
        let channel = group.channel_key();
        let person = target.person.identifier.dedupe_key();
        let call = Call {
            at: Utc::now(),
            account,
            call: CallKind::Invite,
            task: Some(target.task_id),
            channel: Some(&channel),
            person: Some(&person),
            random_id: None,
        };
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, &format!("member|{channel}|{person}")).await?;
        let (reach, answer, result) = if let Some((reach, answer, e)) = self.early_fault() {
            (reach, answer, Err(e))
        } else if self.not_found(&person) {
            (
                Reach::ReachedNotDelivered,
                "USERNAME_NOT_OCCUPIED".to_owned(),
                Err(PlatformError::Target {
                    outcome: Outcome::NotFound,
                    code: "USERNAME_NOT_OCCUPIED".to_owned(),
                }),
            )
        } else if self.member_before(&channel, &person)
            || sqlx::query(&format!(
                "SELECT 1 FROM {SCHEMA}.members WHERE channel = $1 AND person = $2"
            ))
            .bind(&channel)
            .bind(&person)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            (
                Reach::Deduplicated,
                "already_member".to_owned(),
                Ok(ActionResult::new(Outcome::AlreadyMember)),
            )
        } else if self.privacy_restricted(&person) {
            (
                Reach::ReachedNotDelivered,
                "ok, listed in missing_invitees".to_owned(),
                Ok(ActionResult {
                    outcome: Outcome::PrivacyRestricted,
                    details: serde_json::json!({ "missing_invitee": true }),
                }),
            )
        } else {
            sqlx::query(&format!(
                "INSERT INTO {SCHEMA}.members (channel, person) VALUES ($1, $2)"
            ))
            .bind(&channel)
            .bind(&person)
            .execute(&mut *tx)
            .await?;
            self.delivered(Outcome::Invited)
        };
        Self::journal(&mut tx, &call, reach, &answer).await?;
        tx.commit().await?;
        Ok(result)
    }

    async fn message_tx(
        &self,
        account: &AccountId,
        target: &Target,
        random_id: i64,
    ) -> sqlx::Result<Result<ActionResult, PlatformError>> {
        let person = target.person.identifier.dedupe_key();
        let call = Call {
            at: Utc::now(),
            account,
            call: CallKind::Message,
            task: Some(target.task_id),
            channel: None,
            person: Some(&person),
            random_id: Some(random_id),
        };
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, &format!("message|{account}|{random_id}")).await?;
        let (reach, answer, result) = if let Some((reach, answer, e)) = self.early_fault() {
            (reach, answer, Err(e))
        } else if self.not_found(&person) {
            (
                Reach::ReachedNotDelivered,
                "USERNAME_NOT_OCCUPIED".to_owned(),
                Err(PlatformError::Target {
                    outcome: Outcome::NotFound,
                    code: "USERNAME_NOT_OCCUPIED".to_owned(),
                }),
            )
        } else {
            let fresh = sqlx::query(&format!(
                "INSERT INTO {SCHEMA}.messages (account, random_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING"
            ))
            .bind(account.as_str())
            .bind(random_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                (
                    Reach::Deduplicated,
                    "RANDOM_ID_DUPLICATE, read as sent".to_owned(),
                    Ok(ActionResult {
                        outcome: Outcome::Sent,
                        details: serde_json::json!({ "deduplicated": true }),
                    }),
                )
            } else {
                self.delivered(Outcome::Sent)
            }
        };
        Self::journal(&mut tx, &call, reach, &answer).await?;
        tx.commit().await?;
        Ok(result)
    }

    async fn is_member_tx(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> sqlx::Result<bool> {
        let channel = group.channel_key();
        let person = target.person.identifier.dedupe_key();
        let call = Call {
            at: Utc::now(),
            account,
            call: CallKind::IsMember,
            task: Some(target.task_id),
            channel: Some(&channel),
            person: Some(&person),
            random_id: None,
        };
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, &format!("member|{channel}|{person}")).await?;
        let member = self.member_before(&channel, &person)
            || sqlx::query(&format!(
                "SELECT 1 FROM {SCHEMA}.members WHERE channel = $1 AND person = $2"
            ))
            .bind(&channel)
            .bind(&person)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        Self::journal(
            &mut tx,
            &call,
            Reach::ReachedNotDelivered,
            &format!("member: {member}"),
        )
        .await?;
        tx.commit().await?;
        Ok(member)
    }

    async fn add_contact_tx(&self, account: &AccountId, target: &Target) -> sqlx::Result<()> {
        let person = target.person.identifier.dedupe_key();
        let call = Call {
            at: Utc::now(),
            account,
            call: CallKind::AddContact,
            task: Some(target.task_id),
            channel: None,
            person: Some(&person),
            random_id: None,
        };
        let mut tx = self.pool.begin().await?;
        Self::journal(&mut tx, &call, Reach::Delivered, "ok").await?;
        tx.commit().await
    }
}

#[async_trait]
impl InviteStrategy for JournalPlatform {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }

    fn rate_limits(&self) -> LimitPolicy {
        self.policy
    }

    async fn initialize(&self, _account: &AccountId) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn check_invite_rights(
        &self,
        _account: &AccountId,
        _group: &GroupRef,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn invite(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<ActionResult, PlatformError> {
        self.invite_tx(account, target, group)
            .await
            .unwrap_or_else(|e| Err(Self::unavailable(&e)))
    }

    async fn send_message(
        &self,
        account: &AccountId,
        target: &Target,
        _text: &str,
        random_id: i64,
    ) -> Result<ActionResult, PlatformError> {
        self.message_tx(account, target, random_id)
            .await
            .unwrap_or_else(|e| Err(Self::unavailable(&e)))
    }

    async fn add_contact(&self, account: &AccountId, target: &Target) -> Result<(), PlatformError> {
        self.add_contact_tx(account, target)
            .await
            .map_err(|e| Self::unavailable(&e))
    }

    async fn is_member(
        &self,
        account: &AccountId,
        target: &Target,
        group: &GroupRef,
    ) -> Result<bool, PlatformError> {
        self.is_member_tx(account, target, group)
            .await
            .map_err(|e| Self::unavailable(&e))
    }

    async fn disconnect(&self, _account: &AccountId) {}
}
