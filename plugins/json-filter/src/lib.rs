//! `json-filter`: keeps, drops or routes JSON events by predicates on their
//! fields, and optionally projects them to a subset of fields.
//! See README.md for the params and the exact semantics.

use std::cmp::Ordering;

use serde::Deserialize;
use weir_sdk::serde_json::{self, Map, Value};
use weir_sdk::{Error, Event, Output, Result};

// ---------------------------------------------------------------- params ----

/// A comparison operator.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Exists,
    Contains,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::Exists => "exists",
            Op::Contains => "contains",
        }
    }
}

/// How the conditions combine.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// Every condition holds (the default).
    #[default]
    All,
    /// At least one condition holds.
    Any,
}

/// `Some(value)` for a present `value`, even `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: String,
    op: Op,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default, rename = "where")]
    conditions: Vec<RawCondition>,
    #[serde(default, rename = "match")]
    combine: Match,
    #[serde(default)]
    keep: Option<Vec<String>>,
    #[serde(default)]
    route: Option<String>,
}

/// One segment of a dotted path: an object key, which also indexes an array
/// when it is a number.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    key: String,
    index: Option<usize>,
}

fn parse_path(path: &str) -> std::result::Result<Vec<Segment>, String> {
    if path.is_empty() {
        return Err("a field path cannot be empty".to_owned());
    }
    path.split('.')
        .map(|key| {
            if key.is_empty() {
                Err(format!("field path `{path}` has an empty segment"))
            } else {
                Ok(Segment {
                    key: key.to_owned(),
                    index: key.parse().ok(),
                })
            }
        })
        .collect()
}

/// A validated condition.
#[derive(Debug)]
struct Condition {
    path: Vec<Segment>,
    op: Op,
    value: Value,
}

/// A node of the `keep` projection: keep `key` whole (no children) or only
/// the listed sub-fields.
#[derive(Debug, PartialEq)]
struct KeepNode {
    key: String,
    children: Vec<KeepNode>,
}

fn insert_keep(nodes: &mut Vec<KeepNode>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let index = match nodes.iter().position(|n| n.key == *first) {
        Some(index) => {
            if nodes[index].children.is_empty() {
                return; // already kept whole
            }
            index
        }
        None => {
            nodes.push(KeepNode {
                key: first.clone(),
                children: Vec::new(),
            });
            if rest.is_empty() {
                return;
            }
            nodes.len() - 1
        }
    };
    if rest.is_empty() {
        nodes[index].children.clear(); // a shorter path keeps the whole value
    } else {
        insert_keep(&mut nodes[index].children, rest);
    }
}

/// The stage params, validated (see README.md).
#[derive(Deserialize, Debug)]
#[serde(try_from = "RawParams")]
pub struct Params {
    conditions: Vec<Condition>,
    combine: Match,
    keep: Option<Vec<KeepNode>>,
    route: Option<String>,
}

impl TryFrom<RawParams> for Params {
    type Error = String;

    fn try_from(raw: RawParams) -> std::result::Result<Self, String> {
        let mut conditions = Vec::with_capacity(raw.conditions.len());
        for (i, c) in raw.conditions.into_iter().enumerate() {
            let context = |problem: String| format!("where[{i}] (field `{}`): {problem}", c.field);
            let path = parse_path(&c.field).map_err(context)?;
            let op = c.op.name();
            let value = match (c.op, c.value) {
                (Op::Exists, None) => Value::Bool(true),
                (Op::Exists, Some(v @ Value::Bool(_))) => v,
                (Op::Exists, Some(_)) => {
                    return Err(context(
                        "op `exists` takes `value` true or false (default true)".to_owned(),
                    ));
                }
                (_, None) => return Err(context(format!("op `{op}` needs a `value`"))),
                (
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte,
                    Some(v @ (Value::Number(_) | Value::String(_))),
                ) => v,
                (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(_)) => {
                    return Err(context(format!(
                        "op `{op}` needs a number or string `value`"
                    )));
                }
                (Op::In, Some(v @ Value::Array(_))) => v,
                (Op::In, Some(_)) => {
                    return Err(context("op `in` needs an array `value`".to_owned()));
                }
                (_, Some(v)) => v,
            };
            conditions.push(Condition {
                path,
                op: c.op,
                value,
            });
        }
        let keep = match raw.keep {
            None => None,
            Some(paths) => {
                let mut nodes = Vec::new();
                for path in &paths {
                    let segments = parse_path(path).map_err(|e| format!("keep: {e}"))?;
                    let keys: Vec<String> = segments.into_iter().map(|s| s.key).collect();
                    insert_keep(&mut nodes, &keys);
                }
                Some(nodes)
            }
        };
        if raw.route.as_deref() == Some("") {
            return Err("route: the output name cannot be empty".to_owned());
        }
        Ok(Self {
            conditions,
            combine: raw.combine,
            keep,
            route: raw.route,
        })
    }
}

// ------------------------------------------------------------ evaluation ----

fn lookup<'a>(mut value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    for segment in path {
        value = match value {
            Value::Object(fields) => fields.get(&segment.key)?,
            Value::Array(items) => items.get(segment.index?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Equality where numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => json_cmp(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Order of two numbers or two strings; `None` for anything else.
fn json_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
            },
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Condition {
    fn holds(&self, event: &Value) -> bool {
        let field = lookup(event, &self.path);
        let Some(field) = field else {
            return match self.op {
                Op::Ne => true,
                Op::Exists => self.value == Value::Bool(false),
                _ => false,
            };
        };
        match self.op {
            Op::Eq => json_eq(field, &self.value),
            Op::Ne => !json_eq(field, &self.value),
            Op::Gt => json_cmp(field, &self.value) == Some(Ordering::Greater),
            Op::Gte => matches!(
                json_cmp(field, &self.value),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Lt => json_cmp(field, &self.value) == Some(Ordering::Less),
            Op::Lte => matches!(
                json_cmp(field, &self.value),
                Some(Ordering::Less | Ordering::Equal)
            ),
            Op::In => match &self.value {
                Value::Array(options) => options.iter().any(|o| json_eq(field, o)),
                _ => false,
            },
            Op::Exists => self.value == Value::Bool(true),
            Op::Contains => match (field, &self.value) {
                (Value::String(haystack), Value::String(needle)) => {
                    haystack.contains(needle.as_str())
                }
                (Value::Array(items), needle) => items.iter().any(|item| json_eq(item, needle)),
                _ => false,
            },
        }
    }
}

impl Params {
    /// Whether the event matches the conditions (an empty `where` matches all).
    fn matches(&self, event: &Value) -> bool {
        match self.combine {
            Match::All => self.conditions.iter().all(|c| c.holds(event)),
            Match::Any => {
                self.conditions.is_empty() || self.conditions.iter().any(|c| c.holds(event))
            }
        }
    }
}

// ------------------------------------------------------------ projection ----

/// Writes the kept fields of `fields` as a JSON object, in `keep` order.
fn write_projection(
    out: &mut Vec<u8>,
    fields: &Map<String, Value>,
    nodes: &[KeepNode],
) -> Result<()> {
    out.push(b'{');
    let mut first = true;
    for node in nodes {
        let Some(value) = fields.get(&node.key) else {
            continue;
        };
        let nested = match (node.children.is_empty(), value) {
            (true, _) => None,
            (false, Value::Object(inner)) => Some(inner),
            (false, _) => continue, // sub-fields of a non-object: nothing to keep
        };
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, &node.key)?;
        out.push(b':');
        match nested {
            None => serde_json::to_writer(&mut *out, value)?,
            Some(inner) => write_projection(out, inner, &node.children)?,
        }
    }
    out.push(b'}');
    Ok(())
}

// ------------------------------------------------------------------ entry ----

/// Filters (or routes) one event and projects it if it matches.
#[weir_sdk::flat_map]
pub fn json_filter(mut ev: Event, params: &Params) -> Result<Vec<Output>> {
    let value: Value = serde_json::from_slice(ev.value())
        .map_err(|e| Error::msg(format_args!("event value is not JSON: {e}")))?;
    if !params.matches(&value) {
        return Ok(match params.route {
            // Routing mode: non-matching events continue unchanged.
            Some(_) => vec![Output::new(ev)],
            // Filter mode: dropped.
            None => Vec::new(),
        });
    }
    if let Some(keep) = &params.keep {
        let Value::Object(fields) = &value else {
            weir_sdk::bail!("`keep` needs a JSON object event, got {}", kind(&value));
        };
        let mut projected = Vec::with_capacity(ev.value().len());
        write_projection(&mut projected, fields, keep)?;
        ev.set_value(projected);
    }
    Ok(vec![match &params.route {
        Some(route) => Output::to(route.clone(), ev),
        None => Output::new(ev),
    }])
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(p: Value) -> Params {
        serde_json::from_value(p).unwrap()
    }

    fn params_err(p: Value) -> String {
        serde_json::from_value::<Params>(p).unwrap_err().to_string()
    }

    /// (route, value) of each output.
    fn run(p: &Params, value: Value) -> Vec<(Option<String>, Value)> {
        json_filter(Event::from_json(&value).unwrap(), p)
            .unwrap()
            .into_iter()
            .map(|o| {
                (
                    o.route().map(str::to_owned),
                    serde_json::from_slice(o.event().value()).unwrap(),
                )
            })
            .collect()
    }

    fn matches(condition: Value, event: Value) -> bool {
        params(json!({ "where": [condition] })).matches(&event)
    }

    #[test]
    fn the_readme_example() {
        let p = params(json!({
            "where": [
                {"field": "amount", "op": "gt", "value": 100},
                {"field": "country", "op": "in", "value": ["FR", "DE"]}
            ],
            "keep": ["txn_id", "amount"]
        }));
        let hit = json!({"txn_id": "t1", "amount": 250.5, "country": "FR", "card": "x"});
        assert_eq!(
            run(&p, hit),
            vec![(None, json!({"txn_id": "t1", "amount": 250.5}))]
        );
        assert_eq!(
            run(&p, json!({"txn_id": "t2", "amount": 50, "country": "FR"})),
            vec![]
        );
        assert_eq!(
            run(&p, json!({"txn_id": "t3", "amount": 500, "country": "US"})),
            vec![]
        );
    }

    #[test]
    fn routing_mode_keeps_everything() {
        let p = params(json!({
            "where": [{"field": "amount", "op": "gte", "value": 1000}],
            "route": "alerts"
        }));
        assert_eq!(
            run(&p, json!({"amount": 1000})),
            vec![(Some("alerts".into()), json!({"amount": 1000}))]
        );
        assert_eq!(
            run(&p, json!({"amount": 5})),
            vec![(None, json!({"amount": 5}))]
        );
    }

    #[test]
    fn operators() {
        let ev = json!({"n": 10, "f": 2.5, "s": "abc", "b": true, "z": null, "tags": ["x", 1],
                        "a": {"b": {"c": 7}}, "items": [{"sku": "k1"}, {"sku": "k2"}]});
        let cases = [
            (json!({"field": "n", "op": "eq", "value": 10}), true),
            (json!({"field": "n", "op": "eq", "value": 10.0}), true),
            (json!({"field": "n", "op": "eq", "value": "10"}), false),
            (json!({"field": "s", "op": "eq", "value": "abc"}), true),
            (json!({"field": "z", "op": "eq", "value": null}), true),
            (
                json!({"field": "missing", "op": "eq", "value": null}),
                false,
            ),
            (json!({"field": "n", "op": "ne", "value": 11}), true),
            (json!({"field": "missing", "op": "ne", "value": 1}), true),
            (json!({"field": "n", "op": "gt", "value": 9.5}), true),
            (json!({"field": "n", "op": "gt", "value": 10}), false),
            (json!({"field": "n", "op": "gte", "value": 10}), true),
            (json!({"field": "f", "op": "lt", "value": 3}), true),
            (json!({"field": "f", "op": "lte", "value": 2.5}), true),
            (json!({"field": "s", "op": "gt", "value": "abb"}), true),
            (json!({"field": "s", "op": "gt", "value": 1}), false),
            (json!({"field": "missing", "op": "lt", "value": 1}), false),
            (json!({"field": "n", "op": "in", "value": [1, 10]}), true),
            (json!({"field": "s", "op": "in", "value": ["x"]}), false),
            (json!({"field": "z", "op": "exists"}), true),
            (json!({"field": "missing", "op": "exists"}), false),
            (
                json!({"field": "missing", "op": "exists", "value": false}),
                true,
            ),
            (json!({"field": "n", "op": "exists", "value": false}), false),
            (json!({"field": "s", "op": "contains", "value": "bc"}), true),
            (json!({"field": "s", "op": "contains", "value": "x"}), false),
            (
                json!({"field": "tags", "op": "contains", "value": 1.0}),
                true,
            ),
            (
                json!({"field": "tags", "op": "contains", "value": "y"}),
                false,
            ),
            (json!({"field": "n", "op": "contains", "value": 1}), false),
            (json!({"field": "a.b.c", "op": "eq", "value": 7}), true),
            (json!({"field": "a.b", "op": "exists"}), true),
            (json!({"field": "a.x.c", "op": "exists"}), false),
            (
                json!({"field": "items.1.sku", "op": "eq", "value": "k2"}),
                true,
            ),
            (json!({"field": "items.2.sku", "op": "exists"}), false),
            (json!({"field": "s.0", "op": "exists"}), false),
        ];
        for (condition, expected) in cases {
            assert_eq!(
                matches(condition.clone(), ev.clone()),
                expected,
                "{condition}"
            );
        }
    }

    #[test]
    fn big_integers_compare_exactly() {
        let ev = json!({"id": 9_007_199_254_740_993_u64});
        assert!(matches(
            json!({"field": "id", "op": "gt", "value": 9_007_199_254_740_992_u64}),
            ev.clone()
        ));
        assert!(!matches(
            json!({"field": "id", "op": "eq", "value": 9_007_199_254_740_992_u64}),
            ev
        ));
    }

    #[test]
    fn match_any_and_empty_where() {
        let any = params(json!({"match": "any", "where": [
            {"field": "a", "op": "eq", "value": 1},
            {"field": "b", "op": "eq", "value": 1}
        ]}));
        assert!(any.matches(&json!({"b": 1})));
        assert!(!any.matches(&json!({"c": 1})));
        assert!(params(json!({})).matches(&json!({"x": 1})));
        assert!(params(json!({"match": "any"})).matches(&json!(3)));
    }

    #[test]
    fn projection_nests_and_orders() {
        let p = params(json!({"keep": ["z", "a.b", "a.c.d", "missing", "s.x", "q", "q.r"]}));
        let ev = json!({"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}, "z": [1], "s": "str", "q": {"r": 1, "t": 2}, "other": 0});
        let out = json_filter(Event::from_json(&ev).unwrap(), &p).unwrap();
        assert_eq!(
            std::str::from_utf8(out[0].event().value()).unwrap(),
            r#"{"z":[1],"a":{"b":1,"c":{"d":2}},"q":{"r":1,"t":2}}"#
        );
    }

    #[test]
    fn keep_tree_merges_paths() {
        let mut nodes = Vec::new();
        insert_keep(&mut nodes, &["a".into(), "b".into()]);
        insert_keep(&mut nodes, &["a".into()]);
        insert_keep(&mut nodes, &["a".into(), "c".into()]);
        assert_eq!(
            nodes,
            vec![KeepNode {
                key: "a".into(),
                children: vec![]
            }]
        );
    }

    #[test]
    fn errors() {
        let p = params(json!({"keep": ["a"]}));
        let err = json_filter(Event::new("nope"), &p).unwrap_err();
        assert!(
            err.message().starts_with("event value is not JSON"),
            "{err}"
        );
        let err = json_filter(Event::new("[1]"), &p).unwrap_err();
        assert_eq!(
            err.message(),
            "`keep` needs a JSON object event, got an array"
        );
        // Without `keep`, any JSON is fine.
        assert_eq!(
            run(&params(json!({})), json!([1])),
            vec![(None, json!([1]))]
        );
    }

    #[test]
    fn bad_params_are_explained() {
        let cases = [
            (
                json!({"where": [{"field": "a", "op": "gt"}]}),
                "where[0] (field `a`): op `gt` needs a `value`",
            ),
            (
                json!({"where": [{"field": "a", "op": "gt", "value": [1]}]}),
                "op `gt` needs a number or string `value`",
            ),
            (
                json!({"where": [{"field": "a", "op": "in", "value": "FR"}]}),
                "where[0] (field `a`): op `in` needs an array `value`",
            ),
            (
                json!({"where": [{"field": "a", "op": "exists", "value": 1}]}),
                "op `exists` takes `value` true or false",
            ),
            (
                json!({"where": [{"field": "a..b", "op": "exists"}]}),
                "field path `a..b` has an empty segment",
            ),
            (
                json!({"where": [{"field": "a", "op": "like", "value": 1}]}),
                "unknown variant `like`",
            ),
            (
                json!({"where": [{"field": "a", "op": "eq", "value": 1, "x": 1}]}),
                "unknown field `x`",
            ),
            (json!({"keep": [""]}), "keep: a field path cannot be empty"),
            (
                json!({"route": ""}),
                "route: the output name cannot be empty",
            ),
            (json!({"filter": []}), "unknown field `filter`"),
        ];
        for (p, expected) in cases {
            let err = params_err(p);
            assert!(err.contains(expected), "{err} does not contain {expected}");
        }
    }

    #[test]
    fn null_value_is_present() {
        let p = params(json!({"where": [{"field": "a", "op": "ne", "value": null}]}));
        assert!(p.matches(&json!({"a": 1})));
        assert!(!p.matches(&json!({"a": null})));
    }
}
