//! From (images, text) to model inputs: chat template, image-pad expansion,
//! tokenisation, patches and multimodal positions per prompt; then left-padded
//! batches as tensors.

use super::chat::{ChatTemplate, Message};
use super::config::{ModelConfig, PreprocessorConfig};
use super::positions::rope_index;
use super::processor::{preprocess, ImagePatches, ResizePolicy};
use super::tokenizer::TextTokenizer;
use super::vision_layout::Grid;
use anyhow::{bail, Context, Result};
use image::DynamicImage;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Everything text-side a checkpoint needs: preprocessor, template, tokenizer.
pub struct Processor {
    pub pre: PreprocessorConfig,
    pub template: ChatTemplate,
    pub tokenizer: TextTokenizer,
    pub image_token_id: i64,
    image_pad: String,
}

/// One prompt, tokenised, with its images' patches and 3D positions.
#[derive(Clone, Debug)]
pub struct PreparedPrompt {
    pub chat_text: String,
    pub input_ids: Vec<i64>,
    pub images: Vec<ImagePatches>,
    /// [t, h, w] rotary positions, one per token.
    pub positions: [Vec<i64>; 3],
    /// max position + 1 - len: decoding continues at len + delta.
    pub rope_delta: i64,
}

impl PreparedPrompt {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
    pub fn grids(&self) -> Vec<Grid> {
        self.images.iter().map(|i| i.grid).collect()
    }
    pub fn next_position(&self) -> i64 {
        self.len() as i64 + self.rope_delta
    }
}

impl Processor {
    pub fn load(dir: &Path, cfg: &ModelConfig) -> Result<Processor> {
        let pre = PreprocessorConfig::load(dir)?;
        if pre.merge_size != cfg.vision.spatial_merge_size || pre.patch_size != cfg.vision.patch_size {
            bail!(
                "{}: patch_size {} / merge_size {} differ from config.json's vision_config ({} / {})",
                dir.join("preprocessor_config.json").display(),
                pre.patch_size,
                pre.merge_size,
                cfg.vision.patch_size,
                cfg.vision.spatial_merge_size
            );
        }
        let tokenizer = TextTokenizer::load(dir)?;
        let image_pad = tokenizer.id_to_token(cfg.image_token_id).with_context(|| {
            format!("{}: image_token_id {} is not in tokenizer.json", dir.join("config.json").display(), cfg.image_token_id)
        })?;
        Ok(Processor { pre, template: ChatTemplate::load(dir)?, tokenizer, image_token_id: cfg.image_token_id, image_pad })
    }

    /// A single user turn with the images first, then `text`, and the generation prompt.
    pub fn prepare(&self, images: &[DynamicImage], text: &str, resize: &ResizePolicy) -> Result<PreparedPrompt> {
        let chat = self.template.render(&[Message::user_with_images(images.len(), text)], true)?;
        self.prepare_rendered(chat, images, resize)
    }

    /// Like `prepare`, for chat text already rendered (one `<|image_pad|>` per image).
    pub fn prepare_rendered(&self, chat_text: String, images: &[DynamicImage], resize: &ResizePolicy) -> Result<PreparedPrompt> {
        let patches: Vec<ImagePatches> = images
            .iter()
            .enumerate()
            .map(|(i, img)| preprocess(img, &self.pre, resize).with_context(|| format!("image {}", i + 1)))
            .collect::<Result<_>>()?;
        let pieces: Vec<&str> = chat_text.split(self.image_pad.as_str()).collect();
        if pieces.len() != images.len() + 1 {
            bail!("the prompt has {} image placeholder(s) for {} image(s)", pieces.len() - 1, images.len());
        }
        let mut expanded = String::from(pieces[0]);
        for (p, rest) in patches.iter().zip(&pieces[1..]) {
            for _ in 0..p.num_tokens(self.pre.merge_size) {
                expanded.push_str(&self.image_pad);
            }
            expanded.push_str(rest);
        }
        let input_ids = self.tokenizer.encode(&expanded)?;
        let grids: Vec<Grid> = patches.iter().map(|p| p.grid).collect();
        let (positions, rope_delta) = rope_index(&input_ids, self.image_token_id, &grids, self.pre.merge_size)?;
        Ok(PreparedPrompt { chat_text, input_ids, images: patches, positions, rope_delta })
    }
}

/// A left-padded batch on a device.
pub struct ModelInputs {
    /// [B, L] i64
    pub input_ids: Tensor,
    /// [B, L] bool, false on left padding; None when nothing is padded.
    pub valid: Option<Tensor>,
    /// [3, B, L] i64
    pub positions: Tensor,
    /// [N, patch_dim] f32 of every image in batch order, or None without images.
    pub pixel_values: Option<Tensor>,
    pub grids: Vec<Grid>,
    /// Where each sample's first generated token goes.
    pub next_positions: Vec<i64>,
    pub lengths: Vec<usize>,
}

impl ModelInputs {
    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    pub fn collate(prompts: &[&PreparedPrompt], pad_id: i64, device: Device) -> ModelInputs {
        let l = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let b = prompts.len();
        let mut ids = vec![pad_id; b * l];
        let mut valid = vec![false; b * l];
        let mut pos = vec![0i64; 3 * b * l];
        for (i, p) in prompts.iter().enumerate() {
            let off = l - p.len();
            for (j, &id) in p.input_ids.iter().enumerate() {
                ids[i * l + off + j] = id;
                valid[i * l + off + j] = true;
                for (axis, ax) in p.positions.iter().enumerate() {
                    pos[axis * b * l + i * l + off + j] = ax[j];
                }
            }
        }
        let padded = valid.iter().any(|v| !v);
        let mut values: Vec<f32> = Vec::new();
        let mut patch_dim = 0;
        let mut grids = Vec::new();
        for p in prompts {
            for img in &p.images {
                values.extend_from_slice(&img.values);
                patch_dim = img.patch_dim;
                grids.push(img.grid);
            }
        }
        let (b, l) = (b as i64, l as i64);
        ModelInputs {
            input_ids: Tensor::from_slice(&ids).reshape([b, l]).to_device(device),
            valid: padded.then(|| Tensor::from_slice(&valid).reshape([b, l]).to_device(device)),
            positions: Tensor::from_slice(&pos).reshape([3, b, l]).to_device(device),
            pixel_values: (!values.is_empty()).then(|| Tensor::from_slice(&values).reshape([-1, patch_dim as i64]).to_device(device)),
            grids,
            next_positions: prompts.iter().map(|p| p.next_position()).collect(),
            lengths: prompts.iter().map(|p| p.len()).collect(),
        }
    }

    /// The valid mask, materialised even when nothing is padded.
    pub fn valid_or_ones(&self) -> Tensor {
        match &self.valid {
            Some(v) => v.shallow_clone(),
            None => Tensor::ones(self.input_ids.size(), (Kind::Bool, self.input_ids.device())),
        }
    }
}
