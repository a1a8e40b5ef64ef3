//! Test plugin `upper`: ASCII-uppercases the value of every event, in place.
//! Byte-level, no JSON: the throughput benchmark plugin.

use weir_sdk::{Event, Result};

/// Uppercases the value's ASCII letters; other bytes are unchanged.
#[weir_sdk::map]
pub fn upper(mut ev: Event) -> Result<Event> {
    ev.value_mut().make_ascii_uppercase();
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercases_ascii_only() {
        let ev = Event::new("héllo, World 42").with_key("k");
        let out = upper(ev).unwrap();
        assert_eq!(out.value_str().unwrap(), "HéLLO, WORLD 42");
        assert_eq!(out.key(), Some(&b"k"[..]));
    }
}
