//! The stage params.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The stage params (`[stages.params]`).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Reference texts by label: `{ billing = "I was charged twice", ... }`,
    /// several texts per label as a list (`{ billing = ["...", "..."] }`; a
    /// label's similarity is its best text's), or a plain list of texts (each
    /// text is its own label). Labels are the output names events are routed to.
    pub references: References,
    /// Route to the best label's output when its cosine similarity is at least
    /// this; else to the default output. Default 0.5.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// The model's name in the pipeline (`[models.NAME]`). Default `minilm`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Guest path of `tokenizer.json` (in a directory the stage grants).
    /// Default `/model/tokenizer.json`.
    #[serde(default = "default_tokenizer")]
    pub tokenizer: String,
    /// Texts are truncated to this many tokens ([CLS] and [SEP] included);
    /// 4..=512 (the model's position limit). Default 128.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// The JSON field holding the text. Default `text`.
    #[serde(default = "default_field")]
    pub field: String,
    /// Also write the embedding (384 floats) into the event. Default false.
    #[serde(default)]
    pub emit_embedding: bool,
}

/// The reference texts (see [`Params::references`]).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum References {
    /// `{ label = "text" | ["text", ...] }`.
    Labeled(BTreeMap<String, OneOrMany>),
    /// `["text", ...]`: each text labels itself.
    List(Vec<String>),
}

/// One reference text or several.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
}

fn default_threshold() -> f32 {
    0.5
}
fn default_model() -> String {
    "minilm".into()
}
fn default_tokenizer() -> String {
    "/model/tokenizer.json".into()
}
fn default_max_length() -> usize {
    128
}
fn default_field() -> String {
    "text".into()
}

impl References {
    /// (label, texts), in label order (a list keeps its order).
    pub fn entries(&self) -> Vec<(String, Vec<String>)> {
        match self {
            References::Labeled(map) => map
                .iter()
                .map(|(label, texts)| {
                    let texts = match texts {
                        OneOrMany::One(t) => vec![t.clone()],
                        OneOrMany::Many(ts) => ts.clone(),
                    };
                    (label.clone(), texts)
                })
                .collect(),
            References::List(texts) => texts.iter().map(|t| (t.clone(), vec![t.clone()])).collect(),
        }
    }
}

impl Params {
    /// Checks what serde cannot; the error names the field.
    pub fn validate(&self) -> weir_sdk::Result<()> {
        let entries = self.references.entries();
        weir_sdk::ensure!(
            !entries.is_empty(),
            "references: give at least one reference text"
        );
        for (label, texts) in &entries {
            weir_sdk::ensure!(!label.is_empty(), "references: a label is empty");
            weir_sdk::ensure!(!texts.is_empty(), "references.{label}: no texts");
            weir_sdk::ensure!(
                texts.iter().all(|t| !t.trim().is_empty()),
                "references.{label}: a text is empty"
            );
        }
        weir_sdk::ensure!(
            (-1.0..=1.0).contains(&self.threshold),
            "threshold: must be a cosine similarity in -1..=1, got {}",
            self.threshold
        );
        weir_sdk::ensure!(
            (4..=512).contains(&self.max_length),
            "max_length: must be in 4..=512, got {}",
            self.max_length
        );
        weir_sdk::ensure!(!self.model.is_empty(), "model: must not be empty");
        weir_sdk::ensure!(!self.field.is_empty(), "field: must not be empty");
        Ok(())
    }
}
