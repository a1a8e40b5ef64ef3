//! The disk under `state_dir` and `cache_dir` full (a small tmpfs, filled
//! by a file): weir stops with an error that says so and exits non-zero,
//! never hangs; once there is room again a rerun resumes from the store's
//! applied offsets — every count exact, nothing lost — and the compiled
//! plugin cache still loads.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{card_lines, counting, ranks, read_lines_tolerant, stored_counts};
use crate::support::weir_run;

/// A tmpfs of `mib` MiB mounted at a folder; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u64) -> Self {
        std::fs::create_dir_all(at).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (it needs root, as the test setup has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(at.to_owned())
    }

    /// Writes `<mount>/filler` until the file system is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|()| f.sync_data()).is_ok() {}
        // What is left is smaller than a chunk: fill it byte-sized.
        for size in [4096, 512, 1] {
            while f.write_all(&chunk[..size]).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits for `child` to exit within `limit` (it must not hang).
fn exits_within(child: &mut Child, limit: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll weir") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "weir did not exit within {limit:?} of the disk filling up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_under_state_and_cache_stops_weir_clearly_and_a_rerun_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let disk = Tmpfs::mount(&dir.join("disk"), 24);
    let (n, keys) = (400_000, 20_000);
    std::fs::write(dir.join("in.jsonl"), card_lines(n, keys)).expect("write input");
    let out_file =
        |run: usize| format!("type = \"file\"\npath = \"out{run}.jsonl\"\nappend = true\n");
    let pipeline = |run: usize| {
        counting(dir, "")
            .top(&format!(
                "state_dir = \"{}\"",
                disk.0.join("state").display()
            ))
            .cache_dir(&disk.0.join("cache"))
            .batch(64, 2)
            .output("default", &out_file(run))
            .write(dir)
    };
    let log = dir.join("weir.log");

    // 1. Full from the start: refused at once, with the reason.
    let filler = disk.fill();
    pipeline(0);
    let mut child = weir_run(dir).spawn().expect("start weir");
    let status = exits_within(&mut child, Duration::from_secs(120), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "weir ran on a full disk:\n{text}");
    assert!(
        text.contains("No space left on device"),
        "the error does not say the disk is full:\n{text}"
    );
    eprintln!("full at start: exit {status:?}");

    // 2. Room at the start, the disk fills mid-stream.
    std::fs::remove_file(&filler).expect("remove the filler");
    pipeline(1);
    let mut child = weir_run(dir).spawn().expect("start weir");
    let out1 = dir.join("out1.jsonl");
    let started = Instant::now();
    while read_lines_tolerant(&out1).len() < 5_000 {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "weir exited early:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no output");
        std::thread::sleep(Duration::from_millis(20));
    }
    disk.fill();
    let status = exits_within(&mut child, Duration::from_secs(120), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let done: BTreeSet<u64> = read_lines_tolerant(&out1)
        .iter()
        .filter_map(|o| o["value"]["input"].as_u64())
        .collect();
    assert!(
        done.len() < n,
        "the run ended before the disk was full ({} of {n}, exit {status:?}):\n{text}",
        done.len()
    );
    assert!(!status.success(), "exit 0 on a full disk:\n{text}");
    assert!(
        text.contains("No space left on device"),
        "the error does not say the disk is full:\n{text}"
    );
    eprintln!(
        "full mid-stream: exit {status:?} after {} of {n} inputs",
        done.len()
    );

    // 3. Room again: the rerun applies what was not applied, once.
    std::fs::remove_file(&filler).expect("remove the filler");
    pipeline(2);
    let out = weir_run(dir).output().expect("run weir");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "rerun failed:\n{text}");
    assert!(
        text.contains("cache=Hit"),
        "the compiled plugin did not load from the cache:\n{text}"
    );
    let want = ranks(n, keys);
    let mut seen = vec![0usize; n];
    for file in ["out1.jsonl", "out2.jsonl"] {
        for o in read_lines_tolerant(&dir.join(file)) {
            let v = &o["value"];
            let input = v["input"].as_u64().expect("input") as usize;
            assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
            seen[input] += 1;
        }
    }
    let missing: Vec<usize> = (0..n).filter(|&i| seen[i] == 0).take(10).collect();
    assert!(missing.is_empty(), "inputs without output: {missing:?}");
    let repeated: usize = seen.iter().map(|c| c - 1).sum();
    let stored = stored_counts(dir);
    assert_eq!(stored.len(), keys);
    for k in 0..keys {
        let expected = (0..n).filter(|i| i % keys == k).count() as u64;
        assert_eq!(stored.get(&format!("c{k}")), Some(&expected), "key c{k}");
    }
    eprintln!("after room was made: 0 lost, counts exact, {repeated} outputs re-delivered");
}
