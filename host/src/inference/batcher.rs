//! Dynamic batching (as Triton does it): callers of one model — plugin
//! stage threads, blocking — queue requests; one batcher thread per model
//! takes requests until `max_batch` rows are waiting or `max_delay` has
//! passed since the first, concatenates each input along the row dimension,
//! runs the model once and splits every output back by the callers' row
//! counts.
//!
//! Each request is checked alone first, so a bad caller gets `InvalidInput`
//! and the others are unaffected. A request bigger than `max_batch` runs in
//! chunks. Requests whose non-row dimensions differ run in separate runs.
//! The model is read from a [`ModelSlot`] at each batch: a hot swap takes
//! effect at the next batch, and in-flight batches finish on the old one.

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::metrics::ModelMetrics;
use super::model::Model;
use super::{InferError, Tensor, TensorData};

/// The model a batcher runs; replaced atomically by a hot swap.
#[derive(Debug)]
pub struct ModelSlot(RwLock<Arc<Model>>);

impl ModelSlot {
    pub fn new(model: Model) -> Self {
        Self(RwLock::new(Arc::new(model)))
    }

    pub fn get(&self) -> Result<Arc<Model>, InferError> {
        self.0
            .read()
            .map(|m| m.clone())
            .map_err(|_| InferError::Runtime("model slot lock poisoned".into()))
    }

    /// Serves `model` from the next batch on; returns the old one.
    pub fn swap(&self, model: Arc<Model>) -> Result<Arc<Model>, InferError> {
        let mut current = self
            .0
            .write()
            .map_err(|_| InferError::Runtime("model slot lock poisoned".into()))?;
        Ok(std::mem::replace(&mut *current, model))
    }
}

/// When a batch is cut.
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    pub max_batch: usize,
    pub max_delay: Duration,
}

type Reply = Result<Vec<Tensor>, InferError>;

struct Request {
    inputs: Vec<Tensor>,
    reply: mpsc::SyncSender<Reply>,
}

enum Msg {
    Call(Request),
    Stop,
}

/// The caller side of one model's batcher thread.
#[derive(Debug)]
pub struct Batcher {
    name: String,
    tx: mpsc::Sender<Msg>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Batcher {
    /// Starts the batcher thread of model `name`.
    pub fn start(
        name: &str,
        slot: Arc<ModelSlot>,
        policy: BatchPolicy,
        metrics: ModelMetrics,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("weir-model-{name}"))
            .spawn(move || run_loop(&rx, &slot, policy, &metrics))?;
        Ok(Self {
            name: name.to_owned(),
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Queues a call and waits for its result.
    pub fn call(&self, inputs: Vec<Tensor>) -> Reply {
        let (reply, result) = mpsc::sync_channel(1);
        let gone = || InferError::Unavailable(format!("model `{}` is shut down", self.name));
        self.tx
            .send(Msg::Call(Request { inputs, reply }))
            .map_err(|_| gone())?;
        result.recv().map_err(|_| gone())?
    }

    /// Stops the thread: queued callers get `Unavailable`, later calls too.
    /// The batch being run finishes first.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An admitted request: checked, in input order.
struct Pending {
    reply: mpsc::SyncSender<Reply>,
    inputs: Vec<Tensor>,
    rows: usize,
    /// Each input's non-row dims: requests that agree can share a run.
    key: Vec<Vec<usize>>,
    /// Per output: non-row dims and the rows gathered so far.
    outputs: Vec<Option<(Vec<usize>, TensorData)>>,
    failed: bool,
}

fn run_loop(rx: &mpsc::Receiver<Msg>, slot: &ModelSlot, policy: BatchPolicy, m: &ModelMetrics) {
    let mut stopping = false;
    while !stopping {
        let first = match rx.recv() {
            Ok(Msg::Call(r)) => r,
            Ok(Msg::Stop) | Err(_) => break,
        };
        let model = match slot.get() {
            Ok(model) => model,
            Err(e) => {
                let _ = first.reply.send(Err(e));
                continue;
            }
        };
        let mut batch = Vec::new();
        let mut rows = admit(&model, first, &mut batch);
        let deadline = Instant::now() + policy.max_delay;
        while rows < policy.max_batch {
            let msg = if policy.max_delay.is_zero() {
                match rx.try_recv() {
                    Ok(msg) => msg,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            } else {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            };
            match msg {
                Msg::Call(r) => rows += admit(&model, r, &mut batch),
                Msg::Stop => {
                    stopping = true;
                    break;
                }
            }
        }
        // A swap while the batch filled up: run on the new model, checking
        // the requests against it again.
        let model = match slot.get() {
            Ok(now) if !Arc::ptr_eq(&now, &model) => {
                let admitted = std::mem::take(&mut batch);
                for p in admitted {
                    let r = Request {
                        inputs: p.inputs,
                        reply: p.reply,
                    };
                    admit(&now, r, &mut batch);
                }
                now
            }
            _ => model,
        };
        execute(&model, batch, policy.max_batch, m);
    }
    // Whatever is still queued will not run.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Call(r) = msg {
            let _ = r.reply.send(Err(InferError::Unavailable(
                "the pipeline is shutting down".into(),
            )));
        }
    }
}

/// Checks a request alone; a bad one is answered at once. Returns its rows.
fn admit(model: &Model, r: Request, batch: &mut Vec<Pending>) -> usize {
    match model.check(r.inputs) {
        Ok((inputs, rows)) => {
            let key = inputs
                .iter()
                .map(|t| t.shape.get(1..).unwrap_or_default().to_vec())
                .collect();
            batch.push(Pending {
                reply: r.reply,
                inputs,
                rows,
                key,
                outputs: vec![None; model.outputs.len()],
                failed: false,
            });
            rows
        }
        Err(e) => {
            let _ = r.reply.send(Err(e));
            0
        }
    }
}

/// A slice of one request's rows within a run.
#[derive(Clone, Copy)]
struct Segment {
    request: usize,
    start: usize,
    len: usize,
}

/// Runs the admitted requests: grouped by non-row dims, packed into runs of
/// at most `max_batch` rows (one run per request when the model's row
/// dimension is fixed), then replies in order.
fn execute(model: &Model, mut batch: Vec<Pending>, max_batch: usize, m: &ModelMetrics) {
    let mut groups: Vec<(Vec<Vec<usize>>, Vec<usize>)> = Vec::new();
    for (i, p) in batch.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| *k == p.key) {
            Some((_, members)) => members.push(i),
            None => groups.push((p.key.clone(), vec![i])),
        }
    }
    for (_, members) in groups {
        if !model.batchable() {
            // A fixed row dimension: every request runs alone, whole.
            for request in members {
                let len = batch[request].rows;
                run_once(
                    model,
                    &mut batch,
                    &[Segment {
                        request,
                        start: 0,
                        len,
                    }],
                    m,
                );
            }
            continue;
        }
        let mut run: Vec<Segment> = Vec::new();
        let mut run_rows = 0;
        for request in members {
            let rows = batch[request].rows;
            let mut start = 0;
            while start < rows {
                let len = (rows - start).min(max_batch - run_rows);
                run.push(Segment {
                    request,
                    start,
                    len,
                });
                run_rows += len;
                start += len;
                if run_rows >= max_batch {
                    run_once(model, &mut batch, &std::mem::take(&mut run), m);
                    run_rows = 0;
                }
            }
        }
        if !run.is_empty() {
            run_once(model, &mut batch, &run, m);
        }
    }
    for p in batch {
        if p.failed {
            continue;
        }
        let result: Reply = p
            .outputs
            .into_iter()
            .zip(&model.outputs)
            .map(|(out, spec)| match out {
                Some((rest, data)) => {
                    let mut shape = Vec::with_capacity(rest.len() + 1);
                    shape.push(p.rows);
                    shape.extend(rest);
                    Ok(Tensor {
                        name: spec.name.clone(),
                        shape,
                        data,
                    })
                }
                None => Err(InferError::Runtime(format!(
                    "model `{}`: output `{}` was not produced",
                    model.name, spec.name
                ))),
            })
            .collect();
        let _ = p.reply.send(result);
    }
}

/// Elements per row of a tensor.
fn row_len(shape: &[usize]) -> usize {
    shape.get(1..).unwrap_or_default().iter().product()
}

fn slice_rows(data: &TensorData, row: usize, start: usize, len: usize) -> TensorData {
    let (a, b) = (start * row, (start + len) * row);
    match data {
        TensorData::F32(v) => TensorData::F32(v.get(a..b).unwrap_or_default().to_vec()),
        TensorData::I64(v) => TensorData::I64(v.get(a..b).unwrap_or_default().to_vec()),
    }
}

fn append(to: &mut TensorData, from: &TensorData, a: usize, b: usize) -> bool {
    match (to, from) {
        (TensorData::F32(to), TensorData::F32(v)) => v.get(a..b).map(|s| to.extend_from_slice(s)),
        (TensorData::I64(to), TensorData::I64(v)) => v.get(a..b).map(|s| to.extend_from_slice(s)),
        _ => None,
    }
    .is_some()
}

fn fail(batch: &mut [Pending], run: &[Segment], err: &InferError) {
    for s in run {
        let p = &mut batch[s.request];
        if !p.failed {
            p.failed = true;
            let _ = p.reply.send(Err(err.clone()));
        }
    }
}

/// One model run over `run`'s segments; results are appended to each
/// request, or the requests fail.
fn run_once(model: &Model, batch: &mut [Pending], run: &[Segment], m: &ModelMetrics) {
    let run: Vec<Segment> = run
        .iter()
        .copied()
        .filter(|s| !batch[s.request].failed)
        .collect();
    let Some(first) = run.first() else { return };
    let total: usize = run.iter().map(|s| s.len).sum();
    let whole = run.len() == 1 && first.start == 0 && first.len == batch[first.request].rows;
    let inputs: Vec<Tensor> = if whole {
        std::mem::take(&mut batch[first.request].inputs)
    } else {
        let template = &batch[first.request].inputs;
        (0..template.len())
            .map(|k| {
                let t = &template[k];
                let row = row_len(&t.shape);
                let mut data = match &t.data {
                    TensorData::F32(_) => TensorData::F32(Vec::with_capacity(total * row)),
                    TensorData::I64(_) => TensorData::I64(Vec::with_capacity(total * row)),
                };
                for s in &run {
                    let src = &batch[s.request].inputs[k].data;
                    append(&mut data, src, s.start * row, (s.start + s.len) * row);
                }
                let mut shape = t.shape.clone();
                if let Some(rows) = shape.first_mut() {
                    *rows = total;
                }
                Tensor {
                    name: t.name.clone(),
                    shape,
                    data,
                }
            })
            .collect()
    };
    m.batch_rows.observe(total as f64);
    let outputs = match model.run(inputs) {
        Ok(o) => o,
        Err(e) => {
            return fail(batch, &run, &e);
        }
    };
    if let Some(bad) = outputs.iter().find(|o| o.rows() != total) {
        let e = InferError::Runtime(format!(
            "model `{}`: output `{}` has {} rows for {total} input rows: it cannot be split per caller",
            model.name,
            bad.name,
            bad.rows()
        ));
        return fail(batch, &run, &e);
    }
    if let Some(first_out) = outputs.first() {
        observe_predictions(first_out, m);
    }
    for (k, out) in outputs.iter().enumerate() {
        let row = row_len(&out.shape);
        let mut at = 0;
        for s in &run {
            let p = &mut batch[s.request];
            let slot = p.outputs[k].get_or_insert_with(|| {
                let empty = slice_rows(&out.data, row, 0, 0);
                (out.shape.get(1..).unwrap_or_default().to_vec(), empty)
            });
            append(&mut slot.1, &out.data, at * row, (at + s.len) * row);
            at += s.len;
        }
    }
}

/// The first column of the first output, for drift monitoring.
fn observe_predictions(out: &Tensor, m: &ModelMetrics) {
    let row = row_len(&out.shape).max(1);
    match &out.data {
        TensorData::F32(v) => v
            .iter()
            .step_by(row)
            .for_each(|&x| m.prediction.observe(f64::from(x))),
        TensorData::I64(v) => v
            .iter()
            .step_by(row)
            .for_each(|&x| m.prediction.observe(x as f64)),
    }
}
