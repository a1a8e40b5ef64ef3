//! Fast tests against rdkafka's in-process `MockCluster` (the delivery and
//! crash tests run against a real broker: host/tests/all/kafka.rs).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::*;
use crate::kafka::PropertyValue;
use crate::pipeline::AckStatus;

fn produce(brokers: &str, topic: &str, partitions: i32, n: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let record = BaseRecord::to(topic)
            .partition((i as i32) % partitions)
            .key(&key)
            .payload(&value)
            .timestamp(1_700_000_000_000 + i as i64);
        producer.send(record).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("flush produced records");
}

/// A mock cluster whose topic `in` has `partitions` partitions holding
/// `records` records; its bootstrap servers.
fn cluster_with(
    partitions: i32,
    records: usize,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("in", partitions, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "in", partitions, records);
    (cluster, brokers)
}

fn config(brokers: &str, topic: &str, group: &str) -> KafkaSourceConfig {
    KafkaSourceConfig {
        brokers: brokers.to_owned(),
        topics: vec![topic.to_owned()],
        group_id: group.to_owned(),
        start: StartPosition::Earliest,
        buffer_events: 100,
        revoke_timeout_ms: 5_000,
        properties: Properties::from([(
            "auto.commit.interval.ms".to_owned(),
            PropertyValue::Integer(100),
        )]),
    }
}

fn committed(brokers: &str, topic: &str, group: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

async fn read_n(source: &mut KafkaSource, n: usize) -> Vec<Vec<Event>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut chunks = Vec::new();
    let mut total = 0;
    while total < n {
        assert!(Instant::now() < deadline, "read {total} of {n} in 30 s");
        let read = tokio::time::timeout(Duration::from_secs(30), source.read(64))
            .await
            .expect("read in time")
            .expect("read")
            .expect("not exhausted");
        assert!(!read.events.is_empty() && read.events.len() <= 64);
        total += read.events.len();
        chunks.push(read.events);
    }
    chunks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_everything_in_partition_order_and_commits_after_acks() {
    let (_cluster, brokers) = cluster_with(4, 2000);

    let mut source = config(&brokers, "in", "g1").build().expect("source");
    let stats = source.stats();
    let chunks = read_n(&mut source, 2000).await;
    let events: Vec<&Event> = chunks.iter().flatten().collect();
    assert_eq!(events.len(), 2000, "nothing extra before acks");
    for p in 0..4 {
        let offsets: Vec<i64> = events
            .iter()
            .filter(|e| e.position.partition == p)
            .map(|e| e.position.offset)
            .collect();
        assert_eq!(offsets, (0..500).collect::<Vec<i64>>(), "partition {p}");
    }
    let e = events
        .iter()
        .find(|e| e.position.partition == 1 && e.position.offset == 3)
        .expect("event");
    assert_eq!(&*e.position.stream, "in");
    assert_eq!(e.key.as_deref(), Some(&b"k13"[..]));
    assert_eq!(&e.value[..], b"v13");
    assert_eq!(e.timestamp_ms, 1_700_000_000_013);

    // Nothing is committed before the acks.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(committed(&brokers, "in", "g1", 4), vec![None; 4]);

    // Ack all but the first chunk: still nothing for the partitions it holds.
    let n = chunks.len() as u64;
    for chunk in (1..n).rev() {
        source
            .ack(Ack {
                chunk,
                events: 0,
                status: AckStatus::Delivered,
            })
            .await
            .expect("ack");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first: Vec<i32> = chunks[0].iter().map(|e| e.position.partition).collect();
    let c = committed(&brokers, "in", "g1", 4);
    for p in 0..4 {
        if first.contains(&p) {
            assert_eq!(c[p as usize], None, "partition {p} waits for chunk 0");
        }
    }
    source
        .ack(Ack {
            chunk: 0,
            events: 0,
            status: AckStatus::Delivered,
        })
        .await
        .expect("ack");
    source.close().await.expect("close");
    assert_eq!(committed(&brokers, "in", "g1", 4), vec![Some(500); 4]);
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.len(), 4, "{snapshot:?}");
    assert!(
        snapshot.iter().all(|p| p.committed == Some(500)),
        "{snapshot:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ack_stops_the_source_and_commits_only_the_prefix() {
    let (_cluster, brokers) = cluster_with(1, 300);

    let mut source = config(&brokers, "in", "g2").build().expect("source");
    let chunks = read_n(&mut source, 300).await;
    let ack = |chunk: u64, status| Ack {
        chunk,
        events: 0,
        status,
    };
    source
        .ack(ack(0, AckStatus::Delivered))
        .await
        .expect("first ack");
    let err = source
        .ack(ack(1, AckStatus::Failed))
        .await
        .expect_err("a failed chunk is an error");
    assert!(err.to_string().contains("in[0]"), "{err}");
    for c in 2..chunks.len() as u64 {
        let _ = source.ack(ack(c, AckStatus::Delivered)).await;
    }
    source.close().await.expect("close");
    let end_of_first = chunks[0].last().map(|e| e.position.offset + 1);
    assert_eq!(committed(&brokers, "in", "g2", 1), vec![end_of_first]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_pauses_without_losing_records() {
    let (_cluster, brokers) = cluster_with(2, 5000);
    let mut cfg = config(&brokers, "in", "g3");
    cfg.buffer_events = 50;
    let mut source = cfg.build().expect("source");
    // Let the consumer fill its buffer while nobody reads.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let buffered = source.shared.lock().buffer.len();
    assert!(
        buffered <= 50 + consumer::POLL_BATCH,
        "{buffered} records buffered"
    );
    let chunks = read_n(&mut source, 5000).await;
    let mut seen: Vec<(i32, i64)> = chunks
        .iter()
        .flatten()
        .map(|e| (e.position.partition, e.position.offset))
        .collect();
    assert_eq!(seen.len(), 5000);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5000, "no record twice");
    source.close().await.expect("close");
}

#[test]
fn config_checks_name_the_field() {
    let mut c = config("b:9092", "t", "g");
    assert!(c.validate().is_ok());
    c.properties
        .insert("enable.auto.offset.store".into(), PropertyValue::Bool(true));
    assert_eq!(
        c.validate().expect_err("reserved").field(),
        "properties.\"enable.auto.offset.store\""
    );
    let mut c = config("b:9092", "t", "g");
    c.properties
        .insert("no.such.property".into(), PropertyValue::Integer(1));
    let err = c.validate().expect_err("unknown property");
    assert_eq!(err.field(), "properties.\"no.such.property\"", "{err:?}");
    let mut c = config("b:9092", "t", "g");
    c.topics.clear();
    assert_eq!(c.validate().expect_err("no topics").field(), "topics");
}

/// Records the rebalances it is told of; starts partition `p` at `10 * p`
/// (partition 0: no known position, the group's start applies).
#[derive(Default)]
struct Listener {
    assigned: std::sync::Mutex<Vec<TopicPartition>>,
    revoked: std::sync::Mutex<Vec<TopicPartition>>,
}

impl Assignments for Listener {
    fn assigned(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>, String> {
        self.assigned
            .lock()
            .expect("lock")
            .extend(partitions.iter().cloned());
        Ok(partitions
            .iter()
            .filter(|(_, p)| *p > 0)
            .map(|tp| (tp.clone(), 10 * i64::from(tp.1)))
            .collect())
    }

    fn revoked(&self, partitions: &[TopicPartition], _drained: bool) {
        self.revoked
            .lock()
            .expect("lock")
            .extend(partitions.iter().cloned());
    }
}

/// An assigned partition starts where the listener says, not at the
/// group's start; a shutdown lets the partitions go without telling the
/// listener of a revocation (keyed state stays for the next run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_partitions_start_where_the_listener_says() {
    let (_cluster, brokers) = cluster_with(4, 400);
    let listener = Arc::new(Listener::default());
    let mut source = config(&brokers, "in", "g-listen")
        .build_with(Some(listener.clone()))
        .expect("source");
    // 100 records per partition, minus 10, 20 and 30 skipped.
    let chunks = read_n(&mut source, 340).await;
    let events: Vec<&Event> = chunks.iter().flatten().collect();
    assert_eq!(events.len(), 340);
    for p in 0..4 {
        let first = events
            .iter()
            .filter(|e| e.position.partition == p)
            .map(|e| e.position.offset)
            .min();
        assert_eq!(first, Some(10 * i64::from(p)), "partition {p}");
    }
    let mut assigned = listener.assigned.lock().expect("lock").clone();
    assigned.sort();
    assert_eq!(
        assigned,
        (0..4).map(|p| (Arc::from("in"), p)).collect::<Vec<_>>()
    );
    source.close().await.expect("close");
    assert!(listener.revoked.lock().expect("lock").is_empty());
}

/// A header name that is not UTF-8 (Kafka does not check names; rdkafka's
/// own header reader panics on one, which ended the consumer thread and
/// stalled the source): read lossily, the record and the ones after it
/// arrive, with their other headers, keys and values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_that_is_not_utf8_is_read_lossily() {
    use rdkafka::bindings as rd;
    use rdkafka::message::{BorrowedHeaders, Header, OwnedHeaders};

    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("in", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let headers = OwnedHeaders::new().insert(Header {
        key: "ok",
        value: Some("1"),
    });
    // rdkafka's producer API takes `&str` names: add the raw one below it.
    let raw: *mut rd::rd_kafka_headers_t =
        std::ptr::from_ref::<BorrowedHeaders>(headers.as_borrowed())
            .cast_mut()
            .cast();
    let name = b"bad\xff\xfename";
    // SAFETY: `raw` is the live headers object `headers` owns; librdkafka
    // copies the name and value.
    let err = unsafe {
        rd::rd_kafka_header_add(
            raw,
            name.as_ptr().cast(),
            name.len() as isize,
            b"v".as_ptr().cast(),
            1,
        )
    };
    assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
    let record = BaseRecord::to("in")
        .key("k0")
        .payload("v0")
        .headers(headers);
    producer.send(record).expect("enqueue");
    producer
        .send(BaseRecord::to("in").key("k1").payload("v1"))
        .expect("enqueue");
    producer.flush(Duration::from_secs(10)).expect("flush");

    let mut source = config(&brokers, "in", "g-headers").build().expect("source");
    let events: Vec<Event> = read_n(&mut source, 2).await.into_iter().flatten().collect();
    assert_eq!(events.len(), 2);
    let got: Vec<(&str, &[u8])> = events[0]
        .headers
        .iter()
        .map(|h| (&*h.name, &h.value[..]))
        .collect();
    let want: [(&str, &[u8]); 2] = [("ok", b"1"), ("bad\u{fffd}\u{fffd}name", b"v")];
    assert_eq!(got, want);
    assert_eq!(events[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(&events[1].value[..], b"v1");
    source.close().await.expect("close");
}
