//! Which offsets may be committed: a contiguous-prefix tracker per partition.
//!
//! Every chunk the source hands out is registered with, for each partition it
//! holds events of, the last offset of that partition in the chunk. Chunks
//! of one partition are registered in read order (= offset order). When a
//! chunk is acknowledged delivered, the partition's committable position
//! advances past every chunk at the front of its queue that is done: an
//! offset is committable only once it and every earlier offset read from the
//! partition were delivered. A failed chunk freezes its partitions (nothing
//! more is stored for them; the pipeline stops, and the next run reads again
//! from the last committed offset). Plain data, no Kafka: unit-tested below.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// A topic and partition.
pub type TopicPartition = (Arc<str>, i32);

#[derive(Debug, Default)]
struct PartitionState {
    /// Bumped on every assignment: chunks registered under an older
    /// generation belong to an earlier ownership and are ignored.
    generation: u64,
    /// In-flight chunks of this partition in read order: (chunk id, last
    /// offset of this partition in it, outcome once acknowledged).
    inflight: VecDeque<(u64, i64, Option<bool>)>,
    /// The next offset to consume after the delivered prefix (what a commit
    /// stores), once something was delivered.
    delivered_to: Option<i64>,
    /// `delivered_to` changed since the consumer last stored it.
    dirty: bool,
}

/// One partition's part of a registered chunk.
#[derive(Clone, Debug)]
struct ChunkPart {
    tp: TopicPartition,
    generation: u64,
}

/// What an acknowledgement changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Partitions whose committable offset advanced.
    pub advanced: usize,
    /// Partitions (still owned) that the chunk failed for.
    pub failed: Vec<TopicPartition>,
}

/// The per-partition delivery state of a consumer.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<TopicPartition, PartitionState>,
    chunks: HashMap<u64, Vec<ChunkPart>>,
    next_generation: u64,
}

impl OffsetTracker {
    /// The partitions were assigned to this consumer (a fresh ownership).
    pub fn assign(&mut self, tps: impl IntoIterator<Item = TopicPartition>) {
        for tp in tps {
            self.next_generation += 1;
            self.partitions.insert(
                tp,
                PartitionState {
                    generation: self.next_generation,
                    ..PartitionState::default()
                },
            );
        }
    }

    /// The partitions were revoked: later acks of their chunks are ignored.
    pub fn revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions.remove(tp);
        }
    }

    /// Whether `tp` is currently owned and its generation is `generation`.
    pub fn owns(&self, tp: &TopicPartition, generation: u64) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|p| p.generation == generation)
    }

    /// The current generation of an owned partition.
    pub fn generation(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions.get(tp).map(|p| p.generation)
    }

    /// Registers chunk `chunk` holding, for each partition, events up to the
    /// given last offset (offsets of a partition must grow from one chunk to
    /// the next). Partitions not owned are skipped.
    pub fn register(&mut self, chunk: u64, last_offsets: &BTreeMap<TopicPartition, i64>) {
        let mut parts = Vec::with_capacity(last_offsets.len());
        for (tp, &last) in last_offsets {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.inflight.push_back((chunk, last, None));
                parts.push(ChunkPart {
                    tp: tp.clone(),
                    generation: p.generation,
                });
            }
        }
        self.chunks.insert(chunk, parts);
    }

    /// Records the outcome of chunk `chunk`.
    pub fn ack(&mut self, chunk: u64, delivered: bool) -> AckOutcome {
        let mut outcome = AckOutcome::default();
        let Some(parts) = self.chunks.remove(&chunk) else {
            return outcome;
        };
        for part in parts {
            let Some(p) = self.partitions.get_mut(&part.tp) else {
                continue;
            };
            if p.generation != part.generation {
                continue;
            }
            if !delivered {
                outcome.failed.push(part.tp.clone());
            }
            if let Some(entry) = p.inflight.iter_mut().find(|e| e.0 == chunk) {
                entry.2 = Some(delivered);
            }
            // Advance over the delivered prefix; a failed chunk stays at the
            // front for good (nothing after it is ever stored), but counts
            // as settled for a revocation.
            let mut advanced = false;
            while let Some(&(_, last, Some(true))) = p.inflight.front() {
                p.inflight.pop_front();
                p.delivered_to = Some(last + 1);
                advanced = true;
            }
            if advanced {
                p.dirty = true;
                outcome.advanced += 1;
            }
        }
        outcome
    }

    /// Committable offsets that changed since the last call (and marks them
    /// taken).
    pub fn take_dirty(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.partitions {
            if p.dirty
                && let Some(offset) = p.delivered_to
            {
                p.dirty = false;
                out.push((tp.clone(), offset));
            }
        }
        out
    }

    /// The committable offset of `tp` (next offset to read), if any.
    pub fn committable(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|p| p.delivered_to)
    }

    /// Chunks of these partitions still in flight (not yet acknowledged).
    pub fn inflight(&self, tps: &[TopicPartition]) -> usize {
        tps.iter()
            .filter_map(|tp| self.partitions.get(tp))
            .map(|p| p.inflight.iter().filter(|e| e.2.is_none()).count())
            .sum()
    }

    /// Every owned partition.
    pub fn owned(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    fn offsets(list: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        list.iter().map(|&(p, o)| (tp(p), o)).collect()
    }

    #[test]
    fn stores_only_the_contiguous_delivered_prefix() {
        let mut t = OffsetTracker::default();
        t.assign([tp(0), tp(1)]);
        t.register(0, &offsets(&[(0, 9), (1, 4)]));
        t.register(1, &offsets(&[(0, 19)]));
        t.register(2, &offsets(&[(0, 29), (1, 8)]));
        // Chunk 1 first: partition 0 must wait for chunk 0.
        assert_eq!(t.ack(1, true).advanced, 0);
        assert_eq!(t.committable(&tp(0)), None);
        assert!(t.take_dirty().is_empty());
        // Chunk 0: partition 0 advances past chunks 0 and 1, partition 1 past 0.
        assert_eq!(t.ack(0, true).advanced, 2);
        assert_eq!(t.committable(&tp(0)), Some(20));
        assert_eq!(t.committable(&tp(1)), Some(5));
        let mut dirty = t.take_dirty();
        dirty.sort();
        assert_eq!(dirty, vec![(tp(0), 20), (tp(1), 5)]);
        assert!(t.take_dirty().is_empty(), "taken once");
        assert_eq!(t.inflight(&[tp(0), tp(1)]), 2);
        t.ack(2, true);
        assert_eq!(t.committable(&tp(0)), Some(30));
        assert_eq!(t.committable(&tp(1)), Some(9));
        assert_eq!(t.inflight(&[tp(0), tp(1)]), 0);
    }

    #[test]
    fn a_failed_chunk_freezes_its_partitions_only() {
        let mut t = OffsetTracker::default();
        t.assign([tp(0), tp(1)]);
        t.register(0, &offsets(&[(0, 9)]));
        t.register(1, &offsets(&[(0, 19), (1, 3)]));
        t.register(2, &offsets(&[(1, 7)]));
        t.register(3, &offsets(&[(0, 29)]));
        let out = t.ack(1, false);
        assert_eq!(out.failed, vec![tp(0), tp(1)]);
        t.ack(0, true);
        assert_eq!(
            t.committable(&tp(0)),
            Some(10),
            "the prefix before the failure"
        );
        t.ack(2, true);
        t.ack(3, true);
        assert_eq!(t.committable(&tp(0)), Some(10), "frozen after the failure");
        assert_eq!(t.committable(&tp(1)), None);
    }

    #[test]
    fn acks_of_a_revoked_or_reassigned_partition_are_ignored() {
        let mut t = OffsetTracker::default();
        t.assign([tp(0)]);
        let g1 = t.generation(&tp(0)).expect("owned");
        t.register(0, &offsets(&[(0, 9)]));
        t.revoke(&[tp(0)]);
        assert!(!t.owns(&tp(0), g1));
        t.assign([tp(0)]);
        let g2 = t.generation(&tp(0)).expect("owned again");
        assert_ne!(g1, g2);
        assert_eq!(t.ack(0, true), AckOutcome::default());
        assert_eq!(t.committable(&tp(0)), None);
        assert_eq!(t.ack(0, false), AckOutcome::default(), "unknown chunk");
        // Unowned partitions are not registered.
        t.register(1, &offsets(&[(0, 19), (5, 3)]));
        assert_eq!(t.inflight(&[tp(0), tp(5)]), 1);
        t.ack(1, true);
        assert_eq!(t.committable(&tp(0)), Some(20));
    }

    #[test]
    fn many_out_of_order_acks_end_at_the_last_offset() {
        let mut t = OffsetTracker::default();
        t.assign((0..4).map(tp));
        let n = 1000u64;
        for c in 0..n {
            let p = (c % 4) as i32;
            t.register(c, &offsets(&[(p, (c / 4) as i64)]));
        }
        // Acknowledge in a scrambled order.
        let mut order: Vec<u64> = (0..n).collect();
        order.sort_by_key(|c| (c * 7919) % n);
        for (i, c) in order.iter().enumerate() {
            t.ack(*c, true);
            // Never ahead of an unacknowledged chunk.
            for p in 0..4 {
                if let Some(next) = t.committable(&tp(p)) {
                    let acked: std::collections::HashSet<u64> =
                        order[..=i].iter().copied().collect();
                    let upto = (next as u64) * 4;
                    assert!(
                        (0..upto)
                            .filter(|c| c % 4 == p as u64)
                            .all(|c| acked.contains(&c))
                    );
                }
            }
            if i > 50 {
                break;
            }
        }
        for c in order {
            t.ack(c, true);
        }
        for p in 0..4 {
            assert_eq!(t.committable(&tp(p)), Some(250));
        }
    }
}
