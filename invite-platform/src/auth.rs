//! The service-to-service token sent on every request to the platform's services: a JWT signed
//! with HS256 over the shared secret, with the claims `sub` (this service's configured
//! identity), `service: "invite-service"`, `iat` and `exp` (by default one hour later), in
//! seconds since the epoch.
//!
//! A token is signed once and reused until it is close to expiring (the last tenth of its
//! lifetime), then signed afresh. Time comes from the injected [`Clock`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use invite_core::Clock;
use invite_core::ports::Secret;
use serde::Serialize;
use sha2::Sha256;

use crate::error::{Error, Result};

/// The `service` claim of every token.
pub const SERVICE_NAME: &str = "invite-service";

/// The default lifetime of a token: one hour.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// The shortest lifetime accepted.
const MIN_TTL: Duration = Duration::from_secs(60);

/// The JOSE header of every token: `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Who this service is to the platform, and the secret its tokens are signed with.
#[derive(Debug, Clone)]
pub struct ServiceAuth {
    /// The `sub` claim.
    pub identity: String,
    /// The HS256 signing secret shared with the platform's services.
    pub secret: Secret,
    /// Lifetime of a token (`exp - iat`); at least one minute.
    pub ttl: Duration,
}

impl ServiceAuth {
    /// `identity` signing with `secret`, tokens valid for [`DEFAULT_TOKEN_TTL`].
    pub fn new(identity: impl Into<String>, secret: Secret) -> Self {
        Self {
            identity: identity.into(),
            secret,
            ttl: DEFAULT_TOKEN_TTL,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    service: &'static str,
    iat: i64,
    exp: i64,
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    issued: DateTime<Utc>,
    refresh_at: DateTime<Utc>,
}

/// Signs service tokens and keeps the current one.
pub struct ServiceToken {
    identity: String,
    secret: Secret,
    ttl: TimeDelta,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("identity", &self.identity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ServiceToken {
    /// A signer for `auth`; `service` names the client in configuration errors.
    pub fn new(service: &'static str, auth: ServiceAuth, clock: Arc<dyn Clock>) -> Result<Self> {
        let config = |message: &str| Error::Config {
            service,
            message: message.to_owned(),
        };
        if auth.identity.trim().is_empty() {
            return Err(config("the service identity (the token's `sub`) is empty"));
        }
        if auth.secret.expose().is_empty() {
            return Err(config("the token signing secret is empty"));
        }
        if auth.ttl < MIN_TTL {
            return Err(config("the token lifetime is shorter than one minute"));
        }
        let ttl =
            TimeDelta::from_std(auth.ttl).map_err(|_| config("the token lifetime is too long"))?;
        Ok(Self {
            identity: auth.identity,
            secret: auth.secret,
            ttl,
            clock,
            cache: Mutex::new(None),
        })
    }

    /// The token to send now: the cached one, or a fresh one once the cached one is in the
    /// last tenth of its lifetime (or the clock moved back before it was issued).
    pub fn current(&self) -> Secret {
        let now = self.clock.now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.as_ref()
            && cached.issued <= now
            && now < cached.refresh_at
        {
            return cached.token.clone();
        }
        let issued = now.timestamp();
        let token = self.sign(issued);
        tracing::debug!(sub = %self.identity, "signed a new service token");
        let issued = DateTime::from_timestamp(issued, 0).unwrap_or(now);
        *cache = Some(Cached {
            token: token.clone(),
            issued,
            refresh_at: issued + self.ttl - self.ttl / 10,
        });
        token
    }

    /// A token issued at `iat` (seconds since the epoch).
    fn sign(&self, iat: i64) -> Secret {
        let claims = Claims {
            sub: &self.identity,
            service: SERVICE_NAME,
            iat,
            exp: iat + self.ttl.num_seconds(),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialise");
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        Secret::new(format!(
            "{input}.{}",
            hs256(self.secret.expose().as_bytes(), &input)
        ))
    }
}

/// The base64url HMAC-SHA256 of `input` under `key`.
fn hs256(key: &[u8], input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use invite_core::VirtualClock;
    use serde_json::{Value, json};

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn signer(clock: Arc<VirtualClock>) -> ServiceToken {
        let auth = ServiceAuth::new("invite@platform", Secret::new("s3cret"));
        ServiceToken::new("test service", auth, clock).unwrap()
    }

    fn claims(token: &Secret) -> Value {
        let payload = token.expose().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn signs_the_well_known_example() {
        // The HS256 example token of jwt.io, signed with `your-256-bit-secret`.
        let input = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                     eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
        assert_eq!(
            hs256(b"your-256-bit-secret", input),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    #[test]
    fn claims_and_header() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let token = signer(clock).current();
        let header = token.expose().split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        let iat = t0().timestamp();
        assert_eq!(
            claims(&token),
            json!({"sub": "invite@platform", "service": "invite-service", "iat": iat, "exp": iat + 3600})
        );
    }

    #[test]
    fn cached_until_the_last_tenth_of_its_life() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let signer = signer(clock.clone());
        let first = signer.current();
        clock.advance(TimeDelta::minutes(53));
        assert_eq!(signer.current(), first);
        clock.advance(TimeDelta::minutes(1));
        let second = signer.current();
        assert_ne!(second, first);
        assert_eq!(claims(&second)["iat"], json!(t0().timestamp() + 54 * 60));
        assert_eq!(signer.current(), second);
    }

    /// A clock that can be set back, as a wall clock can.
    #[derive(Debug)]
    struct WallClock(Mutex<DateTime<Utc>>);

    #[invite_core::async_trait]
    impl Clock for WallClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
        async fn sleep_until(&self, _deadline: DateTime<Utc>) {}
    }

    #[test]
    fn a_clock_set_back_gets_a_new_token() {
        let clock = Arc::new(WallClock(Mutex::new(t0())));
        let auth = ServiceAuth::new("invite@platform", Secret::new("s3cret"));
        let signer = ServiceToken::new("test service", auth, clock.clone()).unwrap();
        let first = signer.current();
        *clock.0.lock().unwrap() = t0() - TimeDelta::minutes(10);
        let second = signer.current();
        assert_ne!(first, second);
        assert_eq!(claims(&second)["iat"], json!(t0().timestamp() - 600));
    }

    #[test]
    fn refuses_an_empty_identity_or_secret() {
        let clock: Arc<dyn Clock> = Arc::new(VirtualClock::manual(t0()));
        let empty_secret = ServiceAuth::new("me", Secret::new(""));
        assert!(matches!(
            ServiceToken::new("x", empty_secret, clock.clone()),
            Err(Error::Config { .. })
        ));
        let no_identity = ServiceAuth::new(" ", Secret::new("k"));
        assert!(ServiceToken::new("x", no_identity, clock.clone()).is_err());
        let mut short = ServiceAuth::new("me", Secret::new("k"));
        short.ttl = Duration::from_secs(5);
        assert!(ServiceToken::new("x", short, clock).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let signer = signer(clock);
        let token = signer.current();
        let shown = format!("{signer:?}");
        assert!(!shown.contains("s3cret") && !shown.contains(token.expose()));
    }
}
