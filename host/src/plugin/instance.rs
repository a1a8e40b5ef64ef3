//! One live plugin instance: a wasmtime `Store` with its limits, created from
//! the plugin's cached `InstancePre`.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::Transform;
use super::codec::{self, BatchEncoder, Processed};
use super::engine::{EPOCH_TICK, LoadedPlugin};
use super::error::{CallError, PluginError};
use super::limits::LimitsConfig;
use super::sandbox::Sandbox;
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

/// The data of a plugin's `Store`: WASI (with nothing granted), the limits,
/// and who it is for the log.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: TrackedLimits,
    pub(crate) stage: Arc<str>,
    pub(crate) plugin: Arc<str>,
    pub(crate) models: Option<Arc<dyn Infer>>,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The store's limits, also counting the linear memory the instance holds
/// (for the per-instance memory metric).
struct TrackedLimits {
    limits: StoreLimits,
    memory_bytes: usize,
}

impl wasmtime::ResourceLimiter for TrackedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self.memory_bytes.saturating_add(desired - current);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
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

fn deadline_ticks(limits: &LimitsConfig) -> u64 {
    let tick = EPOCH_TICK.as_millis().max(1) as u64;
    limits.max_batch_ms.div_ceil(tick).max(1)
}

impl PluginInstance {
    pub(super) fn new(
        engine: &wasmtime::Engine,
        fueled: bool,
        epoch: bool,
        plugin: &LoadedPlugin,
        config: &InstanceConfig,
    ) -> Result<Self, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(config.limits.max_memory_bytes())
            .instances(config.limits.max_instances as usize)
            .tables(config.limits.max_tables as usize)
            .memories(8)
            .table_elements(1 << 20)
            .trap_on_grow_failure(true)
            .build();
        let state = StoreState {
            wasi: config.sandbox.wasi_ctx(&config.stage, &plugin.name)?,
            table: ResourceTable::new(),
            limits: TrackedLimits {
                limits,
                memory_bytes: 0,
            },
            stage: config.stage.clone(),
            plugin: plugin.name.clone(),
            models: config.models.clone(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
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
        self.store.data().limits.memory_bytes
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
                reason: classify(&err, &self.limits).to_string(),
            }),
        }
    }

    /// Runs one batch. On `Err` the instance must not be used again.
    pub fn process(&mut self, events: &[Event]) -> Result<Processed, CallError> {
        arm(&mut self.store, &self.limits, self.fueled);
        let batch = self.encoder.encode(events);
        let out = self
            .transform
            .weir_plugin_transformer()
            .call_process(&mut self.store, batch)
            .map_err(|err| classify(&err, &self.limits))?;
        codec::decode(
            out,
            events,
            self.limits.max_output_bytes(),
            self.limits.max_output_mib,
            Some(&self.provenance),
        )
    }
}

/// Sets the CPU limits of the next call.
fn arm(store: &mut Store<StoreState>, limits: &LimitsConfig, fueled: bool) {
    store.set_epoch_deadline(deadline_ticks(limits));
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

/// Turns a wasmtime error from a guest call into a fault with a reason a
/// person can act on.
fn classify(err: &wasmtime::Error, limits: &LimitsConfig) -> CallError {
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
        None => {
            let text = format!("{err:#}");
            if text.contains("grow") && text.contains("memory") {
                CallError::OutOfMemory {
                    limit_mib: limits.max_memory_mib,
                }
            } else {
                CallError::Trap(text)
            }
        }
    }
}
