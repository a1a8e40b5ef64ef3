//! SIGKILL at random points, restart, again: the state stays exactly-once.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::{card_lines, counting, ranks, read_lines_tolerant, stored_counts};
use crate::support::weir_run;

#[test]
fn sigkill_at_random_points_and_restarts_keep_counts_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (n, keys) = (60_000, 101);
    std::fs::write(dir.path().join("in.jsonl"), card_lines(n, keys)).expect("write");
    counting(dir.path(), "")
        .batch(32, 2)
        .output(
            "default",
            "type = \"file\"\npath = \"out.jsonl\"\nappend = true\n",
        )
        .write(dir.path());
    let out_path = dir.path().join("out.jsonl");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    let mut killed_mid_stream = 0;
    for round in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = weir_run(dir.path()).spawn().expect("start weir");
        // Kill once this run wrote a random number of lines, 1 to n/8: at a
        // random point, and always mid-stream however fast the machine is.
        let lines_now =
            || std::fs::read(&out_path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        let target = lines_now() + 1 + (seed as usize % (n / 8));
        let started = Instant::now();
        while lines_now() < target
            && started.elapsed() < Duration::from_secs(60)
            && child.try_wait().expect("poll").is_none()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let finished = child.try_wait().expect("poll").is_some();
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let lines = read_lines_tolerant(&out_path).len();
        eprintln!(
            "round {round}: killed after {:?}, {lines} output lines so far",
            started.elapsed()
        );
        // Mid-stream: the run was still going and some input had no output
        // yet (the file also holds earlier runs' re-deliveries, so its line
        // count says nothing).
        let distinct: std::collections::BTreeSet<u64> = read_lines_tolerant(&out_path)
            .iter()
            .filter_map(|o| o["value"]["input"].as_u64())
            .collect();
        if !finished && distinct.len() < n {
            killed_mid_stream += 1;
        }
        // A kill may tear the line being written: close it, so the next run
        // appends whole lines.
        let text = std::fs::read(&out_path).unwrap_or_default();
        if text.last().is_some_and(|b| *b != b'\n') {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&out_path)
                .expect("open");
            f.write_all(b"\n").expect("newline");
        }
    }
    assert!(
        killed_mid_stream >= 2,
        "only {killed_mid_stream} kills hit the stream"
    );
    let (ok, _, err) = crate::support::output_of(&mut weir_run(dir.path()));
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");

    // Every input has an output (at-least-once), and every output — a
    // re-delivered one too — carries the count of exactly-once state.
    let want = ranks(n, keys);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for o in read_lines_tolerant(&out_path) {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
        *seen.entry(input).or_default() += 1;
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "inputs without output: {missing:?}");
    let repeated = seen.values().filter(|c| **c > 1).count();
    eprintln!("{repeated} outputs re-delivered after kills");
    let stored = stored_counts(dir.path());
    for k in 0..keys {
        let expected = (0..n).filter(|i| i % keys == k).count() as u64;
        assert_eq!(stored.get(&format!("c{k}")), Some(&expected), "key c{k}");
    }
}
