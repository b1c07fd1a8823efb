//! The inputs both sides are timed on: one prefill prompt (a 448x448 image
//! and 40 question tokens), 64 multiple-choice prompts of 392x392 scenes, the
//! option letters' token ids. Ids are synthetic (no tokenizer needed, so any
//! checkpoint can be measured) and the prompts are chat-shaped: system text,
//! the vision block, the question, the assistant turn's opening.

use crate::engine::config::{ModelConfig, PreprocessorConfig};
use crate::engine::image_processor::{smart_resize, ImagePatches};
use crate::engine::positions::rope_index;
use crate::engine::PreparedPrompt;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Kind, Tensor};

pub const EVAL_SAMPLES: usize = 64;
pub const EVAL_IMAGE: i64 = 392;
pub const PREFILL_IMAGE: i64 = 448;
pub const PREFILL_TEXT: usize = 40;
/// Stand-ins for the letters A-D (any ids below every bench vocabulary).
pub const LETTER_IDS: [i64; 4] = [32, 33, 34, 35];
/// The answer a training step learns: a letter, then end of turn (a plain id here).
pub const ANSWER_IDS: [i64; 2] = [33, 36];

pub struct BenchInputs {
    pub prefill: PreparedPrompt,
    pub eval: Vec<PreparedPrompt>,
}

/// Plain-text stand-in ids in 100..min(vocab, 1000), clear of special tokens.
fn text_ids(n: usize, salt: i64, vocab: i64) -> impl Iterator<Item = i64> {
    let span = vocab.min(1000) - 100;
    (0..n as i64).map(move |i| (i * 7919 + salt * 104_729) % span + 100)
}

/// A prompt of `text_tokens` question tokens after one `side`x`side` image of
/// deterministic pseudo-random pixels.
pub fn synthetic_prompt(cfg: &ModelConfig, side: i64, text_tokens: usize, salt: i64) -> Result<PreparedPrompt> {
    let pre = PreprocessorConfig::default();
    let (h, w) = smart_resize(side, side, pre.factor(), pre.min_pixels, pre.max_pixels)?;
    let grid = [1, h / pre.patch_size, w / pre.patch_size];
    let n_patches = (grid[1] * grid[2]) as usize;
    let patch_dim = (3 * pre.temporal_patch_size * pre.patch_size * pre.patch_size) as usize;
    let n_tokens = n_patches / (pre.merge_size * pre.merge_size) as usize;
    let mut ids: Vec<i64> = text_ids(20, salt, cfg.text.vocab_size).collect();
    ids.push(cfg.vision_start_token_id);
    ids.extend(std::iter::repeat_n(cfg.image_token_id, n_tokens));
    ids.push(cfg.vision_end_token_id);
    ids.extend(text_ids(text_tokens, salt + 1, cfg.text.vocab_size));
    ids.extend(text_ids(5, salt + 2, cfg.text.vocab_size));
    let seed = salt as usize;
    let values: Vec<f32> =
        (0..n_patches * patch_dim).map(|i| ((i.wrapping_add(seed).wrapping_mul(2_654_435_761)) % 1000) as f32 / 500.0 - 1.0).collect();
    let patches = ImagePatches { values, patch_dim, grid, resized: (w as u32, h as u32), original: (side as u32, side as u32) };
    with_positions(ids, patches, pre.merge_size)
}

/// A prompt from ids and its one image, with M-RoPE positions.
pub fn with_positions(input_ids: Vec<i64>, patches: ImagePatches, merge: i64) -> Result<PreparedPrompt> {
    let (positions, rope_delta) = rope_index(&input_ids, image_token(&input_ids, &patches, merge)?, &[patches.grid], merge)?;
    Ok(PreparedPrompt { chat_text: String::new(), input_ids, images: vec![patches], positions, rope_delta })
}

/// The id that repeats once per merged patch (the image token).
fn image_token(ids: &[i64], patches: &ImagePatches, merge: i64) -> Result<i64> {
    let n = patches.num_tokens(merge);
    let mut run = (0i64, 0usize);
    for &id in ids {
        run = if id == run.0 { (id, run.1 + 1) } else { (id, 1) };
        if run.1 == n {
            return Ok(id);
        }
    }
    bail!("no run of {n} image tokens in the prompt")
}

impl BenchInputs {
    pub fn build(cfg: &ModelConfig) -> Result<BenchInputs> {
        let prefill = synthetic_prompt(cfg, PREFILL_IMAGE, PREFILL_TEXT, 1)?;
        // Question lengths vary (30..50 tokens) so batches need padding, as real ones do.
        let eval = (0..EVAL_SAMPLES)
            .map(|i| synthetic_prompt(cfg, EVAL_IMAGE, 30 + (i * 5) % 21, 10 + 3 * i as i64))
            .collect::<Result<Vec<_>>>()?;
        Ok(BenchInputs { prefill, eval })
    }

    /// One safetensors file: `{name}.input_ids` [L] i64, `{name}.pixel_values`
    /// [N, D] f32, `{name}.image_grid_thw` [1, 3] i64 for `prefill` and `eval.{i}`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        let all = std::iter::once(("prefill".to_string(), &self.prefill))
            .chain(self.eval.iter().enumerate().map(|(i, p)| (format!("eval.{i}"), p)));
        for (name, p) in all {
            let img = &p.images[0];
            named.push((format!("{name}.input_ids"), Tensor::from_slice(&p.input_ids)));
            named.push((format!("{name}.pixel_values"), Tensor::from_slice(&img.values).reshape([-1, img.patch_dim as i64])));
            named.push((format!("{name}.image_grid_thw"), Tensor::from_slice(&img.grid).reshape([1, 3])));
        }
        named.push(("letters".into(), Tensor::from_slice(&LETTER_IDS)));
        named.push(("answer".into(), Tensor::from_slice(&ANSWER_IDS)));
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        Tensor::write_safetensors(&refs, path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<BenchInputs> {
        let tensors = Tensor::read_safetensors(path).with_context(|| format!("reading {}", path.display()))?;
        let get = |name: &str| -> Result<&Tensor> {
            tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t).with_context(|| format!("{}: no tensor `{name}`", path.display()))
        };
        let prompt = |name: &str| -> Result<PreparedPrompt> {
            let ids = Vec::<i64>::try_from(get(&format!("{name}.input_ids"))?)?;
            let pv = get(&format!("{name}.pixel_values"))?.to_kind(Kind::Float);
            let g = Vec::<i64>::try_from(get(&format!("{name}.image_grid_thw"))?.reshape([-1]))?;
            let grid = [g[0], g[1], g[2]];
            let (n, d) = (pv.size()[0], pv.size()[1] as usize);
            let side = |p: i64| (p * PreprocessorConfig::default().patch_size) as u32;
            let patches = ImagePatches {
                values: Vec::<f32>::try_from(pv.reshape([-1]))?,
                patch_dim: d,
                grid,
                resized: (side(grid[2]), side(grid[1])),
                original: (side(grid[2]), side(grid[1])),
            };
            debug_assert_eq!(n, grid[1] * grid[2]);
            with_positions(ids, patches, PreprocessorConfig::default().merge_size)
        };
        let prefill = prompt("prefill")?;
        let eval = (0..EVAL_SAMPLES).map(|i| prompt(&format!("eval.{i}"))).collect::<Result<Vec<_>>>()?;
        Ok(BenchInputs { prefill, eval })
    }
}
