//! Line-oriented sources (`file`, `stdin`): a reader thread turns a byte
//! stream into events, the async side hands them out.
//!
//! The thread does the blocking reads (64 KiB at a time, never the whole
//! input), splits lines, checks JSON and sends chunks of ready events through
//! a bounded channel: memory stays bounded and the runtime's threads never
//! block. [`LinesSource::read`] only awaits the channel, so it is cancel-safe.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{AckCounts, ChunkIds, Read, Source};
use crate::endpoint::EndpointError;
use crate::event::{Event, Position, now_ms};
use crate::json_pointer::Pointer;
use crate::pipeline::Ack;
use crate::pipeline::DeadLetter;

/// Bytes asked of the reader per `read` call.
const BLOCK: usize = 64 * 1024;
/// Chunks buffered between the reader thread and the pipeline.
const CHANNEL_CHUNKS: usize = 8;

/// How a line of input becomes an event.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// Each non-empty line is a JSON document, the event's value (the line's
    /// bytes, unchanged). A line that is not valid JSON goes to the dead-letter
    /// output with the reason.
    #[default]
    Json,
    /// Each non-empty line is the event's value, as is.
    Text,
}

impl LineFormat {
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Json => "json",
            LineFormat::Text => "text",
        }
    }
}

/// What the reader thread produces for one line.
enum Item {
    Event(Event),
    Reject(DeadLetter),
}

type Chunk = Result<Vec<Item>, std::io::Error>;

/// A source fed by a reader thread; shared by `file` and `stdin`.
pub struct LinesSource {
    describe: String,
    rx: mpsc::Receiver<Chunk>,
    pending: VecDeque<Item>,
    /// A read error, returned once `pending` is handed out.
    error: Option<std::io::Error>,
    exhausted: bool,
    chunks: ChunkIds,
    acked: AckCounts,
}

impl LinesSource {
    /// Starts the reader thread. `stream` names the input in event positions.
    pub(crate) fn spawn<R>(
        describe: String,
        stream: Arc<str>,
        format: LineFormat,
        event_time: Option<Arc<str>>,
        reader: R,
    ) -> Result<Self, EndpointError>
    where
        R: std::io::Read + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        std::thread::Builder::new()
            .name("weir-source-lines".into())
            .spawn(move || reader_thread(reader, Splitter::new(stream, format, event_time), tx))
            .map_err(|source| EndpointError::Io {
                context: format!("{describe}: cannot start the reader thread"),
                source,
            })?;
        Ok(Self {
            describe,
            rx,
            pending: VecDeque::new(),
            error: None,
            exhausted: false,
            chunks: ChunkIds::default(),
            acked: AckCounts::default(),
        })
    }

    fn io_error(&self, source: std::io::Error) -> EndpointError {
        EndpointError::Io {
            context: format!("reading {}", self.describe),
            source,
        }
    }
}

#[async_trait]
impl Source for LinesSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn read(&mut self, max: usize) -> Result<Option<Read>, EndpointError> {
        let max = max.max(1);
        if self.pending.is_empty() {
            if let Some(source) = self.error.take() {
                return Err(self.io_error(source));
            }
            if self.exhausted {
                return Ok(None);
            }
            // The only await: nothing is taken from the channel unless it
            // completes, so dropping this future loses nothing.
            match self.rx.recv().await {
                Some(Ok(items)) => self.pending.extend(items),
                Some(Err(source)) => {
                    self.exhausted = true;
                    return Err(self.io_error(source));
                }
                None => {
                    self.exhausted = true;
                    return Ok(None);
                }
            }
        }
        while self.pending.len() < max && self.error.is_none() {
            match self.rx.try_recv() {
                Ok(Ok(items)) => self.pending.extend(items),
                Ok(Err(e)) => {
                    self.exhausted = true;
                    self.error = Some(e);
                }
                Err(_) => break,
            }
        }
        // Not empty: the reader thread sends no empty chunk.
        let n = max.min(self.pending.len());
        let mut read = Read {
            chunk: self.chunks.mint(),
            events: Vec::new(),
            rejects: Vec::new(),
        };
        for item in self.pending.drain(..n) {
            match item {
                Item::Event(e) => read.events.push(e),
                Item::Reject(d) => read.rejects.push(d),
            }
        }
        Ok(Some(read))
    }

    async fn ack(&mut self, ack: Ack) -> Result<(), EndpointError> {
        self.acked.record(&ack);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), EndpointError> {
        // Dropping the receiver stops the reader thread at its next send.
        self.rx.close();
        self.acked.log_closed(&self.describe);
        Ok(())
    }
}

fn reader_thread<R: std::io::Read>(mut reader: R, mut splitter: Splitter, tx: mpsc::Sender<Chunk>) {
    let mut buf = BytesMut::with_capacity(BLOCK);
    loop {
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let n = match reader.read(&mut buf[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(start);
                continue;
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        buf.truncate(start + n);
        let eof = n == 0;
        let complete = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf[start..]) {
                Some(i) => start + i + 1,
                None => continue, // a line longer than what we have: read on
            }
        };
        if complete > 0 {
            let block = buf.split_to(complete).freeze();
            let items = splitter.split(&block);
            if !items.is_empty() && tx.blocking_send(Ok(items)).is_err() {
                return; // the source is gone
            }
        }
        if eof {
            return;
        }
    }
}

/// Cuts blocks of complete lines into items, numbering lines from 0.
pub(crate) struct Splitter {
    stream: Arc<str>,
    format: LineFormat,
    /// A JSON pointer to the event time (ms) in each JSON line.
    event_time: Option<Pointer>,
    next_line: i64,
}

impl Splitter {
    pub(crate) fn new(stream: Arc<str>, format: LineFormat, event_time: Option<Arc<str>>) -> Self {
        Self {
            stream,
            format,
            event_time: event_time.and_then(|p| Pointer::parse(&p)),
            next_line: 0,
        }
    }

    /// `block` holds whole lines (the last may lack its `\n` at end of input).
    fn split(&mut self, block: &Bytes) -> Vec<Item> {
        let ts = now_ms();
        let mut items = Vec::new();
        let mut start = 0;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
            let mut line_end = end;
            if line_end > start && block[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let offset = self.next_line;
            self.next_line += 1;
            let line = &block[start..line_end];
            start = end + 1;
            if let Some(item) = self.item(block.slice_ref(line), offset, ts) {
                items.push(item);
            }
        }
        items
    }

    fn item(&self, line: Bytes, offset: i64, ts: i64) -> Option<Item> {
        let position = || Position::new(self.stream.clone(), 0, offset);
        match self.format {
            LineFormat::Text if line.is_empty() => None,
            LineFormat::Text => Some(Item::Event(Event::new(line, ts, position()))),
            LineFormat::Json if line.iter().all(u8::is_ascii_whitespace) => None,
            LineFormat::Json => match check_json(&line) {
                Ok(()) => {
                    let ts = match &self.event_time {
                        Some(pointer) => event_time_at(&line, pointer).unwrap_or(ts),
                        None => ts,
                    };
                    Some(Item::Event(Event::new(line, ts, position())))
                }
                Err(why) => {
                    let reason = format!("invalid JSON at line {}: {why}", offset + 1);
                    let event = Event::new(line, ts, position());
                    Some(Item::Reject(DeadLetter::from_source(event, reason)))
                }
            },
        }
    }
}

/// `event_time` of a line source: a JSON pointer, on JSON lines.
pub(crate) fn validate_event_time(
    event_time: Option<&str>,
    format: LineFormat,
) -> Result<(), crate::validate::FieldError> {
    let Some(pointer) = event_time else {
        return Ok(());
    };
    if !pointer.starts_with('/') || pointer.len() < 2 {
        return Err(crate::validate::FieldError::new(
            "event_time",
            format!("{pointer:?}: use a JSON pointer such as \"/ts\""),
        ));
    }
    if format != LineFormat::Json {
        return Err(crate::validate::FieldError::new(
            "event_time",
            "needs format = \"json\"",
        ));
    }
    Ok(())
}

/// The event time (ms) at a JSON pointer of a JSON document: an integer, or
/// a float (truncated). `None` if absent or not a number.
pub(crate) fn event_time_at(value: &[u8], pointer: &Pointer) -> Option<i64> {
    let v = pointer.find(value).ok()??;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// Whether `line` is one JSON document (UTF-8 included); the reason if not,
/// without serde_json's "at line 1" (the caller knows the line).
pub(crate) fn check_json(line: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    crate::json_check::check_str(text).map_err(|e| {
        let msg = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        match msg.strip_suffix(&suffix) {
            Some(head) => format!("{head} at column {}", e.column()),
            None => msg,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(format: LineFormat, input: &[u8]) -> Vec<Item> {
        let mut s = Splitter::new(Arc::from("t"), format, None);
        s.split(&Bytes::copy_from_slice(input))
    }

    #[test]
    fn json_lines_events_and_rejects() {
        let items = split_all(LineFormat::Json, b"{\"a\":1}\r\n\n  \nnot json\n[1,2]");
        assert_eq!(items.len(), 3);
        let Item::Event(e) = &items[0] else {
            panic!("event expected")
        };
        assert_eq!(&e.value[..], b"{\"a\":1}");
        assert_eq!(e.position.offset, 0);
        let Item::Reject(d) = &items[1] else {
            panic!("reject expected")
        };
        assert_eq!(&d.event.value[..], b"not json");
        assert_eq!(d.event.position.offset, 3);
        assert!(
            d.reason.starts_with("invalid JSON at line 4: "),
            "{}",
            d.reason
        );
        let Item::Event(e) = &items[2] else {
            panic!("event expected")
        };
        assert_eq!(e.position.offset, 4);
    }

    #[test]
    fn event_time_from_a_pointer_else_ingestion_time() {
        let ts = Pointer::parse("/ts").expect("a pointer");
        assert_eq!(event_time_at(br#"{"ts":1700}"#, &ts), Some(1700));
        assert_eq!(event_time_at(br#"{"ts":17.9}"#, &ts), Some(17));
        assert_eq!(event_time_at(br#"{"ts":"x"}"#, &ts), None);
        let mut s = Splitter::new(Arc::from("t"), LineFormat::Json, Some(Arc::from("/ts")));
        let before = now_ms();
        let items = s.split(&Bytes::from_static(b"{\"ts\":42}\n{\"n\":1}\n"));
        let stamps: Vec<i64> = items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.timestamp_ms),
                Item::Reject(_) => None,
            })
            .collect();
        assert_eq!(stamps.len(), 2);
        assert_eq!(stamps[0], 42);
        assert!(stamps[1] >= before, "no /ts: the ingestion time");
    }

    #[test]
    fn text_lines_keep_whitespace_lines() {
        let items = split_all(LineFormat::Text, b"a\n\n \nb\n");
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn json_errors_name_the_column_not_line_one() {
        let why = check_json(b"{\"a\":}").expect_err("invalid");
        assert!(why.contains("column 6"), "{why}");
        assert!(!why.contains("line"), "{why}");
        let why = check_json(b"\"\xff\"").expect_err("invalid");
        assert!(why.contains("UTF-8"), "{why}");
        // JSON by the grammar, but no JSON reader's f64 holds it.
        let why = check_json(b"{\"amount\":1e999}").expect_err("out of range");
        assert_eq!(why, "number out of range at column 15");
    }
}
