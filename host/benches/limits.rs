//! What the sandbox's CPU limits cost: the `upper` map at batch 1024 on
//! engines with no CPU limit, with the epoch deadline (weir's default), and
//! with fuel metering, same events, same run. Prints events/s and ratios.
//!
//! Run: `cargo bench -p weir --bench limits`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::event::{Event, Position};
use weir::pipeline::{Batch, Stage, StageSpec};
use weir::plugin::{EngineOptions, LimitsConfig, PluginEngine};
use weir::telemetry::StageStats;

mod common;

fn events(n: usize) -> Vec<Event> {
    let stream: Arc<str> = "bench".into();
    (0..n)
        .map(|i| {
            let mut v = format!("{{\"id\":{i},\"payload\":\"");
            while v.len() < 198 {
                v.push('x');
            }
            v.push_str("\"}");
            Event::new(
                v.into_bytes(),
                0,
                Position::new(stream.clone(), 0, i as i64),
            )
        })
        .collect()
}

fn stage(options: EngineOptions, fuel: u64, wasm: &Path) -> Stage {
    let engine = Arc::new(PluginEngine::new(options).expect("engine"));
    let plugin = engine.load_file(wasm).expect("load");
    let mut spec = StageSpec::new("bench", plugin, "{}");
    spec.instance.limits = LimitsConfig {
        fuel,
        ..LimitsConfig::default()
    };
    Stage::start(spec, engine, Arc::new(StageStats::default())).expect("stage")
}

/// Events/s of `stage` over `input` for about `min`.
fn rate(stage: &mut Stage, input: &[Event], min: Duration) -> f64 {
    let mut run = |events: Vec<Event>| {
        let mut b = Batch {
            events,
            ..Batch::default()
        };
        stage.process(&mut b);
        assert!(b.dead.is_empty(), "dead letters: {}", b.dead[0].reason);
        b.events.len()
    };
    for chunk in input.chunks(1024).take(16) {
        run(chunk.to_vec());
    }
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < min {
        for chunk in input.chunks(1024) {
            n += run(chunk.to_vec());
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let wasm = common::build_plugins(&["upper"]).remove(0);
    let input = events(32 * 1024);
    let min = Duration::from_secs(
        std::env::var("WEIR_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let base = EngineOptions {
        pooling: true,
        cache: None,
        fuel: false,
        epoch_interruption: false,
    };
    let mut stages = [
        stage(base.clone(), 0, &wasm),
        stage(
            EngineOptions {
                epoch_interruption: true,
                ..base.clone()
            },
            0,
            &wasm,
        ),
        stage(
            EngineOptions {
                epoch_interruption: true,
                fuel: true,
                ..base
            },
            u64::MAX / 2,
            &wasm,
        ),
    ];
    // Interleave the configurations over several rounds and keep each one's
    // best round, so machine noise does not favour whichever ran last.
    let rounds = 5;
    let mut best = [0f64; 3];
    for _ in 0..rounds {
        for (b, s) in best.iter_mut().zip(stages.iter_mut()) {
            *b = b.max(rate(s, &input, min / rounds));
        }
    }
    let [none, epoch, fuel] = best;
    println!("weir limits benchmark: upper map, 200-byte events, batch 1024, one thread");
    println!("{:<28} {:>12} {:>8}", "CPU limit", "events/s", "ratio");
    println!("{:<28} {none:>12.0} {:>7.2}x", "none (baseline)", 1.0);
    println!(
        "{:<28} {epoch:>12.0} {:>7.2}x",
        "epoch deadline (default)",
        epoch / none
    );
    println!("{:<28} {fuel:>12.0} {:>7.2}x", "epoch + fuel", fuel / none);
}
