//! The engine thread: loads the model, then runs jobs, focused ones first.
//! Long background jobs call `serve_focused` between their steps.

use super::manager::{CancelFlags, PauseFlag};
use super::request::{EvalRun, JobEvent, JobId, JobRequest, SaliencyGoal};
use crate::causal::batch::{self, BatchExperiment, BatchSpec};
use crate::causal::overview::overview;
use crate::causal::AnswerForm;
use crate::data::load_images;
use crate::data::Sample;
use crate::engine::saliency::{SaliencyMethod, SaliencyTarget};
use crate::engine::{Engine, Flow, ResizePolicy};
use crate::eval::session::{self, SessionTarget};
use crate::eval::{answer_labels, mcq_prompt};
use crate::eval::{runner, EvalConfig, Variant};
use crate::runs::causal_log::Binding;
use crate::train::{TrainConfig, TrainEvent};
use crate::viz::{heatmap, HeatmapStyle, SaliencyMap};
use anyhow::{Context, Result};
use image::DynamicImage;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

pub(super) struct Queued {
    pub id: JobId,
    pub request: JobRequest,
    pub cancel: Arc<AtomicBool>,
    pub focused: bool,
}

impl Queued {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Whether the job's work goes on: it stops once the job is cancelled.
    fn flow(&self) -> Flow {
        if self.cancelled() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

/// Where the engine thread's events go; false once nobody listens.
pub type EventSink = Box<dyn Fn(JobEvent) -> bool + Send>;

pub(super) struct Worker {
    engine: Option<Engine>,
    rx: mpsc::Receiver<Queued>,
    events: EventSink,
    cancels: CancelFlags,
    paused: PauseFlag,
    focused: RefCell<VecDeque<Queued>>,
    background: RefCell<VecDeque<Queued>>,
}

impl Worker {
    pub fn load(
        model: &Path,
        adapter: Option<&Path>,
        placement: crate::engine::Placement,
        rx: mpsc::Receiver<Queued>,
        events: EventSink,
        cancels: CancelFlags,
        paused: PauseFlag,
    ) -> Worker {
        let loaded = Engine::load_with(model, placement).and_then(|mut e| {
            if let Some(a) = adapter {
                e.attach_adapter(a)?;
            }
            Ok(e)
        });
        let engine = match loaded {
            Ok(e) => {
                // The first ask comes while the user looks at the screen: map the weights' pages meanwhile.
                e.model.prefault();
                let _ =
                    events(JobEvent::EngineLoaded { model: e.label(), seconds: e.load_report.seconds, layers: e.model.text.num_layers() });
                Some(e)
            }
            Err(e) => {
                let _ = events(JobEvent::EngineFailed { error: format!("{e:#}") });
                None
            }
        };
        Worker { engine, rx, events, cancels, paused, focused: RefCell::default(), background: RefCell::default() }
    }

    fn enqueue(&self, job: Queued) {
        if job.focused {
            self.focused.borrow_mut().push_back(job);
        } else {
            self.background.borrow_mut().push_back(job);
        }
    }

    /// Moves everything sent so far into the queues; false once the manager is gone.
    fn drain(&self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(job) => self.enqueue(job),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn next(&self) -> Option<Queued> {
        loop {
            let alive = self.drain();
            if let Some(j) = self.focused.borrow_mut().pop_front() {
                return Some(j);
            }
            if let Some(j) = self.background.borrow_mut().pop_front() {
                return Some(j);
            }
            if !alive {
                return None;
            }
            match self.rx.recv() {
                Ok(job) => self.enqueue(job),
                Err(_) => return None,
            }
        }
    }

    pub fn serve(self) {
        while let Some(job) = self.next() {
            if !self.execute(job) {
                break; // nobody listens any more
            }
        }
    }

    /// Runs the focused jobs waiting now (called between a background job's
    /// steps), and holds there while background work is paused.
    fn serve_focused(&self) {
        loop {
            self.drain();
            loop {
                let job = self.focused.borrow_mut().pop_front();
                let Some(job) = job else { break };
                self.execute(job);
            }
            let (lock, wake) = &*self.paused;
            let paused = lock.lock().unwrap();
            if !*paused {
                return;
            }
            // Wake now and then to serve focused work that arrives while paused.
            drop(wake.wait_timeout(paused, std::time::Duration::from_millis(20)).unwrap());
        }
    }

    /// Between a background job's steps: its progress, the focused work
    /// waiting meanwhile, and whether it goes on.
    fn step(&self, job: &Queued, done: usize, total: usize, start: Instant) -> Flow {
        self.send(JobEvent::Progress { id: job.id, done, total, elapsed_s: start.elapsed().as_secs_f64() });
        self.serve_focused();
        job.flow()
    }

    fn send(&self, event: JobEvent) -> bool {
        (self.events)(event)
    }

    /// Runs one job and reports how it ended; false when the receiver is gone.
    fn execute(&self, job: Queued) -> bool {
        let id = job.id;
        let event = if job.cancelled() {
            JobEvent::Cancelled { id }
        } else if let Some(engine) = &self.engine {
            self.send(JobEvent::Started { id, kind: job.request.kind() });
            // tch reports libtorch errors as panics; a failing job must not take the worker down.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(engine, &job)));
            match run {
                Ok(Ok(true)) => JobEvent::Finished { id },
                Ok(Ok(false)) => JobEvent::Cancelled { id },
                Ok(Err(e)) => JobEvent::Failed { id, error: format!("{e:#}") },
                Err(p) => JobEvent::Failed { id, error: crate::engine::panic_message(p.as_ref()) },
            }
        } else {
            JobEvent::Failed { id, error: "no model is loaded".into() }
        };
        self.cancels.lock().unwrap().retain(|(i, _)| *i != id);
        self.send(event)
    }

    /// Runs one job by its handler; Ok(false) when it stopped because it was cancelled.
    fn run(&self, engine: &Engine, job: &Queued) -> Result<bool> {
        match &job.request {
            JobRequest::Ask { sample, config, question } => self.ask(engine, job, sample, config, question.as_deref()),
            JobRequest::SampleSaliency { sample, goal, method, compare_boxed } => {
                self.sample_saliency(engine, job, sample, goal, method, *compare_boxed)
            }
            JobRequest::Attention { sample, layer } => self.attention(engine, job, sample, *layer),
            JobRequest::Eval { samples, config, run, adapter: None } => self.eval(engine, job, samples, config, run),
            JobRequest::Eval { samples, config, run, adapter: Some(adapter) } => {
                self.send(JobEvent::Log {
                    id: job.id,
                    line: format!("loading {} with adapter {}", engine.dir.display(), adapter.display()),
                });
                let mut adapted = Engine::load(&engine.dir, engine.model.device, engine.model.kind)?;
                adapted.attach_adapter(adapter)?;
                self.eval(&adapted, job, samples, config, run)
            }
            JobRequest::Train { config } => self.train(job, config),
            JobRequest::SaliencyBatch { samples, method, colormap, out } => {
                self.saliency_batch(engine, job, samples, method, *colormap, out)
            }
            JobRequest::Causal { sample, form, window } => self.causal(engine, job, sample, *form, *window),
            JobRequest::CausalBatch { samples, form, window, run, data_spec } => {
                self.causal_batch(engine, job, samples, *form, *window, run, data_spec)
            }
        }
    }

    /// One sample's causal overview, sent after each of its parts.
    fn causal(&self, engine: &Engine, job: &Queued, sample: &Sample, form: AnswerForm, window: usize) -> Result<bool> {
        overview(engine, sample, form, window, &ResizePolicy::Auto, &mut |o| {
            self.send(JobEvent::Causal { id: job.id, overview: Box::new(o.clone()) });
            job.flow()
        })?;
        Ok(!job.cancelled())
    }

    /// The standard causal experiments over `samples` into `run`'s causal
    /// rows, then what they say by outcome (`report`'s lines) in the log.
    #[allow(clippy::too_many_arguments)]
    fn causal_batch(
        &self,
        engine: &Engine,
        job: &Queued,
        samples: &[Sample],
        form: AnswerForm,
        window: usize,
        run: &Path,
        data_spec: &str,
    ) -> Result<bool> {
        let id = job.id;
        let start = Instant::now();
        let experiments = BatchExperiment::standard(window);
        let total = samples.len() * experiments.len();
        let bound = Binding::of(&engine.dir, engine.adapter.as_ref().map(|a| a.dir.as_path()), data_spec)?;
        for (k, experiment) in experiments.iter().enumerate() {
            let spec = BatchSpec { experiment, form, policy: &ResizePolicy::Auto };
            let written =
                batch::session(engine, samples, &spec, run, &bound, &mut |done, n, _| self.step(job, k * n + done, total, start))?;
            for note in &written.notes {
                self.send(JobEvent::Log { id, line: format!("warning: {note}") });
            }
            self.send(JobEvent::Log { id, line: written.to_string() });
            if job.cancelled() {
                return Ok(false);
            }
        }
        let records = crate::runs::RunDir::new(run).read_records()?.records;
        for line in crate::runs::causal_log::summary(run, &records, crate::runs::warnings::DEFAULT_MIN_LD_GAP)? {
            self.send(JobEvent::Log { id, line });
        }
        Ok(true)
    }

    /// Scores, a streamed answer, and the record an eval would have written.
    fn ask(&self, engine: &Engine, job: &Queued, sample: &Sample, config: &EvalConfig, question: Option<&str>) -> Result<bool> {
        let id = job.id;
        let sink = runner::LiveSink {
            asked: &mut |asked| {
                self.send(JobEvent::Asked { id, sample: Box::new(asked.clone()) });
            },
            scores: &mut |scores| {
                self.send(JobEvent::Scores { id, scores: scores.clone() });
            },
            token: &mut |delta| {
                self.send(JobEvent::Token { id, delta: delta.to_string() });
                job.flow()
            },
        };
        let record = runner::ask_live(engine, sample, config, question, sink)?;
        match record {
            Some(r) if !job.cancelled() => {
                self.send(JobEvent::Answered { id, record: Box::new(r) });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Saliency maps for one sample, and for it boxed when asked and it has a box.
    fn sample_saliency(
        &self,
        engine: &Engine,
        job: &Queued,
        sample: &Sample,
        goal: &SaliencyGoal,
        method: &SaliencyMethod,
        compare_boxed: bool,
    ) -> Result<bool> {
        let images = load_images(sample)?;
        let (target, token, plain) = sample_saliency(engine, sample, &images, goal, method)?;
        if job.cancelled() {
            return Ok(false);
        }
        let boxed = match sample.boxes.iter().find(|b| b.image == 0) {
            // The boxed image is explained for the same token as the plain one.
            Some(b) if compare_boxed => {
                let (boxed_sample, boxed_images, _) = Variant::Boxed.apply(sample, images)?;
                Some((saliency_of(engine, &boxed_sample, &boxed_images, token, method)?, b.clone()))
            }
            _ => None,
        };
        self.send(JobEvent::Saliency { id: job.id, sample_id: sample.id.clone(), target, plain, boxed });
        Ok(!job.cancelled())
    }

    /// The answer position's attention over the image tokens at one layer.
    fn attention(&self, engine: &Engine, job: &Queued, sample: &Sample, layer: usize) -> Result<bool> {
        let images = load_images(sample)?;
        let prompt = engine.processor.prepare(&images, &mcq_prompt(&sample.question, sample), &ResizePolicy::Auto)?;
        let mut maps = engine.attention_maps(&prompt, &[layer], None)?;
        let m = maps.pop().context("no attention captured")?;
        self.send(JobEvent::Attention {
            id: job.id,
            sample_id: sample.id.clone(),
            layer: m.layer,
            maps: m.maps,
            image_share: m.image_share,
        });
        Ok(true)
    }

    /// Heatmap PNGs for many samples; one that fails is logged and skipped.
    fn saliency_batch(
        &self,
        engine: &Engine,
        job: &Queued,
        samples: &[Sample],
        method: &SaliencyMethod,
        colormap: crate::viz::Colormap,
        out: &Path,
    ) -> Result<bool> {
        let id = job.id;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let start = Instant::now();
        let style = HeatmapStyle { colormap, ..Default::default() };
        for (i, s) in samples.iter().enumerate() {
            let line = match batch_item(engine, s, method, &style, out) {
                Ok(line) => line,
                Err(e) => format!("{}: {e:#}", s.id),
            };
            self.send(JobEvent::Log { id, line });
            if self.step(job, i + 1, samples.len(), start) == Flow::Stop {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn train(&self, job: &Queued, config: &TrainConfig) -> Result<bool> {
        let id = job.id;
        let start = Instant::now();
        let outcome = crate::train::train(config, &mut |event| {
            match event {
                TrainEvent::Log(line) => {
                    self.send(JobEvent::Log { id, line: line.clone() });
                }
                TrainEvent::Step(m) => {
                    self.send(JobEvent::Progress { id, done: m.step, total: m.total_steps, elapsed_s: start.elapsed().as_secs_f64() });
                    self.send(JobEvent::TrainStep { id, metrics: Box::new(m.clone()) });
                    self.serve_focused();
                }
                TrainEvent::Saved { step, dir } => {
                    self.send(JobEvent::Log { id, line: format!("checkpoint at step {step} in {}", dir.display()) });
                }
                TrainEvent::Eval { step, accuracy, run } => {
                    self.send(JobEvent::Log { id, line: format!("eval at step {step}: {:.1}% ({})", 100.0 * accuracy, run.display()) });
                }
            }
            job.flow()
        })?;
        self.send(JobEvent::Log {
            id,
            line: format!(
                "{} at step {}/{}, loss {}; adapter in {}",
                if outcome.stopped { "stopped" } else { "finished" },
                outcome.steps,
                outcome.total_steps,
                outcome.final_loss.map(|l| format!("{l:.4}")).unwrap_or("-".into()),
                config.out.display()
            ),
        });
        Ok(!outcome.stopped)
    }

    fn eval(&self, engine: &Engine, job: &Queued, samples: &[Sample], config: &EvalConfig, run: &EvalRun) -> Result<bool> {
        let id = job.id;
        let dir = run.dir.as_path();
        let target = SessionTarget::new(engine, dir, &run.name, &run.data_spec, &run.variant);
        let start = Instant::now();
        let started = &mut |todo: usize, done: usize| {
            self.send(JobEvent::Log { id, line: format!("{}: {todo} to ask, {done} already done", dir.display()) });
            self.send(JobEvent::Progress { id, done: 0, total: todo, elapsed_s: 0.0 });
        };
        let session = session::run(engine, samples, config, &target, started, &mut |done, total| self.step(job, done, total, start))?;
        for note in &session.notes {
            self.send(JobEvent::Log { id, line: format!("warning: {note}") });
        }
        let summary = &session.summary;
        let (right, n) = session.accuracy();
        self.send(JobEvent::Log {
            id,
            line: format!(
                "wrote {}, {} errors; accuracy {:.1}% ({right}/{n}){}",
                summary.written,
                summary.errors,
                100.0 * right as f64 / n.max(1) as f64,
                if summary.stopped { "; stopped early" } else { "" }
            ),
        });
        Ok(!summary.stopped)
    }
}

/// The goal's label and a saliency map per image, for the default prompt.
/// What `goal` explains for `sample` (its label, and the token), and the maps.
fn sample_saliency(
    engine: &Engine,
    sample: &Sample,
    images: &[DynamicImage],
    goal: &SaliencyGoal,
    method: &SaliencyMethod,
) -> Result<(String, i64, Vec<SaliencyMap>)> {
    let prompt = engine.processor.prepare(images, &mcq_prompt(&sample.question, sample), &ResizePolicy::Auto)?;
    // A model that answers in words is explained by what it says first.
    if *goal == SaliencyGoal::Predicted && engine.answers == crate::config::AnswersWith::Words {
        let (token, first, answer) = engine.first_answer_token(&prompt)?;
        let a = engine.saliency(images, &prompt, &ResizePolicy::Auto, &SaliencyTarget::Token(token), method)?;
        return Ok((format!("{first:?} (generated; the first token of {answer:?})"), token, a.maps));
    }
    let labels = answer_labels(sample)?;
    let label = match goal {
        SaliencyGoal::Label(l) => l.clone(),
        SaliencyGoal::Gold => sample
            .gold_letter
            .map(|l| l.to_string())
            .or_else(|| sample.gold_text.clone())
            .with_context(|| format!("sample {} has no gold answer", sample.id))?,
        SaliencyGoal::Predicted => engine.score_options(&[&prompt], std::slice::from_ref(&labels))?.remove(0).best_label().to_string(),
    };
    let token = engine.option_token_ids(std::slice::from_ref(&label))?[0];
    let a = engine.saliency(images, &prompt, &ResizePolicy::Auto, &SaliencyTarget::Token(token), method)?;
    Ok((label, token, a.maps))
}

/// The maps for one token's logit at the answer position.
fn saliency_of(engine: &Engine, sample: &Sample, images: &[DynamicImage], token: i64, method: &SaliencyMethod) -> Result<Vec<SaliencyMap>> {
    let prompt = engine.processor.prepare(images, &mcq_prompt(&sample.question, sample), &ResizePolicy::Auto)?;
    Ok(engine.saliency(images, &prompt, &ResizePolicy::Auto, &SaliencyTarget::Token(token), method)?.maps)
}

/// One sample of a saliency batch: the heatmap PNG and a log line.
fn batch_item(engine: &Engine, s: &Sample, method: &SaliencyMethod, style: &HeatmapStyle, out: &Path) -> Result<String> {
    let images = load_images(s)?;
    let (label, _, maps) = sample_saliency(engine, s, &images, &SaliencyGoal::Predicted, method)?;
    let (map, base) = (maps.first().context("no map")?, images.first().context("no image")?);
    let b = s.boxes.iter().find(|b| b.image == 0);
    let style = HeatmapStyle { boxes: b.cloned().into_iter().collect(), ..style.clone() };
    let path = out.join(format!("{}.png", s.id.replace(['/', '\\'], "_")));
    heatmap::render(map, &base.to_rgb8(), &style).save(&path).with_context(|| format!("writing {}", path.display()))?;
    let inside = b.map(|b| format!(", {:.0}% of the mass in the box", 100.0 * map.mass_inside(b))).unwrap_or_default();
    Ok(format!("{}: explains {label}{inside} -> {}", s.id, path.display()))
}
