//! What plugins import from the host, one module per WIT interface.

mod clock;
mod infer;
mod log;

use crate::plugin::StoreState;

/// `weir:plugin/types` has only types; its (empty) host trait is required.
impl crate::plugin::wit_types::Host for StoreState {}
