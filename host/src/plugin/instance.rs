//! One live plugin instance: a wasmtime `Store` with its limits, created from
//! the plugin's cached `InstancePre`.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::bindings::Transform;
use super::codec::{self, BatchEncoder, Processed};
use super::component::LoadedPlugin;
use super::error::{CallError, PluginError};
use super::limits::LimitsConfig;
use super::sandbox::{Sandbox, panic_message};
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
        self.store.data().stderr.hold();
        let result = self
            .transform
            .weir_plugin_transformer()
            .call_init(&mut self.store, params_json);
        match result {
            Ok(Ok(())) => {
                self.store.data().stderr.release();
                Ok(())
            }
            Ok(Err(reason)) => {
                self.store.data().stderr.release();
                if no_params(params_json) {
                    Err(PluginError::InitFailed { name, reason })
                } else {
                    Err(PluginError::InitRefused { name, reason })
                }
            }
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
        self.store.data().stderr.hold();
        let out = match self
            .transform
            .weir_plugin_transformer()
            .call_process(&mut self.store, batch)
        {
            Ok(out) => out,
            Err(err) => return Err(self.classify(&err)),
        };
        self.store.data().stderr.release();
        codec::decode(
            out,
            events,
            self.limits.max_output_bytes(),
            self.limits.max_output_mib,
            Some(&self.provenance),
        )
    }
}

/// The function that fills the innermost frames of a trap's backtrace, if
/// one does (at least 16 captured frames, three quarters of them its own):
/// the sign of a recursion that ran out of stack.
fn recursing_function(err: &wasmtime::Error) -> Option<String> {
    let frames = err.downcast_ref::<wasmtime::WasmBacktrace>()?.frames();
    if frames.len() < 16 {
        return None;
    }
    let name = |f: &wasmtime::FrameInfo| match f.func_name() {
        Some(name) => readable(name),
        None => format!("function #{}", f.func_index()),
    };
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for f in frames {
        *counts.entry(name(f)).or_default() += 1;
    }
    let (func, count) = counts.into_iter().max_by_key(|(_, c)| *c)?;
    (count * 4 >= frames.len() * 3).then_some(func)
}

/// A function name without Rust's mangling and trailing `::h<hash>`.
fn readable(name: &str) -> String {
    let name = format!("{:#}", rustc_demangle::demangle(name));
    match name.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            path.to_string()
        }
        _ => name,
    }
}

/// The stage gives `init` no params (an empty object, or nothing).
fn no_params(params_json: &str) -> bool {
    let trimmed: String = params_json.chars().filter(|c| !c.is_whitespace()).collect();
    trimmed.is_empty() || trimmed == "{}" || trimmed == "null"
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
    /// limiter's flag, not a guess from the error's text. The call's held
    /// stderr gives a panic its message; the rest of it goes to the debug log
    /// (the stage logs the isolated fault once).
    fn classify(&mut self, err: &wasmtime::Error) -> CallError {
        let stderr = self.store.data().stderr.take_held();
        if !stderr.is_empty() {
            tracing::debug!(target: "weir::plugin", stage = %self.store.data().stage, output = ?stderr, "stderr of a failed call");
        }
        let limits = &self.limits;
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Deadline {
                limit_ms: limits.max_batch_ms,
            },
            Some(Trap::OutOfFuel) => CallError::OutOfFuel { fuel: limits.fuel },
            Some(Trap::StackOverflow) => CallError::Trap("stack overflow".into()),
            // Most recursive code keeps its frames on the plugin's own stack
            // in linear memory (1 MiB for Rust): running off its bottom is an
            // out-of-bounds access, which the backtrace shows as recursion.
            Some(Trap::MemoryOutOfBounds) => match recursing_function(err) {
                Some(func) => CallError::Trap(format!(
                    "stack overflow: unbounded recursion in `{func}` used up the plugin's \
                     stack (an out-of-bounds memory access below it)"
                )),
                None => CallError::Trap(Trap::MemoryOutOfBounds.to_string()),
            },
            Some(Trap::UnreachableCodeReached) => match panic_message(&stderr) {
                Some(message) => CallError::Trap(format!("the plugin panicked: {message}")),
                None => CallError::Trap("the plugin panicked (unreachable executed)".into()),
            },
            Some(trap) => CallError::Trap(trap.to_string()),
            None if self.store.data_mut().limiter.take_memory_refused() => CallError::OutOfMemory {
                limit_mib: limits.max_memory_mib,
            },
            None => CallError::Trap(format!("{err:#}")),
        }
    }
}
