//! `pii-redact`: masks payment card numbers and email addresses in event
//! values, inside the string (and numeric) values of JSON events without
//! reformatting them, or anywhere in plain-text events. See README.md.

pub mod scan;

use serde::Deserialize;
use weir_sdk::serde_json;
use weir_sdk::{Error, Event, Result};

use scan::Redactor;

/// What to redact.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Luhn-valid runs of 13 to 19 digits (single spaces or dashes allowed
    /// between digits): every digit but the last 4 is masked.
    Card,
    /// `local@domain.tld`: every character but `@` is masked.
    Email,
}

/// What to do with an event whose value is not JSON.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NonJson {
    /// Redact the whole value as text (the default).
    #[default]
    Redact,
    /// Leave it unchanged.
    Pass,
    /// Fail the event (dead-letter output).
    Error,
}

fn all_kinds() -> Vec<Kind> {
    vec![Kind::Card, Kind::Email]
}

fn star() -> String {
    "*".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default = "all_kinds")]
    kinds: Vec<Kind>,
    #[serde(default = "star")]
    mask: String,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    non_json: NonJson,
}

/// The stage params, validated (see README.md).
#[derive(Deserialize, Debug)]
#[serde(try_from = "RawParams")]
pub struct Params {
    redactor: Redactor,
    /// Dotted paths that restrict JSON redaction to their subtrees.
    fields: Option<Vec<Vec<String>>>,
    non_json: NonJson,
}

impl TryFrom<RawParams> for Params {
    type Error = String;

    fn try_from(raw: RawParams) -> std::result::Result<Self, String> {
        if raw.kinds.is_empty() {
            return Err("kinds: list at least one of \"card\", \"email\"".to_owned());
        }
        let mut chars = raw.mask.chars();
        let mask = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() && c != '"' && c != '\\' => c,
            _ => {
                return Err(format!(
                    "mask: must be one printable character other than '\"' and '\\', got {:?}",
                    raw.mask
                ));
            }
        };
        let fields = match raw.fields {
            None => None,
            Some(paths) => {
                let mut parsed = Vec::with_capacity(paths.len());
                for path in paths {
                    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
                    if segments.iter().any(String::is_empty) {
                        return Err(format!("fields: `{path}` is not a dotted path"));
                    }
                    parsed.push(segments);
                }
                Some(parsed)
            }
        };
        Ok(Self {
            redactor: Redactor {
                cards: raw.kinds.contains(&Kind::Card),
                emails: raw.kinds.contains(&Kind::Email),
                mask,
            },
            fields,
            non_json: raw.non_json,
        })
    }
}

/// Redacts one event. An event with nothing to redact is returned as is (no
/// copy, original formatting).
#[weir_sdk::map]
pub fn pii_redact(mut ev: Event, params: &Params) -> Result<Event> {
    let value = ev.value();
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok();
    let redacted = if is_json {
        scan::redact_json(value, &params.redactor, params.fields.as_deref())?
    } else {
        match params.non_json {
            NonJson::Redact => params.redactor.redact(value),
            NonJson::Pass => None,
            NonJson::Error => return Err(Error::msg("event value is not JSON")),
        }
    };
    if let Some(redacted) = redacted {
        ev.set_value(redacted);
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(p: serde_json::Value) -> Params {
        serde_json::from_value(p).unwrap()
    }

    fn redact(p: &Params, value: &str) -> String {
        let ev = pii_redact(Event::new(value), p).unwrap();
        String::from_utf8(ev.into_value()).unwrap()
    }

    #[test]
    fn json_strings_are_redacted_in_place() {
        let p = params(json!({}));
        let input = r#"{ "user": {"email": "jane.doe@example.com", "note": "card 4111 1111 1111 1111, thanks"},
  "amount": 12, "id": "4111111111111112" }"#;
        let expected = r#"{ "user": {"email": "********@***********", "note": "card **** **** **** 1111, thanks"},
  "amount": 12, "id": "4111111111111112" }"#;
        assert_eq!(redact(&p, input), expected);
    }

    #[test]
    fn numeric_card_numbers_become_masked_strings() {
        let p = params(json!({}));
        assert_eq!(
            redact(&p, r#"{"pan": 4111111111111111, "n": 1234567890123}"#),
            r#"{"pan": "************1111", "n": 1234567890123}"#
        );
    }

    #[test]
    fn plain_text() {
        let p = params(json!({"mask": "#"}));
        assert_eq!(
            redact(&p, "pay 5500-0000-0000-0004 by bob@mail.co.uk"),
            "pay ####-####-####-0004 by ###@##########"
        );
        let pass = params(json!({"non_json": "pass"}));
        assert_eq!(redact(&pass, "bob@mail.co.uk"), "bob@mail.co.uk");
        let error = params(json!({"non_json": "error"}));
        assert!(pii_redact(Event::new("bob@mail.co.uk"), &error).is_err());
    }

    #[test]
    fn kinds_select_what_is_redacted() {
        let cards = params(json!({"kinds": ["card"]}));
        assert_eq!(
            redact(&cards, "a@b.io 4111111111111111"),
            "a@b.io ************1111"
        );
        let emails = params(json!({"kinds": ["email"]}));
        assert_eq!(
            redact(&emails, "a@b.io 4111111111111111"),
            "*@**** 4111111111111111"
        );
    }

    #[test]
    fn fields_restrict_json_redaction() {
        let p = params(json!({"fields": ["user.email", "cards"]}));
        let input = r#"{"user":{"email":"a@b.io","alt":"c@d.io"},"cards":["4111111111111111",{"x":"4111111111111111"}],"note":"e@f.io"}"#;
        let expected = r#"{"user":{"email":"*@****","alt":"c@d.io"},"cards":["************1111",{"x":"************1111"}],"note":"e@f.io"}"#;
        assert_eq!(redact(&p, input), expected);
        let p = params(json!({"fields": ["cards.1.x"]}));
        let expected = r#"{"user":{"email":"a@b.io","alt":"c@d.io"},"cards":["4111111111111111",{"x":"************1111"}],"note":"e@f.io"}"#;
        assert_eq!(redact(&p, input), expected);
    }

    #[test]
    fn escaped_strings_are_re_encoded() {
        let p = params(json!({}));
        let input = r#"{"note":"line\nmail: x@y.com \u0041"}"#;
        assert_eq!(redact(&p, input), r#"{"note":"line\nmail: *@***** A"}"#);
    }

    #[test]
    fn unchanged_events_keep_their_bytes() {
        let p = params(json!({}));
        let input = "{ \"a\" : [1, 2.5e3, true, null, \"text\"] }";
        let ev = pii_redact(Event::new(input), &p).unwrap();
        assert_eq!(ev.value(), input.as_bytes());
    }

    #[test]
    fn multibyte_mask() {
        let p = params(json!({"mask": "█"}));
        assert_eq!(redact(&p, r#"["a@b.io"]"#), r#"["█@████"]"#);
    }

    #[test]
    fn bad_params() {
        for (p, expected) in [
            (json!({"kinds": []}), "kinds: list at least one"),
            (json!({"kinds": ["ssn"]}), "unknown variant `ssn`"),
            (
                json!({"mask": "**"}),
                "mask: must be one printable character",
            ),
            (
                json!({"mask": "\""}),
                "mask: must be one printable character",
            ),
            (json!({"mask": ""}), "mask: must be one printable character"),
            (
                json!({"fields": ["a..b"]}),
                "fields: `a..b` is not a dotted path",
            ),
            (json!({"non_json": "drop"}), "unknown variant `drop`"),
            (json!({"field": ["a"]}), "unknown field `field`"),
        ] {
            let err = serde_json::from_value::<Params>(p).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
