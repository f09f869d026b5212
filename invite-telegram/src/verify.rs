//! Checking a session before it is registered: connect (under the account's lease, like every
//! connection), `get_me`, disconnect. The answer says who the account is, or why it is refused
//! in terms an API can turn into a status: the session is dead or unusable (the user must act),
//! Telegram cannot be reached now (try later), or Telegram answered something else.

use std::sync::Arc;
use std::time::Duration;

use invite_core::domain::AccountId;
use invite_core::ports::{ErrorClass, PlatformError};

use crate::api::{Connector, DeviceFields, SelfUser};
use crate::errors::{CallKind, classify};
use crate::lease::{ConnectionLease, IN_USE_ELSEWHERE};
use crate::session::SessionString;

/// Why a session was not accepted. Never carries the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Telegram says the session cannot be used (revoked, unknown key, deactivated user), or it
    /// is a bot, or belongs to another user than it says, or to another `api_id`.
    #[error("the session is not usable ({0})")]
    Refused(String),
    /// Telegram could not be reached or asked to wait; nothing is known.
    #[error("Telegram cannot be reached now ({0})")]
    Unreachable(String),
    /// Telegram answered with an error that is neither.
    #[error("Telegram refused the check ({0})")]
    Failed(String),
    /// Another process holds the account's connection.
    #[error("the account is connected by another process")]
    InUse,
}

/// Connects `session` with `api_id`, presenting `device` (the connector's defaults where it is
/// empty), under `account`'s lease and asks who it is.
pub async fn verify_session(
    connector: &Arc<dyn Connector>,
    lease: Option<&ConnectionLease>,
    account: &AccountId,
    session: &SessionString,
    api_id: i32,
    device: &DeviceFields,
    timeout: Duration,
) -> Result<SelfUser, VerifyError> {
    if let Some(session_api_id) = session.api_id()
        && session_api_id != api_id
    {
        return Err(VerifyError::Refused("API_ID_MISMATCH".to_owned()));
    }
    let held = match lease {
        Some(lease) => Some(lease.take(account).await.map_err(|e| match e.code() {
            IN_USE_ELSEWHERE => VerifyError::InUse,
            code => VerifyError::Unreachable(code.to_owned()),
        })?),
        None => None,
    };
    let result = async {
        let connecting = async {
            if device.is_empty() {
                connector.connect(session, api_id).await
            } else {
                connector.connect_as(session, api_id, device).await
            }
        };
        let api = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| VerifyError::Unreachable("TIMEOUT".to_owned()))?
            .map_err(|e| refusal(&classify(&e, CallKind::Read)))?;
        let me = tokio::time::timeout(timeout, api.get_me()).await;
        api.disconnect().await;
        let me = me
            .map_err(|_| VerifyError::Unreachable("TIMEOUT".to_owned()))?
            .map_err(|e| refusal(&classify(&e, CallKind::Read)))?;
        if me.bot {
            return Err(VerifyError::Refused("BOT_ACCOUNT".to_owned()));
        }
        if session.user_id().is_some_and(|id| id != me.id) {
            return Err(VerifyError::Refused("SESSION_USER_MISMATCH".to_owned()));
        }
        Ok(me)
    }
    .await;
    if let Some(held) = held {
        held.release().await;
    }
    result
}

fn refusal(e: &PlatformError) -> VerifyError {
    let code = e.code().to_owned();
    match e.class() {
        ErrorClass::AccountDead | ErrorClass::AccountRestricted => VerifyError::Refused(code),
        ErrorClass::Transient | ErrorClass::Ambiguous | ErrorClass::AccountTemporary => {
            VerifyError::Unreachable(code)
        }
        _ => VerifyError::Failed(code),
    }
}
