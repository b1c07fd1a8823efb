//! `flipscope saliency` and `flipscope attention`: where the model looks.

use super::target::{Target, TargetArgs};
use crate::data::BoundingBox;
use crate::engine::saliency::{SaliencyMethod, SaliencyTarget};
use crate::engine::{Engine, PreparedPrompt};
use crate::eval::answer_labels;
use crate::viz::{render, Colormap, HeatmapStyle, SaliencyMap};
use anyhow::{Context, Result};
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

#[derive(Args, Debug)]
pub struct SaliencyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Target this token id's logit at the answer position.
    #[arg(long, conflicts_with_all = ["target_option", "objective"])]
    pub target_token: Option<i64>,
    /// Target this option letter's logit.
    #[arg(long)]
    pub target_option: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub objective: Objective,
    /// grad | smoothgrad[:N,SIGMA] | ig[:STEPS[,black|blur]]
    #[arg(long, default_value = "grad", value_parser = SaliencyMethod::parse)]
    pub method: SaliencyMethod,
    /// Report the share of saliency inside this box (x0,y0,x1,y1 in original pixels) and outline it.
    #[arg(long, value_parser = BoundingBox::parse)]
    pub r#box: Option<BoundingBox>,
    /// Heatmap PNG of the first image (further images get _2, _3, ...).
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub out: Option<PathBuf>,
    /// Default: inferno, or diverging for signed attributions.
    #[arg(long, value_enum)]
    pub colormap: Option<Colormap>,
    #[arg(long, default_value_t = 0.6)]
    pub alpha: f32,
    #[arg(long, default_value_t = 99.0)]
    pub clip: f64,
    /// Write grad_pixel_values [N, 1176] (and the method's attribution) as f32 safetensors.
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub dump: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AttentionArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// LM layers, e.g. 0,8,16 or `all`.
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// One head instead of the mean over heads.
    #[arg(long)]
    pub head: Option<usize>,
    /// PNG prefix: writes PREFIX_L<layer>.png over the first image.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Colormap::Inferno)]
    pub colormap: Colormap,
}

/// Which logit `saliency` explains (without --target-token/--target-option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// The option the model scores highest (or its next token).
    #[default]
    Predicted,
    /// The gold option.
    Gold,
    /// The gold option's logit minus its horizontally mirrored option's.
    Contrast,
}

fn option_token(engine: &Engine, label: &str) -> Result<i64> {
    Ok(engine.option_token_ids(&[label.to_string()])?[0])
}

fn resolve_objective(args: &SaliencyArgs, t: &Target, prompt: &PreparedPrompt) -> Result<(SaliencyTarget, String)> {
    let e = &t.engine;
    if let Some(id) = args.target_token {
        return Ok((SaliencyTarget::Token(id), format!("explains token {id}")));
    }
    if let Some(l) = &args.target_option {
        return Ok((SaliencyTarget::Token(option_token(e, l)?), format!("explains option {l}")));
    }
    let sample = t.sample.as_ref();
    match args.objective {
        Objective::Predicted => match sample {
            Some(s) if e.answers == crate::config::AnswersWith::Letters => {
                let labels = answer_labels(s)?;
                let best = e.score_options(&[prompt], &[labels])?.remove(0);
                Ok((SaliencyTarget::Token(best.token_ids[best.best]), format!("explains option {} (scored)", best.best_label())))
            }
            // A model that answers in words: what it says first, greedily.
            Some(_) => {
                let (id, first, answer) = e.first_answer_token(prompt)?;
                Ok((SaliencyTarget::Token(id), format!("explains {first:?} (generated; the first token of {answer:?})")))
            }
            None => {
                let logits = e.model.last_logits(&e.collate(&[prompt]))?;
                let id = logits.argmax(-1, false).int64_value(&[0]);
                Ok((
                    SaliencyTarget::Token(id),
                    format!("explains token {id} {:?} (the top next token)", e.processor.tokenizer.decode(&[id], false)?),
                ))
            }
        },
        Objective::Gold => {
            let s = sample.context("--objective gold needs --data/--id")?;
            let g = s.gold_letter.with_context(|| format!("sample {} has no gold letter", s.id))?;
            Ok((SaliencyTarget::Token(option_token(e, &g.to_string())?), format!("explains gold option {g}")))
        }
        Objective::Contrast => {
            let s = sample.context("--objective contrast needs --data/--id")?;
            let g = s.gold_letter.with_context(|| format!("sample {} has no gold letter", s.id))?;
            let gd = s.gold_direction.with_context(|| format!("sample {}'s gold names no direction", s.id))?;
            let mirror = s
                .options
                .iter()
                .find(|o| o.direction == Some(gd.mirrored()) && o.letter != g)
                .with_context(|| format!("sample {} has no option mirroring its gold {}", s.id, gd.name()))?;
            Ok((
                SaliencyTarget::Contrast { plus: option_token(e, &g.to_string())?, minus: option_token(e, &mirror.letter.to_string())? },
                format!("explains the contrast {g} ({}) - {} ({})", gd.name(), mirror.letter, mirror.text),
            ))
        }
    }
}

fn numbered(out: &Path, i: usize) -> PathBuf {
    if i == 0 {
        return out.to_path_buf();
    }
    let stem = out.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    out.with_file_name(format!("{stem}_{}.png", i + 1))
}

/// Prints the heatmap in the terminal when stdout is one.
fn show_inline(img: &image::RgbImage) {
    if std::io::stdout().is_terminal() {
        let conf = viuer::Config { absolute_offset: false, width: Some(60), ..Default::default() };
        let _ = viuer::print(&image::DynamicImage::ImageRgb8(img.clone()), &conf);
    }
}

fn save_heatmap(map: &SaliencyMap, base: &image::DynamicImage, style: &HeatmapStyle, path: &Path) -> Result<()> {
    let img = render(map, &base.to_rgb8(), style);
    crate::fsutil::check_output(path)?;
    img.save(path).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    show_inline(&img);
    Ok(())
}

pub fn run_saliency(args: &SaliencyArgs) -> Result<()> {
    let method = args.method;
    let t = args.target.resolve()?;
    if let (Some(b), Some(img)) = (&args.r#box, t.images.first()) {
        b.check_within(img.width(), img.height()).map_err(|e| anyhow::anyhow!("--box: {e}"))?;
    }
    let prompt = t.prompt()?;
    let (target, what) = resolve_objective(args, &t, &prompt)?;
    let a = t.engine.saliency(&t.images, &prompt, &t.policy, &target, &method)?;
    println!("target          {what}: f(x) = {:.4}", a.target_value);
    println!("method          {}", args.method);
    if let (Some(fb), Some(err)) = (a.baseline_value, a.completeness_error) {
        println!("IG completeness f(baseline) = {fb:.4}, sum(attr) vs f(x)-f(baseline): error {:.2}%", 100.0 * err);
    }
    let boxes: Vec<BoundingBox> = match (&args.r#box, &t.sample) {
        (Some(b), _) => vec![b.clone()],
        (None, Some(s)) => s.boxes.iter().filter(|b| b.image == 0).cloned().collect(),
        _ => vec![],
    };
    if let Some(b) = boxes.first() {
        println!(
            "in box          {:.1}% of the saliency mass lies inside ({}, {}, {}, {})",
            100.0 * a.maps[0].mass_inside(b),
            b.x0,
            b.y0,
            b.x1,
            b.y1
        );
    }
    let style = HeatmapStyle {
        colormap: args.colormap.unwrap_or(if a.signed { Colormap::Diverging } else { Colormap::Inferno }),
        clip_percentile: args.clip,
        alpha: args.alpha,
        boxes,
        ..Default::default()
    };
    if let Some(out) = &args.out {
        for (i, (map, img)) in a.maps.iter().zip(&t.images).enumerate() {
            save_heatmap(map, img, &style, &numbered(out, i))?;
        }
    }
    if let Some(path) = &args.dump {
        let grad = match method {
            SaliencyMethod::Grad => a.values.shallow_clone(),
            _ => {
                let values: Vec<f32> = prompt.images.iter().flat_map(|i| i.values.iter().copied()).collect();
                let x = Tensor::from_slice(&values).reshape([-1, prompt.images[0].patch_dim as i64]);
                t.engine.pixel_gradient(&prompt, &x, &target)?.1
            }
        };
        let named = [("grad_pixel_values", grad.to_kind(Kind::Float)), ("attribution", a.values.to_kind(Kind::Float))];
        crate::fsutil::atomic_write_with(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

pub fn run_attention(args: &AttentionArgs) -> Result<()> {
    let colormap = args.colormap;
    let t = args.target.resolve()?;
    let prompt = t.prompt()?;
    let n = t.engine.model.text.num_layers();
    let layers: Vec<usize> = if args.layers == "all" {
        (0..n).collect()
    } else {
        args.layers
            .split(',')
            .map(|x| x.trim().parse::<usize>().with_context(|| format!("layer `{x}` is not a number")))
            .collect::<Result<_>>()?
    };
    let maps = t.engine.attention_maps(&prompt, &layers, args.head)?;
    println!(
        "layer  image share  (last prompt token's attention on image tokens{})",
        args.head.map(|h| format!(", head {h}")).unwrap_or_default()
    );
    for m in &maps {
        println!("{:>5}  {:>10.1}%", m.layer, 100.0 * m.image_share);
        if let Some(prefix) = &args.out {
            let stem = prefix.with_extension("");
            let path = PathBuf::from(format!("{}_L{}.png", stem.display(), m.layer));
            let style = HeatmapStyle { colormap, clip_percentile: 100.0, ..Default::default() };
            save_heatmap(&m.maps[0], &t.images[0], &style, &path)?;
        }
    }
    Ok(())
}
