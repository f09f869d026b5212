//! Bearer JWT authentication: HS256 only (the algorithm is pinned: `none`, other HMAC sizes
//! and asymmetric algorithms are refused, whatever the token's header says), `exp` required,
//! optional `iss` and `aud`. The owner is the integer `user_id` claim, or a numeric `sub`.
//!
//! Time claims are checked with [`LEEWAY_SECS`] of clock skew: `exp` must not have passed,
//! `nbf` must have come, `iat` must not be in the future. Claims have their RFC 7519 types:
//! `iss` a string, `aud` a string or an array of strings (one of them ours when an audience is
//! configured), the time claims numbers; a token with another shape is refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, TimeDelta, Utc};
use invite_core::domain::UserId;
use invite_core::ports::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// Why a token was refused. The reason is logged at debug level; clients see one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The header or token cannot be read, or the token is refused.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token carries no usable owner.
    #[error("token names no user (integer user_id or numeric sub)")]
    NoUser,
}

/// Verifies tokens.
#[derive(Clone)]
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 60;

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    user_id: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

impl Claims {
    /// What the JWT library does not check: the claims' types, and `iat` and `nbf` against
    /// `now` (Unix seconds).
    fn check(&self, now: u64) -> Result<(), AuthError> {
        let invalid = |m: &str| Err(AuthError::Invalid(m.to_owned()));
        if self.iss.as_ref().is_some_and(|v| !v.is_string()) {
            return invalid("iss must be a string");
        }
        match &self.aud {
            None | Some(serde_json::Value::String(_)) => {}
            Some(serde_json::Value::Array(items)) if items.iter().all(|v| v.is_string()) => {}
            Some(_) => return invalid("aud must be a string or an array of strings"),
        }
        let latest = i128::from(now) + i128::from(LEEWAY_SECS);
        for (name, claim) in [("iat", &self.iat), ("nbf", &self.nbf)] {
            let Some(v) = claim else { continue };
            let Some(at) = v.as_i64().map(i128::from).or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i128)
            }) else {
                return invalid(&format!("{name} must be a number"));
            };
            if at > latest {
                return invalid(&format!("{name} is in the future"));
            }
        }
        Ok(())
    }
}

impl JwtAuth {
    /// HS256 with `secret`; `issuer` and `audience`, when given, are required in every token.
    pub fn new(secret: &Secret, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// The owner named by a valid token.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        if data.header.alg != Algorithm::HS256 {
            return Err(AuthError::Invalid("algorithm not allowed".to_owned()));
        }
        let claims = data.claims;
        claims.check(jsonwebtoken::get_current_timestamp())?;
        let id = match claims.user_id {
            Some(v) => v.as_i64().ok_or(AuthError::NoUser)?,
            None => claims
                .sub
                .as_deref()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(AuthError::NoUser)?,
        };
        if id <= 0 {
            return Err(AuthError::NoUser);
        }
        Ok(UserId::new(id))
    }

    /// Reads `Authorization: Bearer <token>`.
    pub fn verify_header(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, token) = header
            .split_once(' ')
            .ok_or_else(|| AuthError::Invalid("malformed authorization header".to_owned()))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Invalid(
                "malformed authorization header".to_owned(),
            ));
        }
        self.verify(token.trim())
    }
}

#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: String,
    user_id: i64,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs an HS256 token for `user`, valid for `ttl` from `now` (development tokens and tests).
pub fn issue_token(
    secret: &Secret,
    user: UserId,
    now: DateTime<Utc>,
    ttl: TimeDelta,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> String {
    let claims = IssuedClaims {
        sub: user.to_string(),
        user_id: user.get(),
        iat: now.timestamp(),
        exp: (now + ttl).timestamp(),
        iss: issuer,
        aud: audience,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// What the binary prints when it generated its secret: a token for user 1, valid 30 days
/// (or until the process stops), marked as development only, and the link that opens the web
/// console signed in with it ([`crate::console::link`] of the address `addr` it listens on).
pub fn development_banner(
    secret: &Secret,
    now: DateTime<Utc>,
    issuer: Option<&str>,
    audience: Option<&str>,
    addr: std::net::SocketAddr,
) -> String {
    let token = issue_token(
        secret,
        UserId::new(1),
        now,
        TimeDelta::days(30),
        issuer,
        audience,
    );
    let link = crate::console::link(addr, &token);
    format!(
        "DEVELOPMENT ONLY: no INVITE_JWT_SECRET set; a random secret was generated for this run.\n\
         Token for user 1 (valid 30 days, until this process stops):\n\n  export TOKEN={token}\n\n\
         Web console, signed in as user 1:\n\n  {link}\n"
    )
}

/// A random secret for one run (when none is configured): 48 bytes from the OS, hex-encoded.
pub fn random_secret() -> Secret {
    use rand::{RngCore, SeedableRng};
    let mut bytes = [0u8; 48];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.auth().verify_header(header) {
            Ok(user) => Ok(AuthUser(user)),
            Err(e) => {
                tracing::debug!(reason = %e, "request refused: authentication");
                Err(ApiError::Unauthorized(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("x".repeat(40))
    }

    #[test]
    fn the_banner_links_the_console_signed_in_with_the_token_it_prints() {
        let addr = "0.0.0.0:8003".parse().unwrap();
        let banner = development_banner(&secret(), Utc::now(), None, None, addr);
        let token = banner
            .split_whitespace()
            .find_map(|w| w.strip_prefix("TOKEN="))
            .unwrap();
        let link = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap();
        assert_eq!(link, format!("http://127.0.0.1:8003/#token={token}"));
        let auth = JwtAuth::new(&secret(), None, None);
        assert_eq!(auth.verify(token).unwrap(), UserId::new(1));
    }

    #[test]
    fn issued_tokens_verify_and_name_their_user() {
        let auth = JwtAuth::new(&secret(), None, None);
        let t = issue_token(
            &secret(),
            UserId::new(7),
            Utc::now(),
            TimeDelta::hours(1),
            None,
            None,
        );
        assert_eq!(auth.verify(&t).unwrap(), UserId::new(7));
        assert_eq!(
            auth.verify_header(Some(&format!("Bearer {t}"))).unwrap(),
            UserId::new(7)
        );
        assert_eq!(auth.verify_header(None), Err(AuthError::Missing));
        assert!(auth.verify_header(Some(&format!("Basic {t}"))).is_err());
    }

    #[test]
    fn issuer_and_audience_are_enforced_when_configured() {
        let auth = JwtAuth::new(&secret(), Some("platform"), Some("invite"));
        let now = Utc::now();
        let ttl = TimeDelta::hours(1);
        let user = UserId::new(1);
        let good = issue_token(&secret(), user, now, ttl, Some("platform"), Some("invite"));
        assert!(auth.verify(&good).is_ok());
        let no_iss = issue_token(&secret(), user, now, ttl, None, Some("invite"));
        assert!(auth.verify(&no_iss).is_err());
        let wrong_aud = issue_token(&secret(), user, now, ttl, Some("platform"), Some("x"));
        assert!(auth.verify(&wrong_aud).is_err());
    }

    /// A token with exactly these claims, signed HS256 with the test secret.
    fn signed(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret().expose().as_bytes()),
        )
        .unwrap()
    }

    fn base(now: i64) -> serde_json::Value {
        serde_json::json!({"user_id": 7, "exp": now + 3600})
    }

    fn with(now: i64, claim: &str, value: serde_json::Value) -> String {
        let mut c = base(now);
        c[claim] = value;
        signed(c)
    }

    #[test]
    fn time_claims_allow_a_small_skew_only() {
        let auth = JwtAuth::new(&secret(), None, None);
        let now = Utc::now().timestamp();
        let skew = LEEWAY_SECS as i64;
        assert!(auth.verify(&signed(base(now))).is_ok());
        for (claim, at) in [
            ("nbf", now - 10),
            ("nbf", now + skew / 2),
            ("iat", now - 600),
        ] {
            assert!(
                auth.verify(&with(now, claim, at.into())).is_ok(),
                "{claim} {at}"
            );
        }
        for (claim, at) in [
            ("nbf", now + 3600),
            ("iat", now + 3600),
            ("iat", now + 10 * 365 * 86_400),
            ("iat", i64::MAX),
        ] {
            assert!(
                auth.verify(&with(now, claim, at.into())).is_err(),
                "{claim} {at}"
            );
        }
        for (claim, v) in [
            ("iat", serde_json::json!("soon")),
            ("nbf", serde_json::json!([1])),
        ] {
            assert!(auth.verify(&with(now, claim, v)).is_err(), "{claim}");
        }
    }

    #[test]
    fn claims_checks_are_pure_over_now() {
        let claims = |iat: i64| Claims {
            user_id: None,
            sub: None,
            iss: None,
            aud: None,
            iat: Some(iat.into()),
            nbf: None,
        };
        let now = 1_700_000_000_u64;
        assert!(claims(1_700_000_000 + 60).check(now).is_ok());
        assert!(claims(1_700_000_000 + 61).check(now).is_err());
    }

    #[test]
    fn issuer_and_audience_have_their_rfc_types() {
        let auth = JwtAuth::new(&secret(), Some("platform"), Some("invite"));
        let now = Utc::now().timestamp();
        let token = |iss: serde_json::Value, aud: serde_json::Value| {
            let mut c = base(now);
            c["iss"] = iss;
            c["aud"] = aud;
            signed(c)
        };
        use serde_json::json;
        assert!(
            auth.verify(&token(json!("platform"), json!("invite")))
                .is_ok()
        );
        // RFC 7519: aud may be an array holding ours.
        assert!(
            auth.verify(&token(json!("platform"), json!(["other", "invite"])))
                .is_ok()
        );
        for (iss, aud) in [
            (json!(["platform"]), json!("invite")),
            (json!({"v": "platform"}), json!("invite")),
            (json!("platform"), json!(["other"])),
            (json!("platform"), json!([1, "invite"])),
            (json!("platform"), json!({"invite": true})),
            (json!("other"), json!("invite")),
        ] {
            assert!(
                auth.verify(&token(iss.clone(), aud.clone())).is_err(),
                "{iss} {aud}"
            );
        }
        // Without a configured issuer, an iss of the wrong type is still refused.
        let open = JwtAuth::new(&secret(), None, None);
        let mut c = base(now);
        c["iss"] = json!(["platform"]);
        assert!(open.verify(&signed(c)).is_err());
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(random_secret().expose(), random_secret().expose());
        assert_eq!(random_secret().expose().len(), 96);
    }
}
