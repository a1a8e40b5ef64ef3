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
    /// The version id users see: [`version_id`] of the content hash.
    pub fn short_version(&self) -> &str {
        version_id(&self.version)
    }
}

/// A plugin's version id, the one form users see (the `weir.version.<stage>`
/// header, dead letters' `weir.plugin.version`, logs, `weir status`): the
/// first 12 hex digits of the SHA-256 of its `.wasm` file. `weir status`
/// shows the whole hash beside it as `sha256`.
pub fn version_id(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}
