//! What the redis and postgres sinks read from an event: a key built from a
//! template, fields by JSON pointer, and the version that orders writes.

use serde::Deserialize;

use super::fields::{Json, Scalar};
use crate::event::Event;
use crate::validate::FieldError;

/// A parsed event value that JSON pointers read: a `serde_json::Value`,
/// or the redis sink's field-by-field [`Json`].
pub trait Pointed {
    /// What the pointer `p` finds, if anything.
    fn find(&self, p: &str) -> Option<Scalar<'_>>;
}

impl Pointed for serde_json::Value {
    fn find(&self, p: &str) -> Option<Scalar<'_>> {
        pointer(self, p).map(|v| match v {
            serde_json::Value::String(s) => Scalar::Text(s.as_str().into()),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                Scalar::Written(v.to_string().into())
            }
            _ => Scalar::Other,
        })
    }
}

impl Pointed for Json<'_> {
    fn find(&self, p: &str) -> Option<Scalar<'_>> {
        self.pointer(p)
    }
}

/// A key template: literal text with `{key}` (the event's key, UTF-8) and
/// `{/json/pointer}` (a field of the event's JSON value; a string as is,
/// a number or boolean as written) placeholders, e.g. `"card:{/card_id}"`.
/// `{{` and `}}` are literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    written: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Key,
    Pointer(String),
}

impl KeyTemplate {
    pub fn parse(written: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = written.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed `{{` in {written:?}")),
                        }
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    if name == "key" {
                        parts.push(Part::Key);
                    } else if name.starts_with('/') {
                        parts.push(Part::Pointer(name));
                    } else {
                        return Err(format!(
                            "unknown placeholder {{{name}}} in {written:?}: use {{key}} or a JSON pointer such as {{/card_id}}"
                        ));
                    }
                }
                '}' => return Err(format!("unmatched `}}` in {written:?} (write `}}}}`)")),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !parts.iter().any(|p| !matches!(p, Part::Text(_))) {
            return Err(format!(
                "{written:?} has no placeholder: every event would write the same key"
            ));
        }
        Ok(Self {
            written: written.to_owned(),
            parts,
        })
    }

    pub fn written(&self) -> &str {
        &self.written
    }

    /// Whether the template reads the event's JSON value.
    pub fn reads_value(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Pointer(_)))
    }

    /// The key of `event` (`value`: its parsed JSON value, when the
    /// template needs it). An error says which placeholder is missing.
    pub fn render(&self, event: &Event, value: Option<&impl Pointed>) -> Result<String, String> {
        let mut out = String::with_capacity(self.written.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Key => match &event.key {
                    Some(k) => match std::str::from_utf8(k) {
                        Ok(k) => out.push_str(k),
                        Err(_) => return Err("the event's key is not UTF-8".into()),
                    },
                    None => return Err("the event has no key (for {key})".into()),
                },
                Part::Pointer(p) => match value.and_then(|v| v.find(p)) {
                    Some(Scalar::Text(s) | Scalar::Written(s)) => out.push_str(&s),
                    Some(Scalar::Other) => {
                        return Err(format!("the field {p} is not a string, number or boolean"));
                    }
                    None => return Err(format!("the event has no field {p}")),
                },
            }
        }
        Ok(out)
    }
}

/// `value.pointer(p)` without allocating for tokens that need no
/// unescaping (`~0`, `~1`), which is most of them.
fn pointer<'v>(value: &'v serde_json::Value, p: &str) -> Option<&'v serde_json::Value> {
    if p.contains('~') {
        return value.pointer(p);
    }
    let mut at = value;
    for token in p.split('/').skip(1) {
        at = match at {
            serde_json::Value::Object(map) => map.get(token)?,
            serde_json::Value::Array(list) => list.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

impl<'de> Deserialize<'de> for KeyTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        KeyTemplate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What orders the writes of one key: a newer version overwrites, an older
/// or equal one is skipped (a replay, or an event that arrives late).
/// `"offset"`: the event's source offset (Kafka: per partition, and one key's
/// events share a partition); `"/ts"`: an integer field of the value (event
/// time in ms, a sequence number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    Offset,
    Pointer(String),
}

impl Version {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "offset" {
            Ok(Version::Offset)
        } else if s.starts_with('/') {
            Ok(Version::Pointer(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is neither \"offset\" nor a JSON pointer such as \"/ts\""
            ))
        }
    }

    /// The version of `event`.
    pub fn of(&self, event: &Event, value: Option<&impl Pointed>) -> Result<i64, String> {
        match self {
            Version::Offset => Ok(event.position.offset),
            Version::Pointer(p) => match value.and_then(|v| v.find(p)) {
                Some(Scalar::Text(s) | Scalar::Written(s)) => s
                    .parse()
                    .map_err(|_| format!("the version field {p} is not an integer")),
                Some(Scalar::Other) => Err(format!("the version field {p} is not an integer")),
                None => Err(format!("the event has no version field {p}")),
            },
        }
    }

    pub fn reads_value(&self) -> bool {
        matches!(self, Version::Pointer(_))
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Checks that a JSON pointer is one (`field` names it).
pub fn validate_pointer(field: &str, p: &str) -> Result<(), FieldError> {
    if p.starts_with('/') {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{p:?} is not a JSON pointer (they start with `/`, e.g. \"/score\")"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn event(json: &str) -> (Event, serde_json::Value) {
        let e = Event::new(
            json.as_bytes().to_vec(),
            0,
            Position::new("s".into(), 0, 42),
        )
        .with_key("k1");
        let v = serde_json::from_str(json).expect("json");
        (e, v)
    }

    #[test]
    fn templates_render_key_and_pointers() {
        let (e, v) = event(r#"{"card_id":"c7","n":3,"o":{}}"#);
        let t = KeyTemplate::parse("card:{/card_id}:{key}:{/n}{{x}}").expect("parse");
        assert_eq!(t.render(&e, Some(&v)).as_deref(), Ok("card:c7:k1:3{x}"));
        let missing = KeyTemplate::parse("{/nope}").expect("parse");
        assert!(
            missing
                .render(&e, Some(&v))
                .expect_err("missing")
                .contains("/nope")
        );
        let (e2, v2) = event(r#"{"a":{"b/c":["x","y"]},"t~":true}"#);
        let nested = KeyTemplate::parse("{/a/b~1c/1}-{/t~0}").expect("parse");
        assert_eq!(nested.render(&e2, Some(&v2)).as_deref(), Ok("y-true"));
        let deep = KeyTemplate::parse("{/a/b/0}").expect("parse");
        assert!(deep.render(&e2, Some(&v2)).is_err());
        let obj = KeyTemplate::parse("{/o}").expect("parse");
        assert!(obj.render(&e, Some(&v)).is_err());
        for bad in ["card", "{card}", "a{/x", "a}"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_value_and_its_fields_render_the_same() {
        let text =
            r#"{"card_id":"c7","n":3,"f":1.5,"b":false,"o":{"p":["x",2]},"s":"12","z":null}"#;
        let (e, v) = event(text);
        let fields = Json::parse(text.as_bytes()).expect("json");
        for t in [
            "{/card_id}:{/n}:{/b}:{key}",
            "{/o/p/0}{/o/p/1}",
            "{/o}",
            "{/z}",
            "{/nope}",
            "{/f}",
        ] {
            let t = KeyTemplate::parse(t).expect("parse");
            assert_eq!(t.render(&e, Some(&v)), t.render(&e, Some(&fields)), "{t:?}");
        }
        for p in ["/n", "/s", "/f", "/b", "/o", "/nope"] {
            let version = Version::parse(p).expect("version");
            assert_eq!(
                version.of(&e, Some(&v)),
                version.of(&e, Some(&fields)),
                "{p}"
            );
        }
    }

    #[test]
    fn versions_come_from_the_offset_or_an_integer_field() {
        let (e, v) = event(r#"{"ts":1700,"s":"12","f":1.5}"#);
        assert_eq!(Version::Offset.of(&e, None::<&serde_json::Value>), Ok(42));
        assert_eq!(
            Version::parse("/ts").and_then(|x| x.of(&e, Some(&v))),
            Ok(1700)
        );
        assert_eq!(
            Version::parse("/s").and_then(|x| x.of(&e, Some(&v))),
            Ok(12)
        );
        assert!(
            Version::parse("/f")
                .and_then(|x| x.of(&e, Some(&v)))
                .is_err()
        );
        assert!(Version::parse("ts").is_err());
    }
}
