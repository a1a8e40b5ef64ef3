use super::*;

fn config(toml_text: &str) -> HttpSinkConfig {
    toml::from_str(toml_text).expect("config")
}

fn field(toml_text: &str) -> String {
    config(toml_text)
        .validate()
        .expect_err("invalid config")
        .field()
}

#[test]
fn config_errors_name_the_field() {
    assert!(config("url = \"http://127.0.0.1:1/x\"").validate().is_ok());
    let h = "url = \"http://h/\"\n";
    let cases = [
        ("url = \"ftp://h/x\"".to_owned(), "url"),
        ("url = \"http://u:pw@h/x\"".into(), "url"),
        ("url = \"env:WEIR_TEST_UNSET_URL\"".into(), "url"),
        (format!("{h}batch_max_events = 10"), "batch_max_events"),
        (
            format!("{h}format = \"ndjson\"\nbatch_max_events = 0"),
            "batch_max_events",
        ),
        (format!("{h}concurrency = 0"), "concurrency"),
        (format!("{h}timeout_ms = 0"), "timeout_ms"),
        (
            format!("{h}headers = {{ \"Bad Name\" = \"x\" }}"),
            "headers.\"Bad Name\"",
        ),
        (
            format!("{h}headers = {{ Authorization = \"env:WEIR_TEST_UNSET_TOKEN\" }}"),
            "headers.Authorization",
        ),
        (
            format!("{h}headers = {{ Idempotency-Key = \"x\" }}"),
            "headers.Idempotency-Key",
        ),
        (
            format!("{h}[retry]\ninitial_backoff_ms = 0"),
            "retry.initial_backoff_ms",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(field(&text), want, "{text}");
    }
    assert!(toml::from_str::<HttpSinkConfig>("url = \"http://h/\"\nmethod = \"GET\"").is_err());
    assert!(toml::from_str::<HttpSinkConfig>("url = \"http://h/\"\nnope = 1").is_err());
}

#[test]
fn the_config_never_shows_a_header_value() {
    let c = config("url = \"http://h/\"\nheaders = { Authorization = \"Bearer s3cr3t\" }");
    assert!(!format!("{c:?}").contains("s3cr3t"));
    let sink = c.build().expect("build");
    assert_eq!(sink.describe(), "http POST http://h");
}

#[test]
fn bodies_and_keys() {
    let mut body = Vec::new();
    let v1 = Bytes::from_static(b"{\"a\":1}");
    let v2 = Bytes::from_static(b"{\n\"b\": 2\n}");
    assert!(encode(HttpFormat::JsonArray, &v1, true, &mut body));
    assert!(encode(HttpFormat::JsonArray, &v2, false, &mut body));
    body.push(b']');
    let parsed: serde_json::Value = serde_json::from_slice(&body).expect("json array");
    assert_eq!(parsed, serde_json::json!([{"a":1},{"b":2}]));
    let mut nd = Vec::new();
    assert!(encode(HttpFormat::Ndjson, &v1, true, &mut nd));
    assert!(encode(HttpFormat::Ndjson, &v2, false, &mut nd));
    assert_eq!(nd, b"{\"a\":1}\n{\"b\":2}\n");
    assert!(!encode(
        HttpFormat::Json,
        &Bytes::from_static(b"nope"),
        true,
        &mut nd
    ));

    let e = Event::new(
        v1.clone(),
        0,
        crate::event::Position::new("in put.jsonl".into(), 2, 9),
    );
    assert_eq!(event_key(&e, 1), "in_put.jsonl/2/9/1");
    let keys = vec!["a/0/1/0".to_owned(), "a/0/2/0".into(), "a/0/3/0".into()];
    assert_eq!(batch_key(&keys), "a/0/1/0..a/0/3/0");
    assert_eq!(batch_key(&keys[..1]), "a/0/1/0");
}
