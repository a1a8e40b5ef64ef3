//! Where a stage's state key is in an event: its key, or a JSON pointer into
//! its value.

use bytes::Bytes;

use crate::event::Event;
use crate::json_pointer::Pointer;

/// `[stages.state] key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// `"$key"`: the event's key.
    EventKey,
    /// `"/a/b"`: the value at this JSON pointer in the event's value. A
    /// string gives its text; a number or boolean its JSON text.
    Pointer(Pointer),
}

impl KeySpec {
    /// `"$key"` or a JSON pointer (starts with `/`); the reason otherwise.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec == "$key" {
            return Ok(KeySpec::EventKey);
        }
        // Not "" (the whole value) nor "/": a member.
        if spec.len() > 1
            && let Some(pointer) = Pointer::parse(spec)
        {
            return Ok(KeySpec::Pointer(pointer));
        }
        Err(format!(
            "{spec:?}: use \"$key\" (the event's key) or a JSON pointer into the value such as \"/card_id\""
        ))
    }

    /// The state key of `event`, or why it has none (the event then goes to
    /// the dead letters with this reason).
    pub fn extract(&self, event: &Event) -> Result<Bytes, String> {
        match self {
            KeySpec::EventKey => event
                .key
                .clone()
                .ok_or_else(|| "the event has no key (state key \"$key\")".to_owned()),
            KeySpec::Pointer(pointer) => {
                // Per event: only the key's value is built, not the tree.
                let value = pointer.find(&event.value).map_err(|e| {
                    format!(
                        "state key {:?}: the value is not JSON: {e}",
                        pointer.as_str()
                    )
                })?;
                match value {
                    None | Some(serde_json::Value::Null) => Err(format!(
                        "the event has no state key at {:?}",
                        pointer.as_str()
                    )),
                    Some(serde_json::Value::String(s)) => Ok(Bytes::from(s)),
                    Some(other) => Ok(Bytes::from(other.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Position;

    fn ev(value: &str) -> Event {
        Event::new(value.to_owned(), 0, Position::new(Arc::from("t"), 0, 0))
    }

    #[test]
    fn keys_from_pointer_or_event_key() {
        let spec = KeySpec::parse("/card/id").expect("spec");
        assert_eq!(
            spec.extract(&ev(r#"{"card":{"id":"c1"}}"#)),
            Ok(Bytes::from("c1"))
        );
        assert_eq!(
            spec.extract(&ev(r#"{"card":{"id":42}}"#)),
            Ok(Bytes::from("42"))
        );
        let err = spec.extract(&ev(r#"{"card":{}}"#)).expect_err("missing");
        assert!(err.contains("no state key at \"/card/id\""), "{err}");
        let err = spec
            .extract(&ev(r#"{"card":{"id":null}}"#))
            .expect_err("null");
        assert!(err.contains("no state key"), "{err}");
        assert!(spec.extract(&ev("not json")).is_err());

        let spec = KeySpec::parse("$key").expect("spec");
        assert_eq!(spec, KeySpec::EventKey);
        assert!(spec.extract(&ev("{}")).is_err());
        assert_eq!(spec.extract(&ev("{}").with_key("k")), Ok(Bytes::from("k")));
        assert!(KeySpec::parse("card_id").is_err());
        assert!(KeySpec::parse("/").is_err());
    }
}
