use std::time::Duration;

use super::*;

fn config(
    schema: SchemaName,
    rate: Option<f64>,
    count: Option<u64>,
    seed: u64,
) -> GenerateSourceConfig {
    GenerateSourceConfig {
        schema,
        size: None,
        devices: None,
        rate,
        count,
        seed,
        partitions: 4,
    }
}

/// A started source of `count` events of `schema` (4 partitions).
fn source(schema: SchemaName, rate: Option<f64>, count: u64, seed: u64) -> GenerateSource {
    config(schema, rate, Some(count), seed)
        .build()
        .expect("build")
}

async fn drain(source: &mut GenerateSource, max: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(read) = source.read(max).await.expect("read") {
        assert!(read.len() <= max, "{} > {max}", read.len());
        assert!(read.rejects.is_empty());
        events.extend(read.events);
    }
    events
}

#[tokio::test]
async fn deterministic_by_seed_and_count_respected() {
    let cfg = config(SchemaName::CardTransactions, None, Some(2_500), 42);
    let a = drain(&mut cfg.build().expect("build"), 300).await;
    let b = drain(&mut cfg.build().expect("build"), 1000).await;
    assert_eq!(a.len(), 2_500);
    let strip = |e: &Event| (e.key.clone(), e.value.clone(), e.position.clone());
    assert_eq!(
        a.iter().map(strip).collect::<Vec<_>>(),
        b.iter().map(strip).collect::<Vec<_>>()
    );
    let other = drain(&mut source(SchemaName::CardTransactions, None, 10, 43), 100).await;
    assert_ne!(other[0].value, a[0].value);
    // The source emits what generate_values prints.
    let values: Vec<Vec<u8>> =
        generate_values(&GenerateSchema::CardTransactions, 42, 2_500).collect();
    assert!(a.iter().zip(&values).all(|(e, v)| e.value[..] == v[..]));
}

#[tokio::test]
async fn positions_partition_by_key_with_dense_offsets() {
    let events = drain(
        &mut source(SchemaName::CardTransactions, None, 4_000, 1),
        512,
    )
    .await;
    let mut next = [0i64; 4];
    for e in &events {
        assert_eq!(&*e.position.stream, "generate");
        let key = e.key.as_ref().expect("key");
        let p = e.position.partition as usize;
        assert_eq!(p as u64, fnv1a(key) % 4);
        assert_eq!(e.position.offset, next[p]);
        next[p] += 1;
        let v: serde_json::Value = serde_json::from_slice(&e.value).expect("json");
        assert_eq!(v["card_id"].as_str().map(str::as_bytes), Some(&key[..]));
    }
    assert!(next.iter().all(|n| *n > 500), "{next:?}");
}

#[tokio::test]
async fn rate_is_roughly_respected() {
    // 1500 events at 5000/s: ~0.3 s. Loose bounds, not to be flaky.
    let mut paced = source(SchemaName::Sized, Some(5_000.0), 1_500, 0);
    let start = std::time::Instant::now();
    let events = drain(&mut paced, 1024).await;
    let took = start.elapsed();
    assert_eq!(events.len(), 1_500);
    assert!(took >= Duration::from_millis(250), "too fast: {took:?}");
    assert!(took < Duration::from_secs(5), "too slow: {took:?}");
}

#[tokio::test]
async fn high_rates_are_paced_per_batch_not_per_event() {
    // 50k events/s for 0.4 s must not take one sleep per event.
    let mut paced = source(SchemaName::Sized, Some(50_000.0), 20_000, 0);
    let start = std::time::Instant::now();
    let mut reads = 0;
    while let Some(read) = paced.read(1024).await.expect("read") {
        assert!(!read.is_empty());
        reads += 1;
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(350), "too fast: {took:?}");
    assert!(took < Duration::from_secs(4), "too slow: {took:?}");
    assert!(reads < 2_000, "{reads} reads for 20000 events");
}

#[test]
fn pacer_allows_the_first_event_at_once_and_caps_backlog() {
    let mut p = Pacer::new(100.0);
    let t0 = Instant::now();
    assert_eq!(p.due(t0), 1);
    p.sent += 1;
    assert_eq!(p.due(t0), 0);
    assert_eq!(p.next_at(), t0 + Duration::from_millis(10));
    assert_eq!(p.due(t0 + Duration::from_millis(105)), 10);
    // Ten seconds behind: at most one second (100 events) due.
    assert_eq!(p.due(t0 + Duration::from_secs(10)), 100);
}

#[tokio::test]
async fn cancelled_paced_read_loses_nothing() {
    let mut paced = source(SchemaName::Sized, Some(20.0), 3, 0);
    let first = paced.read(10).await.expect("read").expect("some");
    assert_eq!(first.len(), 1);
    // The next event is 50 ms away: cancel the wait.
    assert!(
        tokio::time::timeout(Duration::from_millis(5), paced.read(10))
            .await
            .is_err()
    );
    let rest = drain(&mut paced, 10).await;
    let ids: Vec<_> = rest.iter().map(|e| e.key.clone().expect("key")).collect();
    assert_eq!(ids, [Bytes::from("1"), Bytes::from("2")]);
}

#[test]
fn sized_events_have_the_exact_size() {
    for size in [40, 41, 200, 1000, 4096] {
        let values: Vec<_> = generate_values(&GenerateSchema::Sized { size }, 9, 2_000).collect();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(v.len(), size, "event {i} of size {size}");
            let json: serde_json::Value = serde_json::from_slice(v).expect("json");
            assert_eq!(json["id"], i as u64);
        }
    }
    let mut g = SizedGenerator::new(40, 0);
    g.next_id = u64::MAX;
    assert_eq!(g.next_value().1.len(), 40);
}

#[test]
fn validation_names_fields() {
    let mut c = config(SchemaName::CardTransactions, Some(0.0), None, 0);
    assert_eq!(c.validate().expect_err("rate 0").field(), "rate");
    c.rate = Some(f64::NAN);
    assert_eq!(c.validate().expect_err("nan").field(), "rate");
    c.rate = None;
    c.size = Some(100);
    assert_eq!(c.validate().expect_err("size").field(), "size");
    c.schema = SchemaName::Sized;
    c.size = Some(10);
    assert_eq!(c.validate().expect_err("small").field(), "size");
    c.size = Some(100);
    c.partitions = 0;
    assert_eq!(c.validate().expect_err("partitions").field(), "partitions");
    c.partitions = 1;
    assert!(c.validate().is_ok());
    c.devices = Some(5);
    assert_eq!(c.validate().expect_err("not sensors").field(), "devices");
    c.schema = SchemaName::Sensors;
    c.size = None;
    assert!(c.validate().is_ok());
    assert_eq!(c.schema(), GenerateSchema::Sensors { devices: 5 });
    c.devices = Some(0);
    assert_eq!(c.validate().expect_err("no devices").field(), "devices");
    assert_eq!(
        GenerateSchema::from_name("sized", 64, 20),
        Ok(GenerateSchema::Sized { size: 64 })
    );
    assert_eq!(
        GenerateSchema::from_name("sensors", 64, 3),
        Ok(GenerateSchema::Sensors { devices: 3 })
    );
    assert!(GenerateSchema::from_name("sensors", 64, 0).is_err());
    assert!(GenerateSchema::from_name("nope", 64, 20).is_err());
}

#[tokio::test]
async fn sensor_events_carry_their_event_time_and_partition_by_device() {
    let mut c = config(SchemaName::Sensors, None, Some(500), 9);
    c.partitions = 2;
    c.devices = Some(4);
    let events = drain(&mut c.build().expect("build"), 64).await;
    assert_eq!(events.len(), 500);
    for e in &events {
        let v: serde_json::Value = serde_json::from_slice(&e.value).expect("json");
        assert_eq!(v["ts"].as_i64(), Some(e.timestamp_ms));
        let key = e.key.as_ref().expect("key");
        assert_eq!(v["device"].as_str().map(str::as_bytes), Some(&key[..]));
        assert_eq!(e.position.partition as u64, fnv1a(key) % 2);
    }
}
