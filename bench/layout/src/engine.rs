//! A wasmtime engine and store configured the way weir's plugin engine is
//! (`host/src/plugin/engine.rs`): component model, Cranelift `Speed`, epoch
//! interruption armed before every call, the pooling allocator, a memory
//! limiter, WASI p2 linked (guests built for `wasm32-wasip2` import parts of
//! it). What a call costs here is what it costs weir, minus weir's own code.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder,
};
use wasmtime::{Result, bail};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Epoch ticks a call may run for; nothing advances the epoch here, so this
/// only keeps the per-call arming and the checks in the compiled code.
const DEADLINE_TICKS: u64 = 1 << 40;

pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub struct Host {
    pub engine: Engine,
    pub linker: Linker<StoreState>,
}

impl Host {
    pub fn new() -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(16);
        pool.total_core_instances(64);
        pool.total_memories(32);
        pool.total_tables(64);
        pool.max_memories_per_component(8);
        pool.max_tables_per_component(16);
        pool.max_core_instances_per_component(32);
        pool.max_memory_size(4 << 30);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(Self { engine, linker })
    }

    pub fn store(&self) -> Store<StoreState> {
        let mut store = Store::new(
            &self.engine,
            StoreState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(1 << 30)
                    .trap_on_grow_failure(true)
                    .build(),
            },
        );
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        arm(&mut store);
        store
    }

    pub fn component(&self, path: &Path) -> Result<Component> {
        Component::from_file(&self.engine, path)
            .with_context(|| format!("compiling {}", path.display()))
    }
}

/// What weir does before every call.
#[inline]
pub fn arm(store: &mut Store<StoreState>) {
    store.set_epoch_deadline(DEADLINE_TICKS);
}

/// Builds the three guests for `wasm32-wasip2` (release, in the test
/// plugins' target folder, like weir's benches); returns their paths in the
/// order records, columns, packed.
pub fn build_guests() -> Result<[PathBuf; 3]> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = ws.join("target").join("test-plugins");
    let names = ["records", "columns", "packed"];
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&ws)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target);
    for name in names {
        cmd.args(["-p", &format!("layout-guest-{name}")]);
    }
    if !cmd.status().context("running cargo")?.success() {
        bail!("building the layout guests failed");
    }
    Ok(names.map(|n| target.join(format!("wasm32-wasip2/release/layout_guest_{n}.wasm"))))
}
