//! Session strings pointing at local addresses, and a secret store holding them.

use std::net::Ipv4Addr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use invite_telegram::EnvSecretStore;

pub const API_HASH: &str = "0123456789abcdef0123456789abcdef";

/// A synthetic 256-byte key.
pub fn key() -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(17))
}

/// A Telethon string session (format 1) for DC 2 at `ip:port`.
pub fn telethon_session(ip: Ipv4Addr, port: u16) -> String {
    let mut raw = vec![2u8];
    raw.extend_from_slice(&ip.octets());
    raw.extend_from_slice(&port.to_be_bytes());
    raw.extend_from_slice(&key());
    format!("1{}", URL_SAFE.encode(&raw))
}

/// Api credentials plus the session of account `acc-1`.
pub fn secrets(session: &str) -> EnvSecretStore {
    EnvSecretStore::from_vars([
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_ID".to_owned(),
            "2040".to_owned(),
        ),
        (
            "SECRET_TELEGRAM_API_CREDENTIALS__API_HASH".to_owned(),
            API_HASH.to_owned(),
        ),
        (
            EnvSecretStore::variable_name("secret/telegram/sessions/acc-1", "session_string"),
            session.to_owned(),
        ),
    ])
}
