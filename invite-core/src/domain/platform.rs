//! Messengers the engine can work on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A messenger. `Sandbox` is a simulated one for demos, dry runs and load tests; it is never
/// chosen silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Telegram (user accounts over MTProto).
    Telegram,
    /// Instagram (not implemented yet).
    Instagram,
    /// WhatsApp (not implemented yet).
    Whatsapp,
    /// The simulated messenger.
    Sandbox,
}

impl Platform {
    /// Every platform, in a stable order.
    pub const ALL: [Platform; 4] = [
        Platform::Telegram,
        Platform::Instagram,
        Platform::Whatsapp,
        Platform::Sandbox,
    ];

    /// Lower-case name, as used in the API, the database and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Telegram => "telegram",
            Platform::Instagram => "instagram",
            Platform::Whatsapp => "whatsapp",
            Platform::Sandbox => "sandbox",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown platform name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?} (expected telegram, instagram, whatsapp or sandbox)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| UnknownPlatform(super::echo(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case() {
        assert_eq!("Telegram".parse::<Platform>().unwrap(), Platform::Telegram);
        assert_eq!(" sandbox ".parse::<Platform>().unwrap(), Platform::Sandbox);
        assert!("icq".parse::<Platform>().is_err());
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), p);
        }
    }
}
