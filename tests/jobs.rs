//! The job manager on the tiny checkpoint: streaming, latest-wins, cancel, failures.

mod common;

use common::parity::*;
use flipscope::engine::saliency::SaliencyMethod;
use flipscope::jobs::{JobEvent, JobId, JobManager, JobRequest};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn images() -> Vec<image::DynamicImage> {
    vec![image::open(case_dir("v5_sharded_two_images").join("images/small.png")).unwrap()]
}

fn live(max_new_tokens: usize) -> JobRequest {
    JobRequest::LiveAnswer {
        images: images(),
        text: "Where is the dog? A. left B. right".into(),
        labels: vec!["A".into(), "B".into()],
        intervention: Default::default(),
        max_new_tokens,
    }
}

/// Events until job `id` ends (Finished, Cancelled or Failed).
fn until_end(rx: &mut UnboundedReceiver<JobEvent>, id: JobId) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let Some(ev) = rx.blocking_recv() else { break };
        let end = ev.id() == Some(id) && matches!(ev, JobEvent::Finished { .. } | JobEvent::Cancelled { .. } | JobEvent::Failed { .. });
        seen.push(ev);
        if end {
            return seen;
        }
    }
    panic!("job {id} did not end: {seen:?}");
}

fn manager() -> (JobManager, UnboundedReceiver<JobEvent>) {
    let model = case_dir("flat_tied_odd").join("model");
    JobManager::spawn(model, "cpu".into(), "auto".into())
}

#[test]
fn live_answer_streams_scores_and_tokens() {
    let (jobs, mut rx) = manager();
    let id = jobs.submit(live(6));
    let events = until_end(&mut rx, id);
    assert!(matches!(events[0], JobEvent::EngineLoaded { .. }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, JobEvent::Scores { scores, .. } if scores.labels.len() == 2)));
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
}

#[test]
fn focused_jobs_are_latest_wins_and_cancel_works() {
    let (jobs, mut rx) = manager();
    let a = jobs.submit_focused(live(400));
    let b = jobs.submit_focused(live(3));
    let mut events = until_end(&mut rx, a);
    assert!(matches!(events.last(), Some(JobEvent::Cancelled { .. })), "the older focused job is cancelled: {events:?}");
    events = until_end(&mut rx, b);
    assert!(matches!(events.last(), Some(JobEvent::Finished { .. })), "{events:?}");
    let c = jobs.submit(live(400));
    // Cancel once it has started streaming.
    loop {
        match rx.blocking_recv().unwrap() {
            JobEvent::Token { id, .. } if id == c => break,
            JobEvent::Finished { id } if id == c => panic!("finished before it could be cancelled"),
            _ => {}
        }
    }
    jobs.cancel(c);
    let events = until_end(&mut rx, c);
    assert!(matches!(events.last(), Some(JobEvent::Cancelled { .. })), "{events:?}");
}

#[test]
fn saliency_job_and_failures() {
    let (jobs, mut rx) = manager();
    let req = JobRequest::Saliency {
        images: images(),
        text: "Where is the dog? A. left B. right".into(),
        labels: vec!["A".into(), "B".into()],
        target: None,
        method: SaliencyMethod::Grad,
    };
    let id = jobs.submit(req);
    let events = until_end(&mut rx, id);
    let maps = events
        .iter()
        .find_map(|e| if let JobEvent::Saliency { maps, .. } = e { Some(maps.clone()) } else { None })
        .expect("a saliency event");
    assert_eq!((maps[0].width, maps[0].height), (150, 100), "map in original coordinates");
    // A job that fails (no images for a saliency request) reports why and the worker goes on.
    let bad = jobs.submit(JobRequest::Saliency {
        images: vec![],
        text: "x".into(),
        labels: vec!["A".into()],
        target: Some("A".into()),
        method: SaliencyMethod::Grad,
    });
    let events = until_end(&mut rx, bad);
    assert!(matches!(events.last(), Some(JobEvent::Failed { error, .. }) if error.contains("at least one image")), "{events:?}");
    let ok = jobs.submit(live(2));
    assert!(matches!(until_end(&mut rx, ok).last(), Some(JobEvent::Finished { .. })));

    // No model: the engine failure is an event, and jobs fail with a reason.
    let (jobs, mut rx) = JobManager::spawn("/no/such/model".into(), "cpu".into(), "auto".into());
    let id = jobs.submit(live(2));
    let events = until_end(&mut rx, id);
    assert!(matches!(&events[0], JobEvent::EngineFailed { error } if error.contains("/no/such/model")), "{events:?}");
    assert!(matches!(events.last(), Some(JobEvent::Failed { error, .. }) if error == "no model is loaded"));
}
