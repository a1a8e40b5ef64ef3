//! WebAssembly plugins: the engine, compiled-artifact cache, instances and
//! limits. Host functions the plugins import live in [`crate::host_api`].

pub mod bindings;
pub mod cache;
pub mod codec;
pub mod component;
pub mod engine;
pub mod error;
pub mod instance;
pub mod limits;
pub mod sandbox;
pub mod state;
pub mod watcher;

pub use cache::{ArtifactCache, CacheOutcome};
pub use codec::{Output, Processed};
pub use component::LoadedPlugin;
pub use engine::{EngineOptions, PluginEngine};
pub use error::{CallError, PluginError};
pub use instance::{InstanceConfig, PluginInstance};
pub use limits::LimitsConfig;
pub use sandbox::{GrantsConfig, Sandbox};
