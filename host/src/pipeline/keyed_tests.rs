use super::*;
use crate::event::Position;
use crate::plugin::Output;
use crate::state::StateConfig;

fn ev(partition: i32, offset: i64, value: &str, ts: i64) -> Event {
    Event::new(
        value.to_owned(),
        ts,
        Position::new(Arc::from("in"), partition, offset),
    )
}

fn keyed(dir: &std::path::Path, max_value_bytes: usize) -> (KeyedState, Arc<AtomicU64>) {
    let mut config = StageStateConfig::keyed_by("/k");
    config.max_key_bytes = 8;
    config.max_value_bytes = max_value_bytes;
    keyed_with(dir, &config)
}

fn keyed_with(dir: &std::path::Path, config: &StageStateConfig) -> (KeyedState, Arc<AtomicU64>) {
    let store = StateStore::open(dir, &StateConfig::default()).expect("open");
    let committed = Arc::new(AtomicU64::new(0));
    let wm = WatermarkConfig {
        out_of_order_ms: 0,
        idle_timeout_ms: 60_000,
    };
    let state =
        KeyedState::new(Arc::from("count"), config, &wm, store, committed.clone()).expect("keyed");
    (state, committed)
}

/// A keyed stage (key `/k`) keeping at most `cache_keys` committed keys in
/// memory.
fn keyed_caching(dir: &std::path::Path, cache_keys: usize) -> (KeyedState, Arc<AtomicU64>) {
    let mut config = StageStateConfig::keyed_by("/k");
    config.cache_keys = cache_keys;
    keyed_with(dir, &config)
}

/// A keyed state begun on batch 0, and its input for `keys` on partition 0.
fn begun(
    dir: &std::path::Path,
    max_value_bytes: usize,
    keys: &[&str],
) -> (KeyedState, Arc<AtomicU64>, KeyedInput) {
    let (mut state, committed) = keyed(dir, max_value_bytes);
    state.begin(0);
    let keys: Vec<Bytes> = keys.iter().map(|k| b(k)).collect();
    let input = state.input(0, &keys, &[], None).expect("input");
    (state, committed, input)
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

#[test]
fn plan_groups_by_partition_and_rejects_keyless_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, _) = keyed(dir.path(), 100);
    let events = vec![
        ev(0, 0, r#"{"k":"a"}"#, 0),
        ev(1, 0, r#"{"k":"b"}"#, 0),
        ev(0, 1, r#"{"x":1}"#, 0),
        ev(0, 2, r#"{"k":"much-too-long"}"#, 0),
        ev(0, 3, r#"{"k":"a"}"#, 0),
    ];
    // Keys found here, by a thread before (the same), or handed over for
    // other events (a count that does not match: found again).
    let found = state.finder().keys(&events);
    let stale = state.finder().keys(&events[..2]);
    for keys in [Vec::new(), found, stale] {
        let plan = state.plan(events.clone(), keys);
        let shape: Vec<(i32, Vec<i64>, Vec<Bytes>)> = plan
            .groups
            .iter()
            .map(|g| {
                let offsets = g.events.iter().map(|e| e.position.offset).collect();
                (g.partition, offsets, g.keys.clone())
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, vec![0, 3], vec![b("a"), b("a")]),
                (1, vec![0], vec![b("b")])
            ]
        );
        let reasons: Vec<&str> = plan.rejects.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].contains("no state key at \"/k\""), "{reasons:?}");
        assert!(reasons[1].contains("over max_key_bytes = 8"), "{reasons:?}");
    }
}

#[test]
fn writes_are_seen_by_the_next_batch_before_and_after_their_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, committed, input) = begun(dir.path(), 100, &["a", "b", "a"]);
    assert_eq!(input.keys, vec![b("a"), b("b")]);
    assert_eq!(input.event_key, vec![0, 1, 0]);
    assert_eq!(input.states, vec![None, None]);
    let out = KeyedOutput {
        writes: vec![(b("a"), Some(b("2"))), (b("b"), Some(b("1")))],
        ..KeyedOutput::default()
    };
    let applied = state.apply(0, &input, out);
    assert!(applied.refused.is_empty());
    let delta = state.take_delta();
    assert_eq!(delta.writes.len(), 2);

    // Batch 1, batch 0 not committed: the overlay serves.
    state.begin(1);
    let input = state.input(0, &[b("a")], &[], None).expect("input");
    assert_eq!(input.states, vec![Some(b("2"))]);
    let out = KeyedOutput {
        writes: vec![(b("a"), None)],
        ..KeyedOutput::default()
    };
    state.apply(0, &input, out);
    let delta1 = state.take_delta();

    // Batch 0 commits: its entry for `b` leaves the overlay, the store has it.
    state.store().commit(&delta).expect("commit");
    committed.store(1, Ordering::Release);
    state.begin(2);
    let input = state.input(0, &[b("a"), b("b")], &[], None).expect("input");
    assert_eq!(
        input.states,
        vec![None, Some(b("1"))],
        "a's delete (batch 1) is still overlaid"
    );
    state.store().commit(&delta1).expect("commit");
    committed.store(2, Ordering::Release);
    state.begin(3);
    let input = state.input(0, &[b("a")], &[], None).expect("input");
    assert_eq!(input.states, vec![None]);
    assert_eq!(state.uncommitted(), 0, "everything committed");
}

fn output(input: u32) -> Output {
    Output {
        input,
        route: None,
        event: ev(0, input as i64, "{}", 0),
    }
}

#[test]
fn an_oversized_value_is_not_written_and_its_events_are_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, _, input) = begun(dir.path(), 4, &["a", "b", "a"]);
    let out = KeyedOutput {
        outputs: vec![output(0), output(1), output(2)],
        errors: vec![(2, "also refused".into())],
        writes: vec![(b("a"), Some(b("12345"))), (b("b"), Some(b("1234")))],
        timers: vec![TimerOp::Set {
            key: b("a"),
            at_ms: 5,
        }],
        ..KeyedOutput::default()
    };
    let applied = state.apply(0, &input, out);
    let (processed, dead) = (applied.processed, applied.refused);
    let kept: Vec<u32> = processed.outputs.iter().map(|o| o.input).collect();
    assert_eq!(kept, vec![1]);
    assert!(processed.errors.is_empty());
    let dead_at: Vec<u32> = dead.iter().map(|(i, _)| *i).collect();
    assert_eq!(dead_at, vec![0, 2]);
    assert!(
        dead[0]
            .1
            .contains("state value of key \"a\" is 5 bytes, over max_value_bytes = 4"),
        "{}",
        dead[0].1
    );
    let delta = state.take_delta();
    assert_eq!(delta.writes.len(), 1);
    assert_eq!(delta.writes[0].key, b("b"));
    assert!(
        delta.timers.is_empty(),
        "the refused key's timer is dropped too"
    );
}

#[test]
fn timers_fire_once_when_the_watermark_passes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, committed, input) = begun(dir.path(), 100, &["a"]);
    let out = KeyedOutput {
        timers: vec![
            TimerOp::Set {
                key: b("a"),
                at_ms: 1_000,
            },
            TimerOp::Set {
                key: b("a"),
                at_ms: 3_000,
            },
            TimerOp::Set {
                key: b("a"),
                at_ms: 9_000,
            },
            TimerOp::Cancel {
                key: b("a"),
                at_ms: 9_000,
            },
        ],
        ..KeyedOutput::default()
    };
    state.apply(0, &input, out);
    assert_eq!(state.observe(&[ev(0, 0, "{}", 2_000)]), 0);
    assert_eq!(state.watermark(), Some(2_000));
    let delta = state.take_delta();
    state.store().commit(&delta).expect("commit");
    committed.store(1, Ordering::Release);

    state.begin(1);
    assert_eq!(state.timer_partitions(), vec![0]);
    let due = state.take_due(0, state.watermark()).expect("due");
    assert_eq!(due, vec![(1_000, b("a"))]);
    let input = state.input(0, &[], &due, state.watermark()).expect("input");
    assert_eq!(input.keys, vec![b("a")]);
    assert_eq!(input.fired, vec![(0, 1_000)]);
    // Not committed yet: the fired timer does not fire again.
    assert!(state.take_due(0, Some(2_000)).expect("due").is_empty());
    assert_eq!(
        state.observe(&[ev(0, 1, "{}", 1_500)]),
        1,
        "behind the watermark: late"
    );
    state.end_of_input();
    let due = state.take_due(0, state.watermark()).expect("due");
    assert_eq!(due, vec![(3_000, b("a"))], "the cancelled one never fires");
}

/// Runs batch `seq` over `keys` on partition 0, writing `value` for each,
/// and commits it: returns the states the call received.
fn write_and_commit(
    state: &mut KeyedState,
    committed: &AtomicU64,
    seq: u64,
    keys: &[&str],
    value: &str,
) -> Vec<Option<Bytes>> {
    state.begin(seq);
    let keys: Vec<Bytes> = keys.iter().map(|k| b(k)).collect();
    let input = state.input(0, &keys, &[], None).expect("input");
    let out = KeyedOutput {
        writes: keys.iter().map(|k| (k.clone(), Some(b(value)))).collect(),
        ..KeyedOutput::default()
    };
    state.apply(0, &input, out);
    let delta = state.take_delta();
    state.store().commit(&delta).expect("commit");
    committed.store(seq + 1, Ordering::Release);
    input.states
}

/// The store's value of `key` changed behind the stage's back (as a restore
/// does), without telling it.
fn overwrite_in_store(state: &KeyedState, key: &str, value: &str) {
    state
        .store()
        .commit(&Commit {
            writes: vec![StateWrite {
                slot: Slot {
                    stage: Arc::from("count"),
                    partition: 0,
                },
                key: b(key),
                value: Some(b(value)),
                expires_ms: None,
            }],
            ..Commit::default()
        })
        .expect("commit");
}

#[test]
fn committed_state_is_served_from_the_cache_until_the_store_changes_under_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, committed) = keyed_with(dir.path(), &StageStateConfig::keyed_by("/k"));
    write_and_commit(&mut state, &committed, 0, &["a"], "1");
    overwrite_in_store(&state, "a", "from elsewhere");
    let seen = write_and_commit(&mut state, &committed, 1, &["a"], "2");
    assert_eq!(
        seen,
        vec![Some(b("1"))],
        "the cache serves the stage's own commit"
    );
    // A restore or forget says so: the cache is dropped, the store read.
    overwrite_in_store(&state, "a", "restored");
    state.store().replaced();
    let seen = write_and_commit(&mut state, &committed, 2, &["a"], "3");
    assert_eq!(seen, vec![Some(b("restored"))]);
    // Keys absent from the store are cached as absent, and then written.
    let seen = write_and_commit(&mut state, &committed, 3, &["new", "new"], "4");
    assert_eq!(seen, vec![None]);
    let seen = write_and_commit(&mut state, &committed, 4, &["new"], "5");
    assert_eq!(seen, vec![Some(b("4"))]);
}

#[test]
fn without_a_cache_every_batch_reads_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, committed) = keyed_caching(dir.path(), 0);
    write_and_commit(&mut state, &committed, 0, &["a"], "1");
    overwrite_in_store(&state, "a", "from elsewhere");
    let seen = write_and_commit(&mut state, &committed, 1, &["a"], "2");
    assert_eq!(seen, vec![Some(b("from elsewhere"))]);
    assert_eq!(state.cached(), 0);
}

#[test]
fn the_cache_stays_within_cache_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, committed) = keyed_caching(dir.path(), 8);
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    for seq in 0..5 {
        write_and_commit(&mut state, &committed, seq, &keys, &seq.to_string());
        assert!(state.cached() <= 8 + keys.len(), "{}", state.cached());
    }
    state.begin(5);
    assert!(state.cached() <= 8, "{}", state.cached());
    // Evicted or not, every key reads its last committed value.
    let all: Vec<Bytes> = keys.iter().map(|k| b(k)).collect();
    let input = state.input(0, &all, &[], None).expect("input");
    assert!(
        input.states.iter().all(|s| s == &Some(b("4"))),
        "{:?}",
        input.states
    );
}

#[test]
fn a_cached_entry_past_its_ttl_reads_as_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StageStateConfig::keyed_by("/k");
    config.ttl_secs = Some(1);
    let (mut state, committed) = keyed_with(dir.path(), &config);
    write_and_commit(&mut state, &committed, 0, &["a"], "1");
    let seen = write_and_commit(&mut state, &committed, 1, &["a"], "2");
    assert_eq!(seen, vec![Some(b("1"))]);
    state.begin(2);
    assert!(state.is_cached(0, b"a"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let input = state.input(0, &[b("a")], &[], None).expect("input");
    assert_eq!(input.states, vec![None]);
}
