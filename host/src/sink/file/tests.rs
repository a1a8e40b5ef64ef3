use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::*;
use crate::event::{Event, Position};
use crate::pipeline::{Ack, AckSet, AckStatus, Finalizer, ack_channel};
use crate::sink::jsonl::decode::decode_envelope;
use crate::sink::{Sink, SinkBatch};

fn events(n: usize, from: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let offset = from + i as i64;
            Event::new(
                Bytes::from(format!("{{\"n\":{offset}}}")),
                1000 + offset,
                Position::new(Arc::from("test"), 0, offset),
            )
            .with_key(format!("k{offset}"))
        })
        .collect()
}

/// A batch whose acknowledgement comes back on `tx`, as the pipeline makes them.
fn batch(chunk: u64, events: Vec<Event>, tx: &mpsc::UnboundedSender<Ack>) -> SinkBatch {
    let acks = AckSet::new(vec![Finalizer::new(chunk, events.len(), tx.clone())]);
    acks.mark_reached_sinks();
    SinkBatch { events, acks }
}

/// `path` in a pipeline file in `base_dir`.
fn config(path: &Path, base_dir: &Path) -> FileSinkConfig {
    let mut config = FileSinkConfig {
        path: path.into(),
        append: false,
        fsync: false,
        format: OutputFormat::Json,
    };
    config.resolve_paths(base_dir);
    config
}

#[tokio::test]
async fn writes_envelopes_then_acks_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut rx) = ack_channel();
    let mut sink = config(Path::new("out/nested/a.jsonl"), dir.path())
        .build()
        .expect("build");
    let sent = events(5, 0);
    sink.send(batch(0, sent.clone(), &tx)).await.expect("send");
    let ack = rx.try_recv().expect("acked once written");
    assert_eq!(ack.status, AckStatus::Delivered);
    assert_eq!((ack.chunk, ack.events), (0, 5));
    sink.send(batch(1, events(3, 5), &tx)).await.expect("send");
    sink.flush().await.expect("flush");
    let text = std::fs::read_to_string(dir.path().join("out/nested/a.jsonl")).expect("read");
    let back: Vec<Event> = text
        .lines()
        .map(|l| {
            decode_envelope(l.as_bytes())
                .expect("decode")
                .into_event(Position::new(Arc::from("?"), 0, 0))
        })
        .collect();
    assert_eq!(back.len(), 8);
    assert_eq!(&back[..5], &sent[..]);
}

#[tokio::test]
async fn truncates_unless_append_and_writes_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.txt");
    std::fs::write(&path, "old\n").expect("write");
    let (tx, _rx) = ack_channel();
    let mut c = config(&path, dir.path());
    c.format = OutputFormat::Value;
    let mut sink = c.build().expect("build");
    sink.send(batch(0, events(2, 0), &tx)).await.expect("send");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{\"n\":0}\n{\"n\":1}\n"
    );
    c.append = true;
    c.fsync = true;
    let mut sink = c.build().expect("build");
    sink.send(batch(1, events(1, 2), &tx)).await.expect("send");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
    );
}

/// Records whether the batch's ack had arrived when the data was written.
struct Probe {
    acks: Arc<Mutex<mpsc::UnboundedReceiver<Ack>>>,
    acked_before_write: Arc<Mutex<Option<bool>>>,
}

impl std::io::Write for Probe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let early = self.acks.lock().expect("lock").try_recv().is_ok();
        *self.acked_before_write.lock().expect("lock") = Some(early);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn acknowledges_only_after_the_write() {
    let (tx, rx) = ack_channel();
    let rx = Arc::new(Mutex::new(rx));
    let seen = Arc::new(Mutex::new(None));
    let probe = Probe {
        acks: rx.clone(),
        acked_before_write: seen.clone(),
    };
    let mut sink = WriterSink::new("probe".into(), OutputFormat::Json, probe, |w| w.flush());
    sink.send(batch(0, events(4, 0), &tx)).await.expect("send");
    assert_eq!(
        *seen.lock().expect("lock"),
        Some(false),
        "no ack before the write"
    );
    let ack = rx.lock().expect("lock").try_recv().expect("ack after");
    assert_eq!(ack.status, AckStatus::Delivered);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn write_failure_fails_the_acks() {
    let (tx, mut rx) = ack_channel();
    let mut sink = config(Path::new("/dev/full"), Path::new("/"))
        .build()
        .expect("/dev/full opens");
    let err = sink
        .send(batch(9, events(3, 0), &tx))
        .await
        .expect_err("no space left");
    assert!(err.to_string().contains("/dev/full"), "{err}");
    let ack = rx.try_recv().expect("ack");
    assert_eq!((ack.chunk, ack.status), (9, AckStatus::Failed));
}

#[tokio::test]
async fn unwritable_path_fails_at_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write");
    let err = config(&blocker.join("out.jsonl"), dir.path())
        .build()
        .err()
        .expect("error");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

struct Slow;

impl std::io::Write for Slow {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_dropped_send_fails_its_acks() {
    let (tx, mut rx) = ack_channel();
    let mut sink = WriterSink::new("slow".into(), OutputFormat::Json, Slow, |w| w.flush());
    let send = sink.send(batch(3, events(2, 0), &tx));
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), send).await;
    assert!(timed_out.is_err(), "the write takes longer");
    let ack = rx.try_recv().expect("ack when the send is dropped");
    assert_eq!((ack.chunk, ack.status), (3, AckStatus::Failed));
}
