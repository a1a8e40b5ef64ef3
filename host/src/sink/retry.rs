//! Retries of the action sinks: exponential backoff with full jitter, a
//! server's `Retry-After` honoured, bounded by `max_retries` or unbounded
//! while the pipeline runs.

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::validate::FieldError;

/// How long retries may go on after the pipeline was asked to stop: then the
/// batch fails (its input is read again after a restart).
const AFTER_STOP: Duration = Duration::from_secs(5);

/// `[outputs.<name>.retry]` of the http, redis and postgres sinks.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries of one request before its events fail (the pipeline stops;
    /// the input is read again on restart). Unset (default): retry while the
    /// pipeline runs; the pipeline slows down meanwhile (its queues are
    /// bounded), memory stays bounded.
    pub max_retries: Option<u32>,
    /// The first backoff (default 100 ms); it doubles on each retry.
    pub initial_backoff_ms: u64,
    /// The longest backoff (default 10000 ms).
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RetryConfig {
    /// What an output without a `retry` table gets.
    pub const DEFAULT: Self = Self {
        max_retries: None,
        initial_backoff_ms: 100,
        max_backoff_ms: 10_000,
    };

    pub fn validate(&self) -> Result<(), FieldError> {
        if self.initial_backoff_ms == 0 {
            return Err(FieldError::new("initial_backoff_ms", "must be at least 1"));
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(FieldError::new(
                "max_backoff_ms",
                "must be at least initial_backoff_ms",
            ));
        }
        if self.max_backoff_ms > 3_600_000 {
            return Err(FieldError::new("max_backoff_ms", "must be at most 3600000"));
        }
        Ok(())
    }

    /// Checks a sink's request `timeout_ms` (1 to `max_timeout_ms`) and its
    /// `retry` table.
    pub fn validate_with_timeout(
        &self,
        timeout_ms: u64,
        max_timeout_ms: u64,
    ) -> Result<(), FieldError> {
        crate::validate::in_range("timeout_ms", timeout_ms, 1..=max_timeout_ms)?;
        self.validate().map_err(|e| e.within("retry"))
    }

    /// The backoff before retry number `retry` (1-based): a random duration
    /// up to `initial * 2^(retry-1)`, capped at `max_backoff_ms`, at least
    /// a tenth of it.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff_ms
            .saturating_mul(1u64 << retry.saturating_sub(1).min(30));
        let cap = exp.min(self.max_backoff_ms).max(1);
        let floor = (cap / 10).max(1);
        Duration::from_millis(fastrand::u64(floor..=cap))
    }

    /// Starts the retries of one request.
    pub fn start(&self, stop: &CancellationToken) -> Retries {
        Retries {
            config: self.clone(),
            stop: stop.clone(),
            done: 0,
            stopped_at: None,
        }
    }
}

/// The retries of one request.
pub struct Retries {
    config: RetryConfig,
    stop: CancellationToken,
    done: u32,
    stopped_at: Option<std::time::Instant>,
}

impl Retries {
    /// Waits before the next retry: the server's `Retry-After` (`hint`, up
    /// to an hour) or the backoff. `false` when there is none left (out of
    /// retries, or the pipeline stopped more than a few seconds ago).
    pub async fn wait(&mut self, hint: Option<Duration>) -> bool {
        if self.config.max_retries.is_some_and(|max| self.done >= max) {
            return false;
        }
        self.done += 1;
        let delay = hint
            .map(|h| h.min(Duration::from_secs(3600)))
            .unwrap_or_else(|| self.config.backoff(self.done));
        if self.stop.is_cancelled() {
            let since = *self.stopped_at.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= AFTER_STOP {
                return false;
            }
            tokio::time::sleep(delay.min(Duration::from_millis(500))).await;
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = self.stop.cancelled() => {
                self.stopped_at = Some(std::time::Instant::now());
            }
        }
        true
    }

    /// Retries done so far.
    pub fn done(&self) -> u32 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let c = RetryConfig {
            max_retries: Some(3),
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
        };
        for _ in 0..200 {
            let first = c.backoff(1).as_millis();
            assert!((10..=100).contains(&first), "{first}");
            let third = c.backoff(3).as_millis();
            assert!((40..=400).contains(&third), "{third}");
            let late = c.backoff(40).as_millis();
            assert!((100..=1000).contains(&late), "{late}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| c.backoff(5)).collect();
        assert!(spread.len() > 5, "no jitter: {spread:?}");
    }

    #[test]
    fn validate_names_the_field() {
        let bad = RetryConfig {
            max_backoff_ms: 10,
            ..RetryConfig::default()
        };
        assert_eq!(
            bad.validate().map_err(|e| e.field()),
            Err("max_backoff_ms".into())
        );
    }

    #[tokio::test]
    async fn retries_stop_at_max_retries() {
        let c = RetryConfig {
            max_retries: Some(2),
            initial_backoff_ms: 1,
            max_backoff_ms: 1,
        };
        let mut r = c.start(&CancellationToken::new());
        assert!(r.wait(None).await);
        assert!(r.wait(None).await);
        assert!(!r.wait(None).await);
        assert_eq!(r.done(), 2);
    }
}
