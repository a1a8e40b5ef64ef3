//! The http sink against a real receiver: batches with idempotency keys and
//! credentials, an endpoint down for 10 s (nothing lost, memory bounded,
//! `/readyz` 503), a 400 to the dead letters, 429 with `Retry-After`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::receiver::{Answer, Receiver};
use super::{card_events, write};
use crate::metrics::{free_port, get, parse, wait_for};
use crate::support::{Pipeline, read_jsonl, run_watched, weir};

const TOKEN: &str = "Bearer s3cr3t-webhook-token-5f1c";

fn ids(received: &[super::receiver::Received]) -> Vec<i64> {
    received
        .iter()
        .filter(|r| r.status == 200)
        .flat_map(|r| r.values())
        .map(|v| v["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn http_batches_carry_idempotency_keys_and_the_token_never_shows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    write(tmp.path(), "in.jsonl", &card_events(95, 10));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(40, 50)
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"json-array\"\nbatch_max_events = 10\nheaders = {{ Authorization = \"env:WEIR_TEST_WEBHOOK_TOKEN\" }}\n",
                receiver.url("/hook")
            ),
        )
        .write(tmp.path());
    let out = run_watched(
        tmp.path(),
        &[("WEIR_TEST_WEBHOOK_TOKEN", TOKEN), ("WEIR_LOG", "debug")],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "weir failed: {}", out.stderr);
    let received = receiver.received();
    let mut got = ids(&received);
    got.sort_unstable();
    assert_eq!(got, (0..95).collect::<Vec<_>>(), "each event exactly once");
    // The file source's stream is its path as written.
    let stream = "in.jsonl";
    for r in &received {
        assert_eq!(r.header("authorization"), Some(TOKEN));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let values = r.values();
        let first = values[0]["id"].as_i64().expect("id");
        let last = values[values.len() - 1]["id"].as_i64().expect("id");
        let key = r.header("idempotency-key").expect("an Idempotency-Key");
        let expected = if first == last {
            format!("{stream}/0/{first}/0")
        } else {
            format!("{stream}/0/{first}/0..{stream}/0/{last}/0")
        };
        assert_eq!(key, expected);
        assert!(values.len() <= 10);
    }
    assert!(
        !out.stderr.contains("s3cr3t"),
        "the token is in the log:\n{}",
        out.stderr
    );
}

#[test]
fn http_endpoint_down_for_10s_loses_nothing_and_stays_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start();
    // Taken while the receiver holds its port, so the two cannot be the same.
    let admin = free_port();
    receiver.down();
    let n = 5000;
    write(tmp.path(), "in.jsonl", &card_events(n, 50));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(100, 20)
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"ndjson\"\nbatch_max_events = 50\nconcurrency = 2\ntimeout_ms = 2000\nheaders = {{ Authorization = \"env:WEIR_TEST_WEBHOOK_TOKEN\" }}\n[outputs.default.retry]\ninitial_backoff_ms = 50\nmax_backoff_ms = 500\n",
                receiver.url("/hook")
            ),
        )
        .tables(&format!(
            "[admin]\naddress = \"127.0.0.1:{admin}\"\nlinger_secs = 3\n"
        ))
        .write(tmp.path());
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(tmp.path().join("pipeline.toml"))
        .env("WEIR_TEST_WEBHOOK_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("weir.log")).expect("log"))
        .spawn()
        .expect("start weir");
    // Down for 10 s: retries, not ready, and the source stops reading.
    wait_for("metrics", Duration::from_secs(60), || {
        get(admin, "/metrics").is_some_and(|(s, _)| s == 200)
    });
    let down_since = Instant::now();
    let mut max_read = 0.0f64;
    let mut max_in_flight = 0.0f64;
    let mut saw_503 = false;
    let mut status_doc = String::new();
    while down_since.elapsed() < Duration::from_secs(10) {
        if let Some((200, text)) = get(admin, "/metrics") {
            let m = parse(&text);
            max_read = max_read.max(m["weir_source_events_total"]);
            max_in_flight = max_in_flight.max(m["weir_sink_in_flight{output=\"default\"}"]);
        }
        if let Some((code, _)) = get(admin, "/readyz") {
            saw_503 |= code == 503;
        }
        if let Some((200, doc)) = get(admin, "/status.json") {
            status_doc = doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, metrics) = get(admin, "/metrics").expect("metrics");
    let m = parse(&metrics);
    assert!(
        m["weir_sink_retries_total{output=\"default\"}"] >= 5.0,
        "{metrics}"
    );
    assert_eq!(m["weir_sink_up{output=\"default\"}"], 0.0);
    // Nothing is acknowledged before a 2xx.
    assert_eq!(
        m["weir_source_chunks_total{status=\"delivered\"}"], 0.0,
        "{metrics}"
    );
    assert!(
        saw_503,
        "/readyz never said 503 while the endpoint was down"
    );
    assert!(
        max_read < 2000.0,
        "the source read {max_read} of {n} events while the endpoint was down: not bounded"
    );
    assert!(
        max_in_flight <= 2.0,
        "in flight {max_in_flight} > concurrency"
    );
    assert!(status_doc.contains("\"up\":false"), "{status_doc}");
    assert!(!status_doc.contains("s3cr3t") && !metrics.contains("s3cr3t"));

    receiver.up();
    wait_for("weir to finish", Duration::from_secs(60), || {
        child.try_wait().expect("poll").is_some()
    });
    let status = child.wait().expect("wait");
    let log = std::fs::read_to_string(tmp.path().join("weir.log")).expect("log");
    assert!(status.success(), "weir failed:\n{log}");
    let mut got = ids(&receiver.received());
    got.sort_unstable();
    let unique: BTreeSet<i64> = got.iter().copied().collect();
    assert_eq!(unique.len(), n, "events lost");
    assert_eq!(got.len(), n, "events delivered twice");
    assert!(!log.contains("s3cr3t"), "the token is in the log");
}

#[test]
fn http_400_sends_the_events_to_the_dead_letters_with_status_and_body() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    receiver.answer(
        vec![Answer::Status(400, None, "bad alert: no card".into())],
        Answer::Ok,
    );
    write(tmp.path(), "in.jsonl", &card_events(6, 3));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(100, 50)
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nconcurrency = 1\n",
                receiver.url("/hook")
            ),
        )
        .write(tmp.path());
    let out = run_watched(tmp.path(), &[], Duration::from_secs(60));
    assert!(out.status.success(), "weir failed: {}", out.stderr);
    let dead = read_jsonl(&tmp.path().join("dlq.jsonl"));
    assert_eq!(dead.len(), 1, "one refused event: {dead:?}");
    let text = dead[0].to_string();
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(text.contains("bad alert: no card"), "{text}");
    assert!(text.contains("output default"), "{text}");
    let mut got = ids(&receiver.received());
    got.sort_unstable();
    assert_eq!(got.len(), 5, "the other events were delivered");
}

#[test]
fn http_429_honours_retry_after_and_5xx_is_retried() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    receiver.answer(
        vec![
            Answer::Status(429, Some(2), "slow down".into()),
            Answer::Status(503, None, "busy".into()),
        ],
        Answer::Ok,
    );
    write(tmp.path(), "in.jsonl", &card_events(3, 3));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(100, 50)
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"json-array\"\n[outputs.default.retry]\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n",
                receiver.url("/hook")
            ),
        )
        .write(tmp.path());
    let out = run_watched(tmp.path(), &[], Duration::from_secs(60));
    assert!(out.status.success(), "weir failed: {}", out.stderr);
    let r = receiver.received();
    assert_eq!(r.len(), 3, "429, 503, then 200: {r:?}");
    assert_eq!(
        r.iter().map(|x| x.status).collect::<Vec<_>>(),
        [429, 503, 200]
    );
    let waited = r[1].at - r[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 not honoured: retried after {waited:?}"
    );
    assert!(
        r[2].at - r[1].at < Duration::from_secs(1),
        "5xx backoff too long"
    );
    assert_eq!(
        r[0].header("idempotency-key"),
        r[2].header("idempotency-key"),
        "a retry keeps its key"
    );
    assert_eq!(ids(&r), [0, 1, 2]);
}

/// The endpoint accepts connections but answers nothing for 30 s (a stalled
/// server, not a refused connection): requests time out and are retried,
/// the source stops reading, weir keeps running; once the endpoint answers
/// again every event arrives, and the repeats (held requests answered late
/// beside their retries) carry the same idempotency key.
#[test]
fn http_endpoint_stalled_for_30s_loses_nothing_and_repeats_carry_their_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start();
    let admin = free_port();
    let n = 3000;
    write(tmp.path(), "in.jsonl", &card_events(n, 50));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(100, 20)
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"ndjson\"\nbatch_max_events = 50\nconcurrency = 2\ntimeout_ms = 1000\n[outputs.default.retry]\ninitial_backoff_ms = 50\nmax_backoff_ms = 500\n",
                receiver.url("/hook")
            ),
        )
        .tables(&format!(
            "[admin]\naddress = \"127.0.0.1:{admin}\"\nlinger_secs = 3\n"
        ))
        .write(tmp.path());
    receiver.stall(true);
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(tmp.path().join("pipeline.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("weir.log")).expect("log"))
        .spawn()
        .expect("start weir");
    wait_for("metrics", Duration::from_secs(60), || {
        get(admin, "/metrics").is_some_and(|(s, _)| s == 200)
    });
    let stalled = Instant::now();
    let mut max_read = 0.0f64;
    while stalled.elapsed() < Duration::from_secs(30) {
        assert!(child.try_wait().expect("poll").is_none(), "weir exited");
        if let Some((200, text)) = get(admin, "/metrics") {
            max_read = max_read.max(parse(&text)["weir_source_events_total"]);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, metrics) = get(admin, "/metrics").expect("metrics");
    let m = parse(&metrics);
    assert!(
        m["weir_sink_retries_total{output=\"default\"}"] >= 5.0,
        "timed-out requests are retried: {metrics}"
    );
    assert_eq!(
        m["weir_source_chunks_total{status=\"delivered\"}"], 0.0,
        "nothing acknowledged while no request was answered"
    );
    assert!(
        max_read < 2000.0,
        "the source read {max_read} of {n} events during the stall: not bounded"
    );
    receiver.stall(false);
    wait_for("weir to finish", Duration::from_secs(90), || {
        child.try_wait().expect("poll").is_some()
    });
    let log = std::fs::read_to_string(tmp.path().join("weir.log")).expect("log");
    assert!(child.wait().expect("wait").success(), "weir failed:\n{log}");
    let received = receiver.received();
    let got = ids(&received);
    let unique: BTreeSet<i64> = got.iter().copied().collect();
    assert_eq!(unique.len(), n, "events lost");
    // A repeated event always comes in a request with the same key as its
    // first delivery.
    let mut key_of: std::collections::HashMap<i64, String> = Default::default();
    for r in received.iter().filter(|r| r.status == 200) {
        let key = r.header("idempotency-key").expect("idempotency key");
        for v in r.values() {
            let id = v["id"].as_i64().expect("id");
            let first = key_of.entry(id).or_insert_with(|| key.to_owned());
            assert_eq!(first, key, "event {id} repeated under another key");
        }
    }
    eprintln!(
        "http stall 30 s: {} events, {} deliveries ({} repeats, same keys)",
        n,
        got.len(),
        got.len() - n
    );
}
