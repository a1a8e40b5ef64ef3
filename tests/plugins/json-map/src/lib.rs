//! Test plugin `json-map`: parses the event as JSON, uppercases its `user`
//! field, writes it back. The polyglot benchmark runs the same map in Rust,
//! Python (`tests/polyglot/py-modes`, mode `json-map`) and JavaScript
//! (`tests/polyglot/js-map`).

use weir_sdk::serde_json::{self, Value};
use weir_sdk::{Event, Result, bail};

/// Uppercases the `user` field; an event without one is an error.
#[weir_sdk::map]
pub fn json_map(mut ev: Event) -> Result<Event> {
    let mut doc: Value = ev.json()?;
    let Some(Value::String(user)) = doc.get_mut("user") else {
        bail!("no string field `user`");
    };
    *user = user.to_uppercase();
    ev.set_value(serde_json::to_vec(&doc)?);
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercases_the_user_field() {
        let out = json_map(Event::new(r#"{"id":1,"user":"ann"}"#)).unwrap();
        assert_eq!(out.value_str().unwrap(), r#"{"id":1,"user":"ANN"}"#);
        assert!(json_map(Event::new(r#"{"id":1}"#)).is_err());
    }
}
