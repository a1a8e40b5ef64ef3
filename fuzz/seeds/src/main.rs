//! `weir-fuzz-seeds DIR`: writes valid input and output batches into
//! `DIR/input_batch/` and `DIR/output_batch/` (the output seeds carry the
//! 3-byte call header the `output_batch` target reads first).

use std::path::Path;

use weir_batch::{InputWriter, NewEvent, OutputWriter};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir.join("input_batch"))?;
    std::fs::create_dir_all(dir.join("output_batch"))?;
    for (i, (events, keyed)) in [(1, false), (3, false), (4, true), (0, true)].into_iter().enumerate() {
        let mut w = InputWriter::new();
        let s = w.stream("orders");
        if keyed {
            w.key_state(b"card-1", Some(br#"{"n":2}"#));
            w.key_state(b"card-2", None);
            w.watermark(Some(1_000));
            w.fired_timer(1, 900);
        }
        for e in 0..events {
            w.event(&NewEvent {
                key: (e % 2 == 0).then_some(&b"k"[..]),
                value: br#"{"card_id":"card-1","amount":12.5}"#,
                timestamp_ms: 1_000 + e as i64,
                stream: s,
                partition: e % 3,
                offset: e as i64,
                state_key: keyed.then_some((e % 2) as u32),
            });
            w.header(b"trace", b"abc");
        }
        if let Some(buf) = w.finish() {
            std::fs::write(dir.join("input_batch").join(format!("seed-{i}")), buf)?;
        }
        let mut o = OutputWriter::new();
        for e in 0..events.max(1) as u32 {
            let route = (e % 2 == 1).then_some("alerts");
            if o.event(e % events.max(1) as u32, route, Some(b"k"), b"{\"score\":0.9}", 5).is_ok() {
                let _ = o.header("weir.note", b"x");
            }
        }
        o.error(0, "bad amount");
        if keyed {
            let _ = o.put(b"card-1", br#"{"n":3}"#);
            let _ = o.delete(b"card-2");
            let _ = o.set_timer(b"card-1", 2_000);
            let _ = o.cancel_timer(b"card-1", 900);
        }
        let inputs = events.max(1) as u16 + u16::from(keyed);
        let mut seed = inputs.to_le_bytes().to_vec();
        seed.push(u8::from(keyed));
        seed.extend_from_slice(&o.finish());
        std::fs::write(dir.join("output_batch").join(format!("seed-{i}")), seed)?;
    }
    Ok(())
}
