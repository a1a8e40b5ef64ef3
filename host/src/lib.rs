//! weir: a stream processor whose transforms are sandboxed WebAssembly
//! components and whose models run natively in the host.
//!
//! Layout: [`source`] → [`pipeline`] (micro-batcher, [`plugin`] stages, dead
//! letters, acknowledgement) → [`sink`], with [`inference`] for the models a
//! plugin calls and [`telemetry`] for the counters and their exporters;
//! [`config`] reads the pipeline file, [`app`] assembles, [`commands`] are the
//! command line. The layers, what each may import, and one event's walk are
//! in `docs/architecture.md`.

pub mod app;
pub mod commands;
pub mod config;
pub mod endpoint;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
mod host_api;
pub mod inference;
pub(crate) mod json_check;
pub mod json_pointer;
pub mod kafka;
pub mod paths;
pub mod pipeline;
pub mod plugin;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
pub mod validate;
