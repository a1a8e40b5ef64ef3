//! The redis rows of the sinks benchmark (see `sinks.rs`): the versioned
//! sink against a raw client running its script and `redis-benchmark -t
//! set`; the unversioned sink (`version = "none"`) against
//! `redis-benchmark` runs of the same shape, and beside it a bare RESP
//! client writing the same commands over one connection (encoded
//! beforehand), which shows how much one connection can take.

use std::process::Command;
use std::time::Instant;

use weir::event::Event;

use super::{BATCH, CARDS, N, row, servers, sink, through};

/// `redis-benchmark -P 64 -n 1000000 -q` with `args` (a test or a command):
/// requests/s.
fn redis_benchmark(port: u16, args: &[&str]) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-P", "64", "-n", "1000000", "-q"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 512820.52 requests per second, p50=..." (a command: its text
    // before the colon).
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("requests per second"))?;
    let line = line.rsplit('\r').next()?;
    let before = line.split(" requests per second").next()?;
    before.split_whitespace().last()?.parse().ok()
}

/// One write for the script: `[version key, key]`, (version, field/value
/// pairs).
type ScriptItem = ([String; 2], (usize, Vec<String>));

pub async fn bench_redis(events: &[Event]) {
    let redis = servers::Redis::start();
    let url = redis.url();
    let config = format!(
        "type = \"redis\"\nurl = \"{url}\"\nkey = \"card:{{/card_id}}\"\nversion = \"offset\"\n"
    );
    let set_ceiling = redis_benchmark(redis.port, &["-t", "set"]);
    // The raw client: the same script, pipelined per batch, no sink.
    let client = ::redis::Client::open(url.as_str()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let script = include_str!("../../src/sink/redis/upsert.lua");
    let sha: String = ::redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(&mut c)
        .await
        .expect("load");
    // One write's keys and args for the script (see upsert.lua).
    let item = |n: usize, e: &Event| {
        let v: serde_json::Value = serde_json::from_slice(&e.value).expect("json");
        let key = format!("raw:{}", v["card_id"].as_str().unwrap_or(""));
        let fields: Vec<String> = v
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(f, x)| [f.clone(), x.to_string()])
            .collect();
        ([format!("{key}:_version"), key], (n, fields))
    };
    let call = |items: Vec<ScriptItem>| {
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(&sha).arg(items.len() * 2);
        for ([vkey, key], _) in &items {
            cmd.arg(key).arg(vkey);
        }
        cmd.arg("hash").arg(0).arg("_version");
        for (_, (version, fields)) in &items {
            cmd.arg(version).arg(fields.len()).arg(fields);
        }
        cmd
    };
    // The same script, one call per event, pipelined per batch.
    let started = Instant::now();
    for (b, chunk) in events.chunks(BATCH).enumerate() {
        let mut pipe = ::redis::pipe();
        for (i, e) in chunk.iter().enumerate() {
            pipe.add_command(call(vec![item(b * BATCH + i, e)]));
        }
        let _: Vec<i64> = pipe.query_async(&mut c).await.expect("pipeline");
    }
    let raw_per_event = events.len() as f64 / started.elapsed().as_secs_f64();
    let _: () = ::redis::cmd("FLUSHALL")
        .query_async(&mut c)
        .await
        .expect("flush");
    // The same script, one call per batch (what the sink sends).
    let started = Instant::now();
    for (b, chunk) in events.chunks(BATCH).enumerate() {
        let items = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| item(b * BATCH + i, e))
            .collect();
        let _: i64 = call(items).query_async(&mut c).await.expect("script");
    }
    let raw = events.len() as f64 / started.elapsed().as_secs_f64();
    let batched = through(&mut *sink(&config), events, BATCH).await;
    let _: () = ::redis::cmd("FLUSHALL")
        .query_async(&mut c)
        .await
        .expect("flush");
    let single = through(&mut *sink(&config), &events[..N / 10], 1).await;
    println!("redis (hash of 5 fields, versioned, {CARDS} keys):");
    if let Some(set) = set_ceiling {
        println!("  redis-benchmark -P 64 -t set (ceiling)      {set:>10.0} SET/s");
        row("sink, batched (500/send)  vs redis-benchmark", batched, set);
    }
    println!("  raw client, one script call per batch (ceiling) {raw:>6.0} events/s");
    println!("  raw client, one call per event, pipelined  {raw_per_event:>10.0} events/s");
    row("sink, batched (500/send)", batched, raw);
    row("sink, one event per send", single, raw);
}

/// Unversioned hash (5 fields) and string (the value) writes through the
/// sink, 3 passes over the events, against `redis-benchmark -P 64` runs of
/// the same shape over as many keys: `HSET` of 5 fields of the same sizes,
/// `SET -d` of the values' mean size.
pub async fn bench_redis_unversioned(events: &[Event]) {
    let redis = servers::Redis::start();
    let url = redis.url();
    let mut c = ::redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys = CARDS.to_string();
    let hset = redis_benchmark(
        redis.port,
        &[
            "-r",
            &keys,
            "HSET",
            "card:__rand_int__",
            "id",
            "12345",
            "card_id",
            "c1234",
            "ts",
            "101000",
            "score",
            "0.123",
            "amount",
            "123.5",
        ],
    );
    let size = events.iter().map(|e| e.value.len()).sum::<usize>() / events.len();
    let set = redis_benchmark(
        redis.port,
        &["-r", &keys, "-t", "set", "-d", &size.to_string()],
    );
    let passes: Vec<Event> = events.iter().cycle().take(3 * N).cloned().collect();
    println!("redis, version = \"none\" ({CARDS} keys, 3 passes of {N} events):");
    for (mode, ceiling, what) in [("hash", hset, "HSET of 5 fields"), ("string", set, "SET")] {
        let _: () = ::redis::cmd("FLUSHALL")
            .query_async(&mut c)
            .await
            .expect("flush");
        let config = format!(
            "type = \"redis\"\nurl = \"{url}\"\nkey = \"card:{{/card_id}}\"\nversion = \"none\"\nmode = \"{mode}\"\n"
        );
        let commands: Vec<Vec<u8>> = passes
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_slice(&e.value).expect("json");
                let key = format!("raw:{}", v["card_id"].as_str().unwrap_or(""));
                if mode == "string" {
                    return resp(&[b"SET", key.as_bytes(), &e.value]);
                }
                let fields: Vec<String> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .flat_map(|(f, x)| {
                        [
                            f.clone(),
                            x.as_str().map_or_else(|| x.to_string(), str::to_owned),
                        ]
                    })
                    .collect();
                let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
                args.extend(fields.iter().map(|f| f.as_bytes()));
                resp(&args)
            })
            .collect();
        let raw = raw_resp(redis.port, &commands).await;
        let _: () = ::redis::cmd("FLUSHALL")
            .query_async(&mut c)
            .await
            .expect("flush");
        let batched = through(&mut *sink(&config), &passes, BATCH).await;
        let written: usize = ::redis::cmd("DBSIZE")
            .query_async(&mut c)
            .await
            .expect("DBSIZE");
        assert_eq!(written, CARDS, "one key per card");
        let single = through(&mut *sink(&config), &events[..N / 10], 1).await;
        match ceiling {
            Some(ceiling) => {
                let d = if mode == "string" {
                    format!(" -d {size}")
                } else {
                    String::new()
                };
                println!(
                    "  redis-benchmark -P 64 -r {CARDS}{d}, {what} (ceiling) {ceiling:>10.0} /s"
                );
                row(
                    &format!("{mode}, bare RESP client, one connection"),
                    raw,
                    ceiling,
                );
                row(
                    &format!("{mode}, sink, batched (500/send)"),
                    batched,
                    ceiling,
                );
                row(
                    &format!("{mode}, sink, one event per send"),
                    single,
                    ceiling,
                );
            }
            None => println!(
                "  redis-benchmark failed; {mode}: batched {batched:.0}, one per send {single:.0} events/s"
            ),
        }
    }
}

/// RESP of one command.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Commands/s written over ONE connection by a bare client: `commands`
/// encoded beforehand, sent [`BATCH`] a round trip in pipelines of 128
/// (as the sink cuts them), each round trip's one-line replies read before
/// the next (the sink's shape, without its preparing).
async fn raw_resp(port: u16, commands: &[Vec<u8>]) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    for batch in commands.chunks(BATCH) {
        for pipe in batch.chunks(128) {
            let bytes: Vec<u8> = pipe.concat();
            s.write_all(&bytes).await.expect("write");
        }
        let mut lines = 0;
        while lines < batch.len() {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "redis closed");
            lines += buf[..n].iter().filter(|b| **b == b'\n').count();
        }
    }
    commands.len() as f64 / started.elapsed().as_secs_f64()
}
