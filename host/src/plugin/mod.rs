//! WebAssembly plugins: the engine, compiled-artifact cache, instances and
//! limits. Host functions the plugins import live in [`crate::host_api`].

mod bindings;
mod cache;
mod codec;
mod component;
mod engine;
mod error;
mod instance;
mod keyed;
mod limits;
mod sandbox;
mod state;
mod watcher;

pub(crate) use bindings::{
    wit_clock, wit_inference, wit_log, wit_types, wit2_clock, wit2_inference, wit2_log, wit2_types,
};
pub use cache::{ArtifactCache, CacheOutcome, content_hash};
pub use codec::{Output, Processed};
pub use component::{Contract, LoadedPlugin, version_id};
pub use engine::{EngineOptions, PluginEngine, lower_this_thread_priority};
pub use error::{CallError, PluginError};
pub use instance::{InstanceConfig, PluginInstance};
pub use keyed::{KeyedInput, KeyedOutput, NO_KEY, PluginInfo, TimerOp};
pub use limits::LimitsConfig;
pub use sandbox::{DirGrant, DirMode, GrantsConfig, Sandbox};
pub(crate) use state::StoreState;
pub use watcher::{Baseline, Change, ReloadConfig, WatchMode, watch, watch_matching};
