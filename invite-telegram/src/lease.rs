//! One connection per session: [`ConnectionLease`] makes
//! [`TelegramStrategy`](crate::TelegramStrategy) hold an account's lease (the core's
//! `AccountLeases`, a row with holder and expiry in the database) for as long as the
//! account's connection is open.
//!
//! The lease is taken before the connection is opened (no lease, no connection: the call fails
//! as transient `ACCOUNT_IN_USE_ELSEWHERE` and nothing is sent), renewed by a heartbeat every
//! `renew_every` while the connection is open, and released when it closes. The holder is the
//! process's unique worker id, the same one the engine writes into its claims and step leases,
//! so the engine's own lease on the account and the connection's are one. When a renewal finds
//! the lease taken by another holder, or the store has not confirmed it for a whole `ttl`, the
//! heartbeat closes the connection at once: two processes never drive one session (Telegram
//! would answer `AUTH_KEY_DUPLICATED` and the account would be lost).
//!
//! The heartbeat's cadence is real time (a connection is a real thing); the lease's expiry is
//! written in the injected clock's time, like every other time in the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use invite_core::Clock;
use invite_core::domain::AccountId;
use invite_core::ports::{AccountLeases, PlatformError};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::api::TelegramApi;

/// Code of the transient error when another process holds the account.
pub const IN_USE_ELSEWHERE: &str = "ACCOUNT_IN_USE_ELSEWHERE";

/// How the strategy leases the accounts it connects.
#[derive(Debug, Clone)]
pub struct ConnectionLease {
    leases: Arc<dyn AccountLeases>,
    holder: String,
    clock: Arc<dyn Clock>,
    ttl: TimeDelta,
    renew_every: Duration,
}

impl ConnectionLease {
    /// Leases held as `holder` (the process's unique worker id), lasting 90 s and renewed every
    /// 20 s while a connection is open.
    pub fn new(
        leases: Arc<dyn AccountLeases>,
        holder: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            leases,
            holder: holder.into(),
            clock,
            ttl: TimeDelta::seconds(90),
            renew_every: Duration::from_secs(20),
        }
    }

    /// Other timings (`renew_every` well under `ttl`).
    #[must_use]
    pub fn with_timing(mut self, ttl: TimeDelta, renew_every: Duration) -> Self {
        self.ttl = ttl;
        self.renew_every = renew_every;
        self
    }

    /// The holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes the account's lease, or fails as transient when another process holds it.
    pub async fn take(&self, account: &AccountId) -> Result<Held, PlatformError> {
        let now = self.clock.now();
        match self
            .leases
            .acquire(account, &self.holder, now, now + self.ttl)
            .await
        {
            Ok(true) => Ok(Held {
                owner: self.clone(),
                account: account.clone(),
                lost: Arc::new(AtomicBool::new(false)),
                heartbeat: None,
            }),
            Ok(false) => {
                debug!(account.id = %account, "account {account} is connected by another process");
                Err(PlatformError::Transient {
                    code: IN_USE_ELSEWHERE.to_owned(),
                })
            }
            Err(e) => {
                warn!(account.id = %account, error = %e, "lease of account {account} not taken");
                Err(PlatformError::Transient {
                    code: "LEASE_UNAVAILABLE".to_owned(),
                })
            }
        }
    }
}

/// A lease held for an open connection.
#[derive(Debug)]
pub struct Held {
    owner: ConnectionLease,
    account: AccountId,
    lost: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Held {
    /// Renews the lease while `api` is open; closes `api` if the lease is lost. A heartbeat
    /// started before (for an earlier connection) stops: one heartbeat per lease.
    pub fn keep_alive(&mut self, api: Arc<dyn TelegramApi>) {
        if let Some(earlier) = self.heartbeat.take() {
            earlier.abort();
        }
        let lease = self.owner.clone();
        let account = self.account.clone();
        let lost = self.lost.clone();
        self.heartbeat = Some(tokio::spawn(async move {
            let mut confirmed = lease.clock.now();
            loop {
                tokio::time::sleep(lease.renew_every).await;
                let now = lease.clock.now();
                let give_up = match lease
                    .leases
                    .acquire(&account, &lease.holder, now, now + lease.ttl)
                    .await
                {
                    Ok(true) => {
                        confirmed = now;
                        false
                    }
                    Ok(false) => {
                        warn!(account.id = %account, "lease of account {account} taken by another process; disconnecting");
                        true
                    }
                    Err(e) => {
                        let stale = now - confirmed
                            >= lease.ttl
                                - TimeDelta::from_std(lease.renew_every).unwrap_or_default();
                        warn!(account.id = %account, error = %e, "lease of account {account} not renewed");
                        stale
                    }
                };
                if give_up {
                    lost.store(true, Ordering::SeqCst);
                    api.disconnect().await;
                    return;
                }
            }
        }));
    }

    /// Whether the heartbeat lost the lease (and closed the connection).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops the heartbeat and gives the lease up.
    pub async fn release(mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if let Err(e) = self
            .owner
            .leases
            .release(&self.account, &self.owner.holder)
            .await
        {
            warn!(account.id = %self.account, error = %e, "lease of account {} not released; it expires", self.account);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
