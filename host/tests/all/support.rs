//! Shared test fixtures: the test plugins are built from source as part of
//! the test run (no prebuilt `.wasm` is checked in).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The folder of the built test plugins: `$WEIR_TEST_PLUGINS` when
/// `scripts/test.sh` built them before the tests started; otherwise
/// (`cargo test` run directly) `scripts/build-test-plugins.sh` builds them
/// once per test process.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("WEIR_TEST_PLUGINS") {
            return PathBuf::from(dir);
        }
        let out = Command::new("bash")
            .arg(workspace().join("scripts/build-test-plugins.sh"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running scripts/build-test-plugins.sh");
        assert!(out.status.success(), "building the test plugins failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// The component of one plugin crate of the workspace (`plugins/*`,
/// `tests/plugins/*`), built by `scripts/build-test-plugins.sh`.
pub fn build_plugin(name: &str) -> PathBuf {
    plugin(name)
}

/// The built component of plugin `name` (crate name).
pub fn plugin(name: &str) -> PathBuf {
    let path = built().join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "no built plugin at {}", path.display());
    path
}

/// A fresh plugin folder holding `<name>.wasm` for each name.
pub fn plugin_dir(into: &Path, names: &[&str]) -> PathBuf {
    let dir = into.join("plugins");
    std::fs::create_dir_all(&dir).expect("create plugin dir");
    for name in names {
        std::fs::copy(plugin(name), dir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    dir
}

/// `weir run --quiet DIR/pipeline.toml`, its log (stderr) in `DIR/weir.log`:
/// a pipe nobody reads would fill up and block weir.
pub fn weir_run(dir: &Path) -> Command {
    let log = std::fs::File::create(dir.join("weir.log")).expect("create weir.log");
    let mut cmd = weir();
    cmd.args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stderr(log);
    cmd
}

/// The `weir` binary built for this test run.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "info");
    cmd
}

/// Reads a JSON-lines file into values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// The tansu broker binary: `$WEIR_TANSU` (exported by `scripts/setup.sh
/// --tests`, which finds or builds it before any test starts), else what
/// `scripts/tansu.sh find` finds. A test never builds the broker: without
/// one it fails at once, saying how to get one.
pub fn tansu() -> &'static Path {
    static TANSU: OnceLock<PathBuf> = OnceLock::new();
    TANSU.get_or_init(|| {
        if let Some(path) = std::env::var_os("WEIR_TANSU") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .arg(workspace().join("scripts").join("tansu.sh"))
            .arg("find")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running scripts/tansu.sh find");
        assert!(
            out.status.success(),
            "no Kafka broker (tansu) installed: run `source scripts/setup.sh --tests` (or \
             scripts/test.sh), which builds one once"
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "no tansu binary at {}", path.display());
        path
    })
}

/// A tansu broker on 127.0.0.1 with its data in a temporary folder, killed
/// when dropped.
pub struct Broker {
    pub port: u16,
    storage: String,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Broker {
    /// A broker with `sqlite://` storage (survives a restart).
    pub fn sqlite() -> Self {
        Self::start_with("sqlite://tansu.db")
    }

    fn start_with(storage: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Self {
            port,
            storage: storage.to_owned(),
            dir: tempfile::tempdir().expect("broker tempdir"),
            child: None,
        };
        broker.start();
        broker
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the broker on its port with its data folder.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("broker log");
        let child = Command::new(tansu())
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.storage])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "tansu did not listen within 20 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL); `start` brings it back with its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "creating topic {name} failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
