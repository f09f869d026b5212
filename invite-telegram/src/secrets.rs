//! Local [`SecretStore`]s, for running without Vault (the Vault client is `invite-platform`'s).
//!
//! - [`EnvSecretStore`]: secrets from variables handed in by a binary (it never reads the
//!   environment itself): `secret/telegram/api_credentials` + `api_id` is the variable
//!   `SECRET_TELEGRAM_API_CREDENTIALS__API_ID`.
//! - [`FileSecretStore`]: one JSON object per path under a directory, the same shape as a
//!   Vault KV v2 secret's data: `<root>/secret/telegram/api_credentials.json` holding
//!   `{"api_id": 12345, "api_hash": "…"}`.
//!
//! Errors name the path and key, never a value.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use invite_core::async_trait;
use invite_core::ports::{Secret, SecretError, SecretStore};

/// Secrets from a set of variables.
#[derive(Clone, Default)]
pub struct EnvSecretStore {
    vars: HashMap<String, Secret>,
}

impl fmt::Debug for EnvSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSecretStore")
            .field("variables", &self.vars.len())
            .finish()
    }
}

impl EnvSecretStore {
    /// Keeps the variables whose names start with `SECRET_` (pass `std::env::vars()`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with("SECRET_"))
            .map(|(name, value)| (name, Secret::new(value)))
            .collect();
        Self { vars }
    }

    /// The variable that holds `key` of `path`: both upper-cased, every other character than a
    /// letter or digit made `_`, joined by `__`.
    pub fn variable_name(path: &str, key: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}__{}", clean(path), clean(key))
    }
}

#[async_trait]
impl SecretStore for EnvSecretStore {
    async fn get(&self, path: &str, key: &str) -> Result<Secret, SecretError> {
        self.vars
            .get(&Self::variable_name(path, key))
            .cloned()
            .ok_or_else(|| SecretError::NotFound {
                path: path.to_owned(),
                key: key.to_owned(),
            })
    }
}

/// Secrets from JSON files under a directory.
#[derive(Debug, Clone)]
pub struct FileSecretStore {
    root: PathBuf,
}

impl FileSecretStore {
    /// Reads `<root>/<path>.json`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn file(&self, path: &str) -> Option<PathBuf> {
        let relative = Path::new(path);
        let plain = !path.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        plain.then(|| self.root.join(format!("{path}.json")))
    }
}

#[async_trait]
impl SecretStore for FileSecretStore {
    async fn get(&self, path: &str, key: &str) -> Result<Secret, SecretError> {
        let not_found = || SecretError::NotFound {
            path: path.to_owned(),
            key: key.to_owned(),
        };
        let Some(file) = self.file(path) else {
            return Err(SecretError::Unavailable(format!(
                "secret path {path:?} must be relative, without `..`"
            )));
        };
        let text = match tokio::fs::read_to_string(&file).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => {
                return Err(SecretError::Unavailable(format!(
                    "cannot read the file of secret {path}: {}",
                    e.kind()
                )));
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            SecretError::Unavailable(format!("the file of secret {path} is not valid JSON"))
        })?;
        match value.get(key) {
            Some(serde_json::Value::String(s)) => Ok(Secret::new(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Secret::new(n.to_string())),
            _ => Err(not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_store_maps_paths_to_variables() {
        let store = EnvSecretStore::from_vars([
            (
                "SECRET_TELEGRAM_API_CREDENTIALS__API_HASH".to_owned(),
                "0123abcd".to_owned(),
            ),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        let got = store
            .get("secret/telegram/api_credentials", "api_hash")
            .await
            .unwrap();
        assert_eq!(got.expose(), "0123abcd");
        assert!(!format!("{store:?}").contains("0123abcd"));
        assert_eq!(
            EnvSecretStore::variable_name("secret/telegram/sessions/3f2b-acc", "session_string"),
            "SECRET_TELEGRAM_SESSIONS_3F2B_ACC__SESSION_STRING"
        );
        let err = store.get("secret/x", "y").await.unwrap_err();
        assert!(matches!(err, SecretError::NotFound { .. }));
    }

    #[tokio::test]
    async fn file_store_reads_json_objects_and_never_echoes_values() {
        let dir =
            std::env::temp_dir().join(format!("invite-telegram-secrets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("secret/telegram")).unwrap();
        std::fs::write(
            dir.join("secret/telegram/api_credentials.json"),
            r#"{"api_id": 2040, "api_hash": "b18441a1ff607e10a989891a5462e627"}"#,
        )
        .unwrap();
        std::fs::write(dir.join("secret/telegram/broken.json"), "not json b1844").unwrap();
        let store = FileSecretStore::new(&dir);
        let path = "secret/telegram/api_credentials";
        assert_eq!(store.get(path, "api_id").await.unwrap().expose(), "2040");
        assert_eq!(
            store.get(path, "api_hash").await.unwrap().expose(),
            "b18441a1ff607e10a989891a5462e627"
        );
        assert!(matches!(
            store.get(path, "nope").await,
            Err(SecretError::NotFound { .. })
        ));
        assert!(matches!(
            store.get("secret/none", "k").await,
            Err(SecretError::NotFound { .. })
        ));
        let broken = store.get("secret/telegram/broken", "k").await.unwrap_err();
        assert!(!broken.to_string().contains("b1844"));
        assert!(matches!(
            store.get("../etc/passwd", "k").await,
            Err(SecretError::Unavailable(_))
        ));
        assert!(matches!(
            store.get("/etc/passwd", "k").await,
            Err(SecretError::Unavailable(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
