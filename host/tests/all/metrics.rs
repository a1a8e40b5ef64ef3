//! The admin endpoint: `/metrics` counters equal what the pipeline did,
//! histograms are populated, `/healthz` and `/readyz` through start-up and
//! shutdown, and Kafka consumer lag reaching 0.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Pipeline, plugin_dir, weir, weir_run};

/// A free local port (bound then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET path` on 127.0.0.1:port: `Some((status, body))`, `None` when the
/// server does not answer.
pub(crate) fn get(port: u16, path: &str) -> Option<(u16, String)> {
    get_with(port, path, "")
}

/// [`get`] with extra header lines (each ending in `\r\n`).
pub(crate) fn get_with(port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Samples of a Prometheus text exposition: `name{labels}` → value.
pub(crate) fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn sample(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:#?}", m.keys().collect::<Vec<_>>()))
}

pub(crate) fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("poll weir") {
            return s;
        }
        assert!(Instant::now() < deadline, "weir did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdin_pipeline(dir: &Path, port: u16) -> std::path::PathBuf {
    plugin_dir(dir, &["fail-some"]);
    Pipeline::new(dir)
        .top("name = \"metered\"")
        .batch(64, 10)
        .stage("check", "fail-some")
        .tables(&format!(
            "[admin]\naddress = \"127.0.0.1:{port}\"\nlinger_secs = 5\n"
        ))
        .write(dir)
}

#[test]
fn metrics_count_exactly_what_the_pipeline_did_and_probes_follow_the_lifecycle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let port = free_port();
    let pipeline = stdin_pipeline(dir, port);
    let log = dir.join("weir.log");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start weir");
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Start-up: alive at once, ready only once the plugin (compiled from a
    // fresh cache) is loaded.
    let mut probes = Vec::new();
    wait_for("/readyz 200", Duration::from_secs(120), || {
        let health = get(port, "/healthz").map(|r| r.0);
        let ready = get(port, "/readyz").map(|r| r.0);
        if health.is_some() {
            probes.push((health, ready));
        }
        ready == Some(200)
    });
    assert_eq!(
        probes.first(),
        Some(&(Some(200), Some(503))),
        "alive but not ready while the plugin compiles: {probes:?}\n{}",
        show_log()
    );
    assert!(probes.iter().all(|p| p.0 == Some(200)));

    // Events: n good, `poison` refused by the plugin, `bad` not JSON
    // (rejected by the source).
    let (good, poison, bad) = (500usize, 7usize, 3usize);
    let mut stdin = child.stdin.take().expect("stdin");
    for i in 0..good {
        writeln!(stdin, r#"{{"id": {i}}}"#).expect("write");
        if i % 70 == 0 && i / 70 < poison {
            writeln!(stdin, r#"{{"id": {i}, "poison": true}}"#).expect("write");
        }
        if i % 150 == 0 && i / 150 < bad {
            writeln!(stdin, "not json {i}").expect("write");
        }
    }
    stdin.flush().expect("flush");
    let total = good + poison + bad;
    let mut m = BTreeMap::new();
    wait_for("every event delivered", Duration::from_secs(60), || {
        m = get(port, "/metrics")
            .map(|r| parse(&r.1))
            .unwrap_or_default();
        m.get("weir_output_events_total{output=\"default\"}") == Some(&(good as f64))
            && m.get("weir_dead_letter_events_total") == Some(&((poison + bad) as f64))
    });
    let stage = r#"stage="check",plugin="fail-some""#;
    let stage_key = |name: &str| format!("{name}{{{stage}}}");
    assert_eq!(sample(&m, "weir_source_events_total"), total as f64);
    assert_eq!(
        sample(&m, &stage_key("weir_stage_events_in_total")),
        (good + poison) as f64
    );
    assert_eq!(
        sample(&m, &stage_key("weir_stage_events_out_total")),
        good as f64
    );
    assert_eq!(
        sample(&m, &stage_key("weir_stage_dead_letters_total")),
        poison as f64
    );
    for kind in ["trap", "deadline", "memory"] {
        assert_eq!(
            sample(
                &m,
                &format!("weir_stage_faults_total{{{stage},kind=\"{kind}\"}}")
            ),
            0.0
        );
    }
    // Histograms: one observation per batch / per delivered event.
    let batches = sample(&m, &stage_key("weir_stage_batches_total"));
    assert!(batches >= 1.0);
    assert_eq!(
        sample(&m, &stage_key("weir_stage_batch_latency_seconds_count")),
        batches
    );
    assert!(sample(&m, &stage_key("weir_stage_batch_latency_seconds_sum")) > 0.0);
    let buckets: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("weir_stage_batch_latency_seconds_bucket{"))
        .map(|(_, v)| *v)
        .collect();
    assert!(
        buckets.iter().all(|b| *b <= batches),
        "cumulative buckets: {buckets:?}"
    );
    assert_eq!(
        sample(
            &m,
            &format!("weir_stage_batch_latency_seconds_bucket{{le=\"+Inf\",{stage}}}")
        ),
        batches
    );
    assert_eq!(
        sample(&m, &stage_key("weir_stage_batch_events_count")),
        batches
    );
    assert_eq!(
        sample(&m, &stage_key("weir_stage_batch_events_sum")),
        (good + poison) as f64
    );
    assert_eq!(sample(&m, "weir_batch_events_sum"), total as f64);
    assert_eq!(
        sample(&m, "weir_batch_events_bucket{le=\"+Inf\"}"),
        sample(&m, "weir_batch_events_count")
    );
    assert_eq!(
        sample(&m, "weir_batch_events_bucket{le=\"64.0\"}"),
        sample(&m, "weir_batch_events_count"),
        "max_events = 64"
    );
    assert_eq!(
        sample(
            &m,
            "weir_end_to_end_latency_seconds_count{output=\"default\"}"
        ),
        good as f64
    );
    assert_eq!(
        sample(&m, "weir_dead_letter_latency_seconds_count"),
        (poison + bad) as f64
    );
    assert!(sample(&m, &stage_key("weir_stage_memory_bytes")) >= 65536.0);
    let chunks = sample(&m, "weir_source_chunks_total{status=\"delivered\"}");
    assert!(chunks >= batches, "{chunks} chunks, {batches} batches");
    assert_eq!(
        sample(&m, "weir_source_chunks_total{status=\"failed\"}"),
        0.0
    );
    let info: Vec<_> = m
        .keys()
        .filter(|k| k.starts_with("weir_plugin_info{"))
        .collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(
        info[0].contains(r#"stage="check""#) && info[0].contains("version=\""),
        "{}",
        info[0]
    );
    assert_eq!(sample(&m, "weir_reload_refusals_total"), 0.0);
    assert!(
        !m.keys().any(|k| k.starts_with("weir_kafka_")),
        "not a Kafka source"
    );

    // The files agree with the counters.
    let out = std::fs::read_to_string(dir.join("out.jsonl")).expect("out");
    assert_eq!(out.lines().count(), good);
    let dlq = std::fs::read_to_string(dir.join("dlq.jsonl")).expect("dlq");
    assert_eq!(dlq.lines().count(), poison + bad);

    // status.json carries the same numbers and what `weir status` prints.
    let (code, body) = get(port, "/status.json").expect("status.json");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(status["events_in"], total);
    assert_eq!(status["outputs"]["default"]["events"], good);
    assert_eq!(status["stages"][0]["dead_letters"], poison);
    assert_eq!(status["ready"], true);
    assert!(status["reload"]["stages"]["check"]["version"].is_string());

    // Shutdown: SIGTERM → not ready while lingering, still alive, final
    // numbers still served; then the process exits 0.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_for("/readyz 503 after SIGTERM", Duration::from_secs(10), || {
        get(port, "/readyz").map(|r| r.0) == Some(503)
    });
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    let after = get(port, "/metrics")
        .map(|r| parse(&r.1))
        .expect("metrics while lingering");
    assert_eq!(sample(&after, "weir_source_events_total"), total as f64);
    drop(stdin);
    let exit = wait_exit(&mut child, Duration::from_secs(30));
    assert!(exit.success(), "exit {exit:?}: {}", show_log());
    assert!(
        get(port, "/healthz").is_none(),
        "the endpoint is gone after exit"
    );
}

/// A signal while the admin endpoint lingers ends the linger at once, exit
/// 0: after a finite run (the pipeline ended by itself, the first signal
/// ends it) and after a SIGTERM stopped the pipeline (the next one does).
#[test]
fn a_signal_during_the_admin_linger_ends_it_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["passthrough"]);
    std::fs::write(dir.join("in.jsonl"), "{\"id\":1}\n{\"id\":2}\n").expect("input");
    for stopped_by_signal in [false, true] {
        let port = free_port();
        let source = if stopped_by_signal {
            "type = \"stdin\"\n".to_owned()
        } else {
            crate::support::file_table("in.jsonl")
        };
        let pipeline = Pipeline::new(dir)
            .source(&source)
            .stage("pass", "passthrough")
            .tables(&format!(
                "[admin]\naddress = \"127.0.0.1:{port}\"\nlinger_secs = 3600\n"
            ))
            .write(dir);
        let log = dir.join("linger.log");
        let mut child = weir()
            .args(["run", "--quiet"])
            .arg(&pipeline)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start weir");
        let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let term = |child: &Child| {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
        };
        if stopped_by_signal {
            wait_for("/readyz 200", Duration::from_secs(120), || {
                get(port, "/readyz").map(|r| r.0) == Some(200)
            });
            term(&child);
        }
        wait_for("the linger", Duration::from_secs(120), || {
            show_log().contains("admin endpoint lingering")
        });
        assert_eq!(
            get(port, "/readyz").map(|r| r.0),
            Some(503),
            "not ready while lingering"
        );
        let signalled = Instant::now();
        term(&child);
        let exit = wait_exit(&mut child, Duration::from_secs(20));
        assert!(exit.success(), "exit {exit:?}: {}", show_log());
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "the linger of 3600 s should end at the signal, took {:?}",
            signalled.elapsed()
        );
        assert!(show_log().contains("stops lingering"), "{}", show_log());
    }
}

/// With `[admin] token`, no token or a wrong one is 401 and the right one
/// 200; `public_metrics` opens only the scrape and probe routes; a thousand
/// idle connections to the endpoint do not stall the pipeline; the token is
/// never logged; and listening beyond loopback without a token is refused.
#[test]
fn the_admin_token_guards_the_endpoint() {
    let secret = "s3cret-admin-token-0123456789";
    for public_metrics in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        plugin_dir(dir, &["passthrough"]);
        let port = free_port();
        let pipeline = Pipeline::new(dir)
            .stage("pass", "passthrough")
            .tables(&format!(
                "[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"env:WEIR_TEST_ADMIN_TOKEN\"\npublic_metrics = {public_metrics}\n"
            ))
            .write(dir);
        let log = dir.join("token.log");
        let mut child = weir()
            .args(["run", "--quiet"])
            .arg(&pipeline)
            .env("WEIR_TEST_ADMIN_TOKEN", secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start weir");
        let right = format!("Authorization: Bearer {secret}\r\n");
        let wrong = "Authorization: Bearer not-the-token-at-all\r\n";
        wait_for("/readyz with the token", Duration::from_secs(120), || {
            get_with(port, "/readyz", &right).map(|r| r.0) == Some(200)
        });
        for path in ["/status.json", "/metrics", "/readyz", "/healthz"] {
            let open = public_metrics && path != "/status.json";
            let expected = if open { 200 } else { 401 };
            assert_eq!(
                get(port, path).map(|r| r.0),
                Some(expected),
                "{path} without a token"
            );
            assert_eq!(
                get_with(port, path, wrong).map(|r| r.0),
                Some(expected),
                "{path} with a wrong token"
            );
            assert_eq!(
                get_with(port, path, &right).map(|r| r.0),
                Some(200),
                "{path} with the token"
            );
        }
        assert_eq!(get(port, "/").map(|r| r.0), Some(200), "the static page");

        // A thousand idle connections, then events: all of them delivered.
        let idle: Vec<TcpStream> = (0..1000)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
            .collect();
        assert!(idle.len() >= 900, "opened {} idle connections", idle.len());
        let mut stdin = child.stdin.take().expect("stdin");
        for i in 0..2000 {
            writeln!(stdin, r#"{{"id": {i}}}"#).expect("write");
        }
        stdin.flush().expect("flush");
        wait_for("every event delivered", Duration::from_secs(30), || {
            std::fs::read_to_string(dir.join("out.jsonl"))
                .map(|s| s.lines().count() == 2000)
                .unwrap_or(false)
        });
        assert_eq!(
            get_with(port, "/readyz", &right).map(|r| r.0),
            Some(200),
            "still answering"
        );
        drop(idle);
        drop(stdin);
        let exit = wait_exit(&mut child, Duration::from_secs(30));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(exit.success(), "{text}");
        assert!(!text.contains(secret), "the token was logged:\n{text}");
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["passthrough"]);
    let pipeline = Pipeline::new(dir)
        .stage("pass", "passthrough")
        .tables("[admin]\naddress = \"0.0.0.0:0\"\n")
        .write(dir);
    let out = weir()
        .args(["run", "--quiet"])
        .arg(&pipeline)
        .stdin(Stdio::null())
        .output()
        .expect("run weir");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.token") && err.contains("loopback"),
        "{err}"
    );
}

#[test]
fn a_bad_admin_address_names_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let pipeline = stdin_pipeline(dir, 1);
    let toml = std::fs::read_to_string(&pipeline).expect("read");
    std::fs::write(&pipeline, toml.replace("127.0.0.1:1", "localhost")).expect("write");
    let out = weir()
        .args(["run", "--quiet"])
        .arg(&pipeline)
        .stdin(Stdio::null())
        .output()
        .expect("run weir");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.address"), "{err}");
}

#[test]
fn kafka_consumer_lag_and_committed_offsets_reach_metrics() {
    use crate::kafka::{PARTITIONS, Weir, ev, pipeline, produce, timed, topics};
    timed(Duration::from_secs(240), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = crate::support::Broker::sqlite();
        topics(&broker);
        let n = 2_000u64;
        produce(&broker, "in", 0..n, ev);
        let file = pipeline(tmp.path(), "lag", &broker, "g-lag", ("upper", ""));
        let port = free_port();
        let toml = std::fs::read_to_string(&file).expect("pipeline");
        std::fs::write(
            &file,
            format!("{toml}\n[admin]\naddress = \"127.0.0.1:{port}\"\n"),
        )
        .expect("pipeline");
        let mut weir = Weir::start(&file, tmp.path().join("weir.log"));
        let per = (n / PARTITIONS as u64) as f64;
        let mut m = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            weir.assert_running();
            m = get(port, "/metrics").map(|r| parse(&r.1)).unwrap_or(m);
            let parts: Vec<(f64, f64)> = (0..PARTITIONS)
                .filter_map(|p| {
                    let l = format!("{{topic=\"in\",partition=\"{p}\"}}");
                    Some((
                        *m.get(&format!("weir_kafka_consumer_lag{l}"))?,
                        *m.get(&format!("weir_kafka_committed_offset{l}"))?,
                    ))
                })
                .collect();
            if parts.len() == PARTITIONS as usize
                && parts.iter().all(|(lag, c)| *lag == 0.0 && *c == per)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "lag did not reach 0 with every offset committed: {:?}\n{}",
                m.iter()
                    .filter(|(k, _)| k.starts_with("weir_kafka"))
                    .collect::<Vec<_>>(),
                weir.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(sample(&m, "weir_source_events_total"), n as f64);
        assert_eq!(
            sample(&m, "weir_output_events_total{output=\"default\"}"),
            n as f64
        );
        // The consumer joined its group: ready.
        assert_eq!(get(port, "/readyz").map(|r| r.0), Some(200));
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());
    });
}

/// A Kafka source whose brokers cannot be reached is never ready, while the
/// process is healthy.
#[test]
fn readyz_waits_for_the_kafka_consumer_to_join_its_group() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["upper"]);
    let port = free_port();
    let dead = free_port(); // nothing listens there
    Pipeline::new(dir)
        .top("name = \"unready\"")
        .source(&format!(
            "type = \"kafka\"\nbrokers = \"127.0.0.1:{dead}\"\ntopics = [\"in\"]\ngroup_id = \"g\"\n"
        ))
        .stage("up", "upper")
        .tables(&format!("[admin]\naddress = \"127.0.0.1:{port}\"\n"))
        .write(dir);
    let mut child = weir_run(dir).spawn().expect("start weir");
    // Plugins load, the pipeline starts: healthy, but not ready.
    wait_for("the pipeline started", Duration::from_secs(120), || {
        std::fs::read_to_string(dir.join("weir.log")).is_ok_and(|l| l.contains("pipeline started"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/readyz").map(|r| r.0), Some(503));
    let _ = child.kill();
    let _ = child.wait();
}
