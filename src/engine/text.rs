//! The Qwen2 decoder: grouped-query attention with q/k/v bias, RMSNorm,
//! SwiGLU, multimodal rotary embedding and a KV cache.

use super::config::TextConfig;
use super::layers::{linear, rotate_half, Activation, GatedMlp, Linear, RmsNorm, TensorSource};
use anyhow::Result;
use tch::{Device, Kind, Tensor};

mod branches;
pub use branches::{Branch, Traced};

pub struct DecoderLayer {
    input_norm: RmsNorm,
    post_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    mlp: GatedMlp,
}

pub struct TextModel {
    pub cfg: TextConfig,
    pub embed: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `None` when the output projection is tied to the embedding.
    lm_head: Option<Tensor>,
    inv_freq: Tensor,
}

/// Keys and values of every layer for the tokens seen so far, plus which of
/// those tokens are real (left padding is not).
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
    /// [B, T] bool: keys that may be attended to.
    pub key_valid: Option<Tensor>,
    pub padded: bool,
}

impl KvCache {
    /// A second cache over the same keys and values: steps run on it append
    /// to its own copy (`cat` makes new tensors), never to this one's.
    pub fn fork(&self) -> KvCache {
        KvCache {
            layers: self.layers.iter().map(|l| l.as_ref().map(|(k, v)| (k.shallow_clone(), v.shallow_clone()))).collect(),
            key_valid: self.key_valid.as_ref().map(Tensor::shallow_clone),
            padded: self.padded,
        }
    }
}

/// Which positions' final hidden states a forward pass returns. `Last` is
/// all that next-token work (scoring, generation, saliency) reads; the last
/// layer then computes its queries, output projection and MLP for that row
/// alone. Every layer's keys and values still cover every position, so the
/// cache is the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    All,
    Last,
}

impl KvCache {
    /// The cache of one prompt (batch row 0) repeated `n` times, so that `n`
    /// continuations decode from one prefill.
    pub fn expand(&self, n: i64) -> KvCache {
        let rep = |t: &Tensor| {
            let mut reps = vec![1i64; t.dim()];
            reps[0] = n;
            t.narrow(0, 0, 1).repeat(&reps)
        };
        KvCache {
            layers: self.layers.iter().map(|l| l.as_ref().map(|(k, v)| (rep(k), rep(v)))).collect(),
            key_valid: self.key_valid.as_ref().map(rep),
            padded: self.padded,
        }
    }

    pub fn new(layers: usize) -> KvCache {
        KvCache { layers: (0..layers).map(|_| None).collect(), key_valid: None, padded: false }
    }
    pub fn len(&self) -> i64 {
        self.layers.first().and_then(|l| l.as_ref()).map(|(k, _)| k.size()[2]).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TextModel {
    pub fn load(src: &mut dyn TensorSource, cfg: &TextConfig, tied: bool, device: Device) -> Result<TextModel> {
        let (d, hd) = (cfg.hidden_size, cfg.head_dim());
        let act = Activation::parse(&cfg.hidden_act)?;
        let embed = src.tensor("model.embed_tokens.weight", &[cfg.vocab_size, d])?;
        let mut layers = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            layers.push(DecoderLayer {
                input_norm: RmsNorm::load(src, &format!("{p}.input_layernorm"), d, cfg.rms_norm_eps)?,
                post_norm: RmsNorm::load(src, &format!("{p}.post_attention_layernorm"), d, cfg.rms_norm_eps)?,
                q: Linear::load(src, &format!("{p}.self_attn.q_proj"), d, cfg.num_attention_heads * hd, true)?,
                k: Linear::load(src, &format!("{p}.self_attn.k_proj"), d, cfg.num_key_value_heads * hd, true)?,
                v: Linear::load(src, &format!("{p}.self_attn.v_proj"), d, cfg.num_key_value_heads * hd, true)?,
                o: Linear::load(src, &format!("{p}.self_attn.o_proj"), cfg.num_attention_heads * hd, d, false)?,
                mlp: GatedMlp::load(src, &format!("{p}.mlp"), d, cfg.intermediate_size, false, act)?,
            });
        }
        let norm = RmsNorm::load(src, "model.norm", d, cfg.rms_norm_eps)?;
        let lm_head = if tied { None } else { Some(src.tensor("lm_head.weight", &[cfg.vocab_size, d])?) };
        let inv: Vec<f32> = (0..hd).step_by(2).map(|i| 1.0 / (cfg.rope_theta.powf(i as f64 / hd as f64)) as f32).collect();
        Ok(TextModel { cfg: cfg.clone(), embed, layers, norm, lm_head, inv_freq: Tensor::from_slice(&inv).to_device(device) })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The decoder's projections by canonical module name
    /// (`model.layers.N.self_attn.q_proj`, `model.layers.N.mlp.up_proj`, ...).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.self_attn.q_proj"), &mut l.q));
            out.push((format!("{p}.self_attn.k_proj"), &mut l.k));
            out.push((format!("{p}.self_attn.v_proj"), &mut l.v));
            out.push((format!("{p}.self_attn.o_proj"), &mut l.o));
            out.push((format!("{p}.mlp.gate_proj"), &mut l.mlp.gate));
            out.push((format!("{p}.mlp.up_proj"), &mut l.mlp.up));
            out.push((format!("{p}.mlp.down_proj"), &mut l.mlp.down));
        }
        out
    }

    pub fn embed_tokens(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.embed, ids, -1, false, false)
    }

    /// cos/sin [B, L, head_dim] from positions [3, B, L]: each frequency band
    /// takes its angle from the t, h or w axis per `mrope_section`.
    fn rotary(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * &self.inv_freq; // [3, B, L, hd/2]
        let mut parts = Vec::new();
        let mut start = 0;
        for (i, &len) in self.cfg.mrope_section.iter().enumerate() {
            parts.push(freqs.get(i as i64 % 3).narrow(-1, start, len));
            start += len;
        }
        let half = Tensor::cat(&parts, -1);
        let angles = Tensor::cat(&[&half, &half], -1);
        (angles.cos().to_kind(kind), angles.sin().to_kind(kind))
    }

    /// Runs the decoder over `embeds` [B, L, D] at `positions` [3, B, L],
    /// appending to `cache`. `valid` [B, L] marks real (non-pad) tokens.
    /// Returns the final-normed hidden states [B, L, D].
    pub fn forward(&self, embeds: &Tensor, positions: &Tensor, valid: Option<&Tensor>, cache: &mut KvCache) -> Tensor {
        self.forward_hooked(embeds, positions, valid, cache, None, Rows::All)
    }

    /// `forward` with the last prompt position's attention edited or recorded
    /// (prefill only; decoding steps ignore `hook`), returning `rows`:
    /// [B, L, D] for `All`, [B, 1, D] for `Last`.
    pub fn forward_hooked(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        valid: Option<&Tensor>,
        cache: &mut KvCache,
        mut hook: Option<&mut (dyn AttentionHook + '_)>,
        rows: Rows,
    ) -> Tensor {
        let (b, l) = (embeds.size()[0], embeds.size()[1]);
        let device = embeds.device();
        let past = cache.len();
        let new_valid = match valid {
            Some(v) => {
                cache.padded |= !bool::try_from(v.all()).unwrap_or(false);
                v.to_kind(Kind::Bool)
            }
            None => Tensor::ones([b, l], (Kind::Bool, device)),
        };
        cache.key_valid = Some(match cache.key_valid.take() {
            Some(prev) => Tensor::cat(&[prev, new_valid], 1),
            None => new_valid,
        });
        let mask = self.attention_mask(cache, past, l, device);
        let (cos, sin) = self.rotary(positions, embeds.kind());
        let (cos, sin) = (cos.unsqueeze(1), sin.unsqueeze(1));
        if past > 0 {
            hook = None;
        }
        let last_row_keys = hook.as_ref().map(|_| cache.key_valid.as_ref().expect("key_valid set").unsqueeze(1).unsqueeze(1));
        let mut h = embeds.shallow_clone();
        let last_layer = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let queries = if rows == Rows::Last && i == last_layer { 1 } else { l };
            let ctx = StepCtx { cos: &cos, sin: &sin, cfg: &self.cfg, mask: mask.as_ref(), causal: past == 0 && l > 1, queries };
            let edit = match hook.as_deref_mut() {
                Some(p) if p.applies_to(i) => Some((i, p)),
                _ => None,
            };
            h = layer.forward(&h, &ctx, LayerState { cache: &mut cache.layers[i], edit, last_row_keys: last_row_keys.as_ref() });
        }
        self.norm.forward(&h)
    }

    /// The shared parts of a whole-prompt pass run one layer at a time
    /// (training's activation recomputation): rotary tables and the mask.
    pub fn layerwise(&self, embeds: &Tensor, positions: &Tensor, valid: Option<&Tensor>) -> LayerwisePass {
        let (b, l) = (embeds.size()[0], embeds.size()[1]);
        let device = embeds.device();
        let mut cache = KvCache::new(0);
        let valid = match valid {
            Some(v) => v.to_kind(Kind::Bool),
            None => Tensor::ones([b, l], (Kind::Bool, device)),
        };
        cache.padded = !bool::try_from(valid.all()).unwrap_or(false);
        cache.key_valid = Some(valid);
        let mask = self.attention_mask(&cache, 0, l, device);
        let (cos, sin) = self.rotary(positions, embeds.kind());
        LayerwisePass { cos: cos.unsqueeze(1), sin: sin.unsqueeze(1), mask, causal: l > 1, len: l }
    }

    /// Decoder layer `i` over every position of `pass`'s prompt.
    pub fn layer(&self, i: usize, h: &Tensor, pass: &LayerwisePass) -> Tensor {
        let ctx =
            StepCtx { cos: &pass.cos, sin: &pass.sin, cfg: &self.cfg, mask: pass.mask.as_ref(), causal: pass.causal, queries: pass.len };
        let mut slot = None;
        self.layers[i].forward(h, &ctx, LayerState { cache: &mut slot, edit: None, last_row_keys: None })
    }

    /// The final norm the decoder's output goes through.
    pub fn final_norm(&self, h: &Tensor) -> Tensor {
        self.norm.forward(h)
    }

    /// The mask for this step, or None when plain causal (or no) masking is exact.
    fn attention_mask(&self, cache: &KvCache, past: i64, l: i64, device: Device) -> Option<Tensor> {
        if !cache.padded && (past == 0 || l == 1) {
            return None; // is_causal covers prefill; one new token sees every key
        }
        let total = past + l;
        let q_pos = Tensor::arange_start(past, total, (Kind::Int64, device)).unsqueeze(1);
        let k_pos = Tensor::arange(total, (Kind::Int64, device)).unsqueeze(0);
        let causal = k_pos.le_tensor(&q_pos); // [l, total]
        let keys = cache.key_valid.as_ref().expect("key_valid set").unsqueeze(1).unsqueeze(1); // [B,1,1,total]
                                                                                               // A pad query would see no key at all; let it see itself so softmax stays finite.
        let diagonal = k_pos.eq_tensor(&q_pos);
        let allowed = causal.unsqueeze(0).unsqueeze(0).logical_and(&keys).logical_or(&diagonal.unsqueeze(0).unsqueeze(0));
        Some(allowed)
    }

    /// Logits [.., vocab] for hidden states [.., D].
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        linear(hidden, self.lm_head.as_ref().unwrap_or(&self.embed), None)
    }
}

/// A whole-prompt pass's shared tables, for running it layer by layer.
pub struct LayerwisePass {
    cos: Tensor,
    sin: Tensor,
    mask: Option<Tensor>,
    causal: bool,
    len: i64,
}

/// What every layer of one step shares.
struct StepCtx<'a> {
    cos: &'a Tensor,
    sin: &'a Tensor,
    cfg: &'a TextConfig,
    mask: Option<&'a Tensor>,
    causal: bool,
    /// How many trailing positions this layer computes outputs for (L, or 1
    /// in the last layer of a `Rows::Last` pass).
    queries: i64,
}

/// The one hook point of the decoder's attention, for interventions and
/// attention maps (`intervene.rs`, `attention_map.rs`): during a prefill, each layer it `applies_to`
/// hands it its queries, keys and values and the fused kernel's output, and
/// takes back the output to use. Decoding steps are never hooked.
pub trait AttentionHook {
    fn applies_to(&self, layer: usize) -> bool;
    fn attend(&mut self, layer: usize, parts: &AttentionParts, out: Tensor) -> Tensor;
}

/// One layer's attention inputs as a hook sees them.
pub struct AttentionParts<'a> {
    /// [B, heads, Lq, head_dim] after rotary embedding.
    pub q: &'a Tensor,
    /// [B, heads, T, head_dim], key/value heads repeated to the query heads.
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// [B, 1, 1, T] keys the last row may see (padding excluded), when padded.
    pub last_row_keys: Option<&'a Tensor>,
    /// 1 / sqrt(head_dim).
    pub scale: f64,
}

/// One layer's own state for a step: its KV cache and, when hooked, the edit.
struct LayerState<'a, 'h> {
    cache: &'a mut Option<(Tensor, Tensor)>,
    edit: Option<(usize, &'a mut (dyn AttentionHook + 'h))>,
    /// [B, 1, 1, T] keys the last row may see (padding excluded).
    last_row_keys: Option<&'a Tensor>,
}

impl DecoderLayer {
    fn forward(&self, x: &Tensor, ctx: &StepCtx, state: LayerState) -> Tensor {
        let h = trailing(x, 1, ctx.queries) + self.attention(&self.input_norm.forward(x), ctx, state);
        &h + self.mlp.forward(&self.post_norm.forward(&h))
    }

    fn attention(&self, x: &Tensor, ctx: &StepCtx, state: LayerState) -> Tensor {
        let LayerState { cache, edit, last_row_keys } = state;
        let cfg = ctx.cfg;
        let (b, l) = (x.size()[0], x.size()[1]);
        // Keys and values for every position; queries for the trailing `lq`.
        let lq = ctx.queries;
        let hd = cfg.head_dim();
        let split = |t: Tensor, rows: i64, heads: i64| t.reshape([b, rows, heads, hd]).transpose(1, 2);
        let q = split(self.q.forward(&trailing(x, 1, lq)), lq, cfg.num_attention_heads);
        let k = split(self.k.forward(x), l, cfg.num_key_value_heads);
        let v = split(self.v.forward(x), l, cfg.num_key_value_heads);
        let (cos_q, sin_q) = (trailing(ctx.cos, 2, lq), trailing(ctx.sin, 2, lq));
        let q = &q * &cos_q + rotate_half(&q) * &sin_q;
        let k = &k * ctx.cos + rotate_half(&k) * ctx.sin;
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(&[pk, k], 2), Tensor::cat(&[pv, v], 2)),
            None => (k, v),
        };
        *cache = Some((k.shallow_clone(), v.shallow_clone()));
        let groups = cfg.num_attention_heads / cfg.num_key_value_heads;
        let repeat = |t: &Tensor| -> Tensor {
            if groups == 1 {
                return t.shallow_clone();
            }
            let s = t.size();
            t.unsqueeze(2).expand([s[0], s[1], groups, s[2], s[3]], false).reshape([s[0], s[1] * groups, s[2], s[3]])
        };
        // Unmasked, the fused kernels take the key/value heads as they are
        // (enable_gqa), as transformers does; with a mask only the math kernel
        // would accept them, so the heads are repeated instead.
        // sdpa's is_causal aligns to the top left, so a lone last query row
        // takes no causal flag (it may see every key) and its mask row instead.
        let causal = ctx.causal && lq == l;
        let mask = ctx.mask.map(|m| trailing(m, 2, lq));
        let gqa = groups > 1 && mask.is_none();
        let mut out = if gqa {
            Tensor::scaled_dot_product_attention(&q, &k, &v, None::<&Tensor>, 0.0, causal, None, true)
        } else {
            Tensor::scaled_dot_product_attention(&q, &repeat(&k), &repeat(&v), mask.as_ref(), 0.0, causal && mask.is_none(), None, false)
        };
        if let Some((layer, hook)) = edit {
            let (k, v) = (repeat(&k), repeat(&v));
            let parts = AttentionParts { q: &q, k: &k, v: &v, last_row_keys, scale: (hd as f64).powf(-0.5) };
            out = hook.attend(layer, &parts, out);
        }
        self.o.forward(&out.transpose(1, 2).reshape([b, lq, -1]))
    }
}

/// The last `n` entries of `t` along `dim` (all of them when that is every entry).
fn trailing(t: &Tensor, dim: i64, n: i64) -> Tensor {
    let len = t.size()[dim as usize];
    if n >= len {
        t.shallow_clone()
    } else {
        t.narrow(dim, len - n, n)
    }
}
