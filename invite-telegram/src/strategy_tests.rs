//! The strategy's logic through the mocked seam.

use std::io;
use std::sync::{Arc, Mutex as StdMutex};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{TimeZone, Utc};
use invite_core::VirtualClock;
use invite_core::domain::{NewTarget, NormalizeOptions, TargetId, TargetStatus, TaskId};
use invite_core::testing::{Situation, StagedStrategy, strategy_contract};
use mockall::predicate::eq;

use super::*;
use crate::api::{
    DeviceFields, InviteReport, Membership, MissingInvitee, MockConnector, MockTelegramApi,
    OwnRights, OwnRole, SelfUser, SentMessage,
};
use crate::secrets::EnvSecretStore;

const API_HASH: &str = "b18441a1ff607e10a989891a5462e627";
const ME: i64 = 1000;
const ALICE: UserRef = UserRef {
    id: 42,
    access_hash: 4242,
};
const SUPERGROUP: GroupPeer = GroupPeer::Channel {
    channel: ChannelRef {
        id: 5,
        access_hash: 55,
    },
    broadcast: false,
};
const BROADCAST: GroupPeer = GroupPeer::Channel {
    channel: ChannelRef {
        id: 6,
        access_hash: 66,
    },
    broadcast: true,
};

fn key(seed: u8) -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
}

fn telethon(seed: u8) -> String {
    let mut b = vec![2u8, 149, 154, 167, 51];
    b.extend_from_slice(&443u16.to_be_bytes());
    b.extend_from_slice(&key(seed));
    format!("1{}", URL_SAFE.encode(&b))
}

fn pyrogram(api_id: u32, user_id: u64) -> String {
    let mut b = vec![2u8];
    b.extend_from_slice(&api_id.to_be_bytes());
    b.push(0);
    b.extend_from_slice(&key(1));
    b.extend_from_slice(&user_id.to_be_bytes());
    b.push(0);
    URL_SAFE_NO_PAD.encode(&b)
}

fn account() -> AccountId {
    AccountId::parse("acc-1").unwrap()
}

fn secrets(session: Option<&str>) -> EnvSecretStore {
    let mut vars = vec![
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_ID".to_owned(),
            "2040".to_owned(),
        ),
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_HASH".to_owned(),
            API_HASH.to_owned(),
        ),
    ];
    if let Some(s) = session {
        vars.push((
            EnvSecretStore::variable_name("secret/telegram/sessions/acc-1", "session_string"),
            s.to_owned(),
        ));
    }
    EnvSecretStore::from_vars(vars)
}

fn target(identifier: &str) -> Target {
    let identifier =
        TargetIdentifier::parse(identifier, Platform::Telegram, &NormalizeOptions::default())
            .unwrap();
    Target {
        id: TargetId::new(1),
        task_id: TaskId::new(1),
        person: NewTarget {
            first_name: Some("Alice".into()),
            ..NewTarget::new(identifier)
        },
        status: TargetStatus::InProgress,
        outcome: None,
        account_id: None,
        random_id: None,
        sender: None,
        invite_outcome: None,
        contact_added: false,
        attempts: 1,
        error_message: None,
        result: serde_json::Value::Null,
        claimed_at: None,
        processed_at: None,
    }
}

fn group(name: &str) -> GroupRef {
    GroupRef::parse(name).unwrap()
}

fn clock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::manual(
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
    ))
}

/// An api mock that is already connected as user `ME`.
fn api() -> MockTelegramApi {
    let mut api = MockTelegramApi::new();
    api.expect_get_me().returning(|| {
        Ok(SelfUser {
            id: ME,
            bot: false,
            username: None,
            phone: None,
        })
    });
    api.expect_disconnect().returning(|| ());
    api
}

/// Expects `@alice` to resolve `times` times.
fn resolves_alice(api: &mut MockTelegramApi, times: usize) {
    api.expect_resolve_username()
        .with(eq("alice_1"))
        .times(times)
        .returning(|_| {
            Ok(ResolvedPeer::User {
                user: ALICE,
                bot: false,
            })
        });
}

fn resolves_group(api: &mut MockTelegramApi, peer: GroupPeer) {
    api.expect_resolve_group()
        .returning(move |_| Ok(GroupLookup::Found(peer)));
}

/// Adds without an "added" update are checked: the member entry carries no date.
fn joined_without_a_date(api: &mut MockTelegramApi) {
    api.expect_membership().returning(|_, _| {
        Ok(Some(Membership {
            date: None,
            inviter_id: None,
        }))
    });
}

struct Setup {
    config: TelegramConfig,
    session: Option<String>,
    clock: Arc<VirtualClock>,
    connects: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            config: TelegramConfig::default(),
            session: Some(telethon(7)),
            clock: clock(),
            connects: 1,
        }
    }
}

impl Setup {
    async fn build(self, api: MockTelegramApi) -> TelegramStrategy {
        let api: Arc<dyn TelegramApi> = Arc::new(api);
        let mut connector = MockConnector::new();
        connector
            .expect_connect()
            .with(mockall::predicate::always(), eq(2040))
            .times(self.connects)
            .returning(move |_, _| Ok(Arc::clone(&api)));
        TelegramStrategy::new(
            self.config,
            Arc::new(secrets(self.session.as_deref())),
            Arc::new(connector),
            self.clock,
        )
        .await
        .unwrap()
    }
}

async fn strategy(api: MockTelegramApi) -> TelegramStrategy {
    Setup::default().build(api).await
}

fn rpc(code: i32, name: &str) -> ApiError {
    ApiError::rpc(code, name, None)
}

#[tokio::test]
async fn invite_success_and_the_resolution_cache() {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    resolves_alice(&mut api, 1);
    api.expect_invite_to_channel()
        .with(
            eq(ChannelRef {
                id: 5,
                access_hash: 55,
            }),
            eq(ALICE),
        )
        .times(2)
        .returning(|_, _| {
            Ok(InviteReport {
                missing: vec![],
                confirmed_by_update: true,
            })
        });
    let s = strategy(api).await;
    s.initialize(&account()).await.unwrap();
    for _ in 0..2 {
        let r = s
            .invite(&account(), &target("@alice_1"), &group("@mygroup"))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Invited);
        assert_eq!(r.details["confirmed_by_update"], true);
    }
    assert_eq!(s.platform(), Platform::Telegram);
    assert_eq!(s.rate_limits(), LimitPolicy::telegram());
}

#[tokio::test]
async fn missing_invitees_are_privacy_restricted_never_invited() {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    resolves_alice(&mut api, 1);
    api.expect_invite_to_channel().returning(|_, _| {
        Ok(InviteReport {
            missing: vec![MissingInvitee {
                user_id: ALICE.id,
                premium_would_allow_invite: true,
                premium_required_for_pm: false,
            }],
            confirmed_by_update: false,
        })
    });
    let s = strategy(api).await;
    let r = s
        .invite(&account(), &target("@alice_1"), &group("@mygroup"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::PrivacyRestricted);
    assert!(!r.outcome.is_invited());
    assert_eq!(r.details["premium_would_allow_invite"], true);
    assert_eq!(r.details["premium_required_for_pm"], false);
}

#[tokio::test]
async fn already_participant_is_already_member() {
    let mut api = api();
    resolves_group(&mut api, GroupPeer::Chat { id: 77 });
    resolves_alice(&mut api, 1);
    api.expect_add_chat_user()
        .with(eq(77), eq(ALICE))
        .returning(|_, _| Err(rpc(400, "USER_ALREADY_PARTICIPANT")));
    let s = strategy(api).await;
    let r = s
        .invite(&account(), &target("@alice_1"), &group("-77"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::AlreadyMember);
}

#[tokio::test]
async fn invite_errors_come_back_classified() {
    let cases: Vec<(ApiError, PlatformError)> = vec![
        (
            rpc(403, "USER_PRIVACY_RESTRICTED"),
            target_error(Outcome::PrivacyRestricted, "USER_PRIVACY_RESTRICTED"),
        ),
        (
            ApiError::rpc(420, "FLOOD_WAIT", Some(31)),
            PlatformError::FloodWait {
                seconds: 31,
                code: "FLOOD_WAIT".into(),
            },
        ),
        (
            rpc(400, "PEER_FLOOD"),
            PlatformError::AccountRestricted {
                code: "PEER_FLOOD".into(),
            },
        ),
        (
            rpc(403, "CHAT_ADMIN_REQUIRED"),
            PlatformError::Group {
                code: "CHAT_ADMIN_REQUIRED".into(),
                account_only: true,
            },
        ),
        (
            rpc(500, "RPC_CALL_FAIL"),
            PlatformError::Ambiguous {
                code: "RPC_CALL_FAIL".into(),
            },
        ),
        (
            ApiError::Io(io::ErrorKind::ConnectionRefused),
            PlatformError::Transient {
                code: "IO_CONNECTION_REFUSED".into(),
            },
        ),
        (
            ApiError::Io(io::ErrorKind::ConnectionReset),
            PlatformError::Ambiguous {
                code: "IO_CONNECTION_RESET".into(),
            },
        ),
        (
            rpc(400, "SOMETHING_NEW"),
            PlatformError::Unknown {
                code: "SOMETHING_NEW".into(),
                message: "Telegram error 400 SOMETHING_NEW".into(),
            },
        ),
    ];
    for (error, want) in cases {
        let mut api = api();
        resolves_group(&mut api, SUPERGROUP);
        resolves_alice(&mut api, 1);
        let e = error.clone();
        api.expect_invite_to_channel()
            .times(1)
            .returning(move |_, _| Err(e.clone()));
        let s = strategy(api).await;
        let got = s
            .invite(&account(), &target("@alice_1"), &group("@mygroup"))
            .await
            .unwrap_err();
        assert_eq!(got, want, "{error}");
    }
}

/// An api whose `get_me` answers these, in order.
fn api_with_get_me(answers: Vec<Result<SelfUser, ApiError>>) -> MockTelegramApi {
    let mut api = MockTelegramApi::new();
    let mut seq = mockall::Sequence::new();
    for answer in answers {
        api.expect_get_me()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move || answer.clone());
    }
    api.expect_disconnect().returning(|| ());
    api
}

fn me() -> Result<SelfUser, ApiError> {
    Ok(SelfUser {
        id: ME,
        bot: false,
        username: None,
        phone: None,
    })
}

#[tokio::test]
async fn a_401_confirmed_after_a_delay_marks_the_account_dead_until_its_session_changes() {
    let mut api = api_with_get_me(vec![me(), Err(rpc(401, "AUTH_KEY_UNREGISTERED"))]);
    resolves_group(&mut api, SUPERGROUP);
    resolves_alice(&mut api, 1);
    api.expect_invite_to_channel()
        .times(1)
        .returning(|_, _| Err(rpc(401, "AUTH_KEY_UNREGISTERED")));
    // Two connections: the first 401 is confirmed on a new one; after that nothing reaches
    // Telegram again.
    let s = Setup {
        connects: 2,
        ..Setup::default()
    }
    .build(api)
    .await;
    let err = s
        .invite(&account(), &target("@alice_1"), &group("@mygroup"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::FloodWait {
            seconds: 60,
            code: "AUTH_KEY_UNREGISTERED".into()
        }
    );
    assert_eq!(
        s.initialize(&account()).await.unwrap_err(),
        dead("AUTH_KEY_UNREGISTERED")
    );
    for _ in 0..2 {
        assert_eq!(
            s.initialize(&account()).await.unwrap_err(),
            dead("AUTH_KEY_UNREGISTERED")
        );
        assert_eq!(
            s.invite(&account(), &target("@alice_1"), &group("@mygroup"))
                .await
                .unwrap_err()
                .class(),
            ErrorClass::AccountDead
        );
    }
}

#[tokio::test]
async fn a_single_401_or_unknown_key_that_does_not_recur_leaves_the_account_alive() {
    for first in [rpc(401, "SESSION_REVOKED"), ApiError::TransportStatus(404)] {
        // Two 401s on different connections, each after a working one: neither is confirmed.
        let mut api = api_with_get_me(vec![me(), me()]);
        resolves_group(&mut api, SUPERGROUP);
        joined_without_a_date(&mut api);
        resolves_alice(&mut api, 1);
        let mut seq = mockall::Sequence::new();
        let e = first.clone();
        api.expect_invite_to_channel()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Err(e.clone()));
        api.expect_invite_to_channel()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(InviteReport::default()));
        let e = first.clone();
        api.expect_invite_to_channel()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Err(e.clone()));
        let s = Setup {
            connects: 2,
            ..Setup::default()
        }
        .build(api)
        .await;
        let (t, g) = (target("@alice_1"), group("@mygroup"));
        let err = s.invite(&account(), &t, &g).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::AccountTemporary, "{first}");
        assert_eq!(
            s.invite(&account(), &t, &g).await.unwrap().outcome,
            Outcome::Invited
        );
        let err = s.invite(&account(), &t, &g).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::AccountTemporary, "{first}");
    }
}

#[tokio::test]
async fn frozen_accounts_are_dead_not_waiting() {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    resolves_alice(&mut api, 1);
    api.expect_invite_to_channel()
        .returning(|_, _| Err(rpc(420, "FROZEN_METHOD_INVALID")));
    let s = strategy(api).await;
    let err = s
        .invite(&account(), &target("@alice_1"), &group("@mygroup"))
        .await
        .unwrap_err();
    assert_eq!(err, dead("FROZEN_METHOD_INVALID"));
}

#[tokio::test]
async fn broadcast_channels_past_200_members_are_not_invited_into() {
    let mut api = api();
    resolves_group(&mut api, BROADCAST);
    joined_without_a_date(&mut api);
    resolves_alice(&mut api, 1);
    api.expect_member_count().returning(|_| Ok(Some(200)));
    api.expect_invite_to_channel().times(0);
    let s = strategy(api).await;
    let err = s
        .invite(&account(), &target("@alice_1"), &group("@mychannel"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::Group {
            code: "BROADCAST_MEMBER_LIMIT".into(),
            account_only: false,
        }
    );

    // The count is read once, then counted up with each add: 198, 199, then full.
    let mut api = self::api();
    resolves_group(&mut api, BROADCAST);
    joined_without_a_date(&mut api);
    resolves_alice(&mut api, 1);
    api.expect_member_count()
        .times(1)
        .returning(|_| Ok(Some(198)));
    api.expect_invite_to_channel()
        .times(2)
        .returning(|_, _| Ok(InviteReport::default()));
    let s = strategy(api).await;
    for _ in 0..2 {
        let r = s
            .invite(&account(), &target("@alice_1"), &group("@mychannel"))
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Invited);
    }
    let err = s
        .invite(&account(), &target("@alice_1"), &group("@mychannel"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BROADCAST_MEMBER_LIMIT");
}

#[tokio::test]
async fn invite_rights_check() {
    let cases = [
        (OwnRole::Creator, false, true),
        (OwnRole::Admin { invite_users: true }, false, true),
        (
            OwnRole::Admin {
                invite_users: false,
            },
            false,
            false,
        ),
        (OwnRole::Member, true, true),
        (OwnRole::Member, false, false),
        (OwnRole::NotMember, true, false),
        (OwnRole::Banned, true, false),
    ];
    for (role, members_may_invite, ok) in cases {
        let mut api = api();
        resolves_group(&mut api, SUPERGROUP);
        api.expect_own_rights()
            .with(eq(SUPERGROUP))
            .returning(move |_| {
                Ok(OwnRights {
                    role,
                    members_may_invite,
                })
            });
        let s = strategy(api).await;
        let got = s.check_invite_rights(&account(), &group("@mygroup")).await;
        if ok {
            got.unwrap();
        } else {
            assert_eq!(
                got.unwrap_err(),
                PlatformError::Group {
                    code: "NO_INVITE_RIGHTS".into(),
                    account_only: true,
                },
                "{role:?}"
            );
        }
    }
}

#[tokio::test]
async fn rights_check_also_guards_full_broadcast_channels_and_foreign_links() {
    let mut api = api();
    resolves_group(&mut api, BROADCAST);
    api.expect_own_rights().returning(|_| {
        Ok(OwnRights {
            role: OwnRole::Creator,
            members_may_invite: false,
        })
    });
    api.expect_member_count().returning(|_| Ok(Some(250)));
    let s = strategy(api).await;
    let err = s
        .check_invite_rights(&account(), &group("@mychannel"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BROADCAST_MEMBER_LIMIT");

    let mut api = self::api();
    api.expect_resolve_group()
        .returning(|_| Ok(GroupLookup::NotMember));
    let s = strategy(api).await;
    let err = s
        .check_invite_rights(&account(), &group("https://t.me/+AbCdEf"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::Group {
            code: "NOT_A_MEMBER".into(),
            account_only: true
        }
    );
}

#[tokio::test]
async fn a_retried_message_reuses_its_random_id_and_a_duplicate_means_sent() {
    let mut api = api();
    resolves_alice(&mut api, 1);
    let mut seq = mockall::Sequence::new();
    api.expect_send_message()
        .with(eq(ALICE), eq("Hi Alice"), eq(8_675_309))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(rpc(500, "RPC_CALL_FAIL")));
    api.expect_send_message()
        .with(eq(ALICE), eq("Hi Alice"), eq(8_675_309))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(rpc(500, "RANDOM_ID_DUPLICATE")));
    let s = strategy(api).await;
    let t = target("@alice_1");
    let first = s
        .send_message(&account(), &t, "Hi Alice", 8_675_309)
        .await
        .unwrap_err();
    assert_eq!(first.class(), ErrorClass::Ambiguous);
    let second = s
        .send_message(&account(), &t, "Hi Alice", 8_675_309)
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::Sent);
    assert_eq!(second.details["deduplicated"], true);
}

#[tokio::test]
async fn a_sent_message_reports_its_id() {
    let mut api = api();
    resolves_alice(&mut api, 1);
    api.expect_send_message().returning(|_, _, _| {
        Ok(SentMessage {
            message_id: Some(31),
        })
    });
    let s = strategy(api).await;
    let r = s
        .send_message(&account(), &target("@alice_1"), "Hi", 5)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.details["message_id"], 31);
}

/// A seam whose writes never answer.
#[derive(Debug)]
struct Silent;

#[async_trait]
impl TelegramApi for Silent {
    async fn get_me(&self) -> Result<SelfUser, ApiError> {
        Ok(SelfUser {
            id: ME,
            bot: false,
            username: None,
            phone: None,
        })
    }
    async fn resolve_username(&self, _: &str) -> Result<ResolvedPeer, ApiError> {
        Ok(ResolvedPeer::User {
            user: ALICE,
            bot: false,
        })
    }
    async fn import_phone(&self, _: &str, _: &str, _: &str) -> Result<PhoneLookup, ApiError> {
        std::future::pending().await
    }
    async fn resolve_group(&self, _: &GroupRef) -> Result<GroupLookup, ApiError> {
        Ok(GroupLookup::Found(SUPERGROUP))
    }
    async fn invite_to_channel(&self, _: ChannelRef, _: UserRef) -> Result<InviteReport, ApiError> {
        std::future::pending().await
    }
    async fn add_chat_user(&self, _: i64, _: UserRef) -> Result<InviteReport, ApiError> {
        std::future::pending().await
    }
    async fn send_message(&self, _: UserRef, _: &str, _: i64) -> Result<SentMessage, ApiError> {
        std::future::pending().await
    }
    async fn add_contact(&self, _: UserRef, _: &str, _: &str) -> Result<(), ApiError> {
        std::future::pending().await
    }
    async fn own_rights(&self, _: GroupPeer) -> Result<OwnRights, ApiError> {
        std::future::pending().await
    }
    async fn member_count(&self, _: ChannelRef) -> Result<Option<i32>, ApiError> {
        std::future::pending().await
    }
    async fn is_participant(&self, _: GroupPeer, _: UserRef) -> Result<bool, ApiError> {
        std::future::pending().await
    }
    async fn membership(&self, _: ChannelRef, _: UserRef) -> Result<Option<Membership>, ApiError> {
        std::future::pending().await
    }
    async fn delete_contact(&self, _: UserRef) -> Result<(), ApiError> {
        std::future::pending().await
    }
    async fn disconnect(&self) {}
}

#[derive(Debug)]
struct SilentConnector;

#[async_trait]
impl Connector for SilentConnector {
    async fn connect(&self, _: &SessionString, _: i32) -> Result<Arc<dyn TelegramApi>, ApiError> {
        Ok(Arc::new(Silent))
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_without_answer_times_out_as_ambiguous_for_writes_transient_for_reads() {
    let s = TelegramStrategy::new(
        TelegramConfig::default(),
        Arc::new(secrets(Some(&telethon(7)))),
        Arc::new(SilentConnector),
        clock(),
    )
    .await
    .unwrap();
    let t = target("@alice_1");
    let g = group("@mygroup");
    let code = || "CALL_TIMEOUT".to_owned();
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap_err(),
        PlatformError::Ambiguous { code: code() }
    );
    assert_eq!(
        s.send_message(&account(), &t, "Hi", 1).await.unwrap_err(),
        PlatformError::Ambiguous { code: code() }
    );
    assert_eq!(
        s.is_member(&account(), &t, &g).await.unwrap_err(),
        PlatformError::Transient { code: code() }
    );
    assert_eq!(
        s.check_invite_rights(&account(), &g).await.unwrap_err(),
        PlatformError::Transient { code: code() }
    );
}

#[tokio::test]
async fn username_resolutions_have_a_rolling_daily_budget() {
    let mut api = api();
    api.expect_resolve_username().times(3).returning(|name| {
        let id = name.len() as i64;
        Ok(ResolvedPeer::User {
            user: UserRef {
                id,
                access_hash: id * 10,
            },
            bot: false,
        })
    });
    api.expect_is_participant().returning(|_, _| Ok(true));
    resolves_group(&mut api, SUPERGROUP);
    let setup = Setup {
        config: TelegramConfig {
            resolve_budget_per_day: 3,
            ..TelegramConfig::default()
        },
        ..Setup::default()
    };
    let clock = Arc::clone(&setup.clock);
    let s = setup.build(api).await;
    // The group's @name takes one resolution, two people take the rest.
    let g = group("@mygroup");
    s.is_member(&account(), &target("@alice_1"), &g)
        .await
        .unwrap();
    s.is_member(&account(), &target("@bobby_22"), &g)
        .await
        .unwrap();
    // Cached: free.
    s.is_member(&account(), &target("@alice_1"), &g)
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(1));
    let err = s
        .is_member(&account(), &target("@carol_333"), &g)
        .await
        .unwrap_err();
    let PlatformError::FloodWait { seconds, code } = err else {
        panic!("{err:?}");
    };
    assert_eq!(code, "RESOLVE_BUDGET_EXHAUSTED");
    assert_eq!(seconds, 23 * 3600);
    // A day after the first resolution, a slot is free again.
    clock.advance(TimeDelta::hours(23));
    s.is_member(&account(), &target("@carol_333"), &g)
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_usernames_are_remembered_and_not_resolved_twice() {
    let mut api = api();
    api.expect_resolve_username()
        .times(1)
        .returning(|_| Err(rpc(400, "USERNAME_NOT_OCCUPIED")));
    let s = strategy(api).await;
    for _ in 0..2 {
        let err = s
            .send_message(&account(), &target("@ghost_user"), "Hi", 1)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            target_error(Outcome::NotFound, "USERNAME_NOT_OCCUPIED")
        );
    }
}

#[tokio::test]
async fn a_rejected_cached_access_hash_is_resolved_again_once() {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    joined_without_a_date(&mut api);
    resolves_alice(&mut api, 2);
    let mut seq = mockall::Sequence::new();
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(InviteReport::default()));
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(rpc(400, "USER_ID_INVALID")));
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(InviteReport::default()));
    let s = strategy(api).await;
    let t = target("@alice_1");
    let g = group("@mygroup");
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap().outcome,
        Outcome::Invited
    );
    // Second time: the cached hash is refused, resolved afresh, then the invite goes through.
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap().outcome,
        Outcome::Invited
    );
}

#[tokio::test]
async fn phones_are_resolved_by_importing_a_contact() {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    joined_without_a_date(&mut api);
    api.expect_import_phone()
        .with(eq("+79161234567"), eq("Alice"), eq(""))
        .times(1)
        .returning(|_, _, _| Ok(PhoneLookup::Found(ALICE)));
    api.expect_import_phone()
        .with(
            eq("+79160000000"),
            mockall::predicate::always(),
            mockall::predicate::always(),
        )
        .returning(|_, _, _| Ok(PhoneLookup::NotFound));
    api.expect_import_phone()
        .with(
            eq("+79169999999"),
            mockall::predicate::always(),
            mockall::predicate::always(),
        )
        .returning(|_, _, _| Ok(PhoneLookup::RetryLater));
    api.expect_invite_to_channel()
        .with(mockall::predicate::always(), eq(ALICE))
        .returning(|_, _| Ok(InviteReport::default()));
    // The import is undone at once; adding the person as a contact is a call of its own.
    api.expect_delete_contact()
        .with(eq(ALICE))
        .times(1)
        .returning(|_| Ok(()));
    api.expect_add_contact()
        .with(eq(ALICE), eq("Alice"), eq(""))
        .times(1)
        .returning(|_, _, _| Ok(()));
    let s = strategy(api).await;
    let g = group("@mygroup");
    let found = target("+79161234567");
    assert_eq!(
        s.invite(&account(), &found, &g).await.unwrap().outcome,
        Outcome::Invited
    );
    s.add_contact(&account(), &found).await.unwrap();
    assert_eq!(
        s.invite(&account(), &target("+79160000000"), &g)
            .await
            .unwrap_err(),
        target_error(Outcome::NotFound, "PHONE_NOT_ON_TELEGRAM")
    );
    let later = s
        .invite(&account(), &target("+79169999999"), &g)
        .await
        .unwrap_err();
    assert_eq!(later.class(), ErrorClass::AccountTemporary);
}

#[tokio::test]
async fn add_contact_and_membership() {
    let mut api = api();
    resolves_alice(&mut api, 1);
    resolves_group(&mut api, SUPERGROUP);
    api.expect_add_contact()
        .with(eq(ALICE), eq("Alice"), eq(""))
        .times(1)
        .returning(|_, _, _| Ok(()));
    api.expect_is_participant()
        .with(eq(SUPERGROUP), eq(ALICE))
        .returning(|_, _| Ok(false));
    let s = strategy(api).await;
    let t = target("@alice_1");
    s.add_contact(&account(), &t).await.unwrap();
    assert!(
        !s.is_member(&account(), &t, &group("@mygroup"))
            .await
            .unwrap()
    );
    s.disconnect(&account()).await;
}

#[tokio::test]
async fn numeric_targets_use_a_hash_this_account_resolved() {
    let mut api = api();
    resolves_alice(&mut api, 1);
    resolves_group(&mut api, SUPERGROUP);
    api.expect_is_participant().returning(|_, _| Ok(true));
    api.expect_send_message()
        .with(
            eq(ALICE),
            mockall::predicate::always(),
            mockall::predicate::always(),
        )
        .times(1)
        .returning(|_, _, _| Ok(SentMessage::default()));
    api.expect_send_message()
        .with(
            eq(UserRef {
                id: 7,
                access_hash: 0,
            }),
            mockall::predicate::always(),
            mockall::predicate::always(),
        )
        .times(1)
        .returning(|_, _, _| Err(rpc(400, "PEER_ID_INVALID")));
    let s = strategy(api).await;
    s.is_member(&account(), &target("@alice_1"), &group("@mygroup"))
        .await
        .unwrap();
    s.send_message(&account(), &target("42"), "Hi", 1)
        .await
        .unwrap();
    // Without a hash of its own, this account cannot address user 7: transient (another
    // account may, with its hash), and remembered so this account does not ask again.
    for random_id in [2, 3] {
        assert_eq!(
            s.send_message(&account(), &target("7"), "Hi", random_id)
                .await
                .unwrap_err(),
            PlatformError::Transient {
                code: "PEER_ID_INVALID".to_owned()
            }
        );
    }
}

/// A group id this account holds no hash for is a problem of this account only.
#[tokio::test]
async fn a_refused_group_handle_closes_only_this_accounts_lane() {
    let mut api = api();
    api.expect_resolve_group()
        .times(1)
        .returning(|_| Err(rpc(400, "CHANNEL_INVALID")));
    let s = strategy(api).await;
    let err = s
        .check_invite_rights(&account(), &group("-1001234567890"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::Group {
            code: "CHANNEL_INVALID".to_owned(),
            account_only: true
        }
    );
}

#[tokio::test]
async fn bad_sessions_refuse_the_account_without_connecting() {
    for (session, code) in [
        (None, "SESSION_MISSING"),
        (
            Some("1BVtsOHkBu3RBHc2lhbG9u-not-a-session".to_owned()),
            "SESSION_INVALID",
        ),
        // A Pyrogram session made with another api_id.
        (Some(pyrogram(9999, ME as u64)), "API_ID_MISMATCH"),
    ] {
        let setup = Setup {
            session: session.clone(),
            connects: 0,
            ..Setup::default()
        };
        let s = setup.build(MockTelegramApi::new()).await;
        let err = s.initialize(&account()).await.unwrap_err();
        assert_eq!(err, dead(code));
        if let Some(session) = session {
            assert!(!err.to_string().contains(&session[..20]));
        }
    }
}

#[tokio::test]
async fn bot_accounts_and_foreign_sessions_are_refused_after_connecting() {
    let mut bot = MockTelegramApi::new();
    bot.expect_get_me().returning(|| {
        Ok(SelfUser {
            id: ME,
            bot: true,
            username: None,
            phone: None,
        })
    });
    bot.expect_disconnect().times(1..).returning(|| ());
    let s = strategy(bot).await;
    assert_eq!(
        s.initialize(&account()).await.unwrap_err(),
        dead("BOT_ACCOUNT")
    );

    // The Pyrogram session names user 555, but Telegram says we are ME.
    let setup = Setup {
        session: Some(pyrogram(2040, 555)),
        ..Setup::default()
    };
    let s = setup.build(api()).await;
    assert_eq!(
        s.initialize(&account()).await.unwrap_err(),
        dead("SESSION_USER_MISMATCH")
    );
    // A Pyrogram session of the right user and api_id is accepted.
    let setup = Setup {
        session: Some(pyrogram(2040, ME as u64)),
        ..Setup::default()
    };
    setup
        .build(api())
        .await
        .initialize(&account())
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_api_credentials_fail_at_start() {
    let err = TelegramStrategy::new(
        TelegramConfig::default(),
        Arc::new(EnvSecretStore::default()),
        Arc::new(MockConnector::new()),
        clock(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Secret(SecretError::NotFound { .. })));
    let bad = EnvSecretStore::from_vars([(
        "SECRET_TELEGRAM_API_CREDENTIALS__API_ID".to_owned(),
        "abc".to_owned(),
    )]);
    let err = TelegramStrategy::new(
        TelegramConfig::default(),
        Arc::new(bad),
        Arc::new(MockConnector::new()),
        clock(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidApiId { .. }));
}

/// Captures what the crate logs.
#[derive(Clone, Default)]
struct Captured(Arc<StdMutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_and_phones_never_reach_logs_errors_or_debug() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let session = telethon(7);
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    api.expect_import_phone()
        .returning(|_, _, _| Ok(PhoneLookup::Found(ALICE)));
    api.expect_delete_contact()
        .returning(|_| Err(rpc(400, "CONTACT_ID_INVALID")));
    api.expect_invite_to_channel()
        .returning(|_, _| Err(rpc(401, "SESSION_REVOKED")));
    // The 401 is confirmed on a second connection.
    let s = Setup {
        connects: 2,
        ..Setup::default()
    }
    .build(api)
    .await;
    let phone = "+79161234567";
    let mut texts = vec![format!("{s:?}")];
    let err = s
        .invite(&account(), &target(phone), &group("@mygroup"))
        .await
        .unwrap_err();
    texts.push(format!("{err} {err:?}"));
    texts.push(format!("{:?}", s.initialize(&account()).await));

    // An unreadable session is logged as refused, without its text.
    let broken = format!("{}!", &session[..352]);
    let setup = Setup {
        session: Some(broken.clone()),
        connects: 0,
        ..Setup::default()
    };
    let s2 = setup.build(MockTelegramApi::new()).await;
    texts.push(format!("{:?}", s2.initialize(&account()).await));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("SESSION_REVOKED"),
        "the death is logged: {logs}"
    );
    assert!(logs.contains("refused"), "{logs}");
    texts.push(logs);
    let key_hex: String = key(7).iter().map(|b| format!("{b:02x}")).collect();
    for text in &texts {
        for secret in [
            &session[1..40],
            &broken[1..40],
            API_HASH,
            phone,
            &phone[1..],
            &key_hex[..32],
        ] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}

#[test]
fn invite_outcome_prefers_the_targets_missing_entry() {
    let report = InviteReport {
        missing: vec![
            MissingInvitee {
                user_id: 1,
                premium_would_allow_invite: false,
                premium_required_for_pm: false,
            },
            MissingInvitee {
                user_id: 42,
                premium_would_allow_invite: false,
                premium_required_for_pm: true,
            },
        ],
        confirmed_by_update: false,
    };
    let r = invite_outcome(&report, 42);
    assert_eq!(r.outcome, Outcome::PrivacyRestricted);
    assert_eq!(r.details["premium_required_for_pm"], true);
    let ok = invite_outcome(&InviteReport::default(), 42);
    assert_eq!(ok.outcome, Outcome::Invited);
    assert_eq!(ok.details["confirmed_by_update"], false);
}

/// A client whose runner is gone is not reused: the next call builds a new one. A request the
/// runner never took is not charged; one it dropped after taking it may have left.
#[tokio::test]
async fn a_dead_runner_is_replaced_and_dropped_before_send_is_not_charged() {
    let mut api = api_with_get_me(vec![me(), me(), me()]);
    resolves_group(&mut api, SUPERGROUP);
    joined_without_a_date(&mut api);
    // Resolutions belong to the account, not the connection: kept across clients.
    resolves_alice(&mut api, 1);
    let mut seq = mockall::Sequence::new();
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(ApiError::Dropped));
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(ApiError::Dropped.not_sent()));
    api.expect_invite_to_channel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(InviteReport::default()));
    let s = Setup {
        connects: 3,
        ..Setup::default()
    }
    .build(api)
    .await;
    let (t, g) = (target("@alice_1"), group("@mygroup"));
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap_err(),
        PlatformError::Ambiguous {
            code: "REQUEST_DROPPED".into()
        }
    );
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap_err(),
        PlatformError::Transient {
            code: "REQUEST_DROPPED".into()
        }
    );
    assert_eq!(
        s.invite(&account(), &t, &g).await.unwrap().outcome,
        Outcome::Invited
    );
}

/// `inviteToChannel` can succeed without adding anyone when the person is already in the
/// supergroup: with no "added" update, their membership entry decides.
#[tokio::test]
async fn an_add_without_an_update_is_checked_against_the_membership_entry() {
    let now = clock().now().timestamp();
    type Answer = Result<Option<Membership>, ApiError>;
    let cases: Vec<(Answer, Outcome, &str)> = vec![
        (
            Ok(Some(Membership {
                date: Some(now - 86_400),
                inviter_id: None,
            })),
            Outcome::AlreadyMember,
            "joined the day before",
        ),
        (
            Ok(Some(Membership {
                date: Some(now),
                inviter_id: Some(77),
            })),
            Outcome::AlreadyMember,
            "added by someone else",
        ),
        (
            Ok(Some(Membership {
                date: Some(now),
                inviter_id: Some(ME),
            })),
            Outcome::Invited,
            "added by us just now",
        ),
        (
            Ok(Some(Membership {
                date: Some(now + 30),
                inviter_id: None,
            })),
            Outcome::Invited,
            "joined just now",
        ),
        // The invite was answered: a failed check never turns it into an error (a retry
        // would spend another invite, a refund would hide one).
        (
            Err(rpc(500, "RPC_CALL_FAIL")),
            Outcome::Invited,
            "check failed",
        ),
        (Ok(None), Outcome::Invited, "not found"),
    ];
    for (answer, want, case) in cases {
        let mut api = api();
        resolves_group(&mut api, SUPERGROUP);
        resolves_alice(&mut api, 1);
        api.expect_invite_to_channel()
            .times(1)
            .returning(|_, _| Ok(InviteReport::default()));
        api.expect_membership()
            .with(
                eq(ChannelRef {
                    id: 5,
                    access_hash: 55,
                }),
                eq(ALICE),
            )
            .times(1)
            .returning(move |_, _| answer.clone());
        let s = strategy(api).await;
        let r = s
            .invite(&account(), &target("@alice_1"), &group("@mygroup"))
            .await
            .unwrap();
        assert_eq!(r.outcome, want, "{case}: {}", r.details);
    }
    // Confirmed by the service message: no check.
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    resolves_alice(&mut api, 1);
    api.expect_invite_to_channel().returning(|_, _| {
        Ok(InviteReport {
            missing: vec![],
            confirmed_by_update: true,
        })
    });
    api.expect_membership().times(0);
    let s = strategy(api).await;
    assert_eq!(
        s.invite(&account(), &target("@alice_1"), &group("@mygroup"))
            .await
            .unwrap()
            .outcome,
        Outcome::Invited
    );
}

/// Phone imports spend a daily budget of their own, per account; the contacts they create are
/// deleted as soon as the person is resolved.
#[tokio::test]
async fn phone_imports_have_a_rolling_daily_budget_and_leave_no_contact() {
    let mut api = api();
    api.expect_import_phone().times(2).returning(|phone, _, _| {
        Ok(PhoneLookup::Found(UserRef {
            id: phone.len() as i64 + phone.ends_with('1') as i64,
            access_hash: 9,
        }))
    });
    // A failed delete does not fail the resolution.
    let mut seq = mockall::Sequence::new();
    api.expect_delete_contact()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    api.expect_delete_contact()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(rpc(500, "RPC_CALL_FAIL")));
    api.expect_send_message()
        .returning(|_, _, _| Ok(SentMessage::default()));
    let setup = Setup {
        config: TelegramConfig {
            import_budget_per_day: 2,
            ..TelegramConfig::default()
        },
        ..Setup::default()
    };
    let clock = Arc::clone(&setup.clock);
    let s = setup.build(api).await;
    for phone in ["+79161234561", "+79161234562"] {
        s.send_message(&account(), &target(phone), "Hi", 1)
            .await
            .unwrap();
    }
    // Resolved already: free.
    s.send_message(&account(), &target("+79161234561"), "Hi", 2)
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(2));
    let err = s
        .send_message(&account(), &target("+79161234563"), "Hi", 3)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PlatformError::FloodWait {
            seconds: 22 * 3600,
            code: "IMPORT_BUDGET_EXHAUSTED".into()
        }
    );
}

/// With a registry, what an account resolved and what it spent survive a restart: the second
/// strategy (a new process) resolves nothing again and counts the earlier uses.
#[tokio::test]
async fn resolutions_and_budgets_are_kept_across_a_restart() {
    let registry: Arc<dyn AccountRegistry> = Arc::new(invite_core::memory::MemoryRegistry::new());
    let clock = clock();
    let config = TelegramConfig {
        resolve_budget_per_day: 3,
        import_budget_per_day: 1,
        ..TelegramConfig::default()
    };
    let phone = "+79161234567";
    let mut first = api();
    resolves_group(&mut first, SUPERGROUP);
    resolves_alice(&mut first, 1);
    first.expect_import_phone().times(1).returning(|_, _, _| {
        Ok(PhoneLookup::Found(UserRef {
            id: 77,
            access_hash: 7,
        }))
    });
    first.expect_delete_contact().returning(|_| Ok(()));
    first.expect_is_participant().returning(|_, _| Ok(false));
    let s = Setup {
        config: config.clone(),
        clock: Arc::clone(&clock),
        ..Setup::default()
    }
    .build(first)
    .await
    .with_resolutions(Arc::clone(&registry));
    let g = group("@mygroup");
    for t in ["@alice_1", phone] {
        s.is_member(&account(), &target(t), &g).await.unwrap();
    }
    drop(s);

    // A new process: nothing is resolved or imported again.
    let mut second = api();
    resolves_group(&mut second, SUPERGROUP);
    second.expect_resolve_username().times(0);
    second.expect_import_phone().times(0);
    second
        .expect_is_participant()
        .with(eq(SUPERGROUP), eq(ALICE))
        .returning(|_, _| Ok(true));
    second
        .expect_is_participant()
        .with(
            eq(SUPERGROUP),
            eq(UserRef {
                id: 77,
                access_hash: 7,
            }),
        )
        .returning(|_, _| Ok(true));
    let s = Setup {
        config,
        clock: Arc::clone(&clock),
        ..Setup::default()
    }
    .build(second)
    .await
    .with_resolutions(Arc::clone(&registry));
    for t in ["@alice_1", phone] {
        assert!(s.is_member(&account(), &target(t), &g).await.unwrap());
    }
    // The import budget of one was spent before the restart.
    let err = s
        .is_member(&account(), &target("+79160000000"), &g)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "IMPORT_BUDGET_EXHAUSTED");
    // @alice_1 once, the group's name once per process (groups are resolved afresh).
    assert_eq!(
        registry
            .spends_since(&account(), "resolve", clock.now() - TimeDelta::hours(24))
            .await
            .unwrap()
            .len(),
        3
    );
}

/// An account whose secrets carry the device its login was made on is connected presenting
/// that device; one without keeps the connector's defaults.
#[tokio::test]
async fn an_accounts_own_device_is_presented_when_its_secrets_carry_one() {
    let path = "secret/telegram/sessions/acc-1";
    let mut vars = vec![
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_ID".to_owned(),
            "2040".to_owned(),
        ),
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_HASH".to_owned(),
            API_HASH.to_owned(),
        ),
        (
            EnvSecretStore::variable_name(path, "session_string"),
            telethon(7),
        ),
    ];
    for (key, value) in [
        ("device_model", "Pixel 7"),
        ("system_version", "Android 14"),
        ("lang_code", "ru"),
    ] {
        vars.push((EnvSecretStore::variable_name(path, key), value.to_owned()));
    }
    let api: Arc<dyn TelegramApi> = Arc::new(api());
    let mut connector = MockConnector::new();
    connector.expect_connect().times(0);
    connector
        .expect_connect_as()
        .withf(|_, api_id, device| {
            *api_id == 2040
                && *device
                    == DeviceFields {
                        device_model: Some("Pixel 7".into()),
                        system_version: Some("Android 14".into()),
                        app_version: None,
                        system_lang_code: None,
                        lang_code: Some("ru".into()),
                    }
        })
        .times(1)
        .returning(move |_, _, _| Ok(Arc::clone(&api)));
    let s = TelegramStrategy::new(
        TelegramConfig::default(),
        Arc::new(EnvSecretStore::from_vars(vars)),
        Arc::new(connector),
        clock(),
    )
    .await
    .unwrap();
    let r = s.initialize(&account()).await;
    assert!(r.is_ok(), "{r:?}");
}

/// The mocked API answering as `situation` asks, for the conformance suite.
fn staged_api(situation: Situation) -> MockTelegramApi {
    let mut api = api();
    resolves_group(&mut api, SUPERGROUP);
    api.expect_resolve_username().returning(|_| {
        Ok(ResolvedPeer::User {
            user: ALICE,
            bot: false,
        })
    });
    api.expect_own_rights().returning(|_| {
        Ok(OwnRights {
            role: OwnRole::Creator,
            members_may_invite: false,
        })
    });
    let failure = match situation {
        Situation::Accepts => None,
        Situation::AlreadyMember => Some(rpc(400, "USER_ALREADY_PARTICIPANT")),
        Situation::TargetRefuses => Some(rpc(403, "USER_PRIVACY_RESTRICTED")),
        Situation::FloodWait { seconds } => Some(ApiError::rpc(
            420,
            "FLOOD_WAIT",
            Some(u32::try_from(seconds).unwrap()),
        )),
        Situation::AccountRestricted => Some(rpc(400, "PEER_FLOOD")),
        Situation::AccountDead => Some(rpc(401, "USER_DEACTIVATED_BAN")),
        Situation::GroupUnusable => Some(rpc(403, "CHAT_ADMIN_REQUIRED")),
        Situation::NoAnswerAfterSend => Some(ApiError::Timeout(std::time::Duration::from_secs(30))),
        Situation::NotSent => Some(ApiError::Io(io::ErrorKind::ConnectionRefused)),
        Situation::RefusedWithoutCause => Some(rpc(400, "CHAT_MEMBER_ADD_FAILED")),
        _ => Some(rpc(400, "SOMETHING_NEVER_SEEN")),
    };
    let invite_failure = failure.clone();
    api.expect_invite_to_channel()
        .returning(move |_, _| match &invite_failure {
            None => Ok(InviteReport {
                missing: vec![],
                confirmed_by_update: true,
            }),
            Some(e) => Err(e.clone()),
        });
    api.expect_send_message()
        .returning(move |_, _, _| match &failure {
            None => Ok(SentMessage {
                message_id: Some(1),
            }),
            Some(e) => Err(e.clone()),
        });
    api
}

#[tokio::test]
async fn telegram_over_its_mocked_api_meets_the_strategy_contract() {
    strategy_contract(|situation| async move {
        let setup = Setup::default();
        Some(StagedStrategy {
            strategy: Arc::new(setup.build(staged_api(situation)).await),
            account: account(),
            target: target("@alice_1"),
            group: group("@mygroup"),
        })
    })
    .await;
}
