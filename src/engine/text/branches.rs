//! The decoder's hooks for the causal experiments: a traced
//! pass that keeps every layer's output and keys/values, and branches of
//! that pass run together as one batch.
//!
//! A branch differs from the traced pass (the trunk) only from a layer on
//! and only at positions from `start` on: its hidden states enter the
//! decoder at layer `enter`, and at each layer its queries may have
//! attention edges blocked. Positions before `start` are the trunk's, so
//! their keys and values are read from the trunk's cache, not recomputed.
//! A knockout of the last position's edges is then one query row per layer
//! and branch; a sweep over layers is one batched pass that grows as
//! branches join, not one full forward per cell.

use super::{KvCache, LayerState, StepCtx, TextModel};
use tch::{Kind, Tensor};

/// The trunk: every decoder layer's output (before the final norm) and the
/// keys and values of every layer, for one prompt.
pub struct Traced {
    /// Each layer's output [1, T, D]: the residual stream after it
    /// (TransformerLens's `resid_post`).
    pub resid_post: Vec<Tensor>,
    pub cache: KvCache,
}

/// A branch of the trunk: its hidden input [S, D] to layer `enter` for the
/// positions `start..T` (`enter` = the number of layers: it skips the decoder).
pub struct Branch {
    pub enter: usize,
    pub hidden: Tensor,
}

impl TextModel {
    /// One prompt's pass (`embeds` [1, T, D], `positions` [3, 1, T], no
    /// padding), keeping each layer's output and its keys and values.
    pub fn trace(&self, embeds: &Tensor, positions: &Tensor) -> Traced {
        let l = embeds.size()[1];
        let (cos, sin) = self.rotary(positions, embeds.kind());
        let (cos, sin) = (cos.unsqueeze(1), sin.unsqueeze(1));
        let mut cache = KvCache::new(self.layers.len());
        cache.key_valid = Some(Tensor::ones([1, l], (Kind::Bool, embeds.device())));
        let ctx = StepCtx { cos: &cos, sin: &sin, cfg: &self.cfg, mask: None, causal: l > 1, queries: l };
        let mut h = embeds.shallow_clone();
        let mut resid_post = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h, &ctx, LayerState { cache: &mut cache.layers[i], edit: None, last_row_keys: None });
            resid_post.push(h.shallow_clone());
        }
        Traced { resid_post, cache }
    }

    /// Runs `branches` of a traced prompt as one batch that grows layer by
    /// layer as they enter. Positions before `start` are the trunk's (its
    /// `cache`); `blocked(layer, v)` gives branch `v`'s blocked edges at a
    /// layer as [S, T] bool (true: the query may not see the key), or None.
    /// Returns each branch's output of the last layer [V, S, D], in the
    /// order given (before the final norm).
    pub fn run_branches(
        &self,
        trunk: &KvCache,
        positions: &Tensor,
        start: i64,
        branches: &[Branch],
        blocked: &dyn Fn(usize, usize) -> Option<Tensor>,
    ) -> Tensor {
        let t = positions.size()[2];
        let s = t - start;
        let device = self.embed.device();
        let kind = self.embed.kind();
        let (cos, sin) = self.rotary(&positions.narrow(2, start, s), kind);
        let (cos, sin) = (cos.unsqueeze(1), sin.unsqueeze(1));
        let q_pos = Tensor::arange_start(start, t, (Kind::Int64, device)).unsqueeze(1);
        let k_pos = Tensor::arange(t, (Kind::Int64, device)).unsqueeze(0);
        let causal = k_pos.le_tensor(&q_pos); // [S, T]
                                              // A position always sees itself, so a row with every other key blocked stays finite.
        let itself = k_pos.eq_tensor(&q_pos);
        let n_layers = self.layers.len();
        let mut order: Vec<usize> = Vec::new();
        let mut h: Option<Tensor> = None;
        for i in 0..=n_layers {
            let joining: Vec<usize> = (0..branches.len()).filter(|&v| branches[v].enter == i).collect();
            if !joining.is_empty() {
                let new = Tensor::stack(&joining.iter().map(|&v| branches[v].hidden.to_kind(kind)).collect::<Vec<_>>(), 0);
                h = Some(match h.take() {
                    Some(x) => Tensor::cat(&[x, new], 0),
                    None => new,
                });
                order.extend(joining);
            }
            if i == n_layers {
                break;
            }
            let Some(x) = h.take() else { continue };
            let b = order.len() as i64;
            let masks: Vec<Tensor> = order
                .iter()
                .map(|&v| match blocked(i, v) {
                    Some(edges) => causal.logical_and(&edges.to_device(device).logical_not()).logical_or(&itself),
                    None => causal.shallow_clone(),
                })
                .collect();
            let mask = Tensor::stack(&masks, 0).unsqueeze(1); // [B, 1, S, T]
            let mut slot = match (&trunk.layers[i], start) {
                (Some((k, v)), p) if p > 0 => {
                    let prefix = |x: &Tensor| {
                        let sz = x.size();
                        x.narrow(2, 0, p).expand([b, sz[1], p, sz[3]], false)
                    };
                    Some((prefix(k), prefix(v)))
                }
                _ => None,
            };
            let ctx = StepCtx { cos: &cos, sin: &sin, cfg: &self.cfg, mask: Some(&mask), causal: false, queries: s };
            h = Some(self.layers[i].forward(&x, &ctx, LayerState { cache: &mut slot, edit: None, last_row_keys: None }));
        }
        let Some(out) = h else {
            return Tensor::zeros([0, s, self.cfg.hidden_size], (kind, device));
        };
        // Back to the order given.
        let mut inverse = vec![0i64; order.len()];
        for (row, &v) in order.iter().enumerate() {
            inverse[v] = row as i64;
        }
        out.index_select(0, &Tensor::from_slice(&inverse).to_device(device))
    }
}
