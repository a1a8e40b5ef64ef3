//! An event's JSON value read for the redis sink without building a
//! `serde_json::Value`: a top-level object becomes its fields, each a name
//! (borrowed unless it has escapes) and its raw JSON text. Key templates,
//! versions and hash fields read from that; only a pointer deeper than one
//! level parses the field it goes through.
//!
//! A flat object (names and strings without escapes, numbers, literals: an
//! event's usual shape) is read by [`flat`], a hand-written scanner, in
//! about a third of serde's time; anything else, and every error, by serde.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object's fields: each name and its value's JSON text.
pub type Fields<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// A parsed event value: the fields of an object, or any other JSON value.
pub enum Json<'a> {
    Object(Fields<'a>),
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
        if let Some(fields) = flat(bytes) {
            return Ok(Json::Object(fields));
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
                        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
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
pub fn field_text(text: &str) -> Cow<'_, str> {
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

fn scalar(text: &str) -> Scalar<'_> {
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

/// The fields of `bytes` if it is a flat JSON object: every name and
/// string without escapes or control characters, every value a string, a
/// number or a literal. `None` for anything else, valid or not (serde reads
/// it then, and names the error): what this accepts, serde reads the same.
fn flat(bytes: &[u8]) -> Option<Fields<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let b = text.as_bytes();
    let mut fields = Vec::with_capacity(8);
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (ws(b, i + 1) == b.len()).then_some(fields);
    }
    loop {
        let (name_end, after) = string(b, i)?;
        let name = &text[i + 1..name_end];
        i = ws(b, after);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(b, i + 1);
        let end = match *b.get(start)? {
            b'"' => string(b, start)?.1,
            b'-' | b'0'..=b'9' => number(b, start)?,
            b't' => literal(b, start, b"true")?,
            b'f' => literal(b, start, b"false")?,
            b'n' => literal(b, start, b"null")?,
            _ => return None,
        };
        fields.push((Cow::Borrowed(name), &text[start..end]));
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return (ws(b, i + 1) == b.len()).then_some(fields),
            _ => return None,
        }
    }
}

/// The first index from `i` that is not JSON whitespace.
fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        i += 1;
    }
    i
}

/// The string at `i` (its opening quote): the index of its closing quote
/// and the one after; `None` if it is not there or has an escape or a
/// control character.
fn string(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let rest = b.get(i + 1..)?;
    let close = i + 1 + memchr::memchr2(b'"', b'\\', rest)?;
    if b[close] != b'"' || b[i + 1..close].iter().any(|c| *c < 0x20) {
        return None;
    }
    Some((close, close + 1))
}

/// The end of the number at `i` (JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// The end of `word` at `i`, if it is there.
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b.get(i..i + word.len())
        .is_some_and(|w| w == word)
        .then_some(i + word.len())
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Name(name)) = map.next_key()? {
            let raw: &'de RawValue = map.next_value()?;
            fields.push((name, raw.get()));
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

    /// The serde path alone (what [`flat`] must agree with).
    fn by_serde(bytes: &[u8]) -> Result<Fields<'_>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let fields = de.deserialize_map(FieldsVisitor)?;
        de.end()?;
        Ok(fields)
    }

    #[test]
    fn the_flat_scanner_reads_what_serde_reads_or_leaves_it_to_serde() {
        let common = br#" {"id":17,"card_id":"c1","ts":-1000,"score":0.125,"ok":true,"n":null,"e":1.5E+3,"z":0} "#;
        let fields = flat(common).expect("a flat object is read by the scanner");
        assert_eq!(fields, by_serde(common).expect("serde"));
        assert_eq!(flat(b"{}"), Some(Vec::new()));
        for other in [
            &br#"{"a":{"b":1}}"#[..],
            br#"{"a":[1]}"#,
            br#"{"a\u0041":1}"#,
            br#"{"a":"x\ny"}"#,
        ] {
            assert_eq!(flat(other), None, "{:?}", String::from_utf8_lossy(other));
            assert!(Json::parse(other).is_ok());
        }
        // Random edits of a few shapes: whatever the scanner accepts, serde
        // accepts and reads the same; whatever serde refuses, the scanner
        // leaves to it.
        let shapes: [&[u8]; 3] = [
            common,
            br#"{"a":"x","b":-0.5e-7,"c":false}"#,
            br#"{ "k" : 01 , "v":"\u00e9\u00e9", "w": "caf\xc3\xa9" }"#,
        ];
        let alphabet = b"{}[]\",:.-+eE0123456789 \t\nabtrufnl\\\x01\xc3\xa9";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut read, mut cases) = (0, 0);
        for shape in shapes {
            for _ in 0..20_000 {
                let mut v = shape.to_vec();
                for _ in 0..1 + next(3) {
                    let at = next(v.len() + 1);
                    match next(3) {
                        0 if at < v.len() => v[at] = alphabet[next(alphabet.len())],
                        1 if at < v.len() => {
                            v.remove(at);
                        }
                        _ => v.insert(at, alphabet[next(alphabet.len())]),
                    }
                }
                cases += 1;
                match (flat(&v), by_serde(&v)) {
                    (Some(f), Ok(s)) => {
                        read += 1;
                        assert_eq!(f, s, "{:?}", String::from_utf8_lossy(&v));
                    }
                    (Some(f), Err(e)) => {
                        panic!(
                            "{:?}: scanner {f:?}, serde {e}",
                            String::from_utf8_lossy(&v)
                        )
                    }
                    (None, _) => {}
                }
            }
        }
        assert!(read > cases / 20, "the scanner read only {read} of {cases}");
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
