//! A sink over a blocking writer (standard output, standard error, a file).
//!
//! Each batch is encoded into one reused buffer and written with one
//! `write_all` on the blocking thread pool, then the writer's `after_write`
//! step (flush, fsync) runs. The batch's acknowledgements are released only
//! after that succeeded; on an error, or if the `send` future is dropped
//! before, they are marked failed first. Part of a
//! failed batch may have been written (at-least-once: the input is read again
//! after a restart).

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::jsonl::OutputFormat;
use super::{Sink, SinkBatch};
use crate::endpoint::EndpointError;
use crate::pipeline::AckSet;

/// What runs after each batch's write: flush, and fsync if asked.
pub type AfterWrite<W> = fn(&mut W) -> std::io::Result<()>;

/// A buffer bigger than this is not kept between batches.
const KEEP_BUFFER: usize = 8 << 20;

/// A sink writing encoded events to `W` on the blocking thread pool.
pub struct WriterSink<W> {
    describe: String,
    format: OutputFormat,
    target: Arc<Mutex<W>>,
    after_write: AfterWrite<W>,
    buf: Vec<u8>,
}

impl<W: Write + Send + 'static> WriterSink<W> {
    pub fn new(
        describe: String,
        format: OutputFormat,
        target: W,
        after_write: AfterWrite<W>,
    ) -> Self {
        Self {
            describe,
            format,
            target: Arc::new(Mutex::new(target)),
            after_write,
            buf: Vec::new(),
        }
    }

    /// Runs `f` on the writer on the blocking pool.
    async fn with_target<T, F>(&self, f: F) -> std::io::Result<T>
    where
        F: FnOnce(&mut W) -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let target = self.target.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = target
                .lock()
                .map_err(|_| std::io::Error::other("a previous write panicked"))?;
            f(&mut w)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    fn io_error(&self, source: std::io::Error) -> EndpointError {
        EndpointError::Io {
            context: format!("writing to {}", self.describe),
            source,
        }
    }
}

#[async_trait]
impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        let SinkBatch { events, acks } = batch;
        if events.is_empty() {
            return Ok(());
        }
        // If this future is dropped before the write is known to be done, the
        // chunks are reported failed rather than delivered.
        let acks = FailUnlessDone(Some(acks));
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for event in &events {
            self.format.encode(event, &mut buf);
        }
        drop(events);
        let after_write = self.after_write;
        let written = self
            .with_target(move |w| {
                let result = w.write_all(&buf).and_then(|()| after_write(w));
                Ok((buf, result))
            })
            .await;
        let result = match written {
            Ok((buf, result)) => {
                if buf.capacity() <= KEEP_BUFFER {
                    self.buf = buf;
                }
                result
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                acks.done(); // accepted: acknowledged when the last holder lets go
                Ok(())
            }
            Err(source) => {
                drop(acks); // marks them failed
                Err(self.io_error(source))
            }
        }
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        let after_write = self.after_write;
        self.with_target(after_write)
            .await
            .map_err(|e| self.io_error(e))
    }
}

/// Holds a batch's acknowledgements: dropped without [`done`](Self::done),
/// it marks them failed first.
struct FailUnlessDone(Option<AckSet>);

impl FailUnlessDone {
    fn done(mut self) {
        drop(self.0.take());
    }
}

impl Drop for FailUnlessDone {
    fn drop(&mut self) {
        if let Some(acks) = self.0.take() {
            acks.fail();
        }
    }
}
