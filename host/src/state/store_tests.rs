use super::*;

fn stage() -> Arc<str> {
    Arc::from("count")
}

fn slot(partition: i32) -> Slot {
    Slot {
        stage: stage(),
        partition,
    }
}

fn put(key: &str, value: &str, expires_ms: Option<i64>) -> StateWrite {
    StateWrite {
        slot: slot(0),
        key: Bytes::from(key.to_owned()),
        value: Some(Bytes::from(value.to_owned())),
        expires_ms,
    }
}

fn open(dir: &Path) -> StateStore {
    StateStore::open(dir, &StateConfig::default()).expect("open")
}

fn keys(list: &[&str]) -> Vec<Bytes> {
    list.iter().map(|k| Bytes::from(k.to_string())).collect()
}

#[test]
fn commit_reopen_and_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        assert!(store.progress().expect("progress").is_empty());
        let commit = Commit {
            writes: vec![put("a", "1", None), put("b", "2", None)],
            timers: vec![TimerWrite {
                slot: slot(0),
                at_ms: 5_000,
                key: Bytes::from("a"),
                set: true,
            }],
            progress: vec![(Arc::from("in.jsonl"), 0, 41)],
            ..Commit::default()
        };
        store.commit(&commit).expect("commit");
        let mut del = put("b", "", None);
        del.value = None;
        store
            .commit(&Commit {
                writes: vec![del],
                progress: vec![(Arc::from("in.jsonl"), 0, 42)],
                ..Commit::default()
            })
            .expect("commit");
    }
    let store = open(dir.path());
    assert_eq!(
        store
            .get_many("count", 0, &keys(&["a", "b", "c"]), 0)
            .expect("get"),
        vec![Some(Bytes::from("1")), None, None]
    );
    assert_eq!(
        store.get_many("count", 7, &keys(&["a"]), 0).expect("get"),
        vec![None],
        "another partition is another keyspace"
    );
    let progress = store.progress().expect("progress");
    assert_eq!(progress.get(&(Arc::from("in.jsonl"), 0)), Some(&42));
    assert_eq!(
        store.due_timers("count", 0, 4_999, 10).expect("timers"),
        vec![]
    );
    assert_eq!(
        store.due_timers("count", 0, 5_000, 10).expect("timers"),
        vec![(5_000, Bytes::from("a"))]
    );
    assert_eq!(store.partitions("count"), vec![0]);
    let entries = store.scan("count", None, 10, 0).expect("scan");
    assert_eq!(entries.len(), 1);
    assert_eq!(&entries[0].key[..], b"a");
}

#[test]
fn a_second_process_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(dir.path());
    let err = StateStore::open(dir.path(), &StateConfig::default())
        .err()
        .expect("locked");
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("in use by another weir process"),
        "{err}"
    );
}

#[test]
fn expired_entries_read_as_absent_and_are_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .commit(&Commit {
            writes: vec![
                put("old", "x", Some(1_000)),
                put("new", "y", Some(9_000)),
                put("forever", "z", None),
            ],
            ..Commit::default()
        })
        .expect("commit");
    let ks = keys(&["old", "new", "forever"]);
    assert_eq!(
        store.get_many("count", 0, &ks, 999).expect("get"),
        vec![
            Some(Bytes::from("x")),
            Some(Bytes::from("y")),
            Some(Bytes::from("z"))
        ]
    );
    assert_eq!(
        store.get_many("count", 0, &ks, 1_000).expect("get"),
        vec![None, Some(Bytes::from("y")), Some(Bytes::from("z"))]
    );
    assert_eq!(store.scan("count", None, 10, 1_000).expect("scan").len(), 2);
    assert_eq!(store.sweep_expired("count", 1_000, 100).expect("sweep"), 1);
    assert_eq!(store.sweep_expired("count", 1_000, 100).expect("sweep"), 0);
    assert_eq!(
        store.scan("count", None, 10, 0).expect("scan").len(),
        2,
        "the swept entry is gone"
    );
    assert_eq!(store.sweep_expired("count", 10_000, 100).expect("sweep"), 1);
    assert_eq!(
        store.get_many("count", 0, &ks, 0).expect("get"),
        vec![None, None, Some(Bytes::from("z"))]
    );
}

#[test]
fn timers_are_ordered_by_time_negative_ones_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let timer = |at_ms, key: &str, set| TimerWrite {
        slot: slot(3),
        at_ms,
        key: Bytes::from(key.to_owned()),
        set,
    };
    store
        .commit(&Commit {
            timers: vec![
                timer(300, "c", true),
                timer(-5, "a", true),
                timer(20, "b", true),
            ],
            ..Commit::default()
        })
        .expect("commit");
    let due = store.due_timers("count", 3, 100, 10).expect("due");
    assert_eq!(due, vec![(-5, Bytes::from("a")), (20, Bytes::from("b"))]);
    assert_eq!(
        store.due_timers("count", 3, 1_000, 1).expect("due").len(),
        1,
        "limit"
    );
    store
        .commit(&Commit {
            timers: vec![timer(-5, "a", false)],
            ..Commit::default()
        })
        .expect("commit");
    let due = store.due_timers("count", 3, i64::MAX, 10).expect("due");
    assert_eq!(due, vec![(20, Bytes::from("b")), (300, Bytes::from("c"))]);
}

/// A child process commits, in a loop, batches that write keys `a` and `b`
/// and the progress, all to the same number n; it is SIGKILLed at a random
/// point. Reopened, the store must hold one n for all three (never a torn
/// batch), and n must not go back between kills.
#[test]
fn a_commit_lands_whole_or_not_at_all_across_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut last = -1i64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..4 {
        // SAFETY: the child only opens its own store and commits; it never
        // returns into the test harness (it is killed, or `_exit`s).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match StateStore::open(dir.path(), &StateConfig::default()) {
                Ok(store) => {
                    let mut n = store
                        .progress()
                        .ok()
                        .and_then(|p| p.values().next().copied())
                        .unwrap_or(0);
                    loop {
                        n += 1;
                        let v = n.to_string();
                        let commit = Commit {
                            writes: vec![put("a", &v, None), put("b", &v, None)],
                            progress: vec![(Arc::from("s"), 0, n)],
                            ..Commit::default()
                        };
                        if store.commit(&commit).is_err() {
                            break 3;
                        }
                    }
                }
                Err(_) => 2,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(150 + seed % 250));
        // SAFETY: `pid` is our child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(
                libc::WIFSIGNALED(status),
                "round {round}: the child ended on its own: {status}"
            );
        }
        let store = open(dir.path());
        let got = store
            .get_many("count", 0, &keys(&["a", "b"]), 0)
            .expect("get");
        let progress = store.progress().expect("progress");
        let n = progress
            .get(&(Arc::from("s"), 0))
            .copied()
            .expect("some commit landed");
        let want = Some(Bytes::from(n.to_string()));
        assert_eq!(
            got,
            vec![want.clone(), want],
            "round {round}: a torn commit"
        );
        assert!(
            n > last,
            "round {round}: progress went back from {last} to {n}"
        );
        last = n;
    }
}

/// Forgetting a partition removes its state, timers, progress and changelog
/// checkpoint, and nothing of another partition.
#[test]
fn forget_removes_one_partition_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut other = put("b", "2", None);
    other.slot.partition = 1;
    store
        .commit(&Commit {
            writes: vec![put("a", "1", None), other],
            timers: vec![TimerWrite {
                slot: slot(0),
                at_ms: 5,
                key: Bytes::from("a"),
                set: true,
            }],
            progress: vec![(Arc::from("in"), 0, 10), (Arc::from("in"), 1, 20)],
            changelog: vec![(stage(), 0, 3), (stage(), 1, 4)],
        })
        .expect("commit");
    assert_eq!(store.changelog_offset("count", 0).expect("offset"), Some(3));
    assert_eq!(store.forget(&[stage()], "in", 0).expect("forget"), 2);
    assert_eq!(
        store.get_many("count", 0, &keys(&["a"]), 0).expect("get"),
        vec![None]
    );
    assert!(
        store
            .due_timers("count", 0, 100, 10)
            .expect("timers")
            .is_empty()
    );
    assert_eq!(store.changelog_offset("count", 0).expect("offset"), None);
    assert_eq!(store.changelog_offset("count", 1).expect("offset"), Some(4));
    let progress = store.progress().expect("progress");
    assert_eq!(progress.len(), 1);
    assert_eq!(progress.get(&(Arc::from("in"), 1)), Some(&20));
    assert_eq!(
        store.get_many("count", 1, &keys(&["b"]), 0).expect("get"),
        vec![Some(Bytes::from("2"))]
    );
}
