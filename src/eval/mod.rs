//! Evaluation: prompts, variants and circular rotations of samples, run
//! through the engine in batches and written to a run store.
pub mod judge;
pub mod prompt;
pub mod runner;
pub mod session;
pub mod variant;

pub use prompt::{answer_labels, mcq_prompt, PromptTemplate};
pub use runner::{EvalConfig, EvalMode, EvalSummary, ModeKind, SampleSpec, DEFAULT_MAX_NEW_TOKENS};
pub use variant::Variant;
