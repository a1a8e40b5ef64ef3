//! One plugin stage: runs batches through its plugin instance, turns the
//! plugin's per-event errors into dead letters, and isolates the events that
//! make the plugin fault (trap, deadline, memory) by re-running the batch in
//! halves on fresh instances.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

mod keyed_run;
mod lanes;

use super::batch::Batch;
use super::breaker::{Breaker, BreakerAction, CircuitBreakerConfig};
use super::dlq::DeadLetter;
use super::route::Routes;
use super::swap::SwapSlot;
use crate::event::Event;
use crate::plugin::{
    CallError, InstanceConfig, LoadedPlugin, PluginEngine, PluginError, PluginInstance, Processed,
};
use crate::telemetry::StageStats;
use crate::telemetry::VersionBoard;

/// What a stage is made of (built from the pipeline file).
#[derive(Clone)]
pub struct StageSpec {
    pub name: Arc<str>,
    pub plugin: LoadedPlugin,
    /// The params as a JSON object, given to `init`.
    pub params_json: String,
    pub instance: InstanceConfig,
    pub breaker: CircuitBreakerConfig,
    /// Instances run side by side on a batch (`parallelism`; 1: one).
    pub parallelism: usize,
}

impl StageSpec {
    /// A stage with default limits and breaker, nothing granted.
    pub fn new(name: &str, plugin: LoadedPlugin, params_json: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            plugin,
            params_json: params_json.into(),
            instance: InstanceConfig::new(name),
            breaker: CircuitBreakerConfig::default(),
            parallelism: 1,
        }
    }
}

pub struct Stage {
    spec: StageSpec,
    engine: Arc<PluginEngine>,
    /// The outputs a plugin may route to (set by the pipeline's runner;
    /// any name until then, as for `weir plugin test`).
    routes: Routes,
    instance: Option<PluginInstance>,
    /// The instances of lanes 1.. (`parallelism` > 1): `None` until needed
    /// (and after a fault or a swap).
    lanes: Vec<Option<PluginInstance>>,
    stats: Arc<StageStats>,
    breaker: Breaker,
    /// Set when the breaker tripped with `action = "stop"`.
    fatal: Option<String>,
    /// Hot reload: new versions arrive here, taken at a batch boundary.
    slot: SwapSlot,
    status: Option<Arc<VersionBoard>>,
    /// A keyed stage's state (`[stages.state]`).
    keyed: Option<super::keyed::KeyedState>,
}

impl Stage {
    /// Instantiates and initializes the plugin: a plugin that cannot start
    /// is refused here, before any event is read.
    pub fn start(
        spec: StageSpec,
        engine: Arc<PluginEngine>,
        stats: Arc<StageStats>,
    ) -> Result<Self, PluginError> {
        let breaker = Breaker::new(spec.breaker.clone());
        let mut stage = Self {
            spec,
            engine,
            routes: Routes::any(),
            instance: None,
            lanes: Vec::new(),
            stats,
            breaker,
            fatal: None,
            slot: SwapSlot::default(),
            status: None,
            keyed: None,
        };
        stage.fresh_instance()?;
        Ok(stage)
    }

    /// Takes new versions from `slot` and reports what it serves to `status`.
    pub fn enable_reload(&mut self, slot: SwapSlot, status: Arc<VersionBoard>) {
        let plugin = &self.spec.plugin;
        status.serving(&self.spec.name, &plugin.name, &plugin.version, false);
        self.slot = slot;
        self.status = Some(status);
    }

    pub fn spec(&self) -> &StageSpec {
        &self.spec
    }

    /// Routes plugin outputs to these outputs only (the runner's fan-out).
    pub fn route_to(&mut self, routes: Routes) {
        self.routes = routes;
    }

    /// The outputs the plugin routed to, by place.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Swaps in a prepared version, if one is waiting.
    fn take_new_version(&mut self) {
        let Some(prepared) = self.slot.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        if prepared.plugin.version == self.spec.plugin.version {
            // A version that superseded another before this stage took it,
            // and is the one serving: nothing changes (no swap is counted).
            tracing::debug!(stage = %self.spec.name, version = %prepared.plugin.short_version(), "prepared version is the one serving; kept");
            retire(prepared.instance);
            return;
        }
        let old = self.spec.plugin.short_version().to_string();
        self.spec.plugin = prepared.plugin;
        if let Some(retired) = self.instance.replace(prepared.instance) {
            retire(retired);
        }
        // The other lanes start on the new version at their next batch.
        self.lanes
            .iter_mut()
            .filter_map(Option::take)
            .for_each(retire);
        // A new version gets a fresh chance.
        self.breaker = Breaker::new(self.spec.breaker.clone());
        tracing::info!(stage = %self.spec.name, plugin = %self.spec.plugin.name, from = %old, to = %self.spec.plugin.short_version(), "plugin swapped");
        if let Some(status) = &self.status {
            let plugin = &self.spec.plugin;
            status.serving(&self.spec.name, &plugin.name, &plugin.version, true);
        }
    }

    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// Records how many batches wait in the stage's input queue as it takes
    /// one (`weir_stage_queued_batches`).
    pub fn record_queued(&self, batches: usize) {
        self.stats.queued.store(batches as u64, Relaxed);
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.spec.plugin
    }

    fn fresh_instance(&mut self) -> Result<&mut PluginInstance, PluginError> {
        let instance = self.new_instance()?;
        Ok(self.instance.insert(instance))
    }

    /// An instance of the serving version, initialized.
    fn new_instance(&self) -> Result<PluginInstance, PluginError> {
        let mut instance = self
            .engine
            .instantiate(&self.spec.plugin, &self.spec.instance)?;
        instance.init(&self.spec.params_json)?;
        Ok(instance)
    }

    fn dead(&self, event: Event, reason: String) -> DeadLetter {
        DeadLetter {
            event,
            reason,
            stage: Some(self.spec.name.clone()),
            plugin: Some(self.spec.plugin.name.clone()),
            plugin_version: Some(self.spec.plugin.short_version().into()),
        }
    }

    /// Runs `batch.events` through the plugin. Never fails: what the plugin
    /// refuses or chokes on becomes dead letters with the reason.
    pub fn process(&mut self, batch: &mut Batch) {
        self.take_new_version();
        let inputs = std::mem::take(&mut batch.events);
        let keyed = self.keyed.is_some();
        if inputs.is_empty() && !keyed {
            // Only source rejects: the plugin is not called (a keyed stage
            // still is: its timers may fire).
            return;
        }
        // Log lines about this batch (plugin lines, faults, dead letters)
        // carry the version serving it and the source partitions in it.
        let _span = tracing::info_span!(
            "batch",
            seq = batch.seq,
            version = %self.plugin().short_version(),
            partitions = %partitions(&inputs),
        )
        .entered();
        self.stats.record_in(inputs.len());
        let started = std::time::Instant::now();
        if keyed {
            self.process_keyed(inputs, batch);
        } else if !self.run_lanes(&inputs, batch) {
            self.stats.record_instance(0, inputs.len());
            self.run_isolating(&inputs, batch);
        }
        self.stats.record_call(started.elapsed());
        if let Some(keyed) = &self.keyed {
            self.stats.set_watermark(keyed.watermark());
        }
        if let Some(instance) = &self.instance {
            self.stats.set_memory(instance.memory_bytes());
        }
    }

    /// Why the pipeline must stop, once (the breaker tripped with `stop`).
    pub fn take_fatal(&mut self) -> Option<String> {
        self.fatal.take()
    }

    fn dead_all(&self, inputs: &[Event], reason: &str, batch: &mut Batch) {
        for event in inputs {
            batch
                .dead
                .push(self.dead(event.clone(), reason.to_string()));
        }
        self.stats.record_dead(inputs.len());
    }

    fn run_isolating(&mut self, inputs: &[Event], batch: &mut Batch) {
        if inputs.is_empty() {
            return;
        }
        if self.breaker.is_open() {
            let reason = self.breaker.reason();
            self.dead_all(inputs, &reason, batch);
            return;
        }
        let result = match self.instance.as_mut() {
            Some(instance) => instance.process(inputs),
            None => match self.fresh_instance() {
                Ok(instance) => instance.process(inputs),
                Err(err) => {
                    // The plugin cannot even start again: nothing can be
                    // processed by this stage; every event is dead-lettered.
                    let reason = format!("plugin could not be restarted: {err}");
                    tracing::error!(stage = %self.spec.name, "{reason}");
                    self.dead_all(inputs, &reason, batch);
                    return;
                }
            },
        };
        match result {
            Ok(processed) => self.absorb(inputs, processed, batch),
            Err(fault) => {
                // A trapped instance is in an undefined state: never reuse it.
                self.instance = None;
                self.stats.record_fault(&fault);
                if inputs.len() == 1 {
                    self.isolated_poison(&inputs[0], &fault, batch);
                } else {
                    // Each halving step re-runs the fault: the isolated
                    // event is logged once, above, with its position.
                    tracing::debug!(stage = %self.spec.name, events = inputs.len(), reason = %fault, "plugin fault; isolating the events that cause it");
                    let (left, right) = inputs.split_at(inputs.len() / 2);
                    self.run_isolating(left, batch);
                    self.run_isolating(right, batch);
                }
            }
        }
    }

    /// The end of a bisect (plain or keyed): `event` alone faults. It goes to
    /// the dead letters with the reason, logged once with its position, and
    /// the breaker counts it.
    fn isolated_poison(&mut self, event: &Event, fault: &CallError, batch: &mut Batch) {
        tracing::warn!(stage = %self.spec.name, position = %event.position, reason = %fault, "poison event isolated");
        batch.dead.push(self.dead(event.clone(), fault.to_string()));
        self.stats.record_dead(1);
        if self.breaker.record_fault(std::time::Instant::now()) {
            let reason = self.breaker.reason();
            match self.breaker.action() {
                BreakerAction::DeadLetter => tracing::error!(
                    stage = %self.spec.name,
                    "{reason}: tripped; every further event of this stage goes to the dead-letter output"
                ),
                BreakerAction::Stop => {
                    tracing::error!(stage = %self.spec.name, "{reason}: tripped; stopping the pipeline");
                    self.fatal = Some(format!("stage `{}`: {reason}", self.spec.name));
                }
            }
        }
    }

    fn absorb(&mut self, inputs: &[Event], processed: Processed, batch: &mut Batch) {
        let mut out = 0usize;
        for o in processed.outputs {
            let Some(route) = o.route else {
                batch.events.push(o.event);
                out += 1;
                continue;
            };
            // The one check of a route: a known output gets the event at its
            // place in the fan-out, an unknown one makes it a dead letter.
            match self.routes.resolve(&route) {
                Some(place) => {
                    batch.routed.push(place, o.event);
                    out += 1;
                }
                None => {
                    let reason = format!(
                        "the plugin routed an output to `{route}`, which is not an output of this pipeline"
                    );
                    batch.dead.push(self.dead(o.event, reason));
                    self.stats.record_dead(1);
                }
            }
        }
        self.stats.record_out(out);
        let refused = processed.errors.len();
        for (input, message) in processed.errors {
            if let Some(event) = inputs.get(input as usize) {
                batch.dead.push(self.dead(event.clone(), message));
            }
        }
        self.stats.record_dead(refused);
    }
}

/// The distinct source partitions of `events`, as `0,2,3` (in first-seen
/// order; at most 8 listed, then `…`).
fn partitions(events: &[Event]) -> String {
    let mut seen: Vec<i32> = Vec::new();
    for ev in events {
        let p = ev.position.partition;
        if !seen.contains(&p) {
            if seen.len() == 8 {
                return seen
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
                    + ",…";
            }
            seen.push(p);
        }
    }
    seen.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Drops an instance no longer serving on a thread of its own: tearing down
/// a store (freeing its memory) takes milliseconds, kept off the data path.
/// If no thread can start, it is dropped here.
fn retire(instance: PluginInstance) {
    let spawned = std::thread::Builder::new()
        .name("weir-retire".into())
        .spawn(move || drop(instance));
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "retiring the old instance inline");
    }
}
