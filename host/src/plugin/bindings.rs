//! The one place the WIT contracts are turned into Rust types (host side):
//! one `bindgen!` per contract version, linked side by side.
//!
//! - `v1`: `weir:plugin@0.1.1` (frozen in `wit/released/0.1.1`), the widest
//!   0.1.x world, `transform-with-inference`. A plugin built against
//!   `transform@0.1.0` (or 0.1.1) imports a subset of it, and wasmtime
//!   matches semver-compatible versions (0.1.0 ↔ 0.1.1) on imports and
//!   exports, so every released 0.1.x world runs unchanged.
//! - `v2`: `weir:plugin@0.2.0` (`wit/weir.wit`): the packed batch and keyed
//!   state. 0.2 is not semver-compatible with 0.1, so its interfaces are
//!   separate names in the linker; a component picks one by what it exports.

/// One contract version's world, `transform-with-inference`, with its
/// exports named alike in every version.
macro_rules! contract {
    ($path:literal) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "weir:plugin/transform-with-inference",
        });

        pub use self::TransformWithInference as Transform;
        pub use self::TransformWithInferencePre as TransformPre;
    };
}

/// `weir:plugin@0.1.1`.
pub mod v1 {
    contract!("../wit/released/0.1.1");
    pub use self::weir::plugin::types as wit;
}

/// `weir:plugin@0.2.0`.
pub mod v2 {
    contract!("../wit");
}

pub use self::v1::weir::plugin::clock as wit_clock;
pub use self::v1::weir::plugin::inference as wit_inference;
pub use self::v1::weir::plugin::log as wit_log;
pub use self::v1::weir::plugin::types as wit_types;
pub use self::v2::weir::plugin::clock as wit2_clock;
pub use self::v2::weir::plugin::inference as wit2_inference;
pub use self::v2::weir::plugin::log as wit2_log;
pub use self::v2::weir::plugin::types as wit2_types;
