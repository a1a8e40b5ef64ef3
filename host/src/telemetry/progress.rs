//! The live progress line of `weir run`: rates in and out, dead letters,
//! Kafka lag and the end-to-end p99 of the last interval.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{HistogramSnapshot, PipelineStats};
use crate::source::KafkaStats;

/// End-to-end latency over every output (dead letters excluded).
fn end_to_end(stats: &PipelineStats) -> HistogramSnapshot {
    let mut all = HistogramSnapshot::default();
    for h in stats.end_to_end.values() {
        all.merge(&h.snapshot());
    }
    all
}

/// One progress line. `window`: end-to-end latency observed in the interval.
pub fn line(
    in_rate: f64,
    out_rate: f64,
    stats: &PipelineStats,
    lag: Option<i64>,
    window: &HistogramSnapshot,
) -> String {
    let mut line = format!(
        "in {:>8.0}/s  out {:>8.0}/s  total in {}  out {}  dlq {}",
        in_rate,
        out_rate,
        stats.events_in.load(Relaxed),
        stats.events_out(),
        stats.dead_letters.load(Relaxed),
    );
    if let Some(lag) = lag {
        line.push_str(&format!("  lag {lag}"));
    }
    if let Some(p99) = window.quantile(0.99) {
        line.push_str(&format!("  p99 {:.1}ms", p99 * 1e3));
    }
    line
}

/// Prints a progress line every `every` until `stop` resolves: one compact
/// line rewritten in place on a terminal, plain log lines otherwise.
pub async fn report_progress(
    stats: Arc<PipelineStats>,
    kafka: Option<Arc<KafkaStats>>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let tty = std::io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut last_e2e = end_to_end(&stats);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let (i, o) = (stats.events_in.load(Relaxed), stats.events_out());
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-9);
        let e2e = end_to_end(&stats);
        let line = line(
            i.saturating_sub(last.1) as f64 / secs,
            o.saturating_sub(last.2) as f64 / secs,
            &stats,
            kafka.as_ref().map(|k| k.total_lag()),
            &e2e.since(&last_e2e),
        );
        last = (now, i, o);
        last_e2e = e2e;
        if tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else {
            tracing::info!(target: "weir::progress", "{line}");
        }
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_lag_and_the_interval_p99() {
        let stats = PipelineStats::new(["default".to_string()], &[]);
        stats.events_in.store(10, Relaxed);
        stats.outputs["default"].store(9, Relaxed);
        let before = end_to_end(&stats);
        stats.end_to_end["default"].observe_n(0.004, 100);
        let window = end_to_end(&stats).since(&before);
        let l = line(5.0, 4.0, &stats, Some(7), &window);
        assert!(l.contains("total in 10  out 9  dlq 0"), "{l}");
        assert!(l.contains("lag 7"), "{l}");
        let p99: f64 = l
            .split("p99 ")
            .nth(1)
            .and_then(|v| v.strip_suffix("ms"))
            .and_then(|v| v.parse().ok())
            .expect("a p99");
        assert!((2.5..=5.0).contains(&p99), "{l}");
        let quiet = line(0.0, 0.0, &stats, None, &HistogramSnapshot::default());
        assert!(!quiet.contains("lag") && !quiet.contains("p99"), "{quiet}");
    }
}
