//! The libtorch engine: Qwen2.5-VL inference in Rust on tch, matching
//! transformers' `modeling_qwen2_5_vl.py`, on CUDA (bf16) or CPU (f32).
pub mod attention_map;
pub mod chat;
pub mod config;
pub mod device;
pub mod generate;
pub mod image_processor;
pub mod intervene;
pub mod layers;
pub mod lora;
pub mod memory;
pub mod model;
pub mod positions;
pub mod processor;
pub mod random_checkpoint;
pub mod saliency;
pub mod template_guard;
pub mod text;
pub mod tokenizer;
pub mod vision;
pub mod vision_layout;
pub mod weights;

use anyhow::Result;
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

pub use device::{DeviceSpec, DtypeSpec, Placement};
pub use generate::{Flow, GenerateOptions, Generation, OptionScores, Sampling, StopReason, TokenStep};
pub use image_processor::ResizePolicy;
pub use lora::{Adapter, LoraConfig};
pub use model::{LoadReport, Qwen25VL};
pub use processor::{ModelInputs, PreparedPrompt, Processor};
pub use text::Rows;

/// A loaded checkpoint: the model and what turns requests into its inputs.
pub struct Engine {
    pub dir: PathBuf,
    pub model: Qwen25VL,
    pub processor: Processor,
    pub load_report: LoadReport,
    /// The LoRA adapter attached (unmerged), if any.
    pub adapter: Option<Adapter>,
    /// How the checkpoint says it answers (its `flipscope.json`; letters without one).
    pub answers: crate::config::AnswersWith,
}

impl Engine {
    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<Engine> {
        let (model, load_report) = Qwen25VL::load(dir, device, kind)?;
        let processor = Processor::load(dir, &model.config)?;
        let answers = crate::config::declared_answers(dir)?;
        Ok(Engine { dir: dir.into(), model, processor, load_report, adapter: None, answers })
    }

    /// What the model says first, greedily, after `prompt`: the token, its
    /// text, and the whole short answer it starts (for the header that names it).
    pub fn first_answer_token(&self, prompt: &PreparedPrompt) -> Result<(i64, String, String)> {
        let opts = GenerateOptions { max_new_tokens: 16, ..Default::default() };
        let g = self.generate(&[prompt], &opts, &mut |_| Flow::Continue)?.remove(0);
        let id = *g.tokens.first().ok_or_else(|| anyhow::anyhow!("the model generated nothing to explain"))?;
        Ok((id, self.processor.tokenizer.decode(&[id], false)?, g.text.trim().to_string()))
    }

    /// Attaches the PEFT adapter in `dir` without merging it.
    pub fn attach_adapter(&mut self, dir: &Path) -> Result<()> {
        use anyhow::Context;
        if self.adapter.is_some() {
            anyhow::bail!("an adapter is already attached");
        }
        let config = lora::load(&mut self.model, dir).with_context(|| format!("loading adapter {}", dir.display()))?;
        self.adapter = Some(Adapter { dir: dir.into(), config });
        Ok(())
    }

    /// A short name: the checkpoint, plus the adapter when one is attached.
    pub fn label(&self) -> String {
        match &self.adapter {
            Some(a) => format!("{} + adapter {}", self.dir.display(), a.dir.display()),
            None => self.dir.display().to_string(),
        }
    }

    /// Loads on the device and dtype the user asked for (`auto` picks bf16 on CUDA, f32 on CPU).
    pub fn load_with(dir: &Path, placement: device::Placement) -> Result<Engine> {
        let (device, kind) = placement.resolve()?;
        Self::load(dir, device, kind)
    }
}

/// The first line of a libtorch panic's message (tch reports libtorch errors as panics).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
    format!("libtorch error: {}", msg.lines().next().unwrap_or("unknown"))
}
