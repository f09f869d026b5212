//! Vault's wire types: the AppRole login and token renewal answers, a KV v2 read and error
//! bodies, turned into this crate's values. Tokens become [`Secret`]s as they are read.

use std::collections::HashMap;

use invite_core::ports::Secret;
use serde::Deserialize;
use serde_json::Value;

use crate::http::json_kind;

/// `{"auth": {…}}` of `POST /v1/auth/approle/login` and `POST /v1/auth/token/renew-self`.
#[derive(Deserialize)]
pub(super) struct AuthAnswer {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    #[serde(default)]
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

/// What a login or renewal granted.
pub(super) struct Grant {
    /// The client token; empty for a renewal, which keeps the token it renewed.
    pub token: Secret,
    /// Seconds the token lives from now; 0 for a token that does not expire.
    pub lease_seconds: u64,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
}

impl AuthAnswer {
    /// The grant, or what is missing from the answer.
    pub(super) fn grant(self) -> Result<Grant, &'static str> {
        let auth = self.auth.ok_or("the answer has no `auth` object")?;
        Ok(Grant {
            token: Secret::new(auth.client_token),
            lease_seconds: auth.lease_duration,
            renewable: auth.renewable,
        })
    }
}

/// `{"data": {"data": {…}, "metadata": {…}}}` of a KV v2 read.
#[derive(Deserialize)]
pub(super) struct KvAnswer {
    data: Option<KvData>,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<HashMap<String, Value>>,
}

/// One value of a secret as kept in the cache: a string, or the JSON type it has instead.
#[derive(Clone)]
pub(super) enum KvValue {
    Text(Secret),
    NotText(&'static str),
}

impl KvAnswer {
    /// The secret's key-value pairs; `None` when the version read is deleted (`data: null`).
    pub(super) fn values(self) -> Option<HashMap<String, KvValue>> {
        let values = self.data?.data?;
        Some(
            values
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => KvValue::Text(Secret::new(text)),
                        other => KvValue::NotText(json_kind(&other)),
                    };
                    (key, value)
                })
                .collect(),
        )
    }
}

/// `{"errors": ["…", …]}`, Vault's error body; the messages joined with `; `.
pub(super) fn error_messages(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.join("; "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_login_answer() {
        let answer: AuthAnswer = serde_json::from_value(json!({
            "request_id": "x", "data": null,
            "auth": {"client_token": "s.abc", "accessor": "a", "lease_duration": 3600,
                     "renewable": true, "policies": ["default"]}
        }))
        .unwrap();
        let grant = answer.grant().unwrap();
        assert_eq!(grant.token.expose(), "s.abc");
        assert_eq!((grant.lease_seconds, grant.renewable), (3600, true));
        let none: AuthAnswer = serde_json::from_value(json!({"auth": null})).unwrap();
        assert!(none.grant().is_err());
    }

    #[test]
    fn kv_values_and_their_types() {
        let answer: KvAnswer = serde_json::from_value(json!({
            "data": {"data": {"secret_key": "k", "n": 5, "o": {}}, "metadata": {"version": 2}}
        }))
        .unwrap();
        let values = answer.values().unwrap();
        assert!(matches!(&values["secret_key"], KvValue::Text(s) if s.expose() == "k"));
        assert!(matches!(values["n"], KvValue::NotText("a number")));
        assert!(matches!(values["o"], KvValue::NotText("an object")));
        let deleted: KvAnswer =
            serde_json::from_value(json!({"data": {"data": null, "metadata": {}}})).unwrap();
        assert!(deleted.values().is_none());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_messages(br#"{"errors":["invalid role or secret ID"]}"#),
            "invalid role or secret ID"
        );
        assert_eq!(error_messages(b"<html>"), "");
    }
}
