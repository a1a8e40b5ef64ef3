//! The postgres sink against a real PostgreSQL: exactly-once rows after
//! SIGKILL and restart, an old event never overwrites a newer row, a row of
//! the wrong type to the dead letters, the password never in the log.

use std::time::Duration;

use super::servers::Postgres;
use super::{card_events, latest, write};
use crate::support::{Pipeline, read_jsonl, read_jsonl_or_empty, run_watched, weir_run};

fn pg_output(pg: &Postgres, extra: &str) -> String {
    format!(
        "type = \"postgres\"\nurl = \"{}\"\ntable = \"scores\"\nkey = \"card_id\"\ncolumns = {{ card_id = \"/card_id\", score = \"/score\", ts = \"/ts\" }}\ntypes = {{ score = \"double precision\", ts = \"bigint\" }}\nversion = \"/ts\"\ncreate_table = true\n{extra}",
        pg.url()
    )
}

/// `card|ts|score|version` rows, by card.
fn rows(pg: &Postgres) -> Vec<(String, i64, f64, i64)> {
    pg.query("SELECT card_id, ts, score, version FROM scores ORDER BY card_id")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].to_owned(),
                f[1].parse().expect("ts"),
                f[2].parse().expect("score"),
                f[3].parse().expect("version"),
            )
        })
        .collect()
}

#[test]
fn postgres_rows_are_exact_after_sigkill_and_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pg = Postgres::start();
    let (n, card_count) = (100_000, 400);
    write(tmp.path(), "in.jsonl", &card_events(n, card_count));
    Pipeline::new(tmp.path())
        .file_source("in.jsonl")
        .batch(50, 5)
        .output("default", &pg_output(&pg, ""))
        .write(tmp.path());
    let mut child = weir_run(tmp.path()).spawn().expect("start weir");
    crate::metrics::wait_for("some rows", Duration::from_secs(60), || {
        pg.query("SELECT to_regclass('scores') IS NOT NULL").trim() == "t"
            && pg.query("SELECT count(*) FROM scores").trim() != "0"
    });
    assert!(
        child.try_wait().expect("poll").is_none(),
        "weir finished before it could be killed: make the input longer"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let out = run_watched(tmp.path(), &[], Duration::from_secs(300));
    assert!(out.status.success(), "weir failed: {}", out.stderr);
    let got = rows(&pg);
    let want = latest(n, card_count);
    assert_eq!(got.len(), want.len(), "one row per card");
    for (card, ts, score, version) in got {
        let (wts, wscore) = want[&card];
        assert_eq!((ts, version), (wts, wts), "{card}");
        assert_eq!(score, wscore, "{card}");
    }
    assert!(read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty());
}

#[test]
fn postgres_old_events_never_overwrite_and_bad_rows_are_dead_letters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let password = "pg-pw-71d0c3aa";
    let pg = Postgres::with_password(Some(password));
    let run = |input: &str| {
        write(tmp.path(), "in.jsonl", input);
        Pipeline::new(tmp.path())
            .file_source("in.jsonl")
            .output(
                "default",
                &pg_output(&pg, "password = \"env:WEIR_TEST_PG_PASSWORD\"\n"),
            )
            .write(tmp.path());
        let out = run_watched(
            tmp.path(),
            &[("WEIR_TEST_PG_PASSWORD", password), ("WEIR_LOG", "debug")],
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "weir failed: {}", out.stderr);
        assert!(!out.stderr.contains(password), "the password is in the log");
    };
    run(
        "{\"card_id\":\"a\",\"ts\":200,\"score\":0.9}\n{\"card_id\":\"b\",\"ts\":10,\"score\":0.2}\n",
    );
    // Older, equal, newer, new, and one whose score is not a number.
    run(concat!(
        "{\"card_id\":\"a\",\"ts\":100,\"score\":0.1}\n",
        "{\"card_id\":\"a\",\"ts\":200,\"score\":0.5}\n",
        "{\"card_id\":\"b\",\"ts\":11,\"score\":0.3}\n",
        "{\"card_id\":\"c\",\"ts\":1,\"score\":0.4}\n",
        "{\"card_id\":\"d\",\"ts\":1,\"score\":\"high\"}\n",
    ));
    assert_eq!(
        rows(&pg),
        [
            ("a".to_owned(), 200, 0.9, 200),
            ("b".to_owned(), 11, 0.3, 11),
            ("c".to_owned(), 1, 0.4, 1),
        ]
    );
    let dead = read_jsonl(&tmp.path().join("dlq.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let text = dead[0].to_string();
    assert!(
        text.contains("high") && text.contains("postgres output"),
        "{text}"
    );
    assert!(text.contains("22P02"), "the database's SQLSTATE: {text}");
}

/// While PostgreSQL restarts (killed, then crash recovery: "the database
/// system is starting up"), `/readyz` goes to 503 and comes back to 200 once,
/// never flipping back and forth between retries; nothing is lost meanwhile
/// (each card's row is its latest event when the run ends).
#[test]
fn postgres_restart_flips_readyz_once_each_way() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::metrics::{free_port, get, wait_for};

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut pg = Postgres::start();
    let admin = free_port();
    Pipeline::new(tmp.path())
        .source("type = \"generate\"\nschema = \"card-transactions\"\nrate = 2000\ncount = 200000\nseed = 7\n")
        .batch(50, 5)
        .output(
            "default",
            &format!(
                "type = \"postgres\"\nurl = \"{}\"\ntable = \"cards\"\nkey = \"card_id\"\ncolumns = {{ card_id = \"/card_id\", amount = \"/amount\", ts = \"/ts\" }}\ntypes = {{ amount = \"double precision\", ts = \"bigint\" }}\nversion = \"/ts\"\ncreate_table = true\ntimeout_ms = 1000\n[outputs.default.retry]\ninitial_backoff_ms = 10\nmax_backoff_ms = 100\n",
                pg.url()
            ),
        )
        .tables(&format!("[admin]\naddress = \"127.0.0.1:{admin}\"\n"))
        .write(tmp.path());
    let mut child = weir_run(tmp.path()).spawn().expect("start weir");
    wait_for("ready with rows written", Duration::from_secs(60), || {
        get(admin, "/readyz").map(|r| r.0) == Some(200)
            && pg.query("SELECT to_regclass('cards') IS NOT NULL").trim() == "t"
            && pg.query("SELECT count(*) FROM cards").trim() != "0"
    });
    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let polling = polling.clone();
        std::thread::spawn(move || {
            let mut codes: Vec<u16> = Vec::new();
            while polling.load(Ordering::SeqCst) {
                if let Some((code, _)) = get(admin, "/readyz") {
                    codes.push(code);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            codes
        })
    };
    pg.down();
    std::thread::sleep(Duration::from_secs(2));
    pg.up();
    wait_for("ready again", Duration::from_secs(60), || {
        get(admin, "/readyz").map(|r| r.0) == Some(200)
    });
    std::thread::sleep(Duration::from_secs(2));
    polling.store(false, Ordering::SeqCst);
    let codes = poller.join().expect("poller");
    assert!(
        child.try_wait().expect("poll").is_none(),
        "weir finished before the end of the check: make the input longer"
    );
    // 200... 503... 200...: two changes, no more.
    let changes = codes.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        codes.contains(&503) && changes == 2,
        "{changes} readiness changes in {} polls: {:?}",
        codes.len(),
        codes
            .windows(2)
            .filter(|w| w[0] != w[1])
            .collect::<Vec<_>>()
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    let log = std::fs::read_to_string(tmp.path().join("weir.log")).unwrap_or_default();
    assert!(status.success(), "weir failed:\n{log}");
    assert!(log.contains("PostgreSQL cannot be reached"), "{log}");
}
