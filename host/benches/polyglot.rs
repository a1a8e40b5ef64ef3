//! The same plugin in Rust, Python and JavaScript, same run:
//!
//! 1. events/s and µs/event of the same JSON field map (parse, uppercase
//!    `user`, write back) at batch 1, 64 and 1024, through `Stage::process`
//!    (the host's batch encode, the call, the decode), ratio vs Rust; plus
//!    the Python `pass` floor (the SDK and the crossing, no work), the same
//!    Python plugin built against contract 0.1.1 (the record batch) beside
//!    0.2.0 (the packed batch, the default), and where a Python event's time
//!    goes at batch 1024 on each contract (`py-raw`: the batch crossing
//!    alone; `drop`: + the SDK's events; `pass`: + the outputs back);
//! 2. start-up per language: component size, compile, cached load,
//!    instantiate + init, and linear memory per instance;
//! 3. fraud scoring end to end (`weir run`, file in → file out, the fraud
//!    model): `fraud-features-py` (on 0.2.0, and on 0.1.1) vs the Rust
//!    `fraud-features`.
//!
//! Run: `cargo bench -p weir --bench polyglot [-- PART...]` (`WEIR_BENCH_SECS`,
//! default 3, per figure; PART is `map`, `breakdown`, `startup` or `fraud`,
//! all when none is named). The Python and JS components are built with `weir plugin
//! build` (cached by content), the Rust ones with cargo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::event::{Event, Position};
use weir::pipeline::{Batch, Stage, StageSpec};
use weir::plugin::{ArtifactCache, EngineOptions, InstanceConfig, PluginEngine};
use weir::telemetry::StageStats;

mod common;

const EVENT_SIZE: usize = 200;
const ROUNDS: u32 = 3;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weir_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// The frozen contract the Python SDK's record codec speaks.
const OLD_CONTRACT: &str = "wit/released/0.1.1";

/// `weir plugin build DIR --out OUT [--wit WIT]`.
fn build_guest(dir: &Path, out: &Path, wit: Option<&str>) -> PathBuf {
    let mut cmd = weir_bin();
    cmd.args(["plugin", "build"]).arg(dir).arg("--out").arg(out);
    if let Some(wit) = wit {
        cmd.arg("--wit").arg(workspace().join(wit));
    }
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run weir plugin build");
    assert!(output.status.success(), "building {} failed", dir.display());
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// ~200-byte JSON events with a `user` field, like the throughput benchmark's.
fn events(n: usize) -> Vec<Event> {
    let stream: Arc<str> = "bench".into();
    (0..n)
        .map(|i| {
            let head = format!("{{\"id\":{i},\"user\":\"u{}\",\"payload\":\"", i % 977);
            let pad = EVENT_SIZE - head.len() - 2;
            let value = format!("{head}{}\"}}", &"abcdefghij".repeat(pad / 10 + 1)[..pad]);
            Event::new(
                value.into_bytes(),
                0,
                Position::new(stream.clone(), (i % 4) as i32, i as i64),
            )
        })
        .collect()
}

fn stage(engine: &Arc<PluginEngine>, wasm: &Path, params: &str) -> Stage {
    let plugin = engine.load_file(wasm).expect("load plugin");
    let spec = StageSpec::new("bench", plugin, params);
    Stage::start(spec, engine.clone(), Arc::new(StageStats::default())).expect("stage")
}

/// Events/s through `stage` at `batch`, for at least `min`.
fn rate(stage: &mut Stage, input: &[Event], batch: usize, min: Duration) -> f64 {
    let mut run = |events: Vec<Event>| {
        let n = events.len();
        let mut b = Batch {
            events,
            ..Batch::default()
        };
        stage.process(&mut b);
        assert!(
            b.dead.is_empty(),
            "unexpected dead letters: {}",
            b.dead[0].reason
        );
        std::hint::black_box(&b.events);
        n
    };
    for chunk in input.chunks(batch).take(16) {
        run(chunk.to_vec());
    }
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < min {
        for chunk in input.chunks(batch) {
            n += run(chunk.to_vec());
            if started.elapsed() >= min {
                break;
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

struct Guest {
    lang: &'static str,
    /// The column's name.
    label: &'static str,
    wasm: PathBuf,
    params: &'static str,
    /// Runs the JSON map (its output is checked against Rust's); `false`
    /// for a floor such as the SDK's `pass` mode.
    maps: bool,
}

fn map_throughput(engine: &Arc<PluginEngine>, guests: &[Guest], extra: &[Guest], min: Duration) {
    let input = events(16 * 1024);
    let all: Vec<&Guest> = guests.iter().chain(extra).collect();
    let mut stages: Vec<Stage> = all
        .iter()
        .map(|g| stage(engine, &g.wasm, g.params))
        .collect();
    // The same JSON out of every guest that maps, whatever its language and
    // contract (Rust's serde_json writes the keys sorted, Python and JS in
    // input order: compared as values).
    let mut first: Option<Vec<serde_json::Value>> = None;
    for (g, s) in all.iter().zip(stages.iter_mut()).filter(|(g, _)| g.maps) {
        let mut b = Batch {
            events: input[..16].to_vec(),
            ..Batch::default()
        };
        s.process(&mut b);
        let out: Vec<serde_json::Value> = b
            .events
            .iter()
            .map(|e| serde_json::from_slice(&e.value).expect("JSON out"))
            .collect();
        match &first {
            None => first = Some(out),
            Some(want) => assert_eq!(&out, want, "{} and {} differ", g.label, all[0].label),
        }
    }

    println!(
        "1. the same JSON field map (parse, uppercase `user`, write back), {EVENT_SIZE}-byte events, one thread"
    );
    print!("{:>6}", "batch");
    for g in &all {
        print!(" {:>14} {:>8}", format!("{} ev/s", g.label), "µs/ev");
    }
    println!("  python/rust  js/rust  python 0.2.0/0.1.1  js 0.2.0/0.1.1");
    for batch in [1usize, 64, 1024] {
        let slice = if batch == 1 {
            &input[..2048]
        } else {
            &input[..]
        };
        let mut best = vec![0f64; stages.len()];
        for _ in 0..ROUNDS {
            for (i, s) in stages.iter_mut().enumerate() {
                best[i] = best[i].max(rate(s, slice, batch, min / ROUNDS));
            }
        }
        print!("{batch:>6}");
        for r in &best {
            print!(" {r:>14.0} {:>8.2}", 1e6 / r);
        }
        let at = |label: &str| {
            all.iter()
                .position(|g| g.label == label)
                .map(|i| best[i])
                .expect("a guest of that label")
        };
        println!(
            "  {:>10.3}x {:>7.3}x {:>18.2}x {:>14.2}x",
            at("python") / at("rust"),
            at("js") / at("rust"),
            at("python") / at("python 0.1.1"),
            at("js") / at("js 0.1.1")
        );
    }
    println!();
}

/// Python at batch 1024, layer by layer, on each contract (µs per event,
/// best of rounds): `(label, py-modes, py-raw)` per contract.
fn python_breakdown(engine: &Arc<PluginEngine>, contracts: &[(&str, &Path, &Path)], min: Duration) {
    let input = events(16 * 1024);
    let mut us = Vec::new();
    for (_, py, raw) in contracts {
        let mut stages = [
            stage(engine, raw, "{}"),
            stage(engine, py, r#"{"mode": "drop"}"#),
            stage(engine, py, r#"{"mode": "pass"}"#),
            stage(engine, py, r#"{"mode": "json-map"}"#),
        ];
        let mut best = [0f64; 4];
        for _ in 0..ROUNDS {
            for (b, s) in best.iter_mut().zip(stages.iter_mut()) {
                *b = b.max(rate(s, &input, 1024, min / ROUNDS));
            }
        }
        us.push(best.map(|r| 1e6 / r));
    }
    println!("where a Python event's time goes at batch 1024 (µs per event):");
    print!("{:<68}", "");
    for (label, _, _) in contracts {
        print!(" {label:>8}");
    }
    println!();
    let rows = [
        "  the batch crossing into Python (py-raw: no SDK, no output)",
        "  + the SDK's Event per input, the function call (drop)",
        "  + the outputs written and returned to the host (pass)",
        "  + the JSON map itself (json.loads, upper, json.dumps)",
    ];
    for (i, row) in rows.iter().enumerate() {
        print!("{row:<68}");
        for u in &us {
            print!(" {:>8.2}", if i == 0 { u[0] } else { u[i] - u[i - 1] });
        }
        println!();
    }
    print!("{:<68}", "  total (json-map)");
    for u in &us {
        print!(" {:>8.2}", u[3]);
    }
    println!();
    println!();
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn startup(guests: &[Guest]) {
    println!(
        "2. start-up (best of 3; compile is Cranelift on this machine, cached load deserializes the artifact)"
    );
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>18} {:>14}",
        "lang", "size MiB", "compile ms", "cached load ms", "instantiate+init ms", "memory MiB"
    );
    let cache_dir = tempfile::tempdir().expect("tempdir");
    for g in guests {
        let wasm = std::fs::read(&g.wasm).expect("read");
        let (mut compile, mut load, mut inst) = (f64::MAX, f64::MAX, f64::MAX);
        let mut memory = 0;
        for round in 0..3 {
            let dir = cache_dir.path().join(format!("{}-{round}", g.lang));
            let engine = Arc::new(
                PluginEngine::new(EngineOptions {
                    cache: Some(ArtifactCache::new(&dir)),
                    ..EngineOptions::default()
                })
                .expect("engine"),
            );
            let t = Instant::now();
            engine.load_bytes(g.lang, &wasm).expect("compile");
            compile = compile.min(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let loaded = engine.load_bytes(g.lang, &wasm).expect("cached load");
            load = load.min(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let mut instance = engine
                .instantiate(&loaded, &InstanceConfig::new("bench"))
                .expect("instantiate");
            instance.init(g.params).expect("init");
            inst = inst.min(t.elapsed().as_secs_f64() * 1e3);
            memory = instance.memory_bytes();
        }
        println!(
            "{:>8} {:>10.1} {:>12.0} {:>14.1} {:>18.2} {:>14.1}",
            g.lang,
            mib(wasm.len()),
            compile,
            load,
            inst,
            mib(memory)
        );
    }
    println!();
}

/// `weir run` of `examples/fraud/pipeline.toml` reading `input` (instead of
/// generating) with the plugin `wasm` as its `fraud-features` stage (its
/// `card-history` stage is the Rust plugin, `history`); returns the elapsed
/// time of the run (the component is compiled first, in a warm-up run, so
/// this is a cached start). Each run starts without keyed state.
fn fraud_run(dir: &Path, history: &Path, wasm: &Path, input: &Path, events: usize) -> f64 {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::copy(history, plugins.join("card-history.wasm")).expect("copy");
    std::fs::copy(wasm, plugins.join("fraud-features.wasm")).expect("copy");
    let _ = std::fs::remove_dir_all(dir.join(".weir-state"));
    let example = workspace().join("examples/fraud");
    let text = std::fs::read_to_string(example.join("pipeline.toml")).expect("read example");
    let mut config: toml::Table = toml::from_str(&text).expect("example is TOML");
    config.insert("name".into(), "fraud-bench".into());
    let source: toml::Table = [
        ("type".to_owned(), "file".into()),
        ("path".to_owned(), input.display().to_string().into()),
    ]
    .into_iter()
    .collect();
    config.insert("source".into(), source.into());
    let model = example.join("model/fraud.onnx");
    config["models"]["fraud"]
        .as_table_mut()
        .expect("[models.fraud]")
        .insert("path".into(), model.display().to_string().into());
    std::fs::write(
        dir.join("pipeline.toml"),
        toml::to_string(&config).expect("toml"),
    )
    .expect("write pipeline");
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let t = Instant::now();
    let status = weir_bin()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run weir");
    let elapsed = t.elapsed().as_secs_f64();
    assert!(status.success(), "weir run failed");
    let lines = std::fs::read(dir.join("out/scores.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0);
    assert_eq!(lines, events, "every event scored");
    elapsed
}

fn fraud(history: &Path, rust: &Path, python: &Path, python_old: &Path) {
    let events = 100_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("txns.jsonl");
    let out = weir_bin()
        .args(["generate", "--schema", "card-transactions", "--seed", "42"])
        .args(["--count", &events.to_string()])
        .output()
        .expect("weir generate");
    assert!(out.status.success());
    std::fs::write(&input, out.stdout).expect("write input");
    let (rdir, pdir, odir) = (
        tmp.path().join("rust"),
        tmp.path().join("python"),
        tmp.path().join("python-0.1.1"),
    );
    // Warm-up: compiles the components into each run's cache.
    fraud_run(&rdir, history, rust, &input, events);
    fraud_run(&pdir, history, python, &input, events);
    fraud_run(&odir, history, python_old, &input, events);
    let (mut r, mut p, mut o) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        r = r.min(fraud_run(&rdir, history, rust, &input, events));
        p = p.min(fraud_run(&pdir, history, python, &input, events));
        o = o.min(fraud_run(&odir, history, python_old, &input, events));
    }
    println!(
        "3. fraud scoring end to end: `weir run` of examples/fraud (the Rust `card-history` stage, then the scoring plugin), {events} card transactions from a file, one model call per batch of 256"
    );
    println!("{:>14} {:>10} {:>12}", "plugin", "seconds", "events/s");
    println!("{:>14} {:>10.2} {:>12.0}", "rust", r, events as f64 / r);
    println!("{:>14} {:>10.2} {:>12.0}", "python", p, events as f64 / p);
    println!(
        "{:>14} {:>10.2} {:>12.0}",
        "python 0.1.1",
        o,
        events as f64 / o
    );
    println!(
        "python takes {:.2}x the Rust plugin's time (target: within 3x); on 0.1.1 {:.2}x",
        p / r,
        o / r
    );
}

fn main() {
    let min = Duration::from_secs(
        std::env::var("WEIR_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let rust = common::build_plugins(&["json-map", "fraud-features", "card-history"]);
    let out = workspace().join("target/test-plugins/guest/bench");
    let old = out.join("0.1.1");
    let guest = |dir: &str, out: &Path, wit| build_guest(&workspace().join(dir), out, wit);
    let py = guest("tests/polyglot/py-modes", &out, None);
    let js = guest("tests/polyglot/js-map", &out, None);
    let js_old = guest("tests/polyglot/js-map", &old, Some(OLD_CONTRACT));
    let raw = guest("tests/polyglot/py-raw", &out, None);
    let fraud_py = guest("plugins/fraud-features-py", &out, None);
    let py_old = guest("tests/polyglot/py-modes", &old, Some(OLD_CONTRACT));
    let raw_old = guest("tests/polyglot/py-raw", &old, Some(OLD_CONTRACT));
    let fraud_py_old = guest("plugins/fraud-features-py", &old, Some(OLD_CONTRACT));

    let guests = [
        Guest {
            lang: "rust",
            label: "rust",
            wasm: rust[0].clone(),
            params: "{}",
            maps: true,
        },
        Guest {
            lang: "python",
            label: "python",
            wasm: py.clone(),
            params: r#"{"mode": "json-map"}"#,
            maps: true,
        },
        Guest {
            lang: "js",
            label: "js",
            wasm: js,
            params: "{}",
            maps: true,
        },
    ];
    let extra = [
        Guest {
            lang: "python",
            label: "py pass",
            wasm: py.clone(),
            params: r#"{"mode": "pass"}"#,
            maps: false,
        },
        Guest {
            lang: "js",
            label: "js 0.1.1",
            wasm: js_old,
            params: "{}",
            maps: true,
        },
        Guest {
            lang: "python",
            label: "python 0.1.1",
            wasm: py_old.clone(),
            params: r#"{"mode": "json-map"}"#,
            maps: true,
        },
    ];
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
    let engine = Arc::new(PluginEngine::new(EngineOptions::default()).expect("engine"));
    if part("map") {
        map_throughput(&engine, &guests, &extra, min);
    }
    if part("breakdown") {
        python_breakdown(
            &engine,
            &[("0.1.1", &py_old, &raw_old), ("0.2.0", &py, &raw)],
            min,
        );
    }
    if part("startup") {
        startup(&guests);
    }
    if part("fraud") {
        fraud(&rust[2], &rust[1], &fraud_py, &fraud_py_old);
    }
}
