//! What plugins import from the host, one module per WIT interface.

pub mod clock;
pub mod infer;
pub mod log;

use crate::plugin::state::StoreState;

/// `weir:plugin/types` has only types; its (empty) host trait is required.
impl crate::plugin::bindings::weir::plugin::types::Host for StoreState {}
