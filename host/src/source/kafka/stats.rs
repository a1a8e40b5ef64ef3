//! Per-partition consumer metrics (the hook the telemetry exporter reads).

use std::collections::BTreeMap;
use std::sync::Mutex;

use rdkafka::statistics::Statistics;

/// One partition's position, as last seen (also its `/status.json` form).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionMetrics {
    pub topic: String,
    pub partition: i32,
    /// The last offset committed to the group (the next offset to read).
    pub committed: Option<i64>,
    /// The partition's high watermark (the offset after the last record),
    /// from librdkafka's statistics (every `statistics.interval.ms`).
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed`: records not yet committed as processed.
    pub lag: Option<i64>,
    /// Whether this consumer currently owns the partition.
    pub assigned: bool,
}

/// Consumer metrics of one Kafka source, shared with whoever exports them.
#[derive(Debug, Default)]
pub struct KafkaStats {
    partitions: Mutex<BTreeMap<(String, i32), PartitionMetrics>>,
    /// The consumer has joined its group (received an assignment, possibly
    /// empty): it reached the brokers. Readiness waits for it.
    joined: std::sync::atomic::AtomicBool,
}

impl KafkaStats {
    /// Whether the consumer has joined its group (connected to the brokers).
    pub fn joined(&self) -> bool {
        self.joined.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(super) fn set_joined(&self) {
        self.joined
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Every partition seen, sorted by topic and partition.
    pub fn snapshot(&self) -> Vec<PartitionMetrics> {
        match self.partitions.lock() {
            Ok(p) => p.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Total lag over the assigned partitions with a known lag.
    pub fn total_lag(&self) -> i64 {
        self.snapshot()
            .iter()
            .filter(|p| p.assigned)
            .filter_map(|p| p.lag)
            .sum()
    }

    fn update(&self, topic: &str, partition: i32, f: impl FnOnce(&mut PartitionMetrics)) {
        if let Ok(mut map) = self.partitions.lock() {
            let m = map
                .entry((topic.to_owned(), partition))
                .or_insert_with(|| PartitionMetrics {
                    topic: topic.to_owned(),
                    partition,
                    ..PartitionMetrics::default()
                });
            f(m);
            m.lag = match (m.high_watermark, m.committed) {
                (Some(h), Some(c)) => Some((h - c).max(0)),
                _ => None,
            };
        }
    }

    pub(super) fn set_assigned(&self, topic: &str, partition: i32, assigned: bool) {
        self.update(topic, partition, |m| m.assigned = assigned);
    }

    pub(super) fn set_committed(&self, topic: &str, partition: i32, offset: i64) {
        self.update(topic, partition, |m| m.committed = Some(offset));
    }

    /// Takes the high watermarks (and committed offsets) from librdkafka's
    /// statistics.
    pub(super) fn record(&self, stats: &Statistics) {
        for (topic, t) in &stats.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                if p.hi_offset < 0 {
                    continue;
                }
                self.update(topic, p.partition, |m| {
                    m.high_watermark = Some(p.hi_offset);
                    if p.committed_offset >= 0 {
                        m.committed = Some(p.committed_offset);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_high_watermark_minus_committed() {
        let s = KafkaStats::default();
        s.set_assigned("t", 1, true);
        s.set_committed("t", 1, 40);
        assert_eq!(s.snapshot()[0].lag, None, "no watermark yet");
        s.update("t", 1, |m| m.high_watermark = Some(100));
        assert_eq!(s.snapshot()[0].lag, Some(60));
        s.set_committed("t", 1, 100);
        assert_eq!(s.total_lag(), 0);
    }
}
