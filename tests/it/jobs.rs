//! The job manager on the tiny checkpoint: streaming asks, latest-wins,
//! cancel, saliency, eval reruns, and failures.

use crate::common::parity::*;
use flipscope::data::{BoundingBox, ImageSource, Sample};
use flipscope::engine::saliency::SaliencyMethod;
use flipscope::engine::Placement;
use flipscope::eval::{EvalConfig, EvalMode, PromptTemplate, Variant};
use flipscope::jobs::{EvalRun, JobEvent, JobId, JobManager, JobRequest, SaliencyGoal};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn sample(id: &str) -> Sample {
    let mut s = Sample::new(id, "test");
    s.images = vec![ImageSource::Path(case_dir("v5_sharded_two_images").join("images/small.png"))];
    s.question = "Where is the red cube relative to the blue ball?".into();
    s.category = "relation".into();
    s.set_options(["left", "right"]).unwrap();
    s.set_gold_letter('A');
    s.boxes = vec![BoundingBox::new(10.0, 10.0, 60.0, 50.0)];
    s.reference = Some("the blue ball".into());
    s
}

fn config(max_new_tokens: usize) -> EvalConfig {
    let mode = if max_new_tokens == 0 { EvalMode::Score } else { EvalMode::Generate { max_new_tokens } };
    EvalConfig { prompt: PromptTemplate::default_prompt(), mode, variant: Variant::Plain, circular: false, batch: 1 }
}

fn ask(max_new_tokens: usize) -> JobRequest {
    JobRequest::Ask { sample: Box::new(sample("s1")), config: config(max_new_tokens), question: None }
}

/// How long a test waits for the engine's next event: a silent worker fails
/// the test instead of hanging the suite.
const PATIENCE: Duration = Duration::from_secs(180);

/// The next event, within `PATIENCE`.
fn next_event(rx: &mut UnboundedReceiver<JobEvent>) -> JobEvent {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match rx.try_recv() {
            Ok(ev) => return ev,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => panic!("the engine thread ended"),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) if std::time::Instant::now() > deadline => {
                panic!("no event from the engine in {PATIENCE:?}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Events until job `id` ends (Finished, Cancelled or Failed).
fn until_end(rx: &mut UnboundedReceiver<JobEvent>, id: JobId) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    loop {
        let ev = next_event(rx);
        let end = ev.id() == Some(id) && ev.is_end();
        seen.push(ev);
        if end {
            return seen;
        }
    }
}

fn manager() -> (JobManager, UnboundedReceiver<JobEvent>) {
    let model = case_dir("flat_tied_odd").join("model");
    JobManager::spawn(model, Placement::cpu()).unwrap()
}

#[test]
fn ask_streams_scores_tokens_and_a_record() {
    let (jobs, mut rx) = manager();
    let id = jobs.submit(ask(6));
    let events = until_end(&mut rx, id);
    assert!(matches!(events[0], JobEvent::EngineLoaded { layers, .. } if layers > 0), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, JobEvent::Scores { scores, .. } if scores.labels == ["A", "B"])));
    let streamed: String =
        events.iter().filter_map(|e| if let JobEvent::Token { delta, .. } = e { Some(delta.as_str()) } else { None }).collect();
    let record = events.iter().find_map(|e| if let JobEvent::Answered { record, .. } = e { Some(record.clone()) } else { None }).unwrap();
    // Streaming holds back a torn UTF-8 tail; the record has the whole text.
    assert!(!streamed.is_empty() && record.raw_output.starts_with(&streamed), "{streamed:?} vs {:?}", record.raw_output);
    assert_eq!(record.id, "s1");
    assert_eq!(record.option_logprobs.len(), 2);
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
}

#[test]
fn focused_jobs_are_latest_wins_and_cancel_works() {
    let (jobs, mut rx) = manager();
    let a = jobs.submit_focused(ask(400));
    let b = jobs.submit_focused(ask(3));
    let mut events = until_end(&mut rx, a);
    assert!(matches!(events.last(), Some(JobEvent::Cancelled { .. })), "the older focused job is cancelled: {events:?}");
    events = until_end(&mut rx, b);
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
    let c = jobs.submit(ask(400));
    // Cancel once it has started streaming.
    loop {
        match next_event(&mut rx) {
            JobEvent::Token { id, .. } if id == c => break,
            JobEvent::Finished { id } if id == c => panic!("finished before it could be cancelled"),
            _ => {}
        }
    }
    jobs.cancel(c);
    let events = until_end(&mut rx, c);
    assert!(matches!(events.last(), Some(JobEvent::Cancelled { .. })), "{events:?}");
}

type Explained = (String, Vec<flipscope::viz::SaliencyMap>, Option<(Vec<flipscope::viz::SaliencyMap>, flipscope::data::BoundingBox)>);

/// Sample `s1`'s saliency for `goal`, compared with its boxed image: what it explains and the maps.
fn explained(jobs: &JobManager, rx: &mut UnboundedReceiver<JobEvent>, goal: SaliencyGoal) -> Explained {
    let req = JobRequest::SampleSaliency { sample: Box::new(sample("s1")), goal, method: SaliencyMethod::Grad, compare_boxed: true };
    let id = jobs.submit_focused(req);
    let events = until_end(rx, id);
    events
        .iter()
        .find_map(|e| {
            if let JobEvent::Saliency { target, plain, boxed, .. } = e {
                Some((target.clone(), plain.clone(), boxed.clone()))
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("no saliency event: {events:?}"))
}

#[test]
fn saliency_with_boxed_comparison_and_failures() {
    let (jobs, mut rx) = manager();
    let (target, plain, boxed) = explained(&jobs, &mut rx, SaliencyGoal::Gold);
    assert_eq!(target, "A", "the gold option");
    assert_eq!((plain[0].width, plain[0].height), (150, 100), "map in original coordinates");
    let (boxed_maps, b) = boxed.expect("the boxed comparison");
    assert_ne!(boxed_maps[0].values, plain[0].values, "the red box changes the gradient");
    assert!((0.0..=1.0).contains(&boxed_maps[0].mass_inside(&b)));

    // A sample whose image is missing fails with the path, and the worker goes on.
    let mut bad = sample("bad");
    bad.images = vec![ImageSource::Path("/no/such/image.png".into())];
    let id = jobs.submit(JobRequest::Attention { sample: Box::new(bad), layer: 0 });
    let events = until_end(&mut rx, id);
    assert!(matches!(events.last(), Some(JobEvent::Failed { error, .. }) if error.contains("/no/such/image.png")), "{events:?}");
    let id = jobs.submit(JobRequest::Attention { sample: Box::new(sample("s1")), layer: 1 });
    let events = until_end(&mut rx, id);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, JobEvent::Attention { layer: 1, maps, image_share, .. } if maps.len() == 1 && *image_share > 0.0)),
        "{events:?}"
    );

    // No model: the engine failure is an event, and jobs fail with a reason.
    let (jobs, mut rx) = JobManager::spawn("/no/such/model".into(), Placement::cpu()).unwrap();
    let id = jobs.submit(ask(2));
    let events = until_end(&mut rx, id);
    assert!(matches!(&events[0], JobEvent::EngineFailed { error } if error.contains("/no/such/model")), "{events:?}");
    assert!(matches!(events.last(), Some(JobEvent::Failed { error, .. }) if error == "no model is loaded"));
}

#[test]
fn eval_job_reports_progress_serves_focused_work_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<Sample> = (0..4).map(|i| sample(&format!("s{i}"))).collect();
    let cfg = config(0);
    let run = dir.path().join("rerun");
    let plan = EvalRun { dir: run.clone(), name: "rerun".into(), data_spec: "test".into(), variant: "plain".into() };
    let (jobs, mut rx) = manager();
    // Paused, the eval holds after its first batch: the focused ask sent then
    // must be served there, before the eval's next batch.
    jobs.pause_background();
    let eval = jobs.submit(JobRequest::Eval { samples: samples.clone(), config: cfg.clone(), run: plan.clone(), adapter: None });
    loop {
        if let JobEvent::Progress { id, done: 1.., .. } = next_event(&mut rx) {
            assert_eq!(id, eval);
            break;
        }
    }
    let focused = jobs.submit_focused(ask(0));
    let served = until_end(&mut rx, focused);
    assert!(!served.iter().any(|e| matches!(e, JobEvent::Progress { id, .. } if *id == eval)), "the eval holds while paused: {served:?}");
    jobs.resume_background();
    let events: Vec<JobEvent> = served.into_iter().chain(until_end(&mut rx, eval)).collect();
    let pos = |want: &dyn Fn(&JobEvent) -> bool| events.iter().position(want);
    let answered = pos(&|e| matches!(e, JobEvent::Finished { id } if *id == focused));
    let last_progress = pos(&|e| matches!(e, JobEvent::Progress { done: 4, total: 4, .. }));
    assert!(answered.is_some() && answered < last_progress, "focused work runs between eval batches: {events:?}");
    assert!(events.iter().any(|e| matches!(e, JobEvent::Log { line, .. } if line.contains("accuracy"))), "{events:?}");
    let records = flipscope::runs::store::read_records(&run.join("records.jsonl")).unwrap().records;
    assert_eq!(records.len(), 4);
    let meta = flipscope::runs::RunDir::new(&run).read_meta().unwrap().expect("the worker wrote run.json");
    assert_eq!((meta.device.as_str(), meta.adapter.as_deref()), ("cpu", None), "run.json names the device used, not `auto`");
    // Resuming the same run asks nothing again.
    let again = jobs.submit(JobRequest::Eval { samples, config: cfg, run: plan, adapter: None });
    let events = until_end(&mut rx, again);
    assert!(events.iter().any(|e| matches!(e, JobEvent::Log { line, .. } if line.contains("0 to ask, 4 already done"))), "{events:?}");
}

#[test]
fn saliency_batch_writes_pngs_and_survives_a_bad_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = sample("broken");
    bad.images = vec![ImageSource::Path("/no/such.png".into())];
    let (jobs, mut rx) = manager();
    let id = jobs.submit(JobRequest::SaliencyBatch {
        samples: vec![sample("s1"), bad, sample("s2")],
        method: SaliencyMethod::Grad,
        colormap: flipscope::viz::Colormap::Inferno,
        out: dir.path().to_path_buf(),
    });
    let events = until_end(&mut rx, id);
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
    let logs: Vec<String> =
        events.iter().filter_map(|e| if let JobEvent::Log { line, .. } = e { Some(line.clone()) } else { None }).collect();
    assert!(logs[0].starts_with("s1: explains") && logs[0].contains("in the box"), "{logs:?}");
    assert!(logs[1].starts_with("broken:") && logs[1].contains("/no/such.png"), "{logs:?}");
    assert!(dir.path().join("s1.png").is_file() && dir.path().join("s2.png").is_file());
}

#[test]
fn finetune_job_streams_steps_cancels_with_a_checkpoint_and_its_adapter_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let model = case_dir("flat_tied_odd").join("model");
    let out = dir.path().join("ft");
    let train_cfg = flipscope::train::TrainConfig {
        model: model.clone(),
        data: "synth:12#seed=2".into(),
        out: out.clone(),
        lora: Some(flipscope::engine::lora::LoraConfig::parse("r=2,alpha=4").unwrap()),
        batch: 2,
        max_steps: Some(3),
        placement: Placement::cpu(),
        ..Default::default()
    };
    let (jobs, mut rx) = manager();
    let id = jobs.submit(JobRequest::Train { config: Box::new(train_cfg.clone()) });
    let events = until_end(&mut rx, id);
    let steps: Vec<usize> =
        events.iter().filter_map(|e| if let JobEvent::TrainStep { metrics, .. } = e { Some(metrics.step) } else { None }).collect();
    assert_eq!(steps, vec![1, 2, 3], "{events:?}");
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
    assert!(out.join("adapter_model.safetensors").exists());

    // Cancelled after its first step: the job ends Cancelled and a checkpoint is there to resume.
    let out2 = dir.path().join("ft2");
    let id = jobs.submit(JobRequest::Train {
        config: Box::new(flipscope::train::TrainConfig { out: out2.clone(), max_steps: Some(50), ..train_cfg }),
    });
    loop {
        if let JobEvent::TrainStep { id: got, .. } = next_event(&mut rx) {
            assert_eq!(got, id);
            jobs.cancel(id);
            break;
        }
    }
    let events = until_end(&mut rx, id);
    assert!(matches!(events.last(), Some(JobEvent::Cancelled { .. })), "{events:?}");
    let state = flipscope::train::checkpoint::TrainerState::read(&out2).unwrap().expect("a checkpoint on cancel");
    assert!(state.step >= 1 && state.step < 50);

    // The adapter evaluates on a second copy of the model, and the run says so.
    let samples: Vec<Sample> = (0..2).map(|i| sample(&format!("a{i}"))).collect();
    let cfg = config(0);
    let run = dir.path().join("ft-eval");
    let plan = EvalRun { dir: run.clone(), name: "ft-eval".into(), data_spec: "test".into(), variant: "plain".into() };
    let id = jobs.submit(JobRequest::Eval { samples, config: cfg, run: plan, adapter: Some(out.clone()) });
    let events = until_end(&mut rx, id);
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, JobEvent::Log { line, .. } if line.contains("with adapter"))), "{events:?}");
    assert_eq!(flipscope::runs::store::read_records(&run.join("records.jsonl")).unwrap().records.len(), 2);
    let meta = flipscope::runs::RunDir::new(&run).read_meta().unwrap().unwrap();
    assert_eq!(meta.adapter, Some(out.display().to_string()), "the run names the adapter it evaluated");

    // The workbench's own engine can carry the adapter (`flipscope --adapter DIR`).
    let (adapted, mut rx) = JobManager::spawn_with_adapter(model, Some(out.clone()), Placement::cpu()).unwrap();
    let id = adapted.submit(ask(0));
    let events = until_end(&mut rx, id);
    assert!(matches!(&events[0], JobEvent::EngineLoaded { model, .. } if model.contains("adapter")), "{events:?}");
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
}

/// Quitting the workbench mid-finetune: shutdown cancels every job, the
/// run saves a whole checkpoint, and the engine thread has ended before
/// the process does (exiting inside libtorch can crash its teardown).
#[test]
fn shutdown_cancels_everything_and_waits_for_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft");
    let train_cfg = flipscope::train::TrainConfig {
        model: case_dir("flat_tied_odd").join("model"),
        data: "synth:12#seed=2".into(),
        out: out.clone(),
        lora: Some(flipscope::engine::lora::LoraConfig::parse("r=2,alpha=4").unwrap()),
        batch: 2,
        max_steps: Some(500),
        placement: Placement::cpu(),
        ..Default::default()
    };
    let (mut jobs, mut rx) = manager();
    let train = jobs.submit(JobRequest::Train { config: Box::new(train_cfg) });
    let queued = jobs.submit(ask(4));
    loop {
        if let JobEvent::TrainStep { id, .. } = next_event(&mut rx) {
            assert_eq!(id, train);
            break;
        }
    }
    assert!(jobs.busy());
    assert!(jobs.shutdown(Duration::from_secs(120)), "the engine thread ended");
    assert!(!jobs.busy());
    let mut ended = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if ev.is_end() {
            ended.push(ev);
        }
    }
    assert!(ended.iter().any(|e| matches!(e, JobEvent::Cancelled { id } if *id == train)), "{ended:?}");
    assert!(ended.iter().any(|e| matches!(e, JobEvent::Cancelled { id } if *id == queued)), "{ended:?}");
    let (_, state) = flipscope::train::checkpoint::latest(&out).unwrap().expect("a checkpoint on quit");
    assert!(state.step >= 1 && state.step < 500);
    // Nothing more is accepted.
    let late = jobs.submit(ask(0));
    assert!(rx.try_recv().is_err(), "job {late} was not run");
}

/// A checkpoint that declares it answers in words is explained by what it
/// says first, and the header names that token, not an option letter.
#[test]
fn predicted_saliency_of_a_words_model_explains_its_first_generated_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (jobs, mut rx) = JobManager::spawn(crate::common::words_model(tmp.path()), Placement::cpu()).unwrap();
    let (target, _, boxed) = explained(&jobs, &mut rx, SaliencyGoal::Predicted);
    assert!(target.starts_with('"') && target.contains("(generated; the first token of"), "{target}");
    assert!(boxed.is_some(), "the boxed image is explained for the same token");
}
