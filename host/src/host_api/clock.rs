//! `weir:plugin/clock`.

use crate::plugin::bindings::weir::plugin::clock::Host;
use crate::plugin::state::StoreState;

impl Host for StoreState {
    fn now_ms(&mut self) -> i64 {
        crate::event::now_ms()
    }
}
