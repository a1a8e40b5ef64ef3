//! Benchmark plugin `passthrough`: returns every event unchanged. What it
//! costs is the call plus moving the batch in and back out.

use weir_sdk::Event;

/// Returns the event as it came.
#[weir_sdk::map]
pub fn passthrough(ev: Event) -> Event {
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_event() {
        assert_eq!(passthrough(Event::new("x")).value(), b"x");
    }
}
