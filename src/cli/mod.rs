//! Command-line interface (clap). Each subcommand lives in its own file.
pub mod bench;
pub mod causal_cmd;
pub mod data_cmd;
pub mod direction_cmd;
pub mod distill;
pub mod doctor;
pub mod engine_args;
pub mod eval;
pub mod extract_cmd;
pub mod infer;
pub mod model_cmd;
pub mod probe_cmd;
pub mod report;
pub mod runs_cmd;
pub mod saliency;
pub mod target;
pub mod train;

use crate::tui::TuiOptions;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "flipscope", version, about = "Why do VLMs fail at spatial reasoning? A terminal workbench.")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `flipscope [--model DIR] [--data SPEC]` opens the TUI.
    #[command(flatten)]
    pub tui: TuiOptions,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the workbench (the default).
    Tui(TuiOptions),
    /// Print libtorch, devices, dtypes and paths; check a model or dataset.
    Doctor(doctor::DoctorArgs),
    /// Ask the model about images: print the answer, option scores, or a parity dump.
    Infer(infer::InferArgs),
    /// Evaluate a model on a dataset into a resumable run under ./runs/.
    Eval(eval::EvalArgs),
    /// How an output is read: the answer, the rule and the span it read.
    Extract(extract_cmd::ExtractArgs),
    /// Accuracy with CIs, error kinds, confusion, letter bias; --vs for paired comparisons.
    Report(report::ReportArgs),
    /// List runs; merge shard runs.
    #[command(subcommand)]
    Runs(runs_cmd::RunsCommand),
    /// Saliency heatmap (|d logit / d pixel|) over the image(s).
    Saliency(saliency::SaliencyArgs),
    /// Attention of the answer position over the image tokens, per LM layer.
    Attention(saliency::AttentionArgs),
    /// Logit lens: each layer's residual stream read through the final norm
    /// and lm_head, at the answer position and at the image tokens.
    Lens(causal_cmd::LensArgs),
    /// Attention knockout: block edge groups (image->last, question->last,
    /// image->question, box->last) in a window of layers, for every window start.
    Knockout(causal_cmd::KnockoutArgs),
    /// Activation patching: the clean residual stream copied into the run of
    /// the mirrored image, per layer and group of positions.
    Patch(causal_cmd::PatchArgs),
    /// Region ablation: the reference's, the target's or the other image
    /// tokens replaced by a blurred (or mean) image's, and how the answer moves.
    Ablate(causal_cmd::AblateArgs),
    /// Logistic probes per layer for left/right, front/back, above/below, on
    /// the answer position's and the target object's residual stream.
    ProbeLinear(direction_cmd::ProbeLinearArgs),
    /// Add alpha times a probe's direction at a layer and count how the answers move.
    Steer(direction_cmd::SteerArgs),
    /// Ask again under a change: flip, boxed, adaptvis.
    #[command(subcommand)]
    Probe(probe_cmd::ProbeCommand),
    /// Checkpoint tools: random-weight checkpoints with real configs.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Benchmarks: flipscope and transformers side by side (bench/RESULTS.md).
    Bench(bench::BenchArgs),
    /// Finetune: LoRA or full weights, data mixes, flip augmentation with replay.
    Train(crate::train::TrainConfig),
    /// Chain-of-thought rationales from a teacher, kept where the answer is right, as a dataset.
    Distill(distill::DistillArgs),
    /// Dataset tools: stats, synth, flip.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
}

/// What a reader left out (duplicates, a torn line, bad lines), on stderr.
pub fn warn(notes: &[String]) {
    for n in notes {
        eprintln!("warning: {n}");
    }
}
