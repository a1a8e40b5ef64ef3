//! A compiled, linked plugin: what the engine loads and every instance of
//! the plugin is made from.

use std::sync::Arc;

use super::bindings::{v1, v2};
use super::cache::CacheOutcome;
use super::state::StoreState;

/// The contract version a plugin was built against (what it exports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// `weir:plugin@0.1.x`: typed batch records.
    V0_1,
    /// `weir:plugin@0.2.0`: the packed batch, keyed state.
    V0_2,
}

impl Contract {
    /// The package version, as WIT names it (`0.1` matches every 0.1.x).
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// The linked, pre-instantiated component of one contract version.
#[derive(Clone)]
pub(crate) enum PluginPre {
    V1(v1::TransformPre<StoreState>),
    V2(v2::TransformPre<StoreState>),
}

/// A compiled, linked plugin ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The plugin's name (its file stem).
    pub name: Arc<str>,
    /// Its version: the SHA-256 of the `.wasm` bytes.
    pub version: Arc<str>,
    pub(crate) pre: PluginPre,
    pub cache: CacheOutcome,
}

impl LoadedPlugin {
    /// The version id users see: [`version_id`] of the content hash.
    pub fn short_version(&self) -> &str {
        version_id(&self.version)
    }

    /// The contract the plugin was built against.
    pub fn contract(&self) -> Contract {
        match self.pre {
            PluginPre::V1(_) => Contract::V0_1,
            PluginPre::V2(_) => Contract::V0_2,
        }
    }
}

/// A plugin's version id, the one form users see (the `weir.version.<stage>`
/// header, dead letters' `weir.plugin.version`, logs, `weir status`): the
/// first 12 hex digits of the SHA-256 of its `.wasm` file. `weir status`
/// shows the whole hash beside it as `sha256`.
pub fn version_id(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}
