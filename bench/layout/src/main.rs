//! Bare-wasmtime benchmark of the candidate batch layouts for
//! `weir:plugin@0.2.0` (issue #13, item 1): today's records, primitive
//! columns, and one packed byte buffer. Each layout has a hand-written guest
//! (wit-bindgen, no SDK) doing a passthrough and an ASCII-uppercase map; the
//! figure is host encode + call + guest decode/encode + host decode into
//! weir-shaped events, against a native Rust map over the same events.
//!
//! Run from the repository root. `--workspace` resolves dependency features
//! as every other workspace build does (`-p weir-layout-bench` alone would
//! resolve fewer and recompile wasmtime); the first release build of
//! wasmtime takes ~12 minutes on 2 cores.
//!
//! ```sh
//! cargo build --release --workspace --bin layout-bench && target/release/layout-bench
//! ```
//!
//! Figures come from `--release`: in the dev profile wasmtime's debug
//! assertions type-check every `realloc` call into the guest, which inflates
//! the per-list cost of a call (the dev build is fine for `cargo test`).
//!
//! `LAYOUT_BENCH_SECS` (default 4) is the thread CPU time per figure, split
//! over `LAYOUT_BENCH_ROUNDS` (default 20) interleaved rounds; each figure is
//! its best round. A run takes about 50 × `LAYOUT_BENCH_SECS`.

mod columns;
mod decode;
mod engine;
mod model;
mod packed;
mod records;
mod report;
mod runner;

use std::hint::black_box;
use std::time::Duration;

use wasmtime::{Result, bail, ensure};

use model::Event;
use runner::{Op, Runner};

/// CPU time this thread has used. On a shared machine the time a benchmark
/// spends descheduled is not the cost of the code, so rates are per CPU
/// second of the measuring thread (everything here runs on it).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` over `input` in batches of `batch` (each an owned copy, as
/// weir's `Stage::process` receives them) until `min` of thread CPU time has
/// passed; returns events per CPU second. `batch` 0 makes empty calls and
/// returns calls per CPU second.
fn measure(
    input: &[Event],
    batch: usize,
    min: Duration,
    mut f: impl FnMut(Vec<Event>) -> Result<usize>,
) -> Result<f64> {
    if batch == 0 {
        for _ in 0..256 {
            f(Vec::new())?;
        }
        let started = thread_cpu();
        let mut calls = 0u64;
        while thread_cpu() - started < min {
            for _ in 0..256 {
                black_box(f(Vec::new())?);
            }
            calls += 256;
        }
        return Ok(calls as f64 / (thread_cpu() - started).as_secs_f64());
    }
    for chunk in input.chunks(batch).take(64) {
        f(chunk.to_vec())?;
    }
    let started = thread_cpu();
    let mut n = 0usize;
    while thread_cpu() - started < min {
        for chunk in input.chunks(batch) {
            n += f(chunk.to_vec())?;
        }
    }
    Ok(n as f64 / (thread_cpu() - started).as_secs_f64())
}

/// The 1/5/15-minute load averages, for the record.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Checks once that every layout returns what the native code computes.
fn check(runners: &mut [Box<dyn Runner>], input: &[Event]) -> Result<()> {
    for r in runners.iter_mut() {
        for batch in [0, 1, 7, 64] {
            let events = &input[..batch];
            let up = r.process(Op::Upper, events)?;
            let pass = r.process(Op::Passthrough, events)?;
            let none = r.process(Op::DropAll, events)?;
            ensure!(
                up.errors.is_empty() && pass.errors.is_empty(),
                "{}: errors",
                r.name()
            );
            ensure!(
                none.outputs.is_empty(),
                "{}: drop-all returned events",
                r.name()
            );
            ensure!(up.outputs.len() == batch && pass.outputs.len() == batch);
            for (i, ev) in events.iter().enumerate() {
                let (u, p) = (&up.outputs[i], &pass.outputs[i]);
                if u.input as usize != i || p.input as usize != i || u.route.is_some() {
                    bail!("{}: wrong input index or route at {i}", r.name());
                }
                ensure!(
                    p.event == *ev,
                    "{}: passthrough changed event {i}",
                    r.name()
                );
                ensure!(
                    u.event == model::native_upper(ev),
                    "{}: upper differs from native at {i}",
                    r.name()
                );
            }
        }
    }
    Ok(())
}

/// `LAYOUT_BENCH_PROFILE=LAYOUT:OP:BATCH` (e.g. `columns:upper:1024`): runs
/// that one variant for `secs` and prints its rate, for `perf record`.
fn profile(runners: &mut [Box<dyn Runner>], input: &[Event], spec: &str, secs: f64) -> Result<()> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [layout, op, batch] = parts[..] else {
        bail!("LAYOUT_BENCH_PROFILE is LAYOUT:OP:BATCH, not {spec:?}");
    };
    let op = match op {
        "pass" | "passthrough" => Op::Passthrough,
        "upper" => Op::Upper,
        "drop-all" => Op::DropAll,
        other => bail!("unknown op {other:?} (pass, upper, drop-all)"),
    };
    let batch: usize = batch.parse()?;
    let Some(r) = runners.iter_mut().find(|r| r.name() == layout) else {
        bail!("unknown layout {layout:?}");
    };
    let min = Duration::from_secs_f64(secs);
    let rate = measure(input, batch, min, |events| {
        Ok(black_box(r.process(op, &events)?).outputs.len())
    })?;
    println!("{spec}: {rate:.0}/s, {:.0} ns each", 1e9 / rate);
    Ok(())
}

fn main() -> Result<()> {
    let secs: f64 = env_or("LAYOUT_BENCH_SECS", 4.0);
    let rounds: u32 = env_or("LAYOUT_BENCH_ROUNDS", 20);
    let per_round = Duration::from_secs_f64(secs / f64::from(rounds));
    let [records_wasm, columns_wasm, packed_wasm] = engine::build_guests()?;
    let host = engine::Host::new()?;
    let mut runners: Vec<Box<dyn Runner>> = vec![
        Box::new(records::RecordsRunner::new(
            &host,
            &host.component(&records_wasm)?,
        )?),
        Box::new(columns::ColumnsRunner::new(
            &host,
            &host.component(&columns_wasm)?,
        )?),
        Box::new(packed::PackedRunner::new(
            &host,
            &host.component(&packed_wasm)?,
        )?),
    ];
    // 16 Ki events (~8 MB with their allocations): batches are L3-warm, like
    // a batch a source has just written, and other tenants of the machine
    // disturb the figures less than with the `throughput` bench's 64 Ki.
    let load_before = load();
    let input = model::events(16 * 1024);
    check(&mut runners, &input)?;
    if let Ok(spec) = std::env::var("LAYOUT_BENCH_PROFILE") {
        return profile(&mut runners, &input, &spec, secs);
    }
    println!(
        "layout benchmark: {}-byte JSON values, a key and one header per event; \
         host encode + call + guest + host decode; best of {rounds} interleaved rounds of {:.2} s",
        model::EVENT_SIZE,
        per_round.as_secs_f64()
    );

    // The main table: every layout, both maps, and the native map, at each
    // batch size; batch 0 is an empty call (the fixed cost alone).
    let mut table = report::Table::default();
    for batch in [0usize, 1, 64, 1024] {
        let slice = if batch <= 1 {
            &input[..4096]
        } else {
            &input[..]
        };
        let mut all = Vec::with_capacity(rounds as usize);
        for _ in 0..rounds {
            let mut rates = Vec::with_capacity(1 + 2 * runners.len());
            rates.push(measure(slice, batch, per_round, |events| {
                let out: Vec<Event> = events.iter().map(model::native_upper).collect();
                Ok(black_box(out).len())
            })?);
            for r in runners.iter_mut() {
                for op in [Op::Passthrough, Op::Upper] {
                    rates.push(measure(slice, batch, per_round, |events| {
                        let out = r.process(op, &events)?;
                        Ok(black_box(out).outputs.len())
                    })?);
                }
            }
            all.push(rates);
        }
        table.add(batch, all);
    }
    let names: Vec<&str> = runners.iter().map(|r| r.name()).collect();
    table.print(&names);

    // Where the time goes at batch 1024, per event: the same batches through
    // less and less of the path.
    let mut clone_best = 0f64;
    let mut parts = vec![[0f64; 5]; runners.len()];
    for _ in 0..rounds {
        clone_best = clone_best.max(measure(&input, 1024, per_round, |events| {
            Ok(black_box(events).len())
        })?);
        for (r, best) in runners.iter_mut().zip(parts.iter_mut()) {
            let rates = [
                measure(&input, 1024, per_round, |events| {
                    black_box(r.encode(&events));
                    Ok(events.len())
                })?,
                measure(&input, 1024, per_round, |events| {
                    black_box(r.call(Op::DropAll, &events)?);
                    Ok(events.len())
                })?,
                measure(&input, 1024, per_round, |events| {
                    black_box(r.call(Op::Passthrough, &events)?);
                    Ok(events.len())
                })?,
                measure(&input, 1024, per_round, |events| {
                    Ok(black_box(r.process(Op::Passthrough, &events)?)
                        .outputs
                        .len())
                })?,
                measure(&input, 1024, per_round, |events| {
                    Ok(black_box(r.process(Op::Upper, &events)?).outputs.len())
                })?,
            ];
            for (b, r) in best.iter_mut().zip(rates) {
                *b = b.max(r);
            }
        }
    }
    report::breakdown(&names, 1e9 / clone_best, &parts);
    println!();
    println!(
        "load average at the start: {load_before}; at the end: {}",
        load()
    );
    Ok(())
}
