//! The file system: nothing without a grant; a read-only grant reads inside
//! it only, a read-write one writes inside it only (no `..`, no symlink out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::support::run_watched;

/// A fresh folder with a granted-to-be `data/` inside and things around it
/// the plugin must never reach:
/// - `secret.txt` (beside `data/`),
/// - `data/file.txt`,
/// - `data/link-out` → `../secret.txt`, `data/link-abs` → `<abs>/secret.txt`,
/// - `data/dir-out` → `..` (the folder above `data/`).
fn sandbox_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("secret.txt"), "top secret").expect("write secret");
    let data = dir.join("data");
    std::fs::create_dir(&data).expect("create data");
    std::fs::write(data.join("file.txt"), "granted content").expect("write file");
    std::os::unix::fs::symlink("../secret.txt", data.join("link-out")).expect("symlink");
    std::os::unix::fs::symlink(dir.join("secret.txt"), data.join("link-abs")).expect("symlink");
    std::os::unix::fs::symlink("..", data.join("dir-out")).expect("symlink");
    tmp
}

fn fs_event(id: usize, op: &str, path: &str) -> Value {
    json!({"id": id, "op": op, "path": path})
}

fn assert_nothing_leaked(results: &BTreeMap<usize, String>) {
    for (id, result) in results {
        assert!(
            !result.contains("top secret") && !result.contains("root:"),
            "event {id} read something it must not: {result}"
        );
    }
}

#[test]
fn without_grants_the_file_system_is_unreachable() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_file = dir.join("data/file.txt").display().to_string();
    let host_escape = dir.join("escape.txt").display().to_string();
    write_events(
        dir,
        &[
            fs_event(0, "read", "/etc/passwd"),
            fs_event(1, "list", "/"),
            fs_event(2, "read", &host_file),
            fs_event(3, "read", "data/file.txt"),
            fs_event(4, "write", &host_escape),
            fs_event(5, "list", "."),
            fs_event(6, "read", "/data/file.txt"),
        ],
    );
    write_pipeline(dir, FILE_SOURCE, 100, 20, &stage("fs", ""));
    let out = run_watched(dir, &[], Duration::from_secs(30));
    let results = results(dir, &out);
    assert_eq!(results.len(), 7, "{results:#?}");
    for (id, what) in [
        (0, "reading /etc/passwd"),
        (1, "listing /"),
        (2, "reading a host path"),
        (3, "reading a relative path"),
        (4, "writing a host path"),
        (5, "listing ."),
        (6, "reading an ungranted /data"),
    ] {
        assert_err(&results, id, what);
    }
    assert_nothing_leaked(&results);
    assert!(
        !dir.join("escape.txt").exists(),
        "the plugin wrote on the host"
    );
}

#[test]
fn a_read_only_grant_allows_reading_inside_it_only() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_secret = dir.join("secret.txt").display().to_string();
    write_events(
        dir,
        &[
            fs_event(0, "read", "/data/file.txt"),
            fs_event(1, "list", "/data"),
            fs_event(2, "write", "/data/new.txt"),
            fs_event(3, "read", "/data/../../etc/passwd"),
            fs_event(4, "read", "/data/../secret.txt"),
            fs_event(5, "symlink-read", "/data/link-out"),
            fs_event(6, "symlink-read", "/data/link-abs"),
            fs_event(7, "read", "/data/dir-out/secret.txt"),
            fs_event(8, "read", "/etc/passwd"),
            fs_event(9, "read", &host_secret),
            fs_event(10, "write", "/data/file.txt"),
            fs_event(11, "write", "/data/dir-out/escape.txt"),
        ],
    );
    write_pipeline(
        dir,
        FILE_SOURCE,
        100,
        20,
        &stage(
            "fs",
            "[stages.grants]\ndirs = [{ path = \"data\", guest = \"/data\", mode = \"ro\" }]\n",
        ),
    );
    let out = run_watched(dir, &[], Duration::from_secs(30));
    let results = results(dir, &out);
    assert_eq!(results.len(), 12, "{results:#?}");
    assert_eq!(results[&0], "ok:granted content");
    assert_eq!(
        results[&1], "ok:4",
        "file.txt, link-out, link-abs and dir-out"
    );
    for (id, what) in [
        (2, "creating a file in a read-only grant"),
        (3, "escaping with ../../"),
        (4, "escaping with ../"),
        (5, "following a relative symlink out of the grant"),
        (6, "following an absolute symlink out of the grant"),
        (7, "following a directory symlink out of the grant"),
        (8, "reading /etc/passwd"),
        (9, "reading a host path"),
        (10, "overwriting a file in a read-only grant"),
        (11, "writing through a directory symlink"),
    ] {
        assert_err(&results, id, what);
    }
    assert_nothing_leaked(&results);
    assert!(!dir.join("data/new.txt").exists(), "wrote into a ro grant");
    assert!(!dir.join("escape.txt").exists(), "wrote out of the grant");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/file.txt")).expect("read back"),
        "granted content"
    );
}

#[test]
fn a_read_write_grant_writes_inside_it_only() {
    let tmp = sandbox_fixture();
    let dir = tmp.path();
    let host_escape = dir.join("escape4.txt").display().to_string();
    let root_escape = format!("/weir-sandbox-escape-{}.txt", std::process::id());
    let events = [
        json!({"id": 0, "op": "write", "path": "/data/new.txt", "content": "hello from the sandbox"}),
        fs_event(1, "read", "/data/new.txt"),
        fs_event(2, "write", "/data/../escape1.txt"),
        fs_event(3, "write", "/data/dir-out/escape2.txt"),
        json!({"id": 4, "op": "write", "path": "/data/link-out", "content": "overwritten"}),
        fs_event(5, "write", &root_escape),
        fs_event(6, "write", &host_escape),
        fs_event(7, "symlink-read", "/data/link-out"),
        fs_event(8, "read", "/data/link-abs"),
        fs_event(9, "list", "/data"),
    ];
    write_events(dir, &events);
    write_pipeline(
        dir,
        FILE_SOURCE,
        100,
        20,
        &stage(
            "fs",
            "[stages.grants]\ndirs = [{ path = \"data\", guest = \"/data\", mode = \"rw\" }]\n",
        ),
    );
    let out = run_watched(dir, &[], Duration::from_secs(30));
    let leaked_to_root = Path::new(&root_escape).exists();
    if leaked_to_root {
        let _ = std::fs::remove_file(&root_escape);
    }
    let results = results(dir, &out);
    assert_eq!(results.len(), 10, "{results:#?}");
    assert_eq!(results[&0], "ok:22");
    assert_eq!(results[&1], "ok:hello from the sandbox");
    for (id, what) in [
        (2, "writing above the grant with ../"),
        (3, "writing through a directory symlink"),
        (4, "writing through a file symlink out of the grant"),
        (5, "writing at the guest's /"),
        (6, "writing a host path"),
        (7, "reading through a relative symlink"),
        (8, "reading through an absolute symlink"),
    ] {
        assert_err(&results, id, what);
    }
    assert_eq!(results[&9], "ok:5", "the 4 fixtures and new.txt");
    assert_nothing_leaked(&results);
    assert!(
        !leaked_to_root,
        "the plugin wrote {root_escape} on the host"
    );

    // The file is on the host, in the granted folder, and only there.
    assert_eq!(
        std::fs::read_to_string(dir.join("data/new.txt")).expect("the written file"),
        "hello from the sandbox"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.txt")).expect("secret"),
        "top secret"
    );
    let top: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "cache",
        "data",
        "in.jsonl",
        "out",
        "pipeline.toml",
        "plugins",
        "secret.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(top, expected, "nothing written beside the grant");
    let data: BTreeSet<String> = std::fs::read_dir(dir.join("data"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        data,
        ["dir-out", "file.txt", "link-abs", "link-out", "new.txt"]
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    );
}
