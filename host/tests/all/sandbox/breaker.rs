//! The circuit breaker: once a stage faulted `max_faults` times, every later
//! event is a dead letter (`dead_letter`) or the pipeline stops without
//! losing what was read (`stop`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::support::{Outcome, run_watched};

/// 100 events; every 10th (ids 9, 19, ..., 99) panics the plugin.
const BREAKER_EVENTS: usize = 100;

fn breaker_trigger(id: usize) -> bool {
    id % 10 == 9
}

fn breaker_run(action: &str) -> (tempfile::TempDir, Outcome) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, BREAKER_EVENTS, breaker_trigger);
    write_pipeline(
        dir,
        FILE_SOURCE,
        10,
        20,
        &stage(
            "panic",
            &format!(
                "[stages.circuit_breaker]\nmax_faults = 3\nwindow_secs = 60\naction = \"{action}\"\n"
            ),
        ),
    );
    let out = run_watched(dir, &[], Duration::from_secs(60));
    (tmp, out)
}

fn is_breaker(reason: &str) -> bool {
    reason.contains("circuit breaker")
}

/// Checks what holds whatever the action: no event twice, no triggered event
/// delivered, the delivered ones in order, the dead letters either a
/// triggered event's trap or the open breaker, and nothing delivered after
/// the breaker opened. Returns the ids accounted for (delivered or dead) and
/// the first event dead-lettered by the open breaker, if any.
fn check_breaker_outputs(dir: &Path) -> (BTreeSet<usize>, Option<usize>) {
    let delivered = ids(&default_out(dir));
    let dlq = dead_letters(dir);
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    assert_eq!(delivered, sorted, "delivered in order");
    assert!(
        delivered.iter().all(|&id| !breaker_trigger(id)),
        "a triggered event was delivered: {delivered:?}"
    );
    let mut seen = BTreeSet::new();
    for &id in &delivered {
        assert!(seen.insert(id), "event {id} twice");
    }
    for r in &dlq {
        assert!(
            seen.insert(id(r)),
            "event {} twice (or delivered and dead)",
            id(r)
        );
        assert_provenance(r, STAGE);
        let reason = reason(r);
        if !is_breaker(reason) {
            assert!(
                breaker_trigger(id(r)) && reason.starts_with("plugin trapped:"),
                "event {} dead for {reason:?}",
                id(r)
            );
        }
    }
    let first_open = dlq.iter().filter(|r| is_breaker(reason(r))).map(id).min();
    if let Some(first_open) = first_open {
        assert!(
            delivered.iter().all(|&id| id < first_open),
            "delivered after the breaker opened at {first_open}: {delivered:?}"
        );
    }
    (seen, first_open)
}

#[test]
fn the_circuit_breaker_dead_letters_everything_once_open() {
    let (tmp, out) = breaker_run("dead_letter");
    let dir = tmp.path();
    assert_success(&out);
    let (seen, first_open) = check_breaker_outputs(dir);
    assert!(
        first_open.is_some(),
        "no dead letter says \"circuit breaker\": {:#?}\nstderr:\n{}",
        dead_letters(dir).iter().map(reason).collect::<Vec<_>>(),
        out.stderr
    );
    assert_eq!(
        seen,
        (0..BREAKER_EVENTS).collect::<BTreeSet<_>>(),
        "default + dead letters = input"
    );
    // By the third triggered event (29) the stage has faulted at least 3
    // times: every later event is dead with the breaker's reason.
    let dlq = dead_letters(dir);
    let by_id: BTreeMap<usize, &str> = dlq.iter().map(|r| (id(r), reason(r))).collect();
    for id in 30..BREAKER_EVENTS {
        let reason = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("event {id} is not a dead letter"));
        assert!(is_breaker(reason), "event {id}: {reason}");
    }
}

#[test]
fn the_circuit_breaker_can_stop_the_pipeline_without_losing_events() {
    let (tmp, out) = breaker_run("stop");
    let dir = tmp.path();
    assert!(
        !out.status.success(),
        "weir exited 0 though the breaker was set to stop; stderr:\n{}",
        out.stderr
    );
    let tripped = out.stderr.lines().any(|l| {
        let l = l.to_lowercase();
        l.contains("circuit breaker") && l.contains("trip")
    });
    assert!(
        tripped,
        "no log line says the breaker tripped:\n{}",
        out.stderr
    );

    assert!(
        !out.stderr.contains("were not delivered"),
        "the host reports undelivered events:\n{}",
        out.stderr
    );
    let (seen, _) = check_breaker_outputs(dir);
    // Everything read is accounted for: the delivered and dead events are
    // exactly the first `n` of the input (the file is read in order), at
    // least the first batch with the first triggered event...
    let n = seen.len();
    assert!(n >= 10, "only {n} events accounted for: {seen:?}");
    assert_eq!(
        seen,
        (0..n).collect::<BTreeSet<_>>(),
        "a gap: an event read was lost"
    );
    // ...and, if the host reports how many it read, exactly those.
    let read = out
        .stderr
        .lines()
        .find(|l| l.contains("pipeline finished"))
        .and_then(|l| l.split("events_in=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(read) = read {
        assert_eq!(n, read, "events read vs delivered + dead");
    }
    // ...and so does the source when it closes: every chunk it handed out
    // acknowledged as delivered (dead letters included), none failed.
    let closed = out
        .stderr
        .lines()
        .find(|l| l.contains("source closed"))
        .unwrap_or_else(|| panic!("no `source closed` line; stderr:\n{}", out.stderr));
    let field = |name: &str| {
        closed
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {name}= in {closed}"))
    };
    assert_eq!(field("failed"), 0, "{closed}");
    assert_eq!(field("delivered"), n, "{closed}");
}
