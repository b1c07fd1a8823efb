//! Building blocks shared by the vision tower and the language model, and the
//! one place weights are named: each block asks a `TensorSource` for its
//! tensors, so the same code both plans the expected set and loads it.

use super::lora::layer::Lora;
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// Where block constructors get their tensors from.
pub trait TensorSource {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor>;
}

/// Records the (name, shape) pairs a model asks for, without loading anything.
#[derive(Default)]
pub struct Planner {
    pub wanted: Vec<(String, Vec<i64>)>,
}

impl TensorSource for Planner {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.wanted.push((name.to_string(), shape.to_vec()));
        Ok(Tensor::new())
    }
}

/// y = x W^T + b, plus a LoRA update when an adapter is attached.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub lora: Option<Lora>,
}

impl Linear {
    pub fn load(src: &mut dyn TensorSource, prefix: &str, input: i64, output: i64, bias: bool) -> Result<Linear> {
        let weight = src.tensor(&format!("{prefix}.weight"), &[output, input])?;
        let bias = if bias { Some(src.tensor(&format!("{prefix}.bias"), &[output])?) } else { None };
        Ok(Linear { weight, bias, lora: None })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = linear(x, &self.weight, self.bias.as_ref());
        match &self.lora {
            Some(lora) if lora.enabled => y + lora.delta(x),
            _ => y,
        }
    }

    /// (in, out) features.
    pub fn dims(&self) -> (i64, i64) {
        let s = self.weight.size();
        (s[1], s[0])
    }
}

/// x W^T + b over the last dimension, as one 2-D matrix product. A 3-D
/// input can send libtorch down a batched path that makes a contiguous copy
/// of the transposed weight on every call (at bf16 on the CPU that is a
/// 622 MB copy of the 3B model's tied embedding per logits call).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let size = x.size();
    let rows = if size.len() == 2 { x.shallow_clone() } else { x.reshape([-1, *size.last().expect("a non-scalar input")]) };
    let y = match row_blocks(&rows, weight) {
        Some(blocks) => row_block_linear(&rows, weight, bias, blocks),
        None => rows.linear(weight, bias),
    };
    if size.len() == 2 {
        return y;
    }
    let mut out = size;
    *out.last_mut().expect("a non-scalar input") = weight.size()[0];
    y.reshape(out)
}

/// Inputs of at most this many rows (decoding steps, up to batch 8) take
/// `row_block_linear`; from about 16 rows on, MKL's own product is as fast.
const ROW_BLOCK_MAX_ROWS: i64 = 8;

/// Weights of fewer elements keep the plain product: below ~64K elements
/// (256 KB) waking the second thread costs more than streaming the weight
/// (measured on 2 cores: 64x64 0.4x, 128x512 1.0x, 256x512 1.28x, 512x512
/// 1.53x, 1536x512 1.81x, 8192x512 2.32x).
const ROW_BLOCK_MIN_WEIGHT: i64 = 1 << 17;

/// How many blocks of weight rows to split a product into, when splitting
/// pays: on the CPU, in f32, for a few input rows and a weight that does
/// not fit in a core's cache, without gradients, with more than one
/// intra-op thread and the rows dividing evenly.
fn row_blocks(x: &Tensor, weight: &Tensor) -> Option<i64> {
    let threads = tch::get_num_threads() as i64;
    let out = weight.size()[0];
    let eligible = threads > 1
        && x.device() == Device::Cpu
        && x.kind() == Kind::Float
        && weight.kind() == Kind::Float
        && x.size()[0] <= ROW_BLOCK_MAX_ROWS
        && weight.numel() as i64 >= ROW_BLOCK_MIN_WEIGHT
        && out % threads == 0
        && weight.is_contiguous()
        && !x.requires_grad()
        && !weight.requires_grad();
    eligible.then_some(threads)
}

/// x W^T + b as a batched product over `blocks` row blocks of W. For a
/// few input rows MKL's product (a matrix-vector product at one row) runs on
/// one thread and streams the weight at one core's memory bandwidth; libtorch
/// spreads a batched product's batches over the intra-op threads, so each
/// thread streams its own block of rows (small checkpoint on 2 cores: 8 ->
/// 14 GB/s). Each output is the same dot product of one weight row with x.
fn row_block_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, blocks: i64) -> Tensor {
    let (rows, input) = (x.size()[0], x.size()[1]);
    let out = weight.size()[0];
    let w = weight.view([blocks, out / blocks, input]);
    let xt = x.tr().unsqueeze(0).expand([blocks, input, rows], false);
    let y = match bias {
        Some(b) => b.reshape([blocks, out / blocks, 1]).baddbmm(&w, &xt, 1, 1),
        None => w.bmm(&xt),
    };
    y.reshape([out, rows]).tr().contiguous()
}

/// RMSNorm computed in f32, as transformers does, then cast back.
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    pub fn load(src: &mut dyn TensorSource, name: &str, dim: i64, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm { weight: src.tensor(&format!("{name}.weight"), &[dim])?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let h = x.to_kind(Kind::Float);
        let var = h.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let h = h * (var + self.eps).rsqrt();
        &self.weight * h.to_kind(kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Silu,
    Gelu,
    GeluTanh,
    QuickGelu,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Activation> {
        Ok(match name {
            "silu" | "swish" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
            "quick_gelu" => Activation::QuickGelu,
            other => anyhow::bail!("hidden_act `{other}` is not supported (silu, gelu, gelu_pytorch_tanh, quick_gelu)"),
        })
    }

    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Silu => x.silu(),
            Activation::Gelu => x.gelu("none"),
            Activation::GeluTanh => x.gelu("tanh"),
            Activation::QuickGelu => x * (x * 1.702).sigmoid(),
        }
    }
}

/// SwiGLU feed-forward: down(act(gate(x)) * up(x)).
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub act: Activation,
}

impl GatedMlp {
    pub fn load(src: &mut dyn TensorSource, prefix: &str, dim: i64, hidden: i64, bias: bool, act: Activation) -> Result<GatedMlp> {
        Ok(GatedMlp {
            gate: Linear::load(src, &format!("{prefix}.gate_proj"), dim, hidden, bias)?,
            up: Linear::load(src, &format!("{prefix}.up_proj"), dim, hidden, bias)?,
            down: Linear::load(src, &format!("{prefix}.down_proj"), hidden, dim, bias)?,
            act,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.down.forward(&(self.act.apply(&self.gate.forward(x)) * self.up.forward(x)))
    }
}

/// (-x2, x1) for the two halves of the last dimension.
pub fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[x2.neg(), x1], -1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn row_blocks_give_the_plain_product() {
        tch::manual_seed(3);
        let opts = (Kind::Float, Device::Cpu);
        let w = Tensor::randn([12, 5], opts);
        let b = Tensor::randn([12], opts);
        for rows in [1, 3] {
            let x = Tensor::randn([rows, 5], opts);
            for blocks in [2, 3, 4] {
                let plain = x.linear(&w, Some(&b));
                let split = row_block_linear(&x, &w, Some(&b), blocks);
                assert_eq!(split.size(), vec![rows, 12]);
                assert!(split.is_contiguous());
                assert!(close(&split, &plain) < 1e-5, "rows {rows}, blocks {blocks}: {}", close(&split, &plain));
                let no_bias = row_block_linear(&x, &w, None, blocks);
                assert!(close(&no_bias, &x.linear::<Tensor>(&w, None)) < 1e-5);
            }
        }
    }

    #[test]
    fn row_blocks_only_where_they_pay() {
        let opts = (Kind::Float, Device::Cpu);
        let threads = tch::get_num_threads() as i64;
        let w = Tensor::zeros([threads * 4096, 64], opts);
        let few = Tensor::zeros([ROW_BLOCK_MAX_ROWS, 64], opts);
        let expected = (threads > 1).then_some(threads);
        assert_eq!(row_blocks(&few, &w), expected);
        assert_eq!(row_blocks(&Tensor::zeros([ROW_BLOCK_MAX_ROWS + 1, 64], opts), &w), None, "a prefill keeps MKL's product");
        assert_eq!(row_blocks(&few, &Tensor::zeros([threads * 64, 64], opts)), None, "a cache-sized weight keeps it too");
        assert_eq!(row_blocks(&few.to_kind(Kind::BFloat16), &w.to_kind(Kind::BFloat16)), None);
        assert_eq!(row_blocks(&few, &w.set_requires_grad(true)), None, "training keeps the plain product");
        if threads > 1 {
            assert_eq!(row_blocks(&few, &Tensor::zeros([threads * 4096 + 1, 64], opts)), None, "uneven rows");
        }
    }

    #[test]
    fn linear_keeps_leading_dimensions() {
        let opts = (Kind::Float, Device::Cpu);
        let w = Tensor::randn([8, 6], opts);
        let x = Tensor::randn([2, 1, 6], opts);
        let y = linear(&x, &w, None);
        assert_eq!(y.size(), vec![2, 1, 8]);
        assert!(close(&y, &x.matmul(&w.tr())) < 1e-5);
    }
}
