//! The per-shape drivers the attribute macros call: each runs a plugin's
//! function (map, filter, flat map, batch) over an input batch, between the
//! wire codec's decoder and encoder; an event's `Err` fails that event only.

use crate::__private::bindings::weir::plugin::types as wit;
use crate::codec::{Decoder, Encoder};
use crate::event::{Event, Output};
use crate::{Error, Result};

/// Runs a `map` function over a batch.
pub fn run_map(batch: wit::Batch, mut f: impl FnMut(Event) -> Result<Event>) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => match f(event) {
                Ok(out) => {
                    encoder.emit(input, raw.timestamp_ms, None, &out);
                    decoder.recycle(out);
                }
                Err(e) => encoder.fail(input, e.into_message()),
            },
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

/// Runs a `filter` function over a batch.
pub fn run_filter(
    batch: wit::Batch,
    mut f: impl FnMut(&Event) -> Result<bool>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => {
                match f(&event) {
                    Ok(true) => encoder.emit(input, raw.timestamp_ms, None, &event),
                    Ok(false) => {}
                    Err(e) => encoder.fail(input, e.into_message()),
                }
                decoder.recycle(event);
            }
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

fn emit_all(encoder: &mut Encoder, input: u32, timestamp_ms: i64, outputs: &[Output]) {
    for output in outputs {
        encoder.emit(input, timestamp_ms, output.route(), &output.event);
    }
}

/// Runs a `flat_map` function over a batch.
pub fn run_flat_map(
    batch: wit::Batch,
    mut f: impl FnMut(Event) -> Result<Vec<Output>>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => match f(event) {
                Ok(outputs) => {
                    emit_all(&mut encoder, input, raw.timestamp_ms, &outputs);
                    for output in outputs {
                        decoder.recycle(output.event);
                    }
                }
                Err(e) => encoder.fail(input, e.into_message()),
            },
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

/// Runs a `batch` function over a batch. The function must return one result
/// per event it was given, in order; otherwise every event of the batch fails
/// (which result belongs to which event is unknown).
pub fn run_batch(
    batch: wit::Batch,
    f: impl FnOnce(Vec<Event>) -> Vec<Result<Vec<Output>>>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    let mut events = Vec::with_capacity(batch.events.len());
    // (input index, input timestamp) of each event handed to `f`.
    let mut inputs = Vec::with_capacity(batch.events.len());
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => {
                events.push(event);
                inputs.push((input, raw.timestamp_ms));
            }
            Err(message) => encoder.fail(input, message),
        }
    }
    let given = events.len();
    let results = f(events);
    if results.len() == given {
        for ((input, timestamp_ms), result) in inputs.into_iter().zip(results) {
            match result {
                Ok(outputs) => emit_all(&mut encoder, input, timestamp_ms, &outputs),
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
    encoder.finish()
}

/// Fails every event of a batch with `message`.
pub fn fail_all(batch: wit::Batch, message: &str) -> wit::OutputBatch {
    let mut encoder = Encoder::for_input(&wit::Batch {
        data: Vec::new(),
        events: Vec::new(),
        headers: Vec::new(),
        streams: Vec::new(),
    });
    for (input, _) in (0u32..).zip(&batch.events) {
        encoder.fail(input, message.to_owned());
    }
    encoder.finish()
}

/// Converts the result of an infallible entry point.
#[doc(hidden)]
pub fn ok<T>(value: T) -> Result<T, Error> {
    Ok(value)
}

#[cfg(test)]
mod tests;
