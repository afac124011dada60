//! Dynamic batching: requests for one model queue up; a dedicated thread (off the async
//! runtime) takes the first waiting request, gathers more until the batch holds `max_batch`
//! inputs or `max_delay` has passed since that first request arrived (with the default zero
//! delay: whatever is already queued), runs one forward pass and answers each request with
//! its own rows.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::predictor::{Inputs, Predictor};

/// Probabilities for each input of a request, or an error message.
pub type BatchResult = Result<Vec<Vec<f64>>, String>;

struct Job {
    inputs: Inputs,
    n: usize,
    arrived: Instant,
    reply: oneshot::Sender<BatchResult>,
}

/// Batching settings.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Most inputs in one forward pass (a single larger request still runs whole).
    pub max_batch: usize,
    /// Longest a request waits for others to join its batch. Zero (the default) is greedy
    /// batching: the model never idles waiting; whatever queued while the previous forward
    /// pass ran forms the next batch, so batches grow with load and a lone request runs at once.
    pub max_delay: Duration,
    /// Requests that may wait in the queue before new ones are refused (503).
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 32,
            max_delay: Duration::ZERO,
            queue: 1024,
        }
    }
}

/// The sending side; cheap to clone into handlers.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
}

/// Why a request could not be queued.
#[derive(Debug, PartialEq)]
pub enum SubmitError {
    /// The queue is full: the service is saturated.
    Saturated,
    /// The batching thread has stopped.
    Stopped,
}

/// Batch size observer (for metrics).
pub type OnBatch = Arc<dyn Fn(usize) + Send + Sync>;

impl Batcher {
    /// Start the batching thread for `model`.
    pub fn start(model: Arc<dyn Predictor>, cfg: BatchConfig, on_batch: OnBatch) -> Batcher {
        let (tx, rx) = sync_channel::<Job>(cfg.queue.max(1));
        std::thread::Builder::new()
            .name(format!("medai-batch-{}", model.meta().name))
            .spawn(move || run(model, cfg, rx, on_batch))
            .expect("spawn the batching thread");
        Batcher { tx }
    }

    /// Queue a request's inputs; the receiver gets their output rows.
    pub fn submit(&self, inputs: Inputs) -> Result<oneshot::Receiver<BatchResult>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let n = inputs.len();
        let job = Job {
            inputs,
            n,
            arrived: Instant::now(),
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(SubmitError::Saturated),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped),
        }
    }
}

fn run(model: Arc<dyn Predictor>, cfg: BatchConfig, rx: Receiver<Job>, on_batch: OnBatch) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let deadline = first.arrived + cfg.max_delay;
        let mut total = first.n;
        let mut jobs = vec![first];
        while total < cfg.max_batch {
            let now = Instant::now();
            let next = if now >= deadline {
                match rx.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            } else {
                match rx.recv_timeout(deadline - now) {
                    Ok(j) => j,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            if total + next.n > cfg.max_batch {
                // It starts the next batch instead.
                carry = Some(next);
                break;
            }
            total += next.n;
            jobs.push(next);
        }
        // Requests whose client went away are not computed.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let n: usize = jobs.iter().map(|j| j.n).sum();
        let result = if jobs.len() == 1 {
            model.predict(&jobs[0].inputs)
        } else {
            let parts: Vec<&Inputs> = jobs.iter().map(|j| &j.inputs).collect();
            Inputs::concat(&parts).and_then(|all| model.predict(&all))
        };
        on_batch(n);
        match result {
            Ok(rows) if rows.len() == n => {
                let mut rows = rows.into_iter();
                for j in jobs {
                    let mine: Vec<Vec<f64>> = rows.by_ref().take(j.n).collect();
                    let _ = j.reply.send(Ok(mine));
                }
            }
            Ok(rows) => {
                let msg = format!("the model returned {} rows for {n} inputs", rows.len());
                for j in jobs {
                    let _ = j.reply.send(Err(msg.clone()));
                }
            }
            Err(e) => {
                for j in jobs {
                    let _ = j.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictor::{InputKind, ModelMeta, OutputKind};
    use std::sync::Mutex;

    /// p(class 1) = the first input value; records the batch sizes it saw.
    struct Echo(ModelMeta, Mutex<Vec<usize>>);
    impl Predictor for Echo {
        fn meta(&self) -> &ModelMeta {
            &self.0
        }
        fn predict(&self, x: &Inputs) -> Result<Vec<Vec<f64>>, String> {
            let Inputs::Tensor { values: x, n } = x else {
                return Err("images only".into());
            };
            self.1.lock().unwrap().push(*n);
            std::thread::sleep(Duration::from_millis(20));
            Ok(x.iter()
                .map(|&v| vec![1.0 - f64::from(v), f64::from(v)])
                .collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_get_their_own_rows() {
        let meta = ModelMeta {
            name: "echo".into(),
            task: "t".into(),
            input: InputKind::Image,
            output: OutputKind::Classes,
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 1,
            width: 1,
            threshold: 0.5,
            temperature: 1.0,
            bundle_sha256: String::new(),
            card_markdown: String::new(),
        };
        let model = Arc::new(Echo(meta, Mutex::new(Vec::new())));
        let cfg = BatchConfig {
            max_batch: 8,
            max_delay: Duration::from_millis(10),
            queue: 64,
        };
        let b = Batcher::start(model.clone(), cfg, Arc::new(|_| {}));
        let mut waits = Vec::new();
        for i in 0..40 {
            let v = i as f32 / 100.0;
            waits.push((
                v,
                b.submit(Inputs::Tensor {
                    values: vec![v],
                    n: 1,
                })
                .unwrap(),
            ));
        }
        for (v, rx) in waits {
            let rows = rx.await.unwrap().unwrap();
            assert_eq!(rows, vec![vec![1.0 - f64::from(v), f64::from(v)]]);
        }
        let sizes = model.1.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|&s| s <= 8), "{sizes:?}");
        assert!(
            sizes.len() <= 10,
            "40 queued requests should batch: {sizes:?}"
        );
    }
}
