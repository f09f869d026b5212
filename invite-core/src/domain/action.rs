//! What a task does to each target, and the group it invites into.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Template;

/// A group or channel, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum GroupRef {
    /// Public `@name` (lower-cased).
    Username(String),
    /// Numeric id (`-100…` for channels).
    Id(i64),
    /// Invite link hash (`t.me/+HASH`, `t.me/joinchat/HASH`).
    InviteLink(String),
}

/// A group reference that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid group {input:?}: expected @name, a numeric id or an invite link")]
pub struct InvalidGroup {
    /// The input, cut to [`ECHO_CHARS`] characters (an error never grows with its input).
    pub input: String,
}

/// How many characters of a refused value an error repeats.
pub const ECHO_CHARS: usize = 100;

/// `value` cut to [`ECHO_CHARS`] characters, with `…` when something was cut.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

impl GroupRef {
    /// Parses `@name`, `name`, `t.me/name`, `-1001234`, `t.me/+HASH` or `t.me/joinchat/HASH`.
    pub fn parse(input: &str) -> Result<Self, InvalidGroup> {
        let bad = || InvalidGroup { input: echo(input) };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if let Ok(id) = s.parse::<i64>() {
            return (id != 0).then_some(GroupRef::Id(id)).ok_or_else(bad);
        }
        let lower = s.to_ascii_lowercase();
        let path = ["https://", "http://"]
            .iter()
            .find_map(|p| lower.strip_prefix(p).map(|_| &s[p.len()..]))
            .unwrap_or(s);
        let path_lower = path.to_ascii_lowercase();
        let path = ["t.me/", "telegram.me/", "www.t.me/"]
            .iter()
            .find_map(|h| path_lower.strip_prefix(h).map(|_| &path[h.len()..]))
            .unwrap_or(path);
        let path = path.trim_end_matches('/');
        let hash = path
            .strip_prefix('+')
            .or_else(|| path.strip_prefix("joinchat/"));
        if let Some(hash) = hash {
            let ok = !hash.is_empty()
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            return ok
                .then(|| GroupRef::InviteLink(hash.to_owned()))
                .ok_or_else(bad);
        }
        let name = path.strip_prefix('@').unwrap_or(path);
        let ok = (4..=32).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphabetic()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| GroupRef::Username(name.to_ascii_lowercase()))
            .ok_or_else(bad)
    }

    /// A stable key naming the group in limit ledgers (`@name`, `id:-100…`, `link:HASH`).
    pub fn channel_key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupRef::Username(n) => write!(f, "@{n}"),
            GroupRef::Id(id) => write!(f, "id:{id}"),
            GroupRef::InviteLink(h) => write!(f, "link:{h}"),
        }
    }
}

/// What a task does to each target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Add the person to a group or channel.
    Invite {
        /// The group.
        group: GroupRef,
    },
    /// Send the person a direct message.
    Message {
        /// The message.
        template: Template,
    },
    /// Invite, then send a message.
    InviteAndMessage {
        /// The group.
        group: GroupRef,
        /// The message.
        template: Template,
    },
}

/// One kind of platform action, as budgeted by the account manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// An invite into a group.
    Invite,
    /// A direct message.
    Message,
    /// Adding a person to the account's contacts (before acting, when a task asks for it).
    Contact,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [ActionKind; 3] = [ActionKind::Invite, ActionKind::Message, ActionKind::Contact];

    /// Storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Invite => "invite",
            ActionKind::Message => "message",
            ActionKind::Contact => "contact",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ActionKind {
    type Err = super::status::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| super::status::UnknownName {
                kind: "action kind",
                value: super::echo(s),
                expected: "invite, message, contact",
            })
    }
}

impl Action {
    /// The group, for invite actions.
    pub fn group(&self) -> Option<&GroupRef> {
        match self {
            Action::Invite { group } | Action::InviteAndMessage { group, .. } => Some(group),
            Action::Message { .. } => None,
        }
    }

    /// The template, for message actions.
    pub fn template(&self) -> Option<&Template> {
        match self {
            Action::Message { template } | Action::InviteAndMessage { template, .. } => {
                Some(template)
            }
            Action::Invite { .. } => None,
        }
    }

    /// The budgeted kinds one target costs, in the order they are performed.
    pub fn kinds(&self) -> &'static [ActionKind] {
        match self {
            Action::Invite { .. } => &[ActionKind::Invite],
            Action::Message { .. } => &[ActionKind::Message],
            Action::InviteAndMessage { .. } => &[ActionKind::Invite, ActionKind::Message],
        }
    }

    /// The key under which per-channel limits are counted: the group, or `dm` for messages.
    pub fn channel_key(&self) -> String {
        self.group()
            .map_or_else(|| "dm".to_owned(), GroupRef::channel_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_group_is_echoed_once_and_cut() {
        let huge = "é".repeat(1 << 20);
        let e = GroupRef::parse(&huge).unwrap_err();
        assert_eq!(e.input.chars().count(), ECHO_CHARS + 1);
        assert!(e.to_string().len() < 400, "{}", e.to_string().len());
        assert_eq!(echo("short"), "short");
    }

    #[test]
    fn group_forms() {
        assert_eq!(
            GroupRef::parse("@MyGroup").unwrap(),
            GroupRef::Username("mygroup".into())
        );
        assert_eq!(
            GroupRef::parse("https://t.me/mygroup/").unwrap(),
            GroupRef::Username("mygroup".into())
        );
        assert_eq!(
            GroupRef::parse("-1001234567890").unwrap(),
            GroupRef::Id(-1001234567890)
        );
        assert_eq!(
            GroupRef::parse("https://t.me/+AbC-d_9").unwrap(),
            GroupRef::InviteLink("AbC-d_9".into())
        );
        assert_eq!(
            GroupRef::parse("t.me/joinchat/XyZ").unwrap(),
            GroupRef::InviteLink("XyZ".into())
        );
        assert!(GroupRef::parse("").is_err());
        assert!(GroupRef::parse("0").is_err());
        assert!(GroupRef::parse("t.me/+").is_err());
        assert!(GroupRef::parse("bad name").is_err());
    }

    #[test]
    fn action_serde_and_kinds() {
        let a: Action = serde_json::from_value(serde_json::json!({
            "type": "invite_and_message",
            "group": {"kind": "username", "value": "mygroup"},
            "template": "Hi {first_name|friend}"
        }))
        .unwrap();
        assert_eq!(a.kinds(), [ActionKind::Invite, ActionKind::Message]);
        assert_eq!(a.channel_key(), "@mygroup");
        let bad = serde_json::from_value::<Action>(serde_json::json!({
            "type": "message", "template": "Hi {nope}"
        }));
        assert!(bad.unwrap_err().to_string().contains("unknown variable"));
    }
}
