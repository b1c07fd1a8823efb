//! Which prompt positions are what: image tokens (and those inside a box),
//! the question after the image, the rest of the text, the last position.

use crate::data::BoundingBox;
use crate::engine::PreparedPrompt;
use anyhow::{bail, Result};

/// One image's tokens: where they start and their merged grid.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTokens {
    pub first: usize,
    pub rows: usize,
    pub cols: usize,
    /// (width, height) the model saw, and as given (boxes are in the latter).
    pub resized: (u32, u32),
    pub original: (u32, u32),
}

impl ImageTokens {
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PromptRegions {
    pub len: usize,
    pub image: Vec<usize>,
    /// The user's text after the last image, up to its end-of-turn token.
    pub question: Vec<usize>,
    /// Every position that is not an image token.
    pub text: Vec<usize>,
    pub last: usize,
    pub images: Vec<ImageTokens>,
}

impl PromptRegions {
    /// The regions of `prompt`: `image_token` marks image positions,
    /// `vision_end` closes each image, `turn_end` (`<|im_end|>`) ends the question.
    pub fn of(prompt: &PreparedPrompt, image_token: i64, vision_end: i64, turn_end: Option<i64>, merge: i64) -> Result<PromptRegions> {
        let ids = &prompt.input_ids;
        if ids.is_empty() {
            bail!("the prompt is empty");
        }
        let image: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == image_token).collect();
        let text: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] != image_token).collect();
        let mut images = Vec::new();
        let mut next = 0usize;
        for p in &prompt.images {
            let (rows, cols) = ((p.grid[1] / merge) as usize, (p.grid[2] / merge) as usize);
            let n = p.num_tokens(merge);
            let Some(&first) = image.get(next) else { bail!("the prompt has fewer image tokens than its images need") };
            images.push(ImageTokens { first, rows, cols, resized: p.resized, original: p.original });
            next += n;
        }
        if next != image.len() {
            bail!("the prompt has {} image tokens; its images need {next}", image.len());
        }
        let last = ids.len() - 1;
        let after = ids.iter().rposition(|&t| t == vision_end).map(|i| i + 1).unwrap_or(0);
        let end = turn_end.and_then(|e| ids[after..].iter().position(|&t| t == e).map(|k| after + k)).unwrap_or(last);
        let question: Vec<usize> = (after..end).filter(|&i| ids[i] != image_token).collect();
        Ok(PromptRegions { len: ids.len(), image, question, text, last, images })
    }

    /// Image-token positions whose cell's centre lies inside `b` (in the
    /// image's original pixels); the cell holding the box's centre when none does.
    pub fn in_box(&self, b: &BoundingBox) -> Result<Vec<usize>> {
        let Some(img) = self.images.get(b.image) else {
            bail!("the box is on image {} but the prompt has {}", b.image + 1, self.images.len())
        };
        // A box outside its image would otherwise land on the nearest edge token below.
        b.check_within(img.original.0, img.original.1).map_err(anyhow::Error::msg)?;
        let sx = img.resized.0 as f32 / img.original.0.max(1) as f32;
        let sy = img.resized.1 as f32 / img.original.1.max(1) as f32;
        let (cw, ch) = (img.resized.0 as f32 / img.cols.max(1) as f32, img.resized.1 as f32 / img.rows.max(1) as f32);
        let (x0, x1, y0, y1) = (b.x0 * sx, b.x1 * sx, b.y0 * sy, b.y1 * sy);
        let mut out = Vec::new();
        for r in 0..img.rows {
            for c in 0..img.cols {
                let (cx, cy) = ((c as f32 + 0.5) * cw, (r as f32 + 0.5) * ch);
                if cx >= x0 && cx < x1 && cy >= y0 && cy < y1 {
                    out.push(img.first + r * img.cols + c);
                }
            }
        }
        if out.is_empty() {
            let c = (((x0 + x1) / 2.0 / cw) as usize).min(img.cols.saturating_sub(1));
            let r = (((y0 + y1) / 2.0 / ch) as usize).min(img.rows.saturating_sub(1));
            out.push(img.first + r * img.cols + c);
        }
        Ok(out)
    }

    /// Every image-token position outside `inside`.
    pub fn image_except(&self, inside: &[usize]) -> Vec<usize> {
        self.image.iter().copied().filter(|p| !inside.contains(p)).collect()
    }
}

/// The sample's reference and target boxes: those labelled with the
/// metadata's `reference_object` / `target_object`, else the first and second box.
pub fn reference_and_target(sample: &crate::data::Sample) -> (Option<&BoundingBox>, Option<&BoundingBox>) {
    let named = |key: &str, fallback: usize| {
        let name = sample.metadata.get(key).and_then(|v| v.as_str());
        match name {
            Some(n) => sample.boxes.iter().find(|b| b.label.as_deref() == Some(n)),
            None => sample.boxes.get(fallback),
        }
    };
    (named("reference_object", 0), named("target_object", 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::image_processor::ImagePatches;

    /// A prompt of 2 text tokens, a 2x3 token image (grid 1x4x6 at merge 2), 3 question tokens, end of turn, 2 more.
    fn prompt() -> PreparedPrompt {
        let img = ImagePatches { values: vec![0.0; 24], patch_dim: 1, grid: [1, 4, 6], resized: (168, 112), original: (300, 200) };
        let ids = vec![1, 9, 12, 12, 12, 12, 12, 12, 10, 20, 21, 22, 4, 30, 31];
        let n = ids.len() as i64;
        PreparedPrompt {
            chat_text: String::new(),
            input_ids: ids,
            images: vec![img],
            positions: [(0..n).collect(), (0..n).collect(), (0..n).collect()],
            rope_delta: 0,
        }
    }

    #[test]
    fn regions_split_image_question_and_text() {
        let r = PromptRegions::of(&prompt(), 12, 10, Some(4), 2).unwrap();
        assert_eq!(r.image, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(r.question, vec![9, 10, 11]);
        assert_eq!(r.text.len(), 15 - 6);
        assert_eq!(r.last, 14);
        assert_eq!((r.images[0].rows, r.images[0].cols, r.images[0].first), (2, 3, 2));
    }

    #[test]
    fn boxes_pick_the_tokens_whose_cells_they_cover() {
        let r = PromptRegions::of(&prompt(), 12, 10, Some(4), 2).unwrap();
        // Original 300x200 -> 3 columns of 100 px, 2 rows of 100 px.
        assert_eq!(r.in_box(&BoundingBox::new(0.0, 0.0, 120.0, 110.0)).unwrap(), vec![2]);
        assert_eq!(r.in_box(&BoundingBox::new(90.0, 90.0, 300.0, 200.0)).unwrap(), vec![6, 7]);
        // Too small to hold a cell's centre: the cell holding its centre.
        assert_eq!(r.in_box(&BoundingBox::new(210.0, 10.0, 220.0, 20.0)).unwrap(), vec![4]);
        assert_eq!(r.image_except(&[2, 3]), vec![4, 5, 6, 7]);
        let mut elsewhere = BoundingBox::new(0.0, 0.0, 10.0, 10.0);
        elsewhere.image = 1;
        assert!(r.in_box(&elsewhere).is_err());
        // Outside the image or inverted: refused, naming the image, not moved onto the edge tokens.
        for b in [BoundingBox::new(5000.0, 5000.0, 6000.0, 6000.0), BoundingBox::new(120.0, 10.0, 20.0, 90.0)] {
            let err = r.in_box(&b).unwrap_err().to_string();
            assert!(err.contains("300x200 image") || err.contains("inverted"), "{err}");
        }
    }

    #[test]
    fn a_prompt_whose_image_tokens_do_not_fit_its_images_is_refused() {
        let mut p = prompt();
        p.input_ids[3] = 50;
        assert!(PromptRegions::of(&p, 12, 10, Some(4), 2).is_err());
    }
}
