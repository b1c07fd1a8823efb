//! The flags every model-using command shares: checkpoint, device, dtype.

use crate::engine::Engine;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Checkpoint directory (Hugging Face layout), or `demo` for the embedded demo model.
    #[arg(long, value_parser = crate::config::model_path)]
    pub model: PathBuf,
    #[command(flatten)]
    pub placement: crate::engine::Placement,
    /// A LoRA adapter folder (PEFT layout) to attach, unmerged.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
}

impl EngineArgs {
    /// How the checkpoint says it answers (`flipscope.json`; letters without one).
    pub fn answers_with(&self) -> Result<crate::config::AnswersWith> {
        crate::config::declared_answers(&self.model)
    }

    pub fn load(&self) -> Result<Engine> {
        let mut engine = Engine::load_with(&self.model, self.placement).with_context(|| format!("loading {}", self.model.display()))?;
        if let Some(dir) = &self.adapter {
            engine.attach_adapter(dir)?;
        }
        Ok(engine)
    }
}
