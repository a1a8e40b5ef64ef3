//! WebAssembly plugins: the engine, compiled-artifact cache, instances and
//! limits. Host functions the plugins import live in [`crate::host_api`].

pub mod bindings;
pub mod cache;
pub mod codec;
pub mod engine;
pub mod error;
pub mod instance;
pub mod limits;
pub mod sandbox;
pub mod watcher;

pub use cache::{ArtifactCache, CacheOutcome};
pub use codec::{Output, Processed};
pub use engine::{EngineOptions, LoadedPlugin, PluginEngine};
pub use error::{CallError, PluginError};
pub use instance::{InstanceConfig, PluginInstance};
pub use limits::LimitsConfig;
pub use sandbox::{GrantsConfig, Sandbox};
