//! The sandbox under attack: the `hostile` test plugin misbehaves on purpose
//! (infinite loop, memory bomb, stack overflow, panic, huge output, a panic
//! in init, file-system, network and environment probes, stdio, slowness) in
//! real pipelines run by the real `weir` binary.
//!
//! Each test asserts the exact outcome: the host survives (exit 0 unless the
//! circuit breaker is configured to stop), exactly the bad events are in the
//! dead-letter output with the right reason, every other event is delivered
//! in order, and nothing the plugin was not granted is reachable. Every run
//! is under a deadline (killed and failed on timeout), and the host's
//! resident memory is sampled from `/proc/<pid>/status` while it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{plugin_dir, read_jsonl, weir};

/// The name of the hostile stage (unless a test needs a more distinctive one).
const STAGE: &str = "h";

/// The input of the "one bad event among many" tests.
const EVENTS: usize = 1_000;
/// The one bad event among them.
const BAD_ID: usize = 517;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Running weir
// ---------------------------------------------------------------------------

/// How a `weir run` ended.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// The highest resident set size (`VmRSS`) seen while it ran, in bytes.
    peak_rss: u64,
    elapsed: Duration,
}

fn drain(stream: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<String> {
    let mut stream = stream.expect("piped stream");
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `VmRSS` of process `pid`, in bytes (`None` once it has exited).
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `weir run --quiet <dir>/pipeline.toml` with extra environment
/// variables, sampling its RSS; kills it and fails the test if it has not
/// exited after `timeout`.
fn run_weir(dir: &Path, env: &[(&str, &str)], timeout: Duration) -> Outcome {
    let mut cmd = weir();
    cmd.args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start weir");
    let pid = child.id();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut peak_rss = 0;
    let status = loop {
        if let Some(rss) = vm_rss(pid) {
            peak_rss = peak_rss.max(rss);
        }
        if let Some(status) = child.try_wait().expect("poll weir") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("weir did not finish within {timeout:?} (killed); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        peak_rss,
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------
// Pipelines and their input and output
// ---------------------------------------------------------------------------

const FILE_SOURCE: &str = "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n";

/// The `[[stages]]` body of the hostile stage named `name`: `rest` follows
/// the `mode` param (more params, then tables such as `[stages.limits]`).
fn named_stage(name: &str, mode: &str, rest: &str) -> String {
    format!("name = \"{name}\"\nplugin = \"hostile\"\n[stages.params]\nmode = \"{mode}\"\n{rest}")
}

fn stage(mode: &str, rest: &str) -> String {
    named_stage(STAGE, mode, rest)
}

/// Writes `<dir>/pipeline.toml`: `source` → the stage → `out/default.jsonl`,
/// dead letters to `out/dlq.jsonl`; and the plugin folder.
fn write_pipeline(dir: &Path, source: &str, max_events: usize, max_wait_ms: u64, stage: &str) {
    plugin_dir(dir, &["hostile"]);
    let toml = format!(
        r#"name = "sandbox"
cache_dir = "{cache}"
{source}
[batch]
max_events = {max_events}
max_wait_ms = {max_wait_ms}

[[stages]]
{stage}

[outputs.default]
type = "file"
path = "out/default.jsonl"

[dead_letter]
type = "file"
path = "out/dlq.jsonl"
"#,
        cache = dir.join("cache").display()
    );
    std::fs::write(dir.join("pipeline.toml"), toml).expect("write pipeline");
}

/// Writes `<dir>/in.jsonl`: `{"id":N}` for N in `0..n`, with
/// `"trigger": true` where `trigger(N)`.
fn write_ids(dir: &Path, n: usize, trigger: impl Fn(usize) -> bool) {
    let mut text = String::new();
    for id in 0..n {
        if trigger(id) {
            text.push_str(&format!("{{\"id\":{id},\"trigger\":true}}\n"));
        } else {
            text.push_str(&format!("{{\"id\":{id}}}\n"));
        }
    }
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
}

/// Writes `<dir>/in.jsonl` with these events, one JSON value a line.
fn write_events(dir: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
}

/// The records of an output file; none if it was never created.
fn records(path: &Path) -> Vec<Value> {
    if path.exists() {
        read_jsonl(path)
    } else {
        Vec::new()
    }
}

fn default_out(dir: &Path) -> Vec<Value> {
    records(&dir.join("out/default.jsonl"))
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    records(&dir.join("out/dlq.jsonl"))
}

fn id(record: &Value) -> usize {
    record["value"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id in {record}")) as usize
}

fn ids(records: &[Value]) -> Vec<usize> {
    records.iter().map(id).collect()
}

fn reason(record: &Value) -> &str {
    record["headers"]["weir.error"]
        .as_str()
        .unwrap_or_else(|| panic!("no weir.error header in {record}"))
}

fn assert_success(out: &Outcome) {
    assert!(
        out.status.success(),
        "weir failed ({:?}); stderr:\n{}",
        out.status,
        out.stderr
    );
}

/// Provenance headers of a dead letter from the hostile stage `stage`.
fn assert_provenance(record: &Value, stage: &str) {
    let headers = &record["headers"];
    assert_eq!(headers["weir.stage"], stage, "{record}");
    assert_eq!(headers["weir.plugin"], "hostile", "{record}");
    let version = headers["weir.plugin.version"]
        .as_str()
        .unwrap_or_else(|| panic!("no weir.plugin.version in {record}"));
    assert_eq!(version.len(), 64, "a SHA-256 content hash: {record}");
    assert_eq!(headers["weir.source.stream"], "in.jsonl", "{record}");
    assert_eq!(headers["weir.source.partition"], "0", "{record}");
    assert_eq!(
        headers["weir.source.offset"],
        id(record).to_string(),
        "{record}"
    );
}

// ---------------------------------------------------------------------------
// One bad event among 1,000, in one batch
// ---------------------------------------------------------------------------

/// Runs `mode` on 1,000 events of which only #517 is triggered, all in one
/// batch; asserts the host survived, #517 alone is a dead letter (with
/// provenance and its original value) and the 999 others were delivered in
/// order. Returns the dead letter's reason and the run.
fn one_bad_event_among_many(mode: &str, limits: &str, timeout: Duration) -> (String, Outcome) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, EVENTS, |id| id == BAD_ID);
    // max_wait_ms is long: the batch is cut when it has all 1,000 events.
    write_pipeline(
        dir,
        FILE_SOURCE,
        EVENTS,
        10_000,
        &stage(mode, &format!("[stages.limits]\n{limits}")),
    );
    let out = run_weir(dir, &[], timeout);
    assert_success(&out);

    let dlq = dead_letters(dir);
    assert_eq!(
        ids(&dlq),
        vec![BAD_ID],
        "exactly the bad event is a dead letter; stderr:\n{}",
        out.stderr
    );
    let dead = &dlq[0];
    assert_eq!(dead["value"], json!({"id": BAD_ID, "trigger": true}));
    assert_provenance(dead, STAGE);

    let delivered = ids(&default_out(dir));
    let expected: Vec<usize> = (0..EVENTS).filter(|&i| i != BAD_ID).collect();
    assert_eq!(delivered.len(), expected.len(), "delivered count");
    assert_eq!(delivered, expected, "every other event, in order");
    (reason(dead).to_owned(), out)
}

#[test]
fn an_infinite_loop_is_stopped_by_the_batch_deadline() {
    let (reason, _) =
        one_bad_event_among_many("loop", "max_batch_ms = 300\n", Duration::from_secs(60));
    assert!(
        reason.contains("CPU time limit") && reason.contains("300 ms"),
        "{reason}"
    );
}

/// Memory bomb: the plugin may not grow past 64 MiB, and the host itself
/// stays far from the bomb's appetite (it would take all the machine's memory
/// otherwise). The bound, 600 MiB, is the host (~50 MiB), the 64 MiB memory
/// of the instance that blew up and a fresh one, and the 1,000-event batch
/// copies, with a wide margin.
#[test]
fn a_memory_bomb_hits_the_memory_limit_and_the_host_stays_bounded() {
    let (reason, out) =
        one_bad_event_among_many("memory", "max_memory_mib = 64\n", Duration::from_secs(30));
    assert!(
        reason.contains("memory limit") && reason.contains("64 MiB"),
        "{reason}"
    );
    assert!(
        out.peak_rss < 600 * MIB,
        "host RSS peaked at {} MiB (bound 600 MiB)",
        out.peak_rss / MIB
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_trap() {
    let (reason, _) = one_bad_event_among_many("recursion", "", Duration::from_secs(30));
    assert!(
        reason.starts_with("plugin trapped:") && reason.contains("stack overflow"),
        "{reason}"
    );
}

#[test]
fn a_panic_is_a_trap_that_isolates_the_event() {
    let (reason, _) = one_bad_event_among_many("panic", "", Duration::from_secs(30));
    assert!(
        reason.starts_with("plugin trapped:") && reason.contains("panicked"),
        "{reason}"
    );
}

#[test]
fn a_huge_output_is_refused_by_the_output_limit() {
    let (reason, _) = one_bad_event_among_many(
        "huge-output",
        "max_output_mib = 4\n",
        Duration::from_secs(30),
    );
    assert!(
        reason.starts_with("plugin output of") && reason.contains("(4 MiB per batch)"),
        "{reason}"
    );
    // The output it refused is at least the 32 MiB value.
    let bytes: u64 = reason
        .trim_start_matches("plugin output of ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {reason}"));
    assert!(bytes >= 32 * MIB, "{reason}");
}

/// Fuel, when set, stops a runaway loop without waiting for the wall-clock
/// deadline (here a minute per batch: bisecting the 1,000 events by deadline
/// alone would take ten minutes).
#[test]
fn fuel_stops_an_infinite_loop_long_before_the_deadline() {
    let (reason, out) = one_bad_event_among_many(
        "loop",
        "max_batch_ms = 60000\nfuel = 200000000\n",
        Duration::from_secs(60),
    );
    assert!(reason.to_lowercase().contains("fuel"), "{reason}");
    assert!(
        out.elapsed < Duration::from_secs(45),
        "took {:?}",
        out.elapsed
    );
}

// ---------------------------------------------------------------------------
// A panic in init
// ---------------------------------------------------------------------------

#[test]
fn a_panic_in_init_fails_the_start_naming_the_stage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, 10, |_| false);
    write_pipeline(
        dir,
        FILE_SOURCE,
        10,
        20,
        &named_stage("exploding-init", "panic-init", ""),
    );
    let out = run_weir(dir, &[], Duration::from_secs(30));
    // A clean refusal: an error exit, not a crash of the host (a Rust panic
    // exits 101, a signal has no code).
    assert!(
        matches!(out.status.code(), Some(code) if code != 0 && code != 101),
        "weir must refuse the stage with an error, not start it or crash ({:?}); stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("thread 'main'"),
        "the host panicked; stderr:\n{}",
        out.stderr
    );
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line; stderr:\n{}", out.stderr));
    assert!(
        error.contains("exploding-init")
            && error.contains("init")
            && error.to_lowercase().contains("panic"),
        "the error must name the stage and say init panicked: {error}"
    );
    assert!(default_out(dir).is_empty(), "no output may be written");
    assert!(
        dead_letters(dir).is_empty(),
        "no dead letter may be written"
    );
}

// ---------------------------------------------------------------------------
// File system
// ---------------------------------------------------------------------------

/// The outcome header `result` of each event, by id.
fn results(dir: &Path, out: &Outcome) -> BTreeMap<usize, String> {
    assert_success(out);
    assert!(
        dead_letters(dir).is_empty(),
        "probes never fail an event: {:#?}",
        dead_letters(dir)
    );
    default_out(dir)
        .iter()
        .map(|r| {
            let result = r["headers"]["result"]
                .as_str()
                .unwrap_or_else(|| panic!("no result header in {r}"));
            (id(r), result.to_owned())
        })
        .collect()
}

/// A fresh folder with a granted-to-be `data/` inside and things around it
/// the plugin must never reach:
/// - `secret.txt` (beside `data/`),
/// - `data/file.txt`,
/// - `data/link-out` → `../secret.txt`, `data/link-abs` → `<abs>/secret.txt`,
/// - `data/dir-out` → `..` (the folder above `data/`).
fn sandbox_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("secret.txt"), "top secret").expect("write secret");
    let data = dir.join("data");
    std::fs::create_dir(&data).expect("create data");
    std::fs::write(data.join("file.txt"), "granted content").expect("write file");
    std::os::unix::fs::symlink("../secret.txt", data.join("link-out")).expect("symlink");
    std::os::unix::fs::symlink(dir.join("secret.txt"), data.join("link-abs")).expect("symlink");
    std::os::unix::fs::symlink("..", data.join("dir-out")).expect("symlink");
    tmp
}

fn fs_event(id: usize, op: &str, path: &str) -> Value {
    json!({"id": id, "op": op, "path": path})
}

fn assert_err(results: &BTreeMap<usize, String>, id: usize, what: &str) {
    let result = results
        .get(&id)
        .unwrap_or_else(|| panic!("event {id} ({what}) was not delivered"));
    assert!(result.starts_with("err:"), "{what}: {result}");
}

fn assert_nothing_leaked(results: &BTreeMap<usize, String>) {
    for (id, result) in results {
        assert!(
            !result.contains("top secret") && !result.contains("root:"),
            "event {id} read something it must not: {result}"
        );
    }
}

#[test]
fn without_grants_the_file_system_is_unreachable() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_file = dir.join("data/file.txt").display().to_string();
    let host_escape = dir.join("escape.txt").display().to_string();
    write_events(
        dir,
        &[
            fs_event(0, "read", "/etc/passwd"),
            fs_event(1, "list", "/"),
            fs_event(2, "read", &host_file),
            fs_event(3, "read", "data/file.txt"),
            fs_event(4, "write", &host_escape),
            fs_event(5, "list", "."),
            fs_event(6, "read", "/data/file.txt"),
        ],
    );
    write_pipeline(dir, FILE_SOURCE, 100, 20, &stage("fs", ""));
    let out = run_weir(dir, &[], Duration::from_secs(30));
    let results = results(dir, &out);
    assert_eq!(results.len(), 7, "{results:#?}");
    for (id, what) in [
        (0, "reading /etc/passwd"),
        (1, "listing /"),
        (2, "reading a host path"),
        (3, "reading a relative path"),
        (4, "writing a host path"),
        (5, "listing ."),
        (6, "reading an ungranted /data"),
    ] {
        assert_err(&results, id, what);
    }
    assert_nothing_leaked(&results);
    assert!(
        !dir.join("escape.txt").exists(),
        "the plugin wrote on the host"
    );
}

#[test]
fn a_read_only_grant_allows_reading_inside_it_only() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_secret = dir.join("secret.txt").display().to_string();
    write_events(
        dir,
        &[
            fs_event(0, "read", "/data/file.txt"),
            fs_event(1, "list", "/data"),
            fs_event(2, "write", "/data/new.txt"),
            fs_event(3, "read", "/data/../../etc/passwd"),
            fs_event(4, "read", "/data/../secret.txt"),
            fs_event(5, "symlink-read", "/data/link-out"),
            fs_event(6, "symlink-read", "/data/link-abs"),
            fs_event(7, "read", "/data/dir-out/secret.txt"),
            fs_event(8, "read", "/etc/passwd"),
            fs_event(9, "read", &host_secret),
            fs_event(10, "write", "/data/file.txt"),
            fs_event(11, "write", "/data/dir-out/escape.txt"),
        ],
    );
    write_pipeline(
        dir,
        FILE_SOURCE,
        100,
        20,
        &stage(
            "fs",
            "[stages.grants]\ndirs = [{ path = \"data\", guest = \"/data\", mode = \"ro\" }]\n",
        ),
    );
    let out = run_weir(dir, &[], Duration::from_secs(30));
    let results = results(dir, &out);
    assert_eq!(results.len(), 12, "{results:#?}");
    assert_eq!(results[&0], "ok:granted content");
    assert_eq!(
        results[&1], "ok:4",
        "file.txt, link-out, link-abs and dir-out"
    );
    for (id, what) in [
        (2, "creating a file in a read-only grant"),
        (3, "escaping with ../../"),
        (4, "escaping with ../"),
        (5, "following a relative symlink out of the grant"),
        (6, "following an absolute symlink out of the grant"),
        (7, "following a directory symlink out of the grant"),
        (8, "reading /etc/passwd"),
        (9, "reading a host path"),
        (10, "overwriting a file in a read-only grant"),
        (11, "writing through a directory symlink"),
    ] {
        assert_err(&results, id, what);
    }
    assert_nothing_leaked(&results);
    assert!(!dir.join("data/new.txt").exists(), "wrote into a ro grant");
    assert!(!dir.join("escape.txt").exists(), "wrote out of the grant");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/file.txt")).expect("read back"),
        "granted content"
    );
}

#[test]
fn a_read_write_grant_writes_inside_it_only() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_escape = dir.join("escape4.txt").display().to_string();
    let root_escape = format!("/weir-sandbox-escape-{}.txt", std::process::id());
    let events = [
        json!({"id": 0, "op": "write", "path": "/data/new.txt", "content": "hello from the sandbox"}),
        fs_event(1, "read", "/data/new.txt"),
        fs_event(2, "write", "/data/../escape1.txt"),
        fs_event(3, "write", "/data/dir-out/escape2.txt"),
        json!({"id": 4, "op": "write", "path": "/data/link-out", "content": "overwritten"}),
        fs_event(5, "write", &root_escape),
        fs_event(6, "write", &host_escape),
        fs_event(7, "symlink-read", "/data/link-out"),
        fs_event(8, "read", "/data/link-abs"),
        fs_event(9, "list", "/data"),
    ];
    write_events(dir, &events);
    write_pipeline(
        dir,
        FILE_SOURCE,
        100,
        20,
        &stage(
            "fs",
            "[stages.grants]\ndirs = [{ path = \"data\", guest = \"/data\", mode = \"rw\" }]\n",
        ),
    );
    let out = run_weir(dir, &[], Duration::from_secs(30));
    let leaked_to_root = Path::new(&root_escape).exists();
    if leaked_to_root {
        let _ = std::fs::remove_file(&root_escape);
    }
    let results = results(dir, &out);
    assert_eq!(results.len(), 10, "{results:#?}");
    assert_eq!(results[&0], "ok:22");
    assert_eq!(results[&1], "ok:hello from the sandbox");
    for (id, what) in [
        (2, "writing above the grant with ../"),
        (3, "writing through a directory symlink"),
        (4, "writing through a file symlink out of the grant"),
        (5, "writing at the guest's /"),
        (6, "writing a host path"),
        (7, "reading through a relative symlink"),
        (8, "reading through an absolute symlink"),
    ] {
        assert_err(&results, id, what);
    }
    assert_eq!(results[&9], "ok:5", "the 4 fixtures and new.txt");
    assert_nothing_leaked(&results);
    assert!(
        !leaked_to_root,
        "the plugin wrote {root_escape} on the host"
    );

    // The file is on the host, in the granted folder, and only there.
    assert_eq!(
        std::fs::read_to_string(dir.join("data/new.txt")).expect("the written file"),
        "hello from the sandbox"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.txt")).expect("secret"),
        "top secret"
    );
    let top: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "cache",
        "data",
        "in.jsonl",
        "out",
        "pipeline.toml",
        "plugins",
        "secret.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(top, expected, "nothing written beside the grant");
    let data: BTreeSet<String> = std::fs::read_dir(dir.join("data"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        data,
        ["dir-out", "file.txt", "link-abs", "link-out", "new.txt"]
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    );
}

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
    let out = run_weir(dir, &[], Duration::from_secs(30));
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
    let out = run_weir(
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
    let out = run_weir(dir, &[], Duration::from_secs(30));
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

// ---------------------------------------------------------------------------
// Slow plugin and backpressure
// ---------------------------------------------------------------------------

/// A plugin sleeping 20 ms per event behind a source that could go much
/// faster: everything is delivered, and the host does not buffer the input.
///
/// The bound: events are 1 MiB, 200 of them (200 MiB in all), 10 per batch.
/// With the bounded queues the host holds a handful of batches (the batcher,
/// the stage's input queue, the batch in the plugin and its copies in the
/// plugin's memory): ~100 MiB over its own ~50 MiB. A host reading the
/// source ahead of the plugin would hold the whole 200 MiB plus those
/// copies, over 300 MiB.
#[test]
fn a_slow_plugin_slows_the_source_down_and_memory_stays_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let source = "[source]\ntype = \"generate\"\nschema = \"sized\"\nsize = 1048576\nrate = 100000\ncount = 200\n";
    write_pipeline(dir, source, 10, 20, &stage("slow", "sleep_ms = 20\n"));
    let out = run_weir(dir, &[], Duration::from_secs(60));
    assert_success(&out);
    let delivered = default_out(dir);
    let offsets: Vec<i64> = delivered
        .iter()
        .map(|r| r["source"]["offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>(), "all, in order");
    assert!(dead_letters(dir).is_empty());
    // 200 × 20 ms = 4 s of sleeping: the plugin really was the bottleneck.
    assert!(
        out.elapsed >= Duration::from_secs(2),
        "200 events at 20 ms each took only {:?}",
        out.elapsed
    );
    assert!(
        out.peak_rss < 300 * MIB,
        "host RSS peaked at {} MiB (bound 300 MiB)",
        out.peak_rss / MIB
    );
}

// ---------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------

/// 100 events; every 10th (ids 9, 19, ..., 99) panics the plugin.
const BREAKER_EVENTS: usize = 100;

fn breaker_trigger(id: usize) -> bool {
    id % 10 == 9
}

fn breaker_run(action: &str) -> (tempfile::TempDir, Outcome) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, BREAKER_EVENTS, breaker_trigger);
    write_pipeline(
        dir,
        FILE_SOURCE,
        10,
        20,
        &stage(
            "panic",
            &format!(
                "[stages.circuit_breaker]\nmax_faults = 3\nwindow_secs = 60\naction = \"{action}\"\n"
            ),
        ),
    );
    let out = run_weir(dir, &[], Duration::from_secs(60));
    (tmp, out)
}

fn is_breaker(reason: &str) -> bool {
    reason.contains("circuit breaker")
}

/// Checks what holds whatever the action: no event twice, no triggered event
/// delivered, the delivered ones in order, the dead letters either a
/// triggered event's trap or the open breaker, and nothing delivered after
/// the breaker opened. Returns the ids accounted for (delivered or dead) and
/// the first event dead-lettered by the open breaker, if any.
fn check_breaker_outputs(dir: &Path) -> (BTreeSet<usize>, Option<usize>) {
    let delivered = ids(&default_out(dir));
    let dlq = dead_letters(dir);
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(delivered, sorted, "delivered in order");
    assert!(
        delivered.iter().all(|&id| !breaker_trigger(id)),
        "a triggered event was delivered: {delivered:?}"
    );
    let mut seen = BTreeSet::new();
    for &id in &delivered {
        assert!(seen.insert(id), "event {id} twice");
    }
    for r in &dlq {
        assert!(
            seen.insert(id(r)),
            "event {} twice (or delivered and dead)",
            id(r)
        );
        assert_provenance(r, STAGE);
        let reason = reason(r);
        if !is_breaker(reason) {
            assert!(
                breaker_trigger(id(r)) && reason.starts_with("plugin trapped:"),
                "event {} dead for {reason:?}",
                id(r)
            );
        }
    }
    let first_open = dlq.iter().filter(|r| is_breaker(reason(r))).map(id).min();
    if let Some(first_open) = first_open {
        assert!(
            delivered.iter().all(|&id| id < first_open),
            "delivered after the breaker opened at {first_open}: {delivered:?}"
        );
    }
    (seen, first_open)
}

#[test]
fn the_circuit_breaker_dead_letters_everything_once_open() {
    let (tmp, out) = breaker_run("dead_letter");
    let dir = tmp.path();
    assert_success(&out);
    let (seen, first_open) = check_breaker_outputs(dir);
    assert!(
        first_open.is_some(),
        "no dead letter says \"circuit breaker\": {:#?}\nstderr:\n{}",
        dead_letters(dir).iter().map(reason).collect::<Vec<_>>(),
        out.stderr
    );
    assert_eq!(
        seen,
        (0..BREAKER_EVENTS).collect::<BTreeSet<_>>(),
        "default + dead letters = input"
    );
    // By the third triggered event (29) the stage has faulted at least 3
    // times: every later event is dead with the breaker's reason.
    let dlq = dead_letters(dir);
    let by_id: BTreeMap<usize, &str> = dlq.iter().map(|r| (id(r), reason(r))).collect();
    for id in 30..BREAKER_EVENTS {
        let reason = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("event {id} is not a dead letter"));
        assert!(is_breaker(reason), "event {id}: {reason}");
    }
}

#[test]
fn the_circuit_breaker_can_stop_the_pipeline_without_losing_events() {
    let (tmp, out) = breaker_run("stop");
    let dir = tmp.path();
    assert!(
        !out.status.success(),
        "weir exited 0 though the breaker was set to stop; stderr:\n{}",
        out.stderr
    );
    let tripped = out.stderr.lines().any(|l| {
        let l = l.to_lowercase();
        l.contains("circuit breaker") && l.contains("trip")
    });
    assert!(
        tripped,
        "no log line says the breaker tripped:\n{}",
        out.stderr
    );

    assert!(
        !out.stderr.contains("were not delivered"),
        "the host reports undelivered events:\n{}",
        out.stderr
    );
    let (seen, _) = check_breaker_outputs(dir);
    // Everything read is accounted for: the delivered and dead events are
    // exactly the first `n` of the input (the file is read in order), at
    // least the first batch with the first triggered event...
    let n = seen.len();
    assert!(n >= 10, "only {n} events accounted for: {seen:?}");
    assert_eq!(
        seen,
        (0..n).collect::<BTreeSet<_>>(),
        "a gap: an event read was lost"
    );
    // ...and, if the host reports how many it read, exactly those.
    let read = out
        .stderr
        .lines()
        .find(|l| l.contains("pipeline finished"))
        .and_then(|l| l.split("events_in=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(read) = read {
        assert_eq!(n, read, "events read vs delivered + dead");
    }
    // ...and so does the source when it closes: every chunk it handed out
    // acknowledged as delivered (dead letters included), none failed.
    let closed = out
        .stderr
        .lines()
        .find(|l| l.contains("source closed"))
        .unwrap_or_else(|| panic!("no `source closed` line; stderr:\n{}", out.stderr));
    let field = |name: &str| {
        closed
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {name}= in {closed}"))
    };
    assert_eq!(field("failed"), 0, "{closed}");
    assert_eq!(field("delivered"), n, "{closed}");
}
