//! [`FakeLogin`]: a scripted Telegram sign-in behind the [`SignIn`] seam (feature `mock`), for
//! tests of the login flow: one phone number with its code, maybe a 2FA password, and the
//! refusals a real sign-in meets (an unknown number, a flood wait, an expired code).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use invite_core::async_trait;

use crate::api::SelfUser;
use crate::errors::ApiError;
use crate::login::{CodeAnswer, SignIn, SignInConnector};

#[derive(Debug, Default)]
struct State {
    phone: String,
    code: String,
    password: Option<String>,
    hint: Option<String>,
    me: Option<SelfUser>,
    flood_wait: Option<u32>,
    code_expired: bool,
    key_seed: u8,
    code_sent_to: Option<String>,
    code_ok: bool,
    signed_in: bool,
    codes_tried: usize,
    passwords_tried: usize,
    starts: usize,
    logged_out: bool,
    disconnected: bool,
}

/// The scripted sign-in; clones share one state. It is also its own [`SignInConnector`].
#[derive(Debug, Clone, Default)]
pub struct FakeLogin {
    state: Arc<Mutex<State>>,
}

impl FakeLogin {
    /// A Telegram account reachable at `phone` (digits with a leading `+`), whose login code is
    /// `code`, signing in as user `user_id` with `username`.
    pub fn new(phone: &str, code: &str, user_id: i64, username: Option<&str>) -> Self {
        let login = Self::default();
        {
            let mut s = login.lock();
            s.phone = phone.to_owned();
            s.code = code.to_owned();
            s.key_seed = (user_id % 251) as u8;
            s.me = Some(SelfUser {
                id: user_id,
                bot: false,
                username: username.map(str::to_owned),
                phone: Some(phone.trim_start_matches('+').to_owned()),
            });
        }
        login
    }

    /// The account also has a 2FA password (and its hint).
    pub fn with_password(self, password: &str, hint: Option<&str>) -> Self {
        {
            let mut s = self.lock();
            s.password = Some(password.to_owned());
            s.hint = hint.map(str::to_owned);
        }
        self
    }

    /// Sending a code answers `FLOOD_WAIT_{seconds}`.
    pub fn flood_wait(self, seconds: u32) -> Self {
        self.lock().flood_wait = Some(seconds);
        self
    }

    /// The code has expired by the time it is typed (`PHONE_CODE_EXPIRED`).
    pub fn code_expired(self) -> Self {
        self.lock().code_expired = true;
        self
    }

    /// The key of the sessions this sign-in makes (another seed, another key).
    pub fn key_seed(self, seed: u8) -> Self {
        self.lock().key_seed = seed;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session string a successful sign-in yields.
    pub fn session(&self) -> String {
        let seed = self.lock().key_seed;
        let key: Vec<u8> = (0..256_u32)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0xa5)
            .collect();
        crate::session::telethon_string(2, Ipv4Addr::new(149, 154, 167, 51).into(), 443, &key)
            .expect("a valid fake session")
    }

    /// Codes submitted.
    pub fn codes_tried(&self) -> usize {
        self.lock().codes_tried
    }

    /// Passwords submitted.
    pub fn passwords_tried(&self) -> usize {
        self.lock().passwords_tried
    }

    /// Sign-ins started.
    pub fn starts(&self) -> usize {
        self.lock().starts
    }

    /// The authorization was ended with `log_out`.
    pub fn logged_out(&self) -> bool {
        self.lock().logged_out
    }

    /// The connection was closed.
    pub fn disconnected(&self) -> bool {
        self.lock().disconnected
    }
}

#[async_trait]
impl SignInConnector for FakeLogin {
    async fn start(&self, _api_id: i32, _api_hash: &str) -> Result<Arc<dyn SignIn>, ApiError> {
        self.lock().starts += 1;
        Ok(Arc::new(self.clone()))
    }
}

#[async_trait]
impl SignIn for FakeLogin {
    async fn request_code(&self, phone: &str) -> Result<(), ApiError> {
        let mut s = self.lock();
        if let Some(seconds) = s.flood_wait {
            return Err(ApiError::rpc(420, "FLOOD_WAIT", Some(seconds)));
        }
        if phone != s.phone {
            return Err(ApiError::rpc(400, "PHONE_NUMBER_INVALID", None));
        }
        s.code_sent_to = Some(phone.to_owned());
        Ok(())
    }

    async fn submit_code(&self, code: &str) -> Result<CodeAnswer, ApiError> {
        let mut s = self.lock();
        s.codes_tried += 1;
        if s.code_sent_to.is_none() {
            return Err(ApiError::rpc(400, "PHONE_CODE_EMPTY", None));
        }
        if s.code_expired {
            return Err(ApiError::rpc(400, "PHONE_CODE_EXPIRED", None));
        }
        if code != s.code {
            return Err(ApiError::rpc(400, "PHONE_CODE_INVALID", None));
        }
        s.code_ok = true;
        if s.password.is_some() {
            return Ok(CodeAnswer::PasswordNeeded {
                hint: s.hint.clone(),
            });
        }
        s.signed_in = true;
        Ok(CodeAnswer::SignedIn)
    }

    async fn submit_password(&self, password: &str) -> Result<(), ApiError> {
        let mut s = self.lock();
        s.passwords_tried += 1;
        if !s.code_ok {
            return Err(ApiError::rpc(401, "AUTH_KEY_UNREGISTERED", None));
        }
        if s.password.as_deref() != Some(password) {
            return Err(ApiError::rpc(400, "PASSWORD_HASH_INVALID", None));
        }
        s.signed_in = true;
        Ok(())
    }

    async fn get_me(&self) -> Result<SelfUser, ApiError> {
        let s = self.lock();
        match (&s.me, s.signed_in && !s.logged_out) {
            (Some(me), true) => Ok(me.clone()),
            _ => Err(ApiError::rpc(401, "AUTH_KEY_UNREGISTERED", None)),
        }
    }

    fn session_string(&self) -> Result<String, ApiError> {
        if !self.lock().signed_in {
            return Err(ApiError::Local("not signed in"));
        }
        Ok(self.session())
    }

    async fn log_out(&self) -> Result<(), ApiError> {
        self.lock().logged_out = true;
        Ok(())
    }

    async fn disconnect(&self) {
        self.lock().disconnected = true;
    }
}
