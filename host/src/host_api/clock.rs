//! `weir:plugin/clock`.

use crate::plugin::StoreState;

macro_rules! clock_host {
    ($wit:path) => {
        impl $wit for StoreState {
            fn now_ms(&mut self) -> i64 {
                crate::event::now_ms()
            }
        }
    };
}

clock_host!(crate::plugin::wit_clock::Host);
clock_host!(crate::plugin::wit2_clock::Host);
