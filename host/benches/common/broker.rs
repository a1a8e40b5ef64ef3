//! A tansu broker for the benchmarks that need Kafka (`memory://` storage:
//! the broker is not the bottleneck), found like scripts/tansu.sh finds it
//! (`$WEIR_TANSU`, ../shared/bin/tansu.gz, PATH, build), killed when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_TANSU") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(workspace().join("scripts/tansu.sh"))
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/tansu.sh path");
    assert!(out.status.success(), "no tansu broker");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

pub struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// `memory://` storage: fast, but fetches that start inside a record
    /// batch can skip records.
    #[allow(dead_code)]
    pub fn memory() -> Self {
        Self::start("memory://tansu/")
    }

    /// `sqlite://` storage: exact, slower.
    #[allow(dead_code)]
    pub fn sqlite() -> Self {
        Self::start("sqlite://tansu.db")
    }

    fn start(storage: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .current_dir(dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// Produces `records` (partition, key, value) to `topic`, waiting for
    /// room while librdkafka's queue is full, then flushes.
    pub fn produce(
        &self,
        topic: &str,
        records: impl Iterator<Item = (i32, Option<String>, String)>,
    ) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .set("linger.ms", "20")
            .create()
            .expect("producer");
        for (partition, key, value) in records {
            let mut record = BaseRecord::<String, String>::to(topic)
                .partition(partition)
                .payload(&value);
            if let Some(key) = &key {
                record = record.key(key);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(120)).expect("flush");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn topic(&self, name: &str, partitions: i32) {
        let status = Command::new(tansu())
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://{}", self.addr()))
            .args(["--partitions", &partitions.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create");
        assert!(status.success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
