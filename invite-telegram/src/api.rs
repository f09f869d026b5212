//! The seam: [`TelegramApi`], the few Telegram calls the strategy makes, in this crate's own
//! types, and [`Connector`], which opens one for an account.
//!
//! Implementations: [`GrammersApi`](crate::grammers::GrammersApi) /
//! [`GrammersConnector`](crate::grammers::GrammersConnector) on grammers 0.11, and
//! `MockTelegramApi` / `MockConnector` (mockall) in this crate's tests and, with the `mock`
//! feature, for other crates. Nothing here names a grammers or TL type, so a grammers upgrade
//! stays inside `grammers.rs`.

use std::fmt;
use std::sync::Arc;

use invite_core::async_trait;
use invite_core::domain::GroupRef;

use crate::errors::ApiError;
use crate::session::SessionString;

/// A user as this account sees them: id and this account's access hash for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// Telegram user id.
    pub id: i64,
    /// Access hash, valid only for the account that resolved it (0: none known).
    pub access_hash: i64,
}

/// A channel or supergroup as this account sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// Bare channel id (without the `-100` prefix).
    pub id: i64,
    /// Access hash for this account.
    pub access_hash: i64,
}

/// A group that people can be invited into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupPeer {
    /// A channel: a broadcast channel or a supergroup (megagroup).
    Channel {
        /// The channel.
        channel: ChannelRef,
        /// A broadcast channel (adds stop at 200 members) rather than a supergroup.
        broadcast: bool,
    },
    /// A basic (legacy) group.
    Chat {
        /// Chat id.
        id: i64,
    },
}

/// What a group reference resolved to, for this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLookup {
    /// A group the account can see.
    Found(GroupPeer),
    /// The reference names a user or something else that is not a group.
    NotAGroup,
    /// An invite link to a group the account is not a member of.
    NotMember,
}

/// The account itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfUser {
    /// Its user id.
    pub id: i64,
    /// A bot account (refused: campaigns run from user accounts).
    pub bot: bool,
    /// Its username, when it has one.
    pub username: Option<String>,
    /// Its phone number (digits only), when Telegram shows it. Never log it.
    pub phone: Option<String>,
}

/// What `@username` resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedPeer {
    /// A user.
    User {
        /// The user.
        user: UserRef,
        /// A bot.
        bot: bool,
    },
    /// A channel or group (not a person).
    NotAUser,
}

/// Result of importing a phone number as a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneLookup {
    /// The phone belongs to this user.
    Found(UserRef),
    /// No Telegram user with that phone (or hidden by their privacy settings).
    NotFound,
    /// Telegram asked to import it later (`retry_contacts`): a soft limit of the account.
    RetryLater,
}

/// A user that an invite could not add (`missingInvitee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingInvitee {
    /// The user.
    pub user_id: i64,
    /// Only our account's lack of Premium prevented the add.
    pub premium_would_allow_invite: bool,
    /// Sending them an invite link by message also needs Premium.
    pub premium_required_for_pm: bool,
}

/// What an invite call returned (`messages.invitedUsers`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InviteReport {
    /// Users that could not be added, with the reason flags.
    pub missing: Vec<MissingInvitee>,
    /// The returned updates include the service message "added" for the user.
    pub confirmed_by_update: bool,
}

/// A message that was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentMessage {
    /// Its id in the conversation, when the answer carried it.
    pub message_id: Option<i32>,
}

/// A person's membership entry in a channel (`channels.getParticipant`), to tell an add from
/// someone who was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// When they joined (unix seconds), when Telegram says (0 for the creator: there from the
    /// start).
    pub date: Option<i64>,
    /// Who added them, when Telegram says (only in some entries).
    pub inviter_id: Option<i64>,
}

/// The account's own standing in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnRole {
    /// The creator.
    Creator,
    /// An administrator.
    Admin {
        /// Its admin rights include inviting users.
        invite_users: bool,
    },
    /// A plain member.
    Member,
    /// Banned or restricted in the group.
    Banned,
    /// Not a member.
    NotMember,
}

/// The account's invite rights in a group, as read from Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnRights {
    /// Its role.
    pub role: OwnRole,
    /// The group's default rights let plain members invite (false for broadcast channels).
    pub members_may_invite: bool,
}

impl OwnRights {
    /// Creator, admin with invite rights, or member of a group whose default rights allow
    /// invites.
    pub const fn can_invite(&self) -> bool {
        match self.role {
            OwnRole::Creator => true,
            // Administrators keep what every member may do.
            OwnRole::Admin { invite_users } => invite_users || self.members_may_invite,
            OwnRole::Member => self.members_may_invite,
            OwnRole::Banned | OwnRole::NotMember => false,
        }
    }
}

/// The Telegram calls the strategy makes, for one connected account. Implementations do not
/// retry, sleep or time out: the strategy times every call and the engine decides on retries.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TelegramApi: Send + Sync {
    /// The account itself (`users.getUsers([self])`); also proves the session is alive.
    async fn get_me(&self) -> Result<SelfUser, ApiError>;

    /// `contacts.resolveUsername`.
    async fn resolve_username(&self, username: &str) -> Result<ResolvedPeer, ApiError>;

    /// `contacts.importContacts` with one phone (this also adds the person to contacts).
    async fn import_phone(
        &self,
        phone: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<PhoneLookup, ApiError>;

    /// Finds a group by `@name` (`contacts.resolveUsername`), numeric id
    /// (`channels.getChannels` / `messages.getChats`) or invite link (`messages.checkChatInvite`).
    async fn resolve_group(&self, group: &GroupRef) -> Result<GroupLookup, ApiError>;

    /// `channels.inviteToChannel` with one user.
    async fn invite_to_channel(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<InviteReport, ApiError>;

    /// `messages.addChatUser` (basic groups).
    async fn add_chat_user(&self, chat_id: i64, user: UserRef) -> Result<InviteReport, ApiError>;

    /// `messages.sendMessage` with the caller's `random_id`.
    async fn send_message(
        &self,
        user: UserRef,
        text: &str,
        random_id: i64,
    ) -> Result<SentMessage, ApiError>;

    /// `contacts.deleteContacts` with one user (undoes a phone import; their access hash
    /// stays valid).
    async fn delete_contact(&self, user: UserRef) -> Result<(), ApiError>;

    /// `contacts.addContact`.
    async fn add_contact(
        &self,
        user: UserRef,
        first_name: &str,
        last_name: &str,
    ) -> Result<(), ApiError>;

    /// The account's own rights in the group, read from the group's `Channel` / `Chat` object
    /// (its own `creator`, `admin_rights`, `banned_rights` and the group's
    /// `default_banned_rights`): the object the group's resolution returned when there was one,
    /// else `channels.getChannels` / `messages.getChats`.
    async fn own_rights(&self, group: GroupPeer) -> Result<OwnRights, ApiError>;

    /// A channel's member count (`channels.getFullChannel`), when Telegram tells it.
    async fn member_count(&self, channel: ChannelRef) -> Result<Option<i32>, ApiError>;

    /// Whether the user is a member of the group (`channels.getParticipant` /
    /// `messages.getFullChat`).
    async fn is_participant(&self, group: GroupPeer, user: UserRef) -> Result<bool, ApiError>;

    /// The user's membership entry in a channel (`channels.getParticipant`), `None` when
    /// they are not in it.
    async fn membership(
        &self,
        channel: ChannelRef,
        user: UserRef,
    ) -> Result<Option<Membership>, ApiError>;

    /// Closes the connection; later calls fail.
    async fn disconnect(&self);
}

/// The device an account's login was made on, as `initConnection` presents it (shown in the
/// user's "active sessions"). A field left out takes the connector's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFields {
    /// Device model (`Pixel 7`, `Desktop`).
    pub device_model: Option<String>,
    /// Operating system and version (`Android 14`, `Windows 10`).
    pub system_version: Option<String>,
    /// Application version (`10.14.5 (4990)`).
    pub app_version: Option<String>,
    /// System language (ISO 639-1).
    pub system_lang_code: Option<String>,
    /// Application language.
    pub lang_code: Option<String>,
}

impl DeviceFields {
    /// No field set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Opens a [`TelegramApi`] for an account from its decoded session.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// Builds the client. Network I/O happens on the first call, not here.
    async fn connect(
        &self,
        session: &SessionString,
        api_id: i32,
    ) -> Result<Arc<dyn TelegramApi>, ApiError>;

    /// Like [`Connector::connect`], presenting the account's own device in `initConnection`
    /// (the one its login was made on). Connectors that present no device ignore it.
    async fn connect_as(
        &self,
        session: &SessionString,
        api_id: i32,
        device: &DeviceFields,
    ) -> Result<Arc<dyn TelegramApi>, ApiError> {
        let _ = device;
        self.connect(session, api_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_rights_rules() {
        let r = |role, members_may_invite| OwnRights {
            role,
            members_may_invite,
        };
        assert!(r(OwnRole::Creator, false).can_invite());
        assert!(r(OwnRole::Admin { invite_users: true }, false).can_invite());
        assert!(
            !r(
                OwnRole::Admin {
                    invite_users: false
                },
                false
            )
            .can_invite()
        );
        assert!(
            r(
                OwnRole::Admin {
                    invite_users: false
                },
                true
            )
            .can_invite()
        );
        assert!(r(OwnRole::Member, true).can_invite());
        assert!(!r(OwnRole::Member, false).can_invite());
        assert!(!r(OwnRole::Banned, true).can_invite());
        assert!(!r(OwnRole::NotMember, true).can_invite());
    }
}
