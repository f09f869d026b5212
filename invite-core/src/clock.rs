//! Time, injected. Nothing in core reads the system clock except [`SystemClock`].
//!
//! [`VirtualClock`] runs days of campaign time in milliseconds: in auto-advance mode a
//! `sleep_until` jumps straight to its deadline (the engine is the one driver that sleeps), in
//! manual mode sleepers wait until a test calls [`VirtualClock::advance`] or
//! [`VirtualClock::set`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::oneshot;

/// A source of the current time and of timers.
#[async_trait]
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Completes at or after `deadline`.
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[derive(Debug)]
struct VirtualState {
    now: DateTime<Utc>,
    seq: u64,
    sleepers: BTreeMap<(DateTime<Utc>, u64), oneshot::Sender<()>>,
}

/// A clock whose time moves only when something sleeps (auto mode) or a test moves it.
pub struct VirtualClock {
    auto_advance: bool,
    state: Mutex<VirtualState>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualClock")
            .field("now", &self.now())
            .field("auto_advance", &self.auto_advance)
            .finish()
    }
}

impl VirtualClock {
    /// A clock that jumps to each deadline it is asked to sleep until.
    pub fn auto(start: DateTime<Utc>) -> Self {
        Self::with_mode(start, true)
    }

    /// A clock that moves only by [`advance`](Self::advance) and [`set`](Self::set).
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self::with_mode(start, false)
    }

    fn with_mode(start: DateTime<Utc>, auto_advance: bool) -> Self {
        Self {
            auto_advance,
            state: Mutex::new(VirtualState {
                now: start,
                seq: 0,
                sleepers: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VirtualState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `by`, waking every sleeper whose deadline has come.
    pub fn advance(&self, by: TimeDelta) {
        let to = self.now() + by;
        self.set(to);
    }

    /// Moves time to `to` (never backwards), waking every sleeper whose deadline has come.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut st = self.lock();
        if to > st.now {
            st.now = to;
        }
        let now = st.now;
        let later = st.sleepers.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut st.sleepers, later);
        drop(st);
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// The earliest deadline anyone sleeps until.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.lock().sleepers.keys().next().map(|(at, _)| *at)
    }
}

#[async_trait]
impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        if self.auto_advance {
            self.set(deadline);
            // Let other tasks observe the new time before the sleeper goes on.
            tokio::task::yield_now().await;
            return;
        }
        let rx = {
            let mut st = self.lock();
            if deadline <= st.now {
                return;
            }
            st.seq += 1;
            let key = (deadline, st.seq);
            let (tx, rx) = oneshot::channel();
            st.sleepers.insert(key, tx);
            rx
        };
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[tokio::test]
    async fn auto_clock_jumps_to_deadlines() {
        let clock = VirtualClock::auto(t0());
        let week = TimeDelta::days(7);
        for h in 1..=(7 * 24) {
            clock.sleep_until(t0() + TimeDelta::hours(h)).await;
        }
        assert_eq!(clock.now(), t0() + week);
        // Sleeping into the past does not move time back.
        clock.sleep_until(t0()).await;
        assert_eq!(clock.now(), t0() + week);
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_in_order() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let c = clock.clone();
        let sleeper = tokio::spawn(async move {
            c.sleep_until(t0() + TimeDelta::minutes(10)).await;
            c.now()
        });
        tokio::task::yield_now().await;
        while clock.next_deadline().is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.next_deadline(), Some(t0() + TimeDelta::minutes(10)));
        clock.advance(TimeDelta::minutes(5));
        assert!(!sleeper.is_finished());
        clock.advance(TimeDelta::minutes(5));
        assert_eq!(sleeper.await.unwrap(), t0() + TimeDelta::minutes(10));
        assert_eq!(clock.next_deadline(), None);
    }
}
