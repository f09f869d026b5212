//! Session import: Telethon and Pyrogram session strings into a grammers session.
//!
//! The platform's Python services sign the accounts in and keep their sessions in Vault as
//! Telethon `StringSession` strings (sometimes Pyrogram ones). This module decodes them, with
//! no interactive login, into [`SessionData`] for grammers' in-memory session. The only
//! encoders, [`telethon_string`] and [`pyrogram_string`], turn the rows of a Telethon or
//! Pyrogram `.session` file (SQLite) into the string of the same library, so that an uploaded
//! file is imported exactly like a pasted string.
//!
//! Accepted layouts (all big-endian, URL-safe base64):
//!
//! | layout | chars | bytes | fields |
//! | --- | --- | --- | --- |
//! | Telethon, IPv4 | 353 (`'1'` + padded base64) | 263 | dc `u8`, IPv4 `[4]`, port `u16`, key `[256]` |
//! | Telethon, IPv6 | 369 | 275 | dc `u8`, IPv6 `[16]`, port `u16`, key `[256]` |
//! | Pyrogram, old | 351 (no padding) | 263 | dc `u8`, test `bool`, key `[256]`, user id `u32`, bot `bool` |
//! | Pyrogram, old 64-bit | 356 | 267 | dc `u8`, test `bool`, key `[256]`, user id `u64`, bot `bool` |
//! | Pyrogram, current | 362 | 271 | dc `u8`, api id `u32`, test `bool`, key `[256]`, user id `u64`, bot `bool` |
//!
//! Padding is optional on input and surrounding whitespace is ignored. Anything else — another
//! length, a bad character, a flag byte other than 0 or 1, a data centre outside 1–5, an
//! all-zero key, a bot session or a test-server session — is refused with a [`SessionError`]
//! that never repeats the input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use grammers_session::SessionData;
use sha1::{Digest, Sha1};

/// Length of an MTProto authorization key.
pub const AUTH_KEY_LEN: usize = 256;

/// Telegram's test data centres, as Telethon records them (a Telethon string carries no test
/// flag, only the address).
const TEST_DC_IPV4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(149, 154, 175, 10),
    Ipv4Addr::new(149, 154, 167, 40),
    Ipv4Addr::new(149, 154, 175, 117),
];
const TEST_DC_IPV6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0x0b28, 0xf23d, 0xf001, 0, 0, 0, 0x000e),
    Ipv6Addr::new(0x2001, 0x067c, 0x04e8, 0xf002, 0, 0, 0, 0x000e),
    Ipv6Addr::new(0x2001, 0x0b28, 0xf23d, 0xf003, 0, 0, 0, 0x000e),
];

/// Which library wrote a session string, and which of its layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionFormat {
    /// Telethon `StringSession` with an IPv4 address (353 characters).
    TelethonIpv4,
    /// Telethon `StringSession` with an IPv6 address (369 characters).
    TelethonIpv6,
    /// Pyrogram's first layout, 32-bit user id (351 characters).
    PyrogramOld,
    /// Pyrogram's first layout with a 64-bit user id (356 characters).
    PyrogramOld64,
    /// Pyrogram's current layout, with the api id (362 characters).
    Pyrogram,
}

impl SessionFormat {
    /// Short name (`telethon-ipv4`, `pyrogram-v2`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionFormat::TelethonIpv4 => "telethon-ipv4",
            SessionFormat::TelethonIpv6 => "telethon-ipv6",
            SessionFormat::PyrogramOld => "pyrogram-v1",
            SessionFormat::PyrogramOld64 => "pyrogram-v1-64",
            SessionFormat::Pyrogram => "pyrogram-v2",
        }
    }

    /// Length of the decoded bytes.
    const fn byte_len(self) -> usize {
        match self {
            SessionFormat::TelethonIpv4 | SessionFormat::PyrogramOld => 263,
            SessionFormat::TelethonIpv6 => 275,
            SessionFormat::PyrogramOld64 => 267,
            SessionFormat::Pyrogram => 271,
        }
    }

    const fn is_telethon(self) -> bool {
        matches!(
            self,
            SessionFormat::TelethonIpv4 | SessionFormat::TelethonIpv6
        )
    }
}

impl fmt::Display for SessionFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session string was refused. No variant carries any part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Nothing but whitespace.
    #[error("empty session string")]
    Empty,
    /// A length no supported layout has.
    #[error(
        "unsupported session string: {chars} characters (expected a Telethon string of 353 or \
         369, or a Pyrogram string of 351, 356 or 362)"
    )]
    UnknownFormat {
        /// Length of the input without whitespace and padding.
        chars: usize,
    },
    /// A character outside URL-safe base64, or a bad final character.
    #[error("session string is not valid URL-safe base64")]
    BadBase64,
    /// A boolean field holding something other than 0 or 1 (a wrong layout, or corruption).
    #[error("malformed {format} session string: the {field} flag is neither 0 nor 1")]
    BadFlag {
        /// The layout that was tried.
        format: SessionFormat,
        /// The field.
        field: &'static str,
    },
    /// A data centre outside 1–5.
    #[error("{format} session string names data centre {dc_id}; expected 1 to 5")]
    InvalidDc {
        /// The layout.
        format: SessionFormat,
        /// The data centre found.
        dc_id: u8,
    },
    /// A Telethon address that cannot be connected to.
    #[error("{format} session string carries an unusable address (port 0 or unspecified IP)")]
    BadAddress {
        /// The layout.
        format: SessionFormat,
    },
    /// The authorization key is all zeros (Telethon writes that for "no key").
    #[error("{format} session string has no authorization key")]
    MissingKey {
        /// The layout.
        format: SessionFormat,
    },
    /// A session of Telegram's test servers.
    #[error("{format} session string belongs to Telegram's test servers; refusing it")]
    TestServer {
        /// The layout.
        format: SessionFormat,
    },
    /// A bot's session; invites and messages are sent from user accounts only.
    #[error("{format} session string belongs to a bot account; refusing it")]
    Bot {
        /// The layout.
        format: SessionFormat,
    },
}

/// An authorization key. Its `Debug` is redacted; nothing in this crate prints it.
#[derive(Clone, PartialEq, Eq)]
struct AuthKey(Box<[u8; AUTH_KEY_LEN]>);

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(***)")
    }
}

/// The id Telegram derives from an authorization key: the low 64 bits of its SHA-1. Every
/// encrypted MTProto message carries it in clear, so it identifies a key without revealing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(u64);

impl KeyFingerprint {
    fn of(key: &[u8; AUTH_KEY_LEN]) -> Self {
        let digest = Sha1::digest(key);
        let mut low = [0u8; 8];
        low.copy_from_slice(&digest[12..20]);
        Self(u64::from_le_bytes(low))
    }

    /// The `auth_key_id` as Telegram computes it.
    pub const fn auth_key_id(self) -> u64 {
        self.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A decoded session string: the account's home data centre and authorization key, plus
/// whatever else the format carries. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionString {
    format: SessionFormat,
    dc_id: u8,
    address: Option<SocketAddr>,
    user_id: Option<i64>,
    api_id: Option<i32>,
    auth_key: AuthKey,
}

impl fmt::Debug for SessionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionString")
            .field("format", &self.format)
            .field("dc_id", &self.dc_id)
            .field("address", &self.address)
            .field("user_id", &self.user_id)
            .field("api_id", &self.api_id)
            .field("auth_key", &self.auth_key)
            .finish()
    }
}

/// The Telethon `StringSession` string of a session's parts (what a Telethon `.session` file's
/// `sessions` row holds: data centre, server address and port, key). Checked by parsing it.
pub fn telethon_string(
    dc_id: u8,
    ip: IpAddr,
    port: u16,
    auth_key: &[u8],
) -> Result<String, SessionError> {
    let format = match ip {
        IpAddr::V4(_) => SessionFormat::TelethonIpv4,
        IpAddr::V6(_) => SessionFormat::TelethonIpv6,
    };
    let key: &[u8; AUTH_KEY_LEN] = auth_key
        .try_into()
        .map_err(|_| SessionError::MissingKey { format })?;
    let mut b = Vec::with_capacity(format.byte_len());
    b.push(dc_id);
    match ip {
        IpAddr::V4(v4) => b.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
    }
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(key);
    let s = format!("1{}", base64::engine::general_purpose::URL_SAFE.encode(&b));
    SessionString::parse(&s)?;
    Ok(s)
}

/// The current Pyrogram session string of a session's parts (what a Pyrogram `.session` file's
/// `sessions` row holds). Checked by parsing it.
pub fn pyrogram_string(
    dc_id: u8,
    api_id: u32,
    test_mode: bool,
    auth_key: &[u8],
    user_id: u64,
    is_bot: bool,
) -> Result<String, SessionError> {
    let format = SessionFormat::Pyrogram;
    let key: &[u8; AUTH_KEY_LEN] = auth_key
        .try_into()
        .map_err(|_| SessionError::MissingKey { format })?;
    let mut b = Vec::with_capacity(format.byte_len());
    b.push(dc_id);
    b.extend_from_slice(&api_id.to_be_bytes());
    b.push(u8::from(test_mode));
    b.extend_from_slice(key);
    b.extend_from_slice(&user_id.to_be_bytes());
    b.push(u8::from(is_bot));
    let s = URL_SAFE_NO_PAD.encode(&b);
    SessionString::parse(&s)?;
    Ok(s)
}

impl SessionString {
    /// Decodes a Telethon or Pyrogram session string.
    pub fn parse(input: &str) -> Result<Self, SessionError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(SessionError::Empty);
        }
        let unpadded = s.trim_end_matches('=');
        let (format, body) = match unpadded.len() {
            352 if unpadded.starts_with('1') => (SessionFormat::TelethonIpv4, &unpadded[1..]),
            368 if unpadded.starts_with('1') => (SessionFormat::TelethonIpv6, &unpadded[1..]),
            351 => (SessionFormat::PyrogramOld, unpadded),
            356 => (SessionFormat::PyrogramOld64, unpadded),
            362 => (SessionFormat::Pyrogram, unpadded),
            chars => return Err(SessionError::UnknownFormat { chars }),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SessionError::BadBase64)?;
        // The lengths above are exactly those of the layouts' byte lengths in base64.
        debug_assert_eq!(bytes.len(), format.byte_len());
        if bytes.len() != format.byte_len() {
            return Err(SessionError::UnknownFormat {
                chars: unpadded.len(),
            });
        }
        let parsed = if format.is_telethon() {
            Self::telethon(format, &bytes)
        } else {
            Self::pyrogram(format, &bytes)
        }?;
        parsed.check()
    }

    fn telethon(format: SessionFormat, b: &[u8]) -> Result<Self, SessionError> {
        let mut r = Reader::new(b);
        let dc_id = r.u8();
        let ip = match format {
            SessionFormat::TelethonIpv4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>())),
            _ => IpAddr::V6(Ipv6Addr::from(r.array::<16>())),
        };
        let port = r.u16();
        let auth_key = AuthKey(Box::new(r.array::<AUTH_KEY_LEN>()));
        if port == 0 || ip.is_unspecified() {
            return Err(SessionError::BadAddress { format });
        }
        let test_server = match ip {
            IpAddr::V4(v4) => TEST_DC_IPV4.contains(&v4),
            IpAddr::V6(v6) => TEST_DC_IPV6.contains(&v6),
        };
        if test_server {
            return Err(SessionError::TestServer { format });
        }
        Ok(Self {
            format,
            dc_id,
            address: Some(SocketAddr::new(ip, port)),
            user_id: None,
            api_id: None,
            auth_key,
        })
    }

    fn pyrogram(format: SessionFormat, b: &[u8]) -> Result<Self, SessionError> {
        let mut r = Reader::new(b);
        let dc_id = r.u8();
        let api_id = (format == SessionFormat::Pyrogram).then(|| r.u32());
        let test_mode = r.flag(format, "test_mode")?;
        let auth_key = AuthKey(Box::new(r.array::<AUTH_KEY_LEN>()));
        let user_id = match format {
            SessionFormat::PyrogramOld => i64::from(r.u32()),
            _ => r.u64() as i64,
        };
        let is_bot = r.flag(format, "is_bot")?;
        if test_mode {
            return Err(SessionError::TestServer { format });
        }
        if is_bot {
            return Err(SessionError::Bot { format });
        }
        Ok(Self {
            format,
            dc_id,
            address: None,
            user_id: (user_id != 0).then_some(user_id),
            // Pyrogram packs the api id as unsigned; Telegram's are positive `int32`s.
            api_id: api_id.map(|v| v as i32),
            auth_key,
        })
    }

    fn check(self) -> Result<Self, SessionError> {
        if !(1..=5).contains(&self.dc_id) {
            return Err(SessionError::InvalidDc {
                format: self.format,
                dc_id: self.dc_id,
            });
        }
        if self.auth_key.0.iter().all(|&b| b == 0) {
            return Err(SessionError::MissingKey {
                format: self.format,
            });
        }
        Ok(self)
    }

    /// The layout the string was in.
    pub const fn format(&self) -> SessionFormat {
        self.format
    }

    /// The account's home data centre (1–5).
    pub fn dc_id(&self) -> i32 {
        i32::from(self.dc_id)
    }

    /// The address carried by the string (Telethon only).
    pub const fn carried_address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The account's address: the carried one (Telethon), or for Pyrogram, which stores none,
    /// grammers' built-in IPv4 address of the data centre. An IPv6 address is only dialled
    /// when the client is set to use IPv6 (`ClientParams::use_ipv6`); otherwise grammers uses
    /// its IPv4 address of the same data centre.
    pub fn address(&self) -> SocketAddr {
        if let Some(addr) = self.address {
            return addr;
        }
        let data = SessionData::default();
        data.dc_options
            .get(&self.dc_id())
            .map(|o| SocketAddr::V4(o.ipv4))
            .unwrap_or_else(|| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// The Telegram user id, where the format carries it (Pyrogram).
    pub const fn user_id(&self) -> Option<i64> {
        self.user_id
    }

    /// The api id the session was created with, where the format carries it (Pyrogram v2).
    pub const fn api_id(&self) -> Option<i32> {
        self.api_id
    }

    /// A fingerprint of the authorization key (its `auth_key_id`), safe to print.
    pub fn key_fingerprint(&self) -> KeyFingerprint {
        KeyFingerprint::of(&self.auth_key.0)
    }

    /// The grammers session data: home data centre, its address (when carried) and the key.
    /// The result holds the key; keep it in memory only.
    pub fn to_session_data(&self) -> SessionData {
        let mut data = SessionData::default();
        let dc_id = self.dc_id();
        data.home_dc = dc_id;
        if let Some(option) = data.dc_options.get_mut(&dc_id) {
            option.auth_key = Some(*self.auth_key.0);
            match self.address {
                Some(SocketAddr::V4(v4)) => option.ipv4 = v4,
                Some(SocketAddr::V6(v6)) => {
                    option.ipv6 = SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0);
                }
                None => {}
            }
        }
        data
    }

    /// Re-encodes in the original layout, byte for byte as the Python libraries write it.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> String {
        use base64::engine::general_purpose::URL_SAFE;
        let mut b = Vec::with_capacity(self.format.byte_len());
        b.push(self.dc_id);
        if self.format.is_telethon() {
            let addr = self.address.expect("telethon strings carry an address");
            match addr.ip() {
                IpAddr::V4(v4) => b.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
            }
            b.extend_from_slice(&addr.port().to_be_bytes());
            b.extend_from_slice(&self.auth_key.0[..]);
            return format!("1{}", URL_SAFE.encode(&b));
        }
        if let Some(api_id) = self.api_id {
            b.extend_from_slice(&(api_id as u32).to_be_bytes());
        }
        b.push(0);
        b.extend_from_slice(&self.auth_key.0[..]);
        let uid = self.user_id.unwrap_or(0);
        if self.format == SessionFormat::PyrogramOld {
            b.extend_from_slice(&(uid as u32).to_be_bytes());
        } else {
            b.extend_from_slice(&(uid as u64).to_be_bytes());
        }
        b.push(0);
        URL_SAFE_NO_PAD.encode(&b)
    }

    #[cfg(test)]
    pub(crate) fn auth_key_bytes(&self) -> &[u8; AUTH_KEY_LEN] {
        &self.auth_key.0
    }
}

/// A cursor over bytes whose total length was checked beforehand.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    fn flag(&mut self, format: SessionFormat, field: &'static str) -> Result<bool, SessionError> {
        match self.u8() {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SessionError::BadFlag { format, field }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::engine::general_purpose::URL_SAFE;
    use grammers_session::Session as _;
    use grammers_session::storages::MemorySession;
    use serde_json::Value;

    use super::*;

    /// Vectors written by `testdata/make_sessions.py` with Python's `struct` and `base64`.
    const VECTORS: &str = include_str!("../testdata/sessions.json");

    fn vectors() -> Vec<Value> {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        v["valid"].as_array().unwrap().clone()
    }

    fn invalid_vectors() -> Vec<Value> {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        v["invalid"].as_array().unwrap().clone()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn key(seed: u8) -> [u8; 256] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
    }

    #[test]
    fn encoders_round_trip_through_the_parser() {
        let k = key(3);
        let ip = IpAddr::V4(Ipv4Addr::new(149, 154, 167, 51));
        let t = telethon_string(2, ip, 443, &k).unwrap();
        assert_eq!(t, telethon_v4(2, [149, 154, 167, 51], 443, &k));
        let parsed = SessionString::parse(&t).unwrap();
        assert_eq!(parsed.format(), SessionFormat::TelethonIpv4);
        assert_eq!(parsed.address(), SocketAddr::new(ip, 443));
        let p = pyrogram_string(4, 12345, false, &k, 777_000_111, false).unwrap();
        let parsed = SessionString::parse(&p).unwrap();
        assert_eq!(parsed.format(), SessionFormat::Pyrogram);
        assert_eq!(parsed.dc_id(), 4);
        assert_eq!(parsed.api_id(), Some(12345));
        assert_eq!(parsed.user_id(), Some(777_000_111));
        // Checked like any string: a short key, a bot, a test server are refused.
        assert!(telethon_string(2, ip, 443, &k[..10]).is_err());
        assert!(pyrogram_string(4, 1, false, &k, 1, true).is_err());
        assert!(pyrogram_string(4, 1, true, &k, 1, false).is_err());
    }

    fn telethon_v4(dc: u8, ip: [u8; 4], port: u16, key: &[u8; 256]) -> String {
        let mut b = vec![dc];
        b.extend_from_slice(&ip);
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(key);
        format!("1{}", URL_SAFE.encode(&b))
    }

    fn pyrogram_v2(dc: u8, api_id: u32, test: u8, key: &[u8; 256], uid: u64, bot: u8) -> String {
        let mut b = vec![dc];
        b.extend_from_slice(&api_id.to_be_bytes());
        b.push(test);
        b.extend_from_slice(key);
        b.extend_from_slice(&uid.to_be_bytes());
        b.push(bot);
        URL_SAFE_NO_PAD.encode(&b)
    }

    #[test]
    fn python_vectors_decode_and_round_trip_byte_exact() {
        let all = vectors();
        assert_eq!(all.len(), 5, "one vector per layout");
        for v in all {
            let name = v["name"].as_str().unwrap();
            let input = v["string"].as_str().unwrap();
            assert_eq!(input.len(), v["chars"].as_u64().unwrap() as usize, "{name}");
            let s = SessionString::parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.format().as_str(), v["format"].as_str().unwrap(), "{name}");
            assert_eq!(i64::from(s.dc_id()), v["dc_id"].as_i64().unwrap(), "{name}");
            assert_eq!(
                hex(s.auth_key_bytes()),
                v["key_hex"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(s.user_id(), v["user_id"].as_i64(), "{name}");
            assert_eq!(s.api_id().map(i64::from), v["api_id"].as_i64(), "{name}");
            assert_eq!(
                s.carried_address().map(|a| a.to_string()),
                v["address"].as_str().map(str::to_owned),
                "{name}"
            );
            assert_eq!(
                s.key_fingerprint().to_string(),
                v["auth_key_id"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(s.encode(), input, "{name}: byte-exact round trip");
        }
    }

    #[test]
    fn python_invalid_vectors_are_refused_with_the_expected_error() {
        for v in invalid_vectors() {
            let name = v["name"].as_str().unwrap();
            let input = v["string"].as_str().unwrap();
            let err = SessionString::parse(input).expect_err(name);
            let want = v["error"].as_str().unwrap();
            let got = format!("{err:?}");
            assert!(got.starts_with(want), "{name}: got {got}, want {want}");
        }
    }

    #[test]
    fn telethon_built_here_decodes_to_its_fields() {
        let k = key(3);
        let s = telethon_v4(2, [149, 154, 167, 51], 443, &k);
        assert_eq!(s.len(), 353);
        let p = SessionString::parse(&s).unwrap();
        assert_eq!(p.format(), SessionFormat::TelethonIpv4);
        assert_eq!(p.dc_id(), 2);
        assert_eq!(p.address().to_string(), "149.154.167.51:443");
        assert_eq!(p.user_id(), None);
        assert_eq!(p.auth_key_bytes(), &k);
        assert_eq!(p.encode(), s);
        // Unpadded and surrounded by whitespace: the same session.
        let unpadded = format!("  {}\n", s.trim_end_matches('='));
        assert_eq!(SessionString::parse(&unpadded).unwrap(), p);
    }

    #[test]
    fn telethon_ipv6_built_here_decodes() {
        let k = key(9);
        let ip: Ipv6Addr = "2001:67c:4e8:f004::a".parse().unwrap();
        let mut b = vec![4u8];
        b.extend_from_slice(&ip.octets());
        b.extend_from_slice(&443u16.to_be_bytes());
        b.extend_from_slice(&k);
        let s = format!("1{}", URL_SAFE.encode(&b));
        assert_eq!(s.len(), 369);
        let p = SessionString::parse(&s).unwrap();
        assert_eq!(p.format(), SessionFormat::TelethonIpv6);
        assert_eq!(p.dc_id(), 4);
        assert_eq!(p.address(), SocketAddr::new(IpAddr::V6(ip), 443));
        let data = p.to_session_data();
        assert_eq!(data.dc_options[&4].ipv6.ip(), &ip);
        assert_eq!(data.dc_options[&4].auth_key, Some(k));
    }

    #[test]
    fn pyrogram_v2_built_here_decodes() {
        let k = key(1);
        let s = pyrogram_v2(5, 123_456, 0, &k, 7_000_000_001, 0);
        assert_eq!(s.len(), 362);
        let p = SessionString::parse(&s).unwrap();
        assert_eq!(p.format(), SessionFormat::Pyrogram);
        assert_eq!(p.dc_id(), 5);
        assert_eq!(p.api_id(), Some(123_456));
        assert_eq!(p.user_id(), Some(7_000_000_001));
        assert_eq!(p.carried_address(), None);
        // The address grammers itself knows for DC 5.
        assert_eq!(p.address().port(), 443);
        assert_eq!(p.encode(), s);
    }

    #[tokio::test]
    async fn session_data_feeds_a_memory_session() {
        let k = key(5);
        let p = SessionString::parse(&telethon_v4(3, [149, 154, 175, 100], 443, &k)).unwrap();
        let session = Arc::new(MemorySession::from(p.to_session_data()));
        assert_eq!(session.home_dc_id().unwrap(), 3);
        let option = session.dc_option(3).unwrap().unwrap();
        assert_eq!(option.auth_key, Some(k));
        assert_eq!(option.ipv4.to_string(), "149.154.175.100:443");
        // Other data centres have no key: only the home one was carried.
        assert_eq!(session.dc_option(1).unwrap().unwrap().auth_key, None);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let tele = telethon_v4(2, [149, 154, 167, 51], 443, &key(2));
        let pyro = pyrogram_v2(2, 1, 0, &key(2), 42, 0);
        for full in [&tele, &pyro] {
            for cut in 0..full.len() {
                let s = &full[..cut];
                if s.trim_end_matches('=') == full.trim_end_matches('=') {
                    // Only the padding was cut: still the same session.
                    assert_eq!(
                        SessionString::parse(s).unwrap(),
                        SessionString::parse(full).unwrap()
                    );
                } else if ![351, 352, 356, 362, 368].contains(&s.trim_end_matches('=').len()) {
                    // Lengths of another layout are read as that layout (as Pyrogram itself
                    // does); every other length is refused.
                    assert!(SessionString::parse(s).is_err(), "cut at {cut}");
                }
            }
            for extra in ["A", "AA", "AAAA", "x"] {
                assert!(SessionString::parse(&format!("{full}{extra}")).is_err());
            }
        }
    }

    #[test]
    fn bad_base64_is_refused_without_echo() {
        let s = telethon_v4(2, [149, 154, 167, 51], 443, &key(4));
        for (pos, bad) in [(10, '!'), (100, '+'), (200, '/'), (300, ' '), (5, 'é')] {
            let mut chars: Vec<char> = s.chars().collect();
            chars[pos] = bad;
            let input: String = chars.into_iter().collect();
            let err = SessionString::parse(&input).unwrap_err();
            assert!(
                matches!(
                    err,
                    SessionError::BadBase64 | SessionError::UnknownFormat { .. }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn bots_test_servers_and_bad_fields_are_refused() {
        let k = key(6);
        let bot = pyrogram_v2(2, 1, 0, &k, 42, 1);
        assert!(matches!(
            SessionString::parse(&bot),
            Err(SessionError::Bot { .. })
        ));
        let test = pyrogram_v2(2, 1, 1, &k, 42, 0);
        assert!(matches!(
            SessionString::parse(&test),
            Err(SessionError::TestServer { .. })
        ));
        let flag = pyrogram_v2(2, 1, 2, &k, 42, 0);
        assert!(matches!(
            SessionString::parse(&flag),
            Err(SessionError::BadFlag {
                field: "test_mode",
                ..
            })
        ));
        let tele_test = telethon_v4(2, [149, 154, 167, 40], 80, &k);
        assert!(matches!(
            SessionString::parse(&tele_test),
            Err(SessionError::TestServer { .. })
        ));
        for dc in [0u8, 6, 255] {
            let s = telethon_v4(dc, [149, 154, 167, 51], 443, &k);
            assert!(matches!(
                SessionString::parse(&s),
                Err(SessionError::InvalidDc { .. })
            ));
        }
        let zero_key = telethon_v4(2, [149, 154, 167, 51], 443, &[0; 256]);
        assert!(matches!(
            SessionString::parse(&zero_key),
            Err(SessionError::MissingKey { .. })
        ));
        let no_port = telethon_v4(2, [149, 154, 167, 51], 0, &k);
        assert!(matches!(
            SessionString::parse(&no_port),
            Err(SessionError::BadAddress { .. })
        ));
        // A Telethon-length string with another version marker is not a session we know.
        let v2 = format!("2{}", &telethon_v4(2, [149, 154, 167, 51], 443, &k)[1..]);
        assert!(matches!(
            SessionString::parse(&v2),
            Err(SessionError::UnknownFormat { .. })
        ));
        assert_eq!(SessionString::parse("  \n"), Err(SessionError::Empty));
    }

    #[test]
    fn neither_errors_nor_debug_contain_the_input_or_the_key() {
        let k = key(8);
        let key_hex = hex(&k);
        let good = [
            telethon_v4(2, [149, 154, 167, 51], 443, &k),
            pyrogram_v2(2, 1, 0, &k, 42, 0),
        ];
        for s in &good {
            let p = SessionString::parse(s).unwrap();
            let dbg = format!("{p:?} {:?}", p.format());
            assert!(!dbg.contains(s.as_str()));
            assert!(!dbg.contains(&key_hex));
            assert!(!dbg.contains(&s[1..40]));
            assert!(dbg.contains("***"));
        }
        let mut bad = good.to_vec();
        bad.push(pyrogram_v2(2, 1, 0, &k, 42, 1));
        bad.push(pyrogram_v2(2, 1, 1, &k, 42, 0));
        bad.push(format!("{}!", &good[0][..352]));
        bad.push(good[0][..200].to_owned());
        bad.push(format!("{}AAAA", good[1]));
        for (i, s) in bad.iter().enumerate() {
            let Err(err) = SessionString::parse(s) else {
                continue;
            };
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains(&s[4..24]), "case {i}: {text}");
                assert!(!text.contains(&key_hex[..16]), "case {i}: {text}");
            }
        }
    }
}
