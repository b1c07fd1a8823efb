//! The one eval session, called by the CLI, the job worker and training's
//! periodic eval alike: the request is checked against the device, the run
//! is opened (or resumed) under its run.json, every missing key is asked,
//! and the run is finished unless it was stopped.

use super::runner::{self, EvalConfig, EvalSummary};
use crate::data::Sample;
use crate::engine::{Engine, Flow};
use crate::runs::{Record, RunStore};
use anyhow::Result;
use std::path::Path;

/// Where a session writes, and what its run.json names beyond the config.
pub struct SessionTarget<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub data_spec: &'a str,
    /// The variant as the user named it (`plain`, `adaptvis:...`).
    pub variant: &'a str,
    /// The adapter run.json names: the engine's by default.
    pub adapter: Option<String>,
    /// run.json's model, when it is not the engine's folder (the weights a
    /// full finetune is training).
    pub model: Option<String>,
}

impl<'a> SessionTarget<'a> {
    /// A run of `engine` (and its adapter) in `dir`.
    pub fn new(engine: &Engine, dir: &'a Path, name: &'a str, data_spec: &'a str, variant: &'a str) -> SessionTarget<'a> {
        let adapter = engine.adapter.as_ref().map(|a| a.dir.display().to_string());
        SessionTarget { dir, name, data_spec, variant, adapter, model: None }
    }
}

/// What a session did, and the run's records afterwards.
pub struct Session {
    pub summary: EvalSummary,
    pub records: Vec<Record>,
    /// What the reader left out of the records already there, to show.
    pub notes: Vec<String>,
}

impl Session {
    /// (right, judged) over rotation-0 records, as `runs::stats::accuracy` counts them.
    pub fn accuracy(&self) -> (usize, usize) {
        crate::runs::stats::accuracy(&self.records).0
    }
}

/// Runs `samples` under `cfg` into `target`. `started(todo, already_done)`
/// is called once the run is open; `progress(done, total)` after each batch,
/// and returning `Flow::Stop` ends the session there (what is written stays).
pub fn run(
    engine: &Engine,
    samples: &[Sample],
    cfg: &EvalConfig,
    target: &SessionTarget,
    started: &mut dyn FnMut(usize, usize),
    progress: &mut dyn FnMut(usize, usize) -> Flow,
) -> Result<Session> {
    let mut meta = cfg.run_meta(target.name, &engine.dir, target.data_spec, target.variant, engine.model.device)?;
    meta.adapter = target.adapter.clone();
    if let Some(model) = &target.model {
        meta.model = model.clone();
    }
    // Before run.json is written: a request refused here leaves no run behind.
    runner::preflight(engine, samples, cfg)?;
    let mut store = RunStore::open(target.dir, meta)?;
    let notes = std::mem::take(&mut store.notes);
    let todo = runner::keys(samples, cfg).iter().filter(|k| !store.done.contains(&k.key)).count();
    started(todo, store.done.len());
    let summary = runner::run(engine, samples, &mut store, cfg, progress)?;
    if !summary.stopped {
        store.finish()?;
    }
    Ok(Session { summary, records: store.records()?, notes })
}
