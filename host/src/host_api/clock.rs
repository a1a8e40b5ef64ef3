//! `weir:plugin/clock`.

use crate::plugin::StoreState;
use crate::plugin::wit_clock::Host;

impl Host for StoreState {
    fn now_ms(&mut self) -> i64 {
        crate::event::now_ms()
    }
}
