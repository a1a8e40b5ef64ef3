//! Hot reload under a Kafka stream (issue #5 with the Kafka source and sink):
//! 50 swaps of the `tagger` plugin while events keep arriving on the input
//! topic; every input is in the output topic exactly once, in partition
//! order, and within each partition the plugin version never goes back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

use crate::kafka::{
    PARTITIONS, Reader, Weir, assert_all_present, id_of, json, pipeline, send, timed, topics,
    wait_committed,
};
use crate::reload::{sha256_hex, variant};
use crate::support::{Broker, plugin};

/// Produces `{"i": n}` to `in` (partition `n % 4`, key `k<n>`) at ~200 events/s
/// until `stop`, then stores how many it produced in `count`.
fn produce_until(addr: &str, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) {
        for _ in 0..10 {
            let (key, payload) = (format!("k{i}"), json(i));
            let record = BaseRecord::to("in")
                .partition((i % PARTITIONS as u64) as i32)
                .key(&key)
                .payload(&payload);
            send(&producer, record);
            i += 1;
        }
        producer.poll(Duration::from_millis(50));
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush the produced events");
    count.store(i, Ordering::Release);
}

fn serving(status_file: &std::path::Path) -> Option<String> {
    let status: Value = serde_json::from_slice(&std::fs::read(status_file).ok()?).ok()?;
    status["stages"]["work"]["sha256"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn kafka_fifty_swaps_under_a_stream_lose_and_repeat_nothing() {
    timed(Duration::from_secs(420), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite();
        topics(&broker);
        let file = pipeline(
            tmp.path(),
            "swap",
            &broker,
            "g-swap",
            ("tagger", "tag = \"t\""),
        );
        let toml = std::fs::read_to_string(&file).expect("pipeline");
        std::fs::write(
            &file,
            toml.replace(
                "[reload]\nenabled = false",
                "[reload]\ndebounce_ms = 50\npoll_interval_ms = 20",
            )
            .replace("max_events = 1024", "max_events = 64"),
        )
        .expect("pipeline");
        let status_file = tmp.path().join("cache").join("status-swap.json");
        let plugins = tmp.path().join("plugins");
        let base = std::fs::read(plugin("tagger")).expect("read tagger");

        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicU64::new(0));
        let producer = {
            let (stop, produced, addr) = (stop.clone(), produced.clone(), broker.addr());
            std::thread::spawn(move || produce_until(&addr, stop, produced))
        };
        let mut weir = Weir::start(&file, tmp.path().join("weir.log"));

        let mut generation: HashMap<String, u32> = HashMap::new();
        generation.insert(sha256_hex(&base)[..12].to_string(), 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while serving(&status_file).is_none() {
            weir.assert_running();
            assert!(Instant::now() < deadline, "never served: {}", weir.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        for k in 1..=50u32 {
            let bytes = variant(&base, k);
            let full = sha256_hex(&bytes);
            generation.insert(full[..12].to_string(), k);
            let aside = plugins.join(".tagger.wasm.tmp");
            std::fs::write(&aside, &bytes).expect("write");
            std::fs::rename(&aside, plugins.join("tagger.wasm")).expect("rename");
            let deadline = Instant::now() + Duration::from_secs(60);
            while serving(&status_file).as_deref() != Some(full.as_str()) {
                weir.assert_running();
                assert!(
                    Instant::now() < deadline,
                    "version {k} not serving: {}",
                    weir.log()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        stop.store(true, Ordering::Release);
        producer.join().expect("producer thread");
        let n = produced.load(Ordering::Acquire);
        assert!(n > 1_000, "the stream kept flowing during the swaps: {n}");

        // Offsets are committed only after delivery: all committed = all out.
        let per_partition = n / PARTITIONS as u64;
        let want: Vec<Option<i64>> = (0..PARTITIONS as u64)
            .map(|p| Some((per_partition + u64::from(p < n % PARTITIONS as u64)) as i64))
            .collect();
        wait_committed(
            &broker,
            "g-swap",
            &want,
            &mut weir,
            Duration::from_secs(180),
        );
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());

        let mut out = Reader::new(&broker, "out");
        out.until(Duration::from_secs(120), "output", &[&weir], |r| {
            r.len() as u64 >= n
        });
        out.settle(Duration::from_millis(500));
        let dups = assert_all_present(&out.records, n);
        assert_eq!(dups, 0, "a clean run delivers each event exactly once");

        // Per (output partition, input partition), inputs come in order and
        // the version that produced them never goes back.
        let mut last: HashMap<(i32, u64), (u64, u32)> = HashMap::new();
        let mut seen = HashSet::new();
        for r in &out.records {
            let i = id_of(&r.value);
            let v = r
                .headers
                .get("weir.version.work")
                .expect("provenance header");
            let g = *generation
                .get(v)
                .unwrap_or_else(|| panic!("unknown version {v}"));
            seen.insert(g);
            let key = (r.partition, i % PARTITIONS as u64);
            if let Some((prev_i, prev_g)) = last.insert(key, (i, g)) {
                assert!(prev_i < i, "order broken: {prev_i} before {i}");
                assert!(
                    g >= prev_g,
                    "input partition {} went back from generation {prev_g} to {g}",
                    key.1
                );
            }
        }
        assert!(
            seen.len() > 25,
            "most versions served events under the stream: {} of 51",
            seen.len()
        );
    });
}
