//! Event-time watermarks: per source partition, the largest event time seen
//! minus the allowed out-of-orderness; for a stage, the smallest over its
//! partitions, leaving out those idle (nothing delivered) for longer than the
//! idle timeout, so a quiet partition does not stall timers and windows. The
//! watermark never goes back; at the end of a finite input it jumps to
//! `i64::MAX` so that every timer fires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::WatermarkConfig;

struct Partition {
    max_event_ms: i64,
    last_seen: Instant,
}

/// The watermark of one stage.
pub struct Watermarks {
    out_of_order_ms: i64,
    idle_timeout: Duration,
    partitions: HashMap<(Arc<str>, i32), Partition>,
    current: Option<i64>,
}

impl Watermarks {
    pub fn new(config: &WatermarkConfig) -> Self {
        Self {
            out_of_order_ms: config.out_of_order_ms as i64,
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            partitions: HashMap::new(),
            current: None,
        }
    }

    /// Records an event of `(stream, partition)` with event time `event_ms`,
    /// seen at `now`. Returns whether it is late: its time is at or below
    /// the watermark already reached.
    pub fn observe(
        &mut self,
        stream: &Arc<str>,
        partition: i32,
        event_ms: i64,
        now: Instant,
    ) -> bool {
        let late = self.current.is_some_and(|w| event_ms <= w);
        match self.partitions.get_mut(&(stream.clone(), partition)) {
            Some(p) => {
                p.max_event_ms = p.max_event_ms.max(event_ms);
                p.last_seen = now;
            }
            None => {
                self.partitions.insert(
                    (stream.clone(), partition),
                    Partition {
                        max_event_ms: event_ms,
                        last_seen: now,
                    },
                );
            }
        }
        late
    }

    /// The stage's watermark at `now` (`None` until an event was seen).
    pub fn advance(&mut self, now: Instant) -> Option<i64> {
        let active = self
            .partitions
            .values()
            .filter(|p| now.saturating_duration_since(p.last_seen) < self.idle_timeout)
            .map(|p| p.max_event_ms)
            .min();
        // Every partition idle: none holds the watermark back.
        let candidate = active
            .or_else(|| self.partitions.values().map(|p| p.max_event_ms).max())
            .map(|t| t.saturating_sub(self.out_of_order_ms));
        if let Some(c) = candidate {
            self.current = Some(self.current.map_or(c, |w| w.max(c)));
        }
        self.current
    }

    /// The input ended: every timer is due.
    pub fn end_of_input(&mut self) -> i64 {
        self.current = Some(i64::MAX);
        i64::MAX
    }

    /// The watermark last reached.
    pub fn current(&self) -> Option<i64> {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(out_of_order_ms: u64, idle_timeout_ms: u64) -> WatermarkConfig {
        WatermarkConfig {
            out_of_order_ms,
            idle_timeout_ms,
        }
    }

    #[test]
    fn min_over_partitions_minus_out_of_orderness() {
        let t0 = Instant::now();
        let s: Arc<str> = Arc::from("topic");
        let mut w = Watermarks::new(&config(100, 10_000));
        assert_eq!(w.advance(t0), None);
        assert!(!w.observe(&s, 0, 1_000, t0));
        assert!(!w.observe(&s, 1, 5_000, t0));
        assert_eq!(w.advance(t0), Some(900), "partition 0 holds it back");
        w.observe(&s, 0, 7_000, t0);
        assert_eq!(w.advance(t0), Some(4_900));
        // Out of order within a partition: the max stays.
        w.observe(&s, 1, 4_000, t0);
        assert_eq!(w.advance(t0), Some(4_900));
        assert!(w.observe(&s, 0, 4_900, t0), "at the watermark is late");
        assert!(!w.observe(&s, 0, 4_901, t0));
    }

    #[test]
    fn an_idle_partition_stops_holding_it_back_and_it_never_goes_back() {
        let t0 = Instant::now();
        let s: Arc<str> = Arc::from("topic");
        let mut w = Watermarks::new(&config(0, 50));
        w.observe(&s, 0, 100, t0);
        w.observe(&s, 1, 10_000, t0);
        assert_eq!(w.advance(t0), Some(100));
        let later = t0 + Duration::from_millis(60);
        w.observe(&s, 1, 12_000, later);
        assert_eq!(w.advance(later), Some(12_000), "partition 0 is idle");
        // Partition 0 wakes up behind: the watermark does not go back.
        w.observe(&s, 0, 200, later);
        assert_eq!(w.advance(later), Some(12_000));
        // Everything idle: the furthest partition sets it.
        let idle = later + Duration::from_millis(100);
        assert_eq!(w.advance(idle), Some(12_000));
        assert_eq!(w.end_of_input(), i64::MAX);
        assert_eq!(w.current(), Some(i64::MAX));
        assert_eq!(w.advance(idle), Some(i64::MAX));
    }
}
