//! `flipscope data stats | synth | flip`.

use crate::data::{self, stats};
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Counts by category, gold letter, gold direction; missing images.
    Stats {
        /// Dataset spec `[KIND:]PATH[#root=DIR,split=S,...]`.
        spec: String,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Write procedurally drawn scenes with known geometry.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 200)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Train a small byte-level BPE on a dataset's prompts (for models trained from scratch).
    Tokenizer {
        spec: String,
        /// The tokenizer.json whose pre-tokenizer, decoder and special tokens are kept.
        #[arg(long)]
        base: PathBuf,
        #[arg(long, default_value_t = 1024)]
        vocab: usize,
        /// Folder for the new tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Flip augmentation: mirror images, swap left/right in all labels.
    Flip {
        spec: String,
        #[arg(long)]
        out: PathBuf,
        /// Fraction of the originals kept beside the flipped copies.
        #[arg(long, default_value_t = 1.0)]
        replay: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub fn run(cmd: &DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Tokenizer { spec, base, vocab, out } => {
            let ds = data::load(spec)?;
            let template = crate::eval::PromptTemplate::default_prompt();
            // Prompts as the model sees them (flipped too, so both sides get tokens), plus the chat scaffolding words.
            let mut texts = Vec::new();
            for s in &ds.samples {
                let flipped = data::flip::flip_labels(s, &[]);
                for v in [s, &flipped] {
                    let target = crate::train::example::target_text(v).unwrap_or_default();
                    texts.push(format!(
                        "system\nYou are a helpful assistant.\nuser\n{}\nassistant\n{target}",
                        template.render(&v.question, v)
                    ));
                }
            }
            let n = crate::engine::tokenizer::train_bpe(base, &texts, *vocab, out)?;
            println!("tokenizer of {n} tokens written to {}", out.join("tokenizer.json").display());
        }
        DataCommand::Stats { spec, json } => {
            let ds = data::load(spec)?;
            let st = stats::compute(&ds);
            if *json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", stats::render(&st));
            }
        }
        DataCommand::Synth { out, n, seed } => {
            let written = data::synth::write(out, *n, &data::synth::SynthOptions::seeded(*seed))?;
            println!("wrote {written} scenes to {}", out.join("synth.jsonl").display());
        }
        DataCommand::Flip { spec, out, replay, seed } => {
            if !(0.0..=1.0).contains(replay) {
                bail!("--replay {replay}: must be between 0 and 1");
            }
            let ds = data::load(spec)?;
            let r = data::flip::write(&ds, out, *replay, *seed)?;
            println!("wrote {} flipped + {} original samples to {}", r.flipped, r.replayed, out.join("flipped.jsonl").display());
            if !r.errors.is_empty() {
                eprintln!("{} samples skipped:", r.errors.len());
                for e in r.errors.iter().take(5) {
                    eprintln!("  {e}");
                }
            }
        }
    }
    Ok(())
}
