//! The `file` / `stdin` sources' line reader (`source/lines.rs`: its reader
//! thread, the splitter, the JSON check, the event-time pointer and
//! `LinesSource::read`), on arbitrary bytes read in arbitrary pieces
//! (interrupted reads included), lines of any length (the input may be
//! repeated past the reader's 64 KiB block), invalid UTF-8, CR-LF.
//!
//! Checked against a plain model of the format: every line that is not
//! blank becomes exactly one event or one dead letter, in order, numbered by
//! its line (blank lines count); an event's value is the line's bytes
//! (without `\r\n`), a dead letter says which line was not JSON; with
//! `event_time`, an event's time is the number at that pointer as
//! `serde_json::Value::pointer` finds it, else the ingestion time; no read
//! returns more than it was asked for, or nothing.
#![no_main]

use std::io::{self, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use weir::source::{LineFormat, Source};

/// The input: three bytes of settings, then (if bit 3 says so) the
/// `event_time` pointer up to the first `\n`, then the data, so a seed is
/// a JSON-lines file behind a short header.
///
/// - byte 0: bit 0 `format = "text"`, bits 1-2 the data's repeats - 1 (to
///   pass the reader's 64 KiB block), bit 3 an `event_time` line follows;
/// - byte 1: how the reader hands out bytes (0: as much as asked; else
///   pieces of 0..=256*n bytes, some reads `Interrupted`);
/// - byte 2: the `max` of each `Source::read` (0: 1024; else 1..=n).
struct Case<'a> {
    text: bool,
    repeat: usize,
    event_time: Option<&'a str>,
    piece_seed: u8,
    max_seed: u8,
    data: &'a [u8],
}

impl<'a> Case<'a> {
    fn parse(input: &'a [u8]) -> Option<Self> {
        let (&[flags, piece_seed, max_seed], rest) = input.split_first_chunk::<3>()?;
        let (event_time, data) = if flags & 8 != 0 {
            let nl = rest.iter().position(|&b| b == b'\n')?;
            (
                Some(std::str::from_utf8(&rest[..nl]).ok()?),
                &rest[nl + 1..],
            )
        } else {
            (None, rest)
        };
        Some(Case {
            text: flags & 1 != 0,
            repeat: usize::from((flags >> 1) & 3) + 1,
            event_time,
            piece_seed,
            max_seed,
            data,
        })
    }
}

/// xorshift64*: the pieces and maxes, from a seed byte.
struct Rng(u64);

impl Rng {
    fn new(seed: u8) -> Self {
        Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(seed))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A reader handing out `data` in pieces (`Interrupted` now and then).
struct Pieces {
    data: Vec<u8>,
    at: usize,
    /// 0: as much as asked.
    seed: u8,
    rng: Rng,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.data.len() - self.at;
        let mut n = left.min(buf.len());
        if self.seed != 0 {
            let r = self.rng.next();
            if r % 16 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            n = n.min((r >> 8) as usize % (256 * usize::from(self.seed) + 1));
            if n == 0 && left > 0 {
                n = 1;
            }
        }
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[derive(Debug, PartialEq)]
enum Want<'a> {
    Event(&'a [u8]),
    Reject(&'a [u8]),
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Waits (at most 2 s) until the source's reader thread has exited: it is
/// detached, and LeakSanitizer would otherwise catch the thread-local data
/// it frees on exit (tokio's parker) as a leak of this input.
fn wait_for_threads(n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while threads() > n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

fn is_json(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
}

fn time_at(line: &[u8], pointer: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let v = v.pointer(pointer)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

fuzz_target!(|input: &[u8]| {
    let Some(case) = Case::parse(input) else {
        return;
    };
    let format = if case.text {
        LineFormat::Text
    } else {
        LineFormat::Json
    };
    let pointer = case.event_time;
    let input = case.data.repeat(case.repeat);
    let reader = Pieces {
        data: input.clone(),
        at: 0,
        seed: case.piece_seed,
        rng: Rng::new(case.piece_seed),
    };
    let before = now_ms();
    let baseline = threads();
    let source = weir::fuzzing::lines_source(format, pointer, reader);
    let pointer_ok = pointer.is_none_or(|p| p.starts_with('/') && p.len() >= 2 && !case.text);
    let Ok(mut source) = source else {
        assert!(!pointer_ok, "refused a good event_time {pointer:?}");
        return;
    };
    assert!(
        pointer_ok,
        "accepted event_time {pointer:?} with text={}",
        case.text
    );

    // The model: lines cut at '\n' (the last may lack it), one '\r' before
    // it dropped; blank lines (empty, or whitespace-only in JSON) skipped.
    let mut want: Vec<(i64, Want<'_>)> = Vec::new();
    let body = input.strip_suffix(b"\n").unwrap_or(&input);
    if !input.is_empty() {
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let item = match format {
                LineFormat::Text if line.is_empty() => continue,
                LineFormat::Text => Want::Event(line),
                LineFormat::Json if line.iter().all(u8::is_ascii_whitespace) => continue,
                LineFormat::Json if is_json(line) => Want::Event(line),
                LineFormat::Json => Want::Reject(line),
            };
            want.push((i as i64, item));
        }
    }

    let mut events = Vec::new();
    let mut rejects = Vec::new();
    let mut rng = Rng::new(case.max_seed);
    runtime().block_on(async {
        loop {
            let max = match case.max_seed {
                0 => 1024,
                n => 1 + (rng.next() % u64::from(n)) as usize,
            };
            match source.read(max).await {
                Ok(Some(read)) => {
                    assert!(!read.is_empty(), "an empty read");
                    assert!(
                        read.len() <= max.max(1),
                        "{} items for max {max}",
                        read.len()
                    );
                    events.extend(read.events);
                    rejects.extend(read.rejects);
                }
                Ok(None) => break,
                Err(e) => panic!("a reader that never fails, yet: {e}"),
            }
        }
        source.close().await.expect("close");
    });
    let after = now_ms();
    // Read to the end: the reader thread has ended or is ending.
    wait_for_threads(baseline);

    let mut got: Vec<(i64, Want<'_>)> = Vec::new();
    for e in &events {
        assert_eq!(&*e.position.stream, "fuzz");
        assert_eq!(e.position.partition, 0);
        assert!(e.key.is_none() && e.headers.is_empty());
        got.push((e.position.offset, Want::Event(&e.value)));
    }
    for d in &rejects {
        let line = d.event.position.offset;
        let head = format!("invalid JSON at line {}: ", line + 1);
        assert!(d.reason.starts_with(&head), "reason {:?}", d.reason);
        assert!(d.reason.len() > head.len(), "no why in {:?}", d.reason);
        assert!(d.stage.is_none() && d.plugin.is_none());
        got.push((line, Want::Reject(&d.event.value)));
    }
    // Each kind arrives in line order.
    assert!(
        events
            .windows(2)
            .all(|w| w[0].position.offset < w[1].position.offset)
    );
    assert!(
        rejects
            .windows(2)
            .all(|w| w[0].event.position.offset < w[1].event.position.offset)
    );
    got.sort_by_key(|(line, _)| *line);
    assert_eq!(got.len(), want.len(), "items vs non-blank lines");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }

    for e in &events {
        let at = pointer.and_then(|p| time_at(&e.value, p));
        match at {
            Some(t) => assert_eq!(e.timestamp_ms, t, "time at {pointer:?}"),
            None => assert!(
                (before..=after).contains(&e.timestamp_ms),
                "no time at {pointer:?}: the ingestion time, not {}",
                e.timestamp_ms
            ),
        }
    }
});
