//! Saliency S_i = |d f(x) / d x_i|: gradients of a target logit at the last
//! prompt position with respect to the normalised pixel_values. Only the
//! pixels require grad; the weights are plain tensors without grad, so no
//! weight gradients are ever allocated.

use super::image_processor::{patchify, resized_rgb, unpatchify_map, PixelReduce, ResizePolicy};
use super::model::Qwen25VL;
use super::processor::{ModelInputs, PreparedPrompt};
use super::text::Rows;
use super::Engine;
use crate::viz::SaliencyMap;
use anyhow::{bail, Result};
use image::DynamicImage;
use tch::{Kind, Tensor};

/// What f(x) is.
#[derive(Clone, Debug, PartialEq)]
pub enum SaliencyTarget {
    /// The logit of one token at the answer position.
    Token(i64),
    /// logit(plus) - logit(minus), e.g. "left" - "right".
    Contrast { plus: i64, minus: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Baseline {
    /// All pixels black.
    Black,
    /// The image under a Gaussian blur of this sigma (in resized pixels).
    Blurred { sigma: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SaliencyMethod {
    Grad,
    /// Mean gradient over `n` copies with Gaussian noise of `sigma` x the pixel range.
    SmoothGrad {
        n: usize,
        sigma: f64,
        seed: i64,
    },
    /// Integrated Gradients with `steps` midpoint-rule steps from a baseline.
    IntegratedGradients {
        steps: usize,
        baseline: Baseline,
    },
}

impl std::fmt::Display for SaliencyMethod {
    /// The spec `parse` reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaliencyMethod::Grad => f.write_str("grad"),
            SaliencyMethod::SmoothGrad { n, sigma, .. } => write!(f, "smoothgrad:{n},{sigma}"),
            SaliencyMethod::IntegratedGradients { steps, baseline: Baseline::Black } => write!(f, "ig:{steps}"),
            SaliencyMethod::IntegratedGradients { steps, baseline: Baseline::Blurred { .. } } => write!(f, "ig:{steps},blur"),
        }
    }
}

impl SaliencyMethod {
    /// `grad`, `smoothgrad[:N,SIGMA]`, `ig[:STEPS[,black|blur]]`.
    pub fn parse(spec: &str) -> Result<SaliencyMethod> {
        let call = crate::kv::Call::parse(spec);
        let e = anyhow::Error::msg;
        Ok(match call.name {
            "grad" | "gradient" => {
                call.at_most(0).map_err(e)?;
                SaliencyMethod::Grad
            }
            "smoothgrad" => {
                call.at_most(2).map_err(e)?;
                SaliencyMethod::SmoothGrad { n: call.count(0, 16).map_err(e)?, sigma: call.positive(1, 0.15).map_err(e)?, seed: 0 }
            }
            "ig" | "integrated-gradients" => {
                call.at_most(2).map_err(e)?;
                let baseline = match call.word(1) {
                    None | Some("black") => Baseline::Black,
                    Some("blur") | Some("blurred") => Baseline::Blurred { sigma: 8.0 },
                    Some(other) => bail!("IG baseline `{other}` is not black or blur"),
                };
                SaliencyMethod::IntegratedGradients { steps: call.count(0, 32).map_err(e)?, baseline }
            }
            other => bail!("saliency method `{other}` is not grad, smoothgrad or ig"),
        })
    }
}

/// Attributions on the processed pixel values, and the maps they make.
#[derive(Debug)]
pub struct PixelAttribution {
    /// [N, patch_dim] f32 on the CPU: the gradient (Grad, SmoothGrad) or the
    /// attribution (x - baseline) * mean gradient (IG).
    pub values: Tensor,
    /// f(x) for the unperturbed input.
    pub target_value: f64,
    /// IG only: f(baseline) and |sum(attr) - (f(x) - f(baseline))| / |f(x) - f(baseline)|.
    pub baseline_value: Option<f64>,
    pub completeness_error: Option<f64>,
    pub signed: bool,
    /// One map per image, in the original image's coordinates.
    pub maps: Vec<SaliencyMap>,
}

fn target_of(logits: &Tensor, target: &SaliencyTarget) -> Tensor {
    match *target {
        SaliencyTarget::Token(t) => logits.select(-1, t),
        SaliencyTarget::Contrast { plus, minus } => logits.select(-1, plus) - logits.select(-1, minus),
    }
}

/// f(pixel_values) and d f / d pixel_values [N, patch_dim] for the one prompt in `inputs`.
pub fn pixel_gradient_of(model: &Qwen25VL, inputs: &ModelInputs, pixel_values: &Tensor, target: &SaliencyTarget) -> Result<(f64, Tensor)> {
    let pv = pixel_values.to_device(model.device).to_kind(Kind::Float).detach().set_requires_grad(true);
    let vision = model.vision_embeds(&pv, &inputs.grids);
    let mut cache = model.new_cache();
    let hidden = model.prefill_with_vision(inputs, Some(&vision), &mut cache, Rows::Last)?;
    let logits = model.logits(&hidden).to_kind(Kind::Float).reshape([-1]);
    let f = target_of(&logits, target);
    let value = f.double_value(&[]);
    f.backward();
    let grad = pv.grad();
    if !grad.defined() {
        bail!("no gradient reached the pixels");
    }
    Ok((value, grad.to_device(tch::Device::Cpu)))
}

impl Engine {
    /// f(pixel_values) and d f / d pixel_values [N, patch_dim] for one prompt.
    pub fn pixel_gradient(&self, prompt: &PreparedPrompt, pixel_values: &Tensor, target: &SaliencyTarget) -> Result<(f64, Tensor)> {
        pixel_gradient_of(&self.model, &self.collate(&[prompt]), pixel_values, target)
    }

    fn target_value(&self, prompt: &PreparedPrompt, pixel_values: &Tensor, target: &SaliencyTarget) -> Result<f64> {
        let _guard = tch::no_grad_guard();
        let mut inputs = self.collate(&[prompt]);
        inputs.pixel_values = Some(pixel_values.to_device(self.model.device));
        let logits = self.model.last_logits(&inputs)?.to_kind(Kind::Float).reshape([-1]);
        Ok(target_of(&logits, target).double_value(&[]))
    }

    /// Saliency for `prompt` (built from `images` with `policy`) by `method`,
    /// with per-image maps in the original images' coordinates.
    pub fn saliency(
        &self,
        images: &[DynamicImage],
        prompt: &PreparedPrompt,
        policy: &ResizePolicy,
        target: &SaliencyTarget,
        method: &SaliencyMethod,
    ) -> Result<PixelAttribution> {
        let values: Vec<f32> = prompt.images.iter().flat_map(|i| i.values.iter().copied()).collect();
        if values.is_empty() {
            bail!("saliency needs at least one image in the prompt");
        }
        let dim = prompt.images[0].patch_dim as i64;
        let x = Tensor::from_slice(&values).reshape([-1, dim]);
        let (values, target_value, baseline_value, completeness_error, signed) = match *method {
            SaliencyMethod::Grad => {
                let (v, g) = self.pixel_gradient(prompt, &x, target)?;
                (g, v, None, None, false)
            }
            SaliencyMethod::SmoothGrad { n, sigma, seed } => {
                let n = n.max(1);
                let range = (x.max() - x.min()).double_value(&[]);
                tch::manual_seed(seed);
                let mut sum = Tensor::zeros_like(&x);
                for _ in 0..n {
                    let noisy = &x + x.randn_like() * (sigma * range);
                    sum += self.pixel_gradient(prompt, &noisy, target)?.1;
                }
                let value = self.target_value(prompt, &x, target)?;
                (sum / n as f64, value, None, None, false)
            }
            SaliencyMethod::IntegratedGradients { steps, baseline } => {
                let base = self.baseline_pixels(images, prompt, policy, baseline)?;
                let steps = steps.max(1);
                let delta = &x - &base;
                let mut sum = Tensor::zeros_like(&x);
                for k in 0..steps {
                    let a = (k as f64 + 0.5) / steps as f64;
                    sum += self.pixel_gradient(prompt, &(&base + &delta * a), target)?.1;
                }
                let attr = &delta * (sum / steps as f64);
                let fx = self.target_value(prompt, &x, target)?;
                let fb = self.target_value(prompt, &base, target)?;
                let total = attr.sum(Kind::Double).double_value(&[]);
                let err = (total - (fx - fb)).abs() / (fx - fb).abs().max(1e-12);
                (attr, fx, Some(fb), Some(err), true)
            }
        };
        let reduce = if signed { PixelReduce::SumSigned } else { PixelReduce::MaxAbsChannel };
        let mut maps = Vec::new();
        let mut row = 0i64;
        for img in &prompt.images {
            let n = img.num_patches() as i64;
            let part = Vec::<f32>::try_from(values.narrow(0, row, n).flatten(0, -1))?;
            row += n;
            let (w, h, map) = unpatchify_map(&part, img.grid, &self.processor.pre, reduce);
            maps.push(SaliencyMap::new(w, h, map, signed).resized(img.original.0, img.original.1));
        }
        Ok(PixelAttribution { values, target_value, baseline_value, completeness_error, signed, maps })
    }

    /// The IG baseline in processed-pixel space, image by image.
    fn baseline_pixels(
        &self,
        images: &[DynamicImage],
        prompt: &PreparedPrompt,
        policy: &ResizePolicy,
        baseline: Baseline,
    ) -> Result<Tensor> {
        if images.len() != prompt.images.len() {
            bail!("{} images for a prompt with {}", images.len(), prompt.images.len());
        }
        let mut all = Vec::new();
        for (img, patches) in images.iter().zip(&prompt.images) {
            let resized = resized_rgb(img, &self.processor.pre, policy)?;
            let base = match baseline {
                Baseline::Black => image::RgbImage::new(resized.width(), resized.height()),
                Baseline::Blurred { sigma } => image::imageops::blur(&resized, sigma),
            };
            all.extend(patchify(&base, &self.processor.pre, patches.original).values);
        }
        Ok(Tensor::from_slice(&all).reshape([-1, prompt.images[0].patch_dim as i64]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_methods() {
        assert_eq!(SaliencyMethod::parse("grad").unwrap(), SaliencyMethod::Grad);
        assert_eq!(SaliencyMethod::parse("smoothgrad:8,0.2").unwrap(), SaliencyMethod::SmoothGrad { n: 8, sigma: 0.2, seed: 0 });
        assert_eq!(
            SaliencyMethod::parse("ig:16,blur").unwrap(),
            SaliencyMethod::IntegratedGradients { steps: 16, baseline: Baseline::Blurred { sigma: 8.0 } }
        );
        assert!(SaliencyMethod::parse("lrp").is_err());
        assert!(SaliencyMethod::parse("ig:10,grey").unwrap_err().to_string().contains("black or blur"));
    }
}
