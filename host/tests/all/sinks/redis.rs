//! The redis sink against a real Redis: exactly-once state after SIGKILL and
//! restart, an old event never overwrites a newer one, `/readyz` 503 while
//! Redis is down (nothing lost), the password never in the log; and
//! `version = "none"`: hashes merged, strings set, TTLs, the last value of
//! each key after SIGKILL and restart, a refused write dead-lettered alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::servers::Redis;
use super::{card_events, latest, write};
use crate::metrics::{free_port, get, parse, wait_for};
use crate::support::{Pipeline, read_jsonl_or_empty, run_watched, weir, weir_run};

fn redis_output(redis: &Redis, extra: &str) -> String {
    versioned_output(redis, "/ts", extra)
}

/// The output with `version` (`"none"`: unversioned).
fn versioned_output(redis: &Redis, version: &str, extra: &str) -> String {
    format!(
        "type = \"redis\"\nurl = \"{}\"\nkey = \"card:{{/card_id}}\"\nversion = \"{version}\"\n{extra}",
        redis.url()
    )
}

/// Runs weir to its end on `input` into the unversioned output (`extra`
/// added to it).
fn run_unversioned(tmp: &std::path::Path, redis: &Redis, input: &str, extra: &str) {
    write(tmp, "in.jsonl", input);
    Pipeline::new(tmp)
        .file_source("in.jsonl")
        .output("default", &versioned_output(redis, "none", extra))
        .write(tmp);
    let out = run_watched(tmp, &[], Duration::from_secs(60));
    assert!(out.status.success(), "weir failed: {}", out.stderr);
}

/// Runs `args` (a command and its arguments) on `redis`.
fn command(redis: &Redis, args: &[&str]) {
    let _: ::redis::Value = ::redis::cmd(args[0])
        .arg(&args[1..])
        .query(&mut redis.connection())
        .expect(args[0]);
}

fn query<T: ::redis::FromRedisValue>(redis: &Redis, cmd: &str, key: &str) -> T {
    ::redis::cmd(cmd)
        .arg(key)
        .query(&mut redis.connection())
        .expect(cmd)
}

/// Every `card:*` hash: card → fields.
fn cards(redis: &Redis) -> BTreeMap<String, BTreeMap<String, String>> {
    cards_but(redis, "")
}

/// Every `card:*` hash but the key `skipped`: card → fields.
fn cards_but(redis: &Redis, skipped: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut c = redis.connection();
    redis
        .keys("card:*")
        .into_iter()
        .filter(|k| k != skipped)
        .map(|k| {
            let h: BTreeMap<String, String> = ::redis::cmd("HGETALL")
                .arg(&k)
                .query(&mut c)
                .expect("HGETALL");
            (k.trim_start_matches("card:").to_owned(), h)
        })
        .collect()
}

/// Each card's hash holds its latest event (and its version, if `versioned`).
fn assert_latest(redis: &Redis, n: usize, card_count: usize, versioned: bool) {
    let got = cards(redis);
    let want = latest(n, card_count);
    assert_eq!(got.len(), want.len(), "one hash per card");
    for (card, (ts, score)) in want {
        let h = &got[&card];
        assert_eq!(h["ts"], ts.to_string(), "{card}: {h:?}");
        assert_eq!(
            h.get("_version"),
            versioned.then(|| ts.to_string()).as_ref(),
            "{card}"
        );
        assert_eq!(h["score"].parse::<f64>().expect("score"), score, "{card}");
        assert_eq!(h["card_id"], card);
    }
}

#[test]
fn redis_state_is_exact_after_sigkill_and_restart() {
    sigkill_and_restart("/ts");
}

/// Unversioned, at least once: after SIGKILL and a restart that replays
/// every write, each card's hash holds its last event.
#[test]
fn redis_unversioned_holds_each_last_value_after_sigkill_and_restart() {
    sigkill_and_restart("none");
}

/// Kills weir while it writes `card_events` with `version`, runs it again
/// to the end, and checks each card's hash is its latest event.
fn sigkill_and_restart(version: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start();
    let (n, card_count) = (200_000, 500);
    write(tmp.path(), "in.jsonl", &card_events(n, card_count));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(50, 5)
        .output("default", &versioned_output(&redis, version, ""))
        .write(tmp.path());
    let mut child = weir_run(tmp.path()).spawn().expect("start weir");
    let mut c = redis.connection();
    wait_for("some writes", Duration::from_secs(60), || {
        ::redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap_or(0) > 0
    });
    assert!(
        child.try_wait().expect("poll").is_none(),
        "weir finished before it could be killed: make the input longer"
    );
    child.kill().expect("SIGKILL"); // no drain, no flush
    let _ = child.wait();
    // The file is read again from the start: every write is repeated.
    let out = run_watched(tmp.path(), &[], Duration::from_secs(180));
    assert!(out.status.success(), "weir failed: {}", out.stderr);
    assert_latest(&redis, n, card_count, version != "none");
    assert!(read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty());
}

/// Redis killed while weir writes an unversioned batch (some of its
/// pipelines applied, the rest not) and started again 2 s later: the batch
/// is written again, nothing is lost or dead-lettered, and each card's hash
/// ends at its last event.
#[test]
fn redis_unversioned_killed_mid_batch_and_restarted_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut redis = Redis::durable();
    let (n, card_count) = (60_000, 20_000);
    write(tmp.path(), "in.jsonl", &card_events(n, card_count));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(2_000, 5)
        .output(
            "default",
            &versioned_output(
                &redis,
                "none",
                "timeout_ms = 1000\n[outputs.default.retry]\ninitial_backoff_ms = 50\nmax_backoff_ms = 200\n",
            ),
        )
        .write(tmp.path());
    let mut child = weir_run(tmp.path()).spawn().expect("start weir");
    let mut c = redis.connection();
    // Mid-batch: a batch is 2,000 events in pipelines of 128, and keys
    // appear as its first pipelines are applied.
    wait_for("some writes", Duration::from_secs(60), || {
        ::redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap_or(0) > 100
    });
    redis.down();
    let written_before = child.try_wait().expect("poll").is_none();
    std::thread::sleep(Duration::from_secs(2));
    redis.up();
    let status = child.wait().expect("weir");
    let stderr = std::fs::read_to_string(tmp.path().join("weir.log")).expect("log");
    assert!(status.success(), "weir failed: {stderr}");
    assert!(
        written_before && stderr.contains("Redis cannot be reached; retrying"),
        "Redis was not down while weir wrote:\n{stderr}"
    );
    assert_latest(&redis, n, card_count, false);
    assert!(read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty());
}

/// Unversioned hash mode merges each event's fields into the hash and sets
/// the TTL; the last event to arrive wins, older or not.
#[test]
fn redis_unversioned_hash_merges_fields_with_a_ttl() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start();
    command(&redis, &["HSET", "card:m", "kept", "yes"]);
    run_unversioned(
        tmp.path(),
        &redis,
        "{\"card_id\":\"m\",\"ts\":2,\"score\":0.1}\n{\"card_id\":\"m\",\"ts\":3,\"tier\":\"gold\",\"f\":{\"a\":1}}\n{\"card_id\":\"n\",\"ts\":1}\n",
        "ttl_secs = 600\n",
    );
    let got = cards(&redis);
    let m: Vec<(&str, &str)> = got["m"]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        m,
        [
            ("card_id", "m"),
            ("f", "{\"a\":1}"),
            ("kept", "yes"),
            ("score", "0.1"),
            ("tier", "gold"),
            ("ts", "3"),
        ],
        "merged, no version field"
    );
    assert_eq!(got["n"]["ts"], "1");
    for key in ["card:m", "card:n"] {
        let ttl: i64 = query(&redis, "TTL", key);
        assert!((1..=600).contains(&ttl), "{key}: ttl {ttl}");
    }
    // An older event arriving later overwrites: arrival order only.
    run_unversioned(
        tmp.path(),
        &redis,
        "{\"card_id\":\"m\",\"ts\":1,\"score\":0.7}\n",
        "",
    );
    let got = cards(&redis);
    assert_eq!(
        (got["m"]["ts"].as_str(), got["m"]["score"].as_str()),
        ("1", "0.7")
    );
    assert!(read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty());
}

/// Unversioned string mode: `SET` of the value, with the TTL or without
/// (which clears an earlier one), no version key.
#[test]
fn redis_unversioned_string_mode_sets_the_value() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start();
    let (five, four) = (
        "{\"card_id\":\"s\",\"ts\":5,\"score\":0.5}",
        "{\"card_id\":\"s\",\"ts\":4,\"score\":0.4}",
    );
    run_unversioned(
        tmp.path(),
        &redis,
        &format!("{five}\n{four}\n"),
        "mode = \"string\"\nttl_secs = 600\n",
    );
    assert_eq!(query::<String>(&redis, "GET", "card:s"), four);
    let ttl: i64 = query(&redis, "TTL", "card:s");
    assert!((1..=600).contains(&ttl), "ttl {ttl}");
    assert_eq!(redis.keys("*"), ["card:s"], "no version key");
    run_unversioned(
        tmp.path(),
        &redis,
        &format!("{five}\n"),
        "mode = \"string\"\n",
    );
    assert_eq!(query::<String>(&redis, "GET", "card:s"), five);
    assert_eq!(query::<i64>(&redis, "TTL", "card:s"), -1, "no TTL any more");
}

/// A write the server refuses (`WRONGTYPE`: the key holds a string) sends
/// that event alone to the dead letters with the server's reason; the rest
/// of its batch lands.
#[test]
fn redis_unversioned_refused_write_is_dead_lettered_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start();
    command(&redis, &["SET", "card:c7", "a string"]);
    let (n, card_count) = (600, 20);
    run_unversioned(
        tmp.path(),
        &redis,
        &card_events(n, card_count),
        "ttl_secs = 600\n",
    );
    let dead = read_jsonl_or_empty(&tmp.path().join("dlq.jsonl"));
    // c7's events (every 20th), and only those.
    assert_eq!(dead.len(), n / card_count, "{dead:?}");
    for d in &dead {
        assert_eq!(d["value"]["card_id"], "c7", "{d}");
        let reason = d["headers"]["weir.error"].as_str().expect("reason");
        assert!(
            reason.contains("redis output") && reason.contains("WRONGTYPE"),
            "{reason}"
        );
    }
    assert_eq!(query::<String>(&redis, "GET", "card:c7"), "a string");
    let got = cards_but(&redis, "card:c7");
    let want = latest(n, card_count);
    assert_eq!(got.len(), card_count - 1);
    for (card, h) in got {
        assert_eq!(h["ts"], want[&card].0.to_string(), "{card}");
    }
}

#[test]
fn redis_an_old_event_never_overwrites_a_newer_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start();
    let run = |input: &str, extra: &str| {
        write(tmp.path(), "in.jsonl", input);
        Pipeline::new(tmp.path())
            .file_source("in.jsonl")
            .output("default", &redis_output(&redis, extra))
            .write(tmp.path());
        let out = run_watched(tmp.path(), &[], Duration::from_secs(60));
        assert!(out.status.success(), "weir failed: {}", out.stderr);
    };
    run(
        "{\"card_id\":\"a\",\"ts\":200,\"score\":0.9}\n{\"card_id\":\"b\",\"ts\":10,\"score\":0.2,\"old\":1}\n",
        "",
    );
    // Replayed and late events: a's older, b's newer, and c's first.
    run(
        "{\"card_id\":\"a\",\"ts\":100,\"score\":0.1}\n{\"card_id\":\"a\",\"ts\":200,\"score\":0.5}\n{\"card_id\":\"b\",\"ts\":11,\"score\":0.3}\n{\"card_id\":\"c\",\"ts\":1,\"score\":0.4}\n",
        "",
    );
    let got = cards(&redis);
    assert_eq!(
        got["a"]["score"], "0.9",
        "an older or equal version overwrote a newer one"
    );
    assert_eq!(got["b"]["score"], "0.3");
    assert_eq!(got["b"].get("old"), None, "a newer write replaces the hash");
    assert_eq!(got["c"]["score"], "0.4");

    // String mode keeps its version in a sibling key, and a TTL.
    run(
        "{\"card_id\":\"s\",\"ts\":5,\"score\":0.5}\n{\"card_id\":\"s\",\"ts\":4,\"score\":0.4}\n",
        "mode = \"string\"\nttl_secs = 600\n",
    );
    let mut c = redis.connection();
    let v: String = ::redis::cmd("GET")
        .arg("card:s")
        .query(&mut c)
        .expect("GET");
    assert_eq!(v, "{\"card_id\":\"s\",\"ts\":5,\"score\":0.5}");
    let version: String = ::redis::cmd("GET")
        .arg("card:s:_version")
        .query(&mut c)
        .expect("GET");
    assert_eq!(version, "5");
    let ttl: i64 = ::redis::cmd("TTL")
        .arg("card:s")
        .query(&mut c)
        .expect("TTL");
    assert!((1..=600).contains(&ttl), "ttl {ttl}");
}

#[test]
fn redis_down_makes_readyz_503_and_loses_nothing_and_the_password_never_shows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let password = "redis-pw-9c2e1f77";
    let mut redis = Redis::with_password(Some(password));
    // Taken while Redis holds its port, so the two cannot be the same.
    let admin = free_port();
    redis.down();
    let (n, card_count) = (300, 30);
    write(tmp.path(), "in.jsonl", &card_events(n, card_count));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(20, 5)
        .output(
            "default",
            &redis_output(
                &redis,
                "password = \"env:WEIR_TEST_REDIS_PASSWORD\"\ntimeout_ms = 500\n[outputs.default.retry]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n",
            ),
        )
        .tables(&format!("[admin]\naddress = \"127.0.0.1:{admin}\"\n"))
        .write(tmp.path());
    let log = tmp.path().join("weir.log");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(tmp.path().join("pipeline.toml"))
        .env("WEIR_TEST_REDIS_PASSWORD", password)
        .env("WEIR_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start weir");
    // `/readyz` from the start until Redis is back, as often as it answers:
    // never ready while Redis is down (no flicker between retries).
    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let polling = polling.clone();
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            while polling.load(Ordering::SeqCst) {
                if let Some((code, _)) = get(admin, "/readyz") {
                    codes.push(code);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            codes
        })
    };
    wait_for(
        "retries while Redis is down",
        Duration::from_secs(60),
        || {
            get(admin, "/metrics").is_some_and(|(_, t)| {
                parse(&t)
                    .get("weir_sink_retries_total{output=\"default\"}")
                    .is_some_and(|r| *r >= 3.0)
            })
        },
    );
    // The readiness loop re-reads the sinks every 100 ms.
    wait_for(
        "/readyz 503 while Redis is down",
        Duration::from_secs(10),
        || get(admin, "/readyz").map(|r| r.0) == Some(503),
    );
    let (_, doc) = get(admin, "/status.json").expect("status");
    assert!(doc.contains("\"up\":false"), "{doc}");
    assert!(!doc.contains(password));
    // Several retries' worth of polling (backoff up to 200 ms).
    std::thread::sleep(Duration::from_secs(3));
    polling.store(false, Ordering::SeqCst);
    let codes = poller.join().expect("poller");
    let ready = codes.iter().filter(|c| **c == 200).count();
    assert!(
        codes.len() > 100 && ready == 0,
        "/readyz answered 200 {ready} times of {} while Redis was down (changes at {:?})",
        codes.len(),
        codes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] != w[1])
            .map(|(i, w)| (i, w[1]))
            .collect::<Vec<_>>()
    );
    redis.up();
    wait_for("weir to finish", Duration::from_secs(60), || {
        child.try_wait().expect("poll").is_some()
    });
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        child.wait().expect("wait").success(),
        "weir failed:\n{text}"
    );
    assert_latest(&redis, n, card_count, true);
    assert!(!text.contains(password), "the password is in the log");
}

/// Unversioned writes go over the sink's own RESP connection: it sends
/// `AUTH` and `SELECT` as the config says (the keys land in database 3),
/// and a refused password is retried as an unreachable server (nothing
/// dead-lettered, the run fails when the retries run out), the password
/// never in the log.
#[test]
fn redis_unversioned_authenticates_and_selects_its_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let password = "redis-pw-5be0a3d1";
    let redis = Redis::with_password(Some(password));
    let (n, card_count) = (1_000, 40);
    write(tmp.path(), "in.jsonl", &card_events(n, card_count));
    let run = |password_var: &str| {
        Pipeline::new(tmp.path())
            .file_source("in.jsonl")
            .batch(300, 5)
            .output(
                "default",
                &format!(
                    "type = \"redis\"\nurl = \"redis://127.0.0.1:{}/3\"\nkey = \"card:{{/card_id}}\"\nversion = \"none\"\npassword = \"env:WEIR_TEST_REDIS_PASSWORD\"\ntimeout_ms = 500\n[outputs.default.retry]\nmax_retries = 3\ninitial_backoff_ms = 20\nmax_backoff_ms = 50\n",
                    redis.port
                ),
            )
            .write(tmp.path());
        let out = weir()
            .args(["run", "--quiet"])
            .arg(tmp.path().join("pipeline.toml"))
            .env("WEIR_TEST_REDIS_PASSWORD", password_var)
            .output()
            .expect("run weir");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, log) = run(password);
    assert!(ok, "weir failed: {log}");
    let mut c = redis.connection();
    let in_db0: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut c).expect("KEYS");
    assert!(in_db0.is_empty(), "written to database 0: {in_db0:?}");
    let _: () = ::redis::cmd("SELECT").arg(3).query(&mut c).expect("SELECT");
    let hashes: Vec<String> = ::redis::cmd("KEYS")
        .arg("card:*")
        .query(&mut c)
        .expect("KEYS");
    assert_eq!(hashes.len(), card_count, "one hash per card in database 3");
    let last = latest(n, card_count);
    for (card, (ts, _)) in &last {
        let got: String = ::redis::cmd("HGET")
            .arg(format!("card:{card}"))
            .arg("ts")
            .query(&mut c)
            .expect("HGET");
        assert_eq!(got, ts.to_string(), "{card}");
    }
    let _: () = ::redis::cmd("FLUSHALL").query(&mut c).expect("FLUSHALL");

    let wrong = "not-the-password-77";
    let (ok, log) = run(wrong);
    assert!(!ok, "weir wrote with a wrong password:\n{log}");
    assert!(
        log.contains("Redis cannot be reached") && log.contains("after 3 retries"),
        "{log}"
    );
    assert!(
        !log.contains(wrong) && !log.contains(password),
        "a password is in the log:\n{log}"
    );
    assert!(
        read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty(),
        "events dead-lettered for the server's refusal of the password"
    );
    let _: () = ::redis::cmd("SELECT").arg(3).query(&mut c).expect("SELECT");
    let written: i64 = ::redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE");
    assert_eq!(written, 0);
}
