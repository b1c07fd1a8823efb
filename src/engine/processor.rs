//! From (images, text) to model inputs: chat template, image-pad expansion,
//! tokenisation, patches and multimodal positions per prompt; then left-padded
//! batches as tensors.

use super::chat::{ChatTemplate, Message};
use super::config::{ModelConfig, PreprocessorConfig};
use super::image_processor::{preprocess, ImagePatches, ResizePolicy};
use super::positions::rope_index;
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
    /// Prompts longer than this are refused (the model's max_position_embeddings).
    pub max_context: Option<i64>,
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

    /// The prompt with `tokens` appended as the start of the reply, at the
    /// positions decoding would give them.
    pub fn extended(&self, tokens: &[i64]) -> PreparedPrompt {
        let mut out = self.clone();
        let start = self.next_position();
        for (k, &id) in tokens.iter().enumerate() {
            out.input_ids.push(id);
            for axis in out.positions.iter_mut() {
                axis.push(start + k as i64);
            }
        }
        out
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
        Ok(Processor {
            pre,
            template: ChatTemplate::load(dir)?,
            tokenizer,
            image_token_id: cfg.image_token_id,
            image_pad,
            max_context: cfg.text.max_position_embeddings,
        })
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
        if let Some(max) = self.max_context.filter(|&m| input_ids.len() as i64 > m) {
            let image_tokens: usize = patches.iter().map(|p| p.num_tokens(self.pre.merge_size)).sum();
            bail!(
                "the prompt is {} tokens ({image_tokens} of them for images), over the model's context of {max} \
                 (max_position_embeddings); shorten the question or lower --max-pixels",
                input_ids.len()
            );
        }
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
        let images: Vec<&ImagePatches> = prompts.iter().flat_map(|p| &p.images).collect();
        let (b, l) = (b as i64, l as i64);
        ModelInputs {
            input_ids: Tensor::from_slice(&ids).reshape([b, l]).to_device(device),
            valid: padded.then(|| Tensor::from_slice(&valid).reshape([b, l]).to_device(device)),
            positions: Tensor::from_slice(&pos).reshape([3, b, l]).to_device(device),
            pixel_values: stack_patches(&images).map(|t| t.to_device(device)),
            grids: images.iter().map(|img| img.grid).collect(),
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

/// Every image's patches as one [N, patch_dim] f32 tensor, or None without
/// images. One copy straight from the prompts' buffers, as torch.cat makes:
/// growing a Vec first and copying it again cost a batch of eight 448-px
/// images (30 MB) twice its bytes in copies and fresh pages, a third of the
/// tiny checkpoint's batch-8 scoring time.
fn stack_patches(images: &[&ImagePatches]) -> Option<Tensor> {
    if images.is_empty() {
        return None;
    }
    let views: Vec<Tensor> = images
        .iter()
        .map(|img| {
            let dim = img.patch_dim as i64;
            let rows = img.values.len() as i64 / dim.max(1);
            // SAFETY: a view of `img.values` (f32, row-major [rows, dim]) that
            // lives only until `cat` below has copied it into its own storage.
            unsafe { Tensor::from_blob(img.values.as_ptr().cast(), &[rows, dim], &[dim, 1], Kind::Float, Device::Cpu) }
        })
        .collect();
    Some(Tensor::cat(&views, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(ids: Vec<i64>, images: Vec<ImagePatches>) -> PreparedPrompt {
        let n = ids.len() as i64;
        let pos: Vec<i64> = (0..n).collect();
        PreparedPrompt { chat_text: String::new(), input_ids: ids, images, positions: [pos.clone(), pos.clone(), pos], rope_delta: 0 }
    }

    fn image(rows: usize, dim: usize, first: f32) -> ImagePatches {
        let values = (0..rows * dim).map(|i| first + i as f32).collect();
        ImagePatches { values, patch_dim: dim, grid: [1, rows as i64, 1], resized: (1, 1), original: (1, 1) }
    }

    #[test]
    fn collate_stacks_every_image_in_batch_order_and_left_pads() {
        let a = prompt(vec![5, 6], vec![image(2, 3, 0.0), image(1, 3, 100.0)]);
        let b = prompt(vec![7, 8, 9], vec![image(4, 3, 200.0)]);
        let inputs = ModelInputs::collate(&[&a, &b], 0, Device::Cpu);
        let pixels = inputs.pixel_values.expect("images");
        assert_eq!(pixels.size(), [7, 3]);
        let got = Vec::<f32>::try_from(pixels.flatten(0, -1)).unwrap();
        let want: Vec<f32> = [&a.images[0], &a.images[1], &b.images[0]].iter().flat_map(|i| i.values.clone()).collect();
        assert_eq!(got, want);
        assert_eq!(inputs.grids, vec![[1, 2, 1], [1, 1, 1], [1, 4, 1]]);
        // The tensor owns its copy: the prompts' buffers can go.
        drop((a, b));
        assert_eq!(Vec::<f32>::try_from(pixels.flatten(0, -1)).unwrap(), want);
        assert_eq!(Vec::<i64>::try_from(inputs.input_ids.flatten(0, -1)).unwrap(), vec![0, 5, 6, 7, 8, 9]);
        assert!(ModelInputs::collate(&[&prompt(vec![1], vec![])], 0, Device::Cpu).pixel_values.is_none());
    }
}
