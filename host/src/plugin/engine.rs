//! The plugin engine: one wasmtime `Engine` and `Linker` per host, set up the
//! way untrusted code needs it by default (epoch interruption, pooling
//! allocator when the OS allows it, memory limits per store), plus the
//! compiled-artifact cache.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::bindings::{v1, v2};
use super::cache::{ArtifactCache, CacheOutcome, content_hash};
use super::component::{LoadedPlugin, PluginPre};
use super::error::PluginError;
use super::instance::{InstanceConfig, PluginInstance};
use super::limits::EPOCH_TICK;
use super::state::StoreState;

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Use the pooling instance allocator (faster instantiation; falls back
    /// to on-demand allocation if the OS refuses the reservation).
    pub pooling: bool,
    /// Where compiled plugins are cached; `None` compiles every time.
    pub cache: Option<ArtifactCache>,
    /// Count fuel (needed when any stage sets `limits.fuel`; costs speed on
    /// every stage, so it is off unless asked for).
    pub fuel: bool,
    /// Epoch interruption (the per-batch time limit). Always on in `weir`;
    /// off only to measure what it costs (the limits benchmark).
    pub epoch_interruption: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            pooling: true,
            cache: None,
            fuel: false,
            epoch_interruption: true,
        }
    }
}

/// Advances the engine's epoch until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "could not start the epoch thread: plugin deadlines will not fire");
        }
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The host's plugin engine. Share it behind an `Arc`.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: Option<ArtifactCache>,
    fuel: bool,
    epoch: bool,
    _ticker: EpochTicker,
}

/// The nice value of background compilation threads (0 = normal, 19 = lowest).
const COMPILE_NICE: i32 = 10;

/// Makes Cranelift's worker threads (rayon's global pool, which nothing on
/// the data path uses) run at a lower OS priority, so compiling a new plugin
/// version during a hot reload takes spare CPU instead of stalling the stages
/// on a small machine. Once per process; a no-op where the pool already exists.
fn lower_compile_priority() {
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("weir-compile-{i}"))
        .start_handler(|_| lower_this_thread_priority())
        .build_global();
    if let Err(e) = built {
        tracing::debug!(error = %e, "compile thread pool already set up");
    }
}

/// Lowers the calling thread's priority to [`COMPILE_NICE`] (Linux: the nice
/// value is per thread). Best effort: failure is logged, nothing else.
pub fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, COMPILE_NICE)
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a compile thread's priority");
        }
    }
}

fn base_config(options: &EngineOptions) -> Config {
    let mut config = Config::new();
    config.consume_fuel(options.fuel);
    config.wasm_component_model(true);
    config.epoch_interruption(options.epoch_interruption);
    config.cranelift_opt_level(OptLevel::Speed);
    config
}

fn pooling_config() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    // Room for a few dozen live plugin instances (stages, swaps in progress,
    // fresh instances after faults). Memories are reserved, not committed.
    pool.total_component_instances(128);
    pool.total_core_instances(512);
    pool.total_memories(256);
    pool.total_tables(512);
    pool.max_memories_per_component(8);
    pool.max_tables_per_component(16);
    pool.max_core_instances_per_component(32);
    pool.max_memory_size(4 << 30);
    pool
}

impl PluginEngine {
    pub fn new(options: EngineOptions) -> Result<Self, PluginError> {
        lower_compile_priority();
        let engine = if options.pooling {
            let mut config = base_config(&options);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config()));
            match Engine::new(&config) {
                Ok(engine) => engine,
                Err(err) => {
                    tracing::warn!(error = %err, "pooling allocator unavailable; using on-demand allocation");
                    Engine::new(&base_config(&options))
                        .map_err(|e| PluginError::Engine(e.to_string()))?
                }
            }
        } else {
            Engine::new(&base_config(&options)).map_err(|e| PluginError::Engine(e.to_string()))?
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Engine(format!("linking WASI: {e}")))?;
        // Both contract versions side by side: their interfaces have
        // different (semver-incompatible) names.
        v1::Transform::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("linking host API 0.1: {e}")))?;
        v2::Transform::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("linking host API 0.2: {e}")))?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            fuel: options.fuel,
            epoch: options.epoch_interruption,
            cache: options.cache,
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads `path`; the plugin's name is the file stem.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        let wasm = std::fs::read(path).map_err(|error| PluginError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.load_bytes(&name, &wasm)
    }

    /// Compiles (or fetches from the cache) and links a plugin, checking that
    /// its world fits this host: every import it needs is provided, and it
    /// exports `weir:plugin/transformer@0.2.0` or `@0.1.x` (which one picks
    /// the contract the instances speak).
    pub fn load_bytes(&self, name: &str, wasm: &[u8]) -> Result<LoadedPlugin, PluginError> {
        check_component_header(name, wasm)?;
        let version = content_hash(wasm);
        let (component, cache) = match &self.cache {
            Some(cache) => cache.load(&self.engine, wasm, &version),
            None => Component::new(&self.engine, wasm).map(|c| (c, CacheOutcome::Bypassed)),
        }
        .map_err(|e| PluginError::NotAComponent {
            name: name.to_string(),
            reason: format!("{e:#}"),
        })?;
        let pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Incompatible {
                    name: name.to_string(),
                    reason: format!("{e:#}"),
                })?;
        let pre = match v2::TransformPre::new(pre.clone()) {
            Ok(pre) => PluginPre::V2(pre),
            Err(_) => PluginPre::V1(v1::TransformPre::new(pre).map_err(|e| {
                PluginError::Incompatible {
                    name: name.to_string(),
                    reason: format!(
                        "{e:#} (this host runs plugins that export weir:plugin/transformer@0.2.0 or @0.1.x)"
                    ),
                }
            })?),
        };
        Ok(LoadedPlugin {
            name: name.into(),
            version: version.into(),
            pre,
            cache,
        })
    }

    /// A fresh instance of `plugin` for a stage, not yet initialized.
    pub fn instantiate(
        &self,
        plugin: &LoadedPlugin,
        config: &InstanceConfig,
    ) -> Result<PluginInstance, PluginError> {
        PluginInstance::new(&self.engine, self.fuel, self.epoch, plugin, config)
    }
}

/// A quick, clear refusal for files that are not components at all. The
/// preamble is the magic `\0asm` and a 4-byte version: `01 00 00 00` for a
/// core module, `0d 00 01 00` (version 13, layer 1) for a component.
fn check_component_header(name: &str, wasm: &[u8]) -> Result<(), PluginError> {
    const MAGIC: &[u8] = b"\0asm";
    const MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];
    let refuse = |reason: String| {
        Err(PluginError::NotAComponent {
            name: name.to_string(),
            reason,
        })
    };
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        return refuse(format!(
            "the file is not WebAssembly (it does not start with the magic bytes `\\0asm`; {} bytes)",
            wasm.len()
        ));
    }
    if wasm[4..8] == MODULE {
        return refuse(
            "this is a core WebAssembly module, not a component: build it for \
             the wasm32-wasip2 target (`weir plugin build`)"
                .into(),
        );
    }
    if wasm[6..8] != COMPONENT_LAYER {
        return refuse(format!(
            "unknown WebAssembly binary version {:02x} {:02x} {:02x} {:02x} (neither a core \
             module, 01 00 00 00, nor a component, 0d 00 01 00): the file is damaged or \
             from an unsupported toolchain",
            wasm[4], wasm[5], wasm[6], wasm[7]
        ));
    }
    Ok(())
}
