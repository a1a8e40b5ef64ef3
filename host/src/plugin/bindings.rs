//! The one place the WIT contract is turned into Rust types (host side).
//!
//! The host links the widest world, `transform-with-inference@0.1.1`: a plugin
//! built against `transform@0.1.0` (or 0.1.1) imports a subset of it, and
//! wasmtime matches semver-compatible versions (0.1.0 ↔ 0.1.1) on both imports
//! and exports, so every released world runs unchanged.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:plugin/transform-with-inference",
});

pub use self::TransformWithInference as Transform;
pub use self::TransformWithInferencePre as TransformPre;
pub use self::weir::plugin::clock as wit_clock;
pub use self::weir::plugin::inference as wit_inference;
pub use self::weir::plugin::log as wit_log;
pub use self::weir::plugin::types as wit;
pub use self::weir::plugin::types as wit_types;
