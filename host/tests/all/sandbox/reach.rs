//! What else a plugin cannot reach: the network, environment variables it
//! was not granted, weir's stdout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::support::run_watched;

// ---------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------

#[test]
fn the_network_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_events(
        dir,
        &[
            json!({"id": 0, "addr": addr.to_string()}),
            json!({"id": 1, "addr": format!("localhost:{}", addr.port())}),
            json!({"id": 2, "addr": addr.to_string()}),
        ],
    );
    write_pipeline(dir, FILE_SOURCE, 100, 20, &stage("net", ""));
    let out = run_watched(dir, &[], Duration::from_secs(30));
    let results = results(dir, &out);
    assert_eq!(results.len(), 3, "{results:#?}");
    for id in 0..3 {
        assert_err(&results, id, "connecting to the test's listener");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the plugin connected to the listener from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

fn env_results(grants: &str) -> BTreeMap<usize, String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_events(
        dir,
        &[
            json!({"id": 0, "var": "WEIR_TEST_ALLOWED"}),
            json!({"id": 1, "var": "HOME"}),
            json!({"id": 2, "var": "PATH"}),
            json!({"id": 3, "var": "WEIR_TEST_DENIED"}),
        ],
    );
    write_pipeline(dir, FILE_SOURCE, 100, 20, &stage("env", grants));
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let out = run_watched(
        dir,
        &[
            ("WEIR_TEST_ALLOWED", "allowed-value-42"),
            ("WEIR_TEST_DENIED", "denied-value"),
            ("HOME", "/home/weir-test"),
            ("PATH", &path),
        ],
        Duration::from_secs(30),
    );
    let results = results(dir, &out);
    assert_eq!(results.len(), 4, "{results:#?}");
    results
}

#[test]
fn without_grants_no_environment_variable_is_visible() {
    let results = env_results("");
    for id in 0..4 {
        assert_eq!(results[&id], "err:absent", "event {id}");
    }
}

#[test]
fn a_granted_environment_variable_is_visible_and_only_it() {
    let results = env_results("[stages.grants]\nenv = [\"WEIR_TEST_ALLOWED\"]\n");
    assert_eq!(results[&0], "ok:allowed-value-42");
    assert_eq!(results[&1], "err:absent", "HOME");
    assert_eq!(results[&2], "err:absent", "PATH");
    assert_eq!(results[&3], "err:absent", "an ungranted variable");
}

// ---------------------------------------------------------------------------
// Stdio
// ---------------------------------------------------------------------------

#[test]
fn plugin_stdout_and_stderr_go_to_the_log_tagged_not_to_stdout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, 5, |_| false);
    write_pipeline(
        dir,
        FILE_SOURCE,
        100,
        20,
        &named_stage("chatty", "stdio", ""),
    );
    let out = run_watched(dir, &[], Duration::from_secs(30));
    assert_success(&out);
    assert_eq!(ids(&default_out(dir)), vec![0, 1, 2, 3, 4]);
    assert!(
        !out.stdout.contains("stdout line") && !out.stdout.contains("stderr line"),
        "plugin output on weir's stdout:\n{}",
        out.stdout
    );
    for id in 0..5 {
        for stream in ["stdout", "stderr"] {
            let text = format!("{stream} line {id}");
            let line = out
                .stderr
                .lines()
                .find(|l| l.contains(&text))
                .unwrap_or_else(|| panic!("no log line with {text:?} in:\n{}", out.stderr));
            assert!(
                line.contains("chatty") && line.contains("hostile"),
                "not tagged with the stage and plugin: {line}"
            );
        }
    }
}
