//! Target identifiers: usernames, numeric platform user ids and phone numbers, validated and
//! normalised per platform ("parse, don't validate").
//!
//! `@Name`, `name`, `t.me/name` and `https://t.me/name` all become the username `name`;
//! phones become E.164, national forms included where a default country is configured
//! (`8 (916) 123-45-67` with `RU` → `+79161234567`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Platform;

/// Why an identifier was rejected. The message never repeats more than the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Nothing to parse.
    #[error("empty identifier")]
    Empty,
    /// A username that breaks the platform's rules.
    #[error("invalid username: {0}")]
    Username(&'static str),
    /// A phone number that cannot be made E.164.
    #[error("invalid phone number: {0}")]
    Phone(&'static str),
    /// A numeric id that is not a positive integer.
    #[error("invalid user id: must be a positive integer")]
    UserId,
    /// A link to a group or an invite rather than to a person.
    #[error("an invite or group link is not a person")]
    InviteLink,
    /// The platform does not identify people this way.
    #[error("{platform} does not accept {kind} identifiers")]
    Unsupported {
        /// The platform.
        platform: Platform,
        /// The identifier kind.
        kind: &'static str,
    },
}

/// A username, lower-cased (usernames are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Parses a username for `platform`, accepting `@name`, `t.me/name` and URL forms.
    pub fn parse(input: &str, platform: Platform) -> Result<Self, IdentifierError> {
        let raw = strip_username_decoration(input.trim())?;
        if raw.is_empty() {
            return Err(IdentifierError::Empty);
        }
        match platform {
            Platform::Telegram | Platform::Sandbox => check_telegram_username(raw)?,
            Platform::Instagram => check_instagram_username(raw)?,
            Platform::Whatsapp => {
                return Err(IdentifierError::Unsupported {
                    platform,
                    kind: "username",
                });
            }
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The normalised username, without `@`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// `s` without `prefix`, compared ASCII-case-insensitively; safe on any UTF-8 input.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_username_decoration(s: &str) -> Result<&str, IdentifierError> {
    let mut rest = s;
    for prefix in ["https://", "http://", "www."] {
        rest = strip_prefix_ci(rest, prefix).unwrap_or(rest);
    }
    for host in ["t.me/", "telegram.me/", "telegram.dog/", "instagram.com/"] {
        if let Some(tail) = strip_prefix_ci(rest, host) {
            let path = tail.split(['?', '#']).next().unwrap_or("");
            let path = path.trim_end_matches('/');
            if path.starts_with('+') || path.starts_with("joinchat") || path.contains('/') {
                return Err(IdentifierError::InviteLink);
            }
            return Ok(path);
        }
    }
    if let Some(query) = strip_prefix_ci(rest, "tg://resolve?domain=") {
        return Ok(query.split('&').next().unwrap_or(""));
    }
    Ok(rest.strip_prefix('@').unwrap_or(rest))
}

fn check_telegram_username(s: &str) -> Result<(), IdentifierError> {
    if !(5..=32).contains(&s.len()) {
        return Err(IdentifierError::Username("must be 5 to 32 characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(IdentifierError::Username(
            "only letters, digits and underscores are allowed",
        ));
    }
    if !s.as_bytes()[0].is_ascii_alphabetic() {
        return Err(IdentifierError::Username("must start with a letter"));
    }
    Ok(())
}

fn check_instagram_username(s: &str) -> Result<(), IdentifierError> {
    if !(1..=30).contains(&s.len()) {
        return Err(IdentifierError::Username("must be 1 to 30 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(IdentifierError::Username(
            "only letters, digits, dots and underscores are allowed",
        ));
    }
    Ok(())
}

/// A numeric user id on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlatformUserId(i64);

impl PlatformUserId {
    /// Parses a positive integer id.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdentifierError::Empty);
        }
        match s.parse::<i64>() {
            Ok(v) if v > 0 => Ok(Self(v)),
            _ => Err(IdentifierError::UserId),
        }
    }

    /// The raw id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PlatformUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A country whose national phone formats are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Country {
    iso: &'static str,
    calling_code: &'static str,
    trunk_prefix: &'static str,
    national_len: usize,
}

const COUNTRIES: &[Country] = &[
    Country {
        iso: "RU",
        calling_code: "7",
        trunk_prefix: "8",
        national_len: 10,
    },
    Country {
        iso: "KZ",
        calling_code: "7",
        trunk_prefix: "8",
        national_len: 10,
    },
    Country {
        iso: "BY",
        calling_code: "375",
        trunk_prefix: "80",
        national_len: 9,
    },
    Country {
        iso: "UA",
        calling_code: "380",
        trunk_prefix: "0",
        national_len: 9,
    },
    Country {
        iso: "UZ",
        calling_code: "998",
        trunk_prefix: "",
        national_len: 9,
    },
    Country {
        iso: "US",
        calling_code: "1",
        trunk_prefix: "1",
        national_len: 10,
    },
    Country {
        iso: "GB",
        calling_code: "44",
        trunk_prefix: "0",
        national_len: 10,
    },
    Country {
        iso: "DE",
        calling_code: "49",
        trunk_prefix: "0",
        national_len: 11,
    },
];

impl Country {
    /// Looks a country up by its ISO 3166 alpha-2 code (`RU`, `us`, …).
    pub fn from_iso(code: &str) -> Option<Country> {
        COUNTRIES
            .iter()
            .copied()
            .find(|c| c.iso.eq_ignore_ascii_case(code.trim()))
    }

    /// ISO code of every supported country.
    pub fn supported() -> impl Iterator<Item = &'static str> {
        COUNTRIES.iter().map(|c| c.iso)
    }

    /// The ISO code.
    pub const fn iso(&self) -> &'static str {
        self.iso
    }
}

/// A phone number in E.164 form (`+` and 8–15 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Parses an international number (`+…` or `00…`) or, given a country, a national one.
    pub fn parse(input: &str, country: Option<Country>) -> Result<Self, IdentifierError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdentifierError::Empty);
        }
        let (plus, body) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let mut digits = String::with_capacity(body.len());
        for c in body.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' | '\u{a0}' => {}
                _ => return Err(IdentifierError::Phone("unexpected character")),
            }
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else {
            let Some(c) = country else {
                return Err(IdentifierError::Phone(
                    "national number without a configured country; use +<country code>",
                ));
            };
            national_to_international(&digits, c)?
        };
        if !(8..=15).contains(&international.len()) {
            return Err(IdentifierError::Phone("must have 8 to 15 digits"));
        }
        if international.starts_with('0') {
            return Err(IdentifierError::Phone("country code cannot start with 0"));
        }
        Ok(Self(format!("+{international}")))
    }

    /// The E.164 form, with `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn national_to_international(digits: &str, c: Country) -> Result<String, IdentifierError> {
    let with_cc = c.calling_code.len() + c.national_len;
    if digits.len() == with_cc && digits.starts_with(c.calling_code) {
        return Ok(digits.to_owned());
    }
    if !c.trunk_prefix.is_empty()
        && digits.len() == c.trunk_prefix.len() + c.national_len
        && digits.starts_with(c.trunk_prefix)
    {
        return Ok(format!(
            "{}{}",
            c.calling_code,
            &digits[c.trunk_prefix.len()..]
        ));
    }
    if digits.len() == c.national_len {
        return Ok(format!("{}{digits}", c.calling_code));
    }
    Err(IdentifierError::Phone(
        "does not match the configured country's number length",
    ))
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Options of identifier normalisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Country used to read national phone numbers.
    pub default_country: Option<Country>,
}

/// How one person is identified on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum TargetIdentifier {
    /// `@username`.
    Username(Username),
    /// Numeric platform user id.
    UserId(PlatformUserId),
    /// E.164 phone.
    Phone(Phone),
}

impl TargetIdentifier {
    /// Reads a free-form identifier: `+…` or a formatted number is a phone, plain digits are a
    /// user id, anything else is a username (links and `@` accepted).
    pub fn parse(
        input: &str,
        platform: Platform,
        opts: &NormalizeOptions,
    ) -> Result<Self, IdentifierError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdentifierError::Empty);
        }
        let looks_numeric = s.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '\u{a0}')
        });
        let result = if looks_numeric && s.bytes().all(|b| b.is_ascii_digit()) {
            PlatformUserId::parse(s).map(Self::UserId)
        } else if looks_numeric {
            Phone::parse(s, opts.default_country).map(Self::Phone)
        } else {
            Username::parse(s, platform).map(Self::Username)
        }?;
        result.check_platform(platform)
    }

    /// Fails when `platform` does not identify people this way.
    pub fn check_platform(self, platform: Platform) -> Result<Self, IdentifierError> {
        let ok = matches!(
            (&self, platform),
            (_, Platform::Telegram | Platform::Sandbox)
                | (Self::Username(_) | Self::UserId(_), Platform::Instagram)
                | (Self::Phone(_), Platform::Whatsapp)
        );
        if ok {
            Ok(self)
        } else {
            Err(IdentifierError::Unsupported {
                platform,
                kind: self.kind(),
            })
        }
    }

    /// `username`, `user_id` or `phone`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Username(_) => "username",
            Self::UserId(_) => "user_id",
            Self::Phone(_) => "phone",
        }
    }

    /// The canonical key used for de-duplication (`u:name`, `i:123`, `p:+7…`).
    pub fn dedupe_key(&self) -> String {
        let (prefix, value) = match self {
            Self::Username(u) => ("u:", u.as_str()),
            Self::UserId(id) => return format!("i:{id}"),
            Self::Phone(p) => ("p:", p.as_str()),
        };
        let mut key = String::with_capacity(prefix.len() + value.len());
        key.push_str(prefix);
        key.push_str(value);
        key
    }

    /// Parses a key produced by [`dedupe_key`](Self::dedupe_key) (as stored).
    pub fn from_dedupe_key(key: &str) -> Option<Self> {
        let (kind, value) = key.split_once(':')?;
        match kind {
            "u" => Some(Self::Username(Username(value.to_owned()))),
            "i" => value.parse().ok().map(|v| Self::UserId(PlatformUserId(v))),
            "p" => Some(Self::Phone(Phone(value.to_owned()))),
            _ => None,
        }
    }

    /// Whether the identifier is a phone number (never logged in full).
    pub const fn is_phone(&self) -> bool {
        matches!(self, Self::Phone(_))
    }

    /// A form safe for logs: phones are masked except their last two digits.
    pub fn redacted(&self) -> String {
        match self {
            Self::Phone(p) => {
                let s = p.as_str();
                format!("+***{}", &s[s.len().saturating_sub(2)..])
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for TargetIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Username(u) => u.fmt(f),
            Self::UserId(id) => id.fmt(f),
            Self::Phone(p) => p.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: Platform = Platform::Telegram;

    fn ru() -> NormalizeOptions {
        NormalizeOptions {
            default_country: Country::from_iso("ru"),
        }
    }

    #[test]
    fn username_forms_normalise_to_one() {
        for input in [
            "@Durov_Team",
            "durov_team",
            "t.me/durov_team",
            "https://t.me/Durov_Team",
            "http://telegram.me/durov_team/",
            "https://www.t.me/durov_team?start=1",
            "tg://resolve?domain=durov_team",
            "  @durov_team  ",
        ] {
            let id = TargetIdentifier::parse(input, TG, &NormalizeOptions::default()).unwrap();
            assert_eq!(id.to_string(), "@durov_team", "{input}");
        }
    }

    #[test]
    fn username_rules() {
        assert_eq!(
            Username::parse("abcd", TG),
            Err(IdentifierError::Username("must be 5 to 32 characters"))
        );
        assert!(Username::parse(&"a".repeat(33), TG).is_err());
        assert!(Username::parse(&"a".repeat(32), TG).is_ok());
        assert_eq!(
            Username::parse("1abcde", TG),
            Err(IdentifierError::Username("must start with a letter"))
        );
        assert!(Username::parse("abc-def", TG).is_err());
        assert!(Username::parse("имя_пользователя", TG).is_err());
        assert_eq!(
            Username::parse("https://t.me/+AbCdEf", TG),
            Err(IdentifierError::InviteLink)
        );
        assert_eq!(
            Username::parse("t.me/joinchat/xyz", TG),
            Err(IdentifierError::InviteLink)
        );
        assert!(Username::parse("ab.c", Platform::Instagram).is_ok());
        assert!(Username::parse("someone", Platform::Whatsapp).is_err());
    }

    #[test]
    fn phones_to_e164() {
        let cases = [
            ("+7 916 123-45-67", "+79161234567"),
            ("8 (916) 123-45-67", "+79161234567"),
            ("89161234567", "+79161234567"),
            ("79161234567", "+79161234567"),
            ("9161234567", "+79161234567"),
            ("0079161234567", "+79161234567"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Phone::parse(input, ru().default_country).unwrap().as_str(),
                want,
                "{input}"
            );
        }
        let ua = Country::from_iso("UA");
        assert_eq!(
            Phone::parse("050 123 45 67", ua).unwrap().as_str(),
            "+380501234567"
        );
        let by = Country::from_iso("BY");
        assert_eq!(
            Phone::parse("8 029 123 45 67", by).unwrap().as_str(),
            "+375291234567"
        );
        assert!(Phone::parse("8 (916) 123-45-67", None).is_err());
        assert!(Phone::parse("+12", None).is_err());
        assert!(Phone::parse("+7916abc", None).is_err());
        assert!(Phone::parse("+0123456789", None).is_err());
        assert!(Phone::parse("12345", ru().default_country).is_err());
    }

    #[test]
    fn free_form_classification() {
        let o = ru();
        assert!(matches!(
            TargetIdentifier::parse("123456789", TG, &o).unwrap(),
            TargetIdentifier::UserId(_)
        ));
        assert!(matches!(
            TargetIdentifier::parse("+79161234567", TG, &o).unwrap(),
            TargetIdentifier::Phone(_)
        ));
        assert!(matches!(
            TargetIdentifier::parse("8 (916) 123-45-67", TG, &o).unwrap(),
            TargetIdentifier::Phone(_)
        ));
        assert_eq!(
            TargetIdentifier::parse("0", TG, &o),
            Err(IdentifierError::UserId)
        );
        assert_eq!(
            TargetIdentifier::parse("   ", TG, &o),
            Err(IdentifierError::Empty)
        );
        assert!(TargetIdentifier::parse("+79161234567", Platform::Instagram, &o).is_err());
        assert!(TargetIdentifier::parse("someone", Platform::Whatsapp, &o).is_err());
    }

    #[test]
    fn dedupe_keys_round_trip_and_redaction() {
        let o = ru();
        for input in ["@Someone", "12345", "+79161234567"] {
            let id = TargetIdentifier::parse(input, TG, &o).unwrap();
            assert_eq!(
                TargetIdentifier::from_dedupe_key(&id.dedupe_key()).unwrap(),
                id
            );
        }
        let phone = TargetIdentifier::parse("+79161234567", TG, &o).unwrap();
        assert_eq!(phone.redacted(), "+***67");
        assert!(!phone.redacted().contains("916"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Inputs near every accepted form: decorations, digits, separators, letters.
        fn input() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("@".to_owned()),
                Just("+".to_owned()),
                Just("https://t.me/".to_owned()),
                Just("tg://resolve?domain=".to_owned()),
                Just("joinchat/".to_owned()),
                Just("00".to_owned()),
                "[0-9 ()\\-.]{0,12}",
                "[A-Za-z_]{0,12}",
                ".{0,6}",
            ];
            proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            /// Any text is read or refused without a panic, on every platform and with or
            /// without a country; an identifier is never longer than its input plus `@` or
            /// `+`, normalising twice changes nothing, and a refusal's message is short.
            #[test]
            fn normalising_never_panics_and_stays_bounded(s in input(), ru in any::<bool>()) {
                let opts = NormalizeOptions {
                    default_country: ru.then(|| Country::from_iso("RU")).flatten(),
                };
                for platform in Platform::ALL {
                    match TargetIdentifier::parse(&s, platform, &opts) {
                        Ok(id) => {
                            let text = id.to_string();
                            prop_assert!(text.len() <= s.len() + 2, "{:?} -> {:?}", s, text);
                            let again = TargetIdentifier::parse(&text, platform, &opts);
                            prop_assert_eq!(again.as_ref().ok(), Some(&id), "{:?}", s);
                        }
                        Err(e) => {
                            let n = e.to_string().chars().count();
                            prop_assert!(n <= 200, "{} characters", n);
                        }
                    }
                }
            }
        }
    }
}
