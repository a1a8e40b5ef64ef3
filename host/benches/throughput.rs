//! Events/s through a plugin stage: a WASM byte-level map (the `upper` test
//! plugin: ASCII-uppercase the value) against the same map compiled natively
//! into the host, same events, same run, batch sizes 1, 64 and 1024, one core.
//!
//! Run: `cargo bench -p weir --bench throughput` (prints a table and ratios).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir::event::{Event, Position};
use weir::pipeline::{Batch, Stage, StageSpec};
use weir::plugin::{EngineOptions, PluginEngine};
use weir::telemetry::StageStats;

const EVENT_SIZE: usize = 200;
/// Each figure is the best of this many interleaved rounds.
const ROUNDS: u32 = 3;

mod common;

/// ~200-byte JSON events, like the `sized` generator schema.
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
            .with_key(format!("u{}", i % 977).into_bytes())
        })
        .collect()
}

/// The same events as the line sources make them: values (and keys) are
/// slices of shared 64 KiB blocks, so events of a block share one refcount,
/// not one allocation each.
fn sliced(events: &[Event]) -> Vec<Event> {
    const BLOCK: usize = 64 * 1024;
    let mut out = Vec::with_capacity(events.len());
    let mut rest = events;
    while !rest.is_empty() {
        let mut size = 0;
        let n = rest
            .iter()
            .take_while(|e| {
                size += e.value.len() + e.key.as_ref().map_or(0, Bytes::len);
                size <= BLOCK
            })
            .count()
            .max(1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut block = Vec::with_capacity(BLOCK);
        for e in chunk {
            block.extend_from_slice(&e.value);
            block.extend_from_slice(e.key.as_deref().unwrap_or_default());
        }
        let block = Bytes::from(block);
        let mut at = 0;
        for e in chunk {
            let v = block.slice(at..at + e.value.len());
            at += e.value.len();
            let key = e.key.as_ref().map(|k| {
                let k2 = block.slice(at..at + k.len());
                at += k.len();
                k2
            });
            out.push(Event {
                value: v,
                key,
                ..e.clone()
            });
        }
    }
    out
}

fn native_upper(ev: &Event) -> Event {
    let mut v = ev.value.to_vec();
    v.make_ascii_uppercase();
    Event {
        value: Bytes::from(v),
        ..ev.clone()
    }
}

/// Runs `f` over `input` in batches until at least `min` has passed; returns events/s.
fn measure(
    input: &[Event],
    batch: usize,
    min: Duration,
    mut f: impl FnMut(Vec<Event>) -> usize,
) -> f64 {
    // Warm up.
    for chunk in input.chunks(batch).take(64) {
        f(chunk.to_vec());
    }
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < min {
        for chunk in input.chunks(batch) {
            n += f(chunk.to_vec());
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn stage_for(engine: &Arc<PluginEngine>, dir: &Path, name: &str) -> Stage {
    let plugin = engine
        .load_file(&dir.join(format!("{}.wasm", name.replace('-', "_"))))
        .expect("load plugin");
    let spec = StageSpec::new("bench", plugin, "{}");
    Stage::start(spec, engine.clone(), Arc::new(StageStats::default())).expect("stage")
}

/// Events/s through `stage` at `batch`.
fn wasm_rate(stage: &mut Stage, input: &[Event], batch: usize, min: Duration) -> f64 {
    measure(input, batch, min, |events| {
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
    })
}

/// The table: native and WASM at batch 1, 64 and 1024 over `input`.
fn table(stage: &mut Stage, input: &[Event], min: Duration) {
    println!(
        "{:>6} {:>16} {:>16} {:>12}",
        "batch", "native ev/s", "wasm ev/s", "wasm/native"
    );
    for batch in [1usize, 64, 1024] {
        let slice = if batch == 1 { &input[..4096] } else { input };
        // Interleaved rounds, best of each: machine noise hits both sides.
        let (mut native, mut wasm) = (0f64, 0f64);
        for _ in 0..ROUNDS {
            native = native.max(measure(slice, batch, min / ROUNDS, |events| {
                let out: Vec<Event> = events.iter().map(native_upper).collect();
                std::hint::black_box(&out);
                out.len()
            }));
            wasm = wasm.max(wasm_rate(stage, slice, batch, min / ROUNDS));
        }
        println!(
            "{batch:>6} {native:>16.0} {wasm:>16.0} {:>11.2}x",
            wasm / native
        );
    }
}

fn main() {
    let dir = common::build_plugins(&["upper", "passthrough", "drop-all"])
        .remove(0)
        .parent()
        .expect("a folder")
        .to_path_buf();
    let engine = Arc::new(PluginEngine::new(EngineOptions::default()).expect("engine"));
    let mut stage = stage_for(&engine, &dir, "upper");
    let input = events(64 * 1024);
    let min = Duration::from_secs(
        std::env::var("WEIR_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );

    // Check once that both produce the same bytes.
    let mut check = Batch {
        events: input[..8].to_vec(),
        ..Batch::default()
    };
    stage.process(&mut check);
    for (w, e) in check.events.iter().zip(&input[..8]) {
        assert_eq!(
            w.value,
            native_upper(e).value,
            "WASM and native maps differ"
        );
    }

    let blocks = sliced(&input);
    for (shape, input) in [
        ("one allocation per value and key", &input),
        (
            "values and keys sliced from 64 KiB blocks, as the file source reads them",
            &blocks,
        ),
    ] {
        println!(
            "weir throughput benchmark: byte-level map (ASCII uppercase) on {EVENT_SIZE}-byte JSON events, one thread; input: {shape}"
        );
        table(&mut stage, input, min);
        println!();
    }

    // Where the time goes at batch 1024, per event: the same batches through
    // plugins that do less.
    let mut drop_all = stage_for(&engine, &dir, "drop-all");
    let mut pass = stage_for(&engine, &dir, "passthrough");
    let mut best = [0f64; 5];
    for _ in 0..ROUNDS {
        let m = min / ROUNDS;
        let rates = [
            measure(&input, 1024, m, |events| {
                std::hint::black_box(&events);
                events.len()
            }),
            measure(&input, 1024, m, |events| {
                let out: Vec<Event> = events.iter().map(native_upper).collect();
                std::hint::black_box(&out);
                out.len()
            }),
            wasm_rate(&mut drop_all, &input, 1024, m),
            wasm_rate(&mut pass, &input, 1024, m),
            wasm_rate(&mut stage, &input, 1024, m),
        ];
        for (b, r) in best.iter_mut().zip(rates) {
            *b = b.max(r);
        }
    }
    let [clone_only, native, t_drop, t_pass, t_upper] = best.map(|r| 1e9 / r);
    println!("where the time goes at batch 1024 (ns per event, one allocation per value and key):");
    println!("  copying the input batch (both paths)        {clone_only:>7.0}");
    println!("  native map, total                           {native:>7.0}");
    println!(
        "  wasm: call + batch into the plugin (drop-all) {:>5.0}",
        t_drop - clone_only
    );
    println!(
        "  wasm: + outputs back to the host (passthrough) {:>4.0}",
        t_pass - t_drop
    );
    println!(
        "  wasm: + the uppercase itself (upper)          {:>5.0}",
        t_upper - t_pass
    );
    println!("  wasm map, total                             {t_upper:>7.0}");
}
