//! Carries out the effects `update` returns: jobs go to the engine thread,
//! file work (runs, comparisons, saved answers, views) goes to the I/O lane,
//! a thread of its own, so the loop never waits on a disk. Everything comes
//! back as a message on one channel: the runtime's results and the engine's
//! events alike.

use super::filter::{views_toml, SavedView};
use super::images::ImageCache;
use super::state::{Comparison, OpenRun};
use super::update::{Background, Effect, Msg, Purpose};
use crate::engine::Placement;
use crate::eval::{EvalConfig, EvalMode, PromptTemplate, Variant};
use crate::jobs::{EvalRun, JobManager, JobRequest};
use crate::runs::report::GroupBy;
use crate::runs::report_model::{LoadedRun, Report};
use crate::runs::{run_dir_in, store, RunCatalog, RunDir};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// File work for the I/O lane; its messages go to the loop.
type IoWork = Box<dyn FnOnce() -> Vec<Msg> + Send>;

pub struct Runtime {
    pub jobs: JobManager,
    pub images: ImageCache,
    io: std::sync::mpsc::Sender<IoWork>,
    /// Run summaries, re-read only for the runs whose files changed.
    catalog: Arc<Mutex<RunCatalog>>,
    model: PathBuf,
    placement: Placement,
    data_spec: String,
    /// Where the `runs/` directory is.
    runs_root: PathBuf,
    views_file: PathBuf,
    /// How reruns read answers.
    eval_mode: EvalMode,
}

impl Runtime {
    pub fn start(
        model: PathBuf,
        adapter: Option<PathBuf>,
        placement: Placement,
        data_spec: String,
        mut images: ImageCache,
    ) -> anyhow::Result<(Runtime, UnboundedReceiver<Msg>)> {
        let (msgs, rx) = unbounded_channel::<Msg>();
        // The engine's events arrive as messages, on the one channel the loop reads.
        let forward = msgs.clone();
        let jobs = JobManager::start(model.clone(), adapter, placement, Box::new(move |ev| forward.send(Msg::Job(ev)).is_ok()))?;
        // The I/O lane: file work in order, one piece at a time.
        let (io, inbox) = std::sync::mpsc::channel::<IoWork>();
        let replies = msgs.clone();
        std::thread::Builder::new().name("flipscope-io".into()).spawn(move || {
            while let Ok(work) = inbox.recv() {
                for m in work() {
                    if replies.send(m).is_err() {
                        return;
                    }
                }
            }
        })?;
        let redraw = msgs;
        images.start_lane(move || {
            let _ = redraw.send(Msg::Redraw);
        });
        let views_file = crate::config::config_dir().join("views.toml");
        Ok((
            Runtime {
                jobs,
                images,
                io,
                catalog: Arc::default(),
                model,
                placement,
                data_spec,
                runs_root: PathBuf::from("runs"),
                views_file,
                eval_mode: EvalMode::Score,
            },
            rx,
        ))
    }

    /// Saved views are written here instead of the config directory (tests).
    pub fn set_views_file(&mut self, path: PathBuf) {
        self.views_file = path;
    }

    /// Reruns generate and extract instead of scoring option letters.
    pub fn set_eval_mode(&mut self, mode: EvalMode) {
        self.eval_mode = mode;
    }

    /// Runs live here instead of ./runs (tests).
    pub fn set_runs_root(&mut self, root: PathBuf) {
        self.runs_root = root;
    }

    /// Sends file work to the I/O lane; what it returns arrives as messages.
    fn on_io_lane(&self, work: impl FnOnce() -> Vec<Msg> + Send + 'static) -> Vec<Msg> {
        match self.io.send(Box::new(work)) {
            Ok(()) => vec![],
            Err(_) => vec![Msg::Notice("the I/O thread has stopped".into())],
        }
    }

    pub fn execute(&mut self, effect: Effect) -> Vec<Msg> {
        match effect {
            Effect::Submit { purpose, request, focused } => {
                let id = if focused { self.jobs.submit_focused(*request) } else { self.jobs.submit(*request) };
                vec![Msg::Submitted { purpose, id }]
            }
            Effect::Rerun { samples, variant, run } => vec![self.rerun(samples, variant, &run, None, None)],
            Effect::EvalAdapter { samples, adapter, run, compare_with } => {
                vec![self.rerun(samples, Variant::Plain, &run, Some(adapter), compare_with)]
            }
            Effect::Finetune(config) => {
                let (label, config) = self.finetune_config(*config);
                let out = config.out.clone();
                let id = self.jobs.submit(JobRequest::Train { config: Box::new(config) });
                vec![Msg::Submitted {
                    purpose: Purpose::Background(Background { train_out: Some(out), ..Background::labelled(label) }),
                    id,
                }]
            }
            Effect::BatchSaliency { samples, method, colormap, out } => {
                let label = format!("saliency ×{} → {}", samples.len(), out.display());
                let id = self.jobs.submit(JobRequest::SaliencyBatch { samples, method, colormap, out });
                vec![Msg::Submitted { purpose: Purpose::Background(Background::labelled(label)), id }]
            }
            Effect::CausalBatch { samples, form, window, run } => {
                let label = format!("causal ×{} → {}", samples.len(), run.join("causal").display());
                let data_spec = self.data_spec.clone();
                let id = self.jobs.submit(JobRequest::CausalBatch { samples, form, window, run, data_spec });
                vec![Msg::Submitted { purpose: Purpose::Background(Background::labelled(label)), id }]
            }
            Effect::Cancel(id) => {
                self.jobs.cancel(id);
                vec![]
            }
            Effect::ListRuns => {
                let (root, catalog) = (self.runs_root.clone(), self.catalog.clone());
                self.on_io_lane(move || vec![Msg::RunsListed(catalog.lock().unwrap().refresh(&root))])
            }
            Effect::OpenRun(dir) => self.on_io_lane(move || match open_run(&dir) {
                Ok(run) => vec![Msg::RunOpened(Box::new(run))],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            }),
            Effect::Compare { a, b } => self.on_io_lane(move || match compare(&a, &b) {
                Ok(c) => vec![Msg::Compared(c)],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            }),
            Effect::SaveLive { dir, record } => self.on_io_lane(move || match RunDir::new(dir).append_live(&record) {
                Ok(path) => vec![Msg::Notice(format!("saved the answer to {}", path.display()))],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            }),
            Effect::SaveViews(views) => {
                let path = self.views_file.clone();
                self.on_io_lane(move || match save_views(&path, &views) {
                    Ok(()) => vec![],
                    Err(e) => vec![Msg::Notice(format!("{e:#}"))],
                })
            }
            Effect::CycleProtocol => {
                self.images.cycle_protocol();
                vec![Msg::ProtocolChanged(self.images.protocol_name())]
            }
        }
    }

    /// The finetune line's settings on the workbench's model, device and
    /// dtype, into `runs/finetunes/ft-<date>-<hhmm>`; `--data current` is the
    /// open dataset (`current#split=train` its train split).
    fn finetune_config(&self, mut config: crate::train::TrainConfig) -> (String, crate::train::TrainConfig) {
        config.data = current_data(&config.data, &self.data_spec);
        let stamp = crate::fsutil::minute_stamp(std::time::SystemTime::now());
        config.out = crate::fsutil::unused_path(&self.runs_root.join("finetunes"), &format!("ft-{stamp}"));
        config.model = self.model.clone();
        config.placement = self.placement;
        let label = match config.max_steps {
            Some(n) => format!("train {n} steps"),
            None => format!("train {} epoch(s)", config.epochs),
        };
        (label, config)
    }

    fn rerun(
        &mut self,
        samples: Vec<crate::data::Sample>,
        variant: Variant,
        run: &str,
        adapter: Option<PathBuf>,
        compare_with: Option<PathBuf>,
    ) -> Msg {
        let spec = variant.spec();
        let config =
            EvalConfig { prompt: PromptTemplate::default_prompt(), mode: self.eval_mode.clone(), variant, circular: false, batch: 1 };
        let dir = run_dir_in(&self.runs_root, run);
        let label = format!("eval {run} ×{}", samples.len());
        let plan = EvalRun { dir: dir.clone(), name: run.to_string(), data_spec: self.data_spec.clone(), variant: spec };
        let id = self.jobs.submit(JobRequest::Eval { samples, config, run: plan, adapter });
        Msg::Submitted { purpose: Purpose::Background(Background { run_dir: Some(dir), compare_with, ..Background::labelled(label) }), id }
    }
}

/// A run directory's metadata and records (an empty run when it does not exist yet).
pub fn open_run(dir: &Path) -> Result<OpenRun> {
    let run = RunDir::new(dir);
    let meta = run.read_meta()?;
    let records = run.read_records()?.records;
    Ok(OpenRun::new(meta.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| run.dir_name()), dir.to_path_buf(), meta, records))
}

/// The run a TUI session starts on: `--run NAME`, else one named after the dataset.
pub fn initial_run(root: &Path, run: Option<&str>, dataset_name: &str) -> Result<OpenRun> {
    let name = run
        .map(str::to_string)
        .unwrap_or_else(|| dataset_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect());
    let mut r = open_run(&run_dir_in(root, &name))?;
    if r.meta.is_none() {
        r.name = name;
    }
    Ok(r)
}

/// The paired comparison `report --vs` makes, computed by the same report.
pub fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let load = |dir: &Path| -> Result<LoadedRun> {
        let run = RunDir::new(dir);
        let records = store::read_records(&run.records_path())?.records;
        Ok(LoadedRun { name: run.dir_name(), dir: run.path().to_path_buf(), meta: run.read_meta().ok().flatten(), records })
    };
    let (a, b) = (load(a)?, load(b)?);
    let report = Report::build(std::slice::from_ref(&a), Some(&b), GroupBy::Category, true, crate::runs::warnings::DEFAULT_MIN_LD_GAP)?;
    let c = report.comparison.expect("a comparison was asked for");
    Ok(Comparison { a: c.a, b: c.b, rows: c.paired, flip: c.flip_consistency.unwrap_or_default(), warnings: c.warnings })
}

fn save_views(path: &Path, views: &[SavedView]) -> Result<()> {
    crate::fsutil::atomic_write(path, views_toml(views).as_bytes())
}

/// `--data current` as the open dataset's spec; `current#k=v` adds options to it.
pub fn current_data(data: &str, open_spec: &str) -> String {
    match data.strip_prefix("current") {
        Some("") => open_spec.to_string(),
        Some(rest) if rest.starts_with('#') => {
            let joiner = if open_spec.contains('#') { "," } else { "#" };
            format!("{open_spec}{joiner}{}", &rest[1..])
        }
        _ => data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::current_data;

    #[test]
    fn current_names_the_open_data_and_takes_options() {
        assert_eq!(current_data("current", "synth:60#seed=7"), "synth:60#seed=7");
        assert_eq!(current_data("current#split=train", "synth:60#seed=7"), "synth:60#seed=7,split=train");
        assert_eq!(current_data("current#split=train", "data/x.jsonl"), "data/x.jsonl#split=train");
        assert_eq!(current_data("synth:20", "data/x.jsonl"), "synth:20");
    }
}
