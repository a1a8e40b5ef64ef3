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

/// Plugins built for the tests: shipped ones and test fixtures.
const PLUGINS: &[&str] = &[
    "json-filter",
    "pii-redact",
    "upper",
    "fail-some",
    "router",
    "tagger",
    "batch-count",
    "hostile",
    "compat-v010",
    "scorer",
];

fn target_dir() -> PathBuf {
    workspace().join("target").join("test-plugins")
}

/// Builds every test plugin once per test process; returns the folder of
/// the built `.wasm` files.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
            .env("CARGO_TARGET_DIR", target_dir());
        for p in PLUGINS {
            cmd.args(["-p", p]);
        }
        let status = cmd
            .status()
            .expect("running cargo to build the test plugins");
        assert!(status.success(), "building the test plugins failed");
        target_dir().join("wasm32-wasip2").join("release")
    })
}

/// Builds one more plugin crate, not in the shared list (heavy, and needed by
/// one test module only), into the test plugins' target folder; returns its
/// component. Call it once per process (behind a `OnceLock`).
pub fn build_plugin(name: &str) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace())
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .args(["-p", name])
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {name}: {e}"));
    assert!(status.success(), "building {name} failed");
    let wasm = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "no plugin at {}", wasm.display());
    wasm
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

/// The tansu broker binary: `$WEIR_TANSU`, else what `scripts/tansu.sh path`
/// finds (unpacking `../shared/bin/tansu.gz` into `~/.cache/weir/tansu/`, a
/// `tansu` on the PATH, or building it with `cargo install`).
pub fn tansu() -> &'static Path {
    static TANSU: OnceLock<PathBuf> = OnceLock::new();
    TANSU.get_or_init(|| {
        if let Some(path) = std::env::var_os("WEIR_TANSU") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .arg(workspace().join("scripts").join("tansu.sh"))
            .arg("path")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running scripts/tansu.sh path");
        assert!(out.status.success(), "scripts/tansu.sh path failed");
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
