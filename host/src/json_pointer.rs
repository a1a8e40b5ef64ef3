//! The value at a JSON pointer of a JSON document, found in one pass over
//! the bytes without building the document's tree: the members and elements
//! off the pointer's path are skipped (`IgnoredAny`: validated, not
//! allocated), only the value at the pointer is built. Same answers as
//! `serde_json::from_slice::<Value>(doc)?.pointer(p).cloned()` (the last of
//! duplicate members wins, array indexes as RFC 6901 spells them), at a
//! fraction of the cost on the data path (state keys, event times).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON pointer, split into its unescaped segments once (not per
/// document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    segments: Vec<String>,
}

impl Pointer {
    /// `""` (the whole document) or a pointer starting with `/`; `None`
    /// otherwise.
    pub fn parse(pointer: &str) -> Option<Self> {
        let segments = match pointer.strip_prefix('/') {
            None if pointer.is_empty() => Vec::new(),
            None => return None,
            Some(rest) => rest
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect(),
        };
        Some(Self {
            text: pointer.to_owned(),
            segments,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this pointer in `doc`: `Ok(None)` if the path is
    /// absent, `Err` if `doc` is not one JSON document.
    pub fn find(&self, doc: &[u8]) -> Result<Option<Value>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(doc);
        let found = Seek(&self.segments).deserialize(&mut de)?;
        de.end()?;
        Ok(found)
    }
}

/// Follows the remaining segments.
struct Seek<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            return serde::Deserialize::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (want, rest) = (self.0[0].as_str(), &self.0[1..]);
        let mut found = None;
        while let Some(hit) = map.next_key_seed(Named(want))? {
            if hit {
                found = map.next_value_seed(Seek(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let segment = self.0[0].as_str();
        // RFC 6901 (and `Value::pointer`): no sign, no leading zero.
        let index = (!segment.starts_with('+') && (segment == "0" || !segment.starts_with('0')))
            .then(|| segment.parse::<usize>().ok())
            .flatten();
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Seek(&self.0[1..]))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar where the pointer goes on: absent.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether a member's name is `want`: its bytes, unescaped where it lies
/// (copied only if it has escapes), are compared, not first checked as
/// UTF-8 (a name that is not UTF-8 cannot be `want`).
struct Named<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Named<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for Named<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<bool, E> {
        Ok(v == self.0.as_bytes())
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value at `pointer` in `doc`; `Ok(None)` also when `pointer` is
    /// not a pointer (as `Value::pointer` answers).
    fn find(doc: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
        match Pointer::parse(pointer) {
            Some(p) => p.find(doc),
            None => Ok(None),
        }
    }

    /// The answers `Value::pointer` gives, on documents of every shape.
    #[test]
    fn finds_what_value_pointer_finds() {
        let docs = [
            r#"{"card_id":"c1","amount":12.5,"ts":1700,"n":null}"#,
            r#"{"a":{"b":[10,{"c":"deep"},30]},"a~b":1,"x/y":2,"":3}"#,
            r#"{"k":"first","k":"last"}"#,
            r#"{"s":"esc\"aped \u00e9","n\u0061me":"unescaped key"}"#,
            r#"[1,[2,3],{"z":true}]"#,
            r#""just a string""#,
            "42",
        ];
        let pointers = [
            "",
            "/card_id",
            "/amount",
            "/ts",
            "/n",
            "/missing",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/3",
            "/a/b/01",
            "/a/b/+1",
            "/a~0b",
            "/x~1y",
            "/",
            "/k",
            "/s",
            "/name",
            "/0",
            "/1/1",
            "/2/z",
            "/card_id/x",
            "nope",
        ];
        for doc in docs {
            let tree: Value = serde_json::from_str(doc).expect("test doc");
            for p in pointers {
                let want = if p.is_empty() || p.starts_with('/') {
                    tree.pointer(p).cloned()
                } else {
                    None
                };
                assert_eq!(
                    find(doc.as_bytes(), p).expect("valid"),
                    want,
                    "{doc} at {p:?}"
                );
            }
        }
    }

    #[test]
    fn a_document_that_is_not_json_is_an_error_wherever_it_breaks() {
        for doc in [
            r#"{"a":1,"#,
            r#"{"a":1} x"#,
            r#"{"skip":[1,2,}"#,
            "not json",
            "",
        ] {
            assert!(find(doc.as_bytes(), "/a").is_err(), "{doc}");
        }
    }
}
