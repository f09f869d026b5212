//! Identifier newtypes: the owner of a task, a task, a target and an account.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Error returned when a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    kind: &'static str,
    reason: &'static str,
}

macro_rules! int_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw value (as stored in the database).
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw value.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse::<i64>().map(Self).map_err(|_| InvalidId {
                    kind: $kind,
                    reason: "not an integer",
                })
            }
        }
    };
}

int_id!(
    /// The platform user who owns tasks and accounts. Every store call is scoped by it.
    UserId,
    "user id"
);
int_id!(
    /// A task (campaign).
    TaskId,
    "task id"
);
int_id!(
    /// One target (person) of a task.
    TargetId,
    "target id"
);

/// A connected messenger account (a UUID in the platform; any non-blank token here).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Parses an account id: 1–255 characters, no whitespace.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        let bad = |reason| InvalidId {
            kind: "account id",
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.chars().count() > 255 {
            return Err(bad("longer than 255 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace"));
        }
        Ok(Self(s))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AccountId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_ids_parse_and_display() {
        assert_eq!("42".parse::<TaskId>().unwrap(), TaskId::new(42));
        assert_eq!(TaskId::new(7).to_string(), "7");
        assert!("x".parse::<UserId>().is_err());
    }

    #[test]
    fn account_ids_reject_blank_and_spaces() {
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("a b").is_err());
        assert!(AccountId::parse("x".repeat(256)).is_err());
        let id = AccountId::parse("3f2b-acc").unwrap();
        assert_eq!(id.as_str(), "3f2b-acc");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"3f2b-acc\"");
        assert!(serde_json::from_str::<AccountId>("\"\"").is_err());
    }
}
