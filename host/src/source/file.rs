//! The `file` source: the lines of a file, read once from start to end.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::lines::{LineFormat, LinesSource};
use crate::endpoint::EndpointError;
use crate::paths::ConfigPath;
use crate::validate::{self, FieldError};

/// `[source] type = "file"`: one event per non-empty line of a file, read
/// from start to end (the file is streamed, never loaded whole). Positions:
/// stream = `path` as written, partition 0, offset = the 0-based line number
/// (empty lines count). Timestamps are the ingestion time.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The file to read, relative to the pipeline file's folder.
    pub path: ConfigPath,
    /// `json` (default): each non-empty line is a JSON document, and a line
    /// that is not goes to the dead-letter output with its line number;
    /// `text`: each non-empty line is the value as is.
    #[serde(default)]
    pub format: LineFormat,
    /// A JSON pointer to each event's time in milliseconds (`"/ts"`), for
    /// watermarks and timers; absent (or not a number in a line): the
    /// ingestion time.
    #[serde(default)]
    pub event_time: Option<String>,
}

impl FileSourceConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_empty("path", self.path.written())?;
        super::lines::validate_event_time(self.event_time.as_deref(), self.format)
    }

    /// Resolves `path` against the pipeline file's folder.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        self.path.resolve(base_dir);
    }

    /// Opens the file (an error now if it cannot be) and starts reading it.
    pub fn build(&self) -> Result<LinesSource, EndpointError> {
        let resolved = self.path.resolved();
        let file = std::fs::File::open(resolved).map_err(|source| EndpointError::Io {
            context: format!("cannot open the source file {}", resolved.display()),
            source,
        })?;
        let written = self.path.written();
        let stream: Arc<str> = Arc::from(written.to_string_lossy().as_ref());
        let describe = format!("file {} ({})", written.display(), self.format.name());
        LinesSource::spawn(
            describe,
            stream,
            self.format,
            self.event_time.as_deref().map(Arc::from),
            file,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;
    use crate::source::{Read, Source};

    /// `path` in a pipeline file in `base_dir`.
    fn config(path: &Path, format: LineFormat, base_dir: &Path) -> FileSourceConfig {
        let mut config = FileSourceConfig {
            path: path.into(),
            format,
            event_time: None,
        };
        config.resolve_paths(base_dir);
        config
    }

    async fn read_all(source: &mut LinesSource, max: usize) -> Vec<Read> {
        let mut reads = Vec::new();
        while let Some(read) = source.read(max).await.expect("read") {
            assert!(read.len() <= max, "{} items for max {max}", read.len());
            reads.push(read);
        }
        reads
    }

    #[tokio::test]
    async fn positions_values_and_rejects() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("in.jsonl"),
            "{\"n\":0}\n\n{\"n\":2}\n{oops\n{\"n\":4}",
        )
        .expect("write");
        let mut source = config(Path::new("in.jsonl"), LineFormat::Json, dir.path())
            .build()
            .expect("build");
        let reads = read_all(&mut source, 100).await;
        let events: Vec<_> = reads.iter().flat_map(|r| &r.events).collect();
        let rejects: Vec<_> = reads.iter().flat_map(|r| &r.rejects).collect();
        let offsets: Vec<i64> = events.iter().map(|e| e.position.offset).collect();
        assert_eq!(offsets, [0, 2, 4]);
        assert_eq!(&events[1].value[..], b"{\"n\":2}");
        assert!(events.iter().all(|e| &*e.position.stream == "in.jsonl"));
        assert!(
            events
                .iter()
                .all(|e| e.position.partition == 0 && e.key.is_none())
        );
        assert_eq!(rejects.len(), 1);
        assert_eq!(&rejects[0].event.value[..], b"{oops");
        assert_eq!(rejects[0].event.position.offset, 3);
        assert!(
            rejects[0].reason.starts_with("invalid JSON at line 4: "),
            "{}",
            rejects[0].reason
        );
        assert!(rejects[0].stage.is_none());
    }

    #[tokio::test]
    async fn large_file_in_chunks_no_bigger_than_max() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.txt");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let n = 50_000;
        for i in 0..n {
            writeln!(f, "line {i} {}", "x".repeat(i % 300)).expect("write");
        }
        drop(f);
        let mut source = config(&path, LineFormat::Text, dir.path())
            .build()
            .expect("build");
        let reads = read_all(&mut source, 777).await;
        let offsets: Vec<i64> = reads
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.position.offset))
            .collect();
        assert_eq!(offsets, (0..n as i64).collect::<Vec<_>>());
        let last = reads.last().and_then(|r| r.events.last()).expect("events");
        assert_eq!(
            std::str::from_utf8(&last.value).expect("utf8"),
            format!("line {} {}", n - 1, "x".repeat((n - 1) % 300))
        );
        assert!(
            source.read(10).await.expect("read").is_none(),
            "stays exhausted"
        );
    }

    #[tokio::test]
    async fn missing_file_is_an_error_at_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = config(Path::new("nope.jsonl"), LineFormat::Json, dir.path())
            .build()
            .err()
            .expect("error");
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }

    /// A reader fed by the test, to have reads pending on purpose.
    struct Feed(std::sync::mpsc::Receiver<Vec<u8>>, Vec<u8>);

    impl std::io::Read for Feed {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(data) => self.1 = data,
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[tokio::test]
    async fn cancelled_reads_lose_nothing() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut source = LinesSource::spawn(
            "feed".into(),
            Arc::from("feed"),
            LineFormat::Text,
            None,
            Feed(rx, Vec::new()),
        )
        .expect("spawn");
        // A read with nothing to read is dropped while pending.
        let pending = tokio::time::timeout(Duration::from_millis(20), source.read(10)).await;
        assert!(pending.is_err(), "nothing to read yet");

        let mut expected = 0i64;
        let mut seen = Vec::new();
        for round in 0..20 {
            let lines: String = (0..50).map(|i| format!("r{round} l{i}\n")).collect();
            tx.send(lines.into_bytes()).expect("send");
            expected += 50;
            // Poll with tiny timeouts: many reads are cancelled mid-way.
            while (seen.len() as i64) < expected {
                match tokio::time::timeout(Duration::from_micros(50), source.read(7)).await {
                    Ok(read) => {
                        let read = read.expect("read").expect("not exhausted");
                        assert!(read.len() <= 7);
                        seen.extend(read.events.iter().map(|e| e.position.offset));
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        }
        drop(tx);
        assert!(source.read(10).await.expect("read").is_none());
        assert_eq!(seen, (0..expected).collect::<Vec<_>>());
    }
}
