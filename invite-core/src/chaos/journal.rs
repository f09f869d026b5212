//! The platform's own record of every call it answered: what reached it, what it delivered,
//! what it said back. Written only by [`FaultyPlatform`](super::FaultyPlatform), append-only;
//! the checker reads nothing else of the platform side.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::{AccountId, TaskId};

/// Which platform call an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallKind {
    /// An invite into a group.
    Invite,
    /// A direct message.
    Message,
    /// Adding the person to the account's contacts.
    AddContact,
    /// A membership lookup (a read).
    IsMember,
    /// A check of the account's invite rights in a group (a read).
    CheckRights,
}

impl CallKind {
    /// Name in findings.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallKind::Invite => "invite",
            CallKind::Message => "message",
            CallKind::AddContact => "add_contact",
            CallKind::IsMember => "is_member",
            CallKind::CheckRights => "check_rights",
        }
    }

    /// Whether the call writes (and so counts for the limits once it reached the platform).
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            CallKind::Invite | CallKind::Message | CallKind::AddContact
        )
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    /// The request certainly never left (a transient failure, a crash before the call). The
    /// only reach that does not count for the limits.
    NotReached,
    /// The platform got the request and changed nothing (an error, a refusal, a read).
    ReachedNotDelivered,
    /// The platform carried the write out: a person added, a message delivered, a contact
    /// added — whatever the caller was told afterwards.
    Delivered,
    /// The platform recognised a repeat and delivered nothing: a message whose `random_id`
    /// the account already used (Telegram's `RANDOM_ID_DUPLICATE`, read as "sent"), or an
    /// invite of a person already in the group (answered `already_member`).
    Deduplicated,
}

impl Reach {
    /// Name in findings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reach::NotReached => "not_reached",
            Reach::ReachedNotDelivered => "reached_not_delivered",
            Reach::Delivered => "delivered",
            Reach::Deduplicated => "deduplicated",
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call the platform answered (or that crashed inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position in the journal, from 0.
    pub seq: u64,
    /// Time of the call, from the injected clock.
    pub at: DateTime<Utc>,
    /// Calling account.
    pub account: AccountId,
    /// Which call.
    pub call: CallKind,
    /// Task of the target (`None` for [`CallKind::CheckRights`]).
    pub task: Option<TaskId>,
    /// Group key (`GroupRef::channel_key`), for group calls.
    pub channel: Option<String>,
    /// The person's de-duplication key, for calls about a person.
    pub person: Option<String>,
    /// The message's client `random_id`.
    pub random_id: Option<i64>,
    /// How far it got.
    pub reach: Reach,
    /// What the caller was told (`ok`, `FLOOD_WAIT`, `TIMEOUT after delivery`, `crash before`).
    pub answer: String,
}

impl fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} {}",
            self.seq,
            self.at.format("%Y-%m-%d %H:%M:%S"),
            self.account,
            self.call
        )?;
        if let Some(task) = self.task {
            write!(f, " task {task}")?;
        }
        if let Some(channel) = &self.channel {
            write!(f, " {channel}")?;
        }
        if let Some(person) = &self.person {
            write!(f, " {person}")?;
        }
        if let Some(id) = self.random_id {
            write!(f, " random_id {id}")?;
        }
        write!(f, ": {} ({})", self.reach, self.answer)
    }
}

/// A call about to be journalled; the journal numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Time of the call.
    pub at: DateTime<Utc>,
    /// Calling account.
    pub account: AccountId,
    /// Which call.
    pub call: CallKind,
    /// Task of the target.
    pub task: Option<TaskId>,
    /// Group key.
    pub channel: Option<String>,
    /// Person key.
    pub person: Option<String>,
    /// Message `random_id`.
    pub random_id: Option<i64>,
    /// How far it got.
    pub reach: Reach,
    /// What the caller was told.
    pub answer: String,
}

/// The append-only journal, shared (`Arc`) between the platform that writes it and whoever
/// reads it at the end.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<Vec<JournalEntry>>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JournalEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an entry; returns its `seq`.
    pub fn append(&self, entry: NewEntry) -> u64 {
        let mut entries = self.lock();
        let seq = entries.len() as u64;
        entries.push(JournalEntry {
            seq,
            at: entry.at,
            account: entry.account,
            call: entry.call,
            task: entry.task,
            channel: entry.channel,
            person: entry.person,
            random_id: entry.random_id,
            reach: entry.reach,
            answer: entry.answer,
        });
        seq
    }

    /// A copy of every entry so far, in order.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.lock().clone()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was journalled.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
