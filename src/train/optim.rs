//! AdamW (decoupled weight decay, as torch.optim.AdamW), the warmup +
//! cosine schedule (as transformers' get_cosine_schedule_with_warmup) and
//! global-norm gradient clipping (as torch.nn.utils.clip_grad_norm_).
//!
//! Written out rather than taken from tch's optimizer because its state
//! cannot be read or restored, and `--resume` needs exactly that.

use anyhow::{bail, Result};
use std::f64::consts::PI;
use tch::{Kind, Tensor};

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Optimizer steps taken.
    pub step: i64,
    /// (exp_avg, exp_avg_sq) per parameter, f32, in parameter order.
    state: Vec<(Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(params: &[(String, Tensor)], weight_decay: f64) -> AdamW {
        let state = params
            .iter()
            .map(|(_, p)| (Tensor::zeros(p.size(), (Kind::Float, p.device())), Tensor::zeros(p.size(), (Kind::Float, p.device()))))
            .collect();
        AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, state }
    }

    /// One update of every parameter that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, params: &[(String, Tensor)], lr: f64) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        for ((_, p), (m, v)) in params.iter().zip(self.state.iter_mut()) {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let g = g.to_kind(Kind::Float);
            let _ = m.g_mul_scalar_(self.beta1).g_add_(&(&g * (1.0 - self.beta1)));
            let _ = v.g_mul_scalar_(self.beta2).g_add_(&(&g * &g * (1.0 - self.beta2)));
            let mut p32 = p.to_kind(Kind::Float);
            if self.weight_decay > 0.0 {
                p32 *= 1.0 - lr * self.weight_decay;
            }
            let denom = v.sqrt() / bc2.sqrt() + self.eps;
            let updated = p32 - (&*m / denom) * (lr / bc1);
            p.shallow_clone().copy_(&updated.to_kind(p.kind()));
        }
    }

    /// The state as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`, and
    /// `step`: the updates taken, which is not the trainer's step count when
    /// a step makes several updates or none, as GRPO's may).
    pub fn state_tensors(&self, params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from_slice(&[self.step]))];
        for ((name, _), (m, v)) in params.iter().zip(&self.state) {
            out.push((format!("exp_avg.{name}"), m.to_device(tch::Device::Cpu)));
            out.push((format!("exp_avg_sq.{name}"), v.to_device(tch::Device::Cpu)));
        }
        out
    }

    /// Restores state saved by `state_tensors` for the same parameters;
    /// `step` counts the updates when the state does not (older files).
    pub fn restore(&mut self, params: &[(String, Tensor)], saved: &[(String, Tensor)], step: i64) -> Result<()> {
        let find = |key: String| saved.iter().find(|(n, _)| *n == key).map(|(_, t)| t.shallow_clone());
        for ((name, p), (m, v)) in params.iter().zip(self.state.iter_mut()) {
            let (Some(sm), Some(sv)) = (find(format!("exp_avg.{name}")), find(format!("exp_avg_sq.{name}"))) else {
                bail!("optimizer state has no entry for `{name}` (was it saved with other --lora/--full settings?)");
            };
            if sm.size() != p.size() || sv.size() != p.size() {
                bail!("optimizer state for `{name}` is {:?}, the parameter {:?}", sm.size(), p.size());
            }
            *m = sm.to_kind(Kind::Float).to_device(p.device());
            *v = sv.to_kind(Kind::Float).to_device(p.device());
        }
        self.step = find("step".into()).and_then(|t| i64::try_from(t).ok()).unwrap_or(step);
        Ok(())
    }
}

/// Learning rate for optimizer step `step` (0-based): linear warmup from 0
/// over `warmup` steps, then half a cosine down to 0 at `total`.
pub fn scheduled_lr(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    base * (0.5 * (1.0 + (PI * progress).cos())).max(0.0)
}

/// Warmup steps for a ratio of the total (rounded up, as transformers does).
pub fn warmup_steps(total: usize, ratio: f64) -> usize {
    (total as f64 * ratio).ceil() as usize
}

/// Scales gradients so their global L2 norm is at most `max_norm` (0: no
/// clipping); returns the norm before clipping.
pub fn clip_grad_norm(params: &[(String, Tensor)], max_norm: f64) -> f64 {
    let _guard = tch::no_grad_guard();
    let grads: Vec<Tensor> = params.iter().map(|(_, p)| p.grad()).filter(|g| g.defined()).collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.to_kind(Kind::Float).norm()).collect();
    let total = f64::try_from(Tensor::stack(&norms, 0).norm()).unwrap_or(f64::NAN);
    if max_norm > 0.0 {
        let coef = (max_norm / (total + 1e-6)).min(1.0);
        if coef < 1.0 {
            for mut g in grads {
                let _ = g.g_mul_scalar_(coef);
            }
        }
    }
    total
}

pub fn zero_grad(params: &[(String, Tensor)]) {
    for (_, p) in params {
        let mut p = p.shallow_clone();
        p.zero_grad();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(scheduled_lr(1.0, 0, 10, 100), 0.0);
        assert!((scheduled_lr(1.0, 5, 10, 100) - 0.5).abs() < 1e-12);
        assert!((scheduled_lr(1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((scheduled_lr(1.0, 55, 10, 100) - 0.5).abs() < 1e-12);
        assert!(scheduled_lr(1.0, 100, 10, 100).abs() < 1e-12);
        assert_eq!(scheduled_lr(2.0, 0, 0, 10), 2.0);
        assert_eq!(warmup_steps(100, 0.03), 3);
    }

    #[test]
    fn adamw_matches_the_closed_form_first_step_and_clipping_scales() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let params = vec![("w".to_string(), p.shallow_clone())];
        (&p * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float).backward();
        let norm = clip_grad_norm(&params, 1.0);
        assert!((norm - 5.0).abs() < 1e-5);
        let g: Vec<f32> = Vec::try_from(p.grad()).unwrap();
        assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5, "{g:?}");
        let mut opt = AdamW::new(&params, 0.1);
        opt.step(&params, 0.01);
        // Step 1: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (+ decay).
        let w: Vec<f32> = Vec::try_from(&p).unwrap();
        assert!((w[0] - (1.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-5, "{w:?}");
        assert!((w[1] - (-2.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-5, "{w:?}");
        let saved = opt.state_tensors(&params);
        let mut again = AdamW::new(&params, 0.1);
        again.restore(&params, &saved, opt.step).unwrap();
        assert_eq!(again.step, 1);
        assert!(again.restore(&[("other".into(), p.shallow_clone())], &saved, 1).is_err());
        zero_grad(&params);
        assert_eq!(f64::try_from(p.grad().abs().sum(Kind::Float)).unwrap(), 0.0);
    }
}
