//! Deserialization of a stage's `params` (a JSON object) into the plugin's type.

use serde::de::DeserializeOwned;

/// Parses the stage params into `P`. Empty params (`""`, `null`) read as `{}`, so
/// a params struct whose fields all have defaults needs no params at all.
///
/// The error names the offending field: serde's message (which names a missing
/// or unknown field itself) followed, for a bad value, by the field's path,
/// e.g. ``invalid params: invalid type: string "x", expected u64 at line 1
/// column 17 (at `threshold`)``.
pub(crate) fn parse_params<P: DeserializeOwned>(json: &str) -> Result<P, String> {
    let trimmed = json.trim();
    let json = if trimmed.is_empty() || trimmed == "null" {
        "{}"
    } else {
        json
    };
    serde_json::from_str(json).map_err(|e| {
        let path = match e.classify() {
            serde_json::error::Category::Data => path_at(json, e.line(), e.column()),
            _ => String::new(),
        };
        if path.is_empty() {
            format!("invalid params: {e}")
        } else {
            format!("invalid params: {e} (at `{path}`)")
        }
    })
}

enum Frame {
    Object { key: Option<String> },
    Array { index: usize },
}

/// The path (`where[1].value`) of the JSON value being read when the parser had
/// consumed the input up to (`line`, `column`) as serde_json reports them.
/// Best effort: an empty string when the position is not inside a value.
fn path_at(json: &str, line: usize, column: usize) -> String {
    let bytes = json.as_bytes();
    let mut line_start = 0;
    let mut current = 1;
    while current < line {
        match bytes
            .get(line_start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            Some(newline) => line_start += newline + 1,
            None => return String::new(),
        }
        current += 1;
    }
    let end = (line_start + column).min(bytes.len());
    let Some(consumed) = bytes.get(..end) else {
        return String::new();
    };

    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < consumed.len() {
        match consumed[i] {
            b'{' => {
                stack.push(Frame::Object { key: None });
                expect_key = true;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key }) => {
                    *key = None;
                    expect_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => expect_key = false,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < consumed.len() && consumed[j] != b'"' {
                    j += if consumed[j] == b'\\' { 2 } else { 1 };
                }
                if expect_key {
                    if let Some(Frame::Object { key }) = stack.last_mut() {
                        let raw = consumed.get(start..j.min(consumed.len())).unwrap_or(&[]);
                        *key = Some(String::from_utf8_lossy(raw).into_owned());
                    }
                    expect_key = false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }

    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None } => break,
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Params {
        threshold: u64,
        #[serde(default)]
        rules: Vec<Rule>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        field: String,
        op: String,
    }

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct Defaults {
        tag: String,
    }

    fn err(json: &str) -> String {
        parse_params::<Params>(json).unwrap_err()
    }

    #[test]
    fn good_params() {
        let p: Params =
            parse_params(r#"{"threshold": 5, "rules": [{"field": "a", "op": "eq"}]}"#).unwrap();
        assert_eq!(p.threshold, 5);
        assert_eq!(p.rules.len(), 1);
    }

    #[test]
    fn empty_params_read_as_an_empty_object() {
        assert_eq!(parse_params::<Defaults>("").unwrap(), Defaults::default());
        assert_eq!(
            parse_params::<Defaults>(" null ").unwrap(),
            Defaults::default()
        );
        assert_eq!(parse_params::<Defaults>("{}").unwrap(), Defaults::default());
        assert_eq!(
            err(""),
            "invalid params: missing field `threshold` at line 1 column 2"
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(r#"{"threshold": "x"}"#),
            "invalid params: invalid type: string \"x\", expected u64 at line 1 column 17 (at `threshold`)"
        );
        assert!(err(r#"{"threshold": 1, "bogus": 3}"#).contains("unknown field `bogus`"));
        let e = err(r#"{"threshold": 1, "rules": [{"field": "a", "op": "eq"}, {"field": "b"}]}"#);
        assert!(
            e.contains("missing field `op`") && e.ends_with("(at `rules[1]`)"),
            "{e}"
        );
        let e = err(r#"{"threshold": 1, "rules": [{"op": "eq", "field": 3}]}"#);
        assert!(e.ends_with("(at `rules[0].field`)"), "{e}");
        let e =
            err("{\n  \"threshold\": 1,\n  \"rules\": [\n {\"field\": \"a,\\\"b\", \"op\": []}]}");
        assert!(e.ends_with("(at `rules[0].op`)"), "{e}");
    }

    #[test]
    fn syntax_errors_have_no_path() {
        let e = err(r#"{"threshold": "#);
        assert!(e.starts_with("invalid params: EOF"), "{e}");
        assert!(!e.contains("(at"));
    }

    #[test]
    fn path_at_is_robust_to_odd_positions() {
        assert_eq!(path_at("{}", 9, 9), "");
        assert_eq!(path_at(r#"{"a": {"b": 1"#, 1, 1000), "a.b");
        assert_eq!(path_at(r#"[1, 2, {"c"#, 1, 1000), "[2].c");
        assert_eq!(path_at(r#"[1, 2, {"c": 1, "#, 1, 1000), "[2]");
    }
}
