//! What the attribution commands look at: a model plus either images and a
//! prompt, or a dataset sample by id.

use super::engine_args::EngineArgs;
use crate::data::load_images;
use crate::data::{self, Sample};
use crate::engine::{Engine, PreparedPrompt, ResizePolicy};
use crate::eval::mcq_prompt;
use anyhow::{bail, Context, Result};
use clap::Args;
use image::DynamicImage;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Image file(s), with --prompt.
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    #[arg(long)]
    pub prompt: Option<String>,
    /// Dataset spec, with --id, instead of --image/--prompt.
    #[arg(long)]
    pub data: Option<String>,
    #[arg(long)]
    pub id: Option<String>,
    /// Resize every image to WIDTHxHEIGHT (multiples of 28).
    #[arg(long, value_parser = parse_size)]
    pub resize: Option<(u32, u32)>,
}

/// The resolved target: images, the prompt text, and the sample when one was named.
pub struct Target {
    pub engine: Engine,
    pub images: Vec<DynamicImage>,
    pub text: String,
    pub sample: Option<Sample>,
    pub policy: ResizePolicy,
}

impl TargetArgs {
    pub fn policy(&self) -> ResizePolicy {
        match self.resize {
            Some((width, height)) => ResizePolicy::Exact { width, height },
            None => ResizePolicy::Auto,
        }
    }

    pub fn sample(&self) -> Result<Option<Sample>> {
        match (&self.data, &self.id) {
            (Some(spec), Some(id)) => {
                let ds = data::load(spec)?;
                let s = ds.samples.into_iter().find(|s| &s.id == id).with_context(|| format!("no sample with id `{id}` in {spec}"))?;
                Ok(Some(s))
            }
            (Some(_), None) | (None, Some(_)) => bail!("--data and --id go together"),
            (None, None) => Ok(None),
        }
    }

    pub fn resolve(&self) -> Result<Target> {
        let sample = self.sample()?;
        let (images, text) = match (&sample, &self.prompt) {
            (Some(s), None) => (load_images(s)?, mcq_prompt(&s.question, s)),
            (None, Some(p)) => {
                if self.images.is_empty() {
                    bail!("--prompt needs at least one --image");
                }
                let imgs = self
                    .images
                    .iter()
                    .map(|p| Ok(data::images::decode(&data::ImageSource::Path(p.clone()))?))
                    .collect::<Result<Vec<_>>>()?;
                (imgs, p.clone())
            }
            (Some(_), Some(_)) => bail!("give either --data/--id or --image/--prompt, not both"),
            (None, None) => bail!("give --image and --prompt, or --data and --id"),
        };
        let engine = self.engine.load()?;
        Ok(Target { engine, images, text, sample, policy: self.policy() })
    }
}

impl Target {
    /// " · ID" naming the sample in a plot's title; empty for an image and prompt.
    pub fn sample_suffix(&self) -> String {
        self.sample.as_ref().map(|s| format!(" · {}", s.id)).unwrap_or_default()
    }

    pub fn prompt(&self) -> Result<PreparedPrompt> {
        self.engine.processor.prepare(&self.images, &self.text, &self.policy)
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT"))?;
    Ok((w.trim().parse().map_err(|_| format!("bad width in `{s}`"))?, h.trim().parse().map_err(|_| format!("bad height in `{s}`"))?))
}
