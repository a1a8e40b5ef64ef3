//! The keyed path of a stage: per batch, the events are split by source
//! partition with their state keys; each partition gets one keyed call with
//! the state of its distinct keys, the watermark and the timers that fired;
//! the call's writes and timers go to the overlay and the batch's commit
//! (`crate::pipeline::keyed`). A fault re-runs the events in halves on fresh
//! instances, as on the plain path; a half sees the state the other wrote.

use bytes::Bytes;

use super::Stage;
use crate::event::Event;
use crate::event::Position;
use crate::pipeline::batch::Batch;
use crate::pipeline::keyed::KeyedState;

/// Rounds of timers fired at the end of the input (a timer a fired timer
/// sets fires in the next round).
const END_ROUNDS: usize = 3;

impl Stage {
    /// Makes the stage keyed: its batches take the keyed path.
    pub fn make_keyed(&mut self, keyed: KeyedState) {
        let _ = self
            .stats
            .state
            .set(crate::telemetry::StoreHandle(keyed.store().clone()));
        self.keyed = Some(keyed);
    }

    /// Whether the stage is keyed.
    pub fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    /// What finds a keyed stage's state keys (for the thread before it).
    pub fn key_finder(&self) -> Option<crate::pipeline::keyed::KeyFinder> {
        self.keyed.as_ref().map(|k| k.finder().clone())
    }

    /// What the serving plugin said about itself in `init`.
    pub fn plugin_info(&self) -> crate::plugin::PluginInfo {
        self.instance
            .as_ref()
            .map(crate::plugin::PluginInstance::info)
            .unwrap_or_default()
    }

    pub(super) fn process_keyed(&mut self, inputs: Vec<Event>, batch: &mut Batch) {
        let Some(mut keyed) = self.keyed.take() else {
            return;
        };
        keyed.begin(batch.seq);
        let plan = keyed.plan(inputs, std::mem::take(&mut batch.state_keys));
        for (event, reason) in plan.rejects {
            batch.dead.push(self.dead(event, reason));
            self.stats.record_dead(1);
        }
        let watermark = keyed.watermark();
        // The partitions with events, then those that only have timers.
        let with_events: Vec<i32> = plan.groups.iter().map(|g| g.partition).collect();
        let timers_only: Vec<i32> = keyed
            .timer_partitions()
            .into_iter()
            .filter(|p| !with_events.contains(p))
            .collect();
        let mut work: Vec<(i32, Vec<Event>, Vec<Bytes>)> = plan
            .groups
            .into_iter()
            .map(|g| (g.partition, g.events, g.keys))
            .collect();
        work.extend(timers_only.into_iter().map(|p| (p, Vec::new(), Vec::new())));
        let mut seen = Vec::new();
        for (p, events, keys) in work {
            let fired = match keyed.take_due(p, watermark) {
                Ok(f) => f,
                Err(e) => {
                    let reason = format!("reading due timers: {e}");
                    self.dead_all(&events, &reason, batch);
                    continue;
                }
            };
            if !self.run_keyed_lanes(&mut keyed, p, &events, &keys, &fired, watermark, batch) {
                self.stats.record_instance(0, events.len());
                self.run_keyed(&mut keyed, p, &events, &keys, fired, watermark, batch);
            }
            seen.extend(events);
        }
        let late = keyed.observe(&seen);
        self.stats.record_late(late);
        if batch.end_of_input {
            keyed.end_of_input();
            for _ in 0..END_ROUNDS {
                let mut any = false;
                for p in keyed.timer_partitions() {
                    match keyed.take_due(p, keyed.watermark()) {
                        Ok(fired) if fired.is_empty() => {}
                        Ok(fired) => {
                            any = true;
                            let w = keyed.watermark();
                            self.run_keyed(&mut keyed, p, &[], &[], fired, w, batch);
                        }
                        Err(e) => {
                            tracing::error!(stage = %self.spec.name, error = %e, "reading due timers at the end of the input");
                        }
                    }
                }
                if !any {
                    break;
                }
            }
        }
        batch.state.extend(keyed.take_delta());
        self.keyed = Some(keyed);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_keyed(
        &mut self,
        keyed: &mut KeyedState,
        partition: i32,
        events: &[Event],
        keys: &[Bytes],
        fired: Vec<(i64, Bytes)>,
        watermark: Option<i64>,
        batch: &mut Batch,
    ) {
        if events.is_empty() && fired.is_empty() {
            return;
        }
        if self.breaker.is_open() {
            let reason = self.breaker.reason();
            self.dead_all(events, &reason, batch);
            return;
        }
        let input = match keyed.input(partition, keys, &fired, watermark) {
            Ok(input) => input,
            Err(e) => {
                let reason = format!("reading state: {e}");
                tracing::error!(stage = %self.spec.name, "{reason}");
                self.dead_all(events, &reason, batch);
                return;
            }
        };
        let result = match self.instance.as_mut() {
            Some(instance) => instance.process_keyed(events, &input),
            None => match self.fresh_instance() {
                Ok(instance) => instance.process_keyed(events, &input),
                Err(err) => {
                    let reason = format!("plugin could not be restarted: {err}");
                    tracing::error!(stage = %self.spec.name, "{reason}");
                    self.dead_all(events, &reason, batch);
                    return;
                }
            },
        };
        let fault = match result {
            Ok(out) => {
                let applied = keyed.apply(partition, &input, out);
                // Fired timers ran before the events (the watermark reached
                // them before this batch): their outputs go first.
                self.absorb_timers(
                    partition,
                    &fired,
                    applied.timer_outputs,
                    applied.timer_errors,
                    batch,
                );
                self.absorb(events, applied.processed, batch);
                for (i, reason) in applied.refused {
                    if let Some(event) = events.get(i as usize) {
                        batch.dead.push(self.dead(event.clone(), reason));
                        self.stats.record_dead(1);
                    }
                }
                return;
            }
            Err(fault) => fault,
        };
        // A trapped instance is in an undefined state: never reuse it.
        self.instance = None;
        self.stats.record_fault(&fault);
        if !fired.is_empty() {
            // The events again without the timers, then the timers alone; a
            // timer whose call faults on its own is dropped (logged).
            self.run_keyed(keyed, partition, events, keys, Vec::new(), watermark, batch);
            if events.is_empty() {
                tracing::error!(stage = %self.spec.name, timers = fired.len(), reason = %fault, "the plugin faults on fired timers alone: they are dropped");
            } else {
                self.run_keyed(keyed, partition, &[], &[], fired, watermark, batch);
            }
            return;
        }
        if events.len() == 1 {
            self.isolated_poison(&events[0], &fault, batch);
            return;
        }
        // Each halving re-runs the fault: the isolated event is logged once.
        tracing::debug!(stage = %self.spec.name, events = events.len(), reason = %fault, "plugin fault; isolating the events that cause it");
        let half = events.len() / 2;
        self.run_keyed(
            keyed,
            partition,
            &events[..half],
            &keys[..half],
            Vec::new(),
            watermark,
            batch,
        );
        self.run_keyed(
            keyed,
            partition,
            &events[half..],
            &keys[half..],
            Vec::new(),
            watermark,
            batch,
        );
    }
}

impl Stage {
    /// Outputs of fired timers: they come from no input event; their
    /// position names the stage's partition (`<stage>.timers`, offset -1).
    /// A timer whose handler failed is a dead letter whose value says which
    /// timer (`{"key": ..., "timer": at-ms}`).
    pub(super) fn absorb_timers(
        &mut self,
        partition: i32,
        fired: &[(i64, Bytes)],
        outputs: Vec<crate::plugin::Output>,
        errors: Vec<(u32, String)>,
        batch: &mut Batch,
    ) {
        if outputs.is_empty() && errors.is_empty() {
            return;
        }
        let stream: std::sync::Arc<str> = format!("{}.timers", self.spec.name).into();
        let outputs = outputs
            .into_iter()
            .map(|mut o| {
                o.event.position = Position::new(stream.clone(), partition, -1);
                o.input = u32::MAX;
                o
            })
            .collect();
        self.absorb(
            &[],
            crate::plugin::Processed {
                outputs,
                errors: Vec::new(),
            },
            batch,
        );
        for (i, reason) in errors {
            let Some((at, key)) = fired.get(i as usize) else {
                continue;
            };
            let value = serde_json::json!({
                "key": String::from_utf8_lossy(key),
                "timer": at,
            });
            let event = Event::new(
                value.to_string(),
                *at,
                Position::new(stream.clone(), partition, -1),
            )
            .with_key(key.clone());
            batch
                .dead
                .push(self.dead(event, format!("timer at {at}: {reason}")));
            self.stats.record_dead(1);
        }
    }
}
