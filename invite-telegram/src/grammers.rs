//! The grammers 0.11 implementation of the seam: [`GrammersConnector`] builds one client per
//! account from its imported session, [`GrammersApi`] makes the raw TL calls (layer 230) and
//! translates their answers with the pure functions at the end of this file.
//!
//! Every `tl::` type this crate touches is in this file: a grammers upgrade (each minor version
//! changes the API and the layer) is a change here only.
//!
//! The client is built so that it never acts on its own:
//! - the retry policy is [`NoRetries`]: no sleeping on flood waits, no resend after an I/O error
//!   (waits belong to the account manager, retries to the engine);
//! - the session is a [`MemorySession`] filled from the decoded string and dropped on
//!   disconnect: nothing is ever written back to the secret store, even when grammers replaces
//!   a key the server no longer knows;
//! - the device, system and app fields sent in `initConnection` (shown in the user's "active
//!   sessions") come from [`ClientParams`], never from the host;
//! - [`TelegramStrategy`](crate::TelegramStrategy) puts a timeout around every call; here,
//!   a call whose caller stops waiting aborts the client's runner (its connection closes, no
//!   queued request leaves later), and a write first makes sure of the connection within
//!   [`ClientParams::connect_timeout`], so a failure to connect is "not sent", never
//!   ambiguous. A client whose runner is gone fails every call unsent; the strategy drops it
//!   and builds a new one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grammers_client::client::{ClientConfiguration, PasswordToken};
use grammers_client::session::Session as _;
use grammers_client::session::storages::MemorySession;
use grammers_client::{Client, InvocationError, SenderPool, SignInError, tl};
use grammers_mtsender::{ConnectionParams, NoRetries};
use invite_core::async_trait;
use invite_core::domain::GroupRef;
use tokio::task::JoinHandle;

use crate::api::{
    ChannelRef, Connector, DeviceFields, GroupLookup, GroupPeer, InviteReport, Membership,
    MissingInvitee, OwnRights, OwnRole, PhoneLookup, ResolvedPeer, SelfUser, SentMessage,
    TelegramApi, UserRef,
};
use crate::errors::ApiError;
use crate::login::{CodeAnswer, SignIn, SignInConnector};
use crate::session::SessionString;

/// How long a disconnect waits for the connection task before aborting it.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// grammers' message when its runner is gone before a request was handed to it.
const RUNNER_GONE_AT_SEND: &str = "SenderPoolRunner was dropped at send";

/// Bot-API ids of channels are `-100` followed by the bare id.
const CHANNEL_ID_OFFSET: i64 = 1_000_000_000_000;

impl From<InvocationError> for ApiError {
    fn from(error: InvocationError) -> Self {
        use grammers_mtproto::transport::Error as TransportError;
        match error {
            InvocationError::Rpc(rpc) => ApiError::Rpc {
                code: rpc.code,
                name: rpc.name,
                value: rpc.value,
            },
            InvocationError::Io(io) => ApiError::Io(io.kind()),
            InvocationError::Transport(TransportError::BadStatus { status }) => {
                ApiError::TransportStatus(status)
            }
            InvocationError::Transport(_) | InvocationError::Deserialize(_) => {
                ApiError::BadResponse
            }
            // The runner was gone before it took the request: it never left.
            InvocationError::Dropped(RUNNER_GONE_AT_SEND) => ApiError::Dropped.not_sent(),
            InvocationError::Dropped(_) => ApiError::Dropped,
            InvocationError::InvalidDc => ApiError::Local("unknown data centre"),
            InvocationError::Session(_) => ApiError::Local("session storage"),
            InvocationError::Authentication(_) => ApiError::Local("key exchange"),
        }
    }
}

/// What the account's connection says about the "device" in `initConnection`. Telegram shows
/// these fields in the user's list of active sessions: keep them honest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientParams {
    /// Device model (default `Invite Service`).
    pub device_model: String,
    /// Operating system (default: the OS and architecture this was built for).
    pub system_version: String,
    /// Application version (default: this crate's version).
    pub app_version: String,
    /// System language (ISO 639-1, default `en`).
    pub system_lang_code: String,
    /// Language (default `en`).
    pub lang_code: String,
    /// Connect over IPv6 instead of IPv4.
    pub use_ipv6: bool,
    /// Time allowed to make (or check) the connection before a write is handed over; a
    /// write that did not get that far fails as not sent.
    pub connect_timeout: Duration,
}

impl Default for ClientParams {
    fn default() -> Self {
        Self {
            device_model: "Invite Service".to_owned(),
            system_version: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            system_lang_code: "en".to_owned(),
            lang_code: "en".to_owned(),
            use_ipv6: false,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl ClientParams {
    /// These parameters with the account's own device fields where it has them.
    pub fn presenting(&self, device: &DeviceFields) -> Self {
        let pick =
            |own: &Option<String>, default: &String| own.clone().unwrap_or_else(|| default.clone());
        Self {
            device_model: pick(&device.device_model, &self.device_model),
            system_version: pick(&device.system_version, &self.system_version),
            app_version: pick(&device.app_version, &self.app_version),
            system_lang_code: pick(&device.system_lang_code, &self.system_lang_code),
            lang_code: pick(&device.lang_code, &self.lang_code),
            ..self.clone()
        }
    }

    fn connection_params(&self) -> ConnectionParams {
        ConnectionParams {
            device_model: self.device_model.clone(),
            system_version: self.system_version.clone(),
            app_version: self.app_version.clone(),
            system_lang_code: self.system_lang_code.clone(),
            lang_code: self.lang_code.clone(),
            use_ipv6: self.use_ipv6,
            retry_policy: Box::new(NoRetries),
            ..ConnectionParams::default()
        }
    }
}

/// Builds a [`GrammersApi`] per account.
#[derive(Debug, Clone, Default)]
pub struct GrammersConnector {
    params: ClientParams,
}

impl GrammersConnector {
    /// A connector with these connection parameters.
    pub fn new(params: ClientParams) -> Self {
        Self { params }
    }
}

#[async_trait]
impl Connector for GrammersConnector {
    async fn connect(
        &self,
        session: &SessionString,
        api_id: i32,
    ) -> Result<Arc<dyn TelegramApi>, ApiError> {
        Ok(Arc::new(GrammersApi::start(session, api_id, &self.params)))
    }

    async fn connect_as(
        &self,
        session: &SessionString,
        api_id: i32,
        device: &DeviceFields,
    ) -> Result<Arc<dyn TelegramApi>, ApiError> {
        let params = self.params.presenting(device);
        Ok(Arc::new(GrammersApi::start(session, api_id, &params)))
    }
}

/// One account's grammers client and the task that drives its connections.
pub struct GrammersApi {
    client: Client,
    runner: Mutex<Option<JoinHandle<()>>>,
    /// A call was given up on and the runner aborted: every later call fails unsent.
    aborted: AtomicBool,
    connect_timeout: Duration,
    pings: AtomicI64,
    /// The account's rights read from the group objects its last resolutions returned, each
    /// used once by [`TelegramApi::own_rights`] (a later check reads them afresh).
    resolved_rights: Mutex<HashMap<GroupPeer, OwnRights>>,
}

impl fmt::Debug for GrammersApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrammersApi").finish_non_exhaustive()
    }
}

impl GrammersApi {
    /// Builds the sender pool on an in-memory copy of the session and spawns its runner. No
    /// connection is made until the first call. Must run inside a Tokio runtime.
    pub fn start(session: &SessionString, api_id: i32, params: &ClientParams) -> Self {
        let store = Arc::new(MemorySession::from(session.to_session_data()));
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(store, api_id, params.connection_params());
        // Updates are not consumed: closing the channel stops their forwarding.
        drop(updates);
        let task = tokio::spawn(runner.run());
        let client = Client::with_configuration(
            handle,
            ClientConfiguration {
                auto_cache_peers: false,
            },
        );
        Self {
            client,
            runner: Mutex::new(Some(task)),
            aborted: AtomicBool::new(false),
            connect_timeout: params.connect_timeout,
            pings: AtomicI64::new(1),
            resolved_rights: Mutex::new(HashMap::new()),
        }
    }

    /// One request. If the caller stops waiting (a timeout, a cancelled task), the runner
    /// is aborted at once: its connection closes and nothing queued behind a hanging connect
    /// leaves later in a burst. The client is then spent; the caller builds a new one.
    async fn invoke<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, ApiError> {
        if self.aborted.load(Ordering::SeqCst) {
            return Err(ApiError::Dropped.not_sent());
        }
        let mut guard = AbortOnDrop {
            api: self,
            armed: true,
        };
        let result = self.client.invoke(request).await.map_err(ApiError::from);
        guard.armed = false;
        result
    }

    /// A write: the connection is made (or checked with an MTProto `ping`, which costs no
    /// API limit) within `connect_timeout` before the request is handed over, so a failure
    /// to connect is reported as not sent rather than as a write that may have happened.
    async fn write<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, ApiError> {
        let ping = tl::functions::Ping {
            ping_id: self.pings.fetch_add(1, Ordering::Relaxed),
        };
        match tokio::time::timeout(self.connect_timeout, self.invoke(&ping)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.not_sent()),
            Err(_) => return Err(ApiError::Timeout(self.connect_timeout).not_sent()),
        }
        self.invoke(request).await
    }

    fn abort_runner(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        let task = self.runner.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(task) = task {
            task.abort();
        }
        self.client.disconnect();
    }

    async fn participant(
        &self,
        channel: ChannelRef,
        who: tl::enums::InputPeer,
    ) -> Result<Option<tl::types::channels::ChannelParticipant>, ApiError> {
        let request = tl::functions::channels::GetParticipant {
            channel: input_channel(channel),
            participant: who,
        };
        match self.invoke(&request).await {
            Ok(tl::enums::channels::ChannelParticipant::Participant(p)) => Ok(Some(p)),
            Err(e) if e.is("USER_NOT_PARTICIPANT") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The group a resolution found, with the account's rights in it remembered for the
    /// rights check that follows.
    fn found(&self, chat: &tl::enums::Chat) -> GroupLookup {
        let lookup = group_of_chat(chat);
        if let (GroupLookup::Found(peer), Some(rights)) = (lookup, rights_of_chat(chat))
            && chat.id() == group_id(peer)
            && let Ok(mut known) = self.resolved_rights.lock()
        {
            known.insert(peer, rights);
        }
        lookup
    }

    /// The channel among the account's dialogs (pages of [`DIALOGS_PAGE`], at most
    /// [`DIALOGS_PAGES`] of them), `None` when it is not there.
    async fn channel_from_dialogs(
        &self,
        channel_id: i64,
    ) -> Result<Option<tl::enums::Chat>, ApiError> {
        let mut offset = DialogsOffset::start();
        for _ in 0..DIALOGS_PAGES {
            let page = self
                .invoke(&tl::functions::messages::GetDialogs {
                    exclude_pinned: false,
                    folder_id: None,
                    offset_date: offset.date,
                    offset_id: offset.id,
                    offset_peer: offset.peer.clone(),
                    limit: DIALOGS_PAGE,
                    hash: 0,
                })
                .await?;
            let (found, next) = dialogs_page(page, channel_id);
            if found.is_some() {
                return Ok(found);
            }
            match next {
                Some(next) => offset = next,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn chat(&self, chat_id: i64) -> Result<tl::enums::Chat, ApiError> {
        let chats = self
            .invoke(&tl::functions::messages::GetChats { id: vec![chat_id] })
            .await?;
        chats_of(chats)
            .into_iter()
            .find(|c| c.id() == chat_id)
            .ok_or(ApiError::Unexpected(
                "messages.getChats did not return the chat",
            ))
    }
}

#[async_trait]
impl TelegramApi for GrammersApi {
    async fn get_me(&self) -> Result<SelfUser, ApiError> {
        self_user(self.invoke(&get_self()).await?)
    }

    async fn resolve_username(&self, username: &str) -> Result<ResolvedPeer, ApiError> {
        let tl::enums::contacts::ResolvedPeer::Peer(resolved) = self
            .invoke(&tl::functions::contacts::ResolveUsername {
                username: username.to_owned(),
                referer: None,
            })
            .await?;
        Ok(resolved_user(&resolved))
    }

    async fn import_phone(
        &self,
        phone: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<PhoneLookup, ApiError> {
        let request = tl::functions::contacts::ImportContacts {
            contacts: vec![tl::enums::InputContact::InputPhoneContact(
                tl::types::InputPhoneContact {
                    client_id: 1,
                    phone: phone.to_owned(),
                    first_name: first_name.to_owned(),
                    last_name: last_name.to_owned(),
                    note: None,
                },
            )],
        };
        let tl::enums::contacts::ImportedContacts::Contacts(imported) =
            self.write(&request).await?;
        Ok(phone_lookup(&imported))
    }

    async fn resolve_group(&self, group: &GroupRef) -> Result<GroupLookup, ApiError> {
        match group {
            GroupRef::Username(name) => {
                let tl::enums::contacts::ResolvedPeer::Peer(resolved) = self
                    .invoke(&tl::functions::contacts::ResolveUsername {
                        username: name.clone(),
                        referer: None,
                    })
                    .await?;
                let lookup = resolved_group(&resolved);
                if let GroupLookup::Found(peer) = lookup
                    && let Some(chat) = resolved.chats.iter().find(|c| c.id() == group_id(peer))
                {
                    self.found(chat);
                }
                Ok(lookup)
            }
            GroupRef::Id(id) => match split_group_id(*id) {
                // A user account has no access hash for a bare channel id (hash 0 is
                // refused with CHANNEL_INVALID): the channel is looked for among the account's
                // own dialogs, which carry the hash valid for this account.
                GroupId::Channel(channel_id) => Ok(self
                    .channel_from_dialogs(channel_id)
                    .await?
                    .map_or(GroupLookup::NotMember, |c| self.found(&c))),
                GroupId::Chat(chat_id) => Ok(self.found(&self.chat(chat_id).await?)),
            },
            GroupRef::InviteLink(hash) => {
                let invite = self
                    .invoke(&tl::functions::messages::CheckChatInvite { hash: hash.clone() })
                    .await?;
                Ok(match invite {
                    tl::enums::ChatInvite::Already(a) => self.found(&a.chat),
                    tl::enums::ChatInvite::Peek(p) => self.found(&p.chat),
                    tl::enums::ChatInvite::Invite(_) => GroupLookup::NotMember,
                })
            }
        }
    }

    async fn invite_to_channel(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<InviteReport, ApiError> {
        let tl::enums::messages::InvitedUsers::Users(invited) = self
            .write(&tl::functions::channels::InviteToChannel {
                channel: input_channel(channel),
                users: vec![input_user(user)],
            })
            .await?;
        Ok(invite_report(&invited, user.id))
    }

    async fn add_chat_user(&self, chat_id: i64, user: UserRef) -> Result<InviteReport, ApiError> {
        let tl::enums::messages::InvitedUsers::Users(invited) = self
            .write(&tl::functions::messages::AddChatUser {
                chat_id,
                user_id: input_user(user),
                fwd_limit: 0,
            })
            .await?;
        Ok(invite_report(&invited, user.id))
    }

    async fn send_message(
        &self,
        user: UserRef,
        text: &str,
        random_id: i64,
    ) -> Result<SentMessage, ApiError> {
        let request = tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
                user_id: user.id,
                access_hash: user.access_hash,
            }),
            reply_to: None,
            message: text.to_owned(),
            random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        let updates = self.write(&request).await?;
        Ok(SentMessage {
            message_id: sent_message_id(&updates, random_id),
        })
    }

    async fn delete_contact(&self, user: UserRef) -> Result<(), ApiError> {
        self.invoke(&tl::functions::contacts::DeleteContacts {
            id: vec![input_user(user)],
        })
        .await?;
        Ok(())
    }

    async fn add_contact(
        &self,
        user: UserRef,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), ApiError> {
        self.write(&tl::functions::contacts::AddContact {
            add_phone_privacy_exception: false,
            id: input_user(user),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            phone: String::new(),
            note: None,
        })
        .await?;
        Ok(())
    }

    async fn own_rights(&self, group: GroupPeer) -> Result<OwnRights, ApiError> {
        let known = self
            .resolved_rights
            .lock()
            .ok()
            .and_then(|mut known| known.remove(&group));
        if let Some(rights) = known {
            return Ok(rights);
        }
        let chat = match group {
            GroupPeer::Channel { channel, .. } => {
                let chats = self
                    .invoke(&tl::functions::channels::GetChannels {
                        id: vec![input_channel(channel)],
                    })
                    .await?;
                chats_of(chats).into_iter().find(|c| c.id() == channel.id)
            }
            GroupPeer::Chat { id } => Some(self.chat(id).await?),
        };
        chat.as_ref()
            .and_then(rights_of_chat)
            .ok_or(ApiError::Unexpected("Telegram did not return the group"))
    }

    async fn member_count(&self, channel: ChannelRef) -> Result<Option<i32>, ApiError> {
        let tl::enums::messages::ChatFull::Full(full) = self
            .invoke(&tl::functions::channels::GetFullChannel {
                channel: input_channel(channel),
            })
            .await?;
        Ok(member_count(&full, channel.id))
    }

    async fn is_participant(&self, group: GroupPeer, user: UserRef) -> Result<bool, ApiError> {
        match group {
            GroupPeer::Channel { channel, .. } => {
                let who = tl::enums::InputPeer::User(tl::types::InputPeerUser {
                    user_id: user.id,
                    access_hash: user.access_hash,
                });
                match self.participant(channel, who).await? {
                    Some(p) => Ok(is_present(&p.participant)),
                    // USER_NOT_PARTICIPANT may be about our own account: "not a member" is
                    // only an answer once the account is one itself.
                    None => match self
                        .participant(channel, tl::enums::InputPeer::PeerSelf)
                        .await?
                    {
                        Some(own) if is_present(&own.participant) => Ok(false),
                        _ => Err(ApiError::rpc(400, "USER_NOT_PARTICIPANT", None)),
                    },
                }
            }
            GroupPeer::Chat { id } => {
                let tl::enums::messages::ChatFull::Full(full) = self
                    .invoke(&tl::functions::messages::GetFullChat { chat_id: id })
                    .await?;
                chat_has_member(&full.full_chat, user.id)
                    .ok_or(ApiError::Unexpected("the group's member list is hidden"))
            }
        }
    }

    async fn membership(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<Option<Membership>, ApiError> {
        let who = tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: user.id,
            access_hash: user.access_hash,
        });
        Ok(self
            .participant(channel, who)
            .await?
            .and_then(|p| membership_of(&p.participant)))
    }

    async fn disconnect(&self) {
        self.client.disconnect();
        let task = self.runner.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(mut task) = task
            && tokio::time::timeout(DISCONNECT_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// Aborts the runner when a call's future is dropped before its answer.
struct AbortOnDrop<'a> {
    api: &'a GrammersApi,
    armed: bool,
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.api.abort_runner();
        }
    }
}

impl Drop for GrammersApi {
    fn drop(&mut self) {
        // Quitting lets the runner close its connections; it also ends when the last handle
        // goes, this only makes it prompt.
        self.client.disconnect();
    }
}

// ---------------------------------------------------------------------------------------------
// Signing in with a phone number (`invite-http accounts login`).

#[async_trait]
impl SignInConnector for GrammersConnector {
    async fn start(&self, api_id: i32, api_hash: &str) -> Result<Arc<dyn SignIn>, ApiError> {
        Ok(Arc::new(GrammersSignIn::start(
            api_id,
            api_hash,
            &self.params,
        )))
    }
}

/// A sign-in on a fresh in-memory session: the key grammers creates on the first call becomes
/// the account's once signed in. The code is sent and checked with raw calls (not
/// `Client::sign_in`, which reports an expired code as a wrong one); the 2FA check is
/// grammers' SRP computation.
pub struct GrammersSignIn {
    client: Client,
    handle: grammers_mtsender::SenderPoolHandle,
    session: Arc<MemorySession>,
    runner: Mutex<Option<JoinHandle<()>>>,
    api_id: i32,
    api_hash: String,
    /// The phone number and `phone_code_hash` of the code sent.
    sent: Mutex<Option<(String, String)>>,
    signed_in: AtomicBool,
}

impl fmt::Debug for GrammersSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrammersSignIn").finish_non_exhaustive()
    }
}

impl GrammersSignIn {
    /// Builds the sender pool on an empty session and spawns its runner; nothing is sent
    /// until the first call. Must run inside a Tokio runtime.
    pub fn start(api_id: i32, api_hash: &str, params: &ClientParams) -> Self {
        let session = Arc::new(MemorySession::default());
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(session.clone(), api_id, params.connection_params());
        drop(updates);
        let thin = handle.thin.clone();
        let task = tokio::spawn(runner.run());
        let client = Client::with_configuration(
            handle,
            ClientConfiguration {
                auto_cache_peers: false,
            },
        );
        Self {
            client,
            handle: thin,
            session,
            runner: Mutex::new(Some(task)),
            api_id,
            api_hash: api_hash.to_owned(),
            sent: Mutex::new(None),
            signed_in: AtomicBool::new(false),
        }
    }

    async fn password_token(&self) -> Result<PasswordToken, ApiError> {
        let password: tl::types::account::Password = self
            .client
            .invoke(&tl::functions::account::GetPassword {})
            .await?
            .into();
        Ok(PasswordToken::new(password))
    }
}

#[async_trait]
impl SignIn for GrammersSignIn {
    async fn request_code(&self, phone: &str) -> Result<(), ApiError> {
        let request = tl::functions::auth::SendCode {
            phone_number: phone.to_owned(),
            api_id: self.api_id,
            api_hash: self.api_hash.clone(),
            settings: tl::types::CodeSettings {
                allow_flashcall: false,
                current_number: false,
                allow_app_hash: false,
                allow_missed_call: false,
                allow_firebase: false,
                logout_tokens: None,
                token: None,
                app_sandbox: None,
                unknown_number: false,
            }
            .into(),
        };
        let sent = match self.client.invoke(&request).await {
            // The number's home is another data centre: move there and ask again.
            Err(InvocationError::Rpc(e)) if e.code == 303 && e.value.is_some() => {
                let old = self
                    .session
                    .home_dc_id()
                    .map_err(|_| ApiError::Local("session storage"))?;
                self.handle.disconnect_from_dc(old);
                self.session
                    .set_home_dc_id(e.value.unwrap_or_default() as i32)
                    .await
                    .map_err(|_| ApiError::Local("session storage"))?;
                self.client.invoke(&request).await?
            }
            other => other?,
        };
        let hash = match sent {
            tl::enums::auth::SentCode::Code(code) => code.phone_code_hash,
            tl::enums::auth::SentCode::Success(_) => {
                return Err(ApiError::Unexpected(
                    "auth.sendCode signed in without a code",
                ));
            }
            tl::enums::auth::SentCode::PaymentRequired(_) => {
                return Err(ApiError::rpc(400, "PAYMENT_REQUIRED", None));
            }
        };
        if let Ok(mut s) = self.sent.lock() {
            *s = Some((phone.to_owned(), hash));
        }
        Ok(())
    }

    async fn submit_code(&self, code: &str) -> Result<CodeAnswer, ApiError> {
        let Some((phone_number, phone_code_hash)) = self.sent.lock().ok().and_then(|s| s.clone())
        else {
            return Err(ApiError::rpc(400, "PHONE_CODE_EMPTY", None));
        };
        let answer = self
            .client
            .invoke(&tl::functions::auth::SignIn {
                phone_number,
                phone_code_hash,
                phone_code: Some(code.to_owned()),
                email_verification: None,
            })
            .await;
        match answer {
            Ok(tl::enums::auth::Authorization::Authorization(_)) => {
                self.signed_in.store(true, Ordering::SeqCst);
                Ok(CodeAnswer::SignedIn)
            }
            Ok(tl::enums::auth::Authorization::SignUpRequired(_)) => {
                Err(ApiError::rpc(400, "PHONE_NUMBER_UNOCCUPIED", None))
            }
            Err(e) if e.is("SESSION_PASSWORD_NEEDED") => {
                let token = self.password_token().await?;
                Ok(CodeAnswer::PasswordNeeded {
                    hint: token.hint().map(str::to_owned),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn submit_password(&self, password: &str) -> Result<(), ApiError> {
        // A fresh SRP challenge for each try (one is good for one check).
        let token = self.password_token().await?;
        match self.client.check_password(token, password.as_bytes()).await {
            Ok(_) => {
                self.signed_in.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(SignInError::InvalidPassword(_)) => {
                Err(ApiError::rpc(400, "PASSWORD_HASH_INVALID", None))
            }
            Err(SignInError::Other(e)) => Err(e.into()),
            Err(SignInError::SignUpRequired) => {
                Err(ApiError::rpc(400, "PHONE_NUMBER_UNOCCUPIED", None))
            }
            Err(SignInError::PasswordRequired(_) | SignInError::InvalidCode) => {
                Err(ApiError::Unexpected("auth.checkPassword asked for a code"))
            }
        }
    }

    async fn get_me(&self) -> Result<SelfUser, ApiError> {
        self_user(self.client.invoke(&get_self()).await?)
    }

    fn session_string(&self) -> Result<String, ApiError> {
        if !self.signed_in.load(Ordering::SeqCst) {
            return Err(ApiError::Local("not signed in"));
        }
        let dc = self
            .session
            .home_dc_id()
            .map_err(|_| ApiError::Local("session storage"))?;
        let option = self
            .session
            .dc_option(dc)
            .map_err(|_| ApiError::Local("session storage"))?
            .ok_or(ApiError::Local("unknown data centre"))?;
        let key = option.auth_key.ok_or(ApiError::Local("no key"))?;
        let dc = u8::try_from(dc).map_err(|_| ApiError::Local("unknown data centre"))?;
        crate::session::telethon_string(
            dc,
            std::net::IpAddr::V4(*option.ipv4.ip()),
            option.ipv4.port(),
            &key,
        )
        .map_err(|_| ApiError::Local("session string"))
    }

    async fn log_out(&self) -> Result<(), ApiError> {
        self.client.invoke(&tl::functions::auth::LogOut {}).await?;
        self.signed_in.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn disconnect(&self) {
        self.client.disconnect();
        let task = self.runner.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(mut task) = task
            && tokio::time::timeout(DISCONNECT_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for GrammersSignIn {
    fn drop(&mut self) {
        self.client.disconnect();
    }
}

// ---------------------------------------------------------------------------------------------
// Pure translation between TL types and the seam's types.

fn input_user(user: UserRef) -> tl::enums::InputUser {
    tl::enums::InputUser::User(tl::types::InputUser {
        user_id: user.id,
        access_hash: user.access_hash,
    })
}

fn input_channel(channel: ChannelRef) -> tl::enums::InputChannel {
    tl::enums::InputChannel::Channel(tl::types::InputChannel {
        channel_id: channel.id,
        access_hash: channel.access_hash,
    })
}

/// The id of the group's object (channel id or chat id).
const fn group_id(peer: GroupPeer) -> i64 {
    match peer {
        GroupPeer::Channel { channel, .. } => channel.id,
        GroupPeer::Chat { id } => id,
    }
}

/// Dialogs asked for per `messages.getDialogs` page (Telegram's maximum).
const DIALOGS_PAGE: i32 = 100;
/// Pages of dialogs read to find a channel by its bare id.
const DIALOGS_PAGES: usize = 20;

/// Where the next page of `messages.getDialogs` starts.
#[derive(Debug, Clone, PartialEq)]
struct DialogsOffset {
    date: i32,
    id: i32,
    peer: tl::enums::InputPeer,
}

impl DialogsOffset {
    fn start() -> Self {
        Self {
            date: 0,
            id: 0,
            peer: tl::enums::InputPeer::Empty,
        }
    }
}

/// One page of dialogs: the channel `channel_id` if the page names it, and the offset of the
/// next page (`None`: this was the last).
fn dialogs_page(
    page: tl::enums::messages::Dialogs,
    channel_id: i64,
) -> (Option<tl::enums::Chat>, Option<DialogsOffset>) {
    let (dialogs, messages, chats, users, last) = match page {
        tl::enums::messages::Dialogs::Dialogs(d) => (d.dialogs, d.messages, d.chats, d.users, true),
        tl::enums::messages::Dialogs::Slice(d) => (d.dialogs, d.messages, d.chats, d.users, false),
        tl::enums::messages::Dialogs::NotModified(_) => return (None, None),
    };
    if let Some(chat) = chats.iter().find(|c| {
        matches!(
            c,
            tl::enums::Chat::Channel(_) | tl::enums::Chat::ChannelForbidden(_)
        ) && c.id() == channel_id
    }) {
        return (Some(chat.clone()), None);
    }
    if last || dialogs.len() < DIALOGS_PAGE as usize {
        return (None, None);
    }
    let next = dialogs.iter().rev().find_map(|d| {
        let tl::enums::Dialog::Dialog(d) = d else {
            return None;
        };
        let date = messages.iter().find_map(|m| {
            let (id, peer, date) = match m {
                tl::enums::Message::Message(m) => (m.id, &m.peer_id, m.date),
                tl::enums::Message::Service(m) => (m.id, &m.peer_id, m.date),
                tl::enums::Message::Empty(_) => return None,
            };
            (id == d.top_message && *peer == d.peer).then_some(date)
        })?;
        let peer = match &d.peer {
            tl::enums::Peer::User(p) => users.iter().find_map(|u| match u {
                tl::enums::User::User(u) if u.id == p.user_id => {
                    Some(tl::enums::InputPeer::User(tl::types::InputPeerUser {
                        user_id: u.id,
                        access_hash: u.access_hash.unwrap_or(0),
                    }))
                }
                _ => None,
            })?,
            tl::enums::Peer::Chat(p) => {
                tl::enums::InputPeer::Chat(tl::types::InputPeerChat { chat_id: p.chat_id })
            }
            tl::enums::Peer::Channel(p) => chats.iter().find_map(|c| match c {
                tl::enums::Chat::Channel(c) if c.id == p.channel_id => {
                    Some(tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
                        channel_id: c.id,
                        access_hash: c.access_hash.unwrap_or(0),
                    }))
                }
                _ => None,
            })?,
        };
        Some(DialogsOffset {
            date,
            id: d.top_message,
            peer,
        })
    });
    (None, next)
}

enum GroupId {
    Channel(i64),
    Chat(i64),
}

/// `-100…` is a channel, another negative id a basic group, a positive id a bare channel id.
fn split_group_id(id: i64) -> GroupId {
    if id <= -CHANNEL_ID_OFFSET {
        GroupId::Channel(-id - CHANNEL_ID_OFFSET)
    } else if id < 0 {
        GroupId::Chat(-id)
    } else {
        GroupId::Channel(id)
    }
}

fn chats_of(chats: tl::enums::messages::Chats) -> Vec<tl::enums::Chat> {
    match chats {
        tl::enums::messages::Chats::Chats(c) => c.chats,
        tl::enums::messages::Chats::Slice(c) => c.chats,
    }
}

fn resolved_user(resolved: &tl::types::contacts::ResolvedPeer) -> ResolvedPeer {
    let tl::enums::Peer::User(peer) = &resolved.peer else {
        return ResolvedPeer::NotAUser;
    };
    resolved
        .users
        .iter()
        .find_map(|u| match u {
            tl::enums::User::User(u) if u.id == peer.user_id => Some(ResolvedPeer::User {
                user: UserRef {
                    id: u.id,
                    access_hash: u.access_hash.unwrap_or(0),
                },
                bot: u.bot,
            }),
            _ => None,
        })
        .unwrap_or(ResolvedPeer::NotAUser)
}

fn resolved_group(resolved: &tl::types::contacts::ResolvedPeer) -> GroupLookup {
    let wanted = match &resolved.peer {
        tl::enums::Peer::Channel(c) => c.channel_id,
        tl::enums::Peer::Chat(c) => c.chat_id,
        tl::enums::Peer::User(_) => return GroupLookup::NotAGroup,
    };
    resolved
        .chats
        .iter()
        .find(|c| c.id() == wanted)
        .map_or(GroupLookup::NotAGroup, group_of_chat)
}

fn group_of_chat(chat: &tl::enums::Chat) -> GroupLookup {
    match chat {
        tl::enums::Chat::Channel(c) => GroupLookup::Found(GroupPeer::Channel {
            channel: ChannelRef {
                id: c.id,
                access_hash: c.access_hash.unwrap_or(0),
            },
            broadcast: c.broadcast,
        }),
        tl::enums::Chat::Chat(c) => match &c.migrated_to {
            // A basic group upgraded to a supergroup: people go to the supergroup.
            Some(tl::enums::InputChannel::Channel(to)) => GroupLookup::Found(GroupPeer::Channel {
                channel: ChannelRef {
                    id: to.channel_id,
                    access_hash: to.access_hash,
                },
                broadcast: false,
            }),
            _ if c.deactivated => GroupLookup::NotMember,
            _ => GroupLookup::Found(GroupPeer::Chat { id: c.id }),
        },
        tl::enums::Chat::Forbidden(_) | tl::enums::Chat::ChannelForbidden(_) => {
            GroupLookup::NotMember
        }
        _ => GroupLookup::NotAGroup,
    }
}

fn phone_lookup(imported: &tl::types::contacts::ImportedContacts) -> PhoneLookup {
    let user_id = imported.imported.first().map(|c| {
        let tl::enums::ImportedContact::Contact(c) = c;
        c.user_id
    });
    let Some(user_id) = user_id else {
        return if imported.retry_contacts.is_empty() {
            PhoneLookup::NotFound
        } else {
            PhoneLookup::RetryLater
        };
    };
    let access_hash = imported.users.iter().find_map(|u| match u {
        tl::enums::User::User(u) if u.id == user_id => u.access_hash,
        _ => None,
    });
    PhoneLookup::Found(UserRef {
        id: user_id,
        access_hash: access_hash.unwrap_or(0),
    })
}

fn invite_report(invited: &tl::types::messages::InvitedUsers, user_id: i64) -> InviteReport {
    let missing = invited
        .missing_invitees
        .iter()
        .map(|m| {
            let tl::enums::MissingInvitee::Invitee(m) = m;
            MissingInvitee {
                user_id: m.user_id,
                premium_would_allow_invite: m.premium_would_allow_invite,
                premium_required_for_pm: m.premium_required_for_pm,
            }
        })
        .collect();
    InviteReport {
        missing,
        confirmed_by_update: updates_list(&invited.updates)
            .into_iter()
            .any(|u| adds_user(u, user_id)),
    }
}

fn updates_list(updates: &tl::enums::Updates) -> Vec<&tl::enums::Update> {
    match updates {
        tl::enums::Updates::Updates(u) => u.updates.iter().collect(),
        tl::enums::Updates::Combined(u) => u.updates.iter().collect(),
        tl::enums::Updates::UpdateShort(u) => vec![&u.update],
        _ => Vec::new(),
    }
}

/// A service message "added {user}".
fn adds_user(update: &tl::enums::Update, user_id: i64) -> bool {
    let message = match update {
        tl::enums::Update::NewChannelMessage(u) => &u.message,
        tl::enums::Update::NewMessage(u) => &u.message,
        _ => return false,
    };
    matches!(
        message,
        tl::enums::Message::Service(s)
            if matches!(&s.action, tl::enums::MessageAction::ChatAddUser(a) if a.users.contains(&user_id))
    )
}

fn sent_message_id(updates: &tl::enums::Updates, random_id: i64) -> Option<i32> {
    if let tl::enums::Updates::UpdateShortSentMessage(sent) = updates {
        return Some(sent.id);
    }
    updates_list(updates).into_iter().find_map(|u| match u {
        tl::enums::Update::MessageId(m) if m.random_id == random_id => Some(m.id),
        _ => None,
    })
}

fn invite_banned(rights: &tl::enums::ChatBannedRights) -> bool {
    let tl::enums::ChatBannedRights::Rights(r) = rights;
    r.invite_users
}

fn admin_invites(rights: &tl::enums::ChatAdminRights) -> bool {
    let tl::enums::ChatAdminRights::Rights(r) = rights;
    r.invite_users
}

/// Rights in a channel or supergroup, from its `Channel` object as this account sees it: the
/// object carries the account's own `creator` / `admin_rights` / `banned_rights` and the
/// group's `default_banned_rights`. Plain members may invite only in a supergroup whose default
/// rights (absent: no restriction) and own restrictions allow it.
fn channel_rights(c: &tl::types::Channel) -> OwnRights {
    let own_ban = c.banned_rights.as_ref().map(|r| {
        let tl::enums::ChatBannedRights::Rights(r) = r;
        r
    });
    let members_may_invite = c.megagroup
        && !c.broadcast
        && !c.default_banned_rights.as_ref().is_some_and(invite_banned)
        && !own_ban.is_some_and(|r| r.invite_users);
    let role = if c.left {
        OwnRole::NotMember
    } else if c.creator {
        OwnRole::Creator
    } else if own_ban.is_some_and(|r| r.view_messages) {
        OwnRole::Banned
    } else if let Some(rights) = &c.admin_rights {
        OwnRole::Admin {
            invite_users: admin_invites(rights),
        }
    } else {
        OwnRole::Member
    };
    OwnRights {
        role,
        members_may_invite,
    }
}

/// The account's rights in a group, from the group's object (`None`: a `min` channel, whose
/// rights fields are not filled in for this account, or not a group).
fn rights_of_chat(chat: &tl::enums::Chat) -> Option<OwnRights> {
    match chat {
        tl::enums::Chat::Channel(c) if c.min => None,
        tl::enums::Chat::Channel(c) => Some(channel_rights(c)),
        tl::enums::Chat::ChannelForbidden(_) => Some(OwnRights {
            role: OwnRole::Banned,
            members_may_invite: false,
        }),
        tl::enums::Chat::Empty(_) => None,
        chat => Some(chat_rights(chat)),
    }
}

/// Rights in a basic group, from its `Chat` as the account sees it.
fn chat_rights(chat: &tl::enums::Chat) -> OwnRights {
    match chat {
        tl::enums::Chat::Chat(c) => {
            // Absent default rights restrict nothing.
            let members_may_invite = !c.default_banned_rights.as_ref().is_some_and(invite_banned);
            let role = if c.left || c.deactivated {
                OwnRole::NotMember
            } else if c.creator {
                OwnRole::Creator
            } else if let Some(rights) = &c.admin_rights {
                OwnRole::Admin {
                    invite_users: admin_invites(rights),
                }
            } else {
                OwnRole::Member
            };
            OwnRights {
                role,
                members_may_invite,
            }
        }
        tl::enums::Chat::Forbidden(_) => OwnRights {
            role: OwnRole::Banned,
            members_may_invite: false,
        },
        _ => OwnRights {
            role: OwnRole::NotMember,
            members_may_invite: false,
        },
    }
}

fn member_count(full: &tl::types::messages::ChatFull, channel_id: i64) -> Option<i32> {
    let from_full = match &full.full_chat {
        tl::enums::ChatFull::ChannelFull(f) => f.participants_count,
        _ => None,
    };
    from_full.or_else(|| {
        full.chats.iter().find_map(|c| match c {
            tl::enums::Chat::Channel(c) if c.id == channel_id => c.participants_count,
            _ => None,
        })
    })
}

/// When and by whom a participant entry says the person joined; `None` when not in the group.
fn membership_of(participant: &tl::enums::ChannelParticipant) -> Option<Membership> {
    use tl::enums::ChannelParticipant as P;
    if !is_present(participant) {
        return None;
    }
    Some(match participant {
        P::Participant(p) => Membership {
            date: Some(p.date.into()),
            inviter_id: None,
        },
        P::ParticipantSelf(p) => Membership {
            date: Some(p.date.into()),
            inviter_id: Some(p.inviter_id),
        },
        P::Admin(a) => Membership {
            date: Some(a.date.into()),
            inviter_id: a.inviter_id,
        },
        P::Banned(b) => Membership {
            date: Some(b.date.into()),
            inviter_id: None,
        },
        // The creator was there from the start.
        P::Creator(_) | P::Left(_) => Membership {
            date: Some(0),
            inviter_id: None,
        },
    })
}

/// A participant entry that means "in the group" (not left, not removed).
fn is_present(participant: &tl::enums::ChannelParticipant) -> bool {
    match participant {
        tl::enums::ChannelParticipant::Left(_) => false,
        tl::enums::ChannelParticipant::Banned(b) => {
            let tl::enums::ChatBannedRights::Rights(r) = &b.banned_rights;
            !b.left && !r.view_messages
        }
        _ => true,
    }
}

fn chat_has_member(full: &tl::enums::ChatFull, user_id: i64) -> Option<bool> {
    let tl::enums::ChatFull::Full(f) = full else {
        return None;
    };
    match &f.participants {
        tl::enums::ChatParticipants::Participants(p) => {
            Some(p.participants.iter().any(|m| match m {
                tl::enums::ChatParticipant::Participant(m) => m.user_id == user_id,
                tl::enums::ChatParticipant::Creator(m) => m.user_id == user_id,
                tl::enums::ChatParticipant::Admin(m) => m.user_id == user_id,
            }))
        }
        tl::enums::ChatParticipants::Forbidden(_) => None,
    }
}

/// `users.getUsers` of the signed-in user itself.
fn get_self() -> tl::functions::users::GetUsers {
    tl::functions::users::GetUsers {
        id: vec![tl::enums::InputUser::UserSelf],
    }
}

/// The signed-in user from the answer to [`get_self`].
fn self_user(users: Vec<tl::enums::User>) -> Result<SelfUser, ApiError> {
    match users.into_iter().next() {
        Some(tl::enums::User::User(u)) => Ok(SelfUser {
            id: u.id,
            bot: u.bot,
            username: u.username,
            phone: u.phone,
        }),
        _ => Err(ApiError::Unexpected("users.getUsers returned no self user")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(user_id: i64, would: bool, pm: bool) -> tl::enums::MissingInvitee {
        tl::enums::MissingInvitee::Invitee(tl::types::MissingInvitee {
            premium_would_allow_invite: would,
            premium_required_for_pm: pm,
            user_id,
        })
    }

    fn add_user_update(user_id: i64) -> tl::enums::Update {
        tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
            message: tl::enums::Message::Service(tl::types::MessageService {
                out: true,
                mentioned: false,
                media_unread: false,
                reactions_are_possible: false,
                silent: false,
                post: false,
                legacy: false,
                id: 10,
                from_id: None,
                peer_id: tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id: 5 }),
                saved_peer_id: None,
                reply_to: None,
                date: 0,
                action: tl::enums::MessageAction::ChatAddUser(
                    tl::types::MessageActionChatAddUser {
                        users: vec![user_id],
                    },
                ),
                reactions: None,
                ttl_period: None,
            }),
            pts: 1,
            pts_count: 1,
        })
    }

    fn updates(list: Vec<tl::enums::Update>) -> tl::enums::Updates {
        tl::enums::Updates::Updates(tl::types::Updates {
            updates: list,
            users: vec![],
            chats: vec![],
            date: 0,
            seq: 0,
        })
    }

    fn admin_rights(invite_users: bool) -> tl::enums::ChatAdminRights {
        tl::enums::ChatAdminRights::Rights(tl::types::ChatAdminRights {
            change_info: false,
            post_messages: false,
            edit_messages: false,
            delete_messages: false,
            ban_users: false,
            invite_users,
            pin_messages: false,
            add_admins: false,
            anonymous: false,
            manage_call: false,
            other: false,
            manage_topics: false,
            post_stories: false,
            edit_stories: false,
            delete_stories: false,
            manage_direct_messages: false,
            manage_ranks: false,
            manage_linked_peers: false,
            manage_welcome_messages: false,
        })
    }

    fn banned_rights(invite_users: bool, view_messages: bool) -> tl::enums::ChatBannedRights {
        tl::enums::ChatBannedRights::Rights(tl::types::ChatBannedRights {
            view_messages,
            send_messages: false,
            send_media: false,
            send_stickers: false,
            send_gifs: false,
            send_games: false,
            send_inline: false,
            embed_links: false,
            send_polls: false,
            change_info: false,
            invite_users,
            pin_messages: false,
            manage_topics: false,
            send_photos: false,
            send_videos: false,
            send_roundvideos: false,
            send_audios: false,
            send_voices: false,
            send_docs: false,
            send_plain: false,
            edit_rank: false,
            send_reactions: false,
            manage_linked_peers: false,
            until_date: 0,
        })
    }

    fn channel(id: i64, megagroup: bool, default_invite_banned: Option<bool>) -> tl::enums::Chat {
        tl::enums::Chat::Channel(tl::types::Channel {
            creator: false,
            left: false,
            broadcast: !megagroup,
            verified: false,
            megagroup,
            restricted: false,
            signatures: false,
            min: false,
            scam: false,
            has_link: false,
            has_geo: false,
            slowmode_enabled: false,
            call_active: false,
            call_not_empty: false,
            fake: false,
            gigagroup: false,
            noforwards: false,
            join_to_send: false,
            join_request: false,
            forum: false,
            stories_hidden: false,
            stories_hidden_min: false,
            stories_unavailable: false,
            signature_profiles: false,
            autotranslation: false,
            broadcast_messages_allowed: false,
            monoforum: false,
            forum_tabs: false,
            id,
            access_hash: Some(777),
            title: "t".into(),
            username: None,
            photo: tl::enums::ChatPhoto::Empty,
            date: 0,
            restriction_reason: None,
            admin_rights: None,
            banned_rights: None,
            default_banned_rights: default_invite_banned.map(|b| banned_rights(b, false)),
            participants_count: Some(150),
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            emoji_status: None,
            level: None,
            subscription_until_date: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_monoforum_id: None,
            linked_community_id: None,
        })
    }

    #[test]
    fn missing_invitees_are_reported_with_premium_flags() {
        let invited = tl::types::messages::InvitedUsers {
            updates: tl::enums::Updates::TooLong,
            missing_invitees: vec![missing(42, true, false)],
        };
        let report = invite_report(&invited, 42);
        assert_eq!(
            report.missing,
            vec![MissingInvitee {
                user_id: 42,
                premium_would_allow_invite: true,
                premium_required_for_pm: false,
            }]
        );
        assert!(!report.confirmed_by_update);
    }

    #[test]
    fn a_service_message_confirms_the_add() {
        let invited = tl::types::messages::InvitedUsers {
            updates: updates(vec![add_user_update(42)]),
            missing_invitees: vec![],
        };
        assert!(invite_report(&invited, 42).confirmed_by_update);
        assert!(!invite_report(&invited, 43).confirmed_by_update);
    }

    #[test]
    fn sent_message_ids() {
        let short = tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
            out: true,
            id: 99,
            pts: 0,
            pts_count: 0,
            date: 0,
            media: None,
            entities: None,
            ttl_period: None,
        });
        assert_eq!(sent_message_id(&short, 5), Some(99));
        let long = updates(vec![tl::enums::Update::MessageId(
            tl::types::UpdateMessageId {
                id: 7,
                random_id: 5,
            },
        )]);
        assert_eq!(sent_message_id(&long, 5), Some(7));
        assert_eq!(sent_message_id(&long, 6), None);
    }

    fn with(chat: tl::enums::Chat, edit: impl FnOnce(&mut tl::types::Channel)) -> tl::enums::Chat {
        let tl::enums::Chat::Channel(mut c) = chat else {
            unreachable!("a channel")
        };
        edit(&mut c);
        tl::enums::Chat::Channel(c)
    }

    fn basic_group(default_invite_banned: Option<bool>) -> tl::enums::Chat {
        tl::enums::Chat::Chat(tl::types::Chat {
            creator: false,
            left: false,
            deactivated: false,
            call_active: false,
            call_not_empty: false,
            noforwards: false,
            id: 9,
            title: "g".into(),
            photo: tl::enums::ChatPhoto::Empty,
            participants_count: 3,
            date: 0,
            version: 1,
            migrated_to: None,
            admin_rights: None,
            default_banned_rights: default_invite_banned.map(|b| banned_rights(b, false)),
        })
    }

    /// The account's rights read from the group's own object, as resolution returns it.
    #[test]
    fn own_rights_from_the_group_object() {
        let open = || channel(5, true, Some(false));
        let closed = || channel(5, true, Some(true));
        let admin =
            |invite| move |c: &mut tl::types::Channel| c.admin_rights = Some(admin_rights(invite));
        let cases: Vec<(&str, tl::enums::Chat, Option<OwnRole>, bool)> = vec![
            (
                "creator of a closed supergroup",
                with(closed(), |c| c.creator = true),
                Some(OwnRole::Creator),
                true,
            ),
            (
                "creator of a broadcast channel",
                with(channel(5, false, None), |c| c.creator = true),
                Some(OwnRole::Creator),
                true,
            ),
            (
                "admin with invite_users",
                with(closed(), admin(true)),
                Some(OwnRole::Admin { invite_users: true }),
                true,
            ),
            (
                "admin without invite_users, closed",
                with(closed(), admin(false)),
                Some(OwnRole::Admin {
                    invite_users: false,
                }),
                false,
            ),
            (
                "admin without invite_users, open",
                with(open(), admin(false)),
                Some(OwnRole::Admin {
                    invite_users: false,
                }),
                true,
            ),
            (
                "admin of a broadcast channel without invite_users",
                with(channel(5, false, None), admin(false)),
                Some(OwnRole::Admin {
                    invite_users: false,
                }),
                false,
            ),
            (
                "plain member of an open supergroup",
                open(),
                Some(OwnRole::Member),
                true,
            ),
            (
                "plain member of a closed supergroup",
                closed(),
                Some(OwnRole::Member),
                false,
            ),
            (
                "plain member, no default rights sent",
                channel(5, true, None),
                Some(OwnRole::Member),
                true,
            ),
            (
                "plain member of a broadcast channel",
                channel(5, false, Some(false)),
                Some(OwnRole::Member),
                false,
            ),
            (
                "member restricted from inviting in an open supergroup",
                with(open(), |c| {
                    c.banned_rights = Some(banned_rights(true, false))
                }),
                Some(OwnRole::Member),
                false,
            ),
            (
                "banned from viewing",
                with(open(), |c| {
                    c.banned_rights = Some(banned_rights(true, true))
                }),
                Some(OwnRole::Banned),
                false,
            ),
            (
                "left the supergroup",
                with(open(), |c| c.left = true),
                Some(OwnRole::NotMember),
                false,
            ),
            (
                "a min object says nothing",
                with(open(), |c| c.min = true),
                None,
                false,
            ),
            (
                "basic group without default rights",
                basic_group(None),
                Some(OwnRole::Member),
                true,
            ),
            (
                "basic group whose default rights allow invites",
                basic_group(Some(false)),
                Some(OwnRole::Member),
                true,
            ),
            (
                "basic group that forbids invites",
                basic_group(Some(true)),
                Some(OwnRole::Member),
                false,
            ),
        ];
        for (name, chat, role, can) in cases {
            let rights = rights_of_chat(&chat);
            assert_eq!(rights.map(|r| r.role), role, "{name}");
            assert_eq!(rights.is_some_and(|r| r.can_invite()), can, "{name}");
        }
        let forbidden = tl::enums::Chat::ChannelForbidden(tl::types::ChannelForbidden {
            broadcast: false,
            megagroup: true,
            monoforum: false,
            id: 5,
            access_hash: 1,
            title: "t".into(),
            until_date: None,
        });
        assert_eq!(
            rights_of_chat(&forbidden).map(|r| r.role),
            Some(OwnRole::Banned)
        );
    }

    #[test]
    fn membership_entries_say_when_and_by_whom() {
        let plain = tl::enums::ChannelParticipant::Participant(tl::types::ChannelParticipant {
            user_id: 42,
            date: 1_700_000_000,
            subscription_until_date: None,
            rank: None,
        });
        assert_eq!(
            membership_of(&plain),
            Some(Membership {
                date: Some(1_700_000_000),
                inviter_id: None
            })
        );
        let admin = tl::enums::ChannelParticipant::Admin(tl::types::ChannelParticipantAdmin {
            can_edit: false,
            is_self: false,
            user_id: 42,
            inviter_id: Some(9),
            promoted_by: 9,
            date: 5,
            admin_rights: admin_rights(true),
            rank: None,
        });
        assert_eq!(membership_of(&admin).and_then(|m| m.inviter_id), Some(9));
        let left = tl::enums::ChannelParticipant::Left(tl::types::ChannelParticipantLeft {
            peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: 42 }),
        });
        assert_eq!(membership_of(&left), None);
    }

    #[test]
    fn a_kicked_participant_is_not_present() {
        let kicked = tl::enums::ChannelParticipant::Banned(tl::types::ChannelParticipantBanned {
            left: true,
            peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: 1 }),
            kicked_by: 2,
            date: 0,
            banned_rights: banned_rights(true, true),
            rank: None,
        });
        assert!(!is_present(&kicked));
    }

    fn service_message(id: i32, peer: tl::enums::Peer, date: i32) -> tl::enums::Message {
        tl::enums::Message::Service(tl::types::MessageService {
            out: false,
            mentioned: false,
            media_unread: false,
            reactions_are_possible: false,
            silent: false,
            post: false,
            legacy: false,
            id,
            from_id: None,
            peer_id: peer,
            saved_peer_id: None,
            reply_to: None,
            date,
            action: tl::enums::MessageAction::Empty,
            reactions: None,
            ttl_period: None,
        })
    }

    fn dialog(peer: tl::enums::Peer, top_message: i32) -> tl::enums::Dialog {
        tl::enums::Dialog::Dialog(tl::types::Dialog {
            pinned: false,
            unread_mark: false,
            view_forum_as_messages: false,
            peer,
            top_message,
            read_inbox_max_id: 0,
            read_outbox_max_id: 0,
            unread_count: 0,
            unread_mentions_count: 0,
            unread_reactions_count: 0,
            unread_poll_votes_count: 0,
            notify_settings: tl::enums::PeerNotifySettings::Settings(
                tl::types::PeerNotifySettings {
                    show_previews: None,
                    silent: None,
                    mute_until: None,
                    ios_sound: None,
                    android_sound: None,
                    other_sound: None,
                    stories_muted: None,
                    stories_hide_sender: None,
                    stories_ios_sound: None,
                    stories_android_sound: None,
                    stories_other_sound: None,
                },
            ),
            pts: None,
            draft: None,
            folder_id: None,
            ttl_period: None,
        })
    }

    /// A full page of basic-group dialogs (chats 1..=100, newest first), ending with `last`.
    fn full_page(
        last: tl::enums::Peer,
        chats: Vec<tl::enums::Chat>,
    ) -> tl::enums::messages::Dialogs {
        let mut peers: Vec<tl::enums::Peer> = (1..DIALOGS_PAGE as i64)
            .map(|chat_id| tl::enums::Peer::Chat(tl::types::PeerChat { chat_id }))
            .collect();
        peers.push(last);
        let dialogs = peers
            .iter()
            .enumerate()
            .map(|(i, p)| dialog(p.clone(), 1000 + i as i32))
            .collect();
        let messages = peers
            .iter()
            .enumerate()
            .map(|(i, p)| service_message(1000 + i as i32, p.clone(), 50_000 - i as i32))
            .collect();
        tl::enums::messages::Dialogs::Slice(tl::types::messages::DialogsSlice {
            count: 1000,
            dialogs,
            messages,
            chats,
            users: vec![],
        })
    }

    /// A `-100…` id is found among the account's dialogs, with the hash valid for it; the next
    /// page starts after the last dialog of this one.
    #[test]
    fn channel_ids_are_resolved_through_the_dialogs() {
        let last = tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id: 8 });
        let page = full_page(last.clone(), vec![channel(8, true, None)]);
        let (found, next) = dialogs_page(page.clone(), 5);
        assert!(found.is_none());
        assert_eq!(
            next,
            Some(DialogsOffset {
                date: 50_000 - (DIALOGS_PAGE - 1),
                id: 1000 + DIALOGS_PAGE - 1,
                peer: tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
                    channel_id: 8,
                    access_hash: 777,
                }),
            })
        );
        let (found, next) = dialogs_page(page, 8);
        assert_eq!(
            found.as_ref().map(group_of_chat),
            Some(GroupLookup::Found(GroupPeer::Channel {
                channel: ChannelRef {
                    id: 8,
                    access_hash: 777
                },
                broadcast: false
            }))
        );
        assert!(next.is_none());
        // The whole list in one answer: nothing more to read.
        let tl::enums::messages::Dialogs::Slice(slice) = full_page(last, vec![]) else {
            unreachable!()
        };
        let all = tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs {
            dialogs: slice.dialogs,
            messages: slice.messages,
            chats: slice.chats,
            users: slice.users,
        });
        assert_eq!(dialogs_page(all, 5), (None, None));
    }

    #[test]
    fn an_accounts_device_fields_replace_the_defaults_it_has() {
        let defaults = ClientParams::default();
        let device = DeviceFields {
            device_model: Some("Pixel 7".into()),
            system_version: Some("Android 14".into()),
            app_version: Some("10.14.5 (4990)".into()),
            system_lang_code: None,
            lang_code: Some("ru".into()),
        };
        let p = defaults.presenting(&device);
        assert_eq!(p.device_model, "Pixel 7");
        assert_eq!(p.system_version, "Android 14");
        assert_eq!(p.app_version, "10.14.5 (4990)");
        assert_eq!(p.lang_code, "ru");
        assert_eq!(p.system_lang_code, defaults.system_lang_code);
        assert_eq!(p.connect_timeout, defaults.connect_timeout);
        let c = p.connection_params();
        assert_eq!(c.device_model, "Pixel 7");
        assert_eq!(c.lang_code, "ru");
        assert_eq!(defaults.presenting(&DeviceFields::default()), defaults);
    }

    #[test]
    fn group_ids_and_resolution() {
        assert!(matches!(
            split_group_id(-1_001_234_567_890),
            GroupId::Channel(1_234_567_890)
        ));
        assert!(matches!(split_group_id(-4567), GroupId::Chat(4567)));
        assert!(matches!(
            split_group_id(1_234_567_890),
            GroupId::Channel(1_234_567_890)
        ));
        assert_eq!(
            group_of_chat(&channel(5, false, None)),
            GroupLookup::Found(GroupPeer::Channel {
                channel: ChannelRef {
                    id: 5,
                    access_hash: 777
                },
                broadcast: true
            })
        );
        let resolved = tl::types::contacts::ResolvedPeer {
            peer: tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id: 5 }),
            chats: vec![channel(5, true, None)],
            users: vec![],
        };
        assert!(matches!(
            resolved_group(&resolved),
            GroupLookup::Found(GroupPeer::Channel {
                broadcast: false,
                ..
            })
        ));
        assert_eq!(resolved_user(&resolved), ResolvedPeer::NotAUser);
    }

    #[test]
    fn phone_import_results() {
        let none = tl::types::contacts::ImportedContacts {
            imported: vec![],
            popular_invites: vec![],
            retry_contacts: vec![],
            users: vec![],
        };
        assert_eq!(phone_lookup(&none), PhoneLookup::NotFound);
        let retry = tl::types::contacts::ImportedContacts {
            retry_contacts: vec![1],
            ..none.clone()
        };
        assert_eq!(phone_lookup(&retry), PhoneLookup::RetryLater);
        let found = tl::types::contacts::ImportedContacts {
            imported: vec![tl::enums::ImportedContact::Contact(
                tl::types::ImportedContact {
                    user_id: 42,
                    client_id: 1,
                },
            )],
            ..none
        };
        // No user object with a hash came back: hash 0 (ambient: the person is now a contact).
        assert_eq!(
            phone_lookup(&found),
            PhoneLookup::Found(UserRef {
                id: 42,
                access_hash: 0
            })
        );
    }
}
