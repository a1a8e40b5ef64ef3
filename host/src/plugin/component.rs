//! A compiled, linked plugin: what the engine loads and every instance of
//! the plugin is made from.

use std::sync::Arc;

use super::bindings::TransformPre;
use super::cache::CacheOutcome;
use super::state::StoreState;

/// A compiled, linked plugin ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The plugin's name (its file stem).
    pub name: Arc<str>,
    /// Its version: the SHA-256 of the `.wasm` bytes.
    pub version: Arc<str>,
    pub(crate) pre: TransformPre<StoreState>,
    pub cache: CacheOutcome,
}

impl LoadedPlugin {
    /// The first 12 hex digits of the version, for logs.
    pub fn short_version(&self) -> &str {
        self.version.get(..12).unwrap_or(&self.version)
    }
}
