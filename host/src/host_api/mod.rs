//! What plugins import from the host, one module per WIT interface. Each
//! impl serves both contract versions (0.1.x and 0.2.0 have the same
//! `log`, `clock` and `inference`, generated as distinct Rust types).

mod clock;
mod infer;
mod log;

use crate::plugin::StoreState;

/// `weir:plugin/types` has only types; its (empty) host trait is required.
impl crate::plugin::wit_types::Host for StoreState {}
impl crate::plugin::wit2_types::Host for StoreState {}
