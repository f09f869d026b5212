//! The closed set of reasons a target finished, from which every counter, report row, metric
//! and suppression derives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{TargetStatus, status::UnknownName};

/// Why a target is finished (or left uncertain). Budgets count attempts; only
/// [`Outcome::Invited`] counts as "invited".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Added to the group, confirmed by the platform.
    Invited,
    /// Was already a member of the group.
    AlreadyMember,
    /// Direct message delivered.
    Sent,
    /// Privacy settings forbid being added (including an invite that "succeeded" but listed the
    /// person as missing; premium flags are kept in the target's result details).
    PrivacyRestricted,
    /// Only mutual contacts may add this person.
    NotMutualContact,
    /// The person is in too many channels.
    TargetChannelsFull,
    /// The person was removed from the group before and cannot be re-added by us.
    KickedInTarget,
    /// The person is banned in the group.
    BannedInTarget,
    /// The account of the person is deleted or deactivated.
    Deleted,
    /// No such username / id / phone on the platform.
    NotFound,
    /// The identifier could not be resolved to a person (budget, invalid form).
    Unresolvable,
    /// The person blocked the acting account.
    BlockedUs,
    /// Messaging this person requires Telegram Premium.
    PremiumRequired,
    /// The person charges for messages.
    PaidMessagesRequired,
    /// On the user's suppression list.
    Suppressed,
    /// Already reached by this user recently (cross-task de-duplication).
    Duplicate,
    /// The platform returned an error this service does not know.
    UnknownError,
    /// The action may or may not have happened and could not be settled.
    Uncertain,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub const ALL: [Outcome; 18] = [
        Outcome::Invited,
        Outcome::AlreadyMember,
        Outcome::Sent,
        Outcome::PrivacyRestricted,
        Outcome::NotMutualContact,
        Outcome::TargetChannelsFull,
        Outcome::KickedInTarget,
        Outcome::BannedInTarget,
        Outcome::Deleted,
        Outcome::NotFound,
        Outcome::Unresolvable,
        Outcome::BlockedUs,
        Outcome::PremiumRequired,
        Outcome::PaidMessagesRequired,
        Outcome::Suppressed,
        Outcome::Duplicate,
        Outcome::UnknownError,
        Outcome::Uncertain,
    ];

    /// Storage, API and metric label name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Invited => "invited",
            Outcome::AlreadyMember => "already_member",
            Outcome::Sent => "sent",
            Outcome::PrivacyRestricted => "privacy_restricted",
            Outcome::NotMutualContact => "not_mutual_contact",
            Outcome::TargetChannelsFull => "target_channels_full",
            Outcome::KickedInTarget => "kicked_in_target",
            Outcome::BannedInTarget => "banned_in_target",
            Outcome::Deleted => "deleted",
            Outcome::NotFound => "not_found",
            Outcome::Unresolvable => "unresolvable",
            Outcome::BlockedUs => "blocked_us",
            Outcome::PremiumRequired => "premium_required",
            Outcome::PaidMessagesRequired => "paid_messages_required",
            Outcome::Suppressed => "suppressed",
            Outcome::Duplicate => "duplicate",
            Outcome::UnknownError => "unknown_error",
            Outcome::Uncertain => "uncertain",
        }
    }

    /// The target status this outcome leaves.
    pub const fn target_status(self) -> TargetStatus {
        match self {
            Outcome::Invited | Outcome::AlreadyMember | Outcome::Sent => TargetStatus::Success,
            Outcome::Suppressed | Outcome::Duplicate => TargetStatus::Skipped,
            Outcome::Uncertain => TargetStatus::Uncertain,
            _ => TargetStatus::Failed,
        }
    }

    /// Whether this counts as a confirmed add to the group.
    pub const fn is_invited(self) -> bool {
        matches!(self, Outcome::Invited)
    }

    /// Whether a platform action was attempted (and so consumed budget). Skips consume none.
    pub const fn consumed_attempt(self) -> bool {
        !matches!(self, Outcome::Suppressed | Outcome::Duplicate)
    }

    /// Whether the person should be put on the user's suppression list.
    pub const fn suppresses(self) -> bool {
        matches!(self, Outcome::BlockedUs | Outcome::Deleted)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "outcome",
                value: super::echo(s),
                expected: "an outcome name such as invited, sent, privacy_restricted",
            })
    }
}

/// Status of one execution log row (PostgreSQL enum `executionstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// The action is under way (claim written, result not yet known).
    Pending,
    /// The action did what it was for.
    Success,
    /// The action failed.
    Failed,
    /// The action was not attempted.
    Skipped,
}

impl ExecutionStatus {
    /// Every execution status.
    pub const ALL: [ExecutionStatus; 4] = [
        ExecutionStatus::Pending,
        ExecutionStatus::Success,
        ExecutionStatus::Failed,
        ExecutionStatus::Skipped,
    ];

    /// Storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "PENDING",
            ExecutionStatus::Success => "SUCCESS",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::Skipped => "SKIPPED",
        }
    }

    /// The log status matching an outcome.
    pub const fn from_outcome(outcome: Outcome) -> Self {
        match outcome.target_status() {
            TargetStatus::Success => ExecutionStatus::Success,
            TargetStatus::Skipped => ExecutionStatus::Skipped,
            TargetStatus::Pending | TargetStatus::InProgress | TargetStatus::Uncertain => {
                ExecutionStatus::Pending
            }
            TargetStatus::Failed => ExecutionStatus::Failed,
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        ExecutionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == up)
            .ok_or_else(|| UnknownName {
                kind: "execution status",
                value: super::echo(s),
                expected: "PENDING, SUCCESS, FAILED, SKIPPED",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
    }

    #[test]
    fn only_confirmed_adds_are_invited() {
        let invited: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_invited())
            .collect();
        assert_eq!(invited, [Outcome::Invited]);
        assert_eq!(
            Outcome::AlreadyMember.target_status(),
            TargetStatus::Success
        );
        assert_eq!(
            Outcome::PrivacyRestricted.target_status(),
            TargetStatus::Failed
        );
        assert_eq!(Outcome::Suppressed.target_status(), TargetStatus::Skipped);
        assert!(!Outcome::Suppressed.consumed_attempt());
        assert!(Outcome::PrivacyRestricted.consumed_attempt());
        assert_eq!(Outcome::Uncertain.target_status(), TargetStatus::Uncertain);
    }
}
