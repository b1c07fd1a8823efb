//! The job manager: one worker thread that owns the engine.

use crate::engine::intervene::Intervention;
use crate::engine::saliency::{SaliencyMethod, SaliencyTarget};
use crate::engine::{Engine, Flow, GenerateOptions, OptionScores, ResizePolicy};
use crate::viz::SaliencyMap;
use image::DynamicImage;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub type JobId = u64;

/// Work for the engine.
#[derive(Clone)]
pub enum JobRequest {
    /// Score the option labels, then stream a generated answer.
    LiveAnswer { images: Vec<DynamicImage>, text: String, labels: Vec<String>, intervention: Intervention, max_new_tokens: usize },
    /// A saliency map per image for `target` (None: the best-scoring label).
    Saliency { images: Vec<DynamicImage>, text: String, labels: Vec<String>, target: Option<String>, method: SaliencyMethod },
}

impl JobRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            JobRequest::LiveAnswer { .. } => "live answer",
            JobRequest::Saliency { .. } => "saliency",
        }
    }
}

/// What the worker reports.
#[derive(Clone, Debug)]
pub enum JobEvent {
    EngineLoaded { model: String, seconds: f64 },
    EngineFailed { error: String },
    Started { id: JobId, kind: &'static str },
    Scores { id: JobId, scores: OptionScores },
    Token { id: JobId, delta: String },
    Saliency { id: JobId, target: String, maps: Vec<SaliencyMap> },
    Finished { id: JobId },
    Cancelled { id: JobId },
    Failed { id: JobId, error: String },
}

impl JobEvent {
    pub fn id(&self) -> Option<JobId> {
        match self {
            JobEvent::Started { id, .. }
            | JobEvent::Scores { id, .. }
            | JobEvent::Token { id, .. }
            | JobEvent::Saliency { id, .. }
            | JobEvent::Finished { id }
            | JobEvent::Cancelled { id }
            | JobEvent::Failed { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Cancel flags of the jobs not yet ended, shared with the worker.
type CancelFlags = Arc<Mutex<Vec<(JobId, Arc<AtomicBool>)>>>;

struct Queued {
    id: JobId,
    request: JobRequest,
    cancel: Arc<AtomicBool>,
}

pub struct JobManager {
    tx: mpsc::Sender<Queued>,
    next: AtomicU64,
    /// The focused job's cancel flag (latest-wins).
    focused: Mutex<Option<(JobId, Arc<AtomicBool>)>>,
    cancels: CancelFlags,
}

impl JobManager {
    /// Starts the worker; the engine loads there (its result arrives as an event).
    pub fn spawn(model: PathBuf, device: String, dtype: String) -> (JobManager, UnboundedReceiver<JobEvent>) {
        let (tx, rx) = mpsc::channel::<Queued>();
        let (etx, erx) = unbounded_channel();
        let cancels: CancelFlags = Arc::default();
        let worker_cancels = cancels.clone();
        std::thread::Builder::new()
            .name("flipscope-engine".into())
            .spawn(move || worker(model, device, dtype, rx, etx, worker_cancels))
            .expect("spawn the engine thread");
        (JobManager { tx, next: AtomicU64::new(1), focused: Mutex::new(None), cancels }, erx)
    }

    fn submit_inner(&self, request: JobRequest) -> (JobId, Arc<AtomicBool>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.lock().unwrap().push((id, cancel.clone()));
        // A closed channel means the worker is gone; the caller sees no events.
        let _ = self.tx.send(Queued { id, request, cancel: cancel.clone() });
        (id, cancel)
    }

    /// A job that runs to completion unless cancelled by id.
    pub fn submit(&self, request: JobRequest) -> JobId {
        self.submit_inner(request).0
    }

    /// A job about the focused sample: cancels the previous focused job.
    pub fn submit_focused(&self, request: JobRequest) -> JobId {
        let (id, cancel) = self.submit_inner(request);
        if let Some((_, old)) = self.focused.lock().unwrap().replace((id, cancel)) {
            old.store(true, Ordering::Relaxed);
        }
        id
    }

    pub fn cancel(&self, id: JobId) {
        if let Some((_, c)) = self.cancels.lock().unwrap().iter().find(|(i, _)| *i == id) {
            c.store(true, Ordering::Relaxed);
        }
    }
}

fn worker(
    model: PathBuf,
    device: String,
    dtype: String,
    rx: mpsc::Receiver<Queued>,
    events: UnboundedSender<JobEvent>,
    cancels: CancelFlags,
) {
    let engine = match Engine::load_with(&model, &device, &dtype) {
        Ok(e) => {
            let _ = events.send(JobEvent::EngineLoaded { model: model.display().to_string(), seconds: e.load_report.seconds });
            Some(e)
        }
        Err(e) => {
            let _ = events.send(JobEvent::EngineFailed { error: format!("{e:#}") });
            None
        }
    };
    while let Ok(job) = rx.recv() {
        let id = job.id;
        let event = if job.cancel.load(Ordering::Relaxed) {
            JobEvent::Cancelled { id }
        } else if let Some(engine) = &engine {
            let _ = events.send(JobEvent::Started { id, kind: job.request.kind() });
            // tch reports libtorch errors as panics; a failing job must not take the worker down.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(engine, &job, &events)));
            match run {
                Ok(Ok(true)) => JobEvent::Finished { id },
                Ok(Ok(false)) => JobEvent::Cancelled { id },
                Ok(Err(e)) => JobEvent::Failed { id, error: format!("{e:#}") },
                Err(_) => JobEvent::Failed { id, error: "libtorch error (see stderr)".into() },
            }
        } else {
            JobEvent::Failed { id, error: "no model is loaded".into() }
        };
        cancels.lock().unwrap().retain(|(i, _)| *i != id);
        if events.send(event).is_err() {
            break; // nobody listens any more
        }
    }
}

/// Runs one job; Ok(false) when it stopped because it was cancelled.
fn run_job(engine: &Engine, job: &Queued, events: &UnboundedSender<JobEvent>) -> anyhow::Result<bool> {
    let id = job.id;
    let cancelled = || job.cancel.load(Ordering::Relaxed);
    match &job.request {
        JobRequest::LiveAnswer { images, text, labels, intervention, max_new_tokens } => {
            let prompt = engine.processor.prepare(images, text, &ResizePolicy::Auto)?;
            if !labels.is_empty() {
                let scores = engine.score_options_with(&[&prompt], std::slice::from_ref(labels), intervention)?.remove(0);
                let _ = events.send(JobEvent::Scores { id, scores });
            }
            if cancelled() {
                return Ok(false);
            }
            let opts = GenerateOptions { max_new_tokens: *max_new_tokens, intervention: intervention.clone(), ..Default::default() };
            let mut stopped = false;
            engine.generate(&[&prompt], &opts, &mut |step| {
                if !step.delta.is_empty() {
                    let _ = events.send(JobEvent::Token { id, delta: step.delta.to_string() });
                }
                if cancelled() {
                    stopped = true;
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            })?;
            Ok(!stopped)
        }
        JobRequest::Saliency { images, text, labels, target, method } => {
            let prompt = engine.processor.prepare(images, text, &ResizePolicy::Auto)?;
            let label = match target {
                Some(t) => t.clone(),
                None => engine.score_options(&[&prompt], std::slice::from_ref(labels))?.remove(0).best_label().to_string(),
            };
            if cancelled() {
                return Ok(false);
            }
            let token = engine.option_token_ids(std::slice::from_ref(&label))?[0];
            let a = engine.saliency(images, &prompt, &ResizePolicy::Auto, &SaliencyTarget::Token(token), method)?;
            let _ = events.send(JobEvent::Saliency { id, target: label, maps: a.maps });
            Ok(true)
        }
    }
}
