//! Texts → normalized sentence embeddings: tokenize, one `infer` call,
//! mean-pool with the attention mask, L2-normalize.

use tokenizers::{Tokenizer, TruncationParams};
use weir_sdk::infer::{Tensor, infer};
use weir_sdk::{Error, Result};

/// The model's output this plugin pools.
const HIDDEN: &str = "last_hidden_state";

/// A BERT-style sentence embedder: a tokenizer here, the model in the host.
pub struct Embedder {
    tokenizer: Tokenizer,
    model: String,
}

/// The token tensors of a batch, padded to the longest text.
#[derive(Debug, PartialEq)]
pub struct Tokens {
    /// Rows (texts).
    pub rows: usize,
    /// Columns (tokens per row, padding included).
    pub len: usize,
    /// `[rows, len]` token ids, 0 (`[PAD]`) after each text's end.
    pub ids: Vec<i64>,
    /// `[rows, len]` 1 for a real token, 0 for padding.
    pub mask: Vec<i64>,
    /// `[rows, len]` segment ids (all 0 for one sentence).
    pub type_ids: Vec<i64>,
}

impl Embedder {
    /// Parses `tokenizer.json`; texts will be truncated to `max_length` tokens.
    /// The file's own padding setting is replaced by padding to the longest
    /// text of each batch.
    pub fn new(tokenizer_json: &[u8], max_length: usize, model: String) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| Error::msg(format!("invalid tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::msg(format!("max_length {max_length}: {e}")))?;
        Ok(Self { tokenizer, model })
    }

    /// Tokenizes `texts` into `[rows, len]` tensors, `len` the longest.
    /// A text that fails to tokenize gets `Err` (and no row).
    pub fn tokenize(&self, texts: &[&str]) -> (Tokens, Vec<Result<()>>) {
        let mut encodings = Vec::with_capacity(texts.len());
        let mut status = Vec::with_capacity(texts.len());
        for text in texts {
            match self.tokenizer.encode_fast(*text, true) {
                Ok(e) => {
                    encodings.push(e);
                    status.push(Ok(()));
                }
                Err(e) => status.push(Err(Error::msg(format!("tokenizing failed: {e}")))),
            }
        }
        let len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let rows = encodings.len();
        let mut tokens = Tokens {
            rows,
            len,
            ids: vec![0; rows * len],
            mask: vec![0; rows * len],
            type_ids: vec![0; rows * len],
        };
        for (r, e) in encodings.iter().enumerate() {
            let row = r * len;
            for (i, ((&id, &m), &t)) in e
                .get_ids()
                .iter()
                .zip(e.get_attention_mask())
                .zip(e.get_type_ids())
                .enumerate()
            {
                tokens.ids[row + i] = i64::from(id);
                tokens.mask[row + i] = i64::from(m);
                tokens.type_ids[row + i] = i64::from(t);
            }
        }
        (tokens, status)
    }

    /// One normalized embedding per text (an `Err` for a text that did not
    /// tokenize); the outer `Err` is a failed model call, for every text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Result<Vec<f32>>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (tokens, status) = self.tokenize(texts);
        let mut pooled = if tokens.rows == 0 {
            Vec::new()
        } else {
            let shape = [tokens.rows, tokens.len];
            let out = infer(
                &self.model,
                &[
                    Tensor::i64("input_ids", shape, tokens.ids),
                    Tensor::i64("attention_mask", shape, tokens.mask.clone()),
                    Tensor::i64("token_type_ids", shape, tokens.type_ids),
                ],
            )
            .map_err(|e| Error::from(e).context(format!("model `{}`", self.model)))?;
            let hidden = out
                .iter()
                .find(|t| t.name() == HIDDEN)
                .or(out.first())
                .ok_or_else(|| Error::msg("the model returned no output"))?;
            let data = hidden
                .as_f32()
                .ok_or_else(|| Error::msg(format!("`{HIDDEN}` is not f32")))?;
            mean_pool(data, &tokens.mask, tokens.rows, tokens.len)?
        }
        .into_iter();
        Ok(status
            .into_iter()
            .map(|s| {
                s?;
                pooled
                    .next()
                    .ok_or_else(|| Error::msg("the model returned fewer rows than texts"))
            })
            .collect())
    }
}

/// Mean of each row's hidden states over its real tokens (`mask` 1),
/// L2-normalized. `hidden` is `[rows, len, H]`, `mask` `[rows, len]`.
pub fn mean_pool(hidden: &[f32], mask: &[i64], rows: usize, len: usize) -> Result<Vec<Vec<f32>>> {
    weir_sdk::ensure!(
        rows > 0 && len > 0 && hidden.len().is_multiple_of(rows * len) && mask.len() == rows * len,
        "`{HIDDEN}` has {} floats, expected [{rows}, {len}, H]",
        hidden.len()
    );
    let h = hidden.len() / (rows * len);
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut sum = vec![0f32; h];
        let mut count = 0f32;
        for t in 0..len {
            if mask[r * len + t] == 0 {
                continue;
            }
            count += 1.0;
            let start = (r * len + t) * h;
            for (s, x) in sum.iter_mut().zip(&hidden[start..start + h]) {
                *s += x;
            }
        }
        let count = count.max(1e-9);
        sum.iter_mut().for_each(|s| *s /= count);
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        sum.iter_mut().for_each(|s| *s /= norm);
        out.push(sum);
    }
    Ok(out)
}

/// Cosine similarity of two L2-normalized vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
