//! Signing in with a phone number, for people who have no session string: phone → login code
//! → 2FA password, on a fresh session whose key becomes the account's.
//!
//! [`SignIn`] is the seam (one sign-in in progress on one connection; the grammers
//! implementation is `GrammersSignIn` in `grammers.rs`, a scripted one is `FakeSignIn` with the
//! `mock` feature) and [`Prompt`] asks the person at the keyboard. [`sign_in`] drives them:
//! a wrong code or password is asked for again (at most [`MAX_ATTEMPTS`] times), everything
//! else ends the sign-in with a [`LoginError`] whose message is one line and never repeats the
//! phone number, the code or the password.

use std::fmt;
use std::sync::Arc;

use invite_core::async_trait;

use crate::api::SelfUser;
use crate::errors::ApiError;

/// Codes or passwords typed wrong before the sign-in gives up.
pub const MAX_ATTEMPTS: usize = 3;

/// What Telegram said to a login code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeAnswer {
    /// Signed in.
    SignedIn,
    /// The account has a 2FA password: it is needed too.
    PasswordNeeded {
        /// The hint the user set for it, if any.
        hint: Option<String>,
    },
}

/// One sign-in in progress, on its own connection and fresh session key. Errors are Telegram's
/// (`PHONE_NUMBER_INVALID`, `PHONE_CODE_INVALID`, `PHONE_CODE_EXPIRED`, `PASSWORD_HASH_INVALID`,
/// `FLOOD_WAIT`, …) as [`ApiError`]s.
#[async_trait]
pub trait SignIn: Send + Sync + fmt::Debug {
    /// Asks Telegram to send a login code to `phone` (international form).
    async fn request_code(&self, phone: &str) -> Result<(), ApiError>;
    /// Answers with the code received.
    async fn submit_code(&self, code: &str) -> Result<CodeAnswer, ApiError>;
    /// Answers with the 2FA password.
    async fn submit_password(&self, password: &str) -> Result<(), ApiError>;
    /// The signed-in account (`users.getUsers([self])`).
    async fn get_me(&self) -> Result<SelfUser, ApiError>;
    /// The signed-in session as a Telethon session string (holds the key: seal it, never
    /// print it).
    fn session_string(&self) -> Result<String, ApiError>;
    /// Ends the authorization this sign-in created (a session that will not be kept).
    async fn log_out(&self) -> Result<(), ApiError>;
    /// Closes the connection.
    async fn disconnect(&self);
}

/// Opens a [`SignIn`] for an application's `api_id` / `api_hash`.
#[async_trait]
pub trait SignInConnector: Send + Sync + fmt::Debug {
    /// A new sign-in on a new connection.
    async fn start(&self, api_id: i32, api_hash: &str) -> Result<Arc<dyn SignIn>, ApiError>;
}

/// Asks the person signing in. Errors are the input's (end of input, a closed terminal).
pub trait Prompt: Send {
    /// The phone number.
    fn phone(&mut self) -> std::io::Result<String>;
    /// The login code Telegram sent; `retry` after a wrong one.
    fn code(&mut self, retry: bool) -> std::io::Result<String>;
    /// The 2FA password; `retry` after a wrong one.
    fn password(&mut self, hint: Option<&str>, retry: bool) -> std::io::Result<String>;
}

/// Why a sign-in ended without a session. Messages are one line and never carry the phone
/// number, the code or the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// `PHONE_NUMBER_INVALID`.
    #[error(
        "Telegram refused the phone number (PHONE_NUMBER_INVALID): give it in international form, such as +44 7700 900123"
    )]
    PhoneInvalid,
    /// `PHONE_NUMBER_BANNED`.
    #[error("this phone number is banned by Telegram (PHONE_NUMBER_BANNED)")]
    PhoneBanned,
    /// The number has no Telegram account (`PHONE_NUMBER_UNOCCUPIED`, sign-up required).
    #[error(
        "this phone number has no Telegram account (PHONE_NUMBER_UNOCCUPIED): create it in an official Telegram app first"
    )]
    NoAccount,
    /// `FLOOD_WAIT`: too many attempts.
    #[error(
        "Telegram asks to wait {seconds} seconds before another login attempt (FLOOD_WAIT); try again after that"
    )]
    FloodWait {
        /// Seconds to wait.
        seconds: u32,
    },
    /// `PHONE_CODE_EXPIRED`.
    #[error(
        "the login code expired (PHONE_CODE_EXPIRED); run `accounts login` again for a new one"
    )]
    CodeExpired,
    /// The code was wrong [`MAX_ATTEMPTS`] times.
    #[error(
        "the login code was wrong {MAX_ATTEMPTS} times (PHONE_CODE_INVALID); run `accounts login` again"
    )]
    CodeInvalid,
    /// The password was wrong [`MAX_ATTEMPTS`] times.
    #[error("the 2FA password was wrong {MAX_ATTEMPTS} times (PASSWORD_HASH_INVALID)")]
    PasswordInvalid,
    /// Nothing was typed where something was needed.
    #[error("no {0} given")]
    Empty(&'static str),
    /// The input could not be read.
    #[error("cannot read the {what}: {kind:?}")]
    Input {
        /// What was asked.
        what: &'static str,
        /// The error's kind (not its text, which could echo input).
        kind: std::io::ErrorKind,
    },
    /// Telegram cannot be reached now.
    #[error("Telegram cannot be reached now ({0}); try again later")]
    Unreachable(String),
    /// Another refusal, by its Telegram name.
    #[error("Telegram refused the login ({0})")]
    Refused(String),
    /// A bot account (campaigns run from user accounts).
    #[error("this is a bot account; campaigns run from user accounts")]
    Bot,
}

impl LoginError {
    fn of(e: &ApiError) -> Self {
        let inner = match e {
            ApiError::NotSent(inner) => inner.as_ref(),
            other => other,
        };
        match inner {
            ApiError::Rpc { name, value, .. } => match name.as_str() {
                "PHONE_NUMBER_INVALID" => LoginError::PhoneInvalid,
                "PHONE_NUMBER_BANNED" => LoginError::PhoneBanned,
                "PHONE_NUMBER_UNOCCUPIED" => LoginError::NoAccount,
                "PHONE_CODE_EXPIRED" => LoginError::CodeExpired,
                "PHONE_CODE_INVALID" | "PHONE_CODE_EMPTY" => LoginError::CodeInvalid,
                "PASSWORD_HASH_INVALID" => LoginError::PasswordInvalid,
                "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" => LoginError::FloodWait {
                    seconds: value.unwrap_or(0),
                },
                n if n.starts_with("FLOOD_WAIT") => LoginError::FloodWait {
                    seconds: value.unwrap_or(0),
                },
                n => LoginError::Refused(n.to_owned()),
            },
            ApiError::Io(_)
            | ApiError::Timeout(_)
            | ApiError::TransportStatus(_)
            | ApiError::Dropped
            | ApiError::BadResponse => LoginError::Unreachable(short(inner)),
            ApiError::Local(what) | ApiError::Unexpected(what) => {
                LoginError::Refused((*what).to_owned())
            }
            ApiError::NotSent(_) => LoginError::Unreachable("not sent".to_owned()),
        }
    }
}

fn short(e: &ApiError) -> String {
    match e {
        ApiError::Io(kind) => format!("{kind:?}"),
        ApiError::Timeout(_) => "timeout".to_owned(),
        ApiError::TransportStatus(s) => format!("transport status {s}"),
        ApiError::Dropped => "connection lost".to_owned(),
        _ => "unreadable answer".to_owned(),
    }
}

fn read(what: &'static str, answer: std::io::Result<String>) -> Result<String, LoginError> {
    let text = answer.map_err(|e| LoginError::Input {
        what,
        kind: e.kind(),
    })?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(LoginError::Empty(what));
    }
    Ok(text)
}

/// Signs in on `flow`, asking `prompt` for the phone, the code and (when the account has one)
/// the 2FA password; a wrong code or password is asked again, up to [`MAX_ATTEMPTS`] times.
/// Returns the signed-in account (`get_me`); the flow stays connected (the caller stores
/// [`SignIn::session_string`], then disconnects).
pub async fn sign_in(flow: &dyn SignIn, prompt: &mut dyn Prompt) -> Result<SelfUser, LoginError> {
    let phone = read("phone number", prompt.phone())?;
    let phone: String = phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '(' && *c != ')')
        .collect();
    let digits = phone.strip_prefix('+').unwrap_or(&phone);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LoginError::PhoneInvalid);
    }
    flow.request_code(&phone)
        .await
        .map_err(|e| LoginError::of(&e))?;
    let mut answer = None;
    for attempt in 0..MAX_ATTEMPTS {
        let code = read("login code", prompt.code(attempt > 0))?;
        match flow.submit_code(&code).await {
            Ok(a) => {
                answer = Some(a);
                break;
            }
            Err(e) => match LoginError::of(&e) {
                LoginError::CodeInvalid => continue,
                other => return Err(other),
            },
        }
    }
    match answer.ok_or(LoginError::CodeInvalid)? {
        CodeAnswer::SignedIn => {}
        CodeAnswer::PasswordNeeded { hint } => {
            let mut accepted = false;
            for attempt in 0..MAX_ATTEMPTS {
                let password = read(
                    "2FA password",
                    prompt.password(hint.as_deref(), attempt > 0),
                )?;
                match flow.submit_password(&password).await {
                    Ok(()) => {
                        accepted = true;
                        break;
                    }
                    Err(e) => match LoginError::of(&e) {
                        LoginError::PasswordInvalid => continue,
                        other => return Err(other),
                    },
                }
            }
            if !accepted {
                return Err(LoginError::PasswordInvalid);
            }
        }
    }
    let me = flow.get_me().await.map_err(|e| LoginError::of(&e))?;
    if me.bot {
        return Err(LoginError::Bot);
    }
    Ok(me)
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
