//! Plugin `embed-router`: sentence embeddings with a pretrained
//! all-MiniLM-L6-v2, tokenized **inside the plugin** (the `tokenizers` crate,
//! pure Rust), run by the host's ONNX Runtime through
//! `weir_sdk::infer::infer`, and texts routed by cosine similarity to
//! reference texts.
//!
//! Input: JSON objects with a string field (`{"text": "..."}`, the field name
//! is the `field` param). Anything else (not JSON, no such string field) is a
//! dead letter with the reason.
//!
//! Per batch: every text is tokenized (truncated to `max_length` tokens,
//! padded to the longest in the batch), the batch goes to the model in ONE
//! `infer` call (`input_ids`, `attention_mask`, `token_type_ids`, i64
//! `[N, L]`), `last_hidden_state` `[N, L, H]` is mean-pooled over the real
//! tokens (attention mask) and L2-normalized. The cosine similarity to each
//! reference (embedded once, at init) is then a dot product.
//!
//! Output: the input object plus `label` (the most similar reference),
//! `score` (its cosine similarity), `similarities` (`{label: cosine}`) and,
//! with `emit_embedding = true`, `embedding` (the 384 floats). The event goes
//! to the output named by `label` when `score >= threshold`, else to the
//! default output.
//!
//! Params (see [`Params`]): `references` (required), `threshold`, `model`,
//! `tokenizer`, `max_length`, `field`, `emit_embedding`.

mod embed;
mod params;

use std::cell::RefCell;

use weir_sdk::serde_json::{Map, Value};
use weir_sdk::{Event, Output, Result};

pub use embed::{Embedder, cosine};
pub use params::{Params, References};

/// What `init` prepares and every batch uses.
struct State {
    embedder: Embedder,
    /// (label, normalized embeddings of its reference texts), labels sorted.
    references: Vec<(String, Vec<Vec<f32>>)>,
    threshold: f32,
    field: String,
    emit_embedding: bool,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Loads the tokenizer from the granted directory and embeds the reference
/// texts (one `infer` call for all of them).
#[weir_sdk::init]
pub fn init(params: Params) -> Result<()> {
    params.validate()?;
    let tokenizer = std::fs::read(&params.tokenizer).map_err(|e| {
        weir_sdk::Error::msg(format!(
            "cannot read the tokenizer `{}` (grant its folder to the stage, read-only: \
             [stages.grants] dirs = [{{ path = \"...\", guest = \"/model\", mode = \"ro\" }}]): {e}",
            params.tokenizer
        ))
    })?;
    let embedder = Embedder::new(&tokenizer, params.max_length, params.model.clone())?;
    let references = embed_references(&embedder, &params.references)?;
    weir_sdk::log::info!(
        "embed-router: tokenizer {} loaded, {} reference labels embedded with model `{}`",
        params.tokenizer,
        references.len(),
        params.model
    );
    let state = State {
        embedder,
        references,
        threshold: params.threshold,
        field: params.field,
        emit_embedding: params.emit_embedding,
    };
    STATE.with(|s| *s.borrow_mut() = Some(state));
    Ok(())
}

fn embed_references(
    embedder: &Embedder,
    references: &References,
) -> Result<Vec<(String, Vec<Vec<f32>>)>> {
    let entries = references.entries();
    let texts: Vec<&str> = entries
        .iter()
        .flat_map(|(_, texts)| texts.iter().map(String::as_str))
        .collect();
    let mut vectors = Vec::with_capacity(texts.len());
    for (i, embedded) in embedder.embed(&texts)?.into_iter().enumerate() {
        let vector = embedded.map_err(|e| e.context(format!("reference text {:?}", texts[i])))?;
        vectors.push(vector);
    }
    let mut vectors = vectors.into_iter();
    Ok(entries
        .into_iter()
        .map(|(label, texts)| (label, vectors.by_ref().take(texts.len()).collect()))
        .collect())
}

/// Embeds the batch and routes each event to its most similar reference.
#[weir_sdk::batch]
pub fn route(events: Vec<Event>) -> Vec<Result<Vec<Output>>> {
    STATE.with(|s| match &*s.borrow() {
        Some(state) => route_with(state, events),
        None => events
            .iter()
            .map(|_| Err(weir_sdk::Error::msg("embed-router was not initialized")))
            .collect(),
    })
}

fn route_with(state: &State, events: Vec<Event>) -> Vec<Result<Vec<Output>>> {
    // Parse every event first; only the texts of the good ones are embedded.
    let parsed: Vec<Result<(Map<String, Value>, String)>> =
        events.iter().map(|ev| text_of(ev, &state.field)).collect();
    let texts: Vec<&str> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|(_, t)| t.as_str()))
        .collect();
    let embedded = match state.embedder.embed(&texts) {
        Ok(embedded) => embedded,
        Err(e) => {
            let message = e.into_message();
            return events
                .iter()
                .map(|_| Err(weir_sdk::Error::msg(message.clone())))
                .collect();
        }
    };
    let mut embedded = embedded.into_iter();
    events
        .into_iter()
        .zip(parsed)
        .map(|(ev, parsed)| {
            let (object, _) = parsed?;
            let vector = embedded
                .next()
                .ok_or_else(|| weir_sdk::Error::msg("fewer embeddings than texts"))??;
            annotate(state, ev, object, vector)
        })
        .collect()
}

fn text_of(ev: &Event, field: &str) -> Result<(Map<String, Value>, String)> {
    let object = match ev.json::<Value>()? {
        Value::Object(object) => object,
        _ => weir_sdk::bail!("the event is not a JSON object (expected {{\"{field}\": \"...\"}})"),
    };
    match object.get(field) {
        Some(Value::String(text)) => {
            let text = text.clone();
            Ok((object, text))
        }
        _ => weir_sdk::bail!("the event has no string field `{field}`"),
    }
}

/// Adds `label`, `score`, `similarities` (and `embedding`) and picks the route.
fn annotate(
    state: &State,
    mut ev: Event,
    mut object: Map<String, Value>,
    vector: Vec<f32>,
) -> Result<Vec<Output>> {
    let mut similarities = Map::new();
    let mut best: Option<(&str, f32)> = None;
    for (label, refs) in &state.references {
        let sim = refs
            .iter()
            .map(|r| cosine(&vector, r))
            .fold(f32::NEG_INFINITY, f32::max);
        similarities.insert(label.clone(), Value::from(round4(sim)));
        if best.is_none_or(|(_, b)| sim > b) {
            best = Some((label, sim));
        }
    }
    let Some((label, score)) = best else {
        weir_sdk::bail!("no references");
    };
    object.insert("label".into(), Value::from(label));
    object.insert("score".into(), Value::from(round4(score)));
    object.insert("similarities".into(), Value::Object(similarities));
    if state.emit_embedding {
        object.insert("embedding".into(), Value::from(vector));
    }
    ev.set_json(&Value::Object(object))?;
    if score >= state.threshold {
        Ok(vec![Output::to(label.to_owned(), ev)])
    } else {
        Ok(vec![Output::new(ev)])
    }
}

/// Four decimals: enough for a similarity, readable in the output.
fn round4(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests;
