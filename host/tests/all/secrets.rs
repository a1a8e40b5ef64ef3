//! Secrets never show: one pipeline holding every kind of credential weir
//! takes (a Redis password, an HTTP URL and header, a PostgreSQL password, a
//! Kafka SASL password, the admin token), each from the environment, run at
//! debug log level with sinks that work and sinks that keep failing; then
//! the log, `weir status`, `/status.json`, the status page and `/metrics`
//! are searched for every secret's value — and a config error that names an
//! unset variable names the variable, not a value.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use crate::metrics::{free_port, get_with, wait_for};
use crate::sinks::servers::Redis;
use crate::support::{Pipeline, files_under, output_of, plugin_dir, weir};

const REDIS_PW: &str = "redis-pw-a41f09c7";
const HOOK_URL_TOKEN: &str = "url-token-6b2d7e15";
const HOOK_TOKEN: &str = "hook-token-c93e0b58";
const PG_PW: &str = "pg-pw-05fa6d92";
const KAFKA_PW: &str = "kafka-pw-7e1c4b30";
const ADMIN_TOKEN: &str = "admin-token-d2b85f61";
const ALL: [&str; 6] = [
    REDIS_PW,
    HOOK_URL_TOKEN,
    HOOK_TOKEN,
    PG_PW,
    KAFKA_PW,
    ADMIN_TOKEN,
];

fn pipeline(dir: &std::path::Path, redis: &Redis, admin: u16, dead: u16) {
    plugin_dir(dir, &["router"]);
    Pipeline::new(dir)
        .top("name = \"secrets\"")
        .batch(16, 10)
        .stage_with(
            "route",
            "router",
            "[stages.params]\nalso = [\"hook\", \"pg\", \"audit\"]\n",
        )
        .output(
            "default",
            &format!(
                "type = \"redis\"\nurl = \"{}\"\npassword = \"env:T_REDIS_PW\"\nkey = \"card:{{/card_id}}\"\nversion = \"/ts\"\n",
                redis.url()
            ),
        )
        .output(
            "hook",
            "type = \"http\"\nurl = \"env:T_HOOK_URL\"\nheaders = { Authorization = \"env:T_HOOK_TOKEN\" }\ntimeout_ms = 300\n[outputs.hook.retry]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n",
        )
        .output(
            "pg",
            &format!(
                "type = \"postgres\"\nurl = \"postgres://weir@127.0.0.1:{dead}/weir\"\npassword = \"env:T_PG_PW\"\ntable = \"t\"\nkey = \"card_id\"\ncolumns = {{ card_id = \"/card_id\" }}\ntimeout_ms = 300\n[outputs.pg.retry]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n"
            ),
        )
        .output(
            "audit",
            &format!(
                "type = \"kafka\"\nbrokers = \"127.0.0.1:{dead}\"\ntopic = \"audit\"\n[outputs.audit.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanisms\" = \"PLAIN\"\n\"sasl.username\" = \"weir\"\n\"sasl.password\" = \"env:T_KAFKA_PW\"\n"
            ),
        )
        .tables(&format!(
            "[admin]\naddress = \"127.0.0.1:{admin}\"\ntoken = \"env:T_ADMIN_TOKEN\"\n"
        ))
        .write(dir);
}

fn with_secrets(cmd: &mut std::process::Command, dead: u16) -> &mut std::process::Command {
    cmd.env("T_REDIS_PW", REDIS_PW)
        .env(
            "T_HOOK_URL",
            format!("http://127.0.0.1:{dead}/hook?token={HOOK_URL_TOKEN}"),
        )
        .env("T_HOOK_TOKEN", format!("Bearer {HOOK_TOKEN}"))
        .env("T_PG_PW", PG_PW)
        .env("T_KAFKA_PW", KAFKA_PW)
        .env("T_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WEIR_LOG", "debug")
}

fn assert_clean(what: &str, text: &str) {
    for secret in ALL {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

#[test]
fn no_secret_shows_in_logs_status_metrics_or_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let redis = Redis::with_password(Some(REDIS_PW));
    let (admin, dead) = (free_port(), free_port());
    pipeline(dir, &redis, admin, dead);
    let log = dir.join("weir.log");
    let mut child = Killed(
        with_secrets(&mut weir(), dead)
            .args(["run", "--quiet"])
            .arg(dir.join("pipeline.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start weir"),
    );
    let mut stdin = child.0.stdin.take().expect("stdin");
    let n = 40;
    for i in 0..n {
        writeln!(
            stdin,
            "{{\"id\":{i},\"card_id\":\"c{}\",\"ts\":{i}}}",
            i % 7
        )
        .expect("feed");
    }
    stdin.flush().expect("flush");
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    let metrics = || get_with(admin, "/metrics", &bearer).map(|r| r.1);
    // The secrets were used: Redis took the password (its keys are there),
    // the failing sinks retried with theirs.
    wait_for("the sinks at work", Duration::from_secs(120), || {
        let retried = metrics().is_some_and(|m| {
            ["hook", "pg"].iter().all(|o| {
                m.lines().any(|l| {
                    l.starts_with(&format!("weir_sink_retries_total{{output=\"{o}\"}}"))
                        && !l.ends_with(" 0")
                })
            })
        });
        retried && redis.keys("card:*").len() == 7
    });
    // Unauthenticated, the admin endpoint answers 401 and nothing else.
    let (code, body) = get_with(admin, "/status.json", "").expect("admin answers");
    assert_eq!(code, 401, "{body}");
    let mut seen = Vec::new();
    for path in ["/status.json", "/", "/metrics"] {
        let (code, body) = get_with(admin, path, &bearer).expect("admin answers");
        assert_eq!(code, 200, "{path}: {body}");
        seen.push((path, body));
    }
    let (_, status_out, status_err) = output_of(
        with_secrets(&mut weir(), dead)
            .arg("status")
            .arg(dir.join("pipeline.toml")),
    );
    assert!(
        status_out.contains("\"route\""),
        "weir status: {status_out}{status_err}"
    );
    drop(child);
    for (path, body) in &seen {
        assert_clean(path, body);
    }
    assert_clean("weir status", &(status_out + &status_err));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("DEBUG"), "the log ran at debug level: {text}");
    assert_clean("the log", &text);
    let status_files: Vec<_> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!status_files.is_empty(), "the status file is written");
    for p in status_files {
        assert_clean(
            &p.display().to_string(),
            &std::fs::read_to_string(&p).unwrap_or_default(),
        );
    }

    // A variable that is not set: the error names the field and the
    // variable, never a value.
    let (ok, out, err) = output_of(
        with_secrets(&mut weir(), dead)
            .env_remove("T_KAFKA_PW")
            .args(["run", "--quiet"])
            .arg(dir.join("pipeline.toml")),
    );
    assert!(!ok, "refused without T_KAFKA_PW: {out}{err}");
    assert!(
        err.contains("sasl.password") && err.contains("T_KAFKA_PW"),
        "the error names the field and the variable: {err}"
    );
    assert_clean("the config error", &(out + &err));
}

/// A `weir run` killed when dropped (the test's sinks never let it end).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
