//! Events/s into the action sinks (http, redis, postgres), batched and one
//! request per event, against each server's own ceiling measured in the same
//! run on the same machine:
//!
//! - redis: `redis-benchmark -P 64 -t set` (the server's pipelined-write
//!   ceiling), and a raw client running the sink's own versioned-upsert
//!   script (the same writes without the sink): one call per batch, as the
//!   sink does, and one call per event, pipelined per batch; and the
//!   unversioned sink (`version = "none"`) against `redis-benchmark -P 64`
//!   runs of the same shape (`HSET` of 5 fields, `SET` of the values' mean
//!   size, over as many keys);
//! - postgres: a raw tokio-postgres loop of the sink's multi-row upsert
//!   statement, one transaction per 500 rows, and `pgbench -n -M prepared
//!   -f` running the same statement on the same batches;
//! - http: a raw reqwest loop POSTing the same NDJSON bodies, 4 at a time,
//!   to the same receiver.
//!
//! Run: `cargo bench -p weir --bench sinks [-- PART...]` (PART: redis,
//! redis-none, postgres, http; default all; starts its own Redis, PostgreSQL
//! and HTTP receiver on loopback; the binaries as for the tests, see
//! docs/setup.md).

#[path = "../tests/all/sinks/receiver.rs"]
#[allow(dead_code)]
mod receiver;
#[path = "sinks/redis.rs"]
mod redis_bench;
#[path = "../tests/all/sinks/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::process::Command;
use std::time::Instant;

use weir::event::{Event, Position};
use weir::pipeline::AckSet;
use weir::sink::{Sink, SinkBatch, SinkConfig, SinkContext};

pub(crate) const N: usize = 100_000;
pub(crate) const BATCH: usize = 500;
pub(crate) const CARDS: usize = 5_000;

fn events(n: usize) -> Vec<Event> {
    let stream: std::sync::Arc<str> = "bench".into();
    (0..n)
        .map(|i| {
            let v = format!(
                "{{\"id\":{i},\"card_id\":\"c{}\",\"ts\":{},\"score\":0.{:03},\"amount\":{}.5}}",
                i % CARDS,
                1000 + i,
                i % 1000,
                i % 300
            );
            Event::new(
                v.into_bytes(),
                0,
                Position::new(stream.clone(), 0, i as i64),
            )
        })
        .collect()
}

pub(crate) fn sink(toml_text: &str) -> Box<dyn Sink> {
    let config: SinkConfig = toml::from_str(toml_text).expect("sink config");
    config.validate().expect("valid sink config");
    let mut sink = config.build().expect("build sink");
    sink.attach(SinkContext::detached("bench"));
    sink
}

/// Events/s through `sink`, `per_send` events per `send`, back to back (a
/// pipeline whose sink always has a batch queued). One event per send is
/// one round trip per event: each is completed (`settle`, as the pipeline
/// does when nothing is queued) before the next, so a sink that overlaps
/// consecutive batches does not pipeline single events here.
pub(crate) async fn through(sink: &mut dyn Sink, events: &[Event], per_send: usize) -> f64 {
    let started = Instant::now();
    for chunk in events.chunks(per_send) {
        sink.send(SinkBatch {
            events: chunk.to_vec(),
            acks: AckSet::default(),
        })
        .await
        .expect("send");
        if per_send == 1 {
            sink.settle().await.expect("settle");
        }
    }
    sink.flush().await.expect("flush");
    events.len() as f64 / started.elapsed().as_secs_f64()
}

pub(crate) fn row(name: &str, rate: f64, ceiling: f64) {
    println!(
        "  {name:<44} {:>10.0} events/s   {:>5.2}x the ceiling",
        rate,
        rate / ceiling
    );
}

async fn bench_postgres(events: &[Event]) {
    let pg = servers::Postgres::start();
    let url = pg.url();
    let config = format!(
        "type = \"postgres\"\nurl = \"{url}\"\ntable = \"scores\"\nkey = \"card_id\"\ncolumns = {{ card_id = \"/card_id\", score = \"/score\", amount = \"/amount\", ts = \"/ts\" }}\ntypes = {{ score = \"double precision\", amount = \"double precision\", ts = \"bigint\" }}\nversion = \"offset\"\ncreate_table = true\n"
    );
    // Creates the table.
    let mut first = sink(&config);
    through(&mut *first, &events[..1], 1).await;
    drop(first);
    pg.query("CREATE TABLE raw (LIKE scores INCLUDING ALL)");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let upsert = "INSERT INTO raw AS t (amount, card_id, score, ts, version) \
        SELECT amount, card_id, score, ts, version FROM jsonb_populate_recordset(NULL::raw, $1::text::jsonb) \
        ON CONFLICT (card_id) DO UPDATE SET amount = EXCLUDED.amount, score = EXCLUDED.score, ts = EXCLUDED.ts, version = EXCLUDED.version \
        WHERE t.version < EXCLUDED.version";
    let statement = client.prepare(upsert).await.expect("prepare");
    let mut bodies = Vec::new();
    let started = Instant::now();
    for (b, chunk) in events.chunks(BATCH).enumerate() {
        // One row per card per batch, as the sink does.
        let mut rows = std::collections::BTreeMap::new();
        for (i, e) in chunk.iter().enumerate() {
            let mut v: serde_json::Value = serde_json::from_slice(&e.value).expect("json");
            v["version"] = serde_json::Value::from(b * BATCH + i);
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            rows.insert(v["card_id"].to_string(), v);
        }
        let body = serde_json::Value::Array(rows.into_values().collect()).to_string();
        client.execute("BEGIN", &[]).await.expect("begin");
        client.execute(&statement, &[&body]).await.expect("upsert");
        client.execute("COMMIT", &[]).await.expect("commit");
        bodies.push(body);
    }
    let raw = events.len() as f64 / started.elapsed().as_secs_f64();
    let pgbench = pgbench(&pg, &client, &bodies).await;
    let batched = through(&mut *sink(&config), events, BATCH).await;
    pg.query("TRUNCATE scores");
    let single = through(&mut *sink(&config), &events[..N / 20], 1).await;
    println!("postgres (upsert of 5 columns, versioned, {CARDS} keys):");
    println!("  raw tokio-postgres, same statement (ceiling) {raw:>9.0} events/s");
    if let Some(pgbench) = pgbench {
        println!("  pgbench -M prepared, same statement          {pgbench:>9.0} events/s");
        row(
            "sink, batched (500/transaction) vs pgbench",
            batched,
            pgbench,
        );
    }
    row("sink, batched (500/transaction)", batched, raw);
    row("sink, one event per transaction", single, raw);
}

/// `pgbench -n -M prepared -f`: the sink's upsert of the same batches
/// (their JSON bodies, stored in a table first), one per transaction, in
/// order, into a table of its own; events/s.
async fn pgbench(
    pg: &servers::Postgres,
    client: &tokio_postgres::Client,
    bodies: &[String],
) -> Option<f64> {
    pg.query("CREATE TABLE pgb (LIKE scores INCLUDING ALL)");
    pg.query("CREATE TABLE batches (b int PRIMARY KEY, body text)");
    pg.query("CREATE SEQUENCE bseq");
    for (b, body) in bodies.iter().enumerate() {
        client
            .execute("INSERT INTO batches VALUES ($1, $2)", &[&(b as i32), body])
            .await
            .expect("store a batch");
    }
    let script = format!(
        "SELECT (nextval('bseq') - 1) % {n} AS b \\gset\n\
         INSERT INTO pgb AS t (amount, card_id, score, ts, version) \
         SELECT amount, card_id, score, ts, version FROM jsonb_populate_recordset(NULL::pgb, \
         (SELECT body FROM batches WHERE b = :b)::jsonb) \
         ON CONFLICT (card_id) DO UPDATE SET amount = EXCLUDED.amount, score = EXCLUDED.score, \
         ts = EXCLUDED.ts, version = EXCLUDED.version WHERE t.version < EXCLUDED.version;\n",
        n = bodies.len()
    );
    let file = tempfile::NamedTempFile::new().expect("script file");
    std::fs::write(file.path(), script).expect("write script");
    let out = Command::new(servers::pg_bin().join("pgbench"))
        .args(["-n", "-M", "prepared", "-c", "1"])
        .args(["-t", &bodies.len().to_string()])
        .arg("-f")
        .arg(file.path())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "weir",
            "weir",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let rows = pg.query("SELECT count(*) FROM pgb");
    assert_eq!(rows.trim(), CARDS.to_string(), "pgbench wrote every card");
    // "tps = 212.5 (without initial connection time)"
    let tps: f64 = text
        .lines()
        .find(|l| l.starts_with("tps = "))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()?;
    Some(tps * (N / bodies.len()) as f64)
}

async fn bench_http(events: &[Event]) {
    let receiver = receiver::Receiver::start();
    let url = receiver.url("/hook");
    let per_request = 100;
    // The raw client: the same NDJSON bodies, 4 requests in flight.
    let client = reqwest::Client::new();
    let bodies: Vec<bytes::Bytes> = events
        .chunks(per_request)
        .map(|c| {
            let mut b = Vec::new();
            for e in c {
                b.extend_from_slice(&e.value);
                b.push(b'\n');
            }
            bytes::Bytes::from(b)
        })
        .collect();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        while tasks.len() >= 4 {
            tasks.join_next().await;
        }
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let r = client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .expect("post");
            assert!(r.status().is_success());
        });
    }
    while tasks.join_next().await.is_some() {}
    let raw = events.len() as f64 / started.elapsed().as_secs_f64();
    let batched = through(
        &mut *sink(&format!(
            "type = \"http\"\nurl = \"{url}\"\nformat = \"ndjson\"\nbatch_max_events = {per_request}\nconcurrency = 4\n"
        )),
        events,
        BATCH,
    )
    .await;
    let single = through(
        &mut *sink(&format!(
            "type = \"http\"\nurl = \"{url}\"\nconcurrency = 4\n"
        )),
        &events[..N / 10],
        BATCH,
    )
    .await;
    println!(
        "http (NDJSON, {per_request} events per request, 4 in flight; receiver: std threads):"
    );
    println!("  raw reqwest loop, same bodies (ceiling)     {raw:>10.0} events/s");
    row("sink, batched (ndjson, 100/request)", batched, raw);
    row("sink, one event per request (json)", single, raw);
}

fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "sinks benchmark: {N} events, {} cores, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // The raw reqwest client needs rustls's provider (the sink installs it too).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events = events(N);
    // `cargo bench --bench sinks -- redis-none http`: only those parts.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    runtime.block_on(async {
        if run("redis") {
            redis_bench::bench_redis(&events).await;
        }
        if run("redis-none") {
            redis_bench::bench_redis_unversioned(&events).await;
        }
        if run("postgres") {
            bench_postgres(&events).await;
        }
        if run("http") {
            bench_http(&events).await;
        }
    });
}
