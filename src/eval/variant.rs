//! What is changed before asking: nothing, the mirror image, a red box
//! around the reference object, or attention scaling.

use crate::data::visual_prompt::{draw_box, BoxStyle};
use crate::data::{flip::flip_labels, Sample};
use crate::engine::intervene::Intervention;
use crate::spatial::reference::{boxed_question, reference_phrase};
use anyhow::{bail, Result};
use image::DynamicImage;

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Variant {
    #[default]
    Plain,
    Flipped,
    Boxed,
    Attention(Intervention),
}

impl Variant {
    /// plain | flipped | boxed | adaptvis[:T,W1,W2] | scaling:ALPHA
    pub fn parse(spec: &str) -> Result<Variant> {
        Ok(match spec {
            "plain" => Variant::Plain,
            "flipped" => Variant::Flipped,
            "boxed" => Variant::Boxed,
            s if s.starts_with("adaptvis") || s.starts_with("scaling") => Variant::Attention(Intervention::parse(s)?),
            other => bail!("variant `{other}` is not plain, flipped, boxed, adaptvis or scaling:ALPHA"),
        })
    }

    /// The spec `parse` reads back.
    pub fn spec(&self) -> String {
        match self {
            Variant::Attention(i) => i.to_string(),
            other => other.name().to_string(),
        }
    }

    /// The variant's kind as run names carry it: plain, flipped, boxed, adaptvis or scaling.
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Flipped => "flipped",
            Variant::Boxed => "boxed",
            Variant::Attention(Intervention::Scaling { .. }) => "scaling",
            Variant::Attention(_) => "adaptvis",
        }
    }

    pub fn intervention(&self) -> Intervention {
        match self {
            Variant::Attention(i) => i.clone(),
            _ => Intervention::None,
        }
    }

    /// The sample, images and question to ask, plus variant details for the record.
    pub fn apply(
        &self,
        sample: &Sample,
        images: Vec<DynamicImage>,
    ) -> Result<(Sample, Vec<DynamicImage>, serde_json::Map<String, serde_json::Value>)> {
        let mut details = serde_json::Map::new();
        match self {
            Variant::Plain | Variant::Attention(_) => Ok((sample.clone(), images, details)),
            Variant::Flipped => {
                let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
                Ok((flip_labels(sample, &widths), images.iter().map(|i| i.fliph()).collect(), details))
            }
            Variant::Boxed => {
                let Some(b) = sample.boxes.iter().find(|b| b.image == 0) else { bail!("no box for the reference object in the dataset") };
                let phrase = sample.reference.clone().or_else(|| reference_phrase(&sample.question).map(|r| r.phrase));
                let Some(phrase) = phrase else { bail!("no reference phrase in the question") };
                let style = BoxStyle::default();
                let mut imgs = images;
                imgs[0] = draw_box(&imgs[0], b, &style);
                let mut s = sample.clone();
                s.question = boxed_question(&sample.question, &phrase, &style.color_name);
                details.insert("box".into(), serde_json::json!([b.x0, b.y0, b.x1, b.y1]));
                details.insert("phrase".into(), phrase.into());
                Ok((s, imgs, details))
            }
        }
    }
}

/// The sample with its options rotated by `k` (gold follows its text).
pub fn rotate(sample: &Sample, k: usize) -> Sample {
    if k == 0 || sample.options.is_empty() {
        return sample.clone();
    }
    let texts: Vec<String> = sample.options.iter().map(|o| o.text.clone()).collect();
    let n = texts.len();
    let rotated: Vec<String> = (0..n).map(|i| texts[(i + k) % n].clone()).collect();
    let mut s = sample.clone();
    s.set_options(rotated).expect("a rotation keeps the option count");
    if let Some(g) = sample.gold_letter.and_then(|l| sample.option(l)).map(|o| o.text.clone()) {
        s.set_gold_text(&g);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_gold_with_its_text() {
        let mut s = Sample::new("1", "t");
        s.set_options(["left", "right", "front"]).unwrap();
        s.set_gold_letter('A');
        let r = rotate(&s, 1);
        assert_eq!(r.options.iter().map(|o| o.text.as_str()).collect::<Vec<_>>(), vec!["right", "front", "left"]);
        assert_eq!(r.gold_letter, Some('C'));
        assert_eq!(rotate(&s, 3 % 3), s);
        assert!(Variant::parse("scaling:2").is_ok() && Variant::parse("zoom").is_err());
    }
}
