//! Errors of Telegram calls and their one mapping to the core's [`PlatformError`].
//!
//! [`ApiError`] is what the [`TelegramApi`](crate::api::TelegramApi) seam returns: a grammers
//! error stripped of grammers types. [`classify`] turns it into a [`PlatformError`] class of
//! SPEC §6, through one table ([`RPC_TABLE`]) with a row for every error in
//! `research/telegram-errors.md` and a few fallbacks by error code. Whether the call was a read
//! or a write ([`CallKind`]) decides how a server failure or a lost connection reads: a read is
//! simply retried, a write may have been carried out and so is ambiguous.

use std::io;
use std::time::Duration;

use invite_core::domain::Outcome;
use invite_core::ports::PlatformError;

/// Whether a call changes state on Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Looks something up (resolve, rights, member count, membership, who am I).
    Read,
    /// Changes something (invite, message, contact import or add).
    Write,
}

/// An error of one Telegram call, free of grammers types. Never carries secrets, phone numbers
/// or message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Telegram answered with an RPC error. `name` is as grammers parses it: the number is taken
    /// out (`FLOOD_WAIT_31` → `FLOOD_WAIT`, value 31).
    #[error("rpc error {code}: {name}{}", value.map(|v| format!(" ({v})")).unwrap_or_default())]
    Rpc {
        /// HTTP-like code (400, 401, 420, 500, …).
        code: i32,
        /// Error name.
        name: String,
        /// The number that was part of the name, if any.
        value: Option<u32>,
    },
    /// A network error. Connection set-up errors mean the request never left.
    #[error("i/o error: {0:?}")]
    Io(io::ErrorKind),
    /// No answer within the call timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A transport-level status from Telegram (404: unknown auth key, 429: too many connections).
    #[error("transport status {0}")]
    TransportStatus(u32),
    /// The answer could not be read (framing or deserialisation): the request did arrive.
    #[error("unreadable response")]
    BadResponse,
    /// The client gave up on the request (its connection task is gone); it may have left.
    #[error("request dropped by the client")]
    Dropped,
    /// The client failed before sending anything (session storage, unknown data centre, key
    /// exchange).
    #[error("client failure before sending: {0}")]
    Local(&'static str),
    /// Telegram answered with something this adapter did not expect.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
    /// The call failed before its request was handed to a connection (while the connection
    /// was being made or checked, or on a client already given up): nothing left, so even a
    /// write is only transient.
    #[error("not sent: {0}")]
    NotSent(Box<ApiError>),
}

impl ApiError {
    /// An RPC error with this name (as grammers parses it).
    pub fn rpc(code: i32, name: impl Into<String>, value: Option<u32>) -> Self {
        Self::Rpc {
            code,
            name: name.into(),
            value,
        }
    }

    /// Whether this is the RPC error `name`.
    pub fn is(&self, name: &str) -> bool {
        match self {
            Self::Rpc { name: n, .. } => n == name,
            Self::NotSent(inner) => inner.is(name),
            _ => false,
        }
    }

    /// This error, marked as raised before the request left.
    pub fn not_sent(self) -> Self {
        match self {
            Self::NotSent(_) => self,
            other => Self::NotSent(Box::new(other)),
        }
    }

    /// The client's connection is not to be trusted after this error (lost, timed out, given
    /// up, unreadable, refused by the transport): the caller drops the client and the next
    /// call opens a new one.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Self::Io(_)
            | Self::Timeout(_)
            | Self::Dropped
            | Self::BadResponse
            | Self::TransportStatus(_) => true,
            Self::Rpc { name, .. } => name == "CONNECTION_NOT_INITED",
            Self::NotSent(inner) => inner.breaks_connection(),
            Self::Local(_) | Self::Unexpected(_) => false,
        }
    }
}

/// How one RPC error name is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The target cannot be reached; the account goes on.
    Target(Outcome),
    /// The account waits the number of seconds in the error.
    Wait,
    /// The account is restricted (spam limits): long cooldown.
    Restricted,
    /// The account is unusable until an operator acts.
    Dead,
    /// The group is unusable, for this account only or for all.
    Group {
        /// Only this account is affected.
        account_only: bool,
    },
    /// A server-side failure: ambiguous for a write, retried for a read.
    Server,
    /// Telegram refused without doing anything, for a reason that may pass (a data-centre
    /// redirect, a client-side key state): the request was not carried out and is retried
    /// without being charged.
    Refused,
    /// Telegram did not accept this account's handle of a person (`USER_ID_INVALID`,
    /// `PEER_ID_INVALID`): access hashes are per account, and one this account lacks or holds
    /// stale says nothing about whether another account can reach them. Nothing was done:
    /// transient, so the target goes back to be tried again, by another account too.
    AccountPeer,
    /// Known, but with no meaning for the engine (client bugs): counted as unknown.
    Unknown,
}

/// Every Telegram error this adapter knows, by the name grammers gives it. Rows follow the
/// taxonomy of `research/telegram-errors.md` (and SPEC §6) in its order.
pub const RPC_TABLE: &[(&str, Rule)] = &[
    // 420 family.
    ("FLOOD_WAIT", Rule::Wait),
    ("FLOOD_PREMIUM_WAIT", Rule::Wait),
    ("SLOWMODE_WAIT", Rule::Wait),
    // A 420 that is not a wait: the account is frozen.
    ("FROZEN_METHOD_INVALID", Rule::Dead),
    // Account spam limits.
    ("PEER_FLOOD", Rule::Restricted),
    ("USER_RESTRICTED", Rule::Restricted),
    ("USER_BANNED_IN_CHANNEL", Rule::Restricted),
    // The target.
    (
        "USER_PRIVACY_RESTRICTED",
        Rule::Target(Outcome::PrivacyRestricted),
    ),
    (
        "USER_NOT_MUTUAL_CONTACT",
        Rule::Target(Outcome::NotMutualContact),
    ),
    (
        "USER_CHANNELS_TOO_MUCH",
        Rule::Target(Outcome::TargetChannelsFull),
    ),
    // Not a failure: the strategy turns it into `AlreadyMember`.
    (
        "USER_ALREADY_PARTICIPANT",
        Rule::Target(Outcome::AlreadyMember),
    ),
    ("USER_KICKED", Rule::Target(Outcome::KickedInTarget)),
    ("USER_BLOCKED", Rule::Target(Outcome::BlockedUs)),
    ("USER_BOT", Rule::Target(Outcome::Unresolvable)),
    ("BOTS_TOO_MUCH", Rule::Target(Outcome::Unresolvable)),
    ("INPUT_USER_DEACTIVATED", Rule::Target(Outcome::Deleted)),
    // This account's access hash, not the person (see `Rule::AccountPeer`).
    ("USER_ID_INVALID", Rule::AccountPeer),
    ("PEER_ID_INVALID", Rule::AccountPeer),
    ("USERNAME_NOT_OCCUPIED", Rule::Target(Outcome::NotFound)),
    ("USERNAME_INVALID", Rule::Target(Outcome::Unresolvable)),
    ("STARREF_EXPIRED", Rule::Target(Outcome::Unresolvable)),
    // The group.
    ("CHAT_ADMIN_REQUIRED", Rule::Group { account_only: true }),
    ("CHAT_WRITE_FORBIDDEN", Rule::Group { account_only: true }),
    ("CHANNEL_PRIVATE", Rule::Group { account_only: true }),
    ("USER_NOT_PARTICIPANT", Rule::Group { account_only: true }),
    // The account's handle of the group: an access hash it lacks or holds stale (hashes are
    // per account), or a basic group it is not in. Another account may well reach it.
    ("CHANNEL_INVALID", Rule::Group { account_only: true }),
    ("CHAT_INVALID", Rule::Group { account_only: true }),
    ("CHAT_ID_INVALID", Rule::Group { account_only: true }),
    (
        "CHANNEL_MONOFORUM_UNSUPPORTED",
        Rule::Group {
            account_only: false,
        },
    ),
    // "Could not add participants", unexplained: an answer to a write, so it is charged. It
    // is usually persistent for that person (retrying only spends more of the account's
    // invites): the target ends.
    (
        "CHAT_MEMBER_ADD_FAILED",
        Rule::Target(Outcome::UnknownError),
    ),
    // Chat full, or a broadcast channel past 200 members.
    (
        "USERS_TOO_MUCH",
        Rule::Group {
            account_only: false,
        },
    ),
    // Joining (our account) — not called by this adapter, mapped for completeness.
    ("CHANNELS_TOO_MUCH", Rule::Group { account_only: true }),
    ("INVITE_REQUEST_SENT", Rule::Group { account_only: true }),
    (
        "INVITE_HASH_EXPIRED",
        Rule::Group {
            account_only: false,
        },
    ),
    (
        "INVITE_HASH_INVALID",
        Rule::Group {
            account_only: false,
        },
    ),
    (
        "CHAT_RESTRICTED",
        Rule::Group {
            account_only: false,
        },
    ),
    (
        "CHAT_SEND_PLAIN_FORBIDDEN",
        Rule::Group {
            account_only: false,
        },
    ),
    // Direct messages.
    ("USER_IS_BLOCKED", Rule::Target(Outcome::BlockedUs)),
    // Our account blocked the person: treated like a block, so they are not contacted.
    ("YOU_BLOCKED_USER", Rule::Target(Outcome::BlockedUs)),
    (
        "PRIVACY_PREMIUM_REQUIRED",
        Rule::Target(Outcome::PremiumRequired),
    ),
    (
        "ALLOW_PAYMENT_REQUIRED",
        Rule::Target(Outcome::PaidMessagesRequired),
    ),
    ("USER_IS_BOT", Rule::Target(Outcome::Unresolvable)),
    // The rendered message is refused for this person (no outcome names content errors).
    ("MESSAGE_TOO_LONG", Rule::Target(Outcome::UnknownError)),
    ("MESSAGE_EMPTY", Rule::Target(Outcome::UnknownError)),
    ("ENTITY_BOUNDS_INVALID", Rule::Target(Outcome::UnknownError)),
    ("ENTITIES_TOO_LONG", Rule::Target(Outcome::UnknownError)),
    // Reuse of a random_id. `send_message` reads it as "already sent"; anywhere else it is
    // a 500 like the others.
    ("RANDOM_ID_DUPLICATE", Rule::Server),
    // Server failures.
    ("TIMEOUT", Rule::Server),
    ("RPC_CALL_FAIL", Rule::Server),
    ("INTERDC_CALL_ERROR", Rule::Server),
    ("INTERDC_CALL_RICH_ERROR", Rule::Server),
    ("MSG_WAIT_FAILED", Rule::Server),
    // The account's home data centre moved: grammers 0.11 follows this only at sign-in, and
    // every retry would get it again. The session needs a new login.
    ("USER_MIGRATE", Rule::Dead),
    ("PHONE_MIGRATE", Rule::Dead),
    // Other redirects: nothing was done.
    ("NETWORK_MIGRATE", Rule::Refused),
    ("FILE_MIGRATE", Rule::Refused),
    ("STATS_MIGRATE", Rule::Refused),
    // The session.
    ("AUTH_KEY_UNREGISTERED", Rule::Dead),
    ("AUTH_KEY_INVALID", Rule::Dead),
    ("SESSION_REVOKED", Rule::Dead),
    ("SESSION_EXPIRED", Rule::Dead),
    ("AUTH_KEY_DUPLICATED", Rule::Dead),
    ("SESSION_PASSWORD_NEEDED", Rule::Dead),
    ("USER_DEACTIVATED", Rule::Dead),
    ("USER_DEACTIVATED_BAN", Rule::Dead),
    ("PHONE_NUMBER_BANNED", Rule::Dead),
    // The application's api_id: published (so blocked) or not valid. Every call of the
    // account fails the same way until an operator gives it another one.
    ("API_ID_PUBLISHED_FLOOD", Rule::Dead),
    ("API_ID_INVALID", Rule::Dead),
    // A frozen account acting in a group it was removed from meanwhile: frozen accounts can
    // do nothing.
    ("FROZEN_PARTICIPANT_MISSING", Rule::Dead),
    // The connection's initConnection was not seen: a state of this connection, fixed by
    // opening a new one; nothing was done.
    ("CONNECTION_NOT_INITED", Rule::Refused),
    // A temporary key not bound to the permanent one: a client-side state, fixed by
    // reconnecting (grammers uses permanent keys, so it is not expected).
    ("AUTH_KEY_PERM_EMPTY", Rule::Refused),
    // Layer mismatch: the grammers version is too old. Nothing the account can fix.
    ("CONNECTION_LAYER_INVALID", Rule::Unknown),
];

/// The rule for an RPC error: its row in [`RPC_TABLE`], else a fallback by code (401: dead,
/// 420 with a number: wait, 303: refused, 5xx and negative: server), else `None`.
pub fn rule_for(code: i32, name: &str, value: Option<u32>) -> Option<Rule> {
    if let Some((_, rule)) = RPC_TABLE.iter().find(|(n, _)| *n == name) {
        return Some(*rule);
    }
    match code {
        401 => Some(Rule::Dead),
        420 if value.is_some() => Some(Rule::Wait),
        303 => Some(Rule::Refused),
        c if !(0..500).contains(&c) => Some(Rule::Server),
        _ => None,
    }
}

/// Flood waits without a number (never seen) are read as this many seconds.
const FALLBACK_WAIT_SECS: u64 = 60;

/// The one mapping from a Telegram call's error to the core's [`PlatformError`].
pub fn classify(error: &ApiError, kind: CallKind) -> PlatformError {
    match error {
        ApiError::Rpc { code, name, value } => match rule_for(*code, name, *value) {
            Some(rule) => apply(rule, name, *value, kind),
            None => PlatformError::Unknown {
                code: name.clone(),
                message: format!("Telegram error {code} {name}"),
            },
        },
        ApiError::Io(io_kind) if never_sent(*io_kind) => PlatformError::Transient {
            code: io_code(*io_kind),
        },
        ApiError::Io(io_kind) => after_sending(kind, io_code(*io_kind)),
        ApiError::Timeout(_) => after_sending(kind, "CALL_TIMEOUT".to_owned()),
        ApiError::Dropped => after_sending(kind, "REQUEST_DROPPED".to_owned()),
        ApiError::BadResponse => after_sending(kind, "BAD_RESPONSE".to_owned()),
        // The server does not know the auth key: the session is gone.
        ApiError::TransportStatus(404) => PlatformError::AccountDead {
            code: "AUTH_KEY_NOT_FOUND".to_owned(),
        },
        // Too many connections from this address: refused before any request.
        ApiError::TransportStatus(429) => PlatformError::Transient {
            code: "TRANSPORT_FLOOD".to_owned(),
        },
        ApiError::TransportStatus(status) => {
            after_sending(kind, format!("TRANSPORT_STATUS_{status}"))
        }
        ApiError::Local(what) => PlatformError::Transient {
            code: format!("CLIENT_{}", what.to_ascii_uppercase().replace(' ', "_")),
        },
        ApiError::Unexpected(what) => PlatformError::Unknown {
            code: "UNEXPECTED_ANSWER".to_owned(),
            message: (*what).to_owned(),
        },
        // Nothing left: what would be ambiguous after sending is transient here.
        ApiError::NotSent(inner) => classify(inner, CallKind::Read),
    }
}

fn apply(rule: Rule, name: &str, value: Option<u32>, kind: CallKind) -> PlatformError {
    let code = name.to_owned();
    match rule {
        Rule::Target(outcome) => PlatformError::Target { outcome, code },
        Rule::Wait => PlatformError::FloodWait {
            seconds: value.map_or(FALLBACK_WAIT_SECS, u64::from),
            code,
        },
        Rule::Restricted => PlatformError::AccountRestricted { code },
        Rule::Dead => PlatformError::AccountDead { code },
        Rule::Group { account_only } => PlatformError::Group { code, account_only },
        Rule::Server => after_sending(kind, code),
        Rule::Refused | Rule::AccountPeer => PlatformError::Transient { code },
        Rule::Unknown => PlatformError::Unknown {
            message: format!("Telegram error {name} has no meaning for the engine"),
            code,
        },
    }
}

/// A failure once the request may have reached Telegram.
fn after_sending(kind: CallKind, code: String) -> PlatformError {
    match kind {
        CallKind::Read => PlatformError::Transient { code },
        CallKind::Write => PlatformError::Ambiguous { code },
    }
}

/// I/O errors that only happen while connecting, before anything is written.
fn never_sent(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::AddrNotAvailable
            | K::AddrInUse
            | K::NetworkUnreachable
            | K::HostUnreachable
            | K::NetworkDown
            | K::NotConnected
    )
}

/// `ConnectionRefused` → `IO_CONNECTION_REFUSED`.
fn io_code(kind: io::ErrorKind) -> String {
    let mut out = String::from("IO");
    for c in format!("{kind:?}").chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use grammers_client::InvocationError;
    use grammers_client::sender::RpcError;
    use grammers_client::tl;
    use invite_core::ports::ErrorClass;

    use super::*;

    /// Classifies an error message as Telegram sends it, through grammers' own parser.
    fn wire(code: i32, message: &str, kind: CallKind) -> PlatformError {
        let rpc = RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.to_owned(),
        });
        classify(&ApiError::from(InvocationError::Rpc(rpc)), kind)
    }

    fn target(outcome: Outcome, code: &str) -> PlatformError {
        PlatformError::Target {
            outcome,
            code: code.into(),
        }
    }
    fn wait(seconds: u64, code: &str) -> PlatformError {
        PlatformError::FloodWait {
            seconds,
            code: code.into(),
        }
    }
    fn restricted(code: &str) -> PlatformError {
        PlatformError::AccountRestricted { code: code.into() }
    }
    fn dead(code: &str) -> PlatformError {
        PlatformError::AccountDead { code: code.into() }
    }
    fn group(code: &str, account_only: bool) -> PlatformError {
        PlatformError::Group {
            code: code.into(),
            account_only,
        }
    }
    fn ambiguous(code: &str) -> PlatformError {
        PlatformError::Ambiguous { code: code.into() }
    }
    fn transient(code: &str) -> PlatformError {
        PlatformError::Transient { code: code.into() }
    }

    /// One test per row of the table: `name: code "MESSAGE" kind => expected;`. Also records
    /// the messages so a test can check that no row is left without a case.
    macro_rules! rows {
        ($($test:ident: $code:literal $msg:literal $kind:ident => $want:expr;)*) => {
            $(
                #[test]
                fn $test() {
                    assert_eq!(wire($code, $msg, CallKind::$kind), $want);
                }
            )*
            const CASES: &[(i32, &str)] = &[$(($code, $msg)),*];
        };
    }

    rows! {
        flood_wait: 420 "FLOOD_WAIT_31" Write => wait(31, "FLOOD_WAIT");
        flood_premium_wait: 420 "FLOOD_PREMIUM_WAIT_5" Write => wait(5, "FLOOD_PREMIUM_WAIT");
        slowmode_wait: 420 "SLOWMODE_WAIT_10" Write => wait(10, "SLOWMODE_WAIT");
        frozen_method_invalid_is_dead_not_a_wait: 420 "FROZEN_METHOD_INVALID" Write
            => dead("FROZEN_METHOD_INVALID");
        peer_flood: 400 "PEER_FLOOD" Write => restricted("PEER_FLOOD");
        user_restricted: 403 "USER_RESTRICTED" Write => restricted("USER_RESTRICTED");
        user_banned_in_channel: 400 "USER_BANNED_IN_CHANNEL" Write
            => restricted("USER_BANNED_IN_CHANNEL");
        user_privacy_restricted: 403 "USER_PRIVACY_RESTRICTED" Write
            => target(Outcome::PrivacyRestricted, "USER_PRIVACY_RESTRICTED");
        user_not_mutual_contact: 403 "USER_NOT_MUTUAL_CONTACT" Write
            => target(Outcome::NotMutualContact, "USER_NOT_MUTUAL_CONTACT");
        user_channels_too_much: 400 "USER_CHANNELS_TOO_MUCH" Write
            => target(Outcome::TargetChannelsFull, "USER_CHANNELS_TOO_MUCH");
        user_already_participant: 400 "USER_ALREADY_PARTICIPANT" Write
            => target(Outcome::AlreadyMember, "USER_ALREADY_PARTICIPANT");
        user_kicked: 400 "USER_KICKED" Write => target(Outcome::KickedInTarget, "USER_KICKED");
        user_blocked: 400 "USER_BLOCKED" Write => target(Outcome::BlockedUs, "USER_BLOCKED");
        user_bot: 400 "USER_BOT" Write => target(Outcome::Unresolvable, "USER_BOT");
        bots_too_much: 400 "BOTS_TOO_MUCH" Write => target(Outcome::Unresolvable, "BOTS_TOO_MUCH");
        input_user_deactivated: 400 "INPUT_USER_DEACTIVATED" Write
            => target(Outcome::Deleted, "INPUT_USER_DEACTIVATED");
        user_id_invalid_is_this_accounts_hash: 400 "USER_ID_INVALID" Write
            => transient("USER_ID_INVALID");
        peer_id_invalid_is_this_accounts_hash: 400 "PEER_ID_INVALID" Write
            => transient("PEER_ID_INVALID");
        username_not_occupied: 400 "USERNAME_NOT_OCCUPIED" Read
            => target(Outcome::NotFound, "USERNAME_NOT_OCCUPIED");
        username_invalid: 400 "USERNAME_INVALID" Read
            => target(Outcome::Unresolvable, "USERNAME_INVALID");
        starref_expired: 400 "STARREF_EXPIRED" Read
            => target(Outcome::Unresolvable, "STARREF_EXPIRED");
        chat_admin_required: 403 "CHAT_ADMIN_REQUIRED" Write => group("CHAT_ADMIN_REQUIRED", true);
        chat_write_forbidden: 403 "CHAT_WRITE_FORBIDDEN" Write
            => group("CHAT_WRITE_FORBIDDEN", true);
        channel_private: 406 "CHANNEL_PRIVATE" Write => group("CHANNEL_PRIVATE", true);
        user_not_participant: 400 "USER_NOT_PARTICIPANT" Read
            => group("USER_NOT_PARTICIPANT", true);
        channel_invalid_is_this_accounts_hash: 400 "CHANNEL_INVALID" Write
            => group("CHANNEL_INVALID", true);
        chat_invalid_for_this_account: 400 "CHAT_INVALID" Write => group("CHAT_INVALID", true);
        chat_id_invalid_for_this_account: 400 "CHAT_ID_INVALID" Write
            => group("CHAT_ID_INVALID", true);
        channel_monoforum_unsupported: 400 "CHANNEL_MONOFORUM_UNSUPPORTED" Write
            => group("CHANNEL_MONOFORUM_UNSUPPORTED", false);
        chat_member_add_failed_ends_the_target: 400 "CHAT_MEMBER_ADD_FAILED" Write
            => target(Outcome::UnknownError, "CHAT_MEMBER_ADD_FAILED");
        users_too_much: 400 "USERS_TOO_MUCH" Write => group("USERS_TOO_MUCH", false);
        channels_too_much: 400 "CHANNELS_TOO_MUCH" Write => group("CHANNELS_TOO_MUCH", true);
        invite_request_sent: 400 "INVITE_REQUEST_SENT" Write => group("INVITE_REQUEST_SENT", true);
        invite_hash_expired: 400 "INVITE_HASH_EXPIRED" Read => group("INVITE_HASH_EXPIRED", false);
        invite_hash_invalid: 400 "INVITE_HASH_INVALID" Read => group("INVITE_HASH_INVALID", false);
        chat_restricted: 400 "CHAT_RESTRICTED" Write => group("CHAT_RESTRICTED", false);
        chat_send_plain_forbidden: 403 "CHAT_SEND_PLAIN_FORBIDDEN" Write
            => group("CHAT_SEND_PLAIN_FORBIDDEN", false);
        user_is_blocked: 400 "USER_IS_BLOCKED" Write
            => target(Outcome::BlockedUs, "USER_IS_BLOCKED");
        you_blocked_user: 400 "YOU_BLOCKED_USER" Write
            => target(Outcome::BlockedUs, "YOU_BLOCKED_USER");
        privacy_premium_required: 403 "PRIVACY_PREMIUM_REQUIRED" Write
            => target(Outcome::PremiumRequired, "PRIVACY_PREMIUM_REQUIRED");
        allow_payment_required: 403 "ALLOW_PAYMENT_REQUIRED" Write
            => target(Outcome::PaidMessagesRequired, "ALLOW_PAYMENT_REQUIRED");
        allow_payment_required_stars: 403 "ALLOW_PAYMENT_REQUIRED_250" Write
            => target(Outcome::PaidMessagesRequired, "ALLOW_PAYMENT_REQUIRED");
        user_is_bot: 400 "USER_IS_BOT" Write => target(Outcome::Unresolvable, "USER_IS_BOT");
        message_too_long: 400 "MESSAGE_TOO_LONG" Write
            => target(Outcome::UnknownError, "MESSAGE_TOO_LONG");
        message_empty: 400 "MESSAGE_EMPTY" Write => target(Outcome::UnknownError, "MESSAGE_EMPTY");
        entity_bounds_invalid: 400 "ENTITY_BOUNDS_INVALID" Write
            => target(Outcome::UnknownError, "ENTITY_BOUNDS_INVALID");
        entities_too_long: 400 "ENTITIES_TOO_LONG" Write
            => target(Outcome::UnknownError, "ENTITIES_TOO_LONG");
        random_id_duplicate_outside_send: 500 "RANDOM_ID_DUPLICATE" Write
            => ambiguous("RANDOM_ID_DUPLICATE");
        timeout_on_write: 500 "TIMEOUT" Write => ambiguous("TIMEOUT");
        timeout_on_read: 500 "TIMEOUT" Read => transient("TIMEOUT");
        rpc_call_fail_on_write: 500 "RPC_CALL_FAIL" Write => ambiguous("RPC_CALL_FAIL");
        rpc_call_fail_on_read: 500 "RPC_CALL_FAIL" Read => transient("RPC_CALL_FAIL");
        interdc_call_error: 500 "INTERDC_2_CALL_ERROR" Write => ambiguous("INTERDC_CALL_ERROR");
        interdc_call_rich_error: 500 "INTERDC_4_CALL_RICH_ERROR" Write
            => ambiguous("INTERDC_CALL_RICH_ERROR");
        msg_wait_failed: 500 "MSG_WAIT_FAILED" Write => ambiguous("MSG_WAIT_FAILED");
        user_migrate_needs_a_new_login: 303 "USER_MIGRATE_4" Write => dead("USER_MIGRATE");
        phone_migrate_needs_a_new_login: 303 "PHONE_MIGRATE_2" Write => dead("PHONE_MIGRATE");
        network_migrate: 303 "NETWORK_MIGRATE_1" Read => transient("NETWORK_MIGRATE");
        file_migrate: 303 "FILE_MIGRATE_5" Read => transient("FILE_MIGRATE");
        stats_migrate: 303 "STATS_MIGRATE_3" Read => transient("STATS_MIGRATE");
        auth_key_unregistered: 401 "AUTH_KEY_UNREGISTERED" Read => dead("AUTH_KEY_UNREGISTERED");
        auth_key_invalid: 401 "AUTH_KEY_INVALID" Read => dead("AUTH_KEY_INVALID");
        session_revoked: 401 "SESSION_REVOKED" Write => dead("SESSION_REVOKED");
        session_expired: 401 "SESSION_EXPIRED" Write => dead("SESSION_EXPIRED");
        auth_key_duplicated: 406 "AUTH_KEY_DUPLICATED" Write => dead("AUTH_KEY_DUPLICATED");
        session_password_needed: 401 "SESSION_PASSWORD_NEEDED" Read
            => dead("SESSION_PASSWORD_NEEDED");
        user_deactivated: 401 "USER_DEACTIVATED" Read => dead("USER_DEACTIVATED");
        user_deactivated_ban: 401 "USER_DEACTIVATED_BAN" Read => dead("USER_DEACTIVATED_BAN");
        phone_number_banned: 400 "PHONE_NUMBER_BANNED" Read => dead("PHONE_NUMBER_BANNED");
        api_id_published_flood: 400 "API_ID_PUBLISHED_FLOOD" Read
            => dead("API_ID_PUBLISHED_FLOOD");
        api_id_invalid: 400 "API_ID_INVALID" Read => dead("API_ID_INVALID");
        frozen_participant_missing: 400 "FROZEN_PARTICIPANT_MISSING" Write
            => dead("FROZEN_PARTICIPANT_MISSING");
        connection_not_inited: 400 "CONNECTION_NOT_INITED" Write
            => transient("CONNECTION_NOT_INITED");
        auth_key_perm_empty: 401 "AUTH_KEY_PERM_EMPTY" Read => transient("AUTH_KEY_PERM_EMPTY");
        connection_layer_invalid: 400 "CONNECTION_LAYER_INVALID" Read
            => PlatformError::Unknown {
                code: "CONNECTION_LAYER_INVALID".into(),
                message: "Telegram error CONNECTION_LAYER_INVALID has no meaning for the engine"
                    .into(),
            };
    }

    #[test]
    fn every_table_row_has_a_case() {
        let tested: Vec<String> = CASES
            .iter()
            .map(|(code, msg)| {
                let rpc = RpcError::from(tl::types::RpcError {
                    error_code: *code,
                    error_message: (*msg).to_owned(),
                });
                rpc.name
            })
            .collect();
        for (name, _) in RPC_TABLE {
            assert!(tested.iter().any(|t| t == name), "row {name} has no case");
        }
        let mut names: Vec<_> = RPC_TABLE.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RPC_TABLE.len(), "duplicate rows");
    }

    #[test]
    fn unknown_errors_are_their_own_class_never_success() {
        let e = wire(400, "SOMETHING_NEW", CallKind::Write);
        assert_eq!(e.class(), ErrorClass::Unknown);
        assert_eq!(e.code(), "SOMETHING_NEW");
        assert!(!e.is_retryable());
        assert_eq!(
            wire(403, "BRAND_NEW_403", CallKind::Read).class(),
            ErrorClass::Unknown
        );
    }

    #[test]
    fn fallbacks_by_code() {
        // Any other 401 marks the account dead.
        assert_eq!(
            wire(401, "SOME_NEW_AUTH_ERROR", CallKind::Read),
            dead("SOME_NEW_AUTH_ERROR")
        );
        // Any other 420 with a number waits.
        assert_eq!(
            wire(420, "SOME_WAIT_12", CallKind::Write),
            wait(12, "SOME_WAIT")
        );
        // A 420 without a number is not a wait.
        assert_eq!(
            wire(420, "SOME_NEW_LIMIT", CallKind::Write).class(),
            ErrorClass::Unknown
        );
        // Server-side failures: ambiguous for writes, transient for reads.
        assert_eq!(
            wire(500, "NEW_SERVER_ERROR", CallKind::Write),
            ambiguous("NEW_SERVER_ERROR")
        );
        assert_eq!(wire(-503, "Timeout", CallKind::Write), ambiguous("Timeout"));
        assert_eq!(
            wire(500, "NEW_SERVER_ERROR", CallKind::Read),
            transient("NEW_SERVER_ERROR")
        );
    }

    #[test]
    fn io_before_the_request_left_is_transient_after_is_ambiguous() {
        use io::ErrorKind as K;
        let refused = ApiError::from(InvocationError::Io(io::Error::from(K::ConnectionRefused)));
        assert_eq!(
            classify(&refused, CallKind::Write),
            transient("IO_CONNECTION_REFUSED")
        );
        let reset = ApiError::from(InvocationError::Io(io::Error::from(K::ConnectionReset)));
        assert_eq!(
            classify(&reset, CallKind::Write),
            ambiguous("IO_CONNECTION_RESET")
        );
        assert_eq!(
            classify(&reset, CallKind::Read),
            transient("IO_CONNECTION_RESET")
        );
        let eof = ApiError::Io(K::UnexpectedEof);
        assert_eq!(
            classify(&eof, CallKind::Write),
            ambiguous("IO_UNEXPECTED_EOF")
        );
        let timeout = ApiError::Timeout(Duration::from_secs(30));
        assert_eq!(
            classify(&timeout, CallKind::Write),
            ambiguous("CALL_TIMEOUT")
        );
        assert_eq!(
            classify(&timeout, CallKind::Read),
            transient("CALL_TIMEOUT")
        );
        let dropped = ApiError::from(InvocationError::Dropped("runner gone"));
        assert_eq!(
            classify(&dropped, CallKind::Write),
            ambiguous("REQUEST_DROPPED")
        );
        // grammers' runner gone before it took the request: it never left, never charged.
        let before = ApiError::from(InvocationError::Dropped(
            "SenderPoolRunner was dropped at send",
        ));
        assert_eq!(before, ApiError::Dropped.not_sent());
        assert_eq!(
            classify(&before, CallKind::Write),
            transient("REQUEST_DROPPED")
        );
        // Failing while the connection was made: nothing left either.
        let connecting = ApiError::Io(K::UnexpectedEof).not_sent();
        assert_eq!(
            classify(&connecting, CallKind::Write),
            transient("IO_UNEXPECTED_EOF")
        );
        assert_eq!(
            classify(&timeout.clone().not_sent(), CallKind::Write),
            transient("CALL_TIMEOUT")
        );
        let invalid_dc = ApiError::from(InvocationError::InvalidDc);
        assert_eq!(
            classify(&invalid_dc, CallKind::Write).class(),
            ErrorClass::Transient
        );
    }

    #[test]
    fn transport_statuses() {
        let status = |status| {
            ApiError::from(InvocationError::Transport(
                grammers_mtproto::transport::Error::BadStatus { status },
            ))
        };
        assert_eq!(
            classify(&status(404), CallKind::Read),
            dead("AUTH_KEY_NOT_FOUND")
        );
        assert_eq!(
            classify(&status(429), CallKind::Write),
            transient("TRANSPORT_FLOOD")
        );
        assert_eq!(
            classify(&status(500), CallKind::Write),
            ambiguous("TRANSPORT_STATUS_500")
        );
    }
}
