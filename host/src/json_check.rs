//! Whether bytes are one JSON document **a JSON reader can hold**: the
//! grammar, and every number within an `f64`'s range. `1e999` is JSON by
//! the grammar, but `serde_json::Value`, Go's `encoding/json` and others
//! refuse it ("number out of range"), so weir treats it as not JSON: a
//! source line holding one is a dead letter with that reason, and a sink
//! writes such a value as a string (its bytes kept) instead of embedding it.
//!
//! Checked in one pass without allocating (as `IgnoredAny`, which checks the
//! grammar alone, skipping numbers' values): numbers are parsed, strings
//! and keys borrowed or skipped.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// Checks `text` (see the module).
pub fn check_str(text: &str) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Strict::deserialize(&mut de)?;
    de.end()
}

/// Checks `bytes` (see the module; UTF-8 included).
pub fn check_slice(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Strict::deserialize(&mut de)?;
    de.end()
}

/// Any JSON value, its numbers parsed (so out of range is an error).
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        while map.next_entry::<Strict, Strict>()?.is_some() {}
        Ok(Strict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_and_the_range_of_numbers() {
        for ok in [
            "1",
            "-0.5e-300",
            "1e308",
            "18446744073709551615",
            r#"{"a":[1,2,{"b":null}],"c":"\u00e9\n"}"#,
            " true ",
            "\"x\"",
        ] {
            assert!(check_str(ok).is_ok(), "{ok}");
            assert!(check_slice(ok.as_bytes()).is_ok(), "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "1e999",
            "-1e309",
            r#"{"a":[1e400]}"#,
            r#"{"k":1e999}"#,
            "1 2",
            "{",
            "",
            "nan",
        ] {
            assert!(check_str(bad).is_err(), "{bad}");
            assert!(check_slice(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
        let e = check_str(r#"{"n": 5e500}"#).unwrap_err();
        assert!(e.to_string().starts_with("number out of range"), "{e}");
        assert!(check_slice(b"\"\xff\"").is_err(), "not UTF-8");
    }
}
