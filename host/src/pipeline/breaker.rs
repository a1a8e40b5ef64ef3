//! The per-stage circuit breaker: a plugin that keeps faulting stops costing
//! the pipeline (every fault means re-running a batch in halves).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::validate::{self, FieldError};

/// What happens once a stage's breaker trips.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BreakerAction {
    /// Every later event of the stage goes to the dead-letter output with the
    /// reason; the pipeline keeps running (the rest of it stays useful).
    #[default]
    DeadLetter,
    /// The pipeline stops cleanly (what was read is drained; the events the
    /// stage can no longer process are dead-lettered) and `weir` exits non-zero.
    Stop,
}

/// The `[stages.circuit_breaker]` table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Faulting events (trap, deadline, memory) within `window_secs` that
    /// trip the breaker.
    pub max_faults: u32,
    pub window_secs: u64,
    pub action: BreakerAction,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            max_faults: 20,
            window_secs: 60,
            action: BreakerAction::DeadLetter,
        }
    }
}

impl CircuitBreakerConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::at_least_one("max_faults", u64::from(self.max_faults))?;
        validate::at_least_one("window_secs", self.window_secs)
    }
}

/// The breaker's state.
#[derive(Debug)]
pub struct Breaker {
    config: CircuitBreakerConfig,
    faults: VecDeque<Instant>,
    open: bool,
}

impl Breaker {
    pub fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            config,
            faults: VecDeque::new(),
            open: false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn action(&self) -> BreakerAction {
        self.config.action
    }

    /// Records one faulting event; true if this fault trips the breaker.
    pub fn record_fault(&mut self, now: Instant) -> bool {
        if self.open {
            return false;
        }
        let window = Duration::from_secs(self.config.window_secs);
        while self
            .faults
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.faults.pop_front();
        }
        self.faults.push_back(now);
        if self.faults.len() >= self.config.max_faults as usize {
            self.open = true;
        }
        self.open
    }

    /// The reason given to the events the open breaker refuses.
    pub fn reason(&self) -> String {
        format!(
            "circuit breaker open: the stage's plugin faulted on {} events within {} s",
            self.config.max_faults, self.config.window_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_at_max_faults_within_the_window_only() {
        let mut b = Breaker::new(CircuitBreakerConfig {
            max_faults: 3,
            window_secs: 10,
            action: BreakerAction::Stop,
        });
        let t0 = Instant::now();
        assert!(!b.record_fault(t0));
        assert!(!b.record_fault(t0 + Duration::from_secs(5)));
        // The first fault has left the window: still two in it.
        assert!(!b.record_fault(t0 + Duration::from_secs(12)));
        assert!(!b.is_open());
        assert!(b.record_fault(t0 + Duration::from_secs(13)));
        assert!(b.is_open());
        assert_eq!(b.action(), BreakerAction::Stop);
        assert!(!b.record_fault(t0 + Duration::from_secs(14)), "trips once");
    }
}
