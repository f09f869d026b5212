//! [`FakeTelegram`]: a small in-memory Telegram behind the [`Connector`] / [`TelegramApi`] seam,
//! for end-to-end tests of the crates that build on this one (feature `mock`). Telegram cannot
//! be reached from tests; this fake keeps what they check: which sessions are alive and as whom,
//! who was invited where, scripted errors for an account's next writes, and how many
//! connections of one session are open at once (Telegram invalidates a key used from two).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use invite_core::async_trait;
use invite_core::domain::GroupRef;

use crate::api::{
    ChannelRef, Connector, DeviceFields, GroupLookup, GroupPeer, InviteReport, Membership,
    OwnRights, OwnRole, PhoneLookup, ResolvedPeer, SelfUser, SentMessage, TelegramApi, UserRef,
};
use crate::errors::ApiError;
use crate::session::SessionString;

/// The supergroup every group reference resolves to.
pub const FAKE_GROUP: GroupPeer = GroupPeer::Channel {
    channel: ChannelRef {
        id: 1_777_000_123,
        access_hash: 99,
    },
    broadcast: false,
};

#[derive(Debug, Default)]
struct Account {
    me: Option<SelfUser>,
    /// What `get_me` (and every call) fails with: a dead session.
    dead: Option<ApiError>,
    /// Errors of the next writes, in order.
    script: VecDeque<ApiError>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<u64, Account>,
    open: HashMap<u64, usize>,
    most_open: usize,
    connects: usize,
    /// Calls made on each session's connections (`disconnect` aside).
    calls: HashMap<u64, usize>,
    /// Write calls (adds, messages) made, refused ones included.
    writes: usize,
    invited: Vec<(i64, i64)>,
    sent: Vec<(i64, String)>,
    /// The device presented by each connection that presented one.
    devices: Vec<DeviceFields>,
}

/// The fake; clones share one world.
#[derive(Debug, Clone, Default)]
pub struct FakeTelegram {
    state: Arc<Mutex<State>>,
}

/// The user id the fake gives `@username` (stable, positive).
pub fn fake_user_id(username: &str) -> i64 {
    let h = username
        .to_ascii_lowercase()
        .bytes()
        .fold(1_469_598_103_934_665_603_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
        });
    (h >> 20) as i64 + 10_000
}

impl FakeTelegram {
    /// An empty world: every session is unknown (`AUTH_KEY_UNREGISTERED`) until added.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `session` a live session of user `id` (`@username`).
    pub fn add_account(&self, session: &str, id: i64, username: Option<&str>) {
        let key = key_of(session);
        self.lock().accounts.entry(key).or_default().me = Some(SelfUser {
            id,
            bot: false,
            username: username.map(str::to_owned),
            phone: Some(format!("7999{id:07}")),
        });
    }

    /// Makes `session` answer every call with `error` (a revoked key, a deactivated user).
    pub fn kill(&self, session: &str, error: ApiError) {
        self.lock()
            .accounts
            .entry(key_of(session))
            .or_default()
            .dead = Some(error);
    }

    /// The next writes of `session` fail with these errors, in order.
    pub fn script(&self, session: &str, errors: impl IntoIterator<Item = ApiError>) {
        self.lock()
            .accounts
            .entry(key_of(session))
            .or_default()
            .script
            .extend(errors);
    }

    /// The most connections of one session that were open at once.
    pub fn most_open_at_once(&self) -> usize {
        self.lock().most_open
    }

    /// The devices presented by connections so far (those that presented one), in order.
    pub fn devices(&self) -> Vec<DeviceFields> {
        self.lock().devices.clone()
    }

    /// Connections opened so far.
    pub fn connects(&self) -> usize {
        self.lock().connects
    }

    /// Connections open now.
    pub fn open_now(&self) -> usize {
        self.lock().open.values().sum()
    }

    /// Calls made on the connections of `session` so far (`disconnect` aside).
    pub fn calls(&self, session: &str) -> usize {
        self.lock()
            .calls
            .get(&key_of(session))
            .copied()
            .unwrap_or_default()
    }

    /// Connections of `session` open now.
    pub fn open_of(&self, session: &str) -> usize {
        self.lock()
            .open
            .get(&key_of(session))
            .copied()
            .unwrap_or_default()
    }

    /// Write calls (adds, messages) made so far, refused ones included.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// `(channel id, user id)` of every add.
    pub fn invited(&self) -> Vec<(i64, i64)> {
        self.lock().invited.clone()
    }
}

fn key_of(session: &str) -> u64 {
    SessionString::parse(session)
        .map(|s| s.key_fingerprint().auth_key_id())
        .unwrap_or_default()
}

#[async_trait]
impl Connector for FakeTelegram {
    async fn connect(
        &self,
        session: &SessionString,
        _api_id: i32,
    ) -> Result<Arc<dyn TelegramApi>, ApiError> {
        let key = session.key_fingerprint().auth_key_id();
        let mut st = self.lock();
        st.connects += 1;
        let open = st.open.entry(key).or_default();
        *open += 1;
        let open = *open;
        st.most_open = st.most_open.max(open);
        Ok(Arc::new(FakeConnection {
            world: self.clone(),
            key,
            closed: Mutex::new(false),
        }))
    }

    async fn connect_as(
        &self,
        session: &SessionString,
        api_id: i32,
        device: &DeviceFields,
    ) -> Result<Arc<dyn TelegramApi>, ApiError> {
        self.lock().devices.push(device.clone());
        self.connect(session, api_id).await
    }
}

#[derive(Debug)]
struct FakeConnection {
    world: FakeTelegram,
    key: u64,
    closed: Mutex<bool>,
}

impl FakeConnection {
    fn check(&self) -> Result<(), ApiError> {
        let closed = *self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = self.world.lock();
        *st.calls.entry(self.key).or_default() += 1;
        if closed {
            return Err(ApiError::Dropped);
        }
        match st.accounts.get(&self.key) {
            Some(Account { dead: Some(e), .. }) => Err(e.clone()),
            Some(Account { me: Some(_), .. }) => Ok(()),
            _ => Err(ApiError::rpc(401, "AUTH_KEY_UNREGISTERED", None)),
        }
    }

    fn write(&self) -> Result<(), ApiError> {
        self.world.lock().writes += 1;
        self.check()?;
        let mut st = self.world.lock();
        match st
            .accounts
            .get_mut(&self.key)
            .and_then(|a| a.script.pop_front())
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TelegramApi for FakeConnection {
    async fn get_me(&self) -> Result<SelfUser, ApiError> {
        self.check()?;
        let st = self.world.lock();
        st.accounts
            .get(&self.key)
            .and_then(|a| a.me.clone())
            .ok_or(ApiError::rpc(401, "AUTH_KEY_UNREGISTERED", None))
    }

    async fn resolve_username(&self, username: &str) -> Result<ResolvedPeer, ApiError> {
        self.check()?;
        Ok(ResolvedPeer::User {
            user: UserRef {
                id: fake_user_id(username),
                access_hash: 7,
            },
            bot: false,
        })
    }

    async fn import_phone(
        &self,
        _phone: &str,
        _first_name: &str,
        _last_name: &str,
    ) -> Result<PhoneLookup, ApiError> {
        self.check()?;
        Ok(PhoneLookup::NotFound)
    }

    async fn resolve_group(&self, _group: &GroupRef) -> Result<GroupLookup, ApiError> {
        self.check()?;
        Ok(GroupLookup::Found(FAKE_GROUP))
    }

    async fn invite_to_channel(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<InviteReport, ApiError> {
        self.write()?;
        let mut st = self.world.lock();
        if st.invited.contains(&(channel.id, user.id)) {
            return Err(ApiError::rpc(400, "USER_ALREADY_PARTICIPANT", None));
        }
        st.invited.push((channel.id, user.id));
        Ok(InviteReport {
            missing: Vec::new(),
            confirmed_by_update: true,
        })
    }

    async fn add_chat_user(&self, chat_id: i64, user: UserRef) -> Result<InviteReport, ApiError> {
        self.write()?;
        self.world.lock().invited.push((chat_id, user.id));
        Ok(InviteReport::default())
    }

    async fn send_message(
        &self,
        user: UserRef,
        text: &str,
        _random_id: i64,
    ) -> Result<SentMessage, ApiError> {
        self.write()?;
        self.world.lock().sent.push((user.id, text.to_owned()));
        Ok(SentMessage {
            message_id: Some(1),
        })
    }

    async fn delete_contact(&self, _user: UserRef) -> Result<(), ApiError> {
        self.check()
    }

    async fn add_contact(
        &self,
        _user: UserRef,
        _first_name: &str,
        _last_name: &str,
    ) -> Result<(), ApiError> {
        self.check()
    }

    async fn own_rights(&self, _group: GroupPeer) -> Result<OwnRights, ApiError> {
        self.check()?;
        Ok(OwnRights {
            role: OwnRole::Admin { invite_users: true },
            members_may_invite: false,
        })
    }

    async fn member_count(&self, _channel: ChannelRef) -> Result<Option<i32>, ApiError> {
        self.check()?;
        Ok(Some(10))
    }

    async fn is_participant(&self, group: GroupPeer, user: UserRef) -> Result<bool, ApiError> {
        self.check()?;
        let id = match group {
            GroupPeer::Channel { channel, .. } => channel.id,
            GroupPeer::Chat { id } => id,
        };
        Ok(self.world.lock().invited.contains(&(id, user.id)))
    }

    async fn membership(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<Option<Membership>, ApiError> {
        self.check()?;
        // The fake keeps no times: a member it added is reported without a date.
        Ok(self
            .world
            .lock()
            .invited
            .contains(&(channel.id, user.id))
            .then_some(Membership {
                date: None,
                inviter_id: None,
            }))
    }

    async fn disconnect(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if !*closed {
            *closed = true;
            let mut st = self.world.lock();
            if let Some(open) = st.open.get_mut(&self.key) {
                *open = open.saturating_sub(1);
            }
        }
    }
}
