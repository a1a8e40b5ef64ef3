//! One live plugin instance: a wasmtime `Store` with its limits, created from
//! the plugin's cached `InstancePre`.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use bytes::Bytes;

use super::bindings::{v1, v2};
use super::codec::Processed;
use super::codec::packed::{self, PackedEncoder};
use super::codec::records::{self, BatchEncoder};
use super::component::{LoadedPlugin, PluginPre};
use super::error::{CallError, PluginError};
use super::keyed::{KeyedInput, KeyedOutput, PluginInfo};
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

/// An instance's exports, and the encoder of its contract version.
enum Bound {
    V1(v1::Transform, BatchEncoder),
    V2(v2::Transform, PackedEncoder),
}

/// A plugin instance serving one stage.
pub struct PluginInstance {
    store: Store<StoreState>,
    bound: Bound,
    /// What `init` said (0.1.x: not keyed).
    info: PluginInfo,
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
        let failed = |e: wasmtime::Error| PluginError::Incompatible {
            name: plugin.name.to_string(),
            reason: format!("instantiation failed: {e:#}"),
        };
        let bound = match &plugin.pre {
            PluginPre::V1(pre) => Bound::V1(
                pre.instantiate(&mut store).map_err(failed)?,
                BatchEncoder::default(),
            ),
            PluginPre::V2(pre) => Bound::V2(
                pre.instantiate(&mut store).map_err(failed)?,
                PackedEncoder::default(),
            ),
        };
        Ok(Self {
            store,
            bound,
            info: PluginInfo::default(),
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

    /// What the plugin said about itself in `init` (before `init`, and
    /// for 0.1.x plugins: not keyed).
    pub fn info(&self) -> PluginInfo {
        self.info
    }

    /// Runs the plugin's `init` with the stage params (a JSON object).
    pub fn init(&mut self, params_json: &str) -> Result<(), PluginError> {
        arm(&mut self.store, &self.limits, self.fueled);
        let name = self.plugin.name.to_string();
        let bound = &self.bound;
        let called = held_call(&mut self.store, &self.limits, |store| match bound {
            Bound::V1(t, _) => t
                .weir_plugin_transformer()
                .call_init(store, params_json)
                .map(|r| r.map(|()| PluginInfo::default())),
            Bound::V2(t, _) => t
                .weir_plugin_transformer()
                .call_init(store, params_json)
                .map(|r| r.map(|info| PluginInfo { keyed: info.keyed })),
        });
        match called {
            Ok(Ok(info)) => {
                self.info = info;
                Ok(())
            }
            Ok(Err(reason)) if no_params(params_json) => {
                Err(PluginError::InitFailed { name, reason })
            }
            Ok(Err(reason)) => Err(PluginError::InitRefused { name, reason }),
            Err(fault) => Err(PluginError::InitFault {
                name,
                reason: fault.to_string(),
            }),
        }
    }

    /// Runs one batch. On `Err` the instance must not be used again. A keyed
    /// plugin called this way sees no state (and may not write any).
    pub fn process(&mut self, events: &[Event]) -> Result<Processed, CallError> {
        arm(&mut self.store, &self.limits, self.fueled);
        let (max, mib) = (self.limits.max_output_bytes(), self.limits.max_output_mib);
        match &mut self.bound {
            Bound::V1(t, encoder) => {
                let batch = encoder.encode(events);
                let out = held_call(&mut self.store, &self.limits, |store| {
                    t.weir_plugin_transformer().call_process(store, batch)
                })?;
                records::decode(out, events, max, mib, Some(&self.provenance))
            }
            Bound::V2(t, encoder) => {
                let batch = encoder.encode(events, None)?;
                let out = held_call(&mut self.store, &self.limits, |store| {
                    t.weir_plugin_transformer().call_process(store, batch)
                })?;
                packed::decode(out, events, None, max, mib, Some(&self.provenance))
                    .map(|d| d.processed)
            }
        }
    }

    /// Runs one batch of a keyed plugin with the state of its keys, the
    /// watermark and the fired timers. Same limits and the same fault rule
    /// as [`PluginInstance::process`]: on `Err` the instance must not be
    /// used again.
    pub fn process_keyed(
        &mut self,
        events: &[Event],
        keyed: &KeyedInput,
    ) -> Result<KeyedOutput, CallError> {
        if !self.info.keyed {
            return Err(CallError::Host(format!(
                "plugin {} is not keyed (its init did not say so)",
                self.plugin.name
            )));
        }
        arm(&mut self.store, &self.limits, self.fueled);
        let (max, mib) = (self.limits.max_output_bytes(), self.limits.max_output_mib);
        let Bound::V2(t, encoder) = &mut self.bound else {
            return Err(CallError::Host("a 0.1.x plugin cannot be keyed".into()));
        };
        let batch = encoder.encode(events, Some(keyed))?;
        let out = held_call(&mut self.store, &self.limits, |store| {
            t.weir_plugin_transformer().call_process(store, batch)
        })?;
        let decoded = packed::decode(
            out,
            events,
            Some(keyed.fired.len()),
            max,
            mib,
            Some(&self.provenance),
        )?;
        let mut result = decoded.keyed;
        result.outputs = decoded.processed.outputs;
        result.errors = decoded.processed.errors;
        Ok(result)
    }

    /// Asks the plugin whether it can read these stored (key, value) pairs
    /// (a keyed plugin decodes each value as its state type). `Err`: the
    /// first failure, or the fault of the call (the instance must then not
    /// be used again). Plugins that are not keyed accept any sample.
    pub fn check_state(&mut self, sample: &[(Bytes, Bytes)]) -> Result<(), String> {
        arm(&mut self.store, &self.limits, self.fueled);
        let Bound::V2(t, encoder) = &mut self.bound else {
            return Ok(());
        };
        let buf = encoder.encode_sample(sample).map_err(|e| e.to_string())?;
        held_call(&mut self.store, &self.limits, |store| {
            t.weir_plugin_transformer().call_check_state(store, buf)
        })
        .map_err(|fault| fault.to_string())?
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

/// Runs one guest call with the plugin's stderr held: released to the log
/// when the call returns, kept for [`classify`] when it faults.
fn held_call<R>(
    store: &mut Store<StoreState>,
    limits: &LimitsConfig,
    call: impl FnOnce(&mut Store<StoreState>) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    store.data().stderr.hold();
    match call(store) {
        Ok(out) => {
            store.data().stderr.release();
            Ok(out)
        }
        Err(err) => Err(classify(store, limits, &err)),
    }
}

/// Turns a wasmtime error from a guest call into a fault with a reason a
/// person can act on. A memory growth the limiter refused is the
/// limiter's flag, not a guess from the error's text. The call's held
/// stderr gives a panic its message; the rest of it goes to the debug log
/// (the stage logs the isolated fault once).
fn classify(
    store: &mut Store<StoreState>,
    limits: &LimitsConfig,
    err: &wasmtime::Error,
) -> CallError {
    let stderr = store.data().stderr.take_held();
    if !stderr.is_empty() {
        tracing::debug!(target: "weir::plugin", stage = %store.data().stage, output = ?stderr, "stderr of a failed call");
    }
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
        None if store.data_mut().limiter.take_memory_refused() => CallError::OutOfMemory {
            limit_mib: limits.max_memory_mib,
        },
        None => CallError::Trap(format!("{err:#}")),
    }
}
