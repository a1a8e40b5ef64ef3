//! Benchmark plugin `drop-all`: filters every event out. What it costs is
//! the call plus moving the batch into the plugin (and an empty one back).

use weir_sdk::Event;

/// Keeps nothing.
#[weir_sdk::filter]
pub fn drop_all(_ev: &Event) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_nothing() {
        assert!(!drop_all(&Event::new("x")));
    }
}
