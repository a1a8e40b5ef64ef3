//! Unit tests with real ONNX Runtime (found like `weir run` does: run
//! `source scripts/setup.sh` first) and the models in `tests/models`
//! (written by `tests/models/make_models.py`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// The weights `make_models.py` uses.
const W1: [f64; 4] = [0.5, -1.0, 0.25, 2.0];
const B1: f64 = 0.1;
const W2: [f64; 4] = [-0.75, 0.5, 1.5, -0.5];
const B2: f64 = -0.2;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/models")
}

fn expected(w: &[f64; 4], b: f64, x: &[f32]) -> f64 {
    let z: f64 = w.iter().zip(x).map(|(w, &x)| w * f64::from(x)).sum::<f64>() + b;
    1.0 / (1.0 + (-z).exp())
}

fn registry(models: &[(&str, ModelConfig)]) -> Result<ModelRegistry, LoadError> {
    let map: BTreeMap<String, ModelConfig> = models
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.clone()))
        .collect();
    ModelRegistry::load(None, &map)
}

fn linear(max_batch: usize, max_delay_ms: u64) -> ModelConfig {
    ModelConfig {
        max_batch,
        max_delay_ms,
        ..ModelConfig::new(models_dir().join("linear.onnx"))
    }
}

/// Row `r` of caller `c`: distinct values per caller and row.
fn row(c: usize, r: usize) -> [f32; 4] {
    let base = c as f32 * 0.37 + r as f32 * 0.011;
    [base - 1.0, 0.5 - base, base * 0.25, 0.3 - base * 0.1]
}

#[test]
fn concurrent_callers_get_exactly_their_own_rows_and_calls_coalesce() {
    let reg = registry(&[("linear", linear(64, 20))]).expect("load");
    let callers = 12;
    let calls_each = 5;
    let threads: Vec<_> = (0..callers)
        .map(|c| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                // Caller 0 sends more rows than max_batch: it runs in chunks.
                let rows = if c == 0 { 150 } else { c };
                for _ in 0..calls_each {
                    let x: Vec<f32> = (0..rows).flat_map(|r| row(c, r)).collect();
                    let out = reg
                        .infer(
                            "linear",
                            vec![Tensor::f32("features", vec![rows, 4], x.clone())],
                        )
                        .expect("infer");
                    assert_eq!(out.len(), 1);
                    assert_eq!(out[0].name, "score");
                    assert_eq!(out[0].shape, vec![rows, 1]);
                    let TensorData::F32(scores) = &out[0].data else {
                        panic!("f32 scores")
                    };
                    for (r, s) in scores.iter().enumerate() {
                        let want = expected(&W1, B1, &x[r * 4..r * 4 + 4]);
                        assert!(
                            (f64::from(*s) - want).abs() < 1e-5,
                            "caller {c} row {r}: {s} vs {want}"
                        );
                    }
                }
                rows * calls_each
            })
        })
        .collect();
    let rows: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    let m = reg.metrics("linear").expect("metrics");
    let calls = (callers * calls_each) as u64;
    assert_eq!(m.calls.get(), calls);
    assert_eq!(m.rows.get(), rows as u64);
    // Every row ran exactly once, in fewer runs than calls: coalesced.
    assert_eq!(m.batch_rows.sum() as usize, rows);
    let runs = m.batch_rows.count();
    assert!(runs < calls, "{runs} runs for {calls} calls: no coalescing");
    assert_eq!(m.latency.count(), calls);
    assert_eq!(m.prediction.count(), rows as u64);
    reg.shutdown();
}

#[test]
fn a_bad_caller_gets_invalid_input_and_the_others_are_unaffected() {
    let reg = registry(&[("linear", linear(256, 30))]).expect("load");
    let good: Vec<_> = (0..4)
        .map(|c| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                let x: Vec<f32> = (0..3).flat_map(|r| row(c, r)).collect();
                reg.infer("linear", vec![Tensor::f32("features", vec![3, 4], x)])
            })
        })
        .collect();
    let bad_cases = vec![
        vec![Tensor::f32("features", vec![2, 3], vec![0.0; 6])],
        vec![Tensor::i64("features", vec![1, 4], vec![0; 4])],
        vec![Tensor::f32("nope", vec![1, 4], vec![0.0; 4])],
        vec![Tensor::f32("features", vec![2, 4], vec![0.0; 7])],
        vec![],
    ];
    for inputs in bad_cases {
        let err = reg.infer("linear", inputs.clone()).expect_err("invalid");
        assert!(
            matches!(err, InferError::InvalidInput(_)),
            "{inputs:?}: {err:?}"
        );
    }
    for t in good {
        let out = t.join().expect("thread").expect("good caller");
        assert_eq!(out[0].shape, vec![3, 1]);
    }
    assert_eq!(
        reg.infer("missing", vec![]),
        Err(InferError::UnknownModel("missing".into()))
    );
    let m = reg.metrics("linear").expect("metrics");
    assert_eq!(m.errors("invalid_input"), 5);
    reg.shutdown();
    let err = reg
        .infer(
            "linear",
            vec![Tensor::f32("features", vec![1, 4], vec![0.0; 4])],
        )
        .expect_err("shut down");
    assert!(matches!(err, InferError::Unavailable(_)), "{err:?}");
}

#[test]
fn int64_inputs_and_several_outputs() {
    let reg = registry(&[(
        "ids",
        ModelConfig {
            max_delay_ms: 0,
            ..ModelConfig::new(models_dir().join("ids.onnx"))
        },
    )])
    .expect("load");
    let out = reg
        .infer(
            "ids",
            vec![Tensor::i64("ids", vec![2, 3], vec![1, 2, 3, 10, 20, 30])],
        )
        .expect("infer");
    assert_eq!(out[0], Tensor::i64("total", vec![2, 1], vec![12, 120]));
    assert_eq!(
        out[1],
        Tensor::f32("doubled", vec![2, 3], vec![0.5, 1.0, 1.5, 5.0, 10.0, 15.0])
    );
    // Only the declared output.
    let reg = registry(&[(
        "ids",
        ModelConfig {
            outputs: Some(vec!["doubled".into()]),
            ..ModelConfig::new(models_dir().join("ids.onnx"))
        },
    )])
    .expect("load");
    let out = reg
        .infer("ids", vec![Tensor::i64("ids", vec![1, 3], vec![2, 4, 6])])
        .expect("infer");
    assert_eq!(
        out,
        vec![Tensor::f32("doubled", vec![1, 3], vec![1.0, 2.0, 3.0])]
    );
}

#[test]
fn load_errors_name_the_model_and_field() {
    let dir = models_dir();
    let cases = [
        (
            ModelConfig::new(dir.join("absent.onnx")),
            "models.m.path",
            "cannot read",
        ),
        (
            ModelConfig::new(dir.join("not_onnx.onnx")),
            "models.m.path",
            "not a loadable ONNX model",
        ),
        (
            ModelConfig {
                inputs: Some(vec!["pixels".into()]),
                ..ModelConfig::new(dir.join("linear.onnx"))
            },
            "models.m.inputs",
            "no input named `pixels` (its inputs: features)",
        ),
        (
            ModelConfig {
                outputs: Some(vec!["prob".into()]),
                ..ModelConfig::new(dir.join("linear.onnx"))
            },
            "models.m.outputs",
            "no output named `prob`",
        ),
    ];
    for (config, field, what) in cases {
        let msg = registry(&[("m", config)]).expect_err("refused").to_string();
        assert!(msg.starts_with(field), "{msg}");
        assert!(msg.contains(what), "{msg}");
        assert!(msg.contains("model `m`"), "{msg}");
    }
}

fn score(reg: &ModelRegistry, x: [f32; 4]) -> f64 {
    let out = reg
        .infer(
            "linear",
            vec![Tensor::f32("features", vec![1, 4], x.to_vec())],
        )
        .expect("infer");
    match &out[0].data {
        TensorData::F32(v) => f64::from(v[0]),
        TensorData::I64(_) => panic!("f32"),
    }
}

#[test]
fn hot_swap_refuses_bad_files_and_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("model.onnx");
    std::fs::copy(models_dir().join("linear.onnx"), &path).expect("copy");
    let reg = registry(&[("linear", ModelConfig::new(&path))]).expect("load");
    let status = Arc::new(crate::telemetry::VersionBoard::new(Some(
        tmp.path().join("status.json"),
    )));
    reg.publish_to(status.clone());
    let x = [0.2, -0.4, 1.0, 0.3];
    let v1 = reg.version("linear").expect("version");
    assert!((score(&reg, x) - expected(&W1, B1, &x)).abs() < 1e-5);

    // Calls keep flowing on other threads during the swaps.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (reg, stop) = (reg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = score(&reg, x);
                let (a, b) = (expected(&W1, B1, &x), expected(&W2, B2, &x));
                assert!((s - a).abs() < 1e-5 || (s - b).abs() < 1e-5, "{s}");
                n += 1;
            }
            n
        })
    };

    std::fs::copy(models_dir().join("linear_v2.onnx"), &path).expect("copy v2");
    reg.file_changed(&path);
    let v2 = reg.version("linear").expect("version");
    assert_ne!(v1, v2);
    assert!((score(&reg, x) - expected(&W2, B2, &x)).abs() < 1e-5);

    std::fs::write(&path, b"corrupt").expect("corrupt");
    reg.file_changed(&path);
    assert_eq!(reg.version("linear"), Some(v2.clone()));
    assert!((score(&reg, x) - expected(&W2, B2, &x)).abs() < 1e-5);

    std::fs::remove_file(&path).expect("rm");
    reg.file_removed(&path);
    assert!((score(&reg, x) - expected(&W2, B2, &x)).abs() < 1e-5);

    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(caller.join().expect("caller") > 0);

    let m = reg.metrics("linear").expect("metrics");
    assert_eq!(m.swaps.get(), 1);
    assert_eq!(m.refusals.get(), 1);
    let text = std::fs::read_to_string(tmp.path().join("status.json")).expect("status");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let s = &json["models"]["linear"];
    assert_eq!(s["version"], v2.as_str(), "{json:#}");
    assert_eq!(s["swaps"], 1);
    assert_eq!(s["refusals"], 1);
    assert_eq!(s["file_deleted"], true);
    assert!(
        s["last_refusal"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not a loadable ONNX model")),
        "{json:#}"
    );

    // The Prometheus text shows every metric, labelled by model.
    let mut prom = prometheus_client::registry::Registry::default();
    reg.register_metrics(&mut prom);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &prom).expect("encode");
    for name in [
        "weir_inference_calls_total{model=\"linear\"}",
        "weir_inference_batch_rows_count{model=\"linear\"}",
        "weir_model_swaps_total{model=\"linear\"} 1",
        "weir_model_refusals_total{model=\"linear\"} 1",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("weir_model_prediction_bucket{") && l.contains("le=\"0.5\"")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "weir_model_info{{model=\"linear\",version=\"{v2}\"}} 1"
        )),
        "{out}"
    );
    assert!(
        !out.contains(&v1),
        "the old version is no longer listed:\n{out}"
    );
}
