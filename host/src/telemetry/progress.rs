//! The live progress line of `weir run`: rates in and out, dead letters.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::PipelineStats;

/// Prints a progress line every `every` until `stop` resolves: one line
/// rewritten in place on a terminal, plain log lines otherwise.
pub async fn report(
    stats: Arc<PipelineStats>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let tty = std::io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64, 0u64);
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
        let line = format!(
            "in {:>9.0}/s  out {:>9.0}/s  total in {}  out {}  dlq {}",
            (i - last.1) as f64 / secs,
            (o - last.2) as f64 / secs,
            i,
            o,
            stats.dead_letters.load(Relaxed),
        );
        last = (now, i, o);
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
