//! Prometheus metrics of the models (`prometheus-client` types; the
//! `/metrics` endpoint registers them through
//! [`super::ModelRegistry::register_metrics`]). Every metric has the label
//! `model`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub model: String,
    /// `unknown_model`, `invalid_input`, `runtime`, `unavailable`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    pub model: String,
    pub version: String,
}

type HistogramFamily = Family<ModelLabel, Histogram, fn() -> Histogram>;

fn batch_rows_histogram() -> Histogram {
    // 1, 2, 4 ... 65536 rows.
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn latency_histogram() -> Histogram {
    // 50 µs ... ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

fn prediction_histogram() -> Histogram {
    // 0.05, 0.10 ... 1.0 (values above land in +Inf).
    Histogram::new((1..=20).map(|i| f64::from(i) / 20.0))
}

/// Every model's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    calls: Family<ModelLabel, Counter>,
    rows: Family<ModelLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    batch_rows: HistogramFamily,
    latency: HistogramFamily,
    prediction: HistogramFamily,
    swaps: Family<ModelLabel, Counter>,
    refusals: Family<ModelLabel, Counter>,
    info: Family<InfoLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            rows: Family::default(),
            errors: Family::default(),
            batch_rows: Family::new_with_constructor(batch_rows_histogram),
            latency: Family::new_with_constructor(latency_histogram),
            prediction: Family::new_with_constructor(prediction_histogram),
            swaps: Family::default(),
            refusals: Family::default(),
            info: Family::default(),
        }
    }
}

impl Metrics {
    /// The handles of one model (created with zero values, so every model
    /// shows up before its first call).
    pub fn model(&self, model: &str) -> ModelMetrics {
        let label = ModelLabel {
            model: model.to_owned(),
        };
        ModelMetrics {
            model: model.to_owned(),
            calls: self.calls.get_or_create_owned(&label),
            rows: self.rows.get_or_create_owned(&label),
            batch_rows: self.batch_rows.get_or_create_owned(&label),
            latency: self.latency.get_or_create_owned(&label),
            prediction: self.prediction.get_or_create_owned(&label),
            swaps: self.swaps.get_or_create_owned(&label),
            refusals: self.refusals.get_or_create_owned(&label),
            errors: self.errors.clone(),
            info: self.info.clone(),
        }
    }

    /// Counts a failed call of `model` (which may not be declared).
    pub fn error(&self, model: &str, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                model: model.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    #[rustfmt::skip]
    pub fn register(&self, registry: &mut Registry) {
        add(registry, "weir_inference_calls", "Inference calls by plugins", &self.calls);
        add(registry, "weir_inference_rows", "Rows sent to models by plugins", &self.rows);
        add(registry, "weir_inference_errors", "Failed inference calls, by kind", &self.errors);
        add(registry, "weir_inference_batch_rows", "Rows per model run (after dynamic batching)", &self.batch_rows);
        add(registry, "weir_inference_latency_seconds", "What a caller waits for a result: queue and run", &self.latency);
        add(registry, "weir_model_prediction", "Values of the first column of the first output (drift)", &self.prediction);
        add(registry, "weir_model_swaps", "New model versions swapped in while running", &self.swaps);
        add(registry, "weir_model_refusals", "New model files refused (the old version kept serving)", &self.refusals);
        add(registry, "weir_model_info", "The version (sha256) a model serves: 1", &self.info);
    }
}

/// Registers a clone of `metric` (the clone shares its values).
fn add(registry: &mut Registry, name: &str, help: &str, metric: &(impl Metric + Clone)) {
    registry.register(name, help, metric.clone());
}

/// One model's metric handles.
#[derive(Clone, Debug)]
pub struct ModelMetrics {
    model: String,
    pub calls: Counter,
    pub rows: Counter,
    pub batch_rows: Histogram,
    pub latency: Histogram,
    pub prediction: Histogram,
    pub swaps: Counter,
    pub refusals: Counter,
    errors: Family<ErrorLabels, Counter>,
    info: Family<InfoLabels, Gauge>,
}

impl ModelMetrics {
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                model: self.model.clone(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        self.errors
            .get(&ErrorLabels {
                model: self.model.clone(),
                kind: kind.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// `weir_model_info{model, version} = 1`, for the serving version only.
    pub fn serving(&self, old: Option<&str>, new: &str) {
        if let Some(old) = old {
            self.info.remove(&InfoLabels {
                model: self.model.clone(),
                version: old.to_owned(),
            });
        }
        self.info
            .get_or_create(&InfoLabels {
                model: self.model.clone(),
                version: new.to_owned(),
            })
            .set(1);
    }
}
