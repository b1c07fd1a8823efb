//! `flipscope eval`: a resumable run of a model over a dataset.

use crate::data::{self, Sample, SampleFilter};

use super::engine_args::EngineArgs;
use crate::eval::session::{self, SessionTarget};
use crate::eval::{EvalConfig, ModeKind, PromptTemplate, Variant};
use crate::kv::numbers::at_least_one;
use crate::runs::run_dir;
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Dataset spec `[KIND:]PATH[#options]`.
    #[arg(long)]
    pub data: String,
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    /// Comma-separated conditions, all must hold: `category=NAME`, `category~TEXT`, `id=ID`, `gold=LETTER` or `gold=DIRECTION`, `dataset=NAME`.
    #[arg(long, value_parser = SampleFilter::parse)]
    pub filter: Option<SampleFilter>,
    /// plain | flipped | boxed | adaptvis[:T,W1,W2] | scaling:ALPHA
    #[arg(long, default_value = "plain", value_parser = Variant::parse)]
    pub variant: Variant,
    /// score (one forward, option log-probs) | generate (text, then extraction).
    /// Default: as the checkpoint answers (`flipscope.json`): generate for
    /// one that answers in words (the demo model), else score.
    #[arg(long, value_enum)]
    pub mode: Option<ModeKind>,
    #[arg(long, default_value_t = crate::eval::DEFAULT_MAX_NEW_TOKENS, value_parser = at_least_one)]
    pub max_new_tokens: usize,
    /// default | viewspatial | lmms | a template file with {question} and {choices}
    #[arg(long, default_value = "default", value_parser = PromptTemplate::parse)]
    pub prompt: PromptTemplate,
    /// Rotate the options; a question counts only if every rotation is right.
    #[arg(long, conflicts_with = "samples")]
    pub circular: bool,
    /// Draw N sampled answers per question (generate mode, one shared
    /// prefill); the report adds pass@k, maj@N, answer entropy and flip rate.
    #[arg(long, value_parser = crate::kv::numbers::sample_count)]
    pub samples: Option<usize>,
    /// Sampling temperature (with --samples).
    #[arg(long, default_value_t = 1.0, value_parser = crate::kv::numbers::positive, requires = "samples")]
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this much probability (with --samples).
    #[arg(long, default_value_t = 1.0, value_parser = crate::kv::numbers::fraction, requires = "samples")]
    pub top_p: f64,
    /// Seed of the samples: the same seed gives the same answers, whatever --batch.
    #[arg(long, default_value_t = 0, requires = "samples")]
    pub seed: u64,
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub batch: usize,
    /// Only every n-th sample starting at i (`i/n`), for splitting a sweep across jobs.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Run name under ./runs/ (or a path with a slash).
    #[arg(long)]
    pub run: String,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not i/n"))?;
    let (i, n): (usize, usize) =
        (i.parse().map_err(|_| format!("bad shard index in `{s}`"))?, n.parse().map_err(|_| format!("bad shard count in `{s}`"))?);
    if n == 0 || i >= n {
        return Err(format!("shard `{s}` needs 0 <= i < n"));
    }
    Ok((i, n))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.samples.is_some() && args.mode == Some(ModeKind::Score) {
        bail!("--mode score --samples: sampled answers are generated; drop --mode score (or --samples)");
    }
    let (prompt, variant) = (args.prompt.clone(), args.variant.clone());
    let mode = match args.samples {
        Some(n) => crate::eval::EvalMode::Sample(crate::eval::SampleSpec {
            n,
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        }),
        None => match args.mode {
            Some(kind) => kind,
            None => ModeKind::for_answers(args.engine.answers_with()?),
        }
        .with_max_new_tokens(args.max_new_tokens),
    };
    let ds = data::load(&args.data)?;
    for issue in ds.issues.iter().take(5) {
        eprintln!("skipped record: {issue}");
    }
    let mut samples: Vec<Sample> = ds.samples.clone();
    if let Some(split) = &args.split {
        samples.retain(|s| s.split.as_deref() == Some(split.as_str()));
    }
    if let Some(f) = &args.filter {
        samples = f.apply(samples);
    }
    if let Some((i, n)) = args.shard {
        samples = samples.into_iter().enumerate().filter(|(k, _)| k % n == i).map(|(_, s)| s).collect();
    }
    if let Some(l) = args.limit {
        samples.truncate(l);
    }
    if samples.is_empty() {
        bail!("no samples left to evaluate in {} after --split/--filter/--shard/--limit", args.data);
    }
    let variant_spec = variant.spec();
    let cfg = EvalConfig { prompt, mode, variant, circular: args.circular, batch: args.batch };
    let dir = run_dir(&args.run);
    let engine = args.engine.load()?;
    let target = SessionTarget::new(&engine, &dir, &args.run, &args.data, &variant_spec);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} samples  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let session = session::run(&engine, &samples, &cfg, &target, &mut |todo, _| bar.set_length(todo as u64), &mut |done, _| {
        bar.set_position(done as u64);
        crate::engine::Flow::Continue
    })?;
    bar.finish_and_clear();
    super::warn(&session.notes);
    let (summary, records) = (&session.summary, &session.records);
    let ((right, n), (circ, q)) = crate::runs::stats::accuracy(records);
    println!(
        "run {} ({}): {} keys, skipped {} already done, wrote {}, {} errors",
        args.run,
        dir.display(),
        summary.keys,
        summary.skipped,
        summary.written,
        summary.errors
    );
    println!("accuracy {:.2}% ({right}/{n})", 100.0 * right as f64 / n.max(1) as f64);
    if args.circular {
        println!("circular accuracy {:.2}% ({circ}/{q})", 100.0 * circ as f64 / q.max(1) as f64);
    }
    Ok(())
}
