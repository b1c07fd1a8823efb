//! Qwen2.5-VL: the vision tower feeding the Qwen2 decoder, loaded from a
//! Hugging Face checkpoint directory onto a device in a dtype.

use super::config::ModelConfig;
use super::intervene::LastTokenAttention;
use super::layers::{Planner, TensorSource};
use super::processor::ModelInputs;
use super::text::{AttentionHook, KvCache, Rows, TextModel};
use super::vision::VisionTower;
use super::vision_layout::Grid;
use super::weights::{LentMaps, WeightFiles};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub struct Qwen25VL {
    pub config: ModelConfig,
    pub vision: VisionTower,
    pub text: TextModel,
    pub device: Device,
    pub kind: Kind,
    /// Every loaded weight by canonical name, sharing storage (and autograd
    /// identity) with the tensors the layers hold: training marks and
    /// updates these, checkpoints are written from them.
    pub params: Vec<(String, Tensor)>,
    /// File mappings that CPU weights view without a copy; last, so they
    /// outlive every tensor above.
    lent: LentMaps,
}

/// What loading cost.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub tensors: usize,
    /// Bytes of the weights in the chosen dtype.
    pub weight_bytes: u64,
    /// Of those, bytes that view the checkpoint's files (CPU, same dtype)
    /// rather than being copied: paged in when first used.
    pub mapped_bytes: u64,
    pub seconds: f64,
}

struct Loader<'a> {
    files: &'a WeightFiles,
    kind: Kind,
    device: Device,
    loaded: Vec<(String, Tensor)>,
}

impl TensorSource for Loader<'_> {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self.files.load(name, shape, self.kind, self.device)?;
        self.loaded.push((name.to_string(), t.shallow_clone()));
        Ok(t)
    }
}

impl Qwen25VL {
    fn build(src: &mut dyn TensorSource, cfg: &ModelConfig, device: Device) -> Result<(VisionTower, TextModel)> {
        let vision = VisionTower::load(src, &cfg.vision, device)?;
        let text = TextModel::load(src, &cfg.text, cfg.tie_word_embeddings, device)?;
        Ok((vision, text))
    }

    /// Every (name, shape) this config needs.
    pub fn plan(cfg: &ModelConfig) -> Result<Vec<(String, Vec<i64>)>> {
        let mut planner = Planner::default();
        Self::build(&mut planner, cfg, Device::Cpu)?;
        Ok(planner.wanted)
    }

    /// Checks `files` against the config (every problem listed by name) and
    /// returns the tensors to load.
    pub fn check_weights(cfg: &ModelConfig, files: &WeightFiles) -> Result<Vec<(String, Vec<i64>)>> {
        let plan = Self::plan(cfg)?;
        let lm_head = "lm_head.weight";
        if cfg.tie_word_embeddings && files.contains(lm_head) {
            // A tied checkpoint may still carry lm_head.weight: checked, not loaded.
            let mut checked = plan.clone();
            checked.push((lm_head.into(), vec![cfg.text.vocab_size, cfg.text.hidden_size]));
            files.check(&checked)?;
        } else {
            files.check(&plan)?;
        }
        Ok(plan)
    }

    pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<(Qwen25VL, LoadReport)> {
        let start = std::time::Instant::now();
        let config = ModelConfig::load(dir)?;
        let files = WeightFiles::open(dir)?;
        let plan = Self::check_weights(&config, &files)?;
        if !matches!(kind, Kind::Float | Kind::BFloat16 | Kind::Half | Kind::Double) {
            bail!("dtype {kind:?} is not a floating-point type");
        }
        let _guard = tch::no_grad_guard();
        let mut loader = Loader { files: &files, kind, device, loaded: Vec::new() };
        let (vision, text) =
            Self::build(&mut loader, &config, device).with_context(|| format!("loading weights from {}", dir.display()))?;
        let report = LoadReport {
            tensors: plan.len(),
            weight_bytes: files.bytes_as(&plan, kind),
            mapped_bytes: files.lent_bytes(),
            seconds: start.elapsed().as_secs_f64(),
        };
        let lent = files.lent_maps();
        Ok((Qwen25VL { config, vision, text, device, kind, params: loader.loaded, lent }, report))
    }

    /// Merged vision embeddings [N/4, hidden] for patches of images with `grids`.
    pub fn vision_embeds(&self, pixel_values: &Tensor, grids: &[Grid]) -> Tensor {
        self.vision.forward(&pixel_values.to_device(self.device), grids)
    }

    /// Token embeddings with each image token replaced by its vision embedding.
    pub fn input_embeds(&self, inputs: &ModelInputs, vision: Option<&Tensor>) -> Result<Tensor> {
        let embeds = self.text.embed_tokens(&inputs.input_ids);
        let Some(vision) = vision else { return Ok(embeds) };
        let mask = inputs.input_ids.eq(self.config.image_token_id);
        let n_tokens = i64::try_from(mask.sum(Kind::Int64))?;
        if n_tokens != vision.size()[0] {
            bail!("{n_tokens} image tokens in the prompt but {} vision embeddings", vision.size()[0]);
        }
        Ok(embeds.masked_scatter(&mask.unsqueeze(-1).expand_as(&embeds), &vision.to_kind(embeds.kind())))
    }

    /// The prompt's forward pass, filling `cache`: final hidden states
    /// [B, L, D] for `Rows::All`, [B, 1, D] (the last position) for `Rows::Last`.
    pub fn prefill(&self, inputs: &ModelInputs, cache: &mut KvCache, rows: Rows) -> Result<Tensor> {
        self.prefill_hooked(inputs, cache, None, rows)
    }

    /// `prefill` with the last position's attention edited or recorded (AdaptVis, attention maps).
    pub fn prefill_hooked(
        &self,
        inputs: &ModelInputs,
        cache: &mut KvCache,
        hook: Option<&mut dyn AttentionHook>,
        rows: Rows,
    ) -> Result<Tensor> {
        let vision = inputs.pixel_values.as_ref().map(|p| self.vision_embeds(p, &inputs.grids));
        let embeds = self.input_embeds(inputs, vision.as_ref())?;
        Ok(self.text.forward_hooked(&embeds, &inputs.positions, inputs.valid.as_ref(), cache, hook, rows))
    }

    /// `prefill` with precomputed vision embeddings (saliency reuses this).
    pub fn prefill_with_vision(&self, inputs: &ModelInputs, vision: Option<&Tensor>, cache: &mut KvCache, rows: Rows) -> Result<Tensor> {
        let embeds = self.input_embeds(inputs, vision)?;
        Ok(self.text.forward_hooked(&embeds, &inputs.positions, inputs.valid.as_ref(), cache, None, rows))
    }

    /// A hook over `inputs`' image tokens: `alpha` per sample, `capture` layers recorded.
    pub fn last_token_hook(&self, inputs: &ModelInputs, alpha: Option<&[f64]>, capture: &[usize]) -> LastTokenAttention {
        LastTokenAttention {
            image_keys: inputs.input_ids.eq(self.config.image_token_id),
            alpha: alpha.map(|a| Tensor::from_slice(a).to_kind(Kind::Float).to_device(self.device)),
            capture_layers: capture.to_vec(),
            captured: vec![],
        }
    }

    /// One decoding step for tokens [B] at positions [B]: hidden [B, 1, D].
    pub fn step(&self, tokens: &[i64], positions: &[i64], cache: &mut KvCache) -> Tensor {
        let b = tokens.len() as i64;
        let ids = Tensor::from_slice(tokens).reshape([b, 1]).to_device(self.device);
        let pos = Tensor::from_slice(positions).reshape([1, b, 1]).expand([3, b, 1], false).to_device(self.device);
        let embeds = self.text.embed_tokens(&ids);
        let valid = cache.padded.then(|| Tensor::ones([b, 1], (Kind::Bool, self.device)));
        self.text.forward(&embeds, &pos, valid.as_ref(), cache)
    }

    /// Logits [B, L, V] of a whole prompt, without gradients or a kept cache.
    pub fn prompt_logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let mut cache = self.new_cache();
        Ok(self.logits(&self.prefill(inputs, &mut cache, Rows::All)?))
    }

    /// Logits [B, V] at each prompt's last position (where the answer starts).
    pub fn last_logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let mut cache = self.new_cache();
        Ok(self.logits(&self.prefill(inputs, &mut cache, Rows::Last)?).squeeze_dim(1))
    }

    /// Maps the weights' file pages in the background (see `LentMaps::prefault`); the bytes it maps.
    pub fn prefault(&self) -> u64 {
        self.lent.prefault()
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.text.num_layers())
    }

    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        self.text.logits(hidden)
    }
}
