//! One live plugin instance: a wasmtime `Store` with its limits, created from
//! the plugin's cached `InstancePre`.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::bindings::Transform;
use super::codec::{self, BatchEncoder, Processed};
use super::component::LoadedPlugin;
use super::error::{CallError, PluginError};
use super::limits::LimitsConfig;
use super::sandbox::Sandbox;
use super::state::StoreState;
use crate::event::{Event, Header};
use crate::inference::Infer;

/// What an instance is made for.
#[derive(Clone, Debug)]
pub struct InstanceConfig {
    /// The stage name, for log lines.
    pub stage: Arc<str>,
    pub limits: LimitsConfig,
    /// What the stage grants its plugin (nothing by default).
    pub sandbox: Arc<Sandbox>,
    /// The pipeline's models, for the `inference` import (`None`: no models
    /// declared; every call returns `unknown-model`).
    pub models: Option<Arc<dyn Infer>>,
}

impl InstanceConfig {
    /// Default limits, nothing granted.
    pub fn new(stage: &str) -> Self {
        Self {
            stage: stage.into(),
            limits: LimitsConfig::default(),
            sandbox: Arc::default(),
            models: None,
        }
    }
}

/// A plugin instance serving one stage.
pub struct PluginInstance {
    store: Store<StoreState>,
    transform: Transform,
    encoder: BatchEncoder,
    limits: LimitsConfig,
    plugin: LoadedPlugin,
    /// The engine counts fuel (some stage asked for it).
    fueled: bool,
    /// `weir.version.<stage>: <plugin version>`, added to every output.
    provenance: Header,
}

/// The provenance header name of a stage.
pub fn provenance_header(stage: &str) -> String {
    format!("weir.version.{stage}")
}

impl PluginInstance {
    pub(super) fn new(
        engine: &wasmtime::Engine,
        fueled: bool,
        epoch: bool,
        plugin: &LoadedPlugin,
        config: &InstanceConfig,
    ) -> Result<Self, PluginError> {
        let state = StoreState::new(
            config.sandbox.wasi_ctx(&config.stage, &plugin.name)?,
            config.limits.limiter(),
            config.stage.clone(),
            plugin.name.clone(),
            config.models.clone(),
        );
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        if epoch {
            store.epoch_deadline_trap();
        }
        arm(&mut store, &config.limits, fueled);
        let transform =
            plugin
                .pre
                .instantiate(&mut store)
                .map_err(|e| PluginError::Incompatible {
                    name: plugin.name.to_string(),
                    reason: format!("instantiation failed: {e:#}"),
                })?;
        Ok(Self {
            store,
            transform,
            encoder: BatchEncoder::default(),
            limits: config.limits.clone(),
            plugin: plugin.clone(),
            fueled,
            provenance: Header::new(
                provenance_header(&config.stage),
                plugin.short_version().as_bytes().to_vec(),
            ),
        })
    }

    /// Linear memory the instance holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limiter.memory_bytes()
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// Runs the plugin's `init` with the stage params (a JSON object).
    pub fn init(&mut self, params_json: &str) -> Result<(), PluginError> {
        arm(&mut self.store, &self.limits, self.fueled);
        let name = self.plugin.name.to_string();
        match self
            .transform
            .weir_plugin_transformer()
            .call_init(&mut self.store, params_json)
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(PluginError::InitRefused { name, reason }),
            Err(err) => Err(PluginError::InitFault {
                name,
                reason: self.classify(&err).to_string(),
            }),
        }
    }

    /// Runs one batch. On `Err` the instance must not be used again.
    pub fn process(&mut self, events: &[Event]) -> Result<Processed, CallError> {
        arm(&mut self.store, &self.limits, self.fueled);
        let batch = self.encoder.encode(events);
        let out = match self
            .transform
            .weir_plugin_transformer()
            .call_process(&mut self.store, batch)
        {
            Ok(out) => out,
            Err(err) => return Err(self.classify(&err)),
        };
        codec::decode(
            out,
            events,
            self.limits.max_output_bytes(),
            self.limits.max_output_mib,
            Some(&self.provenance),
        )
    }
}

/// Sets the limits of the next call.
fn arm(store: &mut Store<StoreState>, limits: &LimitsConfig, fueled: bool) {
    store.data_mut().limiter.take_memory_refused();
    store.set_epoch_deadline(limits.deadline_ticks());
    if fueled {
        let fuel = if limits.fuel == 0 {
            u64::MAX
        } else {
            limits.fuel
        };
        // Only fails when the engine does not count fuel, which `fueled` rules out.
        let _ = store.set_fuel(fuel);
    }
}

impl PluginInstance {
    /// Turns a wasmtime error from a guest call into a fault with a reason a
    /// person can act on. A memory growth the limiter refused is the
    /// limiter's flag, not a guess from the error's text.
    fn classify(&mut self, err: &wasmtime::Error) -> CallError {
        let limits = &self.limits;
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Deadline {
                limit_ms: limits.max_batch_ms,
            },
            Some(Trap::OutOfFuel) => CallError::OutOfFuel { fuel: limits.fuel },
            Some(Trap::StackOverflow) => CallError::Trap("stack overflow".into()),
            Some(Trap::UnreachableCodeReached) => {
                CallError::Trap("the plugin panicked (unreachable executed)".into())
            }
            Some(trap) => CallError::Trap(trap.to_string()),
            None if self.store.data_mut().limiter.take_memory_refused() => CallError::OutOfMemory {
                limit_mib: limits.max_memory_mib,
            },
            None => CallError::Trap(format!("{err:#}")),
        }
    }
}
