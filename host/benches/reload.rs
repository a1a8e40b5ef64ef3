//! Hot reload: the pause a swap causes in the output stream, and the time
//! from writing a new plugin file to the new version serving, over 50 swaps
//! of the `tagger` plugin under a steady generated stream. The baseline is
//! the same stream's steady-state gaps between output batches, in the same
//! run, before any swap.
//!
//! Run: `cargo bench -p weir --bench reload`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use weir::app::{Built, build, start_reload, status_path};
use weir::config::PipelineConfig;
use weir::endpoint::EndpointError;
use weir::sink::{Sink, SinkBatch};

mod common;

/// Records when each output batch arrives.
struct Clock(Arc<Mutex<Vec<Instant>>>);

#[async_trait]
impl Sink for Clock {
    fn describe(&self) -> String {
        "clock".into()
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        if let Ok(mut t) = self.0.lock() {
            t.push(Instant::now());
        }
        drop(batch);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        Ok(())
    }
}

/// The plugin with a custom section naming generation `k`.
fn variant(base: &[u8], k: u32) -> Vec<u8> {
    let name = b"weir-bench-generation";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&k.to_le_bytes());
    let mut out = base.to_vec();
    out.push(0);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn max_gap(times: &[Instant], from: Instant, to: Instant) -> f64 {
    times
        .windows(2)
        .filter(|w| w[0] >= from && w[1] <= to)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
        .fold(0.0, f64::max)
}

fn main() {
    let base = std::fs::read(common::build_plugins(&["tagger"]).remove(0)).expect("read tagger");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("tagger.wasm"), &base).expect("write");
    let (rate, batch) = (20_000, 256);
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            r#"
name = "bench"
[source]
type = "generate"
schema = "sized"
size = 200
rate = {rate}
[batch]
max_events = {batch}
max_wait_ms = 50
[[stages]]
name = "tag"
plugin = "tagger"
[stages.params]
tag = "t"
[reload]
debounce_ms = 50
poll_interval_ms = 10
[outputs.default]
type = "stdout"
"#
        ),
    )
    .expect("write pipeline");
    let config = PipelineConfig::from_file(dir.path().join("pipeline.toml")).expect("config");
    let Built {
        mut pipeline,
        reloader,
        plugin_files,
        ..
    } = build(&config).expect("build");
    let times = Arc::new(Mutex::new(Vec::new()));
    pipeline
        .outputs
        .insert("default".into(), Box::new(Clock(times.clone())));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stop = CancellationToken::new();
    start_reload(&config, reloader, plugin_files, stop.clone());
    let run = runtime.spawn(pipeline.run(stop.clone()));

    let status = status_path(&config);
    let serving = || -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
        v["stages"]["tag"]["version"].as_str().map(str::to_string)
    };
    // Steady state first.
    std::thread::sleep(Duration::from_secs(1));
    let steady_from = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let steady_to = Instant::now();

    let mut latencies = Vec::new();
    let swaps_from = Instant::now();
    for k in 1..=50u32 {
        let bytes = variant(&base, k);
        let version = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let tmp = plugins.join(".tagger.tmp");
        std::fs::write(&tmp, &bytes).expect("write");
        let written = Instant::now();
        std::fs::rename(&tmp, plugins.join("tagger.wasm")).expect("rename");
        while serving().as_deref() != Some(version.as_str()) {
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "swap {k} never served"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(written.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(100));
    }
    let swaps_to = Instant::now();
    stop.cancel();
    let _ = runtime.block_on(run);

    let times = times.lock().map(|t| t.clone()).unwrap_or_default();
    let mut steady_gaps: Vec<f64> = times
        .windows(2)
        .filter(|w| w[0] >= steady_from && w[1] <= steady_to)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
        .collect();
    steady_gaps.sort_by(f64::total_cmp);
    let interval = percentile(&steady_gaps, 0.5);
    let steady_max = max_gap(&times, steady_from, steady_to);
    let swap_max = max_gap(&times, swaps_from, swaps_to);
    latencies.sort_by(f64::total_cmp);
    println!(
        "weir hot-reload benchmark: 50 swaps of `tagger` under {rate} events/s, batch {batch}"
    );
    println!("steady state: batch interval p50 {interval:.1} ms, largest gap {steady_max:.1} ms");
    println!(
        "during swaps: largest gap {swap_max:.1} ms = {:.2}x the steady batch interval (target <= 2x)",
        swap_max / interval
    );
    println!(
        "write -> new version serving (new content each time, so compiled, not cached): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target < 1000 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
}
