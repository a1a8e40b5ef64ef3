//! Offered-rate measurement shared by the latency benchmarks (fraud,
//! velocity): a feeder that writes lines into a process's stdin at a fixed
//! rate, and a tailer that follows its output file and reads each line's
//! read stamp back.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a tailer saw.
pub struct Seen {
    pub lines: usize,
    pub first: Instant,
    pub last: Instant,
    /// Per line: seen − read stamp, ms.
    pub latency_ms: Vec<i64>,
}

impl Seen {
    pub fn rate(&self) -> f64 {
        (self.lines - 1) as f64 / (self.last - self.first).as_secs_f64()
    }

    pub fn pct(&self, p: f64) -> i64 {
        if self.latency_ms.is_empty() {
            return -1;
        }
        let mut v = self.latency_ms.clone();
        v.sort_unstable();
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    pub fn max(&self) -> i64 {
        self.latency_ms.iter().copied().max().unwrap_or(0)
    }
}

/// The integer after `"key":` in `line`.
fn field(line: &[u8], key: &[u8]) -> Option<i64> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Follows `path` until `expected` lines appeared, recording when each did
/// and, with a `key`, its latency from the read stamp in that field.
pub fn tail(path: PathBuf, expected: usize, key: Option<&'static str>) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let key = key.map(|k| format!("\"{k}\":").into_bytes());
        let started = Instant::now();
        let mut file = loop {
            match std::fs::File::open(&path) {
                Ok(f) => break f,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        let mut seen = Seen {
            lines: 0,
            first: started,
            last: started,
            latency_ms: Vec::with_capacity(expected),
        };
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while seen.lines < expected {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "{}: only {} of {expected} lines after 600 s",
                path.display(),
                seen.lines
            );
            // The file may have been truncated and re-created at start.
            file.seek(SeekFrom::Start(pos)).expect("seek");
            let n = file.read(&mut buf).expect("read output");
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            pos += n as u64;
            let (now, at) = (now_ms(), Instant::now());
            pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(nl) = pending[start..].iter().position(|b| *b == b'\n') {
                let line = &pending[start..start + nl];
                start += nl + 1;
                if let Some(key) = &key {
                    let stamp = field(line, key).expect("a stamped output line");
                    seen.latency_ms.push(now - stamp);
                }
                if seen.lines == 0 {
                    seen.first = at;
                }
                seen.last = at;
                seen.lines += 1;
            }
            pending.drain(..start);
        }
        seen
    })
}

/// Writes `lines` into `sink` at `rate` lines/s, then closes it.
pub fn feed(
    lines: Vec<Vec<u8>>,
    rate: f64,
    mut sink: impl Write + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0usize;
        while sent < lines.len() {
            let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(lines.len());
            if due > sent {
                let mut chunk = Vec::new();
                for l in &lines[sent..due] {
                    chunk.extend_from_slice(l);
                }
                sink.write_all(&chunk).expect("feed");
                sink.flush().expect("flush feed");
                sent = due;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// One line of a results table: events/s, and the latencies when stamped.
pub fn row(name: &str, s: &Seen) {
    if s.latency_ms.is_empty() {
        println!("  {name:<28} {:>10.0} events/s", s.rate());
        return;
    }
    println!(
        "  {name:<28} {:>10.0} events/s   p50 {:>4} ms   p99 {:>5} ms   max {:>5} ms",
        s.rate(),
        s.pct(0.5),
        s.pct(0.99),
        s.max()
    );
}

/// Starts `cmd` with a piped stdin, lets it start (2 s: plugins compiled
/// or loaded, models and stores opened), writes `lines` into it at `rate`
/// lines/s, closes it and waits for the process.
pub fn fed(mut cmd: Command, lines: &[Vec<u8>], rate: f64) -> std::process::Output {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the measured process");
    std::thread::sleep(Duration::from_secs(2));
    let feeder = feed(lines.to_vec(), rate, child.stdin.take().expect("stdin"));
    feeder.join().expect("feeder");
    child
        .wait_with_output()
        .expect("wait for the measured process")
}

/// Writes a bench pipeline named `name` as `dir/pipeline.toml`: its plugins,
/// compiled-plugin cache and state in `dir`, the dead letters to
/// `out/dlq.jsonl`, `body` (source, batch, stages, outputs) between. Clears
/// what an earlier run left (see [`write_pipeline`]).
pub fn bench_pipeline(dir: &Path, name: &str, body: &str) -> PathBuf {
    let toml = format!(
        "name = \"{name}\"\nplugin_dir = \"{}\"\ncache_dir = \"{}\"\nstate_dir = \"{}\"\n{body}\n\
         [dead_letter]\ntype = \"file\"\npath = \"out/dlq.jsonl\"\n",
        dir.join("plugins").display(),
        dir.join("cache").display(),
        dir.join("state").display(),
    );
    write_pipeline(dir, &toml)
}

/// Writes `toml` as `dir/pipeline.toml` and clears what an earlier run left
/// (`out/`, and `state/`: every run reads the same events, and a kept store
/// would resume after them). Returns the file's path.
pub fn write_pipeline(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, toml).expect("write pipeline");
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let _ = std::fs::remove_dir_all(dir.join("state"));
    path
}

/// Writes `n` card transactions (`weir generate`, seed 42) to `path` and
/// returns them as lines (each with its `\n`).
pub fn generate(weir: &Path, n: usize, path: &Path) -> Vec<Vec<u8>> {
    let out = Command::new(weir)
        .args(["generate", "--schema", "card-transactions", "--seed", "42"])
        .args(["--count", &n.to_string()])
        .output()
        .expect("weir generate");
    assert!(out.status.success(), "weir generate failed");
    std::fs::write(path, &out.stdout).expect("write input");
    let lines: Vec<Vec<u8>> = BufReader::new(std::fs::File::open(path).expect("input"))
        .split(b'\n')
        .map(|l| {
            let mut l = l.expect("line");
            l.push(b'\n');
            l
        })
        .collect();
    assert_eq!(lines.len(), n);
    lines
}

/// Runs `weir run --quiet toml` to the end: seconds of wall time (panics,
/// with weir's stderr, if it fails). Not every bench that includes this
/// file uses it.
#[allow(dead_code)]
pub fn run_to_end(weir: &Path, toml: &Path) -> f64 {
    run_to_end_cpu(weir, toml).0
}

/// CPU seconds (user + system) of the children waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a zeroed rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// [`run_to_end`], with the CPU seconds the run used (all its threads):
/// (wall seconds, CPU seconds).
pub fn run_to_end_cpu(weir: &Path, toml: &Path) -> (f64, f64) {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let out = Command::new(weir)
        .args(["run", "--quiet"])
        .arg(toml)
        .output()
        .expect("run weir");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, children_cpu() - cpu_before)
}
