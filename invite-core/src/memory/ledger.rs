//! In-memory [`LimitLedger`]: one mutex makes every reservation atomic within the process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{AccountId, ActionKind};
use crate::limits::LimitPolicy;
use crate::ports::{
    AccountHistory, AccountState, LedgerEvent, LimitLedger, RateDecision, Reservation,
    ReserveRequest, StoreError,
};

#[derive(Debug, Default)]
struct AccountBook {
    state: Option<AccountState>,
    events: Vec<(i64, LedgerEvent)>,
    lifetime: HashMap<(String, ActionKind), u32>,
}

#[derive(Debug, Default)]
struct Books {
    next_id: i64,
    accounts: HashMap<AccountId, AccountBook>,
}

/// A ledger kept in memory (embedded mode without a database, tests, simulations).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    books: Mutex<Books>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn history_of(book: Option<&AccountBook>, channel: &str, since: DateTime<Utc>) -> AccountHistory {
    let Some(book) = book else {
        return AccountHistory::empty();
    };
    AccountHistory {
        state: book.state.clone().unwrap_or(AccountState::Active),
        recent: book
            .events
            .iter()
            .filter(|(_, e)| e.at > since)
            .map(|(_, e)| e.clone())
            .collect(),
        lifetime: ActionKind::ALL
            .into_iter()
            .map(|k| {
                let n = book
                    .lifetime
                    .get(&(channel.to_owned(), k))
                    .copied()
                    .unwrap_or(0);
                (k, n)
            })
            .collect(),
    }
}

#[async_trait]
impl LimitLedger for MemoryLedger {
    async fn reserve(
        &self,
        request: &ReserveRequest,
        policy: &LimitPolicy,
    ) -> Result<RateDecision, StoreError> {
        let mut books = self.lock();
        let since = request.now - policy.window;
        let history = history_of(
            books.accounts.get(&request.account_id),
            &request.channel,
            since,
        );
        let decision = policy.decide(&history, request);
        if !matches!(decision, RateDecision::Allowed { .. }) {
            return Ok(decision);
        }
        books.next_id += 1;
        let id = books.next_id;
        let book = books
            .accounts
            .entry(request.account_id.clone())
            .or_default();
        for &kind in &request.kinds {
            book.events.push((
                id,
                LedgerEvent {
                    at: request.now,
                    kind,
                    channel: request.channel.clone(),
                    not_before_next: request.now + request.pause_after,
                },
            ));
            *book
                .lifetime
                .entry((request.channel.clone(), kind))
                .or_default() += 1;
        }
        // Events older than the window matter no more (lifetime lives in the counters).
        book.events.retain(|(_, e)| e.at > since);
        Ok(RateDecision::Allowed {
            reservation: Some(Reservation(id)),
        })
    }

    async fn merge_channel(
        &self,
        accounts: &[AccountId],
        from: &str,
        into: &str,
    ) -> Result<u64, StoreError> {
        if from == into {
            return Ok(0);
        }
        let mut books = self.lock();
        let mut moved = 0;
        for account in accounts {
            let Some(book) = books.accounts.get_mut(account) else {
                continue;
            };
            for (_, e) in book.events.iter_mut().filter(|(_, e)| e.channel == from) {
                e.channel = into.to_owned();
                moved += 1;
            }
            for kind in ActionKind::ALL {
                if let Some(n) = book.lifetime.remove(&(from.to_owned(), kind)) {
                    *book.lifetime.entry((into.to_owned(), kind)).or_default() += n;
                }
            }
        }
        Ok(moved)
    }

    async fn refund(
        &self,
        account: &AccountId,
        reservation: Reservation,
    ) -> Result<(), StoreError> {
        let mut books = self.lock();
        let Some(book) = books.accounts.get_mut(account) else {
            return Ok(());
        };
        let mut removed = Vec::new();
        book.events.retain(|(id, e)| {
            let hit = *id == reservation.0;
            if hit {
                removed.push((e.channel.clone(), e.kind));
            }
            !hit
        });
        for key in removed {
            if let Some(n) = book.lifetime.get_mut(&key) {
                *n = n.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn performed(
        &self,
        account: &AccountId,
        reservation: Reservation,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut books = self.lock();
        if let Some(book) = books.accounts.get_mut(account) {
            for (_, e) in book
                .events
                .iter_mut()
                .filter(|(id, _)| *id == reservation.0)
            {
                let shift = at - e.at;
                e.at = at;
                e.not_before_next += shift;
            }
            book.events.sort_by_key(|(id, e)| (e.at, *id));
        }
        Ok(())
    }

    async fn history(
        &self,
        account: &AccountId,
        channel: &str,
        since: DateTime<Utc>,
    ) -> Result<AccountHistory, StoreError> {
        Ok(history_of(
            self.lock().accounts.get(account),
            channel,
            since,
        ))
    }

    async fn set_state(&self, account: &AccountId, state: &AccountState) -> Result<(), StoreError> {
        self.lock()
            .accounts
            .entry(account.clone())
            .or_default()
            .state = Some(state.clone());
        Ok(())
    }
}
