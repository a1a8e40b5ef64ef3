//! Parallel instances of one stage (`parallelism` > 1): a batch is split
//! into lanes, each run by an instance of its own on a thread of its own at
//! the same time, and the lanes' results join in input order — the outputs
//! of a batch come out in the order one instance would have made them.
//!
//! An event goes to the lane of its key — the state key on the keyed path,
//! the event's key on the plain one — so every event of a key meets the same
//! instance, batch after batch (an instance's own memory sees all of its
//! keys' events, and a key's state is read and written by one call per
//! batch); plain events without a key are cut into contiguous runs. A lane
//! whose instance faults is run again on its own, after the others, the way
//! a one-instance stage isolates a fault (halves on fresh instances): its
//! events' outputs then follow the other lanes' in that batch (per-key order
//! holds; per-partition order across keys does not, for that batch).

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use bytes::Bytes;

use super::Stage;
use crate::event::Event;
use crate::pipeline::batch::Batch;
use crate::pipeline::keyed::KeyedState;
use crate::plugin::{Output, PluginInstance, Processed};

/// The fewest events a lane is given: a smaller batch runs on fewer lanes
/// (one below twice this).
const MIN_LANE_EVENTS: usize = 64;

/// The lane of `key` among `n`: the same on every batch and every run.
fn lane_of(key: &[u8], n: usize) -> usize {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    (hash % n as u64) as usize
}

/// The indexes of `len` items per lane: by `key` where it has one, else in
/// contiguous runs.
fn assign<'a>(len: usize, n: usize, key: impl Fn(usize) -> Option<&'a [u8]>) -> Vec<Vec<usize>> {
    let mut lanes = vec![Vec::with_capacity(len / n + 1); n];
    for i in 0..len {
        let lane = match key(i) {
            Some(k) => lane_of(k, n),
            None => i * n / len,
        };
        lanes[lane].push(i);
    }
    lanes
}

/// Runs `f` on every lane's work at once: lane 0 on this thread with
/// `first`, lane `i` on a scoped thread with `rest[i - 1]`. `None`: the
/// lane had no instance, or its thread panicked.
fn call_lanes<W: Sync, R: Send>(
    first: &mut PluginInstance,
    rest: &mut [Option<PluginInstance>],
    work: &[W],
    f: impl Fn(&mut PluginInstance, &W) -> R + Sync,
) -> Vec<Option<R>> {
    let span = tracing::Span::current();
    std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .iter_mut()
            .zip(work.iter().skip(1))
            .map(|(instance, w)| {
                let (span, f) = (span.clone(), &f);
                std::thread::Builder::new()
                    .name("weir-lane".into())
                    .spawn_scoped(s, move || {
                        let _entered = span.enter();
                        instance.as_mut().map(|i| f(i, w))
                    })
            })
            .collect();
        let mut out = Vec::with_capacity(work.len());
        out.push(work.first().map(|w| f(first, w)));
        for h in handles {
            // A lane whose thread could not start runs again on its own.
            out.push(h.ok().and_then(|h| h.join().ok().flatten()));
        }
        out
    })
}

/// Lane-local input indexes of `outputs` made global through `map`.
fn remap(outputs: Vec<Output>, map: &[usize], into: &mut Vec<Output>) {
    into.extend(outputs.into_iter().filter_map(|mut o| {
        o.input = *map.get(o.input as usize)? as u32;
        Some(o)
    }));
}

fn remap_errors(errors: Vec<(u32, String)>, map: &[usize], into: &mut Vec<(u32, String)>) {
    into.extend(
        errors
            .into_iter()
            .filter_map(|(i, m)| Some((*map.get(i as usize)? as u32, m))),
    );
}

impl Stage {
    /// How many lanes a batch of `events` runs on, with their instances
    /// ready; `None`: one is enough, the breaker is open or an instance
    /// cannot start — the caller runs the batch on one instance.
    fn lanes_for(&mut self, events: usize) -> Option<usize> {
        let n = self.spec.parallelism.min(events / MIN_LANE_EVENTS).max(1);
        (n >= 2 && !self.breaker.is_open() && self.ready_lanes(n)).then_some(n)
    }

    /// [`call_lanes`] on this stage's instances, one per item of `work`.
    /// Counts each lane's events as its instance's.
    fn call_ready_lanes<W: Sync, R: Send>(
        &mut self,
        lanes: &[Vec<usize>],
        work: &[W],
        f: impl Fn(&mut PluginInstance, &W) -> R + Sync,
    ) -> Option<Vec<Option<R>>> {
        let first = self.instance.as_mut()?;
        let rest = self.lanes.get_mut(..work.len().saturating_sub(1))?;
        for (i, lane) in lanes.iter().enumerate() {
            self.stats.record_instance(i, lane.len());
        }
        Some(call_lanes(first, rest, work, f))
    }

    /// Makes sure lanes 0..n have instances; `false` if one cannot start
    /// (the batch then runs on one instance, which reports why).
    fn ready_lanes(&mut self, n: usize) -> bool {
        if self.instance.is_none() && self.fresh_instance().is_err() {
            return false;
        }
        if self.lanes.len() < n - 1 {
            self.lanes.resize_with(n - 1, || None);
        }
        let mut started = 0;
        for i in 0..n - 1 {
            if self.lanes[i].is_none() {
                match self.new_instance() {
                    Ok(instance) => self.lanes[i] = Some(instance),
                    Err(e) => {
                        tracing::warn!(stage = %self.spec.name, lane = i + 1, error = %e, "a parallel instance cannot start; the batch runs on one");
                        return false;
                    }
                }
                started += 1;
            }
        }
        if started > 0 {
            let instances = 1 + self.lanes.iter().filter(|l| l.is_some()).count();
            tracing::info!(stage = %self.spec.name, instances, version = %self.spec.plugin.short_version(), "parallel instances ready");
        }
        true
    }

    /// A faulted lane's instance is never reused.
    fn drop_lane(&mut self, lane: usize) {
        if lane == 0 {
            self.instance = None;
        } else if let Some(slot) = self.lanes.get_mut(lane - 1) {
            *slot = None;
        }
    }

    /// The plain path on parallel instances; `false`: not taken (one lane
    /// is enough, or the breaker is open), the caller runs the batch on one.
    pub(super) fn run_lanes(&mut self, inputs: &[Event], batch: &mut Batch) -> bool {
        let Some(n) = self.lanes_for(inputs.len()) else {
            return false;
        };
        let lanes = assign(inputs.len(), n, |i| inputs[i].key.as_deref());
        let work: Vec<Vec<Event>> = lanes
            .iter()
            .map(|idx| idx.iter().map(|&i| inputs[i].clone()).collect())
            .collect();
        let Some(results) =
            self.call_ready_lanes(&lanes, &work, |instance, events| instance.process(events))
        else {
            return false;
        };
        let mut merged = Processed {
            outputs: Vec::with_capacity(inputs.len()),
            errors: Vec::new(),
        };
        let mut failed = Vec::new();
        for (lane, result) in results.into_iter().enumerate() {
            match result {
                Some(Ok(p)) => {
                    remap(p.outputs, &lanes[lane], &mut merged.outputs);
                    remap_errors(p.errors, &lanes[lane], &mut merged.errors);
                }
                _ => failed.push(lane),
            }
        }
        // Stable: an event's outputs keep their order.
        merged.outputs.sort_by_key(|o| o.input);
        self.absorb(inputs, merged, batch);
        for lane in failed {
            self.drop_lane(lane);
            self.run_isolating(&work[lane], batch);
        }
        true
    }

    /// The keyed path of one partition's events on parallel instances;
    /// `false`: not taken, the caller runs them on one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_keyed_lanes(
        &mut self,
        keyed: &mut KeyedState,
        partition: i32,
        events: &[Event],
        keys: &[Bytes],
        fired: &[(i64, Bytes)],
        watermark: Option<i64>,
        batch: &mut Batch,
    ) -> bool {
        let Some(n) = self.lanes_for(events.len()) else {
            return false;
        };
        let lanes = assign(events.len(), n, |i| Some(&keys[i][..]));
        let mut timers: Vec<Vec<(i64, Bytes)>> = vec![Vec::new(); n];
        for (at, key) in fired {
            timers[lane_of(key, n)].push((*at, key.clone()));
        }
        let mut work = Vec::with_capacity(n);
        for (idx, fired) in lanes.iter().zip(&timers) {
            let lane_keys: Vec<Bytes> = idx.iter().map(|&i| keys[i].clone()).collect();
            let Ok(input) = keyed.input(partition, &lane_keys, fired, watermark) else {
                // The one-instance path reads again and reports the error.
                return false;
            };
            let lane_events: Vec<Event> = idx.iter().map(|&i| events[i].clone()).collect();
            work.push((lane_events, lane_keys, input));
        }
        let Some(results) = self.call_ready_lanes(&lanes, &work, |instance, (events, _, input)| {
            instance.process_keyed(events, input)
        }) else {
            return false;
        };
        let mut merged = Processed {
            outputs: Vec::with_capacity(events.len()),
            errors: Vec::new(),
        };
        let mut refused = Vec::new();
        let mut failed = Vec::new();
        for (lane, result) in results.into_iter().enumerate() {
            let Some(Ok(out)) = result else {
                failed.push(lane);
                continue;
            };
            let applied = keyed.apply(partition, &work[lane].2, out);
            // Fired timers ran before the events: their outputs go first.
            self.absorb_timers(
                partition,
                &timers[lane],
                applied.timer_outputs,
                applied.timer_errors,
                batch,
            );
            remap(applied.processed.outputs, &lanes[lane], &mut merged.outputs);
            remap_errors(applied.processed.errors, &lanes[lane], &mut merged.errors);
            remap_errors(applied.refused, &lanes[lane], &mut refused);
        }
        merged.outputs.sort_by_key(|o| o.input);
        self.absorb(events, merged, batch);
        for (i, reason) in refused {
            if let Some(event) = events.get(i as usize) {
                batch.dead.push(self.dead(event.clone(), reason));
                self.stats.record_dead(1);
            }
        }
        for lane in failed {
            self.drop_lane(lane);
            let (lane_events, lane_keys, _) = &work[lane];
            let fired = std::mem::take(&mut timers[lane]);
            self.run_keyed(
                keyed,
                partition,
                lane_events,
                lane_keys,
                fired,
                watermark,
                batch,
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_lane_and_keyless_items_run_contiguously() {
        let keys: Vec<Option<&[u8]>> = (0..300)
            .map(|i| (i % 3 != 0).then_some(if i % 2 == 0 { &b"a"[..] } else { &b"b"[..] }))
            .collect();
        let lanes = assign(keys.len(), 4, |i| keys[i]);
        assert_eq!(lanes.iter().map(Vec::len).sum::<usize>(), 300);
        for lane in &lanes {
            assert!(lane.windows(2).all(|w| w[0] < w[1]), "in input order");
        }
        let lane_a = lane_of(b"a", 4);
        for (i, k) in keys.iter().enumerate() {
            match k {
                Some(k) => assert!(lanes[lane_of(k, 4)].contains(&i)),
                None => assert!(lanes[i * 4 / 300].contains(&i)),
            }
        }
        assert_eq!(lane_of(b"a", 4), lane_a, "stable across calls");
    }
}
