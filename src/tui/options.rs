//! What the workbench is opened on, as `flipscope [tui]` takes it. The TUI
//! owns this type; the CLI only flattens it into its parser.

use crate::config::AnswersWith;
use crate::engine::Placement;
use crate::eval::{EvalMode, ModeKind, DEFAULT_MAX_NEW_TOKENS};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct TuiOptions {
    /// Checkpoint directory (Hugging Face layout), or `demo`; default: the embedded demo model.
    #[arg(long, value_parser = crate::config::model_path)]
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
    #[command(flatten)]
    pub placement: Placement,
    /// A LoRA adapter folder (PEFT layout) to attach to the model, unmerged.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// How reruns read answers: score (option letters, one forward) or
    /// generate (text, then extraction). Default: as the checkpoint says it
    /// answers (`flipscope.json`): generate for the demo model, which answers
    /// in words; score for one without a card.
    #[arg(long, value_enum)]
    pub eval_mode: Option<ModeKind>,
}

impl TuiOptions {
    /// How the TUI's reruns read answers: as asked, else as the checkpoint
    /// (`model_dir`, the resolved `--model`) declares it answers.
    pub fn rerun_mode(&self, answers: AnswersWith) -> EvalMode {
        self.eval_mode.unwrap_or(ModeKind::for_answers(answers)).with_max_new_tokens(DEFAULT_MAX_NEW_TOKENS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reruns_ask_as_the_checkpoint_answers_unless_told() {
        let opts = |mode: Option<ModeKind>| TuiOptions { eval_mode: mode, ..Default::default() };
        assert!(matches!(opts(None).rerun_mode(AnswersWith::Words), EvalMode::Generate { .. }));
        assert_eq!(opts(None).rerun_mode(AnswersWith::Letters), EvalMode::Score);
        assert!(matches!(opts(Some(ModeKind::Generate)).rerun_mode(AnswersWith::Letters), EvalMode::Generate { .. }));
        assert_eq!(opts(Some(ModeKind::Score)).rerun_mode(AnswersWith::Words), EvalMode::Score);
    }
}
