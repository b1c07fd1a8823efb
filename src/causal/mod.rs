//! Why it flips: causal experiments on the engine. The logit lens reads
//! every layer's residual stream; attention knockout blocks groups of
//! attention edges in a window of layers; activation patching copies the
//! residual stream of an image into the run of its mirror. Each runs on one
//! sample here; batch runs and reports build on these. No TUI code.

pub mod ablate;
pub mod batch;
pub mod decision;
pub mod direction_probe;
pub mod knockout;
pub mod lens;
pub mod overview;
pub mod pass;
pub mod patch;
pub mod regions;

pub use decision::{AnswerForm, Candidate, Decision};
pub use knockout::{knockout, knockout_naive, EdgeGroup, KnockoutSpec, KnockoutSweep};
pub use lens::{logit_lens, LogitLens};
pub use pass::Pass;
pub use patch::{patch, PatchSweep, PositionGroup};
pub use regions::PromptRegions;

use anyhow::Result;
use std::path::Path;
use tch::{Kind, Tensor};

/// Writes named tensors as f32 (integer tensors as they are) to a safetensors file.
pub fn write_dump(path: &Path, named: &[(&str, &Tensor)]) -> Result<()> {
    let owned: Vec<(String, Tensor)> = named
        .iter()
        .map(|(n, t)| {
            let t = t.to_device(tch::Device::Cpu);
            let t = if t.is_floating_point() { t.to_kind(Kind::Float) } else { t };
            (n.to_string(), t.contiguous())
        })
        .collect();
    crate::fsutil::atomic_write_with(path, |tmp| Ok(Tensor::write_safetensors(&owned, tmp)?))
}
