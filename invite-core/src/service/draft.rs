//! Task drafts as a caller sends them (plain strings), and their validation into domain values.
//! Every problem is collected, so a caller learns all of them at once.

use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{FieldError, ServiceLimits};
use crate::domain::{
    AccountId, Action, GroupRef, NewTarget, NormalizeOptions, Platform, Priority, TargetIdentifier,
    TargetSource, Template,
};

/// The de-duplication windows a caller may ask for, in days (about ten years at most): wider
/// windows are refused rather than read as "all the past".
pub const DEDUPE_DAYS: RangeInclusive<u32> = 1..=3650;

/// How far ahead of now a task may be scheduled, in days.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 366;

/// The earliest `scheduled_at` accepted (a past time means "as soon as started"; older ones
/// are mistakes, not plans): 2000-01-01T00:00:00Z, as a Unix timestamp.
pub const EARLIEST_SCHEDULE_TS: i64 = 946_684_800;

/// The `scheduled_at` values accepted at `now`: from 2000-01-01 to
/// [`MAX_SCHEDULE_AHEAD_DAYS`] after `now`.
pub fn schedule_range(now: DateTime<Utc>) -> RangeInclusive<DateTime<Utc>> {
    let earliest =
        DateTime::from_timestamp(EARLIEST_SCHEDULE_TS, 0).unwrap_or(DateTime::UNIX_EPOCH);
    let latest = TimeDelta::try_days(MAX_SCHEDULE_AHEAD_DAYS)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    earliest..=latest.max(earliest)
}

/// Checks a de-duplication window against [`DEDUPE_DAYS`].
pub(super) fn dedupe_days_error(days: u32) -> Option<FieldError> {
    (!DEDUPE_DAYS.contains(&days)).then(|| FieldError {
        field: "dedupe_days".to_owned(),
        message: format!(
            "must be between {} and {} days when given",
            DEDUPE_DAYS.start(),
            DEDUPE_DAYS.end()
        ),
    })
}

/// What to do to each target, as given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Add to a group or channel.
    Invite,
    /// Send a direct message.
    Message,
    /// Invite, then message.
    InviteAndMessage,
}

/// One target as given by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDraft {
    /// `@username`, numeric id or `+phone`.
    pub identifier: String,
    /// First name, for templates.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// E-mail, kept for the report.
    pub email: Option<String>,
}

impl TargetDraft {
    /// A target with only an identifier.
    pub fn new(identifier: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            ..Self::default()
        }
    }
}

/// A task to create, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDraft {
    /// Name (1 to `max_name_length` characters).
    pub name: String,
    /// `telegram`, `instagram`, `whatsapp` or `sandbox`.
    pub platform: String,
    /// What to do.
    pub action: ActionType,
    /// Group for invites: `@name`, numeric id or invite link.
    pub group: Option<String>,
    /// Message template for messages.
    pub template: Option<String>,
    /// `low`, `medium` (or `normal`), `high`; any case. Medium when absent.
    pub priority: Option<String>,
    /// Not runnable before this time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// People to reach.
    pub targets: Vec<TargetDraft>,
    /// Accounts to use (all usable accounts when absent).
    pub accounts: Option<Vec<String>>,
    /// Add each person to contacts first.
    pub add_to_contacts: bool,
    /// Skip people reached in the same group within this many days.
    pub dedupe_days: Option<u32>,
}

/// Changes to a task; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPatch {
    /// New name.
    pub name: Option<String>,
    /// New priority.
    pub priority: Option<String>,
    /// New start time (`Some(None)` clears it).
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    /// New action (the group and template are then read for it).
    pub action: Option<ActionType>,
    /// New group.
    pub group: Option<String>,
    /// New template.
    pub template: Option<String>,
    /// New account selection (`Some(None)` means every usable account).
    pub accounts: Option<Option<Vec<String>>>,
    /// New contacts option.
    pub add_to_contacts: Option<bool>,
    /// New de-duplication window (`Some(None)` turns it off).
    pub dedupe_days: Option<Option<u32>>,
    /// Targets to append.
    pub targets: Option<Vec<TargetDraft>>,
}

/// Collects field errors.
#[derive(Debug, Default)]
pub(super) struct Checker {
    pub errors: Vec<FieldError>,
}

impl Checker {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn name(&mut self, name: &str, limits: &ServiceLimits) -> String {
        let trimmed = name.trim();
        // The limit counts the name as sent (blanks around it included), as the document's
        // `maxLength` does.
        let len = name.chars().count();
        if trimmed.is_empty() {
            self.push("name", "must not be empty");
        } else if len > limits.max_name_length {
            self.push(
                "name",
                format!(
                    "is {len} characters long; the limit max_name_length is {}",
                    limits.max_name_length
                ),
            );
        }
        trimmed.to_owned()
    }

    pub fn platform(&mut self, platform: &str) -> Option<Platform> {
        platform
            .parse()
            .map_err(|e: crate::domain::UnknownPlatform| self.push("platform", e.to_string()))
            .ok()
    }

    pub fn priority(&mut self, priority: Option<&str>) -> Priority {
        match priority {
            None => Priority::default(),
            Some(p) => p.parse().unwrap_or_else(|e: crate::domain::UnknownName| {
                self.push("priority", e.to_string());
                Priority::default()
            }),
        }
    }

    fn group(&mut self, group: Option<&str>) -> Option<GroupRef> {
        match group {
            None => {
                self.push("group", "is required for this action");
                None
            }
            Some(g) => GroupRef::parse(g)
                .map_err(|e| self.push("group", e.to_string()))
                .ok(),
        }
    }

    fn template(&mut self, template: Option<&str>, limits: &ServiceLimits) -> Option<Template> {
        let Some(source) = template else {
            self.push("template", "is required for this action");
            return None;
        };
        let len = source.chars().count();
        if len > limits.max_template_length {
            self.push(
                "template",
                format!(
                    "is {len} characters long; the limit max_template_length is {}",
                    limits.max_template_length
                ),
            );
            return None;
        }
        Template::parse(source)
            .map_err(|e| self.push("template", e.to_string()))
            .ok()
    }

    pub fn action(
        &mut self,
        kind: ActionType,
        group: Option<&str>,
        template: Option<&str>,
        limits: &ServiceLimits,
    ) -> Option<Action> {
        match kind {
            ActionType::Invite => {
                if template.is_some() {
                    self.push("template", "is not used by the invite action");
                }
                self.group(group).map(|group| Action::Invite { group })
            }
            ActionType::Message => {
                if group.is_some() {
                    self.push("group", "is not used by the message action");
                }
                self.template(template, limits)
                    .map(|template| Action::Message { template })
            }
            ActionType::InviteAndMessage => {
                let group = self.group(group);
                let template = self.template(template, limits);
                Some(Action::InviteAndMessage {
                    group: group?,
                    template: template?,
                })
            }
        }
    }

    pub fn accounts(&mut self, accounts: Option<&[String]>) -> Option<Vec<AccountId>> {
        let accounts = accounts?;
        if accounts.is_empty() {
            self.push("accounts", "must name at least one account when given");
        }
        let mut out = Vec::new();
        for (i, a) in accounts.iter().enumerate() {
            match AccountId::parse(a.as_str()) {
                Ok(id) if !out.contains(&id) => out.push(id),
                Ok(_) => {}
                Err(e) => self.push(format!("accounts[{i}]"), e.to_string()),
            }
        }
        Some(out)
    }

    pub fn dedupe_days(&mut self, days: Option<u32>) -> Option<u32> {
        if let Some(e) = days.and_then(dedupe_days_error) {
            self.errors.push(e);
        }
        days
    }

    /// A start time within [`schedule_range`] of `now`.
    pub fn scheduled_at(&mut self, at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let Some(at) = at else { return };
        let range = schedule_range(now);
        if !range.contains(&at) {
            self.push(
                "scheduled_at",
                format!(
                    "must be between {} and {} (at most {MAX_SCHEDULE_AHEAD_DAYS} days ahead)",
                    range.start().to_rfc3339(),
                    range.end().to_rfc3339()
                ),
            );
        }
    }

    /// Targets, with the index of each problem (`targets[3]: invalid username: …`). The count
    /// limit is checked by the caller before this, so a huge list is refused cheaply.
    pub fn targets(&mut self, targets: &[TargetDraft], platform: Platform) -> Vec<NewTarget> {
        let opts = NormalizeOptions::default();
        let mut out = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            match TargetIdentifier::parse(&t.identifier, platform, &opts) {
                Ok(identifier) => out.push(NewTarget {
                    identifier,
                    first_name: clean(t.first_name.as_deref()),
                    last_name: clean(t.last_name.as_deref()),
                    full_name: clean(t.full_name.as_deref()),
                    email: clean(t.email.as_deref()),
                    source: TargetSource::Manual,
                }),
                Err(e) => self.push(format!("targets[{i}]"), e.to_string()),
            }
            for (field, value) in [
                ("first_name", &t.first_name),
                ("last_name", &t.last_name),
                ("full_name", &t.full_name),
                ("email", &t.email),
            ] {
                if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
                    self.push(
                        format!("targets[{i}].{field}"),
                        "is longer than 255 characters",
                    );
                }
            }
        }
        out
    }

    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn clean(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A stable 128-bit FNV-1a hash, hex-encoded: identifies a normalised request body for
/// idempotency (not a security boundary: keys are scoped to their owner).
pub(super) fn fingerprint(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_problem_is_reported_with_its_index() {
        let mut c = Checker::default();
        let targets = [
            TargetDraft::new("@good_name"),
            TargetDraft::new("@x"),
            TargetDraft::new(""),
            TargetDraft::new("12345"),
        ];
        let out = c.targets(&targets, Platform::Telegram);
        assert_eq!(out.len(), 2);
        let fields: Vec<_> = c.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["targets[1]", "targets[2]"]);
        assert!(c.errors[0].message.starts_with("invalid username"));
    }

    #[test]
    fn dedupe_days_and_scheduled_at_have_documented_ranges() {
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let mut c = Checker::default();
        for days in [1, 30, 3650] {
            assert_eq!(c.dedupe_days(Some(days)), Some(days));
        }
        c.scheduled_at(Some(now), now);
        c.scheduled_at(Some(now + TimeDelta::days(MAX_SCHEDULE_AHEAD_DAYS)), now);
        c.scheduled_at("2000-01-01T00:00:00Z".parse().ok(), now);
        c.scheduled_at(None, now);
        // A clock at the end of time does not overflow the bound.
        c.scheduled_at(Some(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        c.dedupe_days(Some(0));
        c.dedupe_days(Some(3651));
        c.dedupe_days(Some(u32::MAX));
        c.scheduled_at(
            Some(now + TimeDelta::days(MAX_SCHEDULE_AHEAD_DAYS + 1)),
            now,
        );
        c.scheduled_at("+262142-12-31T23:59:59Z".parse().ok(), now);
        c.scheduled_at("1999-12-31T23:59:59Z".parse().ok(), now);
        let fields: Vec<_> = c.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields[..3], ["dedupe_days"; 3]);
        assert_eq!(fields[3..], ["scheduled_at"; 3]);
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_eq!(fingerprint(b"").len(), 32);
    }
}
