//! Text-to-image attention at the answer position: for chosen LM layers, the
//! last prompt token's attention over each image's tokens, laid out on the
//! image's merged-token grid. Only the requested layers are recorded.

use super::processor::PreparedPrompt;
use super::text::{AttentionHook, Rows};
use super::Engine;
use crate::viz::SaliencyMap;
use anyhow::{bail, Result};
use tch::Kind;

#[derive(Clone, Debug)]
pub struct LayerAttention {
    pub layer: usize,
    /// None: mean over heads.
    pub head: Option<usize>,
    /// One map per image on its merged grid (width = grid w / 2, height = grid h / 2).
    pub maps: Vec<SaliencyMap>,
    /// Attention mass on all image tokens together (0..=1).
    pub image_share: f32,
}

impl Engine {
    pub fn attention_maps(&self, prompt: &PreparedPrompt, layers: &[usize], head: Option<usize>) -> Result<Vec<LayerAttention>> {
        let n_layers = self.model.text.num_layers();
        if let Some(&bad) = layers.iter().find(|&&l| l >= n_layers) {
            bail!("layer {bad} does not exist (the model has {n_layers})");
        }
        let heads = self.model.config.text.num_attention_heads as usize;
        if let Some(h) = head.filter(|&h| h >= heads) {
            bail!("head {h} does not exist (the model has {heads})");
        }
        let _guard = tch::no_grad_guard();
        let inputs = self.collate(&[prompt]);
        let mut hook = self.model.last_token_hook(&inputs, None, layers);
        let _hidden =
            self.model.prefill_hooked(&inputs, &mut self.model.new_cache(), Some(&mut hook as &mut dyn AttentionHook), Rows::Last)?;
        let merge = self.processor.pre.merge_size;
        let image_token = self.model.config.image_token_id;
        let mut out = Vec::new();
        for (layer, probs) in hook.captured {
            let row = match head {
                Some(h) => probs.get(0).get(h as i64),
                None => probs.get(0).mean_dim(0, false, Kind::Float),
            };
            let row = Vec::<f32>::try_from(row.to_kind(Kind::Float).to_device(tch::Device::Cpu))?;
            let mut maps = Vec::new();
            let mut i = 0usize;
            let mut share = 0f32;
            for img in &prompt.images {
                while prompt.input_ids[i] != image_token {
                    i += 1;
                }
                let (gh, gw) = ((img.grid[1] / merge) as u32, (img.grid[2] / merge) as u32);
                let n = (gh * gw) as usize;
                let values = row[i..i + n].to_vec();
                share += values.iter().sum::<f32>();
                maps.push(SaliencyMap::new(gw, gh, values, false));
                i += n;
            }
            out.push(LayerAttention { layer, head, maps, image_share: share });
        }
        Ok(out)
    }
}
