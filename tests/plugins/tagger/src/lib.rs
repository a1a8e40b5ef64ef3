//! Test plugin `tagger`: sets the header `tag` and the JSON field `"tag"` of
//! every event to the `tag` param, and the header `version` to the plugin's
//! build-time version (`TAGGER_VERSION` when it was compiled, default `v1`).
//! A value that is not a JSON object is an error (dead-letter output).
//!
//! Params: `{"tag": "blue"}` (required, non-empty).

use weir_sdk::serde_json::Value;
use weir_sdk::{Event, Result};

/// The plugin's version, fixed at compile time.
pub const VERSION: &str = match option_env!("TAGGER_VERSION") {
    Some(version) => version,
    None => "v1",
};

/// The stage params.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The tag to set.
    pub tag: String,
}

/// Validates the params once at start-up.
#[weir_sdk::init]
fn init(params: Params) -> Result<()> {
    weir_sdk::ensure!(!params.tag.is_empty(), "param `tag` must not be empty");
    weir_sdk::log::info!("tagger {VERSION} tagging with {:?}", params.tag);
    Ok(())
}

/// Tags one event.
#[weir_sdk::map]
pub fn tag(mut ev: Event, params: &Params) -> Result<Event> {
    let mut value: Value = ev.json()?;
    let Some(fields) = value.as_object_mut() else {
        weir_sdk::bail!("event value is not a JSON object");
    };
    fields.insert("tag".to_owned(), Value::String(params.tag.clone()));
    ev.set_json(&value)?;
    ev.set_header("tag", params.tag.as_bytes());
    ev.set_header("version", VERSION);
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params { tag: "blue".into() }
    }

    #[test]
    fn tags_json_objects() {
        let ev = Event::new(r#"{"id": 1, "tag": "old"}"#).with_header("tag", "old");
        let ev = tag(ev, &params()).unwrap();
        assert_eq!(
            ev.json::<Value>().unwrap(),
            weir_sdk::serde_json::json!({"id": 1, "tag": "blue"})
        );
        assert_eq!(ev.header_str("tag"), Some("blue"));
        assert_eq!(ev.header_str("version"), Some(VERSION));
        assert_eq!(ev.headers().len(), 2);
    }

    #[test]
    fn rejects_non_objects() {
        assert!(tag(Event::new("[1, 2]"), &params()).is_err());
        assert!(tag(Event::new("text"), &params()).is_err());
    }

    #[test]
    fn init_rejects_an_empty_tag() {
        assert!(init(params()).is_ok());
        let err = init(Params { tag: String::new() }).unwrap_err();
        assert_eq!(err.message(), "param `tag` must not be empty");
    }
}
