//! Native tests with a tiny WordPiece tokenizer and a stand-in model whose
//! hidden state of a token is a fixed "topic" vector (padding gets garbage,
//! which pooling must ignore). The real model runs in
//! `host/tests/all/embeddings.rs`.

use std::cell::Cell;
use std::rc::Rc;

use weir_sdk::infer::{InferError, Tensor, set_native_handler};
use weir_sdk::serde_json::{self, Value, json};

use super::*;

const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "man", "is", "eating", "food", "bread", "my",
    "invoice", "wrong", ".", "##s", "pay", "refund", "password", "reset",
];

fn id(token: &str) -> i64 {
    VOCAB.iter().position(|t| *t == token).expect("in vocab") as i64
}

fn tokenizer_json() -> String {
    let vocab: serde_json::Map<String, Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| ((*t).to_owned(), json!(i)))
        .collect();
    let special = |content: &str, id: usize| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        // Like the real file: fixed padding, which the plugin replaces.
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3)],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

/// Hidden state of a token: its topic (food, billing, account) or a weak
/// neutral vector; padding is garbage.
fn hidden_of(token: i64) -> [f32; 3] {
    match VOCAB[token as usize] {
        "[PAD]" => [100.0, -100.0, 50.0],
        "eating" | "food" | "bread" => [1.0, 0.0, 0.0],
        "invoice" | "pay" | "refund" | "##s" => [0.0, 1.0, 0.0],
        "password" | "reset" => [0.0, 0.0, 1.0],
        _ => [0.1, 0.1, 0.1],
    }
}

/// Installs the stand-in model `minilm`; returns the number of calls made.
fn stand_in_model() -> Rc<Cell<usize>> {
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    set_native_handler(move |model, inputs| {
        seen.set(seen.get() + 1);
        if model != "minilm" {
            return Err(InferError::UnknownModel(model.into()));
        }
        let names: Vec<&str> = inputs.iter().map(Tensor::name).collect();
        assert_eq!(names, ["input_ids", "attention_mask", "token_type_ids"]);
        let shape = inputs[0].shape();
        assert!(inputs.iter().all(|t| t.shape() == shape));
        let ids = inputs[0].as_i64().expect("i64 ids");
        let hidden = ids.iter().flat_map(|&t| hidden_of(t)).collect();
        Ok(vec![Tensor::f32(
            "last_hidden_state",
            [shape[0], shape[1], 3],
            hidden,
        )])
    });
    calls
}

fn embedder(max_length: usize) -> Embedder {
    Embedder::new(tokenizer_json().as_bytes(), max_length, "minilm".into()).expect("tokenizer")
}

#[test]
fn tokenizes_padded_to_the_longest_with_a_mask() {
    let (tokens, status) = embedder(128).tokenize(&["A man", "My invoice is wrong."]);
    assert!(status.iter().all(Result::is_ok));
    assert_eq!((tokens.rows, tokens.len), (2, 7));
    let row0 = [id("[CLS]"), id("a"), id("man"), id("[SEP]"), 0, 0, 0];
    let row1 = [
        id("[CLS]"),
        id("my"),
        id("invoice"),
        id("is"),
        id("wrong"),
        id("."),
        id("[SEP]"),
    ];
    assert_eq!(tokens.ids, [&row0[..], &row1[..]].concat());
    assert_eq!(tokens.mask, [1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(tokens.type_ids, vec![0; 14]);
}

#[test]
fn truncates_to_max_length_keeping_cls_and_sep() {
    let (tokens, _) = embedder(4).tokenize(&["my invoice is wrong"]);
    assert_eq!(
        tokens.ids,
        [id("[CLS]"), id("my"), id("invoice"), id("[SEP]")]
    );
}

#[test]
fn pooling_ignores_padding_and_normalizes() {
    let calls = stand_in_model();
    let e = embedder(128);
    let alone = e.embed(&["eating food"]).expect("infer");
    let batched = e
        .embed(&["my invoice is wrong and I pay refunds", "eating food"])
        .expect("infer");
    assert_eq!(calls.get(), 2, "one model call per batch");
    let alone = alone[0].as_ref().expect("embedded");
    let padded = batched[1].as_ref().expect("embedded");
    for (a, b) in alone.iter().zip(padded) {
        assert!((a - b).abs() < 1e-6, "{alone:?} vs {padded:?}");
    }
    assert!((cosine(alone, alone) - 1.0).abs() < 1e-6);
    // [CLS] eating food [SEP]: mean (0.55, 0.05, 0.05), normalized.
    let n = (0.55f32 * 0.55 + 2.0 * 0.05 * 0.05).sqrt();
    assert!((alone[0] - 0.55 / n).abs() < 1e-6 && (alone[1] - 0.05 / n).abs() < 1e-6);
}

#[test]
fn mean_pool_checks_the_shape() {
    assert!(mean_pool_err(&[0.0; 5], &[1, 1], 1, 2).contains("has 5 floats"));
}

fn mean_pool_err(hidden: &[f32], mask: &[i64], rows: usize, len: usize) -> String {
    embed::mean_pool(hidden, mask, rows, len)
        .expect_err("bad shape")
        .into_message()
}

fn write_tokenizer() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "embed-router-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, tokenizer_json()).expect("write tokenizer");
    path
}

fn params(extra: Value) -> Params {
    let mut p = json!({
        "references": {"food": "eating food", "billing": ["invoice", "refund"],
                       "account": "password reset"},
        "threshold": 0.8,
        "tokenizer": write_tokenizer(),
    });
    for (k, v) in extra.as_object().expect("object") {
        p[k] = v.clone();
    }
    serde_json::from_value(p).expect("params")
}

fn text(t: &str) -> Event {
    Event::from_json(&json!({"text": t, "id": t.len()})).expect("event")
}

#[test]
fn routes_by_similarity_and_annotates() {
    let calls = stand_in_model();
    init(params(json!({}))).expect("init");
    assert_eq!(calls.get(), 1, "references embedded in one call");
    let events = vec![
        text("A man is eating bread."),
        Event::new("not json"),
        text("My invoice is wrong, please refund"),
        Event::from_json(&json!({"body": "no text"})).expect("event"),
        text("the weather is nice"),
        text("Password reset please"),
    ];
    let results = route(events);
    assert_eq!(calls.get(), 2, "one model call for the whole batch");
    assert_eq!(results.len(), 6);
    let routed: Vec<Option<String>> = results
        .iter()
        .map(|r| match r {
            Ok(outs) => {
                assert_eq!(outs.len(), 1);
                Some(outs[0].route().unwrap_or("default").to_owned())
            }
            Err(_) => None,
        })
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        routed,
        [
            s("food"),
            None,
            s("billing"),
            None,
            s("default"),
            s("account")
        ]
    );
    assert!(results[1].as_ref().unwrap_err().message().contains("JSON"));
    assert!(
        results[3]
            .as_ref()
            .unwrap_err()
            .message()
            .contains("no string field `text`")
    );

    let food: Value = results[0].as_ref().unwrap()[0].event().json().unwrap();
    assert_eq!(food["text"], "A man is eating bread.");
    assert_eq!(food["label"], "food");
    let sims = food["similarities"].as_object().expect("similarities");
    assert_eq!(
        sims.keys().collect::<Vec<_>>(),
        ["account", "billing", "food"]
    );
    assert_eq!(food["score"], sims["food"]);
    assert!(food["score"].as_f64().unwrap() >= 0.8);
    assert!(food.get("embedding").is_none());
    // Unrelated text: best label still named, but under the threshold.
    let weather: Value = results[4].as_ref().unwrap()[0].event().json().unwrap();
    assert!(weather["score"].as_f64().unwrap() < 0.8);
}

#[test]
fn emits_embeddings_and_list_references() {
    stand_in_model();
    init(params(json!({
        "references": ["eating food", "password reset"],
        "emit_embedding": true,
        "threshold": 0.0,
    })))
    .expect("init");
    let results = route(vec![text("food")]);
    let out = &results[0].as_ref().expect("ok")[0];
    assert_eq!(out.route(), Some("eating food"));
    let v: Value = out.event().json().unwrap();
    let emb: Vec<f64> = serde_json::from_value(v["embedding"].clone()).unwrap();
    assert_eq!(emb.len(), 3);
    assert!((emb.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-5);
}

#[test]
fn a_failed_model_call_fails_every_event() {
    stand_in_model();
    init(params(json!({}))).expect("init");
    set_native_handler(|_, _| Err(InferError::Unavailable("shutting down".into())));
    let results = route(vec![text("eating"), text("invoice")]);
    for r in &results {
        let msg = r.as_ref().unwrap_err().message().to_owned();
        assert!(
            msg.contains("model `minilm`") && msg.contains("shutting down"),
            "{msg}"
        );
    }
}

#[test]
fn init_refuses_a_missing_tokenizer_or_model() {
    stand_in_model();
    let err = init(params(json!({"tokenizer": "/nowhere/tokenizer.json"}))).unwrap_err();
    assert!(
        err.message().contains("grant its folder"),
        "{}",
        err.message()
    );
    let err = init(params(json!({"model": "other"}))).unwrap_err();
    assert!(
        err.message().contains("no model named `other`"),
        "{}",
        err.message()
    );
}

#[test]
fn params_are_validated_by_field() {
    let bad = |extra: Value| params(extra).validate().unwrap_err().into_message();
    assert!(bad(json!({"threshold": 1.5})).starts_with("threshold:"));
    assert!(bad(json!({"max_length": 2})).starts_with("max_length:"));
    assert!(bad(json!({"references": {}})).starts_with("references:"));
    assert!(bad(json!({"references": {"x": []}})).starts_with("references.x:"));
    assert!(bad(json!({"references": {"x": " "}})).starts_with("references.x:"));
    let unknown = serde_json::from_value::<Params>(json!({"references": ["a"], "treshold": 1}));
    assert!(unknown.unwrap_err().to_string().contains("treshold"));
}
