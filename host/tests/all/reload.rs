//! Hot reload under a running stream: versions swap at batch boundaries with
//! nothing lost or repeated; bad versions are refused; deleting keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Pipeline, plugin, read_jsonl, read_jsonl_or_empty, weir};

/// `base` with a custom section naming generation `k`: the same behaviour,
/// a different content hash (version).
pub(crate) fn variant(base: &[u8], k: u32) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"weir-test-generation";
    let payload = k.to_le_bytes();
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.extend_from_slice(&payload);
    let mut out = base.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Replaces the plugin file atomically (write aside, rename in).
fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join(".tagger.wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join("tagger.wasm")).expect("rename");
}

struct Run {
    dir: Option<tempfile::TempDir>,
    child: Child,
}

impl Run {
    fn start(rate: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("mkdir");
        std::fs::copy(plugin("tagger"), plugins.join("tagger.wasm")).expect("copy");
        Pipeline::new(dir.path())
            .default_cache_dir()
            .top("name = \"swap\"")
            .source(&format!(
                "type = \"generate\"\nschema = \"sized\"\nsize = 120\nrate = {rate}\npartitions = 4\n"
            ))
            .batch(64, 10)
            .stage_with("tag", "tagger", "[stages.params]\ntag = \"t\"\n")
            .tables("[reload]\ndebounce_ms = 50\npoll_interval_ms = 20\n")
            .write(dir.path());
        // The log goes to a file: a pipe nobody reads would fill and block weir.
        let log = std::fs::File::create(dir.path().join("weir.log")).expect("log file");
        let child = weir()
            .args(["run", "--quiet"])
            .arg(dir.path().join("pipeline.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start weir");
        let mut run = Self {
            dir: Some(dir),
            child,
        };
        run.wait_for(|r| r.out_len() > 10_000, "output flowing");
        run
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().join(p))
            .unwrap_or_default()
    }

    fn out_len(&self) -> u64 {
        std::fs::metadata(self.path("out.jsonl")).map_or(0, |m| m.len())
    }

    fn status(&self) -> Value {
        std::fs::read(self.path(".weir-cache/status-swap.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    fn serving(&self) -> Option<String> {
        self.status()["stages"]["tag"]["sha256"]
            .as_str()
            .map(str::to_string)
    }

    fn wait_for(&mut self, mut done: impl FnMut(&Self) -> bool, what: &str) {
        // Generous: the test binary runs other heavy tests in parallel on 2 cores.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(
                self.child.try_wait().expect("poll").is_none(),
                "weir exited while waiting for {what}"
            );
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.path("weir.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "timed out waiting for {what}; status: {:#}\nlog tail (newest first):\n{}",
                    self.status(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait, return stderr.
    fn stop(mut self) -> (tempfile::TempDir, String) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = self.child.try_wait().expect("poll") {
                break s;
            }
            assert!(Instant::now() < deadline, "weir did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(self.path("weir.log")).unwrap_or_default();
        assert!(exit.success(), "{err}");
        (self.dir.take().expect("dir"), err)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Every event exactly once, per partition in order; returns the records.
fn check_exactly_once(out: &Path) -> Vec<Value> {
    let records = read_jsonl(out);
    let mut per_partition: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &records {
        per_partition
            .entry(r["source"]["partition"].as_i64().expect("partition"))
            .or_default()
            .push(r["source"]["offset"].as_i64().expect("offset"));
    }
    for (p, offsets) in &per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert!(
            offsets == &expected,
            "partition {p}: lost, repeated or reordered events"
        );
    }
    records
}

#[test]
fn fifty_swaps_under_a_stream_lose_and_repeat_nothing() {
    let base = std::fs::read(plugin("tagger")).expect("read tagger");
    let mut run = Run::start(4000);
    let plugins = run.path("plugins");
    // Generation 0 is the file as started.
    let mut generation: HashMap<String, u32> = HashMap::new();
    generation.insert(sha256_hex(&base)[..12].to_string(), 0);
    for k in 1..=50u32 {
        let bytes = variant(&base, k);
        let full = sha256_hex(&bytes);
        generation.insert(full[..12].to_string(), k);
        install(&plugins, &bytes);
        run.wait_for(
            |r| r.serving().as_deref() == Some(full.as_str()),
            &format!("version {k} serving"),
        );
    }
    let status = run.status();
    assert_eq!(status["swaps"], 50, "{status:#}");
    assert_eq!(status["refusals"], 0, "{status:#}");
    let (dir, _) = run.stop();

    let records = check_exactly_once(&dir.path().join("out.jsonl"));
    // Per partition, the version (provenance header) never goes back.
    let mut last: BTreeMap<i64, u32> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        let v = r["headers"]["weir.version.tag"]
            .as_str()
            .expect("provenance header");
        let g = *generation
            .get(v)
            .unwrap_or_else(|| panic!("unknown version {v}"));
        seen.insert(g);
        let p = r["source"]["partition"].as_i64().expect("partition");
        let prev = last.insert(p, g).unwrap_or(0);
        assert!(
            g >= prev,
            "partition {p} went back from generation {prev} to {g}"
        );
    }
    assert_eq!(seen.len(), 51, "every version served some events: {seen:?}");
}

#[test]
fn bad_versions_are_refused_deletion_keeps_serving_partial_writes_never_load() {
    let base = std::fs::read(plugin("tagger")).expect("read tagger");
    let mut run = Run::start(2000);
    let plugins = run.path("plugins");
    let first = run.serving().expect("serving at start");

    // Not wasm at all: refused, the old version keeps serving.
    install(&plugins, b"this is not a plugin");
    run.wait_for(|r| r.status()["refusals"] == 1, "the refusal");
    let before = run.out_len();
    run.wait_for(
        |r| r.out_len() > before + 20_000,
        "output after the refusal",
    );
    assert_eq!(run.serving().as_deref(), Some(first.as_str()));
    let refused = &run.status()["recent"];
    let entry = refused
        .as_array()
        .and_then(|a| a.iter().find(|e| e["outcome"] == "refused"))
        .expect("a refused entry")
        .clone();
    assert!(
        entry["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("tagger.wasm")),
        "{entry}"
    );
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a WebAssembly component")),
        "{entry}"
    );

    // Deleted: keeps serving, says so.
    std::fs::remove_file(plugins.join("tagger.wasm")).expect("rm");
    run.wait_for(
        |r| {
            r.status()["recent"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["outcome"] == "deleted"))
        },
        "the deletion",
    );
    let before = run.out_len();
    run.wait_for(
        |r| r.out_len() > before + 20_000,
        "output after the deletion",
    );
    assert_eq!(run.serving().as_deref(), Some(first.as_str()));

    // Written in place slowly, in pieces: only the complete file is loaded
    // (no refusal of a half-written file).
    let next = variant(&base, 7);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(plugins.join("tagger.wasm")).expect("create");
        for chunk in next.chunks(next.len() / 8 + 1) {
            f.write_all(chunk).expect("write");
            f.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    let full = sha256_hex(&next);
    run.wait_for(
        |r| r.serving().as_deref() == Some(full.as_str()),
        "the complete new version",
    );
    assert_eq!(
        run.status()["refusals"],
        1,
        "a partial file was loaded: {:#}",
        run.status()
    );

    let (dir, stderr) = run.stop();
    assert!(stderr.contains("refused"), "the refusal is logged");
    check_exactly_once(&dir.path().join("out.jsonl"));
    assert!(read_jsonl_or_empty(&dir.path().join("dlq.jsonl")).is_empty());
}

/// A version prepared and then superseded by the one already serving,
/// before the stage took it, is no swap: the stage keeps what it serves, no
/// swap is counted or logged, and the board says the prepared version was
/// superseded.
#[test]
fn a_version_superseded_by_the_serving_one_is_not_a_swap() {
    use std::io::Write;
    let base = std::fs::read(plugin("tagger")).expect("read tagger");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("tagger.wasm"), &base).expect("copy");
    let pipeline = Pipeline::new(dir)
        .default_cache_dir()
        .top("name = \"idle\"")
        .batch(16, 10)
        .stage_with("tag", "tagger", "[stages.params]\ntag = \"t\"\n")
        .tables("[reload]\ndebounce_ms = 50\npoll_interval_ms = 20\n")
        .write(dir);
    let log = dir.join("weir.log");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(&pipeline)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start weir");
    let status = || -> Value {
        std::fs::read(dir.join(".weir-cache/status-idle.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let has = |outcome: &str, version: &str| {
        status()["recent"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["outcome"] == outcome && e["version"] == version)
        })
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:#}\n{}",
                status(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let serving = sha256_hex(&base);
    wait("serving at start", &|| {
        status()["stages"]["tag"]["sha256"] == serving.as_str()
    });
    // No event arrives: the stage reaches no batch boundary and takes nothing.
    let next = variant(&base, 1);
    let next_id = sha256_hex(&next)[..12].to_string();
    install(&plugins, &next);
    wait("the new version prepared", &|| has("prepared", &next_id));
    install(&plugins, &base);
    wait("the new version superseded", &|| {
        has("superseded", &next_id)
    });

    let mut stdin = child.stdin.take().expect("stdin");
    for i in 0..50 {
        writeln!(stdin, r#"{{"id": {i}}}"#).expect("write");
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("poll") {
            break s;
        }
        assert!(Instant::now() < deadline, "weir did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exit.success(), "{text}");
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(out.len(), 50);
    assert!(
        out.iter()
            .all(|r| r["headers"]["weir.version.tag"] == serving[..12]),
        "every event on the version that served throughout"
    );
    assert_eq!(status()["stages"]["tag"]["swaps"], 0, "{:#}", status());
    assert_eq!(status()["swaps"], 0);
    assert!(!text.contains("plugin swapped"), "{text}");
    assert!(
        text.contains("superseded before the stage took it"),
        "{text}"
    );
}

#[test]
fn the_plugin_directory_removed_keeps_serving_and_recreated_swaps_in() {
    let base = std::fs::read(plugin("tagger")).expect("read tagger");
    let mut run = Run::start(4000);
    let plugins = run.path("plugins");
    std::fs::remove_dir_all(&plugins).expect("remove the plugin directory");
    let log = |r: &Run| std::fs::read_to_string(r.path("weir.log")).unwrap_or_default();
    run.wait_for(
        |r| log(r).contains("plugin file deleted"),
        "the deletion noticed",
    );
    // Still serving the version it runs, events still flowing.
    let before = run.out_len();
    run.wait_for(
        |r| r.out_len() > before + 20_000,
        "output after the removal",
    );
    assert_eq!(
        run.serving().as_deref(),
        Some(sha256_hex(&base).as_str()),
        "the loaded version keeps serving"
    );
    // The directory comes back with a new version: it is watched again.
    std::fs::create_dir_all(&plugins).expect("recreate the plugin directory");
    let next = variant(&base, 1);
    install(&plugins, &next);
    let full = sha256_hex(&next);
    run.wait_for(
        |r| r.serving().as_deref() == Some(full.as_str()),
        "the new version serving",
    );
    let (dir, log) = run.stop();
    assert!(!log.contains("panicked"), "{log}");
    check_exactly_once(&dir.path().join("out.jsonl"));
}
