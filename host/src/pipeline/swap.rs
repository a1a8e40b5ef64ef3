//! Where a new plugin version waits for its stage: the reloader prepares it
//! (compiled, instantiated, initialized, smoke-tested) off the data path and
//! leaves it in the stage's slot; the stage takes it at its next batch
//! boundary.

use std::sync::{Arc, Mutex};

use crate::plugin::{LoadedPlugin, PluginInstance};

/// A version ready to serve, waiting for its stage's next batch boundary.
pub struct Prepared {
    pub plugin: LoadedPlugin,
    pub instance: PluginInstance,
}

/// Where the reloader leaves a prepared version for a stage. A newer one
/// replaces one the stage has not taken yet.
pub type SwapSlot = Arc<Mutex<Option<Prepared>>>;
