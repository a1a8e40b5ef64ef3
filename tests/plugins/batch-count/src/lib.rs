//! Test plugin `batch-count`: a whole-batch function; emits every input event
//! unchanged plus the header `batch-size` (the number of events in the batch).

use weir_sdk::{Event, Output, Result};

/// Stamps every event with the size of its batch.
#[weir_sdk::batch]
pub fn count(events: Vec<Event>) -> Vec<Result<Vec<Output>>> {
    let size = events.len().to_string();
    events
        .into_iter()
        .map(|ev| {
            Ok(vec![Output::new(
                ev.with_header("batch-size", size.as_bytes()),
            )])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_result_per_event_in_order() {
        let events = vec![Event::new("a"), Event::new("b"), Event::new("c")];
        let results = count(events);
        assert_eq!(results.len(), 3);
        for (result, value) in results.into_iter().zip(["a", "b", "c"]) {
            let outputs = result.unwrap();
            assert_eq!(outputs.len(), 1);
            assert_eq!(outputs[0].event().value(), value.as_bytes());
            assert_eq!(outputs[0].event().header_str("batch-size"), Some("3"));
        }
    }
}
