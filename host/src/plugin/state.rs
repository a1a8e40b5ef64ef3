//! The data of a plugin instance's `Store`: what the host functions a plugin
//! imports can reach.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::Limiter;
use super::sandbox::PluginStderr;
use crate::inference::Infer;

/// WASI (with only what the stage grants), the limiter, the pipeline's
/// models, and who the instance is for the log.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stage: Arc<str>,
    pub(crate) plugin: Arc<str>,
    pub(crate) models: Option<Arc<dyn Infer>>,
    pub(crate) stderr: PluginStderr,
}

impl StoreState {
    pub(crate) fn new(
        (wasi, stderr): (WasiCtx, PluginStderr),
        limiter: Limiter,
        stage: Arc<str>,
        plugin: Arc<str>,
        models: Option<Arc<dyn Infer>>,
    ) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            stage,
            plugin,
            models,
            stderr,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
