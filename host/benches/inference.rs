//! Model runs through weir's registry and batcher: what ONNX Runtime's thread
//! settings do on this machine, and what dynamic batching does for small
//! concurrent calls.
//!
//! `source scripts/setup.sh && cargo bench -p weir --bench inference`
//!
//! The fraud model (`examples/fraud/model/fraud.onnx`, 20 → 16 → 1 MLP) is
//! loaded three times with different `intra_threads` / `inter_threads`; each
//! is called with batches of 64, 256 and 1,024 rows for a fixed time,
//! interleaved over rounds (best kept). Then 4 caller threads send 16-row
//! calls at once to one model with `max_delay_ms = 1`: the rows per model run
//! show the coalescing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use weir::inference::{Infer, ModelConfig, ModelRegistry, Tensor};

const FEATURES: usize = 20;
const ROUNDS: usize = 3;
const RUN: Duration = Duration::from_millis(700);

fn rows(n: usize, seed: u32) -> Vec<f32> {
    (0..n * FEATURES)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32)
        .collect()
}

/// Rows per second of `model` called with `batch` rows, for `RUN`.
fn rate(models: &ModelRegistry, model: &str, batch: usize) -> f64 {
    let data = rows(batch, 7);
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < RUN {
        let input = Tensor::f32("features", vec![batch, FEATURES], data.clone());
        match models.infer(model, vec![input]) {
            Ok(out) => done += out[0].rows(),
            Err(e) => panic!("{model}: {e}"),
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fraud/model/fraud.onnx");
    let threads = [(1, 1), (2, 1), (2, 2)];
    let mut configs = BTreeMap::new();
    for (intra, inter) in threads {
        let mut c = ModelConfig::new(&path);
        c.intra_threads = intra;
        c.inter_threads = inter;
        c.max_batch = 1024;
        c.max_delay_ms = 0;
        configs.insert(format!("t{intra}x{inter}"), c);
    }
    let mut coalesce = ModelConfig::new(&path);
    coalesce.max_batch = 1024;
    coalesce.max_delay_ms = 1;
    configs.insert("coalesce".to_string(), coalesce);
    let models = match ModelRegistry::load(None, &configs) {
        Ok(m) => m,
        Err(e) => panic!("loading the models: {e} (run `source scripts/setup.sh` first)"),
    };

    println!("weir inference benchmark: fraud MLP, rows/s through the registry (best of {ROUNDS})");
    let batches = [64usize, 256, 1024];
    let mut best: BTreeMap<(String, usize), f64> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for &batch in &batches {
            for (intra, inter) in threads {
                let name = format!("t{intra}x{inter}");
                let r = rate(&models, &name, batch);
                let e = best.entry((name, batch)).or_default();
                *e = e.max(r);
            }
        }
    }
    for &batch in &batches {
        let base = best[&("t1x1".to_string(), batch)];
        for (intra, inter) in threads {
            let name = format!("t{intra}x{inter}");
            let r = best[&(name.clone(), batch)];
            println!(
                "batch {batch:>5}  intra {intra} inter {inter}: {r:>12.0} rows/s  ({:.2}x of 1/1)",
                r / base
            );
        }
    }

    // Four callers, 16 rows each per call, at once.
    let calls_per_thread = 2_000;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let models = models.clone();
            s.spawn(move || {
                let data = rows(16, t);
                for _ in 0..calls_per_thread {
                    let input = Tensor::f32("features", vec![16, FEATURES], data.clone());
                    if let Err(e) = models.infer("coalesce", vec![input]) {
                        panic!("coalesce: {e}");
                    }
                }
            });
        }
    });
    let took = start.elapsed().as_secs_f64();
    let total_rows = 4 * calls_per_thread * 16;
    let mut registry = prometheus_client::registry::Registry::default();
    models.register_metrics(&mut registry);
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        panic!("encoding metrics");
    }
    let runs = text
        .lines()
        .find(|l| l.starts_with("weir_inference_batch_rows_count{model=\"coalesce\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    println!(
        "4 callers x {calls_per_thread} calls of 16 rows (max_delay 1 ms): {:.0} rows/s, {runs:.0} model runs for {} calls = {:.1} rows per run",
        total_rows as f64 / took,
        4 * calls_per_thread,
        total_rows as f64 / runs
    );
    models.shutdown();
}
