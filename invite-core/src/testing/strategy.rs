//! The [`InviteStrategy`] contract: what each answer of a messenger must become.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{AccountId, GroupRef, Outcome, Target, TargetStatus};
use crate::ports::{ActionResult, ErrorClass, InviteStrategy, PlatformError};

/// How the messenger answers the next call of one case. The factory makes its messenger (a
/// mocked transport, a fake server) answer so, or returns `None` when it cannot stage the
/// situation — that case is then skipped, and said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Situation {
    /// The write is carried out: the person is added, the message delivered.
    Accepts,
    /// The person is already in the group (invites only).
    AlreadyMember,
    /// The person cannot be reached: privacy settings, no such user, blocked…
    TargetRefuses,
    /// The account must wait this many seconds.
    FloodWait {
        /// Seconds, as the messenger says.
        seconds: u64,
    },
    /// The account is restricted (spam block, peer flood).
    AccountRestricted,
    /// The account is unusable (banned, deleted, its session revoked).
    AccountDead,
    /// The group cannot be used (invites only).
    GroupUnusable,
    /// The write left, and no answer came (a timeout, a dropped connection): it may have been
    /// carried out.
    NoAnswerAfterSend,
    /// Nothing left: the connection was refused before the request was written.
    NotSent,
    /// The messenger refused the write without naming a cause (invites only).
    RefusedWithoutCause,
    /// An error the adapter does not know.
    UnknownError,
}

impl Situation {
    /// Every situation.
    pub const ALL: [Situation; 11] = [
        Situation::Accepts,
        Situation::AlreadyMember,
        Situation::TargetRefuses,
        Situation::FloodWait { seconds: 420 },
        Situation::AccountRestricted,
        Situation::AccountDead,
        Situation::GroupUnusable,
        Situation::NoAnswerAfterSend,
        Situation::NotSent,
        Situation::RefusedWithoutCause,
        Situation::UnknownError,
    ];

    /// Whether a direct message can meet it (some answers only a group invite gets).
    const fn applies_to_messages(self) -> bool {
        !matches!(
            self,
            Situation::AlreadyMember | Situation::GroupUnusable | Situation::RefusedWithoutCause
        )
    }
}

/// A strategy staged for one [`Situation`], with an account, a person and a group it knows.
#[derive(Debug, Clone)]
pub struct StagedStrategy {
    /// The adapter under test.
    pub strategy: Arc<dyn InviteStrategy>,
    /// An account the strategy can act with.
    pub account: AccountId,
    /// The person to invite or message.
    pub target: Target,
    /// The group to invite into.
    pub group: GroupRef,
}

/// The call a case makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Invite,
    Message,
}

/// Checks one answer against what `situation` must become.
fn judge(
    situation: Situation,
    call: Call,
    answer: &Result<ActionResult, PlatformError>,
) -> Result<(), String> {
    let class = answer.as_ref().err().map(PlatformError::class);
    let ok = match (situation, answer) {
        (Situation::Accepts, Ok(r)) => {
            r.outcome
                == match call {
                    Call::Invite => Outcome::Invited,
                    Call::Message => Outcome::Sent,
                }
        }
        (Situation::AlreadyMember, Ok(r)) => r.outcome == Outcome::AlreadyMember,
        // A refusal is the target's: a target error, or a success the messenger qualified
        // (an invite that listed the person as missing is `PrivacyRestricted`).
        (Situation::TargetRefuses, Ok(r)) => r.outcome.target_status() == TargetStatus::Failed,
        (Situation::TargetRefuses, Err(PlatformError::Target { outcome, .. })) => {
            outcome.target_status() == TargetStatus::Failed
        }
        (Situation::FloodWait { seconds }, Err(PlatformError::FloodWait { seconds: s, .. })) => {
            *s == seconds
        }
        (Situation::AccountRestricted, Err(_)) => class == Some(ErrorClass::AccountRestricted),
        (Situation::AccountDead, Err(_)) => class == Some(ErrorClass::AccountDead),
        (Situation::GroupUnusable, Err(_)) => class == Some(ErrorClass::Group),
        // Maybe sent: never "not sent" (that would let the engine send again) nor a success.
        (Situation::NoAnswerAfterSend, Err(_)) => class == Some(ErrorClass::Ambiguous),
        // Certainly not sent: the only class refunded and retried freely.
        (Situation::NotSent, Err(_)) => class == Some(ErrorClass::Transient),
        // Charged either way: retried a bounded number of times, or the target ended.
        (Situation::RefusedWithoutCause, Err(_)) => {
            matches!(class, Some(ErrorClass::Refused | ErrorClass::Target))
        }
        (Situation::UnknownError, Err(_)) => class == Some(ErrorClass::Unknown),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{call:?} in situation {situation:?} answered {answer:?}"
        ))
    }
}

/// The [`InviteStrategy`] contract. For every [`Situation`] the factory can stage, an invite
/// (and a direct message, where a message can meet it) must answer:
///
/// | situation | answer |
/// |---|---|
/// | `Accepts` | `Ok`, outcome `Invited` / `Sent` |
/// | `AlreadyMember` | `Ok`, outcome `AlreadyMember` |
/// | `TargetRefuses` | `PlatformError::Target` or `Ok` with a refusal outcome |
/// | `FloodWait { seconds }` | `PlatformError::FloodWait` with the same seconds |
/// | `AccountRestricted` | class `AccountRestricted` |
/// | `AccountDead` | class `AccountDead` |
/// | `GroupUnusable` | class `Group` |
/// | `NoAnswerAfterSend` | class `Ambiguous`: *maybe sent* — the engine makes the target uncertain and settles it (membership check, the same `random_id`), never sends blindly again |
/// | `NotSent` | class `Transient`: *certainly not sent* — refunded, retried with backoff |
/// | `RefusedWithoutCause` | class `Refused` (retried a bounded number of times) or `Target` (the target ends): reached the messenger, charged |
/// | `UnknownError` | class `Unknown`, never a success |
///
/// With `Accepts`, `initialize` succeeds twice (it is idempotent) and `check_invite_rights`
/// succeeds. `Accepts` must be staged; the factory answers `None` for the others it cannot
/// stage, and the suite says which it skipped. Panics listing every wrong answer.
pub async fn strategy_contract<F, Fut>(open: F)
where
    F: Fn(Situation) -> Fut,
    Fut: Future<Output = Option<StagedStrategy>>,
{
    let mut wrong = Vec::new();
    let mut skipped = Vec::new();
    for situation in Situation::ALL {
        for call in [Call::Invite, Call::Message] {
            if call == Call::Message && !situation.applies_to_messages() {
                continue;
            }
            let Some(staged) = open(situation).await else {
                assert_ne!(
                    situation,
                    Situation::Accepts,
                    "strategy_contract: the factory must stage `Accepts`"
                );
                skipped.push(format!("{call:?} in {situation:?}"));
                continue;
            };
            let StagedStrategy {
                strategy,
                account,
                target,
                group,
            } = staged;
            if situation == Situation::Accepts && call == Call::Invite {
                for _ in 0..2 {
                    if let Err(e) = strategy.initialize(&account).await {
                        wrong.push(format!("initialize answered {e:?}"));
                    }
                }
                if let Err(e) = strategy.check_invite_rights(&account, &group).await {
                    wrong.push(format!("check_invite_rights answered {e:?}"));
                }
            }
            let answer = match call {
                Call::Invite => strategy.invite(&account, &target, &group).await,
                Call::Message => {
                    strategy
                        .send_message(&account, &target, "Hello from the contract", 4_242)
                        .await
                }
            };
            if let Err(e) = judge(situation, call, &answer) {
                wrong.push(e);
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "strategy_contract: not staged, skipped: {}",
            skipped.join(", ")
        );
    }
    assert!(
        wrong.is_empty(),
        "strategy_contract: wrong answers:\n{}",
        wrong.join("\n")
    );
}

/// A claimed target for `identifier`, as the engine hands one to a strategy (first attempt,
/// random id 7): the person a [`StagedStrategy`] acts on.
pub fn claimed_target(identifier: crate::domain::TargetIdentifier) -> Target {
    use crate::domain::{NewTarget, TargetId, TaskId};
    Target {
        id: TargetId::new(1),
        task_id: TaskId::new(1),
        person: NewTarget::new(identifier),
        status: TargetStatus::InProgress,
        outcome: None,
        account_id: None,
        random_id: Some(7),
        sender: None,
        invite_outcome: None,
        contact_added: false,
        attempts: 1,
        error_message: None,
        result: serde_json::Value::Null,
        claimed_at: None,
        processed_at: None,
    }
}
