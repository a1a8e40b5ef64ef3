//! The memory bound the README states ("Resource bounds"): the same
//! pipeline run twice into a slow HTTP sink (the receiver holds every
//! request 300 ms of each 400), once with tiny events (the base) and once
//! with 128 KiB events; the big run's peak RSS stays under the base plus
//! the stated data bound:
//!
//! `stages × parallelism × max_memory_mib`
//! `+ 3 × ((stages + 2) × 2 + 2) × batch.max_events × E`
//! `+ Σ sinks concurrency × batch_max_events × E + 8 × max(64 KiB, E)`
//! (E: the largest event; the last term, the file source's read-ahead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::sinks::receiver::Receiver;
use crate::support::{Pipeline, plugin_dir, run_watched};

const MIB: u64 = 1 << 20;
const EVENTS: usize = 800;
const BATCH: u64 = 32;
const STAGE_MIB: u64 = 48;
const CONCURRENCY: u64 = 2;
const PER_REQUEST: u64 = 8;

/// Peak RSS of the pipeline over `EVENTS` events of `pad` bytes of padding,
/// and what the receiver got.
fn peak_rss(pad: usize) -> (u64, usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["upper"]);
    let filler = "x".repeat(pad);
    let lines: String = (0..EVENTS)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{filler}\"}}\n"))
        .collect();
    std::fs::write(dir.join("in.jsonl"), lines).expect("write input");
    let receiver = Receiver::start();
    Pipeline::new(dir)
        .file_source("in.jsonl")
        .batch(BATCH as usize, 20)
        .stage_with(
            "up",
            "upper",
            &format!("[stages.limits]\nmax_memory_mib = {STAGE_MIB}\n"),
        )
        .output(
            "default",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"ndjson\"\nbatch_max_events = {PER_REQUEST}\nconcurrency = {CONCURRENCY}\ntimeout_ms = 10000\n",
                receiver.url("/in")
            ),
        )
        .write(dir);
    // A slow endpoint: requests held 300 ms of every 400.
    let done = Arc::new(AtomicBool::new(false));
    let slow = {
        let (done, stall) = (done.clone(), receiver.stall_switch());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                stall.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                stall.store(false, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let out = run_watched(dir, &[], Duration::from_secs(300));
    done.store(true, Ordering::SeqCst);
    slow.join().expect("the stalling thread");
    assert!(out.status.success(), "weir failed:\n{}", out.stderr);
    let got: usize = receiver.received().iter().map(|r| r.values().len()).sum();
    (out.hwm.max(out.peak_rss), got)
}

#[test]
fn peak_memory_with_big_events_and_a_slow_sink_stays_under_the_stated_bound() {
    let (base, got) = peak_rss(16);
    assert!(got >= EVENTS, "{got} of {EVENTS} tiny events arrived");
    let pad = 128 * 1024;
    let (big, got) = peak_rss(pad);
    assert!(got >= EVENTS, "{got} of {EVENTS} big events arrived");
    let e = pad as u64 + 64;
    let stages = 1;
    let in_flight_batches = (stages + 2) * 2 + 2;
    let data = stages * STAGE_MIB * MIB
        + 3 * in_flight_batches * BATCH * e
        + CONCURRENCY * PER_REQUEST * e
        + 8 * e.max(64 * 1024);
    eprintln!(
        "bounds: base {} MiB, big events {} MiB, data bound {} MiB (peak above base {} MiB)",
        base / MIB,
        big / MIB,
        data / MIB,
        big.saturating_sub(base) / MIB
    );
    assert!(
        big <= base + data,
        "peak RSS {} MiB over the base {} MiB + the stated bound {} MiB",
        big / MIB,
        base / MIB,
        data / MIB
    );
    // The bound is not vacuous: the big run used memory for its data.
    assert!(big > base + 8 * MIB, "big {big} vs base {base}");
}
