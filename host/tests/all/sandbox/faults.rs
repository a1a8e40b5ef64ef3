//! Traps and limits: one bad event among many is isolated with the reason;
//! a panic in init refuses the stage; a slow plugin slows the source down.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::support::{Outcome, run_watched};

/// The input of the "one bad event among many" tests.
const EVENTS: usize = 1_000;
/// The one bad event among them.
const BAD_ID: usize = 517;

/// Runs `mode` on 1,000 events of which only #517 is triggered, all in one
/// batch; asserts the host survived, #517 alone is a dead letter (with
/// provenance and its original value) and the 999 others were delivered in
/// order. Returns the dead letter's reason and the run.
fn one_bad_event_among_many(mode: &str, limits: &str, timeout: Duration) -> (String, Outcome) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, EVENTS, |id| id == BAD_ID);
    // max_wait_ms is long: the batch is cut when it has all 1,000 events.
    write_pipeline(
        dir,
        FILE_SOURCE,
        EVENTS,
        10_000,
        &stage(mode, &format!("[stages.limits]\n{limits}")),
    );
    let out = run_watched(dir, &[], timeout);
    assert_success(&out);

    let dlq = dead_letters(dir);
    assert_eq!(
        ids(&dlq),
        vec![BAD_ID],
        "exactly the bad event is a dead letter; stderr:\n{}",
        out.stderr
    );
    let dead = &dlq[0];
    assert_eq!(dead["value"], json!({"id": BAD_ID, "trigger": true}));
    assert_provenance(dead, STAGE);

    let delivered = ids(&default_out(dir));
    let expected: Vec<usize> = (0..EVENTS).filter(|&i| i != BAD_ID).collect();
    assert_eq!(delivered.len(), expected.len(), "delivered count");
    assert_eq!(delivered, expected, "every other event, in order");
    (reason(dead).to_owned(), out)
}

#[test]
fn an_infinite_loop_is_stopped_by_the_batch_deadline() {
    let (reason, _) =
        one_bad_event_among_many("loop", "max_batch_ms = 300\n", Duration::from_secs(60));
    assert!(
        reason.contains("CPU time limit") && reason.contains("300 ms"),
        "{reason}"
    );
}

/// Memory bomb: the plugin may not grow past 64 MiB, and the host itself
/// stays far from the bomb's appetite (it would take all the machine's memory
/// otherwise). The bound, 600 MiB, is the host (~50 MiB), the 64 MiB memory
/// of the instance that blew up and a fresh one, and the 1,000-event batch
/// copies, with a wide margin.
#[test]
fn a_memory_bomb_hits_the_memory_limit_and_the_host_stays_bounded() {
    let (reason, out) =
        one_bad_event_among_many("memory", "max_memory_mib = 64\n", Duration::from_secs(30));
    assert!(
        reason.contains("memory limit") && reason.contains("64 MiB"),
        "{reason}"
    );
    assert!(
        out.peak_rss < 600 * MIB,
        "host RSS peaked at {} MiB (bound 600 MiB)",
        out.peak_rss / MIB
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_trap() {
    let (reason, _) = one_bad_event_among_many("recursion", "", Duration::from_secs(30));
    assert!(
        reason.starts_with("plugin trapped:") && reason.contains("stack overflow"),
        "{reason}"
    );
}

/// Recursion that runs off the plugin's own stack in linear memory traps as
/// an out-of-bounds access: the reason still says it was a stack overflow,
/// and in which function.
#[test]
fn recursion_that_exhausts_the_plugin_stack_is_named_a_stack_overflow() {
    let (reason, _) = one_bad_event_among_many("deep-recursion", "", Duration::from_secs(30));
    assert!(
        reason.starts_with("plugin trapped: stack overflow: unbounded recursion in `")
            && reason.contains("recurse_in_memory"),
        "{reason}"
    );
}

/// A panic isolates its event; the reason carries the panic's message, and
/// the log names the fault once (not once per halving step of the bisect).
#[test]
fn a_panic_is_a_trap_that_isolates_the_event() {
    let (reason, out) = one_bad_event_among_many("panic", "", Duration::from_secs(30));
    assert!(
        reason.starts_with("plugin trapped: the plugin panicked: boom on id")
            && reason.contains("(at "),
        "{reason}"
    );
    let mentions = out.stderr.matches("boom on id").count();
    assert_eq!(mentions, 1, "the panic is logged once:\n{}", out.stderr);
    assert_eq!(
        out.stderr.matches("poison event isolated").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn a_huge_output_is_refused_by_the_output_limit() {
    let (reason, _) = one_bad_event_among_many(
        "huge-output",
        "max_output_mib = 4\n",
        Duration::from_secs(30),
    );
    assert!(
        reason.starts_with("plugin output of") && reason.contains("(4 MiB per batch)"),
        "{reason}"
    );
    // The output it refused is at least the 32 MiB value.
    let bytes: u64 = reason
        .trim_start_matches("plugin output of ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {reason}"));
    assert!(bytes >= 32 * MIB, "{reason}");
}

/// Fuel, when set, stops a runaway loop without waiting for the wall-clock
/// deadline (here a minute per batch: bisecting the 1,000 events by deadline
/// alone would take ten minutes).
#[test]
fn fuel_stops_an_infinite_loop_long_before_the_deadline() {
    let (reason, out) = one_bad_event_among_many(
        "loop",
        "max_batch_ms = 60000\nfuel = 200000000\n",
        Duration::from_secs(60),
    );
    assert!(reason.to_lowercase().contains("fuel"), "{reason}");
    assert!(
        out.elapsed < Duration::from_secs(45),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn a_panic_in_init_fails_the_start_naming_the_stage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_ids(dir, 10, |_| false);
    write_pipeline(
        dir,
        FILE_SOURCE,
        10,
        20,
        &named_stage("exploding-init", "panic-init", ""),
    );
    let out = run_watched(dir, &[], Duration::from_secs(30));
    // A clean refusal: an error exit, not a crash of the host (a Rust panic
    // exits 101, a signal has no code).
    assert!(
        matches!(out.status.code(), Some(code) if code != 0 && code != 101),
        "weir must refuse the stage with an error, not start it or crash ({:?}); stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("thread 'main'"),
        "the host panicked; stderr:\n{}",
        out.stderr
    );
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line; stderr:\n{}", out.stderr));
    assert!(
        error.contains("exploding-init")
            && error.contains("init")
            && error.to_lowercase().contains("panic"),
        "the error must name the stage and say init panicked: {error}"
    );
    assert!(default_out(dir).is_empty(), "no output may be written");
    assert!(
        dead_letters(dir).is_empty(),
        "no dead letter may be written"
    );
}

// ---------------------------------------------------------------------------
// Slow plugin and backpressure
// ---------------------------------------------------------------------------

/// A plugin sleeping 20 ms per event behind a source that could go much
/// faster: everything is delivered, and the host does not buffer the input.
///
/// The bound: events are 1 MiB, 200 of them (200 MiB in all), 10 per batch.
/// With the bounded queues the host holds a handful of batches (the batcher,
/// the stage's input queue, the batch in the plugin and its copies in the
/// plugin's memory): ~100 MiB over its own ~50 MiB. A host reading the
/// source ahead of the plugin would hold the whole 200 MiB plus those
/// copies, over 300 MiB.
#[test]
fn a_slow_plugin_slows_the_source_down_and_memory_stays_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let source =
        "type = \"generate\"\nschema = \"sized\"\nsize = 1048576\nrate = 100000\ncount = 200\n";
    write_pipeline(dir, source, 10, 20, &stage("slow", "sleep_ms = 20\n"));
    let out = run_watched(dir, &[], Duration::from_secs(60));
    assert_success(&out);
    let delivered = default_out(dir);
    let offsets: Vec<i64> = delivered
        .iter()
        .map(|r| r["source"]["offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>(), "all, in order");
    assert!(dead_letters(dir).is_empty());
    // 200 × 20 ms = 4 s of sleeping: the plugin really was the bottleneck.
    assert!(
        out.elapsed >= Duration::from_secs(2),
        "200 events at 20 ms each took only {:?}",
        out.elapsed
    );
    assert!(
        out.peak_rss < 300 * MIB,
        "host RSS peaked at {} MiB (bound 300 MiB)",
        out.peak_rss / MIB
    );
}
