//! Building blocks shared by the vision tower and the language model, and the
//! one place weights are named: each block asks a `TensorSource` for its
//! tensors, so the same code both plans the expected set and loads it.

use super::lora::Lora;
use anyhow::Result;
use tch::{Kind, Tensor};

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
            Some(lora) => y + lora.delta(x),
            None => y,
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
    let mut size = x.size();
    if size.len() == 2 {
        return x.linear(weight, bias);
    }
    let last = size.last_mut().expect("a non-scalar input");
    let y = x.reshape([-1, *last]).linear(weight, bias);
    *last = weight.size()[0];
    y.reshape(size)
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
