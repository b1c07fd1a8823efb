//! Carries out the effects `update` returns: jobs go to the engine thread,
//! file work (runs, comparisons, saved answers, views) happens here and its
//! result comes back as a message.

use super::filter::{views_toml, SavedView};
use super::images::ImageCache;
use super::state::{Comparison, OpenRun};
use super::update::{Background, Effect, FinetuneForm, Msg, Purpose};
use crate::eval::{EvalConfig, EvalMode, PromptTemplate, Variant};
use crate::jobs::{JobEvent, JobManager, JobRequest};
use crate::runs::{list_runs, report, run_dir_in, store, Record, RunMeta};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Runtime {
    pub jobs: JobManager,
    pub images: ImageCache,
    model: PathBuf,
    /// The adapter the engine has attached, if any (recorded in rerun runs).
    adapter: Option<PathBuf>,
    device: String,
    dtype: String,
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
        device: String,
        dtype: String,
        data_spec: String,
        images: ImageCache,
    ) -> (Runtime, UnboundedReceiver<JobEvent>) {
        let (jobs, rx) = JobManager::spawn_with_adapter(model.clone(), adapter.clone(), device.clone(), dtype.clone());
        let views_file = crate::config::config_dir().join("views.toml");
        (
            Runtime {
                jobs,
                images,
                model,
                adapter,
                device,
                dtype,
                data_spec,
                runs_root: PathBuf::from("runs"),
                views_file,
                eval_mode: EvalMode::Score,
            },
            rx,
        )
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

    pub fn execute(&mut self, effect: Effect) -> Vec<Msg> {
        match effect {
            Effect::Submit { purpose, request, focused } => {
                let id = if focused { self.jobs.submit_focused(*request) } else { self.jobs.submit(*request) };
                vec![Msg::Submitted { purpose, id }]
            }
            Effect::Rerun { samples, variant, run } => match self.rerun(samples, &variant, &run, None, None) {
                Ok(msg) => vec![msg],
                Err(e) => vec![Msg::Notice(format!("rerun {run}: {e:#}"))],
            },
            Effect::EvalAdapter { samples, adapter, run, compare_with } => {
                match self.rerun(samples, "plain", &run, Some(adapter), compare_with) {
                    Ok(msg) => vec![msg],
                    Err(e) => vec![Msg::Notice(format!("eval {run}: {e:#}"))],
                }
            }
            Effect::Finetune(form) => {
                let (label, config) = self.finetune_config(&form);
                let out = config.out.clone();
                let id = self.jobs.submit(JobRequest::Train { config: Box::new(config) });
                vec![Msg::Submitted {
                    purpose: Purpose::Background(Background { train_out: Some(out), ..Background::labelled(label) }),
                    id,
                }]
            }
            Effect::BatchSaliency { samples, method, colormap, out } => {
                let method = match crate::engine::saliency::SaliencyMethod::parse(&method) {
                    Ok(m) => m,
                    Err(e) => return vec![Msg::Notice(format!("{e:#}"))],
                };
                let label = format!("saliency ×{} → {}", samples.len(), out.display());
                let id = self.jobs.submit(JobRequest::SaliencyBatch { samples, method, colormap, out });
                vec![Msg::Submitted { purpose: Purpose::Background(Background::labelled(label)), id }]
            }
            Effect::Cancel(id) => {
                self.jobs.cancel(id);
                vec![]
            }
            Effect::ListRuns => vec![Msg::RunsListed(list_runs(&self.runs_root))],
            Effect::OpenRun(dir) => match open_run(&dir) {
                Ok(run) => vec![Msg::RunOpened(Box::new(run))],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            },
            Effect::Compare { a, b } => match compare(&a, &b) {
                Ok(c) => vec![Msg::Compared(c)],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            },
            Effect::SaveLive { dir, record } => match save_live(&dir, &record) {
                Ok(path) => vec![Msg::Notice(format!("saved the answer to {}", path.display()))],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            },
            Effect::SaveViews(views) => match save_views(&self.views_file, &views) {
                Ok(()) => vec![],
                Err(e) => vec![Msg::Notice(format!("{e:#}"))],
            },
            Effect::CycleProtocol => {
                self.images.cycle_protocol();
                vec![Msg::ProtocolChanged(self.images.protocol_name())]
            }
        }
    }

    /// A LoRA finetune of the workbench's model as the form says, into `runs/finetunes/ft-<time>`.
    fn finetune_config(&self, form: &FinetuneForm) -> (String, crate::train::TrainConfig) {
        let data = if form.data == "current" { self.data_spec.clone() } else { form.data.clone() };
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let out = self.runs_root.join("finetunes").join(format!("ft-{stamp}"));
        let config = crate::train::TrainConfig {
            model: self.model.clone(),
            data,
            out,
            lora: crate::engine::lora::LoraConfig::parse(&form.lora).ok(),
            max_steps: Some(form.steps),
            lr: form.lr,
            batch: form.batch,
            flip_augment: form.flip,
            replay: form.replay,
            device: self.device.clone(),
            dtype: self.dtype.clone(),
            ..Default::default()
        };
        (format!("train {} steps", form.steps), config)
    }

    fn rerun(
        &mut self,
        samples: Vec<crate::data::Sample>,
        variant: &str,
        run: &str,
        adapter: Option<PathBuf>,
        compare_with: Option<PathBuf>,
    ) -> Result<Msg> {
        let config = EvalConfig {
            prompt: PromptTemplate::default_prompt(),
            mode: self.eval_mode.clone(),
            variant: Variant::parse(variant)?,
            circular: false,
            batch: 1,
        };
        let mut meta = RunMeta::for_eval(run, &self.model, &self.data_spec, &config.prompt, &config.mode, variant, false, &self.device)?;
        meta.adapter = adapter.as_ref().or(self.adapter.as_ref()).map(|a| a.display().to_string());
        let dir = run_dir_in(&self.runs_root, run);
        let label = format!("eval {run} ×{}", samples.len());
        let id = self.jobs.submit(JobRequest::Eval { samples, config, dir: dir.clone(), meta: Box::new(meta), adapter });
        Ok(Msg::Submitted {
            purpose: Purpose::Background(Background { run_dir: Some(dir), compare_with, ..Background::labelled(label) }),
            id,
        })
    }
}

/// A run directory's metadata and records (an empty run when it does not exist yet).
pub fn open_run(dir: &Path) -> Result<OpenRun> {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| dir.display().to_string());
    let meta_path = dir.join("run.json");
    let meta: Option<RunMeta> = match std::fs::read_to_string(&meta_path) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| format!("{}: not a run.json", meta_path.display()))?),
        Err(_) => None,
    };
    let records_path = dir.join("records.jsonl");
    let records = if records_path.exists() { store::read_records(&records_path)? } else { vec![] };
    Ok(OpenRun::new(meta.as_ref().map(|m| m.name.clone()).unwrap_or(name), dir.to_path_buf(), meta, records))
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

fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let ra = store::read_records(&a.join("records.jsonl"))?;
    let rb = store::read_records(&b.join("records.jsonl"))?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    Ok(Comparison { a: name(a), b: name(b), rows: report::paired(&ra, &rb, 0) })
}

fn save_live(dir: &Path, record: &Record) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("live.jsonl");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(record)?).with_context(|| format!("writing {}", path.display()))?;
    f.sync_data()?;
    Ok(path)
}

fn save_views(path: &Path, views: &[SavedView]) -> Result<()> {
    crate::fsutil::atomic_write(path, views_toml(views).as_bytes())
}
