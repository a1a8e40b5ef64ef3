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

/// Runs `cmd` to the end: (success, stdout, stderr).
pub fn output_of(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

    /// A `sqlite://` broker that compacts every 2 s (tansu compacts only on
    /// sqlite, every 10 min by default): for changelog topics.
    pub fn sqlite_compacting() -> Self {
        Self::start_with("sqlite://tansu.db?maintenance_interval=2s")
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

    /// Sends `signal` (`"-STOP"`, `"-CONT"`...) to the running broker.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {signal} the broker");
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

/// Reads a JSON-lines file into values; none if the file was never created.
pub fn read_jsonl_or_empty(path: &Path) -> Vec<serde_json::Value> {
    if path.exists() {
        read_jsonl(path)
    } else {
        Vec::new()
    }
}

/// `path` as a file output's table body (JSON envelopes).
pub fn file_table(path: &str) -> String {
    format!("type = \"file\"\npath = \"{path}\"\n")
}

/// A pipeline file for a test, built table by table. [`Pipeline::new`]
/// starts from what nearly every test has: a stdin source, the compiled
/// plugins cached in `<dir>/cache`, the default output `out.jsonl` and the
/// dead letters `dlq.jsonl` (files, relative to the pipeline file); each
/// method adds or replaces one part. [`Pipeline::write`] writes it as
/// `<dir>/pipeline.toml`.
#[derive(Clone, Debug)]
pub struct Pipeline {
    top: Vec<String>,
    source: String,
    batch: Option<(usize, u64)>,
    stages: Vec<String>,
    outputs: std::collections::BTreeMap<String, String>,
    dead_letter: Option<String>,
    tables: Vec<String>,
}

impl Pipeline {
    pub fn new(dir: &Path) -> Self {
        Self {
            top: vec![format!("cache_dir = \"{}\"", dir.join("cache").display())],
            source: "type = \"stdin\"\n".into(),
            batch: None,
            stages: Vec::new(),
            outputs: [("default".to_owned(), file_table("out.jsonl"))].into(),
            dead_letter: Some(file_table("dlq.jsonl")),
            tables: Vec::new(),
        }
    }

    /// No `cache_dir`: the default `.weir-cache` beside the pipeline file
    /// (where `weir status` finds the status file).
    pub fn default_cache_dir(mut self) -> Self {
        self.top.retain(|l| !l.starts_with("cache_dir"));
        self
    }

    /// Compiled plugins cached in `path` instead (a cache shared by several
    /// tests, so that each component is compiled once).
    pub fn cache_dir(mut self, path: &Path) -> Self {
        self.top.retain(|l| !l.starts_with("cache_dir"));
        self.top.push(format!("cache_dir = \"{}\"", path.display()));
        self
    }

    /// A top-level key, as written (`name = "it"`).
    pub fn top(mut self, line: &str) -> Self {
        self.top.push(line.to_owned());
        self
    }

    /// The `[source]` table's body.
    pub fn source(mut self, body: &str) -> Self {
        self.source = body.to_owned();
        self
    }

    /// A `file` source reading `path`.
    pub fn file_source(self, path: &str) -> Self {
        self.source(&file_table(path))
    }

    /// The `[batch]` table.
    pub fn batch(mut self, max_events: usize, max_wait_ms: u64) -> Self {
        self.batch = Some((max_events, max_wait_ms));
        self
    }

    /// A `[[stages]]` entry with no params.
    pub fn stage(self, name: &str, plugin: &str) -> Self {
        self.stage_with(name, plugin, "")
    }

    /// A `[[stages]]` entry followed by `tables`: its sub-tables
    /// (`[stages.params]`, `[stages.limits]`...).
    pub fn stage_with(mut self, name: &str, plugin: &str, tables: &str) -> Self {
        self.stages.push(format!(
            "[[stages]]\nname = \"{name}\"\nplugin = \"{plugin}\"\n{tables}"
        ));
        self
    }

    /// `[outputs.<name>]` with this body (replacing one of that name).
    pub fn output(mut self, name: &str, body: &str) -> Self {
        self.outputs.insert(name.to_owned(), body.to_owned());
        self
    }

    /// No `[outputs.<name>]`.
    pub fn without_output(mut self, name: &str) -> Self {
        self.outputs.remove(name);
        self
    }

    /// `[outputs.<name>]`, a file of JSON envelopes at `path`.
    pub fn file_output(self, name: &str, path: &str) -> Self {
        self.output(name, &file_table(path))
    }

    /// The `[dead_letter]` table's body; `None`: no table (stderr).
    pub fn dead_letter(mut self, body: Option<&str>) -> Self {
        self.dead_letter = body.map(str::to_owned);
        self
    }

    /// More whole tables (`[admin]`, `[reload]`, `[models.m]`...).
    pub fn tables(mut self, toml: &str) -> Self {
        self.tables.push(toml.to_owned());
        self
    }

    pub fn to_toml(&self) -> String {
        let mut out = self.top.join("\n") + "\n";
        out.push_str(&format!("[source]\n{}", self.source));
        if let Some((max_events, max_wait_ms)) = self.batch {
            out.push_str(&format!(
                "[batch]\nmax_events = {max_events}\nmax_wait_ms = {max_wait_ms}\n"
            ));
        }
        for stage in &self.stages {
            out.push_str(stage);
        }
        for (name, body) in &self.outputs {
            out.push_str(&format!("[outputs.{name}]\n{body}"));
        }
        if let Some(body) = &self.dead_letter {
            out.push_str(&format!("[dead_letter]\n{body}"));
        }
        for table in &self.tables {
            out.push_str(table);
        }
        out
    }

    /// Writes `<dir>/pipeline.toml`; returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("pipeline.toml");
        std::fs::write(&path, self.to_toml()).expect("write pipeline");
        path
    }
}

/// How a watched `weir run` ended ([`run_watched`]).
pub struct Outcome {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The highest resident set size (`VmRSS`) seen while it ran, in bytes.
    pub peak_rss: u64,
    /// The kernel's own peak (`VmHWM`), as last read before it exited.
    pub hwm: u64,
    pub elapsed: std::time::Duration,
}

fn read_all(
    stream: Option<impl std::io::Read + Send + 'static>,
) -> std::thread::JoinHandle<String> {
    let mut stream = stream.expect("piped stream");
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `VmRSS` and `VmHWM` of process `pid`, in bytes (`None` once it has
/// exited).
fn vm_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

/// Runs `weir run --quiet <dir>/pipeline.toml` with extra environment
/// variables, sampling its RSS; kills it and fails the test if it has not
/// exited after `timeout`.
pub fn run_watched(dir: &Path, env: &[(&str, &str)], timeout: std::time::Duration) -> Outcome {
    use std::process::Stdio;
    let mut cmd = weir();
    cmd.args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().expect("start weir");
    let pid = child.id();
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let (mut peak_rss, mut hwm) = (0, 0);
    let status = loop {
        if let Some((rss, high)) = vm_rss(pid) {
            peak_rss = peak_rss.max(rss);
            hwm = hwm.max(high);
        }
        if let Some(status) = child.try_wait().expect("poll weir") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("weir did not finish within {timeout:?} (killed); stderr:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Outcome {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        peak_rss,
        hwm,
        elapsed: started.elapsed(),
    }
}

/// Every file under `dir`, at any depth (none if it cannot be read).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
