//! Frame times, for `flipscope bench frames`: how long one key takes from
//! `update` to a drawn 160x48 frame, scrolling a large dataset, and again
//! while a background eval keeps the engine (and the CPU) busy. A frame
//! over 16 ms is one a user can see stutter.

use super::action::Action;
use super::draw::draw;
use super::images::ImageCache;
use super::keymap::{Keymap, DEFAULT};
use super::state::{App, EngineStatus, OpenRun};
use super::theme::{self, Theme};
use super::update::{update, Msg};
use crate::data::Dataset;
use crate::engine::Placement;
use crate::eval::{EvalConfig, EvalMode, PromptTemplate, Variant};
use crate::jobs::{EvalRun, JobEvent, JobManager, JobRequest};
use anyhow::{Context, Result};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// One scenario's frames, in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FrameStats {
    pub frames: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl FrameStats {
    pub fn of(mut ms: Vec<f64>) -> FrameStats {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        FrameStats { frames: ms.len(), p50_ms: at(0.5), p99_ms: at(0.99), max_ms: ms.last().copied().unwrap_or(0.0) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FrameTimes {
    pub samples: usize,
    pub scrolling: FrameStats,
    /// Scrolling while the engine thread runs an eval (None without a model).
    pub during_eval: Option<FrameStats>,
    /// Eval records written while `during_eval` was measured.
    pub eval_progress: usize,
}

/// The keys of one pass: down through the list, pages, then back up.
fn keys(frames: usize) -> impl Iterator<Item = &'static str> {
    (0..frames).map(|i| match i % 40 {
        0 => "pagedown",
        20 => "pageup",
        k if k < 30 => "down",
        _ => "up",
    })
}

/// Draws `frames` frames, each after one key (and whatever engine events
/// arrived), and times them.
fn run_frames(app: &mut App, images: &mut ImageCache, frames: usize, events: &mut dyn FnMut(&mut App)) -> Result<Vec<f64>> {
    let mut terminal = Terminal::new(TestBackend::new(160, 48))?;
    terminal.draw(|f| draw(f, app, images))?;
    let mut ms = Vec::with_capacity(frames);
    for key in keys(frames) {
        let start = Instant::now();
        events(app);
        // The effects of plain navigation are none on the Samples pane.
        let _ = update(app, Msg::Key(key.to_string()));
        terminal.draw(|f| draw(f, app, images))?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

/// Measures `frames` key presses over `dataset`; with `model`, again while
/// an eval of `eval_samples` runs on it in the background.
pub fn measure(dataset: Dataset, model: Option<&Path>, eval_samples: Vec<crate::data::Sample>, frames: usize) -> Result<FrameTimes> {
    let samples = dataset.samples.len();
    let keymap = Keymap::parse(DEFAULT, "keymaps/default.toml")?;
    let theme = Theme::parse(theme::DEFAULT, "themes/default.toml")?;
    let run = OpenRun::new("bench".into(), std::env::temp_dir().join("flipscope-bench-frames"), None, vec![]);
    let mut app = App::new(dataset, run, keymap, theme);
    app.engine = EngineStatus::Ready { seconds: 0.0, layers: 0 };
    let _ = update(&mut app, Msg::Action(Action::FocusSamples));
    let mut images = ImageCache::halfblocks();
    images.start_lane(|| {});
    let scrolling = FrameStats::of(run_frames(&mut app, &mut images, frames, &mut |_| {})?);
    let Some(model) = model else { return Ok(FrameTimes { samples, scrolling, during_eval: None, eval_progress: 0 }) };

    let (jobs, mut rx) = JobManager::spawn(model.to_path_buf(), Placement::cpu())?;
    // Wait for the engine, so the frames below overlap the eval, not the load.
    loop {
        match rx.blocking_recv().context("the engine thread stopped")? {
            JobEvent::EngineLoaded { .. } => break,
            JobEvent::EngineFailed { error } => anyhow::bail!("loading {}: {error}", model.display()),
            _ => {}
        }
    }
    let dir = tempfile_dir()?;
    let config =
        EvalConfig { prompt: PromptTemplate::default_prompt(), mode: EvalMode::Score, variant: Variant::Plain, circular: false, batch: 8 };
    let plan = EvalRun { dir: dir.clone(), name: "frames".into(), data_spec: "bench".into(), variant: "plain".into() };
    let id = jobs.submit(JobRequest::Eval { samples: eval_samples, config, run: plan, adapter: None });
    let mut progress = 0;
    let ms = run_frames(&mut app, &mut images, frames, &mut |app| {
        while let Ok(ev) = rx.try_recv() {
            if let JobEvent::Progress { done, .. } = &ev {
                progress = *done;
            }
            let _ = update(app, Msg::Job(ev));
        }
    })?;
    jobs.cancel(id);
    // Wait for the eval to stop: a process that exits while the engine
    // thread is inside libtorch crashes in libtorch's exit-time teardown.
    while let Some(ev) = rx.blocking_recv() {
        if ev.id() == Some(id) && ev.is_end() {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(FrameTimes { samples, scrolling, during_eval: Some(FrameStats::of(ms)), eval_progress: progress })
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("flipscope-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = FrameStats::of((1..=100).map(f64::from).collect());
        assert_eq!((s.frames, s.p50_ms, s.p99_ms, s.max_ms), (100, 51.0, 99.0, 100.0));
        assert_eq!(FrameStats::of(vec![]).frames, 0);
    }

    #[test]
    fn scrolling_frames_are_measured_and_move_the_cursor() {
        let ds = crate::data::load("synth:50#seed=1").unwrap();
        let t = measure(ds, None, vec![], 60).unwrap();
        assert_eq!((t.samples, t.scrolling.frames), (50, 60));
        assert!(t.scrolling.p50_ms > 0.0 && t.scrolling.p99_ms >= t.scrolling.p50_ms && t.during_eval.is_none());
    }
}
