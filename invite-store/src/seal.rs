//! Secrets at rest: an account's session and api credentials are sealed with
//! XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under a 32-byte [`SecretKey`] before the
//! registry stores them, and opened only by the process that connects the account.
//!
//! The key comes from `INVITE_SECRET_KEY` (base64 or hex of 32 bytes) or, in embedded mode
//! without it, from a key file generated beside the database with mode 0600
//! ([`SecretKey::load_or_create`]). A sealed blob is `version (1) ‖ nonce (24) ‖ ciphertext`,
//! with the account id as associated data, so a blob copied onto another account's row does
//! not open. [`SealedSecrets`] serves the opened values through the core's `SecretStore` port.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use invite_core::async_trait;
use invite_core::domain::AccountId;
use invite_core::ports::{AccountRegistry, Secret, SecretError, SecretStore, StoreError};
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Errors of sealing. They never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not 32 bytes of base64 or hex.
    #[error("the secret key must be 32 bytes, given as base64 or 64 hex digits")]
    BadKey,
    /// The key file cannot be read or written.
    #[error("secret key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The blob does not open under this key (another key, another account, or altered).
    #[error("sealed secrets do not open with this key")]
    Open,
    /// No randomness for a nonce.
    #[error("no randomness for a nonce")]
    Random,
}

/// The 32-byte key secrets are sealed under. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from base64 (standard or URL-safe, padded or not) or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SealError::BadKey)?
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(text).ok())
                .ok_or(SealError::BadKey)?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0_u8; 32];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The key as base64 (what the key file holds).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Reads the key file at `path`, or creates it with a new key (mode 0600, created only if
    /// absent, so two processes starting at once agree on one key). Tells whether it created
    /// the file.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SealError> {
        let key_file = |e: std::io::Error| SealError::KeyFile {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok((Self::parse(&text)?, false));
        }
        let key = Self::generate()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                use std::io::Write as _;
                file.write_all(format!("{}\n", key.to_base64()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(key_file)?;
                Ok((key, true))
            }
            // Another process made it first: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(key_file)?;
                Ok((Self::parse(&text)?, false))
            }
            Err(e) => Err(key_file(e)),
        }
    }
}

fn fill_random(bytes: &mut [u8]) -> Result<(), SealError> {
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, bytes).map_err(|_| SealError::Random)
}

/// What is sealed for an account: its session and the api credentials it was made with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSecrets {
    /// The session string (Telethon or Pyrogram format, or this service's own).
    pub session: String,
    /// The application's `api_id`.
    pub api_id: i32,
    /// The application's `api_hash`.
    pub api_hash: String,
    /// The device the account's login was made on, presented in every `initConnection`
    /// (absent in blobs sealed before it existed).
    #[serde(default, skip_serializing_if = "AccountDevice::is_empty")]
    pub device: AccountDevice,
}

/// The device fields of an account's login (what Telegram shows in its "active sessions").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDevice {
    /// Device model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    /// Operating system and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_version: Option<String>,
    /// Application version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// System language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_lang_code: Option<String>,
    /// Application language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_code: Option<String>,
}

impl AccountDevice {
    /// No field set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The field stored under `key` (the Telegram strategy's device keys).
    fn get(&self, key: &str) -> Option<&String> {
        match key {
            "device_model" => self.device_model.as_ref(),
            "system_version" => self.system_version.as_ref(),
            "app_version" => self.app_version.as_ref(),
            "system_lang_code" => self.system_lang_code.as_ref(),
            "lang_code" => self.lang_code.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Debug for AccountSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSecrets")
            .field("api_id", &self.api_id)
            .finish_non_exhaustive()
    }
}

/// Seals and opens [`AccountSecrets`] under one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer under `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key.0)),
        }
    }

    /// Seals `secrets` for `account` (a fresh random nonce each time).
    pub fn seal(
        &self,
        account: &AccountId,
        secrets: &AccountSecrets,
    ) -> Result<Vec<u8>, SealError> {
        let plain = serde_json::to_vec(secrets).map_err(|_| SealError::Open)?;
        let mut nonce = [0_u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: account.as_str().as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] made for `account`.
    pub fn open(&self, account: &AccountId, sealed: &[u8]) -> Result<AccountSecrets, SealError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: account.as_str().as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        serde_json::from_slice(&plain).map_err(|_| SealError::Open)
    }
}

/// Keys of [`SealedSecrets`] under `{prefix}/{account id}`.
pub const SESSION_KEY: &str = "session_string";
/// Key of the account's `api_id`.
pub const API_ID_KEY: &str = "api_id";
/// Key of the account's `api_hash`.
pub const API_HASH_KEY: &str = "api_hash";

/// A `SecretStore` that serves registered accounts' secrets at `{prefix}/{account id}`
/// (keys [`SESSION_KEY`], [`API_ID_KEY`], [`API_HASH_KEY`]), opened from the registry, and asks
/// `fallback` for every other path.
#[derive(Debug, Clone)]
pub struct SealedSecrets {
    registry: Arc<dyn AccountRegistry>,
    sealer: Sealer,
    prefix: String,
    fallback: Arc<dyn SecretStore>,
}

impl SealedSecrets {
    /// Secrets of `registry`'s accounts under `prefix`.
    pub fn new(
        registry: Arc<dyn AccountRegistry>,
        sealer: Sealer,
        prefix: impl Into<String>,
        fallback: Arc<dyn SecretStore>,
    ) -> Self {
        Self {
            registry,
            sealer,
            prefix: prefix.into(),
            fallback,
        }
    }
}

#[async_trait]
impl SecretStore for SealedSecrets {
    async fn get(&self, path: &str, key: &str) -> Result<Secret, SecretError> {
        let account = path
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|id| AccountId::parse(id).ok());
        let Some(account) = account else {
            return self.fallback.get(path, key).await;
        };
        let not_found = || SecretError::NotFound {
            path: path.to_owned(),
            key: key.to_owned(),
        };
        let sealed = self.registry.sealed(&account).await.map_err(|e| match e {
            StoreError::NotFound => not_found(),
            e => SecretError::Unavailable(e.to_string()),
        })?;
        let secrets = self.sealer.open(&account, &sealed).map_err(|e| {
            tracing::warn!(account.id = %account, "secrets of account {account} do not open: {e}");
            SecretError::Unavailable(e.to_string())
        })?;
        match key {
            SESSION_KEY => Ok(Secret::new(secrets.session)),
            API_ID_KEY => Ok(Secret::new(secrets.api_id.to_string())),
            API_HASH_KEY => Ok(Secret::new(secrets.api_hash)),
            key => secrets
                .device
                .get(key)
                .map(|v| Secret::new(v.clone()))
                .ok_or_else(not_found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> AccountSecrets {
        AccountSecrets {
            session: "1BVtsOK8Bu0session".to_owned(),
            api_id: 12345,
            api_hash: "0123456789abcdef0123456789abcdef".to_owned(),
            device: AccountDevice::default(),
        }
    }

    #[test]
    fn device_fields_are_sealed_when_given_and_old_blobs_have_none() {
        let key = SecretKey::generate().unwrap();
        let sealer = Sealer::new(&key);
        let a = AccountId::parse("tg-a").unwrap();
        let with_device = AccountSecrets {
            device: AccountDevice {
                device_model: Some("Pixel 7".into()),
                lang_code: Some("ru".into()),
                ..AccountDevice::default()
            },
            ..secrets()
        };
        let opened = sealer
            .open(&a, &sealer.seal(&a, &with_device).unwrap())
            .unwrap();
        assert_eq!(opened, with_device);
        assert_eq!(opened.device.get("device_model").unwrap(), "Pixel 7");
        assert_eq!(opened.device.get("app_version"), None);
        // A blob of the earlier form (no device) still opens.
        let old: AccountSecrets = serde_json::from_str(
            r#"{"session":"s","api_id":1,"api_hash":"0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap();
        assert!(old.device.is_empty());
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account_and_key() {
        let key = SecretKey::generate().unwrap();
        let sealer = Sealer::new(&key);
        let a = AccountId::parse("tg-a").unwrap();
        let sealed = sealer.seal(&a, &secrets()).unwrap();
        assert_eq!(sealer.open(&a, &sealed).unwrap(), secrets());
        // Nothing of the plaintext shows in the blob; two seals differ (fresh nonces).
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("session") && !text.contains("0123456789abcdef"));
        assert_ne!(sealer.seal(&a, &secrets()).unwrap(), sealed);
        // Another account's row, another key, or one flipped bit: refused.
        let b = AccountId::parse("tg-b").unwrap();
        assert_eq!(sealer.open(&b, &sealed).unwrap_err(), SealError::Open);
        let other = Sealer::new(&SecretKey::generate().unwrap());
        assert_eq!(other.open(&a, &sealed).unwrap_err(), SealError::Open);
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(&a, &flipped).unwrap_err(), SealError::Open);
        assert!(format!("{key:?} {sealer:?} {:?}", secrets()).contains("***"));
        assert!(!format!("{:?}", secrets()).contains("session"));
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_files_are_private() {
        let key = SecretKey::generate().unwrap();
        assert_eq!(SecretKey::parse(&key.to_base64()).unwrap(), key);
        let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(SecretKey::parse(&hex).unwrap(), key);
        assert_eq!(SecretKey::parse("short").unwrap_err(), SealError::BadKey);
        let dir = std::env::temp_dir().join(format!("invite-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("invite.db.key");
        let _ = std::fs::remove_file(&path);
        let (made, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = SecretKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
