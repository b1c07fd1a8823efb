//! What the workbench is opened on, as `flipscope [tui]` takes it. The TUI
//! owns this type; the CLI only flattens it into its parser.

use crate::engine::{DeviceSpec, DtypeSpec};
use crate::eval::{EvalMode, ModeKind, DEFAULT_MAX_NEW_TOKENS};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct TuiOptions {
    /// Checkpoint directory (Hugging Face layout).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Dataset spec `[KIND:]PATH[#options]`; default: the embedded demo scenes.
    #[arg(long)]
    pub data: Option<String>,
    /// Run name under ./runs/.
    #[arg(long)]
    pub run: Option<String>,
    /// Theme: default, light, high-contrast, or ~/.config/flipscope/themes/NAME.toml.
    #[arg(long)]
    pub theme: Option<String>,
    /// cpu | cuda | cuda:N | auto
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// auto (bf16 on CUDA, f32 on CPU) | f32 | bf16 | f16
    #[arg(long, value_enum, default_value_t)]
    pub dtype: DtypeSpec,
    /// A LoRA adapter folder (PEFT layout) to attach to the model, unmerged.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// How reruns read answers: score (option letters, one forward) or
    /// generate (text, then extraction). Default: score, or generate for the
    /// demo model, which answers in words.
    #[arg(long, value_enum)]
    pub eval_mode: Option<ModeKind>,
}

impl TuiOptions {
    /// How the TUI's reruns read answers: as asked, else by scoring option
    /// letters, except for the demo model, which was trained to answer in words.
    pub fn rerun_mode(&self) -> EvalMode {
        let kind = match (self.eval_mode, &self.model) {
            (Some(kind), _) => kind,
            (None, None) => ModeKind::Generate,
            (None, Some(_)) => ModeKind::Score,
        };
        kind.with_max_new_tokens(DEFAULT_MAX_NEW_TOKENS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_model_is_rerun_by_generating_and_others_by_scoring() {
        let opts = |model: Option<&str>, mode: Option<ModeKind>| TuiOptions {
            model: model.map(Into::into),
            eval_mode: mode,
            ..Default::default()
        };
        assert!(matches!(opts(None, None).rerun_mode(), EvalMode::Generate { .. }));
        assert_eq!(opts(Some("ckpt"), None).rerun_mode(), EvalMode::Score);
        assert!(matches!(opts(Some("ckpt"), Some(ModeKind::Generate)).rerun_mode(), EvalMode::Generate { .. }));
        assert_eq!(opts(None, Some(ModeKind::Score)).rerun_mode(), EvalMode::Score);
    }
}
