//! Test plugin `fail-some`: fails the events whose JSON value has
//! `"poison": true` (they go to the dead-letter output with a message starting
//! `poison:`), passes every other event through (non-JSON too) with the header
//! `seen-by: fail-some`.

use weir_sdk::serde_json::Value;
use weir_sdk::{Event, Result};

/// Fails poison events; tags and passes the others.
#[weir_sdk::map]
pub fn fail_some(mut ev: Event) -> Result<Event> {
    if let Ok(Value::Object(fields)) = ev.json::<Value>()
        && fields.get("poison") == Some(&Value::Bool(true))
    {
        let position = ev.position();
        weir_sdk::bail!(
            "poison: event {}[{}]@{} is marked \"poison\": true",
            position.stream(),
            position.partition(),
            position.offset()
        );
    }
    ev.set_header("seen-by", "fail-some");
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_fails() {
        let err = fail_some(Event::new(r#"{"id": 1, "poison": true}"#)).unwrap_err();
        assert!(err.message().starts_with("poison: "), "{err}");
    }

    #[test]
    fn others_pass_tagged() {
        for value in [
            r#"{"id": 1, "poison": false}"#,
            r#"{"id": 2}"#,
            "not json",
            "[1]",
        ] {
            let ev = fail_some(Event::new(value)).unwrap();
            assert_eq!(ev.value(), value.as_bytes());
            assert_eq!(ev.header_str("seen-by"), Some("fail-some"));
        }
    }
}
