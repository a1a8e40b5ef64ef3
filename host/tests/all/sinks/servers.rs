//! Redis and PostgreSQL servers for one test: each on a free loopback port,
//! its data in a temporary folder, stopped when dropped. The binaries come
//! from `WEIR_REDIS_SERVER` and `WEIR_PG_BIN` (exported by `scripts/setup.sh
//! --tests`), else from the usual places. (`host/benches/sinks.rs` uses this
//! file too.)

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (up to 30 s) until something listens on loopback `port`.
pub fn wait_listening(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn redis_server() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_REDIS_SERVER") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "no redis-server: run `source scripts/setup.sh --tests` (it installs Debian's redis-server)"
    );
}

/// A Redis server.
pub struct Redis {
    pub port: u16,
    password: Option<String>,
    /// Every write on disk before it is answered (`appendfsync always`),
    /// so a kill and restart keeps what was acknowledged.
    durable: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        Self::with_password(None)
    }

    pub fn with_password(password: Option<&str>) -> Self {
        let mut r = Self {
            port: free_port(),
            password: password.map(str::to_owned),
            durable: false,
            dir: tempfile::tempdir().expect("redis tempdir"),
            child: None,
        };
        r.up();
        r
    }

    /// A server that keeps each write on disk before answering it: what it
    /// acknowledged survives [`Redis::down`] and [`Redis::up`].
    pub fn durable() -> Self {
        let mut r = Self::with_password(None);
        r.down();
        r.durable = true;
        r.up();
        r
    }

    /// (Re)starts the server on its port (empty unless durable).
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "redis already running");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))
            .expect("log");
        let mut cmd = Command::new(redis_server());
        let appendonly = if self.durable { "yes" } else { "no" };
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", appendonly])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_listening(self.port, "redis-server");
    }

    /// Kills the server (SIGKILL).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A connection for checking what the sink wrote.
    pub fn connection(&self) -> ::redis::Connection {
        let mut info = ::redis::IntoConnectionInfo::into_connection_info(self.url().as_str())
            .expect("redis url");
        if let Some(p) = &self.password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        ::redis::Client::open(info)
            .and_then(|c| c.get_connection())
            .expect("connect to redis")
    }
}

impl Redis {
    /// The keys matching `pattern` (`KEYS`).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        ::redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.connection())
            .expect("KEYS")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.down();
    }
}

pub fn pg_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.sort();
    found
        .into_iter()
        .rev()
        .find(|b| b.join("postgres").is_file())
        .expect("no PostgreSQL: run `source scripts/setup.sh --tests` (it installs Debian's postgresql)")
}

/// `(uid, gid)` of the `weir-test` user when running as root (PostgreSQL
/// refuses to run as root; `scripts/setup.sh --tests` creates the user).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "weir-test"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "no weir-test user: run `source scripts/setup.sh --tests` (PostgreSQL does not run as root)"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    Some((id("-u"), id("-g")))
}

/// A PostgreSQL server with a database `weir` owned by the user `weir`.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Postgres {
    pub fn start() -> Self {
        Self::with_password(None)
    }

    /// `password`: TCP logins need it (scram-sha-256).
    pub fn with_password(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("pg tempdir");
        let data = dir.path().join("data");
        let who = run_as();
        if let Some((uid, gid)) = who {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown pg dir");
        }
        let mut initdb = Command::new(pg_bin().join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "weir", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(p) = password {
            let pwfile = dir.path().join("pw");
            std::fs::write(&pwfile, p).expect("pwfile");
            if let Some((uid, gid)) = who {
                std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
            }
            initdb
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(["--auth-host=scram-sha-256", "--auth-local=trust"]);
        } else {
            initdb.args(["--auth=trust"]);
        }
        if let Some((uid, gid)) = who {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Self {
            port: free_port(),
            dir,
            child: None,
        };
        pg.up();
        pg.psql("postgres", "CREATE DATABASE weir OWNER weir");
        pg
    }

    pub fn up(&mut self) {
        assert!(self.child.is_none(), "postgres already running");
        let log = std::fs::File::create(self.dir.path().join("pg.log")).expect("log");
        let mut cmd = Command::new(pg_bin().join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some((uid, gid)) = run_as() {
            cmd.uid(uid).gid(gid);
        }
        self.child = Some(cmd.spawn().expect("start postgres"));
        wait_listening(self.port, "postgres");
        // Listening is not accepting logins yet.
        let started = Instant::now();
        while !self.try_psql("postgres", "SELECT 1") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postgres not ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The sink's `url` (the password, if any, comes from the environment).
    pub fn url(&self) -> String {
        format!("postgres://weir@127.0.0.1:{}/weir", self.port)
    }

    fn psql_cmd(&self, db: &str, sql: &str) -> Command {
        let mut cmd = Command::new(pg_bin().join("psql"));
        cmd.arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "weir", "-d", db])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        cmd
    }

    fn try_psql(&self, db: &str, sql: &str) -> bool {
        self.psql_cmd(db, sql)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `sql` (over the local socket) and returns its unaligned rows.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_cmd(db, sql).output().expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sql` on the `weir` database.
    pub fn query(&self, sql: &str) -> String {
        self.psql("weir", sql)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.down();
    }
}
