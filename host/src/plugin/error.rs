//! Errors of loading plugins (refusals) and of calling them (faults).

use std::path::PathBuf;

/// A plugin could not be loaded or started. The stage keeps its previous
/// version, if it had one; at start-up this is a clear error.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// (The I/O error is in the message, not a `source`: a chain printed
    /// with `{:#}` would say it twice.)
    #[error("cannot read plugin file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{name}: not a WebAssembly component: {reason}")]
    NotAComponent { name: String, reason: String },
    #[error("{name}: this host cannot run it: {reason}")]
    Incompatible { name: String, reason: String },
    #[error("{name}: init refused the stage params: {reason}")]
    InitRefused { name: String, reason: String },
    /// `init` returned an error although the stage gives no params.
    #[error("{name}: init returned an error (the stage gives it no params): {reason}")]
    InitFailed { name: String, reason: String },
    #[error("{name}: init failed: {reason}")]
    InitFault { name: String, reason: String },
    #[error("plugin engine: {0}")]
    Engine(String),
}

/// Why a plugin call failed as a whole. The instance is unusable afterwards
/// (a trap leaves it in an undefined state): the stage makes a fresh one and
/// isolates the events that caused the fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran over the stage's `max_batch_ms`.
    #[error("plugin exceeded its CPU time limit ({limit_ms} ms per batch)")]
    Deadline { limit_ms: u64 },
    /// The call burned its `fuel`.
    #[error("plugin ran out of fuel ({fuel} units per batch)")]
    OutOfFuel { fuel: u64 },
    /// The plugin tried to grow its memory over `max_memory_mib`.
    #[error("plugin exceeded its memory limit ({limit_mib} MiB)")]
    OutOfMemory { limit_mib: u32 },
    /// Any other trap: a panic (`unreachable`), a stack overflow, an
    /// out-of-bounds access...
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin returned more output bytes than `max_output_mib`.
    #[error("plugin output of {bytes} bytes exceeds its limit ({limit_mib} MiB per batch)")]
    OutputTooLarge { bytes: usize, limit_mib: u32 },
    /// The plugin returned an output batch that breaks the contract
    /// (a span out of range, an unknown input index...).
    #[error("plugin returned a malformed output batch: {0}")]
    Malformed(String),
    /// The host could not make the call (a batch over the format's 4 GiB,
    /// a keyed call of a plugin that is not keyed...). Not the plugin's fault.
    #[error("the host could not call the plugin: {0}")]
    Host(String),
}
