//! The job manager: hands requests to the engine thread and keeps the cancel
//! flags. Focused jobs (about the sample on screen) are latest-wins.

pub use super::request::JobId;
use super::request::{JobEvent, JobRequest};
use super::worker::{EventSink, Queued, Worker};
use crate::engine::Placement;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// Cancel flags of the jobs not yet ended, shared with the worker.
pub(super) type CancelFlags = Arc<Mutex<Vec<(JobId, Arc<AtomicBool>)>>>;

/// Set while background work is paused: a background job waits at its next
/// step boundary (serving focused work meanwhile) until it is cleared.
pub(super) type PauseFlag = Arc<(Mutex<bool>, Condvar)>;

pub struct JobManager {
    /// None once shut down: the worker then ends when its queue is empty.
    tx: Option<mpsc::Sender<Queued>>,
    engine: Option<std::thread::JoinHandle<()>>,
    next: AtomicU64,
    /// The focused job of each lane and its cancel flag (latest-wins per lane).
    focused: Mutex<HashMap<&'static str, (JobId, Arc<AtomicBool>)>>,
    cancels: CancelFlags,
    paused: PauseFlag,
}

impl JobManager {
    /// Starts the worker; the engine loads there (its result arrives as an event).
    pub fn spawn(model: PathBuf, placement: Placement) -> Result<(JobManager, UnboundedReceiver<JobEvent>)> {
        Self::spawn_with_adapter(model, None, placement)
    }

    /// `spawn`, with a LoRA adapter attached (unmerged) to the engine's model.
    pub fn spawn_with_adapter(
        model: PathBuf,
        adapter: Option<PathBuf>,
        placement: Placement,
    ) -> Result<(JobManager, UnboundedReceiver<JobEvent>)> {
        let (etx, erx) = unbounded_channel();
        let jobs = Self::start(model, adapter, placement, Box::new(move |ev| etx.send(ev).is_ok()))?;
        Ok((jobs, erx))
    }

    /// Starts the worker, its events going to `events` (the TUI sends them
    /// straight into its own message channel: no thread copies them over).
    pub fn start(model: PathBuf, adapter: Option<PathBuf>, placement: Placement, events: EventSink) -> Result<JobManager> {
        let (tx, rx) = mpsc::channel::<Queued>();
        let cancels: CancelFlags = Arc::default();
        let worker_cancels = cancels.clone();
        let paused: PauseFlag = Arc::default();
        let worker_paused = paused.clone();
        let engine = std::thread::Builder::new()
            .name("flipscope-engine".into())
            .spawn(move || Worker::load(&model, adapter.as_deref(), placement, rx, events, worker_cancels, worker_paused).serve())
            .context("starting the engine thread")?;
        Ok(JobManager { tx: Some(tx), engine: Some(engine), next: AtomicU64::new(1), focused: Mutex::default(), cancels, paused })
    }

    fn submit_inner(&self, request: JobRequest, focused: bool) -> (JobId, Arc<AtomicBool>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.lock().unwrap().push((id, cancel.clone()));
        // A closed channel means the worker is gone; the caller sees no events.
        if let Some(tx) = &self.tx {
            let _ = tx.send(Queued { id, request, cancel: cancel.clone(), focused });
        }
        (id, cancel)
    }

    /// A background job: runs in turn, to completion unless cancelled by id.
    pub fn submit(&self, request: JobRequest) -> JobId {
        self.submit_inner(request, false).0
    }

    /// A job about the focused sample: cancels the previous focused job of
    /// its lane (a new saliency request does not stop a live answer) and runs
    /// ahead of background jobs.
    pub fn submit_focused(&self, request: JobRequest) -> JobId {
        let lane = request.lane();
        let (id, cancel) = self.submit_inner(request, true);
        if let Some((_, old)) = self.focused.lock().unwrap().insert(lane, (id, cancel)) {
            old.store(true, Ordering::Relaxed);
        }
        id
    }

    pub fn cancel(&self, id: JobId) {
        if let Some((_, c)) = self.cancels.lock().unwrap().iter().find(|(i, _)| *i == id) {
            c.store(true, Ordering::Relaxed);
        }
    }

    /// Holds background jobs at their next step boundary (between eval
    /// batches, training steps, saliency items); focused work is still served.
    pub fn pause_background(&self) {
        *self.paused.0.lock().unwrap() = true;
    }

    pub fn resume_background(&self) {
        *self.paused.0.lock().unwrap() = false;
        self.paused.1.notify_all();
    }

    /// Whether the engine thread is still running.
    pub fn busy(&self) -> bool {
        self.engine.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Cancels every job (a training run saves its checkpoint as it stops),
    /// closes the queue and waits up to `wait` for the engine thread to end.
    /// A process that exits while that thread is inside libtorch can crash
    /// in libtorch's exit-time teardown, and a save cut off there is lost.
    /// True when the thread ended.
    pub fn shutdown(&mut self, wait: std::time::Duration) -> bool {
        for (_, c) in self.cancels.lock().unwrap().iter() {
            c.store(true, Ordering::Relaxed);
        }
        self.resume_background();
        self.tx = None;
        let Some(handle) = self.engine.take() else { return true };
        let deadline = std::time::Instant::now() + wait;
        while !handle.is_finished() {
            if std::time::Instant::now() >= deadline {
                self.engine = Some(handle);
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = handle.join();
        true
    }
}

impl Drop for JobManager {
    fn drop(&mut self) {
        self.shutdown(std::time::Duration::from_secs(60));
    }
}
