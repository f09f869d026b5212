//! A circuit breaker around one external service (SPEC §12): after `failure_threshold`
//! consecutive failures to reach the service, calls fail fast for `cool_off`; then one trial
//! call goes through. A trial that reaches the service closes the circuit, one that fails
//! opens it for another `cool_off`. Time comes from the injected [`Clock`], so a virtual clock
//! decides when the cool-off is over.
//!
//! Only failures to *reach* the service count (refused connections, timeouts, 5xx): a refusal
//! or a missing resource is an answer, and proves the service is there.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use invite_core::Clock;

/// When a circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long an open circuit fails calls before letting one trial through.
    pub cool_off: Duration,
}

impl Default for BreakerPolicy {
    /// Opens after 5 consecutive failures, for 30 s.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_off: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: DateTime<Utc>,
    },
    /// The cool-off is over and one trial call is under way.
    Trial,
}

/// A call refused because the circuit is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Open {
    /// When a trial call will be let through (`None`: a trial is under way now).
    pub until: Option<DateTime<Utc>>,
}

/// The breaker of one service.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    policy: BreakerPolicy,
    cool_off: TimeDelta,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub(crate) fn new(policy: BreakerPolicy, clock: Arc<dyn Clock>) -> Self {
        let policy = BreakerPolicy {
            failure_threshold: policy.failure_threshold.max(1),
            ..policy
        };
        Self {
            cool_off: TimeDelta::from_std(policy.cool_off).unwrap_or(TimeDelta::MAX),
            policy,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Permission for one call, or [`Open`] while the circuit is open (or its trial runs).
    pub(crate) fn permit(&self) -> Result<Permit<'_>, Open> {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(Permit {
                breaker: self,
                trial: false,
            }),
            State::Open { until } if self.clock.now() >= until => {
                *state = State::Trial;
                tracing::info!("circuit half-open: letting one trial call through");
                Ok(Permit {
                    breaker: self,
                    trial: true,
                })
            }
            State::Open { until } => Err(Open { until: Some(until) }),
            State::Trial => Err(Open { until: None }),
        }
    }

    fn record(&self, reached: bool) {
        let mut state = self.state();
        if reached {
            if *state == State::Trial {
                tracing::info!("circuit closed: the trial call succeeded");
            }
            *state = State::Closed { failures: 0 };
            return;
        }
        let failures = match *state {
            State::Closed { failures } => failures.saturating_add(1),
            // A failed trial, or a failure of a call let through before the circuit opened.
            State::Trial | State::Open { .. } => self.policy.failure_threshold,
        };
        *state = if failures >= self.policy.failure_threshold {
            let until = self.clock.now() + self.cool_off;
            tracing::warn!(failures, %until, "circuit open: failing calls fast until {until}");
            State::Open { until }
        } else {
            State::Closed { failures }
        };
    }
}

/// One permitted call. Report its outcome with [`Permit::reached`] or [`Permit::failed`]; a
/// permit dropped without either (a cancelled call) records nothing, and a cancelled trial
/// lets the next call be the trial.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
}

impl Permit<'_> {
    /// The service answered.
    pub(crate) fn reached(mut self) {
        self.trial = false;
        self.breaker.record(true);
    }

    /// The service could not be reached.
    pub(crate) fn failed(mut self) {
        self.trial = false;
        self.breaker.record(false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial {
            let mut state = self.breaker.state();
            if *state == State::Trial {
                *state = State::Open {
                    until: self.breaker.clock.now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use invite_core::VirtualClock;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn breaker(clock: Arc<VirtualClock>) -> CircuitBreaker {
        let policy = BreakerPolicy {
            failure_threshold: 3,
            cool_off: Duration::from_secs(30),
        };
        CircuitBreaker::new(policy, clock)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let b = breaker(clock.clone());
        b.permit().unwrap().failed();
        b.permit().unwrap().failed();
        b.permit().unwrap().reached();
        b.permit().unwrap().failed();
        b.permit().unwrap().failed();
        b.permit().unwrap().failed();
        let open = b.permit().unwrap_err();
        assert_eq!(open.until, Some(t0() + TimeDelta::seconds(30)));
    }

    #[test]
    fn one_trial_after_the_cool_off() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let b = breaker(clock.clone());
        for _ in 0..3 {
            b.permit().unwrap().failed();
        }
        clock.advance(TimeDelta::seconds(29));
        assert!(b.permit().is_err());
        clock.advance(TimeDelta::seconds(1));
        let trial = b.permit().unwrap();
        assert_eq!(b.permit().unwrap_err(), Open { until: None });
        trial.failed();
        assert_eq!(
            b.permit().unwrap_err().until,
            Some(t0() + TimeDelta::seconds(60))
        );
        clock.advance(TimeDelta::seconds(30));
        b.permit().unwrap().reached();
        // Closed again: it takes three failures to open it.
        b.permit().unwrap().failed();
        b.permit().unwrap().failed();
        assert!(b.permit().is_ok());
    }

    #[test]
    fn a_cancelled_trial_hands_the_trial_on() {
        let clock = Arc::new(VirtualClock::manual(t0()));
        let b = breaker(clock.clone());
        for _ in 0..3 {
            b.permit().unwrap().failed();
        }
        clock.advance(TimeDelta::seconds(30));
        drop(b.permit().unwrap());
        b.permit().unwrap().reached();
        assert!(b.permit().is_ok());
    }
}
