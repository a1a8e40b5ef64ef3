//! The per-shape drivers the attribute macros call: each runs a plugin's
//! function (map, filter, flat map, batch) over an input batch, between the
//! wire codec's decoder and encoder; an event's `Err` fails that event only.

use weir_batch::InputView;

use crate::__private::{Batch, OutputBatch};
use crate::codec::{Decoder, Encoder};
use crate::event::{Event, Output};
use crate::{Error, Result};

/// Parses `batch` and runs `f` over it with a decoder and an encoder; a
/// batch that cannot be read fails every event it claims to hold, with the
/// reason.
pub(crate) fn with_input(
    batch: &[u8],
    f: impl FnOnce(&InputView<'_>, &mut Decoder, &mut Encoder),
) -> OutputBatch {
    match InputView::parse(batch) {
        Ok(view) => {
            let mut decoder = Decoder::new(&view);
            let mut encoder = Encoder::for_input(&view);
            f(&view, &mut decoder, &mut encoder);
            encoder.finish()
        }
        Err(e) => fail_count(
            weir_batch::event_count(batch),
            &format!("malformed input batch: {e}"),
        ),
    }
}

fn fail_count(events: usize, message: &str) -> OutputBatch {
    let mut encoder = Encoder::empty();
    for input in 0..events as u32 {
        encoder.fail(input, message.to_owned());
    }
    encoder.finish()
}

/// Runs a `map` function over a batch.
pub fn run_map(batch: Batch, mut f: impl FnMut(Event) -> Result<Event>) -> OutputBatch {
    with_input(&batch, |view, decoder, encoder| {
        for (input, raw) in (0u32..).zip(view.events()) {
            match f(decoder.event(&raw)) {
                Ok(out) => {
                    encoder.emit(input, raw.timestamp_ms, None, &out);
                    decoder.recycle(out);
                }
                Err(e) => encoder.fail(input, e.into_message()),
            }
        }
    })
}

/// Runs a `filter` function over a batch.
pub fn run_filter(batch: Batch, mut f: impl FnMut(&Event) -> Result<bool>) -> OutputBatch {
    with_input(&batch, |view, decoder, encoder| {
        for (input, raw) in (0u32..).zip(view.events()) {
            let event = decoder.event(&raw);
            match f(&event) {
                Ok(true) => encoder.emit(input, raw.timestamp_ms, None, &event),
                Ok(false) => {}
                Err(e) => encoder.fail(input, e.into_message()),
            }
            decoder.recycle(event);
        }
    })
}

pub(crate) fn emit_all(encoder: &mut Encoder, input: u32, timestamp_ms: i64, outputs: &[Output]) {
    for output in outputs {
        encoder.emit(input, timestamp_ms, output.route(), &output.event);
    }
}

/// Runs a `flat_map` function over a batch.
pub fn run_flat_map(batch: Batch, mut f: impl FnMut(Event) -> Result<Vec<Output>>) -> OutputBatch {
    with_input(&batch, |view, decoder, encoder| {
        for (input, raw) in (0u32..).zip(view.events()) {
            match f(decoder.event(&raw)) {
                Ok(outputs) => {
                    emit_all(encoder, input, raw.timestamp_ms, &outputs);
                    for output in outputs {
                        decoder.recycle(output.event);
                    }
                }
                Err(e) => encoder.fail(input, e.into_message()),
            }
        }
    })
}

/// Runs a `batch` function over a batch. The function must return one result
/// per event it was given, in order; otherwise every event of the batch fails
/// (which result belongs to which event is unknown).
pub fn run_batch(
    batch: Batch,
    f: impl FnOnce(Vec<Event>) -> Vec<Result<Vec<Output>>>,
) -> OutputBatch {
    with_input(&batch, |view, decoder, encoder| {
        let mut events = Vec::with_capacity(view.len());
        // (input index, input timestamp) of each event handed to `f`.
        let mut inputs = Vec::with_capacity(view.len());
        for (input, raw) in (0u32..).zip(view.events()) {
            events.push(decoder.event(&raw));
            inputs.push((input, raw.timestamp_ms));
        }
        let given = events.len();
        let results = f(events);
        if results.len() == given {
            for ((input, timestamp_ms), result) in inputs.into_iter().zip(results) {
                match result {
                    Ok(outputs) => emit_all(encoder, input, timestamp_ms, &outputs),
                    Err(e) => encoder.fail(input, e.into_message()),
                }
            }
        } else {
            let message = format!(
                "the batch function returned {} results for {given} events (it must return one per event, in order)",
                results.len()
            );
            for (input, _) in inputs {
                encoder.fail(input, message.clone());
            }
        }
    })
}

/// Fails every event of a batch with `message`.
pub fn fail_all(batch: Batch, message: &str) -> OutputBatch {
    fail_count(weir_batch::event_count(&batch), message)
}

/// Converts the result of an infallible entry point.
#[doc(hidden)]
pub fn ok<T>(value: T) -> Result<T, Error> {
    Ok(value)
}

#[cfg(test)]
mod tests;
