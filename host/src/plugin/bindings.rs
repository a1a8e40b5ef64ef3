//! The one place the WIT contract is turned into Rust types (host side).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:plugin/transform",
});

pub use self::exports::weir::plugin::transformer as guest;
pub use self::weir::plugin::types as wit;
