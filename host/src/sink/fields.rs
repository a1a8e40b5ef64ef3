//! An event's JSON value read for the redis sink without building a
//! `serde_json::Value`: a top-level object becomes its fields, each a name
//! (borrowed unless it has escapes) and its raw JSON text. Key templates,
//! versions and hash fields read from that; only a pointer deeper than one
//! level parses the field it goes through.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A parsed event value: the fields of an object, or any other JSON value.
pub enum Json<'a> {
    Object(Vec<(Cow<'a, str>, &'a RawValue)>),
    Other(serde_json::Value),
}

/// A value a pointer found, as a key or version reads it.
#[derive(Debug, PartialEq)]
pub enum Scalar<'a> {
    /// A string, unescaped.
    Text(Cow<'a, str>),
    /// A number or boolean, as written.
    Written(Cow<'a, str>),
    /// `null`, an object or an array.
    Other,
}

impl<'a> Json<'a> {
    /// Reads `bytes` (an object without a `Value`; anything else with one).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return serde_json::from_slice(bytes).map(Json::Other);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let fields = de.deserialize_map(FieldsVisitor)?;
        de.end()?;
        Ok(Json::Object(fields))
    }

    /// What the JSON pointer `p` finds, if anything.
    pub fn pointer(&self, p: &str) -> Option<Scalar<'_>> {
        match self {
            Json::Other(v) => v.pointer(p).map(owned),
            Json::Object(fields) => {
                let rest = p.strip_prefix('/')?;
                let (first, deeper) = match rest.find('/') {
                    Some(i) => (&rest[..i], Some(&rest[i..])),
                    None => (rest, None),
                };
                let name = unescape(first);
                // The last of repeated names wins, as in a `Value`.
                let (_, raw) = fields.iter().rev().find(|(n, _)| *n == name)?;
                match deeper {
                    None => Some(scalar(raw)),
                    Some(deeper) => {
                        let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
                        v.pointer(deeper).map(|v| owned(v).into_owned())
                    }
                }
            }
        }
    }
}

/// A field's value as a hash stores it: a string unescaped, anything else
/// as its JSON text (numbers and booleans as written; objects and arrays
/// compact).
pub fn field_text(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => match unquote(text) {
            Some(s) => s,
            None => Cow::Borrowed(text),
        },
        Some(b'{' | b'[') => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| Cow::Owned(v.to_string()))
            .unwrap_or(Cow::Borrowed(text)),
        _ => Cow::Borrowed(text),
    }
}

/// A JSON string's text unescaped (borrowed when it has no escape).
fn unquote(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

fn scalar(raw: &RawValue) -> Scalar<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => unquote(text).map_or(Scalar::Other, Scalar::Text),
        Some(b'{' | b'[') | Some(b'n') | None => Scalar::Other,
        _ => Scalar::Written(Cow::Borrowed(text)),
    }
}

impl Scalar<'_> {
    fn into_owned(self) -> Scalar<'static> {
        match self {
            Scalar::Text(s) => Scalar::Text(Cow::Owned(s.into_owned())),
            Scalar::Written(s) => Scalar::Written(Cow::Owned(s.into_owned())),
            Scalar::Other => Scalar::Other,
        }
    }
}

fn owned(v: &serde_json::Value) -> Scalar<'_> {
    match v {
        serde_json::Value::String(s) => Scalar::Text(Cow::Borrowed(s)),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
            Scalar::Written(Cow::Owned(v.to_string()))
        }
        _ => Scalar::Other,
    }
}

/// A pointer token unescaped (`~1` is `/`, `~0` is `~`).
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Name(name)) = map.next_key()? {
            let raw: &'de RawValue = map.next_value()?;
            fields.push((name, raw));
        }
        Ok(fields)
    }
}

/// A field name, borrowed from the input when it has no escape.
struct Name<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
        }
        de.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_read_field_by_field() {
        let text = br#" {"a":"x","n":1.50,"b":true,"o":{"k":[1, 2]},"e\u0041":"q\"r","a":"last","z":null} "#;
        let json = Json::parse(text).expect("json");
        let Json::Object(fields) = &json else {
            panic!("not read as an object")
        };
        assert_eq!(fields.len(), 7);
        assert!(matches!(fields[0].0, Cow::Borrowed("a")));
        assert_eq!(fields[4].0, "eA");
        let texts: Vec<Cow<'_, str>> = fields.iter().map(|(_, r)| field_text(r)).collect();
        assert_eq!(
            texts,
            ["x", "1.50", "true", "{\"k\":[1,2]}", "q\"r", "last", "null"]
        );
        assert_eq!(json.pointer("/a"), Some(Scalar::Text("last".into())));
        assert_eq!(json.pointer("/n"), Some(Scalar::Written("1.50".into())));
        assert_eq!(json.pointer("/b"), Some(Scalar::Written("true".into())));
        assert_eq!(json.pointer("/o"), Some(Scalar::Other));
        assert_eq!(json.pointer("/z"), Some(Scalar::Other));
        assert_eq!(json.pointer("/o/k/1"), Some(Scalar::Written("2".into())));
        assert_eq!(json.pointer("/o/k/9"), None);
        assert_eq!(json.pointer("/nope"), None);
        assert_eq!(json.pointer("nope"), None);
    }

    #[test]
    fn other_values_and_bad_json() {
        let json = Json::parse(br#"[{"a/b":{"c~":"v"}}]"#).expect("json");
        assert_eq!(json.pointer("/0/a~1b/c~0"), Some(Scalar::Text("v".into())));
        let obj = Json::parse(br#"{"a/b":{"c~":"v"}}"#).expect("json");
        assert_eq!(obj.pointer("/a~1b/c~0"), Some(Scalar::Text("v".into())));
        for bad in [&b"{\"a\":1"[..], b"{\"a\":1} x", b"{1:2}", b"", b"nul"] {
            assert!(
                Json::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
