//! The output topic's partition leader unavailable while input keeps
//! flowing: the input topic on one tansu broker, the output topic on
//! another, which is SIGKILLed for 15 s while more events are produced to
//! the input. Nothing past what the output acknowledged is committed,
//! nothing is lost, the re-deliveries are counted. `docs/reliability.md`
//! has the table.

use std::time::{Duration, Instant};

use crate::kafka::{
    PARTITIONS, Reader, Weir, assert_all_present, assert_partition_order, committed, distinct, ev,
    pipeline, produce, timed, topics, wait_committed,
};
use crate::support::Broker;

/// The events of `in` whose offsets `group` has committed.
fn committed_events(broker: &Broker, group: &str) -> i64 {
    committed(broker, group, "in").into_iter().flatten().sum()
}

#[test]
fn kafka_output_leader_down_while_input_flows_commits_nothing_unwritten_and_loses_nothing() {
    timed(Duration::from_secs(420), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let input = Broker::sqlite();
        let mut output = Broker::sqlite();
        topics(&input);
        output.create_topic("out", PARTITIONS as u32);
        let n = 4_000;
        produce(&input, "in", 0..n / 2, ev);
        let group = "g-out-down";
        let file = pipeline(dir, "p", &input, group, ("upper", ""));
        let text = std::fs::read_to_string(&file).expect("pipeline");
        let text = text
            .replace(
                &format!(
                    "[outputs.default]\ntype = \"kafka\"\nbrokers = \"{}\"",
                    input.addr()
                ),
                &format!(
                    "[outputs.default]\ntype = \"kafka\"\nbrokers = \"{}\"",
                    output.addr()
                ),
            )
            .replace(
                &format!(
                    "[dead_letter]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"dlq\"",
                    input.addr()
                ),
                "[dead_letter]\ntype = \"file\"\npath = \"dlq.jsonl\"",
            );
        assert!(text.contains(&output.addr()), "{text}");
        std::fs::write(&file, text).expect("pipeline");
        let mut weir = Weir::start(&file, dir.join("weir.log"));
        {
            let mut out = Reader::new(&output, "out");
            out.until(
                Duration::from_secs(180),
                "output before the outage",
                &[&weir],
                |r| distinct(r) as u64 >= n / 2,
            );
        }
        output.kill();
        // Input keeps flowing while the output's leader is gone.
        produce(&input, "in", n / 2..n, ev);
        let down = Instant::now();
        let mut most = 0;
        while down.elapsed() < Duration::from_secs(15) {
            weir.assert_running();
            most = most.max(committed_events(&input, group));
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(
            most <= (n / 2) as i64,
            "{most} events committed while the output was down, only {} were written",
            n / 2
        );
        output.start();
        let mut out = Reader::new(&output, "out");
        out.until(
            Duration::from_secs(240),
            "output after the leader came back",
            &[&weir],
            |r| distinct(r) as u64 >= n,
        );
        let all = vec![Some((n / PARTITIONS as u64) as i64); PARTITIONS as usize];
        wait_committed(&input, group, &all, &mut weir, Duration::from_secs(60));
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());
        out.settle(Duration::from_millis(500));
        let dups = assert_all_present(&out.records, n);
        assert_partition_order(&out.records);
        let dead = dir.join("dlq.jsonl");
        assert!(
            !dead.exists() || std::fs::read_to_string(&dead).expect("dlq").is_empty(),
            "dead letters during the outage"
        );
        eprintln!(
            "output leader down 15 s: {most} of {} committed during it, 0 lost, {dups} duplicates",
            n / 2
        );
    });
}
